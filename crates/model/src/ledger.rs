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
    /// When the write was sent, on the drill clock.
    pub sent: Duration,
    /// When its acknowledgement arrived.
    pub at: Duration,
    /// The server that acknowledged it (the address and port its insert returned); `None`
    /// over a Unix socket.
    pub server: Option<std::net::SocketAddr>,
}

/// What one drill's writers did: acknowledged writes, and writes whose outcome is unknown (an
/// error or timeout after the statement was sent: the commit may or may not have happened).
#[derive(Clone, Debug, Default)]
pub struct WorkloadLog {
    pub acks: Vec<Ack>,
    pub in_doubt: Vec<(u32, u64)>,
    /// When each in-doubt write was sent, same order as `in_doubt`.
    pub in_doubt_sent: Vec<Duration>,
}

impl WorkloadLog {
    pub fn merge(&mut self, other: WorkloadLog) {
        self.acks.extend(other.acks);
        self.in_doubt.extend(other.in_doubt);
        self.in_doubt_sent.extend(other.in_doubt_sent);
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

/// The acknowledged writes missing from `rows`, as `(client, seq)`.
pub fn missing(log: &WorkloadLog, rows: &[Row]) -> HashSet<(u32, u64)> {
    let present: HashSet<(u32, u64)> = rows.iter().map(|r| (r.client, r.seq)).collect();
    log.acks
        .iter()
        .map(|a| (a.client, a.seq))
        .filter(|k| !present.contains(k))
        .collect()
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

/// A restore to a point in time, against the workload's log: the point lies in `[lo, hi]` on
/// the drill clock (an instant for a recovery target time; the round trip of the query that
/// took a snapshot). Every write acknowledged before `lo` committed before the point and must
/// be present; every write sent after `hi` committed after it and must be absent; a write in
/// flight across the point may be either.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PointCheck {
    /// Acknowledged before the point: must all be present.
    pub before: u64,
    /// Of those, missing.
    pub missing: u64,
    pub missing_examples: Vec<String>,
    /// Sent after the point: must all be absent.
    pub after: u64,
    /// Of those, present: the restore went past its point.
    pub present_after: u64,
    pub present_after_examples: Vec<String>,
    /// In flight across the point (or in doubt): either outcome is correct.
    pub across: u64,
    /// Rows no writer attempted, or with a wrong payload.
    pub integrity_failures: u64,
}

pub fn check_point(
    log: &WorkloadLog,
    rows: &[Row],
    run: &str,
    lo: Duration,
    hi: Duration,
) -> PointCheck {
    let present: HashMap<(u32, u64), &str> = rows
        .iter()
        .map(|r| ((r.client, r.seq), r.payload.as_str()))
        .collect();
    let attempts = log
        .acks
        .iter()
        .map(|a| ((a.client, a.seq), a.sent, Some(a.at)))
        .chain(
            log.in_doubt
                .iter()
                .zip(&log.in_doubt_sent)
                .map(|(&k, &sent)| (k, sent, None)),
        );
    let mut c = PointCheck::default();
    let mut attempted = HashSet::new();
    let name = |(client, seq): (u32, u64)| format!("{client}/{seq}");
    for (key, sent, acked) in attempts {
        attempted.insert(key);
        let here = present.contains_key(&key);
        if acked.is_some_and(|at| at < lo) {
            c.before += 1;
            if !here {
                c.missing += 1;
                if c.missing_examples.len() < 20 {
                    c.missing_examples.push(name(key));
                }
            }
        } else if sent > hi {
            c.after += 1;
            if here {
                c.present_after += 1;
                if c.present_after_examples.len() < 20 {
                    c.present_after_examples.push(name(key));
                }
            }
        } else {
            c.across += 1;
        }
    }
    c.integrity_failures = present
        .iter()
        .filter(|&(&(client, seq), &p)| {
            !attempted.contains(&(client, seq)) || p != payload(run, client, seq)
        })
        .count() as u64;
    c.missing_examples.sort();
    c.present_after_examples.sort();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(client: u32, seq: u64, at_ms: u64) -> Ack {
        Ack {
            server: None,
            client,
            seq,
            sent: Duration::from_millis(at_ms.saturating_sub(1)),
            at: Duration::from_millis(at_ms),
        }
    }

    #[test]
    fn point_in_time_needs_every_write_before_and_none_after() {
        let log = WorkloadLog {
            // Sent at at-1: (0,1) and (0,2) before the point [500, 510]; (0,3) across it;
            // (0,4), (0,5) after.
            acks: vec![
                ack(0, 1, 100),
                ack(0, 2, 499),
                ack(0, 3, 505),
                ack(0, 4, 600),
                ack(0, 5, 700),
            ],
            in_doubt: vec![(1, 1)],
            in_doubt_sent: vec![Duration::from_millis(800)],
        };
        let ok = [row(0, 1), row(0, 2), row(0, 3)];
        let c = check_point(
            &log,
            &ok,
            "r",
            Duration::from_millis(500),
            Duration::from_millis(510),
        );
        assert_eq!(
            (c.before, c.missing, c.after, c.present_after, c.across),
            (2, 0, 3, 0, 1)
        );
        // The restore stopped early (0,2 missing) and another went past the point (0,4, 1/1).
        let bad = [row(0, 1), row(0, 4), row(1, 1), row(9, 9)];
        let c = check_point(
            &log,
            &bad,
            "r",
            Duration::from_millis(500),
            Duration::from_millis(510),
        );
        assert_eq!(c.missing_examples, vec!["0/2"]);
        assert_eq!(c.present_after_examples, vec!["0/4", "1/1"]);
        assert_eq!(c.integrity_failures, 1);
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
            in_doubt_sent: vec![Duration::ZERO; 2],
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
            ..Default::default()
        };
        let c = check(&log, &[row(0, 1)], "r", Duration::from_millis(500));
        assert_eq!((c.lost_writes, c.rpo_ms), (0, 0.0));
    }

    #[test]
    fn phantom_and_corrupted_rows_are_integrity_failures() {
        let log = WorkloadLog {
            acks: vec![ack(0, 1, 100)],
            ..Default::default()
        };
        let mut corrupted = row(0, 1);
        corrupted.payload.push('!');
        let c = check(&log, &[corrupted, row(7, 7)], "r", Duration::ZERO);
        assert_eq!(c.integrity_failures, 2);
        assert_eq!(c.lost_writes, 0);
    }
}
