//! `firedrill run`: one drill, or a fleet of them, from a scenario file to a report on disk,
//! signed and chained when asked, with the exit code cron and CI branch on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use firedrill::engine;
use firedrill::error::*;
use firedrill::finish::{self, Destination};
use firedrill::fleet::{self, run::FleetOptions};
use firedrill::safety::journal::Journal;
use firedrill::safety::lock::{self, StateDir};
use firedrill::safety::{claim, signals};
use firedrill::{evidence, human, plan, render, report, scenario, secrets, signing};
use tokio::sync::watch;

use super::{Format, print_outcome};

/// Files written at fixed paths besides the report, for CI and dashboards.
pub struct Extra {
    pub junit: Option<PathBuf>,
    pub textfile: Option<PathBuf>,
    pub keep: bool,
    pub confirm: Option<String>,
    pub state_dir: Option<PathBuf>,
    /// This runner's part of a fleet.
    pub shard: Option<firedrill::shard::Shard>,
    /// A Prometheus Pushgateway to push the metrics to.
    pub pushgateway: Option<String>,
    /// Game days: who acts at this terminal, and whether `firedrill step` may reach the drill.
    pub operator: Option<String>,
    pub no_control: bool,
}

/// Where the command line said the report goes.
pub enum Dest {
    Local(Destination),
    /// `--evidence s3://...`: checked, and connected to, before the drill.
    S3 {
        at: firedrill::store::Location,
        retain: std::time::Duration,
    },
}

pub fn run(
    file: &Path,
    dest: Option<Dest>,
    format: Format,
    sign_key: Option<&Path>,
    extra: Extra,
) -> ExitCode {
    let mut loaded = match scenario::load(file) {
        Ok(l) => l,
        Err(e) => return super::scenario_error(&e),
    };
    if extra.keep {
        loaded.scenario.cleanup = scenario::Cleanup::Never;
    }
    // Loaded before the drill: a bad key must not cost a drill.
    let signer = match sign_key.map(signing::Signer::load).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: signing key {e}");
            return exit_code(EXIT_INVALID);
        }
    };
    let runtime = match super::runtime(&mut tokio::runtime::Builder::new_multi_thread()) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    if let Err(code) = confirm_production(file, &loaded, extra.confirm.as_deref()) {
        return code;
    }
    if let Ok(p) = std::env::var("PGPASSWORD") {
        secrets::register(&p);
    }
    // A bucket that could not keep the evidence is refused before anything is touched.
    // `--shard`, else an Indexed Job's index and the count beside it.
    let shard = match extra.shard {
        Some(s) => Some(s),
        None => match firedrill::shard::Shard::from_env(
            std::env::var("JOB_COMPLETION_INDEX").ok().as_deref(),
            std::env::var("FIREDRILL_SHARDS").ok().as_deref(),
        ) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return exit_code(EXIT_INVALID);
            }
        },
    };
    let extra = Extra { shard, ..extra };
    if let (Some(s), scenario::Run::Drill(_)) = (shard, &loaded.run) {
        eprintln!(
            "error: {}: --shard {s} (or JOB_COMPLETION_INDEX/FIREDRILL_SHARDS): only a fleet \
             scenario (`fleet:`) is split into shards",
            file.display()
        );
        return exit_code(EXIT_INVALID);
    }
    let dest = match dest {
        Some(Dest::S3 { at, retain }) => {
            let aws = runtime.block_on(firedrill_aws::Aws::connect(&Default::default()));
            match runtime.block_on(firedrill::store::check_writable(&aws, &at)) {
                Ok(()) => {}
                Err(firedrill::store::Unfit::NotWorm(e)) => {
                    eprintln!("error: {e}; nothing was touched");
                    return exit_code(EXIT_REFUSED);
                }
                Err(firedrill::store::Unfit::Aws(e)) => {
                    eprintln!("error: {at}: {e}; nothing was touched");
                    return exit_code(EXIT_ENVIRONMENT);
                }
            }
            Some(Destination::S3 {
                aws: Box::new(aws),
                at,
                retain,
            })
        }
        Some(Dest::Local(d)) => Some(d),
        None => None,
    };
    let drill = match &loaded.run {
        scenario::Run::Drill(d) => d,
        scenario::Run::Fleet(fleet) => {
            return run_fleet(file, &loaded, fleet, dest, format, signer, extra, runtime);
        }
    };
    let mut session = engine::Session::new(&loaded);
    // Held until the process ends, however it ends.
    let state = match super::state_dir(extra.state_dir.clone()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let scenario::Drill::GameDay { steps, .. } = drill {
        match people(&loaded, steps, &extra, &state) {
            Ok(setup) => session.operator = Some(setup),
            Err(code) => return code,
        }
    }
    let (_lock, journal) = match open_journal(file, &loaded, &session, &state) {
        Ok(j) => j,
        Err(code) => return code,
    };
    session.journal = journal.clone();
    session.templates = super::templates(&state);
    let result = runtime.block_on(async {
        let (cancel_tx, cancel_rx) = watch::channel(false);
        tokio::spawn(signals::watch(cancel_tx));
        let mut reporter = human::LiveReporter::stderr();
        engine::run_session(&loaded, drill, &mut reporter, cancel_rx, session).await
    });
    let mut report = match result {
        Ok(o) => o.report,
        Err(kind) => {
            let (e, code) = finish::failed(&kind, &journal);
            eprintln!("error: {e}");
            if let Some(p) = journal.path() {
                eprintln!("journal: {}", p.display());
            }
            return exit_code(code);
        }
    };
    match runtime.block_on(finish::finish(
        &mut report,
        &journal,
        signer.as_ref(),
        None,
        dest.as_ref(),
        None,
    )) {
        Ok(None) => {}
        Ok(Some(w)) => eprintln!("report written to {}", w.path.display()),
        Err(e) => {
            // The drill's evidence must not vanish silently: print it, then fail.
            eprintln!("error: cannot write the report: {e}");
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("report is JSON")
            );
            return exit_code(EXIT_ENVIRONMENT);
        }
    }
    if let Err(code) = write_extras(&extra, std::slice::from_ref(&report)) {
        return code;
    }
    print_outcome(format, &human::summary(&report), &report);
    exit_code(finish::exit_code(report.verdict))
}

