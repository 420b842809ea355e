//! `cargo bench --bench checksum`: checksumming one pgbench_accounts table (scale from
//! `FIREDRILL_BENCH_SCALE`, default 30: 3M rows, about 380 MiB of heap), warm cache, each method
//! three times, alternating, against baselines of the same run:
//!
//! - baseline: server-side `COPY ... TO '/dev/null' (FORMAT binary)` (one scan, no hashing);
//!   target: firedrill's fingerprint within 1.2x of it;
//! - `pg_dump --data-only -t pgbench_accounts | sha256sum`; target: firedrill at least 2x faster;
//! - data-diff style in-database md5 of each row's text, summed; target: at least 3x faster.
//!
//! Memory: firedrill's process RSS high-water mark after the runs (the work is in the server; the
//! client receives one row per table); target under 100 MB.

use std::process::Command;
use std::time::{Duration, Instant};

use firedrill::checksum::{self, TableName};
use firedrill::pg::binaries::{self, PgBinaries};
use firedrill::scenario::Replication;
use firedrill::systems::sandbox::{SUPERUSER, Sandbox, SandboxConfig};

fn main() {
    let scale: u32 = std::env::var("FIREDRILL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(scale));
}

async fn run(scale: u32) {
    let bins = PgBinaries::locate(None).unwrap();
    let mut settings = std::collections::BTreeMap::new();
    // Room to keep the table cached: the comparison is of CPU per row, not of disk reads.
    settings.insert("shared_buffers".to_owned(), "1GB".to_owned());
    let config = SandboxConfig {
        seed_sql: Vec::new(),
        wal_archive: false,
        zones: None,
        standbys: 0,
        replication: Replication::Async,
        settings,
        work_dir: None,
        run_as: binaries::run_as(None).unwrap(),
        journal: Default::default(),
        templates: None,
    };
    let mut sb = Sandbox::build(bins.clone(), config, &|_| {}).await.unwrap();
    let port = sb.nodes[0].port.to_string();
    let t = Instant::now();
    let out = Command::new(bins.program("pgbench"))
        .args([
            "-i",
            "-q",
            "-s",
            &scale.to_string(),
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            SUPERUSER,
            "postgres",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = sb.connect(0).await.unwrap();
    client
        .batch_execute("VACUUM (FREEZE, ANALYZE) pgbench_accounts")
        .await
        .unwrap();
    let size: String = client
        .query_one(
            "SELECT pg_size_pretty(pg_relation_size('pgbench_accounts'))",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    eprintln!(
        "pgbench scale {scale} ({size} heap) ready in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    checksum::prepare(&client).await.unwrap();
    let table = TableName {
        schema: "public".into(),
        name: "pgbench_accounts".into(),
    };
    // The plan of the query firedrill runs (one hash per row, one aggregate).
    let ours_sql = checksum::fingerprint_sql(&table, checksum::RowHash::Typed, "");
    for row in client
        .query(&format!("EXPLAIN {ours_sql}"), &[])
        .await
        .unwrap()
    {
        eprintln!("  {}", row.get::<_, String>(0));
    }
    // The same with a second aggregate over the hash, which the README says is not worth it.
    let xor_sql = ours_sql.replace(
        "coalesce(sum(h), 0)::text",
        "coalesce(sum(h), 0)::text, coalesce(bit_xor(h), 0)",
    );
    assert_ne!(xor_sql, ours_sql);
    // Warm the cache.
    client
        .batch_execute("COPY pgbench_accounts TO '/dev/null' (FORMAT binary)")
        .await
        .unwrap();

    let copy = || async {
        let t = Instant::now();
        client
            .batch_execute("COPY pgbench_accounts TO '/dev/null' (FORMAT binary)")
            .await
            .unwrap();
        t.elapsed()
    };
    let ours = || async {
        let t = Instant::now();
        let (f, hash) = checksum::fingerprint(&client, &table).await.unwrap();
        assert_eq!(hash, checksum::RowHash::Typed);
        assert_eq!(f.rows, i64::from(scale) * 100_000);
        t.elapsed()
    };
    let xor = || async {
        let t = Instant::now();
        client.query_one(&xor_sql, &[]).await.unwrap();
        t.elapsed()
    };
    let md5 = || async {
        let t = Instant::now();
        client
            .query_one(
                "SELECT sum(('x' || substring(md5(t::text), 18))::bit(60)::bigint) FROM pgbench_accounts t",
                &[],
            )
            .await
            .unwrap();
        t.elapsed()
    };
    let dump = || {
        let t = Instant::now();
        let cmd = format!(
            "set -o pipefail; '{}' --data-only -t pgbench_accounts -h 127.0.0.1 -p {port} -U {SUPERUSER} postgres | sha256sum > /dev/null",
            bins.program("pg_dump").display()
        );
        let st = Command::new("bash").args(["-c", &cmd]).status().unwrap();
        assert!(st.success());
        t.elapsed()
    };

    let (mut c, mut o, mut m, mut d, mut x) = (vec![], vec![], vec![], vec![], vec![]);
    for round in 1..=3 {
        c.push(copy().await);
        o.push(ours().await);
        x.push(xor().await);
        m.push(md5().await);
        d.push(dump());
        eprintln!(
            "round {round}: COPY binary {:.2} s, firedrill {:.2} s, with bit_xor {:.2} s, md5 {:.2} s, pg_dump|sha256sum {:.2} s",
            c[round - 1].as_secs_f64(),
            o[round - 1].as_secs_f64(),
            x[round - 1].as_secs_f64(),
            m[round - 1].as_secs_f64(),
            d[round - 1].as_secs_f64()
        );
    }
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        v[1].as_secs_f64()
    };
    let (c, o, m, d, x) = (
        med(&mut c),
        med(&mut o),
        med(&mut m),
        med(&mut d),
        med(&mut x),
    );
    println!("checksum of pgbench_accounts, scale {scale} ({size}), medians of 3:");
    println!(
        "  firedrill / COPY binary to /dev/null: {o:.2} s / {c:.2} s = {:.2}x (target <= 1.2x)",
        o / c
    );
    println!(
        "  pg_dump | sha256sum / firedrill: {d:.2} s / {o:.2} s = {:.2}x faster (target >= 2x)",
        d / o
    );
    println!(
        "  md5 hashing / firedrill: {m:.2} s / {o:.2} s = {:.2}x faster (target >= 3x)",
        m / o
    );
    println!(
        "  a second aggregate (bit_xor) / firedrill's one: {x:.2} s / {o:.2} s = {:.2}x",
        x / o
    );
    println!(
        "  firedrill RSS high-water mark: {:.1} MB (target < 100 MB)",
        vm_hwm_kb() as f64 / 1024.0
    );
    sb.teardown(false);
}

/// Peak resident set size of this process, from /proc.
fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}
