//! The `aws-backup` restore drill end to end. RDS is moto; AWS Backup is a loopback stand-in
//! ([`crate::standin`]), because moto has no recovery points or restore jobs: it answers with the
//! shapes of AWS's API reference (`ListRecoveryPointsByResource`,
//! `GetRecoveryPointRestoreMetadata`, `StartRestoreJob`, `DescribeRestoreJob`) and does what AWS
//! Backup does for an RDS recovery point, a `RestoreDBInstanceFromDBSnapshot` in moto with the
//! identifier the drill's restore metadata names. So the drill's metadata merge decides which
//! instance exists, and the drill then finds, verifies and deletes it in moto.
//!
//! The drill reaches both through the SDK's endpoint chain: `AWS_ENDPOINT_URL` (moto) and
//! `AWS_ENDPOINT_URL_BACKUP` (the stand-in), no `endpoint_url` in the scenario.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use firedrill_aws::moto::Server;

use crate::aws::{LocalDb, MOTO_CREDENTIALS, rds};
use crate::aws_restore::{db_dsn, left_in_aws, no_pending_effects, source_and_copy};
use crate::standin::{Response, StandIn, epoch};

const ROLE: &str = "arn:aws:iam::123456789012:role/backup-restore";
/// The restore metadata AWS Backup recorded for the point, as its API reference shows it.
const RECORDED: [(&str, &str); 4] = [
    ("DBInstanceIdentifier", "orders"),
    ("DBInstanceClass", "db.t3.micro"),
    ("Engine", "postgres"),
    ("MultiAZ", "false"),
];

/// What the stand-in saw and did.
#[derive(Default)]
struct Seen {
    /// The `StartRestoreJob` bodies.
    restores: Vec<serde_json::Value>,
    /// Moto's answer to the restore the stand-in made: the instance or the error.
    restored: Vec<Result<String, String>>,
}

/// AWS Backup with one completed recovery point of `source_arn`, the moto snapshot `snapshot`
/// (an RDS recovery point's ARN is its snapshot's). A restore job reports RUNNING once, then
/// COMPLETED, or FAILED with `fail` or with moto's refusal.
fn backup_stand_in(
    moto: &Server,
    source_arn: &str,
    point_arn: &str,
    snapshot: &str,
    fail: Option<&'static str>,
) -> (StandIn, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rec = seen.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rds = rds(moto);
    let created = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 3600);
    let (source_arn, point_arn, snapshot) = (
        source_arn.to_owned(),
        point_arn.to_owned(),
        snapshot.to_owned(),
    );
    let mut polls = 0;
    let server = StandIn::start(move |r| {
        let p = &r.path;
        if p.starts_with(&format!("/resources/{source_arn}/recovery-points")) {
            Response::json(
                200,
                serde_json::json!({"RecoveryPoints": [{
                    "RecoveryPointArn": point_arn, "CreationDate": epoch(created),
                    "Status": "COMPLETED", "EncryptionKeyArn": "",
                    "BackupSizeBytes": 5_368_709_120u64, "BackupVaultName": "Default"}]}),
            )
        } else if p
            == &format!("/backup-vaults/Default/recovery-points/{point_arn}/restore-metadata")
        {
            let meta: BTreeMap<&str, &str> = RECORDED.into_iter().collect();
            Response::json(
                200,
                serde_json::json!({
                    "BackupVaultArn": "arn:aws:backup:us-east-1:123456789012:backup-vault:Default",
                    "RecoveryPointArn": point_arn, "ResourceType": "RDS",
                    "RestoreMetadata": meta}),
            )
        } else if r.method == "PUT" && p == "/restore-jobs" {
            let body = r.json();
            let meta = &body["Metadata"];
            let id = meta["DBInstanceIdentifier"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let class = meta["DBInstanceClass"].as_str().map(str::to_owned);
            let made = rt.block_on(
                rds.restore_db_instance_from_db_snapshot()
                    .db_snapshot_identifier(&snapshot)
                    .db_instance_identifier(&id)
                    .set_db_instance_class(class)
                    .send(),
            );
            let mut s = rec.lock().unwrap();
            s.restores.push(body);
            s.restored.push(match made {
                Ok(o) => Ok(o
                    .db_instance()
                    .and_then(|i| i.db_instance_arn())
                    .unwrap_or("")
                    .to_owned()),
                Err(e) => Err(format!("{:?}", e.into_service_error())),
            });
            Response::json(
                200,
                serde_json::json!({"RestoreJobId": "8A4A5A8E-RESTORE-1"}),
            )
        } else if p == "/restore-jobs/8A4A5A8E-RESTORE-1" {
            polls += 1;
            let s = rec.lock().unwrap();
            let made = s.restored.last().cloned().unwrap_or(Err("no job".into()));
            let (status, message, arn) = match (&made, fail) {
                _ if polls == 1 => ("RUNNING", String::new(), None),
                (_, Some(why)) => ("FAILED", why.to_owned(), None),
                (Err(e), None) => ("FAILED", e.clone(), None),
                (Ok(arn), None) => ("COMPLETED", String::new(), Some(arn.clone())),
            };
            Response::json(
                200,
                serde_json::json!({
                    "AccountId": "123456789012", "RestoreJobId": "8A4A5A8E-RESTORE-1",
                    "RecoveryPointArn": point_arn, "CreationDate": epoch(created),
                    "Status": status, "StatusMessage": message,
                    "PercentDone": if status == "RUNNING" { "50.00%" } else { "100.00%" },
                    "IamRoleArn": ROLE, "ResourceType": "RDS",
                    "CreatedResourceArn": arn}),
            )
        } else {
            Response::error(
                404,
                "ResourceNotFoundException",
                "the stand-in has no such call",
            )
        }
    });
    (server, seen)
}

