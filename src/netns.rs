//! Network namespaces at the level of iproute2 and /proc: run `ip` (one command or a batch),
//! list namespaces, remove them with whatever still runs inside. What both the fabric (`net`)
//! and the undos of a killed drill (`safety::undo`) need, depending on neither.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::EnvError;

/// Where `ip netns add` mounts a namespace.
pub fn netns_path(ns: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(ns)
}

fn run_ip(ip: &std::path::Path, args: &[&str]) -> Result<(), EnvError> {
    let out = Command::new(ip)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(EnvError::io("cannot run ip"))?;
    if !out.status.success() {
        return Err(EnvError::Command {
            what: format!("ip {}", args.join(" ")),
            status: out.status.to_string(),
            log: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// Runs `ip -n NS -batch -` with `lines`: several link changes, one process.
pub fn ip_batch(ip: &std::path::Path, ns: &str, lines: &str) -> Result<(), EnvError> {
    ip_batch_args(ip, &["-n", ns, "-batch", "-"], lines)
}

/// `ip -batch -` in firedrill's own namespace (to add namespaces).
pub fn ip_batch_root(ip: &std::path::Path, lines: &str) -> Result<(), EnvError> {
    ip_batch_args(ip, &["-batch", "-"], lines)
}

fn ip_batch_args(ip: &std::path::Path, args: &[&str], lines: &str) -> Result<(), EnvError> {
    use std::io::Write;
    let mut child = Command::new(ip)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(EnvError::io("cannot run ip"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(lines.as_bytes())
        .map_err(EnvError::io("cannot write ip's commands"))?;
    wait_ok("ip -batch", child)
}

pub fn wait_ok(what: &str, child: std::process::Child) -> Result<(), EnvError> {
    let out = child
        .wait_with_output()
        .map_err(EnvError::io(format!("cannot wait for {what}")))?;
    if !out.status.success() {
        return Err(EnvError::Command {
            what: what.into(),
            status: out.status.to_string(),
            log: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// Kills whatever still runs in each namespace, then deletes it; a namespace already gone is
/// fine. Says what it did.
pub fn remove_namespaces(ip: &std::path::Path, names: &[String]) -> String {
    let existing = list_namespaces(ip);
    let mut removed = Vec::new();
    let mut killed = 0;
    for ns in names.iter().filter(|n| existing.contains(n)) {
        killed += kill_all_in(ns);
        if run_ip(ip, &["netns", "delete", ns]).is_ok() {
            removed.push(ns.as_str());
        }
    }
    match (removed.len(), killed) {
        (0, _) => format!("namespaces {} already gone", names.join(", ")),
        (_, 0) => format!("removed namespaces {}", removed.join(", ")),
        (_, k) => format!(
            "killed {k} processes and removed namespaces {}",
            removed.join(", ")
        ),
    }
}

/// The names `ip netns list` shows.
pub fn list_namespaces(ip: &std::path::Path) -> Vec<String> {
    Command::new(ip)
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The `ip` program for undos run by `recover` (which has no scenario to find it from):
/// `$FIREDRILL_IP`, else `ip` on `PATH`.
pub fn ip_program() -> PathBuf {
    std::env::var_os("FIREDRILL_IP").map_or_else(|| "ip".into(), PathBuf::from)
}

/// SIGKILLs every process inside namespace `ns` (told by `/proc/PID/ns/net`, not by command
/// line); returns how many.
pub fn kill_all_in(ns: &str) -> usize {
    let Ok(target) = std::fs::metadata(netns_path(ns)) else {
        return 0;
    };
    let pids = processes_in(target.ino(), target.dev());
    for &pid in &pids {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    pids.len()
}

fn processes_in(ino: u64, dev: u64) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.ino() == ino && m.dev() == dev)
        })
        .collect()
}
