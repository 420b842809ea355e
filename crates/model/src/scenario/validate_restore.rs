//! Semantic checks on a restore drill (`restore:`), pure like the rest of validation: which
//! backup kinds fit which target, which recovery targets a backup kind can reach, and whether
//! the checksums a scenario asks for can be exact.

use super::model::*;
use super::problem::{Problem, problem};
use super::restore::*;

pub(super) fn check(s: &Scenario, r: &Restore, out: &mut Vec<Problem>) {
    let sandbox = matches!(s.target, Target::PostgresSandbox(_));
    let aws = matches!(s.target, Target::AwsRds(_));
    if aws != r.backup.on_aws() {
        out.push(problem(
            "restore.backup.type",
            if aws {
                format!(
                    "`{}` restores a PostgreSQL firedrill reaches itself; an `aws-rds` target \
                     restores with `rds-snapshot`, `rds-point-in-time` or `aws-backup`",
                    r.backup.kind()
                )
            } else {
                format!("`{}` needs an `aws-rds` target", r.backup.kind())
            },
        ));
    }
    if r.backup.on_aws() {
        check_aws(s, r, out);
    } else if r.instance.is_some() {
        out.push(problem(
            "restore.instance",
            "the temporary instance belongs to AWS backup kinds; a local restore uses \
             `restore.sandbox`",
        ));
    }
    if let Target::PostgresSandbox(spec) = &s.target
        && spec.standbys > 8
    {
        out.push(problem("target.standbys", "a sandbox has 0 to 8 standbys"));
    }

    match &r.backup {
        Backup::PgDump { jobs, path, .. } => {
            if *jobs == 0 || *jobs > 64 {
                out.push(problem("restore.backup.jobs", "must be between 1 and 64"));
            }
            if sandbox && path.is_some() {
                out.push(problem(
                    "restore.backup.path",
                    "an existing dump belongs to a `postgres` target; on a sandbox firedrill \
                     takes the dump of the data it seeds",
                ));
            }
        }
        Backup::PgBasebackup { path, wal_archive } => {
            if sandbox && (path.is_some() || wal_archive.is_some()) {
                out.push(problem(
                    if path.is_some() {
                        "restore.backup.path"
                    } else {
                        "restore.backup.wal_archive"
                    },
                    "on a sandbox firedrill takes the base backup and keeps the WAL archive \
                     itself; an existing backup belongs to a `postgres` target",
                ));
            }
            if !sandbox && path.is_none() {
                out.push(problem(
                    "restore.backup.path",
                    "for a `postgres` target give the base backup directory to restore \
                     (firedrill does not reconfigure an existing server's WAL archiving)",
                ));
            }
        }
        Backup::Pgbackrest { stanza, config } => {
            if stanza.is_empty()
                || !stanza
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                out.push(problem(
                    "restore.backup.stanza",
                    "a stanza name uses letters, digits, `-`, `_` and `.`",
                ));
            }
            if sandbox && config.is_some() {
                out.push(problem(
                    "restore.backup.config",
                    "on a sandbox firedrill writes the pgBackRest configuration itself",
                ));
            }
            if !sandbox && config.is_none() {
                out.push(problem(
                    "restore.backup.config",
                    "for a `postgres` target name the pgBackRest configuration of its repository",
                ));
            }
        }
        Backup::RdsSnapshot { .. } | Backup::RdsPointInTime {} | Backup::AwsBackup { .. } => {}
    }

    // An AWS restore's recovery target is checked by `check_aws`, with its other rules.
    if !r.backup.on_aws() {
        match &r.recovery_target {
            RecoveryTarget::Latest => {}
            RecoveryTarget::Time { at } => {
                if !r.backup.point_in_time() {
                    out.push(problem(
                        "restore.recovery_target.type",
                        "a dump restores to the instant it was taken; a point in time needs \
                     pg-basebackup or pgbackrest",
                    ));
                }
                if r.backup.takes(sandbox) {
                    out.push(problem(
                    "restore.recovery_target.type",
                    "a fixed time lies before a backup this drill takes; use `type: after-backup` \
                     (or `latest`), or restore an existing backup",
                ));
                }
                check_time(at, out);
            }
            RecoveryTarget::AfterBackup { offset } => {
                if !r.backup.point_in_time() {
                    out.push(problem(
                        "restore.recovery_target.type",
                        "a dump restores to the instant it was taken; a point in time needs \
                     pg-basebackup or pgbackrest",
                    ));
                }
                if !r.backup.takes(sandbox) {
                    out.push(problem(
                        "restore.recovery_target.type",
                        "`after-backup` needs a backup firedrill takes; for an existing backup use \
                     `type: time`",
                    ));
                }
                check_after_backup(s, r, *offset, out);
            }
        }
    }

    if r.write_after_backup.get() > std::time::Duration::from_secs(3600) {
        out.push(problem("restore.write_after_backup", "at most 1h"));
    }

    let v = &r.verify;
    // On a sandbox an existing backup is already refused above. An AWS backup is never taken
    // inside a snapshot firedrill holds, so only a quiescent source compares exactly.
    let exact_source =
        !r.backup.on_aws() && (sandbox || r.backup.takes(sandbox)) || v.source_quiescent;
    if s.targets.checksums.is_some() && !v.checksums {
        out.push(problem(
            "targets.checksums",
            "a checksum target needs `restore.verify.checksums: true`",
        ));
    }
    if v.checksums && !exact_source {
        out.push(problem(
            "restore.verify.source_quiescent",
            "the source may have changed since the backup's recovery point, so checksums \
             against it would not be exact: set `source_quiescent: true` if nothing but \
             firedrill's workload writes to it, or `checksums: false`",
        ));
    }
    for (i, a) in v.assertions.iter().enumerate() {
        if a.name.trim().is_empty() {
            out.push(problem(
                &format!("restore.verify.assertions[{i}].name"),
                "name the assertion",
            ));
        }
        if a.sql.trim().is_empty() {
            out.push(problem(
                &format!("restore.verify.assertions[{i}].sql"),
                "give the query; it must return one row whose first column is true",
            ));
        }
    }
    for key in r.sandbox.settings.keys() {
        if RESERVED.contains(&key.as_str()) {
            out.push(problem(
                &format!("restore.sandbox.settings.{key}"),
                format!("{key} is set by the restore and cannot be set"),
            ));
        }
    }
    let t = &s.targets;
    if t.max_lost_writes.is_some() && !(r.ledger_writes(sandbox) && s.workload.connections > 0) {
        out.push(problem(
            "targets.max_lost_writes",
            "lost writes are counted by firedrill's workload on a backup it takes: needs a \
             sandbox (or a backup firedrill takes) and workload.connections > 0",
        ));
    }
    if t.min_availability_pct.is_some() {
        out.push(problem(
            "targets.min_availability_pct",
            "availability is measured by failover drills; a restore drill states rto, rpo, \
             checksums or max_lost_writes",
        ));
    }
    if t.rto.is_none() && t.rpo.is_none() && t.checksums.is_none() && t.max_lost_writes.is_none() {
        out.push(problem(
            "targets",
            "state at least one target (rto, rpo, checksums, max_lost_writes): a drill must say \
             what it proves",
        ));
    }
}

