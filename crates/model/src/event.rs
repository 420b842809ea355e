//! The engine's typed event stream. The engine emits; reporters (the live terminal display, plain
//! log lines) only consume, and the report's timeline is the same events, recorded.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::measure::ms;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Setup,
    SteadyState,
    Fault,
    /// Restore drills: taking (or checking) the backup.
    Backup,
    /// Restore drills: restoring into a new sandbox until the first query.
    Restore,
    Verify,
    Teardown,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::SteadyState => "steady state",
            Phase::Fault => "fault and recovery",
            Phase::Backup => "backup",
            Phase::Restore => "restore",
            Phase::Verify => "verify",
            Phase::Teardown => "teardown",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Phase(Phase),
    /// A step of building or preparing the target.
    Setup(String),
    SteadyState {
        met: bool,
        detail: String,
    },
    FaultInjected(String),
    /// The fault was undone (a paused node resumed, an undo command ran).
    FaultEnded(String),
    /// A change to a sandbox's zones took effect: links down, a partition's rules in place.
    Network(String),
    RecoveryAction(String),
    RecoveryFailed(String),
    /// Periodic live state; not recorded in the timeline.
    Status {
        write_up: bool,
        read_up: bool,
        acknowledged_writes: u64,
    },
    Verified(String),
    /// A step of a restore drill done (backup taken, restore finished), with its figures.
    Step(String),
    /// A check of a restore drill that failed, with its reason.
    CheckFailed(String),
    Warning(String),
    Aborted(String),
    /// A guardrail held: the condition and what was seen. The drill aborts and rolls back.
    GuardrailTripped(String),
    /// A game day's step began; a person's step is on the screen from now on.
    StepStarted {
        number: usize,
        total: usize,
        title: String,
        /// What the person is to do, placeholders filled in (empty for machines' steps).
        instruction: String,
        within: Option<Duration>,
    },
    /// A game day's step ended: how, and its figures.
    StepEnded(String),
    /// A person acknowledged a step or said it was done.
    Operator(String),
    /// A note: typed by a person (with their name), or a `note` step of the scenario.
    Note(String),
    /// The clock of the step a person works on, with the writes as clients see them; live
    /// only, not recorded.
    StepClock {
        number: usize,
        total: usize,
        title: String,
        elapsed: Duration,
        within: Option<Duration>,
        write_up: bool,
        /// How long writes have been down, when they are.
        down_for: Option<Duration>,
    },
}

impl Event {
    /// The same event with every registered secret masked (see [`crate::secrets`]).
    fn redacted(self) -> Event {
        let r = |s: String| crate::secrets::redact(&s).into_owned();
        match self {
            Event::Setup(s) => Event::Setup(r(s)),
            Event::SteadyState { met, detail } => Event::SteadyState {
                met,
                detail: r(detail),
            },
            Event::FaultInjected(s) => Event::FaultInjected(r(s)),
            Event::FaultEnded(s) => Event::FaultEnded(r(s)),
            Event::Network(s) => Event::Network(r(s)),
            Event::RecoveryAction(s) => Event::RecoveryAction(r(s)),
            Event::RecoveryFailed(s) => Event::RecoveryFailed(r(s)),
            Event::Verified(s) => Event::Verified(r(s)),
            Event::Step(s) => Event::Step(r(s)),
            Event::CheckFailed(s) => Event::CheckFailed(r(s)),
            Event::Warning(s) => Event::Warning(r(s)),
            Event::Aborted(s) => Event::Aborted(r(s)),
            Event::GuardrailTripped(s) => Event::GuardrailTripped(r(s)),
            Event::StepStarted {
                number,
                total,
                title,
                instruction,
                within,
            } => Event::StepStarted {
                number,
                total,
                title: r(title),
                instruction: r(instruction),
                within,
            },
            Event::StepEnded(s) => Event::StepEnded(r(s)),
            Event::Operator(s) => Event::Operator(r(s)),
            Event::Note(s) => Event::Note(r(s)),
            e @ (Event::Phase(_) | Event::Status { .. } | Event::StepClock { .. }) => e,
        }
    }

