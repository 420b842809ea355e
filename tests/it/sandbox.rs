//! The local sandbox for real: initdb, streaming standbys, faults, promotion, teardown.

// The drill lock is held for the whole test on purpose (see `exclusive`).
#![allow(clippy::await_holding_lock)]

use std::time::Duration;

use firedrill::pg::binaries::{self, PgBinaries};
use firedrill::scenario::Replication;
use firedrill::systems::sandbox::{Sandbox, SandboxConfig};

pub fn config(standbys: u8, replication: Replication) -> SandboxConfig {
    SandboxConfig {
        seed_sql: Vec::new(),
        wal_archive: false,
        zones: None,
        standbys,
        replication,
        settings: Default::default(),
        work_dir: None,
        run_as: binaries::run_as(None).expect("run-as user"),
        journal: Default::default(),
        templates: crate::templates(),
    }
}

#[tokio::test]
async fn sync_pair_survives_primary_kill_and_teardown_removes_everything() {
    // initdb and pg_basebackup load both cores: not while a drill measures time.
    let _x = crate::exclusive();
    let bins = PgBinaries::locate(None).expect("postgres binaries");
    let mut sb = Sandbox::build(bins, config(1, Replication::Synchronous), &|_| {})
        .await
        .expect("sandbox");
    let root = sb.root().to_owned();
    let primary = sb.connect(0).await.unwrap();
    primary
        .batch_execute("create table t(x int); insert into t values (42);")
        .await
        .unwrap();
    sb.kill(0).unwrap();
    sb.promote(1).await.unwrap();
    let (client, conn) = sb
        .client_config(Duration::from_secs(2))
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the DSN follows the new primary");
    tokio::spawn(conn);
    let x: i32 = client
        .query_one("select x from t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(x, 42);
    client
        .batch_execute("insert into t values (43)")
        .await
        .expect("new primary takes writes");
    sb.teardown(false);
    assert!(!root.exists(), "sandbox directory removed");
}

/// Why leftover checks go by working directory: a backend renames itself, so its command line
/// never names the sandbox, while its working directory is its data directory. The check must
/// see a connected client's backend (its pid from the server itself), and see nothing after
/// teardown.
#[tokio::test]
async fn a_backend_is_found_by_its_working_directory_not_its_command_line() {
    let _x = crate::exclusive();
    let bins = PgBinaries::locate(None).expect("postgres binaries");
    let mut sb = Sandbox::build(bins, config(0, Replication::Async), &|_| {})
        .await
        .expect("sandbox");
    let root = sb.root().to_owned();
    let client = sb.connect(0).await.unwrap();
    let backend: i32 = client
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let cmdline = std::fs::read(format!("/proc/{backend}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        !cmdline.contains(&root.display().to_string()),
        "the backend's command line names the sandbox after all: {cmdline}"
    );
    let seen = crate::processes_working_in(&root);
    assert!(
        seen.iter().any(|p| p.starts_with(&format!("{backend} "))),
        "backend {backend} not found by working directory: {seen:?}"
    );
    drop(client);
    sb.teardown(false);
    let left = crate::processes_working_in(&root);
    assert!(left.is_empty(), "processes left: {left:?}");
}

/// The first sandbox of a cache runs initdb and keeps its output as the template; the next one
/// copies it, primary and standby alike (no pg_basebackup), and replicates: a row written on
/// the primary is read on the standby.
#[tokio::test]
async fn a_second_sandbox_is_copied_from_the_template_and_replicates() {
    let _x = crate::exclusive();
    let cache = tempfile::tempdir().unwrap();
    let build = |cache: std::path::PathBuf| async move {
        let said = std::sync::Mutex::new(Vec::<String>::new());
        let config = SandboxConfig {
            seed_sql: Vec::new(),
            wal_archive: false,
            zones: None,
            templates: Some(firedrill::template::TemplateCache::new(cache)),
            ..config(1, Replication::Synchronous)
        };
        let bins = PgBinaries::locate(None).unwrap();
        let sb = Sandbox::build(bins, config, &|m| said.lock().unwrap().push(m))
            .await
            .unwrap();
        (sb, said.into_inner().unwrap().join("\n"))
    };
    let (mut first, said) = build(cache.path().join("t")).await;
    assert!(
        said.contains("(initdb)") && said.contains("kept as a template"),
        "{said}"
    );
    assert!(said.contains("standby1 copied from the template"), "{said}");
    first.shutdown(false).await;

    let (mut sb, said) = build(cache.path().join("t")).await;
    assert!(said.contains("(copied from the template "), "{said}");
    assert!(
        !said.contains("initdb") && !said.contains("pg_basebackup"),
        "{said}"
    );
    let primary = sb.connect(0).await.unwrap();
    primary
        .batch_execute("create table t (v text); insert into t values ('through the standby')")
        .await
        .unwrap();
    let standby = sb.connect(1).await.unwrap();
    // Synchronous commit waits for the standby's flush, not its replay: give replay a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let v = loop {
        if let Ok(row) = standby.query_one("select v from t", &[]).await {
            break row.get::<_, String>(0);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the row never reached the standby"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(v, "through the standby");
    sb.shutdown(false).await;
}
