//! Semantic checks on a parsed scenario: pure (no I/O, no clock), and every problem collected
//! before any is reported, so one `firedrill validate` run shows the author everything to fix.

use super::duration::Dur;
use super::model::*;
pub use super::problem::Problem;
use super::problem::problem;
use super::restore::*;
use super::shape::{NotOneDrill, Shape};

pub fn validate(s: &Scenario) -> Vec<Problem> {
    let mut out = Vec::new();

    if s.version != SCENARIO_VERSION {
        out.push(problem(
            "version",
            format!(
                "unsupported scenario version {}; this firedrill reads version {SCENARIO_VERSION}",
                s.version
            ),
        ));
    }
    if s.name.is_empty()
        || !s
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        out.push(problem(
            "name",
            "name must be non-empty and use only letters, digits, `-`, `_` and `.`",
        ));
    }
    for (i, c) in s.controls.iter().enumerate() {
        if crate::soc2::control(c).is_none() {
            out.push(problem(
                &format!("controls[{i}]"),
                format!(
                    "{c:?} is not a SOC 2 criterion a drill can evidence; known: {}",
                    crate::soc2::known_ids().join(", ")
                ),
            ));
        }
    }

    check_target_common(s, &mut out);
    check_environment(s, &mut out);
    if let Some(f) = &s.fleet {
        check_fleet(s, f, &mut out);
    }
    match Shape::of(s) {
        Ok(Shape::Posture(p)) => {
            if s.fault.is_some()
                || s.recovery.is_some()
                || s.steps.is_some()
                || s.restore.is_some()
                || s.backup_health.is_some()
            {
                out.push(problem("posture", super::shape::ONE_DRILL));
            }
            if s.fleet.is_some() {
                out.push(problem(
                    "fleet",
                    "a fleet runs restore drills; a posture drill names its instance",
                ));
            }
            super::validate_posture::check(s, p, &mut out);
            return out;
        }
        Ok(Shape::GameDay(steps)) => {
            check_outside_posture(s, &mut out);
            super::validate_steps::check(s, steps, &mut out);
            check_guardrails(s, &mut out);
            check_probes(s, &mut out);
        }
        Ok(Shape::Failover { fault, recovery }) => {
            check_outside_posture(s, &mut out);
            super::validate_failover::check(s, fault, recovery, &mut out);
            check_timing(s, fault, recovery, &mut out);
            check_failover_targets(&s.targets, &mut out);
            check_guardrails(s, &mut out);
        }
        Ok(Shape::BackupHealth(h)) => {
            check_outside_posture(s, &mut out);
            check_backup_health(s, h, &mut out);
        }
        Ok(Shape::Restore(r)) => {
            check_outside_posture(s, &mut out);
            super::validate_restore::check(s, r, &mut out);
            if !s.guardrails.is_empty() {
                out.push(problem(
                    "guardrails",
                    "guardrails watch the probes of a failover drill; a restore drill has none",
                ));
            }
        }
        Err(why) => {
            check_outside_posture(s, &mut out);
            out.push(drill_kind_problem(s, why));
        }
    }

    if s.workload.connections > 256 {
        out.push(problem(
            "workload.connections",
            "at most 256 writer connections",
        ));
    }
    if !is_identifier(&s.workload.table) {
        out.push(problem(
            "workload.table",
            "table must be a plain SQL identifier (lowercase letters, digits, `_`)",
        ));
    }
    let pct = s.steady_state.min_success_pct;
    if !(0.0..=100.0).contains(&pct) {
        out.push(problem(
            "steady_state.min_success_pct",
            "must be between 0 and 100",
        ));
    }
    out
}

