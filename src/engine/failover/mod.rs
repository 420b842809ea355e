//! The failover drill: steady state, then the fault and the recovery under observation by write
//! and read probes and the workload's writers, then the ledger read back for lost writes. A fault
//! still in effect ends with the drill: rolled back on abort, ended after a full observation.
//!
//! A game day is the same drill with its middle written as [`steps`]: the load, the steady
//! state, the observation and the checks are this file's either way.

mod condition;
mod steps;
mod verify;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::phases::{self, Writers};
use super::{Abort, Ran, RunError};
use crate::error::EnvError;
use crate::event::{Event, EventSink, Phase};
use crate::gameday::StepResult;
use crate::guardrail::Guard;
use crate::ledger::WorkloadLog;
use crate::measure::{self, ms};
use crate::operator::Inbox;
use crate::probe::{self, ProbeKind, ProbeSpec, ProbeState};
use crate::record::ProbeRecord;
use crate::report::*;
use crate::safety::journal::{EffectId, Journal, Undo};
use crate::scenario::{DbTarget, FailoverTarget, Fault, LoadedScenario, Recovery, Step};
use crate::systems::Driver;
use crate::template::TemplateCache;
use crate::workload;

const STATUS_EVERY: Duration = Duration::from_millis(250);
const VERIFY_DEADLINE: Duration = Duration::from_secs(30);

/// A failover drill's parts, as validation typed them.
pub(super) struct Failover<'a> {
    pub loaded: &'a LoadedScenario,
    pub target: &'a DbTarget,
    pub script: Script<'a>,
    pub failover: FailoverTarget,
}

/// What happens between the steady state and the observation's end.
pub(super) enum Script<'a> {
    /// One fault, one recovery `after` it.
    Classic {
        fault: &'a Fault,
        recovery: &'a Recovery,
    },
    /// A game day: its steps in order, `fault` the first fault among them (recovery is
    /// measured from it), and what people do arriving in `inbox`.
    Steps {
        steps: &'a [Step],
        fault: &'a Fault,
        inbox: Inbox,
    },
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
            script,
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
                .map_err(|e| crate::systems::sandbox::describe_pg_error(&e)),
            Err(e) => Err(e),
        };
        if let Err(reason) = prepared {
            driver.teardown(false).await;
            return Err(RunError::Env(EnvError::Unreachable {
                what: "the target's primary through its DSN".into(),
                reason,
            }));
        }

        let (fault, recovery, steps, inbox) = match script {
            Script::Classic { fault, recovery } => (fault, recovery, None, None),
            Script::Steps {
                steps,
                fault,
                inbox,
            } => (fault, &Recovery::Wait, Some(steps), Some(inbox)),
        };
        let mut drill = Drill {
            loaded,
            fault,
            recovery,
            steps,
            inbox,
            results: Vec::new(),
            current: None,
            recent: None,
            cut: None,
            sink,
            driver: &mut driver,
            cancel,
            run_id: run_id.to_owned(),
            measurements: Measurements::default(),
            steady: None,
            series: None,
            fault_at: None,
            effect_marked: false,
            pending: Vec::new(),
            journal: journal.clone(),
            observe_every: fault.observe_every(),
            last_observed: None,
            failover,
            writer_before: None,
        };
        let aborted = drill.run().await.err();
        let mut measurements = drill.measurements;
        measurements.steps = drill.results;
        let (steady, series) = (drill.steady, drill.series);
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
    /// The fault recovery is measured from (a game day's first).
    fault: &'a Fault,
    /// A classic drill's recovery (`wait` for a game day, whose recoveries are steps).
    recovery: &'a Recovery,
    /// A game day's steps, what people do, how each step went, the person's step now on the
    /// screen, and why the steps stopped early (a step timed out or failed).
    steps: Option<&'a [Step]>,
    inbox: Option<Inbox>,
    results: Vec<StepResult>,
    current: Option<usize>,
    /// The person's step that ended last: a `done` said just after firedrill saw its
    /// condition still belongs to it.
    recent: Option<usize>,
    cut: Option<String>,
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
    /// Faults still in effect, undone on abort (last first); a game day's pause ends by
    /// itself at `ends_at`.
    pending: Vec<Pending>,
    journal: Journal,
    /// How often to read the fault's own progress (an FIS experiment), and when it was last read.
    observe_every: Option<Duration>,
    last_observed: Option<Duration>,
    /// Whether another server must take the writes.
    failover: FailoverTarget,
    /// The writer before the fault (`Some(None)`: not seen).
    writer_before: Option<Option<Server>>,
}

/// A fault in effect, with its undo.
struct Pending {
    undo: (Undo, EffectId),
    ends_at: Option<Duration>,
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
        let rolled_back = result.is_err() || self.cut.is_some();
        self.undo_pending(rolled_back).await;
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

