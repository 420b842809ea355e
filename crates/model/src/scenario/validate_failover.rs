//! Which faults and recoveries each target kind takes, and what each needs of its target (a
//! node or member that exists, a resource of the right kind): pure, like all validation.

use super::model::*;
use super::validate::{Problem, check_argv, problem, sandbox_nodes};

/// Faults and recovery of an RDS instance or Aurora cluster: AWS's own, and AWS recovers.
fn check_aws_fault(spec: &AwsRdsSpec, fault: &Fault, recovery: &Recovery, out: &mut Vec<Problem>) {
    if !fault.applies_to("aws-rds") {
        out.push(problem(
            "fault.type",
            format!(
                "an `aws-rds` target takes rds-failover, aurora-failover or fis-experiment, not `{}`",
                fault.kind()
            ),
        ));
    }
    if matches!(fault, Fault::RdsFailover) && spec.instance.is_none() {
        out.push(problem(
            "fault.type",
            "`rds-failover` reboots a Multi-AZ DB instance: set `target.instance` (for a cluster \
             use `aurora-failover`)",
        ));
    }
    if matches!(fault, Fault::AuroraFailover { .. }) && spec.cluster.is_none() {
        out.push(problem(
            "fault.type",
            "`aurora-failover` fails a DB cluster over: set `target.cluster`",
        ));
    }
    if let Fault::FisExperiment {
        template_id,
        template,
        poll,
    } = fault
    {
        match (template_id, template) {
            (Some(_), Some(_)) => out.push(problem(
                "fault.template",
                "give `template_id` or `template`, not both",
            )),
            (None, None) => out.push(problem(
                "fault.template_id",
                "missing: an existing template's id, or a `template` to create",
            )),
            (None, Some(t)) => {
                if t.actions.is_empty() {
                    out.push(problem("fault.template.actions", "no action"));
                }
                for (name, a) in &t.actions {
                    for (key, target) in &a.targets {
                        if !t.targets.contains_key(target) {
                            out.push(problem(
                                &format!("fault.template.actions.{name}.targets.{key}"),
                                format!("no target named {target:?} under template.targets"),
                            ));
                        }
                    }
                }
            }
            (Some(_), None) => {}
        }
        if poll.get() < std::time::Duration::from_millis(200) {
            out.push(problem(
                "fault.poll",
                "at least 200ms (each read is an API call)",
            ));
        }
    }
    if !matches!(recovery, Recovery::Wait) {
        out.push(problem(
            "recovery.type",
            "AWS performs the recovery of an `aws-rds` target: use `type: wait`",
        ));
    }
}

/// Faults and recovery of a Patroni cluster: Patroni recovers (`wait`); members are named by
/// role or, in a sandbox, by one of its names.
fn check_patroni_fault(
    kind: &str,
    sandbox: Option<&PatroniSandboxSpec>,
    fault: &Fault,
    recovery: &Recovery,
    out: &mut Vec<Problem>,
) {
    if !fault.applies_to(kind) {
        let takes = match sandbox {
            Some(_) => "kill-host, kill-postgres, pause-host, switchover, failover or stop-dcs",
            None => "switchover or failover (through the REST API)",
        };
        out.push(problem(
            "fault.type",
            format!("a `{kind}` target takes {takes}, not `{}`", fault.kind()),
        ));
    }
    if let Some(spec) = sandbox {
        let names = patroni_members(spec.members);
        let key = match fault {
            Fault::Failover { .. } | Fault::Switchover { .. } => "fault.candidate",
            _ => "fault.member",
        };
        match fault.member() {
            Some(MemberRef::Named(n)) if !names.contains(n) => out.push(problem(
                key,
                format!(
                    "unknown member {n:?}; this cluster has {} (or name a role: leader, \
                     sync-standby, replica)",
                    names.join(", ")
                ),
            )),
            Some(MemberRef::SyncStandby) if !spec.dcs.synchronous_mode => out.push(problem(
                key,
                "there is no sync-standby without `dcs.synchronous_mode: true`",
            )),
            _ => {}
        }
    }
    if matches!(
        fault,
        Fault::Failover {
            candidate: MemberRef::Leader
        } | Fault::Switchover {
            candidate: Some(MemberRef::Leader)
        }
    ) {
        out.push(problem(
            "fault.candidate",
            "the candidate is the member to promote; name a replica, not the leader",
        ));
    }
    if let Fault::PauseHost { duration, .. } | Fault::StopDcs { duration } = fault
        && duration.get().is_zero()
    {
        out.push(problem("fault.duration", "must be longer than 0s"));
    }
    if !matches!(recovery, Recovery::Wait) {
        out.push(problem(
            "recovery.type",
            format!("Patroni performs the recovery of a `{kind}` target: use `type: wait`"),
        ));
    }
}

