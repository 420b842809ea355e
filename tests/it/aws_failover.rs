//! Failover drills of `aws-rds` targets that the drill's clients feel. moto runs no database, so
//! a local pair (primary and synchronous standby) stands in for the instance or the cluster, and
//! a follower task does to it what RDS does when moto shows the failover happened: it stops the
//! primary at once, waits `DELAY`, and promotes the standby. This is a simulation of the
//! outage, not of AWS: what it proves is that the drill measures the outage its clients saw.
//!
//! The follower sees the failover in moto itself: an Aurora cluster's writer changing
//! (`DescribeDBClusters`), or, for `rds-failover`, moto's record of a `RebootDBInstance` with
//! `ForceFailover=true` (a no-op in moto). The DSN names both hosts with
//! `target_session_attrs=read-write`, as a client reconnecting through a failing-over endpoint.
//! The follower times the outage with its own client; the test compares the drill's RTO with it
//! and counts the rows on the new primary itself for the lost writes.

use std::time::{Duration, Instant};

use firedrill::scenario::{Replication, StopMode};
use firedrill::systems::sandbox::Sandbox;
use firedrill_aws::moto::Server;

use crate::aws::{MOTO_CREDENTIALS, aws_scenario, rds};

const DELAY: Duration = Duration::from_secs(2);

/// How the follower knows the failover happened in moto.
enum Seen {
    /// The cluster's writer is no longer this instance.
    WriterLeft {
        rds: aws_sdk_rds::Client,
        cluster: String,
        writer: String,
    },
    /// moto recorded a `RebootDBInstance` of this instance with `ForceFailover=true`.
    RebootWithFailover {
        recording: std::path::PathBuf,
        instance: String,
    },
}

impl Seen {
    async fn happened(&self) -> bool {
        match self {
            Seen::WriterLeft {
                rds,
                cluster,
                writer,
            } => {
                let Ok(c) = rds
                    .describe_db_clusters()
                    .db_cluster_identifier(cluster)
                    .send()
                    .await
                else {
                    return false;
                };
                c.db_clusters()[0].db_cluster_members().iter().any(|m| {
                    m.is_cluster_writer() == Some(true)
                        && m.db_instance_identifier() != Some(writer)
                })
            }
            Seen::RebootWithFailover {
                recording,
                instance,
            } => {
                let text = std::fs::read_to_string(recording).unwrap_or_default();
                text.lines().any(|l| {
                    let r: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
                    let body = r["body"].as_str().unwrap_or("");
                    let body = if r["body_encoded"] == true {
                        String::from_utf8(
                            aws_smithy_types::base64::decode(body).unwrap_or_default(),
                        )
                        .unwrap_or_default()
                    } else {
                        body.to_owned()
                    };
                    body.contains("Action=RebootDBInstance")
                        && body.contains(&format!("DBInstanceIdentifier={instance}"))
                        && body.contains("ForceFailover=true")
                })
            }
        }
    }
}

/// The outage as the follower's own client saw it.
struct Outage {
    /// From stopping the primary until the follower's own write on the promoted standby.
    lasted: Duration,
}

