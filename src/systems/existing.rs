//! An existing PostgreSQL (a Patroni cluster, a managed primary) as a drill target: reached
//! through the DSN the application uses, and broken and recovered only by the operator's own
//! commands, each journaled with its undo before it runs.

use std::time::Duration;

use tokio_postgres::Config;

use crate::dsn::dsn_config;
use crate::error::EnvError;
use crate::process::{run_command, run_command_marked};
use crate::safety::journal::{EffectId, Journal, Undo};
use crate::scenario::{Argv, ExistingSpec, shell_words};

pub struct Existing {
    config: Config,
    pub description: String,
}

impl Existing {
    /// Reads the DSN from the environment variable the scenario names (libpq's variables fill
    /// what it leaves out); nothing is contacted yet.
    pub fn build(spec: &ExistingSpec) -> Result<Existing, EnvError> {
        let (config, via) = dsn_config(&spec.dsn_env)?;
        Ok(Existing {
            description: format!("existing PostgreSQL via {via}"),
            config,
        })
    }

    pub fn client_config(&self, timeout: Duration) -> Config {
        let mut c = self.config.clone();
        c.connect_timeout(timeout);
        c
    }

    /// The `command` fault: journaled with its undo, run with its deadline; a command that
    /// fails may have half-applied, so its undo runs before the error is reported. What it did,
    /// the undo still owed, and when it printed the effect marker.
    pub async fn fault_command(
        &self,
        run: &Argv,
        undo: Option<&Argv>,
        timeout: Duration,
        journal: &Journal,
    ) -> Result<(String, Option<(Undo, EffectId)>, Option<std::time::Instant>), EnvError> {
        let undo = undo.map(|u| Undo::Command { argv: u.0.clone() });
        let id = journal.effect(
            format!("run fault command {}", shell_words(run)),
            undo.clone(),
        )?;
        let printed = run_command_marked("fault command", run, timeout).await;
        if let Err(e) = printed {
            if let Some(u) = undo {
                match crate::safety::undo::apply(&u, Duration::from_secs(60)).await {
                    Ok(how) => journal.undone(id, how),
                    Err(undo_err) => {
                        return Err(EnvError::Database(format!(
                            "{e}; its undo failed too: {undo_err}; run `firedrill recover`"
                        )));
                    }
                }
            }
            return Err(e);
        }
        let (printed, at) = printed.unwrap_or_default();
        Ok((
            format!("ran {}{}", shell_words(run), said(&printed)),
            undo.map(|u| (u, id)),
            at,
        ))
    }

    /// The `command` recovery; says what it ran.
    pub async fn recovery_command(
        &self,
        run: &Argv,
        timeout: Duration,
    ) -> Result<String, EnvError> {
        let printed = run_command("recovery command", run, timeout).await?;
        Ok(format!("ran {}{}", shell_words(run), said(&printed)))
    }
}

/// What a command printed, for its timeline entry: its last lines, one line.
fn said(printed: &str) -> String {
    if printed.is_empty() {
        String::new()
    } else {
        format!(
            "; it printed: {}",
            printed.lines().collect::<Vec<_>>().join(" | ")
        )
    }
}
