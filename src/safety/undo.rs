//! Taking back one side effect: every [`Undo`] kind, as the journal records it, how it is
//! described, and how it is applied, by the drill itself (ending a fault, rolling back on abort)
//! and by `firedrill recover` after a crash. One file, and exhaustive matches on purpose: a new
//! undo kind is one variant here and does not compile until it is described and applied.
//!
//! Every undo is idempotent and finds its processes by their working directory (a PostgreSQL
//! backend works in its data directory), not by a remembered pid that may have been reused.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use firedrill_aws::{Aws, AwsError, Options};

use serde::{Deserialize, Serialize};

/// How to take back one side effect. Every undo is idempotent: applying it twice, or to an
/// effect that never fully happened, is harmless.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Undo {
    /// SIGCONT every process working in `dir` (a paused PostgreSQL node: every backend's
    /// working directory is its data directory).
    Resume { dir: PathBuf },
    /// Kill every process working in `dir`, release its shared memory and remove it (a sandbox
    /// or a restore drill's workspace).
    RemoveDir { dir: PathBuf },
    /// Run the operator's undo command.
    Command { argv: Vec<String> },
    /// Stop this drill's running experiments of an FIS template (found by the drill's tag).
    AwsStopFisExperiments {
        aws: firedrill_aws::Options,
        template: String,
        drill: String,
    },
    /// Delete the FIS experiment templates tagged with this drill: journaled before the
    /// template is created, so that a drill killed before it learnt the id leaves nothing.
    AwsDeleteFisTemplates {
        aws: firedrill_aws::Options,
        drill: String,
    },
    /// Delete an FIS experiment template the drill created (journals of firedrill 0.1).
    AwsDeleteFisTemplate {
        aws: firedrill_aws::Options,
        id: String,
    },
    /// Delete a temporary DB instance a restore drill created (no final snapshot).
    AwsDeleteInstance {
        aws: firedrill_aws::Options,
        id: String,
    },
    /// Delete a DB snapshot a restore drill took.
    AwsDeleteSnapshot {
        aws: firedrill_aws::Options,
        id: String,
    },
    /// Kill whatever runs in these network namespaces and delete them (a sandbox's zones and
    /// fabric: their links, bridge and rules go with them).
    RemoveNetns { names: Vec<String> },
    /// Set a link up again (a zone's link to the bridge, set down by a `zone-outage`).
    LinkUp { netns: String, link: String },
    /// Put links back on a bridge (a two-way partition moved one side's to another).
    LinkMaster {
        netns: String,
        links: Vec<String>,
        master: String,
    },
    /// Delete an nftables table in each namespace (a partition's rules).
    NftDelete { netns: Vec<String>, table: String },
}

impl Undo {
    pub fn describe(&self) -> String {
        match self {
            Undo::Resume { dir } => format!("resume every process in {}", dir.display()),
            Undo::RemoveDir { dir } => {
                format!("stop every process in {} and remove it", dir.display())
            }
            Undo::Command { argv } => format!("run {}", crate::scenario::shell_words(argv)),
            Undo::AwsStopFisExperiments {
                template, drill, ..
            } => format!(
                "stop the running FIS experiments of template {template} tagged with drill {drill}"
            ),
            Undo::AwsDeleteFisTemplates { drill, .. } => {
                format!("delete the FIS experiment templates tagged with drill {drill}")
            }
            Undo::AwsDeleteFisTemplate { id, .. } => {
                format!("delete FIS experiment template {id}")
            }
            Undo::AwsDeleteInstance { id, .. } => format!("delete DB instance {id}"),
            Undo::AwsDeleteSnapshot { id, .. } => format!("delete DB snapshot {id}"),
            Undo::RemoveNetns { names } => {
                format!("delete network namespaces {}", names.join(", "))
            }
            Undo::LinkUp { netns, link } => format!("set link {link} in {netns} up"),
            Undo::LinkMaster {
                netns,
                links,
                master,
            } => format!("put links {} in {netns} back on {master}", links.join(", ")),
            Undo::NftDelete { netns, table } => {
                format!("delete nftables table inet {table} in {}", netns.join(", "))
            }
        }
    }
}

