//! RDS and Aurora: what a drill reads, breaks, copies and removes.

use std::time::SystemTime;

use aws_sdk_rds::types::{DbCluster, DbInstance, DbSnapshot, Tag};

use crate::client::Aws;
use crate::error::{AwsError, answered, deleted, found, required};
use crate::wait::{self, Poll};

/// A DB instance as a drill sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub id: String,
    pub arn: String,
    pub status: String,
    /// Address and port, once the instance has one.
    pub endpoint: Option<(String, u16)>,
    pub multi_az: bool,
    pub az: Option<String>,
    pub secondary_az: Option<String>,
    pub engine: String,
    pub tags: Vec<(String, String)>,
    /// The newest point a point-in-time restore can reach (RDS keeps it about 5 minutes behind).
    pub latest_restorable: Option<SystemTime>,
    pub storage_encrypted: Option<bool>,
    /// Days automated backups are kept (0: automated backups off).
    pub backup_retention_days: Option<i32>,
    pub deletion_protection: Option<bool>,
    /// ARNs of its automated backups replicated to other regions.
    pub backup_replications: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    pub id: String,
    pub arn: String,
    pub status: String,
    pub endpoint: Option<(String, u16)>,
    /// The writer instance, if the cluster has members.
    pub writer: Option<String>,
    pub members: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub arn: String,
    pub status: String,
    pub instance: String,
    pub tags: Vec<(String, String)>,
    /// When the snapshot was taken: its recovery point.
    pub created: Option<SystemTime>,
    pub encrypted: Option<bool>,
}

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

