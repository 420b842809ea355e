//! An evidence directory: signed reports in a hash chain, so that a removed, reordered or edited
//! report shows. Each report carries its sequence number and the SHA-256 of the previous
//! report's file; both are inside the signed bytes.
//!
//! Layout: `DIR/000001-<scenario>/report.json` and `report.json.sig`, one directory per drill.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::report::{ChainLink, REPORT_FORMAT_VERSION, Report, Verdict, recheck};
use crate::signing::{self, AllowedSigner};

/// One report found in an evidence directory.
struct Entry {
    dir: PathBuf,
    bytes: Vec<u8>,
    report: Option<Report>,
}

fn entries(dir: &Path) -> std::io::Result<(Vec<Entry>, Vec<String>)> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        let file = path.join("report.json");
        if !file.is_file() {
            continue;
        }
        let bytes = std::fs::read(&file)?;
        let report = match serde_json::from_slice::<Report>(&bytes) {
            Ok(r) if r.format_version == REPORT_FORMAT_VERSION => Some(r),
            Ok(r) => {
                problems.push(format!(
                    "{}: format_version {} is not one this firedrill reads ({REPORT_FORMAT_VERSION})",
                    name(&path),
                    r.format_version
                ));
                None
            }
            Err(e) => {
                problems.push(format!("{}: not a firedrill report: {e}", name(&path)));
                None
            }
        };
        out.push(Entry {
            dir: path,
            bytes,
            report,
        });
    }
    out.sort_by_key(|e| {
        (
            e.report
                .as_ref()
                .and_then(|r| r.chain.as_ref())
                .map(|c| c.sequence),
            e.dir.clone(),
        )
    });
    Ok((out, problems))
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The link for the next report in `dir`, and the directory to write it in.
pub fn next(dir: &Path, scenario: &str) -> std::io::Result<(ChainLink, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let (entries, _) = entries(dir)?;
    let last = entries
        .iter()
        .filter_map(|e| Some((e.report.as_ref()?.chain.as_ref()?.sequence, e)))
        .max_by_key(|(seq, _)| *seq);
    let (sequence, previous_sha256) = match last {
        Some((seq, e)) => (seq + 1, Some(sha256(&e.bytes))),
        None => (1, None),
    };
    let entry = dir.join(format!("{sequence:06}-{scenario}"));
    Ok((
        ChainLink {
            sequence,
            previous_sha256,
        },
        entry,
    ))
}

/// What `verify` found for one report.
#[derive(Debug)]
pub struct Row {
    pub entry: String,
    pub sequence: Option<u64>,
    pub scenario: String,
    pub verdict: Option<Verdict>,
    pub signature: Result<String, String>,
    pub chain_ok: bool,
    pub verdict_ok: bool,
}

#[derive(Debug, Default)]
pub struct Verification {
    pub rows: Vec<Row>,
    /// Every problem, each naming the report it concerns.
    pub problems: Vec<String>,
}

/// Checks every report in `dir`: its signature against `allowed`, its place in the chain, and
/// its verdict recomputed from its own measurements.
pub fn verify(dir: &Path, allowed: &[AllowedSigner]) -> std::io::Result<Verification> {
    let (entries, mut problems) = entries(dir)?;
    let mut rows = Vec::new();
    let mut expected_seq = 1;
    let mut previous: Option<&Entry> = None;
    for e in &entries {
        let entry = name(&e.dir);
        let sig_path = e.dir.join("report.json.sig");
        let signature = match std::fs::read_to_string(&sig_path) {
            Ok(armored) => signing::verify(allowed, &e.bytes, &armored).map_err(|x| x.to_string()),
            Err(_) => Err("no report.json.sig".into()),
        };
        if let Err(why) = &signature {
            problems.push(format!("{entry}: signature: {why}"));
        }
        let Some(r) = &e.report else {
            rows.push(Row {
                entry,
                sequence: None,
                scenario: String::new(),
                verdict: None,
                signature,
                chain_ok: false,
                verdict_ok: false,
            });
            continue;
        };
        let mut chain_ok = true;
        match &r.chain {
            None => {
                chain_ok = false;
                problems.push(format!("{entry}: not part of a chain (no `chain` field)"));
            }
            Some(link) => {
                if link.sequence != expected_seq {
                    chain_ok = false;
                    problems.push(if link.sequence > expected_seq {
                        format!(
                            "{entry}: sequence {} follows {}: report(s) {expected_seq}..{} missing",
                            link.sequence,
                            expected_seq - 1,
                            link.sequence - 1
                        )
                    } else {
                        format!("{entry}: sequence {} appears twice", link.sequence)
                    });
                }
                let actual_previous = previous.map(|p| sha256(&p.bytes));
                if link.previous_sha256 != actual_previous && link.sequence == expected_seq {
                    chain_ok = false;
                    problems.push(format!(
                        "{entry}: the previous report's SHA-256 does not match{}",
                        previous
                            .map(|p| format!(" ({} was edited or replaced)", name(&p.dir)))
                            .unwrap_or_default()
                    ));
                }
                expected_seq = link.sequence + 1;
            }
        }
        let disagreements = recheck(r);
        for d in &disagreements {
            problems.push(format!("{entry}: {d}"));
        }
        rows.push(Row {
            entry,
            sequence: r.chain.as_ref().map(|c| c.sequence),
            scenario: r.scenario.name.clone(),
            verdict: Some(r.verdict),
            signature,
            chain_ok,
            verdict_ok: disagreements.is_empty(),
        });
        previous = Some(e);
    }
    if entries.is_empty() {
        problems.push(format!("{}: no reports found", dir.display()));
    }
    Ok(Verification { rows, problems })
}

/// Writes DIR/report.json, and with a signer DIR/report.json.sig over exactly those bytes; each
/// file atomically (a temporary file, fsync, rename), the signature first so that a report
/// never sits beside a signature of something else without failing verification.
pub fn write(
    dir: &Path,
    report: &Report,
    signer: Option<&signing::Signer>,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let mut bytes = serde_json::to_vec_pretty(report)?;
    bytes.push(b'\n');
    let path = dir.join("report.json");
    if let Some(signer) = signer {
        write_atomically(
            &dir.join("report.json.sig"),
            signer.sign(&bytes)?.as_bytes(),
        )?;
    }
    write_atomically(&path, &bytes)?;
    Ok(path)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
