//! firedrill: proves that a system survives failure and that its backups really restore.
//!
//! The library is the engine; `src/main.rs` is a thin CLI over it. A drill is a validated
//! [`scenario::Scenario`] run by [`engine`] against a target, emitting typed [`event::Event`]s
//! that reporters consume, and ending in a versioned [`report::Report`].

pub mod checksum;
pub mod dsn;
pub mod engine;
pub mod error;
pub mod finish;
pub mod fleet;
pub mod guardrail;
pub mod human;
pub mod net;
pub mod netns;
pub mod operator;
pub mod pg;
pub mod probe;
pub mod process;
pub mod pushgateway;
pub mod safety;
pub mod store;
pub mod systems;
pub mod template;
pub mod workload;

// The contracts and the auditor's tools live in crates of their own (see the README's layout);
// they are re-exported so that the engine and its users name them in one place.
pub use firedrill_evidence::{beneath, evidence, layout, render, signing, summary};
pub use firedrill_model::{
    audit, cluster, event, exit, fleet_summary, gameday, judge, ledger, measure, plan, posture,
    record, report, scenario, secrets, shard, soc2, split,
};
