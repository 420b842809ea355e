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

use firedrill_aws::{Aws, AwsError, COMPLIANCE, Condition, Put};

use crate::evidence::{self, INDEX};
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
) -> Result<String, String> {
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
            .await
            .map_err(|e| e.to_string())?
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
    let staged = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = staged.path().join(&entry);
    evidence::write(&dir, report, signer).map_err(|e| e.to_string())?;
    // The signature before the report, as in a directory: a report never stands beside a
    // signature of something else.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
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
        let bytes = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        if name == "report.json" {
            report_bytes = bytes.clone();
        }
        let key = at.key(&format!("{entry}/{name}"));
        if aws
            .put_locked(&at.bucket, &key, bytes, until, Condition::Absent)
            .await
            .map_err(|e| e.to_string())?
            == Put::Conflict
        {
            return Err(format!("s3://{}/{key} already exists", at.bucket));
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
async fn claimed(aws: &Aws, at: &Location) -> Result<std::collections::BTreeSet<u64>, String> {
    let prefix = at.key("claims/");
    let mut out = std::collections::BTreeSet::new();
    for v in aws
        .list_versions(&at.bucket, &prefix)
        .await
        .map_err(|e| e.to_string())?
    {
        if v.delete_marker || !v.latest {
            continue;
        }
        if let Ok(n) = v.key[prefix.len()..].parse::<u64>() {
            out.insert(n);
        }
    }
    Ok(out)
}

/// The SHA-256 of report `n`'s `report.json`, waiting a while for a writer that claimed it and
/// is still uploading.
async fn sha_of_report(aws: &Aws, at: &Location, n: u64) -> Result<String, String> {
    let deadline = std::time::Instant::now() + PREVIOUS_WAIT;
    let claim = at.key(&format!("claims/{n:06}"));
    loop {
        let entry = get(aws, at, &claim).await?;
        if let Some(entry) = entry {
            let entry = String::from_utf8_lossy(&entry).into_owned();
            if let Some(bytes) = get(aws, at, &at.key(&format!("{entry}/report.json"))).await? {
                return Ok(evidence::sha256(&bytes));
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "report {n} in {at} was claimed but not written within {}s; run `firedrill \
                 verify {at}`",
                PREVIOUS_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get(aws: &Aws, at: &Location, key: &str) -> Result<Option<Vec<u8>>, String> {
    aws.get_object(&at.bucket, key)
        .await
        .map_err(|e: AwsError| e.to_string())
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
) -> Result<(), String> {
    let own = evidence::index_entry(entry.to_owned(), bytes, report);
    let (index_key, sig_key) = (at.key(INDEX), at.key(&format!("{INDEX}.sig")));
    for _ in 0..50 {
        let current = aws
            .get_tagged(&at.bucket, &index_key)
            .await
            .map_err(|e| e.to_string())?;
        let (mut index, when) = match &current {
            Some((b, etag)) => (evidence::parse_index(b)?, Condition::Matches(etag.clone())),
            None => (evidence::new_index(), Condition::Absent),
        };
        let newest = if index.reports.iter().any(|r| r.entry == own.entry) {
            current.map(|(b, _)| b).unwrap_or_default()
        } else {
            index.reports.push(own.clone());
            index.reports.sort_by_key(|r| r.sequence);
            let (b, _) = evidence::index_bytes(&index, None).map_err(|e| e.to_string())?;
            let put = aws
                .put_locked(&at.bucket, &index_key, b.clone(), until, when)
                .await
                .map_err(|e| e.to_string())?;
            if put == Put::Conflict {
                continue;
            }
            b
        };
        let Some(signer) = signer else {
            return Ok(());
        };
        let signature = signer.sign(&newest).map_err(|e| e.to_string())?;
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
        .await
        .map_err(|e| e.to_string())?;
    }
    Err(format!("{at}: the index did not settle after 50 attempts"))
}

/// Objects read at once by [`mirror`].
const READERS: usize = 16;

/// One object of the store: its versions and lock checked, its newest version mirrored under
/// `into` (claims are only checked). What is wrong with it.
async fn check_object(
    aws: &Aws,
    at: &Location,
    key: &str,
    name: &str,
    vs: &[firedrill_aws::ObjectVersion],
    into: &Path,
    now: SystemTime,
) -> Result<Vec<String>, String> {
    let shown = format!("s3://{}/{key}", at.bucket);
    let mut problems = Vec::new();
    if vs.iter().any(|v| v.delete_marker) {
        problems.push(format!("{shown}: deleted (a delete marker hides it)"));
    }
    let kept: Vec<_> = vs.iter().filter(|v| !v.delete_marker).collect();
    // The index is rewritten by design, one locked version per append.
    let rewritable = name == INDEX || name == format!("{INDEX}.sig");
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
    if name.starts_with("claims/") || vs.iter().any(|v| v.latest && v.delete_marker) {
        return Ok(problems);
    }
    let Some(bytes) = get(aws, at, key).await? else {
        return Ok(problems);
    };
    let path = into.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(problems)
}

/// Mirrors the newest version of every object of the chain into `into`, and names what only
/// the bucket shows: an object overwritten (a second version), deleted (a delete marker), or
/// not locked in COMPLIANCE mode until a date still to come.
pub async fn mirror(aws: &Aws, at: &Location, into: &Path) -> Result<Vec<String>, String> {
    let under = at.under();
    let versions = aws
        .list_versions(&at.bucket, &under)
        .await
        .map_err(|e| e.to_string())?;
    if versions.is_empty() {
        return Err(format!("{at}: no objects"));
    }
    let mut by_key: BTreeMap<String, Vec<firedrill_aws::ObjectVersion>> = BTreeMap::new();
    for v in versions {
        by_key.entry(v.key.clone()).or_default().push(v);
    }
    let now = SystemTime::now();
    // Objects are read a few at a time: each costs a lock read and a download, and a year of
    // evidence is thousands of them.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(READERS));
    let mut reading = tokio::task::JoinSet::new();
    for (key, vs) in by_key {
        let (aws, at, into, gate) = (aws.clone(), at.clone(), into.to_owned(), gate.clone());
        let name = key[under.len()..].to_owned();
        reading.spawn(async move {
            let _turn = gate.acquire().await;
            let found = check_object(&aws, &at, &key, &name, &vs, &into, now).await;
            (key, found)
        });
    }
    let mut found = Vec::new();
    while let Some(done) = reading.join_next().await {
        let (key, problems) = done.map_err(|e| e.to_string())?;
        found.push((key, problems?));
    }
    found.sort();
    let problems = found.into_iter().flat_map(|(_, p)| p).collect();
    Ok(problems)
}
