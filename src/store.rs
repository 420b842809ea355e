//! The evidence store on S3: the same chain as an evidence directory (`NNNNNN-<scenario>/` with
//! each report, its signature and views, and the signed `index.json`), written into a bucket
//! with versioning and Object Lock, every object in COMPLIANCE mode until its retain-until date.
//! Nobody, not the key holder nor the account's root, can then delete or rewrite what a drill
//! recorded before the date.
//!
//! Appends need no lock: a writer claims its sequence number by creating `claims/NNNNNN` with
//! `If-None-Match: *`, which S3 lets exactly one writer do; it then writes its report objects
//! (create-only too) and merges itself into the index, a new locked version of `index.json`
//! each time, until the newest version lists it. Reading (verify, the period summary) mirrors
//! the newest version of every object into a local directory for the directory checks, and
//! checks what only the bucket can show: each object's lock, and every overwrite (a second
//! version) or deletion (a delete marker).
//!
//! Boundary: the bucket. The chain's rules are the evidence crate's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use firedrill_aws::{Aws, AwsError, COMPLIANCE, Condition, ObjectVersion, Put};

use crate::beneath;
use crate::evidence::{self, INDEX};
use crate::layout::{self, MAX_OBJECT_BYTES, Name};
use crate::report::{ChainLink, Report};
use crate::signing::Signer;

/// `s3://BUCKET/PREFIX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl Location {
    /// `None` when `text` is not an `s3://` URL (a local directory).
    pub fn parse(text: &str) -> Option<Result<Location, String>> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(format!(
                "{text}: no bucket (expected s3://BUCKET/PREFIX)"
            )));
        }
        Some(Ok(Location {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        }))
    }

    /// The object key of `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    fn under(&self) -> String {
        self.key("")
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Why the store cannot take evidence, found before a drill starts.
#[derive(Debug)]
pub enum Unfit {
    /// The bucket cannot be read (missing, no permission, no credentials).
    Aws(AwsError),
    /// It can be, but does not keep objects write-once.
    NotWorm(String),
}

pub async fn check_writable(aws: &Aws, at: &Location) -> Result<(), Unfit> {
    let w = aws.bucket_worm(&at.bucket).await.map_err(Unfit::Aws)?;
    if w.object_lock {
        Ok(())
    } else {
        Err(Unfit::NotWorm(format!(
            "{at}: the bucket has no Object Lock; evidence goes only to a bucket with Object \
             Lock (and so versioning; create it with --object-lock-enabled-for-bucket)"
        )))
    }
}

/// Why the store could not be written or read. The bucket's own errors stay [`AwsError`]s, so
/// the IAM action a refusal names reaches the user.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{at}: no objects")]
    Empty { at: String },
    /// A reader task panicked or was cancelled.
    #[error("reading the store: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(
        "report {sequence} in {at} was claimed but not written within {waited_s}s; run \
         `firedrill verify {at}`"
    )]
    Unwritten {
        sequence: u64,
        at: String,
        waited_s: u64,
    },
    #[error("{at}: claim {sequence} names {entry:?}, not a report of sequence {sequence}")]
    BadClaim {
        at: String,
        sequence: u64,
        entry: String,
    },
    #[error("{at}: the index did not settle after 50 attempts")]
    Unsettled { at: String },
    #[error("{key} already exists")]
    Exists { key: String },
    /// The bucket's newest `index.json` is not an index.
    #[error("{at}/index.json: {why}")]
    BadIndex { at: String, why: String },
    #[error(transparent)]
    Index(#[from] evidence::IndexError),
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    /// Staging the report's files before upload (the evidence crate's writer, whose errors are
    /// still text).
    #[error("staging the report in {}: {why}", dir.display())]
    Stage { dir: PathBuf, why: String },
}

/// How long a writer waits for the report before its own to appear (its writer claimed the
/// number and is uploading).
const PREVIOUS_WAIT: Duration = Duration::from_secs(60);

