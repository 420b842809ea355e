//! What a client experienced, computed from timestamped probe samples: RTO, time to first
//! success, outage windows, availability and latency percentiles. Pure functions of the samples,
//! so every figure in a report can be recomputed from the data.

use std::time::Duration;

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One probe: when it started and finished (offsets from the drill's start on a monotonic clock)
/// and whether it succeeded within its timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub start: Duration,
    pub end: Duration,
    pub ok: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Outage {
    /// Start of the first failed probe, ms from the drill's start.
    pub start_ms: f64,
    /// End of the next successful probe; `None` when it never came.
    pub end_ms: Option<f64>,
    pub duration_ms: Option<f64>,
    pub failed_probes: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecoveryFigures {
    /// Fault to the first success that stayed successful for the stability window. `Some(0)`
    /// when no probe failed after the fault; `None` when recovery was not seen.
    pub rto: Option<Duration>,
    /// Fault to the first success after the first failure.
    pub first_success: Option<Duration>,
    /// Successful share of probes that ended after the fault, in percent.
    pub availability_pct: f64,
    pub outages: Vec<Outage>,
}

/// Recovery figures for one probe's samples (in start order).
///
/// `observed_until` is when probing stopped: a success is only "sustained" if the stability
/// window after it was fully observed.
pub fn recovery(
    samples: &[Sample],
    fault_at: Duration,
    observed_until: Duration,
    stability: Duration,
) -> RecoveryFigures {
    let post: Vec<&Sample> = samples.iter().filter(|s| s.end > fault_at).collect();
    let ok = post.iter().filter(|s| s.ok).count();
    let availability_pct = if post.is_empty() {
        0.0
    } else {
        100.0 * ok as f64 / post.len() as f64
    };
    let outages = outages(samples);
    let Some(first_fail) = post.iter().position(|s| !s.ok) else {
        // Nothing failed: the fault was not visible to this probe.
        return RecoveryFigures {
            rto: if post.is_empty() {
                None
            } else {
                Some(Duration::ZERO)
            },
            first_success: if post.is_empty() {
                None
            } else {
                Some(Duration::ZERO)
            },
            availability_pct,
            outages,
        };
    };
    let after_fail = &post[first_fail..];
    let first_success = after_fail.iter().find(|s| s.ok).map(|s| s.end - fault_at);
    let mut rto = None;
    for (i, s) in after_fail.iter().enumerate() {
        if !s.ok {
            continue;
        }
        let window_end = s.end + stability;
        if window_end > observed_until {
            break;
        }
        let stays_up = after_fail[i + 1..]
            .iter()
            .take_while(|n| n.end <= window_end)
            .all(|n| n.ok);
        if stays_up {
            rto = Some(s.end - fault_at);
            break;
        }
    }
    RecoveryFigures {
        rto,
        first_success,
        availability_pct,
        outages,
    }
}

/// What RTO counts from (see [`figures`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RtoFrom {
    Fault,
    /// The moment the fault's command printed `FIREDRILL_EFFECT`.
    Marker,
    FirstFailure,
}

/// How a drill's fault took effect, for [`figures`].
#[derive(Clone, Copy, Debug)]
pub struct FaultTiming {
    /// The fault instant: its start, or when the driver saw it take effect.
    pub at: Duration,
    /// Its effect comes a while after it starts (a command, a switchover).
    pub delayed: bool,
    /// The driver saw the instant it took effect (a command's marker line, a kill).
    pub marked: bool,
}

/// Every probe figure of a failover drill.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub rto_from: RtoFrom,
    pub write: RecoveryFigures,
    pub read: RecoveryFigures,
    /// Availability over everything after the fault, whatever RTO counts from.
    pub availability_pct: f64,
    pub read_availability_pct: f64,
    /// First failed write probe to sustained recovery.
    pub write_outage: Option<Duration>,
    /// Write and read probes that failed (the fault's effect).
    pub failed_probes: u64,
}

