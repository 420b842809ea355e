//! Game days end to end, driven as people drive them: from a second shell with `firedrill
//! step`, and at a real terminal under tmux (keys sent, the screen read back). The times the
//! test acted, taken on its own clock, are the ground truth the report's step times must agree
//! with (within 100 ms); the promotion is the runbook's own command, run by the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::safety::Running;

mod restore;
mod tmux;

const SCENARIO: &str = "scenarios/gameday-manual-failover.yaml";
/// How far a report's time may be from the moment the test acted.
const WITHIN_MS: f64 = 100.0;

/// The shipped game day, with its person's step given `within` instead of 5m (the runbook
/// path made absolute, since the copy lives elsewhere).
fn shipped_with(dir: &Path, within: Option<&str>) -> PathBuf {
    let text = std::fs::read_to_string(crate::repo(SCENARIO)).unwrap();
    let runbooks = crate::repo("runbooks");
    let mut text = text.replace("../runbooks", runbooks.to_str().unwrap());
    if let Some(w) = within {
        assert!(text.contains("within: 5m"));
        text = text.replace("within: 5m", &format!("within: {w}"));
    }
    let file = dir.join("gameday.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

/// `t_ms` of a report on the wall clock: its `started_at` is the drill clock's zero.
fn wall(report: &Value, t_ms: f64) -> SystemTime {
    let zero = humantime::parse_rfc3339(report["started_at"].as_str().unwrap()).unwrap();
    zero + Duration::from_secs_f64(t_ms / 1000.0)
}

/// How far apart two instants are, in ms.
fn apart_ms(a: SystemTime, b: SystemTime) -> f64 {
    match a.duration_since(b) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => e.duration().as_secs_f64() * 1000.0,
    }
}

fn step(state: &Path, args: &[&str]) -> (i32, String) {
    let out = crate::firedrill_process()
        .env("FIREDRILL_STATE_DIR", state)
        .arg("step")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The standby's port in the instruction the game day showed (`psql -h ... -p PORT ...`).
fn port_in(text: &str) -> u16 {
    text.split("-p ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {text:?}"))
}

/// The runbook's promotion, as the operator runs it: (when it started, when it returned).
fn promote(port: u16) -> (SystemTime, SystemTime) {
    let at = SystemTime::now();
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "firedrill",
        ])
        .args(["-d", "postgres", "-Atc", "select pg_promote()"])
        .output()
        .expect("psql is installed with PostgreSQL");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "t",
        "promotion failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (at, SystemTime::now())
}

