//! Phases every drill kind shares, written once: building or reaching the target unless Ctrl-C
//! comes first, connecting, the ledger workload's writer pool, and waiting for the first query
//! a restored or failed-over database answers.
//!
//! Boundary: mechanics only; what a phase means for the report is the drill kind's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls};

use super::RunError;
use crate::event::{Event, EventSink};
use crate::ledger::WorkloadLog;
use crate::report::Server;
use crate::safety::journal::Journal;
use crate::scenario::{DbTarget, Scenario};
use crate::systems::Driver;
use crate::systems::sandbox::describe_pg_error;
use crate::template::TemplateCache;
use crate::workload::{self, WriterSpec};

/// Builds (or reaches) `target` unless Ctrl-C comes first; dropping a half-built sandbox tears
/// down whatever part of it exists.
pub async fn build_target(
    target: &DbTarget,
    journal: &Journal,
    templates: Option<&TemplateCache>,
    sink: &EventSink<'_>,
    cancel: &watch::Receiver<bool>,
) -> Result<Driver, RunError> {
    let progress = |m| sink.emit(Event::Setup(m));
    let build = Driver::build(target, journal, templates, &progress);
    let mut cancel = cancel.clone();
    tokio::select! {
        d = build => Ok(d?),
        _ = cancel.wait_for(|c| *c) => Err(RunError::AbortedInSetup),
    }
}

/// One connection, its driver task spawned; the error as a person reads it.
/// Deletes one run's rows (tagged with its id in a `run` column) from these tables of a
/// target's database; how many went.
pub async fn delete_run_rows(
    config: &Config,
    tables: &[&str],
    run_id: &str,
) -> Result<u64, String> {
    let c = connect(config).await?;
    let mut n = 0;
    for table in tables {
        n += c
            .execute(&format!("delete from {table} where run = $1"), &[&run_id])
            .await
            .map_err(|e| describe_pg_error(&e))?;
    }
    Ok(n)
}

/// Whether a drill deletes its rows from a target's database once it has checked them.
pub fn removes_rows(s: &crate::scenario::Scenario) -> bool {
    !s.workload.keep_rows && s.cleanup != crate::scenario::Cleanup::Never
}

pub async fn connect(config: &Config) -> Result<Client, String> {
    let (c, conn) = config
        .connect(NoTls)
        .await
        .map_err(|e| describe_pg_error(&e))?;
    tokio::spawn(conn);
    Ok(c)
}

/// The server taking writes through `config`, as a client tells servers apart: address, port
/// and postmaster start. Retried for `within` (after a failover the DSN may take a moment to
/// lead to the new writer); a server in recovery is not the writer.
pub async fn writer_identity(config: &Config, within: Duration) -> Result<Server, String> {
    let deadline = Instant::now() + within;
    loop {
        let attempt =
            async {
                let c = connect(config).await?;
                let row = c
                    .query_one(
                        "select coalesce(host(inet_server_addr()), 'socket') || ':' || \
                     current_setting('port'), pg_postmaster_start_time()::text, \
                     pg_is_in_recovery()",
                        &[],
                    )
                    .await
                    .map_err(|e| describe_pg_error(&e))?;
                match row.get::<_, bool>(2) {
                false => Ok(Server {
                    at: row.get(0),
                    started: row.get(1),
                    // Optional: pg_control_system() needs pg_monitor or superuser, and a
                    // role without it still has a writer to tell apart.
                    system_identifier: c
                        .query_one("select system_identifier::text from pg_control_system()", &[])
                        .await
                        .ok()
                        .map(|r| r.get(0)),
                    // The current WAL file's first 8 hex digits are the writer's timeline.
                    timeline: c
                        .query_one(
                            "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))\
                             ::bit(32)::int8",
                            &[],
                        )
                        .await
                        .ok()
                        .map(|r| r.get::<_, i64>(0) as u64),
                }),
                true => Err(format!("{} is in recovery", row.get::<_, String>(0))),
            }
            };
        match attempt.await {
            Ok(id) => return Ok(id),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits until `select 1` succeeds (a restore's or a failover's RTO ends here), for at most
/// `within`. `Ok(None)`: Ctrl-C came first.
pub async fn first_query(
    config: &Config,
    within: Duration,
    cancel: &watch::Receiver<bool>,
) -> Result<Option<Client>, tokio_postgres::Error> {
    let mut one = config.clone();
    one.connect_timeout(Duration::from_secs(5));
    let deadline = Instant::now() + within;
    loop {
        if *cancel.borrow() {
            return Ok(None);
        }
        let attempt = async {
            let (c, conn) = one.connect(NoTls).await?;
            tokio::spawn(conn);
            c.simple_query("select 1").await?;
            Ok::<_, tokio_postgres::Error>(c)
        }
        .await;
        match attempt {
            Ok(c) => return Ok(Some(c)),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The ledger workload's writers, running against the target's primary.
pub struct Writers {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<WorkloadLog>>,
    acked: Arc<AtomicU64>,
    started: Duration,
}

impl Writers {
    /// Starts `workload.connections` writers through `config` (the table is prepared already),
    /// dealt over the client zones' runtimes if there are any.
    pub fn spawn(
        sink: &EventSink<'_>,
        s: &Scenario,
        run_id: &str,
        config: &Config,
        zones: &[tokio::runtime::Handle],
    ) -> Writers {
        let (stop, stop_rx) = watch::channel(false);
        let acked = Arc::new(AtomicU64::new(0));
        let mut config = config.clone();
        config.connect_timeout(s.workload.timeout.get());
        let spec = Arc::new(WriterSpec {
            config,
            table: s.workload.table.clone(),
            run: run_id.to_owned(),
            timeout: s.workload.timeout.get(),
        });
        let handles = workload::spawn_writers(
            spec,
            s.workload.connections,
            sink.t0,
            &stop_rx,
            &acked,
            zones,
        );
        Writers {
            stop,
            handles,
            acked,
            started: sink.t0.elapsed(),
        }
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Stops the writers; their log and acknowledged writes per second.
    pub async fn stop(mut self, sink: &EventSink<'_>) -> (WorkloadLog, f64) {
        let acked = self.acked();
        let _ = self.stop.send(true);
        let mut log = WorkloadLog::default();
        for h in std::mem::take(&mut self.handles) {
            match h.await {
                Ok(l) => log.merge(l),
                Err(e) => sink.emit(Event::Warning(format!(
                    "a writer stopped early: {e}; its acknowledged writes are not counted"
                ))),
            }
        }
        let wrote_for = sink.t0.elapsed().saturating_sub(self.started);
        (log, acked as f64 / wrote_for.as_secs_f64().max(1e-3))
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        // Belt and braces: `stop` going away already ends every loop.
        for h in &self.handles {
            h.abort();
        }
    }
}
