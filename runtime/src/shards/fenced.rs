//! The incident store as one replica may write it: an append about an incident whose shard this
//! replica does not hold now is refused, so a replica that lost a lease (and is still finishing a
//! step in flight) records nothing more, and the journal's exactly-once bracket stops its side
//! effect before it starts. Opening an incident, and the intake's bookkeeping on one (repeats,
//! a resolved alert), belong to the intake's lease instead; a person's word (an approval) is
//! written by whichever replica hears it.
//!
//! Two checks, so that neither a slow clock nor a long pause lets a former holder write: this
//! replica's own (it stops acting `margin` before the Lease server lets another take the lease),
//! and the store's: each write carries the tenure it is made under ([`Fence`]), and a store the
//! replicas share commits it only while that tenure is the lease's latest
//! ([`IncidentStore::raise_fence`], which the holder calls before it acts).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use squad_protocols::{Alert, Author, EventKind, IncidentEvent, IncidentId, WorkloadRef};
use tokio::sync::broadcast;

use super::{INTAKE, Ownership};
use crate::store::{Accepted, Fence, IncidentStore, StagedAlerts, StoreError};

pub struct FencedStore {
    inner: Arc<dyn IncidentStore>,
    ownership: Arc<Ownership>,
    workloads: DashMap<IncidentId, WorkloadRef>,
}

impl FencedStore {
    pub fn new(inner: Arc<dyn IncidentStore>, ownership: Arc<Ownership>) -> Arc<FencedStore> {
        Arc::new(FencedStore {
            inner,
            ownership,
            workloads: DashMap::new(),
        })
    }

    fn workload(&self, incident: &IncidentId) -> Result<Option<WorkloadRef>, StoreError> {
        if let Some(w) = self.workloads.get(incident) {
            return Ok(Some(w.clone()));
        }
        let first = self.inner.events(incident)?.into_iter().next();
        Ok(match first.map(|e| e.kind) {
            Some(EventKind::Opened { workload, .. }) => {
                self.workloads.insert(incident.clone(), workload.clone());
                Some(workload)
            }
            _ => None,
        })
    }

    fn fenced(&self, incident: &IncidentId, lease: &str) -> StoreError {
        StoreError::Fenced {
            incident: incident.clone(),
            lease: lease.to_owned(),
        }
    }
}

/// What the intake may write about any incident under its lease.
fn intake_kind(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Opened { .. }
            | EventKind::AlertRepeated { .. }
            | EventKind::AlertsRepeated { .. }
            | EventKind::AlertResolved { .. }
    )
}

impl IncidentStore for FencedStore {
    fn append(
        &self,
        incident: &IncidentId,
        at: DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<IncidentEvent, StoreError> {
        // A person's word (an approval) is taken by whichever replica hears it.
        if self.ownership.is_everything() || author == Author::Human {
            return self.inner.append(incident, at, author, kind);
        }
        let lease = if intake_kind(&kind) && self.ownership.holds(INTAKE) {
            INTAKE.to_owned()
        } else {
            let workload = match &kind {
                EventKind::Opened { workload, .. } => Some(workload.clone()),
                _ => self.workload(incident)?,
            };
            workload.map_or_else(|| INTAKE.to_owned(), |w| self.ownership.lease_of(&w))
        };
        // Refused here while this replica's clock says the lease is gone, and by the store
        // when another tenure of the lease began there.
        let Some(fence) = self.ownership.fence(&lease) else {
            return Err(self.fenced(incident, &lease));
        };
        self.inner.append_fenced(&fence, incident, at, author, kind)
    }

    fn events(&self, incident: &IncidentId) -> Result<Vec<IncidentEvent>, StoreError> {
        self.inner.events(incident)
    }

    fn incident_ids(&self) -> Result<Vec<IncidentId>, StoreError> {
        self.inner.incident_ids()
    }

    fn subscribe(&self) -> broadcast::Receiver<IncidentEvent> {
        self.inner.subscribe()
    }

    fn accept_alerts(&self, at: DateTime<Utc>, alerts: &[Alert]) -> Result<Vec<u64>, StoreError> {
        // Any replica accepts alerts: the intake log is shared, numbered by the store.
        self.inner.accept_alerts(at, alerts)
    }

    fn stage_alerts(
        &self,
        at: DateTime<Utc>,
        alerts: &[Alert],
    ) -> Result<StagedAlerts, StoreError> {
        self.inner.stage_alerts(at, alerts)
    }

    fn make_durable(&self, tickets: &[u64]) -> Vec<Result<(), StoreError>> {
        self.inner.make_durable(tickets)
    }

    fn accepted_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Accepted>, StoreError> {
        self.inner.accepted_after(after, limit)
    }

    fn intake_processed(&self) -> Result<Option<u64>, StoreError> {
        self.inner.intake_processed()
    }

    fn set_intake_processed(&self, seq: u64) -> Result<(), StoreError> {
        if self.ownership.is_everything() {
            return self.inner.set_intake_processed(seq);
        }
        let Some(fence) = self.ownership.fence(INTAKE) else {
            return Err(self.fenced(&IncidentId("intake".into()), INTAKE));
        };
        self.inner.set_intake_processed_fenced(&fence, seq)
    }

    fn raise_fence(&self, fence: &Fence) -> Result<(), StoreError> {
        self.inner.raise_fence(fence)
    }

    fn append_fenced(
        &self,
        fence: &Fence,
        incident: &IncidentId,
        at: DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<IncidentEvent, StoreError> {
        self.inner.append_fenced(fence, incident, at, author, kind)
    }

    fn set_intake_processed_fenced(&self, fence: &Fence, seq: u64) -> Result<(), StoreError> {
        self.inner.set_intake_processed_fenced(fence, seq)
    }
}
