//! The exit codes: part of the interface (cron jobs and CI pipelines branch on them),
//! documented in the README and `firedrill --help`. Here, below everything, because a fleet's
//! summary records them as well as the CLI returning them.

/// 0: every target met.
pub const EXIT_PASS: u8 = 0;
/// 1: the drill ran and at least one target was missed.
pub const EXIT_TARGET_MISSED: u8 = 1;
/// 2: invalid scenario or command-line usage.
pub const EXIT_INVALID: u8 = 2;
/// 3: the drill was aborted (steady state not met, Ctrl-C, SIGTERM); everything was rolled back.
pub const EXIT_ABORTED: u8 = 3;
/// 4: the environment is not fit: a missing program or user, an unreachable target.
pub const EXIT_ENVIRONMENT: u8 = 4;
/// 5: refused before touching anything: the target is in use by another drill, has an
/// unrecovered journal, or is production and was not confirmed.
pub const EXIT_REFUSED: u8 = 5;
