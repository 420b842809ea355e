//! An evidence directory: signed reports in a hash chain, so that a removed, reordered or edited
//! report shows. Each report carries its sequence number and the SHA-256 of the previous
//! report's file; both are inside the signed bytes.
//!
//! Layout: `DIR/000001-<scenario>/report.json` and `report.json.sig`, one directory per drill,
//! with the human and machine views beside them; `DIR/index.json` (+ `.sig`) lists every report
//! with its hash, so that removing the newest report, which no later report points back at,
//! shows too. Writers take `DIR/.lock` so two drills never claim the same sequence number.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use serde::{Deserialize, Serialize};

use crate::beneath;
use crate::signing::{self, AllowedSigner};
use firedrill_model::audit::{Rederived, rederive};
use firedrill_model::judge::recheck;
use firedrill_model::report::{ChainLink, DrillKind, Report, Verdict};

/// The chain's index, at the root of the directory or prefix.
pub use crate::layout::INDEX;
pub const INDEX_KIND: &str = "firedrill-evidence-index";
/// The index's own format, written into it. Builds before this one wrote the report format's
/// number instead (1 and 2) for the same shape, so those are read as this one.
pub const INDEX_FORMAT_VERSION: u32 = 1;
const INDEX_FORMATS_READ: std::ops::RangeInclusive<u32> = 1..=2;

/// `DIR/index.json`: every report of the directory in sequence order. Signed with the reports'
/// key (the `kind` field keeps it from ever parsing as a report).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub kind: String,
    pub format_version: u32,
    pub reports: Vec<IndexEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub sequence: u64,
    /// The report's directory name inside the evidence directory.
    pub entry: String,
    /// SHA-256 of its `report.json`.
    pub sha256: String,
    pub scenario: String,
    pub drill: DrillKind,
    pub verdict: Verdict,
    pub started_at: String,
}

/// One report found in an evidence directory.
pub struct Entry {
    /// Its directory name, e.g. `000007-nightly-restore`.
    pub name: String,
    bytes: Vec<u8>,
    /// The parsed report; `None` when it is not one this build reads (a problem says why).
    pub report: Option<Report>,
}

/// Every report of an evidence directory, read once.
pub struct Loaded {
    /// In chain order (unchained or unreadable reports first).
    pub entries: Vec<Entry>,
    /// Reports that could not be read, each named.
    problems: Vec<String>,
}

pub fn load(dir: &Path) -> std::io::Result<Loaded> {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut listing = std::fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    listing.sort_by_key(|e| e.file_name());
    for e in listing {
        let path = e.path();
        let name = name(&path);
        // The entry's own type, not its target's: a linked report directory could point
        // anywhere, so it is named and never read. (The index and its signature are read,
        // and refused, by the index check.)
        let kind = e.file_type()?;
        let index_file = name == INDEX || name == format!("{INDEX}.sig");
        if kind.is_symlink() && !index_file {
            problems.push(format!(
                "{name}: refused: a symbolic link (evidence is read only from inside {})",
                dir.display()
            ));
            continue;
        }
        if !kind.is_dir() {
            continue;
        }
        let report_file = Path::new(&name).join("report.json");
        // Only a report directory's name is shown as a report: another is named (escaped, so
        // that a name cannot forge a line of the output) and not read.
        if crate::layout::entry_sequence(&name).is_none() {
            if beneath::is_file(dir, &report_file) {
                problems.push(format!(
                    "{}: refused: holds a report.json but is not a report directory's name \
                     (NNNNNN-SCENARIO)",
                    name.escape_debug()
                ));
            }
            continue;
        }
        let bytes = match beneath::read(dir, &report_file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                problems.push(format!("{name}/report.json: {e}"));
                continue;
            }
        };
        let report = firedrill_model::report::from_json(&bytes)
            .map_err(|why| problems.push(format!("{name}: {why}")))
            .ok();
        entries.push(Entry {
            name,
            bytes,
            report,
        });
    }
    entries.sort_by_key(|e| {
        (
            e.report
                .as_ref()
                .and_then(|r| r.chain.as_ref())
                .map(|c| c.sequence),
            e.name.clone(),
        )
    });
    Ok(Loaded { entries, problems })
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Adds `report` to the evidence chain in `dir`: under the directory's lock, links it to the
/// newest report, writes it (signed when a signer is given) with its views, and rewrites the
/// signed index. Returns the report's path.
pub fn append(
    dir: &Path,
    report: &mut Report,
    signer: Option<&signing::Signer>,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))?;
    // Released when `lock` drops; a crashed writer's lock goes with its process.
    lock.lock()?;
    let mut index = head(dir)?;
    let (sequence, previous_sha256) = index
        .reports
        .last()
        .map(|l| (l.sequence + 1, Some(l.sha256.clone())))
        .unwrap_or((1, None));
    report.chain = Some(ChainLink {
        sequence,
        previous_sha256,
    });
    let entry = format!("{sequence:06}-{}", report.scenario.name);
    let (path, bytes) = write_report(&dir.join(&entry), report, signer)?;
    index.reports.push(index_entry(entry, &bytes, report));
    let (bytes, signature) = index_bytes(&index, signer)?;
    if let Some(sig) = signature {
        write_atomically(&dir.join(format!("{INDEX}.sig")), &sig)?;
    }
    write_atomically(&dir.join(INDEX), &bytes)?;
    Ok(path)
}

