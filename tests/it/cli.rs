//! The command line: exit codes, help, and outputs that scripts rely on.

use assert_cmd::Command;

use crate::repo;

fn firedrill() -> Command {
    let mut c = crate::firedrill_cmd();
    c.current_dir(repo(""));
    c
}

/// Runs the command, asserts its exit code, and returns (stdout, stderr).
fn expect_exit(cmd: &mut Command, code: i32) -> (String, String) {
    let out = cmd.assert().code(code).get_output().clone();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn validate_exit_codes_and_messages() {
    firedrill()
        .args(["validate", "scenarios/sandbox-failover-sync.yaml"])
        .assert()
        .code(0)
        .stdout("scenarios/sandbox-failover-sync.yaml: ok\n");
    let (_, stderr) = expect_exit(
        firedrill().args([
            "validate",
            "scenarios/sandbox-failover-sync.yaml",
            "tests/corpus/bad/negative-duration.yaml",
        ]),
        2,
    );
    assert_eq!(
        stderr,
        "error: tests/corpus/bad/negative-duration.yaml:5:13: probes.interval: \
         invalid duration \"-5s\": durations cannot be negative\n"
    );
}

#[test]
fn usage_errors_exit_2_and_help_lists_exit_codes() {
    firedrill().arg("frobnicate").assert().code(2);
    firedrill().args(["run"]).assert().code(2);
    let help = firedrill()
        .arg("--help")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(help).unwrap();
    assert!(help.contains("4  environment error"), "{help}");
    let run_help = firedrill()
        .args(["run", "--help"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert!(
        String::from_utf8(run_help)
            .unwrap()
            .contains("firedrill run scenarios/sandbox-failover-sync.yaml")
    );
}

/// `--retain` below a day is refused before anything is read; below 365 days the run warns
/// that its evidence can outlive its lock no longer than the audit period.
#[test]
fn a_retention_under_a_day_is_refused_and_under_a_year_warned() {
    let run = |retain: &str| {
        let mut cmd = firedrill();
        cmd.args([
            "run",
            "--evidence",
            "s3://evidence/drills",
            "--sign-key",
            "/nonexistent/key",
            "--retain",
            retain,
            "/nonexistent/scenario.yaml",
        ]);
        cmd
    };
    for short in ["1s", "23h 59m"] {
        let (_, err) = expect_exit(&mut run(short), 2);
        assert!(
            err.contains(&format!(
                "invalid value '{short}' for '--retain <DURATION>'"
            )) && err.contains("at least 1 day"),
            "{err}"
        );
    }
    // Past the flag, the missing scenario stops the run (exit 2) before any AWS call.
    let (_, err) = expect_exit(&mut run("30days"), 2);
    assert!(
        err.starts_with("warning: --retain 30 days: ") && err.contains("12-month SOC 2 Type II"),
        "{err}"
    );
    let (_, err) = expect_exit(&mut run("1day"), 2);
    assert!(err.starts_with("warning: --retain 1 day: "), "{err}");
    let (_, err) = expect_exit(&mut run("36h"), 2);
    assert!(err.starts_with("warning: --retain 1.5 days: "), "{err}");
    let (_, err) = expect_exit(&mut run("365days"), 2);
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn plan_lists_the_side_effects() {
    let (plan, _) = expect_exit(
        firedrill().args(["plan", "scenarios/sandbox-failover-sync.yaml"]),
        0,
    );
    insta::assert_snapshot!("plan-sandbox-failover-sync", plan);
    let (plan, _) = expect_exit(
        firedrill().args(["plan", "scenarios/sandbox-restore-pitr.yaml"]),
        0,
    );
    insta::assert_snapshot!("plan-sandbox-restore-pitr", plan);
    let (plan, _) = expect_exit(
        firedrill().args(["plan", "scenarios/rds-fleet-monthly-restore.yaml"]),
        0,
    );
    insta::assert_snapshot!("plan-rds-fleet-monthly-restore", plan);
}

#[test]
fn schema_is_json_and_matches_the_committed_copy() {
    let out = firedrill()
        .arg("schema")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let live: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("schema/scenario.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        live, committed,
        "regenerate with: firedrill schema > schema/scenario.schema.json"
    );
    let report = firedrill()
        .args(["schema", "report"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert!(report["properties"]["format_version"].is_object());
    assert!(report["properties"]["fleet"].is_object());
    let summary = firedrill()
        .args(["schema", "fleet-summary"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let summary: serde_json::Value = serde_json::from_slice(&summary).unwrap();
    for key in ["format_version", "fleet_id", "members", "peak_concurrency"] {
        assert!(
            summary["required"]
                .as_array()
                .unwrap()
                .contains(&key.into()),
            "{key}"
        );
    }
}

#[test]
fn a_missing_postgres_installation_is_an_environment_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-bins.yaml");
    std::fs::write(
        &path,
        "version: 1\nname: no-bins\ntarget: {type: postgres-sandbox, bin_dir: /nonexistent/pg/bin}\n\
         fault: {type: kill, node: primary}\nrecovery: {type: promote, node: standby1}\ntargets: {rto: 2s}\n",
    )
    .unwrap();
    let (_, stderr) = expect_exit(firedrill().arg("run").arg(&path), 4);
    assert!(
        stderr.contains("error: PostgreSQL server programs (initdb, postgres, pg_basebackup) not found (searched: /nonexistent/pg/bin)"),
        "{stderr}"
    );
}

/// A drill on an existing PostgreSQL through its DSN, with an operator's command as the fault.
fn existing_command_drill(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("existing.yaml");
    std::fs::write(
        &path,
        "version: 1\nname: existing\nenvironment: test\n\
         target: {type: postgres, dsn_env: FIREDRILL_DSN}\n\
         fault: {type: command, run: [\"true\"]}\nrecovery: {type: wait}\ntargets: {rto: 30s}\n",
    )
    .unwrap();
    path
}

#[test]
fn an_unset_dsn_variable_is_an_environment_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for scenario in [
        existing_command_drill(dir.path()),
        crate::repo("scenarios/patroni-existing-switchover.yaml"),
    ] {
        let (_, stderr) = expect_exit(
            firedrill()
                .arg("run")
                .arg(&scenario)
                .env_remove("FIREDRILL_DSN"),
            4,
        );
        assert!(
            stderr.contains("environment variable FIREDRILL_DSN is not set"),
            "{stderr}"
        );
    }
}

#[test]
fn an_unset_patroni_api_variable_is_an_environment_error_naming_it() {
    let (_, stderr) = expect_exit(
        firedrill()
            .args(["run", "scenarios/patroni-existing-switchover.yaml"])
            .env("FIREDRILL_DSN", "host=127.0.0.1 port=1")
            .env_remove("FIREDRILL_PATRONI_API"),
        4,
    );
    assert!(
        stderr.contains(
            "environment variable FIREDRILL_PATRONI_API is not set (the scenario's \
             `target.api_env`: the Patroni members' REST API URLs, comma-separated)"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn an_unreachable_existing_target_is_an_environment_error_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let (stdout, stderr) = expect_exit(
        firedrill()
            .arg("run")
            .arg(existing_command_drill(dir.path()))
            .env(
                "FIREDRILL_DSN",
                "host=127.0.0.1 port=1 user=app password=hunter2-secret dbname=app connect_timeout=2",
            ),
        4,
    );
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("cannot reach"), "{all}");
    assert!(
        !all.contains("hunter2-secret"),
        "the password leaked: {all}"
    );
    // The same for a Patroni API whose URL carries the REST API's credentials.
    let (stdout, stderr) = expect_exit(
        firedrill()
            .args(["run", "scenarios/patroni-existing-switchover.yaml"])
            .env("FIREDRILL_DSN", "host=127.0.0.1 port=1 user=app")
            .env(
                "FIREDRILL_PATRONI_API",
                "http://admin:rest-api-secret@127.0.0.1:1",
            ),
        4,
    );
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("cannot reach Patroni's REST API (http://127.0.0.1:1)"),
        "{all}"
    );
    assert!(
        !all.contains("rest-api-secret"),
        "the password leaked: {all}"
    );
}

#[test]
fn a_signed_sandbox_drill_writes_a_report_that_ssh_keygen_verifies() {
    let _x = crate::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("firedrill_ed25519");
    let (allowed_line, _) = expect_exit(
        firedrill()
            .args(["keygen", "--identity", "drills@example", "--out"])
            .arg(&key),
        0,
    );
    let allowed = dir.path().join("allowed_signers");
    std::fs::write(&allowed, &allowed_line).unwrap();
    // A second keygen to the same path refuses (exit 2) and leaves the key alone.
    let before = std::fs::read(&key).unwrap();
    expect_exit(firedrill().args(["keygen", "--out"]).arg(&key), 2);
    assert_eq!(std::fs::read(&key).unwrap(), before);

    let out_dir = dir.path().join("out");
    let (stdout, _) = expect_exit(
        firedrill()
            .args([
                "run",
                "scenarios/sandbox-failover-sync.yaml",
                "--format",
                "json",
            ])
            .arg("--out")
            .arg(&out_dir)
            .arg("--sign-key")
            .arg(&key),
        0,
    );
    let printed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let report_bytes = std::fs::read(out_dir.join("report.json")).unwrap();
    let written: serde_json::Value = serde_json::from_slice(&report_bytes).unwrap();
    assert_eq!(printed, written);
    assert_eq!(
        written["format_version"],
        firedrill::report::REPORT_FORMAT_VERSION
    );
    assert_eq!(written["verdict"], "pass");
    assert_eq!(written["measurements"]["lost_writes"], 0);
    assert!(
        written["measurements"]["acknowledged_writes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(written["measurements"]["rto_ms"].as_f64().unwrap() < 2000.0);
    assert!(
        written["measurements"]["availability_pct"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(written["measurements"]["rpo_ms"].is_number());
    assert_eq!(written["scenario"]["sha256"].as_str().unwrap().len(), 64);
    assert!(
        written["signer"]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    let private = std::fs::read_to_string(&key).unwrap();
    let private_body: String = private.lines().nth(1).unwrap().to_owned();
    assert!(!String::from_utf8_lossy(&report_bytes).contains(&private_body));

    // The auditor's command from the README, with OpenSSH alone.
    let verified = std::process::Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "drills@example", "-n", "firedrill-report", "-s"])
        .arg(out_dir.join("report.json.sig"))
        .stdin(std::fs::File::open(out_dir.join("report.json")).unwrap())
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn a_bad_signing_key_is_refused_before_the_drill_starts() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("not-a-key");
    std::fs::write(&key, "hello").unwrap();
    let (_, stderr) = expect_exit(
        firedrill()
            .args(["run", "scenarios/sandbox-failover-sync.yaml", "--out"])
            .arg(dir.path())
            .arg("--sign-key")
            .arg(&key),
        2,
    );
    assert!(stderr.starts_with("error: signing key "), "{stderr}");
    assert!(
        !stderr.contains("== setup"),
        "the drill must not start: {stderr}"
    );
}

/// The `postgres` target for real: an existing primary + standby (built here), reached through a
/// multi-host DSN from the environment, failed over by operator commands.
#[test]
fn an_existing_cluster_is_driven_through_its_dsn_and_operator_commands() {
    let _x = crate::exclusive();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bins = firedrill::pg::binaries::PgBinaries::locate(None).unwrap();
    let mut sb = rt
        .block_on(firedrill::systems::sandbox::Sandbox::build(
            bins,
            crate::sandbox::config(1, firedrill::scenario::Replication::Synchronous),
            &|_| {},
        ))
        .unwrap();
    let (p, s) = (sb.nodes[0].port, sb.nodes[1].port);
    let pid = sb.nodes[0].pid().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("existing.yaml");
    std::fs::write(
        &scenario,
        format!(
            "version: 1\nname: existing\nenvironment: test\ntarget: {{type: postgres, dsn_env: APP_DSN}}\n\
             workload: {{connections: 2}}\nsteady_state: {{duration: 500ms}}\n\
             fault: {{type: command, run: [kill, -9, '{pid}']}}\n\
             recovery: {{type: command, after: 300ms, \
               run: [psql, -h, 127.0.0.1, -p, '{s}', -U, firedrill, -d, postgres, -c, 'select pg_promote()']}}\n\
             observe: {{duration: 4s, stability: 500ms}}\n\
             targets: {{rto: 3s, max_lost_writes: 0}}\n"
        ),
    )
    .unwrap();
    let dsn = format!(
        "host=127.0.0.1,127.0.0.1 port={p},{s} user=firedrill password=s3cret-pw dbname=postgres \
         target_session_attrs=read-write"
    );
    let out = firedrill()
        .args(["run", "--format", "json"])
        .arg(&scenario)
        .env("APP_DSN", &dsn)
        .env(
            "PATH",
            format!("{}:{}", sb_bin_dir(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    // The drill leaves the application's database as it found it: none of its ledger or probe
    // rows remain on the new primary.
    let left: (i64, i64) = rt.block_on(async {
        let c = sb.connect(1).await.unwrap();
        let q = |t: &'static str| format!("select count(*) from {t}");
        (
            c.query_one(&q("firedrill_ledger"), &[])
                .await
                .unwrap()
                .get(0),
            c.query_one(&q("firedrill_probe"), &[])
                .await
                .unwrap()
                .get(0),
        )
    });
    sb.teardown(false);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    assert_eq!(left, (0, 0), "rows left behind");
    assert!(
        stderr.contains("ledger and probe rows (workload.keep_rows keeps them)"),
        "{stderr}"
    );
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["target"]["kind"], "postgres");
    // What the operator's command printed is kept in the timeline (psql's result of pg_promote).
    let recovery = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "recovery-action")
        .unwrap();
    assert!(
        recovery["detail"]
            .as_str()
            .unwrap()
            .contains("; it printed:  pg_promote  | ------------ |  t | (1 row)"),
        "{recovery}"
    );
    // The operator's commands moved the writer (measured, though `any` judges nothing here).
    let w = &r["measurements"]["writer"];
    assert_ne!(w["before"]["at"], w["after"]["at"], "{w}");
    assert_eq!(r["measurements"]["lost_writes"], 0);
    assert!(r["measurements"]["rto_ms"].as_f64().unwrap() >= 300.0);
    assert!(
        !format!("{stdout}{stderr}").contains("s3cret-pw"),
        "the password leaked"
    );
}

fn sb_bin_dir() -> String {
    firedrill::pg::binaries::PgBinaries::locate(None)
        .unwrap()
        .dir
        .display()
        .to_string()
}

/// Ctrl-C while the primary is paused: the pause is rolled back, the sandbox removed, the
/// report says aborted, exit 3.
#[test]
fn ctrl_c_during_a_pause_rolls_back_cleans_up_and_reports_aborted() {
    interrupted_during_a_pause(libc::SIGINT);
}

/// SIGTERM (a scheduler stopping the job, `systemctl stop`) means what Ctrl-C means.
#[test]
fn sigterm_during_a_pause_rolls_back_cleans_up_and_reports_aborted() {
    interrupted_during_a_pause(libc::SIGTERM);
}

fn interrupted_during_a_pause(signal: i32) {
    use std::io::{BufRead, BufReader};
    let _x = crate::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("long-pause.yaml");
    std::fs::write(
        &scenario,
        "version: 1\nname: long-pause\ntarget: {type: postgres-sandbox}\n\
         steady_state: {duration: 500ms}\nfault: {type: pause, node: primary, duration: 60s}\n\
         recovery: {type: wait}\nobserve: {duration: 90s, stability: 1s}\ntargets: {rto: 1s}\n",
    )
    .unwrap();
    let mut child = crate::firedrill_process()
        .args(["run", "--out"])
        .arg(dir.path())
        .arg(&scenario)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut sandbox = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("primary in ").nth(1) {
            let dir = rest.split(" (").next().unwrap();
            sandbox = Some(
                std::path::PathBuf::from(dir.trim())
                    .parent()
                    .unwrap()
                    .to_owned(),
            );
        }
        if line.contains("SIGSTOP") {
            break;
        }
    }
    let sandbox = sandbox.expect("the sandbox directory was announced");
    assert!(sandbox.exists());
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, signal) };
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("rolled back: SIGCONT")),
        "{rest:?}"
    );
    assert!(!sandbox.exists(), "sandbox directory left behind");
    let left = crate::processes_working_in(&sandbox);
    assert!(left.is_empty(), "processes left: {left:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["verdict"], "aborted");
    assert!(
        report["abort_reason"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    // The fault was rolled back by firedrill, not recovered from: no RTO, no target met.
    assert!(
        report["measurements"]["rto_ms"].is_null(),
        "{}",
        report["measurements"]
    );
    let targets = report["targets"].as_array().unwrap();
    assert!(!targets.is_empty());
    assert!(targets.iter().all(|t| t["met"] == false), "{targets:?}");
}
