//! Restore drills: take (or pick) a backup of the target's database, restore it into a new
//! sandbox that is never the source, and prove the restored data against the source's state at
//! the recovery point: backup integrity, schema, per-table checksums, the workload's ledger,
//! `pg_amcheck` and the scenario's own assertions. Each step is timed in the timeline.
//!
//! How each backup kind knows the source's state at its recovery point (the README explains it
//! too): a dump is taken inside a snapshot firedrill exports and keeps open, and the source is
//! checksummed in that same snapshot; a physical restore to the latest point is compared after
//! firedrill's workload has stopped and the last WAL is archived (the sandbox source is then
//! quiescent); a restore to a point in time under live writes is checked write by write against
//! the ledger (every write acknowledged before the point present, none sent after it), and the
//! other tables, which nothing wrote, by checksum.
//!
//! Boundary: the drill's flow and its findings. The backup tools are driven by [`backup`], the
//! schema read by [`schema`], the WAL archive checked by [`wal`].

mod aws;
mod backup;
mod load;
pub mod schema;
mod verify;
pub mod wal;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio_postgres::{Client, Config};

use super::phases::{self, Writers, connect};
use super::{Ran, RunError, Teardown};
use crate::checksum::TableName;
use crate::error::EnvError;
use crate::event::{Event, EventSink, Phase};
use crate::measure::ms;
use crate::pg::binaries::{self, PgBinaries};
use crate::process::ToolError;
use crate::report::RestoreResult;
use crate::safety::journal::{self, EffectId, Journal};
use crate::scenario::{
    Backup, DbTarget, LoadedScenario, RecoveryTarget, Replication, Restore, RestoreSource,
};
use crate::systems::Driver;
use crate::systems::sandbox::{Sandbox, SandboxConfig, describe_pg_error};
use crate::template::TemplateCache;
use crate::workload::{self};
use verify::Findings;

/// Longest wait for a restored cluster to finish WAL recovery, and for the last WAL to be
/// archived.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(600);
const ARCHIVE_DEADLINE: Duration = Duration::from_secs(60);

pub struct Context<'a, 's> {
    pub loaded: &'a LoadedScenario,
    pub restore: &'a Restore,
    pub source: &'a RestoreSource,
    pub sink: &'a EventSink<'s>,
    pub cancel: watch::Receiver<bool>,
    pub run_id: &'a str,
    pub started_at: SystemTime,
    pub journal: Journal,
    pub templates: Option<TemplateCache>,
}

impl Context<'_, '_> {
    /// Deletes the drill's ledger rows from an existing source once the restored copy was
    /// checked against them (not with `workload.keep_rows` or `cleanup: never`).
    async fn remove_source_rows(&self, source: &Config) {
        let s = &self.loaded.scenario;
        if s.workload.connections == 0
            || !self.restore.ledger_writes(false)
            || !phases::removes_rows(s)
        {
            return;
        }
        match phases::delete_run_rows(source, &[&s.workload.table], self.run_id).await {
            Ok(n) => self.sink.emit(Event::Setup(format!(
                "removed this drill's {n} ledger rows from the source (workload.keep_rows keeps \
                 them)"
            ))),
            Err(e) => self.sink.emit(Event::Warning(format!(
                "cannot remove this drill's rows from the source (run {}): {e}",
                self.run_id
            ))),
        }
    }

    /// Builds (or reaches) `target` unless Ctrl-C comes first.
    async fn build_driver(&self, target: &DbTarget) -> Result<Driver, RunError> {
        phases::build_target(
            target,
            &self.journal,
            self.templates.as_ref(),
            self.sink,
            &self.cancel,
        )
        .await
    }

    /// The report's restore section as far as the scenario alone tells it.
    fn result(&self, sandbox_source: bool) -> RestoreResult {
        let r = self.restore;
        RestoreResult {
            backup_kind: r.backup.kind().into(),
            backup_taken: r.backup.takes(sandbox_source),
            recovery_target: match (&r.backup, &r.recovery_target) {
                (Backup::PgDump { .. }, _) => "snapshot".into(),
                (_, RecoveryTarget::Latest) => "latest".into(),
                (_, RecoveryTarget::Time { .. }) => "time".into(),
                (_, RecoveryTarget::AfterBackup { .. }) => "after-backup".into(),
            },
            ..Default::default()
        }
    }

