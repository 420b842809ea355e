//! A fleet run's summary as Markdown (the audit file) and as a plain table (the terminal).

use std::fmt::Write as _;

use firedrill_model::fleet_summary::Summary;
use firedrill_model::scenario::describe_tags;

use super::show_ms;

fn rows(s: &Summary) -> Vec<[String; 6]> {
    s.members
        .iter()
        .map(|m| {
            [
                m.instance.clone(),
                m.outcome.label().to_owned(),
                show_ms(m.restore_rto_ms),
                show_ms(m.rpo_ms),
                m.report.clone().unwrap_or_else(|| "-".into()),
                m.detail.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

const HEADER: [&str; 6] = [
    "instance",
    "result",
    "restore RTO",
    "RPO exposure",
    "report",
    "detail",
];

/// The summary as Markdown, for humans and the audit file.
pub fn markdown(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Fleet restore drill `{}`\n", s.scenario.name);
    let _ = writeln!(
        o,
        "- fleet run: `{}`\n- scenario file: `{}` (SHA-256 `{}`)\n- instances: those in {} \
         with {}\n- started {}, finished {}\n- {}\n- exit code: {}\n",
        s.fleet_id,
        s.scenario.file,
        s.scenario.sha256,
        s.region,
        describe_tags(&s.tags),
        s.started_at,
        s.finished_at,
        s.tally(),
        s.exit_code
    );
    let _ = writeln!(o, "| {} |", HEADER.join(" | "));
    let _ = writeln!(o, "|{}", "---|".repeat(HEADER.len()));
    for r in rows(s) {
        let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(o, "| {} |", cells.join(" | "));
    }
    o
}

/// The summary as a plain table, for the terminal.
pub fn text(s: &Summary) -> String {
    let rows = rows(s);
    let mut width = HEADER.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = width[i]);
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut o = line(&HEADER.map(String::from));
    for r in &rows {
        o.push_str(&line(r));
    }
    let _ = writeln!(o, "\n{}", s.tally());
    o
}
