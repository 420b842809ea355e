//! Backup posture: are the backups themselves protected (encrypted, immutable, kept long
//! enough, copied to another region, safe from deletion)? The facts each source gives (AWS
//! Backup vaults and recovery points, an RDS instance, a pgBackRest repository) are turned here
//! into one [`ResourcePosture`] per resource, and [`PostureResult::short`] counts the resources
//! that miss a target, for the verdict rules.
//!
//! Boundary: pure. Reading AWS or running `pgbackrest info` is the engine's; what a fact means
//! (a governance-mode lock is not immutable, a backup with no expiry is kept indefinitely) is
//! decided here, once, so that `verify` recounts from the same per-resource facts.

use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One property a posture drill checks, with the SOC 2 criteria its finding evidences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Encrypted,
    Immutable,
    MinRetention,
    CopiesInOtherRegion,
    DeletionProtection,
}

impl Check {
    pub const ALL: [Check; 5] = [
        Check::Encrypted,
        Check::Immutable,
        Check::MinRetention,
        Check::CopiesInOtherRegion,
        Check::DeletionProtection,
    ];

    /// The target's name in a scenario and a report.
    pub fn name(self) -> &'static str {
        match self {
            Check::Encrypted => "encrypted",
            Check::Immutable => "immutable",
            Check::MinRetention => "min_retention",
            Check::CopiesInOtherRegion => "copies_in_other_region",
            Check::DeletionProtection => "deletion_protection",
        }
    }

    pub fn from_name(name: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Encryption at rest is logical access protection (CC6.1) that holds wherever a copy
    /// travels (CC6.7); keeping backups, unaltered and away from the primary, is A1.2's
    /// "data back-up processes".
    pub fn controls(self) -> &'static [&'static str] {
        match self {
            Check::Encrypted => &["CC6.1", "CC6.7"],
            Check::Immutable
            | Check::MinRetention
            | Check::CopiesInOtherRegion
            | Check::DeletionProtection => &["A1.2"],
        }
    }
}

/// What a posture drill read, and each resource's findings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PostureResult {
    /// What was read: `AWS Backup in eu-west-1`, `RDS instance orders in eu-west-1`,
    /// `pgBackRest stanza main (repo1)`.
    pub source: String,
    pub resources: Vec<ResourcePosture>,
}

/// One resource's protection. `None` is "not measured" (no backup to judge, a field the source
/// did not give): a stated target counts it as short.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResourcePosture {
    /// An ARN, an instance identifier or `stanza/repoN`.
    pub resource: String,
    /// Backups judged (recovery points, snapshots, pgBackRest backups).
    pub backups: u64,
    /// Every backup is encrypted at rest (and, for an RDS instance, its storage).
    pub encrypted: Option<bool>,
    /// Every backup sits where nobody, the account's root included, can delete or shorten it
    /// before its retention ends (an AWS Backup vault lock in compliance mode).
    pub immutable: Option<bool>,
    /// The shortest retention of any backup, in days; `None` with `retention_indefinite` when
    /// every backup is kept until someone deletes it.
    pub retention_days: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retention_indefinite: bool,
    /// Other regions holding a completed copy made in the window.
    pub copies_in_other_regions: Option<u32>,
    /// The resource cannot be deleted without first turning the protection off.
    pub deletion_protection: Option<bool>,
    /// Why a check came out as it did, one line each, worst first.
    pub findings: Vec<Finding>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    pub check: Check,
    pub ok: bool,
    pub detail: String,
}

impl ResourcePosture {
    pub fn new(resource: impl Into<String>) -> ResourcePosture {
        ResourcePosture {
            resource: resource.into(),
            ..Default::default()
        }
    }

    pub fn note(&mut self, check: Check, ok: bool, detail: impl Into<String>) {
        self.findings.push(Finding {
            check,
            ok,
            detail: detail.into(),
        });
    }