/// The AWS kinds: an instance (not a cluster) to restore, the recovery targets each can
/// reach, and the temporary instance.
fn check_aws(s: &Scenario, r: &Restore, out: &mut Vec<Problem>) {
    if let Target::AwsRds(spec) = &s.target
        && spec.cluster.is_some()
    {
        out.push(problem(
            "target.cluster",
            "restores of an Aurora cluster are not built yet; restore drills name an `instance`",
        ));
    }
    match (&r.backup, &r.recovery_target) {
        (Backup::RdsPointInTime {}, RecoveryTarget::Time { at }) => check_time(at, out),
        (Backup::RdsPointInTime {}, RecoveryTarget::AfterBackup { offset }) => {
            check_after_backup(s, r, *offset, out)
        }
        (_, RecoveryTarget::Latest) => {}
        (b, _) => out.push(problem(
            "restore.recovery_target.type",
            format!(
                "`{}` restores to the instant its backup was taken; a point in time needs \
                 `rds-point-in-time`",
                b.kind()
            ),
        )),
    }
    match &r.backup {
        Backup::RdsSnapshot { snapshot } if !is_rds_identifier(snapshot) => out.push(problem(
            "restore.backup.snapshot",
            "`create`, `latest`, or a snapshot identifier (letters, digits and `-`)",
        )),
        Backup::AwsBackup {
            recovery_point,
            iam_role_arn,
            metadata,
        } => {
            if !iam_role_arn.starts_with("arn:") {
                out.push(problem(
                    "restore.backup.iam_role_arn",
                    "must be the ARN of an IAM role (arn:aws:iam::ACCOUNT:role/NAME)",
                ));
            }
            if recovery_point
                .as_ref()
                .is_some_and(|p| !p.starts_with("arn:"))
            {
                out.push(problem(
                    "restore.backup.recovery_point",
                    "must be a recovery point's ARN; leave it out for the newest",
                ));
            }
            if metadata.contains_key("DBInstanceIdentifier") {
                out.push(problem(
                    "restore.backup.metadata.DBInstanceIdentifier",
                    "the temporary instance's identifier is the drill's (firedrill-<run id>)",
                ));
            }
        }
        Backup::PgDump { .. }
        | Backup::PgBasebackup { .. }
        | Backup::Pgbackrest { .. }
        | Backup::RdsSnapshot { .. }
        | Backup::RdsPointInTime {} => {}
    }
    let sb = &r.sandbox;
    if sb.bin_dir.is_some()
        || sb.run_as.is_some()
        || sb.work_dir.is_some()
        || !sb.settings.is_empty()
    {
        out.push(problem(
            "restore.sandbox",
            "an AWS restore goes into a temporary DB instance (`restore.instance`), not a \
             local sandbox",
        ));
    }
    if let Some(i) = &r.instance {
        if i.class.as_ref().is_some_and(|c| !c.starts_with("db.")) {
            out.push(problem(
                "restore.instance.class",
                "a DB instance class, e.g. db.t3.medium",
            ));
        }
        if i.available_within.get().is_zero() {
            out.push(problem(
                "restore.instance.available_within",
                "must be longer than 0s",
            ));
        }
        if let Some(env) = &i.dsn_env
            && (env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            out.push(problem(
                "restore.instance.dsn_env",
                "must name an environment variable (letters, digits, `_`), not hold the DSN \
                 itself",
            ));
        }
    }
}

