//! Runs one drill: dispatches a validated drill to its kind's module, then judges the targets,
//! applies the cleanup policy and assembles the report. Emits events as it goes; every wait is
//! bounded and cancellable, and an abort still undoes the fault, tears down and reports.
//!
//! Boundary: this file is the contract between the kinds and the report ([`Ran`], [`RunError`]);
//! one file (or folder) per drill kind does the work: [`failover`], [`restore`],
//! [`backup_health`], [`posture`]. Phases the kinds share (building the target cancellably, the writer
//! pool, waiting for a first query) are [`phases`].

pub mod backup_health;
mod failover;
pub mod phases;
mod posture;
pub mod restore;

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

use crate::error::EnvError;
use crate::event::{Event, EventSink, Phase, Reporter};
use crate::judge::{evaluate, verdict};
use crate::measure;
use crate::report::*;
pub use crate::safety::claim::Session;
use crate::scenario::{Cleanup, Drill, LoadedScenario};
use crate::soc2;

/// A finished drill: its report, and the sandbox directories the cleanup policy kept.
pub struct Outcome {
    pub report: Report,
    pub kept: Vec<PathBuf>,
}

/// Why the drill stopped early.
struct Abort(String);

/// A drill that could not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Env(#[from] EnvError),
    /// Interrupted before the target was up; whatever was built has been removed.
    #[error("aborted during setup; nothing was left running")]
    AbortedInSetup,
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::AbortedInSetup => crate::error::EXIT_ABORTED,
            RunError::Env(_) => crate::error::EXIT_ENVIRONMENT,
        }
    }
}

/// Runs `drill` (the scenario's own, or a fleet member's) without a journal; see
/// [`run_session`].
pub async fn run(
    loaded: &LoadedScenario,
    drill: &Drill,
    reporter: &mut dyn Reporter,
    cancel: watch::Receiver<bool>,
) -> Result<Outcome, RunError> {
    run_session(loaded, drill, reporter, cancel, Session::new(loaded)).await
}