/// Waits (at most a minute) for `seen`, then fails the pair over; the pair back, and the
/// outage if the failover was seen.
async fn follow(mut sb: Sandbox, seen: Seen) -> (Sandbox, Option<Outage>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.happened().await {
        if Instant::now() > deadline {
            return (sb, None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopped = Instant::now();
    sb.stop(0, StopMode::Fast).await.unwrap();
    tokio::time::sleep(DELAY).await;
    sb.promote(1).await.unwrap();
    let c = sb.connect(1).await.unwrap();
    c.batch_execute("create table follower_write (at timestamptz default now()); insert into follower_write default values")
        .await
        .unwrap();
    let lasted = stopped.elapsed();
    (sb, Some(Outage { lasted }))
}

/// Tears the pair down however the test ends.
struct Pair(Sandbox, tokio::runtime::Handle);

impl Drop for Pair {
    fn drop(&mut self) {
        let _g = self.1.enter();
        self.0.teardown(false);
    }
}

fn pair_dsn(sb: &Sandbox) -> String {
    format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=firedrill dbname=postgres \
         target_session_attrs=read-write connect_timeout=1",
        sb.nodes[0].port, sb.nodes[1].port
    )
}

fn build_pair(rt: &tokio::runtime::Runtime) -> Sandbox {
    let bins = firedrill::pg::binaries::PgBinaries::locate(None).unwrap();
    rt.block_on(Sandbox::build(
        bins,
        crate::sandbox::config(1, Replication::Synchronous),
        &|_| {},
    ))
    .unwrap()
}

/// Runs the drill; exit code, stderr, report.
fn run_drill(
    moto: &Server,
    target: &str,
    fault: &str,
    dsn: &str,
    dir: &std::path::Path,
) -> (i32, String, serde_json::Value) {
    let file = aws_scenario(dir, moto, target, fault, "6s");
    let out = dir.join("out");
    let mut cmd = crate::run_out(&out, &file);
    cmd.env("FIREDRILL_STATE_DIR", dir.join("state"))
        .env("FD_AWS_DSN", dsn)
        .envs(MOTO_CREDENTIALS);
    crate::run_for_report(&mut cmd, &out)
}

/// Builds the pair, has a follower wait for `seen` in moto, and runs the drill: its exit code,
/// stderr and report, the pair (torn down on drop) and the outage the follower timed.
fn felt_drill(
    moto: &Server,
    rt: &tokio::runtime::Runtime,
    seen: Seen,
    target: &str,
    fault: &str,
) -> (i32, String, serde_json::Value, Pair, Option<Outage>) {
    let sb = build_pair(rt);
    let dsn = pair_dsn(&sb);
    let follower = rt.spawn(follow(sb, seen));
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr, r) = run_drill(moto, target, fault, &dsn, dir.path());
    let (sb, outage) = rt.block_on(follower).unwrap();
    (code, stderr, r, Pair(sb, rt.handle().clone()), outage)
}

fn target<'r>(r: &'r serde_json::Value, name: &str) -> &'r serde_json::Value {
    r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no target {name} in {}", r["targets"]))
}

/// The drill's RTO against the follower's own outage, the writer's move, and the lost writes
/// against the rows the new primary holds.
fn check_felt(r: &serde_json::Value, outage: &Outage, sb: &Sandbox, rt: &tokio::runtime::Runtime) {
    let rto = r["measurements"]["rto_ms"].as_f64().unwrap();
    let own = outage.lasted.as_secs_f64() * 1e3;
    eprintln!("drill RTO {rto:.0} ms; the follower's own outage {own:.0} ms (delay {DELAY:?})");
    // The fault precedes the follower's stop by its polling (<= 50 ms plus a call to moto); a
    // probe may succeed a moment before the follower's own write does.
    assert!(
        rto >= DELAY.as_secs_f64() * 1e3 && rto >= own - 100.0 && rto <= own + 1000.0,
        "drill RTO {rto:.0} ms, the follower's own outage {own:.0} ms, delay {DELAY:?}"
    );
    assert_eq!(
        target(r, "writer_moved")["met"],
        true,
        "{}",
        r["measurements"]["writer"]
    );
    let w = &r["measurements"]["writer"];
    assert_eq!(
        w["expected"], "required",
        "the default for a failover fault"
    );
    assert_eq!(
        w["before"]["at"],
        format!("127.0.0.1:{}", sb.nodes[0].port),
        "{w}"
    );
    assert_eq!(
        w["after"]["at"],
        format!("127.0.0.1:{}", sb.nodes[1].port),
        "{w}"
    );

    let run_id = r["run_id"].as_str().unwrap().to_owned();
    let rows: i64 = rt.block_on(async {
        sb.connect(1)
            .await
            .unwrap()
            .query_one(
                "select count(*) from firedrill_ledger where run = $1",
                &[&run_id],
            )
            .await
            .unwrap()
            .get(0)
    });
    let acked = r["measurements"]["acknowledged_writes"].as_u64().unwrap();
    let doubt = r["measurements"]["in_doubt_writes"].as_u64().unwrap();
    let lost = r["measurements"]["lost_writes"].as_u64().unwrap();
    assert!(acked > 0);
    // Synchronous replication: nothing acknowledged is lost, and the new primary says so too.
    assert_eq!(lost, 0);
    assert!(
        acked <= rows as u64 && rows as u64 <= acked + doubt,
        "{rows} rows on the new primary; {acked} acknowledged, {doubt} in doubt"
    );
}

