//! Patroni drills on real Patroni 3 + etcd 3 (Debian's packages), with fast timers (ttl 10,
//! loop_wait 2, retry_timeout 3) so that a failover takes seconds.
//!
//! Ground truth comes from the test's own client, on a thread and runtime of its own: it inserts
//! into its own table every 5 ms through the same multi-host DSN an application would use,
//! notes which server acknowledged each insert (`inet_server_port()`), watches the leader's
//! postmaster pid to know the instant it died, and at the end counts its acknowledged rows on
//! the new leader. firedrill's figures are compared with these.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use firedrill::report::{Report, Verdict};
use firedrill::scenario;

/// Probe interval of the shipped Patroni scenarios.
const PROBE_INTERVAL_MS: f64 = 20.0;

/// A shipped Patroni scenario with the cluster built under `work` (so the test finds its
/// members) and `edit` applied to its text; loaded from beside the original, so its runbook
/// resolves.
fn shipped(name: &str, work: &Path, edit: impl Fn(String) -> String) -> scenario::LoadedScenario {
    let path = crate::repo(&format!("scenarios/{name}"));
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "  type: patroni-sandbox\n",
        &format!("  type: patroni-sandbox\n  work_dir: {}\n", work.display()),
    );
    scenario::parse(&path, &edit(text)).expect("the scenario loads")
}

/// What the test's own client saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// When the leader's postmaster died (the watcher's 1 ms poll), if it did.
    killed: Option<Instant>,
    /// Every insert: when it was sent, when it finished, and the port that acknowledged it.
    inserts: Vec<(Instant, Instant, Option<u16>)>,
    /// Acknowledged inserts missing from the leader at the end.
    pub(crate) lost: Option<u64>,
    acked: u64,
}

impl Seen {
    /// First acknowledged insert sent after `from`, as time since `from`.
    fn first_ack_after(&self, from: Instant) -> Option<Duration> {
        self.inserts
            .iter()
            .find(|(sent, _, port)| *sent >= from && port.is_some())
            .map(|(_, done, _)| *done - from)
    }

    /// When the last failed insert before the first acknowledged one after `from` was sent, as
    /// time since `from`: the service came back after it. Between it and that acknowledgement
    /// the client was reconnecting (trying each member), blind to the moment it returned.
    fn last_failure_sent_before_ack(&self, from: Instant) -> Option<Duration> {
        let ack = self
            .inserts
            .iter()
            .position(|(sent, _, port)| *sent >= from && port.is_some())?;
        self.inserts[..ack]
            .iter()
            .rev()
            .find(|(sent, _, port)| *sent >= from && port.is_none())
            .map(|(sent, _, _)| *sent - from)
    }

    /// When the last insert acknowledged by the leader before it died was sent: the fault came
    /// after it (and before the death was seen), so the outage began in between.
    fn last_ack_sent_before(&self, killed: Instant) -> Option<Instant> {
        self.inserts
            .iter()
            .rev()
            .find(|(sent, _, port)| *sent < killed && port.is_some())
            .map(|(sent, _, _)| *sent)
    }

    /// The start of the first failed insert around the fault (at most 3 s before the
    /// leader's postmaster went away: a switchover ends connections first): where the
    /// client's outage began.
    pub(crate) fn first_failure(&self) -> Option<Instant> {
        let from = self.killed.map(|k| k - Duration::from_secs(3));
        self.inserts
            .iter()
            .find(|(sent, _, port)| port.is_none() && from.is_none_or(|f| *sent >= f))
            .map(|(sent, _, _)| *sent)
    }

    fn ports(&self) -> (Option<u16>, Option<u16>) {
        let acked = || self.inserts.iter().filter_map(|(_, _, p)| *p);
        (acked().next(), acked().next_back())
    }
}

/// The test's own client: waits for the cluster under `work`, then writes until `run_for` after
/// the first failure or kill, and reads its rows back from whichever member then leads.
fn own_client(work: PathBuf, members: usize, run_for: Duration) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(own_client_loop(&work, members, run_for))
    })
}