/// Who can act in a game day: this terminal when stdin is one, `firedrill step` unless
/// `--no-control`. A person's step nobody could act on is refused before anything is touched.
fn people(
    loaded: &scenario::LoadedScenario,
    steps: &[scenario::Step],
    extra: &Extra,
    state: &StateDir,
) -> Result<firedrill::operator::Setup, ExitCode> {
    let setup = firedrill::operator::Setup {
        operator: extra
            .operator
            .clone()
            .unwrap_or_else(firedrill::operator::Setup::default_operator),
        control_dir: (!extra.no_control).then(|| state.control()),
        terminal: firedrill::operator::Setup::stdin_is_terminal(),
    };
    if setup.terminal || setup.control_dir.is_some() {
        return Ok(setup);
    }
    if let Some(i) = steps.iter().position(scenario::Step::needs_a_person) {
        let d = scenario::located(
            loaded,
            &format!("steps[{i}]"),
            format!(
                "a `{}` step needs a person, and nobody can act: stdin is not a terminal and \
                 --no-control shuts out `firedrill step`; run it at a terminal or drop \
                 --no-control",
                steps[i].kind()
            ),
        );
        eprintln!("error: {d}");
        return Err(exit_code(EXIT_INVALID));
    }
    Ok(setup)
}

/// Runs a fleet scenario through the library ([`fleet::run::run`]) and prints what happened:
/// one report per member (DIR/<instance>/ or the evidence chain), then DIR/summary.json and
/// summary.md. The exit code is the highest of the members'.
#[allow(clippy::too_many_arguments)]
fn run_fleet(
    file: &Path,
    loaded: &scenario::LoadedScenario,
    fleet: &scenario::FleetDrill,
    dest: Option<Destination>,
    format: Format,
    signer: Option<signing::Signer>,
    extra: Extra,
    runtime: tokio::runtime::Runtime,
) -> ExitCode {
    let state = match super::state_dir(extra.state_dir.clone()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let opts = FleetOptions {
        file: file.to_owned(),
        templates: super::templates(&state),
        state,
        dest,
        signer,
        progress: Arc::new(|line| eprintln!("{line}")),
        reporter: |inst| Box::new(human::LiveReporter::member(inst)),
        shard: extra.shard,
    };
    let result = runtime.block_on(async {
        let (cancel_tx, cancel) = watch::channel(false);
        tokio::spawn(signals::watch(cancel_tx));
        fleet::run::run(loaded, fleet, opts, cancel).await
    });
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "error: {}: {}",
                file.display(),
                secrets::redact(&e.to_string())
            );
            return exit_code(e.exit_code());
        }
    };
    for r in &outcome.unwritten {
        println!(
            "{}",
            serde_json::to_string_pretty(r).expect("report is JSON")
        );
    }
    match &outcome.summary_written {
        None => {}
        Some(Ok(dir)) => eprintln!(
            "fleet summary written to {}",
            dir.join("summary.json").display()
        ),
        Some(Err((dir, e))) => {
            eprintln!(
                "error: cannot write the fleet summary in {}: {e}",
                dir.display()
            );
            println!(
                "{}",
                serde_json::to_string_pretty(&outcome.summary).expect("summary is JSON")
            );
            return exit_code(EXIT_ENVIRONMENT);
        }
    }
    if let Err(code) = write_extras(&extra, &outcome.reports) {
        return code;
    }
    print_outcome(
        format,
        &render::fleet::text(&outcome.summary),
        &outcome.summary,
    );
    exit_code(outcome.summary.exit_code)
}

