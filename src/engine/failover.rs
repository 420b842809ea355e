//! The failover drill: steady state, then the fault and the recovery under observation by write
//! and read probes and the workload's writers, then the ledger read back for lost writes. A fault
//! still in effect ends with the drill: rolled back on abort, ended after a full observation.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::phases::{self, Writers};
use super::{Abort, Ran, RunError};
use crate::error::EnvError;
use crate::event::{Event, EventSink, Phase};
use crate::guardrail::Guard;
use crate::ledger::{self, WorkloadLog};
use crate::measure::{self, ms};
use crate::probe::{self, ProbeKind, ProbeSpec, ProbeState};
use crate::record::ProbeRecord;
use crate::report::*;
use crate::safety::journal::{EffectId, Journal, Undo};
use crate::scenario::{DbTarget, FailoverTarget, Fault, LoadedScenario, Recovery};
use crate::target::Driver;
use crate::template::TemplateCache;
use crate::workload;

const STATUS_EVERY: Duration = Duration::from_millis(250);
const VERIFY_DEADLINE: Duration = Duration::from_secs(30);

/// A failover drill's parts, as validation typed them.
pub(super) struct Failover<'a> {
    pub loaded: &'a LoadedScenario,
    pub target: &'a DbTarget,
    pub fault: &'a Fault,
    pub recovery: &'a Recovery,
    pub failover: FailoverTarget,
}

impl<'a> Failover<'a> {
    pub(super) async fn run(
        self,
        sink: &EventSink<'_>,
        cancel: watch::Receiver<bool>,
        run_id: &str,
        journal: &Journal,
        templates: Option<&TemplateCache>,
    ) -> Result<Ran<'a>, RunError> {
        let Failover {
            loaded,
            target,
            fault,
            recovery,
            failover,
        } = self;
        let s = &loaded.scenario;
        sink.emit(Event::Phase(Phase::Setup));
        let mut driver = phases::build_target(target, journal, templates, sink, &cancel).await?;
        let description = driver.describe();
        sink.emit(Event::Setup(description.clone()));

        let admin_config = driver.client_config(Duration::from_secs(10));
        let prepared = match phases::connect(&admin_config).await {
            Ok(client) => workload::prepare(&client, &s.workload.table)
                .await
                .map_err(|e| crate::target::sandbox::describe_pg_error(&e)),
            Err(e) => Err(e),
        };
        if let Err(reason) = prepared {
            driver.teardown(false).await;
            return Err(RunError::Env(EnvError::Unreachable {
                what: "the target's primary through its DSN".into(),
                reason,
            }));
        }

        let mut drill = Drill {
            loaded,
            fault,
            recovery,
            sink,
            driver: &mut driver,
            cancel,
            run_id: run_id.to_owned(),
            measurements: Measurements::default(),
            steady: None,
            series: None,
            fault_at: None,
            effect_marked: false,
            pending_undo: None,
            journal: journal.clone(),
            observe_every: fault.observe_every(),
            last_observed: None,
            failover,
            writer_before: None,
        };
        let aborted = drill.run().await.err();
        let (measurements, steady, series) = (drill.measurements, drill.steady, drill.series);
        for done in driver.release(journal).await {
            sink.emit(Event::Setup(done));
        }
        Ok(Ran {
            description,
            measurements,
            steady,
            series,
            aborted: aborted.map(|a| a.0),
            ledger_checked: true,
            teardown: Box::new(move |keep| {
                Box::pin(async move { driver.teardown(keep).await.into_iter().collect() })
            }),
        })
    }
}

