//! PostgreSQL plumbing the targets and drills share: locating the server programs, reading its
//! errors, signalling and stopping its processes. The sandbox itself is a target
//! (`systems/sandbox/`).

pub mod binaries;
pub mod errors;
pub mod signal;
