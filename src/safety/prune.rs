//! `firedrill recover --prune`: the state directory keeps one journal per drill and one lock file
//! per target (per run, for sandboxes); this removes those older than a given age that can no
//! longer matter. Never a journal with an effect left to undo, never a lock a live drill holds.
//!
//! Boundary: decides and removes; the CLI prints what it removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::journal;
use super::lock::{self, StateDir};

#[derive(Debug, Default)]
pub struct Pruned {
    pub journals: Vec<PathBuf>,
    pub locks: Vec<PathBuf>,
    /// Journals old enough but with effects left to undo: `firedrill recover` first.
    pub pending: Vec<PathBuf>,
    /// Control files of game days that were killed (their process is gone).
    pub controls: Vec<PathBuf>,
}

fn older_than(path: &Path, age: Duration, now: SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d >= age))
}

/// Removes journals with nothing left to undo and unheld lock files, both last written `age`
/// ago or longer.
pub fn prune(state: &StateDir, age: Duration, now: SystemTime) -> Pruned {
    let mut out = Pruned::default();
    for path in journal::list(&state.journals()) {
        if !older_than(&path, age, now) {
            continue;
        }
        match journal::Read::open(&path) {
            Ok(r) if !r.pending().is_empty() || lock::is_held(state, r.target()) => {
                out.pending.push(path)
            }
            // An unreadable journal is not ours to judge: kept.
            Err(_) => {}
            Ok(_) => {
                if std::fs::remove_file(&path).is_ok() {
                    out.journals.push(path);
                }
            }
        }
    }
    for path in lock::files(state) {
        if older_than(&path, age, now) && lock::remove_unheld(&path) {
            out.locks.push(path);
        }
    }
    let controls = std::fs::read_dir(state.control())
        .into_iter()
        .flatten()
        .flatten();
    for path in controls.map(|e| e.path()) {
        let dead =
            crate::operator::header(&path).is_none_or(|h| !crate::operator::still_running(&h));
        if dead && older_than(&path, age, now) && std::fs::remove_file(&path).is_ok() {
            out.controls.push(path);
        }
    }
    out
}
