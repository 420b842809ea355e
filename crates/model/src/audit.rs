//! What `verify` re-derives from a report alone, trusting neither its list of targets nor its
//! figures: every target and limit from the scenario text the report embeds (format 3 on), and
//! the probe figures from its raw probe record, by the same rules the drill used
//! ([`crate::judge::evaluate`], [`crate::measure::figures`]). A signer who deletes a missed
//! target, raises a limit or edits an RTO must now also rewrite the scenario and the record
//! consistently, and the scenario is checked against the audited commit (`--scenarios`).
//!
//! Boundary: pure functions of a report; reading files and signatures is the evidence crate's.

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::judge::evaluate;
use crate::measure::{self, FaultTiming, RtoFrom};
use crate::report::{DrillKind, Measurements, Report};
use crate::scenario::{self, Drill, Run};

/// The outcome of re-deriving a report.
#[derive(Debug, PartialEq)]
pub enum Rederived {
    /// The report carries no scenario text (written before format 3): only its listed targets
    /// can be rechecked.
    NotDerivable,
    /// Everything that disagrees (empty for an honest report).
    Checked(Vec<String>),
}

/// Re-derives a report's targets from its embedded scenario, and its probe figures from its
/// probe record.
pub fn rederive(r: &Report) -> Rederived {
    let Some(source) = &r.scenario.source else {
        return Rederived::NotDerivable;
    };
    let mut problems = Vec::new();
    if hex::encode(Sha256::digest(source.as_bytes())) != r.scenario.sha256 {
        problems.push("the embedded scenario does not match the report's scenario SHA-256".into());
    }
    let loaded = match scenario::parse(Path::new(&r.scenario.file), source) {
        Ok(l) => l,
        Err(e) => {
            problems.push(format!(
                "the embedded scenario does not load: {}",
                e.to_string().replace('\n', "; ")
            ));
            return Rederived::Checked(problems);
        }
    };
    let s = &loaded.scenario;
    let (drill, name) = match (&loaded.run, &r.fleet) {
        (Run::Drill(d), None) => (d.clone(), s.name.clone()),
        (Run::Fleet(f), Some(m)) => (f.member(&m.instance), format!("{}.{}", s.name, m.instance)),
        (Run::Drill(_), Some(_)) | (Run::Fleet(_), None) => {
            problems.push("the embedded scenario is not of the drill the report is".into());
            return Rederived::Checked(problems);
        }
    };
    if r.scenario.name != name {
        problems.push(format!(
            "the report names scenario {:?}, the embedded scenario {name:?}",
            r.scenario.name
        ));
    }
    let kind = match &drill {
        Drill::Failover { .. } => DrillKind::Failover,
        Drill::Restore { .. } => DrillKind::Restore,
        Drill::BackupHealth { .. } => DrillKind::BackupHealth,
        Drill::Posture { .. } => DrillKind::Posture,
        Drill::GameDay { .. } => DrillKind::GameDay,
    };
    if kind != r.drill {
        problems.push(format!(
            "the report is of a {} drill, the embedded scenario of a {} drill",
            r.drill.label(),
            kind.label()
        ));
    }

    // What the scenario expects, whatever the measurements say it expected.
    let mut m = r.measurements.clone();
    let (failover_fault, steps) = match &drill {
        Drill::Failover {
            failover, fault, ..
        } => (Some((*failover, fault)), &[][..]),
        Drill::GameDay {
            failover, steps, ..
        } => (
            scenario::steps::first_fault(steps).map(|f| (*failover, f)),
            &steps[..],
        ),
        Drill::Restore { .. } | Drill::BackupHealth { .. } | Drill::Posture { .. } => {
            (None, &[][..])
        }
    };
    let workload = match &drill {
        Drill::Failover { .. } | Drill::GameDay { .. } => {
            let Some((failover, fault)) = failover_fault else {
                problems.push("the embedded game day has no fault step".into());
                return Rederived::Checked(problems);
            };
            if let Some(w) = &mut m.writer {
                if w.expected != failover {
                    problems.push(format!(
                        "the report expects failover {:?}, the scenario {failover:?}",
                        w.expected
                    ));
                }
                w.expected = failover;
            }
            if let Some(e) = &mut m.fault_effect {
                if e.expected != s.observe.expect_outage {
                    problems.push(format!(
                        "the report expects an outage: {}, the scenario: {}",
                        e.expected, s.observe.expect_outage
                    ));
                }
                e.expected = s.observe.expect_outage;
            }
            problems.extend(refigure(&r.measurements, fault, s));
            problems.extend(restep(r, steps));
            s.workload.connections > 0
        }
        // A restore drill checks its ledger only when it wrote one and got that far.
        Drill::Restore { .. } => s.workload.connections > 0 && m.integrity_failures.is_some(),
        Drill::BackupHealth { .. } | Drill::Posture { .. } => false,
    };
    let derived = evaluate(&s.targets, steps, &m, workload, r.abort_reason.is_some());
    for d in &derived {
        match r.targets.iter().find(|t| t.name == d.name) {
            None => problems.push(format!(
                "target {} (limit {}) is the scenario's but missing from the report",
                d.name,
                d.show(d.limit)
            )),
            Some(t) if t.limit != d.limit => problems.push(format!(
                "target {}: the report's limit {} is not the scenario's {}",
                d.name,
                t.show(t.limit),
                d.show(d.limit)
            )),
            Some(_) => {}
        }
    }
    for t in &r.targets {
        if !derived.iter().any(|d| d.name == t.name) {
            problems.push(format!("target {} is not one the scenario sets", t.name));
        }
    }
    Rederived::Checked(problems)
}

