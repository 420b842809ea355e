//! After the observation: which server takes the writes now, what the ledger says was lost,
//! and this drill's rows taken out of the target's database again.
//!
//! Boundary: reading back and recording; the verdict is the judge's.

use std::time::{Duration, Instant};

use super::{Drill, VERIFY_DEADLINE};
use crate::event::Event;
use crate::ledger::{self, WorkloadLog};
use crate::report::*;
use crate::scenario::FailoverTarget;
use crate::{engine::phases, probe};
use crate::{split, workload};

impl Drill<'_, '_> {
    /// Deletes this drill's ledger and probe rows from the target's database (by run id), so
    /// that drills leave an application's database as they found it.
    pub(super) async fn remove_rows(&mut self) {
        let s = &self.loaded.scenario;
        let config = self.driver.client_config(Duration::from_secs(5));
        let mut tables = vec![probe::PROBE_TABLE];
        if s.workload.connections > 0 {
            tables.push(&s.workload.table);
        }
        let removed = phases::delete_run_rows(&config, &tables, &self.run_id);
        match removed.await {
            Ok(n) => self.sink.emit(Event::Setup(format!(
                "removed this drill's {n} ledger and probe rows (workload.keep_rows keeps them)"
            ))),
            Err(e) => self.sink.emit(Event::Warning(format!(
                "cannot remove this drill's rows (run {}): {e}",
                self.run_id
            ))),
        }
    }

    /// Compares the writer after the observation with the one before the fault: the same
    /// server means the failover moved nothing, which fails the drill (`writer_moved`).
    pub(super) async fn verify_writer_moved(&mut self, before: Option<Server>) {
        let config = self.driver.client_config(Duration::from_secs(5));
        // Waited for when the verdict depends on it; otherwise it is only recorded.
        // A game day stopped by a step that timed out has nothing worth waiting for.
        let within = match self.failover {
            FailoverTarget::Required | FailoverTarget::Forbidden if self.cut.is_none() => {
                VERIFY_DEADLINE
            }
            FailoverTarget::Required | FailoverTarget::Forbidden | FailoverTarget::Any => {
                Duration::from_secs(2)
            }
        };
        let after = phases::writer_identity(&config, within).await;
        let after = match after {
            Ok(a) => Some(a),
            Err(e) => {
                self.sink.emit(Event::Warning(format!(
                    "cannot tell the writer after the fault: {e}"
                )));
                None
            }
        };
        let change = WriterChange {
            expected: self.failover,
            before,
            after,
        };
        self.sink.emit(Event::Verified(
            match (&change.before, &change.after, change.moved()) {
                (Some(b), Some(a), Some(m)) if m > 0.0 => {
                    format!("writer moved: {} -> {}", b.at, a.at)
                }
                (Some(b), _, Some(_)) if change.restarted_in_place() => {
                    format!("writer did not move: {} restarted in place", b.at)
                }
                (Some(b), _, Some(_)) => format!("writer did not move: still {}", b.at),
                _ => "writer not seen before and after the fault: not measured".into(),
            },
        ));
        self.measurements.writer = Some(change);
    }

    pub(super) async fn verify_ledger(&mut self, log: &WorkloadLog) {
        let s = &self.loaded.scenario;
        let Some(fault_at) = self.fault_at else {
            return;
        };
        let config = self.driver.client_config(Duration::from_secs(5));
        let patience = if self.cut.is_some() {
            Duration::from_secs(2)
        } else {
            VERIFY_DEADLINE
        };
        let deadline = Instant::now() + patience;
        let rows = loop {
            let attempt = match phases::connect(&config).await {
                Ok(client) => workload::read_back(&client, &s.workload.table, &self.run_id)
                    .await
                    .map_err(|e| crate::systems::sandbox::describe_pg_error(&e)),
                Err(e) => Err(e),
            };
            match attempt {
                Ok(rows) => break Some(rows),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => {
                    self.sink.emit(Event::Warning(format!(
                        "cannot read the ledger back within {}: {}; lost writes unknown",
                        humantime::format_duration(patience),
                        e
                    )));
                    break None;
                }
            }
        };
        let Some(rows) = rows else { return };
        let c = ledger::check(log, &rows, &self.run_id, fault_at);
        self.sink.emit(Event::Verified(format!(
            "{} acknowledged writes, {} lost, {} in doubt ({} committed), {} integrity failures",
            c.acknowledged_writes,
            c.lost_writes,
            c.in_doubt_writes,
            c.in_doubt_present,
            c.integrity_failures
        )));
        self.measure_split_brain(log, &rows, fault_at);
        let m = &mut self.measurements;
        m.lost_writes = Some(c.lost_writes);
        m.lost_examples = c.lost_examples;
        m.in_doubt_present = Some(c.in_doubt_present);
        m.integrity_failures = Some(c.integrity_failures);
        m.rpo_ms = Some(c.rpo_ms);
    }

    /// Which servers acknowledged writes, how long two did at once, and the lost writes told
    /// apart (diverged, lagged); from the acknowledgements, which name their servers.
    fn measure_split_brain(&mut self, log: &WorkloadLog, rows: &[ledger::Row], fault_at: Duration) {
        if log.acks.iter().all(|a| a.server.is_none()) {
            return;
        }
        let lost = ledger::missing(log, rows);
        // The writer after the observation names the survivor where the driver cannot.
        let survivor = self.driver.survivor().or_else(|| {
            let w = self.measurements.writer.as_ref()?;
            Some(w.after.as_ref()?.at.clone())
        });
        let driver = &self.driver;
        let sb = split::measure(&log.acks, &lost, survivor.as_deref(), fault_at, |s| {
            driver.server_name(s)
        });
        let servers: Vec<String> = sb
            .servers
            .iter()
            .map(|s| {
                format!(
                    "{} {:.1}-{:.1} s ({})",
                    s.server,
                    s.first_ms / 1e3,
                    s.last_ms / 1e3,
                    s.acknowledged
                )
            })
            .collect();
        self.sink.emit(Event::Verified(format!(
            "writes acknowledged by {}; split brain {:.0} ms; lost to divergence {}, to \
             replication lag {}",
            servers.join(", "),
            sb.window_ms,
            sb.diverged_writes,
            sb.lag_lost_writes
        )));
        self.measurements.split_brain = Some(sb);
    }
}