    /// The abort reason of an interrupted drill, announced with what happens next.
    fn aborted(&self, ran: Result<(), Interrupted>, next: &str) -> Option<String> {
        let Err(Interrupted) = ran else {
            return None;
        };
        let why = "interrupted (Ctrl-C or SIGTERM)";
        self.sink.emit(Event::Aborted(format!("{why}; {next}")));
        Some(why.to_owned())
    }
}

/// Why the drill stopped early: Ctrl-C or SIGTERM.
struct Interrupted;

impl From<ToolError> for Finding {
    fn from(e: ToolError) -> Finding {
        match e {
            ToolError::Cancelled => Finding::Interrupted,
            ToolError::Env(e) => Finding::Failed(e.to_string()),
        }
    }
}

/// A step that did not succeed: a finding for the report, or an interruption.
enum Finding {
    Failed(String),
    Interrupted,
}

impl From<EnvError> for Finding {
    fn from(e: EnvError) -> Finding {
        Finding::Failed(e.to_string())
    }
}

impl From<tokio_postgres::Error> for Finding {
    fn from(e: tokio_postgres::Error) -> Finding {
        Finding::Failed(describe_pg_error(&e))
    }
}

/// The backup, once taken or found: what to restore and where the source stood.
pub(crate) struct Taken {
    /// The dump file or directory, the base backup directory, or the pgBackRest repository.
    pub path: PathBuf,
    /// How the backup is named in the report (a path or a stanza).
    pub source: String,
    pub bytes: Option<u64>,
    /// The recovery point, when known before the restore (UTC, RFC 3339).
    pub point: Option<String>,
    /// The recovery point on the drill clock, as an interval (see [`ledger::check_point`]).
    pub point_on_clock: Option<(Duration, Duration)>,
    /// `recovery_target_time` to restore to, for point-in-time kinds.
    pub target_time: Option<String>,
    /// A client on the source inside the dump's exported snapshot, for exact checksums.
    pub snapshot: Option<Client>,
}

pub async fn run<'a>(cx: Context<'a, '_>) -> Result<Ran<'a>, RunError> {
    match cx.source {
        RestoreSource::Rds {
            spec,
            instance,
            dsn_env,
        } => aws::run(cx, spec, instance, dsn_env).await,
        RestoreSource::Sandbox(_) | RestoreSource::Postgres(_) => local(cx).await,
    }
}

/// A restore by PostgreSQL's or pgBackRest's own programs into a new local sandbox.
async fn local<'a>(cx: Context<'a, '_>) -> Result<Ran<'a>, RunError> {
    let r = cx.restore;
    let sink = cx.sink;
    sink.emit(Event::Phase(Phase::Setup));
    let sandbox_source = matches!(cx.source, RestoreSource::Sandbox(_));
    backup::preflight(r, &cx.loaded.path, sandbox_source, &mut cx.cancel.clone()).await?;

    let restored_config = restored_sandbox_config(cx.source, r, &cx.journal, cx.templates.clone())?;
    let bins = PgBinaries::locate(restored_bin_dir(cx.source, r))?;
    let ws = Workspace::create(
        &cx.journal,
        restored_config.work_dir.as_deref(),
        restored_config.run_as,
    )?;
    let target = backup::source_target(cx.source, r, &ws);

    let driver = cx.build_driver(&target).await?;
    let description = format!(
        "{}; restored from {} into a new local sandbox",
        driver.describe(),
        r.backup.kind()
    );
    sink.emit(Event::Setup(description.clone()));

    let f = Findings::new(sink, cx.result(sandbox_source));
    let mut drill = RestoreDrill {
        cx,
        bins,
        restored_config,
        ws,
        driver,
        restored: None,
        f,
    };
    let ran = drill.run().await;
    if !sandbox_source && !*drill.cx.cancel.borrow() {
        let source = drill.driver.client_config(Duration::from_secs(10));
        drill.cx.remove_source_rows(&source).await;
    }
    let aborted = drill.cx.aborted(ran, "tearing down");
    let RestoreDrill {
        mut driver,
        mut restored,
        ws,
        f,
        ..
    } = drill;
    let teardown: Teardown<'a> = Box::new(move |keep| {
        Box::pin(async move {
            let mut kept = Vec::new();
            if let Some(sb) = restored.as_mut() {
                kept.extend(sb.shutdown(keep).await);
            }
            kept.extend(driver.teardown(keep).await);
            kept.extend(ws.close(keep));
            kept
        })
    });
    Ok(f.finish(description, aborted, teardown))
}

