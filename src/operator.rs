//! A game day's people reach the running drill two ways: on the terminal it runs on (one short
//! line per action: `a`, `d`, `n TEXT`, `abort`), and with `firedrill step` from any other
//! shell, which appends a line to the run's control file. Both arrive as [`Acted`], stamped on
//! the drill's clock with when the person acted, not when the drill got round to reading it.
//!
//! Boundary: transport and time stamps only; what an action means for a step is the engine's.

use std::io::{BufRead, IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::gameday::{Action, CONTROL_VERSION, ControlHeader, ControlLine};

/// How often the control file is read: well under the 100 ms a step's times are held to,
/// although times come from the lines themselves.
const TAIL_EVERY: Duration = Duration::from_millis(20);
/// A control line longer than this is not one firedrill wrote.
const MAX_LINE: usize = 64 * 1024;

/// Who is acting, and where actions may come from; the CLI decides, the engine opens.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The name actions typed at this terminal are recorded under (`--operator`).
    pub operator: String,
    /// The directory control files live in; `None`: `firedrill step` cannot reach this drill.
    pub control_dir: Option<PathBuf>,
    /// Whether to read actions from the terminal (stdin is one).
    pub terminal: bool,
}

impl Setup {
    /// The operator name when none is given: the login name, as `who` would show.
    pub fn default_operator() -> String {
        std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "operator".into())
    }

    /// Whether stdin is a terminal an operator can type at.
    pub fn stdin_is_terminal() -> bool {
        std::io::stdin().is_terminal()
    }
}

/// One action, on the drill's clock.
#[derive(Clone, Debug)]
pub struct Acted {
    pub at: Duration,
    pub action: Action,
    pub operator: String,
    pub text: String,
}

/// Where a line typed at the terminal or read from the control file did not parse.
#[derive(Clone, Debug)]
pub struct Unreadable(pub String);

/// Actions as they arrive; the control file goes when this does.
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Result<Acted, Unreadable>>,
    control: Option<PathBuf>,
    tail: Option<tokio::task::JoinHandle<()>>,
}

impl Inbox {
    /// Opens the control file (`<dir>/<run id>.jsonl`, with its header) and starts reading it
    /// and the terminal, as `setup` allows. `t0` is the drill clock's zero.
    pub fn open(
        setup: &Setup,
        run_id: &str,
        scenario: &str,
        t0: Instant,
    ) -> std::io::Result<Inbox> {
        let (tx, rx) = mpsc::unbounded_channel();
        let wall0 = SystemTime::now()
            .checked_sub(t0.elapsed())
            .unwrap_or(SystemTime::now());
        let mut control = None;
        let mut tail = None;
        if let Some(dir) = &setup.control_dir {
            let path = control_file(dir, run_id);
            std::fs::create_dir_all(dir)?;
            let header = ControlHeader {
                v: CONTROL_VERSION,
                run_id: run_id.to_owned(),
                scenario: scenario.to_owned(),
                pid: std::process::id(),
            };
            let line = serde_json::to_string(&header).expect("header is JSON") + "\n";
            std::fs::write(&path, line.as_bytes())?;
            tail = Some(tokio::spawn(follow(
                path.clone(),
                line.len() as u64,
                wall0,
                tx.clone(),
            )));
            control = Some(path);
        }
        if setup.terminal {
            let operator = setup.operator.clone();
            // A blocking read has no place on the runtime; the thread ends with the process
            // or at the first send nobody receives.
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { return };
                    let Some(acted) = typed(&line, &operator, t0.elapsed()) else {
                        continue;
                    };
                    if tx.send(acted).is_err() {
                        return;
                    }
                }
            });
        }
        Ok(Inbox { rx, control, tail })
    }

    /// An inbox nothing can write to (a library caller without people).
    pub fn closed() -> Inbox {
        let (_, rx) = mpsc::unbounded_channel();
        Inbox {
            rx,
            control: None,
            tail: None,
        }
    }

    /// The next action that arrived, if any.
    pub fn take(&mut self) -> Option<Result<Acted, Unreadable>> {
        self.rx.try_recv().ok()
    }

    pub fn control_file(&self) -> Option<&Path> {
        self.control.as_deref()
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        if let Some(t) = self.tail.take() {
            t.abort();
        }
        if let Some(p) = self.control.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The control file of run `run_id`.
pub fn control_file(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.jsonl"))
}

/// Which drill a control file belongs to; `None` for a file that is not one.
pub fn header(path: &Path) -> Option<ControlHeader> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(text.lines().next()?).ok()
}