/// Runs the drill. `cancel` turning true (Ctrl-C, SIGTERM) aborts it: the fault is undone, the
/// target torn down, and the report says `aborted`. Errors before the drill starts (a missing
/// program, an unreachable target) are returned as [`EnvError`]. Every side effect is recorded
/// in the session's journal before it happens.
pub async fn run_session(
    loaded: &LoadedScenario,
    drill: &Drill,
    reporter: &mut dyn Reporter,
    cancel: watch::Receiver<bool>,
    session: Session,
) -> Result<Outcome, RunError> {
    let s = &loaded.scenario;
    // The drill clock's zero, on both clocks: every `t_ms` of the report counts from
    // `started_at`, so a time in it can be set beside a person's or another tool's.
    let t0 = Instant::now();
    let started_at = SystemTime::now();
    let Session {
        run_id,
        started_at: _,
        journal,
        templates,
        operator,
    } = session;
    let sink = EventSink::new(t0, reporter);

    let ran = match drill {
        Drill::Failover {
            target,
            fault,
            recovery,
            failover,
        } => {
            let failover = failover::Failover {
                loaded,
                target,
                script: failover::Script::Classic { fault, recovery },
                failover: *failover,
            };
            failover
                .run(&sink, cancel, &run_id, &journal, templates.as_ref())
                .await?
        }
        Drill::GameDay {
            target,
            steps,
            failover,
        } => {
            let Some(fault) = crate::scenario::steps::first_fault(steps) else {
                return Err(RunError::Env(EnvError::Database(
                    "a game day without a fault step".into(),
                )));
            };
            let inbox =
                match &operator {
                    Some(setup) => crate::operator::Inbox::open(setup, &run_id, &s.name, t0)
                        .map_err(|e| EnvError::Io {
                            what: "cannot create the game day's control file".into(),
                            source: e,
                        })?,
                    None => crate::operator::Inbox::closed(),
                };
            if let Some(path) = inbox.control_file() {
                sink.emit(Event::Setup(format!(
                    "people act here, or from any shell: firedrill step ack|done|note|abort \
                     --run {run_id} (control file {})",
                    path.display()
                )));
            }
            let failover = failover::Failover {
                loaded,
                target,
                script: failover::Script::Steps {
                    steps,
                    fault,
                    inbox,
                },
                failover: *failover,
            };
            failover
                .run(&sink, cancel, &run_id, &journal, templates.as_ref())
                .await?
        }
        Drill::Restore { source, restore } => {
            restore::run(restore::Context {
                loaded,
                restore,
                source,
                sink: &sink,
                cancel,
                run_id: &run_id,
                started_at,
                journal: journal.clone(),
                templates: templates.clone(),
            })
            .await?
        }
        Drill::BackupHealth { target, health } => {
            backup_health::run(target, health, &sink, cancel).await?
        }
        Drill::Posture { target, posture } => {
            posture::run(target, posture, &loaded.path, &sink, cancel).await?
        }
    };

    sink.emit(Event::Phase(Phase::Teardown));
    let workload_on = s.workload.connections > 0 && ran.ledger_checked;
    let mut measurements = ran.measurements;
    if ran.aborted.is_some() {
        // The drill stopped before recovery could be watched to its end (or firedrill rolled
        // the fault back itself): a recovery time would claim what nobody saw.
        measurements.rto_ms = None;
        measurements.read_rto_ms = None;
        measurements.time_to_first_success_ms = None;
    }
    let steps = match drill {
        Drill::GameDay { steps, .. } => &steps[..],
        Drill::Failover { .. }
        | Drill::Restore { .. }
        | Drill::BackupHealth { .. }
        | Drill::Posture { .. } => &[],
    };
    let targets = evaluate(
        &s.targets,
        steps,
        &measurements,
        workload_on,
        ran.aborted.is_some(),
    );
    let verdict = verdict(ran.aborted.is_some(), &targets);
    let keep = match s.cleanup {
        Cleanup::Always => false,
        Cleanup::OnSuccess => verdict != Verdict::Pass,
        Cleanup::Never => true,
    };
    let kept = (ran.teardown)(keep).await;
    for dir in &kept {
        sink.emit(Event::Setup(format!(
            "kept {} (cleanup: {:?}); remove it when done",
            dir.display(),
            s.cleanup
        )));
    }

    let report = Report {
        format_version: REPORT_FORMAT_VERSION,
        tool: Tool::this(),
        run_id: run_id.clone(),
        scenario: ScenarioRef::of(loaded),
        drill: match drill {
            Drill::Failover { .. } => DrillKind::Failover,
            Drill::Restore { .. } => DrillKind::Restore,
            Drill::BackupHealth { .. } => DrillKind::BackupHealth,
            Drill::Posture { .. } => DrillKind::Posture,
            Drill::GameDay { .. } => DrillKind::GameDay,
        },
        controls: controls(s),
        target: TargetRef {
            kind: s.target.kind().into(),
            description: ran.description,
        },
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        verdict,
        abort_reason: ran.aborted,
        steady_state: ran.steady,
        measurements,
        targets,
        timeline: sink.timeline(),
        series: ran.series,
        signer: None,
        chain: None,
        fleet: None,
    };
    let report = crate::secrets::redact_value(report);
    Ok(Outcome { report, kept })
}

/// Tears down what a drill built once its verdict is known: `true` keeps the sandbox
/// directories, which it returns. Asynchronous, so that waiting for postmasters to exit holds no
/// runtime thread.
pub type Teardown<'a> = Box<
    dyn FnOnce(
            bool,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<PathBuf>> + Send + 'a>>
        + Send
        + 'a,
>;

/// A drill that built nothing to tear down.
pub fn nothing_to_tear_down<'a>() -> Teardown<'a> {
    Box::new(|_| Box::pin(async { Vec::new() }))
}

/// What a drill of either kind hands back before teardown: the teardown waits for the verdict,
/// since the cleanup policy may keep a failed drill's sandboxes.
pub struct Ran<'a> {
    pub description: String,
    pub measurements: Measurements,
    pub steady: Option<SteadyStateResult>,
    pub series: Option<measure::ProbeSeries>,
    pub aborted: Option<String>,
    /// Whether the workload's ledger was read back (its integrity is then a target).
    pub ledger_checked: bool,
    /// Tears everything down; `true` keeps the sandbox directories, which it returns.
    pub teardown: Teardown<'a>,
}

/// The scenario's criteria, and those its posture targets evidence (each finding says which).
fn controls(s: &crate::scenario::Scenario) -> Vec<soc2::ControlRef> {
    let mut ids: Vec<&str> = s.controls.iter().map(String::as_str).collect();
    for (check, _) in crate::scenario::posture_targets(&s.targets) {
        for id in check.controls() {
            if !ids.contains(id) {
                ids.push(id);
            }
        }
    }
    ids.into_iter().filter_map(soc2::control).collect()
}