struct Setup {
    moto: Server,
    db: LocalDb,
    dir: tempfile::TempDir,
    source_arn: String,
    point_arn: String,
}

const SNAPSHOT: &str = "awsbackup-job-5b2f1c";

impl Setup {
    fn new() -> Setup {
        let moto = Server::start();
        let db = LocalDb::new();
        let source_arn = db.rt.block_on(moto.postgres_instance("orders", false, &[]));
        let point_arn = db.rt.block_on(async {
            rds(&moto)
                .create_db_snapshot()
                .db_instance_identifier("orders")
                .db_snapshot_identifier(SNAPSHOT)
                .send()
                .await
                .unwrap()
                .db_snapshot()
                .and_then(|s| s.db_snapshot_arn())
                .unwrap()
                .to_owned()
        });
        source_and_copy(&db);
        Setup {
            moto,
            db,
            dir: tempfile::tempdir().unwrap(),
            source_arn,
            point_arn,
        }
    }

    /// Runs the drill with `backup:` options `extra`; exit code, stderr and report.
    fn run(&self, backup: &StandIn, extra: &str) -> (i32, String, serde_json::Value) {
        let file = self.dir.path().join("aws-backup.yaml");
        std::fs::write(
            &file,
            format!(
                "version: 1\nname: aws-backup-restore\nenvironment: test\n\
                 target: {{type: aws-rds, instance: orders, dsn_env: FD_AWS_DSN, region: us-east-1}}\n\
                 workload: {{connections: 0}}\n\
                 restore:\n  backup: {{type: aws-backup, iam_role_arn: '{ROLE}', \
                 metadata: {{DBSubnetGroupName: drills}}{extra}}}\n\
                 \x20 instance: {{available_within: 1m, dsn_env: FD_RESTORED_DSN}}\n\
                 \x20 verify:\n    source_quiescent: true\n\
                 targets: {{rto: 5m, rpo: 4h, checksums: match}}\n"
            ),
        )
        .unwrap();
        let out = self.dir.path().join("out");
        let mut cmd = crate::run_out(&out, &file);
        cmd.env("FIREDRILL_STATE_DIR", self.dir.path().join("state"))
            .env("FD_AWS_DSN", db_dsn(&self.db, "app"))
            .env("FD_RESTORED_DSN", db_dsn(&self.db, "app_restored"))
            .env("AWS_ENDPOINT_URL", self.moto.url())
            .env("AWS_ENDPOINT_URL_BACKUP", &backup.url)
            .envs(MOTO_CREDENTIALS);
        crate::run_for_report(&mut cmd, &out)
    }
}