    fn start_load(&self) -> Load {
        let s = &self.loaded.scenario;
        let t0 = self.sink.t0;
        let (stop, stop_rx) = watch::channel(false);
        // Clients run where the scenario puts them: on a sandbox with zones, the probes in the
        // first client zone and the writers dealt over all of them.
        let zones: Vec<tokio::runtime::Handle> = self
            .driver
            .client_zones()
            .into_iter()
            .map(|(_, h)| h)
            .collect();
        let probe_config = self.driver.app_config(s.probes.timeout.get());
        let write = Arc::new(ProbeState::default());
        let read = Arc::new(ProbeState::default());
        let mut probes = Vec::new();
        for (kind, state) in [(ProbeKind::Write, &write), (ProbeKind::Read, &read)] {
            let spec = ProbeSpec {
                kind,
                config: probe_config.clone(),
                interval: s.probes.interval.get(),
                timeout: s.probes.timeout.get(),
                abandon_after: s.probes.abandon_after(),
                run: self.run_id.clone(),
            };
            let probe = probe::run(spec, t0, stop_rx.clone(), state.clone());
            probes.push(match zones.first() {
                Some(zone) => zone.spawn(probe),
                None => tokio::spawn(probe),
            });
        }
        let writers = Writers::spawn(
            self.sink,
            s,
            &self.run_id,
            &self.driver.app_config(s.workload.timeout.get()),
            &zones,
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

        let before = self.driver.before_fault().await;
        if let Ok(Some(note)) = &before {
            self.sink.emit(Event::Setup(note.clone()));
        }
        if let Err(e) = before {
            self.sink.emit(Event::Warning(format!(
                "cannot read the cluster before the fault: {e}"
            )));
        }

        self.sink.emit(Event::Phase(Phase::Fault));
        match self.steps {
            Some(steps) => {
                self.run_steps(steps, load).await?;
                // Recovery may have been the last step: its stability window is still to see.
                let until = (self.fault_at.unwrap_or_default() + s.observe.duration.get())
                    .max(t0.elapsed() + s.observe.stability.get());
                if self.cut.is_none() {
                    self.wait_until(until, load).await?;
                }
                Ok(())
            }
            None => self.classic(load).await,
        }
    }

    /// One fault, then the recovery `after` it (and a pause's end), then the observation.
    async fn classic(&mut self, load: &Load) -> Result<(), Abort> {
        let s = &self.loaded.scenario;
        let fault_at = self.inject_measured(self.fault).await?;

        // Scheduled actions after the fault, in time order.
        enum Action {
            EndFault,
            Recover,
        }
        let mut actions: Vec<(Duration, Action)> = Vec::new();
        if let Some(d) = self.pending.last().and_then(|p| p.ends_at) {
            actions.push((d, Action::EndFault));
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
                Action::EndFault => self.end_fault().await,
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

    /// Injects the fault recovery is measured from and records its instant (when it took
    /// effect, where the driver knows it); returns that instant.
    async fn inject_measured(&mut self, fault: &Fault) -> Result<Duration, Abort> {
        let t0 = self.sink.t0;
        let fault_at = t0.elapsed();
        self.fault_at = Some(fault_at);
        self.measurements.fault_at_ms = Some(ms(fault_at));
        let injected = match self.driver.inject(fault, &self.journal, &self.run_id).await {
            Ok(i) => i,
            Err(e) => return Err(Abort(format!("fault injection failed: {e}"))),
        };
        let done = t0.elapsed();
        self.measurements.fault_started_ms = Some(ms(fault_at));
        self.measurements.fault_done_ms = Some(ms(done));
        self.effect_marked = injected.at.is_some();
        let fault_at = match injected.at {
            Some(at) => at.saturating_duration_since(t0),
            None => fault_at,
        };
        self.fault_at = Some(fault_at);
        self.measurements.fault_at_ms = Some(ms(fault_at));
        self.sink
            .emit_at(fault_at, Event::FaultInjected(injected.description.clone()));
        self.in_place(fault, fault_at, done);
        if let Some(undo) = injected.undo {
            self.pending.push(Pending {
                undo,
                ends_at: injected.ends_after.map(|d| fault_at + d),
            });
        }
        Ok(fault_at)
    }

    /// The moment a fault whose call takes time of its own was in place (a zone's links
    /// down), on the timeline beside the fault instant: the fault's own cost.
    fn in_place(&self, fault: &Fault, at: Duration, done: Duration) {
        if let Some(what) = fault.in_place() {
            self.sink.emit_at(
                done,
                Event::Network(format!(
                    "{what}, {:.1} ms after the fault instant",
                    ms(done.saturating_sub(at))
                )),
            );
        }
    }

    /// Ends the last fault still in effect (a pause's time is up).
    async fn end_fault(&mut self) {
        if let Some(p) = self.pending.pop() {
            match self.driver.undo(p.undo, &self.journal).await {
                Ok(d) => self.sink.emit(Event::FaultEnded(d)),
                Err(e) => self
                    .sink
                    .emit(Event::Warning(format!("ending the fault: {e}"))),
            }
        }
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

    /// Waits until `at` (drill time), showing live status and checking the guardrails every
    /// probe interval; returns early with an abort on cancel or when a guardrail holds.
    async fn wait_until(&mut self, at: Duration, load: &Load) -> Result<(), Abort> {
        // Guardrails are checked every probe interval; without them, the status line's pace;
        // in a game day, at the pace people's actions and a pause's end are taken up.
        let tick = if self.steps.is_some() {
            steps::TICK
        } else if self.loaded.scenario.guardrails.is_empty() {
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
            if self.steps.is_some() {
                self.take_actions()?;
                self.end_due_faults(now).await;
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
                // After the status, so that a terminal's live line shows the step's clock.
                if let Some(clock) = self.step_clock(now, load) {
                    self.sink.emit(clock);
                }
            }
            let nap = (at - now).min(tick);
            tokio::select! {
                _ = tokio::time::sleep(nap) => {}
                _ = self.cancel.changed() => {}
            }
        }
    }

    async fn undo_pending(&mut self, aborted: bool) {
        while let Some(p) = self.pending.pop() {
            match self.driver.undo(p.undo, &self.journal).await {
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
}
