//! Where firedrill keeps state between runs (drill journals, target locks), and the lock that
//! keeps two drills off one target.
//!
//! A target lock is an advisory `flock` on a file named after the target: the kernel drops it
//! when its holder dies, however it dies, so a stale lock cannot outlive a killed drill. The file
//! itself only says who holds it, for the error message.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::EnvError;

/// The state directory: `--state-dir`, else `$FIREDRILL_STATE_DIR`, else
/// `$XDG_STATE_HOME/firedrill`, else `~/.local/state/firedrill`.
#[derive(Clone, Debug)]
pub struct StateDir(PathBuf);

impl StateDir {
    pub fn resolve(explicit: Option<PathBuf>) -> Result<StateDir, EnvError> {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        explicit
            .or_else(|| var("FIREDRILL_STATE_DIR"))
            .or_else(|| var("XDG_STATE_HOME").map(|d| d.join("firedrill")))
            .or_else(|| var("HOME").map(|h| h.join(".local/state/firedrill")))
            .map(StateDir)
            .ok_or_else(|| {
                EnvError::Database(
                    "no state directory for drill journals: set FIREDRILL_STATE_DIR or HOME".into(),
                )
            })
    }

    pub fn journals(&self) -> PathBuf {
        self.0.join("journals")
    }

    /// Sandbox templates (see [`crate::template`]).
    /// Running game days' control files (`firedrill step` appends to them).
    pub fn control(&self) -> PathBuf {
        self.0.join("control")
    }

    pub fn templates(&self) -> PathBuf {
        self.0.join("templates")
    }

    fn lock_file(&self, target: &str) -> PathBuf {
        let digest = Sha256::digest(target.as_bytes());
        self.0
            .join("locks")
            .join(format!("{}.lock", hex::encode(&digest[..8])))
    }
}

/// Held for the whole drill; dropping it (or dying) releases the target.
#[derive(Debug)]
pub struct TargetLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("target {target} is in use by {holder}")]
    Busy { target: String, holder: String },
    #[error(transparent)]
    Env(#[from] EnvError),
}

/// Takes the lock of `target`, recording `holder` (e.g. "drill RUN of SCENARIO, pid N") in it.
pub fn acquire(state: &StateDir, target: &str, holder: &str) -> Result<TargetLock, LockError> {
    let path = state.lock_file(target);
    let io = |what: &str| EnvError::io(format!("{what} {}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("cannot create"))?;
    }
    // `recover --prune` may remove an unheld lock file between our open and our lock: a lock
    // on a file no longer at `path` guards nothing, so open again.
    let mut file = loop {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("cannot open"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Busy {
                    target: target.to_owned(),
                    holder: text.lines().nth(1).unwrap_or("another drill").to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock")(e).into()),
        }
        if still_at(&file, &path) {
            break file;
        }
    };
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "{target}\n{holder}"))
        .map_err(io("cannot write"))?;
    Ok(TargetLock { _file: file })
}

fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Every lock file in the state directory.
pub fn files(state: &StateDir) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(state.0.join("locks")) else {
        return Vec::new();
    };
    dir.flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "lock"))
        .collect()
}

/// Removes the lock file at `path` if no live process holds it; whether it did. It is removed
/// while locked, and [`acquire`] checks that its lock is on the file still at the path.
pub fn remove_unheld(path: &Path) -> bool {
    let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else {
        return false;
    };
    file.try_lock().is_ok() && std::fs::remove_file(path).is_ok()
}

/// Whether a live process holds the lock of `target`.
pub fn is_held(state: &StateDir, target: &str) -> bool {
    let Ok(file) = File::open(state.lock_file(target)) else {
        return false;
    };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}
