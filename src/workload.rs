//! The ledger workload: writers inserting sequenced rows and logging every acknowledgement, and
//! the read-back after recovery. What is lost is decided by [`crate::ledger::check`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::{Client, Config, NoTls};

use crate::ledger::{Ack, Row, WorkloadLog, payload};

/// Creates the ledger and probe tables if missing. `table` is validated as an identifier.
pub async fn prepare(client: &Client, table: &str) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(&format!(
            "create table if not exists {table} (
                 run text not null,
                 client integer not null,
                 seq bigint not null,
                 payload text not null,
                 primary key (run, client, seq));
             create table if not exists {probe} (at timestamptz not null default now());
             alter table {probe} add column if not exists run text;",
            probe = crate::probe::PROBE_TABLE
        ))
        .await
}

pub struct WriterSpec {
    pub config: Config,
    pub table: String,
    pub run: String,
    pub timeout: Duration,
}

/// Runs one writer until `stop`; the write in flight when `stop` arrives is finished (or times
/// out), so the log is complete.
pub async fn run_writer(
    spec: Arc<WriterSpec>,
    client_id: u32,
    t0: Instant,
    mut stop: watch::Receiver<bool>,
    acked: Arc<AtomicU64>,
) -> WorkloadLog {
    let mut log = WorkloadLog::default();
    let mut conn: Option<(Client, tokio_postgres::Statement)> = None;
    let sql = format!(
        "insert into {} (run, client, seq, payload) values ($1, $2, $3, $4)",
        spec.table
    );
    let mut seq: u64 = 0;
    while !crate::probe::stopped(&stop) {
        if conn.is_none() {
            let attempt = tokio::time::timeout(spec.timeout, async {
                let (c, connection) = spec.config.connect(NoTls).await?;
                tokio::spawn(connection);
                let stmt = c.prepare(&sql).await?;
                Ok::<_, tokio_postgres::Error>((c, stmt))
            })
            .await;
            match attempt {
                Ok(Ok(pair)) => conn = Some(pair),
                _ => {
                    // Back off one short beat, but wake at once on stop.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            }
        }
        let (c, stmt) = conn.as_ref().expect("connected above");
        seq += 1;
        let body = payload(&spec.run, client_id, seq);
        let sent = t0.elapsed();
        let result = tokio::time::timeout(
            spec.timeout,
            c.execute(
                stmt,
                &[&spec.run, &(client_id as i32), &(seq as i64), &body],
            ),
        )
        .await;
        match result {
            Ok(Ok(_)) => {
                log.acks.push(Ack {
                    client: client_id,
                    seq,
                    sent,
                    at: t0.elapsed(),
                });
                acked.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                log.in_doubt.push((client_id, seq));
                log.in_doubt_sent.push(sent);
                conn = None;
            }
        }
    }
    log
}

/// Starts `n` writers (client ids 0..n) sharing `spec`; each stops on `stop`.
pub fn spawn_writers(
    spec: Arc<WriterSpec>,
    n: u16,
    t0: Instant,
    stop: &watch::Receiver<bool>,
    acked: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<WorkloadLog>> {
    (0..n as u32)
        .map(|id| {
            tokio::spawn(run_writer(
                spec.clone(),
                id,
                t0,
                stop.clone(),
                acked.clone(),
            ))
        })
        .collect()
}

/// Reads back this run's ledger rows.
pub async fn read_back(
    client: &Client,
    table: &str,
    run: &str,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!("select client, seq, payload from {table} where run = $1"),
            &[&run],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Row {
            client: r.get::<_, i32>(0) as u32,
            seq: r.get::<_, i64>(1) as u64,
            payload: r.get(2),
        })
        .collect())
}
