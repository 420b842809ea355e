//! The rules that turn measurements into target results and a verdict: one place, used when a
//! drill ends and again when `firedrill verify` recomputes a report's claims, so that a report
//! cannot say more than its measurements show. Pure functions of the report's own data.

use crate::posture::Check;
use crate::report::*;
use crate::scenario::{Step, Targets};

/// Verdict per target: the whole rule set, from measurements and targets alone. An aborted
/// drill proved nothing: no target of it is met.
pub fn evaluate(
    targets: &Targets,
    steps: &[Step],
    m: &Measurements,
    workload: bool,
    aborted: bool,
) -> Vec<TargetResult> {
    let ms = |d: crate::scenario::Dur| crate::measure::ms(d.get());
    let mut limits: Vec<(&str, f64)> = Vec::new();
    if let Some(rto) = targets.rto {
        limits.push(("rto", ms(rto)));
    }
    if let Some(rpo) = targets.rpo {
        limits.push(("rpo", ms(rpo)));
    }
    if let Some(max) = targets.max_lost_writes {
        limits.push(("max_lost_writes", max as f64));
    }
    if let Some(max) = targets.max_split_brain {
        limits.push(("max_split_brain", ms(max)));
    }
    if let Some(min) = targets.min_availability_pct {
        limits.push(("min_availability_pct", min));
    }
    if workload {
        // Rows that were never written, or with the wrong content, fail any drill (PI1).
        limits.push(("integrity", 0.0));
    }
    if targets.checksums.is_some() {
        limits.push(("checksums", 0.0));
    }
    if m.backup_health.is_some() {
        // A failed or missing backup job fails a backup-health drill whatever the ages.
        limits.push(("backup_jobs", 0.0));
    }
    if let Some(w) = &m.writer {
        // A failover that left the same server taking writes proved nothing; a restart in
        // place that moved it was not one.
        match w.expected {
            crate::scenario::FailoverTarget::Required => limits.push(("writer_moved", 1.0)),
            crate::scenario::FailoverTarget::Forbidden => limits.push(("writer_moved", 0.0)),
            crate::scenario::FailoverTarget::Any => {}
        }
    }
    if m.fault_effect.as_ref().is_some_and(|e| e.expected) {
        // A fault no probe felt: no effect observed.
        limits.push(("fault_effect", 1.0));
    }
    if m.restore.is_some() {
        // A restore that failed, a damaged backup, corruption or a failed assertion fails any
        // restore drill.
        limits.push(("verification", 0.0));
    }
    // A posture target's limit is what each resource is held to; what it counts is the
    // resources short of it (the unmeasured among them).
    for (check, _) in crate::scenario::posture_targets(targets) {
        let limit = match check {
            Check::MinRetention => targets
                .min_retention
                .map_or(0.0, |d| crate::posture::days(d.get())),
            Check::CopiesInOtherRegion => f64::from(targets.copies_in_other_region.unwrap_or(0)),
            Check::Encrypted | Check::Immutable | Check::DeletionProtection => 0.0,
        };
        limits.push((check.name(), limit));
    }
    // A person's step with a time target: its duration (none when it timed out) against it.
    let step_names: Vec<(String, f64)> = steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((crate::scenario::steps::target_name(i + 1), ms(s.within()?))))
        .collect();
    for (name, limit) in &step_names {
        limits.push((name, *limit));
    }
    limits
        .into_iter()
        .filter_map(|(name, limit)| judge(name, limit, m))
        .map(|t| TargetResult {
            met: t.met && !aborted,
            ..t
        })
        .collect()
}

