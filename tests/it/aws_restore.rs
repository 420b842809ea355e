//! Restore drills of an `aws-rds` instance, end to end: AWS's side (snapshot, restore, point in
//! time, waiting, tagging, deletion) against moto server, and the restored instance's endpoint
//! a local PostgreSQL database, so that the verification (schema, checksums against the source,
//! assertions) runs for real on an AWS-driven restore.
//!
//! moto has no database behind an instance: the test makes the "restored" database itself, a
//! copy of the source (`CREATE DATABASE ... TEMPLATE`), and the scenario reaches it through
//! `restore.instance.dsn_env`. A copy the test then damages must fail the drill.

use firedrill_aws::moto::Server;

use crate::aws::{LocalDb, MOTO_CREDENTIALS, rds, recover_aws};

/// A source database `app` with two tables, and `app_restored`, its copy.
pub(crate) fn source_and_copy(db: &LocalDb) {
    db.rt.block_on(async {
        let admin = db.sb.connect(0).await.unwrap();
        admin.batch_execute("create database app").await.unwrap();
        let (app, conn) = tokio_postgres::connect(&db_dsn(db, "app"), tokio_postgres::NoTls)
            .await
            .unwrap();
        let h = tokio::spawn(conn);
        app.batch_execute(
            "create table accounts (id int primary key, balance bigint not null);
             insert into accounts select g, g * 10 from generate_series(1, 10000) g;
             create table orders (id bigint primary key, account int references accounts,
                                  note text);
             insert into orders select g, 1 + g % 10000, 'order ' || g
               from generate_series(1, 5000) g;",
        )
        .await
        .unwrap();
        drop(app);
        let _ = h.await;
        admin
            .batch_execute("create database app_restored template app")
            .await
            .unwrap();
    });
}

pub(crate) fn db_dsn(db: &LocalDb, name: &str) -> String {
    db.dsn()
        .replace("dbname=postgres", &format!("dbname={name}"))
}

/// A restored instance's DSN that nothing answers.
const DEAD: &str = "host=127.0.0.1 port=1 user=firedrill dbname=app";