pub(super) fn check(s: &Scenario, fault: &Fault, recovery: &Recovery, out: &mut Vec<Problem>) {
    match &s.target {
        Target::PostgresSandbox(spec) => {
            if spec.standbys == 0 || spec.standbys > 8 {
                out.push(problem("target.standbys", "a sandbox has 1 to 8 standbys"));
            }
            let nodes = sandbox_nodes(spec.standbys);
            let known = |n: &str| nodes.iter().any(|k| k == n);
            if let Some(node) = fault.node()
                && !known(node)
            {
                out.push(problem(
                    "fault.node",
                    format!(
                        "unknown node {node:?}; this sandbox has {}",
                        nodes.join(", ")
                    ),
                ));
            }
            if !fault.applies_to("postgres-sandbox") {
                let other = fault.target_kinds().join("` or `");
                out.push(problem(
                    "fault.type",
                    format!(
                        "a `{}` fault is for `{other}` targets; the sandbox takes kill, stop or \
                         pause",
                        fault.kind()
                    ),
                ));
            }
            match recovery {
                Recovery::Promote { node, .. } => {
                    if !node.starts_with("standby") || !known(node) {
                        out.push(problem(
                            "recovery.node",
                            format!(
                                "cannot promote {node:?}; promote one of the standbys: {}",
                                nodes[1..].join(", ")
                            ),
                        ));
                    } else if fault.node() == Some(node.as_str()) {
                        out.push(problem(
                            "recovery.node",
                            format!("{node} is the node the fault takes down"),
                        ));
                    }
                }
                Recovery::Wait => {
                    if matches!(fault, Fault::Kill { .. } | Fault::Stop { .. })
                        && fault.node() == Some("primary")
                    {
                        out.push(problem(
                            "recovery.type",
                            "nothing would recover the sandbox after the primary goes down: \
                             use `type: promote` with a standby",
                        ));
                    }
                }
                Recovery::Command { .. } => out.push(problem(
                    "recovery.type",
                    "a `command` recovery is for `postgres` targets; the sandbox takes promote or wait",
                )),
            }
        }
        Target::Postgres(_) => {
            if let Fault::Command { run, .. } = fault {
                check_argv("fault.run", run, out);
            }
            if !fault.applies_to("postgres") {
                out.push(problem(
                    "fault.type",
                    format!(
                        "a `{}` fault needs a sandbox; for an existing cluster use `type: command`",
                        fault.kind()
                    ),
                ));
            }
            match recovery {
                Recovery::Command { run, .. } => check_argv("recovery.run", run, out),
                Recovery::Wait => {}
                Recovery::Promote { .. } => out.push(problem(
                    "recovery.type",
                    "firedrill promotes only sandbox nodes; for an existing cluster use \
                     `type: wait` (its HA controller acts) or `type: command`",
                )),
            }
        }
        Target::AwsRds(spec) => check_aws_fault(spec, fault, recovery, out),
        Target::PatroniSandbox(spec) => {
            check_patroni_fault(s.target.kind(), Some(spec), fault, recovery, out)
        }
        Target::Patroni(_) => check_patroni_fault(s.target.kind(), None, fault, recovery, out),
        Target::AwsBackup(_) => out.push(problem(
            "target.type",
            "an `aws-backup` target is read by a `backup_health` drill; a failover drill needs \
             a database target",
        )),
        Target::Pgbackrest(_) => out.push(problem(
            "target.type",
            "a `pgbackrest` target is read by a `posture` drill; a failover drill needs a \
             database target",
        )),
    }
}
