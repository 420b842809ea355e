//! The network a sandbox with zones runs on: a namespace per zone, each joined by a veth pair to
//! a bridge in a fabric namespace of its own, with addresses (`10.77.0.N`) that exist only
//! inside them: no link, route or NAT to the machine's interfaces. Zone faults are changes to it
//! (a zone's link down, one side's links moved to a second bridge, nftables rules that drop
//! traffic one way), each journaled with its undo before it is made.
//!
//! Boundary: the namespaces built with iproute2's `ip -batch`, faults made through netlink
//! opened inside the fabric (no process between the fault instant and the links changing) or
//! `nft`; where PostgreSQL and the clients run inside them is the sandbox's and the engine's
//! (through [`zone`]).

pub mod zone;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::error::EnvError;
use crate::netns::{ip_batch, ip_batch_root, remove_namespaces, wait_ok};
use crate::pg::binaries::locate_program;
use crate::safety::journal::{EffectId, Journal, Undo};
use crate::scenario::ZoneLayout;

/// The bridge's name inside the fabric namespace.
const BRIDGE: &str = "br0";
/// A second bridge, built with the first and kept empty: a two-way partition moves one side's
/// links onto it, all at once through netlink, so that the cut is one instant.
const SPLIT_BRIDGE: &str = "br1";
/// The nftables table a partition adds in a zone (and its undo deletes).
pub const NFT_TABLE: &str = "firedrill";
/// CAP_NET_ADMIN's bit in `/proc/self/status`'s `CapEff`.
const CAP_NET_ADMIN: u32 = 12;

/// A drill's namespaces, built and journaled; removed by [`Fabric::destroy`] (or `recover`).
#[derive(Debug)]
pub struct Fabric {
    /// `fd` + 6 hex digits: the prefix of every namespace and link this drill made.
    prefix: String,
    layout: ZoneLayout,
    ip: PathBuf,
    nft: PathBuf,
    entry: Option<EffectId>,
    /// Netlink, inside the fabric namespace.
    nl: rtnetlink::Handle,
    /// The fabric's end of each zone's link, by zone index, and the second bridge.
    links: Vec<u32>,
    split_bridge: u32,
}

/// The programs a fabric is built and cut with, found by [`preflight`].
#[derive(Clone, Debug)]
pub struct Tools {
    ip: PathBuf,
    nft: PathBuf,
}

/// What the machine must allow before a sandbox with zones is built: CAP_NET_ADMIN, `ip` and
/// `nft`. Checked before anything is touched.
pub fn preflight() -> Result<Tools, EnvError> {
    if !has_net_admin() {
        return Err(EnvError::Capability {
            what: "a sandbox with zones (network namespaces, veth links, a bridge)".into(),
            capability: "CAP_NET_ADMIN".into(),
            hint: "run firedrill as root, or grant it CAP_NET_ADMIN (setcap cap_net_admin,cap_sys_admin+ep); \
                   without `target.zones` the sandbox runs on loopback"
                .into(),
        });
    }
    let ip = locate_program(None, "FIREDRILL_IP", "ip", "iproute2")?;
    let nft = locate_program(None, "FIREDRILL_NFT", "nft", "nftables")?;
    Ok(Tools { ip, nft })
}

fn has_net_admin() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

