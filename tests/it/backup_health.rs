//! The backup-health drill. moto answers AWS Backup's recovery-point, job and
//! protected-resource calls with 404, so the judging is tested here on the SDK's own mocks
//! (`aws-smithy-mocks`: the SDK's client answering canned responses, not AWS), and the command
//! line against moto shows the 404 as one clear error.

use std::time::{Duration, SystemTime};

use aws_sdk_backup::operation::list_backup_jobs::ListBackupJobsOutput;
use aws_sdk_backup::operation::list_protected_resources::ListProtectedResourcesOutput;
use aws_sdk_backup::operation::list_recovery_points_by_resource::ListRecoveryPointsByResourceOutput;
use aws_sdk_backup::types::{
    BackupJob, BackupJobState, ProtectedResource, RecoveryPointByResource, RecoveryPointStatus,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use firedrill::scenario::{BackupHealth, Dur};

use crate::standin::{Response, StandIn, epoch};

const ORDERS: &str = "arn:aws:rds:us-east-1:123456789012:db:orders";
const BILLING: &str = "arn:aws:rds:us-east-1:123456789012:db:billing";
const H: Duration = Duration::from_secs(3600);

fn at(t: SystemTime) -> DateTime {
    DateTime::from(t)
}

fn aws(backup: &[&Rule]) -> firedrill_aws::Aws {
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, Vec::<&Rule>::new());
    let fis = mock_client!(aws_sdk_fis, RuleMode::MatchAny, Vec::<&Rule>::new());
    let cw = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, Vec::<&Rule>::new());
    let backup = mock_client!(aws_sdk_backup, RuleMode::MatchAny, backup.iter().copied());
    firedrill_aws::Aws::from_clients(rds, fis, backup, cw)
}

fn job(
    id: &str,
    arn: &str,
    state: BackupJobState,
    created: SystemTime,
    msg: Option<&str>,
) -> BackupJob {
    BackupJob::builder()
        .backup_job_id(id)
        .resource_arn(arn)
        .state(state)
        .creation_date(at(created))
        .set_status_message(msg.map(str::to_owned))
        .build()
}

fn point(arn: &str, created: SystemTime, status: RecoveryPointStatus) -> RecoveryPointByResource {
    RecoveryPointByResource::builder()
        .recovery_point_arn(arn)
        .creation_date(at(created))
        .status(status)
        .backup_vault_name("Default")
        .build()
}

#[tokio::test]
async fn recovery_point_ages_failed_jobs_and_missing_jobs_are_found_per_resource() {
    let now = SystemTime::now();
    let protected = mock!(aws_sdk_backup::Client::list_protected_resources).then_output(|| {
        ListProtectedResourcesOutput::builder()
            .results(
                ProtectedResource::builder()
                    .resource_arn(ORDERS)
                    .resource_type("RDS")
                    .build(),
            )
            .results(
                ProtectedResource::builder()
                    .resource_arn(BILLING)
                    .resource_type("RDS")
                    .build(),
            )
            .build()
    });
    let points = mock!(aws_sdk_backup::Client::list_recovery_points_by_resource)
        .match_requests(|r| r.resource_arn() == Some(ORDERS))
        .then_output(move || {
            ListRecoveryPointsByResourceOutput::builder()
                .recovery_points(point("rp-o-2", now - 3 * H, RecoveryPointStatus::Completed))
                .recovery_points(point(
                    "rp-o-1",
                    now - 27 * H,
                    RecoveryPointStatus::Completed,
                ))
                .build()
        });
    // billing's newest point is partial; the completed one is 50 hours old.
    let billing_points = mock!(aws_sdk_backup::Client::list_recovery_points_by_resource)
        .match_requests(|r| r.resource_arn() == Some(BILLING))
        .then_output(move || {
            ListRecoveryPointsByResourceOutput::builder()
                .recovery_points(point("rp-b-2", now - 2 * H, RecoveryPointStatus::Partial))
                .recovery_points(point(
                    "rp-b-1",
                    now - 50 * H,
                    RecoveryPointStatus::Completed,
                ))
                .build()
        });
    let jobs = mock!(aws_sdk_backup::Client::list_backup_jobs).then_output(move || {
        ListBackupJobsOutput::builder()
            .backup_jobs(job(
                "j-1",
                ORDERS,
                BackupJobState::Completed,
                now - 51 * H,
                None,
            ))
            .backup_jobs(job(
                "j-2",
                ORDERS,
                BackupJobState::Completed,
                now - 27 * H,
                None,
            ))
            .backup_jobs(job(
                "j-3",
                ORDERS,
                BackupJobState::Completed,
                now - 3 * H,
                None,
            ))
            .backup_jobs(job(
                "j-4",
                BILLING,
                BackupJobState::Completed,
                now - 50 * H,
                None,
            ))
            .backup_jobs(job(
                "j-5",
                BILLING,
                BackupJobState::Failed,
                now - 26 * H,
                Some("snapshot quota exceeded"),
            ))
            .build()
    });
    let aws = aws(&[&protected, &points, &billing_points, &jobs]);
    let h = BackupHealth {
        window: Dur::from_secs(72 * 3600),
        expect_every: Some(Dur::from_secs(24 * 3600)),
        grace: Dur::from_secs(3600),
    };
    let r = firedrill::engine::backup_health::read(&aws, &[], &h, now)
        .await
        .unwrap();
    assert_eq!(r.resources.len(), 2);

    let orders = &r.resources[0];
    assert_eq!(orders.resource, ORDERS);
    assert_eq!(orders.recovery_points, 2);
    assert_eq!(orders.jobs_completed, 3);
    let age = orders.age_ms.unwrap();
    assert!((age - 3.0 * 3_600_000.0).abs() < 2000.0, "{age}");
    // 21h from the window's start to the first job, then 24h, 24h, 3h: all within 25h.
    assert_eq!(orders.problems, Vec::<String>::new());

    let billing = &r.resources[1];
    assert!((billing.age_ms.unwrap() - 50.0 * 3_600_000.0).abs() < 2000.0);
    assert_eq!(billing.problems.len(), 2, "{:?}", billing.problems);
    assert!(
        billing.problems[0].starts_with("backup job j-5 FAILED at ")
            && billing.problems[0].ends_with(": snapshot quota exceeded"),
        "{:?}",
        billing.problems
    );
    assert!(
        billing.problems[1].starts_with("no completed backup job from ")
            && billing.problems[1].ends_with("(50.0h)"),
        "{:?}",
        billing.problems
    );
    assert_eq!(r.problems(), 2);
    let worst = firedrill::engine::backup_health::worst_age(&r).unwrap();
    assert!((worst - 50.0 * 3_600_000.0).abs() < 2000.0);
}

