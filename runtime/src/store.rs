//! The incident store: one append-only event log per incident.
//!
//! [`RedbStore`] is the embedded durable default (one redb file under the data dir; every append
//! is a committed, fsynced transaction before it returns; accepted alerts go to an append-only
//! log of their own beside it, fsynced before each batch is answered). [`MemoryStore`] is for
//! tests and throwaway runs. Both publish each appended event to subscribers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use squad_protocols::{
    Alert, Author, EventKind, Incident, IncidentEvent, IncidentId, ProtocolError,
};
use tokio::sync::broadcast;

pub mod contract;
mod intake_log;

use intake_log::IntakeLog;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("incident store {path}: {message}")]
    Backend { path: String, message: String },
    #[error("incident {0} is not in the store")]
    NotFound(IncidentId),
    #[error("incident {incident}: stored event {seq} is unreadable: {message}")]
    Corrupt {
        incident: IncidentId,
        seq: u64,
        message: String,
    },
    /// This replica does not hold the lease the write needs (see `shards`): another acts on it.
    #[error("incident {incident}: not written: this replica does not hold lease {lease} now")]
    Fenced { incident: IncidentId, lease: String },
    #[error("incident {incident}: {source}")]
    Replay {
        incident: IncidentId,
        #[source]
        source: ProtocolError,
    },
}

/// An alert the daemon accepted: stored (and fsynced) before it was answered, then processed in
/// `seq` order into incidents.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Accepted {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub alert: Alert,
}

/// Accepted alerts written but perhaps not yet durable ([`IncidentStore::stage_alerts`]):
/// their seqs, and the ticket to hand [`IncidentStore::make_durable`] (none: durable already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedAlerts {
    pub seqs: Vec<u64>,
    pub ticket: Option<u64>,
}

/// An [`Accepted`] as it is written, borrowing its alert (the same JSON).
#[derive(serde::Serialize)]
pub struct AcceptedRef<'a> {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub alert: &'a Alert,
}

/// A lease as one replica holds it (see `shards`): the name, the replica, and the epoch the
/// Lease server gave this tenure. A store that replicas share records the latest tenure of
/// each lease ([`IncidentStore::raise_fence`]) and commits a fenced write only while the
/// writer's tenure is still that one, so a replica that lost a lease cannot write through it
/// even if its own clock says it still holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: String,
    pub holder: String,
    pub epoch: u64,
}

