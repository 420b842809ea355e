//! firedrill's evidence: what an auditor runs. Signing reports (OpenSSH signatures), the hash
//! chain of an evidence directory and its verification, the summary over an audit period, and
//! the pure views of a report (Markdown, HTML with its timeline picture, JUnit, Prometheus).
//!
//! Depends on the model only, so `firedrill verify` and `firedrill evidence` never need the
//! engine, PostgreSQL or AWS to build.

pub mod beneath;
pub mod evidence;
pub mod layout;
pub mod render;
pub mod signing;
pub mod summary;
