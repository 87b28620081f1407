//! The daemon's alert intake: durable acceptance, then grouping into incidents.
//!
//! Acceptance: a submission waits until its alerts are in the store's intake log (one
//! transaction, fsynced) and only then is answered — so an answered alert survives a `kill -9`.
//! Submissions arriving together are committed together (group commit): one fsync for many
//! alerts, which is what makes an alert storm cheap.
//!
//! Processing: one task reads the intake log in order and groups each alert by its key
//! ([`group_key`]): the first firing alert of a key opens an incident (through Picard, who
//! resolves the workload and runs the crew); repeats while it is open are counted and the count
//! is written to the incident's log at most every `repeat_note_seconds`; a resolved notification
//! is recorded and Picard is asked to look again; a firing alert for a resolved incident is a
//! regression (the incident moves to `reopened`). A watermark in the store marks what was
//! processed, so a restart continues where the last run stopped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use squad_agents::picard::pod_to_workload;
use squad_config::IntakeSettings;
use squad_protocols::{Alert, AlertStatus, Author, EventKind, IncidentId, IncidentState};
use squad_runtime::shards::{FencedStore, INTAKE, Ownership};
use squad_runtime::{Clock, IncidentStore, Journal};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::Squad;

/// The key that groups alerts into one incident.
pub fn group_key(alert: &Alert, group_by: &[String]) -> String {
    if !group_by.is_empty() {
        return group_by
            .iter()
            .map(|l| {
                let v = if l == "alertname" {
                    alert.name.as_str()
                } else {
                    alert.label(l).unwrap_or("")
                };
                format!("{l}={v}")
            })
            .collect::<Vec<_>>()
            .join(",");
    }
    if let Some(k) = &alert.group_key {
        return format!("group:{k}");
    }
    let workload = ["deployment", "statefulset", "daemonset", "workload"]
        .iter()
        .find_map(|l| alert.label(l).map(str::to_owned))
        .or_else(|| alert.label("pod").map(pod_to_workload))
        .or_else(|| {
            [
                ("cronjob", "cronjob"),
                ("job_name", "job"),
                ("horizontalpodautoscaler", "hpa"),
                ("persistentvolumeclaim", "pvc"),
            ]
            .iter()
            .find_map(|(l, prefix)| alert.label(l).map(|v| format!("{prefix}/{v}")))
        })
        .unwrap_or_default();
    format!(
        "alertname={},namespace={},workload={workload}",
        alert.name,
        alert.namespace().unwrap_or("")
    )
}

/// What happened to accepted alerts, for `/metrics` and the storm report.
#[derive(Debug, Default)]
pub struct IntakeStats {
    pub accepted: AtomicU64,
    pub processed: AtomicU64,
    pub opened: AtomicU64,
    pub deduplicated: AtomicU64,
    pub resolved: AtomicU64,
    pub regressions: AtomicU64,
    pub ignored: AtomicU64,
}

struct Submission {
    alerts: Vec<Alert>,
    reply: oneshot::Sender<Result<Vec<u64>, String>>,
}

/// The running intake.
pub struct Intake {
    tx: mpsc::Sender<Submission>,
    pub stats: Arc<IntakeStats>,
    stopping: Arc<AtomicBool>,
    wake: Arc<Notify>,
    writer: JoinHandle<()>,
    processor: JoinHandle<()>,
}

struct Group {
    incident: IncidentId,
    state: IncidentState,
    pending_repeats: u64,
    last_fingerprint: String,
}

/// Most alerts committed in one transaction.
const BATCH: usize = 4096;

impl Intake {
    pub fn start(
        store: Arc<dyn IncidentStore>,
        squad: Arc<Squad>,
        clock: Clock,
        settings: IntakeSettings,
    ) -> Result<Intake, crate::SquadError> {
        Intake::start_replica(store, squad, clock, settings, Ownership::everything(1))
    }

    /// Among replicas: every replica accepts alerts into the shared log; the one holding the
    /// intake's lease turns them into incidents (grouping needs one place), from the watermark
    /// the previous holder left, with its groups rebuilt from the store when it takes over.
    pub fn start_replica(
        store: Arc<dyn IncidentStore>,
        squad: Arc<Squad>,
        clock: Clock,
        settings: IntakeSettings,
        ownership: Arc<Ownership>,
    ) -> Result<Intake, crate::SquadError> {
        let store: Arc<dyn IncidentStore> = if ownership.is_everything() {
            store
        } else {
            FencedStore::new(store, ownership.clone())
        };
        let stats = Arc::new(IntakeStats::default());
        let wake = Arc::new(Notify::new());
        let stopping = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Submission>(1024);
        let writer = tokio::spawn(write_loop(
            rx,
            store.clone(),
            clock.clone(),
            stats.clone(),
            wake.clone(),
        ));
        let groups = rebuild(&store, &settings.group_by)?;
        let processor = tokio::spawn(process_loop(Processor {
            store,
            squad,
            clock,
            settings,
            stats: stats.clone(),
            wake: wake.clone(),
            stopping: stopping.clone(),
            groups,
            ownership,
        }));
        Ok(Intake {
            tx,
            stats,
            stopping,
            wake,
            writer,
            processor,
        })
    }