/// The drill restores the newest completed point into `firedrill-<run id>` (the metadata AWS
/// Backup recorded, the scenario's over it, the identifier the drill's), waits through RUNNING,
/// verifies the restored data against the source, names the point and its age, and deletes the
/// instance.
#[test]
fn an_aws_backup_restore_runs_end_to_end_and_deletes_what_it_restored() {
    let _x = crate::shared();
    let t = Setup::new();
    let (backup, seen) = backup_stand_in(&t.moto, &t.source_arn, &t.point_arn, SNAPSHOT, None);
    let (code, stderr, r) = t.run(&backup, "");
    assert_eq!(code, 0, "{stderr}");
    let run_id = r["run_id"].as_str().unwrap();
    let new_id = format!("firedrill-{run_id}");

    let seen = seen.lock().unwrap();
    assert_eq!(seen.restores.len(), 1, "one StartRestoreJob");
    let job = &seen.restores[0];
    assert_eq!(job["RecoveryPointArn"], t.point_arn.as_str());
    assert_eq!(job["IamRoleArn"], ROLE);
    let meta = &job["Metadata"];
    assert_eq!(meta["DBInstanceIdentifier"], new_id.as_str(), "{meta}");
    assert_eq!(
        meta["DBSubnetGroupName"], "drills",
        "the scenario's metadata: {meta}"
    );
    assert_eq!(
        meta["Engine"], "postgres",
        "the recorded metadata kept: {meta}"
    );
    assert!(seen.restored[0].is_ok(), "{:?}", seen.restored);

    let m = &r["measurements"]["restore"];
    assert_eq!(m["backup_kind"], "aws-backup");
    assert_eq!(m["restored_into"], format!("DB instance {new_id}"));
    assert!(
        m["backup_source"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AWS Backup recovery point {}", t.point_arn)),
        "{m}"
    );
    assert_eq!(m["tables_differing"], 0, "{m}");
    // The point is three hours old: the RPO exposure says so.
    let rpo = r["measurements"]["rpo_ms"].as_f64().unwrap();
    assert!((rpo - 3.0 * 3600e3).abs() < 120e3, "rpo {rpo} ms");
    for l in [
        "polling DescribeRestoreJob",
        "restore job 8A4A5A8E-RESTORE-1 COMPLETED",
        &format!("DB instance {new_id}: deleted"),
    ] {
        assert!(stderr.contains(l), "{l:?} in:\n{stderr}");
    }
    assert_eq!(left_in_aws(&t.db.rt, &t.moto), Vec::<String>::new());
    no_pending_effects(&t.dir.path().join("state"));
}

/// A restore job AWS Backup reports FAILED fails the drill with Backup's message; a point the
/// resource does not have is named; neither leaves an instance behind.
#[test]
fn a_failed_restore_job_or_an_unknown_point_fails_the_drill_and_leaves_nothing() {
    let _x = crate::shared();
    let t = Setup::new();
    let (backup, _) = backup_stand_in(
        &t.moto,
        &t.source_arn,
        &t.point_arn,
        SNAPSHOT,
        Some("Insufficient IAM permissions to restore"),
    );
    let (code, stderr, r) = t.run(&backup, "");
    assert_eq!(code, 1, "{stderr}");
    let restore = r["measurements"]["restore"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "restore")
        .unwrap()
        .clone();
    assert_eq!(restore["ok"], false);
    assert!(
        restore["detail"]
            .as_str()
            .unwrap()
            .contains("FAILED: Insufficient IAM permissions to restore"),
        "{restore}"
    );
    assert_eq!(left_in_aws(&t.db.rt, &t.moto), Vec::<String>::new());
    no_pending_effects(&t.dir.path().join("state"));

    let (backup, seen) = backup_stand_in(&t.moto, &t.source_arn, &t.point_arn, SNAPSHOT, None);
    let (code, stderr, r) = t.run(&backup, ", recovery_point: 'arn:aws:backup:nope'");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        r.to_string()
            .contains("recovery point arn:aws:backup:nope is not one of DB instance orders's"),
        "{r}"
    );
    assert!(seen.lock().unwrap().restores.is_empty());
}
