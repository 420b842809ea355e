//! The one way firedrill runs another program: the PostgreSQL and backup programs a restore
//! drill needs (pg_dump, pg_restore, pg_basebackup, pgbackrest, ...) and the operator's own
//! commands (fault, recovery, undo, guardrail). Asynchronously, so a long restore does not hold a
//! runtime thread; cancellably, so Ctrl-C kills the program at once; with a deadline where one is
//! given.
//!
//! Boundary: spawning and waiting. What the programs are for is the caller's business.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;

use crate::error::EnvError;
use crate::scenario::shell_words;

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
    deadline: Option<Duration>,
    /// How much of a failed program's output its error carries: the last lines of stderr
    /// only (an operator's command may print secrets on stdout), or of both.
    tail: (usize, bool),
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
            deadline: None,
            tail: (15, true),
        }
    }

    /// An operator's command from a scenario (`argv[0]` and its arguments), named in messages
    /// as `what` plus the command; on failure only the last five lines of its stderr are kept.
    pub fn operator(what: &str, argv: &[String]) -> Result<Tool, EnvError> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| EnvError::Database(format!("{what} is empty")))?;
        let mut t = Tool::new(format!("{what} {}", shell_words(argv)), program).args(args);
        t.tail = (5, false);
        Ok(t)
    }

    /// Killed, and an error, when it runs longer than this.
    pub fn deadline(mut self, d: Duration) -> Tool {
        self.deadline = Some(d);
        self
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
        let Tool {
            what,
            mut cmd,
            deadline,
            tail: (lines, with_stdout),
        } = self;
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
        let waited = async {
            match deadline {
                Some(d) => tokio::time::timeout(d, child.wait_with_output()).await.ok(),
                None => Some(child.wait_with_output().await),
            }
        };
        // Dropping the child future kills it (kill_on_drop).
        let out = tokio::select! {
            out = waited => match out {
                Some(out) => out.map_err(EnvError::io(format!("waiting for {what}")))?,
                None => return Err(EnvError::Timeout {
                    what,
                    waited: humantime::format_duration(deadline.unwrap_or_default()).to_string(),
                    log: String::new(),
                }.into()),
            },
            _ = cancel.wait_for(|c| *c) => return Err(ToolError::Cancelled),
        };
        if !out.status.success() {
            let mut log = String::from_utf8_lossy(&out.stderr).into_owned();
            if with_stdout {
                log.push_str(&String::from_utf8_lossy(&out.stdout));
            }
            return Err(EnvError::Command {
                what,
                status: out.status.to_string(),
                log: last_lines(&log, lines),
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

/// Runs an operator's command ([`Tool::operator`]) to the end or its deadline. Not cancelled by
/// Ctrl-C: an undo or a recovery must finish (a second Ctrl-C shortens the deadline instead).
/// Returns the last lines it printed on stdout, for the timeline (reports mask secrets).
pub async fn run_command(
    what: &str,
    argv: &[String],
    timeout: Duration,
) -> Result<String, EnvError> {
    let (_never, mut cancel) = watch::channel(false);
    match Tool::operator(what, argv)?
        .deadline(timeout)
        .run(&mut cancel)
        .await
    {
        Ok(out) => Ok(last_lines(out.trim_end(), 10)),
        Err(ToolError::Env(e)) => Err(e),
        Err(ToolError::Cancelled) => unreachable!("nothing cancels an operator command"),
    }
}