    /// Accepts alerts durably; returns their intake sequence numbers once they are committed.
    pub async fn submit(&self, alerts: Vec<Alert>) -> Result<Vec<u64>, String> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err("squad is shutting down".into());
        }
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Submission { alerts, reply })
            .await
            .map_err(|_| "the intake writer stopped".to_owned())?;
        rx.await
            .map_err(|_| "the intake writer stopped".to_owned())?
    }

    /// Whether the processor is still running.
    pub fn running(&self) -> bool {
        !self.processor.is_finished() && !self.writer.is_finished()
    }

    /// Stops intake: no new submissions; the processor finishes the alert in hand (a checkpoint)
    /// and writes its watermark. Accepted but unprocessed alerts stay in the log for the next
    /// start.
    pub async fn stop(self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        drop(self.tx);
        self.wake.notify_one();
        let _ = tokio::time::timeout(grace, self.writer).await;
        let _ = tokio::time::timeout(grace, self.processor).await;
    }
}

async fn write_loop(
    mut rx: mpsc::Receiver<Submission>,
    store: Arc<dyn IncidentStore>,
    clock: Clock,
    stats: Arc<IntakeStats>,
    wake: Arc<Notify>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut n = batch[0].alerts.len();
        while n < BATCH {
            match rx.try_recv() {
                Ok(s) => {
                    n += s.alerts.len();
                    batch.push(s);
                }
                Err(_) => break,
            }
        }
        // The alerts move into the commit; each submission keeps its count for its answer.
        let counts: Vec<usize> = batch.iter().map(|s| s.alerts.len()).collect();
        let alerts: Vec<Alert> = batch
            .iter_mut()
            .flat_map(|s| std::mem::take(&mut s.alerts))
            .collect();
        let store = store.clone();
        let at = clock.now();
        let result = tokio::task::spawn_blocking(move || store.accept_alerts(at, &alerts))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match result {
            Ok(seqs) => {
                stats
                    .accepted
                    .fetch_add(seqs.len() as u64, Ordering::Relaxed);
                let mut rest = seqs.as_slice();
                for (s, n) in batch.into_iter().zip(counts) {
                    let (mine, tail) = rest.split_at(n.min(rest.len()));
                    rest = tail;
                    let _ = s.reply.send(Ok(mine.to_vec()));
                }
                wake.notify_one();
            }
            Err(e) => {
                tracing::error!("intake: alerts not stored: {e}");
                for s in batch {
                    let _ = s
                        .reply
                        .send(Err(format!("the alert could not be stored: {e}")));
                }
            }
        }
    }
}

/// The groups of the incidents already in the store.
fn rebuild(
    store: &Arc<dyn IncidentStore>,
    group_by: &[String],
) -> Result<HashMap<String, Group>, crate::SquadError> {
    let mut groups = HashMap::new();
    for id in store.incident_ids()? {
        let Ok(inc) = store.load(&id) else {
            continue;
        };
        groups.insert(
            group_key(&inc.alert, group_by),
            Group {
                incident: id,
                state: inc.state,
                pending_repeats: 0,
                last_fingerprint: inc.alert.fingerprint.clone(),
            },
        );
    }
    Ok(groups)
}

struct Processor {
    store: Arc<dyn IncidentStore>,
    squad: Arc<Squad>,
    clock: Clock,
    settings: IntakeSettings,
    stats: Arc<IntakeStats>,
    wake: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    groups: HashMap<String, Group>,
    ownership: Arc<Ownership>,
}

