//! The `restore:` block of a scenario as written in YAML: which backup (`type:`-tagged, one
//! variant per backup kind), the recovery target, the restored sandbox or instance, and how the
//! restored data is proven. Plain data, like [`super::model`]; checked by `validate_restore`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Dur;
use super::tagged::tagged_enum;

/// A restore drill: take (or pick) a backup of the target's database, restore it into a new
/// sandbox, and prove the restored data against the source at the recovery point.
///
/// For restore drills `targets.rto` is the restore RTO (start of the restore to the first
/// successful query on the restored database) and `targets.rpo` the RPO exposure (age of the
/// recovery point when the drill ran).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    pub backup: Backup,
    /// The point to restore to; default the latest the backup allows.
    #[serde(default)]
    pub recovery_target: RecoveryTarget,
    /// Data firedrill loads into a sandbox source before the backup (not used for `postgres`
    /// targets, whose data is their own).
    #[serde(default)]
    pub seed: Seed,
    /// How long the workload keeps writing after the backup is taken (point-in-time kinds), so
    /// that writes after the recovery point exist on the source and must be absent when restored.
    #[serde(default = "default_write_after_backup")]
    pub write_after_backup: Dur,
    #[serde(default)]
    pub verify: RestoreVerify,
    /// Where the restored cluster is built. For a sandbox target the target's own `bin_dir`,
    /// `run_as` and `work_dir` are the defaults. Local backup kinds only.
    #[serde(default)]
    pub sandbox: RestoreSandbox,
    /// The temporary DB instance an AWS backup kind restores into. AWS kinds only.
    #[serde(default)]
    pub instance: Option<RestoredInstance>,
}

/// The temporary instance of an AWS restore: created tagged `firedrill:drill`, named
/// `firedrill-<run id>`, and deleted when the drill ends (also after a failure or Ctrl-C).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoredInstance {
    /// Its DB instance class (e.g. `db.t3.medium`); default the source's.
    #[serde(default)]
    pub class: Option<String>,
    /// How long the restore may take, from the restore call until the instance answers a
    /// query; past it the drill fails and the instance is deleted.
    #[serde(default = "default_available_within")]
    pub available_within: Dur,
    /// An environment variable holding the DSN to reach the restored instance by, when not by
    /// its endpoint (a tunnel, a proxy). Without it the source's DSN is used with the restored
    /// instance's endpoint as host and port.
    #[serde(default)]
    pub dsn_env: Option<String>,
}

fn default_available_within() -> Dur {
    Dur::from_secs(3600)
}

impl Default for RestoredInstance {
    fn default() -> Self {
        RestoredInstance {
            class: None,
            available_within: default_available_within(),
            dsn_env: None,
        }
    }
}

impl Restore {
    /// Whether the drill's writers write while the backup's point is chosen, so that the
    /// restored ledger can be checked write by write (with `workload.connections > 0`): a
    /// backup firedrill takes, or an RDS point in time `after-backup`.
    pub fn ledger_writes(&self, sandbox_source: bool) -> bool {
        match (&self.backup, &self.recovery_target) {
            (Backup::RdsPointInTime {}, rt) => matches!(rt, RecoveryTarget::AfterBackup { .. }),
            (b, _) => b.takes(sandbox_source),
        }
    }
}

fn default_write_after_backup() -> Dur {
    Dur::from_secs(2)
}

tagged_enum! {
    #[derive(Clone, Debug, Serialize, JsonSchema)]
    #[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum Backup {
        /// A logical dump with `pg_dump`, restored with `pg_restore` (parallel with `jobs`). Taken
        /// inside a snapshot that firedrill exports and keeps open, so the source's checksums are
        /// computed on exactly the data the dump saw.
        PgDump {
            #[serde(default)]
            format: DumpFormat,
            /// Parallel jobs for `pg_restore` (and `pg_dump`, directory format only).
            #[serde(default = "default_jobs")]
            jobs: u16,
            /// An existing dump (file, or directory for the directory format) to restore instead of
            /// taking one; `postgres` targets only.
            #[serde(default)]
            path: Option<PathBuf>,
        },
        /// A physical base backup with `pg_basebackup` plus the WAL archive, for a restore to the
        /// latest point or to a point in time.
        PgBasebackup {
            /// An existing base backup directory (plain format, with `backup_manifest`) to restore
            /// instead of taking one; `postgres` targets only.
            #[serde(default)]
            path: Option<PathBuf>,
            /// The WAL archive to recover from (files named as `archive_command` copies them).
            /// Default for a sandbox: the archive firedrill configures.
            #[serde(default)]
            wal_archive: Option<PathBuf>,
        },
        /// A pgBackRest stanza. On a sandbox firedrill creates the repository and stanza, archives
        /// WAL through `pgbackrest archive-push` and takes a full backup; on a `postgres` target it
        /// restores the stanza's latest backup from the repository in `config`.
        Pgbackrest {
            stanza: String,
            /// pgBackRest configuration file for a `postgres` target's existing repository.
            #[serde(default)]
            config: Option<PathBuf>,
        },
        /// An RDS DB snapshot of an `aws-rds` instance, restored with
        /// `RestoreDBInstanceFromDBSnapshot` into a temporary instance.
        RdsSnapshot {
            /// `create` to take a snapshot now (tagged, deleted afterwards), `latest` for the
            /// instance's newest available snapshot (automated or manual), or a snapshot identifier.
            #[serde(default = "default_snapshot")]
            snapshot: String,
        },
        /// A point-in-time restore of an `aws-rds` instance (`RestoreDBInstanceToPointInTime`) into
        /// a temporary instance: to the latest restorable time, a `time`, or `after-backup` (an
        /// instant during the drill's own writes, checked write by write).
        RdsPointInTime {},
        /// An AWS Backup recovery point of an `aws-rds` instance, restored with `StartRestoreJob`
        /// into a temporary instance.
        AwsBackup {
            /// The recovery point's ARN; default the newest completed one of the instance.
            #[serde(default)]
            recovery_point: Option<String>,
            /// The role AWS Backup assumes to restore.
            iam_role_arn: String,
            /// Restore metadata to set over the recovery point's own (e.g. `DBSubnetGroupName`,
            /// `VpcSecurityGroupIds`); `DBInstanceIdentifier` is the drill's.
            #[serde(default)]
            metadata: BTreeMap<String, String>,
        },
    }
}

