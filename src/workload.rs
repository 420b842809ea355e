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
    // Each acknowledgement names the server that gave it: split brain is measured from
    // the writes themselves.
    let sql = format!(
        "insert into {} (run, client, seq, payload) values ($1, $2, $3, $4) \
         returning inet_server_addr(), inet_server_port()",
        spec.table
    );
    let mut seq: u64 = 0;
    while !crate::probe::stopped(&stop) {
        if conn.is_none() {
            // Each host of a multi-host DSN gets the connect timeout in turn, as libpq gives
            // it: a first host that never answers must not use up the whole attempt.
            let hosts = spec.config.get_hosts().len().max(1) as u32;
            let attempt = tokio::time::timeout(spec.timeout * (hosts + 1), async {
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
            c.query_one(
                stmt,
                &[&spec.run, &(client_id as i32), &(seq as i64), &body],
            ),
        )
        .await;
        match result {
            Ok(Ok(row)) => {
                let at = t0.elapsed();
                let addr: Option<std::net::IpAddr> = row.get(0);
                let port: Option<i32> = row.get(1);
                log.acks.push(Ack {
                    client: client_id,
                    seq,
                    sent,
                    at,
                    server: addr
                        .zip(port)
                        .map(|(a, p)| std::net::SocketAddr::new(a, p as u16)),
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

/// Starts `n` writers (client ids 0..n) sharing `spec`; each stops on `stop`. Writer `i` runs
/// on `zones[i % zones.len()]` (a client zone's runtime), or on the caller's runtime when
/// there are none.
pub fn spawn_writers(
    spec: Arc<WriterSpec>,
    n: u16,
    t0: Instant,
    stop: &watch::Receiver<bool>,
    acked: &Arc<AtomicU64>,
    zones: &[tokio::runtime::Handle],
) -> Vec<tokio::task::JoinHandle<WorkloadLog>> {
    (0..n as u32)
        .map(|id| {
            let writer = run_writer(spec.clone(), id, t0, stop.clone(), acked.clone());
            match zones.get(id as usize % zones.len().max(1)) {
                Some(zone) => zone.spawn(writer),
                None => tokio::spawn(writer),
            }
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
