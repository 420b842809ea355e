//! `guardrails:` as written in YAML: stop conditions a failover drill checks every probe
//! interval (an error rate, a p99 latency, an operator's command, a CloudWatch alarm).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::argv::Argv;
use super::duration::Dur;
use super::tagged::tagged_enum;

tagged_enum! {
    /// A stop condition, checked every probe interval from the start of the steady state to the end
    /// of the observation.
    #[derive(Clone, Debug, Serialize, JsonSchema)]
    #[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum Guardrail {
        /// More than `above_pct` percent of the probes that ended in the last `for` failed.
        ErrorRate {
            #[serde(default)]
            probe: ProbeSide,
            above_pct: f64,
            #[serde(rename = "for")]
            window: Dur,
        },
        /// The p99 latency of the probes that ended in the last `for` (a failed probe counts at the
        /// time it took) is above `above`.
        P99Latency {
            #[serde(default)]
            probe: ProbeSide,
            above: Dur,
            #[serde(rename = "for")]
            window: Dur,
        },
        /// An external check (a health endpoint, an alert query) exits non-zero at every run for
        /// `for`. It runs every `every`, each run limited to `timeout` (which counts as non-zero).
        Command {
            run: Argv,
            #[serde(rename = "for")]
            window: Dur,
            #[serde(default = "default_guard_every")]
            every: Dur,
            #[serde(default = "default_guard_timeout")]
            timeout: Dur,
        },
        /// A CloudWatch alarm (the one that pages people) is in `ALARM` at every read for `for`;
        /// read every `every` (`for: 0s` trips at the first read in ALARM).
        CloudwatchAlarm {
            alarm: String,
            #[serde(rename = "for", default)]
            window: Dur,
            #[serde(default = "default_alarm_every")]
            every: Dur,
            #[serde(default)]
            region: Option<String>,
            #[serde(default)]
            profile: Option<String>,
            #[serde(default)]
            endpoint_url: Option<String>,
        },
    }
}

fn default_alarm_every() -> Dur {
    Dur::from_secs(5)
}

fn default_guard_every() -> Dur {
    Dur::from_millis(500)
}
fn default_guard_timeout() -> Dur {
    Dur::from_secs(5)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeSide {
    #[default]
    Write,
    Read,
}

impl Guardrail {
    pub fn window(&self) -> std::time::Duration {
        match self {
            Guardrail::ErrorRate { window, .. }
            | Guardrail::P99Latency { window, .. }
            | Guardrail::Command { window, .. }
            | Guardrail::CloudwatchAlarm { window, .. } => window.get(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Guardrail::ErrorRate {
                probe,
                above_pct,
                window,
            } => format!(
                "{} probe errors above {above_pct}% for {window}",
                probe.label()
            ),
            Guardrail::P99Latency {
                probe,
                above,
                window,
            } => format!("{} probe p99 above {above} for {window}", probe.label()),
            Guardrail::Command { run, window, .. } => {
                format!("`{}` failing for {window}", super::argv::shell_words(run))
            }
            Guardrail::CloudwatchAlarm { alarm, window, .. } => {
                format!("CloudWatch alarm {alarm} in ALARM for {window}")
            }
        }
    }
}

impl ProbeSide {
    pub fn label(self) -> &'static str {
        match self {
            ProbeSide::Write => "write",
            ProbeSide::Read => "read",
        }
    }
}
