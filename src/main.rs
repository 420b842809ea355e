//! The `firedrill` command: argument parsing and dispatch to the commands in [`cli`], which
//! print and return exit codes over the library. No drill logic lives here.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use cli::args::{Cli, Command, SchemaKind};
use cli::run::{Dest, Extra};
use firedrill::error::*;
use firedrill::finish::Destination;
use firedrill::{fleet_summary, plan, report, scenario, signing, store};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit_code(EXIT_PASS)
                }
                _ => exit_code(EXIT_INVALID),
            };
        }
    };
    match cli.command {
        Command::Validate { files } => cli::validate(&files),
        Command::Plan { file } => match scenario::load(&file) {
            Ok(l) => {
                print!("{}", plan::render(&l));
                exit_code(EXIT_PASS)
            }
            Err(e) => cli::scenario_error(&e),
        },
        Command::Schema { kind } => {
            let schema = match kind {
                SchemaKind::Scenario => scenario::json_schema(),
                SchemaKind::Report => report::json_schema(),
                SchemaKind::FleetSummary => fleet_summary::json_schema(),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("schema is JSON")
            );
            exit_code(EXIT_PASS)
        }
        Command::Run {
            file,
            out,
            format,
            sign_key,
            evidence,
            retain,
            junit,
            textfile,
            keep,
            confirm,
            shard,
            pushgateway,
            operator,
            no_control,
        } => {
            if sign_key.is_some() && out.is_none() && evidence.is_none() {
                eprintln!(
                    "error: --sign-key needs --out DIR or --evidence DIR to write the signature"
                );
                return exit_code(EXIT_INVALID);
            }
            let dest = match (out, evidence) {
                (Some(dir), _) => Some(Dest::Local(Destination::Dir(dir))),
                (None, Some(dir)) => match store::Location::parse(&dir.to_string_lossy()) {
                    Some(Ok(at)) => {
                        if retain < cli::args::AUDIT_YEAR {
                            let days = retain.as_secs_f64() / 86_400.0;
                            eprintln!(
                                "warning: --retain {}: this run's evidence can be deleted before \
                                 an audit of a 12-month SOC 2 Type II period reads it",
                                match days {
                                    1.0 => "1 day".to_owned(),
                                    d if d.fract() == 0.0 => format!("{d:.0} days"),
                                    d => format!("{d:.1} days"),
                                }
                            );
                        }
                        Some(Dest::S3 { at, retain })
                    }
                    Some(Err(e)) => {
                        eprintln!("error: --evidence {e}");
                        return exit_code(EXIT_INVALID);
                    }
                    None => Some(Dest::Local(Destination::Evidence(dir))),
                },
                (None, None) => None,
            };
            let extra = Extra {
                junit,
                textfile,
                keep,
                confirm,
                state_dir: cli.state_dir,
                shard,
                pushgateway,
                operator,
                no_control,
            };
            cli::run::run(&file, dest, format, sign_key.as_deref(), extra)
        }
        Command::Step {
            action,
            run,
            operator,
            text,
        } => cli::step::act(cli.state_dir, action, &run, operator, &text.join(" ")),
        Command::Recover {
            prune: true,
            older_than,
            ..
        } => cli::recover::prune(cli.state_dir, older_than),
        Command::Recover { journal, list, .. } => {
            cli::recover::recover(cli.state_dir, journal, list)
        }
        Command::Cleanup {
            drill,
            region,
            profile,
            endpoint_url,
            dry_run,
        } => {
            let options = firedrill_aws::Options {
                region,
                profile,
                endpoint_url,
                max_attempts: None,
            };
            cli::recover::cleanup(&options, drill.as_deref(), dry_run)
        }
        Command::Evidence {
            dir,
            from,
            to,
            expect,
            allowed_signers,
            out,
        } => cli::audit::evidence_summary(&dir, from, to, expect, allowed_signers.as_deref(), out),
        Command::Render { report, out } => cli::audit::render(&report, out),
        Command::Verify {
            dir,
            allowed_signers,
            scenarios,
        } => cli::audit::verify(&dir, &allowed_signers, scenarios.as_deref()),
        Command::Keygen { out, identity } => match signing::keygen(&out, &identity) {
            Ok(public) => {
                eprintln!(
                    "wrote {} (private, mode 0600) and {}",
                    out.display(),
                    signing::pub_path(&out).display()
                );
                eprintln!("auditors add this line to their allowed_signers file:");
                println!("{}", signing::allowed_signers_line(&identity, &public));
                exit_code(EXIT_PASS)
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit_code(EXIT_INVALID)
            }
        },
    }
}