/// One target against the measurements: what was achieved, in which unit, and whether it meets
/// the limit. `None` for a target name this version does not know.
pub fn judge(name: &str, limit: f64, m: &Measurements) -> Option<TargetResult> {
    let (achieved, unit, bind) = match name {
        "rto" => (m.rto_ms, "ms", Bind::AtMost),
        "rpo" => (m.rpo_ms, "ms", Bind::AtMost),
        "max_lost_writes" => (m.lost_writes.map(|l| l as f64), "writes", Bind::AtMost),
        // From the writes: a drill whose ledger was never read back measured nothing.
        "max_split_brain" => (
            m.split_brain.as_ref().map(|s| s.window_ms),
            "ms",
            Bind::AtMost,
        ),
        "min_availability_pct" => (m.availability_pct, "pct", Bind::AtLeast),
        "integrity" => (
            m.integrity_failures.map(|f| f as f64),
            "failures",
            Bind::AtMost,
        ),
        "checksums" => (
            m.restore
                .as_ref()
                .and_then(|r| r.tables_differing)
                .map(|t| t as f64),
            "tables",
            Bind::AtMost,
        ),
        "backup_jobs" => (
            m.backup_health.as_ref().map(|h| h.problems() as f64),
            "problems",
            Bind::AtMost,
        ),
        "writer_moved" => (
            m.writer.as_ref().and_then(WriterChange::moved),
            "writer changes",
            Bind::Exactly,
        ),
        "fault_effect" => (
            m.fault_effect.as_ref().map(|e| e.failed_probes as f64),
            "failed probes",
            Bind::AtLeast,
        ),
        "verification" => (
            m.restore.as_ref().map(|r| r.failed_checks() as f64),
            "failed checks",
            Bind::AtMost,
        ),
        step if crate::scenario::steps::target_number(step).is_some() => {
            let number = crate::scenario::steps::target_number(step)?;
            let duration = m
                .steps
                .iter()
                .find(|s| s.number == number)
                .and_then(|s| s.duration_ms);
            (duration, "ms", Bind::AtMost)
        }
        posture => {
            let check = Check::from_name(posture)?;
            let short = m.posture.as_ref().map(|p| p.short(check, limit) as f64);
            return Some(TargetResult {
                name: name.into(),
                limit,
                achieved: short,
                unit: "resources short".into(),
                met: short == Some(0.0),
            });
        }
    };
    // Not measured is a miss: a drill proves only what it saw.
    let met = achieved.is_some_and(|a| match bind {
        Bind::AtMost => a <= limit,
        Bind::AtLeast => a >= limit,
        Bind::Exactly => a == limit,
    });
    Some(TargetResult {
        name: name.into(),
        limit,
        achieved,
        unit: unit.into(),
        met,
    })
}

enum Bind {
    AtMost,
    AtLeast,
    Exactly,
}

/// Recomputes every target and the verdict of a report from its raw measurements; returns what
/// disagrees with what the report claims (empty for an honest report).
pub fn recheck(r: &Report) -> Vec<String> {
    let mut problems = Vec::new();
    let mut results = Vec::new();
    // Format 1 judged an aborted drill's targets like any other's.
    let nothing_met = r.abort_reason.is_some() && r.format_version >= 2;
    for claimed in &r.targets {
        let Some(actual) = judge(&claimed.name, claimed.limit, &r.measurements) else {
            problems.push(format!("unknown target {:?}", claimed.name));
            continue;
        };
        let actual = TargetResult {
            met: actual.met && !nothing_met,
            ..actual
        };
        if actual.met != claimed.met || actual.achieved != claimed.achieved {
            problems.push(format!(
                "target {} claims {} ({:?}) but the measurements give {} ({:?})",
                claimed.name,
                if claimed.met { "met" } else { "missed" },
                claimed.achieved,
                if actual.met { "met" } else { "missed" },
                actual.achieved
            ));
        }
        results.push(actual);
    }
    let actual = verdict(r.abort_reason.is_some(), &results);
    if actual != r.verdict {
        problems.push(format!(
            "verdict claims {:?} but the targets give {:?}",
            r.verdict, actual
        ));
    }
    problems
}