/// The figures of a failover drill from its probe samples: one rule, used when the drill ends
/// and again by `verify` on the report's probe record. RTO counts from the fault instant; for
/// a delayed effect, from the driver's marked instant if any, else each probe's first failure
/// after the fault.
pub fn figures(
    write: &[Sample],
    read: &[Sample],
    fault: FaultTiming,
    observed_until: Duration,
    stability: Duration,
) -> Figures {
    let fault_at = fault.at;
    let first_failure = |samples: &[Sample]| {
        samples
            .iter()
            .find(|p| p.end > fault_at && !p.ok)
            .map(|p| p.start)
    };
    let (wf, rf) = (first_failure(write), first_failure(read));
    let write_outage = wf.and_then(|f| recovery(write, f, observed_until, stability).rto);
    let from_first_failure = fault.delayed && !fault.marked;
    let rto_from = match (fault.delayed, fault.marked) {
        (true, true) => RtoFrom::Marker,
        (true, false) if wf.is_some() => RtoFrom::FirstFailure,
        (true, false) | (false, _) => RtoFrom::Fault,
    };
    let from = |f: Option<Duration>| match f {
        Some(f) if from_first_failure => f,
        Some(_) | None => fault_at,
    };
    let w_all = recovery(write, fault_at, observed_until, stability);
    let r_all = recovery(read, fault_at, observed_until, stability);
    // Only probes after the fault are its effect (probes fail while the first connections are
    // made, before the steady state).
    let failed_probes = write
        .iter()
        .chain(read)
        .filter(|p| p.end > fault_at && !p.ok)
        .count() as u64;
    Figures {
        rto_from,
        write: recovery(write, from(wf), observed_until, stability),
        read: recovery(read, from(rf), observed_until, stability),
        availability_pct: w_all.availability_pct,
        read_availability_pct: r_all.availability_pct,
        write_outage,
        failed_probes,
    }
}

/// Maximal runs of failed probes, each closed by the next success.
pub fn outages(samples: &[Sample]) -> Vec<Outage> {
    let mut out = Vec::new();
    let mut open: Option<(Duration, u64)> = None;
    for s in samples {
        match (&mut open, s.ok) {
            (None, false) => open = Some((s.start, 1)),
            (Some((_, n)), false) => *n += 1,
            (Some((start, n)), true) => {
                out.push(Outage {
                    start_ms: ms(*start),
                    end_ms: Some(ms(s.end)),
                    duration_ms: Some(ms(s.end - *start)),
                    failed_probes: *n,
                });
                open = None;
            }
            (None, true) => {}
        }
    }
    if let Some((start, n)) = open {
        out.push(Outage {
            start_ms: ms(start),
            end_ms: None,
            duration_ms: None,
            failed_probes: n,
        });
    }
    out
}

/// Latency percentiles of successful operations, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Records latencies in microseconds, 3 significant digits, up to an hour.
pub struct LatencyRecorder(Histogram<u64>);

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder(
            Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds"),
        )
    }
}

impl LatencyRecorder {
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 3_600_000_000);
        self.0
            .record(us)
            .expect("clamped into the histogram's bounds");
    }

    pub fn summary(&self) -> Latency {
        let h = &self.0;
        if h.is_empty() {
            return Latency::default();
        }
        let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

/// Probe outcomes binned over time: enough to draw what a client saw, small enough to sign and
/// verify by the thousand.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeSeries {
    /// Width of each bin in ms; bin `i` covers `[i * bin_ms, (i + 1) * bin_ms)` of drill time.
    pub bin_ms: f64,
    pub write: Vec<Bin>,
    pub read: Vec<Bin>,
}

/// Probes that ended in one bin.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bin {
    pub ok: u32,
    pub failed: u32,
    /// Slowest successful probe in the bin, ms; none without a success.
    pub max_ms: Option<f64>,
}

/// Bins are at least 100 ms and at most 200 of them cover the drill.
const MAX_BINS: u128 = 200;

pub fn series(write: &[Sample], read: &[Sample], until: Duration) -> ProbeSeries {
    let bin_ms = (until.as_millis().div_ceil(MAX_BINS) as u64).max(100);
    let bin = Duration::from_millis(bin_ms);
    let n = (until.as_nanos() / bin.as_nanos()) as usize + 1;
    let fill = |samples: &[Sample]| {
        let mut bins = vec![Bin::default(); n];
        for s in samples {
            let i = ((s.end.as_nanos() / bin.as_nanos()) as usize).min(n - 1);
            let b = &mut bins[i];
            if s.ok {
                b.ok += 1;
                let lat = ms(s.end - s.start);
                b.max_ms = Some(b.max_ms.map_or(lat, |m: f64| m.max(lat)));
            } else {
                b.failed += 1;
            }
        }
        bins
    };
    ProbeSeries {
        bin_ms: ms(bin),
        write: fill(write),
        read: fill(read),
    }
}

