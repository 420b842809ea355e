//! An RDS instance or Aurora cluster as a drill target: faults through AWS's API (failovers,
//! FIS experiments), while the probes and the workload reach the database through the DSN
//! clients use, so that RTO is what a client sees (DNS and connection effects included), not an
//! API status. The AWS calls themselves live in `firedrill-aws`.

use firedrill_aws::{ActionSpec, Aws, AwsError, DRILL_TAG, Options, TargetSpec, TemplateSpec};
use tokio_postgres::Config;

use crate::dsn::Template;
use crate::error::EnvError;
use crate::safety::journal::{EffectId, Journal, Undo};
use crate::scenario::{AwsRdsSpec, FisTemplate, RdsResource, RdsTarget};

/// How to reach the target's AWS account and region, again later too (a journal records it
/// with each AWS undo): never credentials.
pub fn options(spec: &AwsRdsSpec) -> Options {
    Options {
        region: spec.region.clone(),
        profile: spec.profile.clone(),
        endpoint_url: spec.endpoint_url.clone(),
        max_attempts: None,
    }
}

pub struct AwsTarget {
    aws: Aws,
    at: Options,
    resource: RdsResource,
    pub config: Config,
    pub description: String,
    /// The running experiment, once started, and its last state as the timeline has it.
    experiment: Option<(String, String)>,
    /// A template this drill created, deleted on release.
    template: Option<(String, EffectId)>,
}

pub(crate) fn aws_err(e: AwsError) -> EnvError {
    EnvError::Aws(e)
}

impl AwsTarget {
    /// Reaches AWS and describes the instance or cluster (a missing one, the wrong region, no
    /// credentials or a denied describe stop the drill here, before anything is touched), then
    /// fills the clients' DSN from it (`{host}`, `{port}`, `{instance}`; see [`crate::dsn`]).
    pub async fn build(rds: &RdsTarget, dsn: &Template) -> Result<AwsTarget, EnvError> {
        let spec = &rds.spec;
        let at = options(spec);
        let aws = Aws::connect(&at).await;
        let (what, id, endpoint) = match &rds.resource {
            RdsResource::Instance(id) => {
                let i = aws.instance(id).await.map_err(aws_err)?;
                let what = format!(
                    "RDS instance {} ({}, {}{}, {})",
                    i.id,
                    i.engine,
                    if i.multi_az { "Multi-AZ" } else { "single-AZ" },
                    i.az.map(|az| format!(", primary in {az}"))
                        .unwrap_or_default(),
                    aws.region
                );
                (what, i.id, i.endpoint)
            }
            RdsResource::Cluster(id) => {
                let c = aws.cluster(id).await.map_err(aws_err)?;
                let what = format!(
                    "DB cluster {} ({} member(s), writer {}, {})",
                    c.id,
                    c.members.len(),
                    c.writer.as_deref().unwrap_or("unknown"),
                    aws.region
                );
                (what, c.id, c.endpoint)
            }
        };
        let (config, via) = dsn.fill_at(endpoint.as_ref(), &[("instance", &id)])?;
        Ok(AwsTarget {
            aws,
            at,
            resource: rds.resource.clone(),
            config,
            description: format!("{what}, clients via {via}"),
            experiment: None,
            template: None,
        })
    }

    pub fn aws(&self) -> &Aws {
        &self.aws
    }

    /// How to reach AWS again (for a journal's undo).
    pub fn at(&self) -> &Options {
        &self.at
    }

    /// The instance's or cluster's identifier, when it is the kind `fault` acts on (validation
    /// pairs them; this names the mismatch should one slip through).
    fn resource_id(
        &self,
        fault: &str,
        suits: fn(&RdsResource) -> bool,
    ) -> Result<String, EnvError> {
        match &self.resource {
            r @ (RdsResource::Instance(id) | RdsResource::Cluster(id)) if suits(r) => {
                Ok(id.clone())
            }
            RdsResource::Instance(id) | RdsResource::Cluster(id) => Err(EnvError::Database(
                format!("a `{fault}` fault does not apply to {id}"),
            )),
        }
    }

    /// `rds-failover`: RebootDBInstance with ForceFailover, journaled first (nothing to undo:
    /// RDS completes the failover). Says what it did.
    pub async fn rds_failover(&mut self, journal: &Journal) -> Result<String, EnvError> {
        let id = self.resource_id("rds-failover", RdsResource::is_instance)?;
        let before = self.aws.instance(&id).await.map_err(aws_err)?;
        journal.effect(format!("RebootDBInstance {id} with ForceFailover"), None)?;
        self.aws.failover_instance(&id).await.map_err(aws_err)?;
        Ok(format!(
            "RebootDBInstance {id} with ForceFailover (primary was in {})",
            before.az.as_deref().unwrap_or("an unknown AZ")
        ))
    }

    /// `aurora-failover`: FailoverDBCluster, journaled first. Says what it did.
    pub async fn aurora_failover(
        &mut self,
        target_instance: Option<&str>,
        journal: &Journal,
    ) -> Result<String, EnvError> {
        let id = self.resource_id("aurora-failover", RdsResource::is_cluster)?;
        let before = self.aws.cluster(&id).await.map_err(aws_err)?;
        journal.effect(format!("FailoverDBCluster {id}"), None)?;
        self.aws
            .failover_cluster(&id, target_instance)
            .await
            .map_err(aws_err)?;
        Ok(format!(
            "FailoverDBCluster {id}: writer was {}{}",
            before.writer.as_deref().unwrap_or("unknown"),
            target_instance
                .map(|t| format!(", failing over to {t}"))
                .unwrap_or_default()
        ))
    }

