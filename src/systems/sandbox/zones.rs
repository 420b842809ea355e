//! A sandbox's zones as the sandbox itself sees them: where each node listens and runs, how
//! firedrill reaches nodes it cannot route to (their sockets), which client runtimes there are,
//! and the fabric's subnet trusted in `pg_hba.conf`. The namespaces themselves are
//! [`crate::net`]'s.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use super::{FABRIC_SUBNET, Node, Role, Sandbox, append, loopback_client};
use crate::error::EnvError;
use crate::net::Fabric;
use crate::net::zone::ZoneRuntime;

impl Sandbox {
    /// firedrill's own view, from outside every zone: each node through the socket directory,
    /// the node it made primary first, so that after a split brain the ledger is read from the
    /// server that survives. On loopback, the application's view.
    pub fn admin_config(&self, connect_timeout: Duration) -> tokio_postgres::Config {
        if self.fabric.is_none() {
            return self.client_config(connect_timeout);
        }
        let mut c = loopback_client(std::iter::empty(), connect_timeout);
        let mut order: Vec<&Node> = self.nodes.iter().collect();
        order.sort_by_key(|n| n.role != Role::Primary);
        for n in order {
            c.host_path(self.socket_dir()).port(n.port);
        }
        c
    }

    /// The zones, when the sandbox has them.
    pub fn fabric(&self) -> Option<&Fabric> {
        self.fabric.as_deref()
    }

    /// The runtime of each client zone (their tasks open connections from the zone); empty on
    /// loopback.
    pub fn client_zones(&self) -> &[ZoneRuntime] {
        &self.client_zones
    }

    /// The node listening on `addr:port`, as a writer's acknowledgement names its server.
    pub fn node_at(&self, addr: &str, port: u16) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.port == port && n.addr.to_string() == addr)
            .map(|n| n.name.as_str())
    }

    /// Where a node named `name` listens, and the namespace it runs in.
    pub(super) fn placement(&self, name: &str) -> (Ipv4Addr, Option<String>) {
        let zoned = self.fabric.as_ref().and_then(|f| {
            let zone = f.layout().zone_of(name)?;
            Some((f.address(zone)?, f.ns(zone)))
        });
        match zoned {
            Some((addr, ns)) => (addr, Some(ns)),
            None => (Ipv4Addr::LOCALHOST, None),
        }
    }

    /// How tools and firedrill's own connections reach a node: over TCP on loopback, or
    /// through the socket directory when the nodes are in zones (a path crosses namespaces).
    pub(super) fn admin_host(&self) -> String {
        if self.fabric.is_some() {
            self.socket_dir().display().to_string()
        } else {
            "127.0.0.1".into()
        }
    }

    /// With zones, clients and standbys connect over the fabric, not loopback: the fabric's
    /// subnet is trusted as loopback is (it exists only inside the drill's namespaces).
    pub(super) fn allow_fabric(&self, data_dir: &Path) -> Result<(), EnvError> {
        if self.fabric.is_none() {
            return Ok(());
        }
        append(
            &data_dir.join("pg_hba.conf"),
            &format!(
                "\n# firedrill zones\nhost all all {FABRIC_SUBNET} trust\n\
                 host replication all {FABRIC_SUBNET} trust\n"
            ),
        )
    }
}
