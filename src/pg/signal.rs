//! Signalling a PostgreSQL node: its postmaster and every child (backends rename themselves,
//! so children are found through /proc's parent links, not by name), and stopping it.

use std::time::{Duration, Instant};

/// Sends `sig` to a node: its postmaster and every process the postmaster forked.
///
/// PostgreSQL's children call `setsid()`, so a process-group signal would reach the postmaster
/// alone. The postmaster is frozen first so it cannot fork while its children are listed, and
/// the list is read before any SIGKILL (after which the children would be reparented).
/// Returns the processes signalled.
pub fn signal_node(postmaster: i32, sig: i32) -> Vec<i32> {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(postmaster, libc::SIGSTOP) };
    let mut pids = children_of(postmaster);
    pids.push(postmaster);
    for &pid in &pids {
        // SAFETY: as above.
        unsafe { libc::kill(pid, sig) };
    }
    if sig != libc::SIGSTOP && sig != libc::SIGKILL {
        // SAFETY: as above.
        unsafe { libc::kill(postmaster, libc::SIGCONT) };
    }
    pids
}

/// Direct children of `parent`, from `/proc/*/stat` (field 4 is the parent pid; the command name
/// before it may hold spaces and parentheses, so parsing starts after the last `)`).
pub(super) fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// A node's postmaster asked to shut down immediately, and how long it gets.
pub(crate) struct Stopping {
    child: std::process::Child,
    pid: i32,
    deadline: Instant,
}

impl Stopping {
    pub(crate) fn begin(child: std::process::Child) -> Stopping {
        let pid = child.id() as i32;
        // A paused node first resumes; immediate shutdown lets the postmaster release its shared
        // memory and take its children down.
        signal_node(pid, libc::SIGCONT);
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGQUIT) };
        // After a second Ctrl-C nobody waits for a graceful exit.
        let grace = if crate::safety::signals::hurry() {
            0
        } else {
            5
        };
        Stopping {
            child,
            pid,
            deadline: Instant::now() + Duration::from_secs(grace),
        }
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    pub(crate) fn waiting(&mut self) -> bool {
        !self.exited() && Instant::now() < self.deadline
    }

    /// SIGKILL for a node that outlived its grace.
    pub(crate) fn finish(mut self) {
        if !self.exited() {
            signal_node(self.pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
