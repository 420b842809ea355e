//! `firedrill recover` (undo what a killed drill left, from its journal) and `firedrill cleanup`
//! (delete what drills left in AWS, by tag).

use std::path::PathBuf;
use std::process::ExitCode;

use firedrill::error::*;
use firedrill::safety::{journal, lock, recover};

pub fn prune(state_dir: Option<PathBuf>, older_than: std::time::Duration) -> ExitCode {
    let state = match super::state_dir(state_dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let p = firedrill::safety::prune::prune(&state, older_than, std::time::SystemTime::now());
    let age = humantime::format_duration(older_than);
    for j in &p.journals {
        println!("removed journal {}", j.display());
    }
    for l in &p.locks {
        println!("removed lock file {}", l.display());
    }
    for c in &p.controls {
        println!(
            "removed the control file of a killed game day {}",
            c.display()
        );
    }
    println!(
        "{} journal(s), {} lock file(s) and {} game day control file(s) older than {age} removed",
        p.journals.len(),
        p.locks.len(),
        p.controls.len()
    );
    for j in &p.pending {
        println!(
            "kept {}: effects left to undo (or its drill still runs); `firedrill recover` first",
            j.display()
        );
    }
    exit_code(EXIT_PASS)
}

pub fn recover(state_dir: Option<PathBuf>, journal: Option<PathBuf>, list: bool) -> ExitCode {
    let state = match super::state_dir(state_dir) {
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
    let runtime = match super::runtime(&mut tokio::runtime::Builder::new_current_thread()) {
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

pub fn cleanup(options: &firedrill_aws::Options, drill: Option<&str>, dry_run: bool) -> ExitCode {
    let runtime = match super::runtime(&mut tokio::runtime::Builder::new_current_thread()) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let aws = firedrill_aws::Aws::connect(options).await;
        let found = aws.tagged(drill).await?;
        for l in &found {
            let (firedrill_aws::Leftover::Instance { drill, .. }
            | firedrill_aws::Leftover::Snapshot { drill, .. }
            | firedrill_aws::Leftover::FisTemplate { drill, .. }) = l;
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
