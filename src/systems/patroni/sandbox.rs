//! A Patroni cluster firedrill builds for a drill: one etcd and N Patroni members, each with
//! its PostgreSQL, on free loopback ports in one temporary directory (journaled before it
//! exists, removed with every process working in it). Patroni bootstraps the leader and
//! clones the replicas itself; firedrill only writes each member's configuration, starts the
//! programs and waits until the cluster is whole.
//!
//! Each member lives in its own directory (`member1/`, with `data/` below), and each program's
//! working directory is in it, so "every process of the member" (a host) is found by working
//! directory: Patroni, the postmaster and its renamed backends alike.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::rest::{Api, Topology};
use crate::error::EnvError;
use crate::pg::binaries::{self, PgBinaries};
use crate::safety::journal::{self, EffectId, Journal};
use crate::scenario::{PatroniSandboxSpec, patroni_members};
use crate::systems::sandbox::{Progress, SUPERUSER, free_port, loopback_client};

/// How long a whole cluster may take to come up (bootstrap, clones, replication).
const READY_DEADLINE: Duration = Duration::from_secs(120);

pub struct Member {
    pub name: String,
    pub dir: PathBuf,
    pub pg_port: u16,
    pub api_port: u16,
    patroni: Option<Child>,
}

impl Member {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

pub struct PatroniSandbox {
    root: Option<EffectId>,
    root_path: PathBuf,
    journal: Journal,
    pub members: Vec<Member>,
    pub etcd_dir: PathBuf,
    etcd: Option<Child>,
    pub api: Api,
    postgres_version: Option<String>,
    patroni_version: Option<String>,
    spec: PatroniSandboxSpec,
}

impl PatroniSandbox {
    pub async fn build(
        spec: &PatroniSandboxSpec,
        journal: &Journal,
        progress: Progress<'_>,
    ) -> Result<PatroniSandbox, EnvError> {
        let bins = PgBinaries::locate(spec.bin_dir.as_deref())?;
        let patroni = binaries::locate_program(
            spec.patroni.as_deref(),
            "FIREDRILL_PATRONI",
            "patroni",
            "patroni",
        )?;
        let etcd = binaries::locate_program(
            spec.etcd.as_deref(),
            "FIREDRILL_ETCD",
            "etcd",
            "etcd-server",
        )?;
        let run_as = binaries::run_as(spec.run_as.as_deref())?;
        progress(format!(
            "PostgreSQL programs in {}, {}, {}",
            bins.dir.display(),
            patroni.display(),
            etcd.display()
        ));
        let (root_path, root) = journal::create_dir(
            journal,
            spec.work_dir.as_deref(),
            "firedrill-patroni-",
            "the Patroni sandbox directory",
        )?;
        let names = patroni_members(spec.members);
        let mut members = Vec::new();
        for name in &names {
            members.push(Member {
                name: name.clone(),
                dir: root_path.join(name),
                pg_port: free_port()?,
                api_port: free_port()?,
                patroni: None,
            });
        }
        let urls: Vec<String> = members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.api_port))
            .collect();
        let mut sb = PatroniSandbox {
            root: Some(root),
            etcd_dir: root_path.join("etcd"),
            root_path,
            journal: journal.clone(),
            members,
            etcd: None,
            api: Api::new(&urls.join(","), "the sandbox's members")?,
            postgres_version: bins.version(),
            patroni_version: None,
            spec: spec.clone(),
        };
        let owner = run_as;
        let mkdir = |d: &Path| -> Result<(), EnvError> {
            std::fs::create_dir(d)
                .map_err(EnvError::io(format!("cannot create {}", d.display())))?;
            chown(d, owner)
        };
        chown(&sb.root_path, owner)?;
        mkdir(&sb.etcd_dir)?;

