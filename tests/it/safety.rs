//! Safe to run in production: a drill killed outright is undone by `firedrill recover`, one
//! drill per target, production needs confirming, guardrails abort and roll back, and no
//! password reaches any output.

// The drill lock is held for the whole test on purpose (see `shared`).
#![allow(clippy::await_holding_lock)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use firedrill::pg::binaries::PgBinaries;
use firedrill::safety::journal::{Entry, Read, Undo};
use firedrill::scenario::Replication;
use firedrill::systems::sandbox::Sandbox;

/// A firedrill process whose stderr is read line by line.
pub(crate) struct Running {
    pub(crate) child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    pub(crate) fn start(state: &Path, args: &[&str], envs: &[(&str, &str)]) -> Running {
        let mut cmd = crate::firedrill_process();
        cmd.args(args)
            .env("FIREDRILL_STATE_DIR", state)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Reads stderr until a line contains `pattern`; panics with what was seen after 90 s.
    pub(crate) fn wait_for(&mut self, pattern: &str) {
        self.wait_for_line(pattern);
    }

    /// [`Running::wait_for`], returning the line.
    pub(crate) fn wait_for_line(&mut self, pattern: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let hit = line.contains(pattern);
                    self.seen.push(line.clone());
                    if hit {
                        return line;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        panic!("never saw {pattern:?}:\n{}", self.seen.join("\n"));
    }

    pub(crate) fn kill9(mut self) -> Vec<String> {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        self.child.wait().unwrap();
        self.seen.extend(self.lines.try_iter());
        self.seen
    }

    /// The stderr lines read so far.
    pub(crate) fn seen_lines(&self) -> &[String] {
        &self.seen
    }

    /// Waits for the exit; (exit code, stdout, every stderr line).
    pub(crate) fn finish(mut self) -> (i32, String, Vec<String>) {
        let out = self.child.wait_with_output().unwrap();
        self.seen.extend(self.lines.iter());
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            self.seen,
        )
    }
}

pub(crate) fn recover(state: &Path, args: &[&str]) -> (i32, String, String) {
    crate::run_to_end(
        crate::firedrill_process()
            .arg("recover")
            .args(args)
            .env("FIREDRILL_STATE_DIR", state),
    )
}

pub(crate) fn only_journal(state: &Path) -> PathBuf {
    let all = firedrill::safety::journal::list(&state.join("journals"));
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

/// Ports the sandbox announced ("... up on 127.0.0.1:PORT").
fn announced_ports(lines: &[String]) -> Vec<u16> {
    lines
        .iter()
        .filter_map(|l| l.split("up on 127.0.0.1:").nth(1)?.trim().parse().ok())
        .collect()
}

const CRASH_SCENARIO: &str = "\
version: 1
name: crash
target: {type: postgres-sandbox, standbys: 1}
workload: {connections: 2}
probes: {interval: 20ms, timeout: 300ms}
steady_state: {duration: 1s}
fault: {type: pause, node: primary, duration: 3s}
recovery: {type: promote, node: standby1, after: 1s}
observe: {duration: 4s, stability: 500ms}
targets: {rto: 10s}
";

/// Kills firedrill with SIGKILL when its stderr shows `at`, then proves `firedrill recover`
/// leaves nothing: no process, directory or port of the drill, a journal that says what was
/// undone, and a second recover that does nothing.
pub(crate) fn kill_then_recover(scenario: &str, at: &str) -> Vec<(String, String)> {
    let _x = crate::shared();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("scenario.yaml");
    std::fs::write(&file, scenario).unwrap();
    let mut run = Running::start(&state, &["run", file.to_str().unwrap()], &[]);
    run.wait_for(at);
    let lines = run.kill9();

    let journal = only_journal(&state);
    let before = Read::open(&journal).unwrap();
    let dirs: Vec<PathBuf> = before
        .pending()
        .iter()
        .filter_map(|(_, _, u)| match u {
            Undo::RemoveDir { dir } => Some(dir.clone()),
            _ => None,
        })
        .collect();
    assert!(!dirs.is_empty(), "no directory journaled: {before:?}");
    assert!(
        dirs.iter().all(|d| d.exists()),
        "killed drill left nothing?"
    );
    let ports = announced_ports(&lines);

    let (code, stdout, stderr) = recover(&state, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("recovered:"), "{stdout}");

    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
        let left = crate::processes_working_in(d);
        assert!(left.is_empty(), "processes left: {left:?}");
    }
    for p in &ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", *p)).is_err(),
            "port {p} still accepts connections"
        );
    }
    let after = Read::open(&journal).unwrap();
    assert!(after.pending().is_empty(), "{after:?}");
    assert!(matches!(
        after.entries.last(),
        Some(Entry::Recovered { .. })
    ));
    let undone: Vec<(String, String)> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("undone: "))
        .filter_map(|l| l.split_once(" -> "))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    assert_eq!(undone.len(), before.pending().len(), "{stdout}");

    // Idempotent: nothing left, nothing written.
    let bytes = std::fs::read(&journal).unwrap();
    let (code, stdout, _) = recover(&state, &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("nothing to recover"), "{stdout}");
    let (code, stdout, _) = recover(&state, &[journal.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("nothing to recover"), "{stdout}");
    assert_eq!(std::fs::read(&journal).unwrap(), bytes);
    undone
}

