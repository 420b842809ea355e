//! Waiting on AWS: polling with backoff under an explicit deadline. A poll that errs with a
//! throttle keeps waiting (the SDK already retried it); any other error ends the wait.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::AwsError;

#[derive(Clone, Copy, Debug)]
pub struct Poll {
    pub first: Duration,
    pub max: Duration,
    pub deadline: Duration,
}

impl Poll {
    /// RDS creates and restores take minutes: poll every 5 s, backing off to 30 s.
    pub fn minutes(deadline: Duration) -> Poll {
        Poll {
            first: Duration::from_secs(5),
            max: Duration::from_secs(30),
            deadline,
        }
    }
}

/// Polls `probe` until it returns `Ok(Some(_))`; `Ok(None)` means not yet, with `last` the state
/// seen, for the deadline message.
pub async fn until<T, F, Fut>(
    what: &str,
    wanted: &str,
    poll: Poll,
    mut probe: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(Option<T>, String), AwsError>>,
{
    let start = Instant::now();
    let mut nap = poll.first;
    let mut last;
    loop {
        match probe().await {
            Ok((Some(v), _)) => return Ok(v),
            Ok((None, state)) => last = state,
            Err(AwsError::Throttled { .. }) => last = "throttled".into(),
            Err(e) => return Err(e),
        }
        let left = poll.deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(AwsError::Deadline {
                what: what.to_owned(),
                wanted: wanted.to_owned(),
                waited: format!("{:?}", poll.deadline),
                last,
            });
        }
        tokio::time::sleep(nap.min(left)).await;
        nap = (nap * 3 / 2).min(poll.max);
    }
}
