//! Table checksums on a real server: equal content in another physical order matches; a
//! deleted, changed or extra row is found and narrowed to its key; a table without a primary
//! key or with a type that has no extended hash is still compared.

// The drill lock is held for the whole test on purpose (see `shared`).
#![allow(clippy::await_holding_lock)]

use std::time::Duration;

use firedrill::checksum::{self, Difference, KeyRange, NarrowLimits};
use firedrill::pg::binaries::PgBinaries;
use firedrill::scenario::Replication;
use firedrill::systems::sandbox::Sandbox;

const SCHEMA: &str = "
    create table accounts(id bigint primary key, owner text not null, balance numeric(12,2),
                          opened timestamptz, tags jsonb);
    create table events(at timestamptz, body json);  -- no primary key; json has no hash
    create schema audit;
    create table audit.\"Log\"(k text primary key, v int);
";

fn fill(order: &str) -> String {
    format!(
        "insert into accounts select i, 'owner ' || i, i * 1.25, timestamptz '2026-01-01' + i * interval '1 minute', \
           jsonb_build_object('n', i) from generate_series(1, 20000) i order by i {order};
         insert into events select timestamptz '2026-01-01' + i * interval '1 second', json_build_object('e', i) \
           from generate_series(1, 500) i order by i {order};
         insert into audit.\"Log\" select 'k' || i, i from generate_series(1, 300) i order by i {order};"
    )
}

#[tokio::test]
async fn checksums_match_equal_content_and_narrow_differences_to_keys() {
    let _x = crate::shared();
    let bins = PgBinaries::locate(None).expect("postgres binaries");
    let mut sb = Sandbox::build(bins, crate::sandbox::config(0, Replication::Async), &|_| {})
        .await
        .expect("sandbox");
    let admin = sb.connect(0).await.unwrap();
    for db in ["src", "dst"] {
        admin
            .batch_execute(&format!("create database {db}"))
            .await
            .unwrap();
    }
    let connect = |db: &'static str| {
        let mut cfg = sb.client_config(Duration::from_secs(5));
        cfg.dbname(db);
        async move {
            let (c, conn) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c
        }
    };
    let (src, dst) = (connect("src").await, connect("dst").await);
    src.batch_execute(&format!("{SCHEMA}{}", fill("asc")))
        .await
        .unwrap();
    dst.batch_execute(&format!("{SCHEMA}{}", fill("desc")))
        .await
        .unwrap();

    let checks = checksum::compare(&src, &dst, NarrowLimits::default(), &[])
        .await
        .unwrap();
    let names: Vec<String> = checks.iter().map(|c| c.table.to_string()).collect();
    assert_eq!(names, ["audit.Log", "public.accounts", "public.events"]);
    for c in &checks {
        assert_eq!(c.difference, None, "{} differs with equal content", c.table);
        assert_eq!(c.source, c.restored);
    }
    assert_eq!(checks[1].source.as_ref().unwrap().rows, 20000);

    dst.batch_execute(
        "delete from accounts where id = 12345;
         update accounts set balance = balance + 0.01 where id = 777;
         insert into accounts values (50001, 'intruder', 0, now(), null);
         delete from events where body::text = '{\"e\" : 42}';
         drop table audit.\"Log\";",
    )
    .await
    .unwrap();
    let checks = checksum::compare(&src, &dst, NarrowLimits::default(), &[])
        .await
        .unwrap();
    let diff = |name: &str| {
        checks
            .iter()
            .find(|c| c.table.to_string() == name)
            .unwrap()
            .difference
            .clone()
    };
    assert_eq!(diff("audit.Log"), Some(Difference::MissingInRestored));
    let Some(Difference::Content {
        source_rows,
        restored_rows,
        ranges,
    }) = diff("public.accounts")
    else {
        panic!("accounts: {:?}", diff("public.accounts"));
    };
    assert_eq!((source_rows, restored_rows), (20000, 20000));
    let mut keys = ranges.clone();
    keys.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        keys,
        vec![
            KeyRange::Changed("777".into()),
            KeyRange::MissingInRestored("12345".into()),
            KeyRange::OnlyInRestored("50001".into()),
        ],
        "narrowed to the keys"
    );
    // No primary key: the difference is found, not narrowed.
    assert_eq!(
        diff("public.events"),
        Some(Difference::Content {
            source_rows: 500,
            restored_rows: 499,
            ranges: vec![]
        })
    );

    // A tight query budget still names where, as ranges.
    let ranges = checksum::narrow(
        &src,
        &dst,
        &checksum::TableName {
            schema: "public".into(),
            name: "accounts".into(),
        },
        "id",
        checksum::RowHash::Typed,
        NarrowLimits {
            max_queries: 4,
            leaf_rows: 32,
        },
    )
    .await
    .unwrap();
    assert!(!ranges.is_empty() && ranges.len() <= 8, "{ranges:?}");
    assert!(
        ranges.iter().all(|r| matches!(r, KeyRange::Range { .. })),
        "{ranges:?}"
    );
    sb.teardown(false);
}