#[tokio::test]
async fn a_resource_without_any_recovery_point_leaves_the_rpo_unmeasured() {
    let now = SystemTime::now();
    let points = mock!(aws_sdk_backup::Client::list_recovery_points_by_resource)
        .then_output(|| ListRecoveryPointsByResourceOutput::builder().build());
    let jobs = mock!(aws_sdk_backup::Client::list_backup_jobs)
        .then_output(|| ListBackupJobsOutput::builder().build());
    let aws = aws(&[&points, &jobs]);
    let h = BackupHealth {
        window: Dur::from_secs(7 * 86400),
        expect_every: None,
        grace: Dur::from_secs(3600),
    };
    let r = firedrill::engine::backup_health::read(&aws, &[ORDERS.to_owned()], &h, now)
        .await
        .unwrap();
    assert_eq!(r.resources[0].problems, ["no completed recovery point"]);
    assert_eq!(firedrill::engine::backup_health::worst_age(&r), None);
}

#[test]
fn against_moto_the_missing_backup_api_is_one_clear_error() {
    let moto = firedrill_aws::moto::Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("health.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: health\ntarget: {{type: aws-backup, region: us-east-1, \
             endpoint_url: '{}'}}\nbackup_health: {{window: 7d, expect_every: 24h}}\n\
             targets: {{rpo: 26h}}\n",
            moto.url()
        ),
    )
    .unwrap();
    let o = crate::firedrill_process()
        .args(["run", file.to_str().unwrap()])
        .env("FIREDRILL_STATE_DIR", dir.path().join("state"))
        .envs(crate::aws::MOTO_CREDENTIALS)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        [
            "error: aws: backup:ListProtectedResources: HTTP 404 without an AWS error: the \
          endpoint does not implement this API"
        ],
        "{err}"
    );
}

