//! Building the SDK clients from the usual credential chain, with the region, profile and
//! endpoint a scenario may set.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_types::SdkConfig;
use aws_types::region::Region;

/// Where and as whom to call AWS. Credentials come from the standard chain: environment,
/// profile (`profile`), SSO, `credential_process`, container or instance role.
///
/// Serializable because a drill journal records it with each AWS undo, so that `firedrill
/// recover` reaches the same account and region after a crash: never credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Options {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Another endpoint for every service (a VPC endpoint, or moto server in tests).
    pub endpoint_url: Option<String>,
    /// Attempts per call, throttling included (the SDK backs off between them); default 5.
    #[serde(skip)]
    pub max_attempts: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Aws {
    pub(crate) rds: aws_sdk_rds::Client,
    pub(crate) fis: aws_sdk_fis::Client,
    pub(crate) backup: aws_sdk_backup::Client,
    pub(crate) cloudwatch: aws_sdk_cloudwatch::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub region: String,
}

impl Aws {
    /// Loads the configuration (no call to AWS yet: a missing credential shows on first use).
    pub async fn connect(o: &Options) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(o.max_attempts.unwrap_or(5)));
        if let Some(r) = &o.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &o.profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = &o.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        Aws::from_conf(&loader.load().await)
    }

    /// Clients from a ready configuration (tests give static credentials this way).
    pub fn from_conf(conf: &SdkConfig) -> Aws {
        Aws {
            rds: aws_sdk_rds::Client::new(conf),
            fis: aws_sdk_fis::Client::new(conf),
            backup: aws_sdk_backup::Client::new(conf),
            cloudwatch: aws_sdk_cloudwatch::Client::new(conf),
            // Another endpoint (a VPC endpoint, moto) is addressed by path, not by a bucket's
            // own host name.
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(conf)
                    .force_path_style(conf.endpoint_url().is_some())
                    .build(),
            ),
            region: conf
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "(no region)".into()),
        }
    }

    /// Clients from ready service clients (tests with the SDK's mocks).
    pub fn from_clients(
        rds: aws_sdk_rds::Client,
        fis: aws_sdk_fis::Client,
        backup: aws_sdk_backup::Client,
        cloudwatch: aws_sdk_cloudwatch::Client,
    ) -> Aws {
        Aws {
            rds,
            fis,
            backup,
            cloudwatch,
            // The mocked services have no S3; a call to it fails for want of a region.
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::Config::builder()
                    .behavior_version_latest()
                    .build(),
            ),
            region: "us-east-1".into(),
        }
    }
}