pub fn verdict(aborted: bool, results: &[TargetResult]) -> Verdict {
    if aborted {
        Verdict::Aborted
    } else if results.iter().all(|t| t.met) {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Dur;

    #[test]
    fn unmeasured_is_a_miss_and_limits_are_inclusive() {
        let t = Targets {
            rto: Some(Dur::from_secs(2)),
            rpo: Some(Dur::from_secs(0)),
            max_lost_writes: Some(0),
            min_availability_pct: Some(50.0),
            ..Default::default()
        };
        let m = Measurements {
            rto_ms: Some(2000.0),
            rpo_ms: None,
            lost_writes: Some(0),
            availability_pct: Some(49.9),
            integrity_failures: Some(0),
            ..Default::default()
        };
        let r = evaluate(&t, &[], &m, true, false);
        let met: Vec<(&str, bool)> = r.iter().map(|t| (t.name.as_str(), t.met)).collect();
        assert_eq!(
            met,
            vec![
                ("rto", true),
                ("rpo", false),
                ("max_lost_writes", true),
                ("min_availability_pct", false),
                ("integrity", true)
            ]
        );
        assert_eq!(verdict(false, &r), Verdict::Fail);
        assert_eq!(verdict(true, &r), Verdict::Aborted);
    }

    fn server(at: &str, started: &str) -> Option<Server> {
        Some(Server {
            at: at.into(),
            started: started.into(),
            system_identifier: None,
            timeline: None,
        })
    }

    fn met(m: &Measurements, aborted: bool) -> Vec<(String, bool)> {
        evaluate(&Targets::default(), &[], m, false, aborted)
            .into_iter()
            .map(|t| (t.name, t.met))
            .collect()
    }

    #[test]
    fn a_failover_must_move_the_writer_and_a_restart_in_place_must_not() {
        use crate::scenario::FailoverTarget::*;
        let moved = |expected| Measurements {
            writer: Some(WriterChange {
                expected,
                before: server("10.0.0.1:5432", "t1"),
                after: server("10.0.0.2:5432", "t2"),
            }),
            ..Default::default()
        };
        let in_place = |expected| Measurements {
            writer: Some(WriterChange {
                expected,
                before: server("10.0.0.1:5432", "t1"),
                after: server("10.0.0.1:5432", "t2"),
            }),
            ..Default::default()
        };
        assert_eq!(
            met(&moved(Required), false),
            [("writer_moved".into(), true)]
        );
        assert_eq!(
            met(&in_place(Required), false),
            [("writer_moved".into(), false)]
        );
        assert_eq!(
            met(&in_place(Forbidden), false),
            [("writer_moved".into(), true)]
        );
        assert_eq!(
            met(&moved(Forbidden), false),
            [("writer_moved".into(), false)]
        );
        assert_eq!(met(&moved(Any), false), []);
        assert!(in_place(Required).writer.unwrap().restarted_in_place());
        // Not seen after: not measured, a miss.
        let unseen = Measurements {
            writer: Some(WriterChange {
                expected: Required,
                before: server("10.0.0.1:5432", "t1"),
                after: None,
            }),
            ..Default::default()
        };
        assert_eq!(met(&unseen, false), [("writer_moved".into(), false)]);
    }

    #[test]
    fn a_fault_no_probe_felt_fails_unless_no_outage_was_expected() {
        let felt = |expected, failed_probes| Measurements {
            fault_effect: Some(FaultEffect {
                expected,
                failed_probes,
            }),
            ..Default::default()
        };
        assert_eq!(met(&felt(true, 0), false), [("fault_effect".into(), false)]);
        assert_eq!(met(&felt(true, 3), false), [("fault_effect".into(), true)]);
        assert_eq!(met(&felt(false, 0), false), []);
    }

    #[test]
    fn a_format_1_report_is_rechecked_by_the_rules_it_was_written_under() {
        let bytes = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/report-pass.json"
        ))
        .unwrap();
        let mut r = crate::report::from_json(bytes.as_bytes()).unwrap();
        assert_eq!(r.format_version, 1);
        // An aborted format-1 drill with a met target was honest then...
        r.abort_reason = Some("interrupted".into());
        r.verdict = Verdict::Aborted;
        assert!(r.targets.iter().any(|t| t.met));
        assert_eq!(recheck(&r), Vec::<String>::new());
        // ...and claims too much in format 2.
        r.format_version = 2;
        assert!(!recheck(&r).is_empty());
    }

    #[test]
    fn an_aborted_drill_meets_no_target_from_format_2_on() {
        let t = Targets {
            max_lost_writes: Some(0),
            ..Default::default()
        };
        let m = Measurements {
            lost_writes: Some(0),
            ..Default::default()
        };
        assert!(evaluate(&t, &[], &m, false, false)[0].met);
        let aborted = evaluate(&t, &[], &m, false, true);
        assert!(!aborted[0].met);
        assert_eq!(
            aborted[0].achieved,
            Some(0.0),
            "what was seen is still shown"
        );
    }
}
