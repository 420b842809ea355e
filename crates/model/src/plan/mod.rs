//! `firedrill plan`: every step and side effect a drill would take, from the scenario alone (no
//! I/O), so an operator can review a drill before running it.

mod failover;
mod gameday;
mod posture;
mod zones;

use std::fmt::Write as _;

use crate::scenario::{
    AwsRdsSpec, Backup, BackupHealth, Cleanup, Drill, DumpFormat, Environment, ExistingSpec,
    FailoverTarget, Fault, FleetDrill, LoadedScenario, PatroniSpec, Posture, Recovery,
    RecoveryTarget, Replication, Restore, Run, Scenario, Target,
};

/// The parts of a drill the plan describes (a fleet's are its restore's).
#[derive(Clone, Copy)]
enum Parts<'a> {
    Failover(&'a Fault, &'a Recovery),
    GameDay(&'a [crate::scenario::Step]),
    Restore(&'a Restore),
    BackupHealth(&'a BackupHealth),
    Posture(&'a Posture),
}

fn parts(run: &Run) -> Parts<'_> {
    match run {
        Run::Drill(Drill::Failover {
            fault, recovery, ..
        }) => Parts::Failover(fault, recovery),
        Run::Drill(Drill::Restore { restore, .. }) | Run::Fleet(FleetDrill { restore, .. }) => {
            Parts::Restore(restore)
        }
        Run::Drill(Drill::GameDay { steps, .. }) => Parts::GameDay(steps),
        Run::Drill(Drill::BackupHealth { health, .. }) => Parts::BackupHealth(health),
        Run::Drill(Drill::Posture { posture, .. }) => Parts::Posture(posture),
    }
}

pub fn render(loaded: &LoadedScenario) -> String {
    let s = &loaded.scenario;
    let drill = parts(&loaded.run);
    let mut out = String::new();
    let mut n = 0;
    let mut step = |out: &mut String, text: String| {
        n += 1;
        let _ = writeln!(out, "{n:>2}. {text}");
    };
    let _ = writeln!(out, "drill: {}", s.name);
    if !s.description.is_empty() {
        let _ = writeln!(out, "       {}", s.description.trim());
    }
    let env = match (s.environment, &s.target) {
        (Some(Environment::Production), _) => format!(
            "production: runs only with --confirm {} or after its name is typed at a terminal",
            s.name
        ),
        (Some(e), _) => format!("{e:?}").to_lowercase(),
        (None, Target::PostgresSandbox(_) | Target::PatroniSandbox(_)) => {
            "a local sandbox".to_owned()
        }
        (None, _) if matches!(drill, Parts::Posture(_)) => {
            "not declared (not needed: the drill only reads)".to_owned()
        }
        (None, Target::AwsBackup(_) | Target::Pgbackrest(_)) => {
            "not declared (not needed: the drill only reads)".to_owned()
        }
        (None, _) => "not declared (required)".to_owned(),
    };
    let _ = writeln!(out, "environment: {env}");
    if let Some(f) = &s.fleet {
        let _ = writeln!(
            out,
            "fleet: every DB instance with {} (refused beyond {}), {} at a time, one start \
             per {};\n       each <instance> is a drill of its own (`{}.<instance>`: lock, \
             journal, report), then a summary;\n       DSNs are filled per instance \
             ({{host}}, {{port}}, {{instance}}; {{source}} for the restored one)",
            crate::scenario::describe_tags(&f.tags),
            f.max_instances,
            f.concurrency,
            f.start_every,
            s.name
        );
    }
    let _ = writeln!(out);

    match &s.target {
        Target::PostgresSandbox(t) => {
            let mode = match t.replication {
                Replication::Async => "asynchronous",
                Replication::Synchronous => "synchronous",
            };
            step(
                &mut out,
                "create a temporary directory for the sandbox".into(),
            );
            for z in zones::build_steps(t) {
                step(&mut out, z);
            }
            step(
                &mut out,
                format!(
                    "initdb the primary (or copy this PostgreSQL's cached template) and start it \
                     on a free {}",
                    if t.zones.is_empty() {
                        "127.0.0.1 port"
                    } else {
                        "port of its zone's address"
                    }
                ),
            );
            if t.standbys > 0 {
                step(
                    &mut out,
                    format!(
                        "copy the template for (or pg_basebackup) {} standby(s) and start them, \
                         {mode} streaming replication",
                        t.standbys
                    ),
                );
            }
            if !t.seed_sql.is_empty() {
                step(
                    &mut out,
                    format!(
                        "seed: run {} SQL statement(s) on the primary",
                        t.seed_sql.len()
                    ),
                );
            }
            if t.wal_archive {
                step(
                    &mut out,
                    "archive every node's WAL into <sandbox>/wal-archive; pg_basebackup the \
                     primary into <sandbox>/base-backup"
                        .into(),
                );
            }
        }
        Target::Postgres(t) => {
            step(
                &mut out,
                format!(
                    "connect to the existing cluster through ${} (read-write host)",
                    t.dsn_env
                ),
            );
        }
        Target::PatroniSandbox(t) => {
            let d = &t.dcs;
            step(
                &mut out,
                "create a temporary directory; start etcd on free 127.0.0.1 ports".into(),
            );
            step(
                &mut out,
                format!(
                    "start {} Patroni members ({}), each with its PostgreSQL on free 127.0.0.1 \
                     ports; wait for a leader and {} streaming replica(s)",
                    t.members,
                    crate::scenario::patroni_members(t.members).join(", "),
                    t.members.saturating_sub(1)
                ),
            );
            step(
                &mut out,
                format!(
                    "DCS: ttl {}s, loop_wait {}s, retry_timeout {}s, synchronous_mode {}, \
                     failsafe_mode {}, maximum_lag_on_failover {} bytes, primary_start_timeout {}s",
                    d.ttl,
                    d.loop_wait,
                    d.retry_timeout,
                    d.synchronous_mode,
                    d.failsafe_mode,
                    d.maximum_lag_on_failover,
                    d.primary_start_timeout
                ),
            );
        }
        Target::Patroni(t) => {
            step(
                &mut out,
                format!(
                    "read the cluster through the REST API at ${} (GET /cluster); connect \
                     through ${} (read-write host)",
                    t.api_env, t.dsn_env
                ),
            );
        }
        Target::AwsRds(t) => {
            let what = match (&t.instance, &t.cluster) {
                (Some(i), _) => format!("RDS instance {i}"),
                (None, Some(c)) => format!("DB cluster {c}"),
                (None, None) if s.fleet.is_some() => "RDS instance <instance>".into(),
                (None, None) => "(no instance or cluster)".into(),
            };
            let region = t.region.as_deref().unwrap_or("the profile's region");
            step(
                &mut out,
                match &t.dsn_env {
                    Some(dsn) => {
                        format!("describe {what} through AWS ({region}); connect through ${dsn}")
                    }
                    None => format!("describe {what} through AWS ({region})"),
                },
            );
        }
        Target::Pgbackrest(t) => step(
            &mut out,
            format!(
                "run `pgbackrest --stanza={} info --output=json`{} and read repo{}'s \
                 cipher and retention settings",
                t.stanza,
                t.config
                    .as_ref()
                    .map(|c| format!(" with --config={}", c.display()))
                    .unwrap_or_default(),
                t.repo
            ),
        ),
        Target::AwsBackup(t) => step(
            &mut out,
            format!(
                "read AWS Backup ({}): {}",
                t.region.as_deref().unwrap_or("the profile's region"),
                if t.resources.is_empty() {
                    "every protected resource (ListProtectedResources)".to_owned()
                } else {
                    format!("{} resource(s)", t.resources.len())
                }
            ),
        ),
    }
    match drill {
        Parts::Failover(fault, recovery) => {
            failover::steps(s, fault, recovery, &mut |t| step(&mut out, t))
        }
        Parts::GameDay(list) => gameday::steps(s, list, &mut |t| step(&mut out, t)),
        Parts::Restore(r) => restore_steps(s, r, &mut |t| step(&mut out, t)),
        Parts::BackupHealth(h) => {
            step(
                &mut out,
                "per resource: its newest completed recovery point \
                 (ListRecoveryPointsByResource) and its age against targets.rpo"
                    .into(),
            );
            step(
                &mut out,
                format!(
                    "backup jobs of the last {} (ListBackupJobs): failed, aborted or expired \
                     ones{}",
                    h.window,
                    h.expect_every
                        .map(|e| format!(
                            ", and spans longer than {e} (+{}) without a completed job",
                            h.grace
                        ))
                        .unwrap_or_default()
                ),
            );
            step(&mut out, "read only: nothing is created or changed".into());
        }
        Parts::Posture(p) => posture::steps(s, p, &mut |t| step(&mut out, t)),
    }
    let cleanup = match (&s.target, s.cleanup) {
        (Target::AwsBackup(_) | Target::Pgbackrest(_), _) => "nothing to clean up (read only)",
        (Target::AwsRds(_), _) if matches!(drill, Parts::Posture(_)) => {
            "nothing to clean up (read only)"
        }
        (Target::Postgres(_) | Target::AwsRds(_) | Target::Patroni(_), _) => match drill {
            Parts::Restore(r) if !(s.workload.connections > 0 && r.ledger_writes(false)) => {
                "leave the target as it is (the drill only read it)"
            }
            Parts::Restore(_)
            | Parts::Failover(..)
            | Parts::GameDay(_)
            | Parts::BackupHealth(_)
            | Parts::Posture(_) => "leave the target as it is",
        },
        (_, Cleanup::Always) => "stop every node and remove the sandbox directory",
        (_, Cleanup::OnSuccess) => {
            "stop every node; remove the sandbox directory if the drill passed"
        }
        (_, Cleanup::Never) => "stop every node and keep the sandbox directory",
    };
    step(&mut out, format!("teardown: {cleanup}"));

    if !s.guardrails.is_empty() {
        let _ = writeln!(
            out,
            "\nguardrails (checked every {} from the steady state on; the first that holds \
             aborts the drill and rolls the fault back):",
            s.probes
                .interval
                .min(crate::scenario::Dur::from_millis(250))
        );
        for g in &s.guardrails {
            let _ = writeln!(out, "  - {}", g.describe());
        }
    }

    let _ = writeln!(
        out,
        "\nside effects (each journaled before it happens; `firedrill recover` undoes what a \
         killed drill left):"
    );
    for (effect, undo) in side_effects(s, drill) {
        let _ = writeln!(out, "  - {effect}\n      undo: {undo}");
    }

    let _ = writeln!(out, "\ntargets:");
    let t = &s.targets;
    if let Some(v) = t.rto {
        let _ = writeln!(out, "  rto <= {v}");
    }
    if let Some(v) = t.rpo {
        let _ = writeln!(out, "  rpo <= {v}");
    }
    if let Some(v) = t.max_lost_writes {
        let _ = writeln!(out, "  lost writes <= {v}");
    }
    if let Some(v) = t.max_split_brain {
        let _ = writeln!(out, "  split brain (two servers taking writes) <= {v}");
    }
    if let Some(v) = t.min_availability_pct {
        let _ = writeln!(out, "  availability >= {v}%");
    }
    if t.checksums.is_some() {
        let _ = writeln!(
            out,
            "  checksums: every table equal to the source at the recovery point"
        );
    }
    for (check, _) in crate::scenario::posture_targets(t) {
        let each = match check {
            crate::posture::Check::MinRetention => t
                .min_retention
                .map(|d| format!(" (at least {d})"))
                .unwrap_or_default(),
            crate::posture::Check::CopiesInOtherRegion => t
                .copies_in_other_region
                .map(|n| format!(" (at least {n})"))
                .unwrap_or_default(),
            crate::posture::Check::Encrypted
            | crate::posture::Check::Immutable
            | crate::posture::Check::DeletionProtection => String::new(),
        };
        let _ = writeln!(
            out,
            "  {}{each}: resources short = 0 ({})",
            check.name(),
            check.controls().join(", ")
        );
    }
    if let Run::Drill(Drill::GameDay { steps, .. }) = &loaded.run {
        for (i, st) in steps.iter().enumerate() {
            if let Some(w) = st.within() {
                let _ = writeln!(out, "  step {} ({}) within {w}", i + 1, st.title());
            }
        }
    }
    if let Run::Drill(Drill::Failover { failover, .. } | Drill::GameDay { failover, .. }) =
        &loaded.run
    {
        let _ = writeln!(
            out,
            "  {}",
            match failover {
                FailoverTarget::Required => "writer moved = 1: another server takes the writes",
                FailoverTarget::Forbidden => "writer moved = 0: the same server takes the writes",
                FailoverTarget::Any => "writer: recorded, not judged (failover: any)",
            }
        );
        if s.observe.expect_outage {
            let _ = writeln!(
                out,
                "  failed probes after the fault >= 1 (a fault no probe felt fails)"
            );
        }
    }
    out
}

/// Every change the drill makes outside itself, and how it is taken back.
fn side_effects(s: &Scenario, drill: Parts<'_>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |e: String, u: &str| out.push((e, u.to_owned()));
    let sandbox_undo = "stop every process in it and remove it";
    if matches!(drill, Parts::Posture(_)) {
        add(
            format!("none: the {} target is only read", s.target.kind()),
            "none needed",
        );
        return out;
    }
    match &s.target {
        Target::PostgresSandbox(t) => {
            add(
                "create a sandbox directory and start PostgreSQL nodes in it".into(),
                sandbox_undo,
            );
            zones::effects(t, &mut add);
        }
        Target::PatroniSandbox(_) => add(
            "create a sandbox directory and start etcd and Patroni members in it".into(),
            sandbox_undo,
        ),
        Target::Postgres(ExistingSpec { dsn_env, .. })
        | Target::AwsRds(AwsRdsSpec {
            dsn_env: Some(dsn_env),
            ..
        }) if s.restore.is_some() && s.workload.connections == 0 => add(
            format!("none on the database of ${dsn_env}: it is only read"),
            "none needed",
        ),
        Target::Postgres(ExistingSpec { dsn_env, .. })
        | Target::AwsRds(AwsRdsSpec {
            dsn_env: Some(dsn_env),
            ..
        })
        | Target::Patroni(PatroniSpec { dsn_env, .. }) => add(
            format!(
                "create tables {} and firedrill_probe in the database of ${dsn_env} and write \
                 rows tagged with the run id",
                s.workload.table
            ),
            if s.workload.keep_rows || s.cleanup == Cleanup::Never {
                "none; the rows stay (delete them by run id if unwanted)"
            } else {
                "this drill's rows are deleted by run id once checked"
            },
        ),
        Target::AwsBackup(_) => add("none: AWS Backup is only read".into(), "none needed"),
        Target::AwsRds(AwsRdsSpec { dsn_env: None, .. }) | Target::Pgbackrest(_) => {}
    }
    match drill {
        Parts::Failover(fault, recovery) => failover::side_effects(s, fault, recovery, &mut add),
        Parts::GameDay(list) => gameday::side_effects(s, list, &mut add),
        Parts::Restore(r) if r.backup.on_aws() => {
            if r.backup.takes(false) && matches!(&r.backup, Backup::RdsSnapshot { .. }) {
                add(
                    "CreateDBSnapshot of the instance, tagged firedrill:drill=<run id>".into(),
                    "DeleteDBSnapshot (at the end, or `firedrill recover`/`cleanup`)",
                );
            }
            add(
                "create a temporary DB instance firedrill-<run id>, tagged \
                 firedrill:drill=<run id>"
                    .into(),
                "DeleteDBInstance without a final snapshot (at the end, or `firedrill \
                 recover`/`cleanup`)",
            );
        }
        Parts::Restore(_) => {
            add(
                "create the restore drill's directory (backup, WAL archive)".into(),
                sandbox_undo,
            );
            add(
                "create a sandbox directory for the restored copy and start it".into(),
                sandbox_undo,
            );
        }
        Parts::BackupHealth(_) | Parts::Posture(_) => {}
    }
    out
}

fn restore_steps(s: &Scenario, r: &Restore, step: &mut dyn FnMut(String)) {
    if r.backup.on_aws() {
        return aws_restore_steps(s, r, step);
    }
    let sandbox = matches!(s.target, Target::PostgresSandbox(_));
    if sandbox {
        if r.seed.pgbench_scale > 0 {
            step(format!(
                "seed the source: pgbench -i -s {} ({} pgbench_accounts rows)",
                r.seed.pgbench_scale,
                r.seed.pgbench_scale as u64 * 100_000
            ));
        }
        if !r.seed.sql.is_empty() {
            step(format!(
                "seed the source: run {} SQL statement(s)",
                r.seed.sql.len()
            ));
        }
    }
    if s.workload.connections > 0 && r.backup.takes(sandbox) {
        step(format!(
            "start {} writer connection(s) into {} (side effect on the source's database)",
            s.workload.connections, s.workload.table
        ));
    }
    let take = match &r.backup {
        Backup::PgDump { path: Some(p), .. } | Backup::PgBasebackup { path: Some(p), .. } => {
            format!("use the existing backup {}", p.display())
        }
        Backup::PgDump { format, jobs, .. } => format!(
            "BACKUP: export a snapshot on the source and pg_dump ({} format{}) inside it",
            format!("{format:?}").to_lowercase(),
            if *format == DumpFormat::Directory {
                format!(", {jobs} jobs")
            } else {
                String::new()
            }
        ),
        Backup::PgBasebackup { .. } => {
            "BACKUP: pg_basebackup (plain, WAL streamed) with WAL archiving on".into()
        }
        Backup::Pgbackrest { stanza, .. } if sandbox => format!(
            "BACKUP: create pgBackRest stanza {stanza} in a temporary repository, archive WAL \
             through it, take a full backup"
        ),
        Backup::Pgbackrest { stanza, config } => format!(
            "use the latest backup of pgBackRest stanza {stanza} ({})",
            config
                .as_ref()
                .map(|c| c.display().to_string())
                .unwrap_or_default()
        ),
        // Restored by AWS: `aws_restore_steps` describes them.
        Backup::RdsSnapshot { .. } | Backup::RdsPointInTime {} | Backup::AwsBackup { .. } => {
            String::new()
        }
    };
    step(take);
    if r.backup.takes(sandbox) && r.backup.point_in_time() && s.workload.connections > 0 {
        step(format!(
            "keep writing for {} after the backup",
            r.write_after_backup
        ));
    }
    if r.verify.backup {
        step(
            match r.backup {
                Backup::PgDump { .. } => "verify the dump's table of contents (pg_restore --list)",
                Backup::PgBasebackup { .. } => {
                    "verify the backup (pg_verifybackup) and the WAL archive for gaps"
                }
                Backup::Pgbackrest { .. } => "verify the repository (pgbackrest verify)",
                Backup::RdsSnapshot { .. }
                | Backup::RdsPointInTime {}
                | Backup::AwsBackup { .. } => "",
            }
            .into(),
        );
    }
    let point = match &r.recovery_target {
        RecoveryTarget::Latest => "the latest point".to_owned(),
        RecoveryTarget::Time { at } => at.clone(),
        RecoveryTarget::AfterBackup { offset } => format!("{offset} after the backup ended"),
    };
    step(format!(
        "RESTORE into a new sandbox (own directory and 127.0.0.1 port, never the source) to {point}; \
         time it until the first query"
    ));
    if r.verify.schema {
        step("compare schemas: tables, columns, constraints, indexes, sequences".into());
    }
    if r.verify.checksums {
        step(
            "compare every table's row count and content checksum with the source at the \
              recovery point; narrow differences to key ranges"
                .into(),
        );
    }
    if s.workload.connections > 0 && r.backup.takes(sandbox) {
        step(
            "check the ledger: every write acknowledged before the recovery point present, \
              none sent after it"
                .into(),
        );
    }
    if r.verify.amcheck {
        step("pg_amcheck --heapallindexed on the restored database".into());
    }
    for a in &r.verify.assertions {
        step(format!("assert {}: {}", a.name, a.sql.trim()));
    }
}

/// A restore of an `aws-rds` instance: AWS restores into a temporary instance, firedrill
/// verifies it like a local copy and deletes it.
fn aws_restore_steps(s: &Scenario, r: &Restore, step: &mut dyn FnMut(String)) {
    let id = match &s.target {
        Target::AwsRds(t) => t.instance.clone().unwrap_or_else(|| "<instance>".into()),
        Target::PostgresSandbox(_)
        | Target::Postgres(_)
        | Target::AwsBackup(_)
        | Target::PatroniSandbox(_)
        | Target::Patroni(_)
        | Target::Pgbackrest(_) => String::new(),
    };
    let instance = r.instance.clone().unwrap_or_default();
    let ledger = s.workload.connections > 0 && r.ledger_writes(false);
    if ledger {
        step(format!(
            "start {} writer connection(s) into {} on the source (side effect on its database)",
            s.workload.connections, s.workload.table
        ));
    }
    step(match (&r.backup, &r.recovery_target) {
        (Backup::RdsSnapshot { snapshot }, _) if snapshot == "create" => format!(
            "BACKUP: CreateDBSnapshot of {id} (tagged firedrill:drill=<run id>) and wait until \
             it is available"
        ),
        (Backup::RdsSnapshot { snapshot }, _) if snapshot == "latest" => {
            format!("BACKUP: the newest available snapshot of {id}")
        }
        (Backup::RdsSnapshot { snapshot }, _) => format!("BACKUP: DB snapshot {snapshot}"),
        (Backup::RdsPointInTime {}, RecoveryTarget::Latest) => {
            format!("BACKUP: {id}'s continuous backup, at its latest restorable time")
        }
        (Backup::RdsPointInTime {}, RecoveryTarget::Time { at }) => {
            format!("BACKUP: {id}'s continuous backup, at {at}")
        }
        (Backup::RdsPointInTime {}, RecoveryTarget::AfterBackup { offset }) => format!(
            "BACKUP: {id}'s continuous backup, at the instant {offset} from now while the \
             writers write on for {}; wait until RDS can restore to it",
            r.write_after_backup
        ),
        (Backup::AwsBackup { recovery_point, .. }, _) => match recovery_point {
            Some(arn) => format!("BACKUP: AWS Backup recovery point {arn}"),
            None => format!("BACKUP: the newest completed AWS Backup recovery point of {id}"),
        },
        // Local backup kinds are not restored by AWS (`restore_steps` describes them).
        (Backup::PgDump { .. } | Backup::PgBasebackup { .. } | Backup::Pgbackrest { .. }, _) => {
            String::new()
        }
    });
    step(format!(
        "RESTORE with {} into a temporary DB instance firedrill-<run id>{} (tagged \
         firedrill:drill=<run id>); it must answer a query within {}",
        match &r.backup {
            Backup::RdsSnapshot { .. } => "RestoreDBInstanceFromDBSnapshot",
            Backup::RdsPointInTime {} => "RestoreDBInstanceToPointInTime",
            Backup::AwsBackup { .. } => "StartRestoreJob (polled with DescribeRestoreJob)",
            Backup::PgDump { .. } | Backup::PgBasebackup { .. } | Backup::Pgbackrest { .. } => {
                "(not an AWS backup)"
            }
        },
        instance
            .class
            .as_ref()
            .map(|c| format!(" of class {c}"))
            .unwrap_or_default(),
        instance.available_within
    ));
    step(match &instance.dsn_env {
        Some(env) => format!("reach the restored instance through ${env}"),
        None => "reach the restored instance at its endpoint, with the source DSN's user and \
                 database"
            .into(),
    });
    if r.verify.schema {
        step("compare schemas: tables, columns, constraints, indexes, sequences".into());
    }
    if r.verify.checksums {
        step("compare every table's row count and content checksum with the source".into());
    }
    if ledger {
        step(
            "check the ledger: every write acknowledged before the recovery point present, \
              none sent after it"
                .into(),
        );
    }
    for a in &r.verify.assertions {
        step(format!("assert {}: {}", a.name, a.sql.trim()));
    }
    step(
        "delete the temporary instance (and a snapshot the drill took), whatever the outcome"
            .into(),
    );
}
