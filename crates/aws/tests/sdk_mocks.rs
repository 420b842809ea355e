//! What moto cannot show, with the SDK's own test utilities (`aws-smithy-mocks`): these are the
//! SDK's client and retry logic answering canned responses, not AWS. moto answers AWS Backup's
//! job, recovery-point and restore-job calls with 404 and ignores `ForceFailover`; and an
//! AccessDenied, throttling or a restore that never finishes cannot be provoked in moto. And
//! moto speaks CloudWatch's Query and JSON protocols, not the RPC v2 CBOR protocol the current
//! Rust SDK uses for CloudWatch (getmoto/moto#9195): alarm reads are tested here too.

use std::time::{Duration, SystemTime};

use aws_sdk_backup::operation::describe_restore_job::DescribeRestoreJobOutput;
use aws_sdk_backup::operation::list_backup_jobs::ListBackupJobsOutput;
use aws_sdk_backup::operation::list_recovery_points_by_resource::ListRecoveryPointsByResourceOutput;
use aws_sdk_backup::operation::start_restore_job::StartRestoreJobOutput;
use aws_sdk_backup::types::{BackupJob, BackupJobState, RecoveryPointByResource, RestoreJobStatus};
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::reboot_db_instance::RebootDbInstanceOutput;
use aws_sdk_rds::types::DbInstance;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use firedrill_aws::wait::{self, Poll};
use firedrill_aws::{Aws, AwsError};

fn rds_error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>1</RequestId></ErrorResponse>"
    )
}

/// An `Aws` whose RDS client answers `rds` rules and whose Backup client answers `backup` rules.
fn aws(rds: &[&Rule], backup: &[&Rule]) -> Aws {
    aws_with(rds, backup, &[])
}

/// Polls every few milliseconds: the mocks answer at once.
fn fast(deadline_s: u64) -> Poll {
    Poll {
        first: Duration::from_millis(1),
        max: Duration::from_millis(5),
        deadline: Duration::from_secs(deadline_s),
    }
}

fn aws_with(rds: &[&Rule], backup: &[&Rule], cloudwatch: &[&Rule]) -> Aws {
    aws_with_fis(rds, backup, cloudwatch, &[])
}

fn aws_with_fis(rds: &[&Rule], backup: &[&Rule], cloudwatch: &[&Rule], fis: &[&Rule]) -> Aws {
    let retry = aws_sdk_rds::config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1));
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, rds.iter().copied(), |c| c
        .retry_config(retry.clone()));
    let backup = mock_client!(aws_sdk_backup, RuleMode::MatchAny, backup.iter().copied());
    let fis = mock_client!(aws_sdk_fis, RuleMode::MatchAny, fis.iter().copied());
    let cw = mock_client!(
        aws_sdk_cloudwatch,
        RuleMode::MatchAny,
        cloudwatch.iter().copied()
    );
    Aws::from_clients(rds, fis, backup, cw)
}

/// DescribeDBInstances' answer: instance `id` in state `status`.
fn described(id: &str, status: &str) -> DescribeDbInstancesOutput {
    DescribeDbInstancesOutput::builder()
        .db_instances(
            DbInstance::builder()
                .db_instance_identifier(id)
                .db_instance_status(status)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn a_cloudwatch_alarm_is_read_as_ok_or_alarm_and_a_missing_one_is_named() {
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::types::{MetricAlarm, StateValue};
    let states = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .match_requests(|r| r.alarm_names() == ["db-writes-failing"])
        .sequence()
        .output(|| {
            DescribeAlarmsOutput::builder()
                .metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name("db-writes-failing")
                        .state_value(StateValue::Ok)
                        .build(),
                )
                .build()
        })
        .output(|| {
            DescribeAlarmsOutput::builder()
                .metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name("db-writes-failing")
                        .state_value(StateValue::Alarm)
                        .build(),
                )
                .build()
        })
        .build();
    let none = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .match_requests(|r| r.alarm_names() == ["nope"])
        .then_output(|| DescribeAlarmsOutput::builder().build());
    let aws = aws_with(&[], &[], &[&states, &none]);
    assert_eq!(aws.alarm_state("db-writes-failing").await.unwrap(), "OK");
    assert_eq!(aws.alarm_state("db-writes-failing").await.unwrap(), "ALARM");
    let e = aws.alarm_state("nope").await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("CloudWatch alarm nope in us-east-1 not found"),
        "{e}"
    );
}

