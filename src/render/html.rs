//! The report as one self-contained HTML page: inline CSS and the SVG timeline, no scripts and
//! no external assets, so it opens from an evidence archive years later exactly as written.

use std::fmt::Write;

use super::{auditor_command, escape_xml as e, facts, measurements, timeline};
use crate::report::{Report, Verdict};

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1 .verdict{padding:.1em .4em;border-radius:4px;color:#fff}
.pass{background:#2ca02c}.fail{background:#d62728}.aborted{background:#555}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.missed{color:#d62728;font-weight:bold}.met{color:#2ca02c}
code,pre{background:#f6f6f6;padding:.1em .3em}figure{margin:0}";

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let class = match r.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Aborted => "aborted",
    };
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{} {} — firedrill</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        r.verdict.label(),
        e(&r.scenario.name)
    );
    let _ = writeln!(
        o,
        "<h1><span class=\"verdict {class}\">{}</span> {}</h1>",
        r.verdict.label(),
        e(&r.scenario.name)
    );
    if !r.scenario.description.is_empty() {
        let _ = writeln!(o, "<p>{}</p>", e(r.scenario.description.trim()));
    }

    let _ = writeln!(
        o,
        "<section id=\"timeline-picture\">\n<h2>Timeline</h2>\n<figure>"
    );
    o.push_str(&timeline::render(r));
    let _ = writeln!(
        o,
        "<figcaption>Green: successful probes; red: failed probes; shaded: write outages; lines: fault and recovery; bar: achieved RTO from the fault.</figcaption>\n</figure>\n</section>"
    );

    let _ = writeln!(o, "<section id=\"targets\">\n<h2>Targets</h2>");
    if r.targets.is_empty() {
        let _ = writeln!(o, "<p>No targets were set.</p>");
    } else {
        let _ = writeln!(
            o,
            "<table>\n<tr><th>Target</th><th>Limit</th><th>Achieved</th><th>Result</th></tr>"
        );
        for t in &r.targets {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"num\">{} {}</td><td class=\"num\">{}</td><td class=\"{}\">{}</td></tr>",
                e(&t.name),
                e(t.relation()),
                e(&t.show(t.limit)),
                e(&t.show_achieved()),
                if t.met { "met" } else { "missed" },
                if t.met { "met" } else { "MISSED" }
            );
        }
        let _ = writeln!(o, "</table>");
    }
    let _ = writeln!(o, "</section>");

    kv_table(&mut o, "measurements", "Measurements", &measurements(r));

    let _ = writeln!(
        o,
        "<section id=\"events\">\n<h2>Events</h2>\n<table>\n<tr><th>t (ms)</th><th>Event</th><th>Detail</th></tr>"
    );
    for ev in &r.timeline {
        let _ = writeln!(
            o,
            "<tr><td class=\"num\">{:.1}</td><td>{}</td><td>{}</td></tr>",
            ev.t_ms,
            e(&ev.kind),
            e(&ev.detail)
        );
    }
    let _ = writeln!(o, "</table>\n</section>");

    let _ = writeln!(
        o,
        "<section id=\"controls\">\n<h2>SOC 2 criteria evidenced</h2>"
    );
    if r.controls.is_empty() {
        let _ = writeln!(o, "<p>The scenario names no criteria.</p>");
    } else {
        let _ = writeln!(
            o,
            "<table>\n<tr><th>Criterion</th><th>Says</th><th>This report shows</th></tr>"
        );
        for c in &r.controls {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&c.id),
                e(&c.criterion),
                e(&c.evidence)
            );
        }
        let _ = writeln!(o, "</table>");
    }
    let _ = writeln!(o, "</section>");

    kv_table(&mut o, "facts", "About this drill", &facts(r));

    let _ = writeln!(o, "<section id=\"verification\">\n<h2>Verification</h2>");
    match auditor_command(r) {
        Some(cmd) => {
            let _ = writeln!(
                o,
                "<p><code>report.json</code> is the evidence; this page is a view of it. Check its signature with:</p>\n<pre>{}</pre>",
                e(&cmd)
            );
        }
        None => {
            let _ = writeln!(o, "<p>This report is not signed.</p>");
        }
    }
    let _ = writeln!(o, "</section>\n</body>\n</html>");
    o
}

fn kv_table(o: &mut String, id: &str, title: &str, rows: &[(&str, String)]) {
    let _ = writeln!(o, "<section id=\"{id}\">\n<h2>{title}</h2>\n<table>");
    for (k, v) in rows {
        let _ = writeln!(o, "<tr><th>{}</th><td>{}</td></tr>", e(k), e(v));
    }
    let _ = writeln!(o, "</table>\n</section>");
}
