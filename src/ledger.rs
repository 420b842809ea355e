//! Lost-write accounting, after the Jepsen set checker: every write the workload saw acknowledged
//! must be present after recovery. Pure: the workload's own log against the rows read back.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::measure::ms;

/// A write the database acknowledged (its commit returned success).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    pub client: u32,
    pub seq: u64,
    pub at: Duration,
}

/// What one drill's writers did: acknowledged writes, and writes whose outcome is unknown (an
/// error or timeout after the statement was sent: the commit may or may not have happened).
#[derive(Clone, Debug, Default)]
pub struct WorkloadLog {
    pub acks: Vec<Ack>,
    pub in_doubt: Vec<(u32, u64)>,
}

impl WorkloadLog {
    pub fn merge(&mut self, other: WorkloadLog) {
        self.acks.extend(other.acks);
        self.in_doubt.extend(other.in_doubt);
    }
}

/// A ledger row read back after recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub client: u32,
    pub seq: u64,
    pub payload: String,
}

/// The payload a write carries, so that a row with corrupted content is told from a present one.
pub fn payload(run: &str, client: u32, seq: u64) -> String {
    format!("{run}/{client}/{seq}")
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerCheck {
    pub acknowledged_writes: u64,
    /// Acknowledged but missing.
    pub lost_writes: u64,
    /// Up to 20 lost writes, as `client/seq`, for the report.
    pub lost_examples: Vec<String>,
    /// Writes with an unknown outcome.
    pub in_doubt_writes: u64,
    /// In-doubt writes that turned out to be committed.
    pub in_doubt_present: u64,
    /// Rows present that no writer ever attempted, or whose payload is wrong.
    pub integrity_failures: u64,
    /// Earliest lost acknowledgement to the later of the fault and the last lost acknowledgement.
    pub rpo_ms: f64,
}

pub fn check(log: &WorkloadLog, rows: &[Row], run: &str, fault_at: Duration) -> LedgerCheck {
    let present: HashMap<(u32, u64), &str> = rows
        .iter()
        .map(|r| ((r.client, r.seq), r.payload.as_str()))
        .collect();
    let in_doubt: HashSet<(u32, u64)> = log.in_doubt.iter().copied().collect();
    let acked: HashSet<(u32, u64)> = log.acks.iter().map(|a| (a.client, a.seq)).collect();

    let mut lost: Vec<&Ack> = log
        .acks
        .iter()
        .filter(|a| !present.contains_key(&(a.client, a.seq)))
        .collect();
    lost.sort_by_key(|a| (a.at, a.client, a.seq));

    let mut integrity_failures = 0;
    for (&(client, seq), &p) in &present {
        let attempted = acked.contains(&(client, seq)) || in_doubt.contains(&(client, seq));
        if !attempted || p != payload(run, client, seq) {
            integrity_failures += 1;
        }
    }

    let rpo_ms = match (lost.first(), lost.last()) {
        (Some(first), Some(last)) => ms(last.at.max(fault_at).saturating_sub(first.at)),
        _ => 0.0,
    };
    LedgerCheck {
        acknowledged_writes: log.acks.len() as u64,
        lost_writes: lost.len() as u64,
        lost_examples: lost
            .iter()
            .take(20)
            .map(|a| format!("{}/{}", a.client, a.seq))
            .collect(),
        in_doubt_writes: in_doubt.len() as u64,
        in_doubt_present: in_doubt.iter().filter(|k| present.contains_key(k)).count() as u64,
        integrity_failures,
        rpo_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(client: u32, seq: u64, at_ms: u64) -> Ack {
        Ack {
            client,
            seq,
            at: Duration::from_millis(at_ms),
        }
    }
    fn row(client: u32, seq: u64) -> Row {
        Row {
            client,
            seq,
            payload: payload("r", client, seq),
        }
    }

    #[test]
    fn counts_lost_in_doubt_and_rpo() {
        let log = WorkloadLog {
            acks: vec![
                ack(0, 1, 100),
                ack(0, 2, 200),
                ack(1, 1, 300),
                ack(1, 2, 900),
            ],
            in_doubt: vec![(0, 3), (1, 3)],
        };
        // (0,2) and (1,2) lost; in-doubt (1,3) committed after all.
        let rows = vec![row(0, 1), row(1, 1), row(1, 3)];
        let c = check(&log, &rows, "r", Duration::from_millis(1000));
        assert_eq!(c.acknowledged_writes, 4);
        assert_eq!(c.lost_writes, 2);
        assert_eq!(c.lost_examples, vec!["0/2", "1/2"]);
        assert_eq!((c.in_doubt_writes, c.in_doubt_present), (2, 1));
        assert_eq!(c.integrity_failures, 0);
        // From the first lost ack (200ms) to the fault (1000ms).
        assert_eq!(c.rpo_ms, 800.0);
    }

    #[test]
    fn nothing_lost_is_rpo_zero() {
        let log = WorkloadLog {
            acks: vec![ack(0, 1, 100)],
            in_doubt: vec![],
        };
        let c = check(&log, &[row(0, 1)], "r", Duration::from_millis(500));
        assert_eq!((c.lost_writes, c.rpo_ms), (0, 0.0));
    }

    #[test]
    fn phantom_and_corrupted_rows_are_integrity_failures() {
        let log = WorkloadLog {
            acks: vec![ack(0, 1, 100)],
            in_doubt: vec![],
        };
        let mut corrupted = row(0, 1);
        corrupted.payload.push('!');
        let c = check(&log, &[corrupted, row(7, 7)], "r", Duration::ZERO);
        assert_eq!(c.integrity_failures, 2);
        assert_eq!(c.lost_writes, 0);
    }
}