#[tokio::test]
async fn a_multi_az_failover_sends_force_failover() {
    let reboot = mock!(aws_sdk_rds::Client::reboot_db_instance)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("orders") && r.force_failover() == Some(true)
        })
        .then_output(|| RebootDbInstanceOutput::builder().build());
    aws(&[&reboot], &[])
        .failover_instance("orders")
        .await
        .unwrap();
    assert_eq!(reboot.num_calls(), 1);
}

#[tokio::test]
async fn access_denied_names_the_missing_iam_action() {
    let denied = mock!(aws_sdk_rds::Client::reboot_db_instance)
        .sequence()
        .http_status(
            403,
            Some(rds_error(
                "AccessDenied",
                "User: arn:aws:iam::123456789012:user/drill is not authorized to perform: rds:RebootDBInstance",
            )),
        )
        .build();
    let e = aws(&[&denied], &[])
        .failover_instance("orders")
        .await
        .unwrap_err();
    assert!(matches!(e, AwsError::AccessDenied { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with(
            "access denied: the credentials lack the IAM permission rds:RebootDBInstance"
        ),
        "{text}"
    );
    assert_eq!(denied.num_calls(), 1, "an AccessDenied is not retried");
}

#[tokio::test]
async fn throttling_is_retried_and_named_when_it_outlasts_the_retries() {
    let throttled_twice = mock!(aws_sdk_rds::Client::reboot_db_instance)
        .sequence()
        .http_status(400, Some(rds_error("Throttling", "Rate exceeded")))
        .times(2)
        .output(|| RebootDbInstanceOutput::builder().build())
        .build();
    aws(&[&throttled_twice], &[])
        .failover_instance("orders")
        .await
        .unwrap();
    assert_eq!(
        throttled_twice.num_calls(),
        3,
        "two throttles, then success"
    );

    let always = mock!(aws_sdk_rds::Client::reboot_db_instance)
        .sequence()
        .http_status(400, Some(rds_error("Throttling", "Rate exceeded")))
        .repeatedly()
        .build();
    let e = aws(&[&always], &[])
        .failover_instance("orders")
        .await
        .unwrap_err();
    assert_eq!(
        e,
        AwsError::Throttled {
            action: "rds:RebootDBInstance".into()
        }
    );
    assert_eq!(always.num_calls(), 3, "max_attempts");
}

#[tokio::test]
async fn a_restore_that_never_becomes_available_stops_at_its_deadline() {
    let creating = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .output(|| described("orders-restore", "creating"))
        .repeatedly()
        .build();
    let aws = aws(&[&creating], &[]);
    let poll = Poll {
        first: Duration::from_millis(20),
        max: Duration::from_millis(50),
        deadline: Duration::from_millis(400),
    };
    let started = std::time::Instant::now();
    let e = wait::until("DB instance orders-restore", "available", poll, || async {
        let i = aws.instance("orders-restore").await?;
        let s = i.status.clone();
        Ok(((s == "available").then_some(i), s))
    })
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        creating.num_calls() >= 3,
        "polled {} times",
        creating.num_calls()
    );
    assert_eq!(
        e.to_string(),
        "DB instance orders-restore did not become available within 400ms (last state: creating)"
    );
}

fn at(secs_ago: u64) -> DateTime {
    DateTime::from(SystemTime::now() - Duration::from_secs(secs_ago))
}

#[tokio::test]
async fn aws_backup_recovery_points_jobs_and_a_restore_job_to_completion() {
    let arn = "arn:aws:rds:us-east-1:123456789012:db:orders";
    let points = mock!(aws_sdk_backup::Client::list_recovery_points_by_resource)
        .match_requests(move |r| r.resource_arn() == Some(arn))
        .then_output(|| {
            ListRecoveryPointsByResourceOutput::builder()
                .recovery_points(
                    RecoveryPointByResource::builder()
                        .recovery_point_arn("rp-old")
                        .creation_date(at(2 * 86400))
                        .status("COMPLETED".into())
                        .backup_vault_name("Default")
                        .build(),
                )
                .recovery_points(
                    RecoveryPointByResource::builder()
                        .recovery_point_arn("rp-new")
                        .creation_date(at(3600))
                        .status("COMPLETED".into())
                        .backup_vault_name("Default")
                        .build(),
                )
                .build()
        });
    let jobs = mock!(aws_sdk_backup::Client::list_backup_jobs).then_output(|| {
        ListBackupJobsOutput::builder()
            .backup_jobs(
                BackupJob::builder()
                    .backup_job_id("job-1")
                    .state(BackupJobState::Completed)
                    .resource_arn("arn:aws:rds:us-east-1:123456789012:db:orders")
                    .creation_date(at(3600))
                    .build(),
            )
            .backup_jobs(
                BackupJob::builder()
                    .backup_job_id("job-2")
                    .state(BackupJobState::Failed)
                    .resource_arn("arn:aws:rds:us-east-1:123456789012:db:billing")
                    .status_message("Insufficient privileges to perform the backup")
                    .creation_date(at(1800))
                    .build(),
            )
            .build()
    });
    let start = mock!(aws_sdk_backup::Client::start_restore_job)
        .match_requests(|r| {
            r.recovery_point_arn() == Some("rp-new")
                && r.metadata()
                    .and_then(|m| m.get("DBInstanceIdentifier"))
                    .map(String::as_str)
                    == Some("orders-restore-1")
        })
        .then_output(|| {
            StartRestoreJobOutput::builder()
                .restore_job_id("restore-1")
                .build()
        });
    let describe = mock!(aws_sdk_backup::Client::describe_restore_job)
        .sequence()
        .output(|| {
            DescribeRestoreJobOutput::builder()
                .status(RestoreJobStatus::Running)
                .build()
        })
        .times(2)
        .output(|| {
            DescribeRestoreJobOutput::builder()
                .status(RestoreJobStatus::Completed)
                .created_resource_arn("arn:aws:rds:us-east-1:123456789012:db:orders-restore-1")
                .build()
        })
        .build();
    let aws = aws(&[], &[&points, &jobs, &start, &describe]);

    let rps = aws.recovery_points(arn).await.unwrap();
    assert_eq!(
        rps.iter().map(|p| p.arn.as_str()).collect::<Vec<_>>(),
        ["rp-new", "rp-old"]
    );
    let age = SystemTime::now()
        .duration_since(rps[0].created.unwrap())
        .unwrap();
    assert!(
        age >= Duration::from_secs(3599) && age < Duration::from_secs(3700),
        "{age:?}"
    );

    let failed: Vec<_> = aws
        .backup_jobs(SystemTime::now() - Duration::from_secs(86400), None)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.state == "FAILED")
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].resource_arn.ends_with(":db:billing"));

    let metadata = [(
        "DBInstanceIdentifier".to_owned(),
        "orders-restore-1".to_owned(),
    )]
    .into();
    let job = aws
        .start_restore(&rps[0].arn, None, metadata)
        .await
        .unwrap();
    assert_eq!(job, "restore-1");
    let done = aws.restore_done(&job, fast(5)).await.unwrap();
    assert_eq!(describe.num_calls(), 3);
    assert!(
        done.created_resource_arn
            .unwrap()
            .ends_with(":db:orders-restore-1")
    );
}

