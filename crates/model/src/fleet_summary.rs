//! A fleet run's `summary.json`: the serialized contract (each member's outcome, exit code and
//! report pin) and the rule that gives the fleet its exit code. Choosing and running the members
//! is the engine's; the Markdown and terminal views are `firedrill-evidence`'s.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::exit::{EXIT_ABORTED, EXIT_ENVIRONMENT, EXIT_PASS, EXIT_REFUSED, EXIT_TARGET_MISSED};
use crate::report::{Report, ScenarioRef, Tool, Verdict};
use crate::scenario::{Fleet, LoadedScenario};

/// The summary format version this build writes: 2 adds `shard`.
pub const SUMMARY_FORMAT_VERSION: u32 = 2;

/// Which part of the selection this run took, when the fleet was sharded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ShardRef {
    /// 0-based, as `JOB_COMPLETION_INDEX`.
    pub index: u32,
    pub count: u32,
    /// Instances the tags selected, across every shard.
    pub selected: usize,
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
    /// This run's shard of the selection (`members` are its part only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRef>,
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
            shard: None,
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
            "{} instance(s){}: {}; at most {} at once (limit {})",
            self.members.len(),
            self.shard
                .map(|s| format!(
                    " (shard {}/{} of the {} selected)",
                    s.index, s.count, s.selected
                ))
                .unwrap_or_default(),
            parts.join(", "),
            self.peak_concurrency,
            self.concurrency
        )
    }
}

/// The JSON Schema of `summary.json` (`firedrill schema fleet-summary`).
pub fn json_schema() -> serde_json::Value {
    crate::schema::of::<Summary>()
}