    /// The other regions the copies at `arns` (ARNs) are in, counted and noted.
    fn copies(&mut self, arns: &[&str], home_region: &str, none: &str, some: &str) {
        let mut regions: Vec<&str> = arns
            .iter()
            .filter_map(|a| arn_region(a))
            .filter(|region| *region != home_region)
            .collect();
        regions.sort_unstable();
        regions.dedup();
        self.copies_in_other_regions = Some(regions.len() as u32);
        let detail = if regions.is_empty() {
            none.to_owned()
        } else {
            format!("{some} {}", regions.join(", "))
        };
        self.note(Check::CopiesInOtherRegion, !regions.is_empty(), detail);
    }

    /// Whether this resource meets `check` at `threshold` (days for retention, copies for
    /// regions); `None` when it was not measured.
    pub fn meets(&self, check: Check, threshold: f64) -> Option<bool> {
        match check {
            Check::Encrypted => self.encrypted,
            Check::Immutable => self.immutable,
            Check::DeletionProtection => self.deletion_protection,
            Check::MinRetention if self.retention_indefinite => Some(true),
            Check::MinRetention => self.retention_days.map(|d| d >= threshold),
            Check::CopiesInOtherRegion => self
                .copies_in_other_regions
                .map(|c| f64::from(c) >= threshold),
        }
    }
}

impl PostureResult {
    /// Resources short of `check` at `threshold`, the unmeasured among them: what the target
    /// counts (0 meets it).
    pub fn short(&self, check: Check, threshold: f64) -> u64 {
        self.resources
            .iter()
            .filter(|r| r.meets(check, threshold) != Some(true))
            .count() as u64
    }

    /// Findings that are not ok, as `resource: detail (criteria)`, for the summary.
    pub fn problems(&self) -> Vec<String> {
        self.resources
            .iter()
            .flat_map(|r| {
                r.findings.iter().filter(|f| !f.ok).map(move |f| {
                    format!(
                        "{}: {} ({})",
                        r.resource,
                        f.detail,
                        f.check.controls().join(", ")
                    )
                })
            })
            .collect()
    }
}

/// An AWS Backup vault as its lock and key make it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vault {
    pub name: String,
    /// Its KMS key; AWS Backup encrypts every vault, so a missing key is only unreported.
    pub encryption_key: Option<String>,
    /// A vault lock applies (either mode).
    pub locked: bool,
    /// When a compliance-mode lock became (or becomes) unchangeable; `None` in governance mode.
    pub lock_date: Option<SystemTime>,
    pub min_retention_days: Option<i64>,
    /// `LOGICALLY_AIR_GAPPED_BACKUP_VAULT` vaults are compliance-locked by construction.
    pub air_gapped: bool,
}

impl Vault {
    /// Immutable means compliance mode past its grace time: a governance-mode lock can be
    /// removed by anyone with `backup:DeleteBackupVaultLockConfiguration`.
    pub fn compliance_locked(&self, now: SystemTime) -> bool {
        self.air_gapped || (self.locked && self.lock_date.is_some_and(|d| d <= now))
    }

    fn describe_lock(&self, now: SystemTime) -> String {
        if self.air_gapped {
            "logically air-gapped (compliance lock)".into()
        } else if self.compliance_locked(now) {
            format!(
                "compliance-mode lock{}",
                self.min_retention_days
                    .map(|d| format!(", minimum retention {d} days"))
                    .unwrap_or_default()
            )
        } else if self.locked && self.lock_date.is_some() {
            "compliance-mode lock still in its grace time (it can be removed)".into()
        } else if self.locked {
            "governance-mode lock (privileged users can remove it)".into()
        } else {
            "no vault lock".into()
        }
    }
}

/// One recovery point as the vault lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub arn: String,
    pub vault: String,
    pub status: String,
    pub encrypted: Option<bool>,
    /// The lifecycle's `DeleteAfterDays`; `None` keeps it until deleted.
    pub delete_after_days: Option<i64>,
}

/// A completed copy job of the resource: where the copy went.
#[derive(Clone, Debug, PartialEq)]
pub struct Copy {
    pub destination_vault_arn: String,
}

