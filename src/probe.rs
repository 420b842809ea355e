//! High-rate write and read probes through the application's DSN. One operation in flight per
//! probe, each bounded by its timeout; a failed or timed-out connection is dropped and the next
//! tick reconnects, as a pooled application would.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_postgres::{Client, Config, NoTls};

use crate::measure::Sample;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Write,
    Read,
}

/// The table the write probe inserts into.
pub const PROBE_TABLE: &str = "firedrill_probe";

/// What a running probe has seen so far: the engine reads it for the steady-state check and the
/// live display while the probe keeps going.
#[derive(Debug, Default)]
pub struct ProbeState {
    pub up: AtomicBool,
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub samples: Mutex<Vec<Sample>>,
}

impl ProbeState {
    pub fn snapshot(&self) -> Vec<Sample> {
        self.samples.lock().expect("probe samples lock").clone()
    }
}

pub struct ProbeSpec {
    pub kind: ProbeKind,
    pub config: Config,
    pub interval: Duration,
    pub timeout: Duration,
}

/// Runs until `stop` turns true, recording every sample (timed from `t0`) into `state`.
pub async fn run(
    spec: ProbeSpec,
    t0: Instant,
    mut stop: watch::Receiver<bool>,
    state: Arc<ProbeState>,
) {
    let mut ticker = tokio::time::interval(spec.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut client: Option<Client> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => {}
        }
        if stopped(&stop) {
            break;
        }
        let start = t0.elapsed();
        let ok = matches!(
            tokio::time::timeout(spec.timeout, once(&mut client, &spec)).await,
            Ok(Ok(()))
        );
        let end = t0.elapsed();
        if !ok {
            // The connection may be mid-statement or dead: start afresh.
            client = None;
        }
        state.up.store(ok, Ordering::Relaxed);
        let counter = if ok { &state.ok } else { &state.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        state
            .samples
            .lock()
            .expect("probe samples lock")
            .push(Sample { start, end, ok });
    }
}

async fn once(client: &mut Option<Client>, spec: &ProbeSpec) -> Result<(), tokio_postgres::Error> {
    if client.is_none() {
        let (c, conn) = spec.config.connect(NoTls).await?;
        tokio::spawn(conn);
        *client = Some(c);
    }
    let c = client.as_ref().expect("connected above");
    // Simple-protocol statements: one round trip each.
    match spec.kind {
        ProbeKind::Write => {
            c.batch_execute("insert into firedrill_probe default values")
                .await
        }
        ProbeKind::Read => c.batch_execute("select 1").await,
    }
}

/// True once stop was sent, or its sender is gone (the engine was dropped mid-drill): no loop of
/// firedrill's outlives the drill that started it.
pub fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}
