//! Views of a report for people and tools: Markdown, a self-contained HTML page with an SVG
//! timeline, JUnit XML for CI, Prometheus text metrics for node_exporter's textfile collector.
//! Each is a pure function of the report: the signed `report.json` stays the evidence and the
//! views can be regenerated from it at any time (`firedrill render`).

pub mod fleet;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod network;
pub mod prometheus;
pub mod steps;
pub mod table;
pub mod timeline;

use firedrill_model::cluster::PatroniView;
use firedrill_model::posture::{Finding, PostureResult, ResourcePosture};
use firedrill_model::report::{Report, RestoreResult, RtoFrom};
use table::{Cell, Table};

/// The files written next to `report.json`, by name.
pub fn views(r: &Report) -> Vec<(&'static str, String)> {
    vec![
        ("report.md", markdown::render(r)),
        ("report.html", html::render(r)),
        ("junit.xml", junit::render(r)),
        ("metrics.prom", prometheus::render(r)),
    ]
}

/// Text safe inside XML/HTML element content and attribute values.
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 has no escape for most control characters: drop them.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// An optional millisecond figure for people.
pub fn show_ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} ms"))
        .unwrap_or_else(|| "not measured".into())
}

/// The exact command an auditor runs to check this report's signature.
pub fn auditor_command(r: &Report) -> Option<String> {
    r.signer.as_ref().map(|s| {
        format!(
            "ssh-keygen -Y verify -f allowed_signers -I <identity> -n {} -s report.json.sig < report.json",
            s.namespace
        )
    })
}

/// Facts about the drill, label and value, in the order every view shows them.
pub fn facts(r: &Report) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("Verdict", r.verdict.label().to_owned()),
        (
            "Scenario",
            format!("{} ({})", r.scenario.name, r.scenario.file),
        ),
        ("Scenario SHA-256", r.scenario.sha256.clone()),
        ("Drill", r.drill.label().to_owned()),
        ("Target", r.target.description.clone()),
        ("Run", r.run_id.clone()),
        ("Started", r.started_at.clone()),
        ("Finished", r.finished_at.clone()),
        ("firedrill", r.tool.version.clone()),
    ];
    if let Some(reason) = &r.abort_reason {
        f.push(("Aborted", reason.clone()));
    }
    if let Some(rb) = &r.scenario.runbook {
        f.push(("Runbook", rb.clone()));
    }
    f.push((
        "Signed by",
        r.signer
            .as_ref()
            .map(|s| format!("{} (namespace {})", s.fingerprint, s.namespace))
            .unwrap_or_else(|| "not signed".into()),
    ));
    if let Some(c) = &r.chain {
        f.push((
            "Evidence chain",
            format!(
                "report {}; previous report SHA-256 {}",
                c.sequence,
                c.previous_sha256.as_deref().unwrap_or("none (first)")
            ),
        ));
    }
    f
}

/// Key measurements, label and value.
pub fn measurements(r: &Report) -> Vec<(&'static str, String)> {
    match (&r.measurements.restore, &r.measurements.posture) {
        (Some(restore), _) => restore_measurements(r, restore),
        (None, Some(p)) => posture_measurements(p),
        (None, None) => failover_measurements(r),
    }
}

fn posture_measurements(p: &PostureResult) -> Vec<(&'static str, String)> {
    let n = p.resources.len();
    let count = |f: &dyn Fn(&ResourcePosture) -> Option<bool>| {
        let yes = p.resources.iter().filter(|r| f(r) == Some(true)).count();
        let unknown = p.resources.iter().filter(|r| f(r).is_none()).count();
        format!(
            "{yes} of {n} resources{}",
            if unknown > 0 {
                format!(" ({unknown} not measured)")
            } else {
                String::new()
            }
        )
    };
    let retention: Vec<String> = p
        .resources
        .iter()
        .map(|r| match (r.retention_days, r.retention_indefinite) {
            (_, true) => format!("{}: until deleted", r.resource),
            (Some(d), false) => format!("{}: {d} days", r.resource),
            (None, false) => format!("{}: not measured", r.resource),
        })
        .collect();
    vec![
        ("Read", p.source.clone()),
        (
            "Backups judged",
            p.resources
                .iter()
                .map(|r| r.backups)
                .sum::<u64>()
                .to_string(),
        ),
        ("Encrypted", count(&|r| r.encrypted)),
        ("Immutable (compliance lock)", count(&|r| r.immutable)),
        ("Deletion protection", count(&|r| r.deletion_protection)),
        ("Shortest retention", retention.join("; ")),
        (
            "Copies in other regions",
            count(&|r| r.copies_in_other_regions.map(|c| c > 0)),
        ),
    ]
}

