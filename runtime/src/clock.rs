//! The incident clock: wall-clock timestamps derived from tokio time.
//!
//! `now()` is `epoch + (tokio::time::Instant::now() - start)`. In a simulation the tokio runtime is
//! started paused, so timers advance instantly and the timestamps follow the virtual time;
//! in the daemon the epoch is the real time at start-up.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Clock {
    /// The epoch, and the tokio instant it was read at (`None`: the clock stands still).
    inner: Arc<(DateTime<Utc>, Option<Instant>)>,
}

impl Clock {
    /// A clock that reads `epoch` now and moves with tokio time.
    pub fn starting_at(epoch: DateTime<Utc>) -> Clock {
        Clock {
            inner: Arc::new((epoch, Some(Instant::now()))),
        }
    }

    /// A clock that always reads `epoch`: a world that must not move on while it is compared
    /// with a copy of itself (a test loading a real apiserver from the model). `sleep` still
    /// waits on tokio time.
    pub fn frozen_at(epoch: DateTime<Utc>) -> Clock {
        Clock {
            inner: Arc::new((epoch, None)),
        }
    }

    /// A clock on real time.
    pub fn system() -> Clock {
        Clock::starting_at(Utc::now())
    }

    pub fn now(&self) -> DateTime<Utc> {
        let (epoch, Some(start)) = *self.inner else {
            return self.inner.0;
        };
        let elapsed = Instant::now().saturating_duration_since(start);
        epoch + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::zero())
    }

    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn virtual_hours_pass_instantly() {
        let epoch = DateTime::parse_from_rfc3339("2026-11-23T19:21:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::starting_at(epoch);
        clock.sleep(Duration::from_secs(3600)).await;
        assert_eq!((clock.now() - epoch).num_minutes(), 60);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frozen_clock_stands_still() {
        let epoch = DateTime::parse_from_rfc3339("2026-11-23T19:21:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::frozen_at(epoch);
        clock.sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), epoch);
    }
}