/// Where incidents live. Appends are atomic per incident and numbered from 0.
pub trait IncidentStore: Send + Sync + 'static {
    fn append(
        &self,
        incident: &IncidentId,
        at: DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<IncidentEvent, StoreError>;

    fn events(&self, incident: &IncidentId) -> Result<Vec<IncidentEvent>, StoreError>;

    /// Every incident id, oldest first.
    fn incident_ids(&self) -> Result<Vec<IncidentId>, StoreError>;

    /// Every appended event from now on.
    fn subscribe(&self) -> broadcast::Receiver<IncidentEvent>;

    /// Stores accepted alerts durably, in one transaction, numbering them in order.
    fn accept_alerts(&self, at: DateTime<Utc>, alerts: &[Alert]) -> Result<Vec<u64>, StoreError>;

    /// Accepted alerts with `seq` greater than `after` (all with `None`), oldest first.
    fn accepted_after(&self, after: Option<u64>, limit: usize)
    -> Result<Vec<Accepted>, StoreError>;

    /// [`accept_alerts`](Self::accept_alerts) in two steps, so that a caller can write the
    /// next batch while this one is being made durable: the alerts are numbered and written
    /// here, not yet durable nor visible to [`accepted_after`](Self::accepted_after), and
    /// [`make_durable`](Self::make_durable) finishes the job. The default commits at once.
    fn stage_alerts(
        &self,
        at: DateTime<Utc>,
        alerts: &[Alert],
    ) -> Result<StagedAlerts, StoreError> {
        Ok(StagedAlerts {
            seqs: self.accept_alerts(at, alerts)?,
            ticket: None,
        })
    }

    /// Makes the staged batches with these tickets durable (with every batch staged before
    /// them): each one's outcome, in order. A batch answered `Ok` here is as durable as one
    /// [`accept_alerts`](Self::accept_alerts) returned.
    fn make_durable(&self, tickets: &[u64]) -> Vec<Result<(), StoreError>> {
        tickets.iter().map(|_| Ok(())).collect()
    }

    /// The last accepted alert processed into incidents.
    fn intake_processed(&self) -> Result<Option<u64>, StoreError>;

    fn set_intake_processed(&self, seq: u64) -> Result<(), StoreError>;

    /// Records `fence` as its lease's current tenure (called by the holder each time the Lease
    /// server confirms it). A store one process writes alone keeps nothing (the default).
    fn raise_fence(&self, fence: &Fence) -> Result<(), StoreError> {
        let _ = fence;
        Ok(())
    }

    /// [`append`](Self::append), committed only while `fence` is its lease's current tenure
    /// (else [`StoreError::Fenced`]).
    fn append_fenced(
        &self,
        fence: &Fence,
        incident: &IncidentId,
        at: DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<IncidentEvent, StoreError> {
        let _ = fence;
        self.append(incident, at, author, kind)
    }

    /// [`set_intake_processed`](Self::set_intake_processed) under `fence`, as
    /// [`append_fenced`](Self::append_fenced).
    fn set_intake_processed_fenced(&self, fence: &Fence, seq: u64) -> Result<(), StoreError> {
        let _ = fence;
        self.set_intake_processed(seq)
    }

    /// The incident folded from its log.
    fn load(&self, incident: &IncidentId) -> Result<Incident, StoreError> {
        let events = self.events(incident)?;
        if events.is_empty() {
            return Err(StoreError::NotFound(incident.clone()));
        }
        Incident::replay(&events).map_err(|source| StoreError::Replay {
            incident: incident.clone(),
            source,
        })
    }
}

/// Incident ids in opening order, and each incident's log.
type Logs = (Vec<IncidentId>, BTreeMap<IncidentId, Vec<IncidentEvent>>);

/// An in-memory store, for tests and dry runs.
pub struct MemoryStore {
    logs: Mutex<Logs>,
    intake: Mutex<(Vec<Accepted>, Option<u64>)>,
    /// Each lease's latest tenure (holder, epoch), for replicas sharing this store in a test.
    fences: Mutex<BTreeMap<String, (String, u64)>>,
    tx: broadcast::Sender<IncidentEvent>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            logs: Mutex::new((Vec::new(), BTreeMap::new())),
            intake: Mutex::new((Vec::new(), None)),
            fences: Mutex::new(BTreeMap::new()),
            tx: broadcast::channel(1024).0,
        }
    }
}

impl MemoryStore {
    /// Runs `write` while `fence` is its lease's latest tenure (the fences' lock held).
    fn under<T>(
        &self,
        fence: &Fence,
        incident: &IncidentId,
        write: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let fences = self.fences.lock().map_err(|_| Self::poisoned())?;
        match fences.get(&fence.lease) {
            Some((holder, epoch)) if *holder == fence.holder && *epoch == fence.epoch => write(),
            _ => Err(StoreError::Fenced {
                incident: incident.clone(),
                lease: fence.lease.clone(),
            }),
        }
    }

    pub fn new() -> Self {
        Self::default()
    }

    fn poisoned() -> StoreError {
        StoreError::Backend {
            path: "memory".into(),
            message: "lock poisoned by a panic".into(),
        }
    }
}

