//! The WAL archive's continuity: a restore can replay only up to the first missing segment, and
//! PostgreSQL then ends recovery there quietly (for a `latest` target) with everything after it
//! lost. The archive is checked before the restore, so a gap is named rather than discovered.
//!
//! Boundary: file names only (`TTTTTTTTLLLLLLLLSSSSSSSS`, 16 MiB segments); contents are
//! PostgreSQL's to check when it replays them.

use std::path::Path;

/// Segments per 4 GiB "log" with the default 16 MiB segment size.
const SEGMENTS_PER_LOG: u64 = 0x1_0000_0000 / (16 * 1024 * 1024);

/// The WAL segment a base backup starts in, from its `backup_label`.
pub fn start_segment(backup_dir: &Path) -> Option<String> {
    let label = std::fs::read_to_string(backup_dir.join("backup_label")).ok()?;
    let line = label
        .lines()
        .find(|l| l.starts_with("START WAL LOCATION:"))?;
    let file = line.split("(file ").nth(1)?.trim_end_matches(')');
    is_segment(file).then(|| file.to_owned())
}

fn is_segment(name: &str) -> bool {
    name.len() == 24 && name.chars().all(|c| c.is_ascii_hexdigit())
}

fn parse(name: &str) -> Option<(u32, u64)> {
    let tli = u32::from_str_radix(&name[..8], 16).ok()?;
    let log = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..], 16).ok()?;
    Some((tli, log * SEGMENTS_PER_LOG + seg))
}

fn name(tli: u32, n: u64) -> String {
    format!(
        "{tli:08X}{:08X}{:08X}",
        n / SEGMENTS_PER_LOG,
        n % SEGMENTS_PER_LOG
    )
}

/// The segments missing from `archive` between `start` and the newest archived segment of the
/// same timeline, and that newest segment. Compressed copies (`NAME.gz`, pgBackRest's
/// `NAME-HASH.gz`) count as present.
pub fn gaps(archive: &Path, start: &str) -> std::io::Result<(Vec<String>, Option<String>)> {
    let Some((tli, first)) = parse(start) else {
        return Ok((Vec::new(), None));
    };
    let mut have = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(archive)? {
        let e = e?;
        let file = e.file_name();
        let Some(file) = file.to_str() else { continue };
        let Some(stem) = file.get(..24) else { continue };
        if is_segment(stem)
            && let Some((t, n)) = parse(stem)
            && t == tli
        {
            have.insert(n);
        }
    }
    let Some(&last) = have.iter().next_back() else {
        return Ok((vec![start.to_owned()], None));
    };
    let missing = (first..=last)
        .filter(|n| !have.contains(n))
        .map(|n| name(tli, n))
        .collect();
    Ok((missing, Some(name(tli, last))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_named_and_log_boundaries_are_crossed() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "0000000100000000000000FE",
            "000000010000000100000000",
            "000000010000000100000002",
        ] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        // 0/FF is the next segment after 0/FE; 1/01 is missing too.
        let (missing, last) = gaps(dir.path(), "0000000100000000000000FE").unwrap();
        assert_eq!(
            missing,
            vec!["0000000100000000000000FF", "000000010000000100000001"]
        );
        assert_eq!(last.as_deref(), Some("000000010000000100000002"));
    }
}
