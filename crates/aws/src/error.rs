//! One error type for every AWS call, classified for the user: the IAM action missing, the
//! resource not found, throttling that outlasted the retries, no credentials.

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Every service's errors have this one shape (the SDK crates share the runtime).
type SdkError<E> = aws_sdk_rds::error::SdkError<E, aws_sdk_rds::config::http::HttpResponse>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    #[error("access denied: the credentials lack the IAM permission {action} ({message})")]
    AccessDenied { action: String, message: String },
    #[error("{what} not found ({action}: {message})")]
    NotFound {
        what: String,
        action: String,
        message: String,
    },
    #[error(
        "{action} throttled by AWS after the SDK's retries; lower the fleet's rate or retry later"
    )]
    Throttled { action: String },
    #[error(
        "no AWS credentials found (environment, profile, SSO, credential_process, instance role); \
         {action} was not called"
    )]
    NoCredentials { action: String },
    #[error("{what} did not become {wanted} within {waited} (last state: {last})")]
    Deadline {
        what: String,
        wanted: String,
        waited: String,
        last: String,
    },
    #[error("{what} failed: {reason}")]
    Failed { what: String, reason: String },
    /// A body longer than its reader allows: not read past the limit.
    #[error("{what}: its body is longer than {max} bytes; not read further")]
    TooLarge { what: String, max: u64 },
    #[error("{action}: {message}")]
    Other { action: String, message: String },
}

impl AwsError {
    /// Classifies an SDK error of the call `action` (e.g. `rds:RebootDBInstance`) about `what`.
    pub(crate) fn from_sdk<E>(action: &str, what: &str, e: SdkError<E>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().unwrap_or_default().to_owned();
        let message = e.message().unwrap_or_default().to_owned();
        let action = action.to_owned();
        let chain = DisplayErrorContext(&e).to_string();
        match code.as_str() {
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "AuthorizationError"
            | "NotAuthorized" => AwsError::AccessDenied { action, message },
            "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "RequestThrottled" => AwsError::Throttled { action },
            c if c.contains("NotFound") || c.starts_with("NoSuch") => AwsError::NotFound {
                what: what.to_owned(),
                action,
                message,
            },
            "" if chain.contains("credential") => AwsError::NoCredentials { action },
            // An endpoint that is not the service (moto without this API, a wrong
            // endpoint_url, a proxy's error page) answers without an AWS error code.
            "" if status.is_some_and(|s| s >= 300) => AwsError::Other {
                action,
                message: format!(
                    "HTTP {} without an AWS error: the endpoint does not implement this API",
                    status.unwrap_or_default()
                ),
            },
            // Not the whole context: its debug form holds the raw response, a whole listing
            // when an answer does not parse.
            "" => AwsError::Other {
                action,
                message: causes(&e),
            },
            _ => AwsError::Other {
                action,
                message: format!("{code}: {message}"),
            },
        }
    }
}

/// An error and its sources, each by its display, joined as the SDK's context is.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// The one item a describe call answered with, or NotFound naming `what`.
pub(crate) fn found<T>(item: Option<T>, action: &str, what: String) -> Result<T, AwsError> {
    item.ok_or_else(|| AwsError::NotFound {
        what,
        action: action.to_owned(),
        message: "empty answer".into(),
    })
}

/// A field an answer must carry (an identifier, a state): its absence is an error naming it,
/// never an empty string that a later comparison would silently take as an answer.
pub(crate) fn required<T: ToString + ?Sized>(
    value: Option<&T>,
    action: &str,
    field: &str,
) -> Result<String, AwsError> {
    value
        .map(ToString::to_string)
        .ok_or_else(|| AwsError::Other {
            action: action.to_owned(),
            message: format!("the answer has no {field}"),
        })
}

/// The part of an answer a call must return (`missing` names it for the error).
pub(crate) fn answered<T>(item: Option<T>, action: &str, missing: &str) -> Result<T, AwsError> {
    item.ok_or_else(|| AwsError::Other {
        action: action.to_owned(),
        message: format!("no {missing} in the answer"),
    })
}

/// A delete: `true` if it deleted, `false` if the thing was already gone (cleanup and undo
/// stay idempotent).
pub(crate) fn deleted<O, E>(
    result: Result<O, SdkError<E>>,
    action: &str,
    what: &str,
) -> Result<bool, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) => match AwsError::from_sdk(action, what, e) {
            AwsError::NotFound { .. } => Ok(false),
            other => Err(other),
        },
    }
}
