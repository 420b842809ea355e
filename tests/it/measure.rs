//! A child process's peak memory and wall time, for the tests and benchmarks that bound them (a
//! benchmark includes this file by path: one helper, two kinds of target).
//!
//! Two figures, because Linux gives no exact one for free. `wait4`'s `ru_maxrss` is an upper
//! bound: the kernel carries the spawning process's own peak into the child's across `exec`, so
//! it never reads below this process's. The child's own `VmHWM` (its address space's high-water
//! mark, from `/proc`) sampled every 2 ms is its peak as of the last sample before it exits:
//! exact unless it grew in its last 2 ms. Bounds are asserted on the first; figures are quoted
//! from the second.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What [`run_measured`] saw of one process.
#[allow(dead_code)] // a benchmark reads only some fields
pub struct Measured {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// `wait4`'s `ru_maxrss`, KiB: at least the child's peak, never below this process's.
    pub max_rss_kib: u64,
    /// The child's own `VmHWM`, KiB, as last sampled.
    pub sampled_kib: u64,
    pub wall: Duration,
}

impl Measured {
    /// Panics unless this run's peak is within `margin_kib` of `baseline`'s (measured in the
    /// same run), by both figures.
    #[allow(dead_code)] // tests only
    pub fn assert_within(&self, baseline: &Measured, margin_kib: u64) {
        assert!(
            self.max_rss_kib < baseline.max_rss_kib + margin_kib
                && self.sampled_kib < baseline.sampled_kib + margin_kib,
            "{} KiB against {} KiB (sampled {} against {}), over the {margin_kib} KiB margin",
            self.max_rss_kib,
            baseline.max_rss_kib,
            self.sampled_kib,
            baseline.sampled_kib
        );
    }
}

/// `VmHWM` of `pid`, KiB; `None` once it has no address space (exited).
fn vm_hwm_kib(pid: libc::pid_t) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Runs `cmd` to its end (stdin closed, stdout and stderr read), measuring its peak memory and
/// wall time; killed (code -1) if it runs past `limit`, so that a hang fails the test rather
/// than the runner.
// The child is reaped by wait4 (which std's wait cannot give: its rusage).
#[allow(clippy::zombie_processes)]
pub fn run_measured(cmd: &mut Command, limit: Duration) -> Measured {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            r.read_to_end(&mut s).unwrap();
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let (mut status, pid) = (0, child.id() as libc::pid_t);
    let done = Arc::new(AtomicBool::new(false));
    let sampled = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (done, sampled) = (done.clone(), sampled.clone());
        std::thread::spawn(move || {
            let until = Instant::now() + limit;
            while Instant::now() < until {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(kib) = vm_hwm_kib(pid) {
                    sampled.fetch_max(kib, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            // SAFETY: plain kill(2) of our own child, not yet reaped (wait4 sets `done` first).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })
    };
    // SAFETY: wait4 writes into the zeroed rusage and status it is given; the child is ours
    // and not yet reaped (std reaps only in wait, which is never called on it).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    done.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    assert_eq!(reaped, pid);
    Measured {
        code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        max_rss_kib: ru.ru_maxrss.max(0) as u64,
        sampled_kib: sampled.load(Ordering::SeqCst),
        wall: started.elapsed(),
    }
}
