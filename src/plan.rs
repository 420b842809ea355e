//! `firedrill plan`: every step and side effect a drill would take, from the scenario alone (no
//! I/O), so an operator can review a drill before running it.

use std::fmt::Write as _;

use crate::scenario::{Cleanup, Fault, Recovery, Replication, Scenario, Target};

pub fn render(s: &Scenario) -> String {
    let mut out = String::new();
    let mut n = 0;
    let mut step = |out: &mut String, text: String| {
        n += 1;
        let _ = writeln!(out, "{n:>2}. {text}");
    };
    let _ = writeln!(out, "drill: {}", s.name);
    if !s.description.is_empty() {
        let _ = writeln!(out, "       {}", s.description.trim());
    }
    let _ = writeln!(out);

    match &s.target {
        Target::PostgresSandbox(t) => {
            let mode = match t.replication {
                Replication::Async => "asynchronous",
                Replication::Synchronous => "synchronous",
            };
            step(
                &mut out,
                "create a temporary directory for the sandbox".into(),
            );
            step(
                &mut out,
                "initdb the primary and start it on a free 127.0.0.1 port".into(),
            );
            step(
                &mut out,
                format!(
                    "pg_basebackup {} standby(s) and start them, {mode} streaming replication",
                    t.standbys
                ),
            );
        }
        Target::Postgres(t) => {
            step(
                &mut out,
                format!(
                    "connect to the existing cluster through ${} (read-write host)",
                    t.dsn_env
                ),
            );
        }
    }
    step(
        &mut out,
        format!(
            "create tables {} and firedrill_probe if missing (side effect on the target's database)",
            s.workload.table
        ),
    );
    step(
        &mut out,
        format!(
            "start {} writer connection(s) and write/read probes every {} (timeout {})",
            s.workload.connections, s.probes.interval, s.probes.timeout
        ),
    );
    let ss = &s.steady_state;
    step(
        &mut out,
        format!(
            "steady state for {}: probes at least {}% successful{}; otherwise abort, injecting nothing",
            ss.duration,
            ss.min_success_pct,
            ss.max_p99_latency
                .map(|p| format!(", write p99 at most {p}"))
                .unwrap_or_default()
        ),
    );
    let fault = match &s.fault {
        Fault::Kill { node } => format!("FAULT: SIGKILL every process of {node}"),
        Fault::Stop { node, mode } => {
            format!(
                "FAULT: stop {node} ({} shutdown)",
                format!("{mode:?}").to_lowercase()
            )
        }
        Fault::Pause { node, duration } => {
            format!("FAULT: SIGSTOP every process of {node}, SIGCONT after {duration}")
        }
        Fault::Command { run, undo, .. } => format!(
            "FAULT: run `{}`{}",
            run.join(" "),
            undo.as_ref()
                .map(|u| format!(" (undo on abort: `{}`)", u.join(" ")))
                .unwrap_or_default()
        ),
    };
    step(&mut out, fault);
    match &s.recovery {
        Recovery::Promote { node, after } => step(
            &mut out,
            format!("RECOVERY: {after} after the fault, promote {node} and repoint other standbys"),
        ),
        Recovery::Command { run, after, .. } => step(
            &mut out,
            format!("RECOVERY: {after} after the fault, run `{}`", run.join(" ")),
        ),
        Recovery::Wait => step(
            &mut out,
            "RECOVERY: none by firedrill; wait for the fault to end or an external controller"
                .into(),
        ),
    }
    step(
        &mut out,
        format!(
            "observe for {} after the fault; recovered = probes successful for {} in a row",
            s.observe.duration, s.observe.stability
        ),
    );
    step(
        &mut out,
        "stop the load; read the ledger back from the primary; count lost and in-doubt writes"
            .into(),
    );
    let cleanup = match (&s.target, s.cleanup) {
        (Target::Postgres(_), _) => {
            "leave the target as it is (ledger rows stay, tagged with the run id)"
        }
        (_, Cleanup::Always) => "stop every node and remove the sandbox directory",
        (_, Cleanup::OnSuccess) => {
            "stop every node; remove the sandbox directory if the drill passed"
        }
        (_, Cleanup::Never) => "stop every node and keep the sandbox directory",
    };
    step(&mut out, format!("teardown: {cleanup}"));

    let _ = writeln!(out, "\ntargets:");
    let t = &s.targets;
    if let Some(v) = t.rto {
        let _ = writeln!(out, "  rto <= {v}");
    }
    if let Some(v) = t.rpo {
        let _ = writeln!(out, "  rpo <= {v}");
    }
    if let Some(v) = t.max_lost_writes {
        let _ = writeln!(out, "  lost writes <= {v}");
    }
    if let Some(v) = t.min_availability_pct {
        let _ = writeln!(out, "  availability >= {v}%");
    }
    out
}
