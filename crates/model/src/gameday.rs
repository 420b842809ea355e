//! A game day's two contracts: what the report says of each step (when it started, when a
//! person acknowledged it and said it was done, when firedrill saw its condition hold), and
//! the line `firedrill step` appends to a running game day's control file.
//!
//! Boundary: data and the arithmetic on it; the engine does the timing, the reports the
//! showing.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How one step of a game day went. Times are ms from the drill's start, like the timeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepResult {
    /// 1, 2, ... in the order of `steps:`; the step's target is named `step:N`.
    pub number: usize,
    /// `fault`, `recovery`, `wait-for`, `manual`, `note` or `checkpoint`.
    pub kind: String,
    pub title: String,
    pub outcome: StepOutcome,
    /// When firedrill began the step (for a person's step: showed it); none for a step never
    /// reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<f64>,
    /// When someone acknowledged it (noticed), and who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// When someone said it was done, and who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_by: Option<String>,
    /// When firedrill first saw the step's condition hold (`wait-for`, `done_when`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition_ms: Option<f64>,
    /// When the step ended (done, condition held, action returned, or deadline passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<f64>,
    /// The step's measurement: start to end, for a step that ended in time; none for one that
    /// timed out or never ran (a miss of its target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// The step's target (`within`), in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_ms: Option<f64>,
    /// What the step said to do, as shown (placeholders filled in).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instruction: String,
    /// The runbook section it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// Why a step failed or was skipped, or what an automated step did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    /// It ended as it should (an action done, a condition seen, a person's step done).
    Done,
    /// Its deadline passed first; the game day stopped there and rolled back.
    TimedOut,
    /// Its action failed (a fault that could not be injected, a recovery that errored).
    Failed,
    /// The drill was aborted while it ran (Ctrl-C, SIGTERM, a guardrail, someone's `abort`).
    Aborted,
    /// Never reached: an earlier step timed out or failed, or the drill was aborted.
    #[default]
    Skipped,
}

impl StepOutcome {
    pub fn label(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::TimedOut => "TIMED OUT",
            StepOutcome::Failed => "FAILED",
            StepOutcome::Aborted => "ABORTED",
            StepOutcome::Skipped => "skipped",
        }
    }
}

impl StepResult {
    /// From showing the step to its acknowledgement: how long noticing took.
    pub fn detection_ms(&self) -> Option<f64> {
        Some(self.acknowledged_ms? - self.started_ms?)
    }

    /// From acknowledgement to the step's end: how long acting took.
    pub fn action_ms(&self) -> Option<f64> {
        Some(self.ended_ms? - self.acknowledged_ms?)
    }
}

/// The control file's format version; a line of another version is refused by name.
pub const CONTROL_VERSION: u32 = 1;

/// The control file's first line: which drill reads it, so that `firedrill step` can tell a
/// running game day from a file a killed one left.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlHeader {
    pub v: u32,
    pub run_id: String,
    pub scenario: String,
    /// The process running the game day.
    pub pid: u32,
}

/// One action a person took, as one JSON line of `<state dir>/control/<RUN_ID>.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlLine {
    pub v: u32,
    pub action: Action,
    /// Who acted (`--operator`).
    pub operator: String,
    /// A note's text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// When the person acted, in ms since the Unix epoch (the game day maps it onto its own
    /// clock, so the time is the action's, not when the drill read the file).
    pub at_unix_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// I have seen the step (noticed the incident).
    Ack,
    /// The step is done.
    Done,
    /// A note for the timeline.
    Note,
    /// Stop the game day: roll back, report `aborted`.
    Abort,
}

impl Action {
    pub fn label(self) -> &'static str {
        match self {
            Action::Ack => "ack",
            Action::Done => "done",
            Action::Note => "note",
            Action::Abort => "abort",
        }
    }
}
