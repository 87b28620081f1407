//! squad: a crew of AI agents that handles Kubernetes incidents end to end.
//!
//! An alert comes in; Picard opens an incident and gets a diagnosis; B'Elanna opens the
//! remediation pull request, Worf reviews security, Data looks at the code, Scribe writes the
//! memory down, and Ralph follows the fix until the cluster says it holds. Each member is a
//! supervised ractor actor; every step is an event in a durable log, so a crash resumes without
//! doing anything twice.
//!
//! Embed it in another Rust service with [`Squad::builder`]:
//!
//! ```
//! # #![allow(clippy::unwrap_used)]
//! use std::sync::Arc;
//! use squad::{Squad, simulation::SimBackends};
//! use squad_sim::Scenario;
//!
//! # fn main() -> anyhow::Result<()> {
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
//! rt.block_on(async {
//!     let scenario = Arc::new(Scenario::embedded("oomkilled")?);
//!     let dir = tempfile::tempdir()?;
//!     let clock = squad_runtime::Clock::starting_at(scenario.now);
//!     let sim = SimBackends::seed(scenario.clone(), dir.path(), clock.clone(), &Default::default()).await?;
//!     let squad = Squad::builder()
//!         .clock(clock)
//!         .cluster(sim.cluster.clone())
//!         .forge(sim.forge.clone())
//!         .app_repo(sim.app.clone())
//!         .start()
//!         .await?;
//!     let id = squad.ingest(scenario.alert()).await?;
//!     // The crew works in virtual time; the PR is open once the incident awaits approval
//!     // (Ralph keeps following it until a human merges).
//!     let awaiting = |i: &squad_protocols::Incident| i.state.as_str() == "awaiting_approval";
//!     let incident = squad.wait_until(&id, awaiting, std::time::Duration::from_secs(3600)).await?;
//!     assert!(incident.pr.is_some());
//!     squad.shutdown().await;
//!     anyhow::Ok(())
//! })
//! # }
//! ```

pub mod backends;
pub mod diagnose;
pub mod intake;
pub mod models;
pub mod replicas;
pub mod serve;
pub mod signature;
#[cfg(feature = "sim")]
pub mod simulation;
#[cfg(feature = "sim")]
pub mod summary;

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorRef};
use squad_agents::{CrewContext, CrewFactory, PicardHandle, PicardMsg};
use squad_config::Settings;
use squad_diagnosis::NativeDiagnoser;
use squad_protocols::{
    Alert, Author, EventKind, Incident, IncidentEvent, IncidentId, IncidentState, Member,
};
use squad_runtime::adapter::{self, AdapterStats};
use squad_runtime::ports::{Alerts, Cluster, Diagnoser, Forge, Replayer};
use squad_runtime::shards::{FencedStore, Ownership};
use squad_runtime::supervisor::{
    CrewSupervisor, SupervisionObserver, SupervisorArgs, SupervisorMsg,
};
use squad_runtime::{Clock, CrewDirectory, Faults, IncidentStore, Journal, MemoryStore, Minds};
use tokio::sync::broadcast;

