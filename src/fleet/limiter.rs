//! Running one job per resource of a fleet with bounded concurrency and a start rate, so that a
//! monthly restore test of 200 databases neither floods the account's API limits nor its budget.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Jobs running at once.
    pub concurrency: usize,
    /// At most one job starts per this interval.
    pub start_every: Duration,
}

/// Runs `job` for every item, at most `limits.concurrency` at a time and at most one start per
/// `limits.start_every` (also after a long wait for a free slot: a missed start is not made up
/// in a burst); results in item order, a job that panicked as `Err` with its message, and the
/// highest number of jobs seen running at once. Once `cancel` turns true the pacing stops, so
/// that the remaining jobs (which should see the same signal and return at once) do not wait
/// out `start_every` each.
pub async fn run<I, T, F, Fut>(
    items: Vec<I>,
    limits: Limits,
    mut cancel: watch::Receiver<bool>,
    job: F,
) -> (Vec<Result<T, String>>, usize)
where
    I: Send + 'static,
    T: Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let mut handles = Vec::new();
    let mut pace = tokio::time::interval(limits.start_every.max(Duration::from_millis(1)));
    // The default (Burst) would start every member whose tick was missed back to back.
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for item in items {
        let permit = gate.clone().acquire_owned().await.expect("semaphore open");
        if !*cancel.borrow() {
            tokio::select! {
                _ = pace.tick() => {}
                _ = cancel.wait_for(|c| *c) => {}
            }
        }
        let (running, peak, job) = (running.clone(), peak.clone(), job.clone());
        handles.push(tokio::spawn(async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let out = job(item).await;
            running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            out
        }));
    }
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.map_err(|e| {
            match e.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panicked".into()),
                Err(e) => e.to_string(),
            }
        }));
    }
    (out, peak.load(Ordering::SeqCst))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use super::*;

    /// Each job records its own start and end: the test's ground truth, not the runner's
    /// counter.
    type Log = Arc<Mutex<Vec<(usize, Instant, Instant)>>>;

    async fn run_logged(durations: Vec<u64>, limits: Limits) -> (Log, Vec<Result<usize, String>>) {
        let log: Log = Arc::default();
        let job_log = log.clone();
        let (_never, cancel) = watch::channel(false);
        let items: Vec<(usize, u64)> = durations.into_iter().enumerate().collect();
        let (out, _) = run(items, limits, cancel, move |(i, ms)| {
            let log = job_log.clone();
            async move {
                let start = Instant::now();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                log.lock().unwrap().push((i, start, Instant::now()));
                i
            }
        })
        .await;
        (log, out)
    }

    /// Three slow members end together; the three waiting for their slots must still start
    /// one `start_every` apart, not in a burst.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn starts_stay_one_interval_apart_after_a_long_wait_for_slots() {
        let every = Duration::from_millis(100);
        let limits = Limits {
            concurrency: 3,
            start_every: every,
        };
        let (log, out) = run_logged(vec![600, 500, 400, 20, 20, 20], limits).await;
        assert_eq!(out, (0..6).map(Ok).collect::<Vec<_>>());
        let mut starts: Vec<Instant> = log.lock().unwrap().iter().map(|(_, s, _)| *s).collect();
        starts.sort();
        let gaps: Vec<u128> = starts
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        // 10 ms of slack for the scheduler; a burst shows as gaps near 0.
        assert!(
            gaps.iter().all(|g| *g + 10 >= every.as_millis()),
            "start gaps {gaps:?} ms, limit one per {} ms",
            every.as_millis()
        );
        // Concurrency as the jobs themselves saw it.
        let spans = log.lock().unwrap().clone();
        let most = spans
            .iter()
            .map(|(_, s, _)| spans.iter().filter(|(_, s2, e2)| s2 <= s && s < e2).count())
            .max()
            .unwrap();
        assert!(most <= 3, "{most} jobs ran at once, limit 3");
    }

    /// A member that panics becomes that member's error; the others run and report.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_is_its_own_error_and_the_others_finish() {
        let (_never, cancel) = watch::channel(false);
        let limits = Limits {
            concurrency: 2,
            start_every: Duration::from_millis(1),
        };
        let (out, _) = run(vec![1, 2, 3], limits, cancel, |i: u32| async move {
            assert_ne!(i, 2, "member {i} broke");
            i
        })
        .await;
        assert_eq!(out[0], Ok(1));
        assert_eq!(out[2], Ok(3));
        let err = out[1].clone().unwrap_err();
        assert!(err.contains("member 2 broke"), "{err}");
    }
}
