//! The plan of a game day: the failover drill's load and steady state, then every step as the
//! people in the room will meet it (who acts, until when, what ends it), then the same
//! observation and ledger check.

use super::failover;
use crate::scenario::{Recovery, Scenario, Step, steps};

pub(super) fn steps(s: &Scenario, list: &[Step], step: &mut dyn FnMut(String)) {
    failover::before_fault(s, step);
    let delayed = steps::first_fault(list).is_some_and(|f| f.effect_is_delayed());
    for (i, st) in list.iter().enumerate() {
        let n = i + 1;
        step(format!("STEP {n} ({}): {}", st.kind(), line(s, st)));
    }
    failover::observe(
        s,
        delayed,
        "the first fault",
        " (and at least the stability window after the last step)",
        step,
    );
    failover::after_observation(s, step);
}

fn line(s: &Scenario, st: &Step) -> String {
    match st {
        Step::Fault { fault, .. } => failover::fault_action(fault),
        Step::Recovery { recovery, .. } => {
            failover::recovery_line(s, recovery, "after the step starts")
        }
        Step::WaitFor {
            condition,
            deadline,
            ..
        } => format!(
            "wait until {}; fails and ends the game day if not by {}",
            condition.describe(),
            deadline.map(|d| d.to_string()).unwrap_or_default()
        ),
        Step::Manual {
            instruction,
            runbook,
            within,
            done_when,
            ..
        } => {
            let deadline = st.deadline();
            format!(
                "show the operator: {:?}{}; target: within {}{}; ends when {}",
                st.title(),
                runbook
                    .as_ref()
                    .map(|r| format!(" (runbook {})", r.display()))
                    .unwrap_or_default(),
                within.map(|d| d.to_string()).unwrap_or_default(),
                match deadline {
                    Some(d) if Some(d) != *within => {
                        format!("; rolls back if not done by {d}")
                    }
                    _ => "; rolls back if not done by then".into(),
                },
                match done_when {
                    Some(c) => format!("firedrill sees {}", c.describe()),
                    None => "someone says done".into(),
                }
            ) + &if instruction.lines().count() > 1 {
                format!("\n      {}", instruction.trim().replace('\n', "\n      "))
            } else {
                String::new()
            }
        }
        Step::Note { text } => format!("note for the room: {}", text.trim()),
        Step::Checkpoint { text, .. } => format!(
            "wait for the facilitator's done (at most {}): {}",
            st.deadline().map(|d| d.to_string()).unwrap_or_default(),
            text.trim()
        ),
    }
}

/// Every change the steps make, and how each is taken back.
pub(super) fn side_effects(s: &Scenario, list: &[Step], add: &mut dyn FnMut(String, &str)) {
    for st in list {
        match st {
            Step::Fault { fault, .. } => failover::fault_effects(fault, add),
            Step::Recovery { recovery, .. } => match recovery {
                Recovery::Promote { .. } | Recovery::Command { .. } => {
                    failover::recovery_effects(recovery, add)
                }
                Recovery::Wait => {}
            },
            Step::WaitFor { .. }
            | Step::Manual { .. }
            | Step::Note { .. }
            | Step::Checkpoint { .. } => {}
        }
    }
    failover::guardrail_effects(s, add);
    if list.iter().any(Step::needs_a_person) {
        add(
            "create the control file <state dir>/control/<run id>.jsonl (`firedrill step` \
             appends to it)"
                .into(),
            "removed when the game day ends",
        );
    }
}
