//! PostgreSQL plumbing shared by the drivers: locating the server programs and the local sandbox.

pub mod binaries;
pub mod errors;
pub mod sandbox;
pub mod signal;
