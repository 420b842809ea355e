//! A game day's steps, run in order between the steady state and the observation. Machines'
//! steps act at once; a person's step is shown, then waits for its condition (or the person's
//! `done`) until its deadline, while acknowledgements, notes and aborts arrive from the
//! terminal or `firedrill step`. A step past its deadline stops the game day where it is: the
//! faults are rolled back, the later steps are skipped, and its target is missed.
//!
//! Boundary: the order of steps and their times; injecting, recovering and asking conditions
//! are the drill's ([`super`], [`super::condition`]).

use std::time::Duration;

use super::{Abort, Drill, Load, Pending};
use crate::event::Event;
use crate::gameday::{Action, StepOutcome, StepResult};
use crate::measure::ms;
use crate::operator::Unreadable;
use crate::scenario::placeholder::FaultField;
use crate::scenario::{Condition, Fault, Placeholder, Recovery, Step, placeholders};

/// How often a game day takes up people's actions and ends a timed fault.
pub(super) const TICK: Duration = Duration::from_millis(20);
/// How often a condition is asked: a query or a command costs a connection or a process.
const ASK_EVERY: Duration = Duration::from_millis(100);

/// How a step ended, and when.
enum Ended {
    Done(Duration, String),
    TimedOut(Duration, String),
    Failed(Duration, String),
}