/// A loopback stand-in for AWS Backup's REST API (moto has none, see [`crate::standin`]): it
/// answers the three calls a backup-health drill makes with bodies shaped as AWS's API
/// reference documents them (`ListRecoveryPointsByResource`, `ListBackupJobs`,
/// `ListProtectedResources`). It is not the service: it checks no signature and knows one
/// resource. `point_age`: the newest recovery point's age; `failed`: whether one job of the
/// window failed.
fn backup_stand_in(point_age: Duration, failed: bool) -> StandIn {
    let now = SystemTime::now();
    let point = serde_json::json!({"RecoveryPoints": [{
        "RecoveryPointArn": "arn:aws:backup:us-east-1:123456789012:recovery-point:rp-1",
        "CreationDate": epoch(now - point_age),
        "Status": "COMPLETED",
        "BackupVaultName": "Default"}]});
    // A daily job for eight days, the newest three hours ago.
    let jobs: Vec<serde_json::Value> = (0..8)
        .map(|day| {
            serde_json::json!({
                "BackupJobId": format!("job-{day}"),
                "ResourceArn": ORDERS,
                "State": if failed && day == 2 { "FAILED" } else { "COMPLETED" },
                "StatusMessage": if failed && day == 2 { "snapshot quota exceeded" } else { "" },
                "CreationDate": epoch(now - 3 * H - day * 24 * H)})
        })
        .collect();
    let jobs = serde_json::json!({ "BackupJobs": jobs });
    let protected = serde_json::json!({"Results": [
        {"ResourceArn": ORDERS, "ResourceType": "RDS", "LastBackupTime": epoch(now - point_age)}]});
    StandIn::start(move |r| {
        if r.path.contains("/recovery-points") {
            Response::json(200, point.clone())
        } else if r.path.starts_with("/backup-jobs") {
            Response::json(200, jobs.clone())
        } else if r.path.starts_with("/resources") {
            Response::json(200, protected.clone())
        } else {
            Response::error(404, "ResourceNotFoundException", "no such call here")
        }
    })
}

/// The drill's verdict through the command line, against the stand-in: a fresh recovery point
/// and daily jobs pass (exit 0); a recovery point older than `targets.rpo` fails the rpo target,
/// and a failed job fails the drill too (exit 1), each named in the report.
#[test]
fn the_backup_health_verdict_follows_the_recovery_point_age_and_the_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let run = |point_age: Duration, failed: bool| {
        let server = backup_stand_in(point_age, failed);
        let file = dir.path().join("health.yaml");
        std::fs::write(
            &file,
            format!(
                "version: 1\nname: health\ntarget: {{type: aws-backup, region: us-east-1, \
                 endpoint_url: '{}', resources: ['{ORDERS}']}}\n\
                 backup_health: {{window: 7d, expect_every: 24h, grace: 2h}}\ntargets: {{rpo: 26h}}\n",
                server.url
            ),
        )
        .unwrap();
        let mut cmd = crate::firedrill_process();
        cmd.args(["run", "--format", "json"])
            .arg(&file)
            .envs(crate::aws::MOTO_CREDENTIALS);
        let (code, stdout, stderr) = crate::run_to_end(&mut cmd);
        let r: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
        (code, r, stderr)
    };

    let (code, r, stderr) = run(3 * H, false);
    assert_eq!(code, 0, "{stderr}\n{r}");
    assert_eq!(r["verdict"], "pass");
    let rpo = r["measurements"]["rpo_ms"].as_f64().unwrap();
    assert!(
        (rpo - 3.0 * 3600e3).abs() < 120e3,
        "rpo {rpo} ms, the point is 3h old"
    );

    let (code, r, stderr) = run(30 * H, false);
    assert_eq!(code, 1, "{stderr}\n{r}");
    assert_eq!(r["verdict"], "fail");
    let rpo_target = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "rpo")
        .unwrap();
    assert_eq!(rpo_target["met"], false, "{rpo_target}");

    let (code, r, stderr) = run(3 * H, true);
    assert_eq!(code, 1, "{stderr}\n{r}");
    assert_eq!(r["verdict"], "fail");
    assert!(
        r.to_string().contains("snapshot quota exceeded"),
        "the failed job is not named: {r}"
    );
}

/// The shipped `aws-backup-health.yaml` as it is, against the stand-in reached through the SDK's
/// own `AWS_ENDPOINT_URL_BACKUP`: every protected resource (one, 3 h old, daily jobs) passes.
#[test]
fn the_shipped_backup_health_scenario_runs_against_the_stand_in() {
    let server = backup_stand_in(3 * H, false);
    let mut cmd = crate::firedrill_process();
    cmd.args(["run", "--format", "json"])
        .arg(crate::repo("scenarios/aws-backup-health.yaml"))
        .env("AWS_ENDPOINT_URL_BACKUP", &server.url)
        .envs(crate::aws::MOTO_CREDENTIALS);
    let (code, stdout, stderr) = crate::run_to_end(&mut cmd);
    let r: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(code, 0, "{stderr}\n{r}");
    assert_eq!(r["verdict"], "pass");
    let resources = r["measurements"]["backup_health"]["resources"].to_string();
    assert!(resources.contains(ORDERS), "{resources}");
}