/// What a person's game day must show, whoever drove it: `acted` are the test's own times.
struct Acted {
    operator: &'static str,
    ack: SystemTime,
    promoted: (SystemTime, SystemTime),
    note: (SystemTime, &'static str),
    done: SystemTime,
}

fn check_times(report: &Value, a: &Acted) {
    assert_eq!(report["verdict"], "pass", "{report:#}");
    assert_eq!(report["drill"], "game-day");
    let steps = report["measurements"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{steps:#?}");
    let manual = &steps[2];
    assert_eq!(manual["kind"], "manual");
    assert_eq!(manual["outcome"], "done");
    assert_eq!(manual["acknowledged_by"], a.operator);
    assert_eq!(manual["done_by"], a.operator);
    let f = |k: &str| {
        manual[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k}: {manual:#}"))
    };

    let ack = apart_ms(wall(report, f("acknowledged_ms")), a.ack);
    assert!(
        ack <= WITHIN_MS,
        "acknowledged {ack:.1} ms from when the test did"
    );
    let done = apart_ms(wall(report, f("done_ms")), a.done);
    assert!(
        done <= WITHIN_MS,
        "done {done:.1} ms from when the test said it"
    );
    // Writes came back because of the promotion: not before it, and soon after it returned.
    let seen = wall(report, f("condition_ms"));
    assert!(
        seen + Duration::from_millis(WITHIN_MS as u64) >= a.promoted.0
            && seen <= a.promoted.1 + Duration::from_secs(2),
        "writes seen recovered {:.1} ms from the promotion's start",
        apart_ms(seen, a.promoted.0)
    );
    assert_eq!(f("ended_ms"), f("condition_ms"), "done_when ends the step");
    let duration = f("duration_ms");
    assert!((duration - (f("ended_ms") - f("started_ms"))).abs() < 0.01);

    let target = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "step:3")
        .expect("the step's within is a target");
    assert_eq!(target["limit"], 300_000.0);
    assert_eq!(target["achieved"].as_f64(), Some(duration));
    assert_eq!(target["met"], true);
    assert_eq!(steps[3]["outcome"], "done", "standby1 took the writes");

    let note = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "note" && e["detail"].as_str().unwrap().contains(a.note.1))
        .unwrap_or_else(|| panic!("no note: {:#}", report["timeline"]));
    assert_eq!(
        note["detail"].as_str().unwrap(),
        format!("{}: {}", a.operator, a.note.1)
    );
    let at = apart_ms(wall(report, note["t_ms"].as_f64().unwrap()), a.note.0);
    assert!(
        at <= WITHIN_MS,
        "note {at:.1} ms from when the test wrote it"
    );

    eprintln!(
        "{}: acknowledged {ack:.1} ms, done {done:.1} ms, note {at:.1} ms from the test's own \
         times; writes seen recovered {:.1} ms after the promotion started; step {:.0} ms of \
         300000",
        a.operator,
        apart_ms(seen, a.promoted.0),
        duration
    );
    let lost = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "max_lost_writes")
        .unwrap();
    assert_eq!(
        lost["achieved"], 0.0,
        "synchronous replication loses nothing"
    );
    let controls: Vec<&str> = report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        controls.contains(&"CC7.4") && controls.contains(&"CC7.5"),
        "{controls:?}"
    );
}

