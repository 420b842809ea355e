//! Restore drills for real: each backup kind restored into a new sandbox and proven exactly;
//! damaged backups, a missing WAL segment, a restore missing a table and a row, and bad input,
//! each named.

// The drill lock is held for the whole test on purpose (see `shared`).
#![allow(clippy::await_holding_lock)]

use std::path::Path;
use std::process::Command as Std;
use std::time::Duration;

use firedrill::pg::binaries::{self, PgBinaries};
use firedrill::report::{Report, RestoreResult, Verdict};
use firedrill::scenario::{self, Replication};
use firedrill::systems::sandbox::{SUPERUSER, Sandbox, SandboxConfig};

use crate::{drill, repo, shared};

async fn drill_file(path: &str) -> Report {
    drill(&scenario::load(&repo(path)).expect("a shipped scenario loads")).await
}

fn restore_of(r: &Report) -> &RestoreResult {
    r.measurements.restore.as_ref().expect("a restore section")
}

fn check<'r>(x: &'r RestoreResult, name: &str) -> &'r firedrill::report::Check {
    x.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}: {:#?}", x.checks))
}

fn all_checks_pass(r: &Report) {
    let x = restore_of(r);
    for c in &x.checks {
        assert!(c.ok, "{}: {}", c.name, c.detail);
    }
    assert_eq!(x.tables_differing, Some(0), "{:#?}", x.tables);
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.targets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_dump_restore_equals_the_source_snapshot_exactly() {
    let _x = shared();
    let r = drill_file("scenarios/sandbox-restore-pgdump.yaml").await;
    all_checks_pass(&r);
    let x = restore_of(&r);
    let accounts = x
        .tables
        .iter()
        .find(|t| t.table == "public.pgbench_accounts")
        .expect("pgbench_accounts compared");
    assert_eq!(accounts.source_rows, Some(200_000));
    assert_eq!(accounts.restored_rows, Some(200_000));
    // The writers went on during the dump: the snapshot, not "now", is what was compared.
    let ledger = x.ledger.as_ref().expect("ledger checked");
    assert!(ledger.before > 0 && ledger.after > 0, "{ledger:?}");
    assert_eq!((ledger.missing, ledger.present_after), (0, 0));
    for name in [
        "pg_restore --list",
        "schema",
        "pg_amcheck",
        "assertion recent orders",
    ] {
        check(x, name);
    }
    assert!(r.measurements.rto_ms.is_some() && x.backup_bytes.unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_under_live_writes_brings_back_every_write_before_the_point_and_none_after() {
    let _x = shared();
    let r = drill_file("scenarios/sandbox-restore-pitr.yaml").await;
    all_checks_pass(&r);
    let x = restore_of(&r);
    let l = x.ledger.as_ref().expect("ledger checked");
    assert!(l.before > 500, "writes before the point: {l:?}");
    assert!(
        l.after > 500,
        "writes after the point exist on the source: {l:?}"
    );
    assert_eq!(
        (l.missing, l.present_after, l.integrity_failures),
        (0, 0, 0)
    );
    assert_eq!(x.recovery_target, "after-backup");
    check(x, "pg_verifybackup");
    assert!(
        check(x, "wal archive")
            .detail
            .starts_with("continuous from")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbackrest_stanza_restores_the_latest_point_exactly() {
    let _x = shared();
    let r = drill_file("scenarios/pgbackrest-restore.yaml").await;
    all_checks_pass(&r);
    let x = restore_of(&r);
    check(x, "pgbackrest verify");
    let l = x.ledger.as_ref().expect("ledger checked");
    // Latest point after the writers stopped: every acknowledged write is before it.
    assert!(l.before > 100 && l.after == 0 && l.missing == 0, "{l:?}");
}

// ---- existing backups of an existing database ----------------------------------------------

/// A source database the test owns, reached by firedrill as a `postgres` target.
struct Source {
    sb: Sandbox,
    dir: tempfile::TempDir,
    bins: PgBinaries,
}

impl Source {
    async fn new(archive: bool) -> Source {
        let dir = tempfile::tempdir().unwrap();
        let run_as = binaries::run_as(None).unwrap();
        // PostgreSQL (as its own user) archives here, and a restore reads from here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let archive_dir = dir.path().join("archive");
        std::fs::create_dir(&archive_dir).unwrap();
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&archive_dir, Some(uid), Some(gid)).unwrap();
        }
        let mut settings = std::collections::BTreeMap::new();
        if archive {
            settings.insert("archive_mode".into(), "on".into());
            settings.insert(
                "archive_command".into(),
                format!("cp %p {}/%f", archive_dir.display()),
            );
        }
        let config = SandboxConfig {
            seed_sql: Vec::new(),
            wal_archive: false,
            zones: None,
            standbys: 0,
            replication: Replication::Async,
            settings,
            work_dir: None,
            run_as,
            journal: Default::default(),
            templates: crate::templates(),
        };
        let bins = PgBinaries::locate(None).unwrap();
        let sb = Sandbox::build(bins.clone(), config, &|_| {}).await.unwrap();
        let c = sb.connect(0).await.unwrap();
        c.batch_execute(
            "create table accounts(id bigint primary key, owner text, balance numeric(12,2));
             insert into accounts select i, 'owner ' || i, i * 1.5 from generate_series(1, 1000) i;",
        )
        .await
        .unwrap();
        Source { sb, dir, bins }
    }

    fn port(&self) -> u16 {
        self.sb.nodes[0].port
    }

    fn dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={SUPERUSER} dbname=postgres",
            self.port()
        )
    }

    fn tool(&self, name: &str) -> Std {
        let mut c = Std::new(self.bins.program(name));
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port().to_string(),
            "-U",
            SUPERUSER,
        ]);
        c
    }

    /// Runs a restore scenario (YAML after `restore:`) against this source through the CLI.
    fn drill(&self, restore: &str, targets: &str, code: i32) -> (Option<Report>, String) {
        let yaml = format!(
            "version: 1\nname: existing-restore\nenvironment: test\ntarget:\n  type: postgres\n  dsn_env: FD_TEST_DSN\n\
             restore:\n{restore}\n  sandbox:\n    work_dir: {work}\ntargets:\n{targets}\n",
            work = self.work_dir().display()
        );
        let path = self.dir.path().join("scenario.yaml");
        std::fs::write(&path, yaml).unwrap();
        let out = crate::firedrill_cmd()
            .args(["run", "--format", "json"])
            .arg(&path)
            .env("FD_TEST_DSN", self.dsn())
            .assert()
            .code(code)
            .get_output()
            .clone();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let report = serde_json::from_str(&stdout).ok();
        (report, String::from_utf8(out.stderr).unwrap())
    }

    /// Runs a PostgreSQL client program against the source and asserts it succeeded.
    fn run(&self, name: &str, args: &[&str], out: &Path) {
        let ok = self.tool(name).args(args).arg(out).status().unwrap();
        assert!(ok.success(), "{name} failed");
    }

    fn work_dir(&self) -> std::path::PathBuf {
        let w = self.dir.path().join("work");
        std::fs::create_dir_all(&w).unwrap();
        w
    }

    /// Nothing of a drill is left in its work directory.
    fn assert_nothing_left(&self) {
        let left: Vec<_> = std::fs::read_dir(self.work_dir()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

fn flip_bytes(path: &Path, at: u64, n: usize) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut buf = vec![0u8; n];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut buf).unwrap();
    for b in &mut buf {
        *b ^= 0xA5;
    }
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&buf).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_missing_a_table_and_a_row_fails_and_names_both() {
    let _x = shared();
    let src = Source::new(false).await;
    let dump = src.dir.path().join("nightly.dump");
    src.run("pg_dump", &["-Fc", "-d", "postgres", "-f"], &dump);
    // After the dump: one more row and one more table, so the dump lacks both.
    let c = src.sb.connect(0).await.unwrap();
    c.batch_execute(
        "insert into accounts values (1001, 'late', 1);
         create table late(k int primary key); insert into late values (1), (2);",
    )
    .await
    .unwrap();
    let (report, _) = src.drill(
        &format!(
            "  backup:\n    type: pg-dump\n    path: {}\n  verify:\n    source_quiescent: true",
            dump.display()
        ),
        "  checksums: match",
        1,
    );
    let r = report.expect("a report on stdout");
    let x = restore_of(&r);
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(x.tables_differing, Some(2), "{:#?}", x.tables);
    let named = |t: &str| {
        x.tables
            .iter()
            .find(|r| r.table == t)
            .map(|r| r.differences.join("; "))
            .unwrap_or_default()
    };
    assert_eq!(named("public.late"), "missing in the restored copy");
    assert!(
        named("public.accounts").contains("key 1001 missing in the restored copy"),
        "{}",
        named("public.accounts")
    );
    // The schema check names the table too.
    assert!(
        check(x, "schema").detail.contains("late"),
        "{:?}",
        check(x, "schema")
    );
    src.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_with_flipped_bytes_fails_the_restore_and_says_why() {
    let _x = shared();
    let src = Source::new(false).await;
    let dump = src.dir.path().join("nightly.dump");
    src.run("pg_dump", &["-Fc", "-d", "postgres", "-f"], &dump);
    let len = std::fs::metadata(&dump).unwrap().len();
    // The compressed table data sits in the second half of the file.
    flip_bytes(&dump, len * 3 / 4, 16);
    let (report, _) = src.drill(
        &format!(
            "  backup:\n    type: pg-dump\n    path: {}\n  verify:\n    source_quiescent: true",
            dump.display()
        ),
        "  checksums: match",
        1,
    );
    let r = report.expect("a report on stdout");
    assert_eq!(r.verdict, Verdict::Fail);
    let x = restore_of(&r);
    let failed: Vec<_> = x.checks.iter().filter(|c| !c.ok).collect();
    assert!(!failed.is_empty(), "{:#?}", x.checks);
    let restore = check(x, "restore");
    assert!(
        !restore.ok && restore.detail.contains("pg_restore"),
        "{restore:?}"
    );
    src.assert_nothing_left();
}

/// One source with WAL archiving: a base backup damaged by one flipped byte is refused by
/// pg_verifybackup; an archive missing one segment is named, and the restore that stops at the
/// gap is caught by the checksums.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_base_backup_and_a_missing_wal_segment_are_named() {
    let _x = shared();
    let src = Source::new(true).await;
    let base = src.dir.path().join("base");
    src.run(
        "pg_basebackup",
        &["-X", "stream", "-c", "fast", "-D"],
        &base,
    );
    // WAL after the backup, over several segments, all archived.
    let c = src.sb.connect(0).await.unwrap();
    for i in 0..4 {
        c.batch_execute(&format!(
            "insert into accounts select i, 'wal', 0 from generate_series({a}, {b}) i;
             select pg_switch_wal();",
            a = 2000 + i * 1000,
            b = 2999 + i * 1000
        ))
        .await
        .unwrap();
    }
    let archive = src.dir.path().join("archive");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&archive).unwrap().count() < 6 {
        assert!(std::time::Instant::now() < deadline, "archiving is slow");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 1. One byte flipped in the accounts table's file of a copy of the backup.
    let relpath: String = c
        .query_one("select pg_relation_filepath('accounts')", &[])
        .await
        .unwrap()
        .get(0);
    let damaged = src.dir.path().join("damaged");
    assert!(
        Std::new("cp")
            .arg("-a")
            .arg(&base)
            .arg(&damaged)
            .status()
            .unwrap()
            .success()
    );
    flip_bytes(&damaged.join(&relpath), 100, 1);
    let restore = |path: &Path| {
        format!(
            "  backup:\n    type: pg-basebackup\n    path: {}\n    wal_archive: {}\n  \
             verify:\n    source_quiescent: true",
            path.display(),
            archive.display()
        )
    };
    let (report, _) = src.drill(&restore(&damaged), "  checksums: match", 1);
    let r = report.expect("a report");
    let v = check(restore_of(&r), "pg_verifybackup");
    assert!(
        !v.ok && v.detail.contains(&relpath) && v.detail.contains("checksum mismatch"),
        "{v:?}"
    );
    src.assert_nothing_left();

    // 2. The intact backup with a gap in the archive: the segment is named, and the restore
    //    (which replays up to the gap and stops) lacks rows that the checksums find.
    let mut segments: Vec<String> = std::fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.len() == 24)
        .collect();
    segments.sort();
    let start = firedrill::engine::restore::wal::start_segment(&base).unwrap();
    let after: Vec<&String> = segments.iter().filter(|s| **s > start).collect();
    let gone = after[1].clone();
    std::fs::remove_file(archive.join(&gone)).unwrap();
    let (report, _) = src.drill(&restore(&base), "  checksums: match", 1);
    let r = report.expect("a report");
    let x = restore_of(&r);
    let w = check(x, "wal archive");
    assert!(!w.ok && w.detail.contains(&gone), "{w:?}");
    assert_eq!(x.tables_differing, Some(1), "{:#?}", x.tables);
    src.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_clear_error_with_exit_4_and_nothing_left() {
    let _x = shared();
    let src = Source::new(false).await;
    // A missing dump.
    let (_, stderr) = src.drill(
        "  backup:\n    type: pg-dump\n    path: /nonexistent/nightly.dump\n  verify:\n    source_quiescent: true",
        "  rto: 1m",
        4,
    );
    assert!(
        stderr.contains("error: backup: dump /nonexistent/nightly.dump does not exist"),
        "{stderr}"
    );
    src.assert_nothing_left();

    // A stanza the repository does not have.
    let repo_dir = src.dir.path().join("repo");
    std::fs::create_dir(&repo_dir).unwrap();
    let conf = src.dir.path().join("pgbackrest.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\nrepo1-path={}\nlog-path={d}\nlock-path={d}\nlog-level-file=off\n",
            repo_dir.display(),
            d = src.dir.path().display()
        ),
    )
    .unwrap();
    let (_, stderr) = src.drill(
        &format!(
            "  backup:\n    type: pgbackrest\n    stanza: nightly\n    config: {}\n  verify:\n    source_quiescent: true",
            conf.display()
        ),
        "  rto: 1m",
        4,
    );
    assert!(stderr.contains("pgBackRest stanza \"nightly\""), "{stderr}");
    src.assert_nothing_left();

    // A recovery target before the base backup.
    let base = src.dir.path().join("base");
    src.run(
        "pg_basebackup",
        &["-X", "stream", "-c", "fast", "-D"],
        &base,
    );
    let (_, stderr) = src.drill(
        &format!(
            "  backup:\n    type: pg-basebackup\n    path: {}\n  recovery_target:\n    type: time\n    \
             at: 2020-01-01T00:00:00Z\n  verify:\n    source_quiescent: true",
            base.display()
        ),
        "  rto: 1m",
        4,
    );
    assert!(
        stderr.contains("recovery target 2020-01-01T00:00:00Z is before the base backup started"),
        "{stderr}"
    );
    src.assert_nothing_left();
}

