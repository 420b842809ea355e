//! The one way firedrill runs another program: the PostgreSQL and backup programs a restore
//! drill needs (pg_dump, pg_restore, pg_basebackup, pgbackrest, ...) and the operator's own
//! commands (fault, recovery, undo, guardrail). Asynchronously, so a long restore does not hold a
//! runtime thread; cancellably, so Ctrl-C kills the program at once; with a deadline where one is
//! given.
//!
//! Boundary: spawning and waiting. What the programs are for is the caller's business.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt};
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
        self.run_marked(None, cancel).await.map(|(out, _)| out)
    }

    /// [`Tool::run`], noting when the program printed `marker` as a line of its own on stdout
    /// (an operator's command saying when its effect happened). Output is read as it comes.
    pub async fn run_marked(
        self,
        marker: Option<&str>,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<(String, Option<Instant>), ToolError> {
        let Tool {
            what,
            mut cmd,
            deadline,
            tail: (lines, with_stdout),
        } = self;
        let mut child = cmd.spawn().map_err(|e| {
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
        let stdout = child.stdout.take().map(|o| {
            let marker = marker.map(str::to_owned);
            tokio::spawn(read_lines(o, marker))
        });
        let stderr = child.stderr.take().map(|mut e| {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let _ = e.read_to_end(&mut buf).await;
                buf
            })
        });
        let waited = async {
            match deadline {
                Some(d) => tokio::time::timeout(d, child.wait()).await.ok(),
                None => Some(child.wait().await),
            }
        };
        // Returning drops the child, which kills it (kill_on_drop).
        let status = tokio::select! {
            status = waited => match status {
                Some(s) => s.map_err(EnvError::io(format!("waiting for {what}")))?,
                None => return Err(EnvError::Timeout {
                    what,
                    waited: humantime::format_duration(deadline.unwrap_or_default()).to_string(),
                    log: String::new(),
                }.into()),
            },
            _ = cancel.wait_for(|c| *c) => return Err(ToolError::Cancelled),
        };
        // A program that left a child holding its pipes open is not waited for forever.
        let grace = Duration::from_secs(2);
        let (out, marked) = match stdout {
            Some(t) => tokio::time::timeout(grace, t)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => Default::default(),
        };
        let err = match stderr {
            Some(t) => tokio::time::timeout(grace, t)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        if !status.success() {
            let mut log = String::from_utf8_lossy(&err).into_owned();
            if with_stdout {
                log.push_str(&out);
            }
            return Err(EnvError::Command {
                what,
                status: status.to_string(),
                log: last_lines(&log, lines),
            }
            .into());
        }
        Ok((out, marked))
    }
}

/// Reads a program's stdout to its end, noting when `marker` came as a line of its own.
async fn read_lines(
    out: tokio::process::ChildStdout,
    marker: Option<String>,
) -> (String, Option<Instant>) {
    let mut reader = tokio::io::BufReader::new(out);
    let mut text = String::new();
    let mut at = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let l = String::from_utf8_lossy(&line);
                if at.is_none() && marker.as_deref() == Some(l.trim()) {
                    at = Some(Instant::now());
                }
                text.push_str(&l);
            }
        }
    }
    (text, at)
}

pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The line a fault command prints on stdout, on its own, at the moment its effect happens
/// (e.g. `patronictl switchover ... && echo FIREDRILL_EFFECT`, or before a `kill`); the drill
/// then counts RTO from it.
pub const EFFECT_MARKER: &str = "FIREDRILL_EFFECT";

/// Runs an operator's command ([`Tool::operator`]) to the end or its deadline. Not cancelled by
/// Ctrl-C: an undo or a recovery must finish (a second Ctrl-C shortens the deadline instead).
/// Returns the last lines it printed on stdout, for the timeline (reports mask secrets).
pub async fn run_command(
    what: &str,
    argv: &[String],
    timeout: Duration,
) -> Result<String, EnvError> {
    run_command_marked(what, argv, timeout)
        .await
        .map(|(out, _)| out)
}

/// [`run_command`], and when the command printed [`EFFECT_MARKER`].
pub async fn run_command_marked(
    what: &str,
    argv: &[String],
    timeout: Duration,
) -> Result<(String, Option<Instant>), EnvError> {
    let (_never, mut cancel) = watch::channel(false);
    match Tool::operator(what, argv)?
        .deadline(timeout)
        .run_marked(Some(EFFECT_MARKER), &mut cancel)
        .await
    {
        Ok((out, at)) => Ok((last_lines(out.trim_end(), 10), at)),
        Err(ToolError::Env(e)) => Err(e),
        Err(ToolError::Cancelled) => unreachable!("nothing cancels an operator command"),
    }
}
