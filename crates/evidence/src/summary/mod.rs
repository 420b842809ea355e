//! A period summary of an evidence directory for a SOC 2 Type II window: every drill in the
//! period with its verdict and figures, the RTO/RPO trend, and each scheduled drill that did not
//! happen (a month without a restore test). Reads reports only; what it claims about signatures
//! comes from [`crate::evidence::verify`].

use std::fmt::Write;
use std::path::Path;

use crate::evidence;
use crate::render::escape_xml as e;
use crate::render::table::{Cell, Table};
use crate::signing::AllowedSigner;
use firedrill_model::report::{DrillKind, Report, Verdict};
use resources::{coverage, posture};

mod resources;

/// A calendar date (UTC), as reports and `--from/--to` give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// `YYYY-MM-DD`, a real calendar day.
    pub fn parse(s: &str) -> Result<Date, String> {
        let bad = || format!("{s:?} is not a date like 2026-01-31");
        let parts: Vec<&str> = s.split('-').collect();
        let [y, m, d] = parts.as_slice() else {
            return Err(bad());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        let (year, month, day) = (
            y.parse().map_err(|_| bad())?,
            m.parse().map_err(|_| bad())?,
            d.parse().map_err(|_| bad())?,
        );
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(bad());
        }
        Ok(Date { year, month, day })
    }

    fn month_start(self) -> Date {
        Date { day: 1, ..self }
    }

    fn month_end(self) -> Date {
        Date {
            day: days_in_month(self.year, self.month),
            ..self
        }
    }

    fn add_months(self, n: u32) -> Date {
        let m0 = self.month - 1 + n;
        Date {
            year: self.year + (m0 / 12) as i32,
            month: m0 % 12 + 1,
            day: 1,
        }
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// How often a kind of drill is expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    Month,
    Quarter,
    Year,
}

impl Every {
    fn months(self) -> u32 {
        match self {
            Every::Month => 1,
            Every::Quarter => 3,
            Every::Year => 12,
        }
    }
}

/// `restore=monthly`: drills of a kind (`failover`, `restore`) or of one scenario (by name),
/// expected once in every calendar month, quarter or year of the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub what: String,
    pub every: Every,
}

impl std::str::FromStr for Expectation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (what, every) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected WHAT=monthly|quarterly|yearly"))?;
        let every = match every {
            "monthly" => Every::Month,
            "quarterly" => Every::Quarter,
            "yearly" => Every::Year,
            other => return Err(format!("{other:?}: expected monthly, quarterly or yearly")),
        };
        if what.is_empty() {
            return Err(format!("{s:?}: name a drill kind or a scenario before `=`"));
        }
        Ok(Expectation {
            what: what.to_owned(),
            every,
        })
    }
}

impl std::fmt::Display for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let every = match self.every {
            Every::Month => "monthly",
            Every::Quarter => "quarterly",
            Every::Year => "yearly",
        };
        write!(f, "{}={every}", self.what)
    }
}

/// One drill of the period.
#[derive(Clone, Debug)]
pub struct Drill {
    pub entry: String,
    pub report: Report,
    /// `Some(true)` verified, `Some(false)` a verification problem names it, `None` not checked.
    pub verified: Option<bool>,
}

impl Drill {
    fn date(&self) -> &str {
        self.report.started_at.get(..10).unwrap_or("")
    }

    fn matches(&self, what: &str) -> bool {
        self.report.drill.label() == what || self.report.scenario.name == what
    }
}

/// A window of the period in which an expected drill did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    pub expectation: String,
    pub from: Date,
    pub to: Date,
}

#[derive(Debug)]
pub struct Summary {
    pub from: Date,
    pub to: Date,
    pub expectations: Vec<Expectation>,
    pub drills: Vec<Drill>,
    pub gaps: Vec<Gap>,
    /// Problems `verify` found in the directory, when signatures were checked.
    pub verification: Option<Vec<String>>,
}

impl Summary {
    pub fn count(&self, v: Verdict) -> usize {
        self.drills.iter().filter(|d| d.report.verdict == v).count()
    }
}

