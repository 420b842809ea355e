//! The backup kinds of a restore drill, each driven through its own tools: `pg_dump` and
//! `pg_restore`; `pg_basebackup`, `pg_verifybackup` and a WAL archive replayed by PostgreSQL;
//! pgBackRest's `stanza-create`, `backup`, `verify` and `restore`. Also the preflight checks
//! that refuse a drill whose backup is missing before anything is built.
//!
//! Boundary: running the tools and reading their results. What is compared afterwards is the
//! drill's business ([`super`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio_postgres::Config;
use tokio_postgres::config::{Host, SslMode};

use super::super::RunError;
use super::{ARCHIVE_DEADLINE, Finding, RestoreDrill, Taken, Workspace, Writers, connect, size_of};
use crate::error::EnvError;
use crate::event::Event;
use crate::ledger::WorkloadLog;
use crate::measure::ms;
use crate::process::{Tool, ToolError};
use crate::scenario::{Backup, DbTarget, DumpFormat, RecoveryTarget, Restore, RestoreSource};
use crate::systems::Driver;
use crate::systems::sandbox::{SUPERUSER, Sandbox};

/// libpq's environment for a connection, so that programs such as `pg_dump` reach the same
/// server as firedrill without the password ever being on a command line.
pub(super) fn libpq_env(c: &Config) -> Vec<(&'static str, OsString)> {
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = c.get_ports().iter().map(|p| p.to_string()).collect();
    let mut env: Vec<(&'static str, OsString)> = vec![
        ("PGHOST", hosts.join(",").into()),
        ("PGPORT", ports.join(",").into()),
        ("PGCONNECT_TIMEOUT", "10".into()),
        ("PGTARGETSESSIONATTRS", "read-write".into()),
        ("PGDATABASE", super::database_of(c).into()),
    ];
    if let Some(u) = c.get_user() {
        env.push(("PGUSER", u.into()));
    }
    if let Some(p) = c.get_password() {
        env.push(("PGPASSWORD", String::from_utf8_lossy(p).into_owned().into()));
    }
    env.push((
        "PGSSLMODE",
        match c.get_ssl_mode() {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            _ => "prefer",
        }
        .into(),
    ));
    env
}

