//! The `firedrill` command: argument parsing, signal handling, output and exit codes over the
//! library's engine. No drill logic lives here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use firedrill::engine::{self, RunError};
use firedrill::error::*;
use firedrill::report::Verdict;
use firedrill::safety::journal::{self, Journal};
use firedrill::safety::lock::{self, StateDir};
use firedrill::safety::{claim, recover, signals};
use firedrill::scenario::{self, ScenarioError};
use firedrill::{evidence, fleet, human, plan, render, report, secrets, signing, summary};
use tokio::sync::watch;

const EXIT_CODES: &str = "\
Exit codes:
  0  every target met
  1  the drill ran and missed a target
  2  invalid scenario or usage
  3  the drill was aborted (steady state not met, Ctrl-C, SIGTERM); the fault was rolled back
  4  environment error: a missing program or user, an unreachable target
  5  refused: the target is in use by another drill, has an unrecovered journal
     (run `firedrill recover`), or is production and was not confirmed";

#[derive(Parser)]
#[command(
    name = "firedrill",
    version,
    about = "Prove that a database survives failure: run a drill, measure RTO, RPO and lost writes.",
    after_help = EXIT_CODES,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where drill journals and target locks live [default: $FIREDRILL_STATE_DIR, else
    /// $XDG_STATE_HOME/firedrill, else ~/.local/state/firedrill]
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Check scenario files without touching anything; every problem is listed at once.
    #[command(after_help = "Examples:\n  firedrill validate scenarios/*.yaml")]
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print every step and side effect a drill would take (a dry run).
    #[command(after_help = "Examples:\n  firedrill plan scenarios/sandbox-failover-sync.yaml")]
    Plan { file: PathBuf },
    /// Run a drill and report what a client experienced.
    #[command(after_help = concat!(
        "Examples:\n",
        "  firedrill run scenarios/sandbox-failover-sync.yaml\n",
        "  firedrill run scenarios/sandbox-failover-async.yaml --out reports/ --format json\n",
        "  firedrill run scenarios/sandbox-failover-sync.yaml --out reports/x --sign-key firedrill_ed25519\n",
        "  firedrill run scenarios/rds-fleet-monthly-restore.yaml --confirm rds-fleet-monthly-restore \\\n",
        "    --out reports/fleet   # one drill per tagged instance: reports/fleet/<instance>/, summary.json\n\n",
        "Verify a signed report with OpenSSH alone:\n",
        "  ssh-keygen -Y verify -f allowed_signers -I firedrill -n firedrill-report \\\n",
        "    -s reports/x/report.json.sig < reports/x/report.json\n\n",
        "Ctrl-C or SIGTERM aborts: the fault is rolled back, the sandbox removed, and the report\n",
        "says aborted; a second Ctrl-C skips waiting. Every side effect is journaled first, so a\n",
        "drill that was killed outright is undone by `firedrill recover`.\n\n",
        "A scenario with `environment: production` runs only with --confirm NAME (its name) or\n",
        "after the name is typed at a terminal.\n\n",
        "Exit codes:\n  0 every target met, 1 a target missed, 2 invalid scenario or usage,\n",
        "  3 drill aborted, 4 environment error (missing program, unreachable target),\n",
        "  5 refused (target in use, unrecovered journal, production not confirmed)"
    ))]
    Run {
        file: PathBuf,
        /// Write the report to DIR/report.json (DIR is created if missing).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// What to print on stdout when the drill ends.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Sign the report with this OpenSSH Ed25519 key: report.json.sig beside report.json.
        #[arg(long, value_name = "KEY")]
        sign_key: Option<PathBuf>,
        /// Add the signed report to the hash chain of an evidence directory, in
        /// DIR/NNNNNN-<scenario>/ (needs --sign-key).
        #[arg(
            long,
            value_name = "DIR",
            conflicts_with = "out",
            requires = "sign_key"
        )]
        evidence: Option<PathBuf>,
        /// Also write the JUnit XML (one test case per target) to FILE, for CI.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Also write Prometheus metrics to FILE, atomically, for node_exporter's textfile
        /// collector (e.g. /var/lib/node_exporter/textfile/firedrill-NAME.prom).
        #[arg(long, value_name = "FILE")]
        textfile: Option<PathBuf>,
        /// Keep every sandbox and backup the drill built, whatever the outcome (overrides the
        /// scenario's `cleanup`); their directories are printed.
        #[arg(long)]
        keep: bool,
        /// Run a production scenario unattended: NAME must be the scenario's name.
        #[arg(long, value_name = "NAME")]
        confirm: Option<String>,
    },
    /// Undo what a killed drill left behind (a paused process, a sandbox, a fault), from its
    /// journal; prints what it did. Safe to run twice: the second run finds nothing to do.
    #[command(after_help = concat!(
        "Examples:\n",
        "  firedrill recover              # every journal with something left to undo\n",
        "  firedrill recover ~/.local/state/firedrill/journals/2026-11-23T10-00-00Z-1a2b3c4d.jsonl\n",
        "  firedrill recover --list       # show them, undo nothing\n\n",
        "Exit codes:\n  0 everything undone (or nothing to undo), 4 an undo failed (it stays in the\n",
        "  journal; fix the cause and run recover again), 5 the journal's drill is still running"
    ))]
    Recover {
        /// One journal; default: every journal in the state directory with pending effects.
        journal: Option<PathBuf>,
        /// List what would be undone, and undo nothing.
        #[arg(long)]
        list: bool,
    },
    /// Find and delete AWS resources drills created and did not remove (RDS instances and
    /// snapshots tagged firedrill:drill). Credentials come from the usual AWS chain.
    #[command(after_help = concat!(
        "Examples:\n",
        "  firedrill cleanup --region eu-west-1 --dry-run     # list every drill's leftovers\n",
        "  firedrill cleanup --region eu-west-1 --drill 1a2b3c4d5e6f7a8b\n\n",
        "Exit codes:\n  0 nothing left (or --dry-run), 4 an AWS error (the message names the IAM\n",
        "  action that was denied)"
    ))]
    Cleanup {
        /// Only this drill's resources (its run id, as in its report); default: every drill's.
        #[arg(long, value_name = "RUN_ID")]
        drill: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// A profile of ~/.aws/config (SSO and credential_process included).
        #[arg(long)]
        profile: Option<String>,
        /// Another endpoint (a VPC endpoint; moto server in tests).
        #[arg(long, value_name = "URL")]
        endpoint_url: Option<String>,
        /// List them, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check every report of an evidence directory: signatures, the chain, and each verdict
    /// recomputed from its measurements. Exit 1 on any problem.
    #[command(
        after_help = "Examples:\n  firedrill verify evidence/ --allowed-signers allowed_signers"
    )]
    Verify {
        dir: PathBuf,
        /// OpenSSH allowed_signers file (the keys whose signatures count).
        #[arg(long, value_name = "FILE")]
        allowed_signers: PathBuf,
    },
    /// Summarize an evidence directory over an audit period: every drill, verdicts, the
    /// RTO/RPO trend, and scheduled drills that did not happen. Exit 1 when a scheduled drill is
    /// missing or (with --allowed-signers) the evidence does not verify.
    #[command(after_help = concat!(
        "Examples:\n",
        "  firedrill evidence evidence/ --from 2026-01-01 --to 2026-12-31 --allowed-signers allowed_signers\n",
        "  firedrill evidence evidence/ --from 2026-07-01 --to 2026-09-30 --expect restore=monthly \\\n",
        "    --expect sandbox-failover-sync=quarterly --out q3-evidence\n\n",
        "Writes summary.md, summary.html and drills.csv into --out."
    ))]
    Evidence {
        dir: PathBuf,
        /// First day of the period (UTC), YYYY-MM-DD.
        #[arg(long, value_parser = summary::Date::parse)]
        from: summary::Date,
        /// Last day of the period (UTC), inclusive.
        #[arg(long, value_parser = summary::Date::parse)]
        to: summary::Date,
        /// KIND_OR_SCENARIO=monthly|quarterly|yearly; repeatable. Default: restore=monthly and
        /// failover=quarterly.
        #[arg(long, value_name = "WHAT=EVERY")]
        expect: Vec<summary::Expectation>,
        /// Verify signatures, chain and verdicts too (OpenSSH allowed_signers file).
        #[arg(long, value_name = "FILE")]
        allowed_signers: Option<PathBuf>,
        /// Directory for the summary files [default: firedrill-evidence-FROM-to-TO]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Rewrite the views of a report (Markdown, HTML, JUnit, Prometheus) from its report.json.
    #[command(after_help = "Examples:\n  firedrill render evidence/000007-nightly/report.json")]
    Render {
        /// A report.json; the views are written beside it unless --out is given.
        report: PathBuf,
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Write an Ed25519 key pair (OpenSSH format) for signing reports.
    #[command(after_help = concat!(
        "Examples:\n",
        "  firedrill keygen --out keys/firedrill_ed25519\n\n",
        "Prints the line auditors put in their allowed_signers file."
    ))]
    Keygen {
        /// Private key path (mode 0600); the public key goes to PATH.pub. Never overwritten.
        #[arg(long, value_name = "PATH", default_value = "firedrill_ed25519")]
        out: PathBuf,
        /// The principal named in the printed allowed_signers line.
        #[arg(long, default_value = "firedrill")]
        identity: String,
    },
    /// Print the JSON Schema of the scenario format (or of the report, or a fleet's summary).
    #[command(
        after_help = "Examples:\n  firedrill schema > scenario.schema.json\n  firedrill schema report"
    )]
    Schema {
        #[arg(value_enum, default_value_t = SchemaKind::Scenario)]
        kind: SchemaKind,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaKind {
    Scenario,
    Report,
    /// A fleet run's summary.json.
    FleetSummary,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit_code(EXIT_PASS)
                }
                _ => exit_code(EXIT_INVALID),
            };
        }
    };
    match cli.command {
        Command::Validate { files } => validate(&files),
        Command::Plan { file } => match scenario::load(&file) {
            Ok(l) => {
                print!("{}", plan::render(&l.scenario));
                exit_code(EXIT_PASS)
            }
            Err(e) => scenario_error(&e),
        },
        Command::Schema { kind } => {
            let schema = match kind {
                SchemaKind::Scenario => scenario::json_schema(),
                SchemaKind::Report => report::json_schema(),
                SchemaKind::FleetSummary => fleet::json_schema(),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("schema is JSON")
            );
            exit_code(EXIT_PASS)
        }
        Command::Run {
            file,
            out,
            format,
            sign_key,
            evidence,
            junit,
            textfile,
            keep,
            confirm,
        } => {
            if sign_key.is_some() && out.is_none() && evidence.is_none() {
                eprintln!(
                    "error: --sign-key needs --out DIR or --evidence DIR to write the signature"
                );
                return exit_code(EXIT_INVALID);
            }
            let dest = match (out, evidence) {
                (Some(dir), _) => Some(Destination::Dir(dir)),
                (None, Some(dir)) => Some(Destination::Evidence(dir)),
                (None, None) => None,
            };
            let extra = Extra {
                junit,
                textfile,
                keep,
                confirm,
                state_dir: cli.state_dir,
            };
            run(&file, dest, format, sign_key.as_deref(), extra)
        }
        Command::Recover { journal, list } => recover(cli.state_dir, journal, list),
        Command::Cleanup {
            drill,
            region,
            profile,
            endpoint_url,
            dry_run,
        } => {
            let options = firedrill_aws::Options {
                region,
                profile,
                endpoint_url,
                max_attempts: None,
            };
            cleanup(&options, drill.as_deref(), dry_run)
        }
        Command::Evidence {
            dir,
            from,
            to,
            expect,
            allowed_signers,
            out,
        } => evidence_summary(&dir, from, to, expect, allowed_signers.as_deref(), out),
        Command::Render { report, out } => render(&report, out),
        Command::Verify {
            dir,
            allowed_signers,
        } => verify(&dir, &allowed_signers),
        Command::Keygen { out, identity } => match signing::keygen(&out, &identity) {
            Ok(public) => {
                eprintln!(
                    "wrote {} (private, mode 0600) and {}",
                    out.display(),
                    signing::pub_path(&out).display()
                );
                eprintln!("auditors add this line to their allowed_signers file:");
                println!("{}", signing::allowed_signers_line(&identity, &public));
                exit_code(EXIT_PASS)
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit_code(EXIT_INVALID)
            }
        },
    }
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let mut bad = false;
    for f in files {
        match scenario::load(f) {
            Ok(_) => println!("{}: ok", f.display()),
            Err(e) => {
                bad = true;
                eprintln!("{}", render_scenario_error(&e));
            }
        }
    }
    exit_code(if bad { EXIT_INVALID } else { EXIT_PASS })
}

