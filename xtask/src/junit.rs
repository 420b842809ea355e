//! What a run's JUnit XML says: counts and the slowest tests. nextest writes the file for CI;
//! the same file gives the closing summary, so the figures printed are the ones CI keeps.

use std::time::Duration;

/// One test case as the report has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// `binary-id test-name`, as nextest prints it.
    pub name: String,
    pub time: Duration,
    pub failed: bool,
}

/// Every test case in a JUnit document.
pub fn cases(xml: &str) -> Result<Vec<Case>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not JUnit XML: {e}"))?;
    let mut out = Vec::new();
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let name = case.attribute("name").unwrap_or_default();
        let class = case.attribute("classname").unwrap_or_default();
        let time = case
            .attribute("time")
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or_default();
        // A retried test that passed at last has `flakyFailure` children, not `failure`.
        let failed = case
            .children()
            .any(|c| c.has_tag_name("failure") || c.has_tag_name("error"));
        out.push(Case {
            name: format!("{class} {name}"),
            time,
            failed,
        });
    }
    Ok(out)
}

/// The `n` slowest cases, slowest first.
pub fn slowest(cases: &[Case], n: usize) -> Vec<&Case> {
    let mut sorted: Vec<&Case> = cases.iter().collect();
    sorted.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
    sorted.truncate(n);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="1" errors="0">
  <testsuite name="firedrill::it" tests="3" failures="1">
    <testcase name="zones::outage" classname="firedrill::it" time="12.5"/>
    <testcase name="cli::hangs" classname="firedrill::it" time="180.0">
      <failure type="test timeout">timed out</failure>
    </testcase>
    <testcase name="layout::no_circles" classname="firedrill::it" time="0.25">
      <flakyFailure type="test failure">once</flakyFailure>
    </testcase>
  </testsuite>
</testsuites>"#;

    #[test]
    fn counts_failures_and_orders_by_time() {
        let cases = cases(XML).unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases.iter().filter(|c| c.failed).count(), 1);
        let slow = slowest(&cases, 2);
        assert_eq!(slow[0].name, "firedrill::it cli::hangs");
        assert_eq!(slow[0].time, Duration::from_secs(180));
        assert_eq!(slow[1].name, "firedrill::it zones::outage");
    }

    #[test]
    fn refuses_what_is_not_xml() {
        assert!(cases("not xml <").is_err());
    }
}
