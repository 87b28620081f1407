//! The daemon's alert intake: durable acceptance, then grouping into incidents.
//!
//! Acceptance: a submission waits until its alerts are in the store's intake log (one batch,
//! fsynced) and only then is answered — so an answered alert survives a `kill -9`. Submissions
//! arriving together are committed together (group commit) by a writer thread: one fsync for
//! many alerts, which is what makes an alert storm cheap.
//!
//! Processing: one task takes accepted alerts in log order (handed over in memory by the
//! writer, read back from the store when it must: see [`Handed`]) and groups each alert by its key
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
    /// When it was submitted (the clock is read on the runtime, which may run a virtual one).
    at: chrono::DateTime<chrono::Utc>,
    reply: oneshot::Sender<Result<Vec<u64>, String>>,
}

/// The running intake.
pub struct Intake {
    tx: mpsc::Sender<Submission>,
    pub stats: Arc<IntakeStats>,
    stopping: Arc<AtomicBool>,
    wake: Arc<Notify>,
    writer: std::thread::JoinHandle<()>,
    processor: JoinHandle<()>,
    clock: Clock,
}

struct Group {
    incident: IncidentId,
    state: IncidentState,
    pending_repeats: u64,
    last_fingerprint: String,
}

/// Most alerts committed in one transaction.
const BATCH: usize = 4096;
/// Most accepted alerts the processor takes at once.
const READ_AT_ONCE: usize = 1000;

/// Most committed alerts the writer hands the processor in memory; past that the processor
/// reads them back from the log.
const HANDED_MAX: usize = 4096;

/// Alerts just committed by this process's writer, in seq order, for the processor: most of the
/// time it takes them from here instead of reading them back from the store and decoding them.
/// The log stays the truth: the processor reads the store whenever the front of this queue is
/// not the next seq it needs (it fell behind past [`HANDED_MAX`], another replica accepted
/// alerts in between, or it just started).
#[derive(Default)]
struct Handed {
    queue: std::sync::Mutex<std::collections::VecDeque<squad_runtime::Accepted>>,
}

impl Handed {
    fn push(&self, accepted: impl Iterator<Item = squad_runtime::Accepted>) {
        if let Ok(mut q) = self.queue.lock() {
            for a in accepted {
                if q.len() >= HANDED_MAX {
                    break;
                }
                q.push_back(a);
            }
        }
    }

    fn clear(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.clear();
        }
    }

    /// Up to `limit` alerts from seq `next` on, if the queue starts there (after dropping what
    /// is older).
    fn take_from(&self, next: u64, limit: usize) -> Option<Vec<squad_runtime::Accepted>> {
        let mut q = self.queue.lock().ok()?;
        while q.front().is_some_and(|a| a.seq < next) {
            q.pop_front();
        }
        if q.front()?.seq != next {
            return None;
        }
        let mut out: Vec<squad_runtime::Accepted> = Vec::with_capacity(q.len().min(limit));
        while out.len() < limit
            && let Some(a) = q.front()
            && a.seq == next + out.len() as u64
        {
            out.extend(q.pop_front());
        }
        Some(out)
    }
}

/// The longest the store's intake watermark lags behind processing while alerts keep coming.
const WATERMARK_EVERY: Duration = Duration::from_millis(200);

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
        let handed = Arc::new(Handed::default());
        let stopping = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Submission>(1024);
        let (to_sync, staged) = std::sync::mpsc::sync_channel::<InFlight>(1024);
        let syncer = {
            let (store, stats, wake, handed) =
                (store.clone(), stats.clone(), wake.clone(), handed.clone());
            std::thread::Builder::new()
                .name("squad-intake-sync".into())
                .spawn(move || sync_loop(&staged, store.as_ref(), &stats, &wake, &handed))
                .map_err(|e| crate::SquadError::Start(format!("the intake syncer: {e}")))?
        };
        let writer = {
            let store = store.clone();
            std::thread::Builder::new()
                .name("squad-intake-writer".into())
                .spawn(move || write_loop(rx, store.as_ref(), to_sync, syncer))
                .map_err(|e| crate::SquadError::Start(format!("the intake writer: {e}")))?
        };
        let groups = rebuild(&store, &settings.group_by)?;
        let processor = tokio::spawn(process_loop(Processor {
            store,
            squad,
            clock: clock.clone(),
            settings,
            stats: stats.clone(),
            wake: wake.clone(),
            stopping: stopping.clone(),
            groups,
            ownership,
            handed,
        }));
        Ok(Intake {
            tx,
            stats,
            stopping,
            wake,
            writer,
            processor,
            clock,
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
            .send(Submission {
                alerts,
                at: self.clock.now(),
                reply,
            })
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
        let writer = self.writer;
        let _ =
            tokio::time::timeout(grace, tokio::task::spawn_blocking(move || writer.join())).await;
        let _ = tokio::time::timeout(grace, self.processor).await;
    }
}

