//! CloudWatch alarms, read by guardrails: a drill stops when the alarm that pages people fires.

use crate::client::Aws;
use crate::error::{AwsError, found};

impl Aws {
    /// The alarm's state: `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub async fn alarm_state(&self, name: &str) -> Result<String, AwsError> {
        let what = format!("CloudWatch alarm {name} in {}", self.region);
        let out = self
            .cloudwatch
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("cloudwatch:DescribeAlarms", &what, e))?;
        let state = out
            .metric_alarms()
            .first()
            .and_then(|a| a.state_value())
            .or_else(|| out.composite_alarms().first().and_then(|a| a.state_value()))
            .map(|s| s.as_str().to_owned());
        found(state, "cloudwatch:DescribeAlarms", what)
    }
}
