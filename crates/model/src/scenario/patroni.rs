//! The Patroni targets as written in YAML: a cluster firedrill builds (`patroni-sandbox`: etcd
//! and Patroni members on loopback) and an existing one reached through its REST API
//! (`patroni`), with the DCS settings that decide how fast Patroni fails over.
//!
//! Boundary: data and the arithmetic Patroni's documentation gives for its settings (the
//! expected RTO model); building and driving clusters is the runtime's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatroniSandboxSpec {
    /// Patroni members, named `member1`, `member2`, ... (2 to 5); one etcd serves them all.
    #[serde(default = "three")]
    pub members: u8,
    /// The cluster's dynamic configuration (what `patronictl edit-config` changes).
    #[serde(default)]
    pub dcs: PatroniDcs,
    /// Extra `postgresql.conf` settings for every member.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Directory holding PostgreSQL's server programs; found as for `postgres-sandbox`.
    #[serde(default)]
    pub bin_dir: Option<PathBuf>,
    /// The `patroni` program. Default: `$FIREDRILL_PATRONI`, then `PATH`.
    #[serde(default)]
    pub patroni: Option<PathBuf>,
    /// The `etcd` program. Default: `$FIREDRILL_ETCD`, then `PATH`.
    #[serde(default)]
    pub etcd: Option<PathBuf>,
    /// Unprivileged user everything runs as when firedrill runs as root. Default: `postgres`.
    #[serde(default)]
    pub run_as: Option<String>,
    /// Parent directory of the cluster's temporary directory. Default: the system temp dir.
    #[serde(default)]
    pub work_dir: Option<PathBuf>,
}

fn three() -> u8 {
    3
}

/// Patroni's dynamic configuration, with Patroni's own defaults. Times are whole seconds, as
/// Patroni reads them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatroniDcs {
    /// Lifetime of the leader key: a leader that stops renewing it loses it after this long.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// Seconds between HA loop runs (and leader key renewals).
    #[serde(default = "default_loop_wait")]
    pub loop_wait: u32,
    /// How long DCS and PostgreSQL operations are retried before Patroni gives up on them.
    #[serde(default = "default_retry_timeout")]
    pub retry_timeout: u32,
    /// Only a synchronous standby may be promoted; commits wait for it.
    #[serde(default)]
    pub synchronous_mode: bool,
    /// With no synchronous standby left, commits stop rather than go asynchronous.
    #[serde(default)]
    pub synchronous_mode_strict: bool,
    /// A replica lagging more bytes than this is not promoted.
    #[serde(default = "default_max_lag")]
    pub maximum_lag_on_failover: u64,
    /// How long a crashed leader may take to restart in place before a failover.
    #[serde(default = "default_primary_start_timeout")]
    pub primary_start_timeout: u32,
    /// Keep the leader read-write while the DCS is down, as long as every member answers it.
    #[serde(default)]
    pub failsafe_mode: bool,
}

fn default_ttl() -> u32 {
    30
}
fn default_loop_wait() -> u32 {
    10
}
fn default_retry_timeout() -> u32 {
    10
}
fn default_max_lag() -> u64 {
    1_048_576
}
fn default_primary_start_timeout() -> u32 {
    300
}

impl Default for PatroniDcs {
    fn default() -> Self {
        PatroniDcs {
            ttl: default_ttl(),
            loop_wait: default_loop_wait(),
            retry_timeout: default_retry_timeout(),
            synchronous_mode: false,
            synchronous_mode_strict: false,
            maximum_lag_on_failover: default_max_lag(),
            primary_start_timeout: default_primary_start_timeout(),
            failsafe_mode: false,
        }
    }
}

/// An existing Patroni cluster: faults and topology through its REST API, probes and the
/// workload through the application's DSN.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatroniSpec {
    /// Name of the environment variable holding the libpq DSN (a multi-host DSN with
    /// `target_session_attrs=read-write`, or the address of HAProxy/a VIP in front).
    pub dsn_env: String,
    /// Name of the environment variable holding the members' REST API URLs, comma-separated
    /// (e.g. `http://10.0.0.1:8008,http://10.0.0.2:8008`). Credentials for the API's
    /// `authentication` go in the URL (`http://user:password@host:8008`) and are never printed.
    pub api_env: String,
}

/// Which member a fault hits, resolved from the cluster's own view (`GET /cluster`) when the
/// fault fires: `leader`, `sync-standby`, `replica` (the first one, by name), or a member name.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(from = "String", into = "String")]
pub enum MemberRef {
    Leader,
    SyncStandby,
    Replica,
    Named(String),
}

