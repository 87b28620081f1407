//! `squad simulate`: the whole loop on this machine — a simulated cluster, a real local git repo
//! as the GitOps repo, a simulated GitHub, a durable incident store, on a virtual clock.
//!
//! The output directory holds everything: `gitops/` (the GitOps repo; the PR is a branch),
//! `app/` (the application's source), `forge.json` (issues, comments, PRs) and
//! `incidents.redb` (the incident log). Running again on the same directory resumes the incident
//! there: `--approve` then merges the open PR as a human would and lets Ralph verify it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use squad_adapters::dry_run::{DryRunForge, Intent};
use squad_adapters::git::GitRepo;
use squad_adapters::sim::{SimCluster, SimForge, seed_app_repo, seed_gitops_repo};
use squad_config::{Scenario, Settings};
use squad_protocols::{EventKind, IncidentId, IncidentState};
use squad_runtime::store::AbortAfter;
use squad_runtime::{Clock, Faults, IncidentStore, MemoryStore, RedbStore};

use crate::summary::Summary;
use crate::{Squad, settled};

/// The simulation backends over one output directory.
pub struct SimBackends {
    pub cluster: Arc<SimCluster>,
    pub forge: Arc<SimForge>,
    pub app: Arc<SimForge>,
}

impl SimBackends {
    /// Seeds fresh repositories for the scenario under `dir`.
    pub fn seed(scenario: Arc<Scenario>, dir: &Path, clock: Clock) -> anyhow::Result<SimBackends> {
        let gitops = seed_gitops_repo(&scenario, &dir.join("gitops"))?;
        let app = seed_app_repo(&scenario, &dir.join("app"))?;
        Self::over(scenario, dir, gitops, app, clock)
    }

    /// Opens the repositories an earlier run seeded.
    pub fn open(scenario: Arc<Scenario>, dir: &Path, clock: Clock) -> anyhow::Result<SimBackends> {
        let gitops = GitRepo::open(&dir.join("gitops"))?;
        let app = GitRepo::open(&dir.join("app"))?;
        Self::over(scenario, dir, gitops, app, clock)
    }

    fn over(
        scenario: Arc<Scenario>,
        dir: &Path,
        gitops: GitRepo,
        app: GitRepo,
        clock: Clock,
    ) -> anyhow::Result<SimBackends> {
        let ns = &scenario.workload.namespace;
        let forge = SimForge::new(
            &format!("acme/{ns}-gitops"),
            gitops.clone(),
            Some(&dir.join("forge.json")),
            clock.clone(),
        )
        .map_err(anyhow::Error::msg)?;
        let app_forge = SimForge::new(
            &format!("acme/{}", scenario.workload.name),
            app,
            None,
            clock.clone(),
        )
        .map_err(anyhow::Error::msg)?;
        Ok(SimBackends {
            cluster: Arc::new(SimCluster::new(scenario, gitops, clock)),
            forge: Arc::new(forge),
            app: Arc::new(app_forge),
        })
    }
}

/// What to simulate and how.
pub struct SimulationOptions {
    pub scenario: Scenario,
    pub out: PathBuf,
    pub approve: bool,
    pub dry_run: bool,
    pub fresh: bool,
    pub settings: Settings,
    pub faults: Faults,
    /// Abort the process right after this many events are stored (crash tests).
    pub abort_after_events: Option<u64>,
}

/// The result of a simulation.
pub struct SimulationOutcome {
    pub summary: Summary,
    /// In a dry run: what the crew would have written.
    pub intents: Vec<Intent>,
}

const MARKER: &str = "scenario.txt";