/// moto with the source instance `orders`, the local source database with its copy, and a
/// directory for the scenario, reports and state.
struct Setup {
    moto: Server,
    db: LocalDb,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let moto = Server::start();
        let db = LocalDb::new();
        db.rt.block_on(moto.postgres_instance("orders", false, &[]));
        source_and_copy(&db);
        Setup {
            moto,
            db,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    /// A restore scenario of `orders` with `backup`, the restored instance reached through
    /// `$FD_RESTORED_DSN`.
    fn scenario(&self, backup: &str, available_within: &str) -> std::path::PathBuf {
        self.scenario_with(backup, available_within, "", 0)
    }

    /// [`Self::scenario`] with more `restore:` keys (`extra`, one line each, indented by two)
    /// and `connections` writers.
    fn scenario_with(
        &self,
        backup: &str,
        available_within: &str,
        extra: &str,
        connections: u32,
    ) -> std::path::PathBuf {
        let file = self.dir.path().join("aws-restore.yaml");
        std::fs::write(
            &file,
            format!(
                "version: 1\nname: aws-restore\nenvironment: test\n\
                 target: {{type: aws-rds, instance: orders, dsn_env: FD_AWS_DSN, \
                 region: us-east-1, endpoint_url: '{}'}}\n\
                 workload: {{connections: {connections}}}\n\
                 restore:\n  backup: {backup}\n{extra}\
                 \x20 instance: {{class: db.t3.micro, available_within: {available_within}, \
                 dsn_env: FD_RESTORED_DSN}}\n\
                 \x20 verify:\n    source_quiescent: true\n    assertions:\n\
                 \x20     - {{name: every account, sql: 'select count(*) = 10000 from accounts'}}\n\
                 targets: {{rto: 5m, checksums: match}}\n",
                self.moto.url()
            ),
        )
        .unwrap();
        file
    }

    /// `firedrill run FILE --out DIR/out` with moto's credentials and both DSNs.
    fn command(&self, file: &std::path::Path, restored: &str) -> std::process::Command {
        let mut cmd = crate::firedrill_process();
        cmd.args([
            "run",
            "--out",
            self.dir.path().join("out").to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .env("FIREDRILL_STATE_DIR", self.state())
        .env("FD_AWS_DSN", db_dsn(&self.db, "app"))
        .env("FD_RESTORED_DSN", restored)
        .envs(MOTO_CREDENTIALS);
        cmd
    }

    fn run(&self, file: &std::path::Path, restored: &str) -> Drill {
        let out = self.dir.path().join("out");
        let _ = std::fs::remove_dir_all(&out);
        let o = self.command(file, restored).output().unwrap();
        let report = std::fs::read(out.join("report.json"))
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap_or(serde_json::Value::Null);
        Drill {
            code: o.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            report,
        }
    }

    fn left_in_aws(&self) -> Vec<String> {
        left_in_aws(&self.db.rt, &self.moto)
    }
}

/// The instances and snapshots moto still has whose names drills chose (`firedrill-...`).
pub(crate) fn left_in_aws(rt: &tokio::runtime::Runtime, moto: &Server) -> Vec<String> {
    let rds = rds(moto);
    rt.block_on(async {
        let mut left: Vec<String> = rds
            .describe_db_instances()
            .send()
            .await
            .unwrap()
            .db_instances()
            .iter()
            .filter_map(|i| i.db_instance_identifier().map(|s| format!("instance {s}")))
            .collect();
        left.extend(
            rds.describe_db_snapshots()
                .send()
                .await
                .unwrap()
                .db_snapshots()
                .iter()
                .filter_map(|s| s.db_snapshot_identifier().map(|s| format!("snapshot {s}"))),
        );
        left.retain(|l| l.contains("firedrill-"));
        left
    })
}

struct Drill {
    code: i32,
    stderr: String,
    report: serde_json::Value,
}

/// The restore check named `name`.
fn check<'r>(report: &'r serde_json::Value, name: &str) -> &'r serde_json::Value {
    report["measurements"]["restore"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {}", report["measurements"]["restore"]))
}

pub(crate) fn no_pending_effects(state: &std::path::Path) {
    for j in firedrill::safety::journal::list(&state.join("journals")) {
        let read = firedrill::safety::journal::Read::open(&j).unwrap();
        assert!(read.pending().is_empty(), "{j:?}: {:?}", read.pending());
    }
}

#[test]
fn an_rds_snapshot_restore_is_verified_against_the_source_and_deleted_after() {
    let _x = crate::shared();
    let t = Setup::new();
    let file = t.scenario("{type: rds-snapshot}", "1m");
    let copy = db_dsn(&t.db, "app_restored");

    let d = t.run(&file, &copy);
    assert_eq!(d.code, 0, "{}", d.stderr);
    let r = &d.report["measurements"]["restore"];
    assert_eq!(r["backup_kind"], "rds-snapshot");
    assert_eq!(r["backup_taken"], true);
    let run_id = d.report["run_id"].as_str().unwrap();
    assert_eq!(
        r["restored_into"],
        format!("DB instance firedrill-{run_id}")
    );
    assert!(
        r["backup_source"]
            .as_str()
            .unwrap()
            .starts_with(&format!("DB snapshot firedrill-{run_id}")),
        "{r}"
    );
    assert!(r["recovery_point"].is_string(), "{r}");
    assert_eq!(r["tables_differing"], 0, "{r}");
    let rows: i64 = r["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["restored_rows"].as_i64().unwrap())
        .sum();
    assert_eq!(rows, 15000, "{r}");
    assert_eq!(check(&d.report, "assertion every account")["ok"], true);
    assert_eq!(check(&d.report, "schema")["ok"], true);
    assert!(d.report["measurements"]["rto_ms"].as_f64().unwrap() > 0.0);
    for l in [
        &format!("CreateDBSnapshot firedrill-{run_id} of orders"),
        &format!("RestoreDBInstanceFromDBSnapshot firedrill-{run_id} into firedrill-{run_id}"),
        &format!("DB instance firedrill-{run_id}: deleted"),
        &format!("DB snapshot firedrill-{run_id}: deleted"),
    ] {
        assert!(d.stderr.contains(l.as_str()), "{l:?} in:\n{}", d.stderr);
    }
    assert_eq!(t.left_in_aws(), Vec::<String>::new());
    no_pending_effects(&t.state());

    // The same drill on a damaged copy fails, naming the table and the key range.
    t.db.rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(&copy, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c.batch_execute("update accounts set balance = balance + 1 where id = 4242")
            .await
            .unwrap();
    });
    let d = t.run(&file, &copy);
    assert_eq!(d.code, 1, "{}", d.stderr);
    let r = &d.report["measurements"]["restore"];
    assert_eq!(r["tables_differing"], 1, "{r}");
    let accounts = r["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.accounts")
        .unwrap();
    assert_eq!(accounts["matches"], false);
    let diff = accounts["differences"].to_string();
    assert!(diff.contains("content differs"), "{diff}");
    assert_eq!(t.left_in_aws(), Vec::<String>::new());
    no_pending_effects(&t.state());
}

#[test]
fn a_point_in_time_restore_to_the_latest_restorable_time_names_its_point() {
    let _x = crate::shared();
    let t = Setup::new();
    let file = t.scenario("{type: rds-point-in-time}", "1m");
    let d = t.run(&file, &db_dsn(&t.db, "app_restored"));
    assert_eq!(d.code, 0, "{}", d.stderr);
    let r = &d.report["measurements"]["restore"];
    assert_eq!(r["backup_kind"], "rds-point-in-time");
    assert_eq!(r["recovery_target"], "latest");
    let point = r["recovery_point"].as_str().unwrap();
    let at = humantime::parse_rfc3339_weak(point.trim_end_matches('Z')).unwrap();
    let age = std::time::SystemTime::now().duration_since(at).unwrap();
    assert!(age < std::time::Duration::from_secs(600), "{point}");
    assert!(
        d.stderr
            .contains("RestoreDBInstanceToPointInTime orders into firedrill-"),
        "{}",
        d.stderr
    );
    assert_eq!(t.left_in_aws(), Vec::<String>::new());
}

#[test]
fn a_restored_instance_that_never_answers_fails_the_drill_and_is_deleted() {
    let _x = crate::shared();
    let t = Setup::new();
    let file = t.scenario("{type: rds-snapshot}", "2s");
    let started = std::time::Instant::now();
    let d = t.run(&file, DEAD);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let restore = check(&d.report, "restore");
    assert_eq!(restore["ok"], false);
    let detail = restore["detail"].as_str().unwrap();
    assert!(
        detail.contains("did not answer a query within 2s of the restore call"),
        "{detail}"
    );
    assert_eq!(t.left_in_aws(), Vec::<String>::new());
    no_pending_effects(&t.state());
}

/// Starts a snapshot restore whose restored instance never answers, and waits until the drill
/// is waiting for it (the snapshot and the instance exist in moto).
fn hanging_restore(t: &Setup) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let file = t.scenario("{type: rds-snapshot}", "1m");
    let (child, rx) = crate::aws::spawn_reading_stderr(&mut t.command(&file, DEAD));
    crate::aws::wait_line(&rx, "available at");
    let left = t.left_in_aws();
    assert!(
        left.iter().any(|l| l.starts_with("instance firedrill-"))
            && left.iter().any(|l| l.starts_with("snapshot firedrill-")),
        "{left:?}"
    );
    (child, rx)
}

#[test]
fn ctrl_c_during_an_aws_restore_deletes_the_instance_and_the_snapshot() {
    let _x = crate::shared();
    let t = Setup::new();
    let (mut child, rx) = hanging_restore(&t);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let text: Vec<String> = rx.iter().collect();
    let text = text.join("\n");
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(text.contains(": deleted"), "{text}");
    assert_eq!(t.left_in_aws(), Vec::<String>::new());
    no_pending_effects(&t.state());
}

#[test]
fn a_killed_aws_restore_is_cleaned_up_by_recover() {
    let _x = crate::shared();
    let t = Setup::new();
    let (mut child, _rx) = hanging_restore(&t);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(t.left_in_aws().len() >= 2);

    let (code, out, err) = recover_aws(&t.state());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("-> deleted DB instance firedrill-"), "{out}");
    assert!(out.contains("-> deleted DB snapshot firedrill-"), "{out}");
    assert_eq!(t.left_in_aws(), Vec::<String>::new());
    no_pending_effects(&t.state());
    assert!(recover_aws(&t.state()).1.contains("nothing to recover"));
}