/// Ctrl-C while the writers go on after the backup: the writers stop, the source sandbox and
/// the backup are removed, the report says aborted, exit 3.
#[test]
fn ctrl_c_during_a_restore_drill_cleans_up_and_reports_aborted() {
    use std::io::{BufRead, BufReader};
    let _x = shared();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    if let Some((uid, gid)) = binaries::run_as(None).unwrap() {
        std::os::unix::fs::chown(&work, Some(uid), Some(gid)).unwrap();
    }
    let scenario = dir.path().join("long-restore.yaml");
    std::fs::write(
        &scenario,
        format!(
            "version: 1\nname: long-restore\ntarget: {{type: postgres-sandbox, standbys: 0, work_dir: {w}}}\n\
             workload: {{connections: 2}}\nrestore:\n  seed: {{pgbench_scale: 1}}\n  \
             backup: {{type: pg-basebackup}}\n  write_after_backup: 60s\ntargets: {{rto: 1m}}\n",
            w = work.display()
        ),
    )
    .unwrap();
    let mut child = crate::firedrill_process()
        .args(["run", "--out"])
        .arg(dir.path().join("out"))
        .arg(&scenario)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("pg_basebackup of the source") {
            break;
        }
    }
    assert!(
        std::fs::read_dir(&work).unwrap().count() >= 1,
        "the drill built its sandbox"
    );
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{rest:?}");
    let left: Vec<_> = std::fs::read_dir(&work).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let left = crate::processes_working_in(&work);
    assert!(left.is_empty(), "processes left: {left:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["verdict"], "aborted");
    assert_eq!(report["drill"], "restore");
}

/// Regression: with no writes after the backup, `pg_switch_wal()` has nothing to switch and the
/// newest archived file is the backup's history file (`SEGMENT.OFFSET.backup`); the drill waited
/// 60s for a segment name it never saw and failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_latest_restore_without_writes_sees_the_archive_closed() {
    let _x = shared();
    let yaml = "version: 1\nname: quiet-restore\ntarget: {type: postgres-sandbox, standbys: 0}\n\
         workload: {connections: 0}\nrestore:\n  seed: {pgbench_scale: 1}\n  \
         backup: {type: pg-basebackup}\ntargets: {checksums: match, rto: 30s}\n";
    let loaded = scenario::parse(Path::new("quiet-restore.yaml"), yaml).unwrap();
    let started = std::time::Instant::now();
    let r = drill(&loaded).await;
    all_checks_pass(&r);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "{:?}",
        started.elapsed()
    );
}