/// Runs (or resumes) a scenario's incident. Call it on a paused tokio runtime for virtual time.
pub async fn run(opts: SimulationOptions) -> anyhow::Result<SimulationOutcome> {
    let scenario = Arc::new(opts.scenario);
    let mut settings = opts.settings;
    // Nobody merges in a simulation unless --approve says so: Ralph reports the PR pending at once.
    settings.verification.merge_wait_hours = 0;

    let scratch;
    let dir: PathBuf = if opts.dry_run {
        scratch = tempfile::tempdir()?;
        scratch.path().to_path_buf()
    } else {
        opts.out.clone()
    };
    let marker = dir.join(MARKER);
    if opts.fresh && !opts.dry_run && dir.exists() {
        if !marker.exists() && dir.read_dir()?.next().is_some() {
            anyhow::bail!(
                "--fresh: {} is not a squad simulation directory (no {MARKER}); refusing to delete it",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir)?;
    }
    let resuming = marker.exists();
    if resuming {
        let held = std::fs::read_to_string(&marker)?;
        if held.trim() != scenario.name {
            anyhow::bail!(
                "{} holds a simulation of scenario {:?}, not {:?}: pass another --out, or --fresh to start over",
                dir.display(),
                held.trim(),
                scenario.name
            );
        }
    } else if dir.exists() && dir.read_dir()?.next().is_some() {
        anyhow::bail!(
            "{} exists and is not a squad simulation directory: pass an empty or new --out",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir)?;

    let store: Arc<dyn IncidentStore> = if opts.dry_run {
        Arc::new(MemoryStore::new())
    } else {
        let redb = RedbStore::open(&dir.join("incidents.redb"))?;
        match opts.abort_after_events {
            Some(n) => Arc::new(AbortAfter::new(redb, n)),
            None => Arc::new(redb),
        }
    };
    // The virtual clock continues from the last thing that happened.
    let last_event = store
        .incident_ids()?
        .iter()
        .filter_map(|id| store.events(id).ok().and_then(|e| e.last().map(|e| e.at)))
        .max();
    let clock =
        Clock::starting_at(last_event.map_or(scenario.now, |t| t + chrono::Duration::seconds(1)));
    let sim = if resuming {
        SimBackends::open(scenario.clone(), &dir, clock.clone())?
    } else {
        SimBackends::seed(scenario.clone(), &dir, clock.clone())?
    };
    if !resuming && !opts.dry_run {
        std::fs::write(&marker, format!("{}\n", scenario.name))?;
    }
    let dry = opts
        .dry_run
        .then(|| Arc::new(DryRunForge::new(sim.forge.clone())));
    let forge: Arc<dyn squad_runtime::ports::Forge> = match &dry {
        Some(d) => d.clone(),
        None => sim.forge.clone(),
    };
    let squad = Squad::builder()
        .store(store.clone())
        .clock(clock.clone())
        .cluster(sim.cluster.clone())
        .forge(forge)
        .app_repo(sim.app.clone())
        .settings(settings)
        .faults(opts.faults)
        .start()
        .await?;

    let limit = Duration::from_secs(7 * 24 * 3600);
    let id: IncidentId = match store.incident_ids()?.last() {
        Some(id) => id.clone(),
        None => squad.ingest(scenario.alert()).await?,
    };
    let mut incident = squad.wait_until(&id, settled, limit).await?;
    if opts.approve
        && incident.state == IncidentState::AwaitingApproval
        && !opts.dry_run
        && let Some(pr) = &incident.pr
    {
        sim.forge.merge_pr(pr.number, "simulated-human")?;
        squad.approved(&id, "simulated-human")?;
        incident = squad
            .wait_until(&id, |i| settled(i) && !i.approved_since_ralph, limit)
            .await?;
    }
    let events = store.events(&id)?;
    let intents = dry.map(|d| d.intents()).unwrap_or_default();
    let summary = Summary::build(
        &scenario.name,
        &incident,
        &events,
        &sim.forge.snapshot(),
        &dir.join("gitops"),
        opts.dry_run,
    );
    squad.shutdown().await;
    if matches!(incident.state, IncidentState::Escalated) {
        tracing::warn!(incident = %id, "incident escalated: {}", events.iter().rev().find_map(|e| match &e.kind { EventKind::StateChanged { reason, .. } => Some(reason.clone()), _ => None }).unwrap_or_default());
    }
    Ok(SimulationOutcome { summary, intents })
}