        let (client_port, peer_port) = (free_port()?, free_port()?);
        progress(format!("etcd on 127.0.0.1:{client_port}"));
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut cmd = Command::new(&etcd);
        cmd.arg("--name")
            .arg("etcd")
            .arg("--data-dir")
            .arg(sb.etcd_dir.join("data"))
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("etcd={peer_url}"));
        sb.etcd = Some(spawn(&mut cmd, &sb.etcd_dir, run_as, "etcd")?);
        wait_etcd(&client_url, &sb.etcd_dir.join("etcd.log")).await?;

        for i in 0..sb.members.len() {
            let m = &sb.members[i];
            mkdir(&m.dir)?;
            let config = member_config(m, spec, &bins.dir, client_port);
            let path = m.dir.join("patroni.yml");
            // JSON is YAML: Patroni reads it as its configuration file.
            std::fs::write(
                &path,
                serde_json::to_vec_pretty(&config).unwrap_or_default(),
            )
            .map_err(EnvError::io(format!("cannot write {}", path.display())))?;
            chown(&path, owner)?;
            let mut cmd = Command::new(&patroni);
            cmd.arg(&path);
            let child = spawn(&mut cmd, &m.dir, run_as, "patroni")?;
            progress(format!(
                "{} (Patroni API 127.0.0.1:{}, PostgreSQL 127.0.0.1:{})",
                m.name, m.api_port, m.pg_port
            ));
            sb.members[i].patroni = Some(child);
        }
        progress("waiting for a leader and streaming replicas".into());
        let topology = sb.wait_ready().await?;
        progress(format!(
            "leader {}",
            topology.leader().map(|l| l.name.as_str()).unwrap_or("?")
        ));
        sb.patroni_version = sb
            .api
            .status()
            .await
            .ok()
            .and_then(|s| s.patroni)
            .map(|p| p.version);
        Ok(sb)
    }

    /// Waits until one member leads and every other one replicates with no lag (one of them
    /// synchronously in synchronous mode); a Patroni that exits is an error with its log.
    async fn wait_ready(&mut self) -> Result<Topology, EnvError> {
        let want = self.members.len();
        let sync = self.spec.dcs.synchronous_mode;
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            for m in &mut self.members {
                if let Some(Ok(Some(status))) = m.patroni.as_mut().map(|c| c.try_wait()) {
                    m.patroni = None;
                    return Err(EnvError::Command {
                        what: format!("patroni ({})", m.name),
                        status: status.to_string(),
                        log: log_tail(&m.dir.join("patroni.log"), 15),
                    });
                }
            }
            let last = match self.api.cluster().await {
                Ok(t) => {
                    let leader = t.leader().is_some_and(|l| l.state == "running");
                    let replicas = t
                        .members
                        .iter()
                        .filter(|m| {
                            !matches!(m.role.as_str(), "leader" | "master")
                                && matches!(m.state.as_str(), "running" | "streaming")
                                && m.lag_bytes == Some(0)
                        })
                        .count();
                    let has_sync = t.members.iter().any(|m| m.role == "sync_standby");
                    if leader && replicas + 1 == want && (!sync || has_sync) {
                        return Ok(t);
                    }
                    t.members
                        .iter()
                        .map(|m| format!("{} {} {}", m.name, m.role, m.state))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(EnvError::Timeout {
                    what: format!("the Patroni cluster ({last})"),
                    waited: humantime::format_duration(READY_DEADLINE).to_string(),
                    log: log_tail(&self.members[0].dir.join("patroni.log"), 15),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// SIGKILLs every process of the member (Patroni, the postmaster, its backends): the host
    /// died. Everything is frozen first, so nothing restarts what was just killed; the instant
    /// it froze (when clients stopped getting answers) comes back with the count.
    pub fn kill_host(&mut self, name: &str) -> Result<(usize, Instant), EnvError> {
        let m = self
            .members
            .iter_mut()
            .find(|m| m.name == name)
            .ok_or_else(|| EnvError::Database(format!("no member named {name}")))?;
        for pid in crate::safety::undo::processes_in(&m.dir) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
        }
        let frozen = Instant::now();
        let killed = crate::safety::undo::kill_all_in(&m.dir).map_err(EnvError::Database)?;
        if let Some(mut c) = m.patroni.take() {
            let _ = c.wait();
        }
        Ok((killed, frozen))
    }

    /// SIGKILLs the member's postmaster and its children; Patroni lives on.
    pub fn kill_postgres(&self, name: &str) -> Result<i32, EnvError> {
        let m = self
            .member(name)
            .ok_or_else(|| EnvError::Database(format!("no member named {name}")))?;
        let pidfile = m.data_dir().join("postmaster.pid");
        let pid = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok())
            .ok_or_else(|| {
                EnvError::Database(format!(
                    "{name}'s PostgreSQL is not running (no postmaster.pid)"
                ))
            })?;
        crate::pg::signal::signal_node(pid, libc::SIGKILL);
        Ok(pid)
    }

    /// SIGSTOPs every process working in `dir`; returns how many.
    pub fn freeze(dir: &Path) -> usize {
        let pids = crate::safety::undo::processes_in(dir);
        for &pid in &pids {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
        }
        pids.len()
    }

    /// The application's view: every member's PostgreSQL, and libpq picks the one that
    /// accepts writes.
    pub fn client_config(&self, connect_timeout: Duration) -> tokio_postgres::Config {
        loopback_client(self.members.iter().map(|m| m.pg_port), connect_timeout)
    }

    pub fn describe(&self) -> String {
        format!(
            "local Patroni sandbox: {} members{} with etcd on 127.0.0.1 (Patroni {}, {})",
            self.members.len(),
            if self.spec.dcs.synchronous_mode {
                ", synchronous mode"
            } else {
                ""
            },
            self.patroni_version.as_deref().unwrap_or("?"),
            self.postgres_version.as_deref().unwrap_or("PostgreSQL")
        )
    }

    /// Kills every process in the directory and removes it (or keeps it). Idempotent.
    pub async fn shutdown(&mut self, keep: bool) -> Option<PathBuf> {
        let root = self.root_path.clone();
        let killed = tokio::task::spawn_blocking(move || crate::safety::undo::kill_all_in(&root))
            .await
            .ok()?;
        self.reap();
        self.close(keep, killed.is_ok())
    }

    fn reap(&mut self) {
        for c in self
            .members
            .iter_mut()
            .filter_map(|m| m.patroni.take())
            .chain(self.etcd.take())
        {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn close(&mut self, keep: bool, stopped: bool) -> Option<PathBuf> {
        let id = self.root.take()?;
        if !stopped {
            eprintln!(
                "warning: processes survive in {}; `firedrill recover` retries",
                self.root_path.display()
            );
            return None;
        }
        if keep {
            self.journal.undone(
                id,
                "stopped every process; directory kept by the cleanup policy",
            );
            return Some(self.root_path.clone());
        }
        journal::remove_dir(
            &self.journal,
            id,
            &self.root_path,
            "stopped every process and removed it",
        );
        None
    }
}

impl Drop for PatroniSandbox {
    fn drop(&mut self) {
        if self.root.is_some() {
            let stopped = crate::safety::undo::kill_all_in(&self.root_path).is_ok();
            self.reap();
            self.close(false, stopped);
        }
    }
}

/// A member's Patroni configuration: its addresses, the cluster's DCS settings (used when it
/// bootstraps the cluster), PostgreSQL's programs and trust authentication on loopback.
fn member_config(
    m: &Member,
    spec: &PatroniSandboxSpec,
    bin_dir: &Path,
    etcd_port: u16,
) -> serde_json::Value {
    let d = &spec.dcs;
    let mut parameters = serde_json::json!({
        "wal_log_hints": "on",
        "wal_keep_size": "512MB",
        "max_wal_senders": 16,
        "max_replication_slots": 16,
        "wal_receiver_status_interval": "1s",
        "wal_retrieve_retry_interval": "200ms",
        "logging_collector": "off",
        "log_min_messages": "warning",
    });
    for (k, v) in &spec.settings {
        parameters[k] = v.clone().into();
    }
    let hba = [
        "local all all trust",
        "host all all 127.0.0.1/32 trust",
        "host replication all 127.0.0.1/32 trust",
    ];
    serde_json::json!({
        "scope": "firedrill",
        "name": m.name,
        "log": { "level": "INFO" },
        "restapi": {
            "listen": format!("127.0.0.1:{}", m.api_port),
            "connect_address": format!("127.0.0.1:{}", m.api_port),
        },
        "etcd3": { "hosts": format!("127.0.0.1:{etcd_port}") },
        "watchdog": { "mode": "off" },
        "bootstrap": {
            "dcs": {
                "ttl": d.ttl,
                "loop_wait": d.loop_wait,
                "retry_timeout": d.retry_timeout,
                "synchronous_mode": d.synchronous_mode,
                "synchronous_mode_strict": d.synchronous_mode_strict,
                "maximum_lag_on_failover": d.maximum_lag_on_failover,
                "primary_start_timeout": d.primary_start_timeout,
                "master_start_timeout": d.primary_start_timeout,
                "failsafe_mode": d.failsafe_mode,
                "postgresql": {
                    "use_pg_rewind": true,
                    "use_slots": true,
                    "parameters": parameters,
                },
            },
            "initdb": [ { "encoding": "UTF8" }, { "locale": "C" }, { "auth": "trust" } ],
            "pg_hba": hba,
        },
        "postgresql": {
            "listen": format!("127.0.0.1:{}", m.pg_port),
            "connect_address": format!("127.0.0.1:{}", m.pg_port),
            "data_dir": m.data_dir(),
            "bin_dir": bin_dir,
            "pgpass": m.dir.join("pgpass"),
            "authentication": {
                "superuser": { "username": SUPERUSER },
                "replication": { "username": SUPERUSER },
                "rewind": { "username": SUPERUSER },
            },
            "parameters": { "unix_socket_directories": m.dir },
            "pg_hba": hba,
        },
    })
}

/// Starts a program working in `dir` (so it is found there), logging to `dir/<name>.log`, in a
/// process group of its own (the terminal's Ctrl-C reaches firedrill only).
fn spawn(
    cmd: &mut Command,
    dir: &Path,
    run_as: Option<(u32, u32)>,
    name: &str,
) -> Result<Child, EnvError> {
    let log_path = dir.join(format!("{name}.log"));
    let log = File::create(&log_path).map_err(EnvError::io(format!(
        "cannot create {}",
        log_path.display()
    )))?;
    chown(&log_path, run_as)?;
    let err = log
        .try_clone()
        .map_err(EnvError::io("cannot duplicate the log handle"))?;
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0);
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
    }
    cmd.spawn()
        .map_err(EnvError::io(format!("cannot start {name}")))
}

async fn wait_etcd(url: &str, log: &Path) -> Result<(), EnvError> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{url}/health")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(EnvError::Timeout {
                what: "etcd".into(),
                waited: "30s".into(),
                log: log_tail(log, 15),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn chown(path: &Path, owner: Option<(u32, u32)>) -> Result<(), EnvError> {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(EnvError::io(format!("cannot chown {}", path.display())))?;
    }
    Ok(())
}

fn log_tail(path: &Path, n: usize) -> String {
    std::fs::read_to_string(path)
        .map(|t| crate::process::last_lines(&t, n))
        .unwrap_or_default()
}
