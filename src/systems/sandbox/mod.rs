//! A throwaway PostgreSQL primary with streaming standbys on loopback: the embedded default target.
//!
//! Each node is a `postgres` process in its own process group, so a fault can stop or kill a whole
//! "host" (postmaster and backends) at once. Everything lives in one temporary directory, removed
//! on teardown, also when the sandbox is dropped on an error or an abort.

mod build;
mod zones;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

use crate::error::EnvError;
use crate::net::Fabric;
use crate::net::zone::ZoneRuntime;
use crate::pg::binaries::PgBinaries;
pub use crate::pg::errors::{db_err, describe_pg_error};
use crate::pg::signal::Stopping;
pub use crate::pg::signal::signal_node;
use crate::process::last_lines;
use crate::safety::journal::{self, EffectId, Journal};
use crate::scenario::{Replication, StopMode, ZoneLayout};
use crate::template::TemplateCache;

/// The bootstrap superuser of every sandbox.
pub const SUPERUSER: &str = "firedrill";
const START_DEADLINE: Duration = Duration::from_secs(60);
/// The zones' addresses ([`crate::scenario::ZoneLayout::address`]).
const FABRIC_SUBNET: &str = "10.77.0.0/24";

#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub standbys: u8,
    pub replication: Replication,
    pub settings: BTreeMap<String, String>,
    pub work_dir: Option<PathBuf>,
    /// uid/gid to run PostgreSQL as (when firedrill is root).
    pub run_as: Option<(u32, u32)>,
    /// Where the sandbox's directory is recorded before it is made.
    pub journal: Journal,
    /// Where `initdb`'s output is cached for the next sandbox ([`super::template`]); `None`
    /// runs `initdb` every time.
    pub templates: Option<TemplateCache>,
    /// SQL run on the primary once the sandbox is up.
    pub seed_sql: Vec<String>,
    /// Archive WAL into `wal-archive` and take a base backup into `base-backup`.
    pub wal_archive: bool,
    /// Zones, and the programs that build them (found before anything is touched); `None`:
    /// every node on loopback.
    pub zones: Option<(ZoneLayout, crate::net::Tools)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Primary,
    Standby,
    /// Killed, stopped, or superseded by a promotion.
    Down,
}

#[derive(Debug)]
pub struct Node {
    pub name: String,
    /// Where it listens: its zone's address, or loopback.
    pub addr: Ipv4Addr,
    /// Its zone's namespace, when the sandbox has zones.
    pub netns: Option<String>,
    pub port: u16,
    pub data_dir: PathBuf,
    pub role: Role,
    child: Option<Child>,
}

impl Node {
    /// The postmaster's pid, while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }
}

pub struct Sandbox {
    /// The journal entry of the directory, while it exists and is ours to remove.
    root: Option<EffectId>,
    root_path: PathBuf,
    bins: PgBinaries,
    config: SandboxConfig,
    pub nodes: Vec<Node>,
    /// The template the primary was copied from (or stored as): its standbys copy it too.
    pristine: Option<PathBuf>,
    /// The zones' namespaces, when the sandbox has zones.
    fabric: Option<Box<Fabric>>,
    /// A runtime in each client zone, in the layout's order of client zones.
    client_zones: Vec<ZoneRuntime>,
}

/// Progress of a build, for the live display.
pub type Progress<'a> = &'a (dyn Fn(String) + Send + Sync);

impl Sandbox {
    /// Starts a node on a data directory someone else filled (a restored base backup) and
    /// waits until it accepts connections. `extra_conf` is appended to its `postgresql.conf`
    /// (recovery settings); WAL archiving is switched off, so a restored copy never writes
    /// into its source's archive. The node becomes the sandbox's primary.
    pub async fn start_restored(
        &mut self,
        name: &str,
        data_dir: PathBuf,
        extra_conf: &str,
    ) -> Result<usize, EnvError> {
        let port = free_port()?;
        let (addr, netns) = self.placement(name);
        let mut conf = self.base_conf(port, addr);
        conf.push_str("archive_mode = off\n");
        conf.push_str(extra_conf);
        append(&data_dir.join("postgresql.conf"), &conf)?;
        // A server refuses a data directory others can read; copies may have lost the mode.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(EnvError::io(format!("cannot chmod {}", data_dir.display())))?;
        self.nodes.push(Node {
            name: name.into(),
            addr,
            netns,
            port,
            data_dir,
            role: Role::Primary,
            child: None,
        });
        let idx = self.nodes.len() - 1;
        self.start(idx).await?;
        Ok(idx)
    }

