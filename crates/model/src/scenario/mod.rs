//! Reading scenario files: raw YAML in, a validated [`Scenario`] or every problem with
//! `file:line:column` and key path out. Nothing here touches a database or the network.

mod argv;
pub mod drill;
pub mod duration;
pub mod failover;
pub mod guardrail;
mod locate;
pub mod model;
pub mod patroni;
pub mod placeholder;
mod problem;
pub mod restore;
pub mod shape;
pub mod steps;
pub mod tagged;
pub mod validate;
mod validate_failover;
mod validate_posture;
mod validate_restore;
mod validate_steps;
mod validate_zones;
pub mod zones;

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use drill::{
    DbTarget, Drill, FleetDrill, PostureTarget, RdsResource, RdsTarget, RestoreSource, Run,
};
pub use duration::{Dur, Span};
pub use locate::Pos;
pub use model::*;
pub use placeholder::{Placeholder, placeholders};
pub use restore::*;
pub use steps::{Condition, Step};
pub use validate_posture::stated as posture_targets;
pub use zones::{Fence, ZoneLayout};

/// Scenario files are small; a larger file is a mistake (or hostile), not a drill.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A scenario that parsed and validated: the raw form (what the plan and the report quote), the
/// typed drill it runs, and what a report needs to name its source.
#[derive(Clone, Debug)]
pub struct LoadedScenario {
    pub path: PathBuf,
    pub sha256: String,
    /// The text it was parsed from (reports embed it).
    pub source: String,
    pub scenario: Scenario,
    pub run: Run,
}

