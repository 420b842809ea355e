//! A game day's conditions, asked of the running drill: the probes' own record for writes and
//! reads (the time is when the first probe of the lasting recovery succeeded, as the client saw
//! it), the target itself for its primary, a query, a command.
//!
//! Boundary: whether a condition holds and since when; what a step does with that is
//! [`super::steps`]'s.

use std::time::Duration;

use super::{Drill, Load};
use crate::measure::Sample;
use crate::probe::ProbeState;
use crate::scenario::Condition;

/// How long a query may take before the condition counts as not (yet) holding.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

impl Drill<'_, '_> {
    /// When `c` came to hold, if it holds now; `since` is the step's start (a probe from
    /// before it says nothing about the step). `Err` says why it could not be asked, which
    /// counts as not holding.
    pub(super) async fn holds(
        &mut self,
        c: &Condition,
        since: Duration,
        load: &Load,
    ) -> Result<Option<Duration>, String> {
        let now = || self.sink.t0.elapsed();
        match c {
            Condition::WritesRecovered => Ok(recovered(&load.write, since)),
            Condition::ReadsRecovered => Ok(recovered(&load.read, since)),
            Condition::PrimaryIs { node } => {
                let leads = self
                    .driver
                    .primary_is(node)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(leads.then(now))
            }
            Condition::Sql { query } => {
                let config = self.driver.client_config(QUERY_TIMEOUT);
                let client = super::phases::connect(&config).await?;
                let row =
                    tokio::time::timeout(QUERY_TIMEOUT, client.query_opt(query.as_str(), &[]))
                        .await
                        .map_err(|_| {
                            format!(
                                "no answer within {}",
                                humantime::format_duration(QUERY_TIMEOUT)
                            )
                        })?
                        .map_err(|e| crate::systems::sandbox::describe_pg_error(&e))?;
                let yes = match row {
                    Some(r) => r
                        .try_get::<_, Option<bool>>(0)
                        .map_err(|e| format!("the query's first column is not a boolean: {e}"))?
                        .unwrap_or(false),
                    None => false,
                };
                Ok(yes.then(now))
            }
            Condition::Command { run, timeout } => {
                let mut cmd = tokio::process::Command::new(&run[0]);
                cmd.args(&run[1..])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true);
                let status = tokio::time::timeout(timeout.get(), cmd.status())
                    .await
                    .map_err(|_| format!("still running after {timeout}"))?
                    .map_err(|e| format!("cannot run {}: {e}", run[0]))?;
                Ok(status.success().then(now))
            }
        }
    }
}

/// When the probe's current run of successes began (the end of its first probe), if it is
/// succeeding now and has probed since `since`.
fn recovered(state: &ProbeState, since: Duration) -> Option<Duration> {
    state.with_since(since, |samples| first_of_last_run(samples, since))
}

fn first_of_last_run(samples: &[Sample], since: Duration) -> Option<Duration> {
    let after: Vec<&Sample> = samples.iter().filter(|s| s.start >= since).collect();
    if !after.last()?.ok {
        return None;
    }
    let first = after.iter().rposition(|s| !s.ok).map_or(0, |i| i + 1);
    Some(after[first].end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(start: u64, ok: bool) -> Sample {
        Sample {
            start: Duration::from_millis(start),
            end: Duration::from_millis(start + 5),
            ok,
        }
    }

    #[test]
    fn recovery_is_the_first_success_that_lasted() {
        let since = Duration::from_millis(100);
        // Before the step: ignored. Then down, up, down, up, up.
        let samples = [
            s(90, true),
            s(100, false),
            s(110, true),
            s(120, false),
            s(130, true),
            s(140, true),
        ];
        assert_eq!(
            first_of_last_run(&samples, since),
            Some(Duration::from_millis(135))
        );
        assert_eq!(first_of_last_run(&samples[..4], since), None);
        // Never down since the step began: it held from the first probe.
        assert_eq!(
            first_of_last_run(&[s(100, true)], since),
            Some(Duration::from_millis(105))
        );
        assert_eq!(first_of_last_run(&[s(90, true)], since), None);
    }
}
