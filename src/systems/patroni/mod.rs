//! Patroni clusters as drill targets: one firedrill builds ([`sandbox`]) or an existing one,
//! both read and driven through Patroni's REST API ([`rest`]). Faults name a member by role
//! (`leader`, `sync-standby`, `replica`) or by name, resolved from `GET /cluster` when the
//! fault fires; Patroni, not firedrill, recovers. The cluster's view before the fault and after
//! the observation goes into the report with the RTO its settings should give.

pub mod rest;
pub mod sandbox;

use std::time::{Duration, Instant};

use tokio_postgres::Config;

use super::Injected;
use super::sandbox::Progress;
use crate::cluster::PatroniView;
use crate::dsn::dsn_config;
use crate::error::EnvError;
use crate::safety::journal::{Journal, Undo};
use crate::scenario::{Fault, MemberRef, PatroniDcs, PatroniSandboxSpec, PatroniSpec};
use rest::{Api, Topology};
use sandbox::PatroniSandbox;

pub struct Patroni {
    api: Api,
    /// The application's connection settings (existing clusters; a sandbox has its own).
    config: Option<Config>,
    sandbox: Option<PatroniSandbox>,
    description: String,
    /// The settings the expected-RTO model reads: the scenario's for a sandbox, `GET /config`
    /// for an existing cluster.
    dcs: Option<PatroniDcs>,
    view: PatroniView,
    /// Whether the fault hit the member that led when it fired.
    hit_leader: Option<bool>,
}

impl Patroni {
    pub async fn sandbox(
        spec: &PatroniSandboxSpec,
        journal: &Journal,
        progress: Progress<'_>,
    ) -> Result<Patroni, EnvError> {
        // A port chosen free can be taken by another process before Patroni or PostgreSQL
        // binds it; the half-built cluster is removed on the error, and one more build picks
        // other ports.
        let sb = match PatroniSandbox::build(spec, journal, progress).await {
            Err(e) if e.to_string().contains("Address already in use") => {
                progress("a port was taken meanwhile; building again on other ports".into());
                PatroniSandbox::build(spec, journal, progress).await?
            }
            built => built?,
        };
        Ok(Patroni {
            api: sb.api.clone(),
            config: None,
            description: sb.describe(),
            sandbox: Some(sb),
            dcs: Some(spec.dcs.clone()),
            view: PatroniView::default(),
            hit_leader: None,
        })
    }

    /// Reads the DSN and the API URLs from the environment variables the scenario names, and
    /// asks the API for the cluster once, so that a wrong URL stops the drill before anything.
    pub async fn existing(spec: &PatroniSpec) -> Result<Patroni, EnvError> {
        let (config, via) = dsn_config(&spec.dsn_env)?;
        let urls = std::env::var(&spec.api_env).map_err(|_| EnvError::MissingVar {
            name: spec.api_env.clone(),
            key: "target.api_env",
            what: "the Patroni members' REST API URLs, comma-separated",
        })?;
        let api = Api::new(&urls, &format!("${}", spec.api_env))?;
        let topology = api.cluster().await?;
        Ok(Patroni {
            description: format!(
                "existing Patroni cluster of {} members ({}) via {via}",
                topology.members.len(),
                api.shown()
            ),
            api,
            config: Some(config),
            sandbox: None,
            dcs: None,
            view: PatroniView::default(),
            hit_leader: None,
        })
    }

    /// Whether Patroni's view (`GET /cluster`) has `name` as the leader.
    pub async fn leads(&self, name: &str) -> Result<bool, EnvError> {
        let t = self.api.cluster().await?;
        Ok(t.leader().is_some_and(|m| m.name == name))
    }

    pub fn describe(&self) -> String {
        self.description.clone()
    }

    pub fn client_config(&self, timeout: Duration) -> Config {
        let mut c = match (&self.config, &self.sandbox) {
            (Some(c), _) => c.clone(),
            (None, Some(sb)) => sb.client_config(timeout),
            (None, None) => Config::new(),
        };
        c.connect_timeout(timeout);
        c
    }

    /// The cluster before the fault: members, leader, settings, version.
    pub async fn before_fault(&mut self) -> Result<Option<String>, EnvError> {
        let t = self.api.cluster().await?;
        self.view.leader_before = t.leader().map(|l| l.name.clone());
        self.view.before = t.members;
        if let Ok(config) = self.api.config().await {
            if self.dcs.is_none() {
                self.dcs = Some(dcs_of(&config));
            }
            self.view.dcs = config;
        }
        self.view.version = self
            .api
            .status()
            .await
            .ok()
            .and_then(|s| s.patroni)
            .map(|p| p.version);
        if self.dcs.as_ref().is_some_and(|d| d.failsafe_mode) {
            let names: Vec<String> = self.view.before.iter().map(|m| m.name.clone()).collect();
            let waited = self.failsafe_armed(&names).await?;
            return Ok(Some(format!(
                "failsafe mode armed: every member's GET /failsafe lists all {} members \
                 (waited {} ms)",
                names.len(),
                waited.as_millis()
            )));
        }
        Ok(None)
    }