#[test]
fn killed_during_setup_recover_removes_the_half_built_sandbox() {
    let undone = kill_then_recover(CRASH_SCENARIO, "primary up on");
    assert!(undone[0].0.contains("sandbox directory"), "{undone:?}");
}

#[test]
fn killed_after_the_fault_recover_resumes_the_paused_primary_and_removes_the_sandbox() {
    let undone = kill_then_recover(CRASH_SCENARIO, "SIGSTOP all");
    // Newest first: the pause, then the sandbox.
    assert!(
        undone[0].0.starts_with("SIGSTOP every process of primary"),
        "{undone:?}"
    );
    assert!(undone[0].1.starts_with("SIGCONT "), "{undone:?}");
    assert!(undone[1].1.contains("removed"), "{undone:?}");
}

#[test]
fn killed_during_recovery_recover_cleans_up() {
    let undone = kill_then_recover(CRASH_SCENARIO, "promoted standby1");
    assert!(
        undone.iter().any(|(w, _)| w.starts_with("SIGSTOP")),
        "{undone:?}"
    );
}

#[test]
fn killed_during_verification_recover_cleans_up() {
    let undone = kill_then_recover(CRASH_SCENARIO, "== verify");
    assert!(
        undone.iter().any(|(_, h)| h.contains("removed")),
        "{undone:?}"
    );
}

#[test]
fn killed_while_a_restore_drill_takes_its_backup_recover_removes_every_directory() {
    let undone = kill_then_recover(
        "version: 1\nname: crash-restore\ntarget: {type: postgres-sandbox}\n\
         workload: {connections: 2}\n\
         restore:\n  backup: {type: pg-basebackup}\n  recovery_target: {type: latest}\n  \
         seed: {pgbench_scale: 5}\ntargets: {checksums: match}\n",
        "== backup",
    );
    // The workspace and the source sandbox (the restored one does not exist yet).
    assert_eq!(undone.len(), 2, "{undone:?}");
}

// ---- an existing database: locks, unrecovered journals, passwords ---------------------------

/// A PostgreSQL the test owns, reached as a `postgres` target by a password-authenticated role.
struct Existing {
    sb: Sandbox,
    rt: tokio::runtime::Runtime,
}

const PASSWORD: &str = "Tr0ub4dor&3-secret";

impl Existing {
    fn new() -> Existing {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let bins = PgBinaries::locate(None).unwrap();
        let sb = rt
            .block_on(Sandbox::build(
                bins,
                crate::sandbox::config(0, Replication::Async),
                &|_| {},
            ))
            .unwrap();
        let hba = sb.nodes[0].data_dir.join("pg_hba.conf");
        let rest = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(
            &hba,
            format!("host all drill 127.0.0.1/32 scram-sha-256\n{rest}"),
        )
        .unwrap();
        rt.block_on(async {
            let c = sb.connect(0).await.unwrap();
            c.batch_execute(&format!(
                "create role drill login superuser password '{PASSWORD}'; select pg_reload_conf();"
            ))
            .await
            .unwrap();
        });
        Existing { sb, rt }
    }

