//! Zones on real network namespaces (the tests run as root, as CI does): a zone outage timed by
//! the test's own client inside the clients' zone, a partition's split brain counted on the
//! servers themselves (each started alone afterwards), fencing, a drill killed mid-partition and
//! recovered, and a machine without CAP_NET_ADMIN.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::safety::Running;

/// The lines a firedrill run printed that name its namespaces' prefix and the primary's place.
struct Announced {
    prefix: String,
    primary: (String, u16),
}

fn announced(lines: &[String]) -> Option<Announced> {
    let prefix = lines.iter().find_map(|l| {
        l.split("as network namespaces ")
            .nth(1)?
            .split("-*")
            .next()
            .map(str::to_owned)
    })?;
    let primary = lines.iter().find_map(|l| {
        let (addr, port) = l.split("primary up on ").nth(1)?.trim().split_once(':')?;
        Some((addr.to_owned(), port.parse().ok()?))
    })?;
    Some(Announced { prefix, primary })
}

/// Runs `f` on a thread inside network namespace `ns`, with a runtime of its own.
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = PathBuf::from("/run/netns").join(ns);
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: setns on a valid descriptor changes only this thread's namespace.
        assert_eq!(
            unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
            0,
            "setns {}",
            path.display()
        );
        f()
    })
}

/// What the test's own client saw: each write's send and end, and whether it was acknowledged.
#[derive(Default)]
struct OwnClient {
    writes: Vec<(Instant, Instant, bool)>,
}

impl OwnClient {
    /// The outage: the longest run of failed writes, as (last acknowledged write sent before
    /// it, its first failed write sent, the first acknowledged write's end after it).
    fn outage(&self) -> Option<(Instant, Instant, Instant)> {
        let mut best: Option<(Instant, Instant, Instant)> = None;
        let mut i = 0;
        while i < self.writes.len() {
            if self.writes[i].2 {
                i += 1;
                continue;
            }
            // A streak with no acknowledged write after it (the sandbox gone) is not an outage
            // that ended.
            let (Some(last_ok), Some(back)) = (
                self.writes[..i].iter().rev().find(|w| w.2),
                self.writes[i..].iter().find(|w| w.2),
            ) else {
                break;
            };
            let streak = (last_ok.0, self.writes[i].0, back.1);
            if best.is_none_or(|b| streak.2 - streak.1 > b.2 - b.1) {
                best = Some(streak);
            }
            i += self.writes[i..].iter().position(|w| w.2).unwrap_or(1);
        }
        best
    }
}

