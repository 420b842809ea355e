//! When a paused node was really stopped, seen from `/proc` by the test itself, and when a
//! client of the test's own saw it answer again: the ground truth a pause drill's RTO is
//! compared with, whatever the drill's timers did and whatever a resumed node costs under load.

use std::time::{Duration, Instant};

/// The stop as the sampler saw it, in ms since it began: it started between `began.0` and
/// `began.1` and ended between `ended.0` and `ended.1` (the polls either side of each edge).
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    pub began: (f64, f64),
    pub ended: (f64, f64),
}

impl Stopped {
    /// The stop's length: at least the stopped polls' span, at most the running polls' span.
    pub fn length_ms(&self) -> (f64, f64) {
        (self.ended.0 - self.began.1, self.ended.1 - self.began.0)
    }
}

/// Polls every PostgreSQL postmaster's state each millisecond, for at most `run_for`, and
/// returns the first stretch in which one was stopped (state `T`). Postmasters are listed anew
/// every 100 ms (by name and a parent that is not `postgres`: their children rename themselves),
/// so only a handful of files is read each millisecond.
pub fn sample(t0: Instant, run_for: Duration) -> std::thread::JoinHandle<Option<Stopped>> {
    std::thread::spawn(move || {
        let ms = |i: Instant| i.duration_since(t0).as_secs_f64() * 1000.0;
        let mut postmasters = Vec::new();
        let mut listed = t0 - Duration::from_secs(1);
        let mut last_running = 0.0;
        let mut began: Option<(f64, f64)> = None;
        let mut last_stopped = 0.0;
        while t0.elapsed() < run_for {
            if listed.elapsed() >= Duration::from_millis(100) && began.is_none() {
                postmasters = list_postmasters();
                listed = Instant::now();
            }
            let stopped = postmasters.iter().any(|&p| state(p) == Some('T'));
            let now = ms(Instant::now());
            match (stopped, began) {
                (true, None) => {
                    began = Some((last_running, now));
                    last_stopped = now;
                }
                (true, Some(_)) => last_stopped = now,
                (false, Some(b)) => {
                    return Some(Stopped {
                        began: b,
                        ended: (last_stopped, now),
                    });
                }
                (false, None) => last_running = now,
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    })
}

/// A process's one-letter state, from `/proc/PID/stat` (parsed after the last `)`: the command
/// name may hold spaces and parentheses).
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn comm(pid: i32) -> Option<String> {
    Some(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()?
            .trim()
            .to_string(),
    )
}

fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn list_postmasters() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            comm(pid).as_deref() == Some("postgres")
                && parent(pid).and_then(comm).as_deref() != Some("postgres")
        })
        .collect()
}

/// One query of the test's own client, in ms since its `t0`.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub sent: f64,
    pub end: f64,
    pub ok: bool,
}

/// The test's own writer on the primary (the postmaster whose data directory holds no
/// `standby.signal`, on the port its `postmaster.pid` names): one insert outstanding on one
/// connection, into a table of its own in the `postgres` database (the drill's database is
/// left alone), every 2 ms, for at most `run_for`.
pub fn own_writer(t0: Instant, run_for: Duration) -> std::thread::JoinHandle<Vec<Answer>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let ms = |i: Instant| i.duration_since(t0).as_secs_f64() * 1000.0;
            let mut answers = Vec::new();
            let client = loop {
                if t0.elapsed() >= run_for {
                    return answers;
                }
                if let Some(port) = primary_port() {
                    let mut c = tokio_postgres::Config::new();
                    c.host("127.0.0.1")
                        .port(port)
                        .user("firedrill")
                        .dbname("postgres")
                        .connect_timeout(Duration::from_secs(2));
                    if let Ok((client, conn)) = c.connect(tokio_postgres::NoTls).await {
                        tokio::spawn(conn);
                        if client
                            .batch_execute("create table if not exists own_writes (n int)")
                            .await
                            .is_ok()
                        {
                            break client;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            while t0.elapsed() < run_for {
                let sent = ms(Instant::now());
                let ok = client
                    .batch_execute("insert into own_writes values (1)")
                    .await
                    .is_ok();
                answers.push(Answer {
                    sent,
                    end: ms(Instant::now()),
                    ok,
                });
                if !ok {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            answers
        })
    })
}

fn primary_port() -> Option<u16> {
    list_postmasters().into_iter().find_map(|pid| {
        let dir = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
        if dir.join("standby.signal").exists() {
            return None;
        }
        let lines = std::fs::read_to_string(dir.join("postmaster.pid")).ok()?;
        lines.lines().nth(3)?.trim().parse().ok()
    })
}