/// The columns of a posture finding, in the report and the period summary.
pub const FINDING_COLUMNS: [(&str, bool); 5] = [
    ("Resource", false),
    ("Check", false),
    ("Result", false),
    ("Finding", false),
    ("SOC 2", false),
];

/// One finding of `resource` as a row of [`FINDING_COLUMNS`].
pub fn finding_row(resource: &str, f: &Finding) -> Vec<Cell> {
    vec![
        resource.into(),
        f.check.name().into(),
        Cell::alarm(if f.ok { "ok" } else { "SHORT" }, !f.ok),
        f.detail.as_str().into(),
        f.check.controls().join(", ").into(),
    ]
}

/// A posture drill's findings, resource by resource, with the criteria each evidences.
pub fn findings(p: &PostureResult) -> Table {
    let mut t = Table::new(&FINDING_COLUMNS, "Nothing was read.");
    for r in &p.resources {
        for f in &r.findings {
            t.row(finding_row(&r.resource, f));
        }
    }
    t
}

fn restore_measurements(r: &Report, x: &RestoreResult) -> Vec<(&'static str, String)> {
    let m = &r.measurements;
    let mut out = vec![
        ("Restore RTO (to first query)", show_ms(m.rto_ms)),
        ("Restore duration", show_ms(x.restore_ms)),
        (
            "Recovery point",
            format!(
                "{} ({})",
                x.recovery_point.as_deref().unwrap_or("unknown"),
                x.recovery_target
            ),
        ),
        ("RPO exposure (recovery point age)", show_ms(m.rpo_ms)),
        (
            "Backup",
            format!(
                "{}{}: {}",
                x.backup_kind,
                if x.backup_taken {
                    ", taken by this drill"
                } else {
                    ", existing"
                },
                x.backup_source
            ),
        ),
        (
            "Backup size",
            x.backup_bytes
                .map(|b| format!("{:.1} MB", b as f64 / 1e6))
                .unwrap_or_else(|| "unknown".into()),
        ),
        ("Backup time", show_ms(x.backup_ms)),
        (
            "Restore throughput",
            x.throughput_mb_s
                .map(|t| format!("{t:.1} MB/s"))
                .unwrap_or_else(|| "not measured".into()),
        ),
        (
            "Tables compared",
            match x.tables_differing {
                Some(d) => format!("{} ({d} differing)", x.tables.len()),
                None => "not compared".into(),
            },
        ),
        (
            "Checks failed",
            format!("{} of {}", x.failed_checks(), x.checks.len()),
        ),
    ];
    if m.lost_writes.is_some() {
        out.push(("Acknowledged writes", m.acknowledged_writes.to_string()));
        out.push((
            "Lost writes (before the recovery point)",
            m.lost_writes.unwrap_or(0).to_string(),
        ));
        out.push((
            "Integrity failures",
            m.integrity_failures.unwrap_or(0).to_string(),
        ));
    }
    if !m.lost_examples.is_empty() {
        out.push(("Lost writes (first)", m.lost_examples.join(", ")));
    }
    out
}

/// A restore drill's checks, in the order they ran.
pub fn checks(x: &RestoreResult) -> Table {
    let mut t = Table::new(
        &[("Check", false), ("Result", false), ("Detail", false)],
        "No check ran.",
    );
    for c in &x.checks {
        t.row(vec![
            c.name.as_str().into(),
            Cell::alarm(if c.ok { "ok" } else { "FAILED" }, !c.ok),
            c.detail.as_str().into(),
        ]);
    }
    t
}

/// A restore drill's per-table comparison with the source.
pub fn tables(x: &RestoreResult) -> Table {
    let mut t = Table::new(
        &[
            ("Table", false),
            ("Source rows", true),
            ("Restored rows", true),
            ("Checksum", false),
            ("Differences", false),
        ],
        "No table was compared.",
    );
    let rows = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    for tr in &x.tables {
        t.row(vec![
            tr.table.as_str().into(),
            rows(tr.source_rows).into(),
            rows(tr.restored_rows).into(),
            Cell::alarm(if tr.matches { "match" } else { "DIFFERS" }, !tr.matches),
            tr.differences.join("; ").into(),
        ]);
    }
    t
}

