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

/// The scenario format version this build reads.
pub const SCENARIO_VERSION: u32 = 1;

/// A drill: what to break, how it should recover, and what that must prove.
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
    pub target: Target,
    #[serde(default)]
    pub workload: Workload,
    #[serde(default)]
    pub probes: Probes,
    #[serde(default)]
    pub steady_state: SteadyState,
    pub fault: Fault,
    pub recovery: Recovery,
    #[serde(default)]
    pub observe: Observe,
    pub targets: Targets,
    #[serde(default)]
    pub cleanup: Cleanup,
}

/// The system under test.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Target {
    /// A primary and streaming standbys that firedrill builds on loopback and removes afterwards.
    PostgresSandbox(SandboxSpec),
    /// An existing PostgreSQL cluster (Patroni, pg_auto_failover, repmgr, a managed service).
    Postgres(ExistingSpec),
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

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
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
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "kill",
            Fault::Stop { .. } => "stop",
            Fault::Pause { .. } => "pause",
            Fault::Command { .. } => "command",
        }
    }
    pub fn node(&self) -> Option<&str> {
        match self {
            Fault::Kill { node } | Fault::Stop { node, .. } | Fault::Pause { node, .. } => {
                Some(node)
            }
            Fault::Command { .. } => None,
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

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
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

impl Recovery {
    pub fn kind(&self) -> &'static str {
        match self {
            Recovery::Promote { .. } => "promote",
            Recovery::Wait => "wait",
            Recovery::Command { .. } => "command",
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