/// The drill's own directory: the backup, the WAL archive, pgBackRest's repository and logs.
pub(crate) struct Workspace {
    /// Its journal entry, while the directory is ours to remove.
    id: Option<EffectId>,
    journal: Journal,
    pub path: PathBuf,
    pub run_as: Option<(u32, u32)>,
}

impl Workspace {
    fn create(
        journal: &Journal,
        parent: Option<&Path>,
        run_as: Option<(u32, u32)>,
    ) -> Result<Workspace, EnvError> {
        let (path, id) = journal::create_dir(
            journal,
            parent,
            "firedrill-restore-",
            "the restore drill's directory",
        )?;
        let ws = Workspace {
            id: Some(id),
            journal: journal.clone(),
            path,
            run_as,
        };
        // PostgreSQL's archiver and pgBackRest write here as the PostgreSQL user.
        for sub in ["", "archive"] {
            let p = ws.path.join(sub);
            if !sub.is_empty() {
                std::fs::create_dir(&p)
                    .map_err(EnvError::io(format!("cannot create {}", p.display())))?;
            }
            ws.chown(&p)?;
        }
        Ok(ws)
    }

    pub fn archive(&self) -> PathBuf {
        self.path.join("archive")
    }

    pub fn chown(&self, p: &Path) -> Result<(), EnvError> {
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(p, Some(uid), Some(gid))
                .map_err(EnvError::io(format!("cannot chown {}", p.display())))?;
        }
        Ok(())
    }

    fn close(mut self, keep: bool) -> Option<PathBuf> {
        let id = self.id.take()?;
        if keep {
            self.journal
                .undone(id, "directory kept by the cleanup policy");
            return Some(self.path.clone());
        }
        self.remove(id);
        None
    }

    fn remove(&self, id: EffectId) {
        journal::remove_dir(&self.journal, id, &self.path, "removed");
    }
}

impl Drop for Workspace {
    /// An error or an abort between creation and [`Workspace::close`] still removes it.
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.remove(id);
        }
    }
}

/// The restored sandbox's server programs: its own, else a sandbox source's.
fn restored_bin_dir<'s>(source: &'s RestoreSource, r: &'s Restore) -> Option<&'s Path> {
    r.sandbox.bin_dir.as_deref().or(match source {
        RestoreSource::Sandbox(t) => t.bin_dir.as_deref(),
        RestoreSource::Postgres(_) | RestoreSource::Rds { .. } => None,
    })
}

fn restored_sandbox_config(
    source: &RestoreSource,
    r: &Restore,
    journal: &Journal,
    templates: Option<TemplateCache>,
) -> Result<SandboxConfig, EnvError> {
    let (run_as, work_dir) = match source {
        RestoreSource::Sandbox(t) => (
            r.sandbox.run_as.clone().or(t.run_as.clone()),
            r.sandbox.work_dir.clone().or(t.work_dir.clone()),
        ),
        RestoreSource::Postgres(_) | RestoreSource::Rds { .. } => {
            (r.sandbox.run_as.clone(), r.sandbox.work_dir.clone())
        }
    };
    Ok(SandboxConfig {
        seed_sql: Vec::new(),
        wal_archive: false,
        zones: None,
        standbys: 0,
        replication: Replication::Async,
        settings: r.sandbox.settings.clone(),
        work_dir,
        run_as: binaries::run_as(run_as.as_deref())?,
        journal: journal.clone(),
        templates,
    })
}

struct RestoreDrill<'a, 's> {
    cx: Context<'a, 's>,
    bins: PgBinaries,
    restored_config: SandboxConfig,
    ws: Workspace,
    driver: Driver,
    restored: Option<Sandbox>,
    f: Findings<'a, 's>,
}

impl RestoreDrill<'_, '_> {
    fn emit(&self, e: Event) {
        self.cx.sink.emit(e);
    }

    fn check(&mut self, name: &str, ok: bool, detail: String) {
        self.f.check(name, ok, detail);
    }

    fn interrupted(&self) -> bool {
        *self.cx.cancel.borrow()
    }