impl IncidentStore for MemoryStore {
    fn append(
        &self,
        incident: &IncidentId,
        at: DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<IncidentEvent, StoreError> {
        let mut guard = self.logs.lock().map_err(|_| Self::poisoned())?;
        let (order, logs) = &mut *guard;
        let log = logs.entry(incident.clone()).or_insert_with(|| {
            order.push(incident.clone());
            Vec::new()
        });
        let event = IncidentEvent {
            incident: incident.clone(),
            seq: log.len() as u64,
            at,
            author,
            kind,
        };
        log.push(event.clone());
        drop(guard);
        let _ = self.tx.send(event.clone());
        Ok(event)
    }

    fn events(&self, incident: &IncidentId) -> Result<Vec<IncidentEvent>, StoreError> {
        let guard = self.logs.lock().map_err(|_| Self::poisoned())?;
        Ok(guard.1.get(incident).cloned().unwrap_or_default())
    }

    fn incident_ids(&self) -> Result<Vec<IncidentId>, StoreError> {
        let guard = self.logs.lock().map_err(|_| Self::poisoned())?;
        Ok(guard.0.clone())
    }

    fn subscribe(&self) -> broadcast::Receiver<IncidentEvent> {
        self.tx.subscribe()
    }

    fn accept_alerts(&self, at: DateTime<Utc>, alerts: &[Alert]) -> Result<Vec<u64>, StoreError> {
        let mut guard = self.intake.lock().map_err(|_| Self::poisoned())?;
        let mut seqs = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let seq = guard.0.len() as u64;
            guard.0.push(Accepted {
                seq,
                at,
                alert: alert.clone(),
            });
            seqs.push(seq);
        }
        Ok(seqs)
    }

    fn accepted_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Accepted>, StoreError> {
        let guard = self.intake.lock().map_err(|_| Self::poisoned())?;
        let from = after.map_or(0, |a| a as usize + 1);
        Ok(guard.0.iter().skip(from).take(limit).cloned().collect())
    }

    fn intake_processed(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.intake.lock().map_err(|_| Self::poisoned())?.1)
    }

    fn raise_fence(&self, fence: &Fence) -> Result<(), StoreError> {
        self.fences
            .lock()
            .map_err(|_| Self::poisoned())?
            .insert(fence.lease.clone(), (fence.holder.clone(), fence.epoch));
        Ok(())
    }

    fn append_fenced(
        &self,
        fence: &Fence,
        incident: &IncidentId,
        at: DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<IncidentEvent, StoreError> {
        self.under(fence, incident, || self.append(incident, at, author, kind))
    }

    fn set_intake_processed_fenced(&self, fence: &Fence, seq: u64) -> Result<(), StoreError> {
        self.under(fence, &IncidentId("intake".into()), || {
            self.set_intake_processed(seq)
        })
    }

    fn set_intake_processed(&self, seq: u64) -> Result<(), StoreError> {
        self.intake.lock().map_err(|_| Self::poisoned())?.1 = Some(seq);
        Ok(())
    }
}

/// Accepted alerts by seq (JSON of [`Accepted`]), as squad kept them before the intake log:
/// read once to move them into it.
const INTAKE: TableDefinition<u64, &[u8]> = TableDefinition::new("intake");
/// Small counters: `intake_processed`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
/// incident id -> (opening order, next seq)
const INCIDENTS: TableDefinition<&str, (u64, u64)> = TableDefinition::new("incidents");

/// redb's page cache per store.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The durable store: a redb file. An append returns only after its transaction is committed.
pub struct RedbStore {
    db: redb::Database,
    path: String,
    // Serialises appends so seq numbers are assigned without gaps.
    append_lock: Mutex<()>,
    /// Accepted alerts, beside the redb file (see [`intake_log`]).
    intake: IntakeLog,
    tx: broadcast::Sender<IncidentEvent>,
}

