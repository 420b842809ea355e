//! Splitting a fleet over several runners (a Kubernetes Indexed Job, hosts with a timer each):
//! runner `index` of `count` takes the instances whose rendezvous hash is highest for it. The
//! partition depends only on the instance ids and `count`, so it is the same on every run and
//! every machine, the shards are disjoint and together cover the selection, and going from N
//! to N+1 shards moves only the instances the new shard wins (about 1/(N+1) of them).
//!
//! Boundary: pure; which instances exist is the fleet's business.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The most shards a fleet is split into.
pub const MAX_SHARDS: u32 = 1000;

/// This runner's part of a fleet: shard `index` (0-based, as `JOB_COMPLETION_INDEX`) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "shard count {count}: must be between 1 and {MAX_SHARDS}"
            ));
        }
        if index >= count {
            return Err(format!(
                "shard {index}/{count}: the index counts from 0, so it is below the count \
                 (0 to {})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// `I/N`, as `--shard` takes it.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: write the shard as INDEX/COUNT, e.g. 0/4"))?;
        let num = |s: &str, what: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("{text:?}: the {what} is not a whole number"))
        };
        Shard::new(num(i, "index")?, num(n, "count")?)
    }

    /// The shard an Indexed Job gives a Pod: `JOB_COMPLETION_INDEX` with the count in
    /// `FIREDRILL_SHARDS`. `None` when neither is set.
    pub fn from_env(index: Option<&str>, count: Option<&str>) -> Result<Option<Shard>, String> {
        match (index, count) {
            (None, None) | (Some(_), None) => Ok(None),
            (None, Some(_)) => Err(
                "FIREDRILL_SHARDS is set but JOB_COMPLETION_INDEX is not: which shard is this?"
                    .into(),
            ),
            (Some(i), Some(n)) => Shard::parse(&format!("{i}/{n}"))
                .map(Some)
                .map_err(|e| format!("JOB_COMPLETION_INDEX/FIREDRILL_SHARDS {e}")),
        }
    }

    /// The shard, of `count`, that owns `id`: the one whose hash with it is highest.
    pub fn owner(id: &str, count: u32) -> u32 {
        (0..count)
            .max_by_key(|k| {
                let mut h = Sha256::new();
                h.update(id.as_bytes());
                h.update([0]);
                h.update(k.to_be_bytes());
                let d = h.finalize();
                (u64::from_be_bytes(d[..8].try_into().expect("8 bytes")), *k)
            })
            .unwrap_or(0)
    }

    pub fn owns(&self, id: &str) -> bool {
        Shard::owner(id, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("orders-{i:03}")).collect()
    }

    #[test]
    fn shards_are_disjoint_cover_everything_and_move_little_when_one_is_added() {
        let all = ids(1000);
        for count in [1, 2, 4, 7] {
            let mut seen = 0;
            for index in 0..count {
                let s = Shard::new(index, count).unwrap();
                seen += all.iter().filter(|id| s.owns(id)).count();
            }
            assert_eq!(seen, all.len(), "each id in exactly one of {count} shards");
        }
        // 4 -> 5 shards: only what shard 4 wins moves, about 1/5 of the ids.
        let moved = all
            .iter()
            .filter(|id| Shard::owner(id, 4) != Shard::owner(id, 5))
            .count();
        assert!((150..=250).contains(&moved), "{moved} of 1000 moved");
        assert!(all.iter().all(|id| {
            let (before, after) = (Shard::owner(id, 4), Shard::owner(id, 5));
            before == after || after == 4
        }));
    }

    #[test]
    fn shards_are_parsed_with_clear_errors() {
        assert_eq!(Shard::parse("3/4").unwrap(), Shard { index: 3, count: 4 });
        assert!(Shard::parse("4/4").unwrap_err().contains("counts from 0"));
        assert!(Shard::parse("1").unwrap_err().contains("INDEX/COUNT"));
        assert!(Shard::parse("a/4").unwrap_err().contains("index"));
        assert!(Shard::parse("0/0").unwrap_err().contains("between 1"));
        assert_eq!(Shard::from_env(None, None).unwrap(), None);
        assert_eq!(
            Shard::from_env(Some("2"), Some("4")).unwrap(),
            Some(Shard { index: 2, count: 4 })
        );
        assert!(Shard::from_env(None, Some("4")).is_err());
    }
}
