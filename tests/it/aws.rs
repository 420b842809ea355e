//! The AWS side of the command line against moto server (see `crates/aws` for the calls
//! themselves, and the README for what moto does not implement).

use aws_sdk_rds::types::Tag;
use firedrill_aws::DRILL_TAG;
use firedrill_aws::moto::Server;

pub(crate) fn rds(moto: &Server) -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::new(&moto.conf("us-east-1"))
}

/// moto's test credentials, given to firedrill through the environment only.
pub const MOTO_CREDENTIALS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

fn tag(drill: &str) -> Tag {
    Tag::builder().key(DRILL_TAG).value(drill).build()
}

/// `firedrill cleanup --region us-east-1 --endpoint-url MOTO ARGS`, no credentials given yet.
fn cleanup_cmd(moto: &Server, args: &[&str]) -> std::process::Command {
    let mut cmd = crate::firedrill_process();
    cmd.args([
        "cleanup",
        "--region",
        "us-east-1",
        "--endpoint-url",
        &moto.url(),
    ])
    .args(args);
    cmd
}

/// `firedrill cleanup` with moto's endpoint and test credentials in the environment only.
fn cleanup(moto: &Server, args: &[&str]) -> (i32, String, String) {
    crate::run_to_end(cleanup_cmd(moto, args).envs(MOTO_CREDENTIALS))
}

/// `firedrill recover` of the journals in `state`, with moto's test credentials.
pub(crate) fn recover_aws(state: &std::path::Path) -> (i32, String, String) {
    crate::run_to_end(
        crate::firedrill_process()
            .arg("recover")
            .env("FIREDRILL_STATE_DIR", state)
            .envs(MOTO_CREDENTIALS),
    )
}

