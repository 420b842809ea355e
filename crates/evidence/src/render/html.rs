//! The report as one self-contained HTML page: inline CSS and the SVG timeline, no scripts and
//! no external assets, so it opens from an evidence archive years later exactly as written.

use std::fmt::Write;

use super::table::pairs_html;
use super::{
    auditor_command, checks, controls, escape_xml as e, events, facts, findings, measurements,
    outages, patroni_facts, patroni_members, tables, targets, timeline,
};
use firedrill_model::report::{Report, Verdict};

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1 .verdict{padding:.1em .4em;border-radius:4px;color:#fff}
.pass{background:#2ca02c}.fail{background:#d62728}.aborted{background:#555}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.alarm{color:#d62728;font-weight:bold}
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
        "<figcaption>Green: successful probes; red: failed probes; shaded: write outages; lines: fault and recovery; bar: achieved RTO from the fault; in a game day, purple bars: steps (red: missed), ticks: their targets, triangles: acknowledged and done, orange dots: notes; on zones, brown: the network fault, a bar per server from its first to its last acknowledged write (green: the one that survived), red across them: split brain.</figcaption>\n</figure>\n</section>"
    );

    if !r.measurements.steps.is_empty() {
        let _ = writeln!(o, "<section id=\"steps\">\n<h2>Steps</h2>");
        super::steps::steps(r).html(&mut o, Some("steps-table"));
        let _ = writeln!(o, "<h3>Notes</h3>");
        super::steps::notes(r).html(&mut o, Some("notes-table"));
        let _ = writeln!(o, "</section>");
    }

    let _ = writeln!(o, "<section id=\"targets\">\n<h2>Targets</h2>");
    targets(r).html(&mut o, None);
    let _ = writeln!(
        o,
        "</section>\n<section id=\"measurements\">\n<h2>Measurements</h2>"
    );
    pairs_html(&mut o, &measurements(r));
    match (&r.measurements.restore, &r.measurements.posture) {
        (Some(x), _) => {
            let _ = writeln!(o, "<h3>Checks</h3>");
            checks(x).html(&mut o, None);
            let _ = writeln!(o, "<h3>Tables</h3>");
            tables(x).html(&mut o, None);
        }
        (None, Some(p)) => {
            let _ = writeln!(o, "<h3>Findings</h3>");
            findings(p).html(&mut o, None);
        }
        (None, None) => {
            let _ = writeln!(o, "<h3>Write outages</h3>");
            outages(r).html(&mut o, None);
        }
    }
    if let Some(p) = &r.measurements.patroni {
        let _ = writeln!(o, "<h3>Patroni</h3>");
        pairs_html(&mut o, &patroni_facts(r, p));
        patroni_members(p).html(&mut o, None);
    }
    let _ = writeln!(o, "</section>\n<section id=\"events\">\n<h2>Events</h2>");
    events(r).html(&mut o, None);
    let _ = writeln!(
        o,
        "</section>\n<section id=\"controls\">\n<h2>SOC 2 criteria evidenced</h2>"
    );
    controls(r).html(&mut o, None);
    let _ = writeln!(
        o,
        "</section>\n<section id=\"facts\">\n<h2>About this drill</h2>"
    );
    pairs_html(&mut o, &facts(r));
    let _ = writeln!(o, "</section>");

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
