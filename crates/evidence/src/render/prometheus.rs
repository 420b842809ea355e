//! Prometheus text exposition format, for node_exporter's textfile collector: the last drill's
//! figures per scenario, so a dashboard can show RTO trends and alert on a missed target or a
//! drill that stopped running (`firedrill_last_run_timestamp_seconds`).

use std::fmt::Write;

use super::junit::duration_s;
use firedrill_model::report::Report;

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(r: &Report) -> String {
    render_all(std::slice::from_ref(r))
}

/// A metric: name, help, and its samples (labels, value) for one report with labels `base`.
type Metric = (
    &'static str,
    &'static str,
    fn(&Report, &str) -> Vec<(String, f64)>,
);

fn one(base: &str, v: Option<f64>) -> Vec<(String, f64)> {
    v.map(|v| vec![(base.to_owned(), v)]).unwrap_or_default()
}

const METRICS: [Metric; 11] = [
    (
        "firedrill_rto_seconds",
        "Achieved write RTO of the last drill: fault to sustained recovery.",
        |r, b| one(b, r.measurements.rto_ms.map(|v| v / 1000.0)),
    ),
    (
        "firedrill_rpo_seconds",
        "Achieved RPO of the last drill: span of acknowledged writes lost.",
        |r, b| one(b, r.measurements.rpo_ms.map(|v| v / 1000.0)),
    ),
    (
        "firedrill_lost_writes",
        "Acknowledged writes missing after recovery in the last drill.",
        |r, b| one(b, r.measurements.lost_writes.map(|v| v as f64)),
    ),
    (
        "firedrill_split_brain_seconds",
        "How long two servers took writes at once in the last drill (from the writes).",
        |r, b| {
            one(
                b,
                r.measurements
                    .split_brain
                    .as_ref()
                    .map(|s| s.window_ms / 1000.0),
            )
        },
    ),
    (
        "firedrill_diverged_writes",
        "Lost writes a server that did not survive acknowledged after the fault.",
        |r, b| {
            one(
                b,
                r.measurements
                    .split_brain
                    .as_ref()
                    .map(|s| s.diverged_writes as f64),
            )
        },
    ),
    (
        "firedrill_acknowledged_writes",
        "Writes acknowledged during the last drill.",
        |r, b| one(b, Some(r.measurements.acknowledged_writes as f64)),
    ),
    (
        "firedrill_availability_ratio",
        "Share of successful write probes after the fault in the last drill (0 to 1).",
        |r, b| one(b, r.measurements.availability_pct.map(|v| v / 100.0)),
    ),
    (
        "firedrill_target_met",
        "1 when the last drill met the target, 0 when it missed it.",
        |r, b| {
            r.targets
                .iter()
                .map(|t| {
                    (
                        format!("{b},target=\"{}\"", label(&t.name)),
                        if t.met { 1.0 } else { 0.0 },
                    )
                })
                .collect()
        },
    ),
    (
        "firedrill_verdict",
        "The last drill's verdict (1 for the one it had).",
        |r, b| {
            ["pass", "fail", "aborted"]
                .iter()
                .map(|v| {
                    let had = r.verdict.label().eq_ignore_ascii_case(v);
                    (format!("{b},verdict=\"{v}\""), if had { 1.0 } else { 0.0 })
                })
                .collect()
        },
    ),
    (
        "firedrill_last_run_timestamp_seconds",
        "When the last drill finished, Unix time.",
        |r, b| {
            let finished = humantime::parse_rfc3339(&r.finished_at)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64());
            one(b, finished)
        },
    ),
    (
        "firedrill_drill_duration_seconds",
        "How long the last drill took.",
        |r, b| one(b, Some(duration_s(r))),
    ),
];

/// Every report's samples, one group per metric (the text format allows a metric's `# HELP`
/// once): a fleet's members in one file, told apart by their scenario label.
pub fn render_all(reports: &[Report]) -> String {
    let mut o = String::new();
    for (name, help, samples) in METRICS {
        let all: Vec<(String, f64)> = reports
            .iter()
            .flat_map(|r| {
                let base = format!(
                    "scenario=\"{}\",drill=\"{}\"",
                    label(&r.scenario.name),
                    r.drill.label()
                );
                samples(r, &base)
            })
            .collect();
        if all.is_empty() {
            continue;
        }
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in all {
            // Microsecond resolution is what was measured; drop float noise below it.
            let v = (v * 1e6).round() / 1e6;
            let _ = writeln!(o, "{name}{{{labels}}} {v}");
        }
    }
    o
}
