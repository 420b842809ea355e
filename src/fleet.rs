//! Fleet drills: one scenario with `fleet:` runs its restore drill on every RDS instance that
//! carries the given tags, a bounded number at a time, each member a drill of its own (its own
//! run id, journal, lock, temporary instance and report), and a summary over them all.
//!
//! Boundary: choosing the members and summarizing their outcomes. Running them is the CLI's
//! (it owns locks, journals and output) over [`firedrill_aws::fleet::run`]; each member runs
//! through the same engine as a single drill.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use firedrill_aws::{Aws, DRILL_TAG, Instance};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aws_target::AwsRef;
use crate::dsn::{PLACEHOLDERS, Template};
use crate::error::{EXIT_ABORTED, EXIT_ENVIRONMENT, EXIT_PASS, EXIT_REFUSED, EXIT_TARGET_MISSED};
use crate::render::show_ms;
use crate::report::{Report, ScenarioRef, Tool, Verdict};
use crate::scenario::{Fleet, LoadedScenario, Target};

/// The summary format version this build writes.
pub const SUMMARY_FORMAT_VERSION: u32 = 1;

/// One instance's drill, before it runs.
pub struct Member {
    pub instance: String,
    /// The fleet's scenario narrowed to this instance, named `<fleet name>.<instance>`.
    pub loaded: LoadedScenario,
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{0}")]
    Env(String),
    #[error("{0}; nothing was touched")]
    Refused(String),
}