/// The intake log of the store at `path` (`incidents.redb` → `incidents.intake/`). A store an
/// earlier squad wrote kept accepted alerts in its `intake` table: those not yet processed move
/// into the log with their seqs (durably), then the table is emptied; numbering continues.
fn open_intake(
    db: &redb::Database,
    path: &Path,
    err: &dyn Fn(String) -> StoreError,
) -> Result<IntakeLog, StoreError> {
    let e = |e: &dyn std::fmt::Display| err(e.to_string());
    let (rows, count, next, processed) = {
        let txn = db.begin_read().map_err(|x| e(&x))?;
        let meta = txn.open_table(META).map_err(|x| e(&x))?;
        let processed = meta
            .get("intake_processed")
            .map_err(|x| e(&x))?
            .map(|v| v.value());
        let table = txn.open_table(INTAKE).map_err(|x| e(&x))?;
        let count = table.len().map_err(|x| e(&x))?;
        let next = table
            .last()
            .map_err(|x| e(&x))?
            .map_or(0, |(k, _)| k.value() + 1);
        let from = processed.map_or(0, |p| p + 1);
        let mut rows = Vec::new();
        for entry in table.range(from..).map_err(|x| e(&x))? {
            let (_, v) = entry.map_err(|x| e(&x))?;
            let row: Accepted = serde_json::from_slice(v.value()).map_err(|x| e(&x))?;
            rows.push(row);
        }
        (rows, count, next, processed)
    };
    let floor = rows
        .first()
        .map_or(next.max(processed.map_or(0, |p| p + 1)), |r| r.seq);
    let log = IntakeLog::open(
        &path.with_extension("intake"),
        floor,
        intake_log::SEGMENT_BYTES,
    )?;
    log.import(&rows)?;
    if count > 0 {
        let txn = db.begin_write().map_err(|x| e(&x))?;
        txn.delete_table(INTAKE).map_err(|x| e(&x))?;
        txn.open_table(INTAKE).map_err(|x| e(&x))?;
        txn.commit().map_err(|x| e(&x))?;
    }
    Ok(log)
}