/// Applies one undo; says what it did, or why it could not.
pub async fn apply(undo: &Undo, timeout: Duration) -> Result<String, String> {
    match undo {
        Undo::Resume { dir } => {
            let pids = processes_in(dir);
            for &pid in &pids {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGCONT) };
            }
            Ok(match pids.len() {
                0 => format!("no process left in {}", dir.display()),
                n => format!("SIGCONT {n} processes in {}", dir.display()),
            })
        }
        Undo::RemoveDir { dir } => remove_dir(dir).await,
        Undo::Command { argv } => crate::process::run_command("undo command", argv, timeout)
            .await
            .map(|_| format!("ran {}", crate::scenario::shell_words(argv)))
            .map_err(|e| e.to_string()),
        Undo::AwsStopFisExperiments {
            aws,
            template,
            drill,
        } => stop_experiments(aws, template, drill).await,
        Undo::AwsDeleteFisTemplates { aws, drill } => {
            match Aws::connect(aws).await.delete_templates_of(drill).await {
                Ok(ids) if ids.is_empty() => Ok(format!("no template tagged with drill {drill}")),
                Ok(ids) => Ok(format!(
                    "deleted FIS experiment template(s) {}",
                    ids.join(", ")
                )),
                Err(e) => Err(e.to_string()),
            }
        }
        Undo::AwsDeleteFisTemplate { aws, id } => {
            let client = Aws::connect(aws).await;
            match client.delete_template(id).await {
                Ok(()) => Ok(format!("deleted FIS experiment template {id}")),
                Err(AwsError::NotFound { .. }) => Ok(format!("template {id} already gone")),
                Err(e) => Err(e.to_string()),
            }
        }
        Undo::AwsDeleteInstance { aws, id } => told(
            Aws::connect(aws).await.delete_instance(id).await,
            &format!("DB instance {id}"),
        ),
        Undo::AwsDeleteSnapshot { aws, id } => told(
            Aws::connect(aws).await.delete_snapshot(id).await,
            &format!("DB snapshot {id}"),
        ),
        Undo::RemoveNetns { names } => {
            let names = names.clone();
            tokio::task::spawn_blocking(move || {
                crate::netns::remove_namespaces(&crate::netns::ip_program(), &names)
            })
            .await
            .map_err(|e| e.to_string())
        }
        Undo::LinkUp { netns, link } => {
            let ip = crate::netns::ip_program();
            if !crate::netns::list_namespaces(&ip).contains(netns) {
                return Ok(format!("{netns} already gone"));
            }
            crate::process::run_command(
                "ip link set up",
                &[
                    ip.display().to_string(),
                    "-n".into(),
                    netns.clone(),
                    "link".into(),
                    "set".into(),
                    link.clone(),
                    "up".into(),
                ],
                timeout,
            )
            .await
            .map(|_| format!("set {link} in {netns} up"))
            .map_err(|e| e.to_string())
        }
        Undo::LinkMaster {
            netns,
            links,
            master,
        } => {
            let ip = crate::netns::ip_program();
            if !crate::netns::list_namespaces(&ip).contains(netns) {
                return Ok(format!("{netns} already gone"));
            }
            let batch: String = links
                .iter()
                .map(|l| format!("link set {l} master {master}\n"))
                .collect();
            let (ns, argv) = (netns.clone(), batch);
            tokio::task::spawn_blocking(move || crate::netns::ip_batch(&ip, &ns, &argv))
                .await
                .map_err(|e| e.to_string())?
                .map(|()| format!("put {} back on {master}", links.join(", ")))
                .map_err(|e| e.to_string())
        }
        Undo::NftDelete { netns, table } => {
            let ip = crate::netns::ip_program();
            let existing = crate::netns::list_namespaces(&ip);
            let mut done = Vec::new();
            for ns in netns.iter().filter(|n| existing.contains(n)) {
                // A table already deleted is the undo done: `nft destroy` is newer than
                // Debian 12's nft, so its absence is checked first.
                let argv = |verb: &str| -> Vec<String> {
                    [
                        ip.display().to_string(),
                        "netns".into(),
                        "exec".into(),
                        ns.clone(),
                    ]
                    .into_iter()
                    .chain(["nft", verb, "table", "inet", table].map(String::from))
                    .collect()
                };
                if crate::process::run_command("nft list", &argv("list"), timeout)
                    .await
                    .is_ok()
                {
                    crate::process::run_command("nft delete", &argv("delete"), timeout)
                        .await
                        .map_err(|e| e.to_string())?;
                    done.push(ns.as_str());
                }
            }
            Ok(match done.len() {
                0 => format!("no table inet {table} left in {}", netns.join(", ")),
                _ => format!("deleted table inet {table} in {}", done.join(", ")),
            })
        }
    }
}

