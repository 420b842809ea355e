//! The posture drill: are the backups themselves protected? It reads, per target kind, what
//! protects them (AWS Backup's vaults, recovery points and copy jobs; an RDS instance and its
//! snapshots; a pgBackRest repository through `pgbackrest info` and its configuration) and
//! hands the facts to [`crate::posture`], which judges each resource.
//!
//! Boundary: reading only; nothing is created or changed, so there is nothing to undo.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use firedrill_aws::{Aws, AwsError, Options};
use tokio::sync::watch;

use super::{Ran, RunError};
use crate::error::EnvError;
use crate::event::{Event, EventSink, Phase};
use crate::posture::{self, PostureResult, ResourcePosture, Retention};
use crate::process::{Tool, ToolError};
use crate::report::Measurements;
use crate::scenario::{AwsBackupSpec, AwsRdsSpec, PgbackrestSpec, Posture, PostureTarget};
use crate::systems::aws_rds::aws_err;

pub async fn run<'a>(
    target: &PostureTarget,
    p: &Posture,
    scenario_file: &Path,
    sink: &EventSink<'_>,
    mut cancel: watch::Receiver<bool>,
) -> Result<Ran<'a>, RunError> {
    sink.emit(Event::Phase(Phase::Setup));
    let now = SystemTime::now();
    // AWS calls are dropped on Ctrl-C; `pgbackrest` is killed by its tool.
    let result = match target {
        PostureTarget::AwsBackup(spec) => tokio::select! {
            r = aws_backup(spec, p, now) => r?,
            _ = cancel.wait_for(|c| *c) => return Err(RunError::AbortedInSetup),
        },
        PostureTarget::AwsRds { spec, instance } => tokio::select! {
            r = rds(spec, instance) => r?,
            _ = cancel.wait_for(|c| *c) => return Err(RunError::AbortedInSetup),
        },
        PostureTarget::Pgbackrest(spec) => pgbackrest(spec, scenario_file, &mut cancel).await?,
    };
    sink.emit(Event::Setup(result.source.clone()));
    sink.emit(Event::Phase(Phase::Verify));
    for r in &result.resources {
        for f in &r.findings {
            let line = format!("{}: {} ({})", r.resource, f.detail, f.check.name());
            sink.emit(if f.ok {
                Event::Verified(line)
            } else {
                Event::CheckFailed(line)
            });
        }
    }
    Ok(Ran {
        description: result.source.clone(),
        measurements: Measurements {
            posture: Some(result),
            ..Default::default()
        },
        steady: None,
        series: None,
        aborted: None,
        ledger_checked: false,
        teardown: super::nothing_to_tear_down(),
    })
}

async fn connect(region: &Option<String>, profile: &Option<String>, url: &Option<String>) -> Aws {
    Aws::connect(&Options {
        region: region.clone(),
        profile: profile.clone(),
        endpoint_url: url.clone(),
        max_attempts: None,
    })
    .await
}

