//! `cargo bench --bench zones`: what zones cost a sandbox. The time until a sandbox of a primary
//! and two synchronous standbys is ready, each node in a zone of its own plus the clients' (four
//! network namespaces, a bridge, veths, static neighbours, a runtime in the clients' zone),
//! against the same sandbox on loopback; alternating, five of each, both from the template. And
//! the fault's own cost: a zone's link set down through netlink, after the journal's fsync.
//! Needs root (CAP_NET_ADMIN).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use firedrill::pg::binaries::{self, PgBinaries};
use firedrill::safety::journal::{Entry, Journal};
use firedrill::scenario::{Replication, ZoneLayout};
use firedrill::systems::sandbox::{Sandbox, SandboxConfig};
use firedrill::template::TemplateCache;

const ROUNDS: usize = 5;

fn layout() -> ZoneLayout {
    let zones: BTreeMap<String, Vec<String>> = [
        ("a", vec!["primary"]),
        ("b", vec!["standby1"]),
        ("c", vec!["standby2"]),
    ]
    .into_iter()
    .map(|(z, n)| (z.to_owned(), n.into_iter().map(String::from).collect()))
    .collect();
    ZoneLayout::of(&zones, &[]).unwrap()
}

fn config(templates: &TemplateCache, zones: bool, journal: &Journal) -> SandboxConfig {
    SandboxConfig {
        seed_sql: Vec::new(),
        wal_archive: false,
        zones: zones.then(|| (layout(), firedrill::net::preflight().unwrap())),
        standbys: 2,
        replication: Replication::Synchronous,
        settings: Default::default(),
        work_dir: None,
        run_as: binaries::run_as(None).unwrap(),
        journal: journal.clone(),
        templates: Some(templates.clone()),
    }
}

/// Ready time, and (with zones) how long the outage of zone a took to put in place: the whole
/// call (its journal entry fsynced, then netlink) and the netlink part (from the fault instant).
async fn ready(
    bins: &PgBinaries,
    templates: &TemplateCache,
    zones: bool,
    journal: &Journal,
) -> (Duration, Option<(Duration, Duration)>) {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let t = Instant::now();
    let mut sb = Sandbox::build(bins.clone(), config(templates, zones, journal), &|_| {})
        .await
        .unwrap();
    let took = t.elapsed();
    let down = match sb.fabric() {
        Some(f) => {
            let t = Instant::now();
            let (_, _, at) = f.zone_down("a", journal).await.unwrap();
            Some((t.elapsed(), at.elapsed()))
        }
        None => None,
    };
    sb.shutdown(false).await;
    (took, down)
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
        let dir = tempfile::tempdir().unwrap();
        let cache = TemplateCache::new(dir.path().join("templates"));
        // A journal, as a drill has: the fault's cost includes its fsync'd entry.
        let journal = Journal::create(
            &dir.path().join("journal.jsonl"),
            Entry::Started {
                at: firedrill::safety::journal::now(),
                run_id: "bench".into(),
                scenario: "zones".into(),
                file: "benches/zones.rs".into(),
                target: "bench".into(),
                pid: std::process::id(),
            },
        )
        .unwrap();
        // Fills the template cache; not counted.
        ready(&bins, &cache, false, &journal).await;
        let (mut zoned, mut loopback, mut downs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            loopback.push(ready(&bins, &cache, false, &journal).await.0);
            let (t, down) = ready(&bins, &cache, true, &journal).await;
            zoned.push(t);
            downs.extend(down);
        }
        let (z, l) = (median(zoned), median(loopback));
        println!(
            "sandbox ready (primary + 2 synchronous standbys), median of {ROUNDS}: in 3 zones (+ \
             the clients') {:.0} ms, on loopback {:.0} ms -> {:.2}x",
            z.as_secs_f64() * 1e3,
            l.as_secs_f64() * 1e3,
            z.as_secs_f64() / l.as_secs_f64()
        );
        let (call, netlink): (Vec<Duration>, Vec<Duration>) = downs.into_iter().unzip();
        println!(
            "zone outage, median of {}: links down {:.2} ms after the fault instant (netlink), \
             {:.2} ms after the call began (with the journal's fsync); max {:.2} / {:.2} ms",
            call.len(),
            median(netlink.clone()).as_secs_f64() * 1e3,
            median(call.clone()).as_secs_f64() * 1e3,
            netlink.iter().max().unwrap().as_secs_f64() * 1e3,
            call.iter().max().unwrap().as_secs_f64() * 1e3
        );
    });
}
