//! `cargo bench --bench drill`: figures for the core drill, each a ratio against a baseline
//! measured in the same run (these machines are noisy; absolute numbers are not comparable).
//!
//! (a) RTO error against injected outages (pauses of 0.5, 1 and 2s); target: error at most one
//!     probe interval + 10ms.
//! (b) the workload's writes/s against pgbench running the same single-row insert at the same
//!     concurrency; target: at least 0.9x.
//! (c) firedrill's own CPU while probing at 100 Hz; target: under 5% of one core.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use firedrill::engine;
use firedrill::human::Silent;
use firedrill::pg::binaries::{self, PgBinaries};
use firedrill::probe::{self, ProbeKind, ProbeSpec, ProbeState};
use firedrill::scenario::{self, Replication};
use firedrill::systems::sandbox::{SUPERUSER, Sandbox, SandboxConfig};
use firedrill::workload::{self, WriterSpec};
use tokio::sync::watch;

const INTERVAL_MS: f64 = 10.0;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        rto_error().await;
        let sb = sandbox().await;
        writes_vs_pgbench(&sb).await;
        probe_cpu(&sb).await;
    });
}

async fn sandbox() -> Sandbox {
    let config = SandboxConfig {
        seed_sql: Vec::new(),
        wal_archive: false,
        zones: None,
        standbys: 1,
        replication: Replication::Async,
        settings: Default::default(),
        work_dir: None,
        run_as: binaries::run_as(None).unwrap(),
        journal: Default::default(),
        templates: None,
    };
    Sandbox::build(PgBinaries::locate(None).unwrap(), config, &|_| {})
        .await
        .unwrap()
}

async fn rto_error() {
    println!("(a) RTO error against injected outages (pause of the primary), probe interval 10ms");
    println!(
        "    {:>8} {:>10} {:>9} {:>16}",
        "outage", "measured", "error", "error/(10ms+10ms)"
    );
    let mut worst: f64 = 0.0;
    for pause_ms in [500u64, 1000, 2000] {
        for _ in 0..3 {
            let yaml = format!(
                "version: 1\nname: bench-pause\ntarget: {{type: postgres-sandbox}}\n\
                 workload: {{connections: 1}}\nprobes: {{interval: 10ms, timeout: 250ms}}\n\
                 steady_state: {{duration: 1s}}\n\
                 fault: {{type: pause, node: primary, duration: {pause_ms}ms}}\n\
                 recovery: {{type: wait}}\nobserve: {{duration: {}ms, stability: 500ms}}\n\
                 targets: {{rto: 10s}}\n",
                pause_ms + 1500
            );
            let loaded = scenario::parse(Path::new("bench"), &yaml).unwrap();
            let (_tx, rx) = watch::channel(false);
            let report = engine::run(&loaded, loaded.drill().expect("one drill"), &mut Silent, rx)
                .await
                .unwrap()
                .report;
            let rto = report.measurements.rto_ms.expect("recovered");
            let error = (rto - pause_ms as f64).abs();
            worst = worst.max(error);
            println!(
                "    {:>6}ms {:>8.1}ms {:>7.1}ms {:>16.2}",
                pause_ms,
                rto,
                error,
                error / (INTERVAL_MS + 10.0)
            );
        }
    }
    println!(
        "    worst error {worst:.1}ms = {:.2}x the allowed 20ms (target <= 1.00)\n",
        worst / (INTERVAL_MS + 10.0)
    );
}

