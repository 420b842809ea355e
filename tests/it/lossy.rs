//! Drills that lose writes for real, through the command line, checked against a ground truth
//! the test computes itself. An existing primary with an asynchronous standby (built here): the
//! fault cuts replication at the primary (a `reject` line in `pg_hba.conf`, the walsender
//! terminated), lets the writers go on for half a second, then SIGKILLs the primary; the
//! recovery promotes the standby, which never saw those writes. Afterwards the test starts the
//! old primary's data directory on a port of its own (crash recovery keeps every commit) and
//! counts the drill's rows there that the new primary lacks: the writes really lost.

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use firedrill::pg::binaries::{self, PgBinaries};
use firedrill::scenario::Replication;
use firedrill::systems::sandbox::Sandbox;

/// The drill's ledger rows, as (client, seq), in the database on `port`.
async fn ledger_rows(port: u16, run: &str) -> HashSet<(i32, i64)> {
    ledger_rows_in(port, "lossy_ledger", run).await
}

async fn ledger_rows_in(port: u16, table: &str, run: &str) -> HashSet<(i32, i64)> {
    let (c, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=firedrill dbname=postgres connect_timeout=5"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    c.query(
        &format!("select client::int4, seq::int8 from {table} where run = $1"),
        &[&run],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// `pg_ctl` on `data_dir`, as the user the sandbox runs PostgreSQL as.
pub(crate) fn pg_ctl(bins: &PgBinaries, data_dir: &Path, args: &[&str]) {
    let mut cmd = std::process::Command::new(bins.program("pg_ctl"));
    cmd.arg("-D").arg(data_dir).args(args);
    if let Some((uid, gid)) = binaries::run_as(None).unwrap() {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().unwrap();
    let log = args
        .iter()
        .position(|a| *a == "-l")
        .and_then(|i| std::fs::read_to_string(args[i + 1]).ok())
        .unwrap_or_default();
    assert!(out.status.success(), "pg_ctl {args:?}: {out:?}\n{log}");
}

/// Starts the cluster in `data_dir` on a free port of its own (its log in `log`); the port.
pub(crate) fn start_on_a_free_port(bins: &PgBinaries, data_dir: &Path, log: &Path) -> u16 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    pg_ctl(
        bins,
        data_dir,
        &[
            "-w",
            "-o",
            // Loopback whatever the node listened on (a zone's address exists only in its
            // namespace).
            &format!("-p {port} -c listen_addresses=127.0.0.1"),
            "-l",
            log.to_str().unwrap(),
            "start",
        ],
    );
    port
}

#[test]
fn an_async_pair_loses_the_writes_its_standby_never_received_and_firedrill_counts_them() {
    let _x = crate::exclusive();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bins = PgBinaries::locate(None).unwrap();
    let mut sb = rt
        .block_on(Sandbox::build(
            bins.clone(),
            crate::sandbox::config(1, Replication::Async),
            &|_| {},
        ))
        .unwrap();
    let (p, s) = (sb.nodes[0].port, sb.nodes[1].port);
    let old_dir = sb.nodes[0].data_dir.clone();
    let pid = sb.nodes[0].pid().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut-and-kill.sh");
    std::fs::write(
        &cut,
        format!(
            "set -e\n\
             hba='{hba}'\n\
             {{ echo 'host replication all 127.0.0.1/32 reject'; cat \"$hba\"; }} > \"$hba.new\"\n\
             cat \"$hba.new\" > \"$hba\"\n\
             psql -h 127.0.0.1 -p {p} -U firedrill -d postgres -Atqc 'select pg_reload_conf()' \
               -c 'select pg_terminate_backend(pid) from pg_stat_replication'\n\
             sleep 0.5\n\
             kill -9 {pid}\n",
            hba = old_dir.join("pg_hba.conf").display()
        ),
    )
    .unwrap();
    let scenario = dir.path().join("lossy.yaml");
    std::fs::write(
        &scenario,
        format!(
            "version: 1\nname: lossy\nenvironment: test\ntarget: {{type: postgres, dsn_env: APP_DSN}}\n\
             workload: {{connections: 4, table: lossy_ledger, keep_rows: true}}\nsteady_state: {{duration: 500ms}}\n\
             fault: {{type: command, run: [sh, '{}']}}\n\
             recovery: {{type: command, after: 1s, \
               run: [psql, -h, 127.0.0.1, -p, '{s}', -U, firedrill, -d, postgres, -c, 'select pg_promote()']}}\n\
             observe: {{duration: 4s, stability: 500ms}}\n\
             targets: {{rto: 10s}}\n",
            cut.display()
        ),
    )
    .unwrap();
    let dsn = format!(
        "host=127.0.0.1,127.0.0.1 port={p},{s} user=firedrill dbname=postgres \
         target_session_attrs=read-write"
    );
    let bin_dir = bins.dir.display().to_string();
    let mut cmd = crate::firedrill_process();
    cmd.args(["run", "--format", "json"])
        .arg(&scenario)
        .env("FIREDRILL_STATE_DIR", crate::test_state_dir())
        .env("APP_DSN", &dsn)
        .env(
            "PATH",
            format!("{bin_dir}:{}", std::env::var("PATH").unwrap()),
        );
    let (code, stdout, stderr) = crate::run_to_end(&mut cmd);
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let m = &r["measurements"];
    let lost = m["lost_writes"].as_u64().expect("lost writes measured");
    let in_doubt = m["in_doubt_writes"].as_u64().unwrap();
    let run = r["run_id"].as_str().unwrap();

    // Ground truth: the old primary's durable rows that the new primary lacks. Its postmaster
    // (killed by the fault) is the test's child: reap it first.
    sb.kill(0).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !crate::processes_working_in(&old_dir).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the old primary's backends linger"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = dir.path().join("old-primary.log");
    std::fs::write(&log, "").unwrap();
    if let Some((uid, gid)) = binaries::run_as(None).unwrap() {
        std::os::unix::fs::chown(&log, Some(uid), Some(gid)).unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    }
    let port = start_on_a_free_port(&bins, &old_dir, &log);
    let (old, new) =
        rt.block_on(async { (ledger_rows(port, run).await, ledger_rows(s, run).await) });
    pg_ctl(&bins, &old_dir, &["-w", "-m", "immediate", "stop"]);
    sb.teardown(false);
    let truth = old.difference(&new).count() as u64;
    eprintln!("lost {lost}, in doubt {in_doubt}; ground truth {truth} committed writes missing");
    assert!(
        truth > 0,
        "the drill lost nothing: the test's fault did not bite"
    );
    assert!(
        lost <= truth && truth <= lost + in_doubt,
        "firedrill counted {lost} lost ({in_doubt} in doubt); the old primary holds {truth} \
         committed writes the new primary lacks"
    );
    assert!(
        new.difference(&old).count() > 0,
        "the new primary took writes after the promotion"
    );
}

/// The shipped asynchronous scenario through the command line, kept (`--keep`) so that the test
/// can start both data directories afterwards and count, itself, the acknowledged writes the
/// promoted standby lacks. Loopback replication is fast, so that count may be zero; firedrill's
/// must agree with it either way.
#[test]
fn the_shipped_async_scenario_counts_exactly_what_the_old_primary_holds_and_the_new_lacks() {
    let _x = crate::exclusive();
    let mut cmd = crate::firedrill_process();
    cmd.args(["run", "--keep", "--format", "json"])
        .arg(crate::repo("scenarios/sandbox-failover-async.yaml"))
        .env("FIREDRILL_STATE_DIR", crate::test_state_dir());
    let (code, stdout, stderr) = crate::run_to_end(&mut cmd);
    let kept = stderr
        .lines()
        .find_map(|l| l.split("kept ").nth(1)?.split(" (cleanup").next())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("no kept directory announced: {stderr}"));
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let m = &r["measurements"];
    let lost = m["lost_writes"].as_u64().expect("lost writes measured");
    let in_doubt = m["in_doubt_writes"].as_u64().unwrap();
    let run = r["run_id"].as_str().unwrap().to_owned();
    assert!(m["acknowledged_writes"].as_u64().unwrap() > 0, "{stdout}");

    let bins = PgBinaries::locate(None).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut rows = Vec::new();
    for node in ["primary", "standby1"] {
        let data = kept.join(node);
        let log = kept.join(format!("{node}-truth.log"));
        let port = start_on_a_free_port(&bins, &data, &log);
        rows.push(rt.block_on(ledger_rows_in(port, "firedrill_ledger", &run)));
        pg_ctl(&bins, &data, &["-w", "-m", "fast", "stop"]);
    }
    std::fs::remove_dir_all(&kept).unwrap();
    let truth = rows[0].difference(&rows[1]).count() as u64;
    eprintln!("async scenario: lost {lost}, in doubt {in_doubt}; ground truth {truth}");
    assert!(
        lost <= truth && truth <= lost + in_doubt,
        "firedrill counted {lost} lost ({in_doubt} in doubt); the old primary holds {truth} \
         committed writes the new primary lacks"
    );
    assert_eq!(
        code, 0,
        "the shipped scenario's targets: {stderr}\n{stdout}"
    );
}