/// AWS Backup: every vault's lock, each resource's recovery points across the vaults, and the
/// completed copy jobs of the window.
async fn aws_backup(
    spec: &AwsBackupSpec,
    p: &Posture,
    now: SystemTime,
) -> Result<PostureResult, RunError> {
    let aws = connect(&spec.region, &spec.profile, &spec.endpoint_url).await;
    let resources: Vec<String> = if spec.resources.is_empty() {
        let all = aws.protected_resources().await.map_err(aws_err)?;
        all.into_iter().map(|r| r.arn).collect()
    } else {
        spec.resources.clone()
    };
    if resources.is_empty() {
        return Err(RunError::Env(EnvError::Aws(AwsError::NotFound {
            what: "a protected resource".into(),
            action: "backup:ListProtectedResources".into(),
            message: format!("AWS Backup protects no resource in {}", aws.region),
        })));
    }
    let vaults = aws.backup_vaults().await.map_err(aws_err)?;
    let mut points = Vec::new();
    for v in &vaults {
        points.extend(aws.vault_points(&v.name, None).await.map_err(aws_err)?);
    }
    let copies = aws
        .completed_copies(now - p.window.get())
        .await
        .map_err(aws_err)?;
    let vaults: Vec<posture::Vault> = vaults
        .into_iter()
        .map(|v| posture::Vault {
            name: v.name,
            encryption_key: v.encryption_key,
            locked: v.locked,
            lock_date: v.lock_date,
            min_retention_days: v.min_retention_days,
            air_gapped: v.air_gapped,
        })
        .collect();
    let assessed = resources
        .iter()
        .map(|arn| {
            let mine: Vec<posture::Point> = points
                .iter()
                .filter(|pt| &pt.resource_arn == arn)
                .map(|pt| posture::Point {
                    arn: pt.arn.clone(),
                    vault: pt.vault.clone(),
                    status: pt.status.clone(),
                    encrypted: Some(pt.encrypted),
                    delete_after_days: pt.delete_after_days,
                })
                .collect();
            let copied: Vec<posture::Copy> = copies
                .iter()
                .filter(|c| &c.resource_arn == arn)
                .map(|c| posture::Copy {
                    destination_vault_arn: c.destination_vault_arn.clone(),
                })
                .collect();
            posture::assess_backup(arn, &aws.region, &mine, &vaults, &copied, now)
        })
        .collect();
    Ok(PostureResult {
        source: format!(
            "AWS Backup in {}: {} resource(s), {} vault(s), copies since {}",
            aws.region,
            resources.len(),
            vaults.len(),
            humantime::format_rfc3339_seconds(now - p.window.get())
        ),
        resources: assessed,
    })
}

/// One RDS instance: storage, snapshots, retention, deletion protection, replication.
async fn rds(spec: &AwsRdsSpec, instance: &str) -> Result<PostureResult, RunError> {
    let aws = connect(&spec.region, &spec.profile, &spec.endpoint_url).await;
    let i = aws.instance(instance).await.map_err(aws_err)?;
    let snapshots: Vec<(String, Option<bool>)> = aws
        .snapshots(Some(instance))
        .await
        .map_err(aws_err)?
        .into_iter()
        .map(|s| (s.id, s.encrypted))
        .collect();
    let assessed = posture::assess_rds(&posture::RdsFacts {
        instance,
        home_region: &aws.region,
        storage_encrypted: i.storage_encrypted,
        backup_retention_days: i.backup_retention_days,
        deletion_protection: i.deletion_protection,
        replications: &i.backup_replications,
        snapshots: &snapshots,
    });
    Ok(PostureResult {
        source: format!(
            "RDS instance {instance} in {} and its {} snapshot(s)",
            aws.region,
            snapshots.len()
        ),
        resources: vec![assessed],
    })
}