fn tag_pairs(t: &[Tag]) -> Vec<(String, String)> {
    t.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn instance(i: &DbInstance, action: &str) -> Result<Instance, AwsError> {
    Ok(Instance {
        id: required(i.db_instance_identifier(), action, "DBInstanceIdentifier")?,
        arn: i.db_instance_arn().unwrap_or_default().to_owned(),
        status: required(i.db_instance_status(), action, "DBInstanceStatus")?,
        endpoint: i
            .endpoint()
            .and_then(|e| Some((e.address()?.to_owned(), u16::try_from(e.port()?).ok()?))),
        multi_az: i.multi_az().unwrap_or(false),
        az: i.availability_zone().map(str::to_owned),
        secondary_az: i.secondary_availability_zone().map(str::to_owned),
        engine: i.engine().unwrap_or_default().to_owned(),
        tags: tag_pairs(i.tag_list()),
        latest_restorable: time(i.latest_restorable_time()),
        storage_encrypted: i.storage_encrypted(),
        backup_retention_days: i.backup_retention_period(),
        deletion_protection: i.deletion_protection(),
        backup_replications: i
            .db_instance_automated_backups_replications()
            .iter()
            .filter_map(|r| r.db_instance_automated_backups_arn().map(str::to_owned))
            .collect(),
    })
}

pub(crate) fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

fn cluster(c: &DbCluster, action: &str) -> Result<Cluster, AwsError> {
    let members = c.db_cluster_members();
    Ok(Cluster {
        id: required(c.db_cluster_identifier(), action, "DBClusterIdentifier")?,
        arn: c.db_cluster_arn().unwrap_or_default().to_owned(),
        status: required(c.status(), action, "Status")?,
        endpoint: c
            .endpoint()
            .zip(c.port())
            .and_then(|(a, p)| Some((a.to_owned(), u16::try_from(p).ok()?))),
        writer: members
            .iter()
            .find(|m| m.is_cluster_writer() == Some(true))
            .and_then(|m| m.db_instance_identifier())
            .map(str::to_owned),
        members: members
            .iter()
            .filter_map(|m| m.db_instance_identifier().map(str::to_owned))
            .collect(),
    })
}

fn snapshot(s: &DbSnapshot, action: &str) -> Result<Snapshot, AwsError> {
    Ok(Snapshot {
        id: required(s.db_snapshot_identifier(), action, "DBSnapshotIdentifier")?,
        arn: s.db_snapshot_arn().unwrap_or_default().to_owned(),
        status: required(s.status(), action, "Status")?,
        instance: required(s.db_instance_identifier(), action, "DBInstanceIdentifier")?,
        tags: tag_pairs(s.tag_list()),
        created: time(s.snapshot_create_time()),
        encrypted: s.encrypted(),
    })
}

impl Aws {
    pub async fn instance(&self, id: &str) -> Result<Instance, AwsError> {
        let what = format!("DB instance {id} in {}", self.region);
        let out = self
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("rds:DescribeDBInstances", &what, e))?;
        found(
            out.db_instances()
                .first()
                .map(|i| instance(i, "rds:DescribeDBInstances"))
                .transpose()?,
            "rds:DescribeDBInstances",
            what,
        )
    }

    /// Every DB instance of the region (all pages).
    pub async fn instances(&self) -> Result<Vec<Instance>, AwsError> {
        let all: Vec<DbInstance> = self
            .rds
            .describe_db_instances()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| AwsError::from_sdk("rds:DescribeDBInstances", "DB instances", e))?;
        all.iter()
            .map(|i| instance(i, "rds:DescribeDBInstances"))
            .collect()
    }

    pub async fn cluster(&self, id: &str) -> Result<Cluster, AwsError> {
        let what = format!("DB cluster {id} in {}", self.region);
        let out = self
            .rds
            .describe_db_clusters()
            .db_cluster_identifier(id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("rds:DescribeDBClusters", &what, e))?;
        found(
            out.db_clusters()
                .first()
                .map(|c| cluster(c, "rds:DescribeDBClusters"))
                .transpose()?,
            "rds:DescribeDBClusters",
            what,
        )
    }

    /// A Multi-AZ instance failover: reboot with `ForceFailover`.
    pub async fn failover_instance(&self, id: &str) -> Result<(), AwsError> {
        self.rds
            .reboot_db_instance()
            .db_instance_identifier(id)
            .force_failover(true)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("rds:RebootDBInstance", &format!("DB instance {id}"), e)
            })?;
        Ok(())
    }

    /// An Aurora (or Multi-AZ DB cluster) failover, optionally to a chosen reader.
    pub async fn failover_cluster(&self, id: &str, target: Option<&str>) -> Result<(), AwsError> {
        self.rds
            .failover_db_cluster()
            .db_cluster_identifier(id)
            .set_target_db_instance_identifier(target.map(str::to_owned))
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("rds:FailoverDBCluster", &format!("DB cluster {id}"), e)
            })?;
        Ok(())
    }

    pub async fn create_snapshot(
        &self,
        instance: &str,
        snapshot_id: &str,
        tag: &[(&str, &str)],
    ) -> Result<Snapshot, AwsError> {
        let out = self
            .rds
            .create_db_snapshot()
            .db_instance_identifier(instance)
            .db_snapshot_identifier(snapshot_id)
            .set_tags(Some(tags(tag)))
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "rds:CreateDBSnapshot",
                    &format!("DB instance {instance}"),
                    e,
                )
            })?;
        answered(
            out.db_snapshot()
                .map(|s| snapshot(s, "rds:CreateDBSnapshot"))
                .transpose()?,
            "rds:CreateDBSnapshot",
            "snapshot",
        )
    }

    pub async fn snapshot(&self, id: &str) -> Result<Snapshot, AwsError> {
        let what = format!("DB snapshot {id}");
        let out = self
            .rds
            .describe_db_snapshots()
            .db_snapshot_identifier(id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("rds:DescribeDBSnapshots", &what, e))?;
        found(
            out.db_snapshots()
                .first()
                .map(|s| snapshot(s, "rds:DescribeDBSnapshots"))
                .transpose()?,
            "rds:DescribeDBSnapshots",
            what,
        )
    }

    /// The DB snapshots, automated and manual, of one instance or of the whole region (all
    /// pages), newest first.
    pub async fn snapshots(&self, instance: Option<&str>) -> Result<Vec<Snapshot>, AwsError> {
        let all: Vec<DbSnapshot> = self
            .rds
            .describe_db_snapshots()
            .set_db_instance_identifier(instance.map(str::to_owned))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| {
                let what = match instance {
                    Some(i) => format!("snapshots of DB instance {i}"),
                    None => "DB snapshots".into(),
                };
                AwsError::from_sdk("rds:DescribeDBSnapshots", &what, e)
            })?;
        let mut out = all
            .iter()
            .map(|s| snapshot(s, "rds:DescribeDBSnapshots"))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|s| std::cmp::Reverse(s.created));
        Ok(out)
    }

    /// Waits until the instance is `available`; a state it cannot leave by itself (failed,
    /// deleting, incompatible-*) ends the wait at once.
    pub async fn instance_available(&self, id: &str, poll: Poll) -> Result<Instance, AwsError> {
        let what = format!("DB instance {id}");
        wait::until(&what, "available", poll, || async {
            let i = self.instance(id).await?;
            match i.status.as_str() {
                "available" => Ok((Some(i), "available".into())),
                s if s == "failed" || s == "deleting" || s.starts_with("incompatible") => {
                    Err(AwsError::Failed {
                        what: what.clone(),
                        reason: format!("its state is {s}"),
                    })
                }
                s => Ok((None, s.to_owned())),
            }
        })
        .await
    }

    /// Waits until the snapshot is `available` (a `failed` one ends the wait).
    pub async fn snapshot_available(&self, id: &str, poll: Poll) -> Result<Snapshot, AwsError> {
        let what = format!("DB snapshot {id}");
        wait::until(&what, "available", poll, || async {
            let s = self.snapshot(id).await?;
            match s.status.as_str() {
                "available" => Ok((Some(s), "available".into())),
                "failed" | "deleting" => Err(AwsError::Failed {
                    what: what.clone(),
                    reason: format!("its state is {}", s.status),
                }),
                other => Ok((None, other.to_owned())),
            }
        })
        .await
    }

    /// Tags a resource by ARN (an instance AWS Backup restored, which the restore could not tag).
    pub async fn tag(&self, arn: &str, tag: &[(&str, &str)]) -> Result<(), AwsError> {
        self.rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(tags(tag)))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("rds:AddTagsToResource", arn, e))?;
        Ok(())
    }

    /// Restores a snapshot into a new instance `new_id`, tagged.
    pub async fn restore_snapshot(
        &self,
        snapshot_id: &str,
        new_id: &str,
        class: Option<&str>,
        tag: &[(&str, &str)],
    ) -> Result<Instance, AwsError> {
        let out = self
            .rds
            .restore_db_instance_from_db_snapshot()
            .db_snapshot_identifier(snapshot_id)
            .db_instance_identifier(new_id)
            .set_db_instance_class(class.map(str::to_owned))
            .set_tags(Some(tags(tag)))
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "rds:RestoreDBInstanceFromDBSnapshot",
                    &format!("DB snapshot {snapshot_id}"),
                    e,
                )
            })?;
        answered(
            out.db_instance()
                .map(|i| instance(i, "rds:RestoreDBInstanceFromDBSnapshot"))
                .transpose()?,
            "rds:RestoreDBInstanceFromDBSnapshot",
            "instance",
        )
    }

    /// Restores `source` as of `at` (`None`: the latest restorable time) into `new_id`.
    pub async fn restore_point_in_time(
        &self,
        source: &str,
        new_id: &str,
        at: Option<SystemTime>,
        class: Option<&str>,
        tag: &[(&str, &str)],
    ) -> Result<Instance, AwsError> {
        let out = self
            .rds
            .restore_db_instance_to_point_in_time()
            .source_db_instance_identifier(source)
            .target_db_instance_identifier(new_id)
            .set_restore_time(at.map(aws_smithy_types::DateTime::from))
            .use_latest_restorable_time(at.is_none())
            .set_db_instance_class(class.map(str::to_owned))
            .set_tags(Some(tags(tag)))
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "rds:RestoreDBInstanceToPointInTime",
                    &format!("DB instance {source}"),
                    e,
                )
            })?;
        answered(
            out.db_instance()
                .map(|i| instance(i, "rds:RestoreDBInstanceToPointInTime"))
                .transpose()?,
            "rds:RestoreDBInstanceToPointInTime",
            "instance",
        )
    }

    /// Deletes an instance firedrill created (no final snapshot: it is a copy). A missing
    /// instance is not an error: deleting twice is how cleanup stays idempotent.
    pub async fn delete_instance(&self, id: &str) -> Result<bool, AwsError> {
        let result = self
            .rds
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .delete_automated_backups(true)
            .send()
            .await;
        deleted(result, "rds:DeleteDBInstance", &format!("DB instance {id}"))
    }

    pub async fn delete_snapshot(&self, id: &str) -> Result<bool, AwsError> {
        let result = self
            .rds
            .delete_db_snapshot()
            .db_snapshot_identifier(id)
            .send()
            .await;
        deleted(result, "rds:DeleteDBSnapshot", &format!("DB snapshot {id}"))
    }

    /// Instances and snapshots tagged `DRILL_TAG` (= `drill`, or any value when `None`).
    pub async fn tagged(&self, drill: Option<&str>) -> Result<Vec<Leftover>, AwsError> {
        let ours = |tags: &[(String, String)]| {
            tags.iter()
                .find(|(k, v)| k == crate::DRILL_TAG && drill.is_none_or(|d| d == v))
                .map(|(_, v)| v.clone())
        };
        let mut out = Vec::new();
        for i in self.instances().await? {
            if let Some(drill) = ours(&i.tags) {
                out.push(Leftover::Instance { id: i.id, drill });
            }
        }
        for s in self.snapshots(None).await? {
            if let Some(drill) = ours(&s.tags) {
                out.push(Leftover::Snapshot { id: s.id, drill });
            }
        }
        for (id, drill) in self.templates_tagged(drill).await? {
            out.push(Leftover::FisTemplate { id, drill });
        }
        Ok(out)
    }

    /// Deletes what [`Aws::tagged`] finds; returns what was deleted (`instance ID`,
    /// `snapshot ID`). Instances go first: a snapshot may be what one was restored from.
    pub async fn cleanup(&self, drill: Option<&str>) -> Result<Vec<String>, AwsError> {
        let mut deleted = Vec::new();
        for l in self.tagged(drill).await? {
            let gone = match &l {
                Leftover::Instance { id, .. } => self.delete_instance(id).await?,
                Leftover::Snapshot { id, .. } => self.delete_snapshot(id).await?,
                Leftover::FisTemplate { id, .. } => match self.delete_template(id).await {
                    Ok(()) => true,
                    Err(AwsError::NotFound { .. }) => false,
                    Err(e) => return Err(e),
                },
            };
            if gone {
                deleted.push(l.to_string());
            }
        }
        Ok(deleted)
    }
}

/// A resource a drill created and did not remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leftover {
    Instance { id: String, drill: String },
    Snapshot { id: String, drill: String },
    FisTemplate { id: String, drill: String },
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leftover::Instance { id, .. } => write!(f, "instance {id}"),
            Leftover::Snapshot { id, .. } => write!(f, "snapshot {id}"),
            Leftover::FisTemplate { id, .. } => write!(f, "FIS experiment template {id}"),
        }
    }
}