/// Appends a report to the chain in the bucket: claims the next sequence number, links to the
/// previous report, writes the report, its signature and views, and merges it into the index;
/// every object locked until `retain`. Returns the report's key.
pub async fn append(
    aws: &Aws,
    at: &Location,
    report: &mut Report,
    signer: Option<&Signer>,
    retain: Duration,
) -> Result<String, StoreError> {
    let until = SystemTime::now() + retain;
    let claims = claimed(aws, at).await?;
    let mut sequence = claims.last().map_or(1, |s| s + 1);
    let entry = loop {
        let entry = format!("{sequence:06}-{}", report.scenario.name);
        match aws
            .put_locked(
                &at.bucket,
                &at.key(&format!("claims/{sequence:06}")),
                entry.clone().into_bytes(),
                until,
                Condition::Absent,
            )
            .await?
        {
            Put::Written => break entry,
            Put::Conflict => sequence += 1,
        }
    };
    let previous_sha256 = match sequence {
        1 => None,
        n => Some(sha_of_report(aws, at, n - 1).await?),
    };
    report.chain = Some(ChainLink {
        sequence,
        previous_sha256,
    });
    let staged = tempfile::tempdir().map_err(|source| StoreError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let dir = staged.path().join(&entry);
    evidence::write(&dir, report, signer).map_err(|e| StoreError::Stage {
        dir: dir.clone(),
        why: e.to_string(),
    })?;
    // The signature before the report, as in a directory: a report never stands beside a
    // signature of something else.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    files.sort_by_key(|p| p.file_name() != Some("report.json.sig".as_ref()));
    let mut report_bytes = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&f).map_err(|source| StoreError::Io {
            path: f.clone(),
            source,
        })?;
        if name == "report.json" {
            report_bytes = bytes.clone();
        }
        let key = at.key(&format!("{entry}/{name}"));
        if aws
            .put_locked(&at.bucket, &key, bytes, until, Condition::Absent)
            .await?
            == Put::Conflict
        {
            return Err(StoreError::Exists {
                key: format!("s3://{}/{key}", at.bucket),
            });
        }
    }
    merge_index(aws, at, &entry, &report_bytes, report, signer, until).await?;
    Ok(format!(
        "s3://{}/{}",
        at.bucket,
        at.key(&format!("{entry}/report.json"))
    ))
}

/// The sequence numbers claimed in the bucket.
async fn claimed(aws: &Aws, at: &Location) -> Result<std::collections::BTreeSet<u64>, StoreError> {
    let prefix = at.key("claims/");
    let mut out = std::collections::BTreeSet::new();
    for v in aws.list_versions(&at.bucket, &prefix).await? {
        if v.delete_marker || !v.latest {
            continue;
        }
        let name = v.key.strip_prefix(&at.under()).unwrap_or_default();
        if let Ok(Name::Claim(n)) = Name::parse(name) {
            out.insert(n);
        }
    }
    Ok(out)
}

