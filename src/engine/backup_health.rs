//! The backup-health drill: a read-only look at AWS Backup. Per resource, the age of its newest
//! completed recovery point (the RPO exposure if the resource were lost now, against
//! `targets.rpo`), and the backup jobs of a window that failed, or that are missing (a span
//! longer than the plan's interval without a completed job).
//!
//! Boundary: reading and judging; nothing is created or changed, so there is nothing to undo.
//! The calls are `firedrill-aws`'s.

use std::time::{Duration, SystemTime};

use firedrill_aws::{Aws, AwsError, Options};
use tokio::sync::watch;

use super::{Ran, RunError};
use crate::error::EnvError;
use crate::event::{Event, EventSink, Phase};
use crate::measure::ms;
use crate::report::{BackupHealthResult, Measurements, ResourceHealth};
use crate::scenario::{AwsBackupSpec, BackupHealth};
use crate::systems::aws_rds::aws_err;

/// Job states that mean a backup did not happen.
const FAILED_STATES: &[&str] = &["FAILED", "ABORTED", "EXPIRED", "PARTIAL"];

pub async fn run<'a>(
    spec: &AwsBackupSpec,
    h: &BackupHealth,
    sink: &EventSink<'_>,
    mut cancel: watch::Receiver<bool>,
) -> Result<Ran<'a>, RunError> {
    sink.emit(Event::Phase(Phase::Setup));
    let aws = Aws::connect(&Options {
        region: spec.region.clone(),
        profile: spec.profile.clone(),
        endpoint_url: spec.endpoint_url.clone(),
        max_attempts: None,
    })
    .await;
    let resources = spec.resources.clone();
    let now = SystemTime::now();
    let result = tokio::select! {
        r = read(&aws, &resources, h, now) => r?,
        _ = cancel.wait_for(|c| *c) => return Err(RunError::AbortedInSetup),
    };
    let description = format!(
        "AWS Backup in {}: {} resource(s), jobs since {}",
        aws.region,
        result.resources.len(),
        result.window_start
    );
    sink.emit(Event::Setup(description.clone()));
    sink.emit(Event::Phase(Phase::Verify));
    for r in &result.resources {
        let name = r.resource.rsplit(':').next().unwrap_or(&r.resource);
        let summary = format!(
            "{name}: newest recovery point {}, {} job(s) completed in the window{}",
            match (&r.newest_recovery_point, r.age_ms) {
                (Some(p), Some(age)) => format!("{p} ({} old)", hours(age)),
                _ => "none".into(),
            },
            r.jobs_completed,
            if r.problems.is_empty() {
                String::new()
            } else {
                format!("; {}", r.problems.join("; "))
            }
        );
        sink.emit(if r.problems.is_empty() {
            Event::Verified(summary)
        } else {
            Event::CheckFailed(summary)
        });
    }
    // The worst exposure is the drill's RPO; a resource without a point leaves it unmeasured,
    // which misses the target.
    let m = Measurements {
        rpo_ms: worst_age(&result),
        backup_health: Some(result),
        ..Default::default()
    };
    Ok(Ran {
        description,
        measurements: m,
        steady: None,
        series: None,
        aborted: None,
        ledger_checked: false,
        teardown: super::nothing_to_tear_down(),
    })
}

