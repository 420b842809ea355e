//! The AWS side of the command line against moto server (see `crates/aws` for the calls
//! themselves, and the README for what moto does not implement).

use aws_sdk_rds::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_sdk_rds::types::Tag;
use firedrill_aws::DRILL_TAG;
use firedrill_aws::moto::Server;

fn rds(moto: &Server) -> aws_sdk_rds::Client {
    let conf = aws_types::SdkConfig::builder()
        .region(Region::new("us-east-1"))
        .endpoint_url(moto.url())
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "test",
        )))
        .behavior_version(BehaviorVersion::latest())
        .build();
    aws_sdk_rds::Client::new(&conf)
}

fn tag(drill: &str) -> Tag {
    Tag::builder().key(DRILL_TAG).value(drill).build()
}

/// `firedrill cleanup` with moto's endpoint and test credentials in the environment only.
fn cleanup(moto: &Server, args: &[&str]) -> (i32, String, String) {
    let out = crate::firedrill_process()
        .args([
            "cleanup",
            "--region",
            "us-east-1",
            "--endpoint-url",
            &moto.url(),
        ])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cleanup_lists_and_deletes_what_drills_left_by_tag_and_nothing_else() {
    let moto = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rds = rds(&moto);
    rt.block_on(async {
        for (id, tags) in [
            ("orders", vec![]),
            ("orders-copy-a", vec![tag("run-a")]),
            ("orders-copy-b", vec![tag("run-b")]),
        ] {
            rds.create_db_instance()
                .db_instance_identifier(id)
                .engine("postgres")
                .db_instance_class("db.t3.micro")
                .allocated_storage(20)
                .master_username("app")
                .master_user_password("not-a-real-password")
                .set_tags(Some(tags))
                .send()
                .await
                .unwrap();
        }
        rds.create_db_snapshot()
            .db_instance_identifier("orders")
            .db_snapshot_identifier("orders-snap-a")
            .tags(tag("run-a"))
            .send()
            .await
            .unwrap();
    });

    let (code, out, err) = cleanup(&moto, &["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    for l in [
        "found: instance orders-copy-a (drill run-a, us-east-1)",
        "found: instance orders-copy-b (drill run-b, us-east-1)",
        "found: snapshot orders-snap-a (drill run-a, us-east-1)",
        "3 resource(s) left by drills",
    ] {
        assert!(out.contains(l), "{l:?} in:\n{out}");
    }
    assert!(!out.contains("found: instance orders "), "{out}");

    let (code, out, err) = cleanup(&moto, &["--drill", "run-a"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted: instance orders-copy-a"), "{out}");
    assert!(out.contains("deleted: snapshot orders-snap-a"), "{out}");
    assert!(out.contains("2 resource(s) deleted"), "{out}");

    let (code, out, _) = cleanup(&moto, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted: instance orders-copy-b"), "{out}");
    let (code, out, _) = cleanup(&moto, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to clean up"), "{out}");
    let left: Vec<String> = rt.block_on(async {
        rds.describe_db_instances()
            .send()
            .await
            .unwrap()
            .db_instances()
            .iter()
            .filter_map(|i| i.db_instance_identifier().map(str::to_owned))
            .collect()
    });
    assert_eq!(left, ["orders"], "the source stays");
}

#[test]
fn cleanup_without_credentials_is_one_clear_error() {
    let moto = Server::start();
    let home = tempfile::tempdir().unwrap();
    let out = crate::firedrill_process()
        .args([
            "cleanup",
            "--region",
            "us-east-1",
            "--endpoint-url",
            &moto.url(),
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: no AWS credentials found"), "{err}");
}
