//! Whole drills on the real sandbox, checked against ground truth the test knows.

// Each test has its own runtime; the guard is held across awaits on purpose, to run drills one
// at a time across test threads.
#![allow(clippy::await_holding_lock)]

use std::path::Path;
use std::time::Duration;

use firedrill::ledger::{self, Ack, WorkloadLog};
use firedrill::pg::binaries::PgBinaries;
use firedrill::report::Verdict;
use firedrill::scenario::{self, LoadedScenario, Replication};
use firedrill::systems::sandbox::Sandbox;
use firedrill::workload;

use crate::{drill, exclusive, repo};

fn inline(name: &str, yaml: &str) -> LoadedScenario {
    scenario::parse(Path::new(name), yaml).expect("valid scenario")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_failover_loses_no_acknowledged_write_and_recovers_within_2s() {
    let _x = exclusive();
    let loaded = scenario::load(&repo("scenarios/sandbox-failover-sync.yaml")).unwrap();
    let r = drill(&loaded).await;
    let m = &r.measurements;
    assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
    assert!(m.acknowledged_writes > 500, "the workload ran: {m:?}");
    assert_eq!(m.lost_writes, Some(0));
    assert_eq!(m.integrity_failures, Some(0));
    let rto = m.rto_ms.expect("recovered");
    // The scenario waits 500ms before promoting: RTO cannot be shorter than that.
    assert!((500.0..2000.0).contains(&rto), "rto {rto}ms");
    assert!(!m.write_outages.is_empty(), "the kill was visible: {m:?}");
}

/// The ground truth: replication to the standby is cut, then K writes are acknowledged by the
/// primary alone, then the primary dies and the standby is promoted. Exactly those K are lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_failover_reports_exactly_the_k_writes_the_standby_never_received() {
    const BEFORE: u64 = 200;
    const K: u64 = 137;
    let _x = exclusive();
    let bins = PgBinaries::locate(None).unwrap();
    let mut sb = Sandbox::build(bins, crate::sandbox::config(1, Replication::Async), &|_| {})
        .await
        .unwrap();
    let run = "lossy";
    let primary = sb.connect(0).await.unwrap();
    workload::prepare(&primary, "firedrill_ledger")
        .await
        .unwrap();
    let t0 = std::time::Instant::now();
    let mut log = WorkloadLog::default();
    let insert = |seq: u64| {
        let primary = &primary;
        async move {
            primary
                .execute(
                    "insert into firedrill_ledger values ($1, 0, $2, $3)",
                    &[&run, &(seq as i64), &ledger::payload(run, 0, seq)],
                )
                .await
                .unwrap();
        }
    };
    for seq in 1..=BEFORE {
        let sent = t0.elapsed();
        insert(seq).await;
        log.acks.push(Ack {
            client: 0,
            seq,
            sent,
            at: t0.elapsed(),
            server: None,
        });
    }
    // Let the standby replay everything so far, then cut its replication.
    let standby = sb.connect(1).await.unwrap();
    let lsn: String = primary
        .query_one("select pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    wait_for(
        &standby,
        &format!("select pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"),
    )
    .await;
    standby
        .batch_execute("alter system set primary_conninfo = ''")
        .await
        .unwrap();
    standby
        .batch_execute("select pg_reload_conf()")
        .await
        .unwrap();
    wait_for(&primary, "select count(*) = 0 from pg_stat_replication").await;

    for seq in BEFORE + 1..=BEFORE + K {
        let sent = t0.elapsed();
        insert(seq).await;
        log.acks.push(Ack {
            client: 0,
            seq,
            sent,
            at: t0.elapsed(),
            server: None,
        });
    }
    let fault_at = t0.elapsed();
    sb.kill(0).unwrap();
    sb.promote(1).await.unwrap();

    let new_primary = sb.connect(1).await.unwrap();
    let rows = workload::read_back(&new_primary, "firedrill_ledger", run)
        .await
        .unwrap();
    let c = ledger::check(&log, &rows, run, fault_at);
    assert_eq!(c.acknowledged_writes, BEFORE + K);
    assert_eq!(c.lost_writes, K, "{c:?}");
    assert_eq!(c.lost_examples.first().map(String::as_str), Some("0/201"));
    assert_eq!(c.integrity_failures, 0);
    // The RPO spans the lost writes: from the first lost acknowledgement to the fault.
    let first_lost = log.acks[BEFORE as usize].at;
    let expected = (fault_at - first_lost).as_secs_f64() * 1000.0;
    assert!(
        (c.rpo_ms - expected).abs() < 0.01,
        "rpo {} vs {expected}",
        c.rpo_ms
    );
}

