//! firedrill's model: what a drill is and what it proves, with no tokio, PostgreSQL or AWS in
//! it. A scenario file is read and validated once ([`scenario::load`]) into a typed drill that
//! cannot be "not validated"; the report is the serialized contract every view and auditor
//! reads, with its verdict rules ([`judge`]); the plan says what a drill would do.
//!
//! The engine (`firedrill`) and the evidence tools (`firedrill-evidence`) build on this crate;
//! it depends on neither.

pub mod audit;
pub mod cluster;
pub mod event;
pub mod exit;
pub mod fleet_summary;
pub mod gameday;
pub mod judge;
pub mod ledger;
pub mod measure;
pub mod plan;
pub mod posture;
pub mod record;
pub mod report;
pub mod scenario;
pub mod schema;
pub mod secrets;
pub mod shard;
pub mod soc2;
pub mod split;