pub(super) fn with_env(mut t: Tool, env: &[(&'static str, OsString)]) -> Tool {
    for (k, v) in env {
        t = t.env(k, v);
    }
    t
}

/// A path from the scenario, relative to the scenario file's directory.
pub(super) fn resolve(scenario_file: &Path, p: &Path) -> PathBuf {
    scenario_file.parent().unwrap_or(Path::new(".")).join(p)
}

/// Checks that need no target: the named backup exists, and the recovery target lies in its
/// range. A failure is one clear error, before anything is built or changed.
pub(super) async fn preflight(
    r: &Restore,
    scenario_file: &Path,
    sandbox_source: bool,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(), RunError> {
    let missing = |what: &str, p: &Path| {
        RunError::Env(EnvError::Backup(format!(
            "{what} {} does not exist",
            p.display()
        )))
    };
    match &r.backup {
        Backup::PgDump { path: Some(p), .. } => {
            let p = resolve(scenario_file, p);
            if !p.exists() {
                return Err(missing("dump", &p));
            }
        }
        Backup::PgBasebackup {
            path: Some(p),
            wal_archive,
        } => {
            let p = resolve(scenario_file, p);
            if !p.join("backup_label").is_file() {
                return Err(if p.exists() {
                    RunError::Env(EnvError::Backup(format!(
                        "{} is not a plain-format base backup (no backup_label)",
                        p.display()
                    )))
                } else {
                    missing("base backup", &p)
                });
            }
            if let Some(a) = wal_archive {
                let a = resolve(scenario_file, a);
                if !a.is_dir() {
                    return Err(missing("WAL archive", &a));
                }
            }
            if let RecoveryTarget::Time { at } = &r.recovery_target
                && let Some(start) = backup_start_time(&p)
            {
                let t = humantime::parse_rfc3339_weak(at).map_err(|e| {
                    RunError::Env(EnvError::Backup(format!("recovery target {at}: {e}")))
                })?;
                if t < start {
                    return Err(RunError::Env(EnvError::Backup(format!(
                        "recovery target {at} is before the base backup started ({}): a \
                         backup cannot be rolled back, only forward",
                        humantime::format_rfc3339_seconds(start)
                    ))));
                }
            }
        }
        Backup::Pgbackrest {
            stanza,
            config: Some(c),
        } if !sandbox_source => {
            let c = resolve(scenario_file, c);
            if !c.is_file() {
                return Err(missing("pgBackRest configuration", &c));
            }
            let info = Tool::new("pgbackrest info", "pgbackrest")
                .arg(format!("--config={}", c.display()))
                .arg(format!("--stanza={stanza}"))
                .args(["--output=json", "info"])
                .run(cancel)
                .await
                .map_err(|e| match e {
                    ToolError::Cancelled => RunError::AbortedInSetup,
                    ToolError::Env(e) => RunError::Env(e),
                })?;
            pgbackrest_range(&info, stanza, &r.recovery_target)
                .map_err(|e| RunError::Env(EnvError::Backup(e)))?;
        }
        // Nothing to look at before the drill: the drill takes it, or AWS holds it.
        Backup::PgDump { .. }
        | Backup::PgBasebackup { .. }
        | Backup::Pgbackrest { .. }
        | Backup::RdsSnapshot { .. }
        | Backup::RdsPointInTime {}
        | Backup::AwsBackup { .. } => {}
    }
    if let RecoveryTarget::Time { at } = &r.recovery_target
        && let Ok(t) = humantime::parse_rfc3339_weak(at)
        && t > SystemTime::now()
    {
        return Err(RunError::Env(EnvError::Backup(format!(
            "recovery target {at} is in the future"
        ))));
    }
    Ok(())
}

/// `START TIME: 2026-11-23 10:42:40 UTC` from a base backup's `backup_label`.
fn backup_start_time(dir: &Path) -> Option<SystemTime> {
    let label = std::fs::read_to_string(dir.join("backup_label")).ok()?;
    let line = label.lines().find(|l| l.starts_with("START TIME:"))?;
    let text = line["START TIME:".len()..].trim().trim_end_matches(" UTC");
    humantime::parse_rfc3339_weak(text).ok()
}

/// The stanza exists and holds a backup; a time target lies between its oldest backup's end
/// and now.
fn pgbackrest_range(info_json: &str, stanza: &str, target: &RecoveryTarget) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_str(info_json).map_err(|e| format!("pgbackrest info: {e}"))?;
    let entry = v
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == stanza))
        .ok_or_else(|| format!("pgBackRest has no stanza {stanza:?}"))?;
    let code = entry["status"]["code"].as_i64().unwrap_or(-1);
    if code != 0 {
        return Err(format!(
            "pgBackRest stanza {stanza:?}: {}",
            entry["status"]["message"].as_str().unwrap_or("not usable")
        ));
    }
    let stops: Vec<i64> = entry["backup"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|b| b["timestamp"]["stop"].as_i64())
                .collect()
        })
        .unwrap_or_default();
    let Some(&oldest) = stops.iter().min() else {
        return Err(format!("pgBackRest stanza {stanza:?} holds no backup"));
    };
    if let RecoveryTarget::Time { at } = target
        && let Ok(t) = humantime::parse_rfc3339_weak(at)
    {
        let secs = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if secs < oldest {
            return Err(format!(
                "recovery target {at} is before the end of the oldest backup of stanza \
                 {stanza:?} ({})",
                humantime::format_rfc3339_seconds(
                    SystemTime::UNIX_EPOCH + Duration::from_secs(oldest as u64)
                )
            ));
        }
    }
    Ok(())
}

pub(super) fn pgbackrest_conf(ws: &Workspace) -> PathBuf {
    ws.path.join("pgbackrest.conf")
}