fn render_scenario_error(e: &ScenarioError) -> String {
    e.0.iter()
        .map(|d| format!("error: {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn scenario_error(e: &ScenarioError) -> ExitCode {
    eprintln!("{}", render_scenario_error(e));
    exit_code(EXIT_INVALID)
}

/// Where a report goes.
enum Destination {
    /// DIR/report.json
    Dir(PathBuf),
    /// The next entry of an evidence chain in DIR.
    Evidence(PathBuf),
}

/// Files written at fixed paths besides the report, for CI and dashboards.
struct Extra {
    junit: Option<PathBuf>,
    textfile: Option<PathBuf>,
    keep: bool,
    confirm: Option<String>,
    state_dir: Option<PathBuf>,
}

fn run(
    file: &Path,
    dest: Option<Destination>,
    format: Format,
    sign_key: Option<&Path>,
    extra: Extra,
) -> ExitCode {
    let mut loaded = match scenario::load(file) {
        Ok(l) => l,
        Err(e) => return scenario_error(&e),
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
    let runtime = match runtime(&mut tokio::runtime::Builder::new_multi_thread()) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    if let Err(code) = confirm_production(file, &loaded, extra.confirm.as_deref()) {
        return code;
    }
    if let Ok(p) = std::env::var("PGPASSWORD") {
        secrets::register(&p);
    }
    if loaded.scenario.fleet.is_some() {
        return run_fleet(file, &loaded, dest, format, signer, extra, runtime);
    }
    let mut session = engine::Session::new(&loaded);
    // Held until the process ends, however it ends.
    let state = match state_dir(extra.state_dir.clone()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (_lock, journal) = match open_journal(file, &loaded, &session, &state) {
        Ok(j) => j,
        Err(code) => return code,
    };
    session.journal = journal.clone();
    let result = runtime.block_on(async {
        let (cancel_tx, cancel_rx) = watch::channel(false);
        tokio::spawn(signals::watch(cancel_tx));
        let mut reporter = human::LiveReporter::stderr();
        engine::run_session(&loaded, &mut reporter, cancel_rx, session).await
    });
    let outcome = match result {
        Ok(o) => o,
        Err(kind) => {
            let (_, code) = drill_error(&kind, &journal, "");
            if let Some(p) = journal.path() {
                eprintln!("journal: {}", p.display());
            }
            return exit_code(code);
        }
    };
    journal.finished(&outcome.report.verdict.label().to_lowercase());
    let mut report = outcome.report;
    report.signer = signer.as_ref().map(|s| report::SignerRef {
        fingerprint: s.fingerprint(),
        namespace: signing::NAMESPACE.into(),
    });
    if let Some(dest) = dest {
        let written = match dest {
            Destination::Dir(dir) => evidence::write(&dir, &report, signer.as_ref()),
            Destination::Evidence(dir) => evidence::append(&dir, &mut report, signer.as_ref()),
        };
        match written {
            Ok(path) => eprintln!("report written to {}", path.display()),
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
    }
    if let Err(code) = write_extras(&extra, std::slice::from_ref(&report)) {
        return code;
    }
    print_outcome(format, &human::summary(&report), &report);
    exit_code(match report.verdict {
        Verdict::Pass => EXIT_PASS,
        Verdict::Fail => EXIT_TARGET_MISSED,
        Verdict::Aborted => EXIT_ABORTED,
    })
}

/// What every member of a fleet shares.
struct FleetRun {
    file: PathBuf,
    state: StateDir,
    dest: Option<Destination>,
    signer: Option<signing::Signer>,
    fleet_id: String,
    cancel: watch::Receiver<bool>,
}

/// Runs a fleet scenario: one restore drill per selected instance, `fleet.concurrency` at a
/// time, each with its own lock, journal and report (DIR/<instance>/ or the evidence chain),
/// then DIR/summary.json and summary.md. The exit code is the highest of the members'.
fn run_fleet(
    file: &Path,
    loaded: &scenario::LoadedScenario,
    dest: Option<Destination>,
    format: Format,
    signer: Option<signing::Signer>,
    extra: Extra,
    runtime: tokio::runtime::Runtime,
) -> ExitCode {
    let state = match state_dir(extra.state_dir.clone()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let Some(limits) = loaded.scenario.fleet.clone() else {
        return exit_code(EXIT_INVALID);
    };
    let started_at = journal::now();
    let result = runtime.block_on(async {
        let (cancel_tx, cancel) = watch::channel(false);
        tokio::spawn(signals::watch(cancel_tx));
        let fleet::Selection { region, members } = fleet::members(loaded).await?;
        let fleet_id = engine::Session::new(loaded).run_id;
        eprintln!(
            "fleet {fleet_id}: {} DB instance(s) carry {}: {}; {} at a time, one start per {}",
            members.len(),
            scenario::describe_tags(&limits.tags),
            members
                .iter()
                .map(|m| m.instance.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            limits.concurrency,
            limits.start_every
        );
        let run = std::sync::Arc::new(FleetRun {
            file: file.to_owned(),
            state,
            dest,
            signer,
            fleet_id: fleet_id.clone(),
            cancel: cancel.clone(),
        });
        let bounds = firedrill_aws::fleet::Limits {
            concurrency: usize::from(limits.concurrency),
            start_every: limits.start_every.get(),
        };
        let job_run = run.clone();
        let (results, peak) = firedrill_aws::fleet::run(members, bounds, cancel, move |m| {
            run_member(job_run.clone(), m)
        })
        .await;
        Ok::<_, fleet::FleetError>((run, region, results, peak))
    });
    let (run, region, results, peak) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: {}: {}",
                file.display(),
                secrets::redact(&e.to_string())
            );
            return exit_code(e.exit_code());
        }
    };
    let mut summary = fleet::Summary::new(&run.fleet_id, loaded, &limits, region, &started_at);
    let (results, reports): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    let reports: Vec<report::Report> = reports.into_iter().flatten().collect();
    summary.finish(results, peak, &journal::now());
    let code = summary.exit_code;
    if run.dest.is_some() {
        let dir = summary_base(&run);
        match write_summary(&dir, &summary, run.signer.as_ref()) {
            Ok(()) => eprintln!(
                "fleet summary written to {}",
                dir.join("summary.json").display()
            ),
            Err(e) => {
                eprintln!(
                    "error: cannot write the fleet summary in {}: {e}",
                    dir.display()
                );
                println!(
                    "{}",
                    serde_json::to_string_pretty(&summary).expect("summary is JSON")
                );
                return exit_code(EXIT_ENVIRONMENT);
            }
        }
    }
    if let Err(code) = write_extras(&extra, &reports) {
        return code;
    }
    print_outcome(format, &fleet::text(&summary), &summary);
    exit_code(code)
}

/// A drill that ended without a report: the error (redacted) printed and journaled, and its
/// exit code.
fn drill_error(kind: &RunError, journal: &Journal, prefix: &str) -> (String, u8) {
    let e = secrets::redact(&kind.to_string()).into_owned();
    journal.finished(&format!("error: {e}"));
    eprintln!("{prefix}error: {e}");
    let code = match kind {
        RunError::AbortedInSetup => EXIT_ABORTED,
        RunError::Env(_) => EXIT_ENVIRONMENT,
        RunError::NotValidated => EXIT_INVALID,
    };
    (e, code)
}

/// `--junit` and `--textfile`: every report in one file each.
fn write_extras(extra: &Extra, reports: &[report::Report]) -> Result<(), ExitCode> {
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

/// The human text, or the JSON, on stdout.
fn print_outcome(format: Format, human: &str, json: &impl serde::Serialize) {
    match format {
        Format::Human => print!("{human}"),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(json).expect("serializable to JSON")
        ),
    }
    let _ = std::io::stdout().flush();
}

/// Where the summary's relative report paths start.
fn summary_base(run: &FleetRun) -> PathBuf {
    match &run.dest {
        Some(Destination::Dir(d)) => d.clone(),
        Some(Destination::Evidence(d)) => d.join(format!("fleet-{}", run.fleet_id)),
        None => PathBuf::from("."),
    }
}

/// summary.json (signed beside it with a signer, like a report) and summary.md.
fn write_summary(
    dir: &Path,
    summary: &fleet::Summary,
    signer: Option<&signing::Signer>,
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
    evidence::write_atomically(&dir.join("summary.md"), fleet::markdown(summary).as_bytes())?;
    Ok(())
}

/// One member of a fleet, start to report: claimed, run through the engine, its report written.
async fn run_member(
    run: std::sync::Arc<FleetRun>,
    m: fleet::Member,
) -> (fleet::MemberResult, Option<report::Report>) {
    use fleet::{MemberOutcome, MemberResult};
    let inst = m.instance.as_str();
    if *run.cancel.borrow() {
        let why = "not started: the fleet was interrupted".into();
        let skipped =
            MemberResult::without_report(inst, MemberOutcome::Skipped, EXIT_ABORTED, None, why);
        return (skipped, None);
    }
    let mut session = engine::Session::new(&m.loaded);
    let run_id = session.run_id.clone();
    let claimed = match claim::claim(&run.state, &run.file, &m.loaded, &session) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("[{inst}] error: {e}");
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
        eprintln!("[{inst}] warning: {w}");
    }
    session.journal = claimed.journal.clone();
    let mut reporter = human::LiveReporter::member(inst);
    let result = engine::run_session(&m.loaded, &mut reporter, run.cancel.clone(), session).await;
    let journal = claimed.journal;
    let outcome = match result {
        Ok(o) => o,
        Err(kind) => {
            let (e, code) = drill_error(&kind, &journal, &format!("[{inst}] "));
            let outcome = match kind {
                RunError::AbortedInSetup => MemberOutcome::Aborted,
                RunError::Env(_) | RunError::NotValidated => MemberOutcome::Error,
            };
            return (
                MemberResult::without_report(inst, outcome, code, Some(run_id), e),
                None,
            );
        }
    };
    journal.finished(&outcome.report.verdict.label().to_lowercase());
    let mut report = outcome.report;
    report.signer = run.signer.as_ref().map(|s| report::SignerRef {
        fingerprint: s.fingerprint(),
        namespace: signing::NAMESPACE.into(),
    });
    report.fleet = Some(report::FleetRef {
        id: run.fleet_id.clone(),
        instance: inst.to_owned(),
    });
    let mut result = MemberResult::of_report(inst, &report);
    let written = match &run.dest {
        None => return (result, Some(report)),
        Some(Destination::Dir(dir)) => {
            evidence::write(&dir.join(inst), &report, run.signer.as_ref())
        }
        Some(Destination::Evidence(dir)) => evidence::append(dir, &mut report, run.signer.as_ref()),
    };
    match written.and_then(|path| Ok((std::fs::read(&path)?, path))) {
        Ok((bytes, path)) => {
            eprintln!("[{inst}] report written to {}", path.display());
            result.report_sha256 = Some(evidence::sha256(&bytes));
            result.report = Some(relative_to(&summary_base(&run), &path));
        }
        Err(e) => {
            // The drill's evidence must not vanish silently: print it, and count it an error.
            eprintln!("[{inst}] error: cannot write the report: {e}");
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("report is JSON")
            );
            result.outcome = MemberOutcome::Error;
            result.exit_code = EXIT_ENVIRONMENT;
            result.detail = Some(format!("report not written: {e}"));
        }
    }
    (result, Some(report))
}

/// `path` as seen from `base`, for links in a summary (`orders-1/report.json`,
/// `../000012-nightly.orders-1/report.json`).
fn relative_to(base: &Path, path: &Path) -> String {
    if let Ok(p) = path.strip_prefix(base) {
        return p.display().to_string();
    }
    match base.parent().map(|up| path.strip_prefix(up)) {
        Some(Ok(p)) => format!("../{}", p.display()),
        _ => path.display().to_string(),
    }
}

fn verify(dir: &Path, allowed_signers: &Path) -> ExitCode {
    let allowed = match signing::read_allowed_signers(allowed_signers) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return exit_code(EXIT_INVALID);
        }
    };
    let v = match evidence::verify(dir, &allowed) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            return exit_code(EXIT_INVALID);
        }
    };
    let mark = |ok: bool| if ok { "ok" } else { "FAIL" };
    println!(
        "{:<32} {:>5} {:<28} {:<8} {:<9} {:<6} recomputed",
        "report", "seq", "scenario", "verdict", "signature", "chain"
    );
    for r in &v.rows {
        println!(
            "{:<32} {:>5} {:<28} {:<8} {:<9} {:<6} {}",
            r.entry,
            r.sequence
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            r.scenario,
            r.verdict
                .map(|v| format!("{v:?}").to_lowercase())
                .unwrap_or_else(|| "-".into()),
            mark(r.signature.is_ok()),
            mark(r.chain_ok),
            mark(r.verdict_ok)
        );
    }
    if let Some((entry, sha)) = &v.head {
        println!("\nnewest report: {entry} (report.json SHA-256 {sha})");
        println!("record it outside this directory: a later verify must still reach it");
    }
    if v.problems.is_empty() {
        println!(
            "\n{} reports verified: signatures, chain, index and verdicts all hold",
            v.rows.len()
        );
        exit_code(EXIT_PASS)
    } else {
        eprintln!();
        for p in &v.problems {
            eprintln!("problem: {p}");
        }
        exit_code(EXIT_TARGET_MISSED)
    }
}

