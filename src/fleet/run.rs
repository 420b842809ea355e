//! Running a fleet: one restore drill per selected instance through the same engine as a single
//! drill, a bounded number at a time ([`super::limiter`]), each claimed, journaled and finished on
//! its own ([`crate::finish`]); then the summary, written and signed beside the reports.
//!
//! Boundary: the library runs the whole fleet and hands back what happened; the CLI only prints.

use crate::template::TemplateCache;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use super::limiter::{self, Limits};
use super::{FleetError, Member, MemberOutcome, MemberResult, Selection, Summary};
use crate::engine::{self, RunError, Session};
use crate::error::{EXIT_ABORTED, EXIT_ENVIRONMENT, EXIT_REFUSED};
use crate::event::Reporter;
use crate::finish::{self, Destination};
use crate::report::{FleetRef, Report};
use crate::safety::{claim, journal, lock::StateDir};
use crate::scenario::{FleetDrill, LoadedScenario};
use crate::signing::Signer;
use crate::{evidence, render};

/// What every member of a fleet shares.
pub struct FleetOptions {
    /// The scenario file, as journals and locks name it.
    pub file: PathBuf,
    pub state: StateDir,
    /// Where sandbox templates are cached, if anywhere.
    pub templates: Option<TemplateCache>,
    pub dest: Option<Destination>,
    pub signer: Option<Signer>,
    /// Progress lines (`[instance] ...`, the selection), for the terminal.
    pub progress: Arc<dyn Fn(String) + Send + Sync>,
    /// The live reporter of one member's events.
    pub reporter: fn(&str) -> Box<dyn Reporter>,
    /// This runner's part of the selection (`--shard`, an Indexed Job's index).
    pub shard: Option<crate::shard::Shard>,
}

/// A fleet that ran: its summary, every member's report, and where the summary went.
pub struct FleetOutcome {
    pub summary: Summary,
    pub reports: Vec<Report>,
    /// Reports that could not be written (their member counts as an error); shown, not lost.
    pub unwritten: Vec<Report>,
    /// `summary.json`'s directory, or why it could not be written there.
    pub summary_written: Option<Result<PathBuf, (PathBuf, String)>>,
}

struct Shared {
    opts: FleetOptions,
    fleet_id: String,
    cancel: watch::Receiver<bool>,
}

/// Selects the fleet's members and runs them, `fleet.concurrency` at a time with one start per
/// `fleet.start_every`; Ctrl-C (`cancel`) aborts the running members and starts no other. Refuses
/// before touching anything when the selection is empty, too large or ambiguous.
pub async fn run(
    loaded: &LoadedScenario,
    drill: &FleetDrill,
    opts: FleetOptions,
    cancel: watch::Receiver<bool>,
) -> Result<FleetOutcome, FleetError> {
    let fleet = &drill.fleet;
    let started_at = journal::now();
    let Selection {
        region,
        members,
        shard,
    } = super::members(loaded, drill, opts.shard).await?;
    let fleet_id = Session::new(loaded).run_id;
    (opts.progress)(format!(
        "fleet {fleet_id}: {} carry {}: {}; {} at a time, one start per {}",
        match shard {
            Some(s) => format!(
                "shard {}/{} takes {} of the {} DB instance(s) that",
                s.index,
                s.count,
                members.len(),
                s.selected
            ),
            None => format!("{} DB instance(s)", members.len()),
        },
        crate::scenario::describe_tags(&fleet.tags),
        members
            .iter()
            .map(|m| m.instance.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        fleet.concurrency,
        fleet.start_every
    ));
    let shared = Arc::new(Shared {
        opts,
        fleet_id: fleet_id.clone(),
        cancel: cancel.clone(),
    });
    let bounds = Limits {
        concurrency: usize::from(fleet.concurrency),
        start_every: fleet.start_every.get(),
    };
    let instances: Vec<String> = members.iter().map(|m| m.instance.clone()).collect();
    let job = shared.clone();
    let (results, peak) =
        limiter::run(members, bounds, cancel, move |m| run_member(job.clone(), m)).await;
    // A member whose drill panicked is that member's error, not the fleet's end.
    let results = results.into_iter().zip(&instances).map(|(r, inst)| {
        r.unwrap_or_else(|panic| {
            let detail = format!("the drill panicked: {panic}; run `firedrill recover`");
            let r = MemberResult::without_report(
                inst,
                MemberOutcome::Error,
                EXIT_ENVIRONMENT,
                None,
                detail,
            );
            (r, None)
        })
    });
    let mut summary = Summary::new(&fleet_id, loaded, fleet, region, &started_at);
    summary.shard = shard;
    let mut reports = Vec::new();
    let mut unwritten = Vec::new();
    let mut member_results = Vec::new();
    for (result, report) in results {
        if let Some(r) = report {
            if result.outcome == MemberOutcome::Error {
                unwritten.push(r.clone());
            }
            reports.push(r);
        }
        member_results.push(result);
    }
    summary.finish(member_results, peak, &journal::now());
    // In an S3 store each member's report is its own locked object; the summary, a view of
    // them, is printed.
    let local = matches!(
        shared.opts.dest,
        Some(Destination::Dir(_) | Destination::Evidence(_))
    );
    let summary_written = local.then(|| {
        let dir = summary_base(&shared);
        match write_summary(&dir, &summary, shared.opts.signer.as_ref()) {
            Ok(()) => Ok(dir),
            Err(e) => Err((dir, e.to_string())),
        }
    });
    Ok(FleetOutcome {
        summary,
        reports,
        unwritten,
        summary_written,
    })
}

/// Where the summary's relative report paths start.
fn summary_base(run: &Shared) -> PathBuf {
    match &run.opts.dest {
        Some(Destination::Dir(d)) => d.clone(),
        Some(Destination::Evidence(d)) => d.join(format!("fleet-{}", run.fleet_id)),
        Some(Destination::S3 { .. }) | None => PathBuf::from("."),
    }
}

/// summary.json (signed beside it with a signer, like a report) and summary.md.
fn write_summary(
    dir: &Path,
    summary: &Summary,
    signer: Option<&Signer>,
) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let mut bytes = serde_json::to_vec_pretty(summary)?;
    bytes.push(b'\n');
    if let Some(signer) = signer {
        evidence::write_atomically(
            &dir.join("summary.json.sig"),
            signer.sign(&bytes)?.as_bytes(),
        )?;
    }
    evidence::write_atomically(&dir.join("summary.json"), &bytes)?;
    evidence::write_atomically(
        &dir.join("summary.md"),
        render::fleet::markdown(summary).as_bytes(),
    )?;
    Ok(())
}

