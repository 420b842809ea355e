//! Proving and loading a backup that was taken (or picked): the backup's own check (the dump's
//! table of contents, pg_verifybackup and the WAL archive, pgbackrest verify), the restore into
//! the new sandbox, and pg_amcheck of the restored cluster. Taking the backup is [`super::backup`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::backup::*;
use super::{Finding, RECOVERY_DEADLINE, RestoreDrill, Taken, wal};
use crate::event::Event;
use crate::process::{Tool, ToolError};
use crate::scenario::Backup;
use crate::systems::sandbox::{SUPERUSER, Sandbox};

/// Checks the backup itself with its tool; records each result as a check.
pub(super) async fn verify(d: &mut RestoreDrill<'_, '_>, taken: &Taken) -> Result<(), Finding> {
    let r = d.cx.restore;
    let mut cancel = d.cx.cancel.clone();
    let started = Instant::now();
    match &r.backup {
        Backup::PgDump { .. } => {
            let out = Tool::new("pg_restore --list", d.bins.program("pg_restore"))
                .arg("--list")
                .arg(&taken.path)
                .run(&mut cancel)
                .await;
            match out {
                Ok(list) => {
                    let entries = list
                        .lines()
                        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
                        .count();
                    d.check(
                        "pg_restore --list",
                        true,
                        format!("table of contents readable, {entries} entries"),
                    );
                }
                Err(ToolError::Cancelled) => return Err(Finding::Interrupted),
                Err(ToolError::Env(e)) => d.check("pg_restore --list", false, e.to_string()),
            }
        }
        Backup::PgBasebackup { wal_archive, .. } => {
            let archive = match wal_archive {
                Some(a) => resolve(&d.cx.loaded.path, a),
                None => d.ws.archive(),
            };
            let out = Tool::new("pg_verifybackup", d.bins.program("pg_verifybackup"))
                .arg(&taken.path)
                .args(if wal_archive.is_some() {
                    vec![OsString::from("--wal-directory"), archive.clone().into()]
                } else {
                    Vec::new()
                })
                .current_dir(&d.ws.path)
                .run(&mut cancel)
                .await;
            match out {
                Ok(_) => d.check(
                    "pg_verifybackup",
                    true,
                    format!(
                        "every file matches backup_manifest ({:.1} s)",
                        started.elapsed().as_secs_f64()
                    ),
                ),
                Err(ToolError::Cancelled) => return Err(Finding::Interrupted),
                Err(ToolError::Env(e)) => d.check("pg_verifybackup", false, e.to_string()),
            }
            match wal::start_segment(&taken.path) {
                None => d.check(
                    "wal archive",
                    false,
                    "no START WAL LOCATION in backup_label".into(),
                ),
                Some(start) => match wal::gaps(&archive, &start) {
                    Ok((missing, last)) if missing.is_empty() => d.check(
                        "wal archive",
                        true,
                        format!(
                            "continuous from {start} to {}",
                            last.unwrap_or_else(|| start.clone())
                        ),
                    ),
                    Ok((missing, last)) => d.check(
                        "wal archive",
                        false,
                        format!(
                            "{} segment(s) missing between {start} and {}: {}",
                            missing.len(),
                            last.unwrap_or_default(),
                            missing
                                .iter()
                                .take(10)
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                    Err(e) => d.check(
                        "wal archive",
                        false,
                        format!("cannot read {}: {e}", archive.display()),
                    ),
                },
            }
        }
        Backup::Pgbackrest { stanza, .. } => {
            let conf = pgbackrest_conf_of(d, taken);
            let out = Tool::new("pgbackrest verify", "pgbackrest")
                .arg(format!("--config={}", conf.display()))
                .arg(format!("--stanza={stanza}"))
                .args(["--log-level-console=info", "verify"])
                .as_user(d.ws.run_as)
                .current_dir(&d.ws.path)
                .run(&mut cancel)
                .await;
            match out {
                Ok(text) => {
                    let errors: Vec<&str> = text
                        .lines()
                        .filter(|l| l.contains("ERROR") || l.contains("invalid"))
                        .collect();
                    if errors.is_empty() {
                        d.check(
                            "pgbackrest verify",
                            true,
                            format!(
                                "backups and archive verified ({:.1} s)",
                                started.elapsed().as_secs_f64()
                            ),
                        );
                    } else {
                        d.check("pgbackrest verify", false, errors.join("; "));
                    }
                }
                Err(ToolError::Cancelled) => return Err(Finding::Interrupted),
                Err(ToolError::Env(e)) => d.check("pgbackrest verify", false, e.to_string()),
            }
        }
        Backup::RdsSnapshot { .. } | Backup::RdsPointInTime {} | Backup::AwsBackup { .. } => {}
    }
    Ok(())
}

fn pgbackrest_conf_of(d: &RestoreDrill<'_, '_>, taken: &Taken) -> PathBuf {
    if source_sandbox(&d.driver).is_some() {
        pgbackrest_conf(&d.ws)
    } else {
        taken.path.clone()
    }
}

/// Restores into a new sandbox; returns the restored node once it accepts writes.
pub(super) async fn restore(d: &mut RestoreDrill<'_, '_>, taken: &Taken) -> Result<usize, Finding> {
    let r = d.cx.restore;
    let mut cancel = d.cx.cancel.clone();
    let mut sb = Sandbox::create(d.bins.clone(), d.restored_config.clone())?;
    let source_config = d.driver.client_config(Duration::from_secs(10));
    let db = super::database_of(&source_config);
    let idx = match &r.backup {
        Backup::PgDump { jobs, .. } => {
            let progress = |m: String| d.cx.sink.emit(Event::Setup(m));
            let init = sb.init_primary(&progress);
            tokio::select! {
                res = init => res?,
                _ = cancel.wait_for(|c| *c) => return Err(Finding::Interrupted),
            }
            let port = sb.nodes[0].port;
            d.restored = Some(sb);
            if db != "postgres" {
                let admin = d.restored.as_ref().expect("set above").connect(0).await?;
                admin
                    .batch_execute(&format!("create database {}", crate::checksum::ident(&db)))
                    .await?;
            }
            Tool::new("pg_restore", d.bins.program("pg_restore"))
                .args(["--no-owner", "--no-privileges", "--exit-on-error", "-j"])
                .arg(jobs.to_string())
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    SUPERUSER,
                    "-d",
                    &db,
                ])
                .arg(&taken.path)
                .run(&mut cancel)
                .await?;
            0
        }
        Backup::PgBasebackup { wal_archive, .. } => {
            let dir = sb.root().join("restored");
            let started = Instant::now();
            Tool::new("cp", "cp")
                .arg("-a")
                .arg(&taken.path)
                .arg(&dir)
                .run(&mut cancel)
                .await?;
            sb.chown_tree(&dir)?;
            d.cx.sink.emit(Event::Step(format!(
                "base backup copied in {:.1} s",
                started.elapsed().as_secs_f64()
            )));
            let archive = match wal_archive {
                Some(a) => resolve(&d.cx.loaded.path, a),
                None => d.ws.archive(),
            };
            std::fs::write(dir.join("recovery.signal"), b"")
                .map_err(|e| Finding::Failed(format!("cannot write recovery.signal: {e}")))?;
            sb.chown_tree(&dir.join("recovery.signal"))?;
            let mut conf = format!(
                "restore_command = 'cp \"{}/%f\" \"%p\"'\nrecovery_target_action = 'promote'\n",
                archive.display()
            );
            if let Some(t) = &taken.target_time {
                conf.push_str(&format!("recovery_target_time = '{t}'\n"));
            }
            let idx = sb.start_restored("restored", dir, &conf).await;
            d.restored = Some(sb);
            idx?
        }
        Backup::Pgbackrest { stanza, .. } => {
            let dir = sb.root().join("restored");
            std::fs::create_dir(&dir)
                .map_err(|e| Finding::Failed(format!("cannot create {}: {e}", dir.display())))?;
            sb.chown_tree(&dir)?;
            let conf = pgbackrest_conf_of(d, taken);
            let mut tool = Tool::new("pgbackrest restore", "pgbackrest")
                .arg(format!("--config={}", conf.display()))
                .arg(format!("--stanza={stanza}"))
                .arg(format!("--pg1-path={}", dir.display()))
                .arg("--archive-mode=off");
            if let Some(t) = &taken.target_time {
                tool = tool
                    .args(["--type=time", "--target-action=promote"])
                    .arg(format!("--target={t}"));
            }
            tool.arg("restore")
                .as_user(d.ws.run_as)
                .current_dir(&d.ws.path)
                .run(&mut cancel)
                .await?;
            let idx = sb.start_restored("restored", dir, "").await;
            d.restored = Some(sb);
            idx?
        }
        Backup::RdsSnapshot { .. } | Backup::RdsPointInTime {} | Backup::AwsBackup { .. } => {
            return Err(Finding::Failed("an AWS backup is restored by AWS".into()));
        }
    };
    if r.backup.point_in_time() {
        let sb = d.restored.as_mut().expect("set above");
        let wait = sb.wait_promoted(idx, RECOVERY_DEADLINE);
        tokio::select! {
            res = wait => res?,
            _ = cancel.wait_for(|c| *c) => return Err(Finding::Interrupted),
        }
    }
    Ok(idx)
}

/// `pg_amcheck` over every heap and B-tree index of the restored database.
pub(super) async fn amcheck(
    d: &mut RestoreDrill<'_, '_>,
    port: u16,
    db: &str,
) -> Result<String, Finding> {
    let mut cancel = d.cx.cancel.clone();
    let started = Instant::now();
    Tool::new("pg_amcheck", d.bins.program("pg_amcheck"))
        .args(["--install-missing", "--heapallindexed", "-h", "127.0.0.1"])
        .args(["-p", &port.to_string(), "-U", SUPERUSER, "-d", db])
        .run(&mut cancel)
        .await?;
    Ok(format!(
        "heap and B-tree indexes checked, no corruption ({:.1} s)",
        started.elapsed().as_secs_f64()
    ))
}