/// The own client, in the clients' zone: writes every 2 ms over one connection to the primary
/// with a 50 ms timeout; once a write fails, a fresh connection attempt goes out every 4 ms (each
/// with its own 8 ms timeout, so that at most two are in flight when the zone comes back: more
/// would crowd the server's backend starts and slow the probes being checked) until one writes: the first moment the primary took a write
/// again, as sharp as the test can see it. Stops `run_for` after its first failure.
async fn own_client(addr: String, port: u16, run_for: Duration) -> OwnClient {
    let config =
        format!("host={addr} port={port} user=firedrill dbname=postgres connect_timeout=1");
    let connect = |c: String| async move {
        let (client, conn) = tokio_postgres::connect(&c, tokio_postgres::NoTls)
            .await
            .ok()?;
        tokio::spawn(conn);
        Some(client)
    };
    let mut seen = OwnClient::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut client = None;
    while client.is_none() && Instant::now() < deadline {
        client = connect(config.clone()).await;
    }
    let c = client.expect("the own client reaches the primary");
    c.batch_execute("create table if not exists own_writes (at timestamptz default now())")
        .await
        .unwrap();
    let mut client = Some(c);
    let mut stop_at: Option<Instant> = None;
    while stop_at.is_none_or(|s| Instant::now() < s) && Instant::now() < deadline {
        let sent = Instant::now();
        let ok = match &client {
            Some(c) => tokio::time::timeout(
                Duration::from_millis(50),
                c.execute("insert into own_writes default values", &[]),
            )
            .await
            .is_ok_and(|r| r.is_ok()),
            None => false,
        };
        seen.writes.push((sent, Instant::now(), ok));
        if ok {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        stop_at.get_or_insert(sent + run_for);
        // Attempts every 4 ms, each on its own, until one writes.
        client = None;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        while client.is_none() && stop_at.is_none_or(|s| Instant::now() < s) {
            let (tx, cfg) = (tx.clone(), config.clone());
            tokio::spawn(async move {
                let sent = Instant::now();
                let attempt = tokio::time::timeout(Duration::from_millis(8), async {
                    let (c, conn) = tokio_postgres::connect(&cfg, tokio_postgres::NoTls).await?;
                    tokio::spawn(conn);
                    c.execute("insert into own_writes default values", &[])
                        .await?;
                    Ok::<_, tokio_postgres::Error>(c)
                })
                .await;
                let _ = tx.send((sent, Instant::now(), attempt.ok().and_then(Result::ok)));
            });
            tokio::time::sleep(Duration::from_millis(4)).await;
            while let Ok((sent, done, c)) = rx.try_recv() {
                seen.writes.push((sent, done, c.is_some()));
                if client.is_none() {
                    client = c;
                }
            }
        }
        seen.writes.sort_by_key(|w| w.0);
    }
    seen
}

const ZONE_OUTAGE: &str = "\
version: 1
name: zone-outage-timed
target:
  type: postgres-sandbox
  standbys: 1
  zones: {a: [primary], b: [standby1], app: []}
  clients: [app]
workload: {connections: 2, timeout: 500ms}
probes: {interval: 15ms, timeout: 10ms, abandon_after: 10ms}
steady_state: {duration: 2s, min_success_pct: 90}
fault: {type: zone-outage, zone: a, duration: 2s}
recovery: {type: wait}
observe: {duration: 5s, stability: 500ms}
targets: {rto: 5s, max_lost_writes: 0}
";

/// A 2 s outage of the primary's zone, no failover: firedrill's RTO agrees with the outage the
/// test's own client saw from the clients' zone to one probe interval + 10 ms, both are the
/// injected 2 s plus well under 300 ms, and the links went down within 5 ms of the fault
/// instant.
#[test]
fn a_zone_outage_is_timed_as_the_own_client_in_the_clients_zone_sees_it() {
    let _x = crate::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("zone.yaml");
    std::fs::write(&file, ZONE_OUTAGE).unwrap();
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let mut run = Running::start(
        &state,
        &[
            "run",
            "--out",
            out.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        &[],
    );
    run.wait_for("replication streaming");
    let a = announced(run.seen_lines()).expect("namespaces and the primary announced");
    let own = in_netns(&format!("{}-app", a.prefix), move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(own_client(a.primary.0, a.primary.1, Duration::from_secs(6)))
    });
    let (code, _, lines) = run.finish();
    let own = own.join().unwrap();
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let m = &r["measurements"];
    let rto = m["rto_ms"].as_f64().expect("an RTO");
    let failed = own.writes.iter().filter(|w| !w.2).count();
    eprintln!("own client: {} writes, {failed} failed", own.writes.len());
    let (last_ok, first_fail, back) = own.outage().expect("the own client saw the outage");
    let own_min = (back - first_fail).as_secs_f64() * 1e3;
    let own_max = (back - last_ok).as_secs_f64() * 1e3;
    eprintln!("zone outage: firedrill RTO {rto:.1} ms, own client {own_min:.1}..{own_max:.1} ms");
    // One probe interval (15 ms) + 10 ms.
    let slack = 15.0 + 10.0;
    assert!(
        (own_min - slack..=own_max + slack).contains(&rto),
        "firedrill {rto:.1} ms against the own client's {own_min:.1}..{own_max:.1} ms"
    );
    // The injected outage: 2 s, then the links' undo and a connection. Here 2050 to 2075 ms;
    // a clean clone's CI run saw 2146 ms on a loaded 2-core machine, with firedrill and the
    // own client still agreeing (the check above). 300 ms still catches what matters: an ARP
    // retry after the zone's return costs 800 ms (static neighbours prevent it).
    assert!(
        (2000.0..2300.0).contains(&own_max),
        "own outage {own_max:.1} ms"
    );
    assert!((2000.0..2300.0).contains(&rto), "RTO {rto:.1} ms");

    let fault_at = m["fault_at_ms"].as_f64().unwrap();
    let down = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "network")
        .expect("the links-down moment on the timeline");
    let cost = down["t_ms"].as_f64().unwrap() - fault_at;
    eprintln!("links down {cost:.2} ms after the fault instant");
    assert!(
        (0.0..=5.0).contains(&cost),
        "links down {cost:.2} ms after the fault"
    );
    assert_eq!(m["lost_writes"], 0);
    assert_eq!(m["split_brain"]["window_ms"], 0.0);
    // Nothing of the network is left.
    assert!(
        !namespaces()
            .iter()
            .any(|n| n.starts_with(&a_prefix(&lines))),
        "{:?}",
        namespaces()
    );
}

