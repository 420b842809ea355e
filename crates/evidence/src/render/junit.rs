//! JUnit XML for CI systems: one test case per target, so a missed RTO shows as a failed test
//! named `rto`; an aborted drill is one errored case carrying the reason.

use std::fmt::Write;

use super::escape_xml as e;
use firedrill_model::report::Report;

/// Seconds between the report's start and finish; 0 when either does not parse.
pub fn duration_s(r: &Report) -> f64 {
    let parse = |s: &str| humantime::parse_rfc3339(s).ok();
    match (parse(&r.started_at), parse(&r.finished_at)) {
        (Some(a), Some(b)) => b.duration_since(a).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// (tests, failures, errors) of one report.
fn counts(r: &Report) -> (usize, usize, usize) {
    let failures = r.targets.iter().filter(|t| !t.met).count();
    let errors = usize::from(r.abort_reason.is_some());
    (r.targets.len() + errors, failures, errors)
}

pub fn render(r: &Report) -> String {
    render_all(std::slice::from_ref(r))
}

/// One test suite per report: a fleet's members in one file.
pub fn render_all(reports: &[Report]) -> String {
    let (mut tests, mut failures, mut errors, mut time) = (0, 0, 0, 0.0);
    for r in reports {
        let (t, f, e) = counts(r);
        (tests, failures, errors) = (tests + t, failures + f, errors + e);
        time += duration_s(r);
    }
    let mut o = String::new();
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        o,
        r#"<testsuites name="firedrill" tests="{tests}" failures="{failures}" errors="{errors}" time="{time:.3}">"#
    );
    for r in reports {
        testsuite(&mut o, r);
    }
    let _ = writeln!(o, "</testsuites>");
    o
}

fn testsuite(o: &mut String, r: &Report) {
    let (tests, failures, errors) = counts(r);
    let time = duration_s(r);
    let name = e(&r.scenario.name);
    let _ = writeln!(
        o,
        r#"  <testsuite name="{name}" tests="{tests}" failures="{failures}" errors="{errors}" skipped="0" timestamp="{}" time="{time:.3}">"#,
        e(&r.started_at)
    );
    let _ = writeln!(o, "    <properties>");
    for (k, v) in [
        ("run_id", r.run_id.clone()),
        ("verdict", r.verdict.label().to_owned()),
        ("drill", r.drill.label().to_owned()),
        ("target", r.target.description.clone()),
        ("scenario_sha256", r.scenario.sha256.clone()),
    ] {
        let _ = writeln!(o, r#"      <property name="{k}" value="{}"/>"#, e(&v));
    }
    let _ = writeln!(o, "    </properties>");
    if let Some(reason) = &r.abort_reason {
        let _ = writeln!(
            o,
            r#"    <testcase classname="firedrill.{name}" name="drill" time="{time:.3}">
      <error type="aborted" message="{}"/>
    </testcase>"#,
            e(reason)
        );
    }
    for t in &r.targets {
        let _ = write!(
            o,
            r#"    <testcase classname="firedrill.{name}" name="{}" time="0">"#,
            e(&t.name)
        );
        if t.met {
            let _ = writeln!(o, "</testcase>");
        } else {
            let _ = writeln!(
                o,
                "\n      <failure type=\"target-missed\" message=\"{}: achieved {}, limit {} {}\"/>\n    </testcase>",
                e(&t.name),
                e(&t.show_achieved()),
                e(t.relation()),
                e(&t.show_limit())
            );
        }
    }
    let _ = writeln!(o, "  </testsuite>");
}
