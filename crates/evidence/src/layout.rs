//! The names an evidence store holds, and nothing else: a bucket's keys and a directory's
//! entries are someone else's input until they parse as one of these. A key never becomes a
//! path unless it is [`Name::parse`]d first, so `..`, an absolute or empty segment, a name
//! outside the chain's layout or an object too large to be a report never reaches the file
//! system.
//!
//! Boundary: names and sizes only; reading and writing are the store's and the directory's.

use std::fmt;
use std::path::PathBuf;

/// The largest object a store may hold: a 10-minute drill's report is well under 2 MB and its
/// HTML view a few times that, so anything this size is not evidence and is not read.
pub const MAX_OBJECT_BYTES: u64 = 32 * 1024 * 1024;

/// The longest name under the prefix: a sequence, a scenario name and a file name.
const MAX_NAME_CHARS: usize = 256;

/// The chain's index, at the root of the directory or prefix.
pub const INDEX: &str = "index.json";

/// The files a report's directory holds: the report, its signature, and its views.
pub const REPORT_FILES: [&str; 6] = [
    "report.json",
    "report.json.sig",
    "report.md",
    "report.html",
    "junit.xml",
    "metrics.prom",
];

/// One name of an evidence store, relative to its prefix or directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    /// `index.json`.
    Index,
    /// `index.json.sig`.
    IndexSignature,
    /// `claims/NNNNNN`: a writer's claim of a sequence number (buckets only).
    Claim(u64),
    /// `NNNNNN-<scenario>/<file>`, `file` one of [`REPORT_FILES`].
    ReportFile {
        sequence: u64,
        entry: String,
        file: &'static str,
    },
}

/// Why a name is not one of a store's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadName {
    #[error("an empty segment (`//`, or a leading or trailing `/`)")]
    EmptySegment,
    #[error("a `.` or `..` segment")]
    DotSegment,
    #[error("longer than {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("a character no evidence name uses ({0:?})")]
    Character(char),
    #[error("not a name of the evidence layout (index.json, claims/N, NNNNNN-SCENARIO/FILE)")]
    NotInLayout,
    #[error("{0} is not a file a report's directory holds")]
    UnknownFile(String),
    #[error("declared size {size} bytes is over the {MAX_OBJECT_BYTES}-byte limit of evidence")]
    TooLarge { size: u64 },
}

impl Name {
    /// Parses a name relative to the store's prefix (a bucket) or root (a directory).
    pub fn parse(name: &str) -> Result<Name, BadName> {
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(BadName::TooLong);
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
        {
            return Err(BadName::Character(c));
        }
        let segments: Vec<&str> = name.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(BadName::EmptySegment);
        }
        if segments.iter().any(|s| *s == "." || *s == "..") {
            return Err(BadName::DotSegment);
        }
        match segments[..] {
            ["index.json"] => Ok(Name::Index),
            ["index.json.sig"] => Ok(Name::IndexSignature),
            ["claims", n] => sequence(n).map(Name::Claim).ok_or(BadName::NotInLayout),
            [entry, file] => {
                let sequence = entry_sequence(entry).ok_or(BadName::NotInLayout)?;
                let file = REPORT_FILES
                    .iter()
                    .find(|f| **f == file)
                    .ok_or_else(|| BadName::UnknownFile(file.to_owned()))?;
                Ok(Name::ReportFile {
                    sequence,
                    entry: entry.to_owned(),
                    file,
                })
            }
            _ => Err(BadName::NotInLayout),
        }
    }

    /// [`Name::parse`], and refused as well when the object's declared size is over
    /// [`MAX_OBJECT_BYTES`] (checked before anything is read).
    pub fn parse_sized(name: &str, size: u64) -> Result<Name, BadName> {
        let parsed = Name::parse(name)?;
        if size > MAX_OBJECT_BYTES {
            return Err(BadName::TooLarge { size });
        }
        Ok(parsed)
    }

    /// The relative path the name is mirrored to: built from its parsed parts, never from the
    /// text it came from.
    pub fn relative_path(&self) -> PathBuf {
        match self {
            Name::Index => PathBuf::from(INDEX),
            Name::IndexSignature => PathBuf::from(format!("{}.sig", INDEX)),
            Name::Claim(n) => PathBuf::from("claims").join(format!("{n:06}")),
            Name::ReportFile { entry, file, .. } => PathBuf::from(entry).join(file),
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.relative_path().display())
    }
}

/// A report directory's name, `NNNNNN-<scenario>`: its sequence, or `None` when it is not one.
pub fn entry_sequence(entry: &str) -> Option<u64> {
    let (n, scenario) = entry.split_once('-')?;
    let scenario_ok = !scenario.is_empty()
        && scenario
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    scenario_ok.then_some(())?;
    sequence(n)
}

/// A sequence number as the store writes it: six digits or more, none but digits.
fn sequence(n: &str) -> Option<u64> {
    if n.len() < 6 || n.len() > 12 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layouts_names_parse() {
        assert_eq!(Name::parse("index.json"), Ok(Name::Index));
        assert_eq!(Name::parse("index.json.sig"), Ok(Name::IndexSignature));
        assert_eq!(Name::parse("claims/000012"), Ok(Name::Claim(12)));
        assert_eq!(
            Name::parse("000003-sandbox-failover-sync/report.json"),
            Ok(Name::ReportFile {
                sequence: 3,
                entry: "000003-sandbox-failover-sync".into(),
                file: "report.json",
            })
        );
        // A fleet member's scenario name has a dot in it.
        assert!(Name::parse("000004-monthly.db-1/junit.xml").is_ok());
    }

    #[test]
    fn hostile_names_are_refused_with_why() {
        for (name, why) in [
            ("/etc/passwd", BadName::EmptySegment),
            ("000001-a//report.json", BadName::EmptySegment),
            ("000001-a/", BadName::EmptySegment),
            ("../../../../tmp/x", BadName::DotSegment),
            ("000001-a/../../report.json", BadName::DotSegment),
            ("./index.json", BadName::DotSegment),
            ("000001-a/report.json\\..", BadName::Character('\\')),
            ("000001-a/r\u{0}", BadName::Character('\u{0}')),
            ("000001-a/b/report.json", BadName::NotInLayout),
            ("000001-/report.json", BadName::NotInLayout),
            ("12-a/report.json", BadName::NotInLayout),
            ("notes.txt", BadName::NotInLayout),
            ("claims/x", BadName::NotInLayout),
            ("000001-a/evil.sh", BadName::UnknownFile("evil.sh".into())),
        ] {
            assert_eq!(Name::parse(name), Err(why), "{name}");
        }
        assert_eq!(
            Name::parse(&format!("000001-{}/report.json", "a".repeat(300))),
            Err(BadName::TooLong)
        );
    }

    #[test]
    fn an_object_declared_over_the_limit_is_refused_before_reading() {
        let two_gb = 2 * 1024 * 1024 * 1024;
        assert_eq!(
            Name::parse_sized("000001-a/report.json", two_gb),
            Err(BadName::TooLarge { size: two_gb })
        );
        assert!(Name::parse_sized("000001-a/report.json", MAX_OBJECT_BYTES).is_ok());
    }

    #[test]
    fn the_path_is_built_from_the_parts() {
        let n = Name::parse("000002-x.y/report.md").unwrap();
        assert_eq!(n.relative_path(), PathBuf::from("000002-x.y/report.md"));
        assert_eq!(
            Name::parse("claims/1234567").unwrap().relative_path(),
            PathBuf::from("claims/1234567")
        );
    }
}
