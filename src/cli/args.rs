//! The command line as clap reads it: every command, its arguments and their help, with the
//! examples and exit codes `--help` shows. Parsing only; [`super`]'s commands act.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use firedrill::summary;

use super::Format;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  every target met
  1  the drill ran and missed a target
  2  invalid scenario or usage
  3  the drill was aborted (steady state not met, Ctrl-C, SIGTERM); the fault was rolled back
  4  environment error: a missing program or user, an unreachable target
  5  refused: the target is in use by another drill, has an unrecovered journal
     (run `firedrill recover`), or is production and was not confirmed";

#[derive(Parser)]
#[command(
    name = "firedrill",
    version,
    about = "Prove that a database survives failure: run a drill, measure RTO, RPO and lost writes.",
    after_help = EXIT_CODES,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Where drill journals and target locks live [default: $FIREDRILL_STATE_DIR, else
    /// $XDG_STATE_HOME/firedrill, else ~/.local/state/firedrill]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Check scenario files without touching anything; every problem is listed at once.
    #[command(after_help = "Examples:\n  firedrill validate scenarios/*.yaml")]
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print every step and side effect a drill would take (a dry run).
    #[command(after_help = "Examples:\n  firedrill plan scenarios/sandbox-failover-sync.yaml")]
    Plan { file: PathBuf },
    /// Run a drill and report what a client experienced.
    #[command(after_help = concat!(
        "Examples:\n",
        "  firedrill run scenarios/sandbox-failover-sync.yaml\n",
        "  firedrill run scenarios/sandbox-failover-async.yaml --out reports/ --format json\n",
        "  firedrill run scenarios/sandbox-failover-sync.yaml --out reports/x --sign-key firedrill_ed25519\n",
        "  firedrill run scenarios/rds-fleet-monthly-restore.yaml --confirm rds-fleet-monthly-restore \\\n",
        "    --out reports/fleet   # one drill per tagged instance: reports/fleet/<instance>/, summary.json\n",
        "  firedrill run fleet.yaml --shard 2/4 --evidence s3://drill-evidence/rds --sign-key KEY\n",
        "    # this runner's quarter of the fleet, into the shared S3 evidence store\n",
        "  firedrill run scenarios/aws-backup-posture.yaml --pushgateway http://pushgateway:9091\n",
        "  firedrill run scenarios/gameday-manual-failover.yaml --operator alice --out reports/gd\n",
        "    # a game day: you are the operator; others act with `firedrill step ... --run RUN_ID`\n\n",
        "Verify a signed report with OpenSSH alone:\n",
        "  ssh-keygen -Y verify -f allowed_signers -I firedrill -n firedrill-report \\\n",
        "    -s reports/x/report.json.sig < reports/x/report.json\n\n",
        "Ctrl-C or SIGTERM aborts: the fault is rolled back, the sandbox removed, and the report\n",
        "says aborted; a second Ctrl-C skips waiting. Every side effect is journaled first, so a\n",
        "drill that was killed outright is undone by `firedrill recover`.\n\n",
        "A scenario with `environment: production` runs only with --confirm NAME (its name) or\n",
        "after the name is typed at a terminal.\n\n",
        "Exit codes:\n  0 every target met, 1 a target missed, 2 invalid scenario or usage,\n",
        "  3 drill aborted, 4 environment error (missing program, unreachable target),\n",
        "  5 refused (target in use, unrecovered journal, production not confirmed)"
    ))]
    Run {
        file: PathBuf,
        /// Write the report to DIR/report.json (DIR is created if missing).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// What to print on stdout when the drill ends.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Sign the report with this OpenSSH Ed25519 key: report.json.sig beside report.json.
        #[arg(long, value_name = "KEY")]
        sign_key: Option<PathBuf>,
        /// Add the signed report to the hash chain of an evidence directory, in
        /// DIR/NNNNNN-<scenario>/, or of an S3 evidence store, s3://BUCKET/PREFIX (versioning
        /// and Object Lock required; needs --sign-key).
        #[arg(
            long,
            value_name = "DIR",
            conflicts_with = "out",
            requires = "sign_key"
        )]
        evidence: Option<PathBuf>,
        /// How long every object written to an S3 evidence store stays locked (COMPLIANCE
        /// mode): a 12-month audit window plus slack by default. At least 1 day; below 365
        /// days a warning (SOC 2 Type II periods run 3 to 12 months).
        #[arg(long, value_name = "DURATION", default_value = "400days", value_parser = retention)]
        retain: std::time::Duration,
        /// Also write the JUnit XML (one test case per target) to FILE, for CI.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Also write Prometheus metrics to FILE, atomically, for node_exporter's textfile
        /// collector (e.g. /var/lib/node_exporter/textfile/firedrill-NAME.prom).
        #[arg(long, value_name = "FILE")]
        textfile: Option<PathBuf>,
        /// Keep every sandbox and backup the drill built, whatever the outcome (overrides the
        /// scenario's `cleanup`); their directories are printed.
        #[arg(long)]
        keep: bool,
        /// Run a production scenario unattended: NAME must be the scenario's name.
        #[arg(long, value_name = "NAME")]
        confirm: Option<String>,
        /// Run only shard INDEX (from 0) of COUNT of a fleet's selection, e.g. 2/4; the same
        /// instances every time. Default: $JOB_COMPLETION_INDEX of $FIREDRILL_SHARDS (a
        /// Kubernetes Indexed Job), else the whole fleet.
        #[arg(long, value_name = "INDEX/COUNT", value_parser = firedrill::shard::Shard::parse)]
        shard: Option<firedrill::shard::Shard>,
        /// Also push the metrics of --textfile to a Prometheus Pushgateway at URL, grouped by
        /// job="firedrill" and scenario (and instance, for a fleet's members).
        #[arg(long, value_name = "URL")]
        pushgateway: Option<String>,
        /// Game days: the name actions typed at this terminal are recorded under [default:
        /// $USER].
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
        /// Game days: no control file, so `firedrill step` cannot reach the drill (only this
        /// terminal can act).
        #[arg(long)]
        no_control: bool,
    },
    /// Act in a running game day from any shell (a chat bot, a second terminal): acknowledge
    /// the step on the screen, say it is done, add a note to the timeline, or abort it (as
    /// Ctrl-C would: roll back, report aborted). Recorded with the time you acted.
    #[command(after_help = concat!(
        "Examples:\n",
        "  firedrill step ack --run bae792b1c028c1f9 --operator alice\n",
        "  firedrill step note --run bae792b1c028c1f9 \"promoted standby1 by hand\"\n",
        "  firedrill step done --run bae792b1c028c1f9\n",
        "  firedrill step abort --run bae792b1c028c1f9\n\n",
        "The run id is printed when a game day starts. At the game day's own terminal, type\n",
        "a, d, n TEXT or abort (then Enter) instead.\n\n",
        "Exit codes:\n  0 recorded, 2 usage (a note without text), 4 no such game day running\n",
        "  in this state directory"
    ))]
    Step {
        #[arg(value_enum)]
        action: StepAction,
        /// The game day's run id.
        #[arg(long, value_name = "RUN_ID")]
        run: String,
        /// Who acts [default: $USER].
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
        /// The note's text (for `note`).
        text: Vec<String>,
    },
    /// Undo what a killed drill left behind (a paused process, a sandbox, a fault), from its
    /// journal; prints what it did. Safe to run twice: the second run finds nothing to do.
    #[command(after_help = concat!(
        "Examples:\n",
        "  firedrill recover              # every journal with something left to undo\n",
        "  firedrill recover ~/.local/state/firedrill/journals/2026-11-23T10-00-00Z-1a2b3c4d.jsonl\n",
        "  firedrill recover --list       # show them, undo nothing\n",
        "  firedrill recover --prune      # remove finished journals and free locks over 30 days old\n\n",
        "Exit codes:\n  0 everything undone (or nothing to undo), 4 an undo failed (it stays in the\n",
        "  journal; fix the cause and run recover again), 5 the journal's drill is still running"
    ))]
    Recover {
        /// One journal; default: every journal in the state directory with pending effects.
        journal: Option<PathBuf>,
        /// List what would be undone, and undo nothing.
        #[arg(long)]
        list: bool,
        /// Remove journals with nothing left to undo and lock files no drill holds, last
        /// written at least --older-than ago (never a journal with a pending effect).
        #[arg(long, conflicts_with_all = ["journal", "list"])]
        prune: bool,
        /// How old a file must be for --prune (e.g. 30d, 12h).
        #[arg(long, value_name = "AGE", default_value = "30d", requires = "prune",
              value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
    },
    /// Find and delete AWS resources drills created and did not remove (RDS instances and
    /// snapshots, FIS experiment templates, tagged firedrill:drill). Credentials come from the
    /// usual AWS chain.
    #[command(after_help = concat!(
        "Examples:\n",
        "  firedrill cleanup --region eu-west-1 --dry-run     # list every drill's leftovers\n",
        "  firedrill cleanup --region eu-west-1 --drill 1a2b3c4d5e6f7a8b\n\n",
        "Exit codes:\n  0 nothing left (or --dry-run), 4 an AWS error (the message names the IAM\n",
        "  action that was denied)"
    ))]
    Cleanup {
        /// Only this drill's resources (its run id, as in its report); default: every drill's.
        #[arg(long, value_name = "RUN_ID")]
        drill: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// A profile of ~/.aws/config (SSO and credential_process included).
        #[arg(long)]
        profile: Option<String>,
        /// Another endpoint (a VPC endpoint; moto server in tests).
        #[arg(long, value_name = "URL")]
        endpoint_url: Option<String>,
        /// List them, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check every report of an evidence directory: signatures, the chain, each verdict
    /// recomputed from its measurements, and (format 3 on) every target and limit re-derived from
    /// the scenario the report embeds and every probe figure from its probe record. Exit 1 on
    /// any problem.
    #[command(
        after_help = "Examples:\n  firedrill verify evidence/ --allowed-signers allowed_signers\n  \
                      firedrill verify evidence/ --allowed-signers allowed_signers --scenarios scenarios/"
    )]
    Verify {
        dir: PathBuf,
        /// OpenSSH allowed_signers file (the keys whose signatures count).
        #[arg(long, value_name = "FILE")]
        allowed_signers: PathBuf,
        /// The scenario files at the audited commit: each report's scenario must be there,
        /// byte for byte.
        #[arg(long, value_name = "DIR")]
        scenarios: Option<PathBuf>,
    },
    /// Summarize an evidence directory over an audit period: every drill, verdicts, the
    /// RTO/RPO trend, and scheduled drills that did not happen. Exit 1 when a scheduled drill is
    /// missing or (with --allowed-signers) the evidence does not verify.
    #[command(after_help = concat!(
        "Examples:\n",
        "  firedrill evidence evidence/ --from 2026-01-01 --to 2026-12-31 --allowed-signers allowed_signers\n",
        "  firedrill evidence evidence/ --from 2026-07-01 --to 2026-09-30 --expect restore=monthly \\\n",
        "    --expect sandbox-failover-sync=quarterly --out q3-evidence\n\n",
        "Writes summary.md, summary.html and drills.csv into --out."
    ))]
    Evidence {
        dir: PathBuf,
        /// First day of the period (UTC), YYYY-MM-DD.
        #[arg(long, value_parser = summary::Date::parse)]
        from: summary::Date,
        /// Last day of the period (UTC), inclusive.
        #[arg(long, value_parser = summary::Date::parse)]
        to: summary::Date,
        /// KIND_OR_SCENARIO=monthly|quarterly|yearly; repeatable. Default: restore=monthly and
        /// failover=quarterly.
        #[arg(long, value_name = "WHAT=EVERY")]
        expect: Vec<summary::Expectation>,
        /// Verify signatures, chain and verdicts too (OpenSSH allowed_signers file).
        #[arg(long, value_name = "FILE")]
        allowed_signers: Option<PathBuf>,
        /// Directory for the summary files [default: firedrill-evidence-FROM-to-TO]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Rewrite the views of a report (Markdown, HTML, JUnit, Prometheus) from its report.json.
    #[command(after_help = "Examples:\n  firedrill render evidence/000007-nightly/report.json")]
    Render {
        /// A report.json; the views are written beside it unless --out is given.
        report: PathBuf,
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Write an Ed25519 key pair (OpenSSH format) for signing reports.
    #[command(after_help = concat!(
        "Examples:\n",
        "  firedrill keygen --out keys/firedrill_ed25519\n\n",
        "Prints the line auditors put in their allowed_signers file."
    ))]
    Keygen {
        /// Private key path (mode 0600); the public key goes to PATH.pub. Never overwritten.
        #[arg(long, value_name = "PATH", default_value = "firedrill_ed25519")]
        out: PathBuf,
        /// The principal named in the printed allowed_signers line.
        #[arg(long, default_value = "firedrill")]
        identity: String,
    },
    /// Print the JSON Schema of the scenario format (or of the report, or a fleet's summary).
    #[command(
        after_help = "Examples:\n  firedrill schema > scenario.schema.json\n  firedrill schema report"
    )]
    Schema {
        #[arg(value_enum, default_value_t = SchemaKind::Scenario)]
        kind: SchemaKind,
    },
}

/// What `firedrill step` does.
#[derive(Clone, Copy, ValueEnum)]
pub enum StepAction {
    /// I have seen the step (the incident is noticed).
    Ack,
    /// The step is done.
    Done,
    /// A note for the timeline.
    Note,
    /// Stop the game day: roll back, report aborted.
    Abort,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    Scenario,
    Report,
    /// A fleet run's summary.json.
    FleetSummary,
}

/// The shortest `--retain`: a shorter lock protects nothing an auditor will read.
const MIN_RETAIN: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Below this `--retain` warns: a 12-month SOC 2 Type II period outlives the lock.
pub const AUDIT_YEAR: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

fn retention(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < MIN_RETAIN {
        return Err(
            "evidence stays locked for at least 1 day (SOC 2 Type II periods run 3 to \
                    12 months; the default is 400days)"
                .into(),
        );
    }
    Ok(d)
}
