//! Fleet restore drills end to end: moto holds the RDS instances (selected by tag) and does the
//! snapshot, restore and delete calls; each instance's database, and its "restored" copy, is a
//! local PostgreSQL database the test makes (moto has no database), reached through DSN
//! templates filled from what moto says about each instance (`{port}`, `{instance}`).

use std::time::Duration;

use firedrill::fleet::limiter::{self, Limits};
use firedrill_aws::moto::Server;
use firedrill_aws::{Aws, AwsError, DRILL_TAG};

use crate::aws::{LocalDb, MOTO_CREDENTIALS};
use crate::aws_restore::{db_dsn, left_in_aws, no_pending_effects};

const MEMBERS: [&str; 3] = ["orders-1", "orders-2", "orders-3"];

/// moto with orders-1..3 tagged `restore-test: monthly` and `billing` tagged `yearly`, each
/// listening (as moto reports it) on the local PostgreSQL's port; a database per instance with
/// 100 rows, and its copy `<instance>_restored`.
pub(crate) struct Fleet {
    pub(crate) moto: Server,
    pub(crate) db: LocalDb,
    pub(crate) dir: tempfile::TempDir,
}

impl Fleet {
    fn new() -> Fleet {
        Fleet::with(&MEMBERS)
    }

    /// [`Fleet::new`] with `members` tagged `monthly` (and `billing`, `yearly`).
    pub(crate) fn with(members: &[&str]) -> Fleet {
        let moto = Server::start();
        let db = LocalDb::new();
        let port = db.sb.nodes[0].port;
        db.rt.block_on(async {
            for (id, every) in members
                .iter()
                .map(|m| (*m, "monthly"))
                .chain([("billing", "yearly")])
            {
                let tags = [("restore-test", every)];
                moto.postgres_instance_on(id, false, &tags, Some(port))
                    .await;
            }
            let admin = db.sb.connect(0).await.unwrap();
            for id in members {
                admin
                    .batch_execute(&format!("create database \"{id}\""))
                    .await
                    .unwrap();
                let (c, conn) = tokio_postgres::connect(&db_dsn(&db, id), tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let h = tokio::spawn(conn);
                c.batch_execute(
                    "create table items (id int primary key, v text not null);
                     insert into items select g, 'item ' || g from generate_series(1, 100) g;",
                )
                .await
                .unwrap();
                drop(c);
                let _ = h.await;
                admin
                    .batch_execute(&format!(
                        "create database \"{id}_restored\" template \"{id}\""
                    ))
                    .await
                    .unwrap();
            }
        });
        Fleet {
            moto,
            db,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn scenario(&self, fleet: &str, available_within: &str) -> std::path::PathBuf {
        let file = self.dir.path().join("fleet.yaml");
        std::fs::write(
            &file,
            format!(
                "version: 1\nname: fleet-restore\nenvironment: test\n\
                 target: {{type: aws-rds, dsn_env: FD_FLEET_DSN, region: us-east-1, \
                 endpoint_url: '{}'}}\n\
                 fleet: {fleet}\n\
                 workload: {{connections: 0}}\n\
                 restore:\n  backup: {{type: rds-snapshot, snapshot: create}}\n\
                 \x20 instance: {{available_within: {available_within}, \
                 dsn_env: FD_RESTORED_DSN}}\n\
                 \x20 verify:\n    source_quiescent: true\n    assertions:\n\
                 \x20     - {{name: every item, sql: 'select count(*) = 100 from items'}}\n\
                 targets: {{rto: 5m, checksums: match}}\n",
                self.moto.url()
            ),
        )
        .unwrap();
        file
    }

    fn out(&self) -> std::path::PathBuf {
        self.dir.path().join("out")
    }

    fn command(
        &self,
        file: &std::path::Path,
        source: &str,
        restored: &str,
    ) -> std::process::Command {
        self.command_to(
            &["--out", self.out().to_str().unwrap()],
            file,
            source,
            restored,
        )
    }

    /// `firedrill run FILE` with `dest` (`--out DIR`, `--evidence DIR --sign-key KEY`).
    pub(crate) fn command_to(
        &self,
        dest: &[&str],
        file: &std::path::Path,
        source: &str,
        restored: &str,
    ) -> std::process::Command {
        let mut cmd = crate::firedrill_process();
        cmd.arg("run")
            .args(dest)
            .arg(file)
            .env("FIREDRILL_STATE_DIR", self.dir.path().join("state"))
            .env("FD_FLEET_DSN", source)
            .env("FD_RESTORED_DSN", restored)
            .envs(MOTO_CREDENTIALS);
        cmd
    }

    /// The fleet scenario `file` with both DSNs as they should be, to `dest`.
    fn run(&self, dest: &[&str], file: &std::path::Path) -> std::process::Output {
        self.command_to(dest, file, Fleet::source_dsn(), &self.restored_dsn())
            .output()
            .unwrap()
    }

    /// Each instance's own database, on the port moto reports for it.
    pub(crate) fn source_dsn() -> &'static str {
        "host=127.0.0.1 port={port} user=firedrill dbname={instance}"
    }

    /// Each restored instance's copy, named after the instance it was restored from.
    pub(crate) fn restored_dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=firedrill dbname={{source}}_restored",
            self.db.sb.nodes[0].port
        )
    }