/// Patroni's own account of a kept sandbox under `work`: each member's lines about locks,
/// synchronous standbys, demotion, promotion and rewinds.
pub(crate) fn patroni_story(work: &Path) -> String {
    const TOLD: [&str; 10] = [
        // Failsafe mode: the leader's calls to the members, and their answers.
        "failsafe",
        "Request failed to",
        "synchronous standby",
        "Synchronous standby",
        "emot",
        "romot",
        "acquired",
        "Lock owner: None",
        "rewind",
        "Leader key",
    ];
    let mut story = String::new();
    for log in std::fs::read_dir(work)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|root| {
            std::fs::read_dir(root.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|member| member.path().join("patroni.log"))
        .filter(|log| log.exists())
    {
        story.push_str(&format!("== {}\n", log.display()));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        for line in text.lines().filter(|l| TOLD.iter().any(|t| l.contains(t))) {
            story.push_str(line);
            story.push('\n');
        }
    }
    story
}

/// `(pid, port)` of every member's postmaster under `work`.
fn postmasters(work: &Path) -> Vec<(i32, u16)> {
    let mut found = Vec::new();
    let Ok(roots) = std::fs::read_dir(work) else {
        return found;
    };
    for root in roots.flatten() {
        for member in std::fs::read_dir(root.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let pidfile = member.path().join("data/postmaster.pid");
            if let Ok(text) = std::fs::read_to_string(pidfile) {
                let lines: Vec<&str> = text.lines().collect();
                if let (Some(pid), Some(port)) = (
                    lines.first().and_then(|l| l.trim().parse().ok()),
                    lines.get(3).and_then(|l| l.trim().parse().ok()),
                ) {
                    found.push((pid, port));
                }
            }
        }
    }
    found
}

async fn connect(ports: &[u16]) -> Option<tokio_postgres::Client> {
    let mut c = tokio_postgres::Config::new();
    for p in ports {
        c.host("127.0.0.1").port(*p);
    }
    c.user("firedrill")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(1))
        .target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite);
    let (client, conn) = c.connect(tokio_postgres::NoTls).await.ok()?;
    tokio::spawn(conn);
    Some(client)
}

