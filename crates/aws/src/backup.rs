//! AWS Backup: how fresh each resource's recovery points are, which jobs failed, and restores.

use std::collections::HashMap;
use std::time::SystemTime;

use aws_sdk_backup::types::RecoveryPointByResource;

use crate::client::Aws;
use crate::error::{AwsError, answered, required};
use crate::rds::time;
use crate::wait::{self, Poll};

#[derive(Clone, Debug, PartialEq)]
pub struct RecoveryPoint {
    pub arn: String,
    pub created: Option<SystemTime>,
    pub status: String,
    pub vault: String,
}

/// A resource AWS Backup has backed up at least once.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtectedResource {
    pub arn: String,
    /// e.g. `RDS`, `Aurora`, `EBS`.
    pub resource_type: String,
    pub last_backup: Option<SystemTime>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BackupJob {
    pub id: String,
    pub state: String,
    pub resource_arn: String,
    pub created: Option<SystemTime>,
    pub message: Option<String>,
}

/// A backup vault: its key and its lock.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupVault {
    pub name: String,
    pub encryption_key: Option<String>,
    pub locked: bool,
    pub lock_date: Option<SystemTime>,
    pub min_retention_days: Option<i64>,
    pub air_gapped: bool,
}

/// A recovery point as its vault lists it, with its lifecycle.
#[derive(Clone, Debug, PartialEq)]
pub struct VaultPoint {
    pub arn: String,
    pub resource_arn: String,
    pub vault: String,
    pub status: String,
    pub encrypted: bool,
    pub delete_after_days: Option<i64>,
}

/// A completed copy of a recovery point to another vault.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyJob {
    pub resource_arn: String,
    pub destination_vault_arn: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RestoreJob {
    pub id: String,
    pub status: String,
    pub created_resource_arn: Option<String>,
    pub message: Option<String>,
}