#[tokio::test]
async fn an_aws_backup_restore_starts_from_the_recorded_metadata_and_a_failed_job_is_named() {
    use aws_sdk_backup::operation::get_recovery_point_restore_metadata::GetRecoveryPointRestoreMetadataOutput;
    let metadata = mock!(aws_sdk_backup::Client::get_recovery_point_restore_metadata)
        .match_requests(|r| r.backup_vault_name() == Some("Default"))
        .then_output(|| {
            GetRecoveryPointRestoreMetadataOutput::builder()
                .restore_metadata("DBInstanceIdentifier", "orders")
                .restore_metadata("DBInstanceClass", "db.r6g.large")
                .restore_metadata("DBSubnetGroupName", "private")
                .build()
        });
    // The drill's identifier replaces the source's; the rest of the metadata is kept.
    let start = mock!(aws_sdk_backup::Client::start_restore_job)
        .match_requests(|r| {
            let m = r.metadata().unwrap();
            m.get("DBInstanceIdentifier").map(String::as_str) == Some("firedrill-abc")
                && m.get("DBSubnetGroupName").map(String::as_str) == Some("private")
                && r.iam_role_arn() == Some("arn:aws:iam::123456789012:role/restore")
        })
        .then_output(|| {
            StartRestoreJobOutput::builder()
                .restore_job_id("restore-2")
                .build()
        });
    let describe = mock!(aws_sdk_backup::Client::describe_restore_job)
        .sequence()
        .output(|| {
            DescribeRestoreJobOutput::builder()
                .status(RestoreJobStatus::Running)
                .build()
        })
        .output(|| {
            DescribeRestoreJobOutput::builder()
                .status(RestoreJobStatus::Failed)
                .status_message("the subnet group private does not exist")
                .build()
        })
        .build();
    let aws = aws(&[], &[&metadata, &start, &describe]);
    let mut meta = aws.restore_metadata("Default", "rp-new").await.unwrap();
    assert_eq!(meta.len(), 3);
    meta.insert("DBInstanceIdentifier".into(), "firedrill-abc".into());
    let job = aws
        .start_restore(
            "rp-new",
            Some("arn:aws:iam::123456789012:role/restore"),
            meta,
        )
        .await
        .unwrap();
    let e = aws.restore_done(&job, fast(5)).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "AWS Backup restore job restore-2 failed: FAILED: the subnet group private does not exist"
    );
    assert_eq!(describe.num_calls(), 2, "stops at FAILED, no more polls");
}

