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

/// Runs `job` for every item, at most `limits.concurrency` at a time; results in item order,
/// and the highest number of jobs seen running at once. Once `cancel` turns true the pacing
/// stops, so that the remaining jobs (which should see the same signal and return at once) do
/// not wait out `start_every` each.
pub async fn run<I, T, F, Fut>(
    items: Vec<I>,
    limits: Limits,
    mut cancel: watch::Receiver<bool>,
    job: F,
) -> (Vec<T>, usize)
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
        out.push(h.await.expect("a fleet job panicked"));
    }
    (out, peak.load(Ordering::SeqCst))
}
