//! Signalling a PostgreSQL node: its postmaster and every child (backends rename themselves,
//! so children are found through /proc's parent links, not by name).

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
