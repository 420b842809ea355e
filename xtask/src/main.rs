//! `cargo xtask`: the project's own tasks, so that a fresh clone needs two commands (the drill,
//! and `cargo xtask test`) and CI runs exactly what the README says.
//!
//! Why an xtask rather than a script: the steps are a program's (install what is missing, pick
//! the tests, run them under a runner that kills what hangs, read the JUnit it wrote, choose an
//! exit code), its arguments get `--help` and errors from clap like firedrill's own, and the
//! JUnit is read with an XML parser. The one shell script left, `.ci/setup`, only installs
//! Debian and PyPI packages.

mod areas;
mod doctests;
mod junit;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::{Parser, Subcommand};

/// Exit codes, as firedrill's own: 0 green, 1 a test failed (or did not build), 2 usage,
/// 4 the environment (a package or the runner could not be installed).
const FAILED: u8 = 1;
const ENVIRONMENT: u8 = 4;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "firedrill's project tasks",
    version
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the tests need (Debian packages as root, the moto and kubernetes-validate
    /// venvs, cargo-nextest), then run the suite, or only the areas named, under nextest's `ci`
    /// profile: a hung test is killed and named, JUnit XML is written to
    /// target/nextest/ci/junit.xml, the slowest tests are listed at the end.
    #[command(after_help = "Examples:
  cargo xtask test                 the whole suite, as CI runs it
  cargo xtask test quick           everything that needs no database, cluster or namespace
  cargo xtask test zones evidence  two areas (`cargo xtask areas` lists them)
  cargo xtask test quick -- cli::  an area, narrowed by nextest's own arguments

Exit codes: 0 every test passed, 1 a test failed or did not build, 2 usage,
4 a package or cargo-nextest could not be installed.")]
    Test {
        /// Areas to run (default: everything, doc-tests included).
        #[arg(value_parser = area_name)]
        areas: Vec<String>,
        /// Skip installing packages and venvs (they are assumed present).
        #[arg(long)]
        no_setup: bool,
        /// Arguments passed to `cargo nextest run` as they are (test names, `-j 1`, ...).
        #[arg(last = true)]
        nextest_args: Vec<String>,
    },
    /// List the areas `cargo xtask test AREA` takes, with their nextest filtersets.
    Areas,
}

fn area_name(s: &str) -> Result<String, String> {
    match areas::find(s) {
        Some(a) => Ok(a.name.to_string()),
        None => Err(format!("unknown area; areas: {}", areas::names())),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf();
    match cli.task {
        Task::Areas => {
            for a in areas::AREAS {
                println!("{:<9} {}\n          -E '{}'\n", a.name, a.what, a.filter);
            }
            ExitCode::SUCCESS
        }
        Task::Test {
            areas,
            no_setup,
            nextest_args,
        } => match test(&root, &areas, no_setup, &nextest_args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("xtask: error: {e}");
                ExitCode::from(ENVIRONMENT)
            }
        },
    }
}

/// An environment problem: the message says what was missing and how to install it.
type EnvError = String;

/// Passed and failed tests, as the closing line counts them.
#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
}

fn test(root: &Path, areas: &[String], no_setup: bool, extra: &[String]) -> Result<u8, EnvError> {
    let start = Instant::now();
    let whole = areas.is_empty();
    if !no_setup {
        setup(root, !whole && areas.iter().all(|a| a == "quick"))?;
    }
    ensure_nextest()?;
    let mut counts = Counts::default();
    // Doc-tests first: nextest cannot run them, and compiled now they come from the tree as it
    // is when the run starts, not as an edit made during the run left it.
    if whole {
        doc_tests(root, &mut counts)?;
    }
    let junit_path = nextest(root, areas, extra, &mut counts)?;
    println!(
        "\njunit: {}\ntook {:.0} s",
        junit_path.display(),
        start.elapsed().as_secs_f64()
    );
    // The closing line CI reads: `N passed, N failed`.
    println!("suite: {} passed, {} failed", counts.passed, counts.failed);
    Ok(if counts.failed == 0 { 0 } else { FAILED })
}

/// `.ci/setup`, or `.ci/setup --quick` for the quick tier alone.
fn setup(root: &Path, quick_only: bool) -> Result<(), EnvError> {
    step("installing what the tests need (.ci/setup)");
    let mut setup = Command::new("bash");
    setup.arg(root.join(".ci/setup")).current_dir(root);
    if quick_only {
        setup.arg("--quick");
    }
    let status = setup
        .status()
        .map_err(|e| format!("cannot run bash .ci/setup: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            ".ci/setup failed ({status}); what it printed above says what is missing"
        ))
    }
}