    fn dsn(&self, password: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=drill password={password} dbname=postgres",
            self.sb.nodes[0].port
        )
    }
}

impl Drop for Existing {
    fn drop(&mut self) {
        let _g = self.rt.enter();
        self.sb.teardown(false);
    }
}

/// An existing-target drill; its faults (`true`, a stand-in command) are felt by no probe, and
/// these tests are about locks and journals, so no outage is expected.
fn existing_scenario(dir: &Path, fault: &str, observe: &str) -> PathBuf {
    let file = dir.join("existing.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: existing-safety\nenvironment: test\n\
             target: {{type: postgres, dsn_env: FD_SAFETY_DSN}}\n\
             workload: {{connections: 1}}\nprobes: {{interval: 50ms, timeout: 500ms}}\n\
             steady_state: {{duration: 500ms}}\nfault: {fault}\nrecovery: {{type: wait}}\n\
             observe: {{duration: {observe}, stability: 200ms, expect_outage: false}}\n\
             targets: {{rto: 5s}}\n"
        ),
    )
    .unwrap();
    file
}

#[test]
fn a_second_drill_on_the_same_target_is_refused_while_the_first_runs() {
    let _x = crate::shared();
    let db = Existing::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = existing_scenario(dir.path(), "{type: command, run: ['true']}", "3s");
    let dsn = db.dsn(PASSWORD);
    let env = [("FD_SAFETY_DSN", dsn.as_str())];
    let mut first = Running::start(&state, &["run", file.to_str().unwrap()], &env);
    first.wait_for("== steady state");

    let second = Running::start(&state, &["run", file.to_str().unwrap()], &env);
    let (code, _, lines) = second.finish();
    let text = lines.join("\n");
    assert_eq!(code, 5, "{text}");
    assert!(
        text.contains("is in use by drill") && text.contains("nothing was touched"),
        "{text}"
    );
    let (code, _, lines) = first.finish();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    // The lock went with its holder.
    let third = Running::start(&state, &["run", file.to_str().unwrap()], &env);
    let (code, _, lines) = third.finish();
    assert_eq!(code, 0, "{}", lines.join("\n"));
}

#[test]
fn a_target_with_an_unrecovered_journal_is_refused_until_recover_runs_the_undo() {
    let _x = crate::shared();
    let db = Existing::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let flag = dir.path().join("fault-in-effect");
    let file = existing_scenario(
        dir.path(),
        &format!(
            "{{type: command, run: [touch, '{f}'], undo: [rm, '{f}']}}",
            f = flag.display()
        ),
        "20s",
    );
    let dsn = db.dsn(PASSWORD);
    let env = [("FD_SAFETY_DSN", dsn.as_str())];
    let mut run = Running::start(&state, &["run", file.to_str().unwrap()], &env);
    run.wait_for("ran touch");
    run.kill9();
    assert!(flag.exists(), "the fault is in effect");

    let again = Running::start(&state, &["run", file.to_str().unwrap()], &env);
    let (code, _, lines) = again.finish();
    let text = lines.join("\n");
    assert_eq!(code, 5, "{text}");
    assert!(text.contains("unrecovered journal"), "{text}");
    assert!(text.contains("firedrill recover"), "{text}");
    assert!(flag.exists(), "a refused run touched the target");

    let (code, listed, _) = recover(&state, &["--list"]);
    assert_eq!(code, 0);
    assert!(
        listed.contains("pending: run fault command touch"),
        "{listed}"
    );
    assert!(flag.exists(), "--list undid something");

    let (code, stdout, stderr) = recover(&state, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("undone: run fault command touch"),
        "{stdout}"
    );
    assert!(!flag.exists(), "the undo command did not run");

    // The target is free again: the drill runs (its own fault and undo included).
    let short = existing_scenario(dir.path(), "{type: command, run: ['true']}", "1s");
    let ok = Running::start(&state, &["run", short.to_str().unwrap()], &env);
    let (code, _, lines) = ok.finish();
    assert_eq!(code, 0, "{}", lines.join("\n"));
}