/// `firedrill run FILE --out OUT` with no terminal, and the run id it announced for
/// `firedrill step`.
fn start(state: &Path, file: &Path, out: &Path) -> (Running, String) {
    let args = [
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let mut run = Running::start(state, &args, &[]);
    let joined = run.wait_for_line("firedrill step ack|done|note|abort --run ");
    let run_id = joined
        .split("--run ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_owned();
    (run, run_id)
}

#[test]
fn manual_failover_driven_with_firedrill_step_from_another_shell() {
    let _x = crate::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("out");
    let file = crate::repo(SCENARIO);
    let (mut run, run_id) = start(&state, &file, &out);
    let port = port_in(&run.wait_for_line("pg_promote()"));

    std::thread::sleep(Duration::from_millis(300));
    let ack = SystemTime::now();
    let (code, said) = step(&state, &["ack", "--run", &run_id, "--operator", "dana"]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("ack by dana recorded"), "{said}");
    std::thread::sleep(Duration::from_millis(700));
    let promoted = promote(port);
    let text = "promoted standby1 with pg_promote";
    let note_at = SystemTime::now();
    let (code, said) = step(
        &state,
        &["note", "--run", &run_id, "--operator", "dana", text],
    );
    assert_eq!(code, 0, "{said}");
    let done = SystemTime::now();
    let (code, said) = step(&state, &["done", "--run", &run_id, "--operator", "dana"]);
    assert_eq!(code, 0, "{said}");
    let (code, _, lines) = run.finish();
    assert_eq!(code, 0, "{}", lines.join("\n"));

    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    check_times(
        &report,
        &Acted {
            operator: "dana",
            ack,
            promoted,
            note: (note_at, text),
            done,
        },
    );
    // The control file went with the drill; a late action says so and records nothing.
    let left: Vec<_> = std::fs::read_dir(state.join("control")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    let (code, said) = step(&state, &["ack", "--run", &run_id]);
    assert_eq!(code, 4, "{said}");
    assert!(
        said.contains(&format!("no game day with run id {run_id}")),
        "{said}"
    );

    html_shows_the_steps_band_and_notes(&out, text);
}

/// Chromium renders the game day's page: the steps band (purple bars) and the note (orange dot)
/// are drawn, and the steps table and note text are on the page.
fn html_shows_the_steps_band_and_notes(out: &Path, note: &str) {
    let html = out.join("report.html");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("id=\"steps-table\"") && page.contains(note));
    let profile = out.join("profile");
    let dom = crate::render::chromium(&html, &profile, &["--dump-dom"]);
    assert!(
        dom.contains("<h2>Steps</h2>") && dom.contains(note),
        "the page lost the steps"
    );
    let png = out.join("page.png");
    crate::render::chromium(
        &html,
        &profile,
        &[&format!("--screenshot={}", png.display())],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let (mut purple, mut orange) = (0, 0);
    for p in buf[..info.buffer_size()].chunks(channels) {
        match (p[0], p[1], p[2]) {
            (0x94, 0x67, 0xbd) => purple += 1,
            (0xff, 0x7f, 0x0e) => orange += 1,
            _ => {}
        }
    }
    assert!(
        purple > 100,
        "{purple} purple pixels: the steps band did not render"
    );
    assert!(
        orange > 10,
        "{orange} orange pixels: the note did not render"
    );
}

/// The sandbox directory a run announced ("primary in DIR/primary ...").
fn sandbox_of(lines: &[String]) -> PathBuf {
    let line = lines
        .iter()
        .find(|l| l.contains("primary in /"))
        .expect("the sandbox was announced");
    let path = line.split("primary in ").nth(1).unwrap();
    PathBuf::from(path.split_whitespace().next().unwrap())
        .parent()
        .unwrap()
        .to_owned()
}

#[test]
fn an_operator_who_never_acts_fails_the_step_and_the_game_day_rolls_back() {
    let _x = crate::exclusive();
    let k = crate::evidence::Keyring::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let chain = dir.path().join("evidence");
    let file = shipped_with(dir.path(), Some("3s"));
    let started = Instant::now();
    let run = Running::start(
        &state,
        &[
            "run",
            file.to_str().unwrap(),
            "--evidence",
            chain.to_str().unwrap(),
            "--sign-key",
            k.key.to_str().unwrap(),
        ],
        &[],
    );
    let (code, _, lines) = run.finish();
    let took = started.elapsed();
    assert_eq!(code, 1, "a missed target: {}", lines.join("\n"));
    assert!(
        took < Duration::from_secs(40),
        "the deadline ends it: {took:?}"
    );
    let all = lines.join("\n");
    assert!(
        all.contains("step 3 (promote the standby by hand) timed out")
            && all.contains("the game day stops here and rolls back"),
        "{all}"
    );

    let path = chain.join("000001-gameday-manual-failover/report.json");
    let real: firedrill::report::Report =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let report: Value = serde_json::to_value(&real).unwrap();
    assert_eq!(report["verdict"], "fail");
    assert!(
        report.get("abort_reason").is_none(),
        "a missed step is a failure, not an abort"
    );
    let steps = report["measurements"]["steps"].as_array().unwrap();
    assert_eq!(steps[2]["outcome"], "timed-out");
    assert!(steps[2].get("duration_ms").is_none());
    assert!(steps[2].get("acknowledged_ms").is_none());
    let ended = steps[2]["ended_ms"].as_f64().unwrap() - steps[2]["started_ms"].as_f64().unwrap();
    assert!(
        (2_900.0..3_500.0).contains(&ended),
        "timed out after {ended:.0} ms, not 3 s"
    );
    assert_eq!(steps[3]["outcome"], "skipped");
    assert!(steps[3]["detail"].as_str().unwrap().contains("not reached"));
    let target = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "step:3")
        .unwrap();
    assert_eq!(
        (&target["met"], &target["achieved"]),
        (&Value::Bool(false), &Value::Null)
    );

    let sandbox = sandbox_of(&lines);
    assert!(!sandbox.exists(), "{} left behind", sandbox.display());
    assert!(crate::processes_working_in(&sandbox).is_empty());
    let journal = crate::safety::only_journal(&state);
    let read = firedrill::safety::journal::Read::open(&journal).unwrap();
    assert!(read.pending().is_empty(), "{read:?}");

    // The auditor's side: the honest report verifies; the key holder's rewrites, re-signed
    // and chained as if honest, do not.
    let verify = |dir: &Path| {
        let out = crate::firedrill_process()
            .arg("verify")
            .arg(dir)
            .arg("--allowed-signers")
            .arg(&k.allowed)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, text) = verify(&chain);
    assert_eq!(code, 0, "{text}");
    let signer = k.signer();
    let forge = |name: &str, edit: &dyn Fn(&mut firedrill::report::Report)| {
        let mut r = real.clone();
        r.chain = None;
        edit(&mut r);
        r.verdict = firedrill::report::Verdict::Pass;
        for t in &mut r.targets {
            t.met = true;
        }
        let dir = k.tmp.path().join(name);
        firedrill::evidence::append(&dir, &mut r, Some(&signer)).unwrap();
        verify(&dir)
    };
    let (code, text) = forge("deleted", &|r| r.targets.retain(|t| t.name != "step:3"));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("target step:3 (limit 3000.0 ms) is the scenario's but missing"),
        "{text}"
    );
    let (code, text) = forge("raised", &|r| {
        let t = r.targets.iter_mut().find(|t| t.name == "step:3").unwrap();
        t.limit = 3_600_000.0;
    });
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("target step:3: the report's limit"), "{text}");
    let (code, text) = forge("made-done", &|r| {
        let s = &mut r.measurements.steps[2];
        s.outcome = firedrill::gameday::StepOutcome::Done;
        s.ended_ms = Some(s.started_ms.unwrap() + 2_000.0);
        s.duration_ms = Some(2_000.0);
        let t = r.targets.iter_mut().find(|t| t.name == "step:3").unwrap();
        t.achieved = Some(2_000.0);
    });
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("the timeline records no step ending then"),
        "{text}"
    );
}