fn is_rds_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
}

fn check_time(at: &str, out: &mut Vec<Problem>) {
    if humantime::parse_rfc3339_weak(at).is_err() {
        out.push(problem(
            "restore.recovery_target.at",
            format!("{at:?} is not a time; write RFC 3339, e.g. 2026-11-20T03:00:00Z"),
        ));
    } else if !at.ends_with('Z') {
        out.push(problem(
            "restore.recovery_target.at",
            "give the time in UTC, ending in `Z` (e.g. 2026-11-20T03:00:00Z)",
        ));
    }
}

fn check_after_backup(
    s: &Scenario,
    r: &Restore,
    offset: super::duration::Dur,
    out: &mut Vec<Problem>,
) {
    if offset.get() >= r.write_after_backup.get() {
        out.push(problem(
            "restore.recovery_target.offset",
            format!(
                "the recovery point ({offset} after the backup) must fall while the workload \
                 still writes (write_after_backup: {})",
                r.write_after_backup
            ),
        ));
    }
    if s.workload.connections == 0 {
        out.push(problem(
            "workload.connections",
            "a point-in-time restore under live writes needs the workload (at least 1)",
        ));
    }
}

/// Settings the restore writes itself.
const RESERVED: &[&str] = &[
    "port",
    "listen_addresses",
    "unix_socket_directories",
    "archive_mode",
    "archive_command",
    "restore_command",
    "recovery_target",
    "recovery_target_time",
    "recovery_target_action",
];
