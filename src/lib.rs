//! firedrill: proves that a system survives failure and that its backups really restore.
//!
//! The library is the engine; `src/main.rs` is a thin CLI over it. A drill is a validated
//! [`scenario::Scenario`] run by [`engine`] against a target, emitting typed [`event::Event`]s
//! that reporters consume, and ending in a versioned [`report::Report`].

pub mod aws_target;
pub mod backup_health;
pub mod checksum;
pub mod claim;
pub mod driver;
pub mod dsn;
pub mod engine;
pub mod error;
pub mod event;
pub mod evidence;
pub mod fleet;
pub mod guardrail;
pub mod human;
pub mod journal;
pub mod ledger;
pub mod lock;
pub mod measure;
pub mod pg;
pub mod plan;
pub mod probe;
pub mod recover;
pub mod render;
pub mod report;
pub mod restore;
pub mod scenario;
pub mod secrets;
pub mod signals;
pub mod signing;
pub mod soc2;
pub mod summary;
pub mod workload;
