//! `firedrill step`: one person's action in a running game day, appended to its control file
//! with the time it was taken. The game day reads the file; this command only checks that
//! someone is there to read it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use firedrill::error::*;
use firedrill::gameday::{Action, CONTROL_VERSION, ControlLine};
use firedrill::operator::{Setup, control_file, header, still_running};

use super::args::StepAction;

pub fn act(
    state_dir: Option<PathBuf>,
    action: StepAction,
    run: &str,
    operator: Option<String>,
    text: &str,
) -> ExitCode {
    // The time the person acted, before anything that could take a moment.
    let at_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let action = match action {
        StepAction::Ack => Action::Ack,
        StepAction::Done => Action::Done,
        StepAction::Note => Action::Note,
        StepAction::Abort => Action::Abort,
    };
    match (action, text.trim().is_empty()) {
        (Action::Note, true) => {
            eprintln!("error: a note needs its text: firedrill step note --run {run} TEXT");
            return exit_code(EXIT_INVALID);
        }
        (Action::Ack | Action::Done | Action::Abort, false) => {
            eprintln!(
                "error: only a note takes text; add it with firedrill step note --run {run} TEXT"
            );
            return exit_code(EXIT_INVALID);
        }
        (Action::Note, false) | (Action::Ack | Action::Done | Action::Abort, true) => {}
    }
    let state = match super::state_dir(state_dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let path = control_file(&state.control(), run);
    let Some(header) = header(&path) else {
        eprintln!(
            "error: no game day with run id {run} is running here (no control file {}); the \
             run id is printed when a game day starts, and --state-dir must be the drill's",
            path.display()
        );
        return exit_code(EXIT_ENVIRONMENT);
    };
    if !still_running(&header) {
        eprintln!(
            "error: game day {run} ({}) is not running any more (process {} is gone); nothing \
             recorded",
            header.scenario, header.pid
        );
        return exit_code(EXIT_ENVIRONMENT);
    }
    let line = ControlLine {
        v: CONTROL_VERSION,
        action,
        operator: operator.unwrap_or_else(Setup::default_operator),
        text: text.trim().to_owned(),
        at_unix_ms,
    };
    let mut bytes = serde_json::to_vec(&line).expect("control line is JSON");
    bytes.push(b'\n');
    // One write of one line with O_APPEND: lines from several people never interleave.
    let written = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(&bytes));
    if let Err(e) = written {
        eprintln!("error: cannot append to {}: {e}", path.display());
        return exit_code(EXIT_ENVIRONMENT);
    }
    eprintln!(
        "{} by {} recorded for game day {run} ({})",
        action.label(),
        line.operator,
        header.scenario
    );
    exit_code(EXIT_PASS)
}
