//! Posture drills: are the backups themselves protected? RDS on moto (which implements storage
//! encryption, snapshot encryption, backup retention and deletion protection), AWS Backup's
//! vault locks on moto, AWS Backup's recovery points and copy jobs on the loopback stand-in
//! (moto has neither API; see [`crate::standin`]), and real pgBackRest repositories, one
//! encrypted and one not. Each test computes what it expects from what it set up or from the
//! files themselves, not from firedrill.

use std::path::Path;
use std::time::{Duration, SystemTime};

use firedrill::pg::binaries::{self, PgBinaries};
use firedrill::scenario::Replication;
use firedrill::systems::sandbox::{Sandbox, SandboxConfig};

use crate::standin::{Response, StandIn, epoch};

const ORDERS: &str = "arn:aws:rds:eu-west-1:123456789012:db:orders";
const BILLING: &str = "arn:aws:rds:eu-west-1:123456789012:db:billing";
const DAY: Duration = Duration::from_secs(86_400);

fn json_run(cmd: &mut std::process::Command) -> (i32, serde_json::Value, String) {
    let (code, stdout, stderr) = crate::run_to_end(cmd);
    let r: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (code, r, stderr)
}

/// A shipped scenario's text, its runbook path made absolute for a copy written elsewhere.
fn located(shipped: &str) -> String {
    shipped.replace(
        "../runbooks/",
        &format!("{}/", crate::repo("runbooks").display()),
    )
}

fn target<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no target {name}: {}", r["targets"]))
}

fn resource<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["measurements"]["posture"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["resource"] == name)
        .unwrap_or_else(|| panic!("no resource {name}: {}", r["measurements"]))
}

