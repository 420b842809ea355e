//! The AWS calls against moto server (PyPI `moto[server]`, installed by `.ci/setup` into a venv,
//! started here on a free loopback port). moto answers RDS and FIS for real (state kept across
//! calls); what it does not implement (AWS Backup jobs, recovery points and restore jobs, the
//! effect of `ForceFailover`) is tested in `sdk_mocks.rs` with the SDK's own mocks instead.

use std::time::Duration;

use aws_sdk_rds::config::Region;
use firedrill_aws::wait::{self, Poll};
use firedrill_aws::{Aws, AwsError, DRILL_TAG};

/// moto, with clients pointed at it.
struct Moto {
    server: firedrill_aws::moto::Server,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        let server = firedrill_aws::moto::Server::start();
        let port = server.port;
        Moto { server, port }
    }

    fn conf(&self, region: &str) -> aws_types::SdkConfig {
        self.server.conf(region)
    }

    fn aws(&self) -> Aws {
        Aws::from_conf(&self.conf("us-east-1"))
    }
}

fn fast(deadline_s: u64) -> Poll {
    Poll {
        first: Duration::from_millis(50),
        max: Duration::from_millis(200),
        deadline: Duration::from_secs(deadline_s),
    }
}

async fn wait_available(aws: &Aws, id: &str) -> firedrill_aws::Instance {
    wait::until(
        &format!("DB instance {id}"),
        "available",
        fast(30),
        || async {
            let i = aws.instance(id).await?;
            let s = i.status.clone();
            Ok(((s == "available").then_some(i), s))
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_snapshot_restore_point_in_time_and_tag_based_cleanup() {
    let moto = Moto::start();
    let aws = moto.aws();
    moto.server
        .postgres_instance("orders", true, &[("team", "orders")])
        .await;

    let i = aws.instance("orders").await.unwrap();
    assert_eq!(i.engine, "postgres");
    assert!(i.multi_az);
    assert!(i.endpoint.is_some(), "{i:?}");
    assert!(i.tags.contains(&("team".into(), "orders".into())), "{i:?}");

    let drill = [(DRILL_TAG, "run-1")];
    let snap = aws
        .create_snapshot("orders", "orders-drill-1", &drill)
        .await
        .unwrap();
    assert_eq!(snap.instance, "orders");
    let snap = wait::until("snapshot", "available", fast(30), || async {
        let s = aws.snapshot("orders-drill-1").await?;
        let st = s.status.clone();
        Ok(((st == "available").then_some(s), st))
    })
    .await
    .unwrap();
    assert!(
        snap.tags.contains(&(DRILL_TAG.into(), "run-1".into())),
        "{snap:?}"
    );

    let restored = aws
        .restore_snapshot(
            "orders-drill-1",
            "orders-restore-1",
            Some("db.t3.micro"),
            &drill,
        )
        .await
        .unwrap();
    assert_eq!(restored.id, "orders-restore-1");
    let restored = wait_available(&aws, "orders-restore-1").await;
    assert!(restored.endpoint.is_some());
    assert!(
        restored.tags.contains(&(DRILL_TAG.into(), "run-1".into())),
        "{restored:?}"
    );

    let pitr = aws
        .restore_point_in_time("orders", "orders-pitr-1", None, None, &drill)
        .await
        .unwrap();
    assert_eq!(pitr.id, "orders-pitr-1");
    wait_available(&aws, "orders-pitr-1").await;

    // Another drill's copy and the source itself are not ours to delete.
    aws.create_snapshot("orders", "orders-drill-2", &[(DRILL_TAG, "run-2")])
        .await
        .unwrap();
    let mut deleted = aws.cleanup(Some("run-1")).await.unwrap();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            "instance orders-pitr-1",
            "instance orders-restore-1",
            "snapshot orders-drill-1"
        ]
    );
    assert!(
        aws.cleanup(Some("run-1")).await.unwrap().is_empty(),
        "idempotent"
    );
    let left: Vec<String> = aws
        .instances()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert!(
        left.iter().all(|i| !i.contains("-1") || i == "orders"),
        "{left:?}"
    );
    assert!(left.contains(&"orders".to_owned()));
    assert_eq!(
        aws.snapshot("orders-drill-2").await.unwrap().id,
        "orders-drill-2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aurora_cluster_fails_over_to_the_chosen_reader() {
    let moto = Moto::start();
    let aws = moto.aws();
    moto.server
        .aurora_cluster("ledger", &["ledger-1", "ledger-2"])
        .await;
    let before = aws.cluster("ledger").await.unwrap();
    assert_eq!(before.members.len(), 2, "{before:?}");
    let writer = before.writer.clone().expect("a writer");
    let reader = before
        .members
        .iter()
        .find(|m| **m != writer)
        .unwrap()
        .clone();
    assert!(before.endpoint.is_some(), "{before:?}");

    aws.failover_cluster("ledger", Some(&reader)).await.unwrap();
    let after = aws.cluster("ledger").await.unwrap();
    assert_eq!(after.writer.as_deref(), Some(reader.as_str()), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_az_instance_failover_is_accepted() {
    // moto accepts RebootDBInstance but ignores ForceFailover (no standby to switch to); that
    // the flag is sent is proven in sdk_mocks.rs.
    let moto = Moto::start();
    let aws = moto.aws();
    moto.server
        .postgres_instance("orders", true, &[("team", "orders")])
        .await;
    aws.failover_instance("orders").await.unwrap();
    assert_eq!(wait_available(&aws, "orders").await.id, "orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fis_experiment_from_a_described_template_starts_is_read_and_stops() {
    use firedrill_aws::{ActionSpec, TargetSpec, TemplateSpec};
    let moto = Moto::start();
    let aws = moto.aws();
    moto.server
        .postgres_instance("orders", true, &[("team", "orders")])
        .await;
    let arn = aws.instance("orders").await.unwrap().arn;
    let spec = TemplateSpec {
        description: "reboot orders with failover".into(),
        role_arn: "arn:aws:iam::123456789012:role/fis".into(),
        targets: vec![TargetSpec {
            name: "db".into(),
            resource_type: "aws:rds:db".into(),
            arns: vec![arn],
            tags: vec![],
            selection_mode: "ALL".into(),
        }],
        actions: vec![ActionSpec {
            name: "reboot".into(),
            action_id: "aws:rds:reboot-db-instances".into(),
            parameters: vec![("forceFailover".into(), "true".into())],
            targets: vec![("DBInstances".into(), "db".into())],
        }],
        stop_alarms: vec![],
    };
    let template = aws
        .create_template(&spec, "token-1", (DRILL_TAG, "run-1"))
        .await
        .unwrap();
    let started = aws
        .start_experiment(&template, "token-2", (DRILL_TAG, "run-1"))
        .await
        .unwrap();
    assert!(!started.id.is_empty());
    let read = aws.experiment(&started.id).await.unwrap();
    assert_eq!(read.id, started.id);
    assert!(!read.status.is_empty(), "{read:?}");
    let stopped = aws.stop_experiment(&started.id).await.unwrap();
    assert!(
        matches!(stopped.status.as_str(), "stopping" | "stopped"),
        "{stopped:?}"
    );
    // Stopping again is not an error: an undo may run twice.
    aws.stop_experiment(&started.id).await.unwrap();
    aws.delete_template(&template).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_resources_and_the_wrong_region_are_named() {
    let moto = Moto::start();
    moto.server
        .postgres_instance("orders", false, &[("team", "orders")])
        .await;
    let aws = moto.aws();
    let e = aws.instance("nope").await.unwrap_err();
    assert!(matches!(e, AwsError::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("DB instance nope in us-east-1 not found"),
        "{e}"
    );
    let elsewhere = Aws::from_conf(&moto.conf("eu-west-1"));
    let e = elsewhere.instance("orders").await.unwrap_err();
    assert!(
        e.to_string()
            .contains("DB instance orders in eu-west-1 not found"),
        "{e}"
    );
    let e = aws.cluster("nope").await.unwrap_err();
    assert!(matches!(e, AwsError::NotFound { .. }), "{e:?}");
    let e = aws.experiment("EXPnope").await.unwrap_err();
    assert!(
        matches!(e, AwsError::NotFound { .. } | AwsError::Other { .. }),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_are_one_clear_error() {
    let moto = Moto::start();
    let conf = aws_types::SdkConfig::builder()
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{}", moto.port))
        .behavior_version(aws_sdk_rds::config::BehaviorVersion::latest())
        .build();
    let e = Aws::from_conf(&conf).instance("orders").await.unwrap_err();
    assert!(matches!(e, AwsError::NoCredentials { .. }), "{e:?}");
    assert!(e.to_string().contains("no AWS credentials"), "{e}");
}
