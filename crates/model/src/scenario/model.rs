//! The scenario format as written in YAML: plain data, deserialized strictly (unknown keys are
//! errors) and checked by [`super::validate`] before anything is built from it.
//!
//! Every component is a `type:`-tagged enum so that a new target, fault or recovery is one new
//! variant, and the JSON Schema (`firedrill schema`) lists exactly what is accepted.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Dur;
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
    /// Which backup to restore and how to prove it (restore drills, instead of fault and
    /// recovery).
    #[serde(default)]
    pub restore: Option<Restore>,
    /// Read-only check of AWS Backup (a drill of its own, with an `aws-backup` target): the age
    /// of each resource's newest recovery point, and failed or missing backup jobs in a window.
    #[serde(default)]
    pub backup_health: Option<BackupHealth>,
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
    }
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
            Target::AwsRds(t) => Some(&t.dsn_env),
            Target::AwsBackup(_) => None,
        }
    }

    /// Another endpoint for AWS, for the AWS targets.
    pub fn endpoint_url(&self) -> Option<&str> {
        match self {
            Target::AwsRds(t) => t.endpoint_url.as_deref(),
            Target::AwsBackup(t) => t.endpoint_url.as_deref(),
            Target::PostgresSandbox(_) | Target::Postgres(_) => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Target::PostgresSandbox(_) => "postgres-sandbox",
            Target::Postgres(_) => "postgres",
            Target::AwsRds(_) => "aws-rds",
            Target::AwsBackup(_) => "aws-backup",
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
    /// instance's or the cluster's writer endpoint).
    pub dsn_env: String,
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

tagged_enum! {
    #[derive(Clone, Debug, Serialize, JsonSchema)]
    #[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum Fault {
        /// SIGKILL every process of a node, as a crashed host would.
        Kill { node: String },
        /// Shut a node down with `pg_ctl stop` semantics.
        Stop {
            node: String,
            #[serde(default)]
            mode: StopMode,
        },
        /// SIGSTOP every process of a node for `duration`, then SIGCONT: a hung host.
        Pause { node: String, duration: Dur },
        /// Run an operator's command (e.g. `patronictl failover --force`); `undo` runs on abort.
        Command {
            run: Argv,
            #[serde(default)]
            undo: Option<Argv>,
            #[serde(default = "default_command_timeout")]
            timeout: Dur,
        },
        /// RDS Multi-AZ instance failover: `RebootDBInstance` with `ForceFailover` (RDS documents
        /// 60-120 s).
        RdsFailover,
        /// Aurora (or Multi-AZ DB cluster) failover: `FailoverDBCluster`, to `target_instance` if
        /// given (RDS documents under 35 s for a Multi-AZ DB cluster).
        AuroraFailover {
            #[serde(default)]
            target_instance: Option<String>,
        },
        /// An AWS FIS experiment from an existing template (`template_id`) or one described here
        /// (`template`); stopped on abort, Ctrl-C, a guardrail, or by `firedrill recover`.
        FisExperiment {
            #[serde(default)]
            template_id: Option<String>,
            #[serde(default)]
            template: Option<FisTemplate>,
            /// How often the experiment's state is read into the timeline.
            #[serde(default = "default_fis_poll")]
            poll: Dur,
        },
    }
}

fn default_fis_poll() -> Dur {
    Dur::from_secs(2)
}

/// An FIS experiment template, as `CreateExperimentTemplate` takes it.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FisTemplate {
    #[serde(default)]
    pub description: String,
    /// The IAM role FIS assumes to act.
    pub role_arn: String,
    pub targets: BTreeMap<String, FisTarget>,
    pub actions: BTreeMap<String, FisAction>,
    /// CloudWatch alarm ARNs that stop the experiment (FIS's own stop conditions).
    #[serde(default)]
    pub stop_alarms: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FisTarget {
    /// e.g. `aws:rds:db`, `aws:ec2:subnet`.
    pub resource_type: String,
    #[serde(default)]
    pub resource_arns: Vec<String>,
    #[serde(default)]
    pub resource_tags: BTreeMap<String, String>,
    /// `ALL`, `COUNT(n)`, `PERCENT(n)`.
    #[serde(default = "default_selection")]
    pub selection_mode: String,
}

fn default_selection() -> String {
    "ALL".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FisAction {
    /// e.g. `aws:rds:reboot-db-instances`, `aws:network:disrupt-connectivity`.
    pub action_id: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Action target key (e.g. `DBInstances`, `Subnets`) -> a name under `targets`.
    #[serde(default)]
    pub targets: BTreeMap<String, String>,
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "kill",
            Fault::Stop { .. } => "stop",
            Fault::Pause { .. } => "pause",
            Fault::Command { .. } => "command",
            Fault::RdsFailover => "rds-failover",
            Fault::AuroraFailover { .. } => "aurora-failover",
            Fault::FisExperiment { .. } => "fis-experiment",
        }
    }
    pub fn node(&self) -> Option<&str> {
        match self {
            Fault::Kill { node } | Fault::Stop { node, .. } | Fault::Pause { node, .. } => {
                Some(node)
            }
            Fault::Command { .. }
            | Fault::RdsFailover
            | Fault::AuroraFailover { .. }
            | Fault::FisExperiment { .. } => None,
        }
    }

    /// How often the fault's own progress is worth reading into the timeline (an FIS
    /// experiment's state); `None` for faults without progress of their own.
    pub fn observe_every(&self) -> Option<std::time::Duration> {
        match self {
            Fault::FisExperiment { poll, .. } => Some(poll.get()),
            Fault::Kill { .. }
            | Fault::Stop { .. }
            | Fault::Pause { .. }
            | Fault::Command { .. }
            | Fault::RdsFailover
            | Fault::AuroraFailover { .. } => None,
        }
    }

    /// The one compatibility rule: the target kind this fault applies to. Validation refuses
    /// any other pairing, and the driver names the same kind if one slips through.
    pub fn target_kind(&self) -> &'static str {
        match self {
            Fault::Kill { .. } | Fault::Stop { .. } | Fault::Pause { .. } => "postgres-sandbox",
            Fault::Command { .. } => "postgres",
            Fault::RdsFailover | Fault::AuroraFailover { .. } | Fault::FisExperiment { .. } => {
                "aws-rds"
            }
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StopMode {
    /// SIGINT: abort transactions, checkpoint, exit.
    #[default]
    Fast,
    /// SIGQUIT: exit at once, crash recovery at next start.
    Immediate,
}

fn default_command_timeout() -> Dur {
    Dur::from_secs(60)
}

tagged_enum! {
    #[derive(Clone, Debug, Serialize, JsonSchema)]
    #[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum Recovery {
        /// firedrill acts as the HA controller: promote a standby `after` the fault (the detection
        /// delay a real controller would have), and repoint the other standbys to it.
        Promote {
            node: String,
            #[serde(default)]
            after: Dur,
        },
        /// Do nothing: the fault ends by itself (a pause) or an external controller acts.
        Wait,
        /// Run an operator's command `after` the fault.
        Command {
            run: Argv,
            #[serde(default)]
            after: Dur,
            #[serde(default = "default_command_timeout")]
            timeout: Dur,
        },
    }
}

impl Recovery {
    pub fn kind(&self) -> &'static str {
        match self {
            Recovery::Promote { .. } => "promote",
            Recovery::Wait => "wait",
            Recovery::Command { .. } => "command",
        }
    }

    /// The target kind this recovery applies to (`None`: any, as `wait`); the same rule as
    /// [`Fault::target_kind`].
    pub fn target_kind(&self) -> Option<&'static str> {
        match self {
            Recovery::Promote { .. } => Some("postgres-sandbox"),
            Recovery::Command { .. } => Some("postgres"),
            Recovery::Wait => None,
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
    /// Minimum share of successful write probes over the observation window, in percent.
    #[serde(default)]
    pub min_availability_pct: Option<f64>,
    /// Restore drills: every table's row count and content checksum must equal the source's at
    /// the recovery point.
    #[serde(default)]
    pub checksums: Option<ChecksumTarget>,
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

tagged_enum! {
    /// A stop condition, checked every probe interval from the start of the steady state to the end
    /// of the observation.
    #[derive(Clone, Debug, Serialize, JsonSchema)]
    #[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum Guardrail {
        /// More than `above_pct` percent of the probes that ended in the last `for` failed.
        ErrorRate {
            #[serde(default)]
            probe: ProbeSide,
            above_pct: f64,
            #[serde(rename = "for")]
            window: Dur,
        },
        /// The p99 latency of the probes that ended in the last `for` (a failed probe counts at the
        /// time it took) is above `above`.
        P99Latency {
            #[serde(default)]
            probe: ProbeSide,
            above: Dur,
            #[serde(rename = "for")]
            window: Dur,
        },
        /// An external check (a health endpoint, an alert query) exits non-zero at every run for
        /// `for`. It runs every `every`, each run limited to `timeout` (which counts as non-zero).
        Command {
            run: Argv,
            #[serde(rename = "for")]
            window: Dur,
            #[serde(default = "default_guard_every")]
            every: Dur,
            #[serde(default = "default_guard_timeout")]
            timeout: Dur,
        },
        /// A CloudWatch alarm (the one that pages people) is in `ALARM` at every read for `for`;
        /// read every `every` (`for: 0s` trips at the first read in ALARM).
        CloudwatchAlarm {
            alarm: String,
            #[serde(rename = "for", default)]
            window: Dur,
            #[serde(default = "default_alarm_every")]
            every: Dur,
            #[serde(default)]
            region: Option<String>,
            #[serde(default)]
            profile: Option<String>,
            #[serde(default)]
            endpoint_url: Option<String>,
        },
    }
}

fn default_alarm_every() -> Dur {
    Dur::from_secs(5)
}

fn default_guard_every() -> Dur {
    Dur::from_millis(500)
}
fn default_guard_timeout() -> Dur {
    Dur::from_secs(5)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeSide {
    #[default]
    Write,
    Read,
}

impl Guardrail {
    pub fn window(&self) -> std::time::Duration {
        match self {
            Guardrail::ErrorRate { window, .. }
            | Guardrail::P99Latency { window, .. }
            | Guardrail::Command { window, .. }
            | Guardrail::CloudwatchAlarm { window, .. } => window.get(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Guardrail::ErrorRate {
                probe,
                above_pct,
                window,
            } => format!(
                "{} probe errors above {above_pct}% for {window}",
                probe.label()
            ),
            Guardrail::P99Latency {
                probe,
                above,
                window,
            } => format!("{} probe p99 above {above} for {window}", probe.label()),
            Guardrail::Command { run, window, .. } => {
                format!(
                    "`{}` failing for {window}",
                    crate::scenario::shell_words(run)
                )
            }
            Guardrail::CloudwatchAlarm { alarm, window, .. } => {
                format!("CloudWatch alarm {alarm} in ALARM for {window}")
            }
        }
    }
}

impl ProbeSide {
    pub fn label(self) -> &'static str {
        match self {
            ProbeSide::Write => "write",
            ProbeSide::Read => "read",
        }
    }
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

/// A command as a list, program first: `[kill, -9, 1234]`. Numbers and booleans are taken as
/// the text they are written as, since YAML would otherwise read `-9` as an integer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Argv(pub Vec<String>);

/// An argv as a shell would read it back: safe words bare, the rest single-quoted.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl std::ops::Deref for Argv {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            S(String),
            I(i64),
            F(f64),
            B(bool),
        }
        let items = Vec::<Scalar>::deserialize(d)?;
        Ok(Argv(
            items
                .into_iter()
                .map(|s| match s {
                    Scalar::S(s) => s,
                    Scalar::I(i) => i.to_string(),
                    Scalar::F(f) => f.to_string(),
                    Scalar::B(b) => b.to_string(),
                })
                .collect(),
        ))
    }
}

impl JsonSchema for Argv {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Argv".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "array",
            "description": "Program first, then its arguments; no shell is involved.",
            "items": {"type": ["string", "number", "boolean"]},
            "minItems": 1
        })
    }
}