fn a_prefix(lines: &[String]) -> String {
    announced(lines).expect("announced").prefix
}

/// `ip netns list`, names only.
fn namespaces() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Every row of the drill's ledger in a kept data directory: `(client, seq) -> at`.
async fn ledger_at(port: u16, run: &str) -> HashMap<(i32, i64), SystemTime> {
    let (c, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=firedrill dbname=postgres connect_timeout=5"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    c.query(
        "select client, seq, at from firedrill_ledger where run = $1",
        &[&run],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| ((r.get(0), r.get(1)), r.get(2)))
    .collect()
}

/// A shipped partition scenario, its sandbox under `work` and kept, the ledger's rows stamped
/// with the server's clock (a column the seed adds; the drill's own insert leaves it to its
/// default).
fn partition_scenario(name: &str, work: &Path) -> PathBuf {
    let text = std::fs::read_to_string(crate::repo(&format!("scenarios/{name}")))
        .unwrap()
        .replace(
            "  type: postgres-sandbox\n",
            &format!(
                "  type: postgres-sandbox\n  work_dir: {}\n  seed_sql:\n    - >-\n      create \
                 table firedrill_ledger (run text not null, client integer not null, seq bigint \
                 not null, payload text not null, at timestamptz not null default \
                 clock_timestamp(), primary key (run, client, seq))\n",
                work.display()
            ),
        )
        .replace(
            "workload:\n",
            "cleanup: never\nworkload:\n  keep_rows: true\n",
        )
        .replace(
            "runbook: ../runbooks/",
            &format!("runbook: {}/runbooks/", env!("CARGO_MANIFEST_DIR")),
        );
    let file = work.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

/// Each node's ledger rows, every node of the kept sandbox started alone on loopback.
fn rows_on_each(work: &Path, run: &str) -> Vec<HashMap<(i32, i64), SystemTime>> {
    let kept = std::fs::read_dir(work)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("firedrill-sandbox-"))
        })
        .expect("the kept sandbox");
    let bins = firedrill::pg::binaries::PgBinaries::locate(None).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut rows = Vec::new();
    for node in ["primary", "standby1"] {
        let data = kept.join(node);
        let log = kept.join(format!("{node}-truth.log"));
        let port = crate::lossy::start_on_a_free_port(&bins, &data, &log);
        rows.push(rt.block_on(ledger_at(port, run)));
        crate::lossy::pg_ctl(&bins, &data, &["-w", "-m", "fast", "stop"]);
    }
    rows
}

/// Runs a shipped partition scenario (see [`partition_scenario`]) through the command line:
/// its work directory, output directory, exit code, stderr and report.
fn run_partition(name: &str) -> (tempfile::TempDir, PathBuf, i32, String, serde_json::Value) {
    let work = tempfile::tempdir().unwrap();
    let file = partition_scenario(name, work.path());
    let out = work.path().join("out");
    let (code, stderr, r) = crate::run_for_report(&mut crate::run_out(&out, &file), &out);
    (work, out, code, stderr, r)
}

fn wall(started_at: &str, t_ms: f64) -> SystemTime {
    humantime::parse_rfc3339(started_at).unwrap() + Duration::from_secs_f64(t_ms / 1e3)
}