/// Why an index's bytes could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the index cannot be serialized: {0}")]
    Json(#[from] serde_json::Error),
    #[error("signing the index: {0}")]
    Signing(#[from] signing::SigningError),
}

/// An index's bytes as written, and their signature with a signer.
pub fn index_bytes(
    index: &Index,
    signer: Option<&signing::Signer>,
) -> Result<(Vec<u8>, Option<Vec<u8>>), IndexError> {
    let mut bytes = serde_json::to_vec_pretty(index)?;
    bytes.push(b'\n');
    let signature = match signer {
        Some(s) => Some(s.sign(&bytes)?.into_bytes()),
        None => None,
    };
    Ok((bytes, signature))
}

/// An empty index.
pub fn new_index() -> Index {
    Index {
        kind: INDEX_KIND.into(),
        format_version: INDEX_FORMAT_VERSION,
        reports: Vec::new(),
    }
}

/// The index entry of a report written as `entry` with these `report.json` bytes.
pub fn index_entry(entry: String, bytes: &[u8], r: &Report) -> IndexEntry {
    IndexEntry {
        sequence: r.chain.as_ref().map_or(0, |c| c.sequence),
        entry,
        sha256: sha256(bytes),
        scenario: r.scenario.name.clone(),
        drill: r.drill,
        verdict: r.verdict,
        started_at: r.started_at.clone(),
    }
}

/// The index to extend, checked against the directory without reading every report: its
/// newest report must be there unchanged. A report written after it whose link points at it
/// (a writer that crashed before updating the index) is adopted; anything else stops the
/// append, since extending a chain that does not verify would bury the problem.
fn head(dir: &Path) -> Result<Index, String> {
    let mut index = match read_index(dir) {
        Ok(Some((index, _))) => index,
        Ok(None) => new_index(),
        Err(e) => return Err(format!("{}: {INDEX}: {e}", dir.display())),
    };
    let inconsistent = |why: String| {
        format!(
            "{}: {why}; run `firedrill verify {}` and resolve it before adding reports",
            dir.display(),
            dir.display()
        )
    };
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| beneath::is_file(dir, &Path::new(n).join("report.json")))
        .collect();
    if let Some(last) = index.reports.last() {
        if crate::layout::entry_sequence(&last.entry).is_none() {
            return Err(inconsistent(format!(
                "the index's newest entry {:?} is not a report directory's name",
                last.entry
            )));
        }
        let bytes = beneath::read(dir, &Path::new(&last.entry).join("report.json"))
            .map_err(|_| inconsistent(format!("{} is in the index but missing", last.entry)))?;
        if sha256(&bytes) != last.sha256 {
            return Err(inconsistent(format!(
                "{} differs from its SHA-256 in the index",
                last.entry
            )));
        }
    } else if !names.is_empty() {
        return Err(inconsistent(format!("reports without an {INDEX}")));
    }
    loop {
        let (next_seq, prev) = index
            .reports
            .last()
            .map(|l| (l.sequence + 1, Some(l.sha256.clone())))
            .unwrap_or((1, None));
        let prefix = format!("{next_seq:06}-");
        let Some(orphan) = names.iter().find(|n| n.starts_with(&prefix)) else {
            return Ok(index);
        };
        let bytes = beneath::read(dir, &Path::new(orphan).join("report.json"))
            .map_err(|e| format!("{}: {orphan}: {e}", dir.display()))?;
        let report = firedrill_model::report::from_json(&bytes)
            .map_err(|why| inconsistent(format!("{orphan}: {why}")))?;
        let link = report.chain.as_ref();
        if link.map(|c| (c.sequence, c.previous_sha256.clone())) != Some((next_seq, prev)) {
            return Err(inconsistent(format!(
                "{orphan} is not in the index and does not link to its newest report"
            )));
        }
        index
            .reports
            .push(index_entry(orphan.clone(), &bytes, &report));
    }
}