fn evidence_summary(
    dir: &Path,
    from: summary::Date,
    to: summary::Date,
    expect: Vec<summary::Expectation>,
    allowed_signers: Option<&Path>,
    out: Option<PathBuf>,
) -> ExitCode {
    if from > to {
        eprintln!("error: --from {from} is after --to {to}");
        return exit_code(EXIT_INVALID);
    }
    let allowed = match allowed_signers
        .map(signing::read_allowed_signers)
        .transpose()
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return exit_code(EXIT_INVALID);
        }
    };
    let expect = if expect.is_empty() {
        summary::default_expectations()
    } else {
        expect
    };
    let s = match summary::summarize(dir, from, to, &expect, allowed.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            return exit_code(EXIT_INVALID);
        }
    };
    let out = out.unwrap_or_else(|| PathBuf::from(format!("firedrill-evidence-{from}-to-{to}")));
    let csv = match summary::csv(&s) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot write the CSV: {e}");
            return exit_code(EXIT_ENVIRONMENT);
        }
    };
    let files = [
        ("summary.md", summary::markdown(&s)),
        ("summary.html", summary::html(&s)),
        ("drills.csv", csv),
    ];
    if let Err(e) = std::fs::create_dir_all(&out).and_then(|_| {
        files.iter().try_for_each(|(name, text)| {
            evidence::write_atomically(&out.join(name), text.as_bytes())
        })
    }) {
        eprintln!("error: cannot write to {}: {e}", out.display());
        return exit_code(EXIT_ENVIRONMENT);
    }
    for d in &s.drills {
        println!(
            "{}  {:<8} {:<32} {}",
            d.report.started_at,
            d.report.verdict.label(),
            d.entry,
            d.report.scenario.name
        );
    }
    for g in &s.gaps {
        println!("MISSING  {} in {} to {}", g.expectation, g.from, g.to);
    }
    let problems = s.verification.as_ref().map_or(0, |p| p.len());
    println!(
        "\n{} drills, {} passed, {} failed, {} aborted; {} scheduled drill(s) missing; {}",
        s.drills.len(),
        s.count(Verdict::Pass),
        s.count(Verdict::Fail),
        s.count(Verdict::Aborted),
        s.gaps.len(),
        match &s.verification {
            None => "signatures not checked".to_owned(),
            Some(_) => format!("{problems} verification problem(s)"),
        }
    );
    eprintln!("summary written to {}", out.display());
    exit_code(if s.gaps.is_empty() && problems == 0 {
        EXIT_PASS
    } else {
        EXIT_TARGET_MISSED
    })
}

