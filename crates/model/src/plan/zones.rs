//! What a sandbox with zones adds to a plan: the namespaces and links built before the nodes,
//! and their removal as the undo.

use crate::scenario::SandboxSpec;

/// The build steps of the zones, before any node starts; none on loopback.
pub(super) fn build_steps(t: &SandboxSpec) -> Vec<String> {
    let Some(l) = t.zone_layout() else {
        return Vec::new();
    };
    let zones: Vec<String> = l
        .zones
        .iter()
        .map(|(z, nodes)| {
            let addr = l.address(z).expect("a zone of the layout");
            match nodes.is_empty() {
                true => format!("{z} ({addr}, clients)"),
                false => format!("{z} ({addr}: {})", nodes.join(", ")),
            }
        })
        .collect();
    vec![
        format!(
            "create network namespaces fdXXXXXX-fabric (bridge br0) and one per zone: {}; a \
             veth from each zone to the bridge, no route to the machine's interfaces",
            zones.join(", ")
        ),
        format!(
            "run the clients in zone(s) {} (probes in {}); each node listens on its zone's \
             address, firedrill reaches them through their sockets",
            l.clients.join(", "),
            l.clients[0]
        ),
    ]
}

/// The zones as a side effect with its undo; none on loopback.
pub(super) fn effects(t: &SandboxSpec, add: &mut dyn FnMut(String, &str)) {
    if let Some(l) = t.zone_layout() {
        add(
            format!(
                "create network namespaces (fabric + {} zones), veth links and a bridge",
                l.zones.len()
            ),
            "kill whatever runs in them and delete the namespaces (links, bridge and rules go \
             with them)",
        );
    }
}
