//! The SOC 2 Trust Services Criteria a drill can evidence, with the one-line description an
//! auditor reads in each report. Only criteria a drill's measurements actually speak to are
//! known; a scenario naming another is rejected at validation rather than producing a claim
//! the report cannot back.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A criterion as a report lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ControlRef {
    /// The criterion id, e.g. `A1.3`.
    pub id: String,
    /// The criterion, shortened from the AICPA 2017 Trust Services Criteria (revised 2022).
    pub criterion: String,
    /// What this report shows for it.
    pub evidence: String,
}

/// (id, criterion, what a drill report shows for it)
const CRITERIA: &[(&str, &str, &str)] = &[
    (
        "A1.1",
        "Availability: current processing capacity and use of system components are maintained, monitored and evaluated.",
        "latency percentiles and availability of the target under a measured workload",
    ),
    (
        "A1.2",
        "Availability: environmental protections, software, data back-up processes and recovery infrastructure are implemented, operated and monitored.",
        "the recovery infrastructure (replicas, promotion, backups) exercised under a real fault",
    ),
    (
        "A1.3",
        "Availability: recovery plan procedures supporting system recovery are tested.",
        "a recovery procedure tested end to end, with achieved RTO and RPO against their targets",
    ),
    (
        "CC6.1",
        "Common criteria: logical access security software, infrastructure and architectures are implemented over protected information assets.",
        "backups found encrypted at rest (or named where they are not), resource by resource",
    ),
    (
        "CC6.7",
        "Common criteria: the transmission, movement and removal of information is restricted to authorized users and processes, and it is protected during transmission, movement or removal.",
        "backup copies and snapshots, wherever they were moved or copied, found encrypted",
    ),
    (
        "CC7.4",
        "Common criteria: identified incidents are responded to by a defined incident-response program.",
        "the runbook followed for the simulated incident and the timeline of the response",
    ),
    (
        "CC7.5",
        "Common criteria: activities to recover from identified incidents are identified, developed and implemented.",
        "the recovery activity carried out and timed against its objective",
    ),
    (
        "CC9.1",
        "Common criteria: risk mitigation activities for risks arising from potential business disruptions are identified, selected and developed.",
        "a business-disruption scenario rehearsed with measured outcomes",
    ),
    (
        "PI1.1",
        "Processing integrity: relevant, quality information about processing objectives, including definitions of data processed, is obtained and communicated.",
        "the data checked (tables, ledger) and how, stated in the report",
    ),
    (
        "PI1.2",
        "Processing integrity: system inputs are controlled for completeness and accuracy.",
        "every acknowledged write accounted for after the fault",
    ),
    (
        "PI1.3",
        "Processing integrity: system processing is controlled to meet objectives.",
        "no phantom or altered rows in the written data after recovery",
    ),
    (
        "PI1.4",
        "Processing integrity: outputs are made available or delivered completely, accurately and timely.",
        "acknowledged writes readable after recovery: lost, in-doubt and integrity counts",
    ),
    (
        "PI1.5",
        "Processing integrity: inputs, items in processing and outputs are stored completely, accurately and timely.",
        "stored data proven complete and correct after failover or restore (ledger, checksums)",
    ),
];

/// Known criterion ids, for error messages.
pub fn known_ids() -> Vec<&'static str> {
    CRITERIA.iter().map(|(id, _, _)| *id).collect()
}

/// The report entry for `id`; `None` for a criterion firedrill cannot evidence.
pub fn control(id: &str) -> Option<ControlRef> {
    CRITERIA
        .iter()
        .find(|(known, _, _)| *known == id)
        .map(|(id, criterion, evidence)| ControlRef {
            id: (*id).into(),
            criterion: (*criterion).into(),
            evidence: (*evidence).into(),
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_known_id_resolves_and_others_do_not() {
        for id in super::known_ids() {
            assert_eq!(super::control(id).unwrap().id, id);
        }
        assert!(super::control("A1.9").is_none());
        assert!(super::control("a1.2").is_none());
    }
}