fn failover_measurements(r: &Report) -> Vec<(&'static str, String)> {
    let m = &r.measurements;
    let mut out = vec![
        ("RTO (write)", show_ms(m.rto_ms)),
        ("RTO (read)", show_ms(m.read_rto_ms)),
        (
            "First success after the fault",
            show_ms(m.time_to_first_success_ms),
        ),
        ("RPO", show_ms(m.rpo_ms)),
        ("Acknowledged writes", m.acknowledged_writes.to_string()),
        (
            "Lost writes",
            m.lost_writes
                .map(|l| l.to_string())
                .unwrap_or_else(|| "not checked".into()),
        ),
        ("In-doubt writes", m.in_doubt_writes.to_string()),
        (
            "Integrity failures",
            m.integrity_failures
                .map(|l| l.to_string())
                .unwrap_or_else(|| "not checked".into()),
        ),
        (
            "Availability after the fault",
            m.availability_pct
                .map(|a| format!("{a:.2}% of write probes"))
                .unwrap_or_else(|| "not measured".into()),
        ),
    ];
    if let Some(w) = &m.writer {
        let show = |s: &Option<firedrill_model::report::Server>| match s {
            Some(s) => format!(
                "{}{}",
                s.at,
                s.timeline
                    .map(|t| format!(" (timeline {t})"))
                    .unwrap_or_default()
            ),
            None => "not seen".into(),
        };
        out.push((
            "Writer (before -> after)",
            format!(
                "{} -> {}{}",
                show(&w.before),
                show(&w.after),
                if w.restarted_in_place() {
                    ", restarted in place"
                } else {
                    ""
                }
            ),
        ));
    }
    out.push((
        "RTO counted from",
        match m.rto_from {
            Some(RtoFrom::Fault) => "the fault's start".into(),
            Some(RtoFrom::Marker) => format!(
                "the moment the fault command printed FIREDRILL_EFFECT (t={}; the command ran \
                 from t={} to t={})",
                m.fault_at_ms
                    .map(|t| format!("{t:.1} ms"))
                    .unwrap_or_default(),
                m.fault_started_ms
                    .map(|t| format!("{t:.1} ms"))
                    .unwrap_or_default(),
                m.fault_done_ms
                    .map(|t| format!("{t:.1} ms"))
                    .unwrap_or_default()
            ),
            Some(RtoFrom::FirstFailure) => format!(
                "the first failed write probe (the fault's effect; its action ran from t={} to \
                 t={})",
                m.fault_at_ms
                    .map(|t| format!("{t:.1} ms"))
                    .unwrap_or_default(),
                m.fault_done_ms
                    .map(|t| format!("{t:.1} ms"))
                    .unwrap_or_default()
            ),
            None => "the fault's start".into(),
        },
    ));
    if m.rto_from.is_some() {
        out.push((
            "Write outage (first failure to recovery)",
            match m.write_outage_ms {
                Some(o) => format!("{o:.1} ms"),
                None => "none, or not recovered".into(),
            },
        ));
    }
    let l = &m.latency;
    out.push((
        "Write probe latency",
        format!(
            "steady p50 {:.2} / p99 {:.2} ms; after the fault p50 {:.2} / p99 {:.2} / max {:.2} ms",
            l.steady.write_probe.p50_ms,
            l.steady.write_probe.p99_ms,
            l.after_fault.write_probe.p50_ms,
            l.after_fault.write_probe.p99_ms,
            l.after_fault.write_probe.max_ms
        ),
    ));
    if !m.lost_examples.is_empty() {
        out.push(("Lost writes (first)", m.lost_examples.join(", ")));
    }
    if let Some(sb) = &m.split_brain {
        out.extend(network::split_brain_facts(sb));
    }
    out
}

/// A Patroni cluster's move, label and value: leader before and after, the member the fault
/// hit, the timers, and the expected RTO beside the measured one.
pub fn patroni_facts(r: &Report, p: &PatroniView) -> Vec<(&'static str, String)> {
    let name = |n: &Option<String>| n.clone().unwrap_or_else(|| "none".into());
    let mut out = vec![
        (
            "Leader",
            format!("{} -> {}", name(&p.leader_before), name(&p.leader_after)),
        ),
        ("Fault hit", name(&p.fault_member)),
    ];
    if let Some(v) = &p.version {
        out.push(("Patroni", v.clone()));
    }
    let timer = |k: &str| {
        p.dcs
            .get(k)
            .map(|v| format!("{k} {v}"))
            .unwrap_or_else(|| format!("{k} default"))
    };
    out.push((
        "DCS settings",
        [
            "ttl",
            "loop_wait",
            "retry_timeout",
            "synchronous_mode",
            "failsafe_mode",
            "maximum_lag_on_failover",
        ]
        .iter()
        .map(|k| timer(k))
        .collect::<Vec<_>>()
        .join(", "),
    ));
    if let Some(e) = &p.expected_rto {
        out.push((
            "Expected RTO",
            format!(
                "{:.1} s to {:.1} s: {}; measured {} ({})",
                e.min_ms / 1000.0,
                e.max_ms / 1000.0,
                e.model,
                show_ms(r.measurements.rto_ms),
                match p.rto_inside_expected {
                    Some(true) => "inside",
                    Some(false) => "OUTSIDE",
                    None => "not compared",
                }
            ),
        ));
    }
    for h in &p.history {
        out.push((
            "Timeline switch",
            format!(
                "timeline {} ended at LSN {} ({}){}{}",
                h.timeline,
                h.lsn,
                h.reason,
                h.new_leader
                    .as_deref()
                    .map(|l| format!("; new leader {l}"))
                    .unwrap_or_default(),
                h.at.as_deref()
                    .map(|a| format!(" at {a}"))
                    .unwrap_or_default()
            ),
        ));
    }
    out
}

