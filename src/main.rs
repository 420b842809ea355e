//! The `firedrill` command: argument parsing, signal handling, output and exit codes over the
//! library's engine. No drill logic lives here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use firedrill::engine::{self, RunError};
use firedrill::error::*;
use firedrill::report::{Report, Verdict};
use firedrill::scenario::{self, ScenarioError};
use firedrill::{human, plan, report};
use tokio::sync::watch;

const EXIT_CODES: &str = "\
Exit codes:
  0  every target met
  1  the drill ran and missed a target
  2  invalid scenario or usage
  3  the drill was aborted (steady state not met, Ctrl-C, SIGTERM); the fault was rolled back
  4  environment error: a missing program or user, an unreachable target";

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
        "  firedrill run scenarios/sandbox-failover-async.yaml --out reports/ --format json\n\n",
        "Ctrl-C aborts: the fault is rolled back, the sandbox removed, and the report says aborted.\n\n",
        "Exit codes:\n  0 every target met, 1 a target missed, 2 invalid scenario or usage,\n",
        "  3 drill aborted, 4 environment error (missing program, unreachable target)"
    ))]
    Run {
        file: PathBuf,
        /// Write the report to DIR/report.json (DIR is created if missing).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// What to print on stdout when the drill ends.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Print the JSON Schema of the scenario format (or of the report format).
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
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("schema is JSON")
            );
            exit_code(EXIT_PASS)
        }
        Command::Run { file, out, format } => run(&file, out.as_deref(), format),
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

fn run(file: &Path, out: Option<&Path>, format: Format) -> ExitCode {
    let loaded = match scenario::load(file) {
        Ok(l) => l,
        Err(e) => return scenario_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit_code(EXIT_ENVIRONMENT);
        }
    };
    let result = runtime.block_on(async {
        let (cancel_tx, cancel_rx) = watch::channel(false);
        tokio::spawn(watch_signals(cancel_tx));
        let mut reporter = human::LiveReporter::stderr();
        engine::run(&loaded, &mut reporter, cancel_rx).await
    });
    let outcome = match result {
        Ok(o) => o,
        Err(RunError::AbortedInSetup) => {
            eprintln!("error: {}", RunError::AbortedInSetup);
            return exit_code(EXIT_ABORTED);
        }
        Err(RunError::Env(e)) => {
            eprintln!("error: {e}");
            return exit_code(EXIT_ENVIRONMENT);
        }
    };
    let report = outcome.report;
    if let Some(dir) = out {
        match write_report(dir, &report) {
            Ok(path) => eprintln!("report written to {}", path.display()),
            Err(e) => {
                // The drill's evidence must not vanish silently: print it, then fail.
                eprintln!("error: cannot write the report to {}: {e}", dir.display());
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report is JSON")
                );
                return exit_code(EXIT_ENVIRONMENT);
            }
        }
    }
    match format {
        Format::Human => print!("{}", human::summary(&report)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report is JSON")
        ),
    }
    let _ = std::io::stdout().flush();
    exit_code(match report.verdict {
        Verdict::Pass => EXIT_PASS,
        Verdict::Fail => EXIT_TARGET_MISSED,
        Verdict::Aborted => EXIT_ABORTED,
    })
}

/// Ctrl-C or SIGTERM asks the engine to abort; it rolls back and reports.
async fn watch_signals(cancel: watch::Sender<bool>) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("\ninterrupted: rolling back the fault and tearing down (this takes a few seconds)");
    let _ = cancel.send(true);
}

/// Writes DIR/report.json atomically: a temporary file, fsync, rename.
fn write_report(dir: &Path, report: &Report) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("report.json");
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, report)?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}
