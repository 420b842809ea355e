//! The CLI's commands, over the library: each parses nothing (clap did), calls the engine or
//! the evidence tools, prints, and returns the exit code. No drill logic lives here.

pub mod args;
pub mod audit;
pub mod recover;
pub mod run;
pub mod step;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use firedrill::error::*;
use firedrill::safety::lock::StateDir;
use firedrill::scenario::{self, ScenarioError};
use firedrill::template::TemplateCache;

/// What `run` prints on stdout when the drill ends.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

pub fn validate(files: &[PathBuf]) -> ExitCode {
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

pub fn scenario_error(e: &ScenarioError) -> ExitCode {
    eprintln!("{}", render_scenario_error(e));
    exit_code(EXIT_INVALID)
}

/// The human text, or the JSON, on stdout.
pub fn print_outcome(format: Format, human: &str, json: &impl serde::Serialize) {
    match format {
        Format::Human => print!("{human}"),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(json).expect("serializable to JSON")
        ),
    }
    let _ = std::io::stdout().flush();
}

pub fn state_dir(explicit: Option<PathBuf>) -> Result<StateDir, ExitCode> {
    StateDir::resolve(explicit).map_err(|e| {
        eprintln!("error: {e}");
        exit_code(EXIT_ENVIRONMENT)
    })
}

/// Where sandbox templates are cached: `$FIREDRILL_TEMPLATE_DIR` (a directory several state
/// directories share, e.g. a CI cache; `off` for none), else `<state dir>/templates`.
pub fn templates(state: &StateDir) -> Option<TemplateCache> {
    match std::env::var_os("FIREDRILL_TEMPLATE_DIR").filter(|v| !v.is_empty()) {
        Some(v) if v == "off" => None,
        Some(v) => Some(TemplateCache::new(v.into())),
        None => Some(TemplateCache::new(state.templates())),
    }
}

pub fn runtime(builder: &mut tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, ExitCode> {
    builder.enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        exit_code(EXIT_ENVIRONMENT)
    })
}
