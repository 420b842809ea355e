//! The timeline picture: one inline SVG, no scripts or external assets, drawn from the report
//! alone. From top to bottom: drill phases, the RTO against its target, write and read probe
//! outcomes per bin, probe latency on a log scale, with the fault, recovery actions and outage
//! windows marked across all lanes.

use std::fmt::Write;

use super::escape_xml;
use firedrill_model::measure::Bin;
use firedrill_model::report::Report;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 110.0;
const RIGHT: f64 = 20.0;
const PLOT: f64 = WIDTH - LEFT - RIGHT;

const PHASES_Y: f64 = 24.0;
const RTO_Y: f64 = 70.0;
const WRITE_Y: f64 = 88.0;
const READ_Y: f64 = 140.0;
const LANE_H: f64 = 40.0;
const LAT_Y: f64 = 196.0;
const LAT_H: f64 = 110.0;
const AXIS_Y: f64 = LAT_Y + LAT_H + 4.0;
const HEIGHT: f64 = AXIS_Y + 44.0;

/// Latency scale: 0.1 ms to 10 s, log10.
const LAT_MIN_LOG: f64 = -1.0;
const LAT_MAX_LOG: f64 = 4.0;

struct Scale {
    end_ms: f64,
}

impl Scale {
    fn x(&self, t_ms: f64) -> f64 {
        LEFT + PLOT * (t_ms / self.end_ms).clamp(0.0, 1.0)
    }
}

fn lat_y(ms: f64) -> f64 {
    let l = ms.max(1e-3).log10().clamp(LAT_MIN_LOG, LAT_MAX_LOG);
    LAT_Y + LAT_H * (1.0 - (l - LAT_MIN_LOG) / (LAT_MAX_LOG - LAT_MIN_LOG))
}

fn phase_colour(label: &str) -> &'static str {
    match label {
        "setup" => "#d9d9d9",
        "steady state" => "#b7d7f0",
        "fault and recovery" => "#f6c7b6",
        "verify" => "#c9e7c1",
        "backup" => "#f3e3b5",
        "restore" => "#e8dcf2",
        "teardown" => "#e5e5e5",
        _ => "#eeeeee",
    }
}

/// A tick step of 1, 2 or 5 times a power of ten giving at most about ten ticks.
fn tick_step(end_ms: f64) -> f64 {
    let raw = end_ms / 10.0;
    let pow = 10f64.powf(raw.max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow)
}