struct Drill<'a, 's> {
    loaded: &'a LoadedScenario,
    fault: &'a Fault,
    recovery: &'a Recovery,
    sink: &'a EventSink<'s>,
    driver: &'a mut Driver,
    cancel: watch::Receiver<bool>,
    run_id: String,
    measurements: Measurements,
    steady: Option<SteadyStateResult>,
    series: Option<measure::ProbeSeries>,
    /// When the fault was injected, on the drill clock; none before.
    fault_at: Option<Duration>,
    /// The driver said when the fault took effect (a command's marker line, a kill's instant).
    effect_marked: bool,
    /// A fault still in effect, undone on abort.
    pending_undo: Option<(Undo, EffectId)>,
    journal: Journal,
    /// How often to read the fault's own progress (an FIS experiment), and when it was last read.
    observe_every: Option<Duration>,
    last_observed: Option<Duration>,
    /// Whether another server must take the writes.
    failover: FailoverTarget,
    /// The writer before the fault (`Some(None)`: not seen).
    writer_before: Option<Option<Server>>,
}

/// The probes and writers running against the target.
struct Load {
    stop: watch::Sender<bool>,
    write: Arc<ProbeState>,
    read: Arc<ProbeState>,
    probes: Vec<JoinHandle<()>>,
    writers: Option<Writers>,
    guard: Guard,
}

impl Drop for Load {
    fn drop(&mut self) {
        // Belt and braces: `stop` going away already ends every loop.
        for h in &self.probes {
            h.abort();
        }
    }
}

impl Load {
    fn acked(&self) -> u64 {
        self.writers.as_ref().map_or(0, Writers::acked)
    }
}

impl Drill<'_, '_> {
    async fn run(&mut self) -> Result<(), Abort> {
        let s = &self.loaded.scenario;
        let load = self.start_load();
        let result = self.fault_and_observe(&load).await;
        // A fault still in effect ends with the drill: rolled back on abort, ended after a
        // full observation (an FIS experiment that outlasts it).
        self.undo_pending(result.is_err()).await;
        let _ = load.stop.send(true);
        let log = self.collect(load).await;
        result?;

        self.sink.emit(Event::Phase(Phase::Verify));
        if let Some(before) = self.writer_before.take() {
            self.verify_writer_moved(before).await;
        }
        let rto = self.measurements.rto_ms;
        self.measurements.patroni = self.driver.patroni_view(self.fault, rto).await;
        if s.workload.connections > 0 {
            self.verify_ledger(&log).await;
        }
        if phases::removes_rows(s) {
            self.remove_rows().await;
        }
        Ok(())
    }

