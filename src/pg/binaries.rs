//! Finding the server programs a sandbox runs, and the unprivileged user to run them as.
//!
//! Debian keeps PostgreSQL's outside `PATH` (`/usr/lib/postgresql/15/bin`), so their lookup
//! order is: the scenario's `bin_dir`, `$FIREDRILL_PG_BINDIR`, `pg_config --bindir`, then
//! `PATH`. Other programs (Patroni, etcd): the scenario's setting, an environment variable,
//! then `PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::EnvError;

/// Programs a sandbox cannot be built without.
const REQUIRED: &[&str] = &["initdb", "postgres", "pg_basebackup"];

#[derive(Clone, Debug)]
pub struct PgBinaries {
    pub dir: PathBuf,
}

impl PgBinaries {
    pub fn locate(configured: Option<&Path>) -> Result<Self, EnvError> {
        let mut searched = Vec::new();
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(dir) = configured {
            candidates.push(dir.to_owned());
        } else {
            if let Some(dir) = std::env::var_os("FIREDRILL_PG_BINDIR") {
                candidates.push(dir.into());
            }
            if let Some(dir) = pg_config_bindir() {
                candidates.push(dir);
            }
            if let Some(path) = std::env::var_os("PATH") {
                candidates.extend(std::env::split_paths(&path));
            }
        }
        for dir in candidates {
            if REQUIRED.iter().all(|p| is_executable(&dir.join(p))) {
                return Ok(PgBinaries { dir });
            }
            searched.push(dir.display().to_string());
        }
        let missing = REQUIRED.join(", ");
        Err(EnvError::MissingBinary {
            what: format!("PostgreSQL server programs ({missing})"),
            searched: searched.join(":"),
            hint: "install the PostgreSQL server (Debian: apt-get install postgresql), or set \
                   `target.bin_dir` or FIREDRILL_PG_BINDIR"
                .into(),
        })
    }

    pub fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `postgres --version`, e.g. "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
    pub fn version(&self) -> Option<String> {
        let out = Command::new(self.program("postgres"))
            .arg("--version")
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// One program: the scenario's path for it, else `$env`, else `name` on `PATH`; missing, an
/// error that names the Debian package to install.
pub fn locate_program(
    configured: Option<&Path>,
    env: &str,
    name: &str,
    package: &str,
) -> Result<PathBuf, EnvError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = configured {
        candidates.push(p.to_owned());
    } else if let Some(p) = std::env::var_os(env) {
        candidates.push(p.into());
    } else if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(name)));
    }
    if let Some(found) = candidates.iter().find(|p| is_executable(p)) {
        return Ok(found.clone());
    }
    Err(EnvError::MissingBinary {
        what: format!("the {name} program"),
        searched: candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
        hint: format!(
            "install it (Debian: apt-get install {package}), or set `target.{name}` or {env}"
        ),
    })
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    Some(PathBuf::from(dir.trim()))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The uid and gid PostgreSQL runs as: `None` when firedrill itself is not root (the server runs
/// as the current user); otherwise the named unprivileged user, since `initdb` refuses root.
pub fn run_as(user: Option<&str>) -> Result<Option<(u32, u32)>, EnvError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = user.unwrap_or("postgres");
    let c_name = std::ffi::CString::new(name).map_err(|_| EnvError::NoUser {
        user: name.to_owned(),
    })?;
    // SAFETY: getpwnam returns a pointer into static storage or null; it is read at once, and
    // firedrill calls it from one thread before any other passwd lookup.
    let pw = unsafe { libc::getpwnam(c_name.as_ptr()) };
    if pw.is_null() {
        return Err(EnvError::NoUser {
            user: name.to_owned(),
        });
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    if uid == 0 {
        return Err(EnvError::NoUser {
            user: format!("{name} (it is root; PostgreSQL refuses to run as root)"),
        });
    }
    Ok(Some((uid, gid)))
}
