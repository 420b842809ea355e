//! The views of a report: Markdown, HTML (rendered by a real browser), JUnit, Prometheus.
//! Input is a committed report of a real drill (tests/fixtures/report-pass.json), so the
//! snapshots only change when the rendering does.

use std::process::Command;

use firedrill::render;
use firedrill::report::{Report, Verdict};

use crate::repo;

fn fixture() -> Report {
    serde_json::from_slice(&std::fs::read(repo("tests/fixtures/report-pass.json")).unwrap())
        .unwrap()
}

/// The same drill, but its RTO missed the target and it was then aborted.
fn failed_fixture() -> Report {
    let mut r = fixture();
    r.measurements.rto_ms = Some(2500.0);
    let rto = r.targets.iter_mut().find(|t| t.name == "rto").unwrap();
    rto.achieved = Some(2500.0);
    rto.met = false;
    r.verdict = Verdict::Fail;
    r
}

/// Tags with their id or class, in document order: the page's structure without its figures.
fn outline(html: &str) -> String {
    let mut out = String::new();
    for piece in html.split('<').skip(1) {
        let tag: String = piece
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
            .collect();
        if !matches!(
            tag.as_str(),
            "html" | "body" | "section" | "h1" | "h2" | "table" | "figure" | "svg" | "g" | "pre"
        ) {
            continue;
        }
        let attr = |name: &str| {
            piece
                .split_once(&format!(" {name}=\""))
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(v, _)| format!(" {name}={v}"))
                .unwrap_or_default()
        };
        out.push_str(&format!("<{tag}{}{}>\n", attr("id"), attr("class")));
    }
    out
}

#[test]
fn markdown_junit_and_prometheus_snapshots() {
    let r = fixture();
    insta::assert_snapshot!("report-md", render::markdown::render(&r));
    insta::assert_snapshot!("junit-pass", render::junit::render(&r));
    insta::assert_snapshot!("junit-fail", render::junit::render(&failed_fixture()));
    insta::assert_snapshot!("metrics-prom", render::prometheus::render(&r));
}

#[test]
fn junit_is_well_formed_xml_with_one_case_per_target() {
    for (r, failures) in [(fixture(), 0), (failed_fixture(), 1)] {
        let xml = render::junit::render(&r);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let cases: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), r.targets.len());
        let failed: Vec<&str> = cases
            .iter()
            .filter(|c| c.children().any(|x| x.has_tag_name("failure")))
            .map(|c| c.attribute("name").unwrap())
            .collect();
        assert_eq!(failed.len(), failures);
        if failures == 1 {
            assert_eq!(failed, ["rto"]);
        }
    }
}

#[test]
fn prometheus_lines_follow_the_text_format() {
    let text = render::prometheus::render(&fixture());
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(kind, "gauge");
            assert!(typed.insert(name.to_owned()), "{name} typed twice");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        // name{labels} value
        let (name, rest) = line.split_once('{').expect(line);
        assert!(typed.contains(name), "{name} has no TYPE line before it");
        let (_, value) = rest.rsplit_once("} ").expect(line);
        value.parse::<f64>().expect(line);
    }
    assert!(text.contains(
        "firedrill_rto_seconds{scenario=\"sandbox-failover-sync\",drill=\"failover\"} 0.616022\n"
    ));
    assert!(text.contains("firedrill_verdict{scenario=\"sandbox-failover-sync\",drill=\"failover\",verdict=\"pass\"} 1\n"));
}

#[test]
fn html_is_self_contained_and_its_structure_is_stable() {
    let html = render::html::render(&fixture());
    // Nothing fetched from anywhere: no scripts, no links, no external URLs.
    for forbidden in ["<script", "<link", "src=", "http://", "https://", "url("] {
        let allowed_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!allowed_ns.contains(forbidden), "HTML contains {forbidden}");
    }
    let svg_start = html.find("<svg").unwrap();
    let svg_end = html.find("</svg>").unwrap() + "</svg>".len();
    let svg = roxmltree::Document::parse(&html[svg_start..svg_end]).expect("the SVG is XML");
    let failed_bins = svg
        .descendants()
        .filter(|n| n.attribute("class") == Some("failed"))
        .count();
    assert!(failed_bins > 0, "the outage shows as failed probe bins");
    assert!(
        svg.descendants()
            .any(|n| n.attribute("class") == Some("fault-injected")),
        "the fault is marked"
    );
    insta::assert_snapshot!("report-html-outline", outline(&html));
}

/// Debian's chromium, headless, as CI runs it (root: --no-sandbox; closed network: no
/// background fetches), on `html` with `extra` arguments; its stdout.
pub(crate) fn chromium(
    html: &std::path::Path,
    profile: &std::path::Path,
    extra: &[&str],
) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium is installed (.ci/setup installs Debian's chromium)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screenshot(html: &std::path::Path, png: &std::path::Path, profile: &std::path::Path) {
    chromium(html, profile, &[&format!("--screenshot={}", png.display())]);
}

#[test]
fn html_report_renders_in_headless_chromium() {
    // Chromium takes both cores for a moment: not while a drill measures time.
    let _x = crate::shared();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    std::fs::write(&html, render::html::render(&fixture())).unwrap();
    let png = dir.path().join("report.png");
    screenshot(&html, &png, &dir.path().join("profile"));

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1100, 900));
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()].chunks(channels);
    // The timeline's colours are on the page: green successes, red failures (the outage).
    let (mut green, mut red) = (0, 0);
    for p in pixels {
        match (p[0], p[1], p[2]) {
            (0x2c, 0xa0, 0x2c) => green += 1,
            (0xd6, 0x27, 0x28) => red += 1,
            _ => {}
        }
    }
    assert!(
        green > 5_000,
        "{green} green pixels: the probe lanes did not render"
    );
    assert!(
        red > 500,
        "{red} red pixels: the failed probes did not render"
    );
}
