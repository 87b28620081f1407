//! `squad simulate`: the whole loop on this machine — a simulated cluster, a real local git repo
//! as the GitOps repo, a simulated GitHub, a durable incident store, on a virtual clock.
//!
//! The output directory holds everything: `gitops/` (the GitOps repo; the PR is a branch),
//! `app/` (the application's source), `forge.json` (issues, comments, PRs) and
//! `incidents.redb` (the incident log). Running again on the same directory resumes the incident
//! there: `--approve` then merges the open PR as a human would and lets Ralph verify it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use squad_adapters::github::{GitHubForge, GitHubOptions};
use squad_config::Settings;
use squad_protocols::{EventKind, IncidentId, IncidentState};
use squad_runtime::dry_run::{DryRunForge, Intent};
use squad_runtime::store::AbortAfter;
use squad_runtime::{Clock, Faults, IncidentStore, MemoryStore, RedbStore};
use squad_sim::Scenario;
pub use squad_sim::backends::{
    GitHubTarget, ServeKube, ServedCluster, SimBackends, SimGitHub, serve_cluster,
};
use squad_sim::backends::{MARKER, claim_dir};

use crate::summary::Summary;
use crate::{Squad, settled};

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
    /// How the simulated cluster is served.
    pub serve: ServeKube,
    /// The crew's models (`Minds::none()`: the deterministic skills decide).
    pub minds: std::sync::Arc<squad_runtime::Minds>,
    /// A GitHub-compatible API to use for the GitOps repository instead of the built-in
    /// simulated GitHub (`--github-url`, `--github-repo`, `GITHUB_TOKEN`).
    pub github: Option<GitHubTarget>,
}