/// A fleet runs one restore drill per selected RDS instance, a bounded number at a time.
fn check_fleet(s: &Scenario, f: &Fleet, out: &mut Vec<Problem>) {
    if !matches!(s.target, Target::AwsRds(_)) {
        out.push(problem(
            "fleet",
            format!(
                "a fleet selects RDS instances by tag: it needs an `aws-rds` target, not `{}`",
                s.target.kind()
            ),
        ));
    } else if s.restore.is_none() {
        out.push(problem(
            "fleet",
            "a fleet runs restore drills (`restore`); failover and backup-health drills name \
             their instance or resources",
        ));
    }
    let backup = s.restore.as_ref().map(|r| &r.backup);
    if let Some(Backup::RdsSnapshot { snapshot }) = backup
        && snapshot != "create"
        && snapshot != "latest"
    {
        out.push(problem(
            "restore.backup.snapshot",
            "a fleet restores each instance's own snapshot: `create` or `latest`, not one \
             snapshot's identifier",
        ))
    }
    if let Some(Backup::AwsBackup {
        recovery_point: Some(_),
        ..
    }) = backup
    {
        out.push(problem(
            "restore.backup.recovery_point",
            "a fleet restores each instance's newest recovery point; leave `recovery_point` out",
        ))
    }
    if f.tags.is_empty() {
        out.push(problem(
            "fleet.tags",
            "name at least one tag (key: value) the instances to restore carry",
        ));
    }
    for k in f.tags.keys().filter(|k| k.trim().is_empty()) {
        out.push(problem(
            &format!("fleet.tags.{k}"),
            "a tag key cannot be empty",
        ));
    }
    if !(1..=64).contains(&f.concurrency) {
        out.push(problem("fleet.concurrency", "must be between 1 and 64"));
    }
    if f.start_every.get() > std::time::Duration::from_secs(3600) {
        out.push(problem("fleet.start_every", "at most 1h"));
    }
    if f.max_instances == 0 {
        out.push(problem("fleet.max_instances", "must be at least 1"));
    }
}

/// Checks every drill but a posture drill needs: posture targets are not stated elsewhere, and
/// an RDS target names the DSN its clients use.
fn check_outside_posture(s: &Scenario, out: &mut Vec<Problem>) {
    super::validate_posture::check_elsewhere(s, out);
    if let Target::AwsRds(spec) = &s.target
        && spec.dsn_env.is_none()
    {
        out.push(problem(
            "target.dsn_env",
            "missing: the environment variable holding the DSN clients use (failover and \
             restore drills reach the database)",
        ));
    }
}

/// A scenario that is no kind of drill, or several.
fn drill_kind_problem(s: &Scenario, why: NotOneDrill) -> Problem {
    match why {
        NotOneDrill::Several => problem(
            if s.backup_health.is_some() {
                "backup_health"
            } else {
                "restore"
            },
            "a scenario is one drill: a failover drill (`fault` and `recovery`), a restore \
             drill (`restore`) or a backup-health drill (`backup_health`)",
        ),
        NotOneDrill::NoRecovery => problem(
            "recovery",
            "missing: a failover drill needs `recovery` (promote, wait or command)",
        ),
        NotOneDrill::NoFault => problem(
            "fault",
            "missing: a failover drill needs `fault` (kill, stop, pause or command)",
        ),
        NotOneDrill::Nothing => problem(
            "fault",
            "missing: a failover drill needs `fault` and `recovery`; a restore drill needs \
             `restore`; a backup-health drill needs `backup_health`",
        ),
    }
}

/// A backup-health drill reads AWS Backup: its target is `aws-backup`, its one target the
/// recovery-point age (`rpo`); failed or missing jobs always fail it.
fn check_backup_health(s: &Scenario, h: &BackupHealth, out: &mut Vec<Problem>) {
    if !matches!(s.target, Target::AwsBackup(_)) {
        out.push(problem(
            "target.type",
            "a `backup_health` drill reads AWS Backup: use `type: aws-backup`",
        ));
    }
    if h.window.get() < std::time::Duration::from_secs(3600) {
        out.push(problem("backup_health.window", "at least 1h"));
    }
    if let Some(e) = h.expect_every
        && (e.get().is_zero() || e.get() > h.window.get())
    {
        out.push(problem(
            "backup_health.expect_every",
            format!(
                "must be longer than 0s and at most the window ({})",
                h.window
            ),
        ));
    }
    if !s.guardrails.is_empty() {
        out.push(problem(
            "guardrails",
            "guardrails watch the probes of a failover drill; a backup-health drill has none",
        ));
    }
    let t = &s.targets;
    for (set, name) in [
        (t.rto.is_some(), "rto"),
        (t.max_lost_writes.is_some(), "max_lost_writes"),
        (t.min_availability_pct.is_some(), "min_availability_pct"),
        (t.checksums.is_some(), "checksums"),
    ] {
        if set {
            out.push(problem(
                &format!("targets.{name}"),
                "a backup-health drill measures the recovery-point age: state `rpo`",
            ));
        }
    }
    if t.rpo.is_none() {
        out.push(problem(
            "targets.rpo",
            "missing: the largest recovery-point age allowed (e.g. 26h for daily backups)",
        ));
    }
}