    /// Deletes this drill's ledger and probe rows from the target's database (by run id), so
    /// that drills leave an application's database as they found it.
    async fn remove_rows(&mut self) {
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

    fn start_load(&self) -> Load {
        let s = &self.loaded.scenario;
        let t0 = self.sink.t0;
        let (stop, stop_rx) = watch::channel(false);
        let probe_config = self.driver.client_config(s.probes.timeout.get());
        let write = Arc::new(ProbeState::default());
        let read = Arc::new(ProbeState::default());
        let mut probes = Vec::new();
        for (kind, state) in [(ProbeKind::Write, &write), (ProbeKind::Read, &read)] {
            let spec = ProbeSpec {
                kind,
                config: probe_config.clone(),
                interval: s.probes.interval.get(),
                timeout: s.probes.timeout.get(),
                run: self.run_id.clone(),
            };
            probes.push(tokio::spawn(probe::run(
                spec,
                t0,
                stop_rx.clone(),
                state.clone(),
            )));
        }
        let writers = Writers::spawn(
            self.sink,
            s,
            &self.run_id,
            &self.driver.client_config(s.workload.timeout.get()),
        );
        let guard = Guard::arm(&s.guardrails, t0, &stop_rx);
        Load {
            stop,
            write,
            read,
            probes,
            writers: Some(writers),
            guard,
        }
    }

    async fn fault_and_observe(&mut self, load: &Load) -> Result<(), Abort> {
        let s = &self.loaded.scenario;
        let t0 = self.sink.t0;

        // Steady state: the hypothesis must hold before anything is broken.
        self.sink.emit(Event::Phase(Phase::SteadyState));
        let ss_from = t0.elapsed();
        self.wait_until(ss_from + s.steady_state.duration.get(), load)
            .await?;
        let ss_to = t0.elapsed();
        let steady = self.steady_state(load, ss_from, ss_to);
        self.sink.emit(Event::SteadyState {
            met: steady.met,
            detail: steady.detail.clone(),
        });
        let met = steady.met;
        self.steady = Some(steady);
        // The workload started with the window, so the live counter is its throughput.
        let acked_before = load.acked();
        self.measurements.workload_writes_per_s =
            Some(acked_before as f64 / (ss_to - ss_from).as_secs_f64());
        if !met {
            return Err(Abort(
                "steady state not met before the fault; nothing was injected".into(),
            ));
        }

        let config = self.driver.client_config(Duration::from_secs(5));
        let before = phases::writer_identity(&config, Duration::from_secs(5)).await;
        self.writer_before = Some(
            before
                .map_err(|e| {
                    self.sink.emit(Event::Warning(format!(
                        "cannot tell the writer before the fault: {e}"
                    )))
                })
                .ok(),
        );

        if let Err(e) = self.driver.before_fault().await {
            self.sink.emit(Event::Warning(format!(
                "cannot read the cluster before the fault: {e}"
            )));
        }

        // Fault.
        self.sink.emit(Event::Phase(Phase::Fault));
        let fault_at = t0.elapsed();
        self.fault_at = Some(fault_at);
        self.measurements.fault_at_ms = Some(ms(fault_at));
        let injected = match self
            .driver
            .inject(self.fault, &self.journal, &self.run_id)
            .await
        {
            Ok(i) => i,
            Err(e) => return Err(Abort(format!("fault injection failed: {e}"))),
        };
        self.measurements.fault_started_ms = Some(ms(fault_at));
        self.measurements.fault_done_ms = Some(ms(t0.elapsed()));
        // The fault instant is when it took effect, where the driver knows it.
        self.effect_marked = injected.at.is_some();
        let fault_at = match injected.at {
            Some(at) => at.saturating_duration_since(t0),
            None => fault_at,
        };
        self.fault_at = Some(fault_at);
        self.measurements.fault_at_ms = Some(ms(fault_at));
        self.sink
            .emit_at(fault_at, Event::FaultInjected(injected.description.clone()));
        self.pending_undo = injected.undo.clone();

        // Scheduled actions after the fault, in time order.
        enum Action {
            EndFault,
            Recover,
        }
        let mut actions: Vec<(Duration, Action)> = Vec::new();
        if let Some(d) = injected.ends_after {
            actions.push((fault_at + d, Action::EndFault));
        }
        match self.recovery {
            Recovery::Promote { after, .. } | Recovery::Command { after, .. } => {
                actions.push((fault_at + after.get(), Action::Recover))
            }
            Recovery::Wait => {}
        }
        actions.sort_by_key(|(at, _)| *at);
        for (at, action) in actions {
            self.wait_until(at, load).await?;
            match action {
                Action::EndFault => {
                    if let Some(undo) = self.pending_undo.take() {
                        match self.driver.undo(undo, &self.journal).await {
                            Ok(d) => self.sink.emit(Event::FaultEnded(d)),
                            Err(e) => self
                                .sink
                                .emit(Event::Warning(format!("ending the fault: {e}"))),
                        }
                    }
                }
                Action::Recover => match self.driver.recover(self.recovery).await {
                    Ok(Some(d)) => self.sink.emit(Event::RecoveryAction(d)),
                    Ok(None) => {}
                    // The system did not recover: the measurements will show it.
                    Err(e) => self.sink.emit(Event::RecoveryFailed(e.to_string())),
                },
            }
        }
        self.wait_until(fault_at + s.observe.duration.get(), load)
            .await?;
        Ok(())
    }

    fn steady_state(&self, load: &Load, from: Duration, to: Duration) -> SteadyStateResult {
        let s = &self.loaded.scenario.steady_state;
        let w = load.write.snapshot();
        let r = load.read.snapshot();
        let write_pct = measure::success_pct_between(&w, from, to);
        let read_pct = measure::success_pct_between(&r, from, to);
        let p99 = measure::latency_between(&w, from, to).p99_ms;
        let mut problems = Vec::new();
        if write_pct < s.min_success_pct {
            problems.push(format!(
                "write probe {write_pct:.1}% successful < {}%",
                s.min_success_pct
            ));
        }
        if read_pct < s.min_success_pct {
            problems.push(format!(
                "read probe {read_pct:.1}% successful < {}%",
                s.min_success_pct
            ));
        }
        if let Some(max) = s.max_p99_latency
            && p99 > ms(max.get())
        {
            problems.push(format!("write p99 {p99:.1}ms > {max}"));
        }
        let met = problems.is_empty();
        SteadyStateResult {
            met,
            write_success_pct: write_pct,
            read_success_pct: read_pct,
            write_p99_ms: p99,
            detail: if met {
                format!(
                    "write {write_pct:.1}% read {read_pct:.1}% successful, write p99 {p99:.2}ms"
                )
            } else {
                problems.join("; ")
            },
        }
    }

    /// Stops the probes and writers and computes the probe measurements.
    async fn collect(&mut self, load: Load) -> WorkloadLog {
        let s = &self.loaded.scenario;
        let observed_until = self.sink.t0.elapsed();
        let mut load = load;
        for h in load.probes.drain(..) {
            if let Err(e) = h.await {
                self.sink
                    .emit(Event::Warning(format!("a probe stopped early: {e}")));
            }
        }
        let log = match load.writers.take() {
            Some(w) => w.stop(self.sink).await.0,
            None => WorkloadLog::default(),
        };
        let m = &mut self.measurements;
        m.acknowledged_writes = log.acks.len() as u64;
        m.in_doubt_writes = log.in_doubt.len() as u64;
        let w = load.write.snapshot();
        let r = load.read.snapshot();
        self.series = Some(measure::series(&w, &r, observed_until));
        let Some(fault_at) = self.fault_at else {
            return log;
        };
        let f = measure::figures(
            &w,
            &r,
            measure::FaultTiming {
                at: fault_at,
                delayed: self.fault.effect_is_delayed(),
                marked: self.effect_marked,
            },
            observed_until,
            s.observe.stability.get(),
        );
        m.probe_record = Some(ProbeRecord::encode(&w, &r, observed_until));
        m.rto_from = Some(f.rto_from);
        m.write_outage_ms = f.write_outage.map(ms);
        m.rto_ms = f.write.rto.map(ms);
        m.time_to_first_success_ms = f.write.first_success.map(ms);
        m.availability_pct = Some(f.availability_pct);
        m.write_outages = f.write.outages;
        m.read_rto_ms = f.read.rto.map(ms);
        m.read_availability_pct = Some(f.read_availability_pct);
        m.read_outages = f.read.outages;
        let failed = f.failed_probes;
        let expected = s.observe.expect_outage;
        if expected && failed == 0 {
            self.sink.emit(Event::Warning(
                "no effect observed: no probe failed after the fault".into(),
            ));
        }
        m.fault_effect = Some(FaultEffect {
            expected,
            failed_probes: failed,
        });
        m.latency = LatencyByPhase {
            steady: ProbeLatency {
                write_probe: measure::latency_between(&w, Duration::ZERO, fault_at),
                read_probe: measure::latency_between(&r, Duration::ZERO, fault_at),
            },
            after_fault: ProbeLatency {
                write_probe: measure::latency_between(&w, fault_at, observed_until),
                read_probe: measure::latency_between(&r, fault_at, observed_until),
            },
        };
        log
    }

    /// Compares the writer after the observation with the one before the fault: the same
    /// server means the failover moved nothing, which fails the drill (`writer_moved`).
    async fn verify_writer_moved(&mut self, before: Option<Server>) {
        let config = self.driver.client_config(Duration::from_secs(5));
        // Waited for when the verdict depends on it; otherwise it is only recorded.
        let within = match self.failover {
            FailoverTarget::Required | FailoverTarget::Forbidden => VERIFY_DEADLINE,
            FailoverTarget::Any => Duration::from_secs(2),
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

    async fn verify_ledger(&mut self, log: &WorkloadLog) {
        let s = &self.loaded.scenario;
        let Some(fault_at) = self.fault_at else {
            return;
        };
        let config = self.driver.client_config(Duration::from_secs(5));
        let deadline = Instant::now() + VERIFY_DEADLINE;
        let rows = loop {
            let attempt = match phases::connect(&config).await {
                Ok(client) => workload::read_back(&client, &s.workload.table, &self.run_id)
                    .await
                    .map_err(|e| crate::target::sandbox::describe_pg_error(&e)),
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
                        humantime::format_duration(VERIFY_DEADLINE),
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
        let m = &mut self.measurements;
        m.lost_writes = Some(c.lost_writes);
        m.lost_examples = c.lost_examples;
        m.in_doubt_present = Some(c.in_doubt_present);
        m.integrity_failures = Some(c.integrity_failures);
        m.rpo_ms = Some(c.rpo_ms);
    }

    /// Waits until `at` (drill time), showing live status and checking the guardrails every
    /// probe interval; returns early with an abort on cancel or when a guardrail holds.
    async fn wait_until(&mut self, at: Duration, load: &Load) -> Result<(), Abort> {
        // Guardrails are checked every probe interval; without them, the status line's pace.
        let tick = if self.loaded.scenario.guardrails.is_empty() {
            STATUS_EVERY
        } else {
            STATUS_EVERY.min(self.loaded.scenario.probes.interval.get())
        };
        let mut last_status: Option<Duration> = None;
        loop {
            if *self.cancel.borrow() {
                return Err(Abort("interrupted (Ctrl-C or SIGTERM)".into()));
            }
            let now = self.sink.t0.elapsed();
            if let Some(t) = load.guard.check(now, &load.write, &load.read) {
                self.sink.emit_at(
                    now,
                    Event::GuardrailTripped(format!("{}: {}", t.condition, t.detail)),
                );
                let when = if self.fault_at.is_some() {
                    "the fault was rolled back"
                } else {
                    "before the fault; nothing was injected"
                };
                return Err(Abort(format!(
                    "guardrail tripped: {} ({}); {when}",
                    t.condition, t.detail
                )));
            }
            if now >= at {
                return Ok(());
            }
            if let Some(every) = self.observe_every
                && self.fault_at.is_some()
                && self.last_observed.is_none_or(|l| now >= l + every)
            {
                self.last_observed = Some(now);
                if let Some(state) = self.driver.observe().await {
                    self.sink.emit(Event::Step(state));
                }
            }
            if last_status.is_none_or(|l| now >= l + STATUS_EVERY) {
                last_status = Some(now);
                self.sink.emit(Event::Status {
                    write_up: load.write.up.load(Ordering::Relaxed),
                    read_up: load.read.up.load(Ordering::Relaxed),
                    acknowledged_writes: load.acked(),
                });
            }
            let nap = (at - now).min(tick);
            tokio::select! {
                _ = tokio::time::sleep(nap) => {}
                _ = self.cancel.changed() => {}
            }
        }
    }

    async fn undo_pending(&mut self, aborted: bool) {
        let Some(undo) = self.pending_undo.take() else {
            return;
        };
        match self.driver.undo(undo, &self.journal).await {
            Ok(d) if aborted => self
                .sink
                .emit(Event::FaultEnded(format!("rolled back: {d}"))),
            Ok(d) => self.sink.emit(Event::FaultEnded(format!(
                "ended after the observation: {d}"
            ))),
            Err(e) => self.sink.emit(Event::Warning(format!(
                "rolling back the fault failed: {e}; `firedrill recover` retries it"
            ))),
        }
    }
}