fn render(path: &Path, out: Option<PathBuf>) -> ExitCode {
    let read = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| report::from_json(&b));
    let r = match read {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return exit_code(EXIT_INVALID);
        }
    };
    let dir = out.unwrap_or_else(|| {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    });
    let written = std::fs::create_dir_all(&dir).and_then(|_| evidence::write_views(&dir, &r));
    match written {
        Ok(()) => {
            eprintln!(
                "wrote report.md, report.html, junit.xml and metrics.prom in {}",
                dir.display()
            );
            exit_code(EXIT_PASS)
        }
        Err(e) => {
            eprintln!("error: cannot write to {}: {e}", dir.display());
            exit_code(EXIT_ENVIRONMENT)
        }
    }
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
            eprint!("{}", plan::render(s));
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

fn state_dir(explicit: Option<PathBuf>) -> Result<StateDir, ExitCode> {
    StateDir::resolve(explicit).map_err(|e| {
        eprintln!("error: {e}");
        exit_code(EXIT_ENVIRONMENT)
    })
}

fn recover(state_dir: Option<PathBuf>, journal: Option<PathBuf>, list: bool) -> ExitCode {
    let state = match self::state_dir(state_dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let explicit = journal.is_some();
    let reads = match journal {
        Some(p) => match journal::Read::open(&p) {
            Ok(r) => vec![r],
            Err(e) => {
                eprintln!("error: {e}");
                return exit_code(EXIT_INVALID);
            }
        },
        None => recover::pending(&state),
    };
    let reads: Vec<_> = reads
        .into_iter()
        .filter(|r| !r.pending().is_empty())
        .collect();
    if reads.is_empty() {
        println!(
            "nothing to recover: no journal{} has an effect left to undo",
            if explicit {
                ""
            } else {
                " in the state directory"
            }
        );
        return exit_code(EXIT_PASS);
    }
    if list {
        for r in &reads {
            let (run_id, scenario, target, pid) = r.started();
            println!(
                "{} (drill {run_id} of {scenario} on {target}, pid {pid}{}):",
                r.path.display(),
                if lock::is_held(&state, target) {
                    ", still running"
                } else {
                    ""
                }
            );
            for (_, what, undo) in r.pending() {
                println!("  pending: {what} -> {}", undo.describe());
            }
        }
        return exit_code(EXIT_PASS);
    }
    let runtime = match runtime(&mut tokio::runtime::Builder::new_current_thread()) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let mut code = EXIT_PASS;
    for r in reads {
        match runtime.block_on(recover::recover(&state, &r.path)) {
            Ok(done) => {
                println!(
                    "{} (drill {} of {}):",
                    done.journal.display(),
                    done.run_id,
                    done.scenario
                );
                for (what, how) in &done.undone {
                    println!("  undone: {what} -> {how}");
                }
                for (what, why) in &done.failed {
                    println!("  FAILED: {what}: {why}");
                }
                if done.failed.is_empty() {
                    println!("  recovered: {} effect(s) undone", done.undone.len());
                } else {
                    code = code.max(EXIT_ENVIRONMENT);
                }
            }
            Err(e @ recover::RecoverError::Running { .. }) => {
                eprintln!("{}: {e}", if explicit { "error" } else { "skipped" });
                if explicit {
                    code = code.max(EXIT_REFUSED);
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                code = code.max(EXIT_ENVIRONMENT);
            }
        }
    }
    exit_code(code)
}

fn runtime(builder: &mut tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, ExitCode> {
    builder.enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        exit_code(EXIT_ENVIRONMENT)
    })
}

fn cleanup(options: &firedrill_aws::Options, drill: Option<&str>, dry_run: bool) -> ExitCode {
    let runtime = match runtime(&mut tokio::runtime::Builder::new_current_thread()) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let aws = firedrill_aws::Aws::connect(options).await;
        let found = aws.tagged(drill).await?;
        for l in &found {
            let (firedrill_aws::Leftover::Instance { drill, .. }
            | firedrill_aws::Leftover::Snapshot { drill, .. }) = l;
            println!("found: {l} (drill {drill}, {})", aws.region);
        }
        if dry_run || found.is_empty() {
            return Ok((found.len(), Vec::new()));
        }
        aws.cleanup(drill).await.map(|d| (found.len(), d))
    });
    match result {
        Ok((0, _)) => {
            println!(
                "nothing to clean up: no resource tagged {}",
                firedrill_aws::DRILL_TAG
            );
            exit_code(EXIT_PASS)
        }
        Ok((n, _)) if dry_run => {
            println!("{n} resource(s) left by drills; run without --dry-run to delete them");
            exit_code(EXIT_PASS)
        }
        Ok((_, deleted)) => {
            for d in &deleted {
                println!("deleted: {d}");
            }
            println!("{} resource(s) deleted", deleted.len());
            exit_code(EXIT_PASS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit_code(EXIT_ENVIRONMENT)
        }
    }
}