/// The unfenced partition: two servers take writes at once, and every write the cut-off
/// primary acknowledged after the fault is lost. The test starts each server alone afterwards
/// and counts, on the servers themselves, the rows that the old primary holds and the new one
/// lacks, stamped after the fault: firedrill's "lost to divergence". Every writer counts, not
/// only app-a's: until the links have moved (a few ms after the fault instant) app-b's writers
/// still reach the old primary too. A write in flight across the fault instant (at most one per
/// writer) is stamped before it and acknowledged after, so the two counts may differ by that
/// much and no more. The window is checked on the rows too:
/// the overlap of the spans each server's rows were written in.
#[test]
fn an_unfenced_partition_reports_the_split_brain_the_servers_show() {
    let _x = crate::exclusive();
    let (work, out, code, stderr, r) = run_partition("sandbox-partition-split-brain.yaml");
    assert_eq!(code, 1, "the unfenced drill fails: {stderr}");
    let m = &r["measurements"];
    let sb = &m["split_brain"];
    let window = sb["window_ms"].as_f64().unwrap();
    let diverged = sb["diverged_writes"].as_u64().unwrap();
    let lost = m["lost_writes"].as_u64().unwrap();
    let in_doubt = m["in_doubt_writes"].as_u64().unwrap();
    assert_eq!(sb["survivor"], "standby1");
    let failed: Vec<&str> = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["met"] == false)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["max_lost_writes", "max_split_brain"], "{r:#}");

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains(r#"class="split-brain""#),
        "the picture shows the split brain"
    );
    let run = r["run_id"].as_str().unwrap();
    let rows = rows_on_each(work.path(), run);
    let (old, new) = (&rows[0], &rows[1]);
    let only_old: Vec<(&(i32, i64), &SystemTime)> =
        old.iter().filter(|(k, _)| !new.contains_key(k)).collect();
    let fault = wall(
        r["started_at"].as_str().unwrap(),
        m["fault_at_ms"].as_f64().unwrap(),
    );
    let truth = only_old.iter().filter(|(_, at)| **at >= fault).count() as u64;
    let shipped = crate::repo("scenarios/sandbox-partition-split-brain.yaml");
    let writers = firedrill::scenario::parse(&shipped, &std::fs::read_to_string(&shipped).unwrap())
        .unwrap()
        .scenario
        .workload
        .connections as u64;
    eprintln!(
        "split brain: window {window:.0} ms, diverged {diverged} (servers: {truth}), lost {lost}, \
         in doubt {in_doubt}, only on the old primary {}",
        only_old.len()
    );
    assert!(
        truth > 100,
        "app-a kept writing to the old primary: {truth}"
    );
    assert!(
        diverged.abs_diff(truth) <= writers,
        "firedrill {diverged} diverged, the servers {truth}"
    );
    // Every acknowledged write the new primary lacks is on the old one; what else is there
    // was in doubt.
    let only_old = only_old.len() as u64;
    assert!(
        lost <= only_old && only_old <= lost + in_doubt,
        "{lost} {only_old} {in_doubt}"
    );
    // The window, from the rows: the overlap of the span each server took this run's writes
    // in (the new primary's are those the old one lacks).
    let old_last = old.values().max().unwrap();
    let mine = || {
        new.iter()
            .filter(|(k, _)| !old.contains_key(k))
            .map(|(_, at)| at)
    };
    let (new_first, new_last) = (mine().min().unwrap(), mine().max().unwrap());
    let rows_window = old_last
        .min(new_last)
        .duration_since(*new_first)
        .unwrap()
        .as_secs_f64()
        * 1e3;
    assert!(
        (window - rows_window).abs() < 100.0,
        "firedrill's window {window:.0} ms, the rows' {rows_window:.0} ms"
    );
}

/// The same partition with fencing and synchronous replication: one server at a time, nothing
/// acknowledged lost; on the servers, the old primary's last row precedes the new one's first,
/// and what only the old primary holds was never acknowledged.
#[test]
fn a_fenced_partition_has_no_split_brain_and_loses_nothing() {
    let _x = crate::exclusive();
    let (work, _out, code, stderr, r) = run_partition("sandbox-partition-fenced.yaml");
    assert_eq!(code, 0, "{stderr}");
    let m = &r["measurements"];
    assert_eq!(m["split_brain"]["window_ms"], 0.0);
    assert_eq!(m["split_brain"]["diverged_writes"], 0);
    assert_eq!(m["lost_writes"], 0);
    assert!(
        r["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail"].as_str().unwrap().starts_with("fenced primary")),
        "the old primary was fenced"
    );
    let in_doubt = m["in_doubt_writes"].as_u64().unwrap() as usize;
    let rows = rows_on_each(work.path(), r["run_id"].as_str().unwrap());
    let (old, new) = (&rows[0], &rows[1]);
    let only_old = old.keys().filter(|k| !new.contains_key(k)).count();
    assert!(
        only_old <= in_doubt,
        "{only_old} rows only on the old primary, {in_doubt} in doubt"
    );
    let new_first = new
        .iter()
        .filter(|(k, _)| !old.contains_key(k))
        .map(|(_, at)| at)
        .min()
        .unwrap();
    let old_acknowledged_last = old
        .iter()
        .filter(|(k, _)| new.contains_key(k))
        .map(|(_, at)| at)
        .max()
        .unwrap();
    assert!(old_acknowledged_last < new_first);
}

const KILLED_PARTITION: &str = "\
version: 1
name: killed-partition
target:
  type: postgres-sandbox
  standbys: 1
  zones: {a: [primary], b: [standby1], app: []}
  clients: [app]
workload: {connections: 2, timeout: 500ms}
probes: {interval: 20ms, timeout: 300ms, abandon_after: 300ms}
steady_state: {duration: 1s}
fault:
  type: partition
  between: [[a], [b, app]]