/// Whether the game day a control file names still runs: a file whose process is gone was
/// left by a game day that was killed.
pub fn still_running(header: &ControlHeader) -> bool {
    let Ok(pid) = i32::try_from(header.pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 sends nothing; it only asks whether the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A line typed at the terminal: `a`/`ack`, `d`/`done`, `n TEXT`/`note TEXT`, `abort`; an
/// empty line is nothing.
fn typed(line: &str, operator: &str, at: Duration) -> Option<Result<Acted, Unreadable>> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let action = match word {
        "a" | "ack" => Action::Ack,
        "d" | "done" => Action::Done,
        "n" | "note" => Action::Note,
        "abort" => Action::Abort,
        other => {
            return Some(Err(Unreadable(format!(
                "{other:?} is not an action: type a (acknowledge), d (done), n TEXT (note) or \
                 abort"
            ))));
        }
    };
    if action == Action::Note && rest.trim().is_empty() {
        return Some(Err(Unreadable("a note needs its text: n TEXT".into())));
    }
    Some(Ok(Acted {
        at,
        action,
        operator: operator.to_owned(),
        text: rest.trim().to_owned(),
    }))
}

/// Reads lines appended to the control file from `from` on, until the inbox goes.
async fn follow(
    path: PathBuf,
    mut from: u64,
    wall0: SystemTime,
    tx: mpsc::UnboundedSender<Result<Acted, Unreadable>>,
) {
    let mut partial = Vec::new();
    while !tx.is_closed() {
        tokio::time::sleep(TAIL_EVERY).await;
        let Ok(mut f) = std::fs::File::open(&path) else {
            continue;
        };
        if f.seek(SeekFrom::Start(from)).is_err() {
            continue;
        }
        let mut chunk = Vec::new();
        let Ok(n) = f.take(MAX_LINE as u64 * 4).read_to_end(&mut chunk) else {
            continue;
        };
        from += n as u64;
        partial.extend_from_slice(&chunk);
        while let Some(end) = partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            let acted = parsed(&line, wall0);
            if tx.send(acted).is_err() {
                return;
            }
        }
        if partial.len() > MAX_LINE {
            partial.clear();
            let _ = tx.send(Err(Unreadable(format!(
                "a line of {} longer than {MAX_LINE} bytes; skipped",
                path.display()
            ))));
        }
    }
}

/// One control line onto the drill's clock (`wall0` is its zero on the wall clock).
fn parsed(line: &[u8], wall0: SystemTime) -> Result<Acted, Unreadable> {
    let l: ControlLine = serde_json::from_slice(line)
        .map_err(|e| Unreadable(format!("a control line that is not firedrill's: {e}")))?;
    if l.v != CONTROL_VERSION {
        return Err(Unreadable(format!(
            "a control line of version {} (this firedrill writes {CONTROL_VERSION})",
            l.v
        )));
    }
    let acted = UNIX_EPOCH + Duration::from_millis(l.at_unix_ms);
    Ok(Acted {
        at: acted.duration_since(wall0).unwrap_or_default(),
        action: l.action,
        operator: l.operator,
        text: l.text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lines_become_actions() {
        let at = Duration::from_secs(3);
        let a = typed("a", "ann", at).unwrap().unwrap();
        assert_eq!(
            (a.action, a.operator.as_str(), a.at),
            (Action::Ack, "ann", at)
        );
        let n = typed("n  promoted standby1 by hand ", "ann", at)
            .unwrap()
            .unwrap();
        assert_eq!(
            (n.action, n.text.as_str()),
            (Action::Note, "promoted standby1 by hand")
        );
        assert!(typed("   ", "ann", at).is_none());
        assert!(typed("n", "ann", at).unwrap().is_err());
        assert!(typed("promote", "ann", at).unwrap().is_err());
    }

    #[test]
    fn control_lines_keep_the_time_the_person_acted() {
        let wall0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let line = br#"{"v":1,"action":"done","operator":"bo","at_unix_ms":1002500}"#;
        let a = parsed(line, wall0).unwrap();
        assert_eq!(
            (a.action, a.at),
            (Action::Done, Duration::from_millis(2500))
        );
        let v2 = br#"{"v":2,"action":"done","operator":"bo","at_unix_ms":1002500}"#;
        assert!(parsed(v2, wall0).unwrap_err().0.contains("version 2"));
    }
}