/// Each Patroni member before the fault and after the observation.
pub fn patroni_members(p: &PatroniView) -> Table {
    let mut t = Table::new(
        &[
            ("Member", false),
            ("Role before", false),
            ("Role after", false),
            ("State after", false),
            ("Timeline", false),
            ("Lag after (bytes)", true),
        ],
        "No member was read.",
    );
    let mut names: Vec<&str> = p.before.iter().map(|m| m.name.as_str()).collect();
    for m in &p.after {
        if !names.contains(&m.name.as_str()) {
            names.push(&m.name);
        }
    }
    for n in names {
        let b = p.before.iter().find(|m| m.name == n);
        let a = p.after.iter().find(|m| m.name == n);
        let tl = |m: Option<&firedrill_model::cluster::MemberState>| {
            m.and_then(|m| m.timeline)
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into())
        };
        t.row(vec![
            n.into(),
            b.map(|m| m.role.clone())
                .unwrap_or_else(|| "-".into())
                .into(),
            a.map(|m| m.role.clone())
                .unwrap_or_else(|| "gone".into())
                .into(),
            a.map(|m| m.state.clone())
                .unwrap_or_else(|| "-".into())
                .into(),
            format!("{} -> {}", tl(b), tl(a)).into(),
            a.and_then(|m| m.lag_bytes)
                .map(|l| l.to_string())
                .unwrap_or_else(|| "-".into())
                .into(),
        ]);
    }
    t
}

/// Each target: its limit, what was achieved, met or missed.
pub fn targets(r: &Report) -> Table {
    let mut t = Table::new(
        &[
            ("Target", false),
            ("Limit", true),
            ("Achieved", true),
            ("Result", false),
        ],
        "No targets were set.",
    );
    for x in &r.targets {
        t.row(vec![
            x.name.as_str().into(),
            format!("{} {}", x.relation(), x.show_limit()).into(),
            x.show_achieved().into(),
            Cell::alarm(if x.met { "met" } else { "MISSED" }, !x.met),
        ]);
    }
    t
}

/// Write outages, each with its length.
pub fn outages(r: &Report) -> Table {
    let mut t = Table::new(
        &[
            ("From (ms)", true),
            ("Length", true),
            ("Failed probes", true),
        ],
        "No write outage.",
    );
    for w in &r.measurements.write_outages {
        t.row(vec![
            format!("{:.1}", w.start_ms).into(),
            Cell::alarm(
                w.duration_ms
                    .map(|d| format!("{d:.1} ms"))
                    .unwrap_or_else(|| "not recovered".into()),
                w.duration_ms.is_none(),
            ),
            w.failed_probes.to_string().into(),
        ]);
    }
    t
}

/// The drill's events, in order.
pub fn events(r: &Report) -> Table {
    let mut t = Table::new(
        &[("t (ms)", true), ("Event", false), ("Detail", false)],
        "No events were recorded.",
    );
    for e in &r.timeline {
        t.row(vec![
            format!("{:.1}", e.t_ms).into(),
            e.kind.as_str().into(),
            e.detail.as_str().into(),
        ]);
    }
    t
}

/// The SOC 2 criteria the report evidences.
pub fn controls(r: &Report) -> Table {
    let mut t = Table::new(
        &[
            ("Criterion", false),
            ("Says", false),
            ("This report shows", false),
        ],
        "The scenario names no criteria.",
    );
    for c in &r.controls {
        t.row(vec![
            c.id.as_str().into(),
            c.criterion.as_str().into(),
            c.evidence.as_str().into(),
        ]);
    }
    t
}