/// The drills of `dir` started in `[from, to]` (UTC dates), checked against `expectations`.
/// With `allowed`, the whole directory is verified too and each drill marked.
pub fn summarize(
    dir: &Path,
    from: Date,
    to: Date,
    expectations: &[Expectation],
    allowed: Option<&[AllowedSigner]>,
) -> std::io::Result<Summary> {
    let loaded = evidence::load(dir)?;
    let verification = allowed.map(|a| evidence::verify_loaded(dir, &loaded, a));
    let (lo, hi) = (from.to_string(), to.to_string());
    let mut drills: Vec<Drill> = loaded
        .entries
        .into_iter()
        .filter_map(|e| {
            let verified = verification
                .as_ref()
                .map(|v| v.rows.iter().any(|row| row.entry == e.name && row.ok()));
            Some(Drill {
                report: e.report?,
                entry: e.name,
                verified,
            })
        })
        .filter(|d| d.date() >= lo.as_str() && d.date() <= hi.as_str())
        .collect();
    drills.sort_by(|a, b| {
        (a.report.started_at.as_str(), a.entry.as_str())
            .cmp(&(b.report.started_at.as_str(), b.entry.as_str()))
    });

    let mut gaps = Vec::new();
    for x in expectations {
        // Calendar windows (months, quarters from January, years) clipped to the period.
        let mut start = from.month_start();
        start.month -= (start.month - 1) % x.every.months();
        while start <= to {
            let next = start.add_months(x.every.months());
            let last = start.add_months(x.every.months() - 1).month_end();
            let (w_from, w_to) = (start.max(from), last.min(to));
            let (a, b) = (w_from.to_string(), w_to.to_string());
            let seen = drills
                .iter()
                .any(|d| d.matches(&x.what) && d.date() >= a.as_str() && d.date() <= b.as_str());
            if !seen {
                gaps.push(Gap {
                    expectation: x.to_string(),
                    from: w_from,
                    to: w_to,
                });
            }
            start = next;
        }
    }
    Ok(Summary {
        from,
        to,
        expectations: expectations.to_vec(),
        drills,
        gaps,
        verification: verification.map(|v| v.problems),
    })
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_default()
}

fn verified_text(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "verified",
        Some(false) => "PROBLEM",
        None => "not checked",
    }
}

