//! Integration tests, one binary (as ripgrep does): each module is one area.

mod aws;
mod aws_backup_restore;
mod aws_failover;
mod aws_fis;
mod aws_restore;
mod backup_health;
mod bad_input;
mod checksum;
mod cli;
mod drill;
mod edges;
mod evidence;
mod evidence_hostile;
mod evidence_s3;
mod fleet;
mod fuzz;
mod gameday;
mod guardrails;
mod journal_compat;
mod layout;
mod lossy;
mod measure;
mod patroni;
mod patroni_dcs;
mod posture;
mod render;
mod restore;
mod safety;
mod sandbox;
mod schedule;
mod signing;
mod standin;
mod stopped;
mod zones;

pub use measure::run_measured;

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Held by tests that time what a client sees (an RTO, a guardrail's trip, a person's step, a
/// zone's outage, Patroni's timers) while they run alone, and by tests that load the machine
/// while they run beside one another, never beside a timed one.
static LOCK: RwLock<()> = RwLock::new(());

/// Drills measure time on a 2-core machine: a test that compares a measured time with its own
/// ground truth runs alone, so that nothing skews it.
///
/// Under nextest the `alone` test group of `.config/nextest.toml` schedules these tests (each
/// takes every test thread), so that none sits waiting on the lock while its slow-timeout runs;
/// a test that calls this outside that group fails here, naming the file to add it to.
pub fn exclusive() -> Exclusive {
    if let Ok(group) = std::env::var("NEXTEST_TEST_GROUP") {
        assert_eq!(
            group, "alone",
            "this test calls exclusive(): add it to the `alone` test group's filter in \
             .config/nextest.toml"
        );
    }
    hold(
        Held::Alone(LOCK.write().unwrap_or_else(|p| p.into_inner())),
        std::fs::File::lock,
    )
}

/// Tests that load the machine (a sandbox, a restore, Chromium, hundreds of ssh-keygen
/// processes, fsync-heavy chains) but time nothing: they run beside each other, never beside a
/// test holding [`exclusive`]. Under nextest the `alone` group keeps them apart already.
pub fn shared() -> Exclusive {
    hold(
        Held::Shared(LOCK.read().unwrap_or_else(|p| p.into_inner())),
        std::fs::File::lock_shared,
    )
}

/// The file lock taken `how`, after the in-process one (`guard`).
fn hold(guard: Held, how: fn(&std::fs::File) -> std::io::Result<()>) -> Exclusive {
    let file = std::fs::File::create(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("exclusive.lock"),
    )
    .unwrap();
    how(&file).unwrap();
    Exclusive {
        _file: file,
        _guard: guard,
    }
}

/// Held while a test runs alone, or beside other untimed ones; dropping it unlocks both locks
/// (the file lock: the same lock across processes, as cargo-nextest runs each test in its own).
pub struct Exclusive {
    _file: std::fs::File,
    _guard: Held,
}

enum Held {
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
}

pub fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The state directory (journals, target locks) every firedrill the tests start uses, so that
/// tests never touch the user's own (tests that check journals make their own).
pub fn test_state_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// Where every sandbox the tests build, in process or through the command line, finds its
/// template (one `initdb` per suite; `FIREDRILL_TEMPLATE_DIR` for the command line, since many
/// tests give it a state directory of their own).
pub fn test_templates() -> std::path::PathBuf {
    // Shared by every test process (cargo-nextest runs one per test), kept between runs like
    // the build itself; a clean checkout starts without one.
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-templates")
}

/// `FIREDRILL_TEMPLATE_DIR=off cargo test` runs every sandbox from initdb, as before templates
/// (to compare the suite's time).
fn templates_off() -> bool {
    std::env::var_os("FIREDRILL_TEMPLATE_DIR").is_some_and(|v| v == "off")
}

pub fn templates() -> Option<firedrill::template::TemplateCache> {
    (!templates_off()).then(|| firedrill::template::TemplateCache::new(test_templates()))
}

/// The template directory for a firedrill process the tests start.
fn template_dir_env() -> std::ffi::OsString {
    if templates_off() {
        "off".into()
    } else {
        test_templates().into()
    }
}

/// A session for an in-process drill, with the tests' template cache.
pub fn session(loaded: &firedrill::scenario::LoadedScenario) -> firedrill::engine::Session {
    firedrill::engine::Session {
        templates: templates(),
        ..firedrill::engine::Session::new(loaded)
    }
}

/// Runs a scenario's drill in process, with the tests' template cache and no journal.
pub async fn drill(loaded: &firedrill::scenario::LoadedScenario) -> firedrill::report::Report {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    firedrill::engine::run_session(
        loaded,
        loaded.drill().expect("one drill"),
        &mut firedrill::human::Silent,
        rx,
        session(loaded),
    )
    .await
    .expect("the drill runs")
    .report
}

/// `firedrill` for assert_cmd, with the tests' state directory.
pub fn firedrill_cmd() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("firedrill").unwrap();
    c.env("FIREDRILL_STATE_DIR", test_state_dir())
        .env("FIREDRILL_TEMPLATE_DIR", template_dir_env());
    c
}

/// `firedrill run --out OUT FILE`, with the tests' state and template directories.
pub fn run_out(out: &std::path::Path, file: &std::path::Path) -> std::process::Command {
    let mut c = firedrill_process();
    c.arg("run").arg("--out").arg(out).arg(file);
    c
}

/// Runs `cmd` (a [`run_out`]) to its end: exit code, stderr, and `OUT/report.json` (null when
/// none was written).
pub fn run_for_report(
    cmd: &mut std::process::Command,
    out: &std::path::Path,
) -> (i32, String, serde_json::Value) {
    let _ = std::fs::remove_dir_all(out);
    let (code, _, stderr) = run_to_end(cmd);
    let report = std::fs::read(out.join("report.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(serde_json::Value::Null);
    (code, stderr, report)
}

/// Runs `cmd` to its end: exit code (-1 when killed by a signal), stdout, stderr.
pub fn run_to_end(cmd: &mut std::process::Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The built `firedrill` binary.
pub fn firedrill_bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("firedrill")
}

/// A loopback port free when asked (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `firedrill` as a plain process (to signal it), with the tests' state directory.
pub fn firedrill_process() -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("firedrill"));
    c.env("FIREDRILL_STATE_DIR", test_state_dir())
        .env("FIREDRILL_TEMPLATE_DIR", template_dir_env());
    c
}

/// Live processes whose working directory is `dir` or below it, as `PID STATE CMDLINE`; a
/// PostgreSQL backend works in its data directory but renames itself, so this (not its command
/// line) is how a leftover backend is found. A directory already removed still counts (the
/// kernel shows it as `DIR (deleted)`); zombies have no working directory.
pub fn processes_working_in(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) else {
            continue;
        };
        let cwd = cwd.to_string_lossy();
        let cwd = std::path::Path::new(cwd.trim_end_matches(" (deleted)"));
        if !cwd.starts_with(dir) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .unwrap_or("?")
            .to_owned();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if state != "Z" {
            found.push(format!("{pid} {state} {cmdline}"));
        }
    }
    found
}