#[test]
fn no_password_in_any_report_log_journal_or_error() {
    let _x = crate::shared();
    let db = Existing::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("out");
    // The fault command echoes the DSN, password and all, to its stderr and fails: the error
    // message quotes the last lines of that output.
    let file = existing_scenario(
        dir.path(),
        "{type: command, run: [sh, -c, 'echo \"using $FD_SAFETY_DSN\" >&2; exit 3']}",
        "1s",
    );
    let dsn = db.dsn(PASSWORD);
    let url = format!(
        "postgresql://drill:{}@127.0.0.1:{}/postgres",
        PASSWORD.replace('&', "%26"),
        db.sb.nodes[0].port
    );
    let mut texts = Vec::new();
    for (what, dsn) in [("key=value DSN", dsn.clone()), ("URL DSN", url)] {
        let run = Running::start(
            &state,
            &[
                "run",
                "--out",
                out.to_str().unwrap(),
                "--junit",
                dir.path().join("junit.xml").to_str().unwrap(),
                "--textfile",
                dir.path().join("m.prom").to_str().unwrap(),
                file.to_str().unwrap(),
            ],
            &[("FD_SAFETY_DSN", dsn.as_str())],
        );
        let (code, stdout, lines) = run.finish();
        let stderr = lines.join("\n");
        // The injection failed: aborted, and the command's output was quoted (masked).
        assert_eq!(code, 3, "{what}: {stderr}");
        let both = format!("{stdout}{stderr}");
        assert!(both.contains("using "), "{what}: {both}");
        assert!(both.contains(firedrill::secrets::MASK), "{what}: {both}");
        texts.push((format!("{what} stdout"), stdout));
        texts.push((format!("{what} stderr"), stderr));
    }
    // A wrong password: an error, which must not quote it either.
    let wrong = Running::start(
        &state,
        &["run", file.to_str().unwrap()],
        &[("FD_SAFETY_DSN", db.dsn("Wr0ng-pa55word").as_str())],
    );
    let (code, stdout, lines) = wrong.finish();
    assert_ne!(code, 0);
    texts.push((
        "wrong password".into(),
        format!("{stdout}{}", lines.join("\n")),
    ));

    let mut files = 0;
    for root in [dir.path().join("out"), state.clone(), dir.path().to_owned()] {
        for f in walk(&root) {
            if f.ends_with("existing.yaml") {
                continue;
            }
            files += 1;
            texts.push((
                f.display().to_string(),
                String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned(),
            ));
        }
    }
    assert!(files >= 8, "reports, views, journals: {files} files");
    for (what, text) in &texts {
        for secret in [PASSWORD, "Tr0ub4dor%263-secret", "Wr0ng-pa55word"] {
            assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

// ---- production and guardrails ---------------------------------------------------------------

#[test]
fn a_production_scenario_needs_its_name_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("prod.yaml");
    std::fs::write(
        &file,
        "version: 1\nname: orders-prod\nenvironment: production\n\
         target: {type: postgres, dsn_env: FD_UNSET_DSN_FOR_PROD}\n\
         fault: {type: command, run: ['true']}\nrecovery: {type: wait}\ntargets: {rto: 5s}\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    for (args, code, needle) in [
        (vec!["run", f], 5, "pass --confirm orders-prod"),
        (
            vec!["run", "--confirm", "orders", f],
            5,
            "is not this scenario's name",
        ),
        // Confirmed: it goes on, and fails only for the unset DSN (exit 4).
        (
            vec!["run", "--confirm", "orders-prod", f],
            4,
            "FD_UNSET_DSN_FOR_PROD is not set",
        ),
    ] {
        let (c, _, lines) = Running::start(&state, &args, &[]).finish();
        let text = lines.join("\n");
        assert_eq!(c, code, "{args:?}: {text}");
        assert!(text.contains(needle), "{args:?}: {text}");
    }
    // Refused runs wrote no journal, nor did the confirmed one that stopped for its unset DSN
    // before anything was touched.
    assert_eq!(
        firedrill::safety::journal::list(&state.join("journals")).len(),
        0
    );
}

/// `recover --prune` removes old journals with nothing left to undo and old lock files no drill
/// holds; it keeps a journal with a pending effect, anything younger than `--older-than`, and a
/// held lock.
#[test]
fn prune_removes_old_finished_journals_and_free_locks_and_nothing_else() {
    use firedrill::safety::journal::{Entry, Journal, Undo};
    use firedrill::safety::lock::{self, StateDir};
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::resolve(Some(dir.path().to_owned())).unwrap();
    let journals = state.journals();
    std::fs::create_dir_all(&journals).unwrap();
    let made = |name: &str, undo_it: bool| {
        let path = journals.join(format!("{name}.jsonl"));
        let j = Journal::create(
            &path,
            Entry::Started {
                at: "2026-01-01T00:00:00.000Z".into(),
                run_id: name.into(),
                scenario: "s".into(),
                file: "s.yaml".into(),
                target: format!("postgres-sandbox/{name}"),
                pid: 4194303,
            },
        )
        .unwrap();
        let id = j
            .effect(
                "create the sandbox directory",
                Some(Undo::RemoveDir {
                    dir: dir.path().join(format!("gone-{name}")),
                }),
            )
            .unwrap();
        if undo_it {
            j.undone(id, "removed");
            j.finished("pass");
        }
        path
    };
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 24 * 3600);
    let age = |p: &std::path::Path| {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap()
    };
    let finished_old = made("aaaa", true);
    let pending_old = made("bbbb", false);
    let finished_young = made("cccc", true);
    age(&finished_old);
    age(&pending_old);
    let free = lock::acquire(&state, "postgres-sandbox/aaaa", "drill").unwrap();
    drop(free);
    let held = lock::acquire(&state, "postgres-sandbox/dddd", "drill").unwrap();
    for l in lock::files(&state) {
        age(&l);
    }
    // Game days' control files: one of a killed game day (its process gone), one of a live one
    // (this process), one killed but recent.
    let control = state.control();
    std::fs::create_dir_all(&control).unwrap();
    let control_of = |run: &str, pid: u32| {
        let path = firedrill::operator::control_file(&control, run);
        let header = format!(r#"{{"v":1,"run_id":"{run}","scenario":"g","pid":{pid}}}"#);
        std::fs::write(&path, header + "\n").unwrap();
        path
    };
    let killed_old = control_of("eeee", 4194303);
    let live_old = control_of("ffff", std::process::id());
    let killed_young = control_of("gggg", 4194303);
    age(&killed_old);
    age(&live_old);

    let mut cmd = crate::firedrill_process();
    cmd.args(["recover", "--prune", "--older-than", "30d"])
        .env("FIREDRILL_STATE_DIR", dir.path());
    let (code, out, err) = crate::run_to_end(&mut cmd);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "1 journal(s), 1 lock file(s) and 1 game day control file(s) older than 30days removed"
        ),
        "{out}"
    );
    assert!(!killed_old.exists(), "{out}");
    assert!(live_old.exists() && killed_young.exists(), "{out}");
    assert!(!finished_old.exists());
    assert!(pending_old.exists() && finished_young.exists());
    assert!(out.contains("bbbb.jsonl: effects left to undo"), "{out}");
    assert_eq!(lock::files(&state).len(), 1, "the held lock stays");
    // The held lock still works as one: a second drill is refused.
    assert!(lock::acquire(&state, "postgres-sandbox/dddd", "another").is_err());
    drop(held);
    // A pruned lock file is simply made again.
    drop(lock::acquire(&state, "postgres-sandbox/aaaa", "drill").unwrap());
}
