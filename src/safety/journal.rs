//! The drill journal: a crash-safe record of every side effect a drill has on the world, so that
//! a drill killed at any instant (SIGKILL, a power cut, an OOM kill) can still be undone by
//! `firedrill recover`.
//!
//! One JSON line per entry, appended and fsynced *before* the side effect it announces; the
//! entry carries how to undo the effect. When the effect is undone (by the drill itself or by
//! `recover`) an `undone` line follows. An effect without its `undone` line is pending. The
//! journal says what to undo; [`super::undo`] does it. A torn last line (the process died
//! mid-write) is ignored: the effect it announced never started.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use super::undo::Undo;
use crate::error::EnvError;

/// One line of a journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "kebab-case")]
pub enum Entry {
    Started {
        at: String,
        run_id: String,
        scenario: String,
        file: String,
        /// The target's lock key (see [`super::lock`]).
        target: String,
        pid: u32,
    },
    /// A side effect about to happen, and how to take it back (`None`: nothing to take back,
    /// e.g. a SIGKILL of a sandbox node, which the sandbox's removal covers).
    Effect {
        id: u64,
        at: String,
        what: String,
        undo: Option<Undo>,
    },
    Undone {
        id: u64,
        at: String,
        how: String,
        by: Actor,
    },
    /// The drill ended and wrote its report; its outcome (pass, fail, aborted, error).
    Finished { at: String, outcome: String },
    /// `firedrill recover` took back every pending effect.
    Recovered { at: String, pid: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Actor {
    Drill,
    Recover,
}

/// A handle on the open journal of a running drill; cheap to clone. A disabled journal (for
/// library users and benchmarks that do not want one) records nothing.
#[derive(Clone, Default)]
pub struct Journal(Option<Arc<Inner>>);

struct Inner {
    path: PathBuf,
    file: Mutex<File>,
    next: AtomicU64,
}

/// Names one effect in its journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectId(Option<u64>);

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(i) => write!(f, "Journal({})", i.path.display()),
            None => write!(f, "Journal(disabled)"),
        }
    }
}

impl Journal {
    pub fn disabled() -> Journal {
        Journal(None)
    }

    /// Creates a new journal at `path` (never overwriting one) and writes its first entry.
    pub fn create(path: &Path, started: Entry) -> Result<Journal, EnvError> {
        let what = || format!("cannot create the drill journal {}", path.display());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(EnvError::io(what()))?;
        }
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)
            .map_err(EnvError::io(what()))?;
        let j = Journal(Some(Arc::new(Inner {
            path: path.to_owned(),
            file: Mutex::new(file),
            next: AtomicU64::new(1),
        })));
        j.append(&started)?;
        // The new name must survive a crash too.
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(EnvError::io(what()))?;
        }
        Ok(j)
    }

    pub fn path(&self) -> Option<&Path> {
        self.0.as_ref().map(|i| i.path.as_path())
    }

    /// Records a side effect that is about to happen. An error means the effect must not
    /// happen: it could not be undone after a crash.
    pub fn effect(
        &self,
        what: impl Into<String>,
        undo: Option<Undo>,
    ) -> Result<EffectId, EnvError> {
        let Some(inner) = &self.0 else {
            return Ok(EffectId(None));
        };
        let id = inner.next.fetch_add(1, Ordering::Relaxed);
        self.append(&Entry::Effect {
            id,
            at: now(),
            what: crate::secrets::redact(&what.into()).into_owned(),
            undo,
        })?;
        Ok(EffectId(Some(id)))
    }

    /// Records that the drill took an effect back. A failure to record is not fatal: `recover`
    /// will find the effect pending and apply its (idempotent) undo again.
    pub fn undone(&self, id: EffectId, how: impl Into<String>) {
        if let EffectId(Some(id)) = id {
            let _ = self.append(&Entry::Undone {
                id,
                at: now(),
                how: how.into(),
                by: Actor::Drill,
            });
        }
    }

    pub fn finished(&self, outcome: &str) {
        let _ = self.append(&Entry::Finished {
            at: now(),
            outcome: outcome.to_owned(),
        });
    }

    fn append(&self, entry: &Entry) -> Result<(), EnvError> {
        let Some(inner) = &self.0 else { return Ok(()) };
        append_to(&inner.file, &inner.path, entry)
    }
}

