//! The period's per-resource views: each fleet-restored database's restore coverage (its last
//! successful restore, its RTO and RPO over the period, and whether it was ever restored), and
//! each resource's backup posture as its newest posture drill found it.
//!
//! Boundary: views over the drills [`super::summarize`] gathered; nothing is read here.

use super::{Drill, Summary};
use crate::render::table::{Cell, Table};
use firedrill_model::posture::Finding;
use firedrill_model::report::{DrillKind, Report, Verdict};

impl Summary {
    /// Each resource's backup posture as the period's newest posture drill of it found it:
    /// `(resource, drill, findings)`, by resource.
    pub fn posture(&self) -> Vec<(&str, &Drill, &[Finding])> {
        let mut newest: Vec<(&str, &Drill, &[Finding])> = Vec::new();
        // Drills are in start order, so a later one replaces an earlier one's view.
        for d in &self.drills {
            for r in d
                .report
                .measurements
                .posture
                .iter()
                .flat_map(|p| &p.resources)
            {
                let seen = (r.resource.as_str(), d, r.findings.as_slice());
                match newest.iter_mut().find(|(res, _, _)| *res == r.resource) {
                    Some(slot) => *slot = seen,
                    None => newest.push(seen),
                }
            }
        }
        newest.sort_by_key(|(res, _, _)| *res);
        newest
    }

    /// Each fleet-restored database's restore drills of the period, by instance (AWS Backup
    /// calls this restore coverage). A database appears once a fleet run recorded it.
    pub fn coverage(&self) -> Vec<(&str, Vec<&Drill>)> {
        let mut out: Vec<(&str, Vec<&Drill>)> = Vec::new();
        for d in &self.drills {
            let Some(f) = d.report.fleet.as_ref() else {
                continue;
            };
            if d.report.drill != DrillKind::Restore {
                continue;
            }
            match out.iter_mut().find(|(r, _)| *r == f.instance) {
                Some((_, ds)) => ds.push(d),
                None => out.push((f.instance.as_str(), vec![d])),
            }
        }
        out.sort_by_key(|(r, _)| *r);
        out
    }

    /// Databases of [`Summary::coverage`] with no passing restore in the period.
    pub fn unproven(&self) -> Vec<(&str, Vec<&Drill>)> {
        self.coverage()
            .into_iter()
            .filter(|(_, ds)| !ds.iter().any(|d| d.report.verdict == Verdict::Pass))
            .collect()
    }

    /// Findings short of their target in [`Summary::posture`].
    pub fn posture_short(&self) -> usize {
        self.posture()
            .iter()
            .map(|(_, _, f)| f.iter().filter(|f| !f.ok).count())
            .sum()
    }
}

/// Per resource, the findings of its newest posture drill, with the criteria each evidences.
pub(super) fn posture(s: &Summary) -> Table {
    let mut columns = crate::render::FINDING_COLUMNS.to_vec();
    columns.push(("As of", false));
    let mut t = Table::new(&columns, "No posture drill in the period.");
    for (resource, d, findings) in s.posture() {
        for f in findings {
            let mut row = crate::render::finding_row(resource, f);
            row.push(format!("{} ({})", d.date(), d.entry).into());
            t.row(row);
        }
    }
    t
}

/// Per fleet-restored database: its restore drills, the last that passed, and its RTO and RPO
/// over the period.
pub(super) fn coverage(s: &Summary) -> Table {
    let mut t = Table::new(
        &[
            ("Database", false),
            ("Restores", true),
            ("Passed", true),
            ("Last successful restore", false),
            ("RTO (s), oldest first", false),
            ("RPO (h), oldest first", false),
        ],
        "No fleet restore drill in the period.",
    );
    let trend = |ds: &[&Drill], f: fn(&Report) -> Option<f64>, scale: f64| {
        ds.iter()
            .map(|d| f(&d.report).map_or("-".to_owned(), |v| format!("{:.1}", v / scale)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (db, ds) in s.coverage() {
        let passed = ds
            .iter()
            .filter(|d| d.report.verdict == Verdict::Pass)
            .count();
        let last = ds
            .iter()
            .rev()
            .find(|d| d.report.verdict == Verdict::Pass)
            .map(|d| format!("{} ({})", d.date(), d.entry));
        t.row(vec![
            db.into(),
            ds.len().to_string().into(),
            passed.to_string().into(),
            match last {
                Some(l) => l.into(),
                None => Cell::alarm("NEVER in the period", true),
            },
            trend(&ds, |r| r.measurements.rto_ms, 1e3).into(),
            trend(&ds, |r| r.measurements.rpo_ms, 3.6e6).into(),
        ]);
    }
    t
}