    pub(crate) fn left_in_aws(&self) -> Vec<String> {
        left_in_aws(&self.db.rt, &self.moto)
    }

    /// Runs `sql` in the local database `db` (to damage a restored copy).
    pub(crate) fn execute(&self, db: &str, sql: &str) {
        self.db.rt.block_on(async {
            let (c, conn) = tokio_postgres::connect(&db_dsn(&self.db, db), tokio_postgres::NoTls)
                .await
                .unwrap();
            let h = tokio::spawn(conn);
            c.batch_execute(sql).await.unwrap();
            drop(c);
            let _ = h.await;
        });
    }
}

/// (instance, outcome) of every member of a summary, in order.
fn outcomes(summary: &serde_json::Value) -> Vec<(&str, &str)> {
    summary["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["instance"].as_str().unwrap(),
                m["outcome"].as_str().unwrap(),
            )
        })
        .collect()
}

fn json(path: &std::path::Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn a_fleet_restores_every_tagged_instance_two_at_a_time_with_a_report_each_and_a_summary() {
    let _x = crate::shared();
    let f = Fleet::new();
    // orders-3's restored copy lost a row's content: its drill, and only its, must fail.
    f.execute(
        "orders-3_restored",
        "update items set v = 'changed' where id = 42",
    );
    let file = f.scenario(
        "{tags: {restore-test: monthly}, concurrency: 2, start_every: 10ms}",
        "1m",
    );
    let junit = f.dir.path().join("junit.xml");
    let out = f.out();
    let dest = [
        "--out",
        out.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ];
    let o = f.run(&dest, &file);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stderr}\n{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suites: Vec<(&str, &str)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .map(|n| {
            (
                n.attribute("name").unwrap(),
                n.attribute("failures").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        suites,
        [
            ("fleet-restore.orders-1", "0"),
            ("fleet-restore.orders-2", "0"),
            ("fleet-restore.orders-3", "1")
        ],
        "one JUnit suite per member: {xml}"
    );
    assert!(
        stderr.contains(
            "3 DB instance(s) carry the tag(s) restore-test=monthly: orders-1, orders-2, orders-3"
        ),
        "{stderr}"
    );
    for id in MEMBERS {
        assert!(
            stderr.contains(&format!("[{id}] [")),
            "no line of {id}:\n{stderr}"
        );
    }

    let summary = json(&f.out().join("summary.json"));
    assert_eq!(
        summary["format_version"],
        firedrill::fleet::SUMMARY_FORMAT_VERSION
    );
    assert_eq!(summary["exit_code"], 1);
    assert_eq!(summary["concurrency"], 2);
    assert_eq!(summary["region"], "us-east-1");
    let peak = summary["peak_concurrency"].as_u64().unwrap();
    assert_eq!(peak, 2, "at most 2 at once, and the 3 did overlap");
    let members = summary["members"].as_array().unwrap();
    assert_eq!(
        outcomes(&summary),
        [
            ("orders-1", "pass"),
            ("orders-2", "pass"),
            ("orders-3", "fail")
        ],
        "billing (tagged yearly) is not a member"
    );
    let fleet_id = summary["fleet_id"].as_str().unwrap();
    let mut run_ids = Vec::new();
    for m in members {
        let id = m["instance"].as_str().unwrap();
        let rel = m["report"].as_str().unwrap();
        assert_eq!(rel, format!("{id}/report.json"));
        let bytes = std::fs::read(f.out().join(rel)).unwrap();
        assert_eq!(
            m["report_sha256"].as_str().unwrap(),
            firedrill::evidence::sha256(&bytes),
            "the summary pins each report's bytes"
        );
        let r: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(r["scenario"]["name"], format!("fleet-restore.{id}"));
        assert_eq!(r["fleet"]["id"], fleet_id);
        assert_eq!(r["fleet"]["instance"], id);
        assert_eq!(r["run_id"], m["run_id"]);
        let restore = &r["measurements"]["restore"];
        let run_id = r["run_id"].as_str().unwrap();
        assert_eq!(
            restore["restored_into"],
            format!("DB instance firedrill-{run_id}")
        );
        assert!(
            r["target"]["description"]
                .as_str()
                .unwrap()
                .contains(&format!("RDS instance {id} ")),
            "{}",
            r["target"]["description"]
        );
        run_ids.push(run_id.to_owned());
        assert!(f.out().join(id).join("report.md").is_file());
    }
    run_ids.sort();
    run_ids.dedup();
    assert_eq!(run_ids.len(), 3, "one drill, one run id per instance");
    let failed = &members[2];
    assert_eq!(failed["exit_code"], 1);
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("checksums missed"),
        "{failed}"
    );
    let md = std::fs::read_to_string(f.out().join("summary.md")).unwrap();
    assert!(md.contains("| orders-3 | FAIL |"), "{md}");
    assert!(
        stdout.contains("3 instance(s): 2 pass, 1 fail; at most 2 at once (limit 2)"),
        "{stdout}"
    );

    assert_eq!(
        f.left_in_aws(),
        Vec::<String>::new(),
        "every temporary instance and snapshot deleted"
    );
    let journals = firedrill::safety::journal::list(&f.dir.path().join("state").join("journals"));
    assert_eq!(journals.len(), 3, "one journal per member");
    no_pending_effects(&f.dir.path().join("state"));
}

#[test]
fn a_fleet_refuses_before_touching_anything_when_its_selection_or_dsn_is_wrong() {
    let _x = crate::shared();
    let f = Fleet::new();
    let cases = [
        (
            "{tags: {restore-test: weekly}}",
            Fleet::source_dsn(),
            4,
            "no DB instance in us-east-1 carries the tag(s) restore-test=weekly (4 instance(s) looked at)",
        ),
        (
            "{tags: {restore-test: monthly}, max_instances: 2}",
            Fleet::source_dsn(),
            5,
            "3 DB instances carry the tag(s) restore-test=monthly, more than `fleet.max_instances` (2)",
        ),
        (
            "{tags: {restore-test: monthly}}",
            "host=127.0.0.1 port=5432 user=firedrill dbname=orders",
            5,
            "the DSN in $FD_FLEET_DSN (`target.dsn_env`) names none of {host}, {port}, {instance}, {source}",
        ),
    ];
    for (fleet, source, code, message) in cases {
        let file = f.scenario(fleet, "1m");
        let o = f
            .command(&file, source, &f.restored_dsn())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{fleet}: {stderr}");
        assert!(stderr.contains(message), "{fleet}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
        assert!(!f.out().join("summary.json").exists());
    }
    assert_eq!(f.left_in_aws(), Vec::<String>::new());
}

#[test]
fn ctrl_c_during_a_fleet_deletes_what_the_running_member_made_and_starts_no_other() {
    let _x = crate::shared();
    let f = Fleet::new();
    let file = f.scenario(
        "{tags: {restore-test: monthly}, concurrency: 1, start_every: 100ms}",
        "1m",
    );
    // The restored instances never answer: orders-1 waits for its instance until Ctrl-C.
    let dead = "host=127.0.0.1 port=1 user=firedrill dbname={source}";
    let (mut child, rx) =
        crate::aws::spawn_reading_stderr(&mut f.command(&file, Fleet::source_dsn(), dead));
    crate::aws::wait_line(&rx, "available at");
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let text = rx.iter().collect::<Vec<_>>().join("\n");
    assert_eq!(status.code(), Some(3), "{text}");
    let summary = json(&f.out().join("summary.json"));
    assert_eq!(
        outcomes(&summary),
        [
            ("orders-1", "aborted"),
            ("orders-2", "skipped"),
            ("orders-3", "skipped")
        ],
        "{text}"
    );
    assert!(f.out().join("orders-1/report.json").is_file());
    assert_eq!(f.left_in_aws(), Vec::<String>::new(), "{text}");
    no_pending_effects(&f.dir.path().join("state"));
}

#[test]
fn a_signed_fleet_joins_the_evidence_chain_and_verifies_with_openssh() {
    let _x = crate::shared();
    let f = Fleet::new();
    let key = f.dir.path().join("key");
    let public = firedrill::signing::keygen(&key, "test").unwrap();
    let allowed = f.dir.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        firedrill::signing::allowed_signers_line("drills", &public),
    )
    .unwrap();
    let evidence = f.dir.path().join("evidence");
    let file = f.scenario(
        "{tags: {restore-test: monthly}, concurrency: 3, start_every: 10ms}",
        "1m",
    );
    let dest = [
        "--evidence",
        evidence.to_str().unwrap(),
        "--sign-key",
        key.to_str().unwrap(),
        "--format",
        "json",
    ];
    let o = f.run(&dest, &file);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fleet_dir = evidence.join(format!("fleet-{}", printed["fleet_id"].as_str().unwrap()));
    assert_eq!(
        json(&fleet_dir.join("summary.json")),
        printed,
        "stdout is the summary"
    );
    crate::signing::ssh_keygen_verify(&allowed, "drills", &fleet_dir.join("summary.json"))
        .expect("ssh-keygen accepts the summary's signature");
    // Three chain entries, one per member, each pinned by the summary.
    for m in printed["members"].as_array().unwrap() {
        let rel = m["report"].as_str().unwrap();
        assert!(rel.starts_with("../0000"), "{rel}");
        let bytes = std::fs::read(fleet_dir.join(rel)).unwrap();
        assert_eq!(
            m["report_sha256"].as_str().unwrap(),
            firedrill::evidence::sha256(&bytes)
        );
    }
    let v = crate::firedrill_cmd()
        .args(["verify", evidence.to_str().unwrap(), "--allowed-signers"])
        .arg(&allowed)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&v.stdout);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(
        out.contains("3 reports verified: signatures, chain, index, verdicts and what could be re-derived all hold"),
        "{out}"
    );
    for id in MEMBERS {
        assert!(out.contains(&format!("fleet-restore.{id}")), "{out}");
    }
}

/// The fleet's limiter over real AWS calls: 50 instances restored from their snapshots with at most 5 restores in flight; every copy is
/// tagged and removed by cleanup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_50_restores_never_exceeds_its_concurrency() {
    let moto = Server::start();
    let aws = Aws::from_conf(&moto.conf("us-east-1"));
    let ids: Vec<String> = (0..50).map(|i| format!("fleet-{i:02}")).collect();
    for id in &ids {
        moto.postgres_instance(id, false, &[]).await;
    }
    let limits = Limits {
        concurrency: 5,
        start_every: Duration::from_millis(5),
    };
    let job_aws = aws.clone();
    let (_never, cancel) = tokio::sync::watch::channel(false);
    let (results, peak) = limiter::run(ids.clone(), limits, cancel, move |id: String| {
        let aws = job_aws.clone();
        async move {
            let tag = [(DRILL_TAG, "fleet-run")];
            let snap = format!("{id}-snap");
            aws.create_snapshot(&id, &snap, &tag).await?;
            let copy = format!("{id}-copy");
            aws.restore_snapshot(&snap, &copy, None, &tag).await?;
            // Hold the slot while the copy "restores", as a real job waits for it.
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok::<_, AwsError>(aws.instance(&copy).await?.id)
        }
    })
    .await;
    assert!(peak <= 5, "{peak} restores at once");
    assert!(peak >= 2, "the fleet ran one at a time ({peak})");
    let copies: Vec<String> = results.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(copies.len(), 50);
    let deleted = aws.cleanup(Some("fleet-run")).await.unwrap();
    assert_eq!(
        deleted.len(),
        100,
        "50 copies and 50 snapshots: {deleted:?}"
    );
    assert_eq!(aws.instances().await.unwrap().len(), 50, "the sources stay");
}

