//! Zones: where a sandbox's nodes and clients sit on a network firedrill builds for them (one
//! network namespace per zone, joined by a bridge), so that a fault can cut links rather than
//! kill processes. Plain data and the names derived from it; the checks are
//! [`super::validate_zones`]'s, the namespaces the engine's.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The zone the clients get when a scenario places nodes in zones but names no client zone.
pub const DEFAULT_CLIENT_ZONE: &str = "clients";

/// Zone names become namespace names and nftables identifiers: short, lowercase, no spaces.
pub const MAX_ZONE_NAME: usize = 12;

/// The network a sandbox with zones runs on, derived once from its spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneLayout {
    /// Every zone in order (the scenario's, then the default client zone if it was added), with
    /// the nodes in it.
    pub zones: Vec<(String, Vec<String>)>,
    /// The zones the clients run in, one writer group each; the probes run in the first.
    pub clients: Vec<String>,
}

impl ZoneLayout {
    /// `None` for a sandbox without zones (loopback).
    pub fn of(zones: &BTreeMap<String, Vec<String>>, clients: &[String]) -> Option<ZoneLayout> {
        if zones.is_empty() {
            return None;
        }
        let mut all: Vec<(String, Vec<String>)> =
            zones.iter().map(|(z, n)| (z.clone(), n.clone())).collect();
        let clients = if clients.is_empty() {
            if !zones.contains_key(DEFAULT_CLIENT_ZONE) {
                all.push((DEFAULT_CLIENT_ZONE.to_owned(), Vec::new()));
            }
            vec![DEFAULT_CLIENT_ZONE.to_owned()]
        } else {
            clients.to_vec()
        };
        Some(ZoneLayout {
            zones: all,
            clients,
        })
    }

    pub fn zone_of(&self, node: &str) -> Option<&str> {
        self.zones
            .iter()
            .find(|(_, nodes)| nodes.iter().any(|n| n == node))
            .map(|(z, _)| z.as_str())
    }

    pub fn index(&self, zone: &str) -> Option<usize> {
        self.zones.iter().position(|(z, _)| z == zone)
    }

    /// The zone's address on the fabric (`10.77.0.N/24`, N from 1): it exists only inside the
    /// drill's namespaces, so it may be the same for every drill.
    pub fn address(&self, zone: &str) -> Option<std::net::Ipv4Addr> {
        self.index(zone)
            .map(|i| std::net::Ipv4Addr::new(10, 77, 0, i as u8 + 1))
    }
}

/// How a promotion treats the old primary it cannot see.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Fence {
    /// Nothing: a controller that cannot reach the old primary promotes anyway, and the old
    /// primary keeps taking the writes of every client that still reaches it (split brain).
    #[default]
    None,
    /// Stop the old primary first (SIGKILL of every process, as STONITH would), then promote.
    StopOldPrimary,
}
