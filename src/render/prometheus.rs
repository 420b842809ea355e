//! Prometheus text exposition format, for node_exporter's textfile collector: the last drill's
//! figures per scenario, so a dashboard can show RTO trends and alert on a missed target or a
//! drill that stopped running (`firedrill_last_run_timestamp_seconds`).

use std::fmt::Write;

use super::junit::duration_s;
use crate::report::Report;

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(r: &Report) -> String {
    let m = &r.measurements;
    let base = format!(
        "scenario=\"{}\",drill=\"{}\"",
        label(&r.scenario.name),
        r.drill.label()
    );
    let mut o = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in samples {
            // Microsecond resolution is what was measured; drop float noise below it.
            let v = (v * 1e6).round() / 1e6;
            let _ = writeln!(o, "{name}{{{labels}}} {v}");
        }
    };
    let one = |v: Option<f64>| v.map(|v| vec![(base.clone(), v)]).unwrap_or_default();
    gauge(
        "firedrill_rto_seconds",
        "Achieved write RTO of the last drill: fault to sustained recovery.",
        &one(m.rto_ms.map(|v| v / 1000.0)),
    );
    gauge(
        "firedrill_rpo_seconds",
        "Achieved RPO of the last drill: span of acknowledged writes lost.",
        &one(m.rpo_ms.map(|v| v / 1000.0)),
    );
    gauge(
        "firedrill_lost_writes",
        "Acknowledged writes missing after recovery in the last drill.",
        &one(m.lost_writes.map(|v| v as f64)),
    );
    gauge(
        "firedrill_acknowledged_writes",
        "Writes acknowledged during the last drill.",
        &one(Some(m.acknowledged_writes as f64)),
    );
    gauge(
        "firedrill_availability_ratio",
        "Share of successful write probes after the fault in the last drill (0 to 1).",
        &one(m.availability_pct.map(|v| v / 100.0)),
    );
    let targets: Vec<(String, f64)> = r
        .targets
        .iter()
        .map(|t| {
            (
                format!("{base},target=\"{}\"", label(&t.name)),
                if t.met { 1.0 } else { 0.0 },
            )
        })
        .collect();
    gauge(
        "firedrill_target_met",
        "1 when the last drill met the target, 0 when it missed it.",
        &targets,
    );
    let verdicts: Vec<(String, f64)> = ["pass", "fail", "aborted"]
        .iter()
        .map(|v| {
            (
                format!("{base},verdict=\"{v}\""),
                if r.verdict.label().eq_ignore_ascii_case(v) {
                    1.0
                } else {
                    0.0
                },
            )
        })
        .collect();
    gauge(
        "firedrill_verdict",
        "The last drill's verdict (1 for the one it had).",
        &verdicts,
    );
    let finished = humantime::parse_rfc3339(&r.finished_at)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64());
    gauge(
        "firedrill_last_run_timestamp_seconds",
        "When the last drill finished, Unix time.",
        &one(finished),
    );
    gauge(
        "firedrill_drill_duration_seconds",
        "How long the last drill took.",
        &one(Some(duration_s(r))),
    );
    o
}
