//! The raw probe record a report carries: every probe's start, duration and outcome, compactly
//! encoded and signed with the report, so that `verify` recomputes RTO, outages and
//! availability from what the probes saw ([`crate::measure::figures`]) instead of trusting the
//! figures written beside them.
//!
//! Encoding 1: per probe kind, base64 (standard alphabet, padded) of the samples in start
//! order, each as two LEB128 varints: the start's distance from the previous start in ns
//! (zigzag-encoded, so an out-of-order sample still round-trips) and `duration_ns << 1 | ok`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::measure::Sample;

/// The encoding this build writes and reads.
pub const RECORD_ENCODING: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeRecord {
    /// How `write` and `read` are encoded (see the module).
    pub encoding: u32,
    /// When probing stopped, ns from the drill's start.
    pub observed_until_ns: u64,
    /// Write probe samples.
    pub write: String,
    /// Read probe samples.
    pub read: String,
}

/// The samples and the end of observation a record holds.
pub struct Decoded {
    pub write: Vec<Sample>,
    pub read: Vec<Sample>,
    pub observed_until: Duration,
}

impl ProbeRecord {
    pub fn encode(write: &[Sample], read: &[Sample], observed_until: Duration) -> ProbeRecord {
        ProbeRecord {
            encoding: RECORD_ENCODING,
            observed_until_ns: nanos(observed_until),
            write: STANDARD.encode(encode_samples(write)),
            read: STANDARD.encode(encode_samples(read)),
        }
    }

    pub fn decode(&self) -> Result<Decoded, String> {
        if self.encoding != RECORD_ENCODING {
            return Err(format!(
                "probe record encoding {} is not one this build reads ({RECORD_ENCODING})",
                self.encoding
            ));
        }
        let samples = |what: &str, text: &str| {
            STANDARD
                .decode(text)
                .map_err(|e| format!("probe record ({what}): {e}"))
                .and_then(|b| decode_samples(&b).map_err(|e| format!("probe record ({what}): {e}")))
        };
        Ok(Decoded {
            write: samples("write", &self.write)?,
            read: samples("read", &self.read)?,
            observed_until: Duration::from_nanos(self.observed_until_ns),
        })
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn encode_samples(samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 6);
    let mut previous: i128 = 0;
    for s in samples {
        let start = s.start.as_nanos() as i128;
        let delta = (start - previous) as i64;
        previous = start;
        put(&mut out, ((delta << 1) ^ (delta >> 63)) as u64);
        put(
            &mut out,
            (nanos(s.end.saturating_sub(s.start)) << 1) | u64::from(s.ok),
        );
    }
    out
}

fn decode_samples(bytes: &[u8]) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut start: i128 = 0;
    while at < bytes.len() {
        let zz = take(bytes, &mut at)?;
        let delta = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
        start += i128::from(delta);
        let d = take(bytes, &mut at)?;
        let start_ns = u64::try_from(start).map_err(|_| "a sample starts before the drill")?;
        let begin = Duration::from_nanos(start_ns);
        out.push(Sample {
            start: begin,
            end: begin + Duration::from_nanos(d >> 1),
            ok: d & 1 == 1,
        });
    }
    Ok(out)
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or("truncated")?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("a number longer than 64 bits".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip_exactly() {
        let s = |start: u64, end: u64, ok| Sample {
            start: Duration::from_nanos(start),
            end: Duration::from_nanos(end),
            ok,
        };
        let w = vec![
            s(5, 1_000_005, true),
            s(10_000_000, 12_345_678, false),
            s(9_000_000, 9_000_001, true),
        ];
        let r = vec![];
        let rec = ProbeRecord::encode(&w, &r, Duration::from_secs(3));
        let back = rec.decode().unwrap();
        assert_eq!(back.write, w);
        assert_eq!(back.read, r);
        assert_eq!(back.observed_until, Duration::from_secs(3));
        let mut bad = rec.clone();
        bad.write.truncate(bad.write.len() - 4);
        assert!(bad.decode().is_err());
    }
}
