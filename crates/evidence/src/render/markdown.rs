//! The report as Markdown, for a ticket, a wiki page or a pull request.

use std::fmt::Write;

use super::table::pairs_markdown;
use super::{
    auditor_command, checks, controls, events, facts, findings, measurements, outages,
    patroni_facts, patroni_members, tables, targets,
};
use firedrill_model::report::Report;

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
    pairs_markdown(&mut o, &facts(r));

    let _ = writeln!(o, "\n## Targets\n");
    targets(r).markdown(&mut o);

    let _ = writeln!(o, "\n## Measurements\n");
    pairs_markdown(&mut o, &measurements(r));
    match (&r.measurements.restore, &r.measurements.posture) {
        (Some(x), _) => {
            let _ = writeln!(o, "\n### Checks\n");
            checks(x).markdown(&mut o);
            let _ = writeln!(o, "\n### Tables\n");
            tables(x).markdown(&mut o);
        }
        (None, Some(p)) => {
            let _ = writeln!(o, "\n### Findings\n");
            findings(p).markdown(&mut o);
        }
        (None, None) => {
            let _ = writeln!(o, "\n### Write outages\n");
            outages(r).markdown(&mut o);
        }
    }
    if let Some(p) = &r.measurements.patroni {
        let _ = writeln!(o, "\n### Patroni\n");
        pairs_markdown(&mut o, &patroni_facts(r, p));
        let _ = writeln!(o);
        patroni_members(p).markdown(&mut o);
    }

    if !r.measurements.steps.is_empty() {
        let _ = writeln!(o, "\n## Steps\n");
        super::steps::steps(r).markdown(&mut o);
        let _ = writeln!(o, "\n### Notes\n");
        super::steps::notes(r).markdown(&mut o);
    }

    let _ = writeln!(o, "\n## Timeline\n");
    events(r).markdown(&mut o);

    let _ = writeln!(o, "\n## SOC 2 criteria evidenced\n");
    controls(r).markdown(&mut o);

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
