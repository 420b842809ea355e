//! A child process's own peak memory and wall time, for the tests and benchmarks that bound
//! them (a benchmark includes this file by path: one helper, two kinds of target).

/// What [`run_measured`] saw of one process.
#[allow(dead_code)] // a benchmark reads only some fields
pub struct Measured {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The process's own peak resident set size, in KiB (`wait4`'s `ru_maxrss`): not its
    /// siblings', as `RUSAGE_CHILDREN` would be when tests share a process.
    pub max_rss_kib: u64,
    pub wall: std::time::Duration,
}

/// Runs `cmd` to its end (stdin closed, stdout and stderr read), measuring its peak memory and wall time; killed
/// (code -1) if it runs past `limit`, so that a hang fails the test rather than the runner.
// The child is reaped by wait4 (which std's wait cannot give: its rusage).
#[allow(clippy::zombie_processes)]
pub fn run_measured(cmd: &mut std::process::Command, limit: std::time::Duration) -> Measured {
    use std::io::Read;
    use std::process::Stdio;
    let started = std::time::Instant::now();
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
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let until = std::time::Instant::now() + limit;
            while std::time::Instant::now() < until {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            // SAFETY: plain kill(2) of our own child, not yet reaped (wait4 sets `done` first).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })
    };
    // SAFETY: wait4 writes into the zeroed rusage and status it is given; the child is ours
    // and not yet reaped (std reaps only in wait, which is never called on it).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watchdog.join().unwrap();
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
        wall: started.elapsed(),
    }
}