fn check_environment(s: &Scenario, out: &mut Vec<Problem>) {
    match (&s.target, s.environment) {
        (Target::AwsRds(_), None) if s.posture.is_some() => {}
        (Target::Postgres(_) | Target::AwsRds(_) | Target::Patroni(_), None) => out.push(problem(
            "environment",
            "missing: a drill on an existing database must say where it runs (production, staging, development or test)",
        )),
        (
            Target::PostgresSandbox(_) | Target::PatroniSandbox(_),
            Some(Environment::Production),
        ) => out.push(problem(
            "environment",
            "a sandbox that firedrill builds is never production",
        )),
        (
            Target::PostgresSandbox(_) | Target::PatroniSandbox(_),
            None | Some(Environment::Staging | Environment::Development | Environment::Test),
        )
        | (Target::Postgres(_) | Target::AwsRds(_) | Target::Patroni(_), Some(_))
        | (Target::AwsBackup(_) | Target::Pgbackrest(_), _) => {}
    }
}

fn check_guardrails(s: &Scenario, out: &mut Vec<Problem>) {
    let interval = s.probes.interval.get();
    for (i, g) in s.guardrails.iter().enumerate() {
        let at = |key: &str| format!("guardrails[{i}].{key}");
        if let Guardrail::CloudwatchAlarm { alarm, every, .. } = g {
            if alarm.is_empty() {
                out.push(problem(&at("alarm"), "empty alarm name"));
            }
            if every.get() < std::time::Duration::from_millis(100) {
                out.push(problem(
                    &at("every"),
                    "at least 100ms (each read is an API call)",
                ));
            }
            // `for` may be 0: the first read in ALARM trips it.
            continue;
        }
        if g.window() < interval {
            out.push(problem(
                &at("for"),
                format!(
                    "shorter than the probe interval ({}): the condition cannot be seen to hold",
                    s.probes.interval
                ),
            ));
        }
        match g {
            Guardrail::ErrorRate { above_pct, .. } if !(0.0..100.0).contains(above_pct) => out
                .push(problem(
                    &at("above_pct"),
                    "must be at least 0 and below 100",
                )),
            Guardrail::Command {
                run,
                every,
                window,
                timeout,
            } => {
                if run.is_empty() {
                    out.push(problem(&at("run"), "empty command"));
                }
                if every.get() > window.get() {
                    out.push(problem(
                        &at("every"),
                        format!("runs less often than `for` ({window}) lasts"),
                    ));
                }
                if timeout.get() > window.get() {
                    out.push(problem(
                        &at("timeout"),
                        format!("longer than `for` ({window}): one hung run would hide it"),
                    ));
                }
            }
            Guardrail::ErrorRate { .. }
            | Guardrail::P99Latency { .. }
            | Guardrail::CloudwatchAlarm { .. } => {}
        }
    }
}

/// Checks on the target that hold for every kind of drill.
fn check_target_common(s: &Scenario, out: &mut Vec<Problem>) {
    match &s.target {
        Target::PostgresSandbox(spec) => {
            super::validate_zones::check_layout(spec, out);
            for key in spec.settings.keys() {
                if RESERVED_SETTINGS.contains(&key.as_str()) {
                    out.push(problem(
                        &format!("target.settings.{key}"),
                        format!("{key} is managed by the sandbox and cannot be set"),
                    ));
                }
            }
        }
        Target::PatroniSandbox(spec) => {
            if !(2..=5).contains(&spec.members) {
                out.push(problem(
                    "target.members",
                    "a Patroni sandbox has 2 to 5 members",
                ));
            }
            if let Some(p) = spec.dcs.timers_problem() {
                out.push(problem("target.dcs", p));
            }
            for key in spec.settings.keys() {
                if RESERVED_SETTINGS.contains(&key.as_str()) {
                    out.push(problem(
                        &format!("target.settings.{key}"),
                        format!("{key} is managed by Patroni and cannot be set"),
                    ));
                }
            }
        }
        Target::Patroni(spec) => {
            check_env_name("target.api_env", &spec.api_env, "the URLs themselves", out)
        }
        Target::Postgres(_) => {}
        Target::AwsRds(spec) => match (&spec.instance, &spec.cluster) {
            (Some(_), Some(_)) => out.push(problem(
                "target.cluster",
                "give `instance` or `cluster`, not both",
            )),
            (Some(_), None) if s.fleet.is_some() => out.push(problem(
                "target.instance",
                "a fleet drill selects its instances by `fleet.tags`; leave `instance` out",
            )),
            (None, None) if s.fleet.is_some() => {}
            (None, None) => out.push(problem(
                "target.instance",
                "missing: the DB instance (`instance`) or cluster (`cluster`) to drill",
            )),
            (Some(_), None) | (None, Some(_)) => {}
        },
        Target::Pgbackrest(spec) => {
            if spec.stanza.is_empty()
                || !spec
                    .stanza
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                out.push(problem(
                    "target.stanza",
                    "a stanza name: letters, digits, `-`, `_` and `.`",
                ));
            }
            if !(1..=256).contains(&spec.repo) {
                out.push(problem(
                    "target.repo",
                    "pgBackRest repositories are 1 to 256",
                ));
            }
        }
        Target::AwsBackup(spec) => {
            for (i, arn) in spec.resources.iter().enumerate() {
                if !arn.starts_with("arn:") {
                    out.push(problem(
                        &format!("target.resources[{i}]"),
                        "must be a resource's ARN (arn:aws:rds:REGION:ACCOUNT:db:NAME)",
                    ));
                }
            }
        }
    }
    if let Some(url) = s.target.endpoint_url()
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        out.push(problem(
            "target.endpoint_url",
            "must be a URL (https://...)",
        ));
    }
    if let Some(dsn_env) = s.target.dsn_env() {
        check_env_name("target.dsn_env", dsn_env, "the DSN itself", out);
    }
}

