//! firedrill's calls to AWS: RDS and Aurora (describe, fail over, snapshot, restore, delete), Fault
//! Injection Service experiments, AWS Backup (recovery points, jobs, restore jobs), and S3 with
//! Object Lock for the evidence store.
//!
//! A crate of its own so that the SDK compiles once: the engine in `firedrill` changes often and
//! depends on this crate's small, SDK-free interface (plain structs and [`AwsError`]), never on
//! SDK types. Every call names the IAM action it needs, so that an AccessDenied error can say
//! which permission is missing; throttling is retried by the SDK's standard retry mode.

mod backup;
mod client;
mod cloudwatch;
mod error;
mod fis;
/// A moto server for tests: only with the `moto` feature, never in the shipped binary.
#[cfg(feature = "moto")]
pub mod moto;
mod rds;
mod s3;
pub mod wait;

pub use backup::{
    BackupJob, BackupVault, CopyJob, ProtectedResource, RecoveryPoint, RestoreJob, VaultPoint,
};
pub use client::{Aws, Options};
pub use error::AwsError;
pub use fis::{ActionSpec, Experiment, TargetSpec, TemplateSpec};
pub use rds::{Cluster, Instance, Leftover, Snapshot};
pub use s3::{Body, BucketWorm, COMPLIANCE, Condition, Lock, ObjectVersion, Put};

/// The tag every resource firedrill creates carries; its value is the drill's run id.
pub const DRILL_TAG: &str = "firedrill:drill";