/// One resource protected by AWS Backup: its completed recovery points in every vault, the
/// vaults they are in, and the completed copy jobs of the window.
pub fn assess_backup(
    resource: &str,
    home_region: &str,
    points: &[Point],
    vaults: &[Vault],
    copies: &[Copy],
    now: SystemTime,
) -> ResourcePosture {
    let mut r = ResourcePosture::new(resource);
    let done: Vec<&Point> = points.iter().filter(|p| p.status == "COMPLETED").collect();
    r.backups = done.len() as u64;
    if done.is_empty() {
        for c in [Check::Encrypted, Check::Immutable, Check::MinRetention] {
            r.note(c, false, "no completed recovery point to judge");
        }
    } else {
        let plain: Vec<&str> = done
            .iter()
            .filter(|p| p.encrypted != Some(true))
            .map(|p| p.arn.as_str())
            .collect();
        r.encrypted = Some(plain.is_empty());
        if plain.is_empty() {
            r.note(
                Check::Encrypted,
                true,
                format!("all {} recovery points encrypted", done.len()),
            );
        } else {
            r.note(
                Check::Encrypted,
                false,
                format!(
                    "{} of {} recovery points not encrypted (e.g. {})",
                    plain.len(),
                    done.len(),
                    plain[0]
                ),
            );
        }

        let mut vault_names: Vec<&str> = done.iter().map(|p| p.vault.as_str()).collect();
        vault_names.sort_unstable();
        vault_names.dedup();
        let mut all_locked = true;
        for name in vault_names {
            let vault = vaults.iter().find(|v| v.name == name);
            let locked = vault.is_some_and(|v| v.compliance_locked(now));
            all_locked &= locked;
            r.note(
                Check::Immutable,
                locked,
                format!(
                    "vault {name}: {}",
                    vault
                        .map(|v| v.describe_lock(now))
                        .unwrap_or_else(|| "not listed by ListBackupVaults".into())
                ),
            );
        }
        r.immutable = Some(all_locked);

        match done.iter().filter_map(|p| p.delete_after_days).min() {
            Some(days) => {
                r.retention_days = Some(days as f64);
                r.note(
                    Check::MinRetention,
                    true,
                    format!("shortest lifecycle: deleted after {days} days"),
                );
            }
            None => {
                r.retention_indefinite = true;
                r.note(
                    Check::MinRetention,
                    true,
                    "no lifecycle deletes its recovery points (kept until deleted)",
                );
            }
        }
    }

    let arns: Vec<&str> = copies
        .iter()
        .map(|c| c.destination_vault_arn.as_str())
        .collect();
    r.copies(
        &arns,
        home_region,
        "no completed copy to another region in the window",
        "copied to",
    );
    r
}

/// An RDS instance's own protection: its storage and its snapshots' encryption, the automated
/// backups' retention, deletion protection and automated-backup replication to other regions.
pub struct RdsFacts<'a> {
    pub instance: &'a str,
    pub home_region: &'a str,
    pub storage_encrypted: Option<bool>,
    pub backup_retention_days: Option<i32>,
    pub deletion_protection: Option<bool>,
    /// ARNs of the instance's automated backups replicated to other regions.
    pub replications: &'a [String],
    /// `(snapshot id, encrypted)` of its snapshots.
    pub snapshots: &'a [(String, Option<bool>)],
}

