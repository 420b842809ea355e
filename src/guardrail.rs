//! Guardrails (stop conditions): checked by the engine every probe interval while a failover
//! drill observes its target; the first that holds aborts the drill, which then rolls the fault
//! back. Probe conditions read the probes' samples; a command condition runs in its own task
//! so that a slow check never delays the others.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::measure::Sample;
use crate::probe::ProbeState;
use crate::scenario::{Guardrail, ProbeSide};

/// A guardrail that held.
#[derive(Debug)]
pub struct Tripped {
    /// The condition, as the scenario states it.
    pub condition: String,
    /// What was seen.
    pub detail: String,
}

pub struct Guard {
    rails: Vec<Rail>,
    /// Drill time the guardrails were armed at; a window must fit after it.
    armed_at: Duration,
}

/// Since when (drill time) every run of a command guardrail has failed, and the last failure.
type Failing = Arc<Mutex<Option<(Duration, String)>>>;

struct Rail {
    spec: Guardrail,
    failing: Option<Failing>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for r in &self.rails {
            if let Some(t) = &r.task {
                t.abort();
            }
        }
    }
}

impl Guard {
    /// Arms the guardrails now; command checks start running at once and stop with `stop`.
    pub fn arm(specs: &[Guardrail], t0: Instant, stop: &watch::Receiver<bool>) -> Guard {
        let rails = specs
            .iter()
            .map(|spec| {
                let failing: Failing = Arc::new(Mutex::new(None));
                let task = match spec {
                    Guardrail::Command {
                        run,
                        every,
                        timeout,
                        ..
                    } => tokio::spawn(run_check(
                        run.0.clone(),
                        every.get(),
                        timeout.get(),
                        t0,
                        stop.clone(),
                        failing.clone(),
                    )),
                    Guardrail::CloudwatchAlarm {
                        alarm,
                        every,
                        region,
                        profile,
                        endpoint_url,
                        ..
                    } => {
                        let options = firedrill_aws::Options {
                            region: region.clone(),
                            profile: profile.clone(),
                            endpoint_url: endpoint_url.clone(),
                            max_attempts: Some(2),
                        };
                        tokio::spawn(watch_alarm(
                            options,
                            alarm.clone(),
                            every.get(),
                            t0,
                            stop.clone(),
                            failing.clone(),
                        ))
                    }
                    // Probe conditions are read from the samples by `check`.
                    Guardrail::ErrorRate { .. } | Guardrail::P99Latency { .. } => {
                        return Rail {
                            spec: spec.clone(),
                            failing: None,
                            task: None,
                        };
                    }
                };
                Rail {
                    spec: spec.clone(),
                    failing: Some(failing),
                    task: Some(task),
                }
            })
            .collect();
        Guard {
            rails,
            armed_at: t0.elapsed(),
        }
    }

    /// The first guardrail that holds at drill time `now`.
    pub fn check(&self, now: Duration, write: &ProbeState, read: &ProbeState) -> Option<Tripped> {
        self.rails.iter().find_map(|r| {
            let window = r.spec.window();
            if now < self.armed_at + window {
                return None;
            }
            let from = now - window;
            let probe = |side: &ProbeSide| match side {
                ProbeSide::Write => write,
                ProbeSide::Read => read,
            };
            let detail = match &r.spec {
                Guardrail::ErrorRate {
                    probe: side,
                    above_pct,
                    window,
                } => probe(side)
                    .with_since(from, |w| error_rate(w, *above_pct))
                    .map(|(failed, total, pct)| {
                        format!(
                            "{failed} of {total} {} probes failed ({pct:.1}%) in the last {window}",
                            side.label()
                        )
                    }),
                Guardrail::P99Latency {
                    probe: side,
                    above,
                    window,
                } => probe(side)
                    .with_since(from, p99)
                    .filter(|p| *p > above.get())
                    .map(|p| {
                        format!(
                            "{} probe p99 {:.1}ms in the last {window}",
                            side.label(),
                            p.as_secs_f64() * 1e3
                        )
                    }),
                Guardrail::Command { window, .. } | Guardrail::CloudwatchAlarm { window, .. } => {
                    let failing = r.failing.as_ref()?.lock().ok()?.clone();
                    failing
                        .filter(|(since, _)| now >= *since + window.get())
                        .map(|(since, last)| {
                            format!("failing since {:.1}s (last: {last})", since.as_secs_f64())
                        })
                }
            }?;
            Some(Tripped {
                condition: r.spec.describe(),
                detail,
            })
        })
    }
}

