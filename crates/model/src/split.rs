//! Split brain, from the writes themselves: which server acknowledged each write (the address
//! and port the insert returned), over which interval each server took writes, how long two
//! did at once, and which lost writes a server that did not survive acknowledged after the
//! fault. Pure: the workload's log, the lost writes and the survivor in; figures out.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ledger::Ack;
use crate::measure::ms;

/// One server that acknowledged writes during the drill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServerWrites {
    /// The node's name (a sandbox's), else `address:port`.
    pub server: String,
    /// Its first and last acknowledgement, ms from the drill's start.
    pub first_ms: f64,
    pub last_ms: f64,
    pub acknowledged: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SplitBrain {
    /// Every server that acknowledged a write, by first acknowledgement.
    pub servers: Vec<ServerWrites>,
    /// How long two or more servers took writes at once (the overlap of their intervals); 0
    /// when none did.
    pub window_ms: f64,
    /// The server the ledger was read back from: whose history survives.
    pub survivor: Option<String>,
    /// Lost writes another server acknowledged after the fault: it kept taking writes on a
    /// history that did not survive (lost to divergence).
    pub diverged_writes: u64,
    /// The other lost writes: acknowledged before the fault and never replicated (lost to
    /// replication lag, as any failover of asynchronous replication loses them).
    pub lag_lost_writes: u64,
}

/// The split-brain figures of a drill. `lost` are the acknowledged writes missing after
/// recovery (`(client, seq)`); `name` names a server; `fault_at` is the fault instant.
pub fn measure(
    acks: &[Ack],
    lost: &HashSet<(u32, u64)>,
    survivor: Option<&str>,
    fault_at: Duration,
    name: impl Fn(SocketAddr) -> String,
) -> SplitBrain {
    let mut by_server: BTreeMap<String, (Duration, Duration, u64)> = BTreeMap::new();
    let mut diverged = 0;
    let mut lag = 0;
    for a in acks {
        let server = a.server.map(&name);
        if let Some(s) = &server {
            let e = by_server.entry(s.clone()).or_insert((a.at, a.at, 0));
            e.0 = e.0.min(a.at);
            e.1 = e.1.max(a.at);
            e.2 += 1;
        }
        if lost.contains(&(a.client, a.seq)) {
            let elsewhere = server.as_deref().is_some_and(|s| Some(s) != survivor);
            if elsewhere && a.at >= fault_at {
                diverged += 1;
            } else {
                lag += 1;
            }
        }
    }
    let mut servers: Vec<ServerWrites> = by_server
        .into_iter()
        .map(|(server, (first, last, n))| ServerWrites {
            server,
            first_ms: ms(first),
            last_ms: ms(last),
            acknowledged: n,
        })
        .collect();
    servers.sort_by(|a, b| a.first_ms.total_cmp(&b.first_ms));
    SplitBrain {
        window_ms: overlap(&servers),
        servers,
        survivor: survivor.map(str::to_owned),
        diverged_writes: diverged,
        lag_lost_writes: lag,
    }
}

/// Time covered by at least two of the servers' intervals.
fn overlap(servers: &[ServerWrites]) -> f64 {
    let mut edges: Vec<(f64, i32)> = servers
        .iter()
        .flat_map(|s| [(s.first_ms, 1), (s.last_ms, -1)])
        .collect();
    // At one instant, an interval's end before another's start: touching is not overlapping.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut open, mut from, mut total) = (0, 0.0, 0.0);
    for (t, d) in edges {
        if open >= 2 {
            total += t - from;
        }
        open += d;
        from = t;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(client: u32, seq: u64, at_ms: u64, port: u16) -> Ack {
        Ack {
            client,
            seq,
            sent: Duration::from_millis(at_ms),
            at: Duration::from_millis(at_ms),
            server: Some(SocketAddr::from(([10, 77, 0, 1], port))),
        }
    }

    fn name(s: SocketAddr) -> String {
        format!("n{}", s.port())
    }

    #[test]
    fn a_failover_without_overlap_has_no_window_and_its_losses_are_lag() {
        let acks = [ack(0, 1, 100, 1), ack(0, 2, 900, 1), ack(0, 3, 1500, 2)];
        let lost = HashSet::from([(0, 2)]);
        let sb = measure(&acks, &lost, Some("n2"), Duration::from_millis(1000), name);
        assert_eq!(sb.window_ms, 0.0);
        assert_eq!((sb.diverged_writes, sb.lag_lost_writes), (0, 1));
        assert_eq!(sb.servers.len(), 2);
        assert_eq!(sb.servers[0].server, "n1");
    }

    #[test]
    fn two_servers_writing_at_once_give_the_overlap_and_diverged_writes() {
        // n1 keeps writing to 5 s; n2 (the survivor) from 2 s: 3 s of split brain.
        let acks = [
            ack(0, 1, 0, 1),
            ack(0, 2, 1500, 1),
            ack(0, 3, 5000, 1),
            ack(1, 1, 2000, 2),
            ack(1, 2, 6000, 2),
        ];
        let lost = HashSet::from([(0, 2), (0, 3)]);
        let sb = measure(&acks, &lost, Some("n2"), Duration::from_millis(1000), name);
        assert_eq!(sb.window_ms, 3000.0);
        assert_eq!((sb.diverged_writes, sb.lag_lost_writes), (2, 0));
    }

    #[test]
    fn three_servers_count_each_instant_once() {
        let acks = [
            ack(0, 1, 0, 1),
            ack(0, 2, 10, 1),
            ack(1, 1, 2, 2),
            ack(1, 2, 8, 2),
            ack(2, 1, 4, 3),
            ack(2, 2, 12, 3),
        ];
        let sb = measure(&acks, &HashSet::new(), None, Duration::ZERO, name);
        // At least two servers from 2 to 10 ms.
        assert_eq!(sb.window_ms, 8.0);
    }
}