#[test]
fn ctrl_c_during_a_persons_step_rolls_back_and_reports_aborted() {
    let _x = crate::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("out");
    let file = crate::repo(SCENARIO);
    let (mut run, _) = start(&state, &file, &out);
    run.wait_for("pg_promote()");
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(run.child.id() as i32, libc::SIGINT) };
    let (code, _, lines) = run.finish();
    assert_eq!(code, 3, "{}", lines.join("\n"));
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["verdict"], "aborted");
    let steps = report["measurements"]["steps"].as_array().unwrap();
    assert_eq!(steps[2]["outcome"], "aborted");
    assert_eq!(steps[3]["outcome"], "skipped");
    let sandbox = sandbox_of(&lines);
    assert!(!sandbox.exists() && crate::processes_working_in(&sandbox).is_empty());
    assert!(
        std::fs::read_dir(state.join("control"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn a_persons_step_nobody_can_act_on_is_refused_before_anything_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = crate::repo(SCENARIO);
    let out = crate::firedrill_process()
        .env("FIREDRILL_STATE_DIR", &state)
        .args([
            "run",
            file.to_str().unwrap(),
            "--format",
            "json",
            "--no-control",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let first = stderr.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("error: {}:", file.display()))
            && first.contains(": steps[2]: a `manual` step needs a person"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one error: {stderr}");
    assert!(out.stdout.is_empty());
    assert!(!state.join("journals").exists(), "nothing was touched");

    // And `firedrill step` says what is wrong with its own input.
    let (code, said) = step(&state, &["note", "--run", "x"]);
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("a note needs its text"), "{said}");
    let (code, said) = step(&state, &["ack", "--run", "nosuchrun"]);
    assert_eq!(code, 4, "{said}");
}