/// Reads AWS Backup for `resources` (every protected resource when empty) and judges each:
/// its newest completed recovery point, and the window's failed or missing jobs.
pub async fn read(
    aws: &Aws,
    resources: &[String],
    h: &BackupHealth,
    now: SystemTime,
) -> Result<BackupHealthResult, EnvError> {
    let resources: Vec<String> = if resources.is_empty() {
        let all = aws.protected_resources().await.map_err(aws_err)?;
        all.into_iter().map(|r| r.arn).collect()
    } else {
        resources.to_vec()
    };
    if resources.is_empty() {
        return Err(EnvError::Aws(AwsError::NotFound {
            what: "a protected resource".into(),
            action: "backup:ListProtectedResources".into(),
            message: format!("AWS Backup protects no resource in {}", aws.region),
        }));
    }
    let since = now - h.window.get();
    let jobs = aws.backup_jobs(since, None).await.map_err(aws_err)?;
    let mut result = BackupHealthResult {
        window_start: humantime::format_rfc3339_seconds(since).to_string(),
        resources: Vec::new(),
    };
    for arn in resources {
        let mut r = ResourceHealth {
            resource: arn.clone(),
            ..Default::default()
        };
        match aws.recovery_points(&arn).await {
            Ok(points) => {
                r.recovery_points = points.len() as u64;
                let newest = points
                    .iter()
                    .filter(|p| p.status == "COMPLETED")
                    .find_map(|p| p.created);
                if let Some(at) = newest {
                    r.newest_recovery_point =
                        Some(humantime::format_rfc3339_seconds(at).to_string());
                    r.age_ms = Some(ms(now.duration_since(at).unwrap_or_default()));
                } else {
                    r.problems.push("no completed recovery point".into());
                }
            }
            Err(e) => r
                .problems
                .push(format!("cannot read its recovery points: {e}")),
        }
        let mine: Vec<_> = jobs.iter().filter(|j| j.resource_arn == arn).collect();
        let mut completed: Vec<SystemTime> = mine
            .iter()
            .filter(|j| j.state == "COMPLETED")
            .filter_map(|j| j.created)
            .collect();
        completed.sort();
        r.jobs_completed = completed.len() as u64;
        for j in mine
            .iter()
            .filter(|j| FAILED_STATES.contains(&j.state.as_str()))
        {
            r.problems.push(format!(
                "backup job {} {}{}{}",
                j.id,
                j.state,
                j.created
                    .map(|c| format!(" at {}", humantime::format_rfc3339_seconds(c)))
                    .unwrap_or_default(),
                j.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ));
        }
        if let Some(every) = h.expect_every {
            r.problems
                .extend(gaps(since, &completed, now, every.get() + h.grace.get()));
        }
        result.resources.push(r);
    }
    Ok(result)
}

/// The largest recovery-point age: the drill's RPO. A resource without a point leaves it
/// unmeasured, which misses the target.
pub fn worst_age(h: &BackupHealthResult) -> Option<f64> {
    h.resources
        .iter()
        .map(|r| r.age_ms)
        .try_fold(0.0_f64, |worst, age| age.map(|a| worst.max(a)))
}

/// Spans between `since` and `now` without a completed job for longer than `limit`.
fn gaps(
    since: SystemTime,
    completed: &[SystemTime],
    now: SystemTime,
    limit: Duration,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = since;
    for &at in completed.iter().chain(std::iter::once(&now)) {
        let span = at.duration_since(from).unwrap_or_default();
        if span > limit {
            out.push(format!(
                "no completed backup job from {} to {} ({})",
                humantime::format_rfc3339_seconds(from),
                humantime::format_rfc3339_seconds(at),
                hours(ms(span))
            ));
        }
        from = at;
    }
    out
}

fn hours(ms: f64) -> String {
    let h = ms / 3_600_000.0;
    if h >= 1.0 {
        format!("{h:.1}h")
    } else {
        format!("{:.0}m", ms / 60_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn a_day_without_a_backup_is_a_gap_and_a_late_one_within_grace_is_not() {
        let since = SystemTime::UNIX_EPOCH + 1000 * H;
        let now = since + 72 * H;
        // Daily jobs at +20h, +45h (25h later: within 24h + 1h grace), then nothing for 27h.
        let done = [since + 20 * H, since + 45 * H];
        let g = gaps(since, &done, now, 25 * H);
        assert_eq!(g.len(), 1, "{g:?}");
        assert!(g[0].ends_with("(27.0h)"), "{g:?}");
        assert!(gaps(since, &done, since + 69 * H, 25 * H).is_empty());
        // No job at all: the whole window.
        let g = gaps(since, &[], now, 25 * H);
        assert_eq!(g.len(), 1);
        assert!(g[0].ends_with("(72.0h)"), "{g:?}");
    }
}