/// A key that names an environment variable (a DSN's, a URL list's), never the secret itself.
fn check_env_name(key: &str, name: &str, value: &str, out: &mut Vec<Problem>) {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        out.push(problem(
            key,
            format!("must name an environment variable (letters, digits, `_`), not hold {value}"),
        ));
    }
}

/// Settings the sandbox sets itself; overriding them would break the topology or the drill.
const RESERVED_SETTINGS: &[&str] = &[
    "port",
    "listen_addresses",
    "unix_socket_directories",
    "primary_conninfo",
    "synchronous_standby_names",
    "hot_standby",
    "archive_mode",
    "archive_command",
];

/// Probe, workload and observation timings any drill with probes needs.
fn check_probes(s: &Scenario, out: &mut Vec<Problem>) {
    let p = &s.probes;
    if p.interval.get() < Dur::from_millis(1).get() {
        out.push(problem("probes.interval", "must be at least 1ms"));
    }
    if p.timeout.get().is_zero() {
        out.push(problem("probes.timeout", "must be greater than zero"));
    }
    if s.workload.timeout.get().is_zero() {
        out.push(problem("workload.timeout", "must be greater than zero"));
    }
    if s.steady_state.duration.get() < p.interval.get() {
        out.push(problem(
            "steady_state.duration",
            "must be at least one probe interval, or nothing is measured",
        ));
    }
    let obs = &s.observe;
    if obs.stability.get() >= obs.duration.get() {
        out.push(problem(
            "observe.stability",
            format!(
                "the stability window ({}) must be shorter than the observation ({})",
                obs.stability, obs.duration
            ),
        ));
    }
}

fn check_timing(s: &Scenario, fault: &Fault, recovery: &Recovery, out: &mut Vec<Problem>) {
    check_probes(s, out);
    let obs = &s.observe;
    let recovery_after = match recovery {
        Recovery::Promote { after, .. } | Recovery::Command { after, .. } => Some(*after),
        Recovery::Wait => None,
    };
    if let Some(after) = recovery_after
        && after.get() + obs.stability.get() >= obs.duration.get()
    {
        out.push(problem(
            "observe.duration",
            format!(
                "observation ({}) ends before recovery (after {}) plus stability ({}) can be seen",
                obs.duration, after, obs.stability
            ),
        ));
    }
    if let Fault::Pause { duration, .. } = fault
        && duration.get() + obs.stability.get() >= obs.duration.get()
    {
        out.push(problem(
            "observe.duration",
            format!(
                "observation ({}) ends before the pause ({duration}) plus stability ({}) is over",
                obs.duration, obs.stability
            ),
        ));
    }
}

fn check_failover_targets(t: &Targets, out: &mut Vec<Problem>) {
    if t.checksums.is_some() {
        out.push(problem(
            "targets.checksums",
            "checksums are proven by restore drills; a failover drill proves its data with the \
             write ledger (max_lost_writes)",
        ));
    }
    if t.rto.is_none()
        && t.rpo.is_none()
        && t.max_lost_writes.is_none()
        && t.min_availability_pct.is_none()
    {
        out.push(problem(
            "targets",
            "state at least one target (rto, rpo, max_lost_writes, min_availability_pct): \
             a drill must say what it proves",
        ));
    }
    if let Some(a) = t.min_availability_pct
        && !(0.0..=100.0).contains(&a)
    {
        out.push(problem(
            "targets.min_availability_pct",
            "must be between 0 and 100",
        ));
    }
}

pub(super) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}
