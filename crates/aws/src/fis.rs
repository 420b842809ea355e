//! AWS Fault Injection Service: experiments from an existing template or one the scenario
//! describes; started, polled, stopped.

use aws_sdk_fis::types::{
    CreateExperimentTemplateActionInput, CreateExperimentTemplateStopConditionInput,
    CreateExperimentTemplateTargetInput, Experiment as SdkExperiment,
};

use crate::client::Aws;
use crate::error::{AwsError, answered, found, required};

/// An experiment's state as the timeline records it.
#[derive(Clone, Debug, PartialEq)]
pub struct Experiment {
    pub id: String,
    /// pending, initiating, running, completed, stopping, stopped, failed, cancelled.
    pub status: String,
    pub reason: Option<String>,
    /// Each action's name and status, sorted by name.
    pub actions: Vec<(String, String)>,
}

impl Experiment {
    pub fn finished(&self) -> bool {
        matches!(
            self.status.as_str(),
            "completed" | "stopped" | "failed" | "cancelled"
        )
    }
}

/// A template described in the scenario.
#[derive(Clone, Debug, Default)]
pub struct TemplateSpec {
    pub description: String,
    pub role_arn: String,
    pub targets: Vec<TargetSpec>,
    pub actions: Vec<ActionSpec>,
    /// CloudWatch alarm ARNs that stop the experiment (FIS's own stop conditions).
    pub stop_alarms: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct TargetSpec {
    pub name: String,
    pub resource_type: String,
    pub arns: Vec<String>,
    pub tags: Vec<(String, String)>,
    /// ALL, COUNT(n), PERCENT(n).
    pub selection_mode: String,
}

#[derive(Clone, Debug, Default)]
pub struct ActionSpec {
    pub name: String,
    pub action_id: String,
    pub parameters: Vec<(String, String)>,
    /// Action target key (e.g. `DBInstances`) -> a target's name.
    pub targets: Vec<(String, String)>,
}

fn experiment(e: &SdkExperiment, action: &str) -> Result<Experiment, AwsError> {
    let mut actions: Vec<(String, String)> = e
        .actions()
        .map(|m| {
            m.iter()
                .map(|(name, a)| {
                    (
                        name.clone(),
                        a.state()
                            .and_then(|s| s.status())
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    actions.sort();
    experiment_of(e.id(), e.state(), actions, action)
}

/// An experiment from the parts every FIS answer has (`GetExperiment`'s experiment and
/// `ListExperiments`' summaries are different SDK types): its id and state are required.
fn experiment_of(
    id: Option<&str>,
    state: Option<&aws_sdk_fis::types::ExperimentState>,
    actions: Vec<(String, String)>,
    action: &str,
) -> Result<Experiment, AwsError> {
    Ok(Experiment {
        id: required(id, action, "id")?,
        status: required(
            state.and_then(|s| s.status()).map(|s| s.as_str()),
            action,
            "state.status",
        )?,
        reason: state.and_then(|s| s.reason()).map(str::to_owned),
        actions,
    })
}

fn bad_spec(e: impl std::fmt::Display) -> AwsError {
    AwsError::Failed {
        what: "the FIS template".into(),
        reason: e.to_string(),
    }
}

impl Aws {
    /// Creates the template (tagged with the drill) and returns its id.
    pub async fn create_template(
        &self,
        spec: &TemplateSpec,
        token: &str,
        tag: (&str, &str),
    ) -> Result<String, AwsError> {
        let mut req = self
            .fis
            .create_experiment_template()
            .client_token(token)
            .description(&spec.description)
            .role_arn(&spec.role_arn)
            .tags(tag.0, tag.1);
        let alarms: Vec<Option<&str>> = if spec.stop_alarms.is_empty() {
            vec![None]
        } else {
            spec.stop_alarms.iter().map(|a| Some(a.as_str())).collect()
        };
        for alarm in alarms {
            let sc = match alarm {
                None => CreateExperimentTemplateStopConditionInput::builder().source("none"),
                Some(a) => CreateExperimentTemplateStopConditionInput::builder()
                    .source("aws:cloudwatch:alarm")
                    .value(a),
            };
            req = req.stop_conditions(sc.build().map_err(bad_spec)?);
        }
        for t in &spec.targets {
            let mut b = CreateExperimentTemplateTargetInput::builder()
                .resource_type(&t.resource_type)
                .selection_mode(&t.selection_mode)
                .set_resource_arns((!t.arns.is_empty()).then(|| t.arns.clone()));
            for (k, v) in &t.tags {
                b = b.resource_tags(k, v);
            }
            req = req.targets(&t.name, b.build().map_err(bad_spec)?);
        }
        for a in &spec.actions {
            let mut b = CreateExperimentTemplateActionInput::builder().action_id(&a.action_id);
            for (k, v) in &a.parameters {
                b = b.parameters(k, v);
            }
            for (k, v) in &a.targets {
                b = b.targets(k, v);
            }
            req = req.actions(&a.name, b.build().map_err(bad_spec)?);
        }
        let out = req.send().await.map_err(|e| {
            AwsError::from_sdk("fis:CreateExperimentTemplate", "FIS experiment template", e)
        })?;
        answered(
            out.experiment_template()
                .and_then(|t| t.id())
                .map(str::to_owned),
            "fis:CreateExperimentTemplate",
            "template id",
        )
    }

    pub async fn delete_template(&self, id: &str) -> Result<(), AwsError> {
        self.fis
            .delete_experiment_template()
            .id(id)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "fis:DeleteExperimentTemplate",
                    &format!("FIS experiment template {id}"),
                    e,
                )
            })?;
        Ok(())
    }

    /// Experiment templates tagged `firedrill:drill` (with this drill's run id, or any), as
    /// (template id, run id); all pages.
    pub async fn templates_tagged(
        &self,
        drill: Option<&str>,
    ) -> Result<Vec<(String, String)>, AwsError> {
        let action = "fis:ListExperimentTemplates";
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .fis
                .list_experiment_templates()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(action, "FIS experiment templates", e))?;
            for t in page.experiment_templates() {
                let tagged = t.tags().and_then(|tags| tags.get(crate::DRILL_TAG));
                if let Some(run) = tagged.filter(|run| drill.is_none_or(|d| d == run.as_str())) {
                    out.push((required(t.id(), action, "id")?, run.clone()));
                }
            }
            match page.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(out),
            }
        }
    }

