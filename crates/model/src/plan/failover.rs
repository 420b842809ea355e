//! The plan of a failover drill: its steps from the steady state to the verification, and the
//! side effect of each fault and recovery kind with its undo.

use crate::scenario::{Cleanup, Fault, Recovery, Scenario, Target};

/// Every change a failover drill's fault, recovery and guardrails make, and how each is taken
/// back.
pub(super) fn side_effects(
    s: &Scenario,
    fault: &Fault,
    recovery: &Recovery,
    add: &mut dyn FnMut(String, &str),
) {
    fault_effects(fault, add);
    recovery_effects(recovery, add);
    guardrail_effects(s, add);
}

/// What a fault changes, and how it is taken back.
pub(super) fn fault_effects(fault: &Fault, add: &mut dyn FnMut(String, &str)) {
    match fault {
        Fault::Kill { node } => add(
            format!("SIGKILL every process of {node}"),
            "none needed; the sandbox's removal covers it",
        ),
        Fault::Stop { node, .. } => add(
            format!("stop {node}"),
            "none needed; the sandbox's removal covers it",
        ),
        Fault::Pause { node, duration } => add(
            format!("SIGSTOP every process of {node} for {duration}"),
            "SIGCONT every process of the node",
        ),
        Fault::RdsFailover => add(
            "RebootDBInstance with ForceFailover".into(),
            "none: RDS completes the failover (the old primary becomes the standby)",
        ),
        Fault::AuroraFailover { .. } => add(
            "FailoverDBCluster".into(),
            "none: the cluster completes the failover",
        ),
        Fault::FisExperiment { template, .. } => {
            if template.is_some() {
                add(
                    "create the FIS experiment template described here".into(),
                    "deleted at teardown",
                );
            }
            add(
                "start the FIS experiment, tagged firedrill:drill=<run id>".into(),
                "StopExperiment (on abort, Ctrl-C, a guardrail, or `firedrill recover`)",
            );
        }
        Fault::KillHost { member } => add(
            format!("SIGKILL Patroni and every PostgreSQL process of the {member}"),
            "none needed; the sandbox's removal covers it",
        ),
        Fault::KillPostgres { member } => add(
            format!("SIGKILL the postmaster of the {member}"),
            "none needed: Patroni restarts it; the sandbox's removal covers it",
        ),
        Fault::PauseHost { member, duration } => add(
            format!("SIGSTOP Patroni and PostgreSQL of the {member} for {duration}"),
            "SIGCONT every process of the member",
        ),
        Fault::Switchover { .. } | Fault::Failover { .. } => add(
            format!("a {} through Patroni's REST API", fault.kind()),
            "none: the new leader stays (switch back with another switchover)",
        ),
        Fault::StopDcs { duration } => add(format!("SIGSTOP etcd for {duration}"), "SIGCONT etcd"),
        Fault::ZoneOutage { zone, duration } => add(
            format!(
                "set zone {zone}'s link to the bridge down (ip -n <fabric> link set ... down){}",
                until(duration)
            ),
            "set the link up again; `firedrill recover` does the same",
        ),
        Fault::Partition {
            between, one_way, ..
        } => match one_way {
            true => add(
                format!(
                    "add nftables table `inet firedrill` in the zones of {} dropping what they \
                     send to {}",
                    sides(between, 0),
                    sides(between, 1)
                ),
                "delete the table in each zone; `firedrill recover` does the same",
            ),
            false => add(
                format!(
                    "move the links of {} from bridge br0 to br1, away from {}",
                    sides(between, 0),
                    sides(between, 1)
                ),
                "put them back on br0; `firedrill recover` does the same",
            ),
        },
        Fault::Sql { query } => add(
            format!("run `{query}` on the primary"),
            "none: what it changed stays (restoring it is the drill); the sandbox's removal \
             covers a sandbox",
        ),
        Fault::Command { run, undo, .. } => match undo {
            Some(u) => add(
                format!("run {}", crate::scenario::shell_words(run)),
                &format!("run {}", crate::scenario::shell_words(u)),
            ),
            None => add(
                format!("run {}", crate::scenario::shell_words(run)),
                "NONE GIVEN: undo it by hand after an abort (set fault.undo)",
            ),
        },
    }
}

