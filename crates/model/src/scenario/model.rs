//! The scenario format as written in YAML: plain data, deserialized strictly (unknown keys are
//! errors) and checked by [`super::validate`] before anything is built from it.
//!
//! Every component is a `type:`-tagged enum so that a new target, fault or recovery is one new
//! variant, and the JSON Schema (`firedrill schema`) lists exactly what is accepted.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::argv::{Argv, shell_words};
use super::duration::{Dur, Span};
pub use super::failover::*;
pub use super::guardrail::*;
pub use super::patroni::*;
use super::restore::Restore;
use super::tagged::tagged_enum;

/// The scenario format version this build reads.
pub const SCENARIO_VERSION: u32 = 1;

/// A drill: what to break and how it should recover (a failover drill), or which backup to
/// restore (a restore drill); and what that must prove.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Scenario format version; this build reads version 1.
    pub version: u32,
    /// Short name, used in reports and file names (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// What the drill proves, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// The runbook this drill exercises, relative to the scenario file or absolute.
    #[serde(default)]
    pub runbook: Option<PathBuf>,
    /// SOC 2 controls the drill evidences, e.g. `A1.2`, `A1.3`, `PI1.4`.
    #[serde(default)]
    pub controls: Vec<String>,
    /// Where the target runs; required for a `postgres` target. A `production` drill runs only
    /// with `--confirm NAME` or a confirmation typed at a terminal.
    #[serde(default)]
    pub environment: Option<Environment>,
    pub target: Target,
    #[serde(default)]
    pub workload: Workload,
    #[serde(default)]
    pub probes: Probes,
    #[serde(default)]
    pub steady_state: SteadyState,
    /// What to break (failover drills).
    #[serde(default)]
    pub fault: Option<Fault>,
    /// How the system recovers from the fault (failover drills).
    #[serde(default)]
    pub recovery: Option<Recovery>,
    /// A game day: faults, recoveries, waits and people's steps in order, instead of one
    /// `fault` and one `recovery`; each `manual` step timed against its `within`.
    #[serde(default)]
    pub steps: Option<Vec<super::steps::Step>>,
    /// Which backup to restore and how to prove it (restore drills, instead of fault and
    /// recovery).
    #[serde(default)]
    pub restore: Option<Restore>,
    /// Read-only check of AWS Backup (a drill of its own, with an `aws-backup` target): the age
    /// of each resource's newest recovery point, and failed or missing backup jobs in a window.
    #[serde(default)]
    pub backup_health: Option<BackupHealth>,
    /// Read-only check that the backups themselves are protected (a drill of its own, with an
    /// `aws-backup`, `aws-rds` or `pgbackrest` target): encryption, immutability, retention,
    /// copies in other regions, deletion protection, as `targets` states.
    #[serde(default)]
    pub posture: Option<Posture>,
    /// Run this restore drill on every DB instance with the given tags (an `aws-rds` target
    /// without `instance`), a few at a time: one report per instance plus a summary.
    #[serde(default)]
    pub fleet: Option<Fleet>,
    /// Stop conditions (failover drills): when one holds, the drill aborts within one probe
    /// interval and rolls the fault back.
    #[serde(default)]
    pub guardrails: Vec<Guardrail>,
    #[serde(default)]
    pub observe: Observe,
    /// What must hold. Each field is optional, but a drill states at least one (a missing
    /// block is reported as that, at the drill's own keys); integrity, the writer's move and
    /// the fault's effect are judged whatever is stated.
    #[serde(default)]
    pub targets: Targets,
    #[serde(default)]
    pub cleanup: Cleanup,
}

