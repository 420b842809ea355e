//! The drill report: versioned JSON that later tools (signing, `verify`, evidence summaries) read.
//! Verdicts are a pure function of the measurements and the targets, so they can be recomputed
//! from a report alone.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::TimelineEntry;
pub use crate::measure::RtoFrom;
use crate::measure::{Latency, Outage, ProbeSeries};
use crate::scenario::LoadedScenario;
use crate::soc2::ControlRef;

/// Bumped on any change a reader must know about; readers refuse versions they do not know.
pub const REPORT_FORMAT_VERSION: u32 = 6;
/// The oldest format this build reads (and verifies by the rules of its day): 1 judged targets
/// of an aborted drill like any other; 2 leaves none of them met; 3 embeds the scenario's text
/// and the raw probe record, from which `verify` re-derives targets and figures; 4 adds
/// posture drills (`measurements.posture` and their targets); 5 adds game days
/// (`drill: game-day`, `measurements.steps` and their `step:N` targets); 6 adds split brain
/// (`measurements.split_brain`, target `max_split_brain`).
pub const OLDEST_READABLE_FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    pub format_version: u32,
    pub tool: Tool,
    /// Unique id of this run; also tags its ledger rows.
    pub run_id: String,
    pub scenario: ScenarioRef,
    /// What kind of drill this was; evidence summaries expect each kind on a schedule.
    pub drill: DrillKind,
    pub target: TargetRef,
    /// The SOC 2 criteria this report evidences, each with what it shows.
    pub controls: Vec<ControlRef>,
    /// UTC, RFC 3339.
    /// The drill clock's zero: every `t_ms` and `*_ms` time of the report counts from it.
    pub started_at: String,
    pub finished_at: String,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_state: Option<SteadyStateResult>,
    pub measurements: Measurements,
    pub targets: Vec<TargetResult>,
    pub timeline: Vec<TimelineEntry>,
    /// Probe outcomes over time, binned, for the timeline picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<ProbeSeries>,
    /// Who signs this report (`report.json.sig`, SSHSIG); never the key itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignerRef>,
    /// Place in an evidence directory's hash chain (`run --evidence DIR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainLink>,
    /// The fleet run this drill was one member of (its summary lists them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FleetRef {
    /// The fleet run's id, as its `summary.json` has it.
    pub id: String,
    /// The DB instance this member restored.
    pub instance: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChainLink {
    /// 1 for the first report in the directory, then one more for each.
    pub sequence: u64,
    /// SHA-256 of the previous report's `report.json` bytes; none for the first.
    pub previous_sha256: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SignerRef {
    /// SHA-256 fingerprint of the signing key, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The SSHSIG namespace: `firedrill-report`.
    pub namespace: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    /// This build of firedrill.
    pub fn this() -> Tool {
        Tool {
            name: "firedrill".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScenarioRef {
    pub name: String,
    pub file: String,
    /// SHA-256 of the scenario file's bytes.
    pub sha256: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// The scenario file's exact text (format 3 on): `verify` re-parses it and re-derives every
    /// target and limit from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl ScenarioRef {
    pub fn of(loaded: &LoadedScenario) -> ScenarioRef {
        let s = &loaded.scenario;
        ScenarioRef {
            name: s.name.clone(),
            file: loaded.path.display().to_string(),
            sha256: loaded.sha256.clone(),
            description: s.description.clone(),
            runbook: s.runbook.as_ref().map(|p| p.display().to_string()),
            source: Some(loaded.source.clone()),
        }
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DrillKind {
    /// A fault injected into a running system and its recovery measured.
    Failover,
    /// A backup restored and its data proven.
    Restore,
    /// AWS Backup read: recovery-point ages and failed or missing jobs.
    BackupHealth,
    /// How backups are protected: encryption, immutability, retention, copies, deletion
    /// protection.
    Posture,
    /// A failover drill run step by step, people's steps timed against their targets.
    #[serde(rename = "game-day")]
    GameDay,
}

impl DrillKind {
    pub fn label(self) -> &'static str {
        match self {
            DrillKind::Failover => "failover",
            DrillKind::Restore => "restore",
            DrillKind::BackupHealth => "backup-health",
            DrillKind::Posture => "posture",
            DrillKind::GameDay => "game-day",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetRef {
    /// The scenario's `target.type`.
    pub kind: String,
    pub description: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Aborted,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SteadyStateResult {
    pub met: bool,
    pub write_success_pct: f64,
    pub read_success_pct: f64,
    pub write_p99_ms: f64,
    pub detail: String,
}

/// Every figure the drill measured. Times are milliseconds; `None` means not measured or not
/// reached (e.g. no recovery seen within the observation window).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Measurements {
    /// Fault instant, ms from the drill's start.
    pub fault_at_ms: Option<f64>,
    /// From the fault instant (`rto_from`) to the first write-probe success after which probes
    /// stayed up for the stability window.
    pub rto_ms: Option<f64>,
    pub read_rto_ms: Option<f64>,
    pub time_to_first_success_ms: Option<f64>,
    /// Span of acknowledged writes lost: from the earliest lost acknowledgement to the later of
    /// the fault and the last lost acknowledgement; 0 when none was lost.
    pub rpo_ms: Option<f64>,
    pub acknowledged_writes: u64,
    pub lost_writes: Option<u64>,
    pub lost_examples: Vec<String>,
    pub in_doubt_writes: u64,
    pub in_doubt_present: Option<u64>,
    pub integrity_failures: Option<u64>,
    /// Successful write probes after the fault, in percent.
    pub availability_pct: Option<f64>,
    pub read_availability_pct: Option<f64>,
    pub write_outages: Vec<Outage>,
    pub read_outages: Vec<Outage>,
    pub workload_writes_per_s: Option<f64>,
    pub latency: LatencyByPhase,
    /// Failover drills: the server the DSN reached for writes before the fault and after the
    /// observation, and whether another one had to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<WriterChange>,
    /// Failover drills: probes that failed after the fault, and whether some had to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_effect: Option<FaultEffect>,
    /// What RTO counts from: `fault` (the fault's start: a kill, a stop, an API failover),
    /// `marker` (the moment an operator's fault command printed `FIREDRILL_EFFECT`), or
    /// `first-failure` (the first failed write probe: for a fault whose effect begins some
    /// time after it starts, a command without the marker or a switchover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_from: Option<RtoFrom>,
    /// The write outage: from the start of the first failed write probe to the first success
    /// that lasted; `None` when no write probe failed or writes never recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_outage_ms: Option<f64>,
    /// When the fault's action began (a command's or an API call's start), ms from the
    /// drill's start; `fault_at_ms` is when it took effect, where that is known to differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_started_ms: Option<f64>,
    /// When the fault's action returned (a command's or an API call's end), ms from the
    /// drill's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_done_ms: Option<f64>,
    /// Failover drills: every probe's start, duration and outcome, from which `verify`
    /// recomputes RTO, outages and availability (format 3 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_record: Option<crate::record::ProbeRecord>,
    /// Patroni targets: the cluster before and after, and the RTO its settings should give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patroni: Option<crate::cluster::PatroniView>,
    /// Restore drills: the backup, the restore and every check of the restored data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreResult>,
    /// Backup-health drills: per resource. `rpo_ms` is then the largest recovery-point age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_health: Option<BackupHealthResult>,
    /// Posture drills: per resource, how its backups are protected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posture: Option<crate::posture::PostureResult>,
    /// Game days: every step, in order, with its times and who acted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<crate::gameday::StepResult>,
    /// Failover drills with a workload: which servers acknowledged writes and when, how long
    /// two did at once, and the lost writes split into diverged and lagged (format 6 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_brain: Option<crate::split::SplitBrain>,
}

/// What a restore drill did and found. In a restore drill `rto_ms` is the time from the start of
/// the restore to the first successful query on the restored database, and `rpo_ms` the age of
/// the recovery point when the drill ran.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RestoreResult {
    /// `pg-dump`, `pg-basebackup`, `pgbackrest`, `rds-snapshot`, `rds-point-in-time` or
    /// `aws-backup`.
    pub backup_kind: String,
    /// Whether firedrill took the backup in this drill (else an existing one was restored).
    pub backup_taken: bool,
    /// Where the backup came from (a path or a stanza; never credentials).
    pub backup_source: String,
    pub backup_bytes: Option<u64>,
    /// Time to take the backup, when firedrill took it.
    pub backup_ms: Option<f64>,
    /// The point the restored data stands for (UTC, RFC 3339).
    pub recovery_point: Option<String>,
    /// How the recovery point was chosen: `latest`, `time`, `after-backup`, `snapshot`.
    pub recovery_target: String,
    /// Time to restore (copy or load, and WAL recovery) until the cluster accepts writes.
    pub restore_ms: Option<f64>,
    /// Where the backup was restored, when not into a local sandbox: the temporary DB instance
    /// of an AWS restore (deleted at the end of the drill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_into: Option<String>,
    /// Backup bytes per second of restore time, in MB/s.
    pub throughput_mb_s: Option<f64>,
    /// Every check run, in order; a failed one fails the `verification` target.
    pub checks: Vec<Check>,
    /// Per-table comparison with the source at the recovery point.
    pub tables: Vec<TableResult>,
    /// Tables whose row count or content checksum differ (or that exist on one side only);
    /// `None` when the checksums were not computed.
    pub tables_differing: Option<u64>,
    /// The workload's writes against the recovery point, when firedrill wrote while it took
    /// the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<crate::ledger::PointCheck>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BackupHealthResult {
    /// Start of the window whose backup jobs were read (UTC, RFC 3339).
    pub window_start: String,
    pub resources: Vec<ResourceHealth>,
}

impl BackupHealthResult {
    /// Failed jobs, gaps and unreadable resources, over every resource.
    pub fn problems(&self) -> usize {
        self.resources.iter().map(|r| r.problems.len()).sum()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceHealth {
    /// The resource's ARN.
    pub resource: String,
    /// Its newest completed recovery point (UTC, RFC 3339), if any.
    pub newest_recovery_point: Option<String>,
    /// That point's age when the drill ran: the RPO exposure if the resource were lost now.
    pub age_ms: Option<f64>,
    pub recovery_points: u64,
    pub jobs_completed: u64,
    /// Failed, aborted, expired or partial jobs in the window, and spans without a completed
    /// job longer than `expect_every` (+ `grace`).
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    /// e.g. `restore`, `pg_verifybackup`, `wal archive`, `pg_amcheck`, `schema`, `assertion: NAME`.
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TableResult {
    /// `schema.table`.
    pub table: String,
    pub source_rows: Option<i64>,
    pub restored_rows: Option<i64>,
    /// Source and restored fingerprints are equal.
    pub matches: bool,
    /// Where they differ: `missing in the restored copy`, key ranges, keys.
    pub differences: Vec<String>,
}

impl RestoreResult {
    pub fn failed_checks(&self) -> u64 {
        self.checks.iter().filter(|c| !c.ok).count() as u64
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencyByPhase {
    /// Before the fault.
    pub steady: ProbeLatency,
    /// From the fault to the end of observation.
    pub after_fault: ProbeLatency,
}

/// The writable server as a client sees it, before the fault and after the observation. It
/// moved when its address or port differ (a promoted standby, a Multi-AZ failover's host behind
/// the same name, another Aurora instance); it restarted in place when only its start differs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WriterChange {
    /// What the drill required: `required`, `forbidden` or `any` (judged as `writer_moved`).
    pub expected: crate::scenario::FailoverTarget,
    pub before: Option<Server>,
    pub after: Option<Server>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Server {
    /// `address:port` as the server sees its own end of the connection.
    pub at: String,
    /// When its postmaster started.
    pub started: String,
    /// The cluster's system identifier (`pg_control_system()`): a restored or re-created
    /// cluster has another; a standby shares its primary's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_identifier: Option<String>,
    /// The writer's timeline: a promotion starts a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<u64>,
}

impl WriterChange {
    /// 1 when the writer moved, 0 when it did not; `None` when either side was not seen.
    pub fn moved(&self) -> Option<f64> {
        match (&self.before, &self.after) {
            (Some(b), Some(a)) => Some(if a.at != b.at { 1.0 } else { 0.0 }),
            _ => None,
        }
    }

    /// The same server, started again.
    pub fn restarted_in_place(&self) -> bool {
        matches!((&self.before, &self.after), (Some(b), Some(a)) if a.at == b.at && a.started != b.started)
    }
}

/// Whether the fault was felt: probes (write and read) that failed after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FaultEffect {
    pub expected: bool,
    pub failed_probes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeLatency {
    pub write_probe: Latency,
    pub read_probe: Latency,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetResult {
    /// `rto`, `rpo`, `max_lost_writes`, `min_availability_pct`, `integrity`, `checksums`,
    /// `backup_jobs`, `writer_moved` or `verification`.
    pub name: String,
    /// The limit, in the unit of `unit`.
    pub limit: f64,
    /// What was achieved, same unit; `None` when it could not be measured (a miss).
    pub achieved: Option<f64>,
    /// `ms`, `writes`, `pct`, `failures`, `tables` or `failed checks`.
    pub unit: String,
    pub met: bool,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Aborted => "ABORTED",
        }
    }
}

impl TargetResult {
    /// `v` in this target's unit, for people.
    pub fn show(&self, v: f64) -> String {
        match self.unit.as_str() {
            "ms" => format!("{v:.1} ms"),
            "pct" => format!("{v:.2}%"),
            _ => format!("{v}"),
        }
    }

    /// The limit as the scenario stated it: a posture target's is what each resource is held
    /// to (days, copies), its figure the resources short of it.
    pub fn show_limit(&self) -> String {
        match self.name.as_str() {
            "min_retention" => format!("{} days each", self.limit),
            "copies_in_other_region" => format!("{} each", self.limit),
            "encrypted" | "immutable" | "deletion_protection" => "every resource".into(),
            _ => self.show(self.limit),
        }
    }

    pub fn show_achieved(&self) -> String {
        self.achieved
            .map(|a| self.show(a))
            .unwrap_or_else(|| "not seen".into())
    }

    /// How the limit binds: `<=` for most, `>=` for availability and the fault's effect, `=`
    /// for the writer's move.
    pub fn relation(&self) -> &'static str {
        if crate::posture::Check::from_name(&self.name).is_some() {
            "for"
        } else if self.name == "writer_moved" {
            "="
        } else if self.name == "min_availability_pct" || self.name == "fault_effect" {
            ">="
        } else {
            "<="
        }
    }
}

/// Reads a report, refusing a `format_version` this build does not know. The version is read
/// first, so a report from a later firedrill is named as such rather than as malformed.
pub fn from_json(bytes: &[u8]) -> Result<Report, String> {
    #[derive(Deserialize)]
    struct Version {
        format_version: u32,
    }
    let v: Version =
        serde_json::from_slice(bytes).map_err(|e| format!("not a firedrill report: {e}"))?;
    if !(OLDEST_READABLE_FORMAT..=REPORT_FORMAT_VERSION).contains(&v.format_version) {
        return Err(format!(
            "format_version {} is not one this firedrill reads \
             ({OLDEST_READABLE_FORMAT} to {REPORT_FORMAT_VERSION})",
            v.format_version
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| format!("not a firedrill report: {e}"))
}

/// The JSON Schema of the report format.
pub fn json_schema() -> serde_json::Value {
    crate::schema::of::<Report>()
}
