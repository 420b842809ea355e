//! The typed drill a scenario validates into (ripgrep's LowArgs -> HiArgs): the raw
//! [`Scenario`] is plain optional YAML; once [`super::validate`] found nothing wrong, [`typed`]
//! turns it into one owned value that knows what to build, so nothing downstream re-checks a
//! target kind or an instance that validation already guaranteed.
//!
//! Boundary: shapes only. The rules that decide whether a scenario is valid are `validate`'s;
//! `typed` refuses only the combinations those rules already refuse.

use super::model::*;
use super::problem::{Problem, problem};
use super::restore::Restore;
use super::shape::{ONE_DRILL, Shape};
use super::steps::Step;

/// A database a drill reaches: every target kind but `aws-backup`, which has none.
#[derive(Clone, Debug)]
pub enum DbTarget {
    Sandbox(SandboxSpec),
    Postgres(ExistingSpec),
    AwsRds(RdsTarget),
    PatroniSandbox(PatroniSandboxSpec),
    Patroni(PatroniSpec),
}

/// An RDS instance or an Aurora cluster, as the scenario named it.
#[derive(Clone, Debug)]
pub struct RdsTarget {
    pub spec: AwsRdsSpec,
    pub resource: RdsResource,
    /// `spec.dsn_env`, which a drill reaching the database requires.
    pub dsn_env: String,
}

/// Exactly one of `instance` and `cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RdsResource {
    Instance(String),
    Cluster(String),
}

impl RdsResource {
    pub fn is_instance(&self) -> bool {
        matches!(self, RdsResource::Instance(_))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, RdsResource::Cluster(_))
    }
}

/// Where a restore drill's backup comes from.
#[derive(Clone, Debug)]
pub enum RestoreSource {
    /// A sandbox firedrill builds and seeds.
    Sandbox(SandboxSpec),
    /// An existing PostgreSQL through its DSN.
    Postgres(ExistingSpec),
    /// An RDS instance; AWS restores it into a temporary instance.
    Rds {
        spec: AwsRdsSpec,
        instance: String,
        dsn_env: String,
    },
}

/// What a posture drill reads: protection of backups, never a database.
#[derive(Clone, Debug)]
pub enum PostureTarget {
    AwsBackup(AwsBackupSpec),
    /// One RDS instance: its storage, snapshots, retention, deletion protection.
    AwsRds {
        spec: AwsRdsSpec,
        instance: String,
    },
    Pgbackrest(PgbackrestSpec),
}

impl RestoreSource {
    /// The database the drill reaches for the source.
    pub fn target(&self) -> DbTarget {
        match self {
            RestoreSource::Sandbox(s) => DbTarget::Sandbox(s.clone()),
            RestoreSource::Postgres(e) => DbTarget::Postgres(e.clone()),
            RestoreSource::Rds {
                spec,
                instance,
                dsn_env,
            } => DbTarget::AwsRds(RdsTarget {
                spec: spec.clone(),
                resource: RdsResource::Instance(instance.clone()),
                dsn_env: dsn_env.clone(),
            }),
        }
    }
}

/// One drill, ready to run.
#[derive(Clone, Debug)]
pub enum Drill {
    Failover {
        target: DbTarget,
        fault: Fault,
        recovery: Recovery,
        /// `targets.failover`, or its default for this fault and recovery.
        failover: FailoverTarget,
    },
    /// A failover drill written step by step, with people in it.
    GameDay {
        target: DbTarget,
        steps: Vec<Step>,
        /// `targets.failover`, or its default for these steps.
        failover: FailoverTarget,
    },
    Restore {
        source: RestoreSource,
        restore: Restore,
    },
    BackupHealth {
        target: AwsBackupSpec,
        health: BackupHealth,
    },
    Posture {
        target: PostureTarget,
        posture: Posture,
    },
}

/// A restore drill run on every RDS instance a tag selects; [`FleetDrill::member`] makes each
/// instance's drill.
#[derive(Clone, Debug)]
pub struct FleetDrill {
    pub fleet: Fleet,
    pub source: AwsRdsSpec,
    pub restore: Restore,
    /// `source.dsn_env`, required for a fleet.
    pub dsn_env: String,
}

