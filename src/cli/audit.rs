//! The auditor's commands: `verify` (signatures, chain, verdicts), `evidence` (a period's
//! summary with missing scheduled drills) and `render` (a report's views again). They use the
//! evidence crate only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use firedrill::error::*;
use firedrill::report::{self, Verdict};
use firedrill::{evidence, signing, store, summary};

/// An evidence location as a local directory: the directory itself, or, for `s3://`, the
/// newest version of every object mirrored into a temporary directory, with what only the
/// bucket shows (locks, overwrites, deletions).
struct Local {
    path: PathBuf,
    _mirror: Option<tempfile::TempDir>,
    bucket_problems: Vec<String>,
}

fn local(dir: &Path) -> Result<Local, ExitCode> {
    let Some(at) = store::Location::parse(&dir.to_string_lossy()) else {
        return Ok(Local {
            path: dir.to_owned(),
            _mirror: None,
            bucket_problems: Vec::new(),
        });
    };
    let at = at.map_err(|e| {
        eprintln!("error: {e}");
        exit_code(EXIT_INVALID)
    })?;
    let mirror = tempfile::tempdir().map_err(|e| {
        eprintln!("error: cannot make a temporary directory: {e}");
        exit_code(EXIT_ENVIRONMENT)
    })?;
    let runtime = super::runtime(&mut tokio::runtime::Builder::new_current_thread())?;
    let problems = runtime.block_on(async {
        let aws = firedrill_aws::Aws::connect(&Default::default()).await;
        store::mirror(&aws, &at, mirror.path()).await
    });
    let bucket_problems = problems.map_err(|e| {
        eprintln!("error: {e}");
        exit_code(EXIT_ENVIRONMENT)
    })?;
    eprintln!("read {at} (newest version of every object)");
    Ok(Local {
        path: mirror.path().to_owned(),
        _mirror: Some(mirror),
        bucket_problems,
    })
}

/// A line built from evidence (a report's names and times, a directory's entries), with every
/// control character escaped: whoever wrote the evidence must not be able to send the
/// auditor's terminal an escape sequence, or forge a line of the output with a newline.
fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

pub fn verify(dir: &Path, allowed_signers: &Path, scenarios: Option<&Path>) -> ExitCode {
    let allowed = match signing::read_allowed_signers(allowed_signers) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return exit_code(EXIT_INVALID);
        }
    };
    let source = match local(dir) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let loaded = match evidence::load(&source.path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            return exit_code(EXIT_INVALID);
        }
    };
    if let Some(s) = scenarios
        && !s.is_dir()
    {
        eprintln!("error: --scenarios {}: not a directory", s.display());
        return exit_code(EXIT_INVALID);
    }
    let mut v = evidence::verify_loaded(&source.path, &loaded, &allowed);
    if let Some(s) = scenarios {
        v.problems.extend(evidence::check_scenarios(&loaded, s));
    }
    v.problems.extend(source.bucket_problems.iter().cloned());
    let mark = |ok: bool| if ok { "ok" } else { "FAIL" };
    println!(
        "{:<32} {:>5} {:<28} {:<8} {:<9} {:<6} {:<10} re-derived",
        "report", "seq", "scenario", "verdict", "signature", "chain", "recomputed"
    );
    for r in &v.rows {
        let row = format!(
            "{:<32} {:>5} {:<28} {:<8} {:<9} {:<6} {:<10} {}",
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
            mark(r.verdict_ok),
            match r.derived_ok {
                Some(ok) => mark(ok),
                None => "targets not re-derivable (format < 3)",
            }
        );
        println!("{}", shown(&row));
    }
    if let Some((entry, sha)) = &v.head {
        println!(
            "\nnewest report: {} (report.json SHA-256 {})",
            shown(entry),
            shown(sha)
        );
        println!("record it outside this directory: a later verify must still reach it");
    }
    if v.problems.is_empty() {
        println!(
            "\n{} reports verified: signatures, chain, index, verdicts and what could be \
             re-derived all hold",
            v.rows.len()
        );
        exit_code(EXIT_PASS)
    } else {
        eprintln!();
        for p in &v.problems {
            eprintln!("problem: {}", shown(p));
        }
        exit_code(EXIT_TARGET_MISSED)
    }
}

pub fn evidence_summary(
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
    let source = match local(dir) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let s = match summary::summarize(&source.path, from, to, &expect, allowed.as_deref()) {
        Ok(mut s) => {
            if let Some(v) = s.verification.as_mut() {
                v.extend(source.bucket_problems.iter().cloned());
            }
            s
        }
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
        let line = format!(
            "{}  {:<8} {:<32} {}",
            d.report.started_at,
            d.report.verdict.label(),
            d.entry,
            d.report.scenario.name
        );
        println!("{}", shown(&line));
    }
    for g in &s.gaps {
        println!("MISSING  {} in {} to {}", g.expectation, g.from, g.to);
    }
    for (db, drills) in s.unproven() {
        if let Some(last) = drills.last() {
            let line = format!(
                "UNPROVEN {db}: no successful restore in the period ({} drill(s), the last {} \
                 on {})",
                drills.len(),
                last.report.verdict.label(),
                last.report.started_at
            );
            println!("{}", shown(&line));
        }
    }
    for (resource, d, findings) in s.posture() {
        for f in findings.iter().filter(|f| !f.ok) {
            let line = format!(
                "SHORT    {resource} {}: {} ({}; as of {})",
                f.check.name(),
                f.detail,
                f.check.controls().join(", "),
                d.report.started_at
            );
            println!("{}", shown(&line));
        }
    }
    let problems = s.verification.as_ref().map_or(0, |p| p.len());
    println!(
        "\n{} drills, {} passed, {} failed, {} aborted; {} scheduled drill(s) missing; {}{}",
        s.drills.len(),
        s.count(Verdict::Pass),
        s.count(Verdict::Fail),
        s.count(Verdict::Aborted),
        s.gaps.len(),
        match &s.verification {
            None => "signatures not checked".to_owned(),
            Some(_) => format!("{problems} verification problem(s)"),
        },
        match (s.coverage().len(), s.unproven().len()) {
            (0, _) => String::new(),
            (n, u) => format!("; {} of {n} fleet database(s) restored successfully", n - u),
        }
    );
    eprintln!("summary written to {}", out.display());
    exit_code(
        if s.gaps.is_empty() && problems == 0 && s.unproven().is_empty() {
            EXIT_PASS
        } else {
            EXIT_TARGET_MISSED
        },
    )
}

pub fn render(path: &Path, out: Option<PathBuf>) -> ExitCode {
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