fn append_to(file: &Mutex<File>, path: &Path, entry: &Entry) -> Result<(), EnvError> {
    let mut line = serde_json::to_string(entry).expect("journal entries are JSON");
    line.push('\n');
    let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
    f.write_all(line.as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(EnvError::io(format!(
            "cannot write the drill journal {}",
            path.display()
        )))
}

/// A journal read back from disk.
#[derive(Debug)]
pub struct Read {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
    /// A last line that did not parse (the writer died mid-line).
    pub torn_tail: bool,
}

impl Read {
    pub fn open(path: &Path) -> Result<Read, String> {
        let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut entries = Vec::new();
        let mut torn_tail = false;
        let lines: Vec<String> = BufReader::new(file)
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        for (n, line) in lines.iter().enumerate() {
            match serde_json::from_str::<Entry>(line) {
                Ok(e) => entries.push(e),
                Err(_) if n + 1 == lines.len() => torn_tail = true,
                Err(e) => {
                    return Err(format!(
                        "{}:{}: not a journal entry: {e}",
                        path.display(),
                        n + 1
                    ));
                }
            }
        }
        if !matches!(entries.first(), Some(Entry::Started { .. })) {
            return Err(format!(
                "{}: not a firedrill journal (no `started` entry)",
                path.display()
            ));
        }
        Ok(Read {
            path: path.to_owned(),
            entries,
            torn_tail,
        })
    }

    pub fn started(&self) -> (&str, &str, &str, u32) {
        match &self.entries[0] {
            Entry::Started {
                run_id,
                scenario,
                target,
                pid,
                ..
            } => (run_id, scenario, target, *pid),
            _ => unreachable!("checked in open"),
        }
    }

    pub fn target(&self) -> &str {
        self.started().2
    }

    /// Effects with an undo and no `undone` entry, newest first (the order to undo them in).
    pub fn pending(&self) -> Vec<(u64, &str, &Undo)> {
        let done: std::collections::HashSet<u64> = self
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Undone { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        let mut pending: Vec<_> = self
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Effect {
                    id,
                    what,
                    undo: Some(undo),
                    ..
                } if !done.contains(id) => Some((*id, what.as_str(), undo)),
                _ => None,
            })
            .collect();
        pending.reverse();
        pending
    }

    pub fn finished(&self) -> Option<&str> {
        self.entries.iter().find_map(|e| match e {
            Entry::Finished { outcome, .. } => Some(outcome.as_str()),
            _ => None,
        })
    }

    /// Appends entries written by `recover`.
    pub fn append(&self, entry: &Entry) -> Result<(), EnvError> {
        let file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(EnvError::io(format!("cannot open {}", self.path.display())))?;
        append_to(&Mutex::new(file), &self.path, entry)
    }
}

/// Every journal in `dir`, oldest first (names start with the start time).
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    paths
}

pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Removes a directory made by [`create_dir`] and records it as undone; on failure the effect
/// stays pending (`firedrill recover` retries) and a warning says so.
pub fn remove_dir(journal: &Journal, id: EffectId, dir: &Path, how: &str) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => journal.undone(id, how),
        Err(e) => eprintln!(
            "warning: cannot remove {}: {e}; `firedrill recover` retries",
            dir.display()
        ),
    }
}

/// Creates a fresh directory `PARENT/PREFIX<unique>` (PARENT defaults to the temporary
/// directory), journaled first as an effect undone by removing it: a drill killed at any point
/// after this leaves nothing `recover` cannot find.
pub fn create_dir(
    journal: &Journal,
    parent: Option<&Path>,
    prefix: &str,
    what: &str,
) -> Result<(PathBuf, EffectId), EnvError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_owned);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("{prefix}{:x}{nanos:08x}{n:x}", std::process::id()));
        if dir.exists() {
            continue;
        }
        let id = journal.effect(
            format!("create {what} {}", dir.display()),
            Some(Undo::RemoveDir { dir: dir.clone() }),
        )?;
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((dir, id)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                journal.undone(id, "never created");
                return Err(EnvError::Io {
                    what: format!("cannot create {what} {}", dir.display()),
                    source: e,
                });
            }
        }
    }
    Err(EnvError::Database(format!(
        "cannot find a free name for {what} in {}",
        parent.display()
    )))
}