/// What a recovery action changes.
pub(super) fn recovery_effects(recovery: &Recovery, add: &mut dyn FnMut(String, &str)) {
    match recovery {
        Recovery::Promote { node, .. } => add(
            format!("promote {node}"),
            "none needed; the sandbox's removal covers it",
        ),
        Recovery::Command { run, .. } => add(
            format!("run {}", crate::scenario::shell_words(run)),
            "none (it is the recovery)",
        ),
        Recovery::Wait => {}
    }
}

/// The checks guardrails run.
pub(super) fn guardrail_effects(s: &Scenario, add: &mut dyn FnMut(String, &str)) {
    for g in &s.guardrails {
        if let crate::scenario::Guardrail::Command { run, every, .. } = g {
            add(
                format!(
                    "run the check {} every {every}",
                    crate::scenario::shell_words(run)
                ),
                "none (a check)",
            );
        }
    }
}

pub(super) fn steps(
    s: &Scenario,
    fault: &Fault,
    recovery: &Recovery,
    step: &mut dyn FnMut(String),
) {
    before_fault(s, step);
    step(format!("FAULT: {}", fault_action(fault)));
    step(recovery_line(s, recovery, "after the fault"));
    observe(s, fault.effect_is_delayed(), "the fault", "", step);
    after_observation(s, step);
}

/// From the tables to the steady state: what every drill with probes does first.
pub(super) fn before_fault(s: &Scenario, step: &mut dyn FnMut(String)) {
    step(format!(
        "create tables {} and firedrill_probe if missing (side effect on the target's database)",
        s.workload.table
    ));
    step(format!(
        "start {} writer connection(s) and write/read probes every {} (timeout {})",
        s.workload.connections, s.probes.interval, s.probes.timeout
    ));
    let ss = &s.steady_state;
    step(format!(
        "steady state for {}: probes at least {}% successful{}; otherwise abort, injecting nothing",
        ss.duration,
        ss.min_success_pct,
        ss.max_p99_latency
            .map(|p| format!(", write p99 at most {p}"))
            .unwrap_or_default()
    ));
}

/// What a fault does, as a plan line says it.
pub(super) fn fault_action(fault: &Fault) -> String {
    match fault {
        Fault::Kill { node } => format!("SIGKILL every process of {node}"),
        Fault::Stop { node, mode } => {
            format!(
                "stop {node} ({} shutdown)",
                format!("{mode:?}").to_lowercase()
            )
        }
        Fault::Pause { node, duration } => {
            format!("SIGSTOP every process of {node}, SIGCONT after {duration}")
        }
        Fault::RdsFailover => "RebootDBInstance with ForceFailover (Multi-AZ failover)".into(),
        Fault::AuroraFailover { target_instance } => format!(
            "FailoverDBCluster{}",
            target_instance
                .as_ref()
                .map(|t| format!(" to {t}"))
                .unwrap_or_default()
        ),
        Fault::FisExperiment {
            template_id,
            template,
            poll,
        } => format!(
            "start the FIS experiment {}; read its state every {poll}",
            match (template_id, template) {
                (Some(id), _) => format!("of template {id}"),
                (None, Some(t)) => format!(
                    "of the template described here ({} action(s))",
                    t.actions.len()
                ),
                (None, None) => String::new(),
            }
        ),
        Fault::KillHost { member } => format!(
            "SIGKILL Patroni and every PostgreSQL process of the {member} (resolved \
             from GET /cluster when the fault fires)"
        ),
        Fault::KillPostgres { member } => {
            format!("SIGKILL the postmaster (and backends) of the {member}; Patroni stays up")
        }
        Fault::PauseHost { member, duration } => {
            format!("SIGSTOP Patroni and PostgreSQL of the {member}, SIGCONT after {duration}")
        }
        Fault::Switchover { candidate } => format!(
            "POST /switchover from the leader{}",
            candidate
                .as_ref()
                .map(|c| format!(" to the {c}"))
                .unwrap_or_else(|| " (Patroni picks the candidate)".into())
        ),
        Fault::Failover { candidate } => {
            format!("POST /failover to the {candidate}")
        }
        Fault::StopDcs { duration } => {
            format!("SIGSTOP etcd (the DCS stops answering), SIGCONT after {duration}")
        }
        Fault::Sql { query } => format!("run `{query}` on the primary (through the DSN)"),
        Fault::ZoneOutage { zone, duration } => {
            format!("every link of zone {zone} down{}", until(duration))
        }
        Fault::Partition {
            between,
            one_way,
            duration,
        } => format!(
            "partition: drop what {} sends to {}{}{}",
            sides(between, 0),
            sides(between, 1),
            if *one_way {
                " (one way: the other direction still flows)"
            } else {
                ", and back"
            },
            until(duration)
        ),
        Fault::Command { run, undo, .. } => format!(
            "run `{}`{}",
            run.join(" "),
            undo.as_ref()
                .map(|u| format!(" (undo on abort: `{}`)", u.join(" ")))
                .unwrap_or_default()
        ),
    }
}