impl FleetDrill {
    pub fn member(&self, instance: &str) -> Drill {
        let mut spec = self.source.clone();
        spec.instance = Some(instance.to_owned());
        Drill::Restore {
            source: RestoreSource::Rds {
                spec,
                instance: instance.to_owned(),
                dsn_env: self.dsn_env.clone(),
            },
            restore: self.restore.clone(),
        }
    }
}

/// What a scenario runs: one drill, or a fleet of them.
#[derive(Clone, Debug)]
pub enum Run {
    Drill(Drill),
    Fleet(FleetDrill),
}

/// The typed drill of a scenario `validate` found nothing wrong with.
pub fn typed(s: &Scenario) -> Result<Run, Problem> {
    match Shape::of(s) {
        Ok(Shape::Posture(posture)) => posture_drill(s, posture),
        Ok(Shape::GameDay(steps)) => game_day(s, steps),
        Ok(Shape::Failover { fault, recovery }) if s.fleet.is_none() => {
            Ok(Run::Drill(Drill::Failover {
                target: db_target(s)?,
                fault: fault.clone(),
                recovery: recovery.clone(),
                failover: s.targets.failover.unwrap_or(
                    if fault.moves_writer() || matches!(recovery, Recovery::Promote { .. }) {
                        FailoverTarget::Required
                    } else {
                        FailoverTarget::Any
                    },
                ),
            }))
        }
        Ok(Shape::Restore(restore)) if let Some(fleet) = &s.fleet => match &s.target {
            Target::AwsRds(spec) => Ok(Run::Fleet(FleetDrill {
                fleet: fleet.clone(),
                source: spec.clone(),
                restore: restore.clone(),
                dsn_env: rds_dsn_env(spec)?,
            })),
            Target::PostgresSandbox(_)
            | Target::Postgres(_)
            | Target::AwsBackup(_)
            | Target::PatroniSandbox(_)
            | Target::Patroni(_)
            | Target::Pgbackrest(_) => Err(problem("fleet", "a fleet needs an `aws-rds` target")),
        },
        Ok(Shape::Restore(restore)) => {
            let source = match db_target(s)? {
                DbTarget::Sandbox(spec) => RestoreSource::Sandbox(spec),
                DbTarget::Postgres(spec) => RestoreSource::Postgres(spec),
                DbTarget::AwsRds(RdsTarget {
                    spec,
                    resource: RdsResource::Instance(instance),
                    dsn_env,
                }) => RestoreSource::Rds {
                    spec,
                    instance,
                    dsn_env,
                },
                DbTarget::AwsRds(RdsTarget {
                    resource: RdsResource::Cluster(_),
                    ..
                }) => {
                    return Err(problem(
                        "target.cluster",
                        "restores of an Aurora cluster are not built yet",
                    ));
                }
                DbTarget::PatroniSandbox(_) | DbTarget::Patroni(_) => {
                    return Err(problem(
                        "target.type",
                        "a restore drill reads a Patroni cluster as a `postgres` target (its \
                         DSN); Patroni targets are for failover drills",
                    ));
                }
            };
            Ok(Run::Drill(Drill::Restore {
                source,
                restore: restore.clone(),
            }))
        }
        Ok(Shape::BackupHealth(health)) if s.fleet.is_none() => match &s.target {
            Target::AwsBackup(spec) => Ok(Run::Drill(Drill::BackupHealth {
                target: spec.clone(),
                health: health.clone(),
            })),
            Target::PostgresSandbox(_)
            | Target::Postgres(_)
            | Target::AwsRds(_)
            | Target::PatroniSandbox(_)
            | Target::Patroni(_)
            | Target::Pgbackrest(_) => Err(problem(
                "target.type",
                "a backup-health drill reads an `aws-backup` target",
            )),
        },
        // A fleet runs restore drills only.
        Ok(Shape::Failover { .. } | Shape::BackupHealth(_)) | Err(_) => {
            Err(problem("fault", ONE_DRILL))
        }
    }
}