recovery: {type: promote, node: standby1, after: 20s}
observe: {duration: 30s, stability: 500ms}
targets: {rto: 30s}
";

/// SIGKILL during a partition, then `firedrill recover`: every namespace of the drill (and with
/// them its veths and bridges) gone, no process of the sandbox left (by working directory), no
/// link of it in firedrill's own namespace, and a second recover does nothing.
#[test]
fn killed_during_a_partition_recover_removes_every_namespace_and_process() {
    let undone = crate::safety::kill_then_recover(KILLED_PARTITION, "partition in place");
    let removed = undone
        .iter()
        .find(|(what, _)| what.starts_with("network namespaces"))
        .expect("the namespaces were undone");
    let prefix = removed
        .0
        .split("network namespaces ")
        .nth(1)
        .and_then(|s| s.split('-').next())
        .unwrap()
        .to_owned();
    assert!(prefix.starts_with("fd"), "{removed:?}");
    assert!(
        undone.iter().any(|(what, _)| what.starts_with("partition")),
        "{undone:?}"
    );
    let left: Vec<String> = namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let links = std::process::Command::new("ip")
        .args(["link"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&prefix));
}

/// Without CAP_NET_ADMIN (dropped with setpriv, as root), a drill with zones is refused before
/// anything is made: exit 4, one line naming the capability, no namespace, no sandbox.
#[test]
fn zones_without_cap_net_admin_are_refused_before_anything_is_made() {
    // Alone: the namespaces listed before and after must be only other drills' absence.
    let _x = crate::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("zone.yaml");
    std::fs::write(
        &file,
        ZONE_OUTAGE.replace(
            "  type: postgres-sandbox\n",
            &format!(
                "  type: postgres-sandbox\n  work_dir: {}\n",
                dir.path().display()
            ),
        ),
    )
    .unwrap();
    let before = namespaces();
    let out = std::process::Command::new("setpriv")
        .args(["--inh-caps=-net_admin", "--bounding-set=-net_admin", "--"])
        .arg(crate::firedrill_bin())
        .arg("run")
        .arg(&file)
        .env("FIREDRILL_STATE_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("CAP_NET_ADMIN"), "{stderr}");
    assert_eq!(namespaces(), before);
    let made: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("firedrill-sandbox-")
        })
        .collect();
    assert!(made.is_empty(), "{made:?}");
}

/// The shipped zone outage, as shipped: the standby in another zone is promoted, synchronous
/// replication loses nothing, one server at a time, and the picture shows the network band.
#[test]
fn the_shipped_zone_outage_fails_over_to_another_zone_losing_nothing() {
    let _x = crate::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = crate::repo("scenarios/sandbox-zone-outage.yaml");
    let (code, stderr, r) = crate::run_for_report(&mut crate::run_out(&out, &file), &out);
    assert_eq!(code, 0, "{stderr}");
    let m = &r["measurements"];
    assert_eq!(m["lost_writes"], 0);
    let sb = &m["split_brain"];
    assert_eq!(sb["window_ms"], 0.0);
    assert_eq!(sb["survivor"], "standby1");
    let servers: Vec<&str> = sb["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["server"].as_str().unwrap())
        .collect();
    assert_eq!(servers, ["primary", "standby1"]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains(r#"<g id="network">"#));
    assert!(html.contains("Split brain (two servers taking writes)"));
    assert!(!html.contains(r#"class="split-brain""#));
}

/// A node's own faults work inside zones: a 1 s pause of the primary (its processes found and
/// resumed by their working directory, whatever namespace they run in) costs the clients' zone
/// about that second, and nothing is lost.
#[test]
fn a_pause_inside_a_zone_is_measured_as_on_loopback() {
    let _x = crate::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pause.yaml");
    std::fs::write(
        &file,
        ZONE_OUTAGE
            .replace("name: zone-outage-timed", "name: zone-pause")
            .replace(
                "fault: {type: zone-outage, zone: a, duration: 2s}",
                "fault: {type: pause, node: primary, duration: 1s}",
            )
            .replace("abandon_after: 10ms", "abandon_after: 2s"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let (code, stderr, r) = crate::run_for_report(&mut crate::run_out(&out, &file), &out);
    assert_eq!(code, 0, "{stderr}");
    let m = &r["measurements"];
    let rto = m["rto_ms"].as_f64().unwrap();
    assert!(
        (1000.0..1100.0).contains(&rto),
        "RTO {rto:.1} ms for a 1 s pause"
    );
    assert_eq!(m["lost_writes"], 0);
    assert_eq!(m["split_brain"]["window_ms"], 0.0);
}