    async fn run(&mut self) -> Result<(), Interrupted> {
        let s = &self.cx.loaded.scenario;
        let r = self.cx.restore;
        let sandbox_source = matches!(self.cx.source, RestoreSource::Sandbox(_));
        let source_config = self.driver.client_config(Duration::from_secs(10));

        if sandbox_source {
            match self.seed(&source_config).await {
                Ok(()) => {}
                Err(Finding::Interrupted) => return Err(Interrupted),
                Err(Finding::Failed(e)) => {
                    self.check("seed", false, e);
                    return Ok(());
                }
            }
        }

        // Backup.
        self.emit(Event::Phase(Phase::Backup));
        let workload_on = s.workload.connections > 0 && r.backup.takes(sandbox_source);
        let writers = if workload_on {
            match start_writers(self.cx.sink, s, self.cx.run_id, &source_config).await {
                Ok(w) => Some(w),
                Err(e) => {
                    self.check("workload", false, e);
                    return Ok(());
                }
            }
        } else {
            None
        };
        let t0 = self.cx.sink.t0;
        if writers.is_some() {
            // Writes acknowledged before the backup, so that the ledger check has some to find.
            let warm_up = r.write_after_backup.get().min(Duration::from_secs(1));
            let mut cancel = self.cx.cancel.clone();
            tokio::select! {
                _ = tokio::time::sleep(warm_up) => {}
                _ = cancel.wait_for(|c| *c) => {}
            }
        }
        let taken = backup::take(self, &source_config, writers).await;
        let (taken, log) = match taken {
            Ok(pair) => pair,
            Err(Finding::Interrupted) => return Err(Interrupted),
            Err(Finding::Failed(e)) => {
                self.check("backup", false, e);
                return Ok(());
            }
        };
        self.f.result.backup_source = taken.source.clone();
        self.f.result.backup_bytes = taken.bytes;
        if let Some(log) = &log {
            self.f.m.acknowledged_writes = log.acks.len() as u64;
            self.f.m.in_doubt_writes = log.in_doubt.len() as u64;
        }
        if r.verify.backup {
            match load::verify(self, &taken).await {
                Ok(()) => {}
                Err(Finding::Interrupted) => return Err(Interrupted),
                Err(Finding::Failed(e)) => self.check("backup verification", false, e),
            }
        }
        if self.interrupted() {
            return Err(Interrupted);
        }

        // Restore.
        self.emit(Event::Phase(Phase::Restore));
        let started = t0.elapsed();
        let restored_at = match load::restore(self, &taken).await {
            Ok(idx) => idx,
            Err(Finding::Interrupted) => return Err(Interrupted),
            Err(Finding::Failed(e)) => {
                self.check("restore", false, e);
                return Ok(());
            }
        };
        let restore_done = t0.elapsed();
        let restored_db = database_of(&source_config);
        let restored_config = {
            let sb = self.restored.as_ref().expect("restored above");
            let mut c = tokio_postgres::Config::new();
            c.host("127.0.0.1")
                .port(sb.nodes[restored_at].port)
                .user(crate::systems::sandbox::SUPERUSER)
                .dbname(&restored_db);
            c
        };
        let within = Duration::from_secs(60);
        let restored_client = match first_query(&restored_config, within, &self.cx.cancel).await {
            Ok(c) => c,
            Err(Finding::Interrupted) => return Err(Interrupted),
            Err(Finding::Failed(e)) => {
                self.check("restore", false, format!("no query succeeded: {e}"));
                return Ok(());
            }
        };
        let first_query = t0.elapsed();
        let restore_ms = ms(restore_done - started);
        self.f.result.restore_ms = Some(restore_ms);
        self.f.m.rto_ms = Some(ms(first_query - started));
        self.f.result.throughput_mb_s = taken
            .bytes
            .filter(|_| restore_ms > 0.0)
            .map(|b| b as f64 / 1e6 / (restore_ms / 1000.0));
        let point = match &taken.point {
            Some(p) => Some(p.clone()),
            None => last_replayed(&restored_client).await,
        };
        if let Some(p) = &point
            && let Ok(at) = humantime::parse_rfc3339_weak(p.trim_end_matches('Z'))
        {
            self.f.m.rpo_ms = Some(ms(SystemTime::now().duration_since(at).unwrap_or_default()));
        }
        self.f.result.recovery_point = point;
        self.check(
            "restore",
            true,
            format!(
                "restored in {:.1} s, first query after {:.1} s{}",
                restore_ms / 1000.0,
                ms(first_query - started) / 1000.0,
                self.f
                    .result
                    .throughput_mb_s
                    .map(|t| format!(" ({t:.1} MB/s of backup)"))
                    .unwrap_or_default()
            ),
        );

        // Verify.
        self.emit(Event::Phase(Phase::Verify));
        let source = match &taken.snapshot {
            Some(_) => None,
            None => match connect(&source_config).await {
                Ok(c) => Some(c),
                Err(e) => {
                    self.check("source", false, format!("cannot connect: {e}"));
                    return Ok(());
                }
            },
        };
        let source = taken
            .snapshot
            .as_ref()
            .or(source.as_ref())
            .expect("one of them");
        if r.verify.schema {
            self.f.compare_schema(source, &restored_client).await;
        }
        if r.verify.checksums {
            // After a restore to a point while the workload wrote on, the ledger moved past
            // the point; it is checked write by write below instead.
            let moving = match (&r.recovery_target, taken.snapshot.is_some()) {
                (RecoveryTarget::Latest, _) | (_, true) => None,
                (RecoveryTarget::Time { .. } | RecoveryTarget::AfterBackup { .. }, false)
                    if workload_on =>
                {
                    Some(TableName {
                        schema: "public".into(),
                        name: s.workload.table.clone(),
                    })
                }
                (RecoveryTarget::Time { .. } | RecoveryTarget::AfterBackup { .. }, false) => None,
            };
            self.f
                .compare_tables(source, &restored_client, moving.as_ref())
                .await;
        }
        if let (Some(log), Some(point)) = (&log, taken.point_on_clock) {
            self.f
                .check_ledger(
                    &restored_client,
                    &s.workload.table,
                    self.cx.run_id,
                    log,
                    point,
                )
                .await;
        }
        if self.interrupted() {
            return Err(Interrupted);
        }
        if r.verify.amcheck {
            let port = self.restored.as_ref().map(|sb| sb.nodes[restored_at].port);
            if let Some(port) = port {
                match load::amcheck(self, port, &restored_db).await {
                    Ok(detail) => self.check("pg_amcheck", true, detail),
                    Err(Finding::Interrupted) => return Err(Interrupted),
                    Err(Finding::Failed(e)) => self.check("pg_amcheck", false, e),
                }
            }
        }
        self.f
            .assertions(&restored_client, &r.verify.assertions)
            .await;
        Ok(())
    }

