//! Sandbox templates: the data directory `initdb` makes, cached per PostgreSQL version and
//! `initdb` options, so that the next sandbox copies it instead of running `initdb`, and its
//! standbys copy it too instead of a `pg_basebackup` of a primary that holds nothing yet (a
//! cold copy of the cluster the primary started from is a valid base backup of it).
//!
//! Boundary: finding, filling and copying the cache; the sandbox (`systems::sandbox`) decides when. The
//! cache is not a drill's side effect (it outlives drills on purpose), so it is not journaled;
//! removing the directory is always safe.
//!
//! On disk, versioned: `<dir>/v1-<16 hex of sha256(version, options)>/` holding `data/` and
//! `template.json` (format, `postgres --version`, the options, when made). A template is
//! written under a temporary name and renamed into place complete, so a directory without its
//! stamp, or with another format or key, is never used.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::EnvError;

const FORMAT: u32 = 1;
const STAMP: &str = "template.json";

/// Where templates are kept: `<state dir>/templates` for the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateCache {
    dir: PathBuf,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Stamp {
    format: u32,
    postgres: String,
    initdb: Vec<String>,
    created: String,
}

/// One template: which PostgreSQL made it, with which options.
pub struct Key<'a> {
    /// `postgres --version`, minor version included: a template is used only by the server
    /// that made it.
    pub postgres: &'a str,
    pub initdb: &'a [&'a str],
}

impl Key<'_> {
    fn dir_name(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.postgres.as_bytes());
        for a in self.initdb {
            h.update([0]);
            h.update(a.as_bytes());
        }
        format!("v{FORMAT}-{}", hex::encode(&h.finalize()[..8]))
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            format: FORMAT,
            postgres: self.postgres.to_owned(),
            initdb: self.initdb.iter().map(|s| s.to_string()).collect(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }
}

impl TemplateCache {
    pub fn new(dir: PathBuf) -> TemplateCache {
        TemplateCache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached data directory for `key`, when a complete one of this format is there.
    pub fn find(&self, key: &Key) -> Option<PathBuf> {
        let at = self.dir.join(key.dir_name());
        let stamp: Stamp = serde_json::from_slice(&std::fs::read(at.join(STAMP)).ok()?).ok()?;
        let want = key.stamp();
        let same = stamp.format == want.format
            && stamp.postgres == want.postgres
            && stamp.initdb == want.initdb;
        (same && at.join("data/PG_VERSION").is_file()).then(|| at.join("data"))
    }

    /// Keeps a copy of `data`, a cluster `initdb` just made and no server has started, as the
    /// template for `key`; its path. Another drill storing the same template at the same time
    /// is fine: the first complete one wins.
    pub fn store(&self, key: &Key, data: &Path) -> Result<PathBuf, EnvError> {
        let io = |what: &str| {
            EnvError::io(format!(
                "sandbox template cache {}: {what}",
                self.dir.display()
            ))
        };
        std::fs::create_dir_all(&self.dir).map_err(io("cannot create it"))?;
        let partial = self.dir.join(format!(
            ".partial-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir(&partial).map_err(io("cannot create a template"))?;
        let filled = copy_tree(data, &partial.join("data")).and_then(|()| {
            let stamp = serde_json::to_vec_pretty(&key.stamp()).expect("serializable");
            std::fs::write(partial.join(STAMP), stamp).map_err(io("cannot write its stamp"))
        });
        let at = self.dir.join(key.dir_name());
        let placed = filled.and_then(|()| match std::fs::rename(&partial, &at) {
            Ok(()) => Ok(()),
            // Someone else's complete template got there first.
            Err(_) if self.find(key).is_some() => Ok(()),
            Err(e) => Err(io("cannot put it in place")(e)),
        });
        let _ = std::fs::remove_dir_all(&partial);
        placed.map(|()| at.join("data"))
    }
}

/// `cp -a --reflink=auto FROM TO`: owners and modes kept, and on filesystems that can share
/// extents (btrfs, XFS) nothing is copied until written.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), EnvError> {
    let out = Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(from)
        .arg(to)
        .output()
        .map_err(EnvError::io("cannot run cp"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(EnvError::Command {
            what: format!("cp -a {} {}", from.display(), to.display()),
            status: out.status.to_string(),
            log: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(postgres: &'a str, initdb: &'a [&'a str]) -> Key<'a> {
        Key { postgres, initdb }
    }

    #[test]
    fn a_template_is_found_only_for_its_own_version_and_options() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("made");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("PG_VERSION"), "15\n").unwrap();
        let cache = TemplateCache::new(dir.path().join("templates"));
        let k = key("postgres (PostgreSQL) 15.18", &["-E", "UTF8"]);
        assert_eq!(cache.find(&k), None);
        let at = cache.store(&k, &data).unwrap();
        assert_eq!(cache.find(&k), Some(at.clone()));
        assert!(at.join("PG_VERSION").is_file());
        assert_eq!(
            cache.find(&key("postgres (PostgreSQL) 15.19", &["-E", "UTF8"])),
            None
        );
        assert_eq!(
            cache.find(&key("postgres (PostgreSQL) 15.18", &["-E", "SQL_ASCII"])),
            None
        );
        // Storing again (another drill) keeps the first; no partial directory is left.
        assert_eq!(cache.store(&k, &data).unwrap(), at);
        let names: Vec<_> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].starts_with("v1-"), "{names:?}");
    }

    #[test]
    fn a_template_without_its_stamp_or_of_another_format_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TemplateCache::new(dir.path().to_owned());
        let k = key("postgres (PostgreSQL) 15.18", &[]);
        let at = dir.path().join(k.dir_name());
        std::fs::create_dir_all(at.join("data")).unwrap();
        std::fs::write(at.join("data/PG_VERSION"), "15\n").unwrap();
        assert_eq!(cache.find(&k), None, "no stamp: an interrupted copy");
        let mut stamp = k.stamp();
        stamp.format = 2;
        std::fs::write(at.join(STAMP), serde_json::to_vec(&stamp).unwrap()).unwrap();
        assert_eq!(cache.find(&k), None, "a later format");
    }
}