/// The same fleet in-process, through the library's `fleet::run::run` rather than the binary:
/// the summary, every member's report and the progress lines come back as values, Ctrl-C is a
/// watch channel. orders-2's copy is damaged by the test, so its member alone must fail; the
/// report hashes in the summary are checked against the files the test reads itself.
#[test]
fn a_fleet_runs_in_process_through_the_library() {
    use std::sync::{Arc, Mutex};

    use firedrill::finish::Destination;
    use firedrill::fleet::MemberOutcome;
    use firedrill::fleet::run::{self, FleetOptions};
    use firedrill::safety::lock::StateDir;

    let _x = crate::shared();
    let f = Fleet::new();
    f.execute("orders-2_restored", "delete from items where id = 7");
    let file = f.scenario(
        "{tags: {restore-test: monthly}, concurrency: 2, start_every: 10ms}",
        "1m",
    );
    let vars = [
        ("FD_FLEET_DSN", Fleet::source_dsn().to_owned()),
        ("FD_RESTORED_DSN", f.restored_dsn()),
    ]
    .into_iter()
    .chain(MOTO_CREDENTIALS.map(|(k, v)| (k, v.to_owned())));
    for (k, v) in vars {
        // SAFETY: these names are read by this test's drills only; the exclusive guard keeps the
        // other drills out, and std serializes its own environment access.
        unsafe { std::env::set_var(k, v) };
    }
    let loaded = firedrill::scenario::load(&file).unwrap();
    let firedrill::scenario::Run::Fleet(fleet) = loaded.run.clone() else {
        panic!("a fleet scenario")
    };
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let said = lines.clone();
    let opts = FleetOptions {
        file: file.clone(),
        state: StateDir::resolve(Some(f.dir.path().join("state"))).unwrap(),
        templates: None,
        dest: Some(Destination::Dir(f.out())),
        signer: None,
        progress: Arc::new(move |l| said.lock().unwrap().push(l)),
        reporter: |_| Box::new(firedrill::human::Silent),
        shard: None,
    };
    let (_ctrl_c, cancel) = tokio::sync::watch::channel(false);
    let outcome =
        f.db.rt
            .block_on(run::run(&loaded, &fleet, opts, cancel))
            .unwrap();
    for (k, _) in MOTO_CREDENTIALS {
        // SAFETY: as above.
        unsafe { std::env::remove_var(k) };
    }

    let s = &outcome.summary;
    let got: Vec<(&str, MemberOutcome)> = s
        .members
        .iter()
        .map(|m| (m.instance.as_str(), m.outcome))
        .collect();
    assert_eq!(
        got,
        [
            ("orders-1", MemberOutcome::Pass),
            ("orders-2", MemberOutcome::Fail),
            ("orders-3", MemberOutcome::Pass),
        ],
        "{:?}",
        lines.lock().unwrap()
    );
    assert_eq!(s.exit_code, 1);
    assert!(s.peak_concurrency <= 2 && s.peak_concurrency >= 1, "{s:?}");
    assert_eq!(outcome.reports.len(), 3);
    assert!(outcome.unwritten.is_empty());
    let dir = outcome.summary_written.clone().unwrap().unwrap();
    assert_eq!(dir, f.out());
    for (m, r) in s.members.iter().zip(&outcome.reports) {
        let fr = r.fleet.as_ref().expect("a member's report names its fleet");
        assert_eq!(
            (fr.id.as_str(), fr.instance.as_str()),
            (s.fleet_id.as_str(), m.instance.as_str())
        );
        let bytes = std::fs::read(dir.join(m.report.as_ref().unwrap())).unwrap();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        assert_eq!(
            m.report_sha256.as_deref(),
            Some(sha.as_str()),
            "{}",
            m.instance
        );
    }
    let orders_2 = &s.members[1];
    assert!(
        orders_2
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("checksums missed"),
        "{orders_2:?}"
    );
    let on_disk: serde_json::Value = json(&dir.join("summary.json"));
    assert_eq!(outcomes(&on_disk).len(), 3);
    let lines = lines.lock().unwrap();
    assert!(
        lines[0].contains("3 DB instance(s) carry the tag(s) restore-test=monthly"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[orders-2] report written to")),
        "{lines:?}"
    );
    assert_eq!(f.left_in_aws(), Vec::<String>::new());
    no_pending_effects(&f.dir.path().join("state"));
}