    async fn seed(&mut self, source: &Config) -> Result<(), Finding> {
        let r = self.cx.restore;
        let s = &self.cx.loaded.scenario;
        let started = Instant::now();
        if r.seed.pgbench_scale > 0 {
            backup::pgbench_init(self, source, r.seed.pgbench_scale).await?;
        }
        let client = connect(source).await.map_err(Finding::Failed)?;
        for sql in &r.seed.sql {
            client.batch_execute(sql).await?;
        }
        if s.workload.connections > 0 {
            workload::prepare(&client, &s.workload.table).await?;
        }
        self.emit(Event::Setup(format!(
            "seeded the source (pgbench scale {}, {} SQL statement(s)) in {:.1} s",
            r.seed.pgbench_scale,
            r.seed.sql.len(),
            started.elapsed().as_secs_f64()
        )));
        Ok(())
    }
}

pub(crate) fn database_of(config: &Config) -> String {
    config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres")
        .to_owned()
}

/// A `timestamptz` expression as UTC RFC 3339 text, microseconds.
pub(crate) fn utc_rfc3339(expr: &str) -> String {
    format!("to_char({expr} at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

/// The commit time of the last transaction a restored cluster replayed: its recovery point
/// when the backup does not name one.
async fn last_replayed(c: &Client) -> Option<String> {
    c.query_one(
        &format!("select {}", utc_rfc3339("pg_last_xact_replay_timestamp()")),
        &[],
    )
    .await
    .ok()?
    .get(0)
}

/// Total size in bytes of a file or a directory tree.
pub(crate) fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| size_of(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.len()
    }
}

/// Starts the ledger workload's writers on the source, its table prepared first.
async fn start_writers(
    sink: &EventSink<'_>,
    s: &crate::scenario::Scenario,
    run_id: &str,
    source: &Config,
) -> Result<Writers, String> {
    let client = connect(source).await?;
    workload::prepare(&client, &s.workload.table)
        .await
        .map_err(|e| describe_pg_error(&e))?;
    let writers = Writers::spawn(sink, s, run_id, source, &[]);
    sink.emit(Event::Setup(format!(
        "{} writer(s) writing into {}",
        s.workload.connections, s.workload.table
    )));
    Ok(writers)
}

/// [`phases::first_query`] as a restore step's finding.
async fn first_query(
    config: &Config,
    within: Duration,
    cancel: &watch::Receiver<bool>,
) -> Result<Client, Finding> {
    phases::first_query(config, within, cancel)
        .await?
        .ok_or(Finding::Interrupted)
}
