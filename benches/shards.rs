//! `cargo bench --bench shards`: a 40-instance fleet restore on moto, run two ways in the same
//! run: one `firedrill run` with `fleet.concurrency: 4`, and 4 shard processes (`--shard i/4`
//! through `JOB_COMPLETION_INDEX`/`FIREDRILL_SHARDS`, as an Indexed Job starts them) with
//! concurrency 1 each, started together. moto does the AWS side (snapshot, restore, delete);
//! each instance's database and its "restored" copy are local PostgreSQL databases, as in the
//! fleet tests. Prints both wall times, their ratio, and where the time goes (the members'
//! mean drill time, and each way's overhead outside the drills). Two rounds, alternating.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use firedrill::pg::binaries::{self, PgBinaries};
use firedrill::scenario::Replication;
use firedrill::systems::sandbox::{SUPERUSER, Sandbox, SandboxConfig};
use firedrill_aws::moto::Server;

const INSTANCES: usize = 40;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let moto = Server::start();
    let sb = rt.block_on(Sandbox::build(
        PgBinaries::locate(None).unwrap(),
        SandboxConfig {
            seed_sql: Vec::new(),
            wal_archive: false,
            zones: None,
            standbys: 0,
            replication: Replication::Async,
            settings: Default::default(),
            work_dir: None,
            run_as: binaries::run_as(None).unwrap(),
            journal: Default::default(),
            templates: None,
        },
        &|_| {},
    ));
    let sb = sb.unwrap();
    let port = sb.nodes[0].port;
    let ids: Vec<String> = (1..=INSTANCES).map(|i| format!("db-{i:02}")).collect();
    rt.block_on(async {
        let admin = sb.connect(0).await.unwrap();
        for id in &ids {
            moto.postgres_instance_on(id, false, &[("restore-test", "monthly")], Some(port))
                .await;
            admin
                .batch_execute(&format!("create database \"{id}\"; "))
                .await
                .unwrap();
            let dsn = format!("host=127.0.0.1 port={port} user={SUPERUSER} dbname={id}");
            let (c, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
                .await
                .unwrap();
            let h = tokio::spawn(conn);
            c.batch_execute(
                "create table items (id int primary key, v text not null);
                 insert into items select g, 'item ' || g from generate_series(1, 1000) g;",
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
    println!(
        "{INSTANCES}-instance fleet restore on moto: 1 process x concurrency 4 vs 4 shard \
         processes x concurrency 1"
    );
    let mut ratios = Vec::new();
    for round in 1..=2 {
        let one = fleet(dir.path(), &moto, port, round, 1, 4);
        let four = fleet(dir.path(), &moto, port, round, 4, 1);
        let ratio = four.wall.as_secs_f64() / one.wall.as_secs_f64();
        println!(
            "round {round}: 1 shard x 4: {:.1}s (members' mean drill {:.2}s, {:.1}s of drills \
             over 4 slots); 4 shards x 1: {:.1}s (mean drill {:.2}s, shards of {:?} instances, \
             the slowest shard's drills {:.1}s) -> {ratio:.2}x",
            one.wall.as_secs_f64(),
            one.mean_drill,
            one.drill_sum / 4.0,
            four.wall.as_secs_f64(),
            four.mean_drill,
            four.sizes,
            four.slowest_shard
        );
        ratios.push(ratio);
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    println!(
        "4 shards x 1 / 1 shard x 4: mean {mean:.2}x over {} rounds",
        ratios.len()
    );
    rt.block_on(async {
        let mut sb = sb;
        sb.shutdown(false).await;
    });
}

struct Timing {
    wall: Duration,
    /// Mean of the members' own drill times (report start to finish), seconds.
    mean_drill: f64,
    drill_sum: f64,
    /// The largest sum of drill times of one shard.
    slowest_shard: f64,
    /// Members per process.
    sizes: Vec<usize>,
}

/// Runs the fleet as `shards` processes at once with `concurrency` each; their wall time.
fn fleet(
    root: &Path,
    moto: &Server,
    port: u16,
    round: u32,
    shards: u32,
    concurrency: u32,
) -> Timing {
    let run = root.join(format!("r{round}-{shards}x{concurrency}"));
    std::fs::create_dir_all(&run).unwrap();
    let file = run.join("fleet.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: bench-fleet\nenvironment: test\n\
             target: {{type: aws-rds, dsn_env: FD_FLEET_DSN, region: us-east-1, endpoint_url: '{}'}}\n\
             fleet: {{tags: {{restore-test: monthly}}, concurrency: {concurrency}, start_every: 0s}}\n\
             workload: {{connections: 0}}\n\
             restore:\n  backup: {{type: rds-snapshot, snapshot: create}}\n\
             \x20 instance: {{available_within: 2m, dsn_env: FD_RESTORED_DSN}}\n\
             \x20 verify:\n    source_quiescent: true\n    assertions:\n\
             \x20     - {{name: every item, sql: 'select count(*) = 1000 from items'}}\n\
             targets: {{rto: 5m, checksums: match}}\n",
            moto.url()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let children: Vec<(PathBuf, std::process::Child)> = (0..shards)
        .map(|i| {
            let out = run.join(format!("out-{i}"));
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_firedrill"));
            cmd.args(["run", "--out"])
                .arg(&out)
                .arg(&file)
                .env("FIREDRILL_STATE_DIR", run.join(format!("state-{i}")))
                .env("FIREDRILL_TEMPLATE_DIR", "off")
                .env(
                    "FD_FLEET_DSN",
                    format!("host=127.0.0.1 port={{port}} user={SUPERUSER} dbname={{instance}}"),
                )
                .env(
                    "FD_RESTORED_DSN",
                    format!(
                        "host=127.0.0.1 port={port} user={SUPERUSER} dbname={{source}}_restored"
                    ),
                )
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            if shards > 1 {
                cmd.env("JOB_COMPLETION_INDEX", i.to_string())
                    .env("FIREDRILL_SHARDS", shards.to_string());
            }
            (out, cmd.spawn().unwrap())
        })
        .collect();
    let mut drills = Vec::new();
    let mut slowest_shard = 0.0_f64;
    let mut sizes = Vec::new();
    for (out, child) in children {
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        let mut shard_sum = 0.0;
        sizes.push(summary["members"].as_array().unwrap().len());
        for m in summary["members"].as_array().unwrap() {
            let r: serde_json::Value = serde_json::from_slice(
                &std::fs::read(out.join(m["report"].as_str().unwrap())).unwrap(),
            )
            .unwrap();
            let at = |k: &str| humantime::parse_rfc3339(r[k].as_str().unwrap()).unwrap();
            let secs = at("finished_at")
                .duration_since(at("started_at"))
                .unwrap()
                .as_secs_f64();
            shard_sum += secs;
            drills.push(secs);
        }
        slowest_shard = slowest_shard.max(shard_sum);
    }
    let wall = started.elapsed();
    assert_eq!(drills.len(), INSTANCES, "every instance restored once");
    let drill_sum: f64 = drills.iter().sum();
    Timing {
        wall,
        mean_drill: drill_sum / drills.len() as f64,
        drill_sum,
        slowest_shard,
        sizes,
    }
}
