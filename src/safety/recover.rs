//! Takes back what a drill left behind: applies the undo of every pending effect in a journal,
//! newest first, and records each in the journal. Used by the drill itself (to end a fault) and
//! by `firedrill recover` after a drill was killed.
//!
//! How each undo is applied is [`super::undo`]'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::undo::apply;
use crate::error::EnvError;
use crate::safety::journal::{Actor, Entry, Read, Undo};
use crate::safety::lock::{self, StateDir};

/// What `recover` did with one journal.
#[derive(Debug, Default)]
pub struct Recovered {
    pub journal: PathBuf,
    pub run_id: String,
    pub scenario: String,
    /// Each effect taken back: what it was, and how.
    pub undone: Vec<(String, String)>,
    /// Effects whose undo failed: what, and why. They stay pending.
    pub failed: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("{0}")]
    Unreadable(String),
    /// The drill that wrote the journal still runs (it holds its target's lock).
    #[error(
        "{journal}: drill {run_id} is still running (pid {pid}); stop it with Ctrl-C, it rolls back by itself"
    )]
    Running {
        journal: String,
        run_id: String,
        pid: u32,
    },
    #[error(transparent)]
    Env(#[from] EnvError),
}

/// Journals in the state directory with pending effects (their drill may still be running:
/// see [`lock::is_held`]).
pub fn pending(state: &StateDir) -> Vec<Read> {
    crate::safety::journal::list(&state.journals())
        .iter()
        .filter_map(|p| Read::open(p).ok())
        .filter(|r| !r.pending().is_empty())
        .collect()
}

/// Undoes every pending effect of the journal at `path`. Doing it twice does nothing the second
/// time.
pub async fn recover(state: &StateDir, path: &Path) -> Result<Recovered, RecoverError> {
    let read = Read::open(path).map_err(RecoverError::Unreadable)?;
    let (run_id, scenario, target, pid) = read.started();
    let mut out = Recovered {
        journal: path.to_owned(),
        run_id: run_id.to_owned(),
        scenario: scenario.to_owned(),
        ..Recovered::default()
    };
    // Holding the target's lock while undoing keeps a new drill off a half-recovered target,
    // and proves the journal's own drill is gone.
    let _lock = match lock::acquire(
        state,
        target,
        &format!("firedrill recover (pid {})", std::process::id()),
    ) {
        Ok(l) => l,
        Err(lock::LockError::Busy { .. }) => {
            return Err(RecoverError::Running {
                journal: path.display().to_string(),
                run_id: run_id.to_owned(),
                pid,
            });
        }
        Err(lock::LockError::Env(e)) => return Err(e.into()),
    };
    let pending: Vec<(u64, String, Undo)> = read
        .pending()
        .into_iter()
        .map(|(id, what, undo)| (id, what.to_owned(), undo.clone()))
        .collect();
    if pending.is_empty() {
        return Ok(out);
    }
    for (id, what, undo) in pending {
        match apply(&undo, Duration::from_secs(60)).await {
            Ok(how) => {
                read.append(&Entry::Undone {
                    id,
                    at: crate::safety::journal::now(),
                    how: how.clone(),
                    by: Actor::Recover,
                })?;
                out.undone.push((what, how));
            }
            Err(e) => out.failed.push((what, e)),
        }
    }
    if out.failed.is_empty() {
        read.append(&Entry::Recovered {
            at: crate::safety::journal::now(),
            pid: std::process::id(),
        })?;
    }
    Ok(out)
}