impl RedbStore {
    /// Opens (or creates) the store file, creating its directory.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let shown = path.display().to_string();
        let err = |message: String| StoreError::Backend {
            path: shown.clone(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(format!("cannot create directory: {e}")))?;
        }
        // A bounded page cache: the intake log grows with every accepted alert, and redb's default
        // cache would grow the daemon's memory with it.
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| err(e.to_string()))?;
        // The store holds what squad read, as read (alert annotations, log lines): its owner's
        // alone, whatever the umask.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| err(format!("cannot make the store private (mode 0600): {e}")))?;
        }
        let txn = db.begin_write().map_err(|e| err(e.to_string()))?;
        txn.open_table(EVENTS).map_err(|e| err(e.to_string()))?;
        txn.open_table(INCIDENTS).map_err(|e| err(e.to_string()))?;
        txn.open_table(INTAKE).map_err(|e| err(e.to_string()))?;
        txn.open_table(META).map_err(|e| err(e.to_string()))?;
        txn.commit().map_err(|e| err(e.to_string()))?;
        let intake = open_intake(&db, path, &err)?;
        Ok(RedbStore {
            db,
            path: shown,
            append_lock: Mutex::new(()),
            intake,
            tx: broadcast::channel(1024).0,
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

impl IncidentStore for RedbStore {
    fn append(
        &self,
        incident: &IncidentId,
        at: DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<IncidentEvent, StoreError> {
        let _guard = self.append_lock.lock().map_err(|e| self.err(e))?;
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let event;
        {
            let mut incidents = txn.open_table(INCIDENTS).map_err(|e| self.err(e))?;
            let existing = incidents
                .get(incident.as_str())
                .map_err(|e| self.err(e))?
                .map(|v| v.value());
            let (order, seq) = match existing {
                Some(v) => v,
                None => (incidents.len().map_err(|e| self.err(e))?, 0),
            };
            event = IncidentEvent {
                incident: incident.clone(),
                seq,
                at,
                author,
                kind,
            };
            let bytes = serde_json::to_vec(&event).map_err(|e| self.err(e))?;
            let mut events = txn.open_table(EVENTS).map_err(|e| self.err(e))?;
            events
                .insert((incident.as_str(), seq), bytes.as_slice())
                .map_err(|e| self.err(e))?;
            incidents
                .insert(incident.as_str(), (order, seq + 1))
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))?;
        let _ = self.tx.send(event.clone());
        Ok(event)
    }

    fn events(&self, incident: &IncidentId) -> Result<Vec<IncidentEvent>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(EVENTS).map_err(|e| self.err(e))?;
        let range = table
            .range((incident.as_str(), 0)..=(incident.as_str(), u64::MAX))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in range {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            let seq = k.value().1;
            let event: IncidentEvent =
                serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                    incident: incident.clone(),
                    seq,
                    message: e.to_string(),
                })?;
            out.push(event);
        }
        Ok(out)
    }

    fn incident_ids(&self) -> Result<Vec<IncidentId>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(INCIDENTS).map_err(|e| self.err(e))?;
        let mut ids = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            ids.push((v.value().0, IncidentId(k.value().to_owned())));
        }
        ids.sort();
        Ok(ids.into_iter().map(|(_, id)| id).collect())
    }

    fn subscribe(&self) -> broadcast::Receiver<IncidentEvent> {
        self.tx.subscribe()
    }

    fn accept_alerts(&self, at: DateTime<Utc>, alerts: &[Alert]) -> Result<Vec<u64>, StoreError> {
        self.intake.append(at, alerts)
    }

    fn stage_alerts(
        &self,
        at: DateTime<Utc>,
        alerts: &[Alert],
    ) -> Result<StagedAlerts, StoreError> {
        if alerts.is_empty() {
            return Ok(StagedAlerts {
                seqs: Vec::new(),
                ticket: None,
            });
        }
        let staged = self.intake.stage(at, alerts)?;
        Ok(StagedAlerts {
            seqs: staged.seqs.collect(),
            ticket: Some(staged.ticket),
        })
    }

    fn make_durable(&self, tickets: &[u64]) -> Vec<Result<(), StoreError>> {
        let synced = tickets
            .iter()
            .max()
            .map_or(Ok(()), |&last| self.intake.sync_through(last));
        tickets
            .iter()
            .map(|&t| match &synced {
                Ok(()) => self.intake.take_outcome(t),
                Err(StoreError::Backend { path, message }) => Err(StoreError::Backend {
                    path: path.clone(),
                    message: message.clone(),
                }),
                Err(e) => Err(self.err(e)),
            })
            .collect()
    }

    fn accepted_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Accepted>, StoreError> {
        self.intake.read_after(after, limit)
    }

    fn intake_processed(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(META).map_err(|e| self.err(e))?;
        Ok(table
            .get("intake_processed")
            .map_err(|e| self.err(e))?
            .map(|v| v.value()))
    }

    fn set_intake_processed(&self, seq: u64) -> Result<(), StoreError> {
        {
            let _guard = self.append_lock.lock().map_err(|e| self.err(e))?;
            let txn = self.db.begin_write().map_err(|e| self.err(e))?;
            {
                let mut table = txn.open_table(META).map_err(|e| self.err(e))?;
                table
                    .insert("intake_processed", seq)
                    .map_err(|e| self.err(e))?;
            }
            txn.commit().map_err(|e| self.err(e))?;
        }
        // Durable first: a segment is deleted only once the watermark past it is on disk.
        self.intake.prune(seq)
    }
}

/// A store that aborts the process right after its n-th append — a `kill -9` at a chosen point,
/// for crash-recovery tests (`SQUAD_FAULT_ABORT_AFTER_EVENTS`).
pub struct AbortAfter<S> {
    inner: S,
    remaining: AtomicU64,
}

impl<S: IncidentStore> AbortAfter<S> {
    pub fn new(inner: S, appends: u64) -> Self {
        Self {
            inner,
            remaining: AtomicU64::new(appends),
        }
    }
}

impl<S: IncidentStore> IncidentStore for AbortAfter<S> {
    fn append(
        &self,
        incident: &IncidentId,
        at: DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<IncidentEvent, StoreError> {
        let event = self.inner.append(incident, at, author, kind)?;
        if self.remaining.fetch_sub(1, Ordering::SeqCst) <= 1 {
            std::process::abort();
        }
        Ok(event)
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
        self.inner.set_intake_processed(seq)
    }
}

#[cfg(test)]
mod tests;
