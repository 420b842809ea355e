//! Takes back what a drill left behind: applies the undo of every pending effect in a journal,
//! newest first, and records each in the journal. Used by the drill itself (to end a fault) and
//! by `firedrill recover` after a drill was killed.
//!
//! Every undo is idempotent and finds its processes by their working directory (a PostgreSQL
//! backend works in its data directory), not by a remembered pid that may have been reused.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::EnvError;
use crate::journal::{Actor, Entry, Read, Undo};
use crate::lock::{self, StateDir};

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
    crate::journal::list(&state.journals())
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
                    at: crate::journal::now(),
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
            at: crate::journal::now(),
            pid: std::process::id(),
        })?;
    }
    Ok(out)
}

/// Applies one undo; says what it did, or why it could not.
pub async fn apply(undo: &Undo, timeout: Duration) -> Result<String, String> {
    match undo {
        Undo::Resume { dir } => {
            let pids = processes_in(dir);
            for &pid in &pids {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGCONT) };
            }
            Ok(match pids.len() {
                0 => format!("no process left in {}", dir.display()),
                n => format!("SIGCONT {n} processes in {}", dir.display()),
            })
        }
        Undo::RemoveDir { dir } => remove_dir(dir).await,
        Undo::Command { argv } => crate::driver::run_command("undo command", argv, timeout)
            .await
            .map(|()| format!("ran {}", crate::scenario::shell_words(argv)))
            .map_err(|e| e.to_string()),
        aws => crate::aws_target::apply(aws)
            .await
            .unwrap_or_else(|| Err("not an AWS undo".into())),
    }
}

/// Kills every process working in `dir`, releases the shared memory of any PostgreSQL data
/// directory in it, and removes it.
async fn remove_dir(dir: &Path) -> Result<String, String> {
    if !dir.exists() {
        return Ok(format!("{} already gone", dir.display()));
    }
    let mut killed = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = processes_in(dir);
        if pids.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "processes {pids:?} in {} survive SIGKILL",
                dir.display()
            ));
        }
        for &pid in &pids {
            // SIGKILL ends a stopped (paused) process too.
            // SAFETY: kill has no memory-safety preconditions.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for data_dir in data_dirs(dir) {
        crate::pg::sandbox::release_shared_memory(&data_dir);
    }
    std::fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    Ok(match killed {
        0 => format!("removed {}", dir.display()),
        n => format!("killed {n} processes and removed {}", dir.display()),
    })
}

/// Live processes whose working directory is `dir` or below it (zombies have none).
pub fn processes_in(dir: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
}

/// PostgreSQL data directories (with a `postmaster.pid`) at most two levels below `dir`.
fn data_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut level = vec![dir.to_owned()];
    for _ in 0..3 {
        let mut next = Vec::new();
        for d in level {
            if d.join("postmaster.pid").is_file() {
                found.push(d.clone());
            }
            if let Ok(rd) = std::fs::read_dir(&d) {
                next.extend(
                    rd.filter_map(|e| e.ok())
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
        level = next;
    }
    found
}