    /// Deletes the templates tagged with drill `drill`: what a drill that died between
    /// creating a template and learning its id left. The ids deleted.
    pub async fn delete_templates_of(&self, drill: &str) -> Result<Vec<String>, AwsError> {
        let mut deleted = Vec::new();
        for (id, _) in self.templates_tagged(Some(drill)).await? {
            match self.delete_template(&id).await {
                Ok(()) => deleted.push(id),
                Err(AwsError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    pub async fn start_experiment(
        &self,
        template: &str,
        token: &str,
        tag: (&str, &str),
    ) -> Result<Experiment, AwsError> {
        let out = self
            .fis
            .start_experiment()
            .experiment_template_id(template)
            .client_token(token)
            .tags(tag.0, tag.1)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "fis:StartExperiment",
                    &format!("FIS experiment template {template}"),
                    e,
                )
            })?;
        answered(
            out.experiment()
                .map(|e| experiment(e, "fis:StartExperiment"))
                .transpose()?,
            "fis:StartExperiment",
            "experiment",
        )
    }

    pub async fn experiment(&self, id: &str) -> Result<Experiment, AwsError> {
        let out = self.fis.get_experiment().id(id).send().await.map_err(|e| {
            AwsError::from_sdk("fis:GetExperiment", &format!("FIS experiment {id}"), e)
        })?;
        found(
            out.experiment()
                .map(|e| experiment(e, "fis:GetExperiment"))
                .transpose()?,
            "fis:GetExperiment",
            format!("FIS experiment {id}"),
        )
    }

    /// Stops a running experiment; stopping a finished one is not an error (undo is idempotent).
    pub async fn stop_experiment(&self, id: &str) -> Result<Experiment, AwsError> {
        let now = self.experiment(id).await?;
        if now.finished() {
            return Ok(now);
        }
        let out = self
            .fis
            .stop_experiment()
            .id(id)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("fis:StopExperiment", &format!("FIS experiment {id}"), e)
            })?;
        answered(
            out.experiment()
                .map(|e| experiment(e, "fis:StopExperiment"))
                .transpose()?,
            "fis:StopExperiment",
            "experiment",
        )
    }

    /// Experiments of `template` tagged with this drill (all pages).
    pub async fn experiments_of(
        &self,
        template: &str,
        drill: &str,
    ) -> Result<Vec<Experiment>, AwsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .fis
                .list_experiments()
                .experiment_template_id(template)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("fis:ListExperiments", "FIS experiments", e))?;
            for e in page.experiments() {
                let ours = e
                    .tags()
                    .and_then(|t| t.get(crate::DRILL_TAG))
                    .is_some_and(|v| v == drill);
                if ours && e.experiment_template_id() == Some(template) {
                    out.push(experiment_of(
                        e.id(),
                        e.state(),
                        Vec::new(),
                        "fis:ListExperiments",
                    )?);
                }
            }
            match page.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(out),
            }
        }
    }
}