/// A batch written to the intake log, on its way to the syncer: the submissions it holds (their
/// alerts moved into `alerts`), how many alerts each had, and its ticket.
struct InFlight {
    submissions: Vec<Submission>,
    counts: Vec<usize>,
    alerts: Vec<Alert>,
    at: chrono::DateTime<chrono::Utc>,
    staged: squad_runtime::StagedAlerts,
}

/// The intake writer, on a thread of its own: it writes every submission waiting as one batch
/// (group commit) and hands it to the syncer, then goes on with the next batch while the syncer
/// makes that one durable: the encoding, the `pwrite` and the wake-ups of one batch overlap the
/// `fdatasync` of the one before (measured before the split: the fsync was 45% of the
/// writer's time, batch 1). Threads rather than tasks: no hand-off to a pool thread and back to
/// a busy runtime worker between a request and its answer (about 0.25 ms a commit on two busy
/// cores, as long as the fdatasync itself).
fn write_loop(
    mut rx: mpsc::Receiver<Submission>,
    store: &dyn IncidentStore,
    to_sync: std::sync::mpsc::SyncSender<InFlight>,
    syncer: std::thread::JoinHandle<()>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut submissions = vec![first];
        let mut n = submissions[0].alerts.len();
        while n < BATCH {
            match rx.try_recv() {
                Ok(s) => {
                    n += s.alerts.len();
                    submissions.push(s);
                }
                Err(_) => break,
            }
        }
        // The alerts move into the batch; each submission keeps its count for its answer.
        let counts: Vec<usize> = submissions.iter().map(|s| s.alerts.len()).collect();
        let alerts: Vec<Alert> = submissions
            .iter_mut()
            .flat_map(|s| std::mem::take(&mut s.alerts))
            .collect();
        let Some(at) = submissions.iter().map(|s| s.at).max() else {
            continue;
        };
        match store.stage_alerts(at, &alerts) {
            Ok(staged) => {
                let flight = InFlight {
                    submissions,
                    counts,
                    alerts,
                    at,
                    staged,
                };
                if let Err(std::sync::mpsc::SendError(flight)) = to_sync.send(flight) {
                    fail(flight.submissions, "the intake syncer stopped");
                }
            }
            Err(e) => {
                tracing::error!("intake: alerts not stored: {e}");
                fail(submissions, &format!("the alert could not be stored: {e}"));
            }
        }
    }
    // The syncer answers what is in flight, then stops.
    drop(to_sync);
    let _ = syncer.join();
}

fn fail(submissions: Vec<Submission>, why: &str) {
    for s in submissions {
        let _ = s.reply.send(Err(why.to_owned()));
    }
}

/// The intake syncer: makes every batch written so far durable (one `fdatasync` for all of
/// them), then answers their submissions, in order, and hands their alerts to the processor.
fn sync_loop(
    staged: &std::sync::mpsc::Receiver<InFlight>,
    store: &dyn IncidentStore,
    stats: &IntakeStats,
    wake: &Notify,
    handed: &Handed,
) {
    while let Ok(first) = staged.recv() {
        let mut flights = vec![first];
        flights.extend(staged.try_iter());
        settle(flights, store, stats, wake, handed);
    }
}