impl Fabric {
    /// Journals the namespaces (their removal is the undo), then makes them: the fabric with
    /// its bridge, and each zone with its loopback, its veth to the bridge and its address.
    pub async fn build(
        layout: &ZoneLayout,
        journal: &Journal,
        Tools { ip, nft }: Tools,
    ) -> Result<Fabric, EnvError> {
        let prefix = format!("fd{}", hex::encode(random_bytes()));
        let names: Vec<String> = std::iter::once(format!("{prefix}-fabric"))
            .chain(layout.zones.iter().map(|(z, _)| format!("{prefix}-{z}")))
            .collect();
        let entry = journal.effect(
            format!(
                "network namespaces {} with veth links to bridge {BRIDGE}",
                names.join(", ")
            ),
            Some(Undo::RemoveNetns {
                names: names.clone(),
            }),
        )?;
        let built = Self::wire(&prefix, layout, &ip, &names).await;
        let (nl, links, split_bridge) = match built {
            Ok(b) => b,
            Err(e) => {
                // Half-built: nothing may be left behind, whatever failed.
                journal.undone(entry, remove_namespaces(&ip, &names));
                return Err(e);
            }
        };
        Ok(Fabric {
            prefix,
            layout: layout.clone(),
            ip,
            nft,
            entry: Some(entry),
            nl,
            links,
            split_bridge,
        })
    }

    /// Makes the namespaces, bridges and links, and opens netlink inside the fabric: the
    /// handle, each zone's link index and the second bridge's.
    async fn wire(
        prefix: &str,
        layout: &ZoneLayout,
        ip: &std::path::Path,
        names: &[String],
    ) -> Result<(rtnetlink::Handle, Vec<u32>, u32), EnvError> {
        // One `ip -batch` per namespace: a handful of processes, not six per zone.
        let f = names[0].clone();
        let adds: String = names.iter().map(|n| format!("netns add {n}\n")).collect();
        ip_batch_root(ip, &adds)?;
        let mut fabric_cmds = format!(
            "link add {BRIDGE} type bridge\nlink set {BRIDGE} up\n\
             link add {SPLIT_BRIDGE} type bridge\nlink set {SPLIT_BRIDGE} up\n"
        );
        for (i, z) in names[1..].iter().enumerate() {
            let veth = format!("{prefix}v{i}");
            fabric_cmds.push_str(&format!(
                "link add {veth} type veth peer name eth0 address {} netns {z}\n\
                 link set {veth} master {BRIDGE} up\n",
                mac(i)
            ));
        }
        ip_batch(ip, &f, &fabric_cmds)?;
        for (i, ((zone, _), z)) in layout.zones.iter().zip(&names[1..]).enumerate() {
            let addr = layout.address(zone).expect("a zone of the layout");
            let mut cmds =
                format!("link set lo up\naddr add {addr}/24 dev eth0\nlink set eth0 up\n");
            // Static neighbours: a zone that comes back is reachable at once, not when an ARP
            // retry happens to fire (a second later), so what is measured is the outage.
            for (j, (other, _)) in layout.zones.iter().enumerate().filter(|(j, _)| *j != i) {
                let other = layout.address(other).expect("a zone of the layout");
                cmds.push_str(&format!(
                    "neigh add {other} lladdr {} dev eth0 nud permanent\n",
                    mac(j)
                ));
            }
            ip_batch(ip, z, &cmds)?;
        }
        // Faults change links through netlink, from a socket opened inside the fabric: no
        // process to start between the fault instant and the links going down.
        // The socket registers with the runtime's reactor, from the thread in the fabric.
        let rt = tokio::runtime::Handle::current();
        let (conn, nl, _) = zone::within(&f, || {
            let _in_runtime = rt.enter();
            rtnetlink::new_connection()
        })?
        .map_err(EnvError::io("cannot open a netlink socket in the fabric"))?;
        tokio::spawn(conn);
        let index = |name: String| {
            let nl = nl.clone();
            async move {
                use futures_util::TryStreamExt;
                nl.link()
                    .get()
                    .match_name(name.clone())
                    .execute()
                    .try_next()
                    .await
                    .ok()
                    .flatten()
                    .map(|l| l.header.index)
                    .ok_or_else(|| EnvError::Database(format!("no link {name} in the fabric")))
            }
        };
        let mut links = Vec::new();
        for i in 0..layout.zones.len() {
            links.push(index(format!("{prefix}v{i}")).await?);
        }
        let split_bridge = index(SPLIT_BRIDGE.to_owned()).await?;
        Ok((nl, links, split_bridge))
    }

