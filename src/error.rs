//! Error kinds and the exit codes they map to. The codes are part of the interface (cron jobs and
//! CI pipelines branch on them) and are documented in the README and `firedrill --help`.

use std::process::ExitCode;

pub use firedrill_model::exit::*;

pub fn exit_code(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// Problems with the machine or the target rather than with the scenario.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{what} not found (searched: {searched}); {hint}")]
    MissingBinary {
        what: String,
        searched: String,
        hint: String,
    },
    #[error(
        "no such user: {user}; when run as root, firedrill runs PostgreSQL as an unprivileged user (set `target.run_as`)"
    )]
    NoUser { user: String },
    #[error("environment variable {name} is not set (the scenario's `target.dsn_env`)")]
    MissingDsn { name: String },
    #[error("environment variable {name} is not set (the scenario's `{key}`: {what})")]
    MissingVar {
        name: String,
        key: &'static str,
        what: &'static str,
    },
    #[error(
        "environment variable {name} does not hold a valid PostgreSQL connection string: {reason}"
    )]
    BadDsn { name: String, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status}){}", log_suffix(.log))]
    Command {
        what: String,
        status: String,
        log: String,
    },
    #[error("{what}: not ready after {waited}{}", log_suffix(.log))]
    Timeout {
        what: String,
        waited: String,
        log: String,
    },
    #[error("{what} needs {capability}; {hint}")]
    Capability {
        what: String,
        capability: String,
        hint: String,
    },
    #[error("cannot reach {what}: {reason}")]
    Unreachable { what: String, reason: String },
    #[error("{0}")]
    Database(String),
    /// The backup a restore drill names is missing or cannot give what the scenario asks.
    #[error("backup: {0}")]
    Backup(String),
    /// An AWS call failed, classified (a missing IAM action, a resource not found, throttling,
    /// no credentials, a deadline) by `firedrill-aws`.
    #[error("aws: {0}")]
    Aws(#[from] firedrill_aws::AwsError),
}

fn log_suffix(log: &str) -> String {
    if log.trim().is_empty() {
        String::new()
    } else {
        format!("\n  last lines of its output:\n{}", indent(log))
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl EnvError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EnvError {
        let what = what.into();
        move |source| EnvError::Io { what, source }
    }
}
