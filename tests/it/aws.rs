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
pub(crate) fn cleanup(moto: &Server, args: &[&str]) -> (i32, String, String) {
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
    pub(crate) sb: firedrill::systems::sandbox::Sandbox,
    pub(crate) rt: tokio::runtime::Runtime,
}

impl LocalDb {
    pub(crate) fn new() -> LocalDb {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let bins = firedrill::pg::binaries::PgBinaries::locate(None).unwrap();
        let sb = rt
            .block_on(firedrill::systems::sandbox::Sandbox::build(
                bins,
                crate::sandbox::config(0, firedrill::scenario::Replication::Async),
                &|_| {},
            ))
            .unwrap();
        LocalDb { sb, rt }
    }

    pub(crate) fn postmaster_pid(&self) -> i32 {
        self.sb.nodes[0].pid().unwrap()
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
             workload: {{connections: 1, keep_rows: true}}\nprobes: {{interval: 50ms, timeout: 500ms}}\n\
             steady_state: {{duration: 500ms}}\nfault: {fault}\nrecovery: {{type: wait}}\n\
             observe: {{duration: {observe}, stability: 200ms}}\n\
             targets: {{rto: 35s, max_lost_writes: 0}}\n",
            moto.url()
        ),
    )
    .unwrap();
    file
}

pub(crate) fn aws_env(cmd: &mut std::process::Command, state: &std::path::Path, dsn: &str) {
    cmd.env("FIREDRILL_STATE_DIR", state)
        .env("FD_AWS_DSN", dsn)
        .envs(MOTO_CREDENTIALS);
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
