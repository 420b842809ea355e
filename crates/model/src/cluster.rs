//! A Patroni cluster as a report shows it: its members before the fault and after recovery,
//! the leader's move, the DCS settings, Patroni's own history of the switch, and the RTO the
//! settings should give beside the one measured.
//!
//! Boundary: the serialized view; reading it off a cluster's REST API is the runtime's.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scenario::ExpectedRto;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PatroniView {
    /// Patroni's version, as its REST API reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The dynamic configuration (`GET /config`): ttl, loop_wait, retry_timeout, ...
    #[serde(default)]
    pub dcs: serde_json::Map<String, serde_json::Value>,
    /// `GET /cluster` before the fault.
    pub before: Vec<MemberState>,
    /// `GET /cluster` after the observation.
    pub after: Vec<MemberState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_after: Option<String>,
    /// The member the fault hit (a role resolved when it fired), or the candidate asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_member: Option<String>,
    /// Timeline switches Patroni recorded during the drill (`GET /history`).
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// The RTO this failure mode should have under the cluster's settings, when there is a
    /// model for it; `inside` compares the measured RTO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_rto: Option<ExpectedRto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_inside_expected: Option<bool>,
}

/// One member as `GET /cluster` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemberState {
    pub name: String,
    /// `leader`, `sync_standby`, `replica`, `standby_leader`, ...
    pub role: String,
    /// `running`, `streaming`, `stopped`, `starting`, `crashed`, ...
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<u64>,
    /// Replication lag in bytes; `None` for the leader or when Patroni reports it unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
}

/// One line of `GET /history`: the timeline that ended, where, why, and who took over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryEntry {
    pub timeline: u64,
    pub lsn: u64,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_leader: Option<String>,
}

impl PatroniView {
    /// The leader of a member list.
    pub fn leader_of(members: &[MemberState]) -> Option<String> {
        members
            .iter()
            .find(|m| m.role == "leader" || m.role == "master")
            .map(|m| m.name.clone())
    }
}