/// `--junit` and `--textfile`: every report in one file each; `--pushgateway`: each report's
/// metrics in its own group.
fn write_extras(extra: &Extra, reports: &[report::Report]) -> Result<(), ExitCode> {
    if let Some(url) = &extra.pushgateway {
        let pushed = super::runtime(&mut tokio::runtime::Builder::new_current_thread())
            .map(|rt| rt.block_on(firedrill::pushgateway::push_all(url, reports)));
        match pushed {
            Ok(Ok(n)) => eprintln!("metrics pushed to {url} ({n} group(s))"),
            Ok(Err(e)) => {
                eprintln!("error: {e}");
                return Err(exit_code(EXIT_ENVIRONMENT));
            }
            Err(code) => return Err(code),
        }
    }
    for (path, text) in [
        (&extra.junit, render::junit::render_all(reports)),
        (&extra.textfile, render::prometheus::render_all(reports)),
    ] {
        if let Some(path) = path
            && let Err(e) = evidence::write_atomically(path, text.as_bytes())
        {
            eprintln!("error: cannot write {}: {e}", path.display());
            return Err(exit_code(EXIT_ENVIRONMENT));
        }
    }
    Ok(())
}

/// A production scenario runs only when confirmed: by `--confirm NAME`, or by typing the name
/// at a terminal. Refusing costs nothing: nothing has been touched yet.
fn confirm_production(
    file: &Path,
    loaded: &scenario::LoadedScenario,
    confirm: Option<&str>,
) -> Result<(), ExitCode> {
    use std::io::IsTerminal;
    let s = &loaded.scenario;
    if s.environment != Some(scenario::Environment::Production) {
        return Ok(());
    }
    match confirm {
        Some(name) if name == s.name => Ok(()),
        Some(name) => {
            eprintln!(
                "error: {}: --confirm {name:?} is not this scenario's name ({:?}); nothing was touched",
                file.display(),
                s.name
            );
            Err(exit_code(EXIT_REFUSED))
        }
        None if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() => {
            eprint!("{}", plan::render(loaded));
            eprint!(
                "\n{} runs against PRODUCTION. Type its name ({}) to go on: ",
                file.display(),
                s.name
            );
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            if answer.trim() == s.name {
                Ok(())
            } else {
                eprintln!("error: not confirmed; nothing was touched");
                Err(exit_code(EXIT_REFUSED))
            }
        }
        None => {
            eprintln!(
                "error: {}: scenario {} runs against production; pass --confirm {} to run it \
                 unattended (or run it at a terminal to confirm); nothing was touched",
                file.display(),
                s.name,
                s.name
            );
            Err(exit_code(EXIT_REFUSED))
        }
    }
}

/// Claims the drill's target ([`claim::claim`]), printing a refusal or warnings.
fn open_journal(
    file: &Path,
    loaded: &scenario::LoadedScenario,
    session: &engine::Session,
    state: &StateDir,
) -> Result<(lock::TargetLock, Journal), ExitCode> {
    match claim::claim(state, file, loaded, session) {
        Ok(c) => {
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            Ok((c.lock, c.journal))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(exit_code(e.exit_code()))
        }
    }
}
