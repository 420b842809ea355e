//! A game day's `steps:` as written in YAML: an ordered list in which machines break things,
//! people act, and firedrill times both. Each step is `type:`-tagged; a condition (what a
//! `wait-for` waits for, what ends a `manual` step) is too.
//!
//! Boundary: shapes and the small facts other modules ask of them (kinds, nodes named, the
//! limits a step is judged by). Whether a list is valid is `validate_steps`'s.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

use super::argv::Argv;
use super::duration::Dur;
use super::failover::{Fault, Recovery};
use super::tagged::tagged_enum;

tagged_enum! {
    #[derive(Clone, Debug, Serialize, JsonSchema)]
    #[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum Step {
        /// Inject a fault (any kind the target takes); it stays in effect until its own
        /// duration ends, a recovery replaces what it broke, or the drill ends.
        Fault {
            #[serde(default)]
            name: Option<String>,
            fault: Fault,
        },
        /// firedrill performs a recovery action (as the HA controller would), `after` the
        /// step starts.
        Recovery {
            #[serde(default)]
            name: Option<String>,
            recovery: Recovery,
        },
        /// Wait until `condition` holds; the time it took is the step's measurement, and a
        /// condition still false at `deadline` fails the step (and ends the game day).
        WaitFor {
            #[serde(default)]
            name: Option<String>,
            condition: Condition,
            #[serde(default)]
            deadline: Option<Dur>,
        },
        /// An instruction for a person, timed against `within`. It starts when firedrill shows
        /// it and ends when `done_when` holds (or, without one, when the operator says done).
        Manual {
            #[serde(default)]
            name: Option<String>,
            /// What to do, with the exact commands; `{{NODE.port}}` and `{{NODE.data_dir}}`
            /// are replaced by a sandbox node's port and data directory.
            instruction: String,
            /// The runbook section the instruction comes from (relative to the scenario).
            #[serde(default)]
            runbook: Option<PathBuf>,
            /// The target: the step's duration must be at most this.
            #[serde(default)]
            within: Option<Dur>,
            /// When firedrill gives up on the step (default: `within`); the game day then fails
            /// that target and rolls back.
            #[serde(default)]
            deadline: Option<Dur>,
            /// What firedrill must see for the step to be done; without it, the operator's
            /// `done` ends the step.
            #[serde(default)]
            done_when: Option<Condition>,
        },
        /// A line for the facilitator, kept in the timeline; the game day goes straight on.
        Note { text: String },
        /// A pause for the facilitator: the game day waits until someone says `done` (at most
        /// `deadline`, default 15 minutes).
        Checkpoint {
            text: String,
            #[serde(default)]
            deadline: Option<Dur>,
        },
    }
}

tagged_enum! {
    #[derive(Clone, Debug, Serialize, JsonSchema)]
    #[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum Condition {
        /// The write probe succeeds again (after the step started).
        WritesRecovered,
        /// The read probe succeeds again (after the step started).
        ReadsRecovered,
        /// This node accepts writes (a sandbox node, or a Patroni member's name).
        PrimaryIs { node: String },
        /// A query on the target (through its DSN) returns one row whose first column is true.
        Sql { query: String },
        /// A command exits 0 (each attempt at most `timeout`).
        Command {
            run: Argv,
            #[serde(default = "default_attempt")]
            timeout: Dur,
        },
    }
}

fn default_attempt() -> Dur {
    Dur::from_secs(10)
}

/// A checkpoint waits at most this long unless it says otherwise.
pub const CHECKPOINT_DEADLINE: Dur = Dur::from_secs(15 * 60);

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Fault { .. } => "fault",
            Step::Recovery { .. } => "recovery",
            Step::WaitFor { .. } => "wait-for",
            Step::Manual { .. } => "manual",
            Step::Note { .. } => "note",
            Step::Checkpoint { .. } => "checkpoint",
        }
    }

    /// How the step reads in a plan, a report and on the screen.
    pub fn title(&self) -> String {
        match self {
            Step::Fault { name, fault } => name.clone().unwrap_or_else(|| match fault.node() {
                Some(node) => format!("{} {node}", fault.kind()),
                None => fault.kind().to_owned(),
            }),
            Step::Recovery { name, recovery } => name
                .clone()
                .unwrap_or_else(|| format!("{} recovery", recovery.kind())),
            Step::WaitFor {
                name, condition, ..
            } => name
                .clone()
                .unwrap_or_else(|| format!("wait for {}", condition.describe())),
            Step::Manual {
                name, instruction, ..
            } => name.clone().unwrap_or_else(|| first_line(instruction)),
            Step::Note { text } | Step::Checkpoint { text, .. } => first_line(text),
        }
    }

    /// The step's time target (`within`), which joins the verdict.
    pub fn within(&self) -> Option<Dur> {
        match self {
            Step::Manual { within, .. } => *within,
            Step::Fault { .. }
            | Step::Recovery { .. }
            | Step::WaitFor { .. }
            | Step::Note { .. }
            | Step::Checkpoint { .. } => None,
        }
    }

    /// When firedrill gives up waiting on the step; `None` for steps that do not wait.
    pub fn deadline(&self) -> Option<Dur> {
        match self {
            Step::WaitFor { deadline, .. } => *deadline,
            Step::Manual {
                within, deadline, ..
            } => deadline.or(*within),
            Step::Checkpoint { deadline, .. } => Some(deadline.unwrap_or(CHECKPOINT_DEADLINE)),
            Step::Fault { .. } | Step::Recovery { .. } | Step::Note { .. } => None,
        }
    }

    /// Whether a person must act for the step to end.
    pub fn needs_a_person(&self) -> bool {
        match self {
            Step::Manual { .. } | Step::Checkpoint { .. } => true,
            Step::Fault { .. }
            | Step::Recovery { .. }
            | Step::WaitFor { .. }
            | Step::Note { .. } => false,
        }
    }
}

impl Condition {
    pub fn describe(&self) -> String {
        match self {
            Condition::WritesRecovered => "writes recovered".into(),
            Condition::ReadsRecovered => "reads recovered".into(),
            Condition::PrimaryIs { node } => format!("{node} is the primary"),
            Condition::Sql { query } => format!("`{query}` is true"),
            Condition::Command { run, .. } => {
                format!("`{}` exits 0", super::argv::shell_words(&run.0))
            }
        }
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.trim().to_owned()
}

/// The fault recovery is measured from: the first `fault` step (validation requires one).
pub fn first_fault(steps: &[Step]) -> Option<&Fault> {
    steps.iter().find_map(|s| match s {
        Step::Fault { fault, .. } => Some(fault),
        Step::Recovery { .. }
        | Step::WaitFor { .. }
        | Step::Manual { .. }
        | Step::Note { .. }
        | Step::Checkpoint { .. } => None,
    })
}

/// The target name a step's `within` is judged under: `step:N`, counted from 1.
pub fn target_name(number: usize) -> String {
    format!("step:{number}")
}

/// The step number of a `step:N` target name.
pub fn target_number(name: &str) -> Option<usize> {
    name.strip_prefix("step:")?.parse().ok()
}