/// Makes the local GitOps repository's `main` (what the simulated cluster syncs) hold what
/// `github`'s default branch holds, in one commit, when they differ. Returns whether it did.
async fn sync_main(
    github: &GitHubForge,
    local: &squad_adapters::git::GitRepo,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<bool> {
    use squad_runtime::ports::Forge;
    let branch = github.default_branch().await?;
    let mut files = Vec::new();
    for path in github.list_files("", &branch).await? {
        match github.read_file(&path, &branch).await {
            Ok(Some(text)) => files.push((path, text)),
            Ok(None) => {}
            // A file that is not text (an image) means nothing to the cluster.
            Err(e) => tracing::warn!("{path} on {} not synced: {e}", github.repo()),
        }
    }
    let mut local_paths = local.list("main", "")?;
    local_paths.sort();
    let mut remote_paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    remote_paths.sort_unstable();
    let same = local_paths == remote_paths
        && files.iter().all(|(p, text)| {
            local.read("main", p).ok().flatten().as_deref() == Some(text.as_str())
        });
    if same {
        return Ok(false);
    }
    local.commit(
        "main",
        None,
        &format!("Sync main from {} ({branch})", github.repo()),
        &files,
        at,
        true,
    )?;
    local.checkout_main()?;
    Ok(true)
}

/// The result of a simulation.
pub struct SimulationOutcome {
    pub summary: Summary,
    /// In a dry run: what the crew would have written.
    pub intents: Vec<Intent>,
    /// With `serve.keep`: the backends, still serving the simulated cluster.
    pub served: Option<SimBackends>,
    /// Every request the crew's GitHub adapter sent to the simulated GitHub.
    pub github: Vec<squad_sim::github_api::Recorded>,
}

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
    let resuming = claim_dir(
        &dir,
        &scenario.name,
        "pass another --out, or --fresh to start over",
    )?;

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
        SimBackends::open(scenario.clone(), &dir, clock.clone(), &opts.serve).await?
    } else {
        SimBackends::seed(scenario.clone(), &dir, clock.clone(), &opts.serve).await?
    };
    if !resuming && !opts.dry_run {
        std::fs::write(&marker, format!("{}\n", scenario.name))?;
    }
    // The crew reaches the simulated GitHub over HTTP, through the GitHub adapter.
    let hub = SimGitHub::start(&sim, clock.clone()).await?;
    // Or the GitOps repository on a real GitHub (the application's stays simulated).
    let external = match &opts.github {
        None => None,
        Some(t) => {
            if opts.approve {
                anyhow::bail!(
                    "--approve merges the simulated PR; against {} merge it on GitHub instead, then run this command again (Ralph follows it there)",
                    t.repo
                );
            }
            Some(Arc::new(
                GitHubForge::new(&GitHubOptions {
                    base_url: t.url.clone(),
                    repo: t.repo.clone(),
                    token: t.token.clone(),
                    max_attempts: 4,
                    max_wait: Duration::from_secs(120),
                    app: None,
                    draft: false,
                })
                .map_err(anyhow::Error::msg)?,
            ))
        }
    };
    let gitops: Arc<dyn squad_runtime::ports::Forge> = match &external {
        None => hub.gitops.clone(),
        Some(gh) => gh.clone(),
    };
    // Running again against another GitHub: the simulated cluster syncs that GitHub's main, so a
    // PR merged there rolls out here before Ralph looks.
    if let (true, Some(gh)) = (resuming && !opts.dry_run, &external) {
        sync_main(gh, sim.forge.git(), clock.now()).await?;
    }
    let dry = opts
        .dry_run
        .then(|| Arc::new(DryRunForge::new(gitops.clone())));
    let forge: Arc<dyn squad_runtime::ports::Forge> = match &dry {
        Some(d) => d.clone(),
        None => gitops.clone(),
    };
    let diagnoser = crate::diagnose::diagnoser_for(
        &settings,
        sim.cluster.clone(),
        clock.clone(),
        Some(sim.kubeconfig.clone()),
    );
    let squad = Squad::builder()
        .store(store.clone())
        .clock(clock.clone())
        .cluster(sim.cluster.clone())
        .forge(forge)
        .app_repo(hub.app.clone())
        .settings(settings)
        .minds(opts.minds.clone())
        .diagnoser(diagnoser)
        .replayer(sim.replayer.clone())
        .derived_ids(true)
        .faults(opts.faults)
        .start()
        .await?;

    let limit = Duration::from_secs(7 * 24 * 3600);
    let id: IncidentId = match store.incident_ids()?.last() {
        Some(id) => id.clone(),
        None => squad.ingest(scenario.alert()).await?,
    };
    let mut incident = squad.wait_until(&id, settled, limit).await?;
    // A re-run of a rehearsal: Ralph reads the PR where it lives (merged, closed, reviewed).
    if let (true, Some(t), Some(pr)) = (
        resuming && incident.state == IncidentState::AwaitingApproval && !opts.dry_run,
        &opts.github,
        &incident.pr,
    ) {
        squad.follow_up(
            &id,
            &format!(
                "the rehearsal ran again; PR #{} is on {} at {}",
                pr.number, t.repo, t.url
            ),
        )?;
        incident = squad
            .wait_until(&id, |i| settled(i) && !i.approved_since_ralph, limit)
            .await?;
    }
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
    // The issues and PRs as they are on the GitHub that holds them.
    let items = match &external {
        Some(gh) if !opts.dry_run => gh.listing().await?,
        _ => sim.forge.items(),
    };
    let mut summary = Summary::build(
        &scenario.name,
        &incident,
        &events,
        &items,
        &dir.join("gitops"),
        opts.dry_run,
    );
    if let Some(t) = &opts.github {
        summary.repo = format!("{} at {}", t.repo, t.url);
        summary.github = Some(t.url.clone());
    }
    summary.github_requests = hub.gitops_api.requests_by_endpoint();
    for (k, v) in hub.app_api.requests_by_endpoint() {
        *summary.github_requests.entry(k).or_default() += v;
    }
    squad.shutdown().await;
    if matches!(incident.state, IncidentState::Escalated) {
        tracing::warn!(incident = %id, "incident escalated: {}", events.iter().rev().find_map(|e| match &e.kind { EventKind::StateChanged { reason, .. } => Some(reason.clone()), _ => None }).unwrap_or_default());
    }
    let served = opts.serve.keep.then_some(sim);
    let mut github = hub.gitops_api.requests();
    github.extend(hub.app_api.requests());
    Ok(SimulationOutcome {
        summary,
        intents,
        served,
        github,
    })
}
