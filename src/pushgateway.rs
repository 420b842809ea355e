//! `--pushgateway URL`: the metrics `--textfile` writes, pushed to a Prometheus Pushgateway, the
//! convention for batch jobs that end before a scrape. Each report is its own group
//! (`job="firedrill"`, its `scenario`, and a fleet member's `instance`), pushed with PUT so the
//! group holds the last drill's figures only, as the textfile does.
//!
//! Boundary: the HTTP push; the metrics themselves are `render::prometheus`'s.

use std::time::Duration;

use crate::render;
use crate::report::Report;

/// Pushes every report's metrics; the number of groups pushed, or the first failure.
pub async fn push_all(url: &str, reports: &[Report]) -> Result<usize, String> {
    let base = reqwest::Url::parse(url).map_err(|e| format!("--pushgateway {url:?}: {e}"))?;
    // Credentials in the URL are used, never shown.
    let mut shown = base.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("pushgateway client: {e}"))?;
    for r in reports {
        let mut group = format!("metrics/job/firedrill/scenario/{}", r.scenario.name);
        if let Some(f) = &r.fleet {
            group.push_str(&format!("/instance/{}", f.instance));
        }
        let target = base
            .join(&group)
            .map_err(|e| format!("--pushgateway {shown}: {e}"))?;
        let answer = client
            .put(target)
            .header("Content-Type", "text/plain; version=0.0.4")
            .body(render::prometheus::render(r))
            .send()
            .await
            .map_err(|e| format!("pushgateway {shown}: {}", e.without_url()))?;
        let status = answer.status();
        if !status.is_success() {
            let text = answer.text().await.unwrap_or_default();
            return Err(format!(
                "pushgateway {shown}{group}: HTTP {status}: {}",
                text.trim()
            ));
        }
    }
    Ok(reports.len())
}
