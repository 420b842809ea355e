//! Behaviours no test ran before, one test each: a steady state that does not hold aborts
//! before any fault; the cleanup policies keep what they say; `recover` fails loudly when an
//! undo fails; a passphrase-protected key is refused before a drill costs anything; `render`
//! rewrites a report's views and refuses a format it does not know.

use std::path::{Path, PathBuf};

use crate::{firedrill_process, repo, run_to_end};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The directory a `cleanup` policy kept, as the drill announced it on stderr.
fn kept(stderr: &str) -> Option<PathBuf> {
    stderr
        .lines()
        .find_map(|l| l.split("kept ").nth(1)?.split(" (cleanup").next())
        .map(PathBuf::from)
}

#[test]
fn a_steady_state_that_does_not_hold_aborts_with_exit_3_before_any_fault() {
    let _x = crate::exclusive();
    let dir = tempfile::tempdir().unwrap();
    // No write probe on any machine answers within a microsecond at p99.
    let scenario = write(
        dir.path(),
        "unsteady.yaml",
        "version: 1\nname: unsteady\ntarget: {type: postgres-sandbox}\n\
         steady_state: {duration: 500ms, max_p99_latency: 1us}\n\
         fault: {type: kill, node: primary}\nrecovery: {type: promote, node: standby1}\n\
         targets: {rto: 2s}\n",
    );
    let (code, stdout, stderr) = run_to_end(
        firedrill_process()
            .args(["run", "--format", "json"])
            .arg(&scenario),
    );
    assert_eq!(code, 3, "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["verdict"], "aborted");
    assert!(
        r["abort_reason"]
            .as_str()
            .unwrap()
            .contains("steady state not met before the fault; nothing was injected"),
        "{}",
        r["abort_reason"]
    );
    assert_eq!(r["steady_state"]["met"], false);
    assert!(
        r["measurements"]["fault_at_ms"].is_null(),
        "a fault was injected"
    );
    let events: Vec<String> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        !events.iter().any(|e| e.contains("SIGKILL")),
        "the primary was killed after all: {events:?}"
    );
}

#[test]
fn cleanup_on_success_keeps_a_failed_drills_sandbox_and_never_keeps_a_passing_one() {
    let _x = crate::exclusive();
    let dir = tempfile::tempdir().unwrap();
    for (policy, rto, exit) in [("on-success", "1ms", 1), ("never", "10s", 0)] {
        let scenario = write(
            dir.path(),
            &format!("{policy}.yaml"),
            &format!(
                "version: 1\nname: cleanup-{policy}\ntarget: {{type: postgres-sandbox}}\n\
                 steady_state: {{duration: 500ms}}\n\
                 fault: {{type: kill, node: primary}}\n\
                 recovery: {{type: promote, node: standby1, after: 200ms}}\n\
                 observe: {{duration: 3s, stability: 500ms}}\n\
                 targets: {{rto: {rto}}}\ncleanup: {policy}\n"
            ),
        );
        let (code, _, stderr) = run_to_end(firedrill_process().arg("run").arg(&scenario));
        assert_eq!(code, exit, "{policy}: {stderr}");
        let kept = kept(&stderr).unwrap_or_else(|| panic!("{policy}: nothing kept: {stderr}"));
        assert!(
            kept.join("standby1").join("PG_VERSION").exists(),
            "{policy}: {kept:?}"
        );
        let left = crate::processes_working_in(&kept);
        assert!(left.is_empty(), "{policy}: nodes still running: {left:?}");
        std::fs::remove_dir_all(&kept).unwrap();
    }
    // And `on-success` removes a passing drill's sandbox.
    let scenario = dir.path().join("on-success.yaml");
    let text = std::fs::read_to_string(&scenario)
        .unwrap()
        .replace("rto: 1ms", "rto: 10s");
    std::fs::write(&scenario, text).unwrap();
    let (code, _, stderr) = run_to_end(firedrill_process().arg("run").arg(&scenario));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(kept(&stderr), None, "{stderr}");
}

#[test]
fn recover_exits_4_when_an_undo_fails_and_keeps_the_effect_pending() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("journals");
    std::fs::create_dir_all(&journals).unwrap();
    let journal = write(
        &journals,
        "2026-11-29T00-00-00Z-0000000000000001.jsonl",
        "{\"entry\":\"started\",\"at\":\"2026-11-29T00:00:00.000Z\",\"run_id\":\"0000000000000001\",\
         \"scenario\":\"undo-fails\",\"file\":\"undo-fails.yaml\",\"target\":\"postgres://x/y\",\
         \"pid\":4194303}\n\
         {\"entry\":\"effect\",\"id\":1,\"at\":\"2026-11-29T00:00:01.000Z\",\"what\":\"run fault \
         command block\",\"undo\":{\"type\":\"command\",\"argv\":[\"false\"]}}\n",
    );
    for _ in 0..2 {
        let (code, stdout, stderr) = run_to_end(
            firedrill_process()
                .env("FIREDRILL_STATE_DIR", dir.path())
                .arg("recover"),
        );
        assert_eq!(code, 4, "{stdout}{stderr}");
        assert!(
            stdout.contains("FAILED: run fault command block"),
            "{stdout}"
        );
        let read = firedrill::safety::journal::Read::open(&journal).unwrap();
        assert_eq!(read.pending().len(), 1, "the failed undo must stay pending");
    }
}

