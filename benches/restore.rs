//! `cargo bench --bench restore`: the whole pg_basebackup restore drill against the same restore
//! done by hand with PostgreSQL's own tools, in the same run on a source of the same size
//! (pgbench scale from `FIREDRILL_BENCH_SCALE`, default 20: about 260 MB of heap):
//!
//! - copy: `cp -a` of the base backup and `chown -R` to the server's user;
//! - recovery: the restore settings appended to `postgresql.auto.conf`, `recovery.signal`,
//!   `pg_ctl start`, then `psql` until `pg_is_in_recovery()` is false (the first write-ready
//!   query);
//! - one checksum scan of every table on each side: `psql` running
//!   `select count(*), bit_xor(hashtextextended(t::text, 0)) from <table> t`.
//!
//! The drill's part is its `restore` and `verify` phases (restore, first query, schema,
//! checksums of both sides), read from its report's timeline; `pg_amcheck` and the backup's own
//! verification are switched off, since they are extra checks rather than part of a restore.
//! Target: the drill within 1.5x of the restore by hand. Two rounds, alternating.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use firedrill::engine;
use firedrill::human::Silent;
use firedrill::pg::binaries::{self, PgBinaries};
use firedrill::report::Report;
use firedrill::scenario::{self, Replication};
use firedrill::systems::sandbox::{SUPERUSER, Sandbox, SandboxConfig};

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
    println!("restore drill vs the same restore by hand, pgbench scale {scale}");
    let mut ratios = Vec::new();
    for round in 1..=2 {
        let parts = parts(scale).await;
        let drill = drill(scale).await;
        let sum = parts.copy + parts.recovery + parts.scans;
        let ratio = drill.as_secs_f64() / sum.as_secs_f64();
        println!(
            "round {round}: by hand: copy {:.2}s + pg_ctl start and psql until promoted {:.2}s + \
             scans of both sides {:.2}s = {:.2}s; drill restore+verify {:.2}s -> {ratio:.2}x \
             (target <= 1.5x)",
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
        "restore drill / restore by hand: best {:.2}x, worst {:.2}x (target <= 1.5x)",
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
        seed_sql: Vec::new(),
        wal_archive: false,
        zones: None,
        standbys: 0,
        replication: Replication::Async,
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        work_dir: None,
        run_as: binaries::run_as(None).unwrap(),
        journal: Default::default(),
        templates: None,
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

/// `cmd` as the server's user (what `runuser -u postgres --` does when root).
fn as_server_user(mut cmd: Command, run_as: Option<(u32, u32)>) -> Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// `psql -Atc SQL` on `port`; its output.
fn psql(bins: &PgBinaries, port: u16, sql: &str) -> Result<String, String> {
    let out = tool(bins, "psql", port)
        .args(["-X", "-At", "-d", "postgres", "-c", sql])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// One checksum scan of every user table, as a person would write it.
fn scan_all(bins: &PgBinaries, port: u16) {
    let tables = psql(
        bins,
        port,
        "select quote_ident(schemaname) || '.' || quote_ident(tablename) from pg_tables \
         where schemaname not in ('pg_catalog', 'information_schema')",
    )
    .unwrap();
    for t in tables.lines() {
        psql(
            bins,
            port,
            &format!("select count(*), bit_xor(hashtextextended(t::text, 0)) from {t} t"),
        )
        .unwrap();
    }
}

/// A source like the drill's, backed up with its WAL archived; then the restore by hand.
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
    psql(&bins, port, "select pg_switch_wal()").unwrap();

    let target = dir.path().join("restored");
    let t = Instant::now();
    ok(Command::new("cp").arg("-a").arg(&base).arg(&target));
    if let Some((uid, gid)) = run_as {
        ok(Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(&target));
    }
    let copy = t.elapsed();

    let restored_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sockets = dir.path().join("sockets");
    std::fs::create_dir(&sockets).unwrap();
    chown(&sockets);
    let mut auto = std::fs::OpenOptions::new()
        .append(true)
        .open(target.join("postgresql.auto.conf"))
        .unwrap();
    use std::io::Write;
    write!(
        auto,
        "port = {restored_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
         archive_mode = off\nrestore_command = 'cp \"{}/%f\" \"%p\"'\n\
         recovery_target_action = 'promote'\n",
        sockets.display(),
        archive.display()
    )
    .unwrap();
    std::fs::write(target.join("recovery.signal"), b"").unwrap();
    chown(&target.join("recovery.signal"));
    let t = Instant::now();
    let mut start = as_server_user(Command::new(bins.program("pg_ctl")), run_as);
    start
        .args(["-w", "-t", "600", "-l"])
        .arg(sockets.join("restored.log"))
        .arg("-D")
        .arg(&target)
        .arg("start");
    ok(&mut start);
    let deadline = Instant::now() + Duration::from_secs(600);
    while psql(&bins, restored_port, "select pg_is_in_recovery()").as_deref() != Ok("f\n") {
        assert!(
            Instant::now() < deadline,
            "the restored server did not promote"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let recovery = t.elapsed();

    let t = Instant::now();
    scan_all(&bins, port);
    scan_all(&bins, restored_port);
    let scans = t.elapsed();

    let mut stop = as_server_user(Command::new(bins.program("pg_ctl")), run_as);
    ok(stop
        .args(["-m", "immediate", "-D"])
        .arg(&target)
        .arg("stop"));
    drop(source);
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