/// The target as the drill builds it: a sandbox source archives its WAL for the physical kinds.
pub(super) fn source_target(source: &RestoreSource, r: &Restore, ws: &Workspace) -> DbTarget {
    let mut t = source.target();
    if let DbTarget::Sandbox(spec) = &mut t {
        let command = match &r.backup {
            Backup::PgDump { .. } => None,
            Backup::PgBasebackup { .. } => Some(format!(
                "test ! -f '{a}/%f' && cp '%p' '{a}/%f'",
                a = ws.archive().display()
            )),
            Backup::Pgbackrest { stanza, .. } => Some(format!(
                "pgbackrest --config='{}' --stanza={stanza} archive-push '%p'",
                pgbackrest_conf(ws).display()
            )),
            // Restored by AWS (`restore::aws`); the source is not a sandbox.
            Backup::RdsSnapshot { .. } | Backup::RdsPointInTime {} | Backup::AwsBackup { .. } => {
                None
            }
        };
        if let Some(command) = command {
            spec.settings.insert("archive_mode".into(), "on".into());
            spec.settings.insert("archive_command".into(), command);
        }
    }
    t
}

pub(super) fn source_sandbox(driver: &Driver) -> Option<&Sandbox> {
    match driver {
        Driver::Sandbox(sb) => Some(sb),
        Driver::Existing(_) | Driver::Aws(_) | Driver::Patroni(_) => None,
    }
}

pub(super) async fn pgbench_init(
    d: &mut RestoreDrill<'_, '_>,
    source: &Config,
    scale: u32,
) -> Result<(), Finding> {
    let mut cancel = d.cx.cancel.clone();
    with_env(
        Tool::new("pgbench -i", d.bins.program("pgbench")),
        &libpq_env(source),
    )
    .args(["-i", "-q", "-s", &scale.to_string()])
    .run(&mut cancel)
    .await?;
    Ok(())
}

