//! A game day in the views: the steps table (each step's times, who acted, its target), the
//! room's notes, and the steps band under the timeline picture. Pure functions of the report.

use std::fmt::Write;

use super::escape_xml;
use super::table::{Cell, Table};
use firedrill_model::gameday::{StepOutcome, StepResult};
use firedrill_model::report::Report;

/// Height the band adds to the picture.
pub const BAND_H: f64 = 46.0;

fn secs(ms: Option<f64>) -> String {
    ms.map(|v| format!("{:.3} s", v / 1000.0))
        .unwrap_or_default()
}

fn by(ms: Option<f64>, who: &Option<String>) -> String {
    match (ms, who) {
        (Some(_), Some(w)) => format!("{} ({w})", secs(ms)),
        (Some(_), None) => secs(ms),
        (None, _) => "—".into(),
    }
}

/// Whether a step missed what was asked of it: it did not end as it should, or ran past its
/// `within`.
pub fn missed(s: &StepResult) -> bool {
    s.outcome != StepOutcome::Done
        || matches!((s.duration_ms, s.within_ms), (Some(d), Some(w)) if d > w)
}

/// Every step: when it started, was acknowledged, said done, its condition seen; its duration
/// against its target.
pub fn steps(r: &Report) -> Table {
    let mut t = Table::new(
        &[
            ("#", true),
            ("Step", false),
            ("Started", true),
            ("Acknowledged", true),
            ("Done", true),
            ("Condition seen", true),
            ("Duration", true),
            ("Target", true),
            ("Result", false),
        ],
        "This drill has no steps.",
    );
    for s in &r.measurements.steps {
        let result = match (s.outcome, s.duration_ms, s.within_ms) {
            (StepOutcome::Done, Some(d), Some(w)) if d > w => "MISSED".to_owned(),
            (StepOutcome::Done, Some(_), Some(_)) => "met".to_owned(),
            (outcome, _, _) => outcome.label().to_owned(),
        };
        let result = if s.detail.is_empty() || s.outcome == StepOutcome::Done {
            result
        } else {
            format!("{result}: {}", s.detail)
        };
        t.row(vec![
            s.number.to_string().into(),
            format!("{} ({})", s.title, s.kind).into(),
            secs(s.started_ms).into(),
            by(s.acknowledged_ms, &s.acknowledged_by).into(),
            by(s.done_ms, &s.done_by).into(),
            secs(s.condition_ms).into(),
            s.duration_ms
                .map(|d| format!("{:.1} s", d / 1000.0))
                .unwrap_or_else(|| "—".into())
                .into(),
            s.within_ms
                .map(|w| format!("≤ {:.0} s", w / 1000.0))
                .unwrap_or_default()
                .into(),
            Cell::alarm(result, missed(s)),
        ]);
    }
    t
}

/// Notes taken during the drill, by whom, when.
pub fn notes(r: &Report) -> Table {
    let mut t = Table::new(&[("t", true), ("Note", false)], "No notes were taken.");
    for e in r.timeline.iter().filter(|e| e.kind == "note") {
        t.row(vec![secs(Some(e.t_ms)).into(), e.detail.as_str().into()]);
    }
    t
}

/// The steps as a band at `y`: one bar per step from its start to its end (red when it
/// missed), its target's end as a tick, acknowledgements and notes as marks.
pub fn band(o: &mut String, r: &Report, x: &dyn Fn(f64) -> f64, y: f64, end_ms: f64) {
    let _ = writeln!(o, r#"<g id="steps">"#);
    let _ = writeln!(o, r#"<text x="4" y="{:.1}">steps</text>"#, y + 13.0);
    for s in &r.measurements.steps {
        let Some(start) = s.started_ms else { continue };
        let end = s.ended_ms.unwrap_or(end_ms).max(start);
        let (x0, x1) = (x(start), x(end));
        let fill = if missed(s) { "#d62728" } else { "#9467bd" };
        let _ = writeln!(
            o,
            r#"<rect class="step" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="18" fill="{fill}"><title>step {}: {} ({}), {}</title></rect>"#,
            (x1 - x0).max(2.0),
            s.number,
            escape_xml(&s.title),
            s.outcome.label(),
            s.duration_ms
                .map(|d| format!("{:.1} s", d / 1000.0))
                .unwrap_or_else(|| "not done".into())
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            x0 + 2.0,
            y + 13.0,
            s.number
        );
        if let Some(w) = s.within_ms {
            let xt = x(start + w);
            let _ = writeln!(
                o,
                r##"<line class="step-target" x1="{xt:.1}" x2="{xt:.1}" y1="{:.1}" y2="{:.1}" stroke="#333" stroke-width="1.5"><title>step {} target: {:.0} s</title></line>"##,
                y - 2.0,
                y + 20.0,
                s.number,
                w / 1000.0
            );
        }
        for (at, what) in [(s.acknowledged_ms, "acknowledged"), (s.done_ms, "done")] {
            if let Some(at) = at {
                let xa = x(at);
                let _ = writeln!(
                    o,
                    r##"<path class="step-{what}" d="M{xa:.1} {:.1} l-4 -6 h8 z" fill="#222"><title>step {} {what} at {:.3} s</title></path>"##,
                    y + 24.0,
                    s.number,
                    at / 1000.0
                );
            }
        }
    }
    for e in r.timeline.iter().filter(|e| e.kind == "note") {
        let xn = x(e.t_ms);
        let _ = writeln!(
            o,
            r##"<circle class="note" cx="{xn:.1}" cy="{:.1}" r="4" fill="#ff7f0e"><title>{:.3} s: {}</title></circle>"##,
            y + 32.0,
            e.t_ms / 1000.0,
            escape_xml(&e.detail)
        );
    }
    let _ = writeln!(o, "</g>");
}
