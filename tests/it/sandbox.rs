//! The local sandbox for real: initdb, streaming standbys, faults, promotion, teardown.

// The drill lock is held for the whole test on purpose (see `exclusive`).
#![allow(clippy::await_holding_lock)]

use std::time::Duration;

use firedrill::pg::binaries::{self, PgBinaries};
use firedrill::scenario::Replication;
use firedrill::target::sandbox::{Sandbox, SandboxConfig};

pub fn config(standbys: u8, replication: Replication) -> SandboxConfig {
    SandboxConfig {
        standbys,
        replication,
        settings: Default::default(),
        work_dir: None,
        run_as: binaries::run_as(None).expect("run-as user"),
        journal: Default::default(),
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
