//! A drill on a sandbox with zones, as the views show it: the servers that took writes and
//! when (a lane each in the picture, the time two took writes at once in red), the interval
//! the network fault held, and the split-brain figures. Pure: a report in, text out.

use std::fmt::Write;

use firedrill_model::report::Report;
use firedrill_model::split::SplitBrain;

use super::escape_xml;

const LANE_H: f64 = 16.0;

/// The band's height: a lane per server and one for the network fault; 0 when the report
/// has neither a network fault nor two servers to show.
pub fn height(r: &Report) -> f64 {
    if !shown(r) {
        return 0.0;
    }
    let servers = r
        .measurements
        .split_brain
        .as_ref()
        .map_or(0, |s| s.servers.len());
    16.0 + LANE_H * (servers + 1) as f64 + 8.0
}

fn shown(r: &Report) -> bool {
    r.timeline.iter().any(|e| e.kind == "network")
        || r.measurements
            .split_brain
            .as_ref()
            .is_some_and(|s| s.servers.len() > 1)
}

/// The band at `y`: the network fault's interval, then each server's writes.
pub fn band(o: &mut String, r: &Report, x: &dyn Fn(f64) -> f64, y: f64, end_ms: f64) {
    if !shown(r) {
        return;
    }
    let _ = writeln!(o, r#"<g id="network">"#);
    let mut row = y + 8.0;
    let _ = writeln!(o, r#"<text x="4" y="{:.1}">network</text>"#, row + 11.0);
    // From the fault to its end (links up, rules deleted), else to the end of the picture.
    if let Some(fault) = r.timeline.iter().find(|e| e.kind == "fault-injected") {
        let end = r
            .timeline
            .iter()
            .find(|e| e.kind == "fault-ended" && e.t_ms >= fault.t_ms)
            .map_or(end_ms, |e| e.t_ms);
        let (x0, x1) = (x(fault.t_ms), x(end));
        let _ = writeln!(
            o,
            r##"<rect class="network-fault" x="{x0:.1}" y="{row:.1}" width="{:.1}" height="{:.1}" fill="#8c564b"><title>{} ({:.3} s to {:.3} s)</title></rect>"##,
            (x1 - x0).max(2.0),
            LANE_H - 2.0,
            escape_xml(&fault.detail),
            fault.t_ms / 1e3,
            end / 1e3
        );
    }
    row += LANE_H;
    if let Some(sb) = &r.measurements.split_brain {
        for s in &sb.servers {
            let (x0, x1) = (x(s.first_ms), x(s.last_ms));
            let survived = sb.survivor.as_deref() == Some(s.server.as_str());
            let _ = writeln!(
                o,
                r##"<text x="4" y="{:.1}">{}</text><rect class="server-writes" x="{x0:.1}" y="{row:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} acknowledged {} writes from {:.3} s to {:.3} s{}</title></rect>"##,
                row + 11.0,
                escape_xml(&s.server),
                (x1 - x0).max(2.0),
                LANE_H - 2.0,
                if survived { "#2ca02c" } else { "#7f7f7f" },
                escape_xml(&s.server),
                s.acknowledged,
                s.first_ms / 1e3,
                s.last_ms / 1e3,
                if survived { " (survived)" } else { "" }
            );
            row += LANE_H;
        }
        // Where two servers took writes at once, across their lanes.
        for (a, i) in sb.servers.iter().zip(1..) {
            for b in &sb.servers[i..] {
                let (from, to) = (a.first_ms.max(b.first_ms), a.last_ms.min(b.last_ms));
                if to > from {
                    let _ = writeln!(
                        o,
                        r##"<rect class="split-brain" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#d62728" fill-opacity="0.45"><title>split brain: {} and {} both took writes for {:.0} ms</title></rect>"##,
                        x(from),
                        y + 8.0 + LANE_H,
                        (x(to) - x(from)).max(2.0),
                        LANE_H * sb.servers.len() as f64,
                        escape_xml(&a.server),
                        escape_xml(&b.server),
                        to - from
                    );
                }
            }
        }
    }
    let _ = writeln!(o, "</g>");
}

/// The split-brain figures, label and value, for the summary tables.
pub fn split_brain_facts(sb: &SplitBrain) -> Vec<(&'static str, String)> {
    let servers = sb
        .servers
        .iter()
        .map(|s| {
            format!(
                "{} {:.1}-{:.1} s ({} writes)",
                s.server,
                s.first_ms / 1e3,
                s.last_ms / 1e3,
                s.acknowledged
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    vec![
        ("Servers that took writes", servers),
        (
            "Split brain (two servers taking writes)",
            format!("{:.1} ms", sb.window_ms),
        ),
        (
            "Lost to divergence / to replication lag",
            format!(
                "{} / {} (survivor: {})",
                sb.diverged_writes,
                sb.lag_lost_writes,
                sb.survivor.as_deref().unwrap_or("not known")
            ),
        ),
    ]
}