/// The index of `dir` and its bytes (for its signature); `None` when there is none.
fn read_index(dir: &Path) -> Result<Option<(Index, Vec<u8>)>, String> {
    let bytes = match beneath::read(dir, Path::new(INDEX)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    Ok(Some((parse_index(&bytes)?, bytes)))
}

/// An index from its bytes, refused unless it is one this build reads.
pub fn parse_index(bytes: &[u8]) -> Result<Index, String> {
    let index: Index = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if index.kind != INDEX_KIND || !INDEX_FORMATS_READ.contains(&index.format_version) {
        return Err(format!(
            "not a firedrill index this build reads (format {} of {}; this build reads {} to {})",
            index.format_version,
            index.kind,
            INDEX_FORMATS_READ.start(),
            INDEX_FORMATS_READ.end()
        ));
    }
    Ok(index)
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
    /// Targets and figures re-derived from the embedded scenario and probe record: `Some(ok)`,
    /// or `None` for a report written before format 3 (targets not re-derivable).
    pub derived_ok: Option<bool>,
}

impl Row {
    /// Signature, chain (and index), verdict and what could be re-derived all hold.
    pub fn ok(&self) -> bool {
        self.signature.is_ok() && self.chain_ok && self.verdict_ok && self.derived_ok != Some(false)
    }
}

#[derive(Debug, Default)]
pub struct Verification {
    pub rows: Vec<Row>,
    /// Every problem, each naming the report it concerns.
    pub problems: Vec<String>,
    /// The newest report and its SHA-256: recorded outside the directory, it pins the chain's
    /// length (a whole directory rolled back to an older signed state cannot show otherwise).
    pub head: Option<(String, String)>,
}

/// Checks every report in `dir`: its signature against `allowed`, its place in the chain and
/// the signed index, and its verdict recomputed from its own measurements.
pub fn verify(dir: &Path, allowed: &[AllowedSigner]) -> std::io::Result<Verification> {
    Ok(verify_loaded(dir, &load(dir)?, allowed))
}

/// [`verify`] over reports already read.
pub fn verify_loaded(dir: &Path, loaded: &Loaded, allowed: &[AllowedSigner]) -> Verification {
    let entries = &loaded.entries;
    let mut problems = loaded.problems.clone();
    let mut rows = Vec::new();
    let mut expected_seq = 1;
    let mut previous: Option<&Entry> = None;
    for e in entries {
        let entry = e.name.clone();
        let sig_path = Path::new(&e.name).join("report.json.sig");
        let signature = match beneath::read_to_string(dir, &sig_path) {
            Ok(armored) => signing::verify(allowed, &e.bytes, &armored).map_err(|x| x.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("no report.json.sig".into()),
            Err(e) => Err(format!("unreadable report.json.sig: {e}")),
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
                derived_ok: None,
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
                            .map(|p| format!(" ({} was edited or replaced)", p.name))
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
        let derived_ok = match rederive(r) {
            Rederived::NotDerivable => None,
            Rederived::Checked(found) => {
                for d in &found {
                    problems.push(format!("{entry}: {d}"));
                }
                Some(found.is_empty())
            }
        };
        rows.push(Row {
            entry,
            sequence: r.chain.as_ref().map(|c| c.sequence),
            scenario: r.scenario.name.clone(),
            verdict: Some(r.verdict),
            signature,
            chain_ok,
            verdict_ok: disagreements.is_empty(),
            derived_ok,
        });
        previous = Some(e);
    }
    if entries.is_empty() {
        problems.push(format!("{}: no reports found", dir.display()));
    }
    for flagged in check_index(dir, allowed, entries, &mut problems) {
        if let Some(row) = rows.iter_mut().find(|r| r.entry == flagged) {
            row.chain_ok = false;
        }
    }
    let head = entries.last().map(|e| (e.name.clone(), sha256(&e.bytes)));
    Verification {
        rows,
        problems,
        head,
    }
}

/// Each report's embedded scenario against the scenario files under version control at the
/// audited commit (`DIR/<file name>`): a report whose scenario is not there, or differs, is
/// named. Reports without an embedded scenario are compared by their recorded SHA-256.
pub fn check_scenarios(loaded: &Loaded, scenarios: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for e in &loaded.entries {
        let Some(r) = &e.report else { continue };
        let file = Path::new(&r.scenario.file);
        let Some(name) = file.file_name() else {
            problems.push(format!("{}: no scenario file named", e.name));
            continue;
        };
        let committed = scenarios.join(name);
        match std::fs::read(&committed) {
            Ok(bytes) if sha256(&bytes) == r.scenario.sha256 => {}
            Ok(bytes) => problems.push(format!(
                "{}: scenario {} (SHA-256 {}) differs from {} (SHA-256 {})",
                e.name,
                r.scenario.file,
                r.scenario.sha256,
                committed.display(),
                sha256(&bytes)
            )),
            Err(_) => problems.push(format!(
                "{}: scenario {} is not in {}",
                e.name,
                r.scenario.file,
                scenarios.display()
            )),
        }
    }
    problems
}

/// The signed index must list exactly the reports present, with their hashes. Returns the
/// reports present that it flags.
fn check_index(
    dir: &Path,
    allowed: &[AllowedSigner],
    entries: &[Entry],
    problems: &mut Vec<String>,
) -> Vec<String> {
    let (index, bytes) = match read_index(dir) {
        Ok(Some(i)) => i,
        Ok(None) => {
            problems.push(format!(
                "{INDEX}: missing, so a removed newest report would not show"
            ));
            return Vec::new();
        }
        Err(e) => {
            problems.push(format!("{INDEX}: {e}"));
            return Vec::new();
        }
    };
    let mut flagged = Vec::new();
    match beneath::read_to_string(dir, Path::new(&format!("{INDEX}.sig"))) {
        Ok(armored) => {
            if let Err(e) = signing::verify(allowed, &bytes, &armored) {
                problems.push(format!("{INDEX}: signature: {e}"));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problems.push(format!("{INDEX}: signature: no {INDEX}.sig"))
        }
        Err(e) => problems.push(format!("{INDEX}: signature: unreadable {INDEX}.sig: {e}")),
    }
    for listed in &index.reports {
        match entries.iter().find(|e| e.name == listed.entry) {
            None => problems.push(format!(
                "{}: listed in the index (sequence {}) but missing: removed",
                listed.entry, listed.sequence
            )),
            Some(e) if sha256(&e.bytes) != listed.sha256 => {
                problems.push(format!(
                    "{}: does not match the SHA-256 in the index: edited or replaced",
                    listed.entry
                ));
                flagged.push(e.name.clone());
            }
            Some(_) => {}
        }
    }
    for e in entries {
        if !index.reports.iter().any(|l| l.entry == e.name) {
            problems.push(format!(
                "{}: not in the index: added outside firedrill",
                e.name
            ));
            flagged.push(e.name.clone());
        }
    }
    flagged
}

/// Writes DIR/report.json, and with a signer DIR/report.json.sig over exactly those bytes, then
/// the report's views (Markdown, HTML, JUnit, Prometheus); each file atomically (a temporary
/// file, fsync, rename), the signature first so that a report never sits beside a signature of
/// something else without failing verification.
pub fn write(
    dir: &Path,
    report: &Report,
    signer: Option<&signing::Signer>,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    write_report(dir, report, signer).map(|(path, _)| path)
}

/// [`write`], also returning the bytes written as `report.json` (the chain hashes them).
fn write_report(
    dir: &Path,
    report: &Report,
    signer: Option<&signing::Signer>,
) -> Result<(PathBuf, Vec<u8>), Box<dyn std::error::Error>> {
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
    write_views(dir, report)?;
    Ok((path, bytes))
}

/// The report's views (Markdown, HTML, JUnit, Prometheus) in `dir`, each written atomically.
pub fn write_views(dir: &Path, report: &Report) -> std::io::Result<()> {
    for (name, text) in crate::render::views(report) {
        write_atomically(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}

/// A temporary file in the same directory, fsynced, renamed over `path`, and the directory
/// fsynced: after a crash the file is either the old one or the whole new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // Evidence is for others to read (auditors, node_exporter); temporary files start as 0600.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}
