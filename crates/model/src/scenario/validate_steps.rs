//! What a game day's `steps:` must be: each step checked where it sits (`steps[2].within`),
//! its faults and recoveries by the same rules as a failover drill's, and the list as a whole
//! (one fault at least, something to judge). Pure, like all validation.

use super::model::*;
use super::placeholder::{FaultField, NodeField, Placeholder, SandboxField, Unknown, placeholders};
use super::problem::{Keys, Problem, check_argv, problem, sandbox_nodes};
use super::steps::{Condition, Step};
use super::validate_failover::{check_fault, check_recovery};

pub(super) fn check(s: &Scenario, steps: &[Step], out: &mut Vec<Problem>) {
    for (key, present) in [
        ("fault", s.fault.is_some()),
        ("recovery", s.recovery.is_some()),
        ("restore", s.restore.is_some()),
        ("backup_health", s.backup_health.is_some()),
        ("fleet", s.fleet.is_some()),
    ] {
        if present {
            out.push(problem(
                key,
                "a game day's `steps` replace `fault` and `recovery` (a scenario is one drill)",
            ));
        }
    }
    if steps.is_empty() {
        out.push(problem("steps", "no step: a game day lists at least one"));
        return;
    }
    if !steps.iter().any(|s| matches!(s, Step::Fault { .. })) {
        out.push(problem(
            "steps",
            "no `fault` step: a game day breaks something (recovery is measured from the first \
             fault)",
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        let at = |key: &str| format!("steps[{i}].{key}");
        match step {
            Step::Fault { fault, .. } => {
                let keys = Keys {
                    fault: at("fault"),
                    recovery: at("recovery"),
                };
                check_fault(s, fault, &keys, out);
            }
            Step::Recovery { recovery, .. } => {
                let keys = Keys {
                    fault: at("fault"),
                    recovery: at("recovery"),
                };
                check_recovery(s, recovery, &keys, out);
                if matches!(recovery, Recovery::Wait) {
                    out.push(problem(
                        &at("recovery.type"),
                        "a `wait` recovery step does nothing; wait for something with a \
                         `wait-for` step",
                    ));
                }
            }
            Step::WaitFor {
                condition,
                deadline,
                ..
            } => {
                check_condition(s, condition, &at("condition"), out);
                match deadline {
                    None => out.push(problem(
                        &at("deadline"),
                        "missing: how long to wait before the step fails (e.g. 30s)",
                    )),
                    Some(d) if d.get().is_zero() => {
                        out.push(problem(&at("deadline"), "must be longer than 0s"))
                    }
                    Some(_) => {}
                }
            }
            Step::Manual {
                instruction,
                within,
                deadline,
                done_when,
                ..
            } => {
                if instruction.trim().is_empty() {
                    out.push(problem(
                        &at("instruction"),
                        "empty: say what the person does",
                    ));
                }
                check_placeholders(s, instruction, &at("instruction"), out);
                match within {
                    None => out.push(problem(
                        &at("within"),
                        "missing: the time a person has for this step (e.g. 5m); it is the \
                         step's target",
                    )),
                    Some(w) if w.get().is_zero() => {
                        out.push(problem(&at("within"), "must be longer than 0s"))
                    }
                    Some(_) => {}
                }
                if let (Some(w), Some(d)) = (within, deadline)
                    && d < w
                {
                    out.push(problem(
                        &at("deadline"),
                        format!("the deadline ({d}) is before the target ({w})"),
                    ));
                }
                if let Some(c) = done_when {
                    check_condition(s, c, &at("done_when"), out);
                }
            }
            Step::Note { text } => {
                if text.trim().is_empty() {
                    out.push(problem(&at("text"), "empty note"));
                }
            }
            Step::Checkpoint { text, deadline } => {
                if text.trim().is_empty() {
                    out.push(problem(
                        &at("text"),
                        "empty: say what the facilitator checks",
                    ));
                }
                if deadline.is_some_and(|d| d.get().is_zero()) {
                    out.push(problem(&at("deadline"), "must be longer than 0s"));
                }
            }
        }
    }
    let t = &s.targets;
    if t.rto.is_none()
        && t.rpo.is_none()
        && t.max_lost_writes.is_none()
        && t.min_availability_pct.is_none()
        && !steps.iter().any(|s| s.within().is_some())
    {
        out.push(problem(
            "targets",
            "state at least one target (rto, rpo, max_lost_writes, min_availability_pct, or a \
             step's `within`): a drill must say what it proves",
        ));
    }
    if t.checksums.is_some() {
        out.push(problem(
            "targets.checksums",
            "checksums are proven by restore drills; a game day proves its data with the write \
             ledger (max_lost_writes) or a `wait-for` `sql` condition",
        ));
    }
}

/// A condition's node must exist where firedrill can know the nodes; a query and a command
/// must say something.
fn check_condition(s: &Scenario, c: &Condition, at: &str, out: &mut Vec<Problem>) {
    match c {
        Condition::WritesRecovered | Condition::ReadsRecovered => {}
        Condition::PrimaryIs { node } => {
            let known = match &s.target {
                Target::PostgresSandbox(spec) => Some(sandbox_nodes(spec.standbys)),
                Target::PatroniSandbox(spec) => Some(patroni_members(spec.members)),
                // An existing Patroni cluster's members are read at run time.
                Target::Patroni(_) => None,
                Target::Postgres(_)
                | Target::AwsRds(_)
                | Target::AwsBackup(_)
                | Target::Pgbackrest(_) => {
                    out.push(problem(
                        &format!("{at}.type"),
                        format!(
                            "`primary-is` needs a sandbox or Patroni target, whose nodes \
                             firedrill knows; on a `{}` target use `sql` or `command`",
                            s.target.kind()
                        ),
                    ));
                    return;
                }
            };
            if let Some(known) = known
                && !known.contains(node)
            {
                out.push(problem(
                    &format!("{at}.node"),
                    format!(
                        "unknown node {node:?}; this target has {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        Condition::Sql { query } => {
            if query.trim().is_empty() {
                out.push(problem(&format!("{at}.query"), "empty query"));
            }
        }
        Condition::Command { run, timeout } => {
            check_argv(&format!("{at}.run"), &run.0, out);
            if timeout.get().is_zero() {
                out.push(problem(&format!("{at}.timeout"), "must be longer than 0s"));
            }
        }
    }
}

/// Placeholders name what firedrill can fill in: `{{fault.at}}` anywhere; on a sandbox, a
/// node's fields, and the `sandbox`'s `bin_dir`, and its `base_backup` and `wal_archive` when it
/// keeps them (`wal_archive: true`).
fn check_placeholders(s: &Scenario, text: &str, at: &str, out: &mut Vec<Problem>) {
    for found in placeholders(text) {
        let shown = found.shown();
        let on_sandbox = match &found.parsed {
            Ok(Placeholder::Fault(FaultField::At)) => continue,
            Err(Unknown::Fault) => {
                out.push(problem(
                    at,
                    format!("{shown}: the fault has `at` (when it struck)"),
                ));
                continue;
            }
            Ok(Placeholder::Sandbox(_) | Placeholder::Node { .. })
            | Err(Unknown::Sandbox | Unknown::Node(_)) => match &s.target {
                Target::PostgresSandbox(spec) => spec,
                Target::Postgres(_)
                | Target::AwsRds(_)
                | Target::AwsBackup(_)
                | Target::PatroniSandbox(_)
                | Target::Patroni(_)
                | Target::Pgbackrest(_) => {
                    out.push(problem(
                        at,
                        format!(
                            "{shown}: a `{}` target fills in only `{{{{fault.at}}}}`; write the \
                             commands out",
                            s.target.kind()
                        ),
                    ));
                    continue;
                }
            },
        };
        let node_known = |node: &str, out: &mut Vec<Problem>| {
            let nodes = sandbox_nodes(on_sandbox.standbys);
            let known = nodes.iter().any(|n| n == node);
            if !known {
                out.push(problem(
                    at,
                    format!(
                        "{shown} names unknown node {node:?}; this sandbox has {} (and \
                         `sandbox`, `fault`)",
                        nodes.join(", ")
                    ),
                ));
            }
            known
        };
        match &found.parsed {
            // Checked above: the fault's placeholders need no sandbox.
            Ok(Placeholder::Fault(FaultField::At)) | Err(Unknown::Fault) => {}
            Ok(Placeholder::Sandbox(SandboxField::BinDir)) => {}
            Ok(Placeholder::Sandbox(SandboxField::BaseBackup | SandboxField::WalArchive)) => {
                if !on_sandbox.wal_archive {
                    out.push(problem(
                        at,
                        format!(
                            "{shown}: the sandbox keeps no backup; set `target.wal_archive: true`"
                        ),
                    ));
                }
            }
            Err(Unknown::Sandbox) => out.push(problem(
                at,
                format!("{shown}: the sandbox has {}", SandboxField::listed()),
            )),
            Ok(Placeholder::Node {
                node,
                field: NodeField::Port | NodeField::DataDir,
            }) => {
                node_known(node, out);
            }
            Err(Unknown::Node(node)) => {
                if node_known(node, out) {
                    out.push(problem(
                        at,
                        format!("{shown}: a node has {}", NodeField::listed()),
                    ));
                }
            }
        }
    }
}