impl<'a> Drill<'a, '_> {
    pub(super) async fn run_steps(&mut self, steps: &'a [Step], load: &Load) -> Result<(), Abort> {
        let total = steps.len();
        self.results = steps
            .iter()
            .enumerate()
            .map(|(i, st)| StepResult {
                number: i + 1,
                kind: st.kind().into(),
                title: st.title(),
                within_ms: st.within().map(|d| ms(d.get())),
                ..StepResult::default()
            })
            .collect();
        for (i, st) in steps.iter().enumerate() {
            let start = self.sink.t0.elapsed();
            let instruction = match st {
                Step::Manual { instruction, .. } => self.filled(instruction),
                Step::Checkpoint { text, .. } => text.trim().to_owned(),
                Step::Fault { .. }
                | Step::Recovery { .. }
                | Step::WaitFor { .. }
                | Step::Note { .. } => String::new(),
            };
            let r = &mut self.results[i];
            // Until it ends otherwise: an abort leaves the step it interrupted so.
            r.outcome = StepOutcome::Aborted;
            r.started_ms = Some(ms(start));
            r.instruction = instruction.clone();
            if let Step::Manual {
                runbook: Some(rb), ..
            } = st
            {
                r.runbook = Some(rb.display().to_string());
            }
            self.sink.emit_at(
                start,
                Event::StepStarted {
                    number: i + 1,
                    total,
                    title: st.title(),
                    instruction,
                    within: st.within().map(|d| d.get()),
                },
            );
            let deadline = st.deadline().map(|d| start + d.get());
            let ended = match st {
                Step::Fault { fault, .. } => self.fault_step(fault).await?,
                Step::Recovery { recovery, .. } => {
                    if let Recovery::Promote { after, .. } | Recovery::Command { after, .. } =
                        recovery
                    {
                        self.wait_until(start + after.get(), load).await?;
                    }
                    let at = || self.sink.t0.elapsed();
                    match self.driver.recover(recovery).await {
                        Ok(d) => {
                            let d = d.unwrap_or_default();
                            self.sink.emit(Event::RecoveryAction(d.clone()));
                            Ended::Done(at(), d)
                        }
                        Err(e) => {
                            self.sink.emit(Event::RecoveryFailed(e.to_string()));
                            Ended::Failed(at(), e.to_string())
                        }
                    }
                }
                Step::WaitFor { condition, .. } => {
                    let until = deadline.unwrap_or(start);
                    self.await_step(i, Some(condition), start, until, load)
                        .await?
                }
                Step::Manual { done_when, .. } => {
                    let until = deadline.unwrap_or(start);
                    self.current = Some(i);
                    let ended = self
                        .await_step(i, done_when.as_ref(), start, until, load)
                        .await;
                    (self.current, self.recent) = (None, Some(i));
                    ended?
                }
                Step::Checkpoint { .. } => {
                    let until = deadline.unwrap_or(start);
                    self.current = Some(i);
                    let ended = self.await_step(i, None, start, until, load).await;
                    (self.current, self.recent) = (None, Some(i));
                    ended?
                }
                Step::Note { text } => {
                    self.sink
                        .emit(Event::Note(format!("scenario: {}", text.trim())));
                    Ended::Done(self.sink.t0.elapsed(), String::new())
                }
            };
            let (outcome, at, detail) = match ended {
                Ended::Done(at, d) => (StepOutcome::Done, at, d),
                Ended::TimedOut(at, d) => (StepOutcome::TimedOut, at, d),
                Ended::Failed(at, d) => (StepOutcome::Failed, at, d),
            };
            let r = &mut self.results[i];
            r.outcome = outcome;
            r.ended_ms = Some(ms(at));
            r.detail = detail;
            if outcome == StepOutcome::Done {
                r.duration_ms = Some(ms(at.saturating_sub(start)));
            }
            let line = format!(
                "step {}/{total} {}: {}{}",
                i + 1,
                outcome.label(),
                st.title(),
                match (r.duration_ms, r.within_ms) {
                    (Some(d), Some(w)) => format!(
                        " in {:.1}s (target {:.0}s: {})",
                        d / 1000.0,
                        w / 1000.0,
                        if d <= w { "met" } else { "MISSED" }
                    ),
                    (Some(d), None) => format!(" in {:.1}s", d / 1000.0),
                    (None, _) => format!(": {}", r.detail),
                }
            );
            self.sink.emit_at(at, Event::StepEnded(line));
            if outcome != StepOutcome::Done {
                let why = format!(
                    "step {} ({}) {}: {}",
                    i + 1,
                    st.title(),
                    outcome.label().to_lowercase(),
                    self.results[i].detail
                );
                for later in &mut self.results[i + 1..] {
                    later.detail = format!(
                        "not reached: step {} {}",
                        i + 1,
                        outcome.label().to_lowercase()
                    );
                }
                self.sink.emit(Event::Warning(format!(
                    "{why}; the game day stops here and rolls back"
                )));
                self.cut = Some(why);
                break;
            }
        }
        Ok(())
    }

    /// The fault recovery is measured from (the first), or another one.
    async fn fault_step(&mut self, fault: &Fault) -> Result<Ended, Abort> {
        if self.fault_at.is_none() {
            // Nothing is measured without it: a failure aborts the game day.
            let at = self.inject_measured(fault).await?;
            return Ok(Ended::Done(at, fault.kind().into()));
        }
        let at = self.sink.t0.elapsed();
        match self.driver.inject(fault, &self.journal, &self.run_id).await {
            Ok(injected) => {
                let at = injected
                    .at
                    .map_or(at, |i| i.saturating_duration_since(self.sink.t0));
                self.sink
                    .emit_at(at, Event::FaultInjected(injected.description.clone()));
                self.in_place(fault, at, self.sink.t0.elapsed());
                if let Some(undo) = injected.undo {
                    self.pending.push(Pending {
                        undo,
                        ends_at: injected.ends_after.map(|d| at + d),
                    });
                }
                Ok(Ended::Done(at, injected.description))
            }
            Err(e) => Ok(Ended::Failed(self.sink.t0.elapsed(), e.to_string())),
        }
    }

    /// Waits until `condition` holds (asked every [`ASK_EVERY`]) or, without one, until a
    /// person says done; at `until` the step has timed out.
    async fn await_step(
        &mut self,
        i: usize,
        condition: Option<&Condition>,
        start: Duration,
        until: Duration,
        load: &Load,
    ) -> Result<Ended, Abort> {
        let mut asked: Option<Duration> = None;
        let mut why: Option<String> = None;
        loop {
            let now = self.sink.t0.elapsed();
            match condition {
                None => {
                    if let Some(done) = self.results[i].done_ms {
                        return Ok(Ended::Done(
                            Duration::from_secs_f64(done / 1000.0),
                            String::new(),
                        ));
                    }
                }
                Some(c) if asked.is_none_or(|a| now >= a + ASK_EVERY) => {
                    asked = Some(now);
                    match self.holds(c, start, load).await {
                        Ok(Some(at)) => {
                            self.results[i].condition_ms = Some(ms(at));
                            return Ok(Ended::Done(at, format!("{} seen", c.describe())));
                        }
                        Ok(None) => {}
                        Err(e) => why = Some(e),
                    }
                }
                Some(_) => {}
            }
            if now >= until {
                let what = match condition {
                    Some(c) => format!("{} not seen", c.describe()),
                    None => "nobody said done".into(),
                };
                let within = humantime::format_duration(Duration::from_millis(
                    (until - start).as_millis() as u64,
                ));
                return Ok(Ended::TimedOut(
                    until,
                    match why {
                        Some(w) => format!("{what} within {within} (last check: {w})"),
                        None => format!("{what} within {within}"),
                    },
                ));
            }
            self.wait_until((now + TICK).min(until), load).await?;
        }
    }

    /// Takes up what people did since the last look: notes into the timeline, an
    /// acknowledgement or a done onto the step on the screen, an abort as Ctrl-C.
    pub(super) fn take_actions(&mut self) -> Result<(), Abort> {
        let Some(inbox) = self.inbox.as_mut() else {
            return Ok(());
        };
        while let Some(next) = inbox.take() {
            let acted = match next {
                Ok(a) => a,
                Err(Unreadable(why)) => {
                    self.sink.emit(Event::Warning(why));
                    continue;
                }
            };
            let who = &acted.operator;
            match acted.action {
                Action::Note => self
                    .sink
                    .emit_at(acted.at, Event::Note(format!("{who}: {}", acted.text))),
                Action::Abort => {
                    self.sink
                        .emit_at(acted.at, Event::Operator(format!("{who}: abort")));
                    return Err(Abort(format!("aborted by {who}")));
                }
                Action::Ack | Action::Done => {
                    let Some(i) = self.current.or(self.recent) else {
                        self.sink.emit(Event::Warning(format!(
                            "{who}'s {} came while no step waits for a person; ignored",
                            acted.action.label()
                        )));
                        continue;
                    };
                    let r = &mut self.results[i];
                    // Typed a moment before the step showed: it counts from the step's start.
                    let at = ms(acted.at).max(r.started_ms.unwrap_or_default());
                    let (slot, by) = if acted.action == Action::Ack {
                        (&mut r.acknowledged_ms, &mut r.acknowledged_by)
                    } else {
                        (&mut r.done_ms, &mut r.done_by)
                    };
                    if slot.is_none() {
                        *slot = Some(at);
                        *by = Some(who.clone());
                    }
                    self.sink.emit_at(
                        Duration::from_secs_f64(at / 1000.0),
                        Event::Operator(format!(
                            "{who}: {} step {} ({})",
                            acted.action.label(),
                            r.number,
                            r.title
                        )),
                    );
                }
            }
        }
        Ok(())
    }

    /// Ends the faults whose own time is up (a pause injected by a step).
    pub(super) async fn end_due_faults(&mut self, now: Duration) {
        while let Some(i) = self
            .pending
            .iter()
            .position(|p| p.ends_at.is_some_and(|e| e <= now))
        {
            let p = self.pending.remove(i);
            match self.driver.undo(p.undo, &self.journal).await {
                Ok(d) => self.sink.emit(Event::FaultEnded(d)),
                Err(e) => self
                    .sink
                    .emit(Event::Warning(format!("ending the fault: {e}"))),
            }
        }
    }

    /// The live clock of the person's step on the screen, with the writes as clients see them.
    pub(super) fn step_clock(&self, now: Duration, load: &Load) -> Option<Event> {
        let i = self.current?;
        let r = &self.results[i];
        let started = Duration::from_secs_f64(r.started_ms? / 1000.0);
        let write_up = load.write.up.load(std::sync::atomic::Ordering::Relaxed);
        let down_for = (!write_up).then(|| {
            let fault_at = self.fault_at.unwrap_or_default();
            let last_ok = load
                .write
                .with_since(fault_at, |s| s.iter().rev().find(|x| x.ok).map(|x| x.end));
            now.saturating_sub(last_ok.unwrap_or(fault_at))
        });
        Some(Event::StepClock {
            number: r.number,
            total: self.results.len(),
            title: r.title.clone(),
            elapsed: now.saturating_sub(started),
            within: r.within_ms.map(|w| Duration::from_secs_f64(w / 1000.0)),
            write_up,
            down_for,
        })
    }

    /// An instruction with its placeholders filled in: `{{fault.at}}` (when the first fault
    /// struck, UTC, as `2026-11-29 16:31:30.659+00`), and what the sandbox knows
    /// (`{{NODE.port}}`, `{{sandbox.base_backup}}`). What cannot be filled is left as written.
    fn filled(&self, instruction: &str) -> String {
        let mut text = instruction.trim().to_owned();
        for found in placeholders(instruction) {
            let value = match &found.parsed {
                Ok(Placeholder::Fault(FaultField::At)) => self.fault_at.map(|at| {
                    let zero = std::time::SystemTime::now() - self.sink.t0.elapsed();
                    // As PostgreSQL writes a timestamp, which it also reads back where a time
                    // zone abbreviation such as `Z` is not yet known (`recovery_target_time`).
                    humantime::format_rfc3339_millis(zero + at)
                        .to_string()
                        .replace('T', " ")
                        .replace('Z', "+00")
                }),
                Ok(p @ (Placeholder::Sandbox(_) | Placeholder::Node { .. })) => self.driver.fact(p),
                Err(_unknown) => None,
            };
            if let Some(value) = value {
                text = text.replace(&found.written, &value);
            }
        }
        text
    }
}