async fn process_loop(mut p: Processor) {
    let mut events = p.store.subscribe();
    let flush_every = Duration::from_secs(p.settings.repeat_note_seconds.max(1));
    let mut last_flush = tokio::time::Instant::now();
    let mut holding = true;
    loop {
        if !p.ownership.holds(INTAKE) {
            if p.stopping.load(Ordering::SeqCst) {
                return;
            }
            holding = false;
            let _ = tokio::time::timeout(Duration::from_millis(500), p.wake.notified()).await;
            continue;
        }
        if !holding {
            // Taken over: another replica opened and moved incidents meanwhile.
            match rebuild(&p.store, &p.settings.group_by) {
                Ok(groups) => p.groups = groups,
                Err(e) => {
                    tracing::error!("intake: cannot read the incidents: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            holding = true;
        }
        // Keep group states current (Picard and Ralph move incidents on).
        loop {
            match events.try_recv() {
                Ok(e) => {
                    if let EventKind::StateChanged { to, .. } = e.kind {
                        for g in p.groups.values_mut().filter(|g| g.incident == e.incident) {
                            g.state = to;
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                    p.refresh_states();
                }
                Err(_) => break,
            }
        }
        let done = match p.store.intake_processed() {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("intake: cannot read the watermark: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let batch = p.store.accepted_after(done, 1000).unwrap_or_else(|e| {
            tracing::error!("intake: cannot read accepted alerts: {e}");
            Vec::new()
        });
        let mut last = None;
        for a in &batch {
            if p.stopping.load(Ordering::SeqCst) && last.is_some() {
                break;
            }
            p.process(&a.alert).await;
            p.stats.processed.fetch_add(1, Ordering::Relaxed);
            last = Some(a.seq);
        }
        if let Some(seq) = last
            && let Err(e) = p.store.set_intake_processed(seq)
        {
            tracing::error!("intake: cannot write the watermark: {e}");
        }
        if last_flush.elapsed() >= flush_every || p.stopping.load(Ordering::SeqCst) {
            p.flush_repeats();
            last_flush = tokio::time::Instant::now();
        }
        if p.stopping.load(Ordering::SeqCst) {
            return;
        }
        if batch.is_empty() {
            let _ = tokio::time::timeout(flush_every, p.wake.notified()).await;
        }
    }
}

impl Processor {
    fn journal(&self) -> Journal {
        Journal::new(self.store.clone(), self.clock.clone())
    }

    fn refresh_states(&mut self) {
        for g in self.groups.values_mut() {
            if let Ok(inc) = self.store.load(&g.incident) {
                g.state = inc.state;
            }
        }
    }

    async fn process(&mut self, alert: &Alert) {
        let key = group_key(alert, &self.settings.group_by);
        let journal = self.journal();
        match (self.groups.get_mut(&key), alert.status) {
            (Some(g), AlertStatus::Firing) if g.state == IncidentState::Resolved => {
                // A re-fire after resolution: the fix did not hold.
                let reason = format!(
                    "regression: {} fired again after the incident was resolved",
                    alert.name
                );
                match journal.transition(
                    &g.incident,
                    Author::System,
                    IncidentState::Reopened,
                    &reason,
                ) {
                    Ok(_) => {
                        g.state = IncidentState::Reopened;
                        self.stats.regressions.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::error!(incident = %g.incident, "regression not recorded: {e}")
                    }
                }
                self.squad.advance(&g.incident);
            }
            (Some(g), AlertStatus::Firing) => {
                g.pending_repeats += 1;
                g.last_fingerprint = alert.fingerprint.clone();
                self.stats.deduplicated.fetch_add(1, Ordering::Relaxed);
            }
            (Some(g), AlertStatus::Resolved) => {
                let _ = journal.record(
                    &g.incident,
                    Author::System,
                    EventKind::AlertResolved {
                        fingerprint: alert.fingerprint.clone(),
                    },
                );
                self.stats.resolved.fetch_add(1, Ordering::Relaxed);
                self.squad.advance(&g.incident);
            }
            (None, AlertStatus::Resolved) => {
                // Nothing was opened for it (or it predates this store): nothing to move on.
                self.stats.ignored.fetch_add(1, Ordering::Relaxed);
            }
            (None, AlertStatus::Firing) => match self.squad.ingest(alert.clone()).await {
                Ok(id) => {
                    let state = self
                        .store
                        .load(&id)
                        .map_or(IncidentState::Open, |i| i.state);
                    self.groups.insert(
                        key,
                        Group {
                            incident: id,
                            state,
                            pending_repeats: 0,
                            last_fingerprint: alert.fingerprint.clone(),
                        },
                    );
                    self.stats.opened.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(alert = %alert.name, "intake: incident not opened: {e}");
                    self.stats.ignored.fetch_add(1, Ordering::Relaxed);
                }
            },
        }
    }

    fn flush_repeats(&mut self) {
        let journal = self.journal();
        for g in self.groups.values_mut().filter(|g| g.pending_repeats > 0) {
            let kind = EventKind::AlertsRepeated {
                count: g.pending_repeats,
                last_fingerprint: g.last_fingerprint.clone(),
            };
            if journal.record(&g.incident, Author::System, kind).is_ok() {
                g.pending_repeats = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn group_keys_follow_the_group_key_then_the_workload() {
        let a = Alert::firing("KubernetesPodOOMKilled")
            .with_label("namespace", "production")
            .with_label("pod", "payment-service-7d4b9c-xk2p");
        let b = Alert::firing("KubernetesPodOOMKilled")
            .with_label("namespace", "production")
            .with_label("pod", "payment-service-7d4b9c-m2v7q");
        assert_eq!(group_key(&a, &[]), group_key(&b, &[]));
        assert_eq!(
            group_key(&a, &[]),
            "alertname=KubernetesPodOOMKilled,namespace=production,workload=payment-service"
        );
        let mut g = a.clone();
        g.group_key = Some("{}:{alertname=\"X\"}".into());
        assert_eq!(group_key(&g, &[]), "group:{}:{alertname=\"X\"}");
        let by = vec!["alertname".to_owned(), "pod".to_owned()];
        assert_ne!(group_key(&a, &by), group_key(&b, &by));
        // Two failed Jobs of a namespace are two incidents, not one.
        let job = |name: &str| {
            Alert::firing("KubeJobFailed")
                .with_label("namespace", "batch")
                .with_label("job_name", name)
        };
        assert_eq!(
            group_key(&job("nightly-report-29412345"), &[]),
            "alertname=KubeJobFailed,namespace=batch,workload=job/nightly-report-29412345"
        );
        assert_ne!(group_key(&job("a-1"), &[]), group_key(&job("b-1"), &[]));
    }
}