/// The SHA-256 of report `n`'s `report.json`, waiting a while for a writer that claimed it and
/// is still uploading.
async fn sha_of_report(aws: &Aws, at: &Location, n: u64) -> Result<String, StoreError> {
    let deadline = std::time::Instant::now() + PREVIOUS_WAIT;
    let claim = at.key(&format!("claims/{n:06}"));
    loop {
        if let Some(entry) = get(aws, at, &claim).await? {
            // The claim's body is the bucket's word: it becomes a key only if it names a report
            // directory of this very sequence.
            let entry = String::from_utf8_lossy(&entry).into_owned();
            if layout::entry_sequence(&entry) != Some(n) {
                return Err(StoreError::BadClaim {
                    at: at.to_string(),
                    sequence: n,
                    entry,
                });
            }
            if let Some(bytes) = get(aws, at, &at.key(&format!("{entry}/report.json"))).await? {
                return Ok(evidence::sha256(&bytes));
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(StoreError::Unwritten {
                sequence: n,
                at: at.to_string(),
                waited_s: PREVIOUS_WAIT.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get(aws: &Aws, at: &Location, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(aws.get_object(&at.bucket, key, MAX_OBJECT_BYTES).await?)
}

/// Adds the report to the newest index, as a new locked version written only if the index is
/// still the version read (`If-Match`), and then makes the newest signature the signature of
/// the newest index: a writer that lost a race reads again, and whoever writes last leaves the
/// two matching (Ed25519 signatures are deterministic, so "ours" is checkable by signing again).
async fn merge_index(
    aws: &Aws,
    at: &Location,
    entry: &str,
    bytes: &[u8],
    report: &Report,
    signer: Option<&Signer>,
    until: SystemTime,
) -> Result<(), StoreError> {
    let own = evidence::index_entry(entry.to_owned(), bytes, report);
    let (index_key, sig_key) = (at.key(INDEX), at.key(&format!("{INDEX}.sig")));
    for _ in 0..50 {
        let current = aws
            .get_tagged(&at.bucket, &index_key, MAX_OBJECT_BYTES)
            .await?;
        let (mut index, when) = match &current {
            Some((b, etag)) => (
                evidence::parse_index(b).map_err(|why| StoreError::BadIndex {
                    at: at.to_string(),
                    why,
                })?,
                Condition::Matches(etag.clone()),
            ),
            None => (evidence::new_index(), Condition::Absent),
        };
        let newest = if index.reports.iter().any(|r| r.entry == own.entry) {
            current.map(|(b, _)| b).unwrap_or_default()
        } else {
            index.reports.push(own.clone());
            index.reports.sort_by_key(|r| r.sequence);
            let (b, _) = evidence::index_bytes(&index, None)?;
            let put = aws
                .put_locked(&at.bucket, &index_key, b.clone(), until, when)
                .await?;
            if put == Put::Conflict {
                continue;
            }
            b
        };
        let Some(signer) = signer else {
            return Ok(());
        };
        let signature = signer.sign(&newest)?;
        if get(aws, at, &sig_key).await?.as_deref() == Some(signature.as_bytes()) {
            return Ok(());
        }
        aws.put_locked(
            &at.bucket,
            &sig_key,
            signature.into_bytes(),
            until,
            Condition::Always,
        )
        .await?;
    }
    Err(StoreError::Unsettled { at: at.to_string() })
}

/// Objects read at once by [`mirror`]: each holds at most [`MAX_OBJECT_BYTES`] in memory.
const READERS: usize = 8;

/// What a bucket's object is, once its key has been checked.
enum Listed {
    /// A key outside the evidence layout, or declared too large: named, never read.
    Refused(String),
    /// A name of the layout, with its versions.
    Evidence(Name, Vec<ObjectVersion>),
}

/// Checks a key against the layout before anything else: it must be under the prefix, and
/// what follows must parse as a [`Name`] of an object no larger than a report can be.
fn listed(at: &Location, key: &str, vs: Vec<ObjectVersion>) -> Listed {
    // Escaped: a key is the bucket writer's text, and a newline in it must not forge a line
    // of the auditor's output.
    let shown = format!("s3://{}/{}", at.bucket, key.escape_debug());
    let Some(name) = key.strip_prefix(&at.under()) else {
        return Listed::Refused(format!("{shown}: refused: not under {at}"));
    };
    let size = vs
        .iter()
        .filter(|v| !v.delete_marker)
        .map(|v| v.size)
        .max()
        .unwrap_or(0);
    match Name::parse_sized(name, size) {
        Ok(name) => Listed::Evidence(name, vs),
        Err(why) => Listed::Refused(format!("{shown}: refused: {why}")),
    }
}

/// One object of the store: its versions and lock checked, its newest version mirrored under
/// `into` at the path its parsed name gives (claims are only checked). What is wrong with it.
async fn check_object(
    aws: &Aws,
    at: &Location,
    key: &str,
    name: &Name,
    vs: &[ObjectVersion],
    into: &Path,
    now: SystemTime,
) -> Result<Vec<String>, StoreError> {
    let shown = format!("s3://{}/{key}", at.bucket);
    let mut problems = Vec::new();
    if vs.iter().any(|v| v.delete_marker) {
        problems.push(format!("{shown}: deleted (a delete marker hides it)"));
    }
    let kept: Vec<_> = vs.iter().filter(|v| !v.delete_marker).collect();
    // The index is rewritten by design, one locked version per append.
    let rewritable = matches!(name, Name::Index | Name::IndexSignature);
    if kept.len() > 1 && !rewritable {
        problems.push(format!(
            "{shown}: overwritten ({} versions; evidence is written once)",
            kept.len()
        ));
    }
    let Some(newest) = kept.iter().find(|v| v.latest).or(kept.first()) else {
        return Ok(problems);
    };
    match aws.lock_of(&at.bucket, key, &newest.version_id).await {
        Ok(l) if l.mode.as_deref() != Some(COMPLIANCE) => problems.push(format!(
            "{shown}: not locked in COMPLIANCE mode ({})",
            l.mode.as_deref().unwrap_or("no lock")
        )),
        Ok(l) if l.retain_until.is_none_or(|u| u <= now) => problems.push(format!(
            "{shown}: its lock has expired{}",
            l.retain_until
                .map(|u| format!(" ({})", humantime::format_rfc3339_seconds(u)))
                .unwrap_or_default()
        )),
        Ok(_) => {}
        Err(e) => problems.push(format!("{shown}: {e}")),
    }
    if matches!(name, Name::Claim(_)) || vs.iter().any(|v| v.latest && v.delete_marker) {
        return Ok(problems);
    }
    if let Some(why) = download(
        aws,
        at,
        key,
        &newest.version_id,
        &name.relative_path(),
        into,
    )
    .await?
    {
        problems.push(format!("{shown}: refused: {why}"));
    }
    Ok(problems)
}

/// A claim whose report is not in the store. Within a writer's wait it may be an append still
/// writing; after it, its writer stopped between claim and write (and until such claims are
/// healed, every later append waits on it and fails). Either way the chain is not whole. The
/// age is the auditor's clock against the bucket's, so a skew of seconds blurs the two.
fn unwritten_claim(shown: &str, sequence: u64, age: Option<Duration>) -> String {
    match age {
        Some(age) if age < PREVIOUS_WAIT => format!(
            "{shown}: sequence {sequence} was claimed {}s ago and its report is not written \
             yet (an append may still be writing it)",
            age.as_secs()
        ),
        Some(_) | None => format!(
            "{shown}: sequence {sequence} was claimed but its report was never written (its \
             writer stopped between claim and write)"
        ),
    }
}

/// Streams one version into a file created for it beneath `into`, a chunk at a time and no
/// further than [`MAX_OBJECT_BYTES`]: the listing's size is the bucket's claim, the body what it
/// really sends. A body longer than that is cut off, its partial file removed, and the reason
/// returned. The file is never made through a link or over one already there
/// ([`beneath::create_new`]).
async fn download(
    aws: &Aws,
    at: &Location,
    key: &str,
    version: &str,
    rel: &Path,
    into: &Path,
) -> Result<Option<String>, StoreError> {
    use std::io::Write;
    let Some(mut body) = aws.get_version(&at.bucket, key, version).await? else {
        return Ok(None);
    };
    let path = into.join(rel);
    let io = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    let mut file = beneath::create_new(into, rel).map_err(io)?;
    let mut written = 0u64;
    while let Some(chunk) = body.next_chunk().await? {
        let chunk = chunk.as_ref();
        written += chunk.len() as u64;
        if written > MAX_OBJECT_BYTES {
            drop(file);
            std::fs::remove_file(&path).map_err(io)?;
            return Ok(Some(format!(
                "its body is longer than the {MAX_OBJECT_BYTES}-byte limit of evidence (its \
                 listing said less); not read further"
            )));
        }
        file.write_all(chunk).map_err(io)?;
    }
    Ok(None)
}

/// Mirrors the newest version of every object of the chain into `into`, and names what only
/// the bucket shows: an object overwritten (a second version), deleted (a delete marker), or
/// not locked in COMPLIANCE mode until a date still to come; and every key that is not a name
/// of the evidence layout, or declares a size no report has, refused without being read.
pub async fn mirror(aws: &Aws, at: &Location, into: &Path) -> Result<Vec<String>, StoreError> {
    let versions = aws.list_versions(&at.bucket, &at.under()).await?;
    if versions.is_empty() {
        return Err(StoreError::Empty { at: at.to_string() });
    }
    let mut by_key: BTreeMap<String, Vec<ObjectVersion>> = BTreeMap::new();
    for v in versions {
        by_key.entry(v.key.clone()).or_default().push(v);
    }
    let now = SystemTime::now();
    let mut found = Vec::new();
    // Objects are read a few at a time: each costs a lock read and a download, and a year of
    // evidence is thousands of them. At most READERS tasks exist at once: a task holds its SDK
    // future (kilobytes), so spawning one per object would make memory grow with the bucket.
    let mut reading = tokio::task::JoinSet::new();
    // Claimed sequences (with when the bucket stored the claim) and written reports.
    let mut claims = Vec::new();
    let mut reported = std::collections::BTreeSet::new();
    for (key, vs) in by_key {
        let (name, vs) = match listed(at, &key, vs) {
            Listed::Refused(why) => {
                found.push((key, vec![why]));
                continue;
            }
            Listed::Evidence(name, vs) => (name, vs),
        };
        match &name {
            Name::Claim(n) => {
                let stored = vs.iter().filter_map(|v| v.last_modified).max();
                claims.push((*n, key.clone(), stored));
            }
            Name::ReportFile {
                sequence,
                file: "report.json",
                ..
            } => {
                reported.insert(*sequence);
            }
            Name::ReportFile { .. } | Name::Index | Name::IndexSignature => {}
        }
        if reading.len() >= READERS
            && let Some(done) = reading.join_next().await
        {
            let (key, problems) = done?;
            found.push((key, problems?));
        }
        let (aws, at, into) = (aws.clone(), at.clone(), into.to_owned());
        reading.spawn(async move {
            let checked = check_object(&aws, &at, &key, &name, &vs, &into, now).await;
            (key, checked)
        });
    }
    while let Some(done) = reading.join_next().await {
        let (key, problems) = done?;
        found.push((key, problems?));
    }
    for (n, key, stored) in claims {
        if !reported.contains(&n) {
            let age = stored.map(|t| now.duration_since(t).unwrap_or_default());
            let shown = format!("s3://{}/{key}", at.bucket);
            found.push((key, vec![unwritten_claim(&shown, n, age)]));
        }
    }
    found.sort();
    Ok(found.into_iter().flat_map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_past_a_writers_wait_is_named_abandoned() {
        let shown = "s3://e/d/claims/000007";
        let young = unwritten_claim(shown, 7, Some(Duration::from_secs(5)));
        assert!(young.contains("claimed 5s ago"), "{young}");
        for old in [Some(PREVIOUS_WAIT), Some(Duration::from_secs(86_400)), None] {
            let said = unwritten_claim(shown, 7, old);
            assert_eq!(
                said,
                "s3://e/d/claims/000007: sequence 7 was claimed but its report was never \
                 written (its writer stopped between claim and write)"
            );
        }
    }
}