#[tokio::test]
async fn a_restored_instance_that_fails_ends_the_wait_at_once() {
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .output(|| described("firedrill-abc", "creating"))
        .output(|| described("firedrill-abc", "incompatible-restore"))
        .repeatedly()
        .build();
    let aws = aws(&[&describe], &[]);
    let poll = Poll {
        first: Duration::from_millis(1),
        max: Duration::from_millis(5),
        deadline: Duration::from_secs(60),
    };
    let started = std::time::Instant::now();
    let e = aws
        .instance_available("firedrill-abc", poll)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "DB instance firedrill-abc failed: its state is incompatible-restore"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(describe.num_calls(), 2);
}

/// An answer without a field firedrill decides on (an instance's status, a backup job's id or
/// state) is an error naming the field and the call, never an empty string taken as an answer.
#[tokio::test]
async fn a_required_field_missing_from_an_answer_is_named() {
    let no_status = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
        DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier("orders")
                    .build(),
            )
            .build()
    });
    let no_state = mock!(aws_sdk_backup::Client::list_backup_jobs).then_output(|| {
        ListBackupJobsOutput::builder()
            .backup_jobs(
                BackupJob::builder()
                    .backup_job_id("job-1")
                    .resource_arn("arn:aws:rds:us-east-1:123456789012:db:orders")
                    .build(),
            )
            .build()
    });
    let aws = aws_with(&[&no_status], &[&no_state], &[]);
    let e = aws.instance("orders").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "rds:DescribeDBInstances: the answer has no DBInstanceStatus"
    );
    let e = aws.backup_jobs(SystemTime::now(), None).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "backup:ListBackupJobs: the answer has no State"
    );
}