/// The probe figures again, from the report's probe record; what disagrees.
/// A game day's steps against the scenario's and the report's own timeline: one result per
/// step, of its kind; a duration that is its end minus its start; an end the timeline records;
/// nothing done after its deadline.
fn restep(r: &Report, steps: &[scenario::Step]) -> Vec<String> {
    let got = &r.measurements.steps;
    if got.len() != steps.len() {
        return vec![format!(
            "the report has {} step results, the scenario {} steps",
            got.len(),
            steps.len()
        )];
    }
    let mut problems = Vec::new();
    let ended_at = |t: f64| {
        r.timeline
            .iter()
            .any(|e| e.kind == "step-ended" && (e.t_ms - t).abs() <= 0.002)
    };
    for (i, (res, step)) in got.iter().zip(steps).enumerate() {
        let n = i + 1;
        if res.number != n || res.kind != step.kind() {
            problems.push(format!(
                "step {n}: the report has step {} of kind {}, the scenario a {}",
                res.number,
                res.kind,
                step.kind()
            ));
            continue;
        }
        if let (Some(d), Some(s), Some(e)) = (res.duration_ms, res.started_ms, res.ended_ms)
            && (d - (e - s)).abs() > 0.002
        {
            problems.push(format!(
                "step {n}: duration {d:.3} ms is not its end minus its start ({:.3} ms)",
                e - s
            ));
        }
        if let Some(e) = res.ended_ms
            && !ended_at(e)
        {
            problems.push(format!(
                "step {n}: ended at {e:.3} ms, but the timeline records no step ending then"
            ));
        }
        if let (Some(d), Some(deadline)) = (res.duration_ms, step.deadline())
            && d > crate::measure::ms(deadline.get()) + 1.0
        {
            problems.push(format!(
                "step {n}: done in {d:.1} ms, after its deadline of {deadline}"
            ));
        }
    }
    problems
}

fn refigure(m: &Measurements, fault: &scenario::Fault, s: &scenario::Scenario) -> Vec<String> {
    let (Some(record), Some(fault_at)) = (&m.probe_record, m.fault_at_ms) else {
        return Vec::new();
    };
    let d = match record.decode() {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let f = measure::figures(
        &d.write,
        &d.read,
        FaultTiming {
            at: Duration::from_secs_f64(fault_at / 1000.0),
            delayed: fault.effect_is_delayed(),
            marked: m.rto_from == Some(RtoFrom::Marker),
        },
        d.observed_until,
        s.observe.stability.get(),
    );
    let mut problems = Vec::new();
    // Figures are rounded to the microsecond, the fault instant among them: two microseconds
    // of slack, far below anything a target could turn on.
    let mut compare = |what: &str, claimed: Option<f64>, actual: Option<f64>| {
        let same = match (claimed, actual) {
            (Some(a), Some(b)) => (a - b).abs() <= 0.002,
            (None, None) => true,
            (Some(_), None) | (None, Some(_)) => false,
        };
        if !same {
            problems.push(format!(
                "{what}: the report says {}, its probe record gives {}",
                show(claimed),
                show(actual)
            ));
        }
    };
    let ms = |d: Option<Duration>| d.map(measure::ms);
    // An aborted drill reports no recovery times (nothing recovered under observation).
    if m.rto_ms.is_some() || m.time_to_first_success_ms.is_some() || m.read_rto_ms.is_some() {
        compare("rto_ms", m.rto_ms, ms(f.write.rto));
        compare(
            "time_to_first_success_ms",
            m.time_to_first_success_ms,
            ms(f.write.first_success),
        );
        compare("read_rto_ms", m.read_rto_ms, ms(f.read.rto));
    }
    compare("write_outage_ms", m.write_outage_ms, ms(f.write_outage));
    compare(
        "availability_pct",
        m.availability_pct,
        Some(f.availability_pct),
    );
    compare(
        "read_availability_pct",
        m.read_availability_pct,
        Some(f.read_availability_pct),
    );
    compare(
        "failed probes after the fault",
        m.fault_effect.as_ref().map(|e| e.failed_probes as f64),
        Some(f.failed_probes as f64),
    );
    if m.rto_from.is_some_and(|r| r != f.rto_from) {
        problems.push(format!(
            "rto_from: the report says {:?}, its probe record gives {:?}",
            m.rto_from, f.rto_from
        ));
    }
    if m.write_outages != f.write.outages {
        problems.push(format!(
            "write outages: the report lists {}, its probe record gives {}",
            m.write_outages.len(),
            f.write.outages.len()
        ));
    }
    problems
}

fn show(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}"))
        .unwrap_or_else(|| "none".into())
}