tagged_enum! {
    /// The system under test.
    #[derive(Clone, Debug, Serialize, JsonSchema)]
    #[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum Target {
        /// A primary and streaming standbys that firedrill builds on loopback and removes afterwards.
        PostgresSandbox(SandboxSpec),
        /// An existing PostgreSQL cluster (Patroni, pg_auto_failover, repmgr, a managed service).
        Postgres(ExistingSpec),
        /// An RDS DB instance or an Aurora (or Multi-AZ DB) cluster: faults go through AWS's API,
        /// probes and the workload through `dsn_env`, the endpoint clients use.
        AwsRds(AwsRdsSpec),
        /// The resources AWS Backup protects (a `backup_health` drill): read only.
        AwsBackup(AwsBackupSpec),
        /// A Patroni cluster firedrill builds on loopback (one etcd, `members` Patroni members
        /// with their PostgreSQL) and removes afterwards: Patroni, not firedrill, fails over.
        PatroniSandbox(PatroniSandboxSpec),
        /// An existing Patroni cluster: topology and faults through its REST API, probes and the
        /// workload through the application's DSN.
        Patroni(PatroniSpec),
        /// A pgBackRest repository (a `posture` drill): read with `pgbackrest info` and its
        /// configuration file.
        Pgbackrest(PgbackrestSpec),
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgbackrestSpec {
    pub stanza: String,
    /// pgBackRest's configuration file. Default: pgBackRest's own
    /// (`/etc/pgbackrest/pgbackrest.conf`).
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Which repository (`repoN-*` options; 1 to 256).
    #[serde(default = "repo_one")]
    pub repo: u16,
    /// The `pgbackrest` program. Default: `$FIREDRILL_PGBACKREST`, then `PATH`.
    #[serde(default)]
    pub pgbackrest: Option<PathBuf>,
    /// Unprivileged user `pgbackrest` runs as when firedrill runs as root (the repository's
    /// owner). Default: `postgres`.
    #[serde(default)]
    pub run_as: Option<String>,
}

fn repo_one() -> u16 {
    1
}

/// What a posture drill reads besides its target.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Posture {
    /// How far back AWS Backup copy jobs count as copies in another region.
    #[serde(default = "default_posture_window")]
    pub window: Span,
}

fn default_posture_window() -> Span {
    Span::from_days(35)
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsBackupSpec {
    /// ARNs of the resources to check; default every resource AWS Backup protects in the
    /// region (`ListProtectedResources`).
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

/// What a backup-health drill looks at. `targets.rpo` is the largest recovery-point age
/// allowed (the RPO exposure if the resource were lost now).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupHealth {
    /// How far back backup jobs are read (`ListBackupJobs`).
    #[serde(default = "default_health_window")]
    pub window: Dur,
    /// How often the backup plan runs: a resource without a completed job in any such span of
    /// the window (plus `grace`) has a missing job.
    #[serde(default)]
    pub expect_every: Option<Dur>,
    /// Slack for a job that starts late in its backup window.
    #[serde(default = "default_health_grace")]
    pub grace: Dur,
}

/// Which DB instances a fleet drill restores, and how many at once.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// Instances carrying every one of these tags (key: value) are selected.
    pub tags: BTreeMap<String, String>,
    /// Drills running at once (each has its own temporary instance, so this bounds the cost).
    #[serde(default = "default_fleet_concurrency")]
    pub concurrency: u16,
    /// At most one drill starts per this interval, to stay under the account's API rate limits.
    #[serde(default = "default_fleet_start_every")]
    pub start_every: Dur,
    /// Refuse to run when more instances than this are selected (a tag set too wide).
    #[serde(default = "default_fleet_max")]
    pub max_instances: u16,
}

fn default_fleet_concurrency() -> u16 {
    2
}

fn default_fleet_start_every() -> Dur {
    Dur::from_secs(10)
}

fn default_fleet_max() -> u16 {
    100
}

fn default_health_window() -> Dur {
    Dur::from_secs(7 * 86400)
}

fn default_health_grace() -> Dur {
    Dur::from_secs(3600)
}

/// `the tag(s) k=v, k2=v2`, as a fleet's messages and summary name its selection.
pub fn describe_tags(tags: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("the tag(s) {}", pairs.join(", "))
}

