//! A problem found in a scenario and where it sits, with the small checks several validators
//! share: below `validate` and every `validate_*`, so that none of them reaches up into another.

/// One thing wrong with a scenario, named by key path (e.g. `recovery.node`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

pub(super) fn problem(path: &str, message: impl Into<String>) -> Problem {
    Problem {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Node names of a sandbox with `standbys` standbys.
pub fn sandbox_nodes(standbys: u8) -> Vec<String> {
    std::iter::once("primary".to_owned())
        .chain((1..=standbys).map(|i| format!("standby{i}")))
        .collect()
}

pub(super) fn check_argv(path: &str, run: &[String], out: &mut Vec<Problem>) {
    if run.is_empty() || run[0].is_empty() {
        out.push(problem(
            path,
            "give the command as a list: program first, then its arguments",
        ));
    }
}

/// Where a fault and a recovery sit in the scenario: `fault` and `recovery` in a failover
/// drill, `steps[N].fault` and `steps[N].recovery` in a game day.
pub(super) struct Keys {
    pub fault: String,
    pub recovery: String,
}

impl Keys {
    pub(super) fn classic() -> Keys {
        Keys {
            fault: "fault".into(),
            recovery: "recovery".into(),
        }
    }

    pub(super) fn fault(&self, key: &str) -> String {
        format!("{}.{key}", self.fault)
    }

    pub(super) fn recovery(&self, key: &str) -> String {
        format!("{}.{key}", self.recovery)
    }
}