    /// Waits until node `idx` has left recovery (reached its recovery target and promoted).
    /// A server that stops instead (the target was never reached, WAL is missing) is an error
    /// with the last lines of its log.
    pub async fn wait_promoted(&mut self, idx: usize, deadline: Duration) -> Result<(), EnvError> {
        let until = Instant::now() + deadline;
        let log_path = self.log_path(&self.nodes[idx].name);
        loop {
            if let Some(Ok(Some(status))) = self.nodes[idx].child.as_mut().map(|c| c.try_wait()) {
                self.nodes[idx].child = None;
                self.nodes[idx].role = Role::Down;
                return Err(EnvError::Command {
                    what: format!("recovery of {}", self.nodes[idx].name),
                    status: status.to_string(),
                    log: tail(&log_path, 15),
                });
            }
            if let Ok(c) = self.connect(idx).await
                && let Ok(row) = c.query_one("select pg_is_in_recovery()", &[]).await
                && !row.get::<_, bool>(0)
            {
                return Ok(());
            }
            if Instant::now() > until {
                return Err(EnvError::Timeout {
                    what: format!("recovery of {}", self.nodes[idx].name),
                    waited: humantime::format_duration(deadline).to_string(),
                    log: tail(&log_path, 15),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The uid/gid PostgreSQL runs as, when firedrill runs as root.
    pub fn run_as(&self) -> Option<(u32, u32)> {
        self.config.run_as
    }

    pub fn bins(&self) -> &PgBinaries {
        &self.bins
    }

    /// The socket directory (for tools that connect over the Unix socket, e.g. pgBackRest).
    pub fn socket_dir(&self) -> PathBuf {
        self.root_path.join("sock")
    }

    /// The server log of a node, for messages.
    pub fn log_tail(&self, node: &str, n: usize) -> String {
        tail(&self.log_path(node), n)
    }

    /// Sets `path` (and, for a directory, everything under it) to the PostgreSQL user.
    pub fn chown_tree(&self, path: &Path) -> Result<(), EnvError> {
        if self.config.run_as.is_none() {
            return Ok(());
        }
        self.chown(path)?;
        if path.is_dir() {
            for e in std::fs::read_dir(path)
                .map_err(EnvError::io(format!("cannot list {}", path.display())))?
            {
                let e = e.map_err(EnvError::io(format!("cannot list {}", path.display())))?;
                self.chown_tree(&e.path())?;
            }
        }
        Ok(())
    }

    /// Where a sandbox with `wal_archive` keeps its WAL archive and its base backup.
    pub fn wal_archive(&self) -> PathBuf {
        self.root_path.join("wal-archive")
    }

    pub fn base_backup(&self) -> PathBuf {
        self.root_path.join("base-backup")
    }

    pub fn root(&self) -> &Path {
        &self.root_path
    }

    pub fn node(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// A node's port and data directory, as an operator's command names them.
    pub fn node_port_dir(&self, idx: usize) -> (u16, PathBuf) {
        (self.nodes[idx].port, self.nodes[idx].data_dir.clone())
    }

    pub fn primary(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.role == Role::Primary)
    }

    /// The application's view: every node, and libpq picks the one that accepts writes. With
    /// zones, it works only from a client zone ([`Sandbox::client_zones`]).
    pub fn client_config(&self, connect_timeout: Duration) -> tokio_postgres::Config {
        let mut c = loopback_client(std::iter::empty(), connect_timeout);
        for n in &self.nodes {
            c.host(n.addr.to_string()).port(n.port);
        }
        c
    }

    pub fn describe(&self) -> String {
        let place = match &self.fabric {
            Some(f) => format!(
                "in zones {}",
                f.layout()
                    .zones
                    .iter()
                    .map(|(z, n)| format!("{z} [{}]", n.join(", ")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "on 127.0.0.1".into(),
        };
        format!(
            "local sandbox: primary + {} {} standby{} {place} ({})",
            self.config.standbys,
            match self.config.replication {
                Replication::Async => "asynchronous",
                Replication::Synchronous => "synchronous",
            },
            if self.config.standbys == 1 { "" } else { "s" },
            self.bins.version().unwrap_or_else(|| "PostgreSQL".into())
        )
    }

    /// Connects straight to one node (not through the multi-host DSN).
    pub async fn connect(&self, idx: usize) -> Result<Client, EnvError> {
        let n = &self.nodes[idx];
        let mut c = tokio_postgres::Config::new();
        c.host(self.admin_host())
            .port(n.port)
            .user(SUPERUSER)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(5));
        let (client, conn) = c.connect(NoTls).await.map_err(|e| EnvError::Unreachable {
            what: format!("sandbox {} on port {}", n.name, n.port),
            reason: e.to_string(),
        })?;
        tokio::spawn(conn);
        Ok(client)
    }

    // ---- faults --------------------------------------------------------------------------

    /// SIGKILL every process of the node, as a crashed host.
    pub fn kill(&mut self, idx: usize) -> Result<(), EnvError> {
        let node = &mut self.nodes[idx];
        if let Some(pid) = node.pid() {
            signal_node(pid, libc::SIGKILL);
        }
        if let Some(mut child) = node.child.take() {
            let _ = child.wait();
        }
        node.role = Role::Down;
        Ok(())
    }

    /// SIGSTOP every process of the node: a hung host. Returns the processes stopped; the
    /// journal's `resume` undo (by working directory) ends it, and teardown resumes every node.
    pub fn pause(&self, idx: usize) -> Option<Vec<i32>> {
        Some(signal_node(self.nodes[idx].pid()?, libc::SIGSTOP))
    }

    /// Stops the node as `pg_ctl stop -m fast|immediate` would, and waits for it to exit.
    pub async fn stop(&mut self, idx: usize, mode: StopMode) -> Result<(), EnvError> {
        let sig = match mode {
            StopMode::Fast => libc::SIGINT,
            StopMode::Immediate => libc::SIGQUIT,
        };
        let node = &mut self.nodes[idx];
        let Some(mut child) = node.child.take() else {
            return Ok(());
        };
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, sig) };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                signal_node(child.id() as i32, libc::SIGKILL);
                let _ = child.wait();
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        node.role = Role::Down;
        Ok(())
    }

    /// Promotes a standby, waits until it accepts writes, and repoints the other standbys to it.
    pub async fn promote(&mut self, idx: usize) -> Result<(), EnvError> {
        let client = self.connect(idx).await?;
        let ok: bool = client
            .query_one("select pg_promote(true, 60)", &[])
            .await
            .map_err(db_err("pg_promote"))?
            .get(0);
        if !ok {
            return Err(EnvError::Database(format!(
                "{} did not finish promotion within 60s",
                self.nodes[idx].name
            )));
        }
        for n in &mut self.nodes {
            if n.role == Role::Primary {
                n.role = Role::Down;
            }
        }
        self.nodes[idx].role = Role::Primary;
        let (new_addr, new_port) = (self.nodes[idx].addr, self.nodes[idx].port);
        let followers: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].role == Role::Standby)
            .collect();
        for &f in &followers {
            let name = self.nodes[f].name.clone();
            let c = self.connect(f).await?;
            alter_system(&c, "primary_conninfo", &conninfo(new_addr, new_port, &name)).await?;
        }
        if self.config.replication == Replication::Synchronous && !followers.is_empty() {
            let names: Vec<String> = followers
                .iter()
                .map(|&f| self.nodes[f].name.clone())
                .collect();
            set_sync_standbys(&client, &names).await?;
        }
        Ok(())
    }

    // ---- lifecycle ----------------------------------------------------------------------

    async fn start(&mut self, idx: usize) -> Result<(), EnvError> {
        let log_path = self.log_path(&self.nodes[idx].name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(EnvError::io(format!("cannot open {}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(EnvError::io("cannot duplicate the log handle"))?;
        let mut cmd = Command::new(self.bins.program("postgres"));
        cmd.arg("-D")
            .arg(&self.nodes[idx].data_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: the terminal's Ctrl-C reaches only firedrill, which then
            // tears down in order.
            .process_group(0);
        self.as_user(&mut cmd);
        let child = match self.nodes[idx].netns.clone() {
            Some(ns) => crate::net::zone::within(&ns, || cmd.spawn())?,
            None => cmd.spawn(),
        }
        .map_err(EnvError::io("cannot start postgres"))?;
        self.nodes[idx].child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(Ok(Some(status))) = self.nodes[idx].child.as_mut().map(|c| c.try_wait()) {
                self.nodes[idx].child = None;
                return Err(EnvError::Command {
                    what: format!("postgres ({})", self.nodes[idx].name),
                    status: status.to_string(),
                    log: tail(&log_path, 15),
                });
            }
            if self.connect(idx).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(EnvError::Timeout {
                    what: format!("postgres ({})", self.nodes[idx].name),
                    waited: humantime::format_duration(START_DEADLINE).to_string(),
                    log: tail(&log_path, 15),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_replication(&self, primary: &Client) -> Result<(), EnvError> {
        let want = self.config.standbys as i64;
        let sync = self.config.replication == Replication::Synchronous;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let row = primary
                .query_one(
                    "select count(*) filter (where state = 'streaming'), \
                            count(*) filter (where sync_state in ('sync', 'quorum')) \
                     from pg_stat_replication",
                    &[],
                )
                .await
                .map_err(db_err("reading pg_stat_replication"))?;
            let (streaming, synchronous): (i64, i64) = (row.get(0), row.get(1));
            if streaming >= want && (!sync || synchronous >= 1) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(EnvError::Timeout {
                    what: format!("replication ({streaming} of {want} standbys streaming)"),
                    waited: humantime::format_duration(START_DEADLINE).to_string(),
                    log: tail(&self.log_path("standby1"), 15),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every node and, unless `keep`, removes the sandbox directory. Idempotent. Waits
    /// for each postmaster without holding a runtime thread.
    pub async fn shutdown(&mut self, keep: bool) -> Option<PathBuf> {
        for n in &mut self.nodes {
            if let Some(mut stopping) = n.child.take().map(Stopping::begin) {
                while stopping.waiting() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                stopping.finish();
            }
            crate::safety::undo::release_shared_memory(&n.data_dir);
        }
        self.close(keep)
    }

    /// [`Sandbox::shutdown`] from synchronous code: a sandbox dropped half-built (Ctrl-C during
    /// setup), where there is nothing to await.
    pub fn teardown(&mut self, keep: bool) -> Option<PathBuf> {
        for n in &mut self.nodes {
            if let Some(mut stopping) = n.child.take().map(Stopping::begin) {
                while stopping.waiting() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                stopping.finish();
            }
            crate::safety::undo::release_shared_memory(&n.data_dir);
        }
        self.close(keep)
    }

    /// After every node stopped: the zones removed, the directory removed (or kept), and the
    /// journal told.
    fn close(&mut self, keep: bool) -> Option<PathBuf> {
        self.client_zones.clear();
        if let Some(f) = &mut self.fabric {
            f.destroy(&self.config.journal);
        }
        let id = self.root.take()?;
        if keep {
            self.config.journal.undone(
                id,
                "stopped every node; directory kept by the cleanup policy",
            );
            return Some(self.root_path.clone());
        }
        journal::remove_dir(
            &self.config.journal,
            id,
            &self.root_path,
            "stopped every node and removed it",
        );
        None
    }

    // ---- helpers ------------------------------------------------------------------------

    fn base_conf(&self, port: u16, addr: Ipv4Addr) -> String {
        let mut conf = format!(
            "\n# firedrill sandbox\nport = {port}\nlisten_addresses = '{addr}'\n\
             unix_socket_directories = '{sock}'\nwal_level = replica\nmax_wal_senders = 16\n\
             wal_keep_size = '512MB'\nhot_standby = on\n\
             # A promoted standby otherwise waits up to 5s (the default) before it retries WAL.\n\
             wal_retrieve_retry_interval = '20ms'\nwal_receiver_status_interval = '1s'\n\
             logging_collector = off\nlog_min_messages = warning\n",
            sock = self.root_path.join("sock").display()
        );
        if self.config.wal_archive {
            // Relative to the data directory, where the archiver runs: every node of the
            // sandbox (a promoted standby too) archives into the one directory.
            conf.push_str(
                "archive_mode = on\narchive_command = 'test ! -f ../wal-archive/%f && cp %p \
                 ../wal-archive/%f'\n",
            );
        }
        for (k, v) in &self.config.settings {
            conf.push_str(&format!("{k} = '{}'\n", v.replace('\'', "''")));
        }
        conf
    }

    fn log_path(&self, node: &str) -> PathBuf {
        self.root_path.join("log").join(format!("{node}.log"))
    }

    fn as_user(&self, cmd: &mut Command) {
        if let Some((uid, gid)) = self.config.run_as {
            cmd.uid(uid).gid(gid);
        }
    }

    fn chown(&self, path: &Path) -> Result<(), EnvError> {
        if let Some((uid, gid)) = self.config.run_as {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(EnvError::io(format!("cannot chown {}", path.display())))?;
        }
        Ok(())
    }

    fn run_tool(&self, what: &str, cmd: &mut Command) -> Result<(), EnvError> {
        self.as_user(cmd);
        // A directory the unprivileged user can enter: the tool may start in root's home.
        cmd.current_dir(&self.root_path).stdin(Stdio::null());
        let out = cmd
            .output()
            .map_err(EnvError::io(format!("cannot run {what}")))?;
        if !out.status.success() {
            let mut log = String::from_utf8_lossy(&out.stderr).into_owned();
            log.push_str(&String::from_utf8_lossy(&out.stdout));
            return Err(EnvError::Command {
                what: what.to_owned(),
                status: out.status.to_string(),
                log: last_lines(&log, 15),
            });
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.teardown(false);
    }
}

async fn set_sync_standbys(client: &Client, names: &[String]) -> Result<(), EnvError> {
    let list = format!("ANY 1 ({})", names.join(", "));
    alter_system(client, "synchronous_standby_names", &list).await
}

/// `ALTER SYSTEM` then a reload; each its own statement, as ALTER SYSTEM refuses transactions.
async fn alter_system(client: &Client, name: &str, value: &str) -> Result<(), EnvError> {
    let value = value.replace('\'', "''");
    client
        .batch_execute(&format!("alter system set {name} = '{value}'"))
        .await
        .map_err(db_err("alter system"))?;
    client
        .batch_execute("select pg_reload_conf()")
        .await
        .map_err(db_err("pg_reload_conf"))
}

fn conninfo(addr: Ipv4Addr, port: u16, application_name: &str) -> String {
    format!(
        "host={addr} port={port} user={SUPERUSER} application_name={application_name} \
         connect_timeout=2"
    )
}

/// What an application of a loopback cluster uses: every server's port, the superuser, and
/// `target_session_attrs=read-write`, so that libpq finds whichever server takes writes.
pub(crate) fn loopback_client(
    ports: impl Iterator<Item = u16>,
    connect_timeout: Duration,
) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    for p in ports {
        c.host("127.0.0.1").port(p);
    }
    c.user(SUPERUSER)
        .dbname("postgres")
        .application_name("firedrill")
        .target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite)
        .connect_timeout(connect_timeout);
    c
}

/// A free loopback port (the OS picks; the race with another process taking it is caught when
/// the node fails to start).
pub(crate) fn free_port() -> Result<u16, EnvError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(EnvError::io("cannot find a free loopback port"))?;
    Ok(l.local_addr()
        .map_err(EnvError::io("cannot read a port"))?
        .port())
}

fn append(path: &Path, text: &str) -> Result<(), EnvError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(EnvError::io(format!("cannot write {}", path.display())))
}

fn tail(path: &Path, n: usize) -> String {
    std::fs::read_to_string(path)
        .map(|t| last_lines(&t, n))
        .unwrap_or_default()
}