/// Takes the backup (or finds the existing one), with the workload writing meanwhile; returns
/// it with the workload's log once the writers stopped.
pub(super) async fn take(
    d: &mut RestoreDrill<'_, '_>,
    source: &Config,
    writers: Option<Writers>,
) -> Result<(Taken, Option<WorkloadLog>), Finding> {
    let r = d.cx.restore;
    let scenario_file = d.cx.loaded.path.clone();
    let t0 = d.cx.sink.t0;
    let mut cancel = d.cx.cancel.clone();
    let env = libpq_env(source);
    let started = t0.elapsed();
    let result = match &r.backup {
        Backup::PgDump { path: Some(p), .. } => {
            let path = resolve(&scenario_file, p);
            let point = dump_created_at(&d.bins, &path, &mut cancel).await;
            Ok(Taken {
                source: path.display().to_string(),
                bytes: Some(size_of(&path)),
                path,
                point,
                point_on_clock: None,
                target_time: None,
                snapshot: None,
            })
        }
        Backup::PgDump { format, jobs, .. } => {
            let snap = connect(source).await.map_err(Finding::Failed)?;
            snap.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?;
            let lo = t0.elapsed();
            let row = snap
                .query_one(
                    &format!(
                        "select pg_export_snapshot(), {}",
                        super::utc_rfc3339("clock_timestamp()")
                    ),
                    &[],
                )
                .await?;
            let hi = t0.elapsed();
            let (id, point): (String, String) = (row.get(0), row.get(1));
            let (path, fmt) = match format {
                DumpFormat::Custom => (d.ws.path.join("dump.custom"), "c"),
                DumpFormat::Directory => (d.ws.path.join("dump.dir"), "d"),
            };
            let mut tool = with_env(Tool::new("pg_dump", d.bins.program("pg_dump")), &env)
                .args(["-F", fmt, "--no-sync", "--snapshot", &id, "-f"])
                .arg(&path);
            if *format == DumpFormat::Directory {
                tool = tool.args(["-j", &jobs.to_string()]);
            }
            tool.run(&mut cancel).await?;
            Ok(Taken {
                source: "pg_dump of the source".into(),
                bytes: Some(size_of(&path)),
                path,
                point: Some(point),
                point_on_clock: Some((lo, hi)),
                target_time: None,
                snapshot: Some(snap),
            })
        }
        Backup::PgBasebackup { path: Some(p), .. } => {
            let path = resolve(&scenario_file, p);
            Ok(Taken {
                source: path.display().to_string(),
                bytes: Some(size_of(&path)),
                path,
                point: target_time_point(&r.recovery_target),
                point_on_clock: None,
                target_time: target_time_sql(&r.recovery_target),
                snapshot: None,
            })
        }
        Backup::PgBasebackup { .. } => {
            let path = d.ws.path.join("base");
            with_env(
                Tool::new("pg_basebackup", d.bins.program("pg_basebackup")),
                &env,
            )
            .args(["-X", "stream", "-c", "fast", "--no-sync", "-D"])
            .arg(&path)
            .as_user(d.ws.run_as)
            .current_dir(&d.ws.path)
            .run(&mut cancel)
            .await?;
            Ok(Taken {
                source: "pg_basebackup of the source, WAL archived by cp".into(),
                bytes: Some(size_of(&path)),
                path,
                point: None,
                point_on_clock: None,
                target_time: None,
                snapshot: None,
            })
        }
        Backup::Pgbackrest { stanza, config } => match source_sandbox(&d.driver) {
            Some(sb) => {
                let primary = sb.primary().unwrap_or(0);
                let conf = pgbackrest_conf(&d.ws);
                let text = format!(
                    "[global]\nrepo1-path={ws}/repo\nlog-path={ws}/log\nlock-path={ws}/lock\n\
                     spool-path={ws}/spool\nlog-level-console=warn\nlog-level-file=off\n\
                     start-fast=y\n\n[{stanza}]\npg1-path={pgdata}\npg1-port={port}\n\
                     pg1-socket-path={sock}\npg1-user={SUPERUSER}\n",
                    ws = d.ws.path.display(),
                    pgdata = sb.nodes[primary].data_dir.display(),
                    port = sb.nodes[primary].port,
                    sock = sb.socket_dir().display(),
                );
                std::fs::write(&conf, text).map_err(|e| {
                    Finding::Failed(format!("cannot write {}: {e}", conf.display()))
                })?;
                d.ws.chown(&conf)?;
                for step in [&["stanza-create"][..], &["--type=full", "backup"][..]] {
                    Tool::new(format!("pgbackrest {}", step.join(" ")), "pgbackrest")
                        .arg(format!("--config={}", conf.display()))
                        .arg(format!("--stanza={stanza}"))
                        .args(step)
                        .as_user(d.ws.run_as)
                        .current_dir(&d.ws.path)
                        .run(&mut cancel)
                        .await?;
                }
                let repo = d.ws.path.join("repo");
                Ok(Taken {
                    source: format!("pgBackRest stanza {stanza} (temporary repository)"),
                    bytes: Some(size_of(&repo.join("backup"))),
                    path: repo,
                    point: None,
                    point_on_clock: None,
                    target_time: None,
                    snapshot: None,
                })
            }
            None => {
                let conf = resolve(&scenario_file, config.as_deref().unwrap_or(Path::new("")));
                Ok(Taken {
                    source: format!("pgBackRest stanza {stanza} ({})", conf.display()),
                    bytes: None,
                    path: conf,
                    point: target_time_point(&r.recovery_target),
                    point_on_clock: None,
                    target_time: target_time_sql(&r.recovery_target),
                    snapshot: None,
                })
            }
        },
        Backup::RdsSnapshot { .. } | Backup::RdsPointInTime {} | Backup::AwsBackup { .. } => {
            Err(Finding::Failed("an AWS backup is taken by AWS".into()))
        }
    };
    let mut taken = match result {
        Ok(t) => t,
        Err(e) => {
            if let Some(w) = writers {
                w.stop(d.cx.sink).await;
            }
            return Err(e);
        }
    };
    let backup_end = (t0.elapsed(), SystemTime::now());
    if r.backup.takes(source_sandbox(&d.driver).is_some()) {
        d.f.result.backup_ms = Some(ms(backup_end.0 - started));
    }
    d.cx.sink.emit(Event::Step(format!(
        "backup {} ({}) in {:.1} s",
        match taken.bytes {
            Some(b) => format!("{:.1} MB", b as f64 / 1e6),
            None => "size unknown".into(),
        },
        taken.source,
        ms(backup_end.0 - started) / 1000.0
    )));

    // Physical backups firedrill took: write on past the backup, then close the archive.
    let mut log = None;
    if r.backup.point_in_time() && r.backup.takes(source_sandbox(&d.driver).is_some()) {
        if let Some(w) = writers {
            let until = Instant::now() + r.write_after_backup.get();
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = cancel.wait_for(|c| *c) => {}
            }
            let (l, rate) = w.stop(d.cx.sink).await;
            d.f.m.workload_writes_per_s = Some(rate);
            log = Some(l);
            if *cancel.borrow() {
                return Err(Finding::Interrupted);
            }
        }
        let switched = close_archive(source, t0, &mut cancel).await?;
        match &r.recovery_target {
            RecoveryTarget::AfterBackup { offset } => {
                let at = backup_end.0 + offset.get();
                taken.point_on_clock = Some((at, at));
                let wall = backup_end.1 + offset.get();
                taken.point = Some(humantime::format_rfc3339_micros(wall).to_string());
                taken.target_time = Some(sql_time(wall));
            }
            RecoveryTarget::Latest | RecoveryTarget::Time { .. } => {
                // Everything the writers were told was written happened before the switch.
                taken.point_on_clock = Some((switched, switched));
            }
        }
    } else if let Some(w) = writers {
        let (l, rate) = w.stop(d.cx.sink).await;
        d.f.m.workload_writes_per_s = Some(rate);
        log = Some(l);
    }
    Ok((taken, log))
}