    /// The timeline's kind tag; `None` for events not worth keeping.
    fn kind(&self) -> Option<&'static str> {
        Some(match self {
            Event::Phase(_) => "phase",
            Event::Setup(_) => "setup",
            Event::SteadyState { .. } => "steady-state",
            Event::FaultInjected(_) => "fault-injected",
            Event::FaultEnded(_) => "fault-ended",
            Event::Network(_) => "network",
            Event::RecoveryAction(_) => "recovery-action",
            Event::RecoveryFailed(_) => "recovery-failed",
            Event::Status { .. } => return None,
            Event::Verified(_) => "verified",
            Event::Step(_) => "step",
            Event::CheckFailed(_) => "check-failed",
            Event::Warning(_) => "warning",
            Event::Aborted(_) => "aborted",
            Event::GuardrailTripped(_) => "guardrail-tripped",
            Event::StepStarted { .. } => "step-started",
            Event::StepEnded(_) => "step-ended",
            Event::Operator(_) => "operator",
            Event::Note(_) => "note",
            Event::StepClock { .. } => return None,
        })
    }

    pub fn detail(&self) -> String {
        match self {
            Event::Phase(p) => p.label().to_owned(),
            Event::Setup(s)
            | Event::FaultInjected(s)
            | Event::FaultEnded(s)
            | Event::Network(s)
            | Event::RecoveryAction(s)
            | Event::RecoveryFailed(s)
            | Event::Verified(s)
            | Event::Step(s)
            | Event::CheckFailed(s)
            | Event::Warning(s)
            | Event::Aborted(s)
            | Event::GuardrailTripped(s)
            | Event::StepEnded(s)
            | Event::Operator(s)
            | Event::Note(s) => s.clone(),
            Event::StepStarted {
                number,
                total,
                title,
                within,
                ..
            } => format!(
                "step {number}/{total}: {title}{}",
                within
                    .map(|w| format!(" (within {})", humantime::format_duration(w)))
                    .unwrap_or_default()
            ),
            Event::StepClock {
                number,
                total,
                title,
                elapsed,
                within,
                ..
            } => format!(
                "step {number}/{total} {title}: {}{}",
                clock(*elapsed),
                within
                    .map(|w| format!(" of {}", clock(w)))
                    .unwrap_or_default()
            ),
            Event::SteadyState { met, detail } => {
                format!("{}: {detail}", if *met { "met" } else { "not met" })
            }
            Event::Status {
                write_up,
                read_up,
                acknowledged_writes,
            } => format!(
                "write {} read {} acked {acknowledged_writes}",
                up(*write_up),
                up(*read_up)
            ),
        }
    }
}

/// A step's clock as a person reads it: `m:ss`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// How a probe's state reads to a person.
pub fn up(b: bool) -> &'static str {
    if b { "up" } else { "DOWN" }
}

/// One recorded event of the report's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TimelineEntry {
    /// Milliseconds from the drill's start (monotonic clock).
    pub t_ms: f64,
    pub kind: String,
    pub detail: String,
}

/// Consumes events as they happen.
pub trait Reporter: Send {
    fn event(&mut self, at: Duration, event: &Event);
}

/// Stamps events with the drill clock, records the timeline, and forwards to the reporter.
/// Shared by reference (`emit(&self)`), so that progress callbacks deep in a driver can emit.
pub struct EventSink<'a> {
    pub t0: Instant,
    inner: Mutex<Inner<'a>>,
}

struct Inner<'a> {
    timeline: Vec<TimelineEntry>,
    reporter: &'a mut dyn Reporter,
}

impl<'a> EventSink<'a> {
    pub fn new(t0: Instant, reporter: &'a mut dyn Reporter) -> Self {
        EventSink {
            t0,
            inner: Mutex::new(Inner {
                timeline: Vec::new(),
                reporter,
            }),
        }
    }

    pub fn emit(&self, event: Event) {
        self.emit_at(self.t0.elapsed(), event);
    }

    /// Records an event at a known instant (e.g. the fault instant taken just before a signal).
    pub fn emit_at(&self, at: Duration, event: Event) {
        let event = event.redacted();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(kind) = event.kind() {
            inner.timeline.push(TimelineEntry {
                t_ms: ms(at),
                kind: kind.to_owned(),
                detail: event.detail(),
            });
        }
        inner.reporter.event(at, &event);
    }

    pub fn timeline(&self) -> Vec<TimelineEntry> {
        let mut t = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .timeline
            .clone();
        t.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
        t
    }
}