/// The database a failover, restore or game-day drill reaches.
fn db_target(s: &Scenario) -> Result<DbTarget, Problem> {
    match &s.target {
        Target::PostgresSandbox(spec) => Ok(DbTarget::Sandbox(spec.clone())),
        Target::Postgres(spec) => Ok(DbTarget::Postgres(spec.clone())),
        Target::AwsRds(spec) => {
            let resource = match (&spec.instance, &spec.cluster) {
                (Some(i), None) => RdsResource::Instance(i.clone()),
                (None, Some(c)) => RdsResource::Cluster(c.clone()),
                (Some(_), Some(_)) | (None, None) => {
                    return Err(problem("target.instance", "give `instance` or `cluster`"));
                }
            };
            Ok(DbTarget::AwsRds(RdsTarget {
                spec: spec.clone(),
                resource,
                dsn_env: rds_dsn_env(spec)?,
            }))
        }
        Target::PatroniSandbox(spec) => Ok(DbTarget::PatroniSandbox(spec.clone())),
        Target::Patroni(spec) => Ok(DbTarget::Patroni(spec.clone())),
        Target::AwsBackup(_) => Err(problem(
            "target.type",
            "an `aws-backup` target has no database; it is read by a `backup_health` or \
             `posture` drill",
        )),
        Target::Pgbackrest(_) => Err(problem(
            "target.type",
            "a `pgbackrest` target is a repository; it is read by a `posture` drill",
        )),
    }
}

/// A posture drill: it reads backups' settings, never a database.
fn posture_drill(s: &Scenario, posture: &Posture) -> Result<Run, Problem> {
    if s.fault.is_some() || s.recovery.is_some() || s.restore.is_some() {
        return Err(problem("posture", ONE_DRILL));
    }
    if s.backup_health.is_some() || s.fleet.is_some() {
        return Err(problem("posture", ONE_DRILL));
    }
    let target = match &s.target {
        Target::AwsBackup(spec) => PostureTarget::AwsBackup(spec.clone()),
        Target::AwsRds(spec) => match &spec.instance {
            Some(instance) => PostureTarget::AwsRds {
                spec: spec.clone(),
                instance: instance.clone(),
            },
            None => {
                return Err(problem(
                    "target.instance",
                    "missing: the DB instance whose backups are checked",
                ));
            }
        },
        Target::Pgbackrest(spec) => PostureTarget::Pgbackrest(spec.clone()),
        Target::PostgresSandbox(_)
        | Target::Postgres(_)
        | Target::PatroniSandbox(_)
        | Target::Patroni(_) => {
            return Err(problem(
                "target.type",
                "a posture drill reads `aws-backup`, `aws-rds` or `pgbackrest`",
            ));
        }
    };
    Ok(Run::Drill(Drill::Posture {
        target,
        posture: posture.clone(),
    }))
}

/// A game day: people and firedrill take its steps in turn.
fn game_day(s: &Scenario, steps: &[Step]) -> Result<Run, Problem> {
    let moves_writer = steps.iter().any(|step| match step {
        Step::Fault { fault, .. } => fault.moves_writer(),
        Step::Recovery { recovery, .. } => matches!(recovery, Recovery::Promote { .. }),
        Step::WaitFor { .. }
        | Step::Manual { .. }
        | Step::Note { .. }
        | Step::Checkpoint { .. } => false,
    });
    Ok(Run::Drill(Drill::GameDay {
        target: db_target(s)?,
        steps: steps.to_vec(),
        failover: s.targets.failover.unwrap_or(if moves_writer {
            FailoverTarget::Required
        } else {
            FailoverTarget::Any
        }),
    }))
}

/// An RDS target's DSN variable, which a drill reaching the database needs.
fn rds_dsn_env(spec: &AwsRdsSpec) -> Result<String, Problem> {
    spec.dsn_env.clone().ok_or_else(|| {
        problem(
            "target.dsn_env",
            "missing: the environment variable holding the DSN clients use",
        )
    })
}