impl FleetError {
    pub fn exit_code(&self) -> u8 {
        match self {
            FleetError::Env(_) => EXIT_ENVIRONMENT,
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
pub fn member(loaded: &LoadedScenario, instance: &str) -> LoadedScenario {
    let mut m = loaded.clone();
    m.scenario.fleet = None;
    m.scenario.name = format!("{}.{instance}", loaded.scenario.name);
    if let Target::AwsRds(t) = &mut m.scenario.target {
        t.instance = Some(instance.to_owned());
    }
    m
}

/// The members a fleet run selected, and the region it looked in (as AWS resolved it: the
/// scenario's, the profile's or the environment's).
pub struct Selection {
    pub region: String,
    pub members: Vec<Member>,
}

/// Lists the instances the fleet selects and makes one member each; refuses before touching
/// anything when none or too many are selected or a DSN cannot tell the instances apart.
pub async fn members(loaded: &LoadedScenario) -> Result<Selection, FleetError> {
    let s = &loaded.scenario;
    let (Some(fleet), Target::AwsRds(spec)) = (&s.fleet, &s.target) else {
        return Err(FleetError::Env("not a fleet scenario".into()));
    };
    check_dsn(&spec.dsn_env, "target.dsn_env")?;
    if let Some(env) = s
        .restore
        .as_ref()
        .and_then(|r| r.instance.as_ref())
        .and_then(|i| i.dsn_env.as_deref())
    {
        check_dsn(env, "restore.instance.dsn_env")?;
    }
    let at = AwsRef {
        region: spec.region.clone(),
        profile: spec.profile.clone(),
        endpoint_url: spec.endpoint_url.clone(),
    };
    let aws = Aws::connect(&at.options()).await;
    let all = aws
        .instances()
        .await
        .map_err(|e| FleetError::Env(format!("aws: {e}")))?;
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
    let members = ids
        .into_iter()
        .map(|instance| Member {
            loaded: member(loaded, &instance),
            instance,
        })
        .collect();
    Ok(Selection {
        region: aws.region.clone(),
        members,
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

pub fn describe_tags(tags: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("the tag(s) {}", pairs.join(", "))
}

/// What became of one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberOutcome {
    /// Every target met.
    Pass,
    /// The drill ran and missed a target.
    Fail,
    /// Interrupted (Ctrl-C, SIGTERM) after it started; what it created was deleted.
    Aborted,
    /// It could not run: AWS or the database refused or was unreachable.
    Error,
    /// Refused before touching anything (the instance is in another drill, or has an
    /// unrecovered journal).
    Refused,
    /// Never started: the fleet was interrupted first.
    Skipped,
}

impl MemberOutcome {
    pub fn from_verdict(v: Verdict) -> MemberOutcome {
        match v {
            Verdict::Pass => MemberOutcome::Pass,
            Verdict::Fail => MemberOutcome::Fail,
            Verdict::Aborted => MemberOutcome::Aborted,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            MemberOutcome::Pass => "PASS",
            MemberOutcome::Fail => "FAIL",
            MemberOutcome::Aborted => "ABORTED",
            MemberOutcome::Error => "ERROR",
            MemberOutcome::Refused => "REFUSED",
            MemberOutcome::Skipped => "SKIPPED",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemberResult {
    pub instance: String,
    pub outcome: MemberOutcome,
    /// The exit code this member alone would have had.
    pub exit_code: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Its `report.json`, relative to the summary's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// SHA-256 of that `report.json`'s bytes, so that the summary pins each report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_sha256: Option<String>,
    /// Restore RTO: restore call to the first query on the restored instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_rto_ms: Option<f64>,
    /// RPO exposure: the recovery point's age when the drill ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_ms: Option<f64>,
    /// Why it did not pass: the targets missed, the abort reason or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl MemberResult {
    /// A member that ran to a report.
    pub fn of_report(instance: &str, r: &Report) -> MemberResult {
        let outcome = MemberOutcome::from_verdict(r.verdict);
        let missed: Vec<String> = r
            .targets
            .iter()
            .filter(|t| !t.met)
            .map(|t| format!("{} missed", t.name))
            .collect();
        MemberResult {
            instance: instance.to_owned(),
            outcome,
            exit_code: exit_code(outcome),
            run_id: Some(r.run_id.clone()),
            report: None,
            report_sha256: None,
            restore_rto_ms: r.measurements.rto_ms,
            rpo_ms: r.measurements.rpo_ms,
            detail: r
                .abort_reason
                .clone()
                .or_else(|| (!missed.is_empty()).then(|| missed.join(", "))),
        }
    }

    /// A member that never reached a report.
    pub fn without_report(
        instance: &str,
        outcome: MemberOutcome,
        code: u8,
        run_id: Option<String>,
        detail: String,
    ) -> MemberResult {
        MemberResult {
            instance: instance.to_owned(),
            outcome,
            exit_code: code,
            run_id,
            report: None,
            report_sha256: None,
            restore_rto_ms: None,
            rpo_ms: None,
            detail: Some(detail),
        }
    }
}

fn exit_code(o: MemberOutcome) -> u8 {
    match o {
        MemberOutcome::Pass => EXIT_PASS,
        MemberOutcome::Fail => EXIT_TARGET_MISSED,
        MemberOutcome::Aborted | MemberOutcome::Skipped => EXIT_ABORTED,
        MemberOutcome::Error => EXIT_ENVIRONMENT,
        MemberOutcome::Refused => EXIT_REFUSED,
    }
}

/// `summary.json`: the fleet run as a whole, each member's outcome and report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub format_version: u32,
    pub tool: Tool,
    pub fleet_id: String,
    pub scenario: ScenarioRef,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub finished_at: String,
    pub region: String,
    /// The tags that selected the members.
    pub tags: BTreeMap<String, String>,
    pub concurrency: u16,
    pub start_every_ms: f64,
    /// The most members seen running at once (never above `concurrency`).
    pub peak_concurrency: usize,
    /// The fleet's exit code: the highest of its members'.
    pub exit_code: u8,
    pub members: Vec<MemberResult>,
}

impl Summary {
    pub fn new(
        fleet_id: &str,
        loaded: &LoadedScenario,
        fleet: &Fleet,
        region: String,
        started_at: &str,
    ) -> Summary {
        Summary {
            format_version: SUMMARY_FORMAT_VERSION,
            tool: Tool::this(),
            fleet_id: fleet_id.to_owned(),
            scenario: ScenarioRef::of(loaded),
            started_at: started_at.to_owned(),
            finished_at: started_at.to_owned(),
            region,
            tags: fleet.tags.clone(),
            concurrency: fleet.concurrency,
            start_every_ms: fleet.start_every.get().as_secs_f64() * 1000.0,
            peak_concurrency: 0,
            exit_code: EXIT_PASS,
            members: Vec::new(),
        }
    }

    /// Records the members' results, in selection order.
    pub fn finish(&mut self, members: Vec<MemberResult>, peak: usize, finished_at: &str) {
        self.exit_code = members
            .iter()
            .map(|m| m.exit_code)
            .max()
            .unwrap_or(EXIT_PASS);
        self.members = members;
        self.peak_concurrency = peak;
        self.finished_at = finished_at.to_owned();
    }

    pub fn count(&self, o: MemberOutcome) -> usize {
        self.members.iter().filter(|m| m.outcome == o).count()
    }

    /// One line: how many passed, failed, and so on.
    pub fn tally(&self) -> String {
        let parts: Vec<String> = [
            MemberOutcome::Pass,
            MemberOutcome::Fail,
            MemberOutcome::Aborted,
            MemberOutcome::Error,
            MemberOutcome::Refused,
            MemberOutcome::Skipped,
        ]
        .into_iter()
        .map(|o| (o, self.count(o)))
        .filter(|(o, n)| *n > 0 || *o == MemberOutcome::Pass)
        .map(|(o, n)| format!("{n} {}", o.label().to_lowercase()))
        .collect();
        format!(
            "{} instance(s): {}; at most {} at once (limit {})",
            self.members.len(),
            parts.join(", "),
            self.peak_concurrency,
            self.concurrency
        )
    }
}

/// The JSON Schema of `summary.json` (`firedrill schema fleet-summary`).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Summary)).expect("a schema is plain JSON")
}

fn rows(s: &Summary) -> Vec<[String; 6]> {
    s.members
        .iter()
        .map(|m| {
            [
                m.instance.clone(),
                m.outcome.label().to_owned(),
                show_ms(m.restore_rto_ms),
                show_ms(m.rpo_ms),
                m.report.clone().unwrap_or_else(|| "-".into()),
                m.detail.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

const HEADER: [&str; 6] = [
    "instance",
    "result",
    "restore RTO",
    "RPO exposure",
    "report",
    "detail",
];

/// The summary as Markdown, for humans and the audit file.
pub fn markdown(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Fleet restore drill `{}`\n", s.scenario.name);
    let _ = writeln!(
        o,
        "- fleet run: `{}`\n- scenario file: `{}` (SHA-256 `{}`)\n- instances: those in {} \
         with {}\n- started {}, finished {}\n- {}\n- exit code: {}\n",
        s.fleet_id,
        s.scenario.file,
        s.scenario.sha256,
        s.region,
        describe_tags(&s.tags),
        s.started_at,
        s.finished_at,
        s.tally(),
        s.exit_code
    );
    let _ = writeln!(o, "| {} |", HEADER.join(" | "));
    let _ = writeln!(o, "|{}", "---|".repeat(HEADER.len()));
    for r in rows(s) {
        let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(o, "| {} |", cells.join(" | "));
    }
    o
}

/// The summary as a plain table, for the terminal.
pub fn text(s: &Summary) -> String {
    let rows = rows(s);
    let mut width = HEADER.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = width[i]);
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut o = line(&HEADER.map(String::from));
    for r in &rows {
        o.push_str(&line(r));
    }
    let _ = writeln!(o, "\n{}", s.tally());
    o
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