pub fn assess_rds(f: &RdsFacts) -> ResourcePosture {
    let mut r = ResourcePosture::new(f.instance);
    r.backups = f.snapshots.len() as u64;
    let plain: Vec<&str> = f
        .snapshots
        .iter()
        .filter(|(_, e)| *e != Some(true))
        .map(|(id, _)| id.as_str())
        .collect();
    r.encrypted = f.storage_encrypted.map(|s| s && plain.is_empty());
    r.note(
        Check::Encrypted,
        f.storage_encrypted == Some(true),
        match f.storage_encrypted {
            Some(true) => "storage encrypted",
            Some(false) => "storage not encrypted (its automated backups are not either)",
            None => "storage encryption not reported",
        },
    );
    r.note(
        Check::Encrypted,
        plain.is_empty(),
        if plain.is_empty() {
            format!("all {} snapshots encrypted", f.snapshots.len())
        } else {
            format!(
                "{} of {} snapshots not encrypted: {}",
                plain.len(),
                f.snapshots.len(),
                plain.join(", ")
            )
        },
    );

    r.retention_days = f.backup_retention_days.map(f64::from);
    r.note(
        Check::MinRetention,
        f.backup_retention_days.is_some_and(|d| d > 0),
        match f.backup_retention_days {
            Some(0) => "automated backups disabled (retention period 0)".to_owned(),
            Some(d) => format!("automated backups kept {d} days"),
            None => "backup retention period not reported".to_owned(),
        },
    );

    r.deletion_protection = f.deletion_protection;
    r.note(
        Check::DeletionProtection,
        f.deletion_protection == Some(true),
        match f.deletion_protection {
            Some(true) => "deletion protection on",
            Some(false) => "deletion protection off",
            None => "deletion protection not reported",
        },
    );

    let arns: Vec<&str> = f.replications.iter().map(String::as_str).collect();
    r.copies(
        &arns,
        f.home_region,
        "automated backups not replicated to another region",
        "automated backups replicated to",
    );
    r
}

/// How a pgBackRest repository keeps its full backups (`repoN-retention-full(-type)`).
#[derive(Clone, Debug, PartialEq)]
pub enum Retention {
    /// Unset: pgBackRest never expires a backup (and warns about it).
    Unset,
    Count(u32),
    Days(u32),
}

/// A pgBackRest repository as `pgbackrest info` and its configuration show it.
pub fn assess_pgbackrest(
    resource: &str,
    cipher: Option<&str>,
    backups: u64,
    retention: &Retention,
) -> ResourcePosture {
    let mut r = ResourcePosture::new(resource);
    r.backups = backups;
    if backups == 0 {
        r.note(
            Check::Encrypted,
            false,
            "no backup in the repository to judge",
        );
        r.note(
            Check::MinRetention,
            false,
            "no backup in the repository to judge",
        );
        return r;
    }
    r.encrypted = cipher.map(|c| c != "none");
    r.note(
        Check::Encrypted,
        r.encrypted == Some(true),
        match cipher {
            Some("none") => "repository not encrypted (cipher none)".to_owned(),
            Some(c) => format!("repository encrypted ({c})"),
            None => "`pgbackrest info` reports no cipher".to_owned(),
        },
    );
    match retention {
        Retention::Unset => {
            r.retention_indefinite = true;
            r.note(
                Check::MinRetention,
                true,
                "no retention-full: pgBackRest never expires a backup",
            );
        }
        Retention::Days(d) => {
            r.retention_days = Some(f64::from(*d));
            r.note(
                Check::MinRetention,
                true,
                format!("full backups kept {d} days (retention-full-type=time)"),
            );
        }
        Retention::Count(n) => r.note(
            Check::MinRetention,
            false,
            format!(
                "retention counted in backups ({n} full backups), not days: state it with \
                 retention-full-type=time"
            ),
        ),
    }
    r
}

