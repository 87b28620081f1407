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
use squad_adapters::kubernetes::{KubeCluster, KubeOptions};
use squad_adapters::prometheus::{MetricQueries, Prometheus, PrometheusOptions};
use squad_adapters::sim::kube_api::{ServeOptions, SimApiServer};
use squad_adapters::sim::{SimCluster, SimForge, seed_app_repo, seed_gitops_repo};
use squad_config::{Scenario, Settings};
use squad_protocols::{EventKind, IncidentId, IncidentState};
use squad_runtime::store::AbortAfter;
use squad_runtime::{Clock, Faults, IncidentStore, MemoryStore, RedbStore};

use crate::summary::Summary;
use crate::{Squad, settled};

/// The simulation backends over one output directory.
///
/// The simulated cluster is served on 127.0.0.1 as a Kubernetes API (and a Prometheus API), and
/// the crew reads it through the same Kubernetes and Prometheus adapters it uses on a real
/// cluster: `cluster` is that adapter; `sim` is the model behind the server.
pub struct SimBackends {
    pub cluster: Arc<KubeCluster>,
    pub sim: Arc<SimCluster>,
    pub api: SimApiServer,
    pub forge: Arc<SimForge>,
    pub app: Arc<SimForge>,
    /// The kubeconfig written for the served cluster (`<dir>/kubeconfig`).
    pub kubeconfig: PathBuf,
}

/// How the simulated cluster is served.
#[derive(Debug, Clone, Default)]
pub struct ServeKube {
    /// The port on 127.0.0.1 (0 picks a free one).
    pub port: u16,
    /// Resources answered with 403 (`pods/log`, `secrets`, ...), to rehearse missing permissions.
    pub deny: Vec<String>,
    /// Keep serving after the run (`squad simulate --serve-kube`): the outcome hands the
    /// backends back so the caller decides how long.
    pub keep: bool,
}

impl SimBackends {
    /// Seeds fresh repositories for the scenario under `dir`.
    pub async fn seed(
        scenario: Arc<Scenario>,
        dir: &Path,
        clock: Clock,
        serve: &ServeKube,
    ) -> anyhow::Result<SimBackends> {
        let gitops = seed_gitops_repo(&scenario, &dir.join("gitops"))?;
        let app = seed_app_repo(&scenario, &dir.join("app"))?;
        Self::over(scenario, dir, gitops, app, clock, serve).await
    }

    /// Opens the repositories an earlier run seeded.
    pub async fn open(
        scenario: Arc<Scenario>,
        dir: &Path,
        clock: Clock,
        serve: &ServeKube,
    ) -> anyhow::Result<SimBackends> {
        let gitops = GitRepo::open(&dir.join("gitops"))?;
        let app = GitRepo::open(&dir.join("app"))?;
        Self::over(scenario, dir, gitops, app, clock, serve).await
    }