#[test]
fn a_passphrase_protected_signing_key_is_refused_before_the_drill_starts() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("locked_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "correct horse", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let started = std::time::Instant::now();
    let (code, _, stderr) = run_to_end(
        firedrill_process()
            .args(["run", "--out"])
            .arg(dir.path().join("out"))
            .arg("--sign-key")
            .arg(&key)
            .arg(repo("scenarios/sandbox-failover-sync.yaml")),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("passphrase-protected"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused only after {:?}: a sandbox was built first",
        started.elapsed()
    );
}

#[test]
fn render_rewrites_the_views_and_refuses_an_unknown_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    std::fs::copy(repo("tests/fixtures/report-pass.json"), &report).unwrap();
    let (code, _, stderr) = run_to_end(firedrill_process().arg("render").arg(&report));
    assert_eq!(code, 0, "{stderr}");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let name = fixture["scenario"]["name"].as_str().unwrap();
    for view in ["report.md", "report.html", "junit.xml", "metrics.prom"] {
        let text = std::fs::read_to_string(dir.path().join(view))
            .unwrap_or_else(|e| panic!("{view}: {e}"));
        assert!(
            text.contains(name),
            "{view} does not name the scenario {name}"
        );
    }
    let future = std::fs::read_to_string(&report).unwrap().replacen(
        "\"format_version\": 1",
        "\"format_version\": 99",
        1,
    );
    assert!(future.contains("\"format_version\": 99"));
    let newer = write(dir.path(), "newer.json", &future);
    let (code, _, stderr) = run_to_end(firedrill_process().arg("render").arg(&newer));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("format_version 99 is not one this firedrill reads"),
        "{stderr}"
    );
}

/// A ledger row changed behind the workload's back (the "fault" rewrites one acknowledged
/// row's payload on an existing primary) is an integrity failure, and it fails the drill even
/// though nothing went down and no write was lost.
#[test]
fn a_tampered_ledger_row_is_an_integrity_failure_that_fails_the_drill() {
    let _x = crate::exclusive();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bins = firedrill::pg::binaries::PgBinaries::locate(None).unwrap();
    let mut sb = rt
        .block_on(firedrill::systems::sandbox::Sandbox::build(
            bins.clone(),
            crate::sandbox::config(0, firedrill::scenario::Replication::Async),
            &|_| {},
        ))
        .unwrap();
    let p = sb.nodes[0].port;
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "tamper.yaml",
        &format!(
            "version: 1\nname: tamper\nenvironment: test\ntarget: {{type: postgres, dsn_env: APP_DSN}}\n\
             workload: {{connections: 2, table: tamper_ledger}}\nsteady_state: {{duration: 500ms}}\n\
             fault: {{type: command, run: [psql, -h, 127.0.0.1, -p, '{p}', -U, firedrill, -d, postgres, \
               -c, \"update tamper_ledger set payload = 'tampered' where ctid = (select min(ctid) from tamper_ledger)\"]}}\n\
             recovery: {{type: wait}}\nobserve: {{duration: 1s, stability: 200ms}}\n\
             targets: {{max_lost_writes: 0}}\n"
        ),
    );
    let mut cmd = firedrill_process();
    cmd.args(["run", "--format", "json"])
        .arg(&scenario)
        .env(
            "APP_DSN",
            format!("host=127.0.0.1 port={p} user=firedrill dbname=postgres"),
        )
        .env(
            "PATH",
            format!("{}:{}", bins.dir.display(), std::env::var("PATH").unwrap()),
        );
    let (code, stdout, stderr) = run_to_end(&mut cmd);
    sb.teardown(false);
    assert_eq!(code, 1, "{stderr}\n{stdout}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["verdict"], "fail");
    assert_eq!(
        r["measurements"]["integrity_failures"], 1,
        "{}",
        r["measurements"]
    );
    assert_eq!(r["measurements"]["lost_writes"], 0);
    let integrity = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "integrity")
        .unwrap_or_else(|| panic!("no integrity target: {}", r["targets"]));
    assert_eq!(integrity["met"], false, "{integrity}");
}