/// `eu-west-1` from `arn:aws:backup:eu-west-1:123456789012:backup-vault:copies`.
fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// Days in a duration, for retention thresholds.
pub fn days(d: Duration) -> f64 {
    d.as_secs_f64() / 86_400.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn point(vault: &str, encrypted: bool, delete_after: Option<i64>) -> Point {
        Point {
            arn: format!("arn:aws:backup:us-east-1:1:recovery-point:{vault}-{delete_after:?}"),
            vault: vault.into(),
            status: "COMPLETED".into(),
            encrypted: Some(encrypted),
            delete_after_days: delete_after,
        }
    }

    #[test]
    fn only_a_compliance_lock_past_its_grace_time_is_immutable() {
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let compliance = Vault {
            name: "locked".into(),
            locked: true,
            lock_date: Some(now - DAY),
            min_retention_days: Some(35),
            ..Default::default()
        };
        let grace = Vault {
            lock_date: Some(now + DAY),
            ..compliance.clone()
        };
        let governance = Vault {
            lock_date: None,
            ..compliance.clone()
        };
        assert!(compliance.compliance_locked(now));
        assert!(!grace.compliance_locked(now));
        assert!(!governance.compliance_locked(now));

        let points = [point("locked", true, Some(400)), point("other", true, None)];
        let r = assess_backup(
            "arn:aws:rds:us-east-1:1:db:orders",
            "us-east-1",
            &points,
            &[compliance.clone(), governance.clone()],
            &[],
            now,
        );
        assert_eq!(r.immutable, Some(false), "the `other` vault is not listed");
        let r = assess_backup(
            "arn:aws:rds:us-east-1:1:db:orders",
            "us-east-1",
            &points[..1],
            &[compliance],
            &[],
            now,
        );
        assert_eq!(r.immutable, Some(true));
        assert_eq!(r.retention_days, Some(400.0));
    }

    #[test]
    fn retention_copies_and_encryption_are_counted_per_resource() {
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let good = assess_backup(
            "a",
            "us-east-1",
            &[point("v", true, Some(35)), point("v", true, None)],
            &[],
            &[
                Copy {
                    destination_vault_arn: "arn:aws:backup:eu-west-1:1:backup-vault:dr".into(),
                },
                Copy {
                    destination_vault_arn: "arn:aws:backup:us-east-1:1:backup-vault:same".into(),
                },
            ],
            now,
        );
        let plain = assess_backup(
            "b",
            "us-east-1",
            &[point("v", false, Some(7))],
            &[],
            &[],
            now,
        );
        let forever = assess_backup("c", "us-east-1", &[point("v", true, None)], &[], &[], now);
        let empty = assess_backup("d", "us-east-1", &[], &[], &[], now);
        let p = PostureResult {
            source: "test".into(),
            resources: vec![good, plain, forever, empty],
        };
        assert_eq!(p.short(Check::Encrypted, 0.0), 2, "b, and d unmeasured");
        assert_eq!(p.short(Check::MinRetention, 35.0), 2, "b (7 days) and d");
        assert_eq!(p.short(Check::MinRetention, 36.0), 3);
        assert_eq!(
            p.short(Check::CopiesInOtherRegion, 1.0),
            3,
            "only a: eu-west-1"
        );
        assert_eq!(p.short(Check::CopiesInOtherRegion, 2.0), 4);
        assert!(
            p.problems()
                .iter()
                .any(|l| l.starts_with("b: 1 of 1 recovery points not encrypted")
                    && l.ends_with("(CC6.1, CC6.7)")),
            "{:?}",
            p.problems()
        );
    }

    #[test]
    fn a_pgbackrest_repository_without_backups_or_with_a_count_retention_is_not_measured() {
        let r = assess_pgbackrest("main/repo1", Some("aes-256-cbc"), 0, &Retention::Unset);
        assert_eq!((r.encrypted, r.retention_days), (None, None));
        let r = assess_pgbackrest("main/repo1", Some("none"), 2, &Retention::Count(2));
        assert_eq!(r.encrypted, Some(false));
        assert_eq!(r.meets(Check::MinRetention, 1.0), None);
        let r = assess_pgbackrest("main/repo1", Some("aes-256-cbc"), 2, &Retention::Days(40));
        assert_eq!(r.meets(Check::MinRetention, 35.0), Some(true));
        assert_eq!(r.meets(Check::Encrypted, 0.0), Some(true));
    }

    #[test]
    fn rds_encryption_needs_the_storage_and_every_snapshot() {
        let snaps = [
            ("s1".to_owned(), Some(true)),
            ("s2".to_owned(), Some(false)),
        ];
        let r = assess_rds(&RdsFacts {
            instance: "orders",
            home_region: "us-east-1",
            storage_encrypted: Some(true),
            backup_retention_days: Some(7),
            deletion_protection: Some(false),
            replications: &[],
            snapshots: &snaps,
        });
        assert_eq!(r.encrypted, Some(false));
        assert_eq!(r.deletion_protection, Some(false));
        assert_eq!(r.meets(Check::MinRetention, 7.0), Some(true));
        assert_eq!(r.meets(Check::MinRetention, 35.0), Some(false));
        assert_eq!(r.copies_in_other_regions, Some(0));
    }
}
