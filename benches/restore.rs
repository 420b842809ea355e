//! `cargo bench --bench restore`: the whole pg_basebackup restore drill against the sum of its
//! irreducible parts, each measured alone in the same run on a source of the same size
//! (pgbench scale from `FIREDRILL_BENCH_SCALE`, default 20: about 260 MB of heap):
//!
//! - copy: `cp -a` of a base backup;
//! - recovery: PostgreSQL started on the copy with `recovery.signal`, replaying the archive until
//!   it promotes;
//! - one scan of each side: firedrill's fingerprint of every table, source then restored.
//!
//! The drill's part is its `restore` and `verify` phases (restore, first query, schema,
//! checksums of both sides), read from its report's timeline; `pg_amcheck` and the backup's own
//! verification are switched off, since they are extra checks rather than part of a restore.
//! Target: the drill within 1.5x of the sum of the parts. Two rounds, alternating.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use firedrill::checksum;
use firedrill::engine;
use firedrill::human::Silent;
use firedrill::pg::binaries::{self, PgBinaries};
use firedrill::report::Report;
use firedrill::scenario::{self, Replication};
use firedrill::target::sandbox::{SUPERUSER, Sandbox, SandboxConfig};

fn main() {
    let scale: u32 = std::env::var("FIREDRILL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(scale));
}

async fn run(scale: u32) {
    println!("restore drill vs its parts, pgbench scale {scale}");
    let mut ratios = Vec::new();
    for round in 1..=2 {
        let parts = parts(scale).await;
        let drill = drill(scale).await;
        let sum = parts.copy + parts.recovery + parts.scans;
        let ratio = drill.as_secs_f64() / sum.as_secs_f64();
        println!(
            "round {round}: parts: copy {:.2}s + recovery {:.2}s + scans of both sides {:.2}s = \
             {:.2}s; drill restore+verify {:.2}s -> {ratio:.2}x (target <= 1.5x)",
            parts.copy.as_secs_f64(),
            parts.recovery.as_secs_f64(),
            parts.scans.as_secs_f64(),
            sum.as_secs_f64(),
            drill.as_secs_f64()
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "restore drill / irreducible parts: best {:.2}x, worst {:.2}x (target <= 1.5x)",
        ratios[0],
        ratios[ratios.len() - 1]
    );
}

struct Parts {
    copy: Duration,
    recovery: Duration,
    scans: Duration,
}

fn sandbox_config(settings: &[(&str, String)]) -> SandboxConfig {
    SandboxConfig {
        standbys: 0,
        replication: Replication::Async,
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        work_dir: None,
        run_as: binaries::run_as(None).unwrap(),
        journal: Default::default(),
    }
}

fn tool(bins: &PgBinaries, name: &str, port: u16) -> Command {
    let mut c = Command::new(bins.program(name));
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", SUPERUSER]);
    c
}

fn ok(c: &mut Command) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A source like the drill's, backed up with its WAL archived; then each part alone.
async fn parts(scale: u32) -> Parts {
    let bins = PgBinaries::locate(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    let run_as = binaries::run_as(None).unwrap();
    let chown = |p: &Path| {
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
        }
    };
    chown(&archive);
    let source = Sandbox::build(
        bins.clone(),
        sandbox_config(&[
            ("archive_mode", "on".into()),
            (
                "archive_command",
                format!(
                    "test ! -f '{a}/%f' && cp '%p' '{a}/%f'",
                    a = archive.display()
                ),
            ),
        ]),
        &|_| {},
    )
    .await
    .unwrap();
    let port = source.nodes[0].port;
    ok(tool(&bins, "pgbench", port).args(["-i", "-q", "-s", &scale.to_string(), "postgres"]));
    let base = dir.path().join("base");
    ok(tool(&bins, "pg_basebackup", port)
        .args(["-X", "stream", "-c", "fast", "--no-sync", "-D"])
        .arg(&base));
    let src = source.connect(0).await.unwrap();
    src.batch_execute("select pg_switch_wal()").await.unwrap();

    let mut restored = Sandbox::create(bins.clone(), sandbox_config(&[])).unwrap();
    let target = restored.root().join("restored");
    let t = Instant::now();
    ok(Command::new("cp").arg("-a").arg(&base).arg(&target));
    restored.chown_tree(&target).unwrap();
    let copy = t.elapsed();

    std::fs::write(target.join("recovery.signal"), b"").unwrap();
    restored
        .chown_tree(&target.join("recovery.signal"))
        .unwrap();
    let conf = format!(
        "restore_command = 'cp \"{}/%f\" \"%p\"'\nrecovery_target_action = 'promote'\n",
        archive.display()
    );
    let t = Instant::now();
    let idx = restored
        .start_restored("restored", target, &conf)
        .await
        .unwrap();
    restored
        .wait_promoted(idx, Duration::from_secs(600))
        .await
        .unwrap();
    let recovery = t.elapsed();

    let dst = restored.connect(idx).await.unwrap();
    let t = Instant::now();
    for c in [&src, &dst] {
        checksum::prepare(c).await.unwrap();
        for table in checksum::tables(c).await.unwrap() {
            checksum::fingerprint(c, &table).await.unwrap();
        }
    }
    let scans = t.elapsed();
    Parts {
        copy,
        recovery,
        scans,
    }
}

/// The drill's restore and verify phases, from its report.
async fn drill(scale: u32) -> Duration {
    let yaml = format!(
        "version: 1\nname: bench-restore\ntarget: {{type: postgres-sandbox, standbys: 0}}\n\
         workload: {{connections: 0}}\nrestore:\n  seed: {{pgbench_scale: {scale}}}\n  \
         backup: {{type: pg-basebackup}}\n  verify: {{backup: false, amcheck: false}}\n\
         targets: {{checksums: match}}\n"
    );
    let loaded = scenario::parse(Path::new("bench-restore.yaml"), &yaml).unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let report: Report = engine::run(&loaded, loaded.drill().expect("one drill"), &mut Silent, rx)
        .await
        .unwrap()
        .report;
    assert_eq!(
        report
            .measurements
            .restore
            .as_ref()
            .unwrap()
            .tables_differing,
        Some(0),
        "the drill's restore is exact: {:#?}",
        report.measurements.restore
    );
    let phase = |name: &str| {
        report
            .timeline
            .iter()
            .find(|e| e.kind == "phase" && e.detail == name)
            .map(|e| e.t_ms)
            .unwrap()
    };
    Duration::from_secs_f64((phase("teardown") - phase("restore")) / 1000.0)
}
