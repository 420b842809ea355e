//! Fleet drills: one scenario with `fleet:` runs its restore drill on every RDS instance that
//! carries the given tags, a bounded number at a time, each member a drill of its own (its own
//! run id, journal, lock, temporary instance and report), and a summary over them all.
//!
//! Boundary: choosing the members (here), running them ([`run`], over [`limiter`]); each member
//! runs through the same engine as a single drill. The summary's contract is the model's.

pub mod limiter;
pub mod run;

use std::collections::BTreeMap;

use firedrill_aws::{Aws, DRILL_TAG, Instance};

use crate::dsn::{PLACEHOLDERS, Template};
use crate::error::{EXIT_ENVIRONMENT, EXIT_REFUSED};
pub use crate::fleet_summary::*;
use crate::scenario::{Drill, FleetDrill, LoadedScenario, Run, Target, describe_tags};
use crate::shard::Shard;

/// One instance's drill, before it runs.
pub struct Member {
    pub instance: String,
    /// The fleet's scenario narrowed to this instance, named `<fleet name>.<instance>`.
    pub loaded: LoadedScenario,
    /// Its restore drill ([`FleetDrill::member`]).
    pub drill: Drill,
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{0}")]
    Env(String),
    /// Listing the instances failed, classified by `firedrill-aws`.
    #[error("aws: {0}")]
    Aws(firedrill_aws::AwsError),
    #[error("{0}; nothing was touched")]
    Refused(String),
}

impl FleetError {
    pub fn exit_code(&self) -> u8 {
        match self {
            FleetError::Env(_) | FleetError::Aws(_) => EXIT_ENVIRONMENT,
            FleetError::Refused(_) => EXIT_REFUSED,
        }
    }
}

/// Instances carrying every tag of `tags`, by identifier; never a drill's own temporary
/// instance (it may carry its source's tags).
pub fn select(instances: &[Instance], tags: &BTreeMap<String, String>) -> Vec<String> {
    let mut ids: Vec<String> = instances
        .iter()
        .filter(|i| !i.tags.iter().any(|(k, _)| k == DRILL_TAG))
        .filter(|i| {
            tags.iter()
                .all(|(k, v)| i.tags.iter().any(|(ik, iv)| ik == k && iv == v))
        })
        .map(|i| i.id.clone())
        .collect();
    ids.sort();
    ids
}

/// The fleet's scenario narrowed to one instance: a plain restore drill of it.
pub fn member(loaded: &LoadedScenario, fleet: &FleetDrill, instance: &str) -> Member {
    let drill = fleet.member(instance);
    let mut m = loaded.clone();
    m.scenario.fleet = None;
    m.scenario.name = format!("{}.{instance}", loaded.scenario.name);
    if let Target::AwsRds(t) = &mut m.scenario.target {
        t.instance = Some(instance.to_owned());
    }
    m.run = Run::Drill(drill.clone());
    Member {
        instance: instance.to_owned(),
        loaded: m,
        drill,
    }
}

/// The members a fleet run selected, and the region it looked in (as AWS resolved it: the
/// scenario's, the profile's or the environment's).
pub struct Selection {
    pub region: String,
    pub members: Vec<Member>,
    /// With a shard: which one, and how many instances the tags selected across all shards.
    pub shard: Option<ShardRef>,
}

/// Lists the instances the fleet selects and makes one member each; refuses before touching
/// anything when none or too many are selected or a DSN cannot tell the instances apart.
/// With `shard`, only the instances that shard owns are members (the limit applies to the
/// whole selection).
pub async fn members(
    loaded: &LoadedScenario,
    f: &FleetDrill,
    shard: Option<Shard>,
) -> Result<Selection, FleetError> {
    let (fleet, spec) = (&f.fleet, &f.source);
    check_dsn(&f.dsn_env, "target.dsn_env")?;
    if let Some(env) = f
        .restore
        .instance
        .as_ref()
        .and_then(|i| i.dsn_env.as_deref())
    {
        check_dsn(env, "restore.instance.dsn_env")?;
    }
    let aws = Aws::connect(&crate::systems::aws_rds::options(spec)).await;
    let all = aws.instances().await.map_err(FleetError::Aws)?;
    let ids = select(&all, &fleet.tags);
    if ids.is_empty() {
        return Err(FleetError::Env(format!(
            "no DB instance in {} carries {} ({} instance(s) looked at); nothing to restore",
            aws.region,
            describe_tags(&fleet.tags),
            all.len()
        )));
    }
    if ids.len() > usize::from(fleet.max_instances) {
        return Err(FleetError::Refused(format!(
            "{} DB instances carry {}, more than `fleet.max_instances` ({}); narrow the tags or \
             raise the limit",
            ids.len(),
            describe_tags(&fleet.tags),
            fleet.max_instances
        )));
    }
    let selected = ids.len();
    let members = ids
        .into_iter()
        .filter(|id| shard.is_none_or(|s| s.owns(id)))
        .map(|instance| member(loaded, f, &instance))
        .collect();
    Ok(Selection {
        region: aws.region.clone(),
        members,
        shard: shard.map(|s| ShardRef {
            index: s.index,
            count: s.count,
            selected,
        }),
    })
}

/// A fleet's DSN must say where each instance is, or every member would reach one database.
fn check_dsn(env: &str, key: &str) -> Result<(), FleetError> {
    let t = Template::read(env).map_err(|e| FleetError::Env(e.to_string()))?;
    if t.is_template() {
        return Ok(());
    }
    Err(FleetError::Refused(format!(
        "the DSN in ${env} (`{key}`) names none of {}: every instance of the fleet would be \
         reached through the same database; write e.g. `host={{host}} port={{port}} \
         dbname=app`",
        PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, tags: &[(&str, &str)]) -> Instance {
        Instance {
            id: id.into(),
            arn: format!("arn:aws:rds:eu-west-1:123456789012:db:{id}"),
            status: "available".into(),
            endpoint: None,
            multi_az: false,
            az: None,
            secondary_az: None,
            engine: "postgres".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            latest_restorable: None,
            storage_encrypted: None,
            backup_retention_days: None,
            deletion_protection: None,
            backup_replications: Vec::new(),
        }
    }

    #[test]
    fn selection_needs_every_tag_and_skips_drill_instances() {
        let all = [
            inst("orders-2", &[("restore-test", "monthly"), ("team", "a")]),
            inst("orders-1", &[("restore-test", "monthly")]),
            inst("billing", &[("restore-test", "yearly")]),
            inst("untagged", &[]),
            // A temporary instance restored from orders-1, carrying its tags.
            inst(
                "firedrill-1a2b",
                &[("restore-test", "monthly"), (DRILL_TAG, "1a2b")],
            ),
        ];
        let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            select(&all, &tags(&[("restore-test", "monthly")])),
            ["orders-1", "orders-2"]
        );
        assert_eq!(
            select(&all, &tags(&[("restore-test", "monthly"), ("team", "a")])),
            ["orders-2"]
        );
        assert!(select(&all, &tags(&[("restore-test", "weekly")])).is_empty());
    }
}