#[derive(Debug, thiserror::Error)]
pub enum SquadError {
    #[error("squad is not configured: {0}")]
    Config(String),
    #[error("could not start the crew: {0}")]
    Start(String),
    #[error("Picard is not running")]
    NoCoordinator,
    #[error("the alert is invalid: {0}")]
    InvalidAlert(#[from] squad_protocols::ProtocolError),
    #[error("incident intake failed: {0}")]
    Ingest(#[from] squad_runtime::CrewError),
    #[error(transparent)]
    Store(#[from] squad_runtime::StoreError),
    #[error(
        "incident {incident} did not reach the expected state within {seconds} s (it is {state})"
    )]
    Timeout {
        incident: IncidentId,
        seconds: u64,
        state: IncidentState,
    },
}

/// Whether an incident has gone as far as it can without a human: resolved, escalated, or its PR
/// open with Ralph's report in and nothing new to follow.
pub fn settled(i: &Incident) -> bool {
    match i.state {
        IncidentState::Resolved | IncidentState::Escalated => true,
        IncidentState::AwaitingApproval => {
            i.reports.contains_key(&Member::Ralph) && !i.approved_since_ralph
        }
        _ => false,
    }
}

/// A running crew.
pub struct Squad {
    supervisor: ActorRef<SupervisorMsg>,
    picard: PicardHandle,
    journal: Journal,
    wakeups: squad_runtime::Wakeups,
    adapter_stats: Vec<(String, Arc<AdapterStats>)>,
}

/// Calls a forge adapter runs at once (GitHub's secondary rate limits punish more).
const FORGE_WORKERS: usize = 4;
/// Diagnoses run at once (HolmesGPT bounds its own subprocesses further).
const DIAGNOSER_WORKERS: usize = 4;
/// Calls to one model profile at once.
const MODEL_WORKERS: usize = 4;

/// Builds a [`Squad`]: a cluster, a forge and an app repository are required; the store defaults
/// to memory, the diagnoser to the native analyzers, and no models (the deterministic skills decide).
#[derive(Default)]
pub struct SquadBuilder {
    store: Option<Arc<dyn IncidentStore>>,
    cluster: Option<Arc<dyn Cluster>>,
    forge: Option<Arc<dyn Forge>>,
    app_repo: Option<Arc<dyn Forge>>,
    diagnoser: Option<Arc<dyn Diagnoser>>,
    minds: Option<Arc<Minds>>,
    settings: Settings,
    faults: Faults,
    clock: Option<Clock>,
    derived_ids: bool,
    replayer: Option<Arc<dyn Replayer>>,
    alerts: Option<Arc<dyn Alerts>>,
    ownership: Option<Arc<Ownership>>,
}

struct JournalObserver {
    journal: Journal,
}

impl SupervisionObserver for JournalObserver {
    fn restarted(&self, member: Member, reason: &str) {
        // Restarts are recorded on every incident still in progress, so the timeline shows them.
        if let Ok(ids) = self.journal.store().incident_ids() {
            for id in ids {
                if self.journal.load(&id).is_ok_and(|i| !settled(&i)) {
                    let _ = self.journal.record(
                        &id,
                        Author::System,
                        EventKind::MemberRestarted {
                            member,
                            reason: reason.into(),
                        },
                    );
                }
            }
        }
    }

    fn escalated(&self, member: Member, reason: &str) {
        tracing::error!(%member, "supervisor escalation: {reason}");
    }
}

impl SquadBuilder {
    pub fn store(mut self, store: Arc<dyn IncidentStore>) -> Self {
        self.store = Some(store);
        self
    }
    pub fn cluster(mut self, cluster: Arc<dyn Cluster>) -> Self {
        self.cluster = Some(cluster);
        self
    }
    pub fn forge(mut self, forge: Arc<dyn Forge>) -> Self {
        self.forge = Some(forge);
        self
    }
    pub fn app_repo(mut self, repo: Arc<dyn Forge>) -> Self {
        self.app_repo = Some(repo);
        self
    }
    pub fn diagnoser(mut self, d: Arc<dyn Diagnoser>) -> Self {
        self.diagnoser = Some(d);
        self
    }
    /// The world model B'Elanna replays a fix in before she proposes it (the simulation's);
    /// without one, fixes are proposed unreplayed and the PR says so.
    pub fn replayer(mut self, r: Arc<dyn Replayer>) -> Self {
        self.replayer = Some(r);
        self
    }
    /// The alerting system (Alertmanager) Ralph asks, after the fix held, whether the
    /// incident's alert still fires; without one the verdict says the alert's state was not read
    /// (unless Alertmanager's resolved notification came in).
    pub fn alerts(mut self, a: Arc<dyn Alerts>) -> Self {
        self.alerts = Some(a);
        self
    }
    /// The crew's models (see `squad_adapters::llm::minds_from_settings`); without them the
    /// deterministic skills decide.
    pub fn minds(mut self, m: Arc<Minds>) -> Self {
        self.minds = Some(m);
        self
    }
    pub fn settings(mut self, s: Settings) -> Self {
        self.settings = s;
        self
    }
    pub fn faults(mut self, f: Faults) -> Self {
        self.faults = f;
        self
    }
    pub fn clock(mut self, c: Clock) -> Self {
        self.clock = Some(c);
        self
    }
    /// What this replica holds among others sharing the store (see `squad_runtime::shards`);
    /// without it this process acts on every incident.
    pub fn ownership(mut self, o: Arc<Ownership>) -> Self {
        self.ownership = Some(o);
        self
    }
    /// Name incidents from their alert and time rather than at random, so the same run names
    /// them the same way (simulations, recorded model exchanges).
    pub fn derived_ids(mut self, yes: bool) -> Self {
        self.derived_ids = yes;
        self
    }