/// AccessDenied from the JSON services too (FIS and AWS Backup answer it as a typed JSON error,
/// not RDS's XML): classified as such, naming the IAM action, and not retried. The bodies are
/// AWS's documented error shape (`__type`, `message`).
#[tokio::test]
async fn access_denied_from_fis_and_backup_names_the_missing_iam_action() {
    let body = |action: &str| {
        format!(
            "{{\"__type\":\"AccessDeniedException\",\"message\":\"User: \
             arn:aws:iam::123456789012:user/drill is not authorized to perform: {action}\"}}"
        )
    };
    let fis = mock!(aws_sdk_fis::Client::get_experiment)
        .sequence()
        .http_status(403, Some(body("fis:GetExperiment")))
        .build();
    let backup = mock!(aws_sdk_backup::Client::list_protected_resources)
        .sequence()
        .http_status(403, Some(body("backup:ListProtectedResources")))
        .build();
    let aws = aws_with_fis(&[], &[&backup], &[], &[&fis]);
    for (e, action) in [
        (
            aws.experiment("EXP1").await.unwrap_err(),
            "fis:GetExperiment",
        ),
        (
            aws.protected_resources().await.unwrap_err(),
            "backup:ListProtectedResources",
        ),
    ] {
        assert!(matches!(e, AwsError::AccessDenied { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with(&format!(
                "access denied: the credentials lack the IAM permission {action}"
            )),
            "{e}"
        );
    }
    assert_eq!(
        (fis.num_calls(), backup.num_calls()),
        (1, 1),
        "an AccessDenied is not retried"
    );
}

/// Every listing reads every page: each mock answers the page its request's token names, so a
/// caller that stopped after the first page, or sent no token, would miss `b`.
#[tokio::test]
async fn listings_read_every_page() {
    use aws_sdk_fis::operation::list_experiment_templates::ListExperimentTemplatesOutput;
    use aws_sdk_fis::types::ExperimentTemplateSummary;

    let instances = mock!(aws_sdk_rds::Client::describe_db_instances).then_compute_output(|r| {
        let (id, next) = match r.marker() {
            None => ("a", Some("page-2")),
            Some("page-2") => ("b", None),
            Some(other) => panic!("unknown marker {other}"),
        };
        DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier(id)
                    .db_instance_status("available")
                    .build(),
            )
            .set_marker(next.map(str::to_owned))
            .build()
    });
    let jobs = mock!(aws_sdk_backup::Client::list_backup_jobs).then_compute_output(|r| {
        let (id, next) = match r.next_token() {
            None => ("a", Some("page-2")),
            Some("page-2") => ("b", None),
            Some(other) => panic!("unknown token {other}"),
        };
        ListBackupJobsOutput::builder()
            .backup_jobs(
                BackupJob::builder()
                    .backup_job_id(id)
                    .state(BackupJobState::Completed)
                    .resource_arn("arn:aws:rds:us-east-1:123456789012:db:orders")
                    .build(),
            )
            .set_next_token(next.map(str::to_owned))
            .build()
    });
    let templates =
        mock!(aws_sdk_fis::Client::list_experiment_templates).then_compute_output(|r| {
            let (id, next) = match r.next_token() {
                None => ("a", Some("page-2")),
                Some("page-2") => ("b", None),
                Some(other) => panic!("unknown token {other}"),
            };
            ListExperimentTemplatesOutput::builder()
                .experiment_templates(
                    ExperimentTemplateSummary::builder()
                        .id(id)
                        .tags(firedrill_aws::DRILL_TAG, "run-1")
                        .build(),
                )
                .set_next_token(next.map(str::to_owned))
                .build()
        });
    let aws = aws_with_fis(&[&instances], &[&jobs], &[], &[&templates]);
    let ids: Vec<String> = aws
        .instances()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    let ids: Vec<String> = aws
        .backup_jobs(SystemTime::now(), None)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    let ids: Vec<String> = aws
        .templates_tagged(None)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
}