pub fn render(r: &Report) -> String {
    let series = r.series.as_ref();
    let series_end = series
        .map(|s| s.bin_ms * s.write.len().max(s.read.len()) as f64)
        .unwrap_or(0.0);
    let timeline_end = r.timeline.iter().map(|e| e.t_ms).fold(0.0, f64::max);
    let sc = Scale {
        end_ms: series_end.max(timeline_end).max(1.0),
    };
    let mut o = String::new();
    // A game day's steps get a band under the axis.
    let steps_h = if r.measurements.steps.is_empty() {
        0.0
    } else {
        super::steps::BAND_H
    };
    // A drill on zones gets a band for the network fault and the servers that took writes.
    let height = HEIGHT + steps_h + super::network::height(r);
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" id="timeline" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" shape-rendering="crispEdges" font-family="sans-serif" font-size="11" role="img" aria-label="drill timeline">"#
    );
    let _ = writeln!(
        o,
        r#"<title>Timeline of {}: probes, latency, fault and recovery</title>"#,
        escape_xml(&r.scenario.name)
    );

    // Phases: each runs until the next one starts.
    let _ = writeln!(o, r#"<g id="phases">"#);
    let phases: Vec<_> = r.timeline.iter().filter(|e| e.kind == "phase").collect();
    for (i, p) in phases.iter().enumerate() {
        let end = phases.get(i + 1).map(|n| n.t_ms).unwrap_or(sc.end_ms);
        let (x0, x1) = (sc.x(p.t_ms), sc.x(end));
        let _ = writeln!(
            o,
            r#"<rect x="{x0:.1}" y="{PHASES_Y}" width="{:.1}" height="18" fill="{}"><title>{} from {:.1} ms</title></rect>"#,
            (x1 - x0).max(0.5),
            phase_colour(&p.detail),
            escape_xml(&p.detail),
            p.t_ms
        );
        if x1 - x0 > 60.0 {
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{}">{}</text>"#,
                x0 + 3.0,
                PHASES_Y + 13.0,
                escape_xml(&p.detail)
            );
        }
    }
    let _ = writeln!(o, r#"<text x="4" y="{}">phase</text></g>"#, PHASES_Y + 13.0);

    // Outage windows behind the lanes.
    let _ = writeln!(o, r#"<g id="outages">"#);
    for w in &r.measurements.write_outages {
        let end = w.end_ms.unwrap_or(sc.end_ms);
        let (x0, x1) = (sc.x(w.start_ms), sc.x(end));
        let _ = writeln!(
            o,
            r##"<rect x="{x0:.1}" y="{WRITE_Y}" width="{:.1}" height="{:.1}" fill="#d62728" fill-opacity="0.12"><title>write outage from {:.1} ms, {}</title></rect>"##,
            (x1 - x0).max(1.0),
            LAT_Y + LAT_H - WRITE_Y,
            w.start_ms,
            w.duration_ms
                .map(|d| format!("{d:.1} ms"))
                .unwrap_or_else(|| "not recovered".into())
        );
    }
    let _ = writeln!(o, "</g>");

    if let Some(s) = series {
        lane(
            &mut o,
            "write-probe",
            "write probe",
            WRITE_Y,
            &s.write,
            s.bin_ms,
            &sc,
        );
        lane(
            &mut o,
            "read-probe",
            "read probe",
            READ_Y,
            &s.read,
            s.bin_ms,
            &sc,
        );
        latency(&mut o, s, &sc);
    } else {
        let _ = writeln!(
            o,
            r#"<text id="no-probes" x="{LEFT}" y="{}">no probe data in this report</text>"#,
            WRITE_Y + 20.0
        );
    }

    markers(&mut o, r, &sc);
    rto(&mut o, r, &sc);
    axis(&mut o, &sc);
    if !r.measurements.steps.is_empty() {
        super::steps::band(&mut o, r, &|t| sc.x(t), HEIGHT, sc.end_ms);
    }
    super::network::band(&mut o, r, &|t| sc.x(t), HEIGHT + steps_h, sc.end_ms);
    let _ = writeln!(o, "</svg>");
    o
}

/// Per bin: green for successful probes, red for failed ones, stacked to the lane's height.
fn lane(o: &mut String, id: &str, label: &str, y: f64, bins: &[Bin], bin_ms: f64, sc: &Scale) {
    let _ = writeln!(o, r#"<g id="{id}">"#);
    let _ = writeln!(
        o,
        r##"<rect x="{LEFT}" y="{y}" width="{PLOT}" height="{LANE_H}" fill="#fafafa" stroke="#ccc"/>"##
    );
    for (i, b) in bins.iter().enumerate() {
        let total = b.ok + b.failed;
        if total == 0 {
            continue;
        }
        let x0 = sc.x(i as f64 * bin_ms);
        let w = (sc.x((i + 1) as f64 * bin_ms) - x0).max(0.5);
        let ok_h = LANE_H * f64::from(b.ok) / f64::from(total);
        if b.ok > 0 {
            let _ = writeln!(
                o,
                r##"<rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{ok_h:.1}" fill="#2ca02c"/>"##,
                y + LANE_H - ok_h
            );
        }
        if b.failed > 0 {
            let _ = writeln!(
                o,
                r##"<rect class="failed" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="#d62728"/>"##,
                LANE_H - ok_h
            );
        }
    }
    let _ = writeln!(o, r#"<text x="4" y="{:.1}">{label}</text></g>"#, y + 24.0);
}

/// The slowest successful probe per bin, write and read, on a log scale.
fn latency(o: &mut String, s: &firedrill_model::measure::ProbeSeries, sc: &Scale) {
    let _ = writeln!(o, r#"<g id="latency">"#);
    let _ = writeln!(
        o,
        r##"<rect x="{LEFT}" y="{LAT_Y}" width="{PLOT}" height="{LAT_H}" fill="none" stroke="#ccc"/>"##
    );
    for (ms, label) in [
        (1.0, "1 ms"),
        (10.0, "10 ms"),
        (100.0, "100 ms"),
        (1000.0, "1 s"),
    ] {
        let y = lat_y(ms);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#777">{label}</text>"##,
            LEFT + PLOT,
            LEFT - 4.0,
            y + 4.0
        );
    }
    for (bins, colour, name) in [(&s.write, "#1f77b4", "write"), (&s.read, "#9467bd", "read")] {
        let points: Vec<String> = bins
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let ms = b.max_ms?;
                Some(format!(
                    "{:.1},{:.1}",
                    sc.x((i as f64 + 0.5) * s.bin_ms),
                    lat_y(ms)
                ))
            })
            .collect();
        if !points.is_empty() {
            let _ = writeln!(
                o,
                r#"<polyline class="{name}" fill="none" stroke="{colour}" stroke-width="1.2" points="{}"/>"#,
                points.join(" ")
            );
        }
    }
    let _ = writeln!(
        o,
        r##"<text x="4" y="{:.1}">max latency</text><text x="4" y="{:.1}" fill="#1f77b4">write</text><text x="40" y="{:.1}" fill="#9467bd">read</text></g>"##,
        LAT_Y + 20.0,
        LAT_Y + 34.0,
        LAT_Y + 34.0
    );
}

/// Vertical markers for the fault, its end and recovery actions.
fn markers(o: &mut String, r: &Report, sc: &Scale) {
    let _ = writeln!(o, r#"<g id="markers">"#);
    let mut n = 0;
    for e in &r.timeline {
        let (colour, dash, label) = match e.kind.as_str() {
            "fault-injected" => ("#d62728", "", "fault"),
            "fault-ended" => ("#ff7f0e", "4 3", "fault ended"),
            "recovery-action" => ("#1f77b4", "4 3", "recovery"),
            "recovery-failed" => ("#d62728", "2 2", "recovery failed"),
            "aborted" => ("#000000", "2 2", "aborted"),
            _ => continue,
        };
        let x = sc.x(e.t_ms);
        // Alternate label rows: a fault and its recovery are often a few pixels apart.
        let label_y = PHASES_Y + 30.0 + 10.0 * f64::from(n % 2);
        n += 1;
        let _ = writeln!(
            o,
            r#"<line class="{}" x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"><title>{:.1} ms: {}</title></line><text x="{:.1}" y="{}" fill="{colour}">{label}</text>"#,
            e.kind,
            PHASES_Y + 20.0,
            LAT_Y + LAT_H,
            e.t_ms,
            escape_xml(&e.detail),
            x + 2.0,
            label_y
        );
    }
    let _ = writeln!(o, "</g>");
}

/// The achieved RTO as a bracket from the fault, against the target when one was set.
fn rto(o: &mut String, r: &Report, sc: &Scale) {
    let (Some(fault), Some(rto)) = (r.measurements.fault_at_ms, r.measurements.rto_ms) else {
        return;
    };
    let target = r.targets.iter().find(|t| t.name == "rto");
    let colour = match target {
        Some(t) if !t.met => "#d62728",
        _ => "#2ca02c",
    };
    let (x0, x1) = (sc.x(fault), sc.x(fault + rto));
    let mut label_x = x1.max(x0 + 1.0) + 4.0;
    let _ = writeln!(o, r#"<g id="rto">"#);
    if let Some(t) = target {
        let xt = sc.x(fault + t.limit);
        label_x = label_x.max(xt + 4.0);
        let _ = writeln!(
            o,
            r##"<line x1="{xt:.1}" x2="{xt:.1}" y1="{:.1}" y2="{:.1}" stroke="#555" stroke-dasharray="3 2"><title>RTO target {}</title></line>"##,
            RTO_Y - 8.0,
            RTO_Y + 4.0,
            t.show(t.limit)
        );
    }
    let _ = writeln!(
        o,
        r#"<line x1="{x0:.1}" x2="{:.1}" y1="{RTO_Y}" y2="{RTO_Y}" stroke="{colour}" stroke-width="3"/><text x="{label_x:.1}" y="{:.1}" fill="{colour}">RTO {rto:.1} ms{}</text></g>"#,
        x1.max(x0 + 1.0),
        RTO_Y + 4.0,
        target
            .map(|t| escape_xml(&format!(" (target {} {})", t.relation(), t.show(t.limit))))
            .unwrap_or_default()
    );
}

fn axis(o: &mut String, sc: &Scale) {
    let step = tick_step(sc.end_ms);
    let _ = writeln!(o, r#"<g id="axis">"#);
    let _ = writeln!(
        o,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{AXIS_Y}" y2="{AXIS_Y}" stroke="#333"/>"##,
        LEFT + PLOT
    );
    let mut t = 0.0;
    while t <= sc.end_ms + 1e-9 {
        let x = sc.x(t);
        let label = if step >= 1000.0 {
            format!("{} s", t / 1000.0)
        } else {
            format!("{t} ms")
        };
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{AXIS_Y}" y2="{:.1}" stroke="#333"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            AXIS_Y + 4.0,
            AXIS_Y + 16.0
        );
        t += step;
    }
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time since the drill started</text></g>"#,
        LEFT + PLOT / 2.0,
        AXIS_Y + 34.0
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(super::tick_step(15_000.0), 2000.0);
        assert_eq!(super::tick_step(900.0), 100.0);
        assert_eq!(super::tick_step(100_000.0), 10_000.0);
    }
}