/// A fault nobody felt (`true` as the fault command) fails the drill with "no effect observed"
/// rather than passing with an RTO of nothing; `expect_outage: false` says the drill proves
/// the opposite, and then it passes.
#[test]
fn a_fault_with_no_visible_effect_fails_unless_no_outage_is_expected() {
    let _x = crate::exclusive();
    let db = crate::aws::LocalDb::new();
    let dir = tempfile::tempdir().unwrap();
    let run = |observe_extra: &str| {
        let file = dir.path().join("no-effect.yaml");
        std::fs::write(
            &file,
            format!(
                "version: 1\nname: no-effect\nenvironment: test\n\
                 target: {{type: postgres, dsn_env: FD_NO_EFFECT_DSN}}\n\
                 workload: {{connections: 1}}\nprobes: {{interval: 50ms, timeout: 500ms}}\n\
                 steady_state: {{duration: 500ms}}\nfault: {{type: command, run: ['true']}}\n\
                 recovery: {{type: wait}}\n\
                 observe: {{duration: 1s, stability: 200ms{observe_extra}}}\n\
                 targets: {{rto: 5s}}\n"
            ),
        )
        .unwrap();
        let mut cmd = crate::firedrill_process();
        cmd.args(["run", "--format", "json"])
            .arg(&file)
            .env("FD_NO_EFFECT_DSN", db.dsn());
        let (code, stdout, stderr) = crate::run_to_end(&mut cmd);
        let r: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
        (code, r, stderr)
    };
    let (code, r, stderr) = run("");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("no effect observed: no probe failed after the fault"),
        "{stderr}"
    );
    let effect = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "fault_effect")
        .unwrap();
    assert_eq!(
        (effect["met"].clone(), effect["achieved"].clone()),
        (false.into(), 0.0.into())
    );
    let (code, r, stderr) = run(", expect_outage: false");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        r["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != "fault_effect"),
        "{}",
        r["targets"]
    );
}

/// A command fault's effect comes when the command says so: a line `FIREDRILL_EFFECT` on its
/// stdout is the fault instant (RTO counts from it), and without it RTO counts from the first
/// failed probe, not from the command's start. The command sleeps 1 s first, then freezes the
/// database's every process for 1.5 s.
#[test]
fn a_command_fault_is_timed_from_its_marker_or_its_first_failure_not_its_start() {
    let _x = crate::exclusive();
    let db = crate::aws::LocalDb::new();
    let pm = db.postmaster_pid();
    let dir = tempfile::tempdir().unwrap();
    let run = |marker: &str| {
        let file = dir.path().join("marked.yaml");
        let script = format!(
            "sleep 1; {marker} kill -STOP {pm}; pkill -STOP -P {pm}; sleep 1.5; \
             pkill -CONT -P {pm}; kill -CONT {pm}"
        );
        std::fs::write(
            &file,
            format!(
                "version: 1\nname: marked\nenvironment: test\n\
                 target: {{type: postgres, dsn_env: FD_MARKED_DSN}}\n\
                 workload: {{connections: 1}}\nprobes: {{interval: 20ms, timeout: 300ms}}\n\
                 steady_state: {{duration: 500ms}}\n\
                 fault: {{type: command, run: [sh, -c, '{script}']}}\n\
                 recovery: {{type: wait}}\nobserve: {{duration: 5s, stability: 500ms}}\n\
                 targets: {{rto: 5s}}\n"
            ),
        )
        .unwrap();
        let mut cmd = crate::firedrill_process();
        cmd.args(["run", "--format", "json"])
            .arg(&file)
            .env("FD_MARKED_DSN", db.dsn());
        let (code, stdout, stderr) = crate::run_to_end(&mut cmd);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let f = |r: &serde_json::Value, k: &str| r["measurements"][k].as_f64().unwrap_or(f64::NAN);

    let r = run("echo FIREDRILL_EFFECT;");
    assert_eq!(r["measurements"]["rto_from"], "marker");
    let (started, at, done) = (
        f(&r, "fault_started_ms"),
        f(&r, "fault_at_ms"),
        f(&r, "fault_done_ms"),
    );
    assert!(
        at - started >= 1000.0,
        "the marker came after the 1 s sleep: {started} {at}"
    );
    assert!(done - at >= 1500.0, "the command ran on: {at} {done}");
    let first_fail = r["measurements"]["write_outages"][0]["start_ms"]
        .as_f64()
        .unwrap();
    assert!(
        first_fail >= at - 20.0 && first_fail <= at + 60.0,
        "the effect followed the marker: {at} {first_fail}"
    );
    let rto = f(&r, "rto_ms");
    eprintln!(
        "marker: started {started:.1} marker {at:.1} first failure {first_fail:.1} RTO {rto:.1}"
    );
    assert!((1400.0..2300.0).contains(&rto), "RTO {rto} from the marker");

    let r = run("");
    assert_eq!(r["measurements"]["rto_from"], "first-failure");
    let (started, rto, outage) = (
        f(&r, "fault_started_ms"),
        f(&r, "rto_ms"),
        f(&r, "write_outage_ms"),
    );
    assert_eq!(rto, outage);
    let first_fail = r["measurements"]["write_outages"][0]["start_ms"]
        .as_f64()
        .unwrap();
    eprintln!("no marker: started {started:.1} first failure {first_fail:.1} RTO {rto:.1}");
    assert!(first_fail - started >= 950.0, "{started} {first_fail}");
    assert!(
        (1400.0..2300.0).contains(&rto),
        "RTO {rto}, not counted from the start"
    );
}