/// Stops this drill's running experiments of an FIS template (found by the drill's tag).
async fn stop_experiments(aws: &Options, template: &str, drill: &str) -> Result<String, String> {
    let client = Aws::connect(aws).await;
    let list = client
        .experiments_of(template, drill)
        .await
        .map_err(|e| e.to_string())?;
    let mut stopped = Vec::new();
    for e in list.iter().filter(|e| !e.finished()) {
        client
            .stop_experiment(&e.id)
            .await
            .map_err(|err| err.to_string())?;
        stopped.push(e.id.clone());
    }
    Ok(match stopped.len() {
        0 => format!("no experiment of template {template} still running"),
        _ => format!("stopped FIS experiment(s) {}", stopped.join(", ")),
    })
}

/// Kills every process working in `dir`, releases the shared memory of any PostgreSQL data
/// directory in it, and removes it.
async fn remove_dir(dir: &Path) -> Result<String, String> {
    if !dir.exists() {
        return Ok(format!("{} already gone", dir.display()));
    }
    let owned = dir.to_owned();
    let killed = tokio::task::spawn_blocking(move || kill_all_in(&owned))
        .await
        .map_err(|e| e.to_string())??;
    std::fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    Ok(match killed {
        0 => format!("removed {}", dir.display()),
        n => format!("killed {n} processes and removed {}", dir.display()),
    })
}

/// SIGKILLs every process working in `dir` (paused ones too) until none is left, then
/// releases the shared memory of the PostgreSQL data directories in it. Blocks for at most
/// ten seconds; returns how many processes it killed.
pub fn kill_all_in(dir: &Path) -> Result<usize, String> {
    let mut killed = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = processes_in(dir);
        if pids.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "processes {pids:?} in {} survive SIGKILL",
                dir.display()
            ));
        }
        for &pid in &pids {
            // SIGKILL ends a stopped (paused) process too.
            // SAFETY: kill has no memory-safety preconditions.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for data_dir in data_dirs(dir) {
        release_shared_memory(&data_dir);
    }
    Ok(killed)
}

/// Live processes whose working directory is `dir` or below it (zombies have none).
pub fn processes_in(dir: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
}

/// PostgreSQL data directories (with a `postmaster.pid`) at most two levels below `dir`.
fn data_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut level = vec![dir.to_owned()];
    for _ in 0..3 {
        let mut next = Vec::new();
        for d in level {
            if d.join("postmaster.pid").is_file() {
                found.push(d.clone());
            }
            if let Ok(rd) = std::fs::read_dir(&d) {
                next.extend(
                    rd.filter_map(|e| e.ok())
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
        level = next;
    }
    found
}

/// An idempotent delete's outcome as `recover` prints it.
fn told(deleted: Result<bool, AwsError>, what: &str) -> Result<String, String> {
    match deleted {
        Ok(true) => Ok(format!("deleted {what}")),
        Ok(false) => Ok(format!("{what} already gone")),
        Err(e) => Err(e.to_string()),
    }
}

/// A postmaster killed with SIGKILL leaves its System V shared memory segment behind; its id is
/// on line 7 of `postmaster.pid`. Removing it (when nothing is attached) keeps repeated drills
/// from exhausting the kernel's segment table.
pub fn release_shared_memory(data_dir: &Path) {
    let Ok(pidfile) = std::fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return;
    };
    let Some(id) = pidfile
        .lines()
        .nth(6)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|id| id.parse::<i32>().ok())
    else {
        return;
    };
    // SAFETY: shmid_ds is plain data; shmctl writes into it or fails.
    unsafe {
        let mut ds: libc::shmid_ds = std::mem::zeroed();
        if libc::shmctl(id, libc::IPC_STAT, &mut ds) == 0 && ds.shm_nattch == 0 {
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}