impl LoadedScenario {
    /// The drill, unless the scenario is a fleet (whose members each have one).
    pub fn drill(&self) -> Option<&Drill> {
        match &self.run {
            Run::Drill(d) => Some(d),
            Run::Fleet(_) => None,
        }
    }
}

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub pos: Option<Pos>,
    /// Key path such as `probes.interval`; none for problems with the file as a whole.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(pos) = self.pos {
            write!(f, ":{pos}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one scenario file.
#[derive(Debug, thiserror::Error)]
pub struct ScenarioError(pub Vec<Diagnostic>);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

fn yaml_options() -> serde_saphyr::Options {
    // Strict booleans: `on: yes` must not silently become `true`. Snippets are off because the
    // diagnostic carries file:line:column itself, one line per problem.
    serde_saphyr::options! { strict_booleans: true, with_snippet: false }
}

/// Reads, parses and validates one scenario file.
pub fn load(path: &Path) -> Result<LoadedScenario, ScenarioError> {
    let whole_file = |message: String| {
        ScenarioError(vec![Diagnostic {
            file: path.to_owned(),
            pos: None,
            key: None,
            message,
        }])
    };
    let meta = std::fs::metadata(path).map_err(|e| whole_file(io_message(&e)))?;
    if meta.is_dir() {
        return Err(whole_file("is a directory, not a scenario file".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(whole_file(format!(
            "file is {:.1} MiB; scenario files are limited to {} KiB",
            meta.len() as f64 / (1024.0 * 1024.0),
            MAX_FILE_BYTES / 1024
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| whole_file(io_message(&e)))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        whole_file(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let loaded = parse(path, &text)?;
    check_runbook(path, &text, &loaded.scenario)?;
    Ok(loaded)
}

/// Parses and validates scenario text into its typed drill; `file` names it in diagnostics
/// and reports.
pub fn parse(file: &Path, text: &str) -> Result<LoadedScenario, ScenarioError> {
    if text.trim().is_empty()
        || text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(ScenarioError(vec![Diagnostic {
            file: file.to_owned(),
            pos: Some(Pos { line: 1, column: 1 }),
            key: None,
            message: "empty scenario: expected a mapping with version, name, target, fault, \
                      recovery and targets (see `firedrill schema`)"
                .into(),
        }]));
    }
    let scenario = match serde_saphyr::from_str_with_options::<Scenario>(text, yaml_options()) {
        Ok(s) => s,
        Err(e) => return Err(ScenarioError(vec![syntax_diagnostic(file, text, &e)])),
    };
    let mut problems = validate::validate(&scenario);
    if problems.is_empty() {
        match drill::typed(&scenario) {
            Ok(run) => {
                return Ok(LoadedScenario {
                    path: file.to_owned(),
                    sha256: hex::encode(Sha256::digest(text.as_bytes())),
                    source: text.to_owned(),
                    scenario,
                    run,
                });
            }
            Err(p) => problems.push(p),
        }
    }
    let index = locate::LocationIndex::build(text, yaml_options());
    Err(ScenarioError(
        problems
            .into_iter()
            .map(|p| Diagnostic {
                file: file.to_owned(),
                pos: index.find(&p.path),
                key: Some(p.path),
                message: p.message,
            })
            .collect(),
    ))
}

/// A problem the command line finds with a loaded scenario (a step nobody could act on), at
/// the key it concerns: the same `file:line:column: key: message` as validation's.
pub fn located(loaded: &LoadedScenario, key: &str, message: impl Into<String>) -> Diagnostic {
    let index = locate::LocationIndex::build(&loaded.source, yaml_options());
    Diagnostic {
        file: loaded.path.clone(),
        pos: index.find(key),
        key: Some(key.to_owned()),
        message: message.into(),
    }
}

/// The runbook a drill names must exist: evidence that cites a missing procedure is worthless.
/// Relative paths are taken from the scenario file's directory.
fn check_runbook(path: &Path, text: &str, s: &Scenario) -> Result<(), ScenarioError> {
    let Some(runbook) = &s.runbook else {
        return Ok(());
    };
    let resolved = path.parent().unwrap_or(Path::new(".")).join(runbook);
    if resolved.is_file() {
        return Ok(());
    }
    let index = locate::LocationIndex::build(text, yaml_options());
    Err(ScenarioError(vec![Diagnostic {
        file: path.to_owned(),
        pos: index.find("runbook"),
        key: Some("runbook".into()),
        message: format!("no such file: {}", resolved.display()),
    }]))
}

fn syntax_diagnostic(file: &Path, text: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let pos = e.location().map(|l| Pos {
        line: l.line(),
        column: l.column(),
    });
    let mut message = e.without_snippet().to_string();
    // The error's own text ends in " at line L, column C"; the diagnostic says that up front.
    if let Some(cut) = message.rfind(" at line ") {
        message.truncate(cut);
    }
    // The parser's resource budgets, in the author's terms.
    if message.contains("budget breached") || message.contains("recursion limit exceeded") {
        message = if message.contains("Depth") || message.contains("recursion") {
            "nested too deeply (a scenario needs a few levels; the limit is 64)".into()
        } else {
            format!(
                "too large to be a scenario (aliases, nodes or events beyond the parser's \
                 budget: {})",
                message.trim_start_matches("budget breached: ")
            )
        };
    }
    // The reader names only the type ("invalid u8"): say which value.
    if let Some(ty) = message.strip_prefix("invalid ")
        && ty.len() <= 4
        && ty.starts_with(['u', 'i'])
        && let Some(value) = pos.and_then(|p| scalar_at(text, p))
    {
        message = format!("invalid {ty}: {value:?} is not a whole number in its range");
    }
    Diagnostic {
        file: file.to_owned(),
        pos,
        key: key_path_of_error(text).map(|k| shorten_key(&k)),
        message,
    }
}

/// The plain scalar starting at `pos` (1-based line and column), as written.
fn scalar_at(text: &str, pos: Pos) -> Option<String> {
    let line = text
        .lines()
        .nth(usize::try_from(pos.line).ok()?.checked_sub(1)?)?;
    let column = usize::try_from(pos.column).ok()?.checked_sub(1)?;
    let rest: String = line.chars().skip(column).collect();
    let value = rest
        .split([',', '}', ']', '#'])
        .next()?
        .trim()
        .trim_matches(['"', '\'']);
    (!value.is_empty()).then(|| value.to_owned())
}

/// A key path deeper than any real scenario's, cut to its first and last segments.
fn shorten_key(path: &str) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.len() <= 8 {
        return path.to_owned();
    }
    format!(
        "{}.(... {} levels ...).{}",
        parts[..3].join("."),
        parts.len() - 5,
        parts[parts.len() - 2..].join(".")
    )
}

/// The key path at which deserialization fails, from a second pass through
/// `serde_path_to_error` (only taken when the first pass already failed).
fn key_path_of_error(text: &str) -> Option<String> {
    let mut path = None;
    // The closure must hand back the error itself: returning `Ok` after a failed deserialization
    // makes the reader look for a second document.
    let _ = serde_saphyr::with_deserializer_from_str_with_options(text, yaml_options(), |de| {
        serde_path_to_error::deserialize::<_, Scenario>(de)
            .map(drop)
            .map_err(|e| {
                path = Some(e.path().to_string());
                e.into_inner()
            })
    });
    path.filter(|p| p != "." && p != "?")
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}

/// The JSON Schema of the scenario format, for editors (`yaml-language-server`) and CI linters.
pub fn json_schema() -> serde_json::Value {
    crate::schema::of::<Scenario>()
}