/// Makes `flights` durable, answers their submissions, in order, and hands their alerts on.
fn settle(
    flights: Vec<InFlight>,
    store: &dyn IncidentStore,
    stats: &IntakeStats,
    wake: &Notify,
    handed: &Handed,
) {
    let tickets: Vec<u64> = flights.iter().filter_map(|f| f.staged.ticket).collect();
    let mut outcomes = store.make_durable(&tickets).into_iter();
    for f in flights {
        let outcome = match f.staged.ticket {
            None => Ok(()),
            Some(_) => outcomes.next().unwrap_or_else(|| {
                Err(squad_runtime::StoreError::Backend {
                    path: "intake".into(),
                    message: "no outcome for a staged batch".into(),
                })
            }),
        };
        if let Err(e) = outcome {
            tracing::error!("intake: alerts not stored: {e}");
            fail(
                f.submissions,
                &format!("the alert could not be stored: {e}"),
            );
            continue;
        }
        let seqs = f.staged.seqs;
        stats
            .accepted
            .fetch_add(seqs.len() as u64, Ordering::Relaxed);
        let mut rest = seqs.as_slice();
        for (s, n) in f.submissions.into_iter().zip(f.counts) {
            let (mine, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            let _ = s.reply.send(Ok(mine.to_vec()));
        }
        let at = f.at;
        handed.push(
            seqs.iter()
                .zip(f.alerts)
                .map(|(&seq, alert)| squad_runtime::Accepted { seq, at, alert }),
        );
    }
    wake.notify_one();
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
    handed: Arc<Handed>,
}

async fn process_loop(mut p: Processor) {
    let mut events = p.store.subscribe();
    let flush_every = Duration::from_secs(p.settings.repeat_note_seconds.max(1));
    let mut last_flush = tokio::time::Instant::now();
    let mut holding = true;
    // Where processing stands (`None` inside: nothing processed yet), read from the store at
    // start and at every takeover; and what the store's watermark says.
    let mut cursor: Option<Option<u64>> = None;
    let mut stored: Option<u64> = None;
    let mut last_mark = tokio::time::Instant::now();
    loop {
        if !p.ownership.holds(INTAKE) {
            if p.stopping.load(Ordering::SeqCst) {
                return;
            }
            holding = false;
            cursor = None;
            p.handed.clear();
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
        let done = match cursor {
            Some(done) => done,
            None => match p.store.intake_processed() {
                Ok(d) => {
                    cursor = Some(d);
                    stored = d;
                    d
                }
                Err(e) => {
                    tracing::error!("intake: cannot read the watermark: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let next = done.map_or(0, |d| d + 1);
        let batch = match p.handed.take_from(next, READ_AT_ONCE) {
            Some(batch) => batch,
            None => p
                .store
                .accepted_after(done, READ_AT_ONCE)
                .unwrap_or_else(|e| {
                    tracing::error!("intake: cannot read accepted alerts: {e}");
                    Vec::new()
                }),
        };
        for a in &batch {
            if p.stopping.load(Ordering::SeqCst) && cursor != Some(done) {
                break;
            }
            p.process(&a.alert).await;
            p.stats.processed.fetch_add(1, Ordering::Relaxed);
            cursor = Some(Some(a.seq));
        }
        // The watermark is written at most every `WATERMARK_EVERY` (so within that of the
        // last alert processed, busy or quiet) and on stopping: a crash re-processes what came
        // after it, against the groups rebuilt from the incidents (a repeat is counted again,
        // nothing is opened twice). Not each time the processor catches up: under load it
        // catches up after every commit of the writer, and a redb commit per commit of the
        // log was as many fsyncs again as the intake's own (measured: 39% of the daemon's
        // fdatasyncs, batch 1).
        let stopping = p.stopping.load(Ordering::SeqCst);
        let unwritten = matches!(cursor, Some(Some(seq)) if stored != Some(seq));
        if let Some(Some(seq)) = cursor
            && unwritten
            && (stopping || last_mark.elapsed() >= WATERMARK_EVERY)
        {
            match p.store.set_intake_processed(seq) {
                Ok(()) => stored = Some(seq),
                Err(e) => tracing::error!("intake: cannot write the watermark: {e}"),
            }
            last_mark = tokio::time::Instant::now();
        }
        let unwritten = matches!(cursor, Some(Some(seq)) if stored != Some(seq));
        if last_flush.elapsed() >= flush_every || p.stopping.load(Ordering::SeqCst) {
            p.flush_repeats();
            last_flush = tokio::time::Instant::now();
        }
        if p.stopping.load(Ordering::SeqCst) {
            return;
        }
        if batch.is_empty() {
            // Nothing new: wait for the writer, and with a watermark still to write, no longer
            // than until it is due.
            let wait = if unwritten {
                WATERMARK_EVERY.saturating_sub(last_mark.elapsed())
            } else {
                flush_every
            };
            let _ = tokio::time::timeout(wait.min(flush_every), p.wake.notified()).await;
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
mod tests;
