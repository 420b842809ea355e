//! Finishing a drill: what happens after the engine returns, the same for a single run and for
//! each member of a fleet. A report is recorded in the journal, stamped with its signer (and its
//! fleet), and written to a directory or appended to an evidence chain; a drill that ended
//! without a report has its error masked, journaled and mapped to its exit code.
//!
//! Boundary: decides and writes; printing is the CLI's.

use std::path::{Path, PathBuf};

use crate::engine::RunError;
use crate::report::{FleetRef, Report, SignerRef, Verdict};
use crate::safety::journal::Journal;
use crate::secrets;
use crate::signing::{self, Signer};
use crate::{error, evidence};

/// Where a report goes.
#[derive(Clone, Debug)]
pub enum Destination {
    /// DIR/report.json (a fleet's members: DIR/<instance>/report.json).
    Dir(PathBuf),
    /// The next entry of an evidence chain in DIR.
    Evidence(PathBuf),
    /// The next entry of the evidence chain in a bucket with Object Lock, every object locked
    /// for `retain`.
    S3 {
        aws: Box<firedrill_aws::Aws>,
        at: crate::store::Location,
        retain: std::time::Duration,
    },
}

/// A report written: its `report.json` and that file's SHA-256.
#[derive(Clone, Debug)]
pub struct Written {
    pub path: PathBuf,
    pub sha256: String,
}

/// Records the outcome in the journal, stamps the signer and the fleet, and writes the report
/// to `dest` (`sub`: a fleet member's subdirectory of a `Dir`). `Ok(None)`: nowhere to write.
/// On a write error the report is still whole in `report`, so the caller can show it.
pub async fn finish(
    report: &mut Report,
    journal: &Journal,
    signer: Option<&Signer>,
    fleet: Option<FleetRef>,
    dest: Option<&Destination>,
    sub: Option<&str>,
) -> Result<Option<Written>, String> {
    journal.finished(&report.verdict.label().to_lowercase());
    report.signer = signer.map(|s| SignerRef {
        fingerprint: s.fingerprint(),
        namespace: signing::NAMESPACE.into(),
    });
    report.fleet = fleet;
    let written = match dest {
        None => return Ok(None),
        Some(Destination::Dir(dir)) => {
            let dir = sub.map_or_else(|| dir.clone(), |s| dir.join(s));
            evidence::write(&dir, report, signer)
        }
        Some(Destination::Evidence(dir)) => evidence::append(dir, report, signer),
        Some(Destination::S3 { aws, at, retain }) => {
            let key = crate::store::append(aws, at, report, signer, *retain)
                .await
                .map_err(|e| e.to_string())?;
            let mut bytes = serde_json::to_vec_pretty(report).map_err(|e| e.to_string())?;
            bytes.push(b'\n');
            return Ok(Some(Written {
                path: PathBuf::from(key),
                sha256: evidence::sha256(&bytes),
            }));
        }
    };
    let path = written.map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(Written {
        sha256: evidence::sha256(&bytes),
        path,
    }))
}

/// A drill that ended without a report: its error, masked and journaled, and its exit code.
pub fn failed(kind: &RunError, journal: &Journal) -> (String, u8) {
    let e = secrets::redact(&kind.to_string()).into_owned();
    journal.finished(&format!("error: {e}"));
    (e, kind.exit_code())
}

/// The exit code of a drill that ran to its report.
pub fn exit_code(v: Verdict) -> u8 {
    match v {
        Verdict::Pass => error::EXIT_PASS,
        Verdict::Fail => error::EXIT_TARGET_MISSED,
        Verdict::Aborted => error::EXIT_ABORTED,
    }
}

/// `path` as seen from `base`, for links in a summary (`orders-1/report.json`,
/// `../000012-nightly.orders-1/report.json`).
pub fn relative_to(base: &Path, path: &Path) -> String {
    if let Ok(p) = path.strip_prefix(base) {
        return p.display().to_string();
    }
    match base.parent().map(|up| path.strip_prefix(up)) {
        Some(Ok(p)) => format!("../{}", p.display()),
        None | Some(Err(_)) => path.display().to_string(),
    }
}
