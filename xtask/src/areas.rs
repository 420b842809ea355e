//! The suite's named parts, as nextest filtersets, in one list: the README's table, `cargo xtask
//! test AREA` and `cargo xtask areas` all read this, so a name means the same tests everywhere.
//!
//! Integration tests live in one binary (`it`), one module an area, so an area is mostly a set
//! of module paths; the crates below the engine are whole packages.

/// A named part of the suite.
pub struct Area {
    pub name: &'static str,
    pub what: &'static str,
    pub filter: &'static str,
}

/// Every area. `quick` is the tier that needs no database, cluster or namespace: the crates
/// below the engine, validation, schema, rendering, signing, the command line's errors and the
/// layout rules.
pub const AREAS: &[Area] = &[
    Area {
        name: "quick",
        what: "no database, cluster or namespace: model, evidence and aws crates, validation, \
               schema, rendering, signing, CLI errors, layout",
        filter: QUICK,
    },
    Area {
        name: "evidence",
        what: "signed reports, evidence chains (directories and S3 Object Lock), verify, journals",
        filter: "package(firedrill-evidence) | (binary(it) & test(/^(evidence|evidence_hostile|evidence_s3|signing|journal_compat|render)::/))",
    },
    Area {
        name: "zones",
        what: "network namespaces, zone outages, partitions, split brain",
        filter: "binary(it) & test(/^zones::/)",
    },
    Area {
        name: "patroni",
        what: "real Patroni and etcd clusters: host death, switchover, DCS outages",
        filter: "binary(it) & test(/^patroni(_dcs)?::/)",
    },
    Area {
        name: "restore",
        what: "pg_dump, point-in-time and pgBackRest restores, checksums, the restore game day",
        filter: "binary(it) & test(/^(restore|checksum|gameday::restore)::/)",
    },
    Area {
        name: "aws",
        what: "RDS, Aurora, FIS, AWS Backup, posture and cleanup against moto and the stand-ins",
        filter: "package(firedrill-aws) | (binary(it) & test(/^(aws|aws_backup_restore|aws_failover|aws_fis|aws_restore|backup_health|posture|standin)::/))",
    },
    Area {
        name: "gameday",
        what: "game days driven by firedrill step and at a real terminal under tmux",
        filter: "binary(it) & test(/^gameday::/)",
    },
    Area {
        name: "drills",
        what: "sandbox drills: failover, lost writes, guardrails, safety and recover, fleets",
        filter: "binary(it) & test(/^(drill|sandbox|lossy|edges|guardrails|safety|fleet|schedule)::/)",
    },
];

/// The quick tier. Tests are named one by one where a module mixes quick tests with drills.
const QUICK: &str = "package(firedrill-model) | package(firedrill-evidence) | package(firedrill-aws) | package(xtask) \
     | (package(firedrill) & kind(lib)) \
     | (binary(it) & (test(/^(bad_input|layout|fuzz|render|journal_compat|evidence_hostile)::/) \
         | test(/^cli::(validate_exit_codes_and_messages|usage_errors_exit_2_and_help_lists_exit_codes|plan_lists_the_side_effects|schema_is_json_and_matches_the_committed_copy|a_missing_postgres_installation_is_an_environment_error|an_unset_dsn_variable_is_an_environment_error_naming_it|an_unset_patroni_api_variable_is_an_environment_error_naming_it|a_bad_signing_key_is_refused_before_the_drill_starts|a_retention_under_a_day_is_refused_and_under_a_year_warned)$/)))";

pub fn find(name: &str) -> Option<&'static Area> {
    AREAS.iter().find(|a| a.name == name)
}

pub fn names() -> String {
    AREAS.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
}
