//! A failover drill's blocks as written in YAML: the `fault` (`type:`-tagged, one variant per
//! kind, with the one compatibility rule that pairs it with a target kind) and the `recovery`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::argv::Argv;
use super::duration::Dur;
use super::patroni::{FailureMode, MemberRef};
use super::tagged::tagged_enum;

tagged_enum! {
    #[derive(Clone, Debug, Serialize, JsonSchema)]
    #[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum Fault {
        /// SIGKILL every process of a node, as a crashed host would.
        Kill { node: String },
        /// Shut a node down with `pg_ctl stop` semantics.
        Stop {
            node: String,
            #[serde(default)]
            mode: StopMode,
        },
        /// SIGSTOP every process of a node for `duration`, then SIGCONT: a hung host.
        Pause { node: String, duration: Dur },
        /// Run an operator's command (e.g. `patronictl failover --force`); `undo` runs on abort.
        Command {
            run: Argv,
            #[serde(default)]
            undo: Option<Argv>,
            #[serde(default = "default_command_timeout")]
            timeout: Dur,
        },
        /// RDS Multi-AZ instance failover: `RebootDBInstance` with `ForceFailover` (RDS documents
        /// 60-120 s).
        RdsFailover,
        /// Aurora (or Multi-AZ DB cluster) failover: `FailoverDBCluster`, to `target_instance` if
        /// given (RDS documents under 35 s for a Multi-AZ DB cluster).
        AuroraFailover {
            #[serde(default)]
            target_instance: Option<String>,
        },
        /// An AWS FIS experiment from an existing template (`template_id`) or one described here
        /// (`template`); stopped on abort, Ctrl-C, a guardrail, or by `firedrill recover`.
        FisExperiment {
            #[serde(default)]
            template_id: Option<String>,
            #[serde(default)]
            template: Option<FisTemplate>,
            /// How often the experiment's state is read into the timeline.
            #[serde(default = "default_fis_poll")]
            poll: Dur,
        },
        /// SIGKILL a Patroni member's Patroni and every PostgreSQL process: the host died.
        KillHost {
            #[serde(default)]
            member: MemberRef,
        },
        /// SIGKILL a member's postmaster (and its backends) only: Patroni's crash handling,
        /// which restarts it in place within `primary_start_timeout`.
        KillPostgres {
            #[serde(default)]
            member: MemberRef,
        },
        /// SIGSTOP a member's Patroni and PostgreSQL for `duration`, then SIGCONT: a hung host.
        PauseHost {
            #[serde(default)]
            member: MemberRef,
            duration: Dur,
        },
        /// A planned switchover through Patroni's REST API (`POST /switchover`), to
        /// `candidate` if given (else Patroni picks).
        Switchover {
            #[serde(default)]
            candidate: Option<MemberRef>,
        },
        /// A manual failover through Patroni's REST API (`POST /failover`) to `candidate`
        /// (Patroni requires one while the leader is healthy).
        Failover { candidate: MemberRef },
        /// SIGSTOP the DCS (the sandbox's etcd) for `duration`, then SIGCONT: it stops
        /// answering, as a hung or unreachable etcd. The leader stays read-write with
        /// `failsafe_mode`, and demotes without it.
        StopDcs { duration: Dur },
        /// Run SQL on the primary as a careless person would (`drop table orders`): data lost,
        /// not servers. Nothing takes it back; a restore does.
        Sql { query: String },
        /// Every link of a zone down: its nodes keep running and nothing reaches them (an
        /// availability zone lost). The links come back after `duration`, else when the drill
        /// ends.
        ZoneOutage {
            zone: String,
            #[serde(default)]
            duration: Option<Dur>,
        },
        /// Traffic between two sides of zones dropped (`between: [[a], [b, c]]`), by nftables
        /// rules inside each zone; `one_way`: only what the first side sends to the second.
        /// Taken back after `duration`, else when the drill ends.
        Partition {
            between: Vec<Vec<String>>,
            #[serde(default)]
            one_way: bool,
            #[serde(default)]
            duration: Option<Dur>,
        },
    }
}

fn default_fis_poll() -> Dur {
    Dur::from_secs(2)
}

/// An FIS experiment template, as `CreateExperimentTemplate` takes it.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FisTemplate {
    #[serde(default)]
    pub description: String,
    /// The IAM role FIS assumes to act.
    pub role_arn: String,
    pub targets: BTreeMap<String, FisTarget>,
    pub actions: BTreeMap<String, FisAction>,
    /// CloudWatch alarm ARNs that stop the experiment (FIS's own stop conditions).
    #[serde(default)]
    pub stop_alarms: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FisTarget {
    /// e.g. `aws:rds:db`, `aws:ec2:subnet`.
    pub resource_type: String,
    #[serde(default)]
    pub resource_arns: Vec<String>,
    #[serde(default)]
    pub resource_tags: BTreeMap<String, String>,
    /// `ALL`, `COUNT(n)`, `PERCENT(n)`.
    #[serde(default = "default_selection")]
    pub selection_mode: String,
}