/// Two manual snapshots of `orders` in moto, the second newer; their ids.
fn nightly_snapshots(t: &Setup) -> [&'static str; 2] {
    let ids = ["orders-nightly-1", "orders-nightly-2"];
    let rds = rds(&t.moto);
    for id in ids {
        t.db.rt.block_on(async {
            rds.create_db_snapshot()
                .db_instance_identifier("orders")
                .db_snapshot_identifier(id)
                .send()
                .await
                .unwrap();
        });
        // Distinct creation times, newest last.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    ids
}

fn snapshot_ids(t: &Setup) -> Vec<String> {
    let rds = rds(&t.moto);
    t.db.rt.block_on(async {
        let mut ids: Vec<String> = rds
            .describe_db_snapshots()
            .send()
            .await
            .unwrap()
            .db_snapshots()
            .iter()
            .filter_map(|s| s.db_snapshot_identifier().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    })
}

/// `snapshot: latest` restores the newest available snapshot and `snapshot: <id>` the one named,
/// neither taking nor deleting one; a named snapshot that does not exist fails the drill naming it.
#[test]
fn a_latest_or_named_snapshot_is_restored_and_kept() {
    let _x = crate::shared();
    let t = Setup::new();
    let [older, newer] = nightly_snapshots(&t);
    let copy = db_dsn(&t.db, "app_restored");
    // moto's automated snapshot of the instance is among them, older than both.
    let before = snapshot_ids(&t);
    for (snapshot, expected) in [("latest", newer), (older, older)] {
        let file = t.scenario(
            &format!("{{type: rds-snapshot, snapshot: {snapshot}}}"),
            "1m",
        );
        let d = t.run(&file, &copy);
        assert_eq!(d.code, 0, "{}", d.stderr);
        let r = &d.report["measurements"]["restore"];
        assert_eq!(r["backup_taken"], false, "{r}");
        assert_eq!(r["backup_source"], format!("DB snapshot {expected}"), "{r}");
        assert_eq!(r["tables_differing"], 0, "{r}");
        assert!(
            d.stderr.contains(&format!(
                "RestoreDBInstanceFromDBSnapshot {expected} into firedrill-"
            )),
            "{}",
            d.stderr
        );
        assert!(!d.stderr.contains("CreateDBSnapshot"), "{}", d.stderr);
        assert_eq!(snapshot_ids(&t), before, "snapshots are the user's to keep");
        assert_eq!(t.left_in_aws(), Vec::<String>::new());
    }
    let file = t.scenario("{type: rds-snapshot, snapshot: orders-gone}", "1m");
    let d = t.run(&file, &copy);
    assert_eq!(d.code, 1, "{}", d.stderr);
    let backup = check(&d.report, "backup");
    assert_eq!(backup["ok"], false);
    assert!(
        backup["detail"].as_str().unwrap().contains("orders-gone"),
        "{backup}"
    );
    assert_eq!(t.left_in_aws(), Vec::<String>::new());
}

/// `recovery_target: {type: time}` asks RDS for exactly that time and reports it as the
/// recovery point, its age as the RPO exposure.
#[test]
fn a_point_in_time_restore_to_a_named_time_asks_for_that_time() {
    let _x = crate::shared();
    let t = Setup::new();
    let at = std::time::SystemTime::now() - std::time::Duration::from_secs(30);
    let at_text = humantime::format_rfc3339_seconds(at).to_string();
    let file = t.scenario_with(
        "{type: rds-point-in-time}",
        "1m",
        &format!("  recovery_target: {{type: time, at: '{at_text}'}}\n"),
        0,
    );
    let started = std::time::Instant::now();
    let d = t.run(&file, &db_dsn(&t.db, "app_restored"));
    assert_eq!(d.code, 0, "{}", d.stderr);
    let r = &d.report["measurements"]["restore"];
    let point = r["recovery_point"].as_str().unwrap();
    let parsed = humantime::parse_rfc3339_weak(point.trim_end_matches('Z')).unwrap();
    let wanted = humantime::parse_rfc3339(&at_text).unwrap();
    assert_eq!(parsed, wanted, "{point} against {at_text}");
    assert!(
        d.stderr.contains(&format!(
            "into firedrill-{} at {point}",
            d.report["run_id"].as_str().unwrap()
        )),
        "{}",
        d.stderr
    );
    let rpo = d.report["measurements"]["rpo_ms"].as_f64().unwrap();
    let most = 30e3 + started.elapsed().as_secs_f64() * 1e3 + 1e3;
    assert!(
        (29e3..most).contains(&rpo),
        "rpo {rpo} ms, the point was 30 s old"
    );
    assert_eq!(t.left_in_aws(), Vec::<String>::new());
}

/// `after-backup` checks the restore write by write. The "restored" database here is the source
/// itself, a restore that went past its point (moto restores no data): every write sent after
/// the point is present, so the drill must fail on them, while none before it is missing. The
/// test counts the source's rows itself (`keep_rows`): before + after <= rows <= before + after
/// + across. Without `keep_rows` the same drill leaves none of its rows in the source.
#[test]
fn a_point_in_time_restore_past_its_point_fails_on_the_writes_after_it() {
    let _x = crate::shared();
    let t = Setup::new();
    let file = t.scenario_with(
        "{type: rds-point-in-time}",
        "1m",
        "  recovery_target: {type: after-backup, offset: 1s}\n  write_after_backup: 3s\n",
        2,
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let source = db_dsn(&t.db, "app");
    let count = |run_id: &str| -> u64 {
        t.db.rt.block_on(async {
            let (c, conn) = tokio_postgres::connect(&source, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let n: i64 = c
                .query_one(
                    "select count(*) from firedrill_ledger where run = $1",
                    &[&run_id],
                )
                .await
                .unwrap()
                .get(0);
            n as u64
        })
    };
    let d = t.run(&file, &source);
    assert_eq!(d.code, 1, "{}", d.stderr);
    let run_id = d.report["run_id"].as_str().unwrap().to_owned();
    assert!(
        d.report["measurements"]["acknowledged_writes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        count(&run_id),
        0,
        "the drill's rows were removed from the source"
    );
    std::fs::write(
        &file,
        text.replace(
            "workload: {connections: 2}",
            "workload: {connections: 2, keep_rows: true}",
        ),
    )
    .unwrap();
    let d = t.run(&file, &source);
    assert_eq!(d.code, 1, "{}", d.stderr);
    let l = &d.report["measurements"]["restore"]["ledger"];
    let n = |k: &str| l[k].as_u64().unwrap_or_else(|| panic!("{k} in {l}"));
    assert!(n("before") > 0 && n("after") > 0, "{l}");
    assert_eq!(n("missing"), 0, "{l}");
    assert_eq!(n("present_after"), n("after"), "{l}");
    assert_eq!(check(&d.report, "ledger")["ok"], false);
    let rows = count(d.report["run_id"].as_str().unwrap());
    assert!(
        n("before") + n("after") <= rows && rows <= n("before") + n("after") + n("across"),
        "{rows} rows in the source against {l}"
    );
    assert_eq!(t.left_in_aws(), Vec::<String>::new());
}