#[test]
fn cleanup_lists_and_deletes_what_drills_left_by_tag_and_nothing_else() {
    let moto = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rds = rds(&moto);
    rt.block_on(async {
        moto.postgres_instance("orders", false, &[]).await;
        moto.postgres_instance("orders-copy-a", false, &[(DRILL_TAG, "run-a")])
            .await;
        moto.postgres_instance("orders-copy-b", false, &[(DRILL_TAG, "run-b")])
            .await;
        rds.create_db_snapshot()
            .db_instance_identifier("orders")
            .db_snapshot_identifier("orders-snap-a")
            .tags(tag("run-a"))
            .send()
            .await
            .unwrap();
    });

    let (code, out, err) = cleanup(&moto, &["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    for l in [
        "found: instance orders-copy-a (drill run-a, us-east-1)",
        "found: instance orders-copy-b (drill run-b, us-east-1)",
        "found: snapshot orders-snap-a (drill run-a, us-east-1)",
        "3 resource(s) left by drills",
    ] {
        assert!(out.contains(l), "{l:?} in:\n{out}");
    }
    assert!(!out.contains("found: instance orders "), "{out}");

    let (code, out, err) = cleanup(&moto, &["--drill", "run-a"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted: instance orders-copy-a"), "{out}");
    assert!(out.contains("deleted: snapshot orders-snap-a"), "{out}");
    assert!(out.contains("2 resource(s) deleted"), "{out}");

    let (code, out, _) = cleanup(&moto, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted: instance orders-copy-b"), "{out}");
    let (code, out, _) = cleanup(&moto, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to clean up"), "{out}");
    let left: Vec<String> = rt.block_on(async {
        rds.describe_db_instances()
            .send()
            .await
            .unwrap()
            .db_instances()
            .iter()
            .filter_map(|i| i.db_instance_identifier().map(str::to_owned))
            .collect()
    });
    assert_eq!(left, ["orders"], "the source stays");
}

#[test]
fn cleanup_without_credentials_is_one_clear_error() {
    let moto = Server::start();
    let home = tempfile::tempdir().unwrap();
    let (code, _, err) = crate::run_to_end(
        cleanup_cmd(&moto, &[])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env("HOME", home.path())
            .env("AWS_EC2_METADATA_DISABLED", "true"),
    );
    assert_eq!(code, 4, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: no AWS credentials found"), "{err}");
}

// ---- drills of an aws-rds target: AWS calls to moto, SQL to a local PostgreSQL ---------------
//
// moto has no database behind its endpoints, so the scenario's DSN points at a sandbox the test
// builds: the probes, the workload and the ledger check run for real against it, while the
// fault goes through AWS's API (moto). The failover is therefore not felt by the clients here.

pub(crate) struct LocalDb {
    pub(crate) sb: firedrill::target::sandbox::Sandbox,
    pub(crate) rt: tokio::runtime::Runtime,
}

impl LocalDb {
    pub(crate) fn new() -> LocalDb {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let bins = firedrill::pg::binaries::PgBinaries::locate(None).unwrap();
        let sb = rt
            .block_on(firedrill::target::sandbox::Sandbox::build(
                bins,
                crate::sandbox::config(0, firedrill::scenario::Replication::Async),
                &|_| {},
            ))
            .unwrap();
        LocalDb { sb, rt }
    }

    pub(crate) fn dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=firedrill dbname=postgres",
            self.sb.nodes[0].port
        )
    }
}

impl Drop for LocalDb {
    fn drop(&mut self) {
        let _g = self.rt.enter();
        self.sb.teardown(false);
    }
}

pub(crate) fn aws_scenario(
    dir: &std::path::Path,
    moto: &Server,
    target: &str,
    fault: &str,
    observe: &str,
) -> std::path::PathBuf {
    let file = dir.join("aws.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: aws-drill\nenvironment: test\n\
             target: {{type: aws-rds, {target}, dsn_env: FD_AWS_DSN, region: us-east-1, \
             endpoint_url: '{}'}}\n\
             workload: {{connections: 1}}\nprobes: {{interval: 50ms, timeout: 500ms}}\n\
             steady_state: {{duration: 500ms}}\nfault: {fault}\nrecovery: {{type: wait}}\n\
             observe: {{duration: {observe}, stability: 200ms}}\n\
             targets: {{rto: 35s, max_lost_writes: 0}}\n",
            moto.url()
        ),
    )
    .unwrap();
    file
}

fn aws_env(cmd: &mut std::process::Command, state: &std::path::Path, dsn: &str) {
    cmd.env("FIREDRILL_STATE_DIR", state)
        .env("FD_AWS_DSN", dsn)
        .envs(MOTO_CREDENTIALS);
}

fn fis_fault(arn: &str) -> String {
    format!(
        "{{type: fis-experiment, poll: 200ms, template: {{description: reboot, \
         role_arn: 'arn:aws:iam::123456789012:role/fis', \
         targets: {{db: {{resource_type: 'aws:rds:db', resource_arns: ['{arn}']}}}}, \
         actions: {{reboot: {{action_id: 'aws:rds:reboot-db-instances', \
         parameters: {{forceFailover: 'true'}}, targets: {{DBInstances: db}}}}}}}}}}"
    )
}

/// Starts an FIS drill and returns it with the moto experiment's template id once started.
fn fis_drill(
    moto: &Server,
    db: &LocalDb,
    dir: &std::path::Path,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let arn = db.rt.block_on(moto.postgres_instance("orders", true, &[]));
    // Running until stopped, as a real experiment of a few minutes would be.
    moto.hold_state("fis::experiment", 10_000);
    let file = aws_scenario(dir, moto, "instance: orders", &fis_fault(&arn), "60s");
    let mut cmd = crate::firedrill_process();
    cmd.args([
        "run",
        "--out",
        dir.join("out").to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    aws_env(&mut cmd, &dir.join("state"), &db.dsn());
    spawn_reading_stderr(&mut cmd)
}

/// Spawns `cmd` with its stderr piped into a channel, line by line (stdout discarded).
pub(crate) fn spawn_reading_stderr(
    cmd: &mut std::process::Command,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

pub(crate) fn wait_line(rx: &std::sync::mpsc::Receiver<String>, pattern: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            let hit = l.contains(pattern);
            seen.push(l);
            if hit {
                return seen;
            }
        }
    }
    panic!("never saw {pattern:?}:\n{}", seen.join("\n"));
}

/// The experiments moto knows, as (id, status).
fn experiments(moto: &Server) -> Vec<(String, String)> {
    let conf = moto.conf("us-east-1");
    let aws = firedrill_aws::Aws::from_conf(&conf);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        let fis = aws_sdk_fis_list(&conf).await;
        for id in fis {
            let e = aws.experiment(&id).await.unwrap();
            out.push((e.id, e.status));
        }
        out
    })
}

async fn aws_sdk_fis_list(conf: &aws_types::SdkConfig) -> Vec<String> {
    let fis = aws_sdk_fis::Client::new(conf);
    fis.list_experiments()
        .send()
        .await
        .unwrap()
        .experiments()
        .iter()
        .filter_map(|e| e.id().map(str::to_owned))
        .collect()
}

#[test]
fn ctrl_c_during_an_fis_experiment_stops_it_and_deletes_the_template() {
    let _x = crate::exclusive();
    let moto = Server::start();
    let db = LocalDb::new();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = fis_drill(&moto, &db, dir.path());
    let mut seen = wait_line(&rx, "FIS experiment");
    assert_eq!(experiments(&moto).len(), 1);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    seen.extend(rx.iter());
    let text = seen.join("\n");
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(
        text.contains("rolled back: stopped FIS experiment(s)"),
        "{text}"
    );
    assert!(text.contains("deleted FIS experiment template"), "{text}");
    let ex = experiments(&moto);
    assert!(
        ex.iter().all(|(_, s)| s == "stopped" || s == "stopping"),
        "{ex:?}"
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    assert_eq!(r["verdict"], "aborted");
}

#[test]
fn a_killed_fis_drill_is_undone_by_recover() {
    let _x = crate::exclusive();
    let moto = Server::start();
    let db = LocalDb::new();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = fis_drill(&moto, &db, dir.path());
    wait_line(&rx, "FIS experiment");
    child.kill().unwrap();
    child.wait().unwrap();
    let running = experiments(&moto);
    assert!(running.iter().all(|(_, s)| s != "stopped"), "{running:?}");

    let state = dir.path().join("state");
    let (code, out, err) = recover_aws(&state);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("-> stopped FIS experiment(s) "), "{out}");
    assert!(
        out.contains("-> deleted FIS experiment template(s) "),
        "{out}"
    );
    let ex = experiments(&moto);
    assert!(
        ex.iter().all(|(_, s)| s == "stopped" || s == "stopping"),
        "{ex:?}"
    );
    assert!(recover_aws(&state).1.contains("nothing to recover"));
}

#[test]
fn an_unknown_instance_stops_the_drill_before_anything_is_touched() {
    let moto = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = aws_scenario(
        dir.path(),
        &moto,
        "instance: nope",
        "{type: rds-failover}",
        "1s",
    );
    let mut cmd = crate::firedrill_process();
    cmd.args(["run", file.to_str().unwrap()]);
    aws_env(
        &mut cmd,
        &dir.path().join("state"),
        "host=127.0.0.1 port=1 user=x",
    );
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("error: aws: DB instance nope in us-east-1 not found"),
        "{err}"
    );
    let journal = firedrill::safety::journal::Read::open(
        &firedrill::safety::journal::list(&dir.path().join("state/journals"))[0],
    )
    .unwrap();
    assert!(
        !journal
            .entries
            .iter()
            .any(|e| matches!(e, firedrill::safety::journal::Entry::Effect { .. })),
        "{journal:?}"
    );
}

/// A template the drill created just before it was killed, before the answer with the template's
/// id arrived: the journal named it by the tag it carries (journaled before the call), so
/// `recover` finds and deletes it, and no other drill's. `cleanup` lists and deletes FIS
/// templates drills left, too.
#[test]
fn an_fis_template_created_just_before_a_crash_is_found_by_its_tag() {
    use firedrill_aws::{ActionSpec, Aws, TargetSpec, TemplateSpec};
    let moto = Server::start();
    let aws = Aws::from_conf(&moto.conf("us-east-1"));
    let spec = TemplateSpec {
        description: "reboot orders".into(),
        role_arn: "arn:aws:iam::123456789012:role/fis".into(),
        targets: vec![TargetSpec {
            name: "db".into(),
            resource_type: "aws:rds:db".into(),
            arns: vec!["arn:aws:rds:us-east-1:123456789012:db:orders".into()],
            tags: vec![],
            selection_mode: "ALL".into(),
        }],
        actions: vec![ActionSpec {
            name: "reboot".into(),
            action_id: "aws:rds:reboot-db-instances".into(),
            parameters: vec![],
            targets: vec![("DBInstances".into(), "db".into())],
        }],
        stop_alarms: vec![],
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (crashed, other) = rt.block_on(async {
        (
            aws.create_template(&spec, "t-1", (DRILL_TAG, "1111111111111111"))
                .await
                .unwrap(),
            aws.create_template(&spec, "t-2", (DRILL_TAG, "2222222222222222"))
                .await
                .unwrap(),
        )
    });
    let state = tempfile::tempdir().unwrap();
    let journals = state.path().join("journals");
    std::fs::create_dir_all(&journals).unwrap();
    std::fs::write(
        journals.join("2026-11-29T00-00-00Z-1111111111111111.jsonl"),
        format!(
            "{{\"entry\":\"started\",\"at\":\"2026-11-29T00:00:00.000Z\",\"run_id\":\"1111111111111111\",\
             \"scenario\":\"fis\",\"file\":\"fis.yaml\",\"target\":\"aws-rds:us-east-1:orders\",\"pid\":4194303}}\n\
             {{\"entry\":\"effect\",\"id\":1,\"at\":\"2026-11-29T00:00:01.000Z\",\
             \"what\":\"create an FIS experiment template tagged firedrill:drill=1111111111111111\",\
             \"undo\":{{\"type\":\"aws-delete-fis-templates\",\"aws\":{{\"region\":\"us-east-1\",\
             \"profile\":null,\"endpoint_url\":\"{}\"}},\"drill\":\"1111111111111111\"}}}}\n",
            moto.url()
        ),
    )
    .unwrap();
    let (code, out, err) = recover_aws(state.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("deleted FIS experiment template(s) {crashed}")),
        "{out}"
    );
    let left = rt.block_on(aws.templates_tagged(None)).unwrap();
    assert_eq!(left, [(other.clone(), "2222222222222222".to_owned())]);

    let (code, out, err) = cleanup(&moto, &["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "found: FIS experiment template {other} (drill 2222222222222222"
        )),
        "{out}"
    );
    let (code, out, err) = cleanup(&moto, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 resource(s) deleted"), "{out}");
    assert!(rt.block_on(aws.templates_tagged(None)).unwrap().is_empty());
}