/// `cargo test --doc --workspace`, where any doc-test exists.
fn doc_tests(root: &Path, counts: &mut Counts) -> Result<(), EnvError> {
    let dirs = [root.join("src"), root.join("crates")];
    let Some(at) = doctests::first(&dirs.iter().map(PathBuf::as_path).collect::<Vec<_>>()) else {
        step("doc-tests: none (no Rust code block in a doc comment); cargo test --doc skipped");
        return Ok(());
    };
    step(&format!(
        "doc-tests (cargo test --doc --workspace; the first at {at})"
    ));
    let out = Command::new("cargo")
        .args(["test", "--doc", "--workspace"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    print!("{stdout}");
    let (p, f) = doc_counts(&stdout);
    counts.passed += p;
    counts.failed += f;
    if !out.status.success() && f == 0 {
        counts.failed += 1;
    }
    Ok(())
}

/// The tests (or the areas named) under nextest's `ci` profile, then the slowest ten from the
/// JUnit it wrote; returns that file's path.
fn nextest(
    root: &Path,
    areas: &[String],
    extra: &[String],
    counts: &mut Counts,
) -> Result<PathBuf, EnvError> {
    let junit_path = target_dir(root).join("nextest/ci/junit.xml");
    let _ = std::fs::remove_file(&junit_path);
    let mut nextest = Command::new("cargo");
    nextest
        .args(["nextest", "run", "--workspace", "--profile", "ci"])
        .current_dir(root);
    for name in areas {
        let area = areas::find(name).expect("checked by clap");
        nextest.arg("-E").arg(area.filter);
    }
    nextest.args(extra);
    step(&format!(
        "tests (cargo nextest run --workspace --profile ci{})",
        if areas.is_empty() {
            String::new()
        } else {
            format!(", areas {}", areas.join(" "))
        }
    ));
    let status = nextest
        .status()
        .map_err(|e| format!("cannot run cargo nextest: {e}"))?;
    let before = counts.failed;
    match std::fs::read_to_string(&junit_path) {
        Ok(xml) => match junit::cases(&xml) {
            Ok(cases) => {
                println!("\nslowest tests:");
                for c in junit::slowest(&cases, 10) {
                    let mark = if c.failed { "  FAILED" } else { "" };
                    println!("  {:>8.1} s  {}{mark}", c.time.as_secs_f64(), c.name);
                }
                let f = cases.iter().filter(|c| c.failed).count();
                counts.failed += f;
                counts.passed += cases.len() - f;
            }
            Err(e) => {
                eprintln!("xtask: {}: {e}", junit_path.display());
                counts.failed += 1;
            }
        },
        // No JUnit: nextest stopped before running anything (a build error, a bad filter).
        Err(_) => counts.failed += 1,
    }
    if !status.success() && counts.failed == before {
        counts.failed += 1;
    }
    Ok(junit_path)
}

/// Installs cargo-nextest from crates.io where it is missing.
fn ensure_nextest() -> Result<(), EnvError> {
    let present = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    step("installing cargo-nextest (cargo install --locked cargo-nextest)");
    let status = Command::new("cargo")
        .args(["install", "--locked", "cargo-nextest"])
        .status()
        .map_err(|e| format!("cannot run cargo install: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("cargo install --locked cargo-nextest failed; install it by hand and rerun".into())
    }
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

/// Sums libtest's `test result: ok. N passed; M failed; ...` lines.
fn doc_counts(stdout: &str) -> (usize, usize) {
    let mut passed = 0;
    let mut failed = 0;
    for line in stdout.lines().filter(|l| l.starts_with("test result:")) {
        for part in line.split(['.', ';']) {
            let mut words = part.split_whitespace();
            if let (Some(n), Some(what)) = (words.next(), words.next()) {
                match (n.parse::<usize>(), what) {
                    (Ok(n), "passed") => passed += n,
                    (Ok(n), "failed") => failed += n,
                    _ => {}
                }
            }
        }
    }
    (passed, failed)
}

fn step(what: &str) {
    eprintln!("\n==> {what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_counts_sum_every_crate() {
        let out = "running 2 tests\ntest result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
                   test result: FAILED. 1 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.2s\n";
        assert_eq!(doc_counts(out), (3, 3));
    }

    #[test]
    fn every_area_has_a_distinct_name() {
        let mut names: Vec<_> = areas::AREAS.iter().map(|a| a.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), areas::AREAS.len());
    }
}