    /// Waits until failsafe mode is armed: every member's `GET /failsafe` lists every member.
    /// Patroni writes that topology from the leader's loop and each member reads it back a
    /// loop later; a DCS outage before then demotes the leader whatever the setting says, and
    /// a drill of failsafe mode must not start there.
    async fn failsafe_armed(&self, members: &[String]) -> Result<Duration, EnvError> {
        const ARMING: Duration = Duration::from_secs(30);
        let started = std::time::Instant::now();
        let deadline = started + ARMING;
        loop {
            let seen = self.api.failsafe_everywhere().await;
            let short: Vec<String> = seen
                .iter()
                .filter(|(_, names)| !members.iter().all(|m| names.contains(m)))
                .map(|(at, names)| format!("{at} lists [{}]", names.join(", ")))
                .collect();
            if short.is_empty() {
                return Ok(started.elapsed());
            }
            if std::time::Instant::now() >= deadline {
                return Err(EnvError::Database(format!(
                    "failsafe mode is not armed after {}: {} (members: {})",
                    humantime::format_duration(ARMING),
                    short.join("; "),
                    members.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The cluster after the observation, Patroni's history of the drill's switches, and the
    /// expected RTO beside the measured one.
    pub async fn view(&mut self, fault: &Fault, rto_ms: Option<f64>) -> PatroniView {
        let mut view = self.view.clone();
        if let Ok(t) = self.api.cluster().await {
            view.leader_after = t.leader().map(|l| l.name.clone());
            view.after = t.members;
        }
        let first_timeline = view.before.iter().filter_map(|m| m.timeline).max();
        if let (Ok(h), Some(tl)) = (self.api.history().await, first_timeline) {
            view.history = h.into_iter().filter(|e| e.timeline >= tl).collect();
        }
        let mode = self
            .hit_leader
            .and_then(|leader| fault.patroni_failure_mode(leader));
        if let (Some(mode), Some(dcs)) = (mode, &self.dcs) {
            let expected = dcs.expected_rto(mode);
            view.rto_inside_expected = rto_ms.map(|r| r >= expected.min_ms && r <= expected.max_ms);
            view.expected_rto = Some(expected);
        }
        view
    }

    pub async fn inject(&mut self, fault: &Fault, journal: &Journal) -> Result<Injected, EnvError> {
        let t = self.api.cluster().await?;
        let leader = t.leader().map(|l| l.name.clone());
        let done = |description: String| Injected {
            description,
            undo: None,
            ends_after: None,
            at: None,
        };
        match fault {
            Fault::KillHost { member } => {
                let name = self.hit(&t, member)?;
                journal.effect(
                    format!("SIGKILL every process of Patroni member {name}"),
                    None,
                )?;
                let (n, at) = self.built(fault)?.kill_host(&name)?;
                Ok(Injected {
                    at: Some(at),
                    ..done(format!(
                        "SIGKILL every process of {name}{} (Patroni and PostgreSQL, {n} processes)",
                        role_note(&t, &name)
                    ))
                })
            }
            Fault::KillPostgres { member } => {
                let name = self.hit(&t, member)?;
                journal.effect(format!("SIGKILL the postmaster of {name}"), None)?;
                let at = Instant::now();
                let pid = self.built(fault)?.kill_postgres(&name)?;
                Ok(Injected {
                    at: Some(at),
                    ..done(format!(
                        "SIGKILL the postmaster of {name}{} (pid {pid}) and its backends; Patroni \
                     stays up",
                        role_note(&t, &name)
                    ))
                })
            }
            Fault::PauseHost { member, duration } => {
                let name = self.hit(&t, member)?;
                let sb = self.built(fault)?;
                let dir = sb
                    .member(&name)
                    .map(|m| m.dir.clone())
                    .ok_or_else(|| EnvError::Database(format!("no member named {name}")))?;
                let undo = Undo::Resume { dir: dir.clone() };
                let id = journal.effect(
                    format!("SIGSTOP every process of {name} for {duration}"),
                    Some(undo.clone()),
                )?;
                let at = Instant::now();
                let n = PatroniSandbox::freeze(&dir);
                Ok(Injected {
                    description: format!(
                        "SIGSTOP every process of {name}{} ({n} processes) for {duration}",
                        role_note(&t, &name)
                    ),
                    undo: Some((undo, id)),
                    ends_after: Some(duration.get()),
                    at: Some(at),
                })
            }
            Fault::StopDcs { duration } => {
                let dir = self.built(fault)?.etcd_dir.clone();
                let undo = Undo::Resume { dir: dir.clone() };
                let id =
                    journal.effect(format!("SIGSTOP etcd for {duration}"), Some(undo.clone()))?;
                let at = Instant::now();
                let n = PatroniSandbox::freeze(&dir);
                self.hit_leader = Some(false);
                Ok(Injected {
                    description: format!(
                        "SIGSTOP etcd ({n} processes) for {duration}: the DCS stops answering"
                    ),
                    undo: Some((undo, id)),
                    ends_after: Some(duration.get()),
                    at: Some(at),
                })
            }
            Fault::Switchover { candidate } => {
                let leader = leader.ok_or_else(|| no_leader(&t))?;
                let candidate = candidate.as_ref().map(|c| resolve(&t, c)).transpose()?;
                self.view.fault_member = candidate.clone();
                self.hit_leader = Some(true);
                journal.effect(
                    format!(
                        "POST /switchover from {leader}{}",
                        candidate
                            .as_deref()
                            .map(|c| format!(" to {c}"))
                            .unwrap_or_default()
                    ),
                    None,
                )?;
                let said = self.api.switchover(&leader, candidate.as_deref()).await?;
                Ok(done(format!(
                    "switchover from {leader}: Patroni said {said:?}"
                )))
            }
            Fault::Failover { candidate } => {
                let candidate = resolve(&t, candidate)?;
                self.view.fault_member = Some(candidate.clone());
                self.hit_leader = Some(true);
                journal.effect(format!("POST /failover to {candidate}"), None)?;
                let said = self.api.failover(&candidate).await?;
                Ok(done(format!(
                    "failover to {candidate} (leader was {}): Patroni said {said:?}",
                    leader.as_deref().unwrap_or("none")
                )))
            }
            Fault::Kill { .. }
            | Fault::Stop { .. }
            | Fault::Pause { .. }
            | Fault::Command { .. }
            | Fault::RdsFailover
            | Fault::AuroraFailover { .. }
            | Fault::FisExperiment { .. }
            | Fault::Sql { .. }
            | Fault::ZoneOutage { .. }
            | Fault::Partition { .. } => Err(super::mismatch(
                &fault.target_kinds().join("` or `"),
                fault.kind(),
            )),
        }
    }

    /// Resolves the member a fault hits and remembers it for the report.
    fn hit(&mut self, t: &Topology, member: &MemberRef) -> Result<String, EnvError> {
        let name = resolve(t, member)?;
        self.hit_leader = Some(t.leader().is_some_and(|l| l.name == name));
        self.view.fault_member = Some(name.clone());
        Ok(name)
    }

    /// The sandbox, for faults that need the hosts (validation keeps them off existing
    /// clusters).
    fn built(&mut self, fault: &Fault) -> Result<&mut PatroniSandbox, EnvError> {
        self.sandbox
            .as_mut()
            .ok_or_else(|| super::mismatch("patroni-sandbox", fault.kind()))
    }

    pub async fn teardown(&mut self, keep: bool) -> Option<std::path::PathBuf> {
        match self.sandbox.as_mut() {
            Some(sb) => sb.shutdown(keep).await,
            None => None,
        }
    }
}

/// The member a role or name stands for in this topology.
fn resolve(t: &Topology, member: &MemberRef) -> Result<String, EnvError> {
    let non_leaders = || {
        t.members
            .iter()
            .filter(|m| !matches!(m.role.as_str(), "leader" | "master"))
    };
    let found = match member {
        MemberRef::Leader => t.leader(),
        MemberRef::SyncStandby => non_leaders().find(|m| m.role == "sync_standby"),
        // An asynchronous replica if there is one: losing it should cost nothing.
        MemberRef::Replica => non_leaders()
            .find(|m| m.role == "replica")
            .or_else(|| non_leaders().next()),
        MemberRef::Named(n) => t.member(n),
    };
    found.map(|m| m.name.clone()).ok_or_else(|| {
        EnvError::Database(format!(
            "no {member} in the cluster now ({})",
            t.members
                .iter()
                .map(|m| format!("{} {}", m.name, m.role))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

fn no_leader(t: &Topology) -> EnvError {
    EnvError::Database(format!(
        "the cluster has no leader to switch over from ({})",
        t.members
            .iter()
            .map(|m| format!("{} {} {}", m.name, m.role, m.state))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// ` (the leader)`, ` (sync_standby)`: the member's role when the fault fired.
fn role_note(t: &Topology, name: &str) -> String {
    t.member(name)
        .map(|m| match m.role.as_str() {
            "leader" | "master" => " (the leader)".to_owned(),
            r => format!(" ({r})"),
        })
        .unwrap_or_default()
}

/// The timers the expected-RTO model needs, from `GET /config` (Patroni's defaults where a
/// key is absent).
fn dcs_of(config: &serde_json::Map<String, serde_json::Value>) -> PatroniDcs {
    let d = PatroniDcs::default();
    let secs = |k: &str, default: u32| {
        config
            .get(k)
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(default)
    };
    PatroniDcs {
        ttl: secs("ttl", d.ttl),
        loop_wait: secs("loop_wait", d.loop_wait),
        retry_timeout: secs("retry_timeout", d.retry_timeout),
        ..d
    }
}