async fn own_client_loop(work: &Path, members: usize, run_for: Duration) -> Seen {
    let mut seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut acked_ids = Vec::new();
    // The cluster: every member's postmaster up, one of them taking writes, and a second of
    // inserts without a failure (Patroni restarts servers while it bootstraps; those are not
    // the fault).
    let (ports, client) = loop {
        assert!(
            Instant::now() < deadline,
            "no cluster appeared under {work:?}"
        );
        let pm = postmasters(work);
        if pm.len() == members
            && let Some(c) = connect(&pm.iter().map(|p| p.1).collect::<Vec<_>>()).await
            && c.batch_execute(
                "create table if not exists own_probe (id bigserial primary key, at timestamptz default now())",
            )
            .await
            .is_ok()
        {
            let calm = Instant::now() + Duration::from_secs(1);
            let mut ok = true;
            while ok && Instant::now() < calm {
                match c
                    .query_one("insert into own_probe default values returning id", &[])
                    .await
                {
                    Ok(row) => acked_ids.push(row.get::<_, i64>(0)),
                    Err(_) => ok = false,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if ok && postmasters(work) == pm {
                break (pm.iter().map(|p| p.1).collect::<Vec<_>>(), c);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The leader's postmaster, watched every millisecond from here on.
    let port: i32 = client
        .query_one("select inet_server_port()", &[])
        .await
        .unwrap()
        .get(0);
    let mut client = Some(client);
    let leader_pid = postmasters(work)
        .into_iter()
        .find(|p| i32::from(p.1) == port)
        .map(|p| p.0)
        .unwrap();
    let (tx, mut killed_rx) = tokio::sync::watch::channel(None::<Instant>);
    std::thread::spawn(move || {
        let stop = Instant::now() + Duration::from_secs(120);
        while Instant::now() < stop {
            // Dead once gone or a zombie: a killed postmaster whose parent died too waits for
            // init to reap it, and `kill(pid, 0)` still finds a zombie.
            let stat = std::fs::read_to_string(format!("/proc/{leader_pid}/stat"));
            let state = stat.as_deref().ok().and_then(|s| {
                s.rfind(')')
                    .and_then(|i| s[i + 1..].split_whitespace().next())
            });
            if matches!(state, None | Some("Z" | "X")) {
                let _ = tx.send(Some(Instant::now()));
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    // Writes go on until `run_for` after the leader's postmaster went away (every fault these
    // tests use stops it: a kill, a crash, a switchover's shutdown, a demotion).
    let mut end: Option<Instant> = None;
    while end.is_none_or(|e| Instant::now() < e) && Instant::now() < deadline {
        let sent = Instant::now();
        let result = match &client {
            Some(c) => tokio::time::timeout(
                Duration::from_secs(1),
                c.query_one(
                    "insert into own_probe default values returning id, inet_server_port()",
                    &[],
                ),
            )
            .await
            .ok()
            .and_then(Result::ok),
            None => None,
        };
        let done = Instant::now();
        match result {
            Some(row) => {
                acked_ids.push(row.get::<_, i64>(0));
                seen.inserts
                    .push((sent, done, Some(row.get::<_, i32>(1) as u16)));
            }
            None => {
                seen.inserts.push((sent, done, None));
                client = connect(&ports).await;
            }
        }
        if let Some(k) = *killed_rx.borrow_and_update() {
            seen.killed.get_or_insert(k);
            end.get_or_insert(k + run_for);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seen.acked = acked_ids.len() as u64;
    // Every acknowledged row, counted on whichever member leads now (or soon: a cluster whose
    // DCS just came back elects a leader first).
    let mut leader = None;
    let until = Instant::now() + Duration::from_secs(20);
    while leader.is_none() && Instant::now() < until {
        leader = connect(&ports).await;
        if leader.is_none() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if let Some(c) = leader {
        let present: Vec<i64> = c
            .query("select id from own_probe", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let present: std::collections::HashSet<i64> = present.into_iter().collect();
        seen.lost = Some(acked_ids.iter().filter(|id| !present.contains(id)).count() as u64);
    }
    seen
}

/// Runs a drill in process while the test's own client writes beside it.
pub(crate) fn drill_with_own_client(
    loaded: &scenario::LoadedScenario,
    work: &Path,
    run_for: Duration,
) -> (Report, Seen) {
    let members = match &loaded.scenario.target {
        firedrill::scenario::Target::PatroniSandbox(t) => usize::from(t.members),
        other => panic!("not a Patroni sandbox: {}", other.kind()),
    };
    let own = own_client(work.to_owned(), members, run_for);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(crate::drill(loaded));
    (report, own.join().unwrap())
}

fn target<'a>(r: &'a Report, name: &str) -> &'a firedrill::report::TargetResult {
    r.targets
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target {name}: {:?}", r.targets))
}

/// Host death of the leader: Patroni promotes the synchronous standby; the RTO falls in the
/// range ttl and loop_wait allow, agrees with the own client's to one probe interval + 10 ms,
/// and nothing acknowledged is lost (by firedrill's ledger and by the own client's rows).
#[test]
fn host_death_fails_over_within_the_expected_range_as_the_own_client_times_it() {
    let _x = crate::exclusive();
    let work = tempfile::tempdir().unwrap();
    let loaded = shipped("patroni-sandbox-host-death.yaml", work.path(), |t| t);
    let (r, seen) = drill_with_own_client(&loaded, work.path(), Duration::from_secs(18));
    let m = &r.measurements;
    let p = m.patroni.as_ref().expect("a Patroni section");
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.targets);
    assert_ne!(p.leader_before, p.leader_after, "the leader moved");
    assert_eq!(p.fault_member, p.leader_before, "the fault hit the leader");

    // The own client knows the fault only to within its last acknowledged insert and the
    // instant its watcher saw the postmaster gone (a SIGKILLed process takes a few ms, more on
    // a loaded machine, to become a zombie): its RTO is that range, and firedrill's must fall
    // in it, give or take one probe interval + 10 ms.
    let killed = seen.killed.expect("the own watcher saw the leader die");
    let own_rto = seen
        .first_ack_after(killed)
        .expect("writes came back")
        .as_secs_f64()
        * 1e3;
    let last_ack = seen
        .last_ack_sent_before(killed)
        .expect("writes before the fault");
    let own_rto_max = own_rto + (killed - last_ack).as_secs_f64() * 1e3;
    let rto = m.rto_ms.expect("an RTO");
    eprintln!("firedrill RTO {rto:.1} ms, own client {own_rto:.1}..{own_rto_max:.1} ms");
    let slack = PROBE_INTERVAL_MS + 10.0;
    assert!(
        (own_rto - slack..=own_rto_max + slack).contains(&rto),
        "firedrill {rto:.1} ms against the own client's {own_rto:.1}..{own_rto_max:.1} ms"
    );
    // The model, computed here from the scenario's timers: ttl - loop_wait .. ttl + loop_wait
    // + 3 s promotion.
    assert!(
        (8_000.0..=15_000.0).contains(&own_rto),
        "own RTO {own_rto:.1} ms outside 8..15 s"
    );
    let e = p.expected_rto.as_ref().expect("an expected RTO");
    assert_eq!((e.min_ms, e.max_ms), (8_000.0, 15_000.0));
    assert_eq!(p.rto_inside_expected, Some(true));

    // Synchronous mode loses nothing: firedrill's ledger and the own client's rows agree.
    assert_eq!(m.lost_writes, Some(0));
    assert_eq!(seen.lost, Some(0), "the own client lost acknowledged rows");
    assert!(
        seen.acked > 1000,
        "the own client wrote {} rows",
        seen.acked
    );
    let (before, after) = seen.ports();
    assert_ne!(
        before, after,
        "the own client's writes moved to another server"
    );
    assert!(
        crate::processes_working_in(work.path()).is_empty(),
        "left behind: {:?}",
        crate::processes_working_in(work.path())
    );
}

/// A crashed postmaster is restarted in place by Patroni: the shipped drill, which forbids a
/// failover, passes, and the same measurements judged against a scenario that requires one
/// fail (`writer_moved` missed). One drill, judged twice by the rules the engine and `verify`
/// use (`judge::evaluate`), where two drills of 25 s each used to run: what differs between
/// the two scenarios is the target, not the cluster's behaviour.
#[test]
fn a_postmaster_crash_restarts_in_place_and_fails_a_drill_requiring_failover() {
    let _x = crate::exclusive();
    let work = tempfile::tempdir().unwrap();
    let loaded = shipped("patroni-sandbox-postgres-crash.yaml", work.path(), |t| t);
    let (r, seen) = drill_with_own_client(&loaded, work.path(), Duration::from_secs(8));
    let p = r.measurements.patroni.as_ref().unwrap();
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.targets);
    assert!(target(&r, "writer_moved").met);
    assert_eq!(p.leader_before, p.leader_after);
    let w = r.measurements.writer.as_ref().unwrap();
    assert!(w.restarted_in_place(), "{w:?}");
    // The own client's writes came back on the same server.
    let (before, after) = seen.ports();
    assert_eq!(before, after);
    assert!(seen.killed.is_some(), "the postmaster died");
    assert_eq!(seen.lost, Some(0));
    assert_eq!(r.measurements.lost_writes, Some(0));

    // The same measurements, judged against the scenario with `failover: required`.
    let required = shipped("patroni-sandbox-postgres-crash.yaml", work.path(), |t| {
        t.replace("failover: forbidden", "failover: required")
    });
    let mut m = r.measurements.clone();
    if let Some(w) = m.writer.as_mut() {
        w.expected = required
            .scenario
            .targets
            .failover
            .expect("the variant requires a failover");
    }
    let results = firedrill::judge::evaluate(&required.scenario.targets, &[], &m, true, false);
    assert_eq!(
        firedrill::judge::verdict(false, &results),
        Verdict::Fail,
        "{results:#?}"
    );
    let moved = results.iter().find(|t| t.name == "writer_moved").unwrap();
    assert!(!moved.met, "{moved:?}");
    let failed: Vec<&str> = results
        .iter()
        .filter(|t| !t.met)
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(failed, ["writer_moved"], "only the failover target differs");
}

/// A switchover's RTO counts from the switch (the first failed write), not from the request;
/// the new leader is the synchronous standby asked for.
#[test]
fn a_switchover_is_timed_from_the_switch_not_the_request() {
    let _x = crate::exclusive();
    let work = tempfile::tempdir().unwrap();
    let loaded = shipped("patroni-sandbox-switchover.yaml", work.path(), |t| t);
    let (r, seen) = drill_with_own_client(&loaded, work.path(), Duration::from_secs(6));
    let m = &r.measurements;
    let p = m.patroni.as_ref().unwrap();
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.targets);
    assert_eq!(
        serde_json::to_value(m.rto_from).unwrap(),
        serde_json::json!("first-failure")
    );
    assert_eq!(p.leader_after, p.fault_member, "the candidate leads");
    let sync_before = p
        .before
        .iter()
        .find(|x| x.role == "sync_standby")
        .map(|x| x.name.clone());
    assert_eq!(p.leader_after, sync_before);
    // The request took a while before writes failed.
    let first_fail = m.write_outages.first().expect("an outage").start_ms;
    let fault_at = m.fault_at_ms.unwrap();
    assert!(first_fail > fault_at, "{first_fail} > {fault_at}");
    assert!(m.fault_done_ms.unwrap() > first_fail);
    let rto = m.rto_ms.unwrap();
    assert_eq!(Some(rto), m.write_outage_ms);
    // The own client's outage: its first failed insert to its first acknowledged one after.
    let from = seen
        .first_failure()
        .expect("the own client felt the switch");
    // Its end is known only as a range: after its last failed insert was sent (the member
    // came back then or later) and by its first acknowledgement, which waits for the client's
    // reconnection (under load, tens of ms: a clean clone's CI run saw firedrill 1883.1 ms
    // against 1948.7 ms to the acknowledgement).
    let own = seen.first_ack_after(from).unwrap().as_secs_f64() * 1e3;
    let own_min = seen
        .last_failure_sent_before_ack(from)
        .map_or(own, |d| d.as_secs_f64() * 1e3);
    eprintln!("switchover: firedrill {rto:.1} ms, own client {own_min:.1}..{own:.1} ms");
    let slack = 2.0 * PROBE_INTERVAL_MS + 10.0;
    assert!(
        (own_min - slack..=own + slack).contains(&rto),
        "firedrill {rto:.1} ms against the own client's {own_min:.1}..{own:.1} ms"
    );
    assert_eq!(seen.lost, Some(0));
    let (before, after) = seen.ports();
    assert_ne!(before, after);
}

/// The port of the member that takes writes, asked of each member directly.
async fn writable_port(ports: &[u16]) -> Option<u16> {
    for &p in ports {
        if let Some(c) = connect(&[p]).await
            && let Ok(row) = c.query_one("select pg_is_in_recovery()", &[]).await
            && !row.get::<_, bool>(0)
        {
            return Some(p);
        }
    }
    None
}

/// The shipped `patroni-existing-switchover.yaml` against a running cluster it did not build,
/// reached only through the two environment variables (the REST API's URLs with credentials,
/// which appear nowhere): the leader moves, and the drill leaves no row in the database.
#[test]
fn the_existing_patroni_target_switches_over_through_the_rest_api_and_leaves_no_rows() {
    let _x = crate::exclusive();
    let work = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let spec: firedrill::scenario::PatroniSandboxSpec = serde_json::from_value(serde_json::json!({
        "members": 2,
        "dcs": {"ttl": 10, "loop_wait": 2, "retry_timeout": 3},
        "work_dir": work.path(),
    }))
    .unwrap();
    let cluster = rt
        .block_on(firedrill::systems::patroni::sandbox::PatroniSandbox::build(
            &spec,
            &firedrill::safety::journal::Journal::disabled(),
            &|_| {},
        ))
        .expect("a cluster");
    let ports: Vec<u16> = cluster.members.iter().map(|m| m.pg_port).collect();
    let before = rt.block_on(writable_port(&ports)).expect("a leader");
    let dsn = format!(
        "host={} port={} user=firedrill dbname=postgres target_session_attrs=read-write",
        vec!["127.0.0.1"; ports.len()].join(","),
        ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let api = cluster
        .members
        .iter()
        .map(|m| format!("http://drill:api-secret-42@127.0.0.1:{}", m.api_port))
        .collect::<Vec<_>>()
        .join(",");
    let out = work.path().join("out");
    let (code, stderr, report) = crate::run_for_report(
        crate::run_out(
            &out,
            &crate::repo("scenarios/patroni-existing-switchover.yaml"),
        )
        .env("FIREDRILL_DSN", &dsn)
        .env("FIREDRILL_PATRONI_API", &api),
        &out,
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["target"]["kind"], "patroni");
    let after = rt.block_on(writable_port(&ports)).expect("a leader");
    assert_ne!(before, after, "the leader moved");
    let p = &report["measurements"]["patroni"];
    assert_ne!(p["leader_before"], p["leader_after"]);
    assert_eq!(report["measurements"]["rto_from"], "first-failure");
    // Nothing of the drill stays in the application's database.
    let c = rt.block_on(connect(&ports)).unwrap();
    for table in ["firedrill_ledger", "firedrill_probe"] {
        let n: i64 = rt
            .block_on(c.query_one(&format!("select count(*) from {table}"), &[]))
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} keeps {n} rows");
    }
    // The API's password appears in no output.
    let all = format!(
        "{stderr}{}",
        std::fs::read_to_string(out.join("report.json")).unwrap()
    );
    assert!(!all.contains("api-secret-42"), "the password leaked");
    drop(cluster);
    assert!(crate::processes_working_in(work.path()).is_empty());
}

/// Missing Patroni or etcd programs stop the drill before anything is built, naming the Debian
/// package.
#[test]
fn a_missing_patroni_program_names_the_debian_package() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-patroni.yaml");
    std::fs::write(
        &path,
        "version: 1\nname: no-patroni\ntarget: {type: patroni-sandbox, patroni: /nonexistent/patroni}\n\
         fault: {type: kill-host}\nrecovery: {type: wait}\ntargets: {rto: 30s}\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let (code, stderr, _) = crate::run_for_report(&mut crate::run_out(&out, &path), &out);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains(
            "the patroni program not found (searched: /nonexistent/patroni); install it \
             (Debian: apt-get install patroni)"
        ),
        "{stderr}"
    );
}

/// A drill killed outright while the leader's host is paused: `firedrill recover` resumes the
/// member and removes the cluster (etcd, Patroni, PostgreSQL), leaving no process.
#[test]
fn killed_during_a_paused_host_recover_resumes_it_and_removes_the_cluster() {
    let undone = crate::safety::kill_then_recover(
        "version: 1\nname: patroni-crash\n\
         target: {type: patroni-sandbox, members: 2, dcs: {ttl: 10, loop_wait: 2, retry_timeout: 3}}\n\
         workload: {connections: 2}\nprobes: {interval: 20ms, timeout: 300ms}\n\
         steady_state: {duration: 1s}\n\
         fault: {type: pause-host, member: leader, duration: 30s}\nrecovery: {type: wait}\n\
         observe: {duration: 40s, stability: 500ms}\ntargets: {rto: 20s}\n",
        "SIGSTOP every process of",
    );
    assert!(
        undone[0].0.starts_with("SIGSTOP every process of member"),
        "{undone:?}"
    );
    assert!(undone[0].1.starts_with("SIGCONT "), "{undone:?}");
    assert!(
        undone[1].0.contains("Patroni sandbox directory"),
        "{undone:?}"
    );
    assert!(undone[1].1.contains("removed"), "{undone:?}");
}

/// `POST /failover` to a named candidate (the replica, by role): that member leads after.
#[test]
fn a_rest_failover_promotes_the_candidate() {
    let _x = crate::exclusive();
    let work = tempfile::tempdir().unwrap();
    let text = format!(
        "version: 1\nname: rest-failover\n\
         target: {{type: patroni-sandbox, members: 2, work_dir: {}, \
         dcs: {{ttl: 10, loop_wait: 2, retry_timeout: 3}}}}\n\
         workload: {{connections: 2}}\nprobes: {{interval: 20ms, timeout: 500ms}}\n\
         steady_state: {{duration: 1s}}\n\
         fault: {{type: failover, candidate: replica}}\nrecovery: {{type: wait}}\n\
         observe: {{duration: 10s, stability: 1s}}\ntargets: {{rto: 8s}}\n",
        work.path().display()
    );
    let loaded = scenario::parse(&work.path().join("f.yaml"), &text).unwrap();
    let (r, seen) = drill_with_own_client(&loaded, work.path(), Duration::from_secs(4));
    let p = r.measurements.patroni.as_ref().unwrap();
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.targets);
    assert_eq!(p.leader_after, p.fault_member);
    assert_ne!(p.leader_before, p.leader_after);
    let (before, after) = seen.ports();
    assert_ne!(before, after, "the own client's writes moved");
    let new_port = p
        .after
        .iter()
        .find(|m| Some(&m.name) == p.leader_after.as_ref())
        .and_then(|m| m.port);
    assert_eq!(after, new_port);
}
