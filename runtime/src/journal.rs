//! The journal: appends to an incident's log and makes side effects happen exactly once.
//!
//! A side effect (an issue, a comment, a PR) is bracketed by `ActionStarted` and
//! `ActionCompleted` events under an idempotency key. After a crash:
//! - completed: the recorded outcome is returned, nothing is done;
//! - started but not completed: the forge is searched for the artifact's hidden marker first, and
//!   only if it is absent is the effect performed again.

use std::future::Future;
use std::sync::Arc;

use squad_protocols::{
    Action, Author, EventKind, Incident, IncidentEvent, IncidentId, IncidentState,
};

use crate::Clock;
use crate::ports::PortError;
use crate::store::{IncidentStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("incident {incident}: {action}: {source}")]
    Effect {
        incident: IncidentId,
        action: String,
        #[source]
        source: PortError,
    },
    #[error("incident {incident}: {source}")]
    Transition {
        incident: IncidentId,
        #[source]
        source: squad_protocols::ProtocolError,
    },
}

#[derive(Clone)]
pub struct Journal {
    store: Arc<dyn IncidentStore>,
    clock: Clock,
}

impl Journal {
    pub fn new(store: Arc<dyn IncidentStore>, clock: Clock) -> Self {
        Self { store, clock }
    }

    pub fn store(&self) -> &Arc<dyn IncidentStore> {
        &self.store
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn record(
        &self,
        incident: &IncidentId,
        author: Author,
        kind: EventKind,
    ) -> Result<IncidentEvent, StoreError> {
        self.store.append(incident, self.clock.now(), author, kind)
    }

    pub fn load(&self, incident: &IncidentId) -> Result<Incident, StoreError> {
        self.store.load(incident)
    }

    /// Moves the incident to `to` if the state machine allows it from where it is now.
    pub fn transition(
        &self,
        incident: &IncidentId,
        author: Author,
        to: IncidentState,
        reason: &str,
    ) -> Result<(), JournalError> {
        let current = self.store.load(incident)?.state;
        if current == to {
            return Ok(());
        }
        current
            .transition(to)
            .map_err(|source| JournalError::Transition {
                incident: incident.clone(),
                source,
            })?;
        self.record(
            incident,
            author,
            EventKind::StateChanged {
                from: current,
                to,
                reason: reason.into(),
            },
        )?;
        Ok(())
    }

    /// Performs a side effect once per incident and key.
    ///
    /// `find` looks for the effect's artifact (by its hidden marker) and is only called when a
    /// previous attempt started and did not record completion; `perform` does it.
    pub async fn once<Find, FindFut, Perform, PerformFut>(
        &self,
        incident: &IncidentId,
        author: Author,
        key: &str,
        description: &str,
        find: Find,
        perform: Perform,
    ) -> Result<Action, JournalError>
    where
        Find: FnOnce() -> FindFut,
        FindFut: Future<Output = Result<Option<Action>, PortError>>,
        Perform: FnOnce() -> PerformFut,
        PerformFut: Future<Output = Result<Action, PortError>>,
    {
        let state = self.store.load(incident)?;
        if let Some(done) = state.completed.get(key) {
            return Ok(done.clone());
        }
        let effect_err = |source: PortError| JournalError::Effect {
            incident: incident.clone(),
            action: description.to_owned(),
            source,
        };
        if state.started.contains(key) {
            if let Some(found) = find().await.map_err(effect_err)? {
                self.record(
                    incident,
                    author,
                    EventKind::ActionCompleted {
                        key: key.into(),
                        outcome: found.clone(),
                    },
                )?;
                return Ok(found);
            }
        } else {
            self.record(
                incident,
                author,
                EventKind::ActionStarted {
                    key: key.into(),
                    description: description.into(),
                },
            )?;
        }
        let outcome = perform().await.map_err(effect_err)?;
        self.record(
            incident,
            author,
            EventKind::ActionCompleted {
                key: key.into(),
                outcome: outcome.clone(),
            },
        )?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::MemoryStore;
    use squad_protocols::{Alert, IssueRef, WorkloadRef};

    fn journal() -> (Journal, IncidentId) {
        let j = Journal::new(Arc::new(MemoryStore::new()), Clock::system());
        let id = IncidentId("inc-t".into());
        j.record(
            &id,
            Author::System,
            EventKind::Opened {
                alert: Alert::firing("A"),
                workload: WorkloadRef::deployment("n", "w"),
            },
        )
        .unwrap();
        (j, id)
    }

    fn issue(n: u64) -> Action {
        Action::OpenedIssue {
            issue: IssueRef {
                number: n,
                url: String::new(),
            },
            title: "t".into(),
        }
    }

    #[tokio::test]
    async fn a_completed_effect_is_not_performed_again() {
        let (j, id) = journal();
        let calls = AtomicU32::new(0);
        for _ in 0..3 {
            let out = j
                .once(
                    &id,
                    Author::Picard,
                    "k",
                    "file issue",
                    || async { Ok(None) },
                    || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Ok(issue(1))
                    },
                )
                .await
                .unwrap();
            assert_eq!(out, issue(1));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_started_effect_is_looked_up_before_it_is_redone() {
        let (j, id) = journal();
        j.record(
            &id,
            Author::Picard,
            EventKind::ActionStarted {
                key: "k".into(),
                description: "d".into(),
            },
        )
        .unwrap();
        let out = j
            .once(
                &id,
                Author::Picard,
                "k",
                "file issue",
                || async { Ok(Some(issue(7))) },
                || async { Err(PortError::failed("perform", "must not run")) },
            )
            .await
            .unwrap();
        assert_eq!(out, issue(7));
        assert_eq!(j.load(&id).unwrap().completed.len(), 1);
    }

    #[tokio::test]
    async fn a_failed_effect_names_the_incident_and_action() {
        let (j, id) = journal();
        let err = j
            .once(
                &id,
                Author::Picard,
                "k",
                "file issue",
                || async { Ok(None) },
                || async {
                    Err(PortError::Forbidden {
                        what: "create issue".into(),
                        detail: "403".into(),
                    })
                },
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("inc-t") && err.contains("file issue") && err.contains("403"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn transitions_follow_the_state_machine() {
        let (j, id) = journal();
        j.transition(&id, Author::Picard, IncidentState::Diagnosing, "start")
            .unwrap();
        assert!(
            j.transition(&id, Author::Picard, IncidentState::Resolved, "x")
                .is_err()
        );
    }
}
