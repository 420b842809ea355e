//! Patroni without its DCS: etcd frozen under a live workload, with and without failsafe mode,
//! the test's own client and Patroni's own log as the ground truth beside firedrill's figures.

use std::path::Path;
use std::time::{Duration, Instant};

use firedrill::report::Verdict;
use firedrill::scenario;

use crate::patroni::{drill_with_own_client, patroni_story};

/// A scenario of the DCS stopping for 8 s, with or without Patroni's failsafe mode.
fn stop_dcs(dir: &Path, failsafe: bool) -> scenario::LoadedScenario {
    let text = format!(
        "version: 1\nname: stop-dcs\n\
         target: {{type: patroni-sandbox, members: 3, work_dir: {}, \
         dcs: {{ttl: 10, loop_wait: 2, retry_timeout: 3, synchronous_mode: true, \
         failsafe_mode: {failsafe}}}}}\n\
         workload: {{connections: 2}}\nprobes: {{interval: 20ms, timeout: 500ms}}\n\
         steady_state: {{duration: 1s}}\n\
         fault: {{type: stop-dcs, duration: 8s}}\nrecovery: {{type: wait}}\n\
         observe: {{duration: 20s, stability: 1s, expect_outage: {}}}\n\
         targets: {{max_lost_writes: 0}}\ncleanup: {}\n",
        dir.display(),
        !failsafe,
        // With failsafe mode the drill passes even if the leader was demoted (no outage is
        // expected, none is a target): the test keeps the cluster (stopped) to show why.
        if failsafe { "never" } else { "on-success" }
    );
    scenario::parse(&dir.join("stop-dcs.yaml"), &text).unwrap()
}

/// etcd stops answering for 8 s: without failsafe mode the leader cannot renew its key and
/// demotes itself, so writes fail; with it, the leader keeps taking writes because every
/// member still answers it. The own client sees the same as firedrill; nothing is lost.
#[test]
fn a_dcs_outage_demotes_the_leader_unless_failsafe_mode_keeps_it() {
    let _x = crate::exclusive();
    let work = tempfile::tempdir().unwrap();
    let (r, seen) = drill_with_own_client(
        &stop_dcs(work.path(), false),
        work.path(),
        Duration::from_secs(6),
    );
    let failed = r.measurements.fault_effect.as_ref().unwrap().failed_probes;
    // Synchronous mode should lose nothing. Whether it did is decided by the own client's rows,
    // not assumed: firedrill must agree with them, and fail the drill exactly when they show a
    // loss. A failing drill keeps its sandbox, so Patroni's own account is shown with it.
    let lost = r.measurements.lost_writes.expect("lost writes measured");
    let own_lost = seen.lost.expect("the own client read its rows back");
    let story = patroni_story(work.path());
    assert_eq!(
        lost > 0,
        own_lost > 0,
        "firedrill lost {lost}, the own client {own_lost}\n{:#?}\n{story}",
        r.measurements.writer
    );
    if own_lost > 0 {
        eprintln!("Patroni lost acknowledged writes in synchronous mode:\n{story}");
        assert_eq!(r.verdict, Verdict::Fail, "{:#?}", r.targets);
    } else {
        assert_eq!(r.verdict, Verdict::Pass, "{:#?}\n{story}", r.targets);
    }
    assert!(failed > 0, "the leader demoted: {failed} failed probes");
    assert!(seen.first_failure().is_some(), "the own client felt it too");
    assert_eq!(seen.lost, Some(0));

    // With failsafe mode the same outage costs nothing; the etcd process was frozen all along
    // (checked here from /proc, not from the drill's word).
    let work = tempfile::tempdir().unwrap();
    let watch_dir = work.path().to_owned();
    let frozen = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let etcd: Vec<String> = crate::processes_working_in(&watch_dir)
                .into_iter()
                .filter(|p| p.contains(" T ") && p.contains("etcd"))
                .collect();
            if !etcd.is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(crate::drill(&stop_dcs(work.path(), true)));
    let failed = r.measurements.fault_effect.as_ref().unwrap().failed_probes;
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.targets);
    assert!(frozen.join().unwrap(), "etcd was seen stopped (state T)");
    // Failsafe mode was armed before the fault (every member's topology lists every member):
    // a DCS outage before that demotes the leader whatever the setting says.
    let armed = r
        .timeline
        .iter()
        .find(|e| e.detail.starts_with("failsafe mode armed"))
        .unwrap_or_else(|| panic!("{:#?}", r.timeline));
    let fault = r
        .timeline
        .iter()
        .find(|e| e.kind == "fault-injected")
        .unwrap();
    assert!(armed.t_ms <= fault.t_ms, "{armed:?} {fault:?}");
    eprintln!("{}", armed.detail);
    // Failsafe mode keeps the leader writable for as long as the DCS is gone: no write probe
    // fails from the fault until etcd answers again (one probe interval of slack: a probe in
    // flight at that instant). When etcd comes back, Patroni's logs show the synchronous
    // standby's replication restarting and synchronous standby status passing to another
    // member: in synchronous mode, commits wait for that, a write outage of about 2 s that the
    // report shows after the DCS's return (in 4 of 9 runs here, starting about 1.1 s after it;
    // the other runs had none).
    let back = r
        .timeline
        .iter()
        .find(|e| e.kind == "fault-ended")
        .unwrap_or_else(|| panic!("etcd resumed: {:#?}", r.timeline))
        .t_ms;
    let during: Vec<_> = r
        .measurements
        .write_outages
        .iter()
        .filter(|o| o.start_ms < back - 20.0)
        .collect();
    assert!(
        during.is_empty(),
        "failsafe mode kept the leader writable while etcd was stopped (until {back:.0} ms): \
         {during:?}\n{}",
        patroni_story(work.path())
    );
    if failed > 0 {
        eprintln!(
            "after etcd came back at {back:.0} ms: {failed} failed write probes {:?}\n{}",
            r.measurements.write_outages,
            patroni_story(work.path())
        );
    }
    let p = r.measurements.patroni.as_ref().unwrap();
    assert_eq!(p.leader_before, p.leader_after);
}
