//! The report as Markdown, for a ticket, a wiki page or a pull request.

use std::fmt::Write;

use super::{auditor_command, facts, measurements};
use crate::report::Report;

/// Table cells must not break the table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Drill report: {} — {}\n",
        r.verdict.label(),
        r.scenario.name
    );
    if !r.scenario.description.is_empty() {
        let _ = writeln!(o, "{}\n", r.scenario.description.trim());
    }
    let _ = writeln!(o, "| | |\n|---|---|");
    for (k, v) in facts(r) {
        let _ = writeln!(o, "| {k} | {} |", cell(&v));
    }

    let _ = writeln!(o, "\n## Targets\n");
    if r.targets.is_empty() {
        let _ = writeln!(o, "No targets were set.");
    } else {
        let _ = writeln!(
            o,
            "| Target | Limit | Achieved | Result |\n|---|---|---|---|"
        );
        for t in &r.targets {
            let _ = writeln!(
                o,
                "| {} | {} {} | {} | {} |",
                t.name,
                t.relation(),
                t.show(t.limit),
                t.show_achieved(),
                if t.met { "met" } else { "**MISSED**" }
            );
        }
    }

    let _ = writeln!(o, "\n## Measurements\n\n| | |\n|---|---|");
    for (k, v) in measurements(r) {
        let _ = writeln!(o, "| {k} | {} |", cell(&v));
    }
    let outages = &r.measurements.write_outages;
    if !outages.is_empty() {
        let _ = writeln!(
            o,
            "\n### Write outages\n\n| From (ms) | Length | Failed probes |\n|---|---|---|"
        );
        for w in outages {
            let _ = writeln!(
                o,
                "| {:.1} | {} | {} |",
                w.start_ms,
                w.duration_ms
                    .map(|d| format!("{d:.1} ms"))
                    .unwrap_or_else(|| "not recovered".into()),
                w.failed_probes
            );
        }
    }

    let _ = writeln!(
        o,
        "\n## Timeline\n\n| t (ms) | Event | Detail |\n|---:|---|---|"
    );
    for e in &r.timeline {
        let _ = writeln!(o, "| {:.1} | {} | {} |", e.t_ms, e.kind, cell(&e.detail));
    }

    let _ = writeln!(o, "\n## SOC 2 criteria evidenced\n");
    if r.controls.is_empty() {
        let _ = writeln!(o, "The scenario names no criteria.");
    } else {
        let _ = writeln!(o, "| Criterion | Says | This report shows |\n|---|---|---|");
        for c in &r.controls {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                c.id,
                cell(&c.criterion),
                cell(&c.evidence)
            );
        }
    }

    let _ = writeln!(o, "\n## Verification\n");
    match auditor_command(r) {
        Some(cmd) => {
            let _ = writeln!(
                o,
                "`report.json` is the evidence; this page is a view of it. Check its signature with:\n\n```\n{cmd}\n```\n\nand a whole evidence directory with `firedrill verify DIR --allowed-signers allowed_signers`."
            );
        }
        None => {
            let _ = writeln!(o, "This report is not signed.");
        }
    }
    o
}