/// Switches to a new WAL segment and waits until the archiver has it: the archive then holds
/// every write made so far. Returns the drill-clock instant of the switch.
async fn close_archive(
    source: &Config,
    t0: Instant,
    cancel: &mut watch::Receiver<bool>,
) -> Result<Duration, Finding> {
    let c = connect(source).await.map_err(Finding::Failed)?;
    let switched = t0.elapsed();
    let seg: String = c
        .query_one("select pg_walfile_name(pg_switch_wal())", &[])
        .await?
        .get(0);
    let deadline = Instant::now() + ARCHIVE_DEADLINE;
    loop {
        let row = c
            .query_one(
                "select coalesce(last_archived_wal, ''), coalesce(last_failed_wal, ''), \
                 failed_count from pg_stat_archiver",
                &[],
            )
            .await?;
        let (last, failed): (String, String) = (row.get(0), row.get(1));
        // The newest archived file may be a backup history file (`SEGMENT.OFFSET.backup`),
        // which the archiver takes after the segment it names (it archives in name order).
        if last.get(8..24).is_some_and(|l| l >= &seg[8..]) {
            break;
        }
        if Instant::now() > deadline {
            return Err(Finding::Failed(format!(
                "WAL segment {seg} not archived within {}s (last archived {last:?}, last \
                 failed {failed:?})",
                ARCHIVE_DEADLINE.as_secs()
            )));
        }
        if *cancel.borrow() {
            return Err(Finding::Interrupted);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(switched)
}

pub(super) fn target_time_point(t: &RecoveryTarget) -> Option<String> {
    match t {
        RecoveryTarget::Time { at } => Some(at.clone()),
        RecoveryTarget::Latest | RecoveryTarget::AfterBackup { .. } => None,
    }
}

pub(super) fn target_time_sql(t: &RecoveryTarget) -> Option<String> {
    match t {
        RecoveryTarget::Time { at } => humantime::parse_rfc3339_weak(at).ok().map(sql_time),
        RecoveryTarget::Latest | RecoveryTarget::AfterBackup { .. } => None,
    }
}

/// A time as PostgreSQL and pgBackRest read it: `2026-11-23 10:42:40.123456+00`.
pub(super) fn sql_time(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_micros(t).to_string();
    format!("{}+00", s.trim_end_matches('Z').replacen('T', " ", 1))
}

/// `;     Archive created at 2026-11-23 10:11:12 UTC` from `pg_restore --list`.
async fn dump_created_at(
    bins: &crate::pg::binaries::PgBinaries,
    path: &Path,
    cancel: &mut watch::Receiver<bool>,
) -> Option<String> {
    let list = Tool::new("pg_restore --list", bins.program("pg_restore"))
        .arg("--list")
        .arg(path)
        .run(cancel)
        .await
        .ok()?;
    let line = list.lines().find(|l| l.contains("Archive created at"))?;
    let text = line.split("Archive created at").nth(1)?.trim();
    let text = text.trim_end_matches(" UTC");
    let t = humantime::parse_rfc3339_weak(text).ok()?;
    Some(humantime::format_rfc3339_seconds(t).to_string())
}