    /// Starts the supervisor and the crew. Open incidents in the store are resumed.
    pub async fn start(self) -> Result<Squad, SquadError> {
        let clock = self.clock.unwrap_or_else(Clock::system);
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let cluster = self.cluster.ok_or_else(|| {
            SquadError::Config("no cluster backend (SquadBuilder::cluster)".into())
        })?;
        let forge = self
            .forge
            .ok_or_else(|| SquadError::Config("no forge backend (SquadBuilder::forge)".into()))?;
        let app_repo = self.app_repo.ok_or_else(|| {
            SquadError::Config("no application repository (SquadBuilder::app_repo)".into())
        })?;
        let ownership = self.ownership.unwrap_or_else(|| Ownership::everything(1));
        // A replica writes only what it holds the lease for.
        let store: Arc<dyn IncidentStore> = if ownership.is_everything() {
            store
        } else {
            FencedStore::new(store, ownership.clone())
        };
        let journal = Journal::new(store, clock.clone());
        let wakeups = squad_runtime::Wakeups::default();
        // Every adapter runs as a supervised actor; members call it through its handle.
        let s = &self.settings;
        let (cluster, cluster_actor) =
            adapter::cluster(cluster, s.kubernetes.max_concurrent_requests.max(1));
        let (forge, forge_actor) = adapter::forge("forge", forge, FORGE_WORKERS);
        let (app_repo, app_actor) = adapter::forge("app-repo", app_repo, FORGE_WORKERS);
        let diagnoser = self
            .diagnoser
            .unwrap_or_else(|| Arc::new(NativeDiagnoser::new(cluster.clone(), clock.clone())));
        let (diagnoser, diagnoser_actor) = adapter::diagnoser(diagnoser, DIAGNOSER_WORKERS);
        let mut adapters = vec![cluster_actor, forge_actor, app_actor, diagnoser_actor];
        let minds = self.minds.unwrap_or_default();
        let minds = Arc::new(minds.with_models(|model| {
            let (model, actor) = adapter::model(model, MODEL_WORKERS);
            adapters.push(actor);
            model
        }));
        let adapter_stats = adapters
            .iter()
            .map(|a| (a.name().to_owned(), a.stats()))
            .collect();
        let ctx = CrewContext {
            journal: journal.clone(),
            cluster,
            forge,
            app_repo,
            diagnoser,
            minds,
            settings: Arc::new(self.settings.clone()),
            faults: self.faults,
            derived_ids: self.derived_ids,
            directory: CrewDirectory::default(),
            wakeups: wakeups.clone(),
            replayer: self.replayer,
            alerts: self.alerts,
            ownership,
        };
        let picard = PicardHandle::default();
        let factory = Arc::new(CrewFactory {
            ctx,
            picard: picard.clone(),
        });
        // Specialists first, so Picard's resumed steps find them.
        let members = vec![
            Member::Belanna,
            Member::Worf,
            Member::Data,
            Member::Scribe,
            Member::Ralph,
            Member::Picard,
        ];
        let (supervisor, _) = Actor::spawn(
            None,
            CrewSupervisor,
            SupervisorArgs {
                factory,
                members,
                adapters,
                settings: self.settings.supervision.clone(),
                observer: Arc::new(JournalObserver {
                    journal: journal.clone(),
                }),
            },
        )
        .await
        .map_err(|e| SquadError::Start(e.to_string()))?;
        Ok(Squad {
            supervisor,
            picard,
            journal,
            wakeups,
            adapter_stats,
        })
    }
}

impl Squad {
    pub fn builder() -> SquadBuilder {
        SquadBuilder::default()
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Each adapter actor's name and counters (calls queued, in flight, done; restarts).
    pub fn adapter_stats(&self) -> &[(String, Arc<AdapterStats>)] {
        &self.adapter_stats
    }

    /// Hands an alert to Picard; returns the incident it opened or joined. The alert is in the
    /// store when this returns.
    pub async fn ingest(&self, alert: Alert) -> Result<IncidentId, SquadError> {
        alert.validate()?;
        for _ in 0..50 {
            let picard = self.picard.get().ok_or(SquadError::NoCoordinator)?;
            let (tx, rx) = tokio::sync::oneshot::channel();
            if picard
                .send_message(PicardMsg::Ingest {
                    alert: Box::new(alert.clone()),
                    reply: tx.into(),
                })
                .is_ok()
            {
                // If Picard failed while taking it, the supervisor restarts him; ask again.
                if let Ok(Ok(result)) = tokio::time::timeout(Duration::from_secs(30), rx).await {
                    return Ok(result?);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(SquadError::NoCoordinator)
    }

    /// Something happened to pull request `number` (a GitHub webhook): whoever follows it looks
    /// again now instead of at its next poll.
    pub fn wake_pr(&self, number: u64) {
        self.wakeups.wake(number);
    }

    /// Asks Picard to look at an incident again (after a human acted on it).
    pub fn advance(&self, id: &IncidentId) {
        if let Some(p) = self.picard.get() {
            let _ = p.send_message(PicardMsg::Advance(id.clone()));
        }
    }

    /// Records a human's approval (the merge) and lets the crew follow it.
    pub fn approved(&self, id: &IncidentId, by: &str) -> Result<(), SquadError> {
        self.journal
            .record(id, Author::Human, EventKind::Approved { by: by.into() })?;
        self.advance(id);
        Ok(())
    }

    /// Asks the crew to look at the incident's PR again where it lives (a reviewer acted on it
    /// there: merged, closed, reviewed): Ralph follows it anew.
    pub fn follow_up(&self, id: &IncidentId, reason: &str) -> Result<(), SquadError> {
        self.journal.record(
            id,
            Author::Human,
            EventKind::FollowUp {
                reason: reason.into(),
            },
        )?;
        self.advance(id);
        Ok(())
    }

    pub fn incident(&self, id: &IncidentId) -> Result<Incident, SquadError> {
        Ok(self.journal.load(id)?)
    }

    pub fn incidents(&self) -> Result<Vec<Incident>, SquadError> {
        let store = self.journal.store();
        Ok(store
            .incident_ids()?
            .iter()
            .map(|id| store.load(id))
            .collect::<Result<_, _>>()?)
    }

    /// Every event appended from now on.
    pub fn events(&self) -> broadcast::Receiver<IncidentEvent> {
        self.journal.store().subscribe()
    }

    /// Waits until `done(incident)` holds, at most `timeout` (tokio time).
    pub async fn wait_until(
        &self,
        id: &IncidentId,
        done: impl Fn(&Incident) -> bool,
        timeout: Duration,
    ) -> Result<Incident, SquadError> {
        let mut rx = self.events();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let inc = self.incident(id)?;
            if done(&inc) {
                return Ok(inc);
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => {
                    return Err(SquadError::Timeout {
                        incident: id.clone(),
                        seconds: timeout.as_secs(),
                        state: inc.state,
                    });
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Ok(_) => {}
            }
        }
    }

    /// Stops the crew.
    pub async fn shutdown(self) {
        self.shutdown_ref().await;
    }

    /// [`Squad::shutdown`] through a shared reference (the daemon holds the crew in an `Arc`).
    pub async fn shutdown_ref(&self) {
        self.supervisor.stop(Some("shutdown".into()));
        for _ in 0..100 {
            if self.supervisor.get_status() == ractor::ActorStatus::Stopped {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
