//! Which faults and recoveries each target kind takes, and what each needs of its target (a
//! node or member that exists, a resource of the right kind): pure, like all validation.

use super::model::*;
use super::problem::{Keys, Problem, check_argv, problem, sandbox_nodes};

/// Faults and recovery of an RDS instance or Aurora cluster: AWS's own, and AWS recovers.
fn check_aws_fault(spec: &AwsRdsSpec, fault: &Fault, k: &Keys, out: &mut Vec<Problem>) {
    if !fault.applies_to("aws-rds") {
        out.push(problem(
            &k.fault("type"),
            format!(
                "an `aws-rds` target takes rds-failover, aurora-failover or fis-experiment, not `{}`",
                fault.kind()
            ),
        ));
    }
    if matches!(fault, Fault::RdsFailover) && spec.instance.is_none() {
        out.push(problem(
            &k.fault("type"),
            "`rds-failover` reboots a Multi-AZ DB instance: set `target.instance` (for a cluster \
             use `aurora-failover`)",
        ));
    }
    if matches!(fault, Fault::AuroraFailover { .. }) && spec.cluster.is_none() {
        out.push(problem(
            &k.fault("type"),
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
                &k.fault("template"),
                "give `template_id` or `template`, not both",
            )),
            (None, None) => out.push(problem(
                &k.fault("template_id"),
                "missing: an existing template's id, or a `template` to create",
            )),
            (None, Some(t)) => {
                if t.actions.is_empty() {
                    out.push(problem(&k.fault("template.actions"), "no action"));
                }
                for (name, a) in &t.actions {
                    for (key, target) in &a.targets {
                        if !t.targets.contains_key(target) {
                            out.push(problem(
                                &k.fault(&format!("template.actions.{name}.targets.{key}")),
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
                &k.fault("poll"),
                "at least 200ms (each read is an API call)",
            ));
        }
    }
}

/// Faults and recovery of a Patroni cluster: Patroni recovers (`wait`); members are named by
/// role or, in a sandbox, by one of its names.
fn check_patroni_fault(
    kind: &str,
    sandbox: Option<&PatroniSandboxSpec>,
    fault: &Fault,
    k: &Keys,
    out: &mut Vec<Problem>,
) {
    if !fault.applies_to(kind) {
        let takes = match sandbox {
            Some(_) => "kill-host, kill-postgres, pause-host, switchover, failover or stop-dcs",
            None => "switchover or failover (through the REST API)",
        };
        out.push(problem(
            &k.fault("type"),
            format!("a `{kind}` target takes {takes}, not `{}`", fault.kind()),
        ));
    }
    if let Some(spec) = sandbox {
        let names = patroni_members(spec.members);
        let member = fault.member_at();
        let key = &k.fault(member.map_or("member", |(field, _)| field));
        match member.map(|(_, m)| m) {
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
            Some(MemberRef::Named(_) | MemberRef::SyncStandby)
            | Some(MemberRef::Leader | MemberRef::Replica)
            | None => {}
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
            &k.fault("candidate"),
            "the candidate is the member to promote; name a replica, not the leader",
        ));
    }
    if let Fault::PauseHost { duration, .. } | Fault::StopDcs { duration } = fault
        && duration.get().is_zero()
    {
        out.push(problem(&k.fault("duration"), "must be longer than 0s"));
    }
}

/// A failover drill's fault and recovery: each on its own, then the rules that pair them.
pub(super) fn check(s: &Scenario, fault: &Fault, recovery: &Recovery, out: &mut Vec<Problem>) {
    let k = Keys::classic();
    check_fault(s, fault, &k, out);
    check_recovery(s, recovery, &k, out);
    if let Target::PostgresSandbox(_) = &s.target {
        match recovery {
            Recovery::Promote { node, .. } => {
                if fault.node() == Some(node.as_str()) {
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
            Recovery::Command { .. } => {}
        }
    }
}

/// One fault against the target kind: does the kind take it, does what it names exist.
pub(super) fn check_fault(s: &Scenario, fault: &Fault, k: &Keys, out: &mut Vec<Problem>) {
    match &s.target {
        Target::PostgresSandbox(spec) => {
            if spec.standbys == 0 || spec.standbys > 8 {
                out.push(problem("target.standbys", "a sandbox has 1 to 8 standbys"));
            }
            let nodes = sandbox_nodes(spec.standbys);
            if let Some(node) = fault.node()
                && !nodes.iter().any(|k| k == node)
            {
                out.push(problem(
                    &k.fault("node"),
                    format!(
                        "unknown node {node:?}; this sandbox has {}",
                        nodes.join(", ")
                    ),
                ));
            }
            super::validate_zones::check_fault(spec, fault, k, out);
            if !fault.applies_to("postgres-sandbox") {
                let other = fault.target_kinds().join("` or `");
                out.push(problem(
                    &k.fault("type"),
                    format!(
                        "a `{}` fault is for `{other}` targets; the sandbox takes kill, stop, \
                         pause, sql, zone-outage or partition",
                        fault.kind()
                    ),
                ));
            }
        }
        Target::Postgres(_) => {
            if let Fault::Command { run, .. } = fault {
                check_argv(&k.fault("run"), run, out);
            }
            if !fault.applies_to("postgres") {
                out.push(problem(
                    &k.fault("type"),
                    format!(
                        "a `{}` fault needs a sandbox; for an existing cluster use `type: command`",
                        fault.kind()
                    ),
                ));
            }
        }
        Target::AwsRds(spec) => check_aws_fault(spec, fault, k, out),
        Target::PatroniSandbox(spec) => {
            check_patroni_fault(s.target.kind(), Some(spec), fault, k, out)
        }
        Target::Patroni(_) => check_patroni_fault(s.target.kind(), None, fault, k, out),
        Target::AwsBackup(_) => no_database(AWS_BACKUP_IS_READ, out),
        Target::Pgbackrest(_) => no_database(PGBACKREST_IS_READ, out),
    }
}

/// One recovery against the target kind: firedrill promotes sandbox standbys and runs an
/// existing cluster's command; AWS and Patroni recover by themselves (`wait`).
pub(super) fn check_recovery(s: &Scenario, recovery: &Recovery, k: &Keys, out: &mut Vec<Problem>) {
    match &s.target {
        Target::PostgresSandbox(spec) => {
            let nodes = sandbox_nodes(spec.standbys);
            match recovery {
                Recovery::Promote { node, .. } => {
                    if !node.starts_with("standby") || !nodes.iter().any(|k| k == node) {
                        out.push(problem(
                            &k.recovery("node"),
                            format!(
                                "cannot promote {node:?}; promote one of the standbys: {}",
                                nodes[1..].join(", ")
                            ),
                        ));
                    }
                }
                Recovery::Wait => {}
                Recovery::Command { .. } => out.push(problem(
                    &k.recovery("type"),
                    "a `command` recovery is for `postgres` targets; the sandbox takes promote or wait",
                )),
            }
        }
        Target::Postgres(_) => match recovery {
            Recovery::Command { run, .. } => check_argv(&k.recovery("run"), run, out),
            Recovery::Wait => {}
            Recovery::Promote { .. } => out.push(problem(
                &k.recovery("type"),
                "firedrill promotes only sandbox nodes; for an existing cluster use \
                 `type: wait` (its HA controller acts) or `type: command`",
            )),
        },
        Target::AwsRds(_) => {
            if !matches!(recovery, Recovery::Wait) {
                out.push(problem(
                    &k.recovery("type"),
                    "AWS performs the recovery of an `aws-rds` target: use `type: wait`",
                ));
            }
        }
        Target::PatroniSandbox(_) | Target::Patroni(_) => {
            if !matches!(recovery, Recovery::Wait) {
                out.push(problem(
                    &k.recovery("type"),
                    format!(
                        "Patroni performs the recovery of a `{}` target: use `type: wait`",
                        s.target.kind()
                    ),
                ));
            }
        }
        Target::AwsBackup(_) => no_database(AWS_BACKUP_IS_READ, out),
        Target::Pgbackrest(_) => no_database(PGBACKREST_IS_READ, out),
    }
}

const AWS_BACKUP_IS_READ: &str = "an `aws-backup` target is read by a `backup_health` drill; a \
     failover drill needs a database target";
const PGBACKREST_IS_READ: &str = "a `pgbackrest` target is read by a `posture` drill; a failover \
     drill needs a database target";

/// Said once, however many faults and recoveries a scenario has.
fn no_database(message: &str, out: &mut Vec<Problem>) {
    if !out.iter().any(|p| p.path == "target.type") {
        out.push(problem("target.type", message));
    }
}