/// Latencies of successful samples whose end falls in `[from, to)`.
pub fn latency_between(samples: &[Sample], from: Duration, to: Duration) -> Latency {
    let mut rec = LatencyRecorder::default();
    for s in samples
        .iter()
        .filter(|s| s.ok && s.end >= from && s.end < to)
    {
        rec.record(s.end - s.start);
    }
    rec.summary()
}

/// Share of successful samples ending in `[from, to)`, in percent (100 when there are none).
pub fn success_pct_between(samples: &[Sample], from: Duration, to: Duration) -> f64 {
    let window: Vec<_> = samples
        .iter()
        .filter(|s| s.end >= from && s.end < to)
        .collect();
    if window.is_empty() {
        return 100.0;
    }
    100.0 * window.iter().filter(|s| s.ok).count() as f64 / window.len() as f64
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Probes every 10ms taking 1ms, failing in [fail_from, fail_to).
    fn probes(until: u64, fail_from: u64, fail_to: u64) -> Vec<Sample> {
        (0..until / 10)
            .map(|i| {
                let start = i * 10;
                Sample {
                    start: ms_(start),
                    end: ms_(start + 1),
                    ok: !(fail_from..fail_to).contains(&start),
                }
            })
            .collect()
    }

    #[test]
    fn rto_is_fault_to_first_sustained_success() {
        let s = probes(5000, 1000, 2500);
        let r = recovery(&s, ms_(1000), ms_(5000), ms_(1000));
        assert_eq!(r.rto, Some(ms_(1501)));
        assert_eq!(r.first_success, Some(ms_(1501)));
        assert_eq!(r.outages.len(), 1);
        assert_eq!(r.outages[0].failed_probes, 150);
        assert_eq!(r.outages[0].duration_ms, Some(1501.0));
    }

    #[test]
    fn a_blip_after_first_success_moves_rto_but_not_first_success() {
        let mut s = probes(6000, 1000, 2000);
        // One success at 2000 then another failure at 2300.
        for x in s.iter_mut() {
            if x.start.as_millis() == 2300 {
                x.ok = false;
            }
        }
        let r = recovery(&s, ms_(1000), ms_(6000), ms_(1000));
        assert_eq!(r.first_success, Some(ms_(1001)));
        assert_eq!(r.rto, Some(ms_(1311)));
        assert_eq!(r.outages.len(), 2);
    }

    #[test]
    fn no_rto_when_stability_window_not_observed() {
        let s = probes(3000, 1000, 2500);
        let r = recovery(&s, ms_(1000), ms_(3000), ms_(1000));
        assert_eq!(r.first_success, Some(ms_(1501)));
        assert_eq!(r.rto, None);
    }

    #[test]
    fn never_recovered_has_open_outage() {
        let s = probes(3000, 1000, 9999);
        let r = recovery(&s, ms_(1000), ms_(3000), ms_(500));
        assert_eq!((r.rto, r.first_success), (None, None));
        assert_eq!(r.outages[0].end_ms, None);
        assert_eq!(r.availability_pct, 0.0);
    }

    #[test]
    fn invisible_fault_is_rto_zero_full_availability() {
        let s = probes(3000, 9999, 9999);
        let r = recovery(&s, ms_(1000), ms_(3000), ms_(500));
        assert_eq!(r.rto, Some(Duration::ZERO));
        assert_eq!(r.availability_pct, 100.0);
    }

    #[test]
    fn latency_percentiles() {
        let mut rec = LatencyRecorder::default();
        for i in 1..=100 {
            rec.record(ms_(i));
        }
        let l = rec.summary();
        assert_eq!(l.count, 100);
        assert!((l.p50_ms - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.p99_ms - 99.0).abs() < 0.1, "{l:?}");
        assert!((l.max_ms - 100.0).abs() < 0.1, "{l:?}");
    }
}
