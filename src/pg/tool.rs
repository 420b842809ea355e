//! Running the PostgreSQL and backup programs a restore drill needs (pg_dump, pg_restore,
//! pg_basebackup, pg_verifybackup, pg_amcheck, pgbackrest, pgbench): asynchronously, so a long
//! restore does not hold a runtime thread, and cancellably, so Ctrl-C kills the program at once.
//!
//! Boundary: spawning and waiting. What the programs are for is the caller's business.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;
use tokio::sync::watch;

use crate::error::EnvError;

/// Why a program did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Env(#[from] EnvError),
    /// Ctrl-C or SIGTERM arrived; the program was killed.
    #[error("interrupted")]
    Cancelled,
}

/// A program to run: its command, a name for messages, and who runs it.
pub struct Tool {
    what: String,
    cmd: Command,
}

impl Tool {
    pub fn new(what: impl Into<String>, program: impl AsRef<Path>) -> Tool {
        let mut cmd = Command::new(program.as_ref());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: the terminal's Ctrl-C reaches firedrill only, which then
            // kills the program itself.
            .process_group(0);
        Tool {
            what: what.into(),
            cmd,
        }
    }

    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Tool {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Tool
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Tool {
        self.cmd.env(k, v);
        self
    }

    /// Runs as this uid/gid (PostgreSQL's own programs refuse root for some work).
    pub fn as_user(mut self, user: Option<(u32, u32)>) -> Tool {
        if let Some((uid, gid)) = user {
            self.cmd.uid(uid).gid(gid);
        }
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Tool {
        self.cmd.current_dir(dir);
        self
    }

    /// Runs to completion; a non-zero exit is an error carrying the last lines of its output.
    /// Returns stdout.
    pub async fn run(self, cancel: &mut watch::Receiver<bool>) -> Result<String, ToolError> {
        let Tool { what, mut cmd } = self;
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                EnvError::MissingBinary {
                    what: what.clone(),
                    searched: format!("{:?}", cmd.as_std().get_program()),
                    hint: "install it or point the scenario at it".into(),
                }
            } else {
                EnvError::Io {
                    what: format!("cannot run {what}"),
                    source: e,
                }
            }
        })?;
        if *cancel.borrow() {
            return Err(ToolError::Cancelled);
        }
        let out = tokio::select! {
            out = child.wait_with_output() => out.map_err(EnvError::io(format!("waiting for {what}")))?,
            // Dropping the child future kills it (kill_on_drop).
            _ = cancel.wait_for(|c| *c) => return Err(ToolError::Cancelled),
        };
        if !out.status.success() {
            let mut log = String::from_utf8_lossy(&out.stderr).into_owned();
            log.push_str(&String::from_utf8_lossy(&out.stdout));
            return Err(EnvError::Command {
                what,
                status: out.status.to_string(),
                log: last_lines(&log, 15),
            }
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
