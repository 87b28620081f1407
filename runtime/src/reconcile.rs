//! The controller half of the crew's loop, apart from the reconciler half (kube-runtime's
//! split): this module owns scheduling, in-flight tracking, retries and backoff; the reconciler
//! (Picard) supplies `plan` (what an incident's state calls for, pure) and `run_step` (doing one
//! step). A failed step goes through [`error_policy`]: a transient error is retried with
//! exponential backoff up to the attempt limit; a permanent one (a 403, a missing
//! precondition) is not retried at all.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::CrewError;

/// How failed work is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry; it doubles with each further one.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Backoff {
    pub fn of(crew: &squad_config::settings::CrewSettings) -> Backoff {
        Backoff {
            initial: Duration::from_millis(crew.retry_initial_ms),
            max: Duration::from_millis(crew.retry_max_ms),
            max_attempts: crew.max_attempts,
        }
    }

    /// The delay after failed attempt `attempt` (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        doubled.min(self.max)
    }
}

/// What to do after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this long.
    RetryAfter(Duration),
    /// Stop: the error is permanent, or the attempts are spent.
    GiveUp(GiveUp),
}

/// Why work is not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// Retrying cannot help (see [`CrewError::is_transient`]).
    Permanent,
    /// The attempt limit is reached.
    AttemptsSpent,
}

/// The error policy: from the typed error and the attempt it ended, what happens next.
pub fn error_policy(error: &CrewError, attempt: u32, backoff: &Backoff) -> Next {
    if !error.is_transient() {
        Next::GiveUp(GiveUp::Permanent)
    } else if attempt >= backoff.max_attempts {
        Next::GiveUp(GiveUp::AttemptsSpent)
    } else {
        Next::RetryAfter(backoff.delay(attempt))
    }
}

/// Keyed work in flight: each key runs at most once at a time, its failed attempts are counted
/// until it succeeds, and every task it started is aborted when the controller is dropped (a
/// restarted owner never races work its predecessor was still doing).
pub struct Controller<K> {
    in_flight: HashSet<K>,
    attempts: HashMap<K, u32>,
    tasks: Vec<(K, AbortOnDrop)>,
    backoff: Backoff,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A finished attempt, as the controller judged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Attempt `attempt` failed; [`Next`] says what follows.
    Failed {
        attempt: u32,
        next: Next,
    },
}

impl<K: Hash + Eq + Clone> Controller<K> {
    pub fn new(backoff: Backoff) -> Self {
        Controller {
            in_flight: HashSet::new(),
            attempts: HashMap::new(),
            tasks: Vec::new(),
            backoff,
        }
    }

    pub fn is_running(&self, key: &K) -> bool {
        self.in_flight.contains(key)
    }

    /// Spawns `work` for `key` unless it is running already; `work` reports its own end (to
    /// [`Controller::finished`], through its owner's mailbox). Returns whether it started.
    pub fn start<F>(&mut self, key: K, work: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if !self.in_flight.insert(key.clone()) {
            return false;
        }
        self.tasks.retain(|(_, t)| !t.0.is_finished());
        self.tasks.push((key, AbortOnDrop(tokio::spawn(work))));
        true
    }

    /// Aborts the work in flight for every key `which` picks (its owner will not hear it end);
    /// returns how many were stopped.
    pub fn abort_where(&mut self, which: impl Fn(&K) -> bool) -> usize {
        let stopped = self
            .tasks
            .iter()
            .filter(|(k, t)| which(k) && !t.0.is_finished())
            .count();
        // Dropping an entry aborts its task.
        self.tasks.retain(|(k, _)| !which(k));
        self.in_flight.retain(|k| !which(k));
        self.attempts.retain(|k, _| !which(k));
        stopped
    }

    /// Records how work for `key` ended and decides what follows.
    pub fn finished(&mut self, key: &K, result: Result<(), &CrewError>) -> Outcome {
        self.in_flight.remove(key);
        match result {
            Ok(()) => {
                self.attempts.remove(key);
                Outcome::Done
            }
            Err(e) => {
                let n = self.attempts.entry(key.clone()).or_insert(0);
                *n += 1;
                let attempt = *n;
                let next = error_policy(e, attempt, &self.backoff);
                if matches!(next, Next::GiveUp(_)) {
                    self.attempts.remove(key);
                }
                Outcome::Failed { attempt, next }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortError;

    const BACKOFF: Backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
        max_attempts: 4,
    };

    fn unavailable() -> CrewError {
        CrewError::Port(PortError::Unavailable {
            what: "get pod".into(),
            detail: "503 Service Unavailable".into(),
        })
    }

    #[test]
    fn a_forbidden_write_is_not_retried() {
        let forbidden = CrewError::Port(PortError::Forbidden {
            what: "open PR".into(),
            detail: "403 Resource not accessible by integration".into(),
        });
        assert_eq!(
            error_policy(&forbidden, 1, &BACKOFF),
            Next::GiveUp(GiveUp::Permanent)
        );
    }

    #[test]
    fn an_unavailable_server_is_retried_with_doubling_capped_backoff_then_given_up() {
        let e = unavailable();
        let delays: Vec<Next> = (1..=4).map(|n| error_policy(&e, n, &BACKOFF)).collect();
        assert_eq!(
            delays,
            [
                Next::RetryAfter(Duration::from_millis(200)),
                Next::RetryAfter(Duration::from_millis(400)),
                Next::RetryAfter(Duration::from_millis(800)),
                Next::GiveUp(GiveUp::AttemptsSpent),
            ]
        );
        assert_eq!(BACKOFF.delay(10), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn work_runs_once_per_key_and_attempts_count_until_success() {
        let mut c = Controller::new(BACKOFF);
        assert!(c.start("diagnose", async {}));
        assert!(!c.start("diagnose", async {}), "already in flight");
        let e = unavailable();
        assert_eq!(
            c.finished(&"diagnose", Err(&e)),
            Outcome::Failed {
                attempt: 1,
                next: Next::RetryAfter(Duration::from_millis(200))
            }
        );
        assert!(!c.is_running(&"diagnose"));
        assert!(c.start("diagnose", async {}));
        assert!(matches!(
            c.finished(&"diagnose", Err(&e)),
            Outcome::Failed { attempt: 2, .. }
        ));
        assert!(c.start("diagnose", async {}));
        assert_eq!(c.finished(&"diagnose", Ok(())), Outcome::Done);
        // Success resets the count.
        assert!(c.start("diagnose", async {}));
        assert!(matches!(
            c.finished(&"diagnose", Err(&e)),
            Outcome::Failed { attempt: 1, .. }
        ));
    }
}
