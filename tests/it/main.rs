//! Integration tests, one binary (as ripgrep does): each module is one area.

mod bad_input;
mod checksum;
mod cli;
mod drill;
mod evidence;
mod render;
mod restore;
mod sandbox;
mod signing;

use std::sync::{Mutex, MutexGuard};

/// Drills measure time on a 2-core machine: run them one at a time, and keep tests that load
/// the machine (Chromium, hundreds of ssh-keygen processes, fsync-heavy chains) out of their
/// way, so that nothing skews a measured RTO.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}