    /// `fis-experiment`: creates the described template (journaled; deleted on release) or uses
    /// the given one, then starts the experiment, its undo journaled first. Its state, and the
    /// undo.
    pub async fn fis_experiment(
        &mut self,
        template_id: Option<&str>,
        template: Option<&FisTemplate>,
        journal: &Journal,
        run_id: &str,
    ) -> Result<(String, Option<(Undo, EffectId)>), EnvError> {
        let tag = (DRILL_TAG, run_id);
        let template_id = match (template_id, template) {
            (Some(id), _) => id.to_owned(),
            (_, Some(t)) => {
                // Journaled before it exists, by the tag it will carry: a drill killed before
                // the answer with its id arrives still leaves nothing `recover` cannot find.
                let effect = journal.effect(
                    format!("create an FIS experiment template tagged {DRILL_TAG}={run_id}"),
                    Some(Undo::AwsDeleteFisTemplates {
                        aws: self.at.clone(),
                        drill: run_id.to_owned(),
                    }),
                )?;
                let id = self
                    .aws
                    .create_template(&template_spec(t), &format!("{run_id}-template"), tag)
                    .await
                    .map_err(aws_err)?;
                self.template = Some((id.clone(), effect));
                id
            }
            (None, None) => {
                return Err(EnvError::Aws(AwsError::Failed {
                    what: "fis-experiment".into(),
                    reason: "neither `template_id` nor `template` given".into(),
                }));
            }
        };
        let undo = Undo::AwsStopFisExperiments {
            aws: self.at.clone(),
            template: template_id.clone(),
            drill: run_id.to_owned(),
        };
        let effect = journal.effect(
            format!("start an FIS experiment of template {template_id}"),
            Some(undo.clone()),
        )?;
        let e = self
            .aws
            .start_experiment(&template_id, &format!("{run_id}-experiment"), tag)
            .await
            .map_err(aws_err)?;
        let state = describe(&e);
        self.experiment = Some((e.id.clone(), state.clone()));
        Ok((state, Some((undo, effect))))
    }

    /// The experiment's state when it changed since the last call (for the timeline).
    pub async fn observe(&mut self) -> Option<String> {
        let (id, last) = self.experiment.as_mut()?;
        let now = match self.aws.experiment(id).await {
            Ok(e) => describe(&e),
            Err(e) => format!("FIS experiment {id}: cannot read its state: {e}"),
        };
        (now != *last).then(|| {
            *last = now.clone();
            now
        })
    }

    /// After the observation: an experiment still running is stopped (a drill never leaves a
    /// fault behind) and a template this drill created is deleted. Says what it did.
    pub async fn release(&mut self, journal: &Journal) -> Vec<String> {
        let mut done = Vec::new();
        if let Some((id, _)) = self.experiment.take() {
            // The engine ends a running experiment with the fault's undo; this is the net
            // under it.
            match self.aws.experiment(&id).await {
                Ok(e) if e.finished() || e.status == "stopping" => {}
                Ok(_) => match self.aws.stop_experiment(&id).await {
                    Ok(_) => done.push(format!("stopped FIS experiment {id}")),
                    Err(e) => done.push(format!("cannot stop FIS experiment {id}: {e}")),
                },
                Err(e) => done.push(format!("cannot read FIS experiment {id}: {e}")),
            }
        }
        if let Some((id, effect)) = self.template.take() {
            match self.aws.delete_template(&id).await {
                Ok(()) => {
                    journal.undone(effect, "deleted");
                    done.push(format!("deleted FIS experiment template {id}"));
                }
                Err(e) => done.push(format!(
                    "cannot delete FIS experiment template {id}: {e}; `firedrill recover` retries"
                )),
            }
        }
        done
    }
}

fn describe(e: &firedrill_aws::Experiment) -> String {
    let actions = e
        .actions
        .iter()
        .map(|(name, status)| format!("{name}: {status}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "FIS experiment {}: {}{}{}",
        e.id,
        e.status,
        e.reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        if actions.is_empty() {
            String::new()
        } else {
            format!("; actions {actions}")
        }
    )
}

fn template_spec(t: &FisTemplate) -> TemplateSpec {
    TemplateSpec {
        description: t.description.clone(),
        role_arn: t.role_arn.clone(),
        targets: t
            .targets
            .iter()
            .map(|(name, x)| TargetSpec {
                name: name.clone(),
                resource_type: x.resource_type.clone(),
                arns: x.resource_arns.clone(),
                tags: x.resource_tags.clone().into_iter().collect(),
                selection_mode: x.selection_mode.clone(),
            })
            .collect(),
        actions: t
            .actions
            .iter()
            .map(|(name, a)| ActionSpec {
                name: name.clone(),
                action_id: a.action_id.clone(),
                parameters: a.parameters.clone().into_iter().collect(),
                targets: a.targets.clone().into_iter().collect(),
            })
            .collect(),
        stop_alarms: t.stop_alarms.clone(),
    }
}