/// A recovery action, `after` counted from `from`.
pub(super) fn recovery_line(s: &Scenario, recovery: &Recovery, from: &str) -> String {
    match recovery {
        Recovery::Promote { node, after, fence } => format!(
            "RECOVERY: {after} {from}, {}promote {node} and repoint other standbys",
            match fence {
                crate::scenario::Fence::None => "",
                crate::scenario::Fence::StopOldPrimary => "fence (SIGKILL) the old primary, ",
            }
        ),
        Recovery::Command { run, after, .. } => {
            format!("RECOVERY: {after} {from}, run `{}`", run.join(" "))
        }
        Recovery::Wait => match &s.target {
            Target::PatroniSandbox(_) | Target::Patroni(_) => {
                "RECOVERY: none by firedrill; Patroni recovers (a new leader, or a restart in \
                 place)"
                    .into()
            }
            Target::PostgresSandbox(_)
            | Target::Postgres(_)
            | Target::AwsRds(_)
            | Target::AwsBackup(_)
            | Target::Pgbackrest(_) => {
                "RECOVERY: none by firedrill; wait for the fault to end or an external controller"
                    .into()
            }
        },
    }
}

/// The observation, and what RTO counts from (`first`: the fault recovery is measured from).
pub(super) fn observe(
    s: &Scenario,
    delayed: bool,
    first: &str,
    longer: &str,
    step: &mut dyn FnMut(String),
) {
    step(format!(
        "observe for {} after {first}{longer}; recovered = probes successful for {} in a row; RTO \
         counts from {}",
        s.observe.duration,
        s.observe.stability,
        if delayed {
            "the first failed write probe (the fault's effect comes after its start)"
        } else {
            first
        }
    ));
}

/// From the end of the load to the rows' removal.
pub(super) fn after_observation(s: &Scenario, step: &mut dyn FnMut(String)) {
    step(
        "stop the load; read the ledger back from the primary; count lost and in-doubt writes"
            .into(),
    );
    step(if s.workload.keep_rows || s.cleanup == Cleanup::Never {
        "keep this drill's ledger and probe rows (workload.keep_rows or cleanup: never)".into()
    } else {
        "delete this drill's ledger and probe rows from the target's database (by run id)".into()
    });
}

/// A zone fault's end, as a plan line says it.
fn until(duration: &Option<crate::scenario::Dur>) -> String {
    match duration {
        Some(d) => format!(", restored after {d}"),
        None => ", restored when the drill ends".into(),
    }
}

/// One side of a partition, as `zones a, b`.
fn sides(between: &[Vec<String>], i: usize) -> String {
    let side = between.get(i).map(|z| z.join(", ")).unwrap_or_default();
    format!("zone(s) {side}")
}