/// One member of a fleet, start to report: claimed, run through the engine, its report written.
async fn run_member(run: Arc<Shared>, m: Member) -> (MemberResult, Option<Report>) {
    let inst = m.instance.as_str();
    let say = |line: String| (run.opts.progress)(format!("[{inst}] {line}"));
    if *run.cancel.borrow() {
        let why = "not started: the fleet was interrupted".into();
        let skipped =
            MemberResult::without_report(inst, MemberOutcome::Skipped, EXIT_ABORTED, None, why);
        return (skipped, None);
    }
    let mut session = Session::new(&m.loaded);
    let run_id = session.run_id.clone();
    let claimed = match claim::claim(&run.opts.state, &run.opts.file, &m.loaded, &session) {
        Ok(c) => c,
        Err(e) => {
            say(format!("error: {e}"));
            let outcome = if e.exit_code() == EXIT_REFUSED {
                MemberOutcome::Refused
            } else {
                MemberOutcome::Error
            };
            let r = MemberResult::without_report(inst, outcome, e.exit_code(), None, e.to_string());
            return (r, None);
        }
    };
    for w in &claimed.warnings {
        say(format!("warning: {w}"));
    }
    session.journal = claimed.journal.clone();
    session.templates = run.opts.templates.clone();
    let mut reporter = (run.opts.reporter)(inst);
    let result = engine::run_session(
        &m.loaded,
        &m.drill,
        reporter.as_mut(),
        run.cancel.clone(),
        session,
    )
    .await;
    let journal = claimed.journal;
    let mut report = match result {
        Ok(o) => o.report,
        Err(kind) => {
            let (e, code) = finish::failed(&kind, &journal);
            say(format!("error: {e}"));
            let outcome = match kind {
                RunError::AbortedInSetup => MemberOutcome::Aborted,
                RunError::Env(_) => MemberOutcome::Error,
            };
            return (
                MemberResult::without_report(inst, outcome, code, Some(run_id), e),
                None,
            );
        }
    };
    let fleet = Some(FleetRef {
        id: run.fleet_id.clone(),
        instance: inst.to_owned(),
    });
    let signer = run.opts.signer.as_ref();
    let written = finish::finish(
        &mut report,
        &journal,
        signer,
        fleet,
        run.opts.dest.as_ref(),
        Some(inst),
    )
    .await;
    let mut result = MemberResult::of_report(inst, &report);
    match written {
        Ok(None) => {}
        Ok(Some(w)) => {
            say(format!("report written to {}", w.path.display()));
            result.report_sha256 = Some(w.sha256);
            result.report = Some(finish::relative_to(&summary_base(&run), &w.path));
        }
        Err(e) => {
            // The drill's evidence must not vanish silently: handed back, and counted an error.
            say(format!("error: cannot write the report: {e}"));
            result.outcome = MemberOutcome::Error;
            result.exit_code = EXIT_ENVIRONMENT;
            result.detail = Some(format!("report not written: {e}"));
        }
    }
    (result, Some(report))
}
