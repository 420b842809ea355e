//! High-rate write and read probes through the application's DSN, as an application sees the
//! database: one operation outstanding per probe, a failed connection dropped and reopened on
//! the next tick.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
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

    /// Runs `f` on the samples that ended after `from`, found from the end (they are recorded
    /// in end order) and read in place, so that a guardrail checked every interval costs a
    /// look at the window, not a copy of it.
    pub fn with_since<R>(&self, from: Duration, f: impl FnOnce(&[Sample]) -> R) -> R {
        let samples = self.samples.lock().expect("probe samples lock");
        let first = samples
            .iter()
            .rposition(|s| s.end <= from)
            .map_or(0, |i| i + 1);
        f(&samples[first..])
    }
}

pub struct ProbeSpec {
    pub kind: ProbeKind,
    pub config: Config,
    pub interval: Duration,
    pub timeout: Duration,
    /// An outstanding probe is abandoned (its connection dropped) only this long after it
    /// started (`probes.abandon_after`): abandoning sooner piles connection attempts into a
    /// hung server's accept backlog, and each costs a backend start when it resumes.
    pub abandon_after: Duration,
    /// The drill's run id (hex), written into each write probe's row so that the drill can
    /// remove its own rows.
    pub run: String,
}

struct InFlight {
    start: Duration,
    /// The connection back on success, and when the probe finished.
    task: JoinHandle<(Option<Arc<Client>>, Duration)>,
    /// Already recorded as failed (it outlived its timeout).
    reported: bool,
}

/// Runs until `stop` turns true, recording every sample (timed from `t0`) into `state`.
///
/// One probe is outstanding at a time. A probe that outlives its timeout is recorded as failed
/// but left to finish, and every tick it blocks is recorded as a failed slot, so that
/// availability is weighted by time; the first probe to succeed within its timeout after that
/// marks recovery.
pub async fn run(
    spec: ProbeSpec,
    t0: Instant,
    mut stop: watch::Receiver<bool>,
    state: Arc<ProbeState>,
) {
    let spec = Arc::new(spec);
    let mut ticker = tokio::time::interval(spec.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut client: Option<Arc<Client>> = None;
    let mut inflight: Option<InFlight> = None;
    let abandon_after = spec.abandon_after;
    let record = |sample: Sample| {
        state.up.store(sample.ok, Ordering::Relaxed);
        let counter = if sample.ok { &state.ok } else { &state.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        state
            .samples
            .lock()
            .expect("probe samples lock")
            .push(sample);
    };
    loop {
        // Wake on the tick, on stop, or when an overdue probe finally finishes: that is the
        // first sign the service is back, and the next probe goes out at once rather than on
        // the next tick (which would add up to one interval to the measured recovery).
        let overdue_done = async {
            match &mut inflight {
                Some(f) if f.reported => (&mut f.task).await.unwrap_or((None, Duration::ZERO)),
                _ => std::future::pending().await,
            }
        };
        let overdue_result = tokio::select! {
            _ = ticker.tick() => None,
            _ = stop.changed() => None,
            r = overdue_done => Some(r),
        };
        if stopped(&stop) {
            if let Some(f) = inflight.take() {
                f.task.abort();
            }
            break;
        }
        let now = t0.elapsed();
        if let Some((result, _)) = overdue_result {
            // Already recorded as failed (its handle is spent and replaced below); its
            // connection, if it came back, is reused.
            client = result;
        } else if let Some(f) = &mut inflight {
            if f.task.is_finished() {
                let f = inflight.take().expect("checked above");
                let (result, end) = f.task.await.unwrap_or((None, now));
                let on_time = end - f.start <= spec.timeout;
                if !f.reported {
                    let ok = result.is_some() && on_time;
                    let end = if ok {
                        end
                    } else {
                        end.min(f.start + spec.timeout)
                    };
                    record(Sample {
                        start: f.start,
                        end,
                        ok,
                    });
                }
                client = result;
            } else if now - f.start > abandon_after {
                f.task.abort();
                inflight = None;
                client = None;
                record(Sample {
                    start: now,
                    end: now,
                    ok: false,
                });
                continue;
            } else {
                if !f.reported && now - f.start > spec.timeout {
                    f.reported = true;
                    record(Sample {
                        start: f.start,
                        end: f.start + spec.timeout,
                        ok: false,
                    });
                    // The slots it blocked before its timeout expired were not served either.
                    let mut slot = f.start + spec.interval;
                    while slot < now {
                        record(Sample {
                            start: slot,
                            end: slot,
                            ok: false,
                        });
                        slot += spec.interval;
                    }
                } else if f.reported {
                    // A slot in which no probe could be sent: the service is still not there.
                    record(Sample {
                        start: now,
                        end: now,
                        ok: false,
                    });
                }
                continue;
            }
        }
        let spec = spec.clone();
        let current = client.take();
        inflight = Some(InFlight {
            start: t0.elapsed(),
            task: tokio::spawn(async move {
                let result = once(current, &spec).await.ok();
                (result, t0.elapsed())
            }),
            reported: false,
        });
    }
}

/// One probe: connect if needed, then one statement. Hands the connection back on success.
async fn once(
    client: Option<Arc<Client>>,
    spec: &ProbeSpec,
) -> Result<Arc<Client>, tokio_postgres::Error> {
    let c = match client {
        Some(c) => c,
        None => {
            let (c, conn) = spec.config.connect(NoTls).await?;
            tokio::spawn(conn);
            Arc::new(c)
        }
    };
    // Simple-protocol statements: one round trip each.
    match spec.kind {
        ProbeKind::Write => {
            c.batch_execute(&format!(
                "insert into firedrill_probe (run) values ('{}')",
                spec.run
            ))
            .await?
        }
        ProbeKind::Read => c.batch_execute("select 1").await?,
    }
    Ok(c)
}

/// True once stop was sent, or its sender is gone (the engine was dropped mid-drill): no loop of
/// firedrill's outlives the drill that started it.
pub fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}