    pub fn layout(&self) -> &ZoneLayout {
        &self.layout
    }

    /// Every namespace this drill made, the fabric first.
    pub fn namespaces(&self) -> Vec<String> {
        std::iter::once(self.fabric_ns())
            .chain(self.layout.zones.iter().map(|(z, _)| self.ns(z)))
            .collect()
    }

    /// The namespace of `zone` (as `ip netns` names it).
    pub fn ns(&self, zone: &str) -> String {
        format!("{}-{zone}", self.prefix)
    }

    pub fn fabric_ns(&self) -> String {
        format!("{}-fabric", self.prefix)
    }

    /// The fabric's end of zone `i`'s link (an interface name has at most 15 bytes).
    fn veth(&self, i: usize) -> String {
        format!("{}v{i}", self.prefix)
    }

    pub fn address(&self, zone: &str) -> Option<Ipv4Addr> {
        self.layout.address(zone)
    }

    /// Every link of `zone` down, after journaling how to bring it back up; returns the undo
    /// and the instant the links were set down (after the journal's fsync).
    pub async fn zone_down(
        &self,
        zone: &str,
        journal: &Journal,
    ) -> Result<(Undo, EffectId, Instant), EnvError> {
        let i = self.zone_index(zone)?;
        let undo = Undo::LinkUp {
            netns: self.fabric_ns(),
            link: self.veth(i),
        };
        let id = journal.effect(
            format!("zone {zone}'s link {} down", self.veth(i)),
            Some(undo.clone()),
        )?;
        let at = Instant::now();
        self.nl
            .link()
            .set(
                rtnetlink::LinkUnspec::new_with_index(self.links[i])
                    .down()
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| netlink_error(&format!("setting {} down", self.veth(i)), e))?;
        Ok((undo, id, at))
    }

    /// Cuts the zones of `from` off from those of `to`, journaled first; returns the undo. Both
    /// ways (every zone is on a side): `from`'s links move to a bridge of their own, one `ip`
    /// call. One way: nftables rules in `from`'s zones drop what they send to `to`.
    pub async fn partition(
        &self,
        from: &[String],
        to: &[String],
        one_way: bool,
        journal: &Journal,
    ) -> Result<(Undo, EffectId, Instant), EnvError> {
        if !one_way {
            return self.split(from, to, journal).await;
        }
        let addrs = |zones: &[String]| -> Result<Vec<String>, EnvError> {
            zones
                .iter()
                .map(|z| Ok(self.zone_address(z)?.to_string()))
                .collect()
        };
        let (a, b) = (addrs(from)?, addrs(to)?);
        let mut rules: Vec<(String, String)> = from
            .iter()
            .map(|z| (self.ns(z), drop_rules(&b, !one_way)))
            .collect();
        if !one_way {
            rules.extend(to.iter().map(|z| (self.ns(z), drop_rules(&a, true))));
        }
        let undo = Undo::NftDelete {
            netns: rules.iter().map(|(ns, _)| ns.clone()).collect(),
            table: NFT_TABLE.into(),
        };
        let id = journal.effect(
            format!(
                "partition: nftables table inet {NFT_TABLE} in {} dropping traffic {} {}",
                from.join(", "),
                if one_way { "to" } else { "to and from" },
                to.join(", ")
            ),
            Some(undo.clone()),
        )?;
        let at = Instant::now();
        // Every zone's rules at once: the partition is one instant, not one per zone.
        let children: Vec<_> = rules
            .iter()
            .map(|(ns, script)| self.spawn_nft(ns, script))
            .collect::<Result<_, _>>()?;
        for child in children {
            wait_ok("nft", child)?;
        }
        Ok((undo, id, at))
    }

