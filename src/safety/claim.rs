//! Claiming a target before a drill touches it: its lock (one drill per target), the refusal of
//! a target whose last drill left effects not undone, and this drill's journal. Every drill
//! passes here, a single `run` as well as each member of a fleet.
//!
//! Boundary: decides and returns typed errors and warnings; the CLI prints them.

use std::path::Path;

use super::journal::{self, Journal};
use super::lock::{self, StateDir, TargetLock};
use crate::error::{EXIT_ENVIRONMENT, EXIT_REFUSED, EnvError};
use crate::scenario::LoadedScenario;
use std::str::FromStr;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tokio_postgres::Config;

use super::recover;
use crate::dsn::describe_hosts;
use crate::scenario::Target;
use crate::template::TemplateCache;

/// Held until the drill ends: the lock is released when it drops.
pub struct Claim {
    pub lock: TargetLock,
    pub journal: Journal,
    /// Other drills' journals with effects not undone, on other targets: worth a warning.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("{0}; one drill at a time per target; nothing was touched")]
    Busy(String),
    #[error(
        "target {target} has an unrecovered journal {journal} (drill {run_id} of {scenario}, \
         {pending} effect(s) not undone); run `firedrill recover {journal}` first; nothing was \
         touched"
    )]
    Unrecovered {
        target: String,
        journal: String,
        run_id: String,
        scenario: String,
        pending: usize,
    },
    #[error(transparent)]
    Env(#[from] EnvError),
}

impl ClaimError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ClaimError::Busy(_) | ClaimError::Unrecovered { .. } => EXIT_REFUSED,
            ClaimError::Env(_) => EXIT_ENVIRONMENT,
        }
    }
}

/// Takes the target's lock, refuses a target with an unrecovered journal, and opens this
/// drill's journal in the state directory.
pub fn claim(
    state: &StateDir,
    file: &Path,
    loaded: &LoadedScenario,
    session: &Session,
) -> Result<Claim, ClaimError> {
    let s = &loaded.scenario;
    required_env(&s.target)?;
    // A posture drill only reads: it shares its target with any other drill.
    let target = match lock_key(&s.target) {
        Some(key) if s.posture.is_none() => key,
        Some(_) => format!("read-only/{}", session.run_id),
        None => format!("postgres-sandbox/{}", session.run_id),
    };
    let holder = format!(
        "drill {} of {} (pid {}) since {}",
        session.run_id,
        s.name,
        std::process::id(),
        journal::now()
    );
    let lock = lock::acquire(state, &target, &holder).map_err(|e| match e {
        e @ lock::LockError::Busy { .. } => ClaimError::Busy(e.to_string()),
        lock::LockError::Env(e) => ClaimError::Env(e),
    })?;
    let mut warnings = Vec::new();
    for r in recover::pending(state) {
        let (run_id, scenario, _, _) = r.started();
        let pending = r.pending().len();
        if r.target() == target {
            return Err(ClaimError::Unrecovered {
                target,
                journal: r.path.display().to_string(),
                run_id: run_id.to_owned(),
                scenario: scenario.to_owned(),
                pending,
            });
        } else if !lock::is_held(state, r.target()) {
            warnings.push(format!(
                "journal {} (drill {run_id} of {scenario}) has {pending} effect(s) not undone; \
                 `firedrill recover` takes them back",
                r.path.display()
            ));
        }
    }
    let stamp = humantime::format_rfc3339_seconds(session.started_at)
        .to_string()
        .replace(':', "-");
    let path = state
        .journals()
        .join(format!("{stamp}-{}.jsonl", session.run_id));
    let journal = Journal::create(
        &path,
        journal::Entry::Started {
            at: journal::now(),
            run_id: session.run_id.clone(),
            scenario: s.name.clone(),
            file: file.display().to_string(),
            target,
            pid: std::process::id(),
        },
    )?;
    Ok(Claim {
        lock,
        journal,
        warnings,
    })
}

/// One run of a scenario: its id, the journal its side effects are recorded in, and where
/// sandbox templates are cached.
pub struct Session {
    pub run_id: String,
    pub started_at: SystemTime,
    pub journal: Journal,
    pub templates: Option<TemplateCache>,
    /// A game day's people: who acts at this terminal, and whether `firedrill step` can reach
    /// the drill. `None`: nobody (a library caller), so only conditions end its steps.
    pub operator: Option<crate::operator::Setup>,
}

impl Session {
    /// A new run id, no journal (see [`crate::safety::journal`] for the CLI's) and no template
    /// cache.
    pub fn new(loaded: &LoadedScenario) -> Session {
        let started_at = SystemTime::now();
        Session {
            run_id: new_run_id(&loaded.sha256, started_at),
            started_at,
            journal: Journal::disabled(),
            templates: None,
            operator: None,
        }
    }
}

/// What a target lock is named after: the database an existing target's DSN reaches (hosts,
/// ports, database; never the user or password). A sandbox is built by its own drill, so no
/// other drill can share it: `None`.
pub fn lock_key(target: &Target) -> Option<String> {
    // An existing cluster is known by where its DSN leads; what firedrill builds is its own.
    let dsn_env = match target {
        Target::AwsRds(t) => {
            return Some(format!(
                "aws-rds:{}:{}",
                t.region.as_deref().unwrap_or("default-region"),
                t.instance.as_deref().or(t.cluster.as_deref()).unwrap_or("")
            ));
        }
        Target::Postgres(spec) => &spec.dsn_env,
        Target::Patroni(spec) => &spec.dsn_env,
        Target::PostgresSandbox(_)
        | Target::PatroniSandbox(_)
        | Target::AwsBackup(_)
        | Target::Pgbackrest(_) => {
            return None;
        }
    };
    let config = std::env::var(dsn_env)
        .ok()
        .and_then(|dsn| Config::from_str(&dsn).ok());
    Some(match config {
        Some(c) => format!(
            "postgres://{}/{}",
            describe_hosts(&c),
            c.get_dbname().or(c.get_user()).unwrap_or("")
        ),
        // The drill itself reports a bad DSN.
        None => format!("postgres:${dsn_env}"),
    })
}

/// The environment variables a target is reached through must be set before anything is
/// locked or journaled: a run refused for a missing one leaves no trace.
fn required_env(target: &Target) -> Result<(), EnvError> {
    let (dsn_env, api_env) = match target {
        Target::Postgres(spec) => (Some(&spec.dsn_env), None),
        Target::AwsRds(spec) => (spec.dsn_env.as_ref(), None),
        Target::Patroni(spec) => (Some(&spec.dsn_env), Some(&spec.api_env)),
        Target::PostgresSandbox(_)
        | Target::PatroniSandbox(_)
        | Target::AwsBackup(_)
        | Target::Pgbackrest(_) => (None, None),
    };
    if let Some(name) = dsn_env
        && std::env::var_os(name).is_none()
    {
        return Err(EnvError::MissingDsn { name: name.clone() });
    }
    if let Some(name) = api_env
        && std::env::var_os(name).is_none()
    {
        return Err(EnvError::MissingVar {
            name: name.clone(),
            key: "target.api_env",
            what: "the Patroni members' REST API URLs, comma-separated",
        });
    }
    Ok(())
}

fn new_run_id(scenario_sha: &str, at: SystemTime) -> String {
    let nanos = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let digest = Sha256::digest(format!("{scenario_sha}/{nanos}/{}", std::process::id()));
    hex::encode(&digest[..8])
}