async fn wait_for(client: &tokio_postgres::Client, condition: &str) {
    for _ in 0..500 {
        if client
            .query_one(condition, &[])
            .await
            .unwrap()
            .get::<_, bool>(0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition never held: {condition}");
}

/// A 2s pause must be measured as the RTO a writer of the test's own sees, within one probe
/// interval + 20ms: from the moment the node was really stopped (seen by the test in `/proc`)
/// to its first write acknowledged in time after it, plus what the fault's injection took
/// before the stop.
///
/// Regression: probes used to abandon a timed-out attempt and reconnect; each abandoned attempt
/// queued in the stopped postmaster's accept backlog and cost a backend start on resume, so the
/// measured RTO of a 2s pause was 2034.6ms. Probes now wait out a slow attempt.
///
/// The own writer, not the scenario's 2s, is the ground truth: a resumed node takes a while to
/// acknowledge writes again, and longer on a loaded machine (a CI run measured 2055.0ms; here
/// the stop lasted 2003..2026ms and the first acknowledgements came 20..140ms after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rto_of_a_known_2s_pause_is_measured_within_one_probe_interval_plus_20ms() {
    let _x = exclusive();
    let t0 = std::time::Instant::now();
    let stopped = crate::stopped::sample(t0, Duration::from_secs(30));
    let own = crate::stopped::own_writer(t0, Duration::from_secs(12));
    let loaded = inline(
        "pause-2s.yaml",
        "version: 1\nname: pause-2s\ntarget: {type: postgres-sandbox, standbys: 1}\n\
         workload: {connections: 1}\nprobes: {interval: 10ms, timeout: 500ms}\n\
         steady_state: {duration: 1s}\n\
         fault: {type: pause, node: primary, duration: 2s}\nrecovery: {type: wait}\n\
         observe: {duration: 4s, stability: 1s}\ntargets: {rto: 3s}\n",
    );
    let r = drill(&loaded).await;
    let m = &r.measurements;
    let rto = m.rto_ms.expect("recovered after the pause");
    let stop = stopped
        .join()
        .unwrap()
        .expect("the test saw the node stopped");
    let answers = own.join().unwrap();
    let (shortest, longest) = stop.length_ms();
    // As firedrill's probes count it: the first write acknowledged within the probes' timeout
    // (the one the stop held is acknowledged late).
    let back = answers
        .iter()
        .find(|a| a.end > stop.ended.0 && a.end - a.sent <= 500.0)
        .expect("the own client was answered after the stop");
    assert!(back.ok, "the own client's query failed: {back:?}");
    assert!(
        answers.iter().any(|a| a.end < stop.began.0),
        "the own client was answered before the stop"
    );
    let own = (back.end - stop.began.1, back.end - stop.began.0);
    let injecting = m.fault_done_ms.unwrap() - m.fault_started_ms.unwrap();
    // One probe interval + 20ms, either way: which of two writers a resumed node acknowledges
    // first is chance.
    const SLACK: f64 = 10.0 + 20.0;
    println!(
        "rto {rto:.1}ms; stopped {shortest:.1}..{longest:.1}ms; the own client acknowledged \
         {:.1}..{:.1}ms after the stop began; the injection took {injecting:.1}ms",
        own.0, own.1
    );
    // The stop begins once the injection is journalled and ends 2s after the fault instant.
    assert!(
        longest + injecting >= 2000.0 && shortest < 2300.0,
        "the 2s pause stopped the node for {shortest:.1}..{longest:.1}ms"
    );
    assert!(
        (own.0 - SLACK..=own.1 + injecting + SLACK).contains(&rto),
        "rto {rto}ms; the own client saw {:.1}..{:.1}ms (+{injecting:.1}ms injecting)",
        own.0,
        own.1
    );
    assert_eq!(m.write_outages.len(), 1, "{:?}", m.write_outages);
    assert_eq!(r.verdict, Verdict::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmet_target_fails_the_drill() {
    let _x = exclusive();
    // Promotion only after 1.5s: an RTO target of 1s cannot be met.
    let loaded = inline(
        "slow-promotion.yaml",
        "version: 1\nname: slow-promotion\ntarget: {type: postgres-sandbox}\n\
         workload: {connections: 1}\nsteady_state: {duration: 500ms}\n\
         fault: {type: kill, node: primary}\n\
         recovery: {type: promote, node: standby1, after: 1500ms}\n\
         observe: {duration: 4s, stability: 500ms}\ntargets: {rto: 1s}\n",
    );
    let r = drill(&loaded).await;
    assert_eq!(r.verdict, Verdict::Fail);
    let rto = r.targets.iter().find(|t| t.name == "rto").unwrap();
    assert!(!rto.met && rto.achieved.unwrap() >= 1500.0, "{rto:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_faults_fast_and_immediate_lose_nothing_with_a_synchronous_standby() {
    let _x = exclusive();
    for mode in ["fast", "immediate"] {
        let loaded = inline(
            "stop.yaml",
            &format!(
                "version: 1\nname: stop-{mode}\n\
                 target: {{type: postgres-sandbox, replication: synchronous}}\n\
                 workload: {{connections: 2}}\nsteady_state: {{duration: 500ms}}\n\
                 fault: {{type: stop, node: primary, mode: {mode}}}\n\
                 recovery: {{type: promote, node: standby1, after: 200ms}}\n\
                 observe: {{duration: 3s, stability: 500ms}}\n\
                 targets: {{rto: 2s, max_lost_writes: 0}}\n"
            ),
        );
        let r = drill(&loaded).await;
        assert_eq!(r.verdict, Verdict::Pass, "{mode}: {:#?}", r.measurements);
        assert_eq!(r.measurements.lost_writes, Some(0), "{mode}");
        assert!(
            r.timeline
                .iter()
                .any(|e| e.kind == "fault-injected" && e.detail.contains(mode))
        );
    }
}
