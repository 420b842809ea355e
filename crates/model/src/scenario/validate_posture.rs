//! Semantic checks of a posture drill: which protection a target kind can show at all (an RDS
//! snapshot has no lock, a pgBackRest repository no region), stated as targets that can only be
//! met, and nothing else asked of it. Pure, like the rest of validation.

use super::model::*;
use super::problem::{Problem, problem};
use crate::posture::Check;

/// Why a target kind cannot show `check`; `None` when it can.
fn cannot_show(target: &Target, check: Check) -> Option<&'static str> {
    match (target, check) {
        (Target::AwsBackup(_), Check::DeletionProtection) => Some(
            "AWS Backup recovery points have no deletion protection; a vault lock keeps them: \
             state `immutable`",
        ),
        (Target::AwsRds(_), Check::Immutable) => Some(
            "RDS snapshots can be deleted by anyone allowed rds:DeleteDBSnapshot; an AWS Backup \
             vault lock makes backups immutable: check it with an `aws-backup` target",
        ),
        (Target::Pgbackrest(_), Check::Immutable) => Some(
            "a pgBackRest repository on a file system can be deleted by its owner; firedrill \
             cannot show it immutable",
        ),
        (Target::Pgbackrest(_), Check::CopiesInOtherRegion) => {
            Some("a pgBackRest repository has no region; check each repository (`repo`) instead")
        }
        (Target::Pgbackrest(_), Check::DeletionProtection) => {
            Some("a pgBackRest repository has no deletion protection")
        }
        (
            Target::AwsBackup(_),
            Check::Encrypted | Check::Immutable | Check::MinRetention | Check::CopiesInOtherRegion,
        )
        | (
            Target::AwsRds(_),
            Check::Encrypted
            | Check::MinRetention
            | Check::CopiesInOtherRegion
            | Check::DeletionProtection,
        )
        | (Target::Pgbackrest(_), Check::Encrypted | Check::MinRetention) => None,
        (
            Target::PostgresSandbox(_)
            | Target::Postgres(_)
            | Target::PatroniSandbox(_)
            | Target::Patroni(_),
            _,
        ) => Some("a posture drill reads `aws-backup`, `aws-rds` or `pgbackrest`"),
    }
}

/// The posture targets a scenario states, each with whether it asks for something that can be
/// met (`false` for an `encrypted: false`, which states nothing).
pub fn stated(t: &Targets) -> Vec<(Check, bool)> {
    let mut out = Vec::new();
    for (check, set) in [
        (Check::Encrypted, t.encrypted),
        (Check::Immutable, t.immutable),
        (Check::DeletionProtection, t.deletion_protection),
    ] {
        if let Some(v) = set {
            out.push((check, v));
        }
    }
    if let Some(d) = t.min_retention {
        out.push((Check::MinRetention, !d.get().is_zero()));
    }
    if let Some(n) = t.copies_in_other_region {
        out.push((Check::CopiesInOtherRegion, n > 0));
    }
    out
}

pub(super) fn check(s: &Scenario, p: &Posture, out: &mut Vec<Problem>) {
    let t = &s.targets;
    if !matches!(
        s.target,
        Target::AwsBackup(_) | Target::AwsRds(_) | Target::Pgbackrest(_)
    ) {
        out.push(problem(
            "target.type",
            format!(
                "a posture drill reads `aws-backup`, `aws-rds` or `pgbackrest`, not `{}`",
                s.target.kind()
            ),
        ));
    }
    if let Target::AwsRds(spec) = &s.target
        && spec.cluster.is_some()
    {
        out.push(problem(
            "target.cluster",
            "the posture of an Aurora cluster is not built yet; name an `instance`",
        ));
    }
    let stated = stated(t);
    if stated.is_empty() {
        out.push(problem(
            "targets",
            "missing: a posture drill states at least one of encrypted, immutable, \
             min_retention, copies_in_other_region, deletion_protection",
        ));
    }
    for (check, meaningful) in stated {
        let key = format!("targets.{}", check.name());
        if let Some(why) = cannot_show(&s.target, check) {
            out.push(problem(&key, why));
        } else if !meaningful {
            out.push(problem(
                &key,
                match check {
                    Check::MinRetention => "must be longer than 0s",
                    Check::CopiesInOtherRegion => "must be at least 1 (or leave it out)",
                    Check::Encrypted | Check::Immutable | Check::DeletionProtection => {
                        "state `true` or leave it out: `false` asks for nothing"
                    }
                },
            ));
        }
    }
    for (set, name) in [
        (t.rto.is_some(), "rto"),
        (t.rpo.is_some(), "rpo"),
        (t.max_lost_writes.is_some(), "max_lost_writes"),
        (t.min_availability_pct.is_some(), "min_availability_pct"),
        (t.checksums.is_some(), "checksums"),
        (t.failover.is_some(), "failover"),
    ] {
        if set {
            out.push(problem(
                &format!("targets.{name}"),
                "a posture drill judges how backups are protected, not a recovery",
            ));
        }
    }
    if p.window.get() < std::time::Duration::from_secs(86_400) {
        out.push(problem("posture.window", "at least 1d"));
    }
    if !s.guardrails.is_empty() {
        out.push(problem(
            "guardrails",
            "guardrails watch the probes of a failover drill; a posture drill has none",
        ));
    }
}

/// Posture targets in a drill of another kind.
pub(super) fn check_elsewhere(s: &Scenario, out: &mut Vec<Problem>) {
    for (check, _) in stated(&s.targets) {
        out.push(problem(
            &format!("targets.{}", check.name()),
            "judged by a posture drill (`posture`), not by this drill",
        ));
    }
}
