//! `cargo bench --bench sandbox`: the time until a sandbox is ready (primary up, one standby
//! streaming), built from the cached template against `initdb` plus `pg_basebackup` as before,
//! alternating, five of each after one build that fills the cache. Target: <= 0.25x.

use std::time::{Duration, Instant};

use firedrill::pg::binaries::{self, PgBinaries};
use firedrill::scenario::Replication;
use firedrill::systems::sandbox::{Sandbox, SandboxConfig};
use firedrill::template::TemplateCache;

const ROUNDS: usize = 5;

fn config(templates: Option<TemplateCache>) -> SandboxConfig {
    SandboxConfig {
        seed_sql: Vec::new(),
        wal_archive: false,
        zones: None,
        standbys: 1,
        replication: Replication::Async,
        settings: Default::default(),
        work_dir: None,
        run_as: binaries::run_as(None).unwrap(),
        journal: Default::default(),
        templates,
    }
}

async fn ready(bins: &PgBinaries, templates: Option<TemplateCache>) -> Duration {
    // The previous round's files are still being written back and discarded; both kinds start
    // from a quiet disk.
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let t = Instant::now();
    let verbose = std::env::var_os("FIREDRILL_BENCH_VERBOSE").is_some();
    let mut sb = Sandbox::build(bins.clone(), config(templates), &|m| {
        if verbose {
            println!("  {:>6.0} ms {m}", t.elapsed().as_secs_f64() * 1e3)
        }
    })
    .await
    .unwrap();
    let took = t.elapsed();
    sb.shutdown(false).await;
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let bins = PgBinaries::locate(None).unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = TemplateCache::new(cache_dir.path().join("templates"));
        // Fills the cache; not counted.
        ready(&bins, Some(cache.clone())).await;
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            without.push(ready(&bins, None).await);
            with.push(ready(&bins, Some(cache.clone())).await);
        }
        let (w, wo) = (median(with), median(without));
        println!(
            "sandbox ready (primary + 1 standby streaming), median of {ROUNDS}: from the template \
             {:.0} ms, with initdb and pg_basebackup {:.0} ms -> {:.2}x (target <= 0.25x)",
            w.as_secs_f64() * 1e3,
            wo.as_secs_f64() * 1e3,
            w.as_secs_f64() / wo.as_secs_f64()
        );
    });
}