impl Aws {
    /// A resource's recovery points, newest first.
    pub async fn recovery_points(
        &self,
        resource_arn: &str,
    ) -> Result<Vec<RecoveryPoint>, AwsError> {
        let all: Vec<RecoveryPointByResource> = self
            .backup
            .list_recovery_points_by_resource()
            .resource_arn(resource_arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "backup:ListRecoveryPointsByResource",
                    &format!("recovery points of {resource_arn}"),
                    e,
                )
            })?;
        let action = "backup:ListRecoveryPointsByResource";
        let mut out = all
            .iter()
            .map(|p| {
                Ok(RecoveryPoint {
                    arn: required(p.recovery_point_arn(), action, "RecoveryPointArn")?,
                    created: time(p.creation_date()),
                    status: required(p.status().map(|s| s.as_str()), action, "Status")?,
                    vault: p.backup_vault_name().unwrap_or_default().to_owned(),
                })
            })
            .collect::<Result<Vec<_>, AwsError>>()?;
        out.sort_by_key(|p| std::cmp::Reverse(p.created));
        Ok(out)
    }

    /// Every resource AWS Backup protects in the region (all pages).
    pub async fn protected_resources(&self) -> Result<Vec<ProtectedResource>, AwsError> {
        let all: Vec<aws_sdk_backup::types::ProtectedResource> = self
            .backup
            .list_protected_resources()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| {
                AwsError::from_sdk("backup:ListProtectedResources", "protected resources", e)
            })?;
        all.iter()
            .map(|r| {
                Ok(ProtectedResource {
                    arn: required(
                        r.resource_arn(),
                        "backup:ListProtectedResources",
                        "ResourceArn",
                    )?,
                    resource_type: r.resource_type().unwrap_or_default().to_owned(),
                    last_backup: time(r.last_backup_time()),
                })
            })
            .collect()
    }

    /// Backup jobs created since `since`, of one resource or all.
    pub async fn backup_jobs(
        &self,
        since: SystemTime,
        resource_arn: Option<&str>,
    ) -> Result<Vec<BackupJob>, AwsError> {
        let all: Vec<aws_sdk_backup::types::BackupJob> = self
            .backup
            .list_backup_jobs()
            .by_created_after(aws_smithy_types::DateTime::from(since))
            .set_by_resource_arn(resource_arn.map(str::to_owned))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| AwsError::from_sdk("backup:ListBackupJobs", "backup jobs", e))?;
        let action = "backup:ListBackupJobs";
        all.iter()
            .map(|j| {
                Ok(BackupJob {
                    id: required(j.backup_job_id(), action, "BackupJobId")?,
                    state: required(j.state().map(|s| s.as_str()), action, "State")?,
                    resource_arn: required(j.resource_arn(), action, "ResourceArn")?,
                    created: time(j.creation_date()),
                    message: j.status_message().map(str::to_owned),
                })
            })
            .collect()
    }

    /// Every backup vault of the region (all pages), with its lock.
    pub async fn backup_vaults(&self) -> Result<Vec<BackupVault>, AwsError> {
        let action = "backup:ListBackupVaults";
        let all: Vec<aws_sdk_backup::types::BackupVaultListMember> = self
            .backup
            .list_backup_vaults()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| AwsError::from_sdk(action, "backup vaults", e))?;
        all.iter()
            .map(|v| {
                Ok(BackupVault {
                    name: required(v.backup_vault_name(), action, "BackupVaultName")?,
                    encryption_key: v.encryption_key_arn().map(str::to_owned),
                    locked: v.locked().unwrap_or(false),
                    lock_date: time(v.lock_date()),
                    min_retention_days: v.min_retention_days(),
                    air_gapped: v.vault_type().map(|t| t.as_str())
                        == Some("LOGICALLY_AIR_GAPPED_BACKUP_VAULT"),
                })
            })
            .collect()
    }

    /// The recovery points of one vault (all pages), of one resource or all.
    pub async fn vault_points(
        &self,
        vault: &str,
        resource_arn: Option<&str>,
    ) -> Result<Vec<VaultPoint>, AwsError> {
        let action = "backup:ListRecoveryPointsByBackupVault";
        let all: Vec<aws_sdk_backup::types::RecoveryPointByBackupVault> = self
            .backup
            .list_recovery_points_by_backup_vault()
            .backup_vault_name(vault)
            .set_by_resource_arn(resource_arn.map(str::to_owned))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| {
                AwsError::from_sdk(action, &format!("recovery points in vault {vault}"), e)
            })?;
        all.iter()
            .map(|p| {
                Ok(VaultPoint {
                    arn: required(p.recovery_point_arn(), action, "RecoveryPointArn")?,
                    resource_arn: required(p.resource_arn(), action, "ResourceArn")?,
                    vault: vault.to_owned(),
                    status: required(p.status().map(|s| s.as_str()), action, "Status")?,
                    encrypted: p.is_encrypted(),
                    delete_after_days: p.lifecycle().and_then(|l| l.delete_after_days()),
                })
            })
            .collect()
    }

    /// Completed copy jobs created since `since` (all pages).
    pub async fn completed_copies(&self, since: SystemTime) -> Result<Vec<CopyJob>, AwsError> {
        let action = "backup:ListCopyJobs";
        let all: Vec<aws_sdk_backup::types::CopyJob> = self
            .backup
            .list_copy_jobs()
            .by_created_after(aws_smithy_types::DateTime::from(since))
            .by_state(aws_sdk_backup::types::CopyJobState::Completed)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| AwsError::from_sdk(action, "copy jobs", e))?;
        all.iter()
            .map(|j| {
                Ok(CopyJob {
                    resource_arn: required(j.resource_arn(), action, "ResourceArn")?,
                    destination_vault_arn: required(
                        j.destination_backup_vault_arn(),
                        action,
                        "DestinationBackupVaultArn",
                    )?,
                })
            })
            .collect()
    }

    pub async fn start_restore(
        &self,
        recovery_point_arn: &str,
        iam_role_arn: Option<&str>,
        metadata: HashMap<String, String>,
    ) -> Result<String, AwsError> {
        let out = self
            .backup
            .start_restore_job()
            .recovery_point_arn(recovery_point_arn)
            .set_iam_role_arn(iam_role_arn.map(str::to_owned))
            .set_metadata(Some(metadata))
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "backup:StartRestoreJob",
                    &format!("recovery point {recovery_point_arn}"),
                    e,
                )
            })?;
        answered(
            out.restore_job_id().map(str::to_owned),
            "backup:StartRestoreJob",
            "restore job id",
        )
    }

    pub async fn restore_job(&self, id: &str) -> Result<RestoreJob, AwsError> {
        let out = self
            .backup
            .describe_restore_job()
            .restore_job_id(id)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("backup:DescribeRestoreJob", &format!("restore job {id}"), e)
            })?;
        Ok(RestoreJob {
            id: id.to_owned(),
            status: out
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            created_resource_arn: out.created_resource_arn().map(str::to_owned),
            message: out.status_message().map(str::to_owned),
        })
    }

    /// The metadata AWS Backup recorded to restore a recovery point (instance class, subnet
    /// group, ...): the start of a restore's metadata, where the drill changes the identifier.
    pub async fn restore_metadata(
        &self,
        vault: &str,
        recovery_point_arn: &str,
    ) -> Result<HashMap<String, String>, AwsError> {
        let out = self
            .backup
            .get_recovery_point_restore_metadata()
            .backup_vault_name(vault)
            .recovery_point_arn(recovery_point_arn)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "backup:GetRecoveryPointRestoreMetadata",
                    &format!("recovery point {recovery_point_arn}"),
                    e,
                )
            })?;
        Ok(out.restore_metadata().cloned().unwrap_or_default())
    }

    /// Waits until the restore job is COMPLETED; FAILED or ABORTED ends the wait with AWS
    /// Backup's message.
    pub async fn restore_done(&self, id: &str, poll: Poll) -> Result<RestoreJob, AwsError> {
        let what = format!("AWS Backup restore job {id}");
        wait::until(&what, "COMPLETED", poll, || async {
            let j = self.restore_job(id).await?;
            match j.status.as_str() {
                "COMPLETED" => Ok((Some(j), "COMPLETED".into())),
                "FAILED" | "ABORTED" => Err(AwsError::Failed {
                    what: what.clone(),
                    reason: format!(
                        "{}{}",
                        j.status,
                        j.message.map(|m| format!(": {m}")).unwrap_or_default()
                    ),
                }),
                s => Ok((None, s.to_owned())),
            }
        })
        .await
    }
}