fn missed_targets(r: &Report) -> String {
    r.targets
        .iter()
        .filter(|t| !t.met)
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One row per drill, for spreadsheets.
pub fn csv(s: &Summary) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "entry",
        "sequence",
        "scenario",
        "drill",
        "started_at",
        "verdict",
        "rto_ms",
        "rpo_ms",
        "lost_writes",
        "availability_pct",
        "targets_missed",
        "signature",
        "run_id",
    ])?;
    for d in &s.drills {
        let r = &d.report;
        let m = &r.measurements;
        w.write_record([
            d.entry.clone(),
            r.chain
                .as_ref()
                .map(|c| c.sequence.to_string())
                .unwrap_or_default(),
            r.scenario.name.clone(),
            r.drill.label().to_owned(),
            r.started_at.clone(),
            r.verdict.label().to_lowercase(),
            opt(m.rto_ms),
            opt(m.rpo_ms),
            m.lost_writes.map(|l| l.to_string()).unwrap_or_default(),
            m.availability_pct
                .map(|a| format!("{a:.2}"))
                .unwrap_or_default(),
            missed_targets(r),
            verified_text(d.verified).to_owned(),
            r.run_id.clone(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("csv of UTF-8 fields is UTF-8"))
}

/// Per scenario: how many drills, and the best, median and worst RTO and RPO.
fn trend(s: &Summary) -> Table {
    let mut names: Vec<&str> = s
        .drills
        .iter()
        .map(|d| d.report.scenario.name.as_str())
        .collect();
    names.sort();
    names.dedup();
    let spread = |mut v: Vec<f64>| {
        if v.is_empty() {
            return "-".to_owned();
        }
        v.sort_by(f64::total_cmp);
        format!(
            "{:.1} / {:.1} / {:.1}",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        )
    };
    let mut t = Table::new(
        &[
            ("Scenario", false),
            ("Drills", true),
            ("RTO ms best / median / worst", true),
            ("RPO ms best / median / worst", true),
        ],
        "No drills in the period.",
    );
    for n in names {
        let of: Vec<&Report> = s
            .drills
            .iter()
            .map(|d| &d.report)
            .filter(|r| r.scenario.name == n)
            .collect();
        t.row(vec![
            n.into(),
            of.len().to_string().into(),
            spread(of.iter().filter_map(|r| r.measurements.rto_ms).collect()).into(),
            spread(of.iter().filter_map(|r| r.measurements.rpo_ms).collect()).into(),
        ]);
    }
    t
}

/// Every drill of the period, one row each.
fn drills(s: &Summary) -> Table {
    let mut t = Table::new(
        &[
            ("Started (UTC)", false),
            ("Report", false),
            ("Scenario", false),
            ("Kind", false),
            ("Verdict", false),
            ("RTO ms", true),
            ("RPO ms", true),
            ("Lost writes", true),
            ("Missed targets", false),
            ("Signature", false),
        ],
        "No drills in the period.",
    );
    for d in &s.drills {
        let r = &d.report;
        t.row(vec![
            r.started_at.as_str().into(),
            d.entry.as_str().into(),
            r.scenario.name.as_str().into(),
            r.drill.label().into(),
            Cell::alarm(r.verdict.label(), r.verdict != Verdict::Pass),
            opt(r.measurements.rto_ms).into(),
            opt(r.measurements.rpo_ms).into(),
            r.measurements
                .lost_writes
                .map(|l| l.to_string())
                .unwrap_or_default()
                .into(),
            missed_targets(r).into(),
            Cell::alarm(verified_text(d.verified), d.verified == Some(false)),
        ]);
    }
    t
}

/// Each window in which an expected drill did not happen.
fn gaps(s: &Summary) -> Table {
    let mut t = Table::new(&[("Expected", false), ("Window", false)], "None.");
    for g in &s.gaps {
        t.row(vec![
            Cell::alarm(g.expectation.as_str(), true),
            format!("{} to {}", g.from, g.to).into(),
        ]);
    }
    t
}

/// Which criteria the period's drills evidence, and by how many drills.
fn controls(s: &Summary) -> Table {
    let mut counts: Vec<(&str, &str, usize)> = Vec::new();
    for c in s.drills.iter().flat_map(|d| &d.report.controls) {
        match counts.iter_mut().find(|(id, _, _)| *id == c.id) {
            Some(row) => row.2 += 1,
            None => counts.push((&c.id, &c.criterion, 1)),
        }
    }
    counts.sort();
    let mut t = Table::new(
        &[("Criterion", false), ("Says", false), ("Drills", true)],
        "No criteria evidenced.",
    );
    for (id, says, n) in counts {
        t.row(vec![id.into(), says.into(), n.to_string().into()]);
    }
    t
}

fn headline(s: &Summary) -> String {
    format!(
        "{} drills from {} to {}: {} passed, {} failed, {} aborted; {} scheduled drill(s) missing; {}{}",
        s.drills.len(),
        s.from,
        s.to,
        s.count(Verdict::Pass),
        s.count(Verdict::Fail),
        s.count(Verdict::Aborted),
        s.gaps.len(),
        match &s.verification {
            None => "signatures not checked (no --allowed-signers)".to_owned(),
            Some(p) if p.is_empty() =>
                "every report's signature, chain and verdict verified".to_owned(),
            Some(p) => format!("{} verification problem(s)", p.len()),
        },
        match s.posture_short() {
            0 => String::new(),
            n => format!("; {n} backup posture finding(s) short"),
        }
    ) + &match (s.coverage().len(), s.unproven().len()) {
        (0, _) => String::new(),
        (n, 0) => format!("; all {n} fleet database(s) restored"),
        (n, u) => format!("; {u} of {n} fleet database(s) never restored successfully"),
    }
}

fn expected(s: &Summary) -> String {
    let expected: Vec<String> = s.expectations.iter().map(|x| x.to_string()).collect();
    format!("Expected: {}", expected.join(", "))
}

pub fn markdown(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Drill evidence, {} to {}\n\n{}\n",
        s.from,
        s.to,
        headline(s)
    );
    let _ = writeln!(o, "## Missing scheduled drills\n\n{}\n", expected(s));
    gaps(s).markdown(&mut o);
    let _ = writeln!(o, "\n## Trend\n");
    trend(s).markdown(&mut o);
    let _ = writeln!(o, "\n## Drills\n");
    drills(s).markdown(&mut o);
    if let Some(problems) = &s.verification
        && !problems.is_empty()
    {
        let _ = writeln!(o, "\n## Verification problems\n");
        for p in problems {
            let _ = writeln!(o, "- {p}");
        }
    }
    let _ = writeln!(o, "\n## Restore coverage, per database\n");
    coverage(s).markdown(&mut o);
    let _ = writeln!(o, "\n## Backup posture, per resource\n");
    posture(s).markdown(&mut o);
    let _ = writeln!(o, "\n## SOC 2 criteria evidenced\n");
    controls(s).markdown(&mut o);
    o
}

pub fn html(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Drill evidence {} to {}</title>\n<style>body{{font-family:sans-serif;margin:2em auto;max-width:1100px}}table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{border:1px solid #ddd;padding:.25em .6em;text-align:left}}th{{background:#f4f4f4}}td.num{{text-align:right}}.alarm{{color:#d62728;font-weight:bold}}</style>\n</head>\n<body>",
        s.from, s.to
    );
    let _ = writeln!(
        o,
        "<h1>Drill evidence, {} to {}</h1>\n<p id=\"headline\">{}</p>",
        s.from,
        s.to,
        e(&headline(s))
    );
    let _ = writeln!(
        o,
        "<h2>Missing scheduled drills</h2>\n<p>{}</p>",
        e(&expected(s))
    );
    gaps(s).html(&mut o, Some("gaps"));
    let _ = writeln!(o, "<h2>Trend</h2>");
    trend(s).html(&mut o, Some("trend"));
    let _ = writeln!(o, "<h2>Drills</h2>");
    drills(s).html(&mut o, Some("drills"));
    if let Some(problems) = &s.verification
        && !problems.is_empty()
    {
        let _ = writeln!(o, "<h2>Verification problems</h2>\n<ul id=\"problems\">");
        for p in problems {
            let _ = writeln!(o, "<li>{}</li>", e(p));
        }
        let _ = writeln!(o, "</ul>");
    }
    let _ = writeln!(o, "<h2>Restore coverage, per database</h2>");
    coverage(s).html(&mut o, Some("coverage"));
    let _ = writeln!(o, "<h2>Backup posture, per resource</h2>");
    posture(s).html(&mut o, Some("posture"));
    let _ = writeln!(o, "<h2>SOC 2 criteria evidenced</h2>");
    controls(s).html(&mut o, Some("controls"));
    let _ = writeln!(o, "</body>\n</html>");
    o
}

/// The kinds a summary expects by default: a restore test every month and a failover drill
/// every quarter.
pub fn default_expectations() -> Vec<Expectation> {
    vec![
        Expectation {
            what: DrillKind::Restore.label().into(),
            every: Every::Month,
        },
        Expectation {
            what: DrillKind::Failover.label().into(),
            every: Every::Quarter,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_real_calendar_days() {
        assert!(Date::parse("2024-02-29").is_ok());
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026-04-31",
            "x",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
        let d = Date::parse("2026-11-15").unwrap();
        assert_eq!(d.add_months(2).to_string(), "2027-01-01");
        assert_eq!(d.month_end().to_string(), "2026-11-30");
    }

    #[test]
    fn expectations_parse() {
        assert_eq!(
            "restore=monthly".parse::<Expectation>().unwrap(),
            Expectation {
                what: "restore".into(),
                every: Every::Month
            }
        );
        assert!("restore=weekly".parse::<Expectation>().is_err());
        assert!("=monthly".parse::<Expectation>().is_err());
    }
}