fn default_selection() -> String {
    "ALL".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FisAction {
    /// e.g. `aws:rds:reboot-db-instances`, `aws:network:disrupt-connectivity`.
    pub action_id: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Action target key (e.g. `DBInstances`, `Subnets`) -> a name under `targets`.
    #[serde(default)]
    pub targets: BTreeMap<String, String>,
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "kill",
            Fault::Stop { .. } => "stop",
            Fault::Pause { .. } => "pause",
            Fault::Command { .. } => "command",
            Fault::RdsFailover => "rds-failover",
            Fault::AuroraFailover { .. } => "aurora-failover",
            Fault::FisExperiment { .. } => "fis-experiment",
            Fault::KillHost { .. } => "kill-host",
            Fault::KillPostgres { .. } => "kill-postgres",
            Fault::PauseHost { .. } => "pause-host",
            Fault::Switchover { .. } => "switchover",
            Fault::Failover { .. } => "failover",
            Fault::StopDcs { .. } => "stop-dcs",
            Fault::Sql { .. } => "sql",
            Fault::ZoneOutage { .. } => "zone-outage",
            Fault::Partition { .. } => "partition",
        }
    }
    pub fn node(&self) -> Option<&str> {
        match self {
            Fault::Kill { node } | Fault::Stop { node, .. } | Fault::Pause { node, .. } => {
                Some(node)
            }
            Fault::Command { .. }
            | Fault::RdsFailover
            | Fault::AuroraFailover { .. }
            | Fault::FisExperiment { .. }
            | Fault::KillHost { .. }
            | Fault::KillPostgres { .. }
            | Fault::PauseHost { .. }
            | Fault::Switchover { .. }
            | Fault::Failover { .. }
            | Fault::StopDcs { .. }
            | Fault::Sql { .. }
            | Fault::ZoneOutage { .. }
            | Fault::Partition { .. } => None,
        }
    }

    /// The Patroni member a fault hits, as the scenario names it.
    pub fn member(&self) -> Option<&MemberRef> {
        self.member_at().map(|(_, m)| m)
    }

    /// [`Fault::member`], with the key it is written under (`member` or `candidate`).
    pub fn member_at(&self) -> Option<(&'static str, &MemberRef)> {
        match self {
            Fault::KillHost { member }
            | Fault::KillPostgres { member }
            | Fault::PauseHost { member, .. } => Some(("member", member)),
            Fault::Failover { candidate } => Some(("candidate", candidate)),
            Fault::Switchover { candidate } => candidate.as_ref().map(|c| ("candidate", c)),
            Fault::Kill { .. }
            | Fault::Stop { .. }
            | Fault::Pause { .. }
            | Fault::Command { .. }
            | Fault::RdsFailover
            | Fault::AuroraFailover { .. }
            | Fault::FisExperiment { .. }
            | Fault::StopDcs { .. }
            | Fault::Sql { .. }
            | Fault::ZoneOutage { .. }
            | Fault::Partition { .. } => None,
        }
    }

    /// How often the fault's own progress is worth reading into the timeline (an FIS
    /// experiment's state); `None` for faults without progress of their own.
    pub fn observe_every(&self) -> Option<std::time::Duration> {
        match self {
            Fault::FisExperiment { poll, .. } => Some(poll.get()),
            Fault::Kill { .. }
            | Fault::Stop { .. }
            | Fault::Pause { .. }
            | Fault::Command { .. }
            | Fault::RdsFailover
            | Fault::AuroraFailover { .. }
            | Fault::KillHost { .. }
            | Fault::KillPostgres { .. }
            | Fault::PauseHost { .. }
            | Fault::Switchover { .. }
            | Fault::Failover { .. }
            | Fault::StopDcs { .. }
            | Fault::Sql { .. }
            | Fault::ZoneOutage { .. }
            | Fault::Partition { .. } => None,
        }
    }

    /// Whether the fault promises that another server takes the writes: the drill then
    /// compares the server the DSN reaches for writes before the fault and after the
    /// observation, and a failover that moved nothing fails (target `writer_moved`).
    pub fn moves_writer(&self) -> bool {
        match self {
            Fault::RdsFailover
            | Fault::AuroraFailover { .. }
            | Fault::Switchover { .. }
            | Fault::Failover { .. } => true,
            // Patroni promotes another member when the leader's host dies; a crashed
            // postmaster is restarted in place, and a replica's death moves nothing.
            Fault::KillHost { member } => *member == MemberRef::Leader,
            // An experiment or a command may do anything; a node fault is judged by the
            // recovery it is paired with; a pause may end before Patroni acts.
            Fault::Kill { .. }
            | Fault::Stop { .. }
            | Fault::Pause { .. }
            | Fault::Command { .. }
            | Fault::FisExperiment { .. }
            | Fault::KillPostgres { .. }
            | Fault::PauseHost { .. }
            | Fault::StopDcs { .. }
            | Fault::Sql { .. }
            | Fault::ZoneOutage { .. }
            | Fault::Partition { .. } => false,
        }
    }

    /// The Patroni failure mode this fault is, once it is known whether it hit the leader,
    /// for the expected-RTO model; `None` for faults the model does not cover (a replica's
    /// death, the DCS, non-Patroni faults).
    pub fn patroni_failure_mode(&self, hit_leader: bool) -> Option<FailureMode> {
        match self {
            Fault::KillHost { .. } | Fault::PauseHost { .. } => {
                hit_leader.then_some(FailureMode::LeaderLost)
            }
            Fault::KillPostgres { .. } => hit_leader.then_some(FailureMode::PostmasterCrash),
            Fault::Switchover { .. } | Fault::Failover { .. } => Some(FailureMode::Planned),
            Fault::StopDcs { .. }
            | Fault::Kill { .. }
            | Fault::Stop { .. }
            | Fault::Pause { .. }
            | Fault::Command { .. }
            | Fault::RdsFailover
            | Fault::AuroraFailover { .. }
            | Fault::FisExperiment { .. }
            | Fault::Sql { .. }
            | Fault::ZoneOutage { .. }
            | Fault::Partition { .. } => None,
        }
    }

    /// Whether the fault's effect on clients starts some time after the fault begins (an
    /// operator's command, a switchover that first checks its candidate), so that RTO is
    /// counted from the effect (a marker the command prints, else the first failed probe)
    /// rather than from the start of the action.
    pub fn effect_is_delayed(&self) -> bool {
        match self {
            Fault::Command { .. } | Fault::Switchover { .. } | Fault::Failover { .. } => true,
            Fault::Kill { .. }
            | Fault::Stop { .. }
            | Fault::Pause { .. }
            | Fault::RdsFailover
            | Fault::AuroraFailover { .. }
            | Fault::FisExperiment { .. }
            | Fault::KillHost { .. }
            | Fault::KillPostgres { .. }
            | Fault::PauseHost { .. }
            | Fault::StopDcs { .. }
            | Fault::Sql { .. }
            | Fault::ZoneOutage { .. }
            | Fault::Partition { .. } => false,
        }
    }

    /// The one compatibility rule: the target kinds this fault applies to. Validation refuses
    /// any other pairing, and the driver names the same kinds if one slips through.
    pub fn target_kinds(&self) -> &'static [&'static str] {
        match self {
            Fault::Kill { .. } | Fault::Stop { .. } | Fault::Pause { .. } => &["postgres-sandbox"],
            Fault::Command { .. } => &["postgres"],
            Fault::RdsFailover | Fault::AuroraFailover { .. } | Fault::FisExperiment { .. } => {
                &["aws-rds"]
            }
            Fault::KillHost { .. }
            | Fault::KillPostgres { .. }
            | Fault::PauseHost { .. }
            | Fault::StopDcs { .. } => &["patroni-sandbox"],
            Fault::Switchover { .. } | Fault::Failover { .. } => &["patroni-sandbox", "patroni"],
            Fault::Sql { .. } => &["postgres-sandbox", "postgres"],
            Fault::ZoneOutage { .. } | Fault::Partition { .. } => &["postgres-sandbox"],
        }
    }

    /// What is in place once the fault's call returns, worth its own timeline entry where the
    /// call's own time is part of the drill (a zone's links down): `None` for the others.
    pub fn in_place(&self) -> Option<&'static str> {
        match self {
            Fault::ZoneOutage { .. } => Some("links down"),
            Fault::Partition { .. } => Some("partition in place"),
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
            | Fault::Sql { .. } => None,
        }
    }

    /// Whether this fault applies to a `kind` target.
    pub fn applies_to(&self, kind: &str) -> bool {
        self.target_kinds().contains(&kind)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StopMode {
    /// SIGINT: abort transactions, checkpoint, exit.
    #[default]
    Fast,
    /// SIGQUIT: exit at once, crash recovery at next start.
    Immediate,
}

fn default_command_timeout() -> Dur {
    Dur::from_secs(60)
}

tagged_enum! {
    #[derive(Clone, Debug, Serialize, JsonSchema)]
    #[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum Recovery {
        /// firedrill acts as the HA controller: promote a standby `after` the fault (the detection
        /// delay a real controller would have), and repoint the other standbys to it.
        Promote {
            node: String,
            #[serde(default)]
            after: Dur,
            /// Whether the old primary is stopped first (`stop-old-primary`) or left running
            /// (`none`, the default: split brain if clients still reach it).
            #[serde(default)]
            fence: super::zones::Fence,
        },
        /// Do nothing: the fault ends by itself (a pause) or an external controller acts.
        Wait,
        /// Run an operator's command `after` the fault.
        Command {
            run: Argv,
            #[serde(default)]
            after: Dur,
            #[serde(default = "default_command_timeout")]
            timeout: Dur,
        },
    }
}

impl Recovery {
    pub fn kind(&self) -> &'static str {
        match self {
            Recovery::Promote { .. } => "promote",
            Recovery::Wait => "wait",
            Recovery::Command { .. } => "command",
        }
    }

    /// The target kind this recovery applies to (`None`: any, as `wait`); the same rule as
    /// [`Fault::target_kind`].
    pub fn target_kind(&self) -> Option<&'static str> {
        match self {
            Recovery::Promote { .. } => Some("postgres-sandbox"),
            Recovery::Command { .. } => Some("postgres"),
            Recovery::Wait => None,
        }
    }
}
