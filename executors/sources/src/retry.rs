//! Retrying transient faults with exponential backoff: the one policy
//! ([`Retry`]) and the one loop ([`Retry::run`]) of every fetcher that
//! talks HTTP — the `https://` fetcher around a whole download, and the
//! STAC and GBIF fetchers around each request ([`Retry::REQUESTS`]).

use crate::SourceError;
use crate::progress::note;
use crate::remote::Ctx;
use std::time::Duration;

/// How often and how patiently transient faults are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all (at least 1).
    pub attempts: u32,
    /// The wait before the first retry; doubled for each next one.
    pub first_delay: Duration,
    /// The longest wait (also caps `Retry-After`).
    pub max_delay: Duration,
}

impl Default for Retry {
    /// The `https://` fetcher's: 6 tries, 0.5 s doubling, at most 30 s.
    fn default() -> Self {
        Self {
            attempts: 6,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// What one try came to.
pub(crate) enum Attempt<T> {
    /// Done: the value, or an error no retry can mend.
    Done(Result<T, SourceError>),
    /// A transient fault, retried after `after` (a `Retry-After`) when
    /// given, else after the backoff.
    Transient {
        reason: String,
        after: Option<Duration>,
    },
}

impl Retry {
    /// The policy of the requests the STAC and GBIF fetchers send (JSON
    /// documents, assets, archives): 4 tries, 200 ms doubling, at most 10 s.
    pub(crate) const REQUESTS: Retry = Retry {
        attempts: 4,
        first_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(10),
    };

    /// The wait after failed try `attempt` (from 1): `after` when given,
    /// else the first delay doubled for each try before; at most the
    /// longest wait.
    fn delay(&self, attempt: u32, after: Option<Duration>) -> Duration {
        let backoff = self
            .first_delay
            .saturating_mul(1 << (attempt.saturating_sub(1)).min(16));
        after.unwrap_or(backoff).min(self.max_delay)
    }

    /// Runs `once` until it is done or its tries are spent, noting each
    /// retry (a line in the task's log); the last transient fault gives up
    /// as [`SourceError::Transient`] saying how many tries it took.
    pub(crate) async fn run<T, F, Fut>(&self, ctx: &Ctx, mut once: F) -> Result<T, SourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let attempts = self.attempts.max(1);
        let mut attempt = 1;
        loop {
            let (reason, after) = match once().await {
                Attempt::Done(result) => return result,
                Attempt::Transient { reason, .. } if attempt >= attempts => {
                    return Err(ctx.transient(format!("{reason} (gave up after {attempts} tries)")));
                }
                Attempt::Transient { reason, after } => (reason, after),
            };
            let delay = self.delay(attempt, after);
            note(&format!(
                "source `{}` ({}): {}; try {}/{attempts} in {:.1} s",
                ctx.name,
                ctx.url,
                ctx.scrub(&reason),
                attempt + 1,
                delay.as_secs_f64()
            ));
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_the_cap_and_retry_after_is_capped_too() {
        let r = Retry::REQUESTS;
        let waits: Vec<_> = (1..=8).map(|a| r.delay(a, None).as_millis()).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
        assert_eq!(r.delay(1, Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(r.delay(1, Some(Duration::from_secs(60))), r.max_delay);
        let d = Retry::default();
        assert_eq!(d.delay(1, None), Duration::from_millis(500));
        assert_eq!(d.delay(7, None), Duration::from_secs(30));
    }
}