#[test]
fn an_aurora_failover_is_felt_by_the_drill_as_the_follower_timed_it() {
    let _x = crate::exclusive();
    let moto = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(moto.aurora_cluster("ledger", &["ledger-1", "ledger-2"]));
    let seen = Seen::WriterLeft {
        rds: rds(&moto),
        cluster: "ledger".into(),
        writer: "ledger-1".into(),
    };
    let (code, stderr, r, pair, outage) = felt_drill(
        &moto,
        &rt,
        seen,
        "cluster: ledger",
        "{type: aurora-failover, target_instance: ledger-2}",
    );
    let sb = &pair.0;
    assert_eq!(code, 0, "{stderr}");
    let outage = outage.expect("the follower saw moto's writer change");
    check_felt(&r, &outage, sb, &rt);
    assert!(
        r["target"]["description"]
            .as_str()
            .unwrap()
            .starts_with("DB cluster ledger (2 member(s), writer ledger-1, us-east-1)"),
        "{}",
        r["target"]
    );
    let fault = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "fault-injected")
        .unwrap();
    assert_eq!(
        fault["detail"],
        "FailoverDBCluster ledger: writer was ledger-1, failing over to ledger-2"
    );
}

#[test]
fn an_rds_failover_succeeds_in_a_drill_as_the_follower_timed_it() {
    let _x = crate::exclusive();
    let moto = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(moto.postgres_instance("orders", true, &[]));
    moto.start_recording();
    let seen = Seen::RebootWithFailover {
        recording: moto.recording().to_owned(),
        instance: "orders".into(),
    };
    let (code, stderr, r, pair, outage) =
        felt_drill(&moto, &rt, seen, "instance: orders", "{type: rds-failover}");
    let sb = &pair.0;
    assert_eq!(code, 0, "{stderr}");
    let outage = outage.expect("moto recorded RebootDBInstance with ForceFailover");
    check_felt(&r, &outage, sb, &rt);
}

/// The same Aurora drill with nothing following moto: the writer the DSN reaches never moves,
/// so the drill fails on `writer_moved` instead of passing with an RTO of nothing.
#[test]
fn a_failover_that_moves_no_writer_fails_the_drill() {
    let _x = crate::exclusive();
    let moto = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(moto.aurora_cluster("ledger", &["ledger-1", "ledger-2"]));
    let pair = Pair(build_pair(&rt), rt.handle().clone());
    let sb = &pair.0;
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr, r) = run_drill(
        &moto,
        "cluster: ledger",
        "{type: aurora-failover, target_instance: ledger-2}",
        &pair_dsn(sb),
        dir.path(),
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(r["verdict"], "fail");
    let moved = target(&r, "writer_moved");
    assert_eq!(moved["met"], false, "{moved}");
    assert_eq!(moved["achieved"], 0.0, "{moved}");
    assert!(
        stderr.contains("writer did not move: still 127.0.0.1:"),
        "{stderr}"
    );
    // The call itself reached moto: its writer moved, the client's did not.
    let writer = rt.block_on(async {
        let c = rds(&moto)
            .describe_db_clusters()
            .db_cluster_identifier("ledger")
            .send()
            .await
            .unwrap();
        c.db_clusters()[0]
            .db_cluster_members()
            .iter()
            .find(|m| m.is_cluster_writer() == Some(true))
            .and_then(|m| m.db_instance_identifier())
            .map(str::to_owned)
    });
    assert_eq!(writer.as_deref(), Some("ledger-2"));
}
