//! The plan of a posture drill: what it reads per target kind, and what it judges each
//! resource against. Reads only.

use crate::scenario::{Posture, Scenario, Target};

/// A posture drill's reads, per target kind, and the targets it judges.
pub(super) fn steps(s: &Scenario, p: &Posture, step: &mut dyn FnMut(String)) {
    match &s.target {
        Target::AwsBackup(_) => {
            step("list the backup vaults (ListBackupVaults): each one's key and vault lock".into());
            step(
                "per resource: its recovery points in every vault \
                 (ListRecoveryPointsByBackupVault): encryption, vault, lifecycle"
                    .into(),
            );
            step(format!(
                "per resource: completed copy jobs of the last {} (ListCopyJobs) and the \
                 regions they reached",
                p.window
            ));
        }
        Target::AwsRds(_) => {
            step(
                "describe the instance: storage encryption, backup retention period, deletion \
                 protection, automated-backup replications"
                    .into(),
            );
            step("describe its snapshots (DescribeDBSnapshots): each one's encryption".into());
        }
        Target::Pgbackrest(_) => {}
        Target::PostgresSandbox(_)
        | Target::Postgres(_)
        | Target::PatroniSandbox(_)
        | Target::Patroni(_) => {}
    }
    let t = &s.targets;
    let mut judged = Vec::new();
    if t.encrypted.is_some() {
        judged.push("encrypted".to_owned());
    }
    if t.immutable.is_some() {
        judged.push("immutable".to_owned());
    }
    if let Some(d) = t.min_retention {
        judged.push(format!("min_retention {d}"));
    }
    if let Some(n) = t.copies_in_other_region {
        judged.push(format!("copies_in_other_region {n}"));
    }
    if t.deletion_protection.is_some() {
        judged.push("deletion_protection".to_owned());
    }
    step(format!(
        "judge every resource against: {}; a resource with nothing to judge counts as short",
        judged.join(", ")
    ));
    step("read only: nothing is created or changed".into());
}