fn default_snapshot() -> String {
    "create".into()
}

impl Backup {
    pub fn kind(&self) -> &'static str {
        match self {
            Backup::PgDump { .. } => "pg-dump",
            Backup::PgBasebackup { .. } => "pg-basebackup",
            Backup::Pgbackrest { .. } => "pgbackrest",
            Backup::RdsSnapshot { .. } => "rds-snapshot",
            Backup::RdsPointInTime {} => "rds-point-in-time",
            Backup::AwsBackup { .. } => "aws-backup",
        }
    }
    /// Whether the backup and the restore are AWS's (an `aws-rds` target).
    pub fn on_aws(&self) -> bool {
        matches!(
            self,
            Backup::RdsSnapshot { .. } | Backup::RdsPointInTime {} | Backup::AwsBackup { .. }
        )
    }
    /// Whether firedrill takes the backup (rather than restoring an existing one).
    pub fn takes(&self, sandbox_source: bool) -> bool {
        match self {
            Backup::PgDump { path, .. } | Backup::PgBasebackup { path, .. } => path.is_none(),
            Backup::Pgbackrest { .. } => sandbox_source,
            Backup::RdsSnapshot { snapshot } => snapshot == "create",
            // The point is one the drill chooses while it writes.
            Backup::RdsPointInTime {} => true,
            Backup::AwsBackup { .. } => false,
        }
    }
    /// Whether the restore replays WAL (and so can stop at a point in time).
    pub fn point_in_time(&self) -> bool {
        matches!(
            self,
            Backup::PgBasebackup { .. } | Backup::Pgbackrest { .. } | Backup::RdsPointInTime {}
        )
    }
}

fn default_jobs() -> u16 {
    2
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DumpFormat {
    /// One file (`pg_dump -Fc`).
    #[default]
    Custom,
    /// A directory, one file per table (`pg_dump -Fd`); dumped in parallel too.
    Directory,
}

tagged_enum! {
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
    #[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum RecoveryTarget {
        /// Everything the backup (and its WAL archive) holds.
        #[default]
        Latest,
        /// A point in time, RFC 3339 (e.g. `2026-11-20T03:00:00Z`); point-in-time kinds only.
        Time { at: String },
        /// The instant `offset` after the backup ends, while the workload keeps writing past it: a
        /// point-in-time restore under live writes that firedrill can check write by write.
        AfterBackup { offset: Dur },
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// `pgbench -i` at this scale (100,000 `pgbench_accounts` rows per unit); 0 for none.
    #[serde(default = "default_scale")]
    pub pgbench_scale: u32,
    /// SQL run after pgbench, in order (e.g. tables with types pgbench lacks).
    #[serde(default)]
    pub sql: Vec<String>,
}

fn default_scale() -> u32 {
    1
}

impl Default for Seed {
    fn default() -> Self {
        Seed {
            pgbench_scale: default_scale(),
            sql: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreVerify {
    /// Check the backup itself where the tool can (`pg_verifybackup`, `pgbackrest verify`,
    /// `pg_restore --list`), and the WAL archive for gaps.
    #[serde(default = "yes")]
    pub backup: bool,
    /// Compare tables, columns, constraints, indexes and sequences.
    #[serde(default = "yes")]
    pub schema: bool,
    /// Per-table row counts and content checksums against the source.
    #[serde(default = "yes")]
    pub checksums: bool,
    /// `pg_amcheck --heapallindexed` on the restored database.
    #[serde(default = "yes")]
    pub amcheck: bool,
    /// For an existing backup of a `postgres` target: the source has not changed since the
    /// recovery point, so comparing with its current state is exact. Without it, checksums
    /// against a moving source would prove nothing and are refused.
    #[serde(default)]
    pub source_quiescent: bool,
    /// Queries run on the restored database; each must return one row whose first column is
    /// `true`.
    #[serde(default)]
    pub assertions: Vec<Assertion>,
}

fn yes() -> bool {
    true
}

impl Default for RestoreVerify {
    fn default() -> Self {
        RestoreVerify {
            backup: true,
            schema: true,
            checksums: true,
            amcheck: true,
            source_quiescent: false,
            assertions: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    pub name: String,
    pub sql: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreSandbox {
    #[serde(default)]
    pub bin_dir: Option<PathBuf>,
    #[serde(default)]
    pub run_as: Option<String>,
    #[serde(default)]
    pub work_dir: Option<PathBuf>,
    /// Extra `postgresql.conf` settings for the restored cluster.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}