/// Failed, total and the failed percentage, when above `above_pct`.
fn error_rate(samples: &[Sample], above_pct: f64) -> Option<(usize, usize, f64)> {
    let total = samples.len();
    let failed = samples.iter().filter(|s| !s.ok).count();
    if total == 0 {
        return None;
    }
    let pct = failed as f64 * 100.0 / total as f64;
    (pct > above_pct).then_some((failed, total, pct))
}

/// The 99th percentile of the samples' durations (nearest rank).
fn p99(samples: &[Sample]) -> Option<Duration> {
    let mut d: Vec<Duration> = samples.iter().map(|s| s.end - s.start).collect();
    if d.is_empty() {
        return None;
    }
    d.sort();
    let rank = ((d.len() as f64) * 0.99).ceil() as usize;
    Some(d[rank.clamp(1, d.len()) - 1])
}

/// Runs the command every `every` until `stop`; a run that fails (non-zero, killed, timed out)
/// starts or continues the failing streak, a success ends it.
async fn run_check(
    argv: Vec<String>,
    every: Duration,
    timeout: Duration,
    t0: Instant,
    stop: watch::Receiver<bool>,
    failing: Failing,
) {
    watch(every, t0, stop, failing, || {
        let argv = argv.clone();
        async move {
            crate::process::run_command("guardrail check", &argv, timeout)
                .await
                .err()
                .map(|e| e.to_string().lines().next().unwrap_or_default().to_owned())
        }
    })
    .await
}

/// Reads the alarm every `every`: in `ALARM` is failing; a read that fails is reported as
/// failing too, so that a guardrail that cannot see its alarm does not pass silently.
async fn watch_alarm(
    options: firedrill_aws::Options,
    alarm: String,
    every: Duration,
    t0: Instant,
    stop: watch::Receiver<bool>,
    failing: Failing,
) {
    let aws = firedrill_aws::Aws::connect(&options).await;
    watch(every, t0, stop, failing, || {
        let (aws, alarm) = (aws.clone(), alarm.clone());
        async move {
            match aws.alarm_state(&alarm).await {
                Ok(s) if s == "ALARM" => Some(format!("{alarm} is in ALARM")),
                Ok(_) => None,
                Err(e) => Some(format!("cannot read alarm {alarm}: {e}")),
            }
        }
    })
    .await
}

/// Calls `check` every `every` until `stop`, keeping the failing streak: `Some(why)` starts or
/// continues it, `None` ends it.
async fn watch<F, Fut>(
    every: Duration,
    t0: Instant,
    mut stop: watch::Receiver<bool>,
    failing: Failing,
    mut check: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let started = t0.elapsed();
        let outcome = check().await;
        let mut f = failing.lock().unwrap_or_else(|p| p.into_inner());
        *f = match (outcome, f.take()) {
            (None, _) => None,
            (Some(why), Some((since, _))) => Some((since, why)),
            (Some(why), None) => Some((started, why)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(start_ms: u64, end_ms: u64, ok: bool) -> Sample {
        Sample {
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(end_ms),
            ok,
        }
    }

    #[test]
    fn error_rate_is_above_its_threshold_only() {
        let half = [s(0, 1, true), s(1, 2, false)];
        assert_eq!(error_rate(&half, 50.0), None);
        assert_eq!(error_rate(&half, 49.9), Some((1, 2, 50.0)));
        assert_eq!(error_rate(&[], 0.0), None);
    }

    #[test]
    fn p99_is_the_nearest_rank() {
        let samples: Vec<Sample> = (1..=200).map(|i| s(0, i, true)).collect();
        assert_eq!(p99(&samples), Some(Duration::from_millis(198)));
        assert_eq!(p99(&samples[..1]), Some(Duration::from_millis(1)));
    }
}