    async fn over(
        scenario: Arc<Scenario>,
        dir: &Path,
        gitops: GitRepo,
        app: GitRepo,
        clock: Clock,
        serve: &ServeKube,
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
        let sim = Arc::new(SimCluster::new(scenario.clone(), gitops, clock.clone()));
        let opts = ServeOptions {
            deny: serve.deny.iter().cloned().collect(),
            ..ServeOptions::default()
        };
        let api = SimApiServer::bind(sim.clone(), serve.port, opts)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "serve the simulated cluster on 127.0.0.1:{}: {e}",
                    serve.port
                )
            })?;
        let kubeconfig = dir.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig, ns)?;
        let cluster = KubeCluster::connect(
            &KubeOptions {
                kubeconfig: Some(kubeconfig.clone()),
                // The virtual clock may jump while a request is in flight: no timers on requests.
                no_timeouts: true,
                ..KubeOptions::default()
            },
            clock.clone(),
        )
        .await?;
        let prometheus = Prometheus::new(PrometheusOptions {
            url: api.prometheus_url(),
            timeout: None,
            queries: MetricQueries::default(),
        })
        .map_err(anyhow::Error::msg)?;
        Ok(SimBackends {
            cluster: Arc::new(cluster.with_metrics(Arc::new(prometheus))),
            sim,
            api,
            forge: Arc::new(forge),
            app: Arc::new(app_forge),
            kubeconfig,
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
    /// How the simulated cluster is served.
    pub serve: ServeKube,
    /// The crew's models (`Minds::none()`: the deterministic skills decide).
    pub minds: std::sync::Arc<squad_runtime::Minds>,
    /// A GitHub-compatible API to use for the GitOps repository instead of the built-in
    /// simulated GitHub (`--github-url`, `--github-repo`, `GITHUB_TOKEN`).
    pub github: Option<GitHubTarget>,
}

/// A real (or any GitHub-compatible) repository to rehearse an incident against.
#[derive(Clone)]
pub struct GitHubTarget {
    pub url: String,
    pub repo: String,
    pub token: String,
}

impl std::fmt::Debug for GitHubTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubTarget")
            .field("url", &self.url)
            .field("repo", &self.repo)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The GitHub adapter for `[github]`, when it names a repository; the token is read from the
/// environment variable it names.
pub fn connect_github(
    settings: &squad_config::settings::GitHubSettings,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Arc<squad_adapters::github::GitHubForge>>> {
    let Some(repo) = &settings.repo else {
        return Ok(None);
    };
    let app = match (
        settings.app_id,
        settings.installation_id,
        &settings.private_key_path,
    ) {
        (Some(app_id), Some(installation_id), Some(path)) => {
            let private_key_pem = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!(
                    "github.private_key_path {path}: cannot read the App's private key: {e}"
                )
            })?;
            Some(squad_adapters::github::GitHubApp {
                app_id,
                installation_id,
                private_key_pem,
            })
        }
        _ => None,
    };
    let token = match &app {
        Some(_) => String::new(),
        None => env(&settings.token_env)
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "github.repo is {repo}: set {} to a token that may write issues, pull requests and contents there (or configure a GitHub App)",
                    settings.token_env
                )
            })?,
    };
    Ok(Some(Arc::new(
        squad_adapters::github::GitHubForge::new(&squad_adapters::github::GitHubOptions {
            base_url: settings.url.clone(),
            repo: repo.clone(),
            token,
            app,
            draft: settings.draft_prs,
            max_attempts: 4,
            max_wait: Duration::from_secs(120),
        })
        .map_err(anyhow::Error::msg)?,
    )))
}

/// The result of a simulation.
pub struct SimulationOutcome {
    pub summary: Summary,
    /// In a dry run: what the crew would have written.
    pub intents: Vec<Intent>,
    /// With `serve.keep`: the backends, still serving the simulated cluster.
    pub served: Option<SimBackends>,
    /// Every request the crew's GitHub adapter sent to the simulated GitHub.
    pub github: Vec<squad_adapters::sim::github_api::Recorded>,
}

/// The simulated GitHub served over HTTP (the GitOps repository and the application's), and the
/// octocrab adapter the crew reaches it through: the same GitHub code as against github.com.
pub struct SimGitHub {
    pub gitops_api: squad_adapters::sim::github_api::SimGitHubApi,
    pub app_api: squad_adapters::sim::github_api::SimGitHubApi,
    pub gitops: Arc<squad_adapters::github::GitHubForge>,
    pub app: Arc<squad_adapters::github::GitHubForge>,
}

impl SimGitHub {
    /// Serves `sim`'s forges on loopback and connects the GitHub adapter to them.
    pub async fn start(sim: &SimBackends, clock: Clock) -> anyhow::Result<SimGitHub> {
        let token = format!("ghs_simulated_{}", std::process::id());
        let serve = |forge: Arc<SimForge>| {
            let clock = clock.clone();
            let token = token.clone();
            async move {
                let name = squad_runtime::ports::Forge::repo(forge.as_ref());
                let api = squad_adapters::sim::github_api::SimGitHubApi::start(
                    &name,
                    forge,
                    &token,
                    move || clock.now(),
                )
                .await?;
                let client = squad_adapters::github::GitHubForge::new(
                    &squad_adapters::github::GitHubOptions {
                        base_url: api.url(),
                        repo: name,
                        token: token.clone(),
                        max_attempts: 3,
                        max_wait: Duration::from_secs(60),
                        app: None,
                        draft: false,
                    },
                )
                .map_err(anyhow::Error::msg)?;
                anyhow::Ok((api, Arc::new(client)))
            }
        };
        let (gitops_api, gitops) = serve(sim.forge.clone()).await?;
        let (app_api, app) = serve(sim.app.clone()).await?;
        Ok(SimGitHub {
            gitops_api,
            app_api,
            gitops,
            app,
        })
    }
}

const MARKER: &str = "scenario.txt";

