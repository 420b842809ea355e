//! Which drill a scenario's sections make, decided in one place: validation and the typed drill
//! both match [`Shape`] exhaustively, so a new kind of drill fails to compile until each has it.

use super::model::*;
use super::restore::Restore;
use super::steps::Step;

/// The drill a scenario means. A `posture` makes a posture drill and `steps` a game day,
/// whatever else is there (validation names the rest); otherwise the sections must make exactly
/// one drill. A `fleet` is not a drill of its own: it runs a restore drill per instance.
#[derive(Clone, Copy, Debug)]
pub enum Shape<'a> {
    Posture(&'a Posture),
    GameDay(&'a [Step]),
    Failover {
        fault: &'a Fault,
        recovery: &'a Recovery,
    },
    Restore(&'a Restore),
    BackupHealth(&'a BackupHealth),
}

/// Why the sections make no one drill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotOneDrill {
    /// No drill's section at all.
    Nothing,
    /// A failover drill's `fault` without its `recovery`.
    NoRecovery,
    /// A failover drill's `recovery` without its `fault`.
    NoFault,
    /// Sections of two or three kinds of drill.
    Several,
}

impl<'a> Shape<'a> {
    pub fn of(s: &'a Scenario) -> Result<Shape<'a>, NotOneDrill> {
        // Every section named: a new one fails to compile here until it is placed.
        let Scenario {
            version: _,
            name: _,
            description: _,
            runbook: _,
            controls: _,
            environment: _,
            target: _,
            workload: _,
            probes: _,
            steady_state: _,
            fault,
            recovery,
            steps,
            restore,
            backup_health,
            posture,
            fleet: _,
            guardrails: _,
            observe: _,
            targets: _,
            cleanup: _,
        } = s;
        if let Some(p) = posture {
            return Ok(Shape::Posture(p));
        }
        if let Some(steps) = steps {
            return Ok(Shape::GameDay(steps));
        }
        match (fault, recovery, restore, backup_health) {
            (Some(fault), Some(recovery), None, None) => Ok(Shape::Failover { fault, recovery }),
            (None, None, Some(r), None) => Ok(Shape::Restore(r)),
            (None, None, None, Some(h)) => Ok(Shape::BackupHealth(h)),
            (None, None, None, None) => Err(NotOneDrill::Nothing),
            (Some(_), None, None, None) => Err(NotOneDrill::NoRecovery),
            (None, Some(_), None, None) => Err(NotOneDrill::NoFault),
            (Some(_), _, Some(_), _)
            | (_, Some(_), Some(_), _)
            | (Some(_), _, _, Some(_))
            | (_, Some(_), _, Some(_))
            | (_, _, Some(_), Some(_)) => Err(NotOneDrill::Several),
        }
    }
}

pub(super) const ONE_DRILL: &str = "a scenario is one drill: a failover drill (`fault` and \
     `recovery`, or a game day's `steps`), a restore drill (`restore`), a backup-health drill (`backup_health`) or a \
     posture drill (`posture`)";
