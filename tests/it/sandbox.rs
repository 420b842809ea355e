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