impl Target {
    /// The environment variable holding the clients' DSN, for targets firedrill does not build.
    pub fn dsn_env(&self) -> Option<&str> {
        match self {
            Target::PostgresSandbox(_) => None,
            Target::Postgres(t) => Some(&t.dsn_env),
            Target::AwsRds(t) => t.dsn_env.as_deref(),
            Target::Patroni(t) => Some(&t.dsn_env),
            Target::AwsBackup(_) | Target::PatroniSandbox(_) | Target::Pgbackrest(_) => None,
        }
    }

    /// Another endpoint for AWS, for the AWS targets.
    pub fn endpoint_url(&self) -> Option<&str> {
        match self {
            Target::AwsRds(t) => t.endpoint_url.as_deref(),
            Target::AwsBackup(t) => t.endpoint_url.as_deref(),
            Target::PostgresSandbox(_)
            | Target::Postgres(_)
            | Target::PatroniSandbox(_)
            | Target::Patroni(_)
            | Target::Pgbackrest(_) => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Target::PostgresSandbox(_) => "postgres-sandbox",
            Target::Postgres(_) => "postgres",
            Target::AwsRds(_) => "aws-rds",
            Target::AwsBackup(_) => "aws-backup",
            Target::PatroniSandbox(_) => "patroni-sandbox",
            Target::Patroni(_) => "patroni",
            Target::Pgbackrest(_) => "pgbackrest",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxSpec {
    /// Number of streaming standbys, named `standby1`, `standby2`, ...
    #[serde(default = "one")]
    pub standbys: u8,
    #[serde(default)]
    pub replication: Replication,
    /// Extra `postgresql.conf` settings for every node, e.g. `shared_buffers: 128MB`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Directory holding `initdb`, `pg_ctl`, `postgres`, `pg_basebackup`.
    /// Default: `$FIREDRILL_PG_BINDIR`, then `pg_config --bindir`, then `PATH`.
    #[serde(default)]
    pub bin_dir: Option<PathBuf>,
    /// Unprivileged user PostgreSQL runs as when firedrill runs as root. Default: `postgres`.
    #[serde(default)]
    pub run_as: Option<String>,
    /// Parent directory of the sandbox's temporary directory. Default: the system temp dir.
    #[serde(default)]
    pub work_dir: Option<PathBuf>,
    /// SQL run on the primary once the sandbox is up (a game day's data), before its base
    /// backup.
    #[serde(default)]
    pub seed_sql: Vec<String>,
    /// Archive the primary's WAL into `<sandbox>/wal-archive` and take a base backup into
    /// `<sandbox>/base-backup` once it is up and seeded: what an operator restores from in a
    /// game day (`{{sandbox.wal_archive}}`, `{{sandbox.base_backup}}` in instructions).
    #[serde(default)]
    pub wal_archive: bool,
    /// Named zones and the nodes in each (`a: [primary]`): each zone a network namespace with
    /// its own address, joined to the others by a bridge, so that `zone-outage` and
    /// `partition` faults cut links. Every node in exactly one zone. Needs root or
    /// CAP_NET_ADMIN. Default: none (every node on loopback).
    #[serde(default)]
    pub zones: BTreeMap<String, Vec<String>>,
    /// The zones the clients run in, one writer group in each (writers dealt in turn); the
    /// probes run in the first. Default: a zone `clients` of their own.
    #[serde(default)]
    pub clients: Vec<String>,
}

impl SandboxSpec {
    /// The network of a sandbox with zones; `None` on loopback.
    pub fn zone_layout(&self) -> Option<super::zones::ZoneLayout> {
        super::zones::ZoneLayout::of(&self.zones, &self.clients)
    }
}

fn one() -> u8 {
    1
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Replication {
    /// Commits are acknowledged once written on the primary; standbys may lag.
    #[default]
    Async,
    /// Commits are acknowledged only once a standby has flushed them (`synchronous_commit = on`).
    Synchronous,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExistingSpec {
    /// Name of the environment variable holding the libpq DSN. Use a multi-host DSN with
    /// `target_session_attrs=read-write` so that probes follow the primary as an application would.
    pub dsn_env: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsRdsSpec {
    /// DB instance identifier (for `rds-failover`); give this or `cluster`.
    #[serde(default)]
    pub instance: Option<String>,
    /// DB cluster identifier (for `aurora-failover`).
    #[serde(default)]
    pub cluster: Option<String>,
    /// Name of the environment variable holding the DSN of the endpoint clients use (the
    /// instance's or the cluster's writer endpoint). Failover and restore drills need it; a
    /// posture drill only reads AWS.
    #[serde(default)]
    pub dsn_env: Option<String>,
    /// Where and as whom to call AWS; credentials come from the standard chain (environment,
    /// profile, SSO, `credential_process`, container or instance role), never the scenario.
    #[serde(default)]
    pub region: Option<String>,
    /// A profile of `~/.aws/config`.
    #[serde(default)]
    pub profile: Option<String>,
    /// Another endpoint for every AWS service (a VPC endpoint; moto server in tests).
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

/// Writers that record every acknowledged write, so lost writes can be counted exactly.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Concurrent writer connections; 0 disables the workload.
    #[serde(default = "default_connections")]
    pub connections: u16,
    /// Time allowed for one write before it counts as failed (and in doubt).
    #[serde(default = "default_write_timeout")]
    pub timeout: Dur,
    /// Ledger table name (created if missing, in the target's database).
    #[serde(default = "default_ledger_table")]
    pub table: String,
    /// Keep this drill's ledger and probe rows in the target's database after verification.
    /// By default they are deleted (by run id) once the ledger is checked, unless `cleanup:
    /// never` (or `--keep`) keeps everything for forensics.
    #[serde(default)]
    pub keep_rows: bool,
}

fn default_connections() -> u16 {
    4
}
fn default_write_timeout() -> Dur {
    Dur::from_secs(2)
}
fn default_ledger_table() -> String {
    "firedrill_ledger".into()
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            connections: default_connections(),
            timeout: default_write_timeout(),
            table: default_ledger_table(),
            keep_rows: false,
        }
    }
}

/// Write and read probes, each on its own connection, through the application's DSN.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Probes {
    /// Time between probe starts.
    #[serde(default = "default_interval")]
    pub interval: Dur,
    /// Time allowed for one probe (connect included) before it counts as failed.
    #[serde(default = "default_probe_timeout")]
    pub timeout: Dur,
    /// How long a probe that outlived its timeout is waited for before its connection is
    /// dropped and a new one opened. A hung server answers later (and new connections would
    /// only pile into its backlog); across a lost link nothing ever answers, so a zone drill
    /// sets this to its timeout, as an application's statement timeout would. Default: 10 ×
    /// `timeout`.
    #[serde(default)]
    pub abandon_after: Option<Dur>,
}

impl Probes {
    pub fn abandon_after(&self) -> std::time::Duration {
        self.abandon_after
            .map_or(self.timeout.get() * 10, |d| d.get().max(self.timeout.get()))
    }
}

fn default_interval() -> Dur {
    Dur::from_millis(10)
}
fn default_probe_timeout() -> Dur {
    Dur::from_secs(1)
}

impl Default for Probes {
    fn default() -> Self {
        Probes {
            interval: default_interval(),
            timeout: default_probe_timeout(),
            abandon_after: None,
        }
    }
}

/// The steady-state hypothesis, checked over `duration` before the fault; a drill whose system is
/// not healthy to begin with is aborted, not failed.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SteadyState {
    #[serde(default = "default_steady_duration")]
    pub duration: Dur,
    /// Minimum share of successful probes, in percent.
    #[serde(default = "hundred")]
    pub min_success_pct: f64,
    /// Maximum p99 probe latency.
    #[serde(default)]
    pub max_p99_latency: Option<Dur>,
}

fn default_steady_duration() -> Dur {
    Dur::from_secs(2)
}
fn hundred() -> f64 {
    100.0
}

impl Default for SteadyState {
    fn default() -> Self {
        SteadyState {
            duration: default_steady_duration(),
            min_success_pct: 100.0,
            max_p99_latency: None,
        }
    }
}

/// How long to watch after the fault, and what counts as recovered.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Observe {
    /// Probing continues this long after the fault instant.
    #[serde(default = "default_observe")]
    pub duration: Dur,
    /// Recovery counts from the first successful probe after which probes stay successful for
    /// this long.
    #[serde(default = "default_stability")]
    pub stability: Dur,
    /// Whether the fault must be felt: with `true` (the default) a fault after which no probe
    /// failed within the window fails the drill ("no effect observed", target `fault_effect`);
    /// `false` for a drill that proves the opposite (a replica lost, a switchover without an
    /// outage).
    #[serde(default = "default_true")]
    pub expect_outage: bool,
}

fn default_true() -> bool {
    true
}

fn default_observe() -> Dur {
    Dur::from_secs(10)
}
fn default_stability() -> Dur {
    Dur::from_secs(1)
}

impl Default for Observe {
    fn default() -> Self {
        Observe {
            duration: default_observe(),
            stability: default_stability(),
            expect_outage: true,
        }
    }
}

/// What the drill must prove. Each target stated becomes one pass/fail verdict.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Recovery time objective: fault to sustained recovery of the write probe.
    #[serde(default)]
    pub rto: Option<Dur>,
    /// Recovery point objective: the span of acknowledged writes lost.
    #[serde(default)]
    pub rpo: Option<Dur>,
    /// Acknowledged writes that may be missing after recovery.
    #[serde(default)]
    pub max_lost_writes: Option<u64>,
    /// Sandboxes with zones: the longest time two servers may take writes at once (`0s`
    /// demands none), measured from the writes each server acknowledged.
    #[serde(default)]
    pub max_split_brain: Option<Dur>,
    /// Minimum share of successful write probes over the observation window, in percent.
    #[serde(default)]
    pub min_availability_pct: Option<f64>,
    /// Restore drills: every table's row count and content checksum must equal the source's at
    /// the recovery point.
    #[serde(default)]
    pub checksums: Option<ChecksumTarget>,
    /// Failover drills: whether another server must take the writes (`required`), the same one
    /// must (`forbidden`: a restart in place), or either will do (`any`). Default `required`
    /// for a `promote` recovery and the `rds-failover`/`aurora-failover` faults, else `any`.
    #[serde(default)]
    pub failover: Option<FailoverTarget>,
    /// Posture drills: every backup (and an RDS instance's storage) encrypted at rest.
    #[serde(default)]
    pub encrypted: Option<bool>,
    /// Posture drills: every backup in an AWS Backup vault locked in compliance mode.
    #[serde(default)]
    pub immutable: Option<bool>,
    /// Posture drills: no backup kept shorter than this (AWS Backup lifecycle, RDS backup
    /// retention period, pgBackRest `retention-full` in days).
    #[serde(default)]
    pub min_retention: Option<Span>,
    /// Posture drills: other regions each resource's backups were copied to in the window
    /// (AWS Backup copy jobs, RDS automated-backup replication).
    #[serde(default)]
    pub copies_in_other_region: Option<u32>,
    /// Posture drills: the RDS instance cannot be deleted while deletion protection is on.
    #[serde(default)]
    pub deletion_protection: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FailoverTarget {
    Required,
    Forbidden,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChecksumTarget {
    Match,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Environment {
    Production,
    Staging,
    Development,
    Test,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Cleanup {
    /// Remove everything the drill built, whatever the outcome.
    #[default]
    Always,
    /// Keep the sandbox for forensics when the drill fails or aborts.
    OnSuccess,
    /// Keep the sandbox (its directory is printed); you remove it.
    Never,
}