impl From<String> for MemberRef {
    fn from(s: String) -> Self {
        match s.as_str() {
            "leader" => MemberRef::Leader,
            "sync-standby" => MemberRef::SyncStandby,
            "replica" => MemberRef::Replica,
            _ => MemberRef::Named(s),
        }
    }
}

impl From<MemberRef> for String {
    fn from(m: MemberRef) -> String {
        m.to_string()
    }
}

impl std::fmt::Display for MemberRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemberRef::Leader => "leader",
            MemberRef::SyncStandby => "sync-standby",
            MemberRef::Replica => "replica",
            MemberRef::Named(n) => n,
        })
    }
}

fn leader() -> MemberRef {
    MemberRef::Leader
}

impl Default for MemberRef {
    fn default() -> Self {
        leader()
    }
}

/// The member names of a `patroni-sandbox` with `n` members.
pub fn patroni_members(n: u8) -> Vec<String> {
    (1..=n).map(|i| format!("member{i}")).collect()
}

/// The RTO a failure mode should have under a cluster's settings, from how Patroni's HA loop
/// works (Patroni's documentation, "Dynamic Configuration Settings": the leader key lives `ttl`
/// seconds and is renewed every `loop_wait`):
///
/// - the leader dies (`kill-host`, `pause-host` longer than `ttl`): it last renewed its key up
///   to `loop_wait` before the fault, so the key expires `ttl - loop_wait` to `ttl` after it;
///   a replica, woken by the key's expiry or at its next loop (`loop_wait`), takes the key and
///   promotes: `ttl - loop_wait` to `ttl + loop_wait`, plus promotion;
/// - the postmaster crashes (`kill-postgres`): the leader's next loop (within `loop_wait`)
///   restarts it in place, then crash recovery: 0 to `loop_wait`, plus the restart;
/// - a switchover or failover through the API: the leader acts at once and the candidate on
///   its next loop: 0 to `loop_wait`, plus the shutdown and promotion.
///
/// "Plus promotion/restart" is [`PROMOTION_ALLOWANCE_S`] on the upper bound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExpectedRto {
    pub min_ms: f64,
    pub max_ms: f64,
    /// The model in words, with the settings it used.
    pub model: String,
}

/// Seconds allowed on top of Patroni's timers for a promotion or a restart with crash
/// recovery and the clients' reconnect, on a small database.
pub const PROMOTION_ALLOWANCE_S: u32 = 3;

/// The failure modes [`ExpectedRto`] has a model for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureMode {
    LeaderLost,
    PostmasterCrash,
    Planned,
}

impl PatroniDcs {
    pub fn expected_rto(&self, mode: FailureMode) -> ExpectedRto {
        let (ttl, lw, p) = (self.ttl, self.loop_wait, PROMOTION_ALLOWANCE_S);
        let s = |x: u32| f64::from(x) * 1000.0;
        match mode {
            FailureMode::LeaderLost => ExpectedRto {
                min_ms: s(ttl.saturating_sub(lw)),
                max_ms: s(ttl + lw + p),
                model: format!(
                    "leader lost: the leader key expires ttl - loop_wait to ttl after the fault, \
                     a replica promotes within loop_wait: {}s to {}s + {p}s promotion \
                     (ttl {ttl}s, loop_wait {lw}s)",
                    ttl.saturating_sub(lw),
                    ttl + lw
                ),
            },
            FailureMode::PostmasterCrash => ExpectedRto {
                min_ms: 0.0,
                max_ms: s(lw + p),
                model: format!(
                    "postmaster crash: the leader's next HA loop restarts it in place: 0s to \
                     {lw}s + {p}s crash recovery (loop_wait {lw}s)"
                ),
            },
            FailureMode::Planned => ExpectedRto {
                min_ms: 0.0,
                max_ms: s(lw + p),
                model: format!(
                    "planned switch: the leader demotes at once, the candidate promotes within \
                     loop_wait: 0s to {lw}s + {p}s shutdown and promotion (loop_wait {lw}s)"
                ),
            },
        }
    }

    /// Patroni's rule for its timers (it warns and adjusts otherwise): a leader must be able
    /// to retry the DCS twice within one loop before its key expires.
    pub fn timers_problem(&self) -> Option<String> {
        if self.loop_wait == 0 || self.retry_timeout == 0 {
            return Some("loop_wait and retry_timeout must be at least 1".into());
        }
        (self.loop_wait + 2 * self.retry_timeout > self.ttl).then(|| {
            format!(
                "Patroni needs loop_wait + 2 * retry_timeout <= ttl ({} + 2 * {} > {})",
                self.loop_wait, self.retry_timeout, self.ttl
            )
        })
    }
}