/// The shipped `rds-backup-posture.yaml` on moto: `orders` encrypted, kept 14 days and
/// protected passes; the same scenario on `legacy` (unencrypted storage and snapshot, 1-day
/// retention, no protection) misses all three, each named. The expectation comes from the
/// instances as created here.
#[test]
fn rds_posture_on_moto_names_each_unprotected_property() {
    let moto = firedrill_aws::moto::Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rds = aws_sdk_rds::Client::new(&moto.conf("eu-west-1"));
    for (id, protected) in [("orders", true), ("legacy", false)] {
        rt.block_on(
            rds.create_db_instance()
                .db_instance_identifier(id)
                .engine("postgres")
                .db_instance_class("db.t3.micro")
                .allocated_storage(20)
                .master_username("app")
                .master_user_password("not-a-real-password")
                .storage_encrypted(protected)
                .backup_retention_period(if protected { 14 } else { 1 })
                .deletion_protection(protected)
                .send(),
        )
        .unwrap();
        rt.block_on(
            rds.create_db_snapshot()
                .db_instance_identifier(id)
                .db_snapshot_identifier(format!("{id}-manual"))
                .send(),
        )
        .unwrap();
    }
    // What moto holds, read here: its snapshots of each instance (the manual one, and the
    // automated one moto takes at creation).
    let snapshots = |id: &str| -> Vec<String> {
        rt.block_on(
            rds.describe_db_snapshots()
                .db_instance_identifier(id)
                .send(),
        )
        .unwrap()
        .db_snapshots()
        .iter()
        .map(|s| s.db_snapshot_identifier().unwrap().to_owned())
        .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let shipped =
        std::fs::read_to_string(crate::repo("scenarios/rds-backup-posture.yaml")).unwrap();
    let run = |instance: &str| {
        let file = dir.path().join(format!("{instance}.yaml"));
        std::fs::write(
            &file,
            located(&shipped).replace("instance: orders", &format!("instance: {instance}")),
        )
        .unwrap();
        json_run(
            crate::firedrill_process()
                .args(["run", "--format", "json"])
                .arg(&file)
                .env("AWS_ENDPOINT_URL", moto.url())
                .envs(crate::aws::MOTO_CREDENTIALS),
        )
    };

    let (code, r, stderr) = run("orders");
    assert_eq!(code, 0, "{stderr}\n{r}");
    assert_eq!(r["drill"], "posture");
    let orders = resource(&r, "orders");
    assert_eq!(orders["encrypted"], true, "{orders}");
    assert_eq!(orders["retention_days"], 14.0);
    assert_eq!(orders["deletion_protection"], true);
    assert_eq!(
        orders["backups"],
        snapshots("orders").len(),
        "every snapshot judged"
    );
    let controls: Vec<&str> = r["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for id in ["A1.2", "CC6.1", "CC6.7"] {
        assert!(controls.contains(&id), "{controls:?}");
    }

    let (code, r, stderr) = run("legacy");
    assert_eq!(code, 1, "{stderr}\n{r}");
    for name in ["encrypted", "min_retention", "deletion_protection"] {
        let t = target(&r, name);
        assert_eq!(
            (t["met"].as_bool(), t["achieved"].as_f64()),
            (Some(false), Some(1.0)),
            "{t}"
        );
    }
    let text = r["measurements"]["posture"].to_string();
    let legacy = snapshots("legacy");
    assert!(legacy.contains(&"legacy-manual".to_owned()), "{legacy:?}");
    let plain = format!("{n} of {n} snapshots not encrypted", n = legacy.len());
    for said in [
        "storage not encrypted",
        plain.as_str(),
        "legacy-manual",
        "automated backups kept 1 days",
        "deletion protection off",
    ] {
        assert!(text.contains(said), "{said:?} not in {text}");
    }
    assert!(
        stderr.contains("legacy: deletion protection off (deletion_protection)"),
        "the finding is shown as it is found: {stderr}"
    );
}

/// moto implements vault locks, with AWS's rule that a compliance lock becomes unchangeable
/// only after `ChangeableForDays` (at least 3): neither a governance lock, nor a compliance
/// lock in its grace time, nor no lock is immutable today; the compliance one is from its lock
/// date on.
#[test]
fn vault_locks_read_from_moto_are_immutable_only_in_compliance_mode_past_the_grace_time() {
    let moto = firedrill_aws::moto::Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backup = aws_sdk_backup::Client::new(&moto.conf("eu-west-1"));
    for name in ["open", "governance", "compliance"] {
        rt.block_on(backup.create_backup_vault().backup_vault_name(name).send())
            .unwrap();
    }
    rt.block_on(
        backup
            .put_backup_vault_lock_configuration()
            .backup_vault_name("governance")
            .min_retention_days(7)
            .send(),
    )
    .unwrap();
    rt.block_on(
        backup
            .put_backup_vault_lock_configuration()
            .backup_vault_name("compliance")
            .min_retention_days(35)
            .max_retention_days(400)
            .changeable_for_days(3)
            .send(),
    )
    .unwrap();
    let aws = firedrill_aws::Aws::from_conf(&moto.conf("eu-west-1"));
    let vaults = rt.block_on(aws.backup_vaults()).unwrap();
    let vault = |name: &str| {
        let v = vaults.iter().find(|v| v.name == name).unwrap();
        firedrill::posture::Vault {
            name: v.name.clone(),
            encryption_key: v.encryption_key.clone(),
            locked: v.locked,
            lock_date: v.lock_date,
            min_retention_days: v.min_retention_days,
            air_gapped: v.air_gapped,
        }
    };
    let now = SystemTime::now();
    assert!(!vault("open").locked);
    assert!(vault("governance").locked && vault("governance").lock_date.is_none());
    let compliance = vault("compliance");
    assert_eq!(compliance.min_retention_days, Some(35));
    for v in ["open", "governance", "compliance"] {
        assert!(
            !vault(v).compliance_locked(now),
            "{v} is not immutable today"
        );
    }
    assert!(compliance.compliance_locked(now + 3 * DAY + Duration::from_secs(60)));
    assert!(!vault("governance").compliance_locked(now + 400 * DAY));
}

/// A stand-in for the AWS Backup calls a posture drill makes (`ListProtectedResources`,
/// `ListBackupVaults`, `ListRecoveryPointsByBackupVault`, `ListCopyJobs`), shaped as AWS's API
/// reference documents them; moto has the vaults but not the rest. Not the service: no
/// signature is checked. `orders` sits in a compliance-locked vault, encrypted, kept 400 days
/// and copied to eu-central-1; `billing` in an unlocked vault, one point unencrypted, kept 7
/// days, never copied.
fn posture_stand_in() -> StandIn {
    let now = SystemTime::now();
    let vault_arn = |region: &str, name: &str| {
        format!("arn:aws:backup:{region}:123456789012:backup-vault:{name}")
    };
    let vaults = serde_json::json!({"BackupVaultList": [
        {"BackupVaultName": "locked", "BackupVaultArn": vault_arn("eu-west-1", "locked"),
         "EncryptionKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1", "Locked": true,
         "MinRetentionDays": 35, "MaxRetentionDays": 400, "LockDate": epoch(now - 30 * DAY),
         "VaultType": "BACKUP_VAULT", "NumberOfRecoveryPoints": 2},
        {"BackupVaultName": "Default", "BackupVaultArn": vault_arn("eu-west-1", "Default"),
         "EncryptionKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/2",
         "VaultType": "BACKUP_VAULT", "NumberOfRecoveryPoints": 2}]});
    let point = |n: u32, resource: &str, vault: &str, encrypted: bool, days: i64| {
        serde_json::json!({
            "RecoveryPointArn": format!("arn:aws:backup:eu-west-1:123456789012:recovery-point:rp-{n}"),
            "BackupVaultName": vault, "BackupVaultArn": vault_arn("eu-west-1", vault),
            "ResourceArn": resource, "ResourceType": "RDS", "Status": "COMPLETED",
            "IsEncrypted": encrypted, "Lifecycle": {"DeleteAfterDays": days},
            "CreationDate": epoch(now - n * DAY)})
    };
    let locked = serde_json::json!({"RecoveryPoints": [
        point(1, ORDERS, "locked", true, 400), point(2, ORDERS, "locked", true, 400)]});
    let default = serde_json::json!({"RecoveryPoints": [
        point(3, BILLING, "Default", true, 7), point(4, BILLING, "Default", false, 7)]});
    let copies = serde_json::json!({"CopyJobs": [{
        "CopyJobId": "copy-1", "ResourceArn": ORDERS, "State": "COMPLETED",
        "SourceBackupVaultArn": vault_arn("eu-west-1", "locked"),
        "DestinationBackupVaultArn": vault_arn("eu-central-1", "dr"),
        "CreationDate": epoch(now - DAY)}]});
    let protected = serde_json::json!({"Results": [
        {"ResourceArn": ORDERS, "ResourceType": "RDS"},
        {"ResourceArn": BILLING, "ResourceType": "RDS"}]});
    StandIn::start(move |r| {
        if r.path.starts_with("/backup-vaults/locked/recovery-points") {
            Response::json(200, locked.clone())
        } else if r.path.starts_with("/backup-vaults/Default/recovery-points") {
            Response::json(200, default.clone())
        } else if r.path.starts_with("/backup-vaults") {
            Response::json(200, vaults.clone())
        } else if r.path.starts_with("/copy-jobs") {
            Response::json(200, copies.clone())
        } else if r.path.starts_with("/resources") {
            Response::json(200, protected.clone())
        } else {
            Response::error(404, "ResourceNotFoundException", "no such call here")
        }
    })
}

/// The shipped `aws-backup-posture.yaml` as it is, through the SDK's own
/// `AWS_ENDPOINT_URL_BACKUP`: `orders` meets every target, `billing` misses each. The signed
/// report goes to the S3 evidence store on moto (Object Lock), and the period summary read back
/// from the bucket lists `billing`'s findings with the criteria they evidence.
#[test]
fn aws_backup_posture_judges_each_resource_and_the_summary_lists_its_findings() {
    let server = posture_stand_in();
    let moto = firedrill_aws::moto::Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(
        firedrill_aws::Aws::from_conf(&moto.conf("us-east-1")).create_bucket("evidence", true),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let evidence = "s3://evidence/posture";
    let key = dir.path().join("key");
    let public = firedrill::signing::keygen(&key, "test").unwrap();
    let allowed = dir.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        firedrill::signing::allowed_signers_line("drills", &public),
    )
    .unwrap();
    let aws_env = [
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_ENDPOINT_URL_BACKUP", server.url.clone()),
        ("AWS_REGION", "us-east-1".into()),
    ];
    let (code, r, stderr) = json_run(
        crate::firedrill_process()
            .args(["run", "--format", "json", "--evidence", evidence])
            .arg("--sign-key")
            .arg(&key)
            .arg(crate::repo("scenarios/aws-backup-posture.yaml"))
            .envs(aws_env.clone())
            .envs(crate::aws::MOTO_CREDENTIALS),
    );
    assert_eq!(code, 1, "{stderr}\n{r}");
    let orders = resource(&r, ORDERS);
    assert_eq!(
        (
            &orders["encrypted"],
            &orders["immutable"],
            &orders["copies_in_other_regions"]
        ),
        (&true.into(), &true.into(), &1.into()),
        "{orders}"
    );
    assert_eq!(orders["retention_days"], 400.0);
    let billing = resource(&r, BILLING);
    assert_eq!(
        (
            &billing["encrypted"],
            &billing["immutable"],
            &billing["copies_in_other_regions"]
        ),
        (&false.into(), &false.into(), &0.into()),
        "{billing}"
    );
    // One resource short of each target: billing.
    for name in [
        "encrypted",
        "immutable",
        "min_retention",
        "copies_in_other_region",
    ] {
        let t = target(&r, name);
        assert_eq!(
            (t["met"].as_bool(), t["achieved"].as_f64()),
            (Some(false), Some(1.0)),
            "{t}"
        );
    }
    assert_eq!(target(&r, "min_retention")["limit"], 35.0);

    let out = dir.path().join("summary");
    let today = humantime::format_rfc3339(SystemTime::now()).to_string()[..10].to_owned();
    let o = crate::firedrill_process()
        .args(["evidence", evidence, "--allowed-signers"])
        .arg(&allowed)
        .envs(aws_env)
        .envs(crate::aws::MOTO_CREDENTIALS)
        .args(["--from", &today, "--to", &today])
        .args(["--expect", "posture=monthly", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    // Signatures, chain and bucket locks hold; the drill of today covers today; a failed
    // posture drill is evidence, not a missing one.
    assert_eq!(
        o.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("0 verification problem(s)"), "{text}");
    assert!(
        text.contains(&format!(
            "SHORT    {BILLING} encrypted: 1 of 2 recovery points not encrypted"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "SHORT    {BILLING} immutable: vault Default: no vault lock (A1.2;"
        )),
        "{text}"
    );
    assert!(!text.contains(&format!("SHORT    {ORDERS}")), "{text}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## Backup posture, per resource"), "{md}");
    assert!(
        md.contains("| copied to eu-central-1 | A1.2 |"),
        "orders' copy is listed as ok: {md}"
    );
}

/// `pgbackrest` run as PostgreSQL's user (the repository's owner), as the drill runs it.
fn pgbackrest(conf: &Path, args: &[&str]) {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("pgbackrest");
    cmd.arg(format!("--config={}", conf.display())).args(args);
    if let Some((uid, gid)) = binaries::run_as(None).unwrap() {
        cmd.uid(uid).gid(gid);
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "pgbackrest {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Two real pgBackRest repositories of one stanza: repo1 unencrypted with a retention counted
/// in backups, repo2 encrypted (aes-256-cbc) keeping full backups 40 days. Whether each is
/// encrypted is read here from the repository's own `backup.info` (ciphertext starts with
/// OpenSSL's `Salted__`); the shipped scenario passes on repo2 and misses both targets on
/// repo1; the passphrase appears nowhere.
#[test]
fn pgbackrest_posture_tells_an_encrypted_repository_from_a_plain_one() {
    let _x = crate::shared();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let run_as = binaries::run_as(None).unwrap();
    let conf = dir.path().join("pgbackrest.conf");
    let pass = "posture-test-passphrase-7f3a";
    let settings = [
        ("archive_mode".to_owned(), "on".to_owned()),
        (
            "archive_command".to_owned(),
            format!(
                "pgbackrest --config={} --stanza=main archive-push %p",
                conf.display()
            ),
        ),
    ]
    .into_iter()
    .collect();
    let sb = rt
        .block_on(Sandbox::build(
            PgBinaries::locate(None).unwrap(),
            SandboxConfig {
                seed_sql: Vec::new(),
                wal_archive: false,
                zones: None,
                standbys: 0,
                replication: Replication::Async,
                settings,
                work_dir: Some(dir.path().to_owned()),
                run_as,
                journal: Default::default(),
                templates: crate::templates(),
            },
            &|_| {},
        ))
        .unwrap();
    let d = dir.path().display();
    std::fs::write(
        &conf,
        format!(
            "[global]\nrepo1-path={d}/repo1\nrepo1-retention-full=2\n\
             repo2-path={d}/repo2\nrepo2-cipher-type=aes-256-cbc\nrepo2-cipher-pass={pass}\n\
             repo2-retention-full=40\nrepo2-retention-full-type=time\n\
             log-path={d}\nlock-path={d}/lock\nlog-level-console=warn\nlog-level-file=off\n\
             start-fast=y\n\n[main]\npg1-path={}\npg1-port={}\npg1-socket-path={}\n\
             pg1-user={}\n",
            sb.nodes[0].data_dir.display(),
            sb.nodes[0].port,
            sb.socket_dir().display(),
            firedrill::systems::sandbox::SUPERUSER
        ),
    )
    .unwrap();
    for owned in ["repo1", "repo2", "lock"] {
        std::fs::create_dir(dir.path().join(owned)).unwrap();
    }
    if let Some((uid, gid)) = run_as {
        for owned in [
            conf.clone(),
            dir.path().join("repo1"),
            dir.path().join("repo2"),
            dir.path().join("lock"),
        ] {
            std::os::unix::fs::chown(&owned, Some(uid), Some(gid)).unwrap();
        }
    }
    pgbackrest(&conf, &["--stanza=main", "stanza-create"]);
    for repo in ["--repo=1", "--repo=2"] {
        pgbackrest(&conf, &["--stanza=main", repo, "--type=full", "backup"]);
    }
    let info = |repo: u8| {
        std::fs::read(
            dir.path()
                .join(format!("repo{repo}/backup/main/backup.info")),
        )
        .unwrap()
    };
    assert!(info(1).starts_with(b"[backrest]"), "repo1 is plain text");
    assert!(info(2).starts_with(b"Salted__"), "repo2 is ciphertext");

    let shipped =
        std::fs::read_to_string(crate::repo("scenarios/pgbackrest-posture.yaml")).unwrap();
    let run = |repo: u8| {
        let file = dir.path().join(format!("repo{repo}.yaml"));
        std::fs::write(
            &file,
            located(&shipped)
                .replace(
                    "/etc/pgbackrest/pgbackrest.conf",
                    &conf.display().to_string(),
                )
                .replace("repo: 2", &format!("repo: {repo}")),
        )
        .unwrap();
        json_run(
            crate::firedrill_process()
                .args(["run", "--format", "json"])
                .arg(&file),
        )
    };
    let (code, r, stderr) = run(2);
    assert_eq!(code, 0, "{stderr}\n{r}");
    let repo2 = resource(&r, "main/repo2");
    assert_eq!(repo2["encrypted"], true, "{repo2}");
    assert_eq!(repo2["retention_days"], 40.0);
    assert_eq!(repo2["backups"], 1);
    let (code, r, stderr) = run(1);
    assert_eq!(code, 1, "{stderr}\n{r}");
    let repo1 = resource(&r, "main/repo1");
    assert_eq!(repo1["encrypted"], false, "{repo1}");
    assert!(
        repo1
            .to_string()
            .contains("retention counted in backups (2 full backups)"),
        "{repo1}"
    );
    for name in ["encrypted", "min_retention"] {
        assert_eq!(target(&r, name)["met"], false);
    }
    assert!(!r.to_string().contains(pass) && !stderr.contains(pass));
    rt.block_on(async {
        let mut sb = sb;
        sb.shutdown(false).await;
    });
}