/// Makes sure `dir` can hold a simulation of `scenario`: it is new or empty (created here), or
/// it holds an earlier simulation of the same scenario (then `true`: resume it).
fn claim_dir(dir: &Path, scenario: &str, hint: &str) -> anyhow::Result<bool> {
    let marker = dir.join(MARKER);
    if marker.exists() {
        let text = std::fs::read_to_string(&marker)?;
        let held = text.lines().next().unwrap_or("").trim();
        if held != scenario {
            anyhow::bail!(
                "{} holds a simulation of scenario {:?}, not {:?}: {hint}",
                dir.display(),
                held,
                scenario
            );
        }
        return Ok(true);
    }
    if dir.exists() && dir.read_dir()?.next().is_some() {
        anyhow::bail!(
            "{} exists and is not a squad simulation directory: pass an empty or new --out",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir)?;
    Ok(false)
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
    let gitops: Arc<dyn squad_runtime::ports::Forge> = match &opts.github {
        None => hub.gitops.clone(),
        Some(t) => {
            if opts.approve {
                anyhow::bail!(
                    "--approve merges the simulated PR; against {} merge it on GitHub instead (Ralph follows it)",
                    t.repo
                );
            }
            Arc::new(
                squad_adapters::github::GitHubForge::new(&squad_adapters::github::GitHubOptions {
                    base_url: t.url.clone(),
                    repo: t.repo.clone(),
                    token: t.token.clone(),
                    max_attempts: 4,
                    max_wait: Duration::from_secs(120),
                    app: None,
                    draft: false,
                })
                .map_err(anyhow::Error::msg)?,
            )
        }
    };
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
    let mut summary = Summary::build(
        &scenario.name,
        &incident,
        &events,
        &sim.forge.snapshot(),
        &dir.join("gitops"),
        opts.dry_run,
    );
    if let Some(t) = &opts.github {
        summary.repo = format!("{} at {}", t.repo, t.url);
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

/// The time a simulation directory's incident log ends at, if it holds one.
fn last_event_at(dir: &Path) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    let path = dir.join("incidents.redb");
    if !path.exists() {
        return Ok(None);
    }
    let store = RedbStore::open(&path)?;
    Ok(store
        .incident_ids()?
        .iter()
        .filter_map(|id| store.events(id).ok().and_then(|e| e.last().map(|e| e.at)))
        .max())
}

/// A simulated cluster served on its own (`squad sim-cluster serve`), on a clock that runs in
/// real time from the scenario's alert, or from where a simulation in `dir` ended (so the cluster
/// after an approved fix can be looked at).
pub struct ServedCluster {
    pub backends: SimBackends,
    /// Whether `dir` held an earlier simulation that is now served.
    pub resumed: bool,
    _scratch: Option<tempfile::TempDir>,
}

impl ServedCluster {
    /// The backends, for a caller that keeps the directory itself (not a scratch one).
    pub fn into_backends(self) -> SimBackends {
        self.backends
    }

    /// Whether the cluster lives in a temporary directory (no --out was given).
    pub fn is_scratch(&self) -> bool {
        self._scratch.is_some()
    }
}

pub async fn serve_cluster(
    scenario: Scenario,
    dir: Option<PathBuf>,
    serve: &ServeKube,
) -> anyhow::Result<ServedCluster> {
    let mut scenario = scenario;
    let (dir, scratch) = match dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let marker = dir.join(MARKER);
    let resumed = claim_dir(&dir, &scenario.name, "pass another --out")?;
    if !resumed {
        // A fresh cluster is anchored at the wall clock: the scenario's times are all relative to
        // its alert, so ages in kubectl (computed from the local clock) read as they would live.
        let now = chrono::Utc::now();
        scenario.now = now - chrono::Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos()));
    }
    let anchor = std::fs::read_to_string(&marker)
        .ok()
        .and_then(|text| {
            text.lines()
                .nth(1)
                .and_then(|l| chrono::DateTime::parse_from_rfc3339(l.trim()).ok())
        })
        .map(|t| t.with_timezone(&chrono::Utc));
    let start = match anchor {
        // A cluster served before lives in wall-clock time, from the anchor its repositories
        // were seeded at.
        Some(a) => {
            scenario.now = a;
            chrono::Utc::now()
        }
        // A fresh one starts at its (wall-clock) alert; a `squad simulate` directory where its
        // incident log ends.
        None => last_event_at(&dir)?.map_or(scenario.now, |t| t + chrono::Duration::seconds(1)),
    };
    let scenario = Arc::new(scenario);
    let clock = Clock::starting_at(start);
    let backends = if resumed {
        SimBackends::open(scenario.clone(), &dir, clock, serve).await?
    } else {
        let b = SimBackends::seed(scenario.clone(), &dir, clock, serve).await?;
        std::fs::write(
            &marker,
            format!("{}\n{}\n", scenario.name, scenario.now.to_rfc3339()),
        )?;
        b
    };
    Ok(ServedCluster {
        backends,
        resumed,
        _scratch: scratch,
    })
}