    /// A two-way partition: `from`'s links onto the second bridge, all at once.
    async fn split(
        &self,
        from: &[String],
        to: &[String],
        journal: &Journal,
    ) -> Result<(Undo, EffectId, Instant), EnvError> {
        let zones: Vec<usize> = from
            .iter()
            .map(|z| self.zone_index(z))
            .collect::<Result<_, _>>()?;
        let names: Vec<String> = zones.iter().map(|&i| self.veth(i)).collect();
        let undo = Undo::LinkMaster {
            netns: self.fabric_ns(),
            links: names.clone(),
            master: BRIDGE.into(),
        };
        let id = journal.effect(
            format!(
                "partition: links of {} ({}) moved from bridge {BRIDGE} to {SPLIT_BRIDGE}, away \
                 from {}",
                from.join(", "),
                names.join(", "),
                to.join(", ")
            ),
            Some(undo.clone()),
        )?;
        let at = Instant::now();
        let moves = zones.iter().map(|&i| {
            self.nl
                .link()
                .set(
                    rtnetlink::LinkUnspec::new_with_index(self.links[i])
                        .controller(self.split_bridge)
                        .build(),
                )
                .execute()
        });
        for r in futures_util::future::join_all(moves).await {
            r.map_err(|e| netlink_error("moving a link to the second bridge", e))?;
        }
        Ok((undo, id, at))
    }

    /// Removes every namespace (and with them every link and rule); idempotent. Called after
    /// the sandbox's processes stopped; any process still inside a namespace is killed.
    pub fn destroy(&mut self, journal: &Journal) {
        if let Some(id) = self.entry.take() {
            let how = remove_namespaces(&self.ip, &self.namespaces());
            journal.undone(id, how);
        }
    }

    fn spawn_nft(&self, ns: &str, script: &str) -> Result<std::process::Child, EnvError> {
        use std::io::Write;
        let mut child = Command::new(&self.ip)
            .args(["netns", "exec", ns])
            .arg(&self.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(EnvError::io("cannot run nft"))?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(script.as_bytes())
            .map_err(EnvError::io("cannot write nft's rules"))?;
        Ok(child)
    }

    fn zone_index(&self, zone: &str) -> Result<usize, EnvError> {
        self.layout
            .index(zone)
            .ok_or_else(|| EnvError::Database(format!("no zone named {zone} in this sandbox")))
    }

    fn zone_address(&self, zone: &str) -> Result<Ipv4Addr, EnvError> {
        self.zone_index(zone)?;
        Ok(self.layout.address(zone).expect("a zone of the layout"))
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        // A sandbox dropped half-built: nothing may be left, journal or not.
        if self.entry.is_some() {
            remove_namespaces(&self.ip, &self.namespaces());
        }
    }
}

/// An nftables table dropping traffic to `addrs` (and from them, if `both`).
fn drop_rules(addrs: &[String], both: bool) -> String {
    let set = addrs.join(", ");
    let mut s = format!(
        "table inet {NFT_TABLE} {{\n  chain out {{ type filter hook output priority 0; ip daddr {{ {set} }} drop; }}\n"
    );
    if both {
        s.push_str(&format!(
            "  chain in {{ type filter hook input priority 0; ip saddr {{ {set} }} drop; }}\n"
        ));
    }
    s.push_str("}\n");
    s
}

/// Zone `i`'s address on the fabric (locally administered, so never a real card's).
fn mac(i: usize) -> String {
    format!("02:77:00:00:{:02x}:{:02x}", (i >> 8) & 0xff, i & 0xff)
}

fn netlink_error(what: &str, e: rtnetlink::Error) -> EnvError {
    EnvError::Database(format!("netlink, {what}: {e}"))
}

fn random_bytes() -> [u8; 3] {
    use std::io::Read;
    let mut b = [0u8; 3];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let n = std::process::id()
            ^ std::time::UNIX_EPOCH
                .elapsed()
                .unwrap_or_default()
                .subsec_nanos();
        b.copy_from_slice(&n.to_le_bytes()[..3]);
    }
    b
}