async fn writes_vs_pgbench(sb: &Sandbox) {
    const CONNECTIONS: u32 = 4;
    const SECONDS: u64 = 5;
    let primary = sb.connect(0).await.unwrap();
    workload::prepare(&primary, "firedrill_ledger")
        .await
        .unwrap();
    let port = sb.nodes[0].port.to_string();
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        script.path(),
        "\\set seq random(1, 1000000000000)\n\
         insert into firedrill_ledger (run, client, seq, payload) \
         values ('pgbench', :client_id, :seq, 'pgbench/' || :client_id || '/' || :seq);\n",
    )
    .unwrap();
    let pgbench = PgBinaries::locate(None).unwrap().program("pgbench");

    println!("(b) single-row inserts/s at {CONNECTIONS} connections, {SECONDS}s each, alternating");
    let mut ratios = Vec::new();
    for round in 1..=3 {
        let ours = firedrill_writes(sb, CONNECTIONS, SECONDS, round).await;
        let out = Command::new(&pgbench)
            .args([
                "-n",
                "-M",
                "prepared",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                SUPERUSER,
            ])
            .args([
                "-c",
                &CONNECTIONS.to_string(),
                "-j",
                &CONNECTIONS.to_string(),
            ])
            .args(["-T", &SECONDS.to_string(), "-f"])
            .arg(script.path())
            .arg("postgres")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let tps: f64 = text
            .lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "pgbench output: {text}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        ratios.push(ours / tps);
        println!(
            "    round {round}: firedrill {ours:>8.0}/s   pgbench {tps:>8.0}/s   ratio {:.2}",
            ours / tps
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "    median ratio firedrill/pgbench {:.2} (target >= 0.90)\n",
        ratios[1]
    );
}

async fn firedrill_writes(sb: &Sandbox, connections: u32, seconds: u64, round: u32) -> f64 {
    let spec = Arc::new(WriterSpec {
        config: sb.client_config(Duration::from_secs(2)),
        table: "firedrill_ledger".into(),
        run: format!("bench-{round}"),
        timeout: Duration::from_secs(2),
    });
    let (stop, rx) = watch::channel(false);
    let acked = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let writers: Vec<_> = (0..connections)
        .map(|id| {
            tokio::spawn(workload::run_writer(
                spec.clone(),
                id,
                t0,
                rx.clone(),
                acked.clone(),
            ))
        })
        .collect();
    // Count from the first second on, as pgbench excludes its connection time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let from = acked.load(std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let n = acked.load(std::sync::atomic::Ordering::Relaxed) - from;
    let elapsed = started.elapsed().as_secs_f64();
    stop.send(true).unwrap();
    for w in writers {
        w.await.unwrap();
    }
    n as f64 / elapsed
}

async fn probe_cpu(sb: &Sandbox) {
    const SECONDS: u64 = 10;
    let (stop, rx) = watch::channel(false);
    let t0 = Instant::now();
    let mut handles = Vec::new();
    let mut states = Vec::new();
    for kind in [ProbeKind::Write, ProbeKind::Read] {
        let state = Arc::new(ProbeState::default());
        states.push(state.clone());
        let spec = ProbeSpec {
            kind,
            config: sb.client_config(Duration::from_secs(1)),
            interval: Duration::from_millis(10),
            timeout: Duration::from_secs(1),
            abandon_after: Duration::from_secs(10),
            run: "bench".into(),
        };
        handles.push(tokio::spawn(probe::run(spec, t0, rx.clone(), state)));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu0 = cpu_time();
    let wall0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(SECONDS)).await;
    let cpu = cpu_time() - cpu0;
    let wall = wall0.elapsed().as_secs_f64();
    stop.send(true).unwrap();
    for h in handles {
        h.await.unwrap();
    }
    let probes: u64 = states
        .iter()
        .map(|s| s.ok.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    let pct = 100.0 * cpu / wall;
    println!("(c) CPU of firedrill probing at 100 Hz (write + read probe) for {SECONDS}s");
    println!(
        "    {probes} successful probes, {:.1} probes/s; CPU {cpu:.3}s in {wall:.1}s = {pct:.2}% of one core = {:.2}x the 5% budget (target < 1.00)",
        probes as f64 / (wall + 0.5),
        pct / 5.0
    );
}

/// User + system CPU seconds of this process so far.
fn cpu_time() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}
