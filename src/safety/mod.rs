//! Safety: what lets a drill run against something that matters. Every side effect is journaled
//! before it happens, with its undo ([`journal`]); one place applies every undo ([`undo`]);
//! `firedrill recover` replays what a killed drill left ([`recover`]); one drill per target at a
//! time ([`lock`], [`claim`]); Ctrl-C and SIGTERM become a cancellation ([`signals`]); secrets
//! are masked in everything written ([`secrets`], from the model, since reports use it too).
//!
//! Boundary: this module sits below the targets and the engine; it reaches PostgreSQL only
//! through processes and directories, and AWS only through `firedrill-aws`.

pub mod claim;
pub mod journal;
pub mod lock;
pub mod prune;
pub mod recover;
pub mod signals;
pub mod undo;

pub use firedrill_model::secrets;