/// A pgBackRest repository: `pgbackrest info` says whether it is encrypted and what it holds;
/// the configuration file says how long full backups are kept.
async fn pgbackrest(
    spec: &PgbackrestSpec,
    scenario_file: &Path,
    cancel: &mut watch::Receiver<bool>,
) -> Result<PostureResult, RunError> {
    let program = spec
        .pgbackrest
        .clone()
        .or_else(|| std::env::var_os("FIREDRILL_PGBACKREST").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("pgbackrest"));
    let config = spec.config.as_ref().map(|c| {
        if c.is_relative() {
            scenario_file.parent().unwrap_or(Path::new(".")).join(c)
        } else {
            c.clone()
        }
    });
    let config_path = config
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/pgbackrest/pgbackrest.conf"));
    let text = std::fs::read_to_string(&config_path).map_err(|e| {
        RunError::Env(EnvError::Backup(format!(
            "cannot read the pgBackRest configuration {}: {e}",
            config_path.display()
        )))
    })?;
    let mut tool = Tool::new("pgbackrest info", &program)
        .as_user(crate::pg::binaries::run_as(spec.run_as.as_deref())?)
        .arg(format!("--stanza={}", spec.stanza))
        .arg(format!("--repo={}", spec.repo))
        .args(["--output=json", "info"]);
    if let Some(c) = &config {
        tool = tool.arg(format!("--config={}", c.display()));
    }
    let info = tool.run(cancel).await.map_err(|e| match e {
        ToolError::Cancelled => RunError::AbortedInSetup,
        ToolError::Env(e) => RunError::Env(e),
    })?;
    let (cipher, backups) = read_info(&info, &spec.stanza, spec.repo)
        .map_err(|e| RunError::Env(EnvError::Backup(e)))?;
    let retention = retention_of(&text, &spec.stanza, spec.repo);
    let resource = format!("{}/repo{}", spec.stanza, spec.repo);
    let assessed: ResourcePosture =
        posture::assess_pgbackrest(&resource, cipher.as_deref(), backups, &retention);
    Ok(PostureResult {
        source: format!(
            "pgBackRest stanza {} (repo{}, {}): {backups} backup(s)",
            spec.stanza,
            spec.repo,
            config_path.display()
        ),
        resources: vec![assessed],
    })
}

/// The repository's cipher and its backup count, from `pgbackrest info --output=json`.
fn read_info(json: &str, stanza: &str, repo: u16) -> Result<(Option<String>, u64), String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("pgbackrest info: {e}"))?;
    let entry = v
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == stanza))
        .ok_or_else(|| format!("pgBackRest has no stanza {stanza:?}"))?;
    let repo_entry = entry["repo"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["key"] == repo))
        .ok_or_else(|| format!("pgBackRest stanza {stanza:?} has no repo{repo}"))?;
    let code = repo_entry["status"]["code"].as_i64().unwrap_or(-1);
    // 2 is "no valid backups": a real answer about an empty repository, judged as such.
    if code != 0 && code != 2 {
        return Err(format!(
            "pgBackRest stanza {stanza:?} repo{repo}: {}",
            repo_entry["status"]["message"]
                .as_str()
                .unwrap_or("not usable")
        ));
    }
    let backups = entry["backup"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter(|b| b["database"]["repo-key"] == repo)
                .count() as u64
        })
        .unwrap_or(0);
    Ok((repo_entry["cipher"].as_str().map(str::to_owned), backups))
}

/// `repoN-retention-full(-type)` as pgBackRest resolves them: the stanza's section over
/// `[global]`, the last line of a section winning.
fn retention_of(conf: &str, stanza: &str, repo: u16) -> Retention {
    let value = |key: &str| -> Option<String> {
        let mut section = String::new();
        let (mut global, mut own) = (None, None);
        for line in conf.lines().map(str::trim) {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_owned();
                continue;
            }
            if let Some((k, v)) = line.split_once('=')
                && k.trim() == key
            {
                if section == "global" {
                    global = Some(v.trim().to_owned());
                } else if section == stanza {
                    own = Some(v.trim().to_owned());
                }
            }
        }
        own.or(global)
    };
    let full = value(&format!("repo{repo}-retention-full")).and_then(|v| v.parse::<u32>().ok());
    let time = value(&format!("repo{repo}-retention-full-type")).as_deref() == Some("time");
    match (full, time) {
        (None, _) => Retention::Unset,
        (Some(n), false) => Retention::Count(n),
        (Some(d), true) => Retention::Days(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stanza_section_overrides_global_retention() {
        let conf = "[global]\nrepo1-retention-full=2\n\n[main]\nrepo1-retention-full=40\n\
                    repo1-retention-full-type=time\n\n[other]\nrepo1-retention-full=9\n";
        assert_eq!(retention_of(conf, "main", 1), Retention::Days(40));
        assert_eq!(retention_of(conf, "x", 1), Retention::Count(2));
        assert_eq!(retention_of(conf, "main", 2), Retention::Unset);
    }
}
