//! Checks on a sandbox's zones and the faults that cut them: every node in exactly one zone,
//! clients and partition sides naming zones that exist. Pure, every problem collected.

use std::collections::BTreeMap;

use super::failover::Fault;
use super::model::SandboxSpec;
use super::problem::{Keys, Problem, problem, sandbox_nodes};
use super::zones::{MAX_ZONE_NAME, ZoneLayout};

/// Each zone knows every other's address statically: a handful, not hundreds.
const MAX_ZONES: usize = 32;

/// The zones of a `postgres-sandbox` target.
pub(super) fn check_layout(spec: &SandboxSpec, out: &mut Vec<Problem>) {
    if spec.zones.is_empty() {
        if !spec.clients.is_empty() {
            out.push(problem(
                "target.clients",
                "clients are placed in zones: give `target.zones` too",
            ));
        }
        return;
    }
    let nodes = sandbox_nodes(spec.standbys);
    let mut placed: BTreeMap<&str, &str> = BTreeMap::new();
    for (zone, members) in &spec.zones {
        if !zone_name_ok(zone) {
            out.push(problem(
                &format!("target.zones.{zone}"),
                format!(
                    "a zone's name is 1 to {MAX_ZONE_NAME} lowercase letters, digits or `-`, \
                     starting with a letter"
                ),
            ));
        }
        for (i, node) in members.iter().enumerate() {
            let key = format!("target.zones.{zone}[{i}]");
            if !nodes.contains(node) {
                out.push(problem(
                    &key,
                    format!(
                        "unknown node {node:?}; this sandbox has {}",
                        nodes.join(", ")
                    ),
                ));
            } else if let Some(first) = placed.insert(node, zone) {
                out.push(problem(
                    &key,
                    format!("{node} is already in zone {first}: a node is in one zone"),
                ));
            }
        }
    }
    for node in nodes.iter().filter(|n| !placed.contains_key(n.as_str())) {
        out.push(problem(
            "target.zones",
            format!("{node} is in no zone: with zones, every node is placed in one"),
        ));
    }
    if spec.zones.len() > MAX_ZONES {
        out.push(problem(
            "target.zones",
            format!("at most {MAX_ZONES} zones"),
        ));
    }
    for (i, zone) in spec.clients.iter().enumerate() {
        if !spec.zones.contains_key(zone) {
            out.push(problem(
                &format!("target.clients[{i}]"),
                format!("unknown zone {zone:?}; zones: {}", zone_list(spec)),
            ));
        }
    }
}

/// A fault that names zones, on a sandbox; other faults have nothing to check here.
pub(super) fn check_fault(spec: &SandboxSpec, fault: &Fault, k: &Keys, out: &mut Vec<Problem>) {
    let named: Vec<(String, &str)> = match fault {
        Fault::ZoneOutage { zone, duration } => {
            if duration.is_some_and(|d| d.get().is_zero()) {
                out.push(problem(&k.fault("duration"), "must be longer than 0s"));
            }
            vec![(k.fault("zone"), zone.as_str())]
        }
        Fault::Partition {
            between,
            duration,
            one_way,
        } => {
            if !one_way && between.len() == 2 {
                check_split(spec, between, k, out);
            }
            if duration.is_some_and(|d| d.get().is_zero()) {
                out.push(problem(&k.fault("duration"), "must be longer than 0s"));
            }
            if between.len() != 2 || between.iter().any(Vec::is_empty) {
                out.push(problem(
                    &k.fault("between"),
                    "a partition has two sides, each a list of zones: `[[a], [b, c]]`",
                ));
            }
            let mut named = Vec::new();
            for (s, side) in between.iter().enumerate() {
                for (i, zone) in side.iter().enumerate() {
                    named.push((k.fault(&format!("between[{s}][{i}]")), zone.as_str()));
                    if s == 1 && between[0].contains(zone) {
                        out.push(problem(
                            &k.fault(&format!("between[1][{i}]")),
                            format!("zone {zone} is on both sides"),
                        ));
                    }
                }
            }
            named
        }
        Fault::Kill { .. }
        | Fault::Stop { .. }
        | Fault::Pause { .. }
        | Fault::Command { .. }
        | Fault::RdsFailover
        | Fault::AuroraFailover { .. }
        | Fault::FisExperiment { .. }
        | Fault::KillHost { .. }
        | Fault::KillPostgres { .. }
        | Fault::PauseHost { .. }
        | Fault::Switchover { .. }
        | Fault::Failover { .. }
        | Fault::StopDcs { .. }
        | Fault::Sql { .. } => return,
    };
    let Some(layout) = spec.zone_layout() else {
        out.push(problem(
            &k.fault("type"),
            format!(
                "a `{}` fault cuts links between zones: place the sandbox's nodes in \
                 `target.zones`",
                fault.kind()
            ),
        ));
        return;
    };
    for (key, zone) in named {
        if layout.index(zone).is_none() {
            out.push(problem(
                &key,
                format!("unknown zone {zone:?}; zones: {}", layout_list(&layout)),
            ));
        }
    }
}

/// A two-way partition splits the network in two: every zone is on one side (a zone on
/// neither would have to reach both, which two bridges cannot give).
fn check_split(spec: &SandboxSpec, between: &[Vec<String>], k: &Keys, out: &mut Vec<Problem>) {
    let Some(layout) = spec.zone_layout() else {
        return;
    };
    let missing: Vec<&str> = layout
        .zones
        .iter()
        .map(|(z, _)| z.as_str())
        .filter(|z| !between.iter().flatten().any(|n| n == z))
        .collect();
    if !missing.is_empty() {
        out.push(problem(
            &k.fault("between"),
            format!(
                "a partition both ways puts every zone on a side; {} on neither (or make it \
                 `one_way: true`)",
                missing.join(", ")
            ),
        ));
    }
}

fn zone_name_ok(z: &str) -> bool {
    !z.is_empty()
        && z.len() <= MAX_ZONE_NAME
        && z.starts_with(|c: char| c.is_ascii_lowercase())
        && z.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn zone_list(spec: &SandboxSpec) -> String {
    spec.zones.keys().cloned().collect::<Vec<_>>().join(", ")
}

fn layout_list(l: &ZoneLayout) -> String {
    l.zones
        .iter()
        .map(|(z, _)| z.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
