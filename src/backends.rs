//! What the daemon and the CLI run on: the cluster squad reads, the GitOps repository's forge,
//! the application's source and the alerting system, wired from `[backend]`, `[kubernetes]`,
//! `[github]` and `[alertmanager]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use squad_adapters::github::{GitHubApp, GitHubForge, GitHubOptions};
use squad_config::{BackendKind, Settings};
use squad_runtime::Clock;
use squad_runtime::ports::{Alerts, Cluster, Forge};

/// The crew's cluster, GitOps forge and application repository, and what keeps them alive.
pub struct Wired {
    pub cluster: Arc<dyn Cluster>,
    pub forge: Arc<dyn Forge>,
    pub app: Arc<dyn Forge>,
    /// The kubeconfig of the cluster squad reads (for HolmesGPT's kubectl), when there is one.
    pub kubeconfig: Option<PathBuf>,
    /// The world model fixes are replayed in: the simulation's own, or on a real cluster one
    /// seeded from its facts (none when built without the `sim` feature).
    pub replayer: Option<Arc<dyn squad_runtime::ports::Replayer>>,
    /// Where Ralph asks whether the incident's alert still fires (`[alertmanager] url`), whatever
    /// the backend; none when unset.
    pub alerts: Option<Arc<dyn Alerts>>,
    /// The simulated API servers (Kubernetes, GitHub) live as long as this value.
    #[cfg(feature = "sim")]
    _simulation: Option<(Box<squad_sim::SimBackends>, Box<squad_sim::SimGitHub>)>,
}

/// Wires the backends `settings` name under `data_dir`; `[github]`, when it names a repository,
/// is the GitOps forge whatever the backend.
pub async fn wire(settings: &Settings, data_dir: &Path, clock: Clock) -> anyhow::Result<Wired> {
    let mut wired = match settings.backend.kind {
        BackendKind::Simulation => simulation(settings, data_dir, clock.clone()).await?,
        BackendKind::Kubernetes => kubernetes(settings, data_dir, clock.clone()).await?,
    };
    if let Some(gh) = connect_github(&settings.github, |v| std::env::var(v).ok())? {
        tracing::info!(
            "GitOps repository: {} on {}",
            gh.repo(),
            settings.github.url
        );
        wired.forge = gh;
    }
    // On a real cluster, the world model is seeded from its facts (and the GitOps repository)
    // at each replay.
    #[cfg(feature = "sim")]
    if settings.backend.kind == BackendKind::Kubernetes {
        wired.replayer = Some(Arc::new(squad_sim::FactsReplayer::new(
            wired.cluster.clone(),
            wired.forge.clone(),
            clock,
        )));
    }
    #[cfg(not(feature = "sim"))]
    let _ = clock;
    wired.alerts = connect_alertmanager(&settings.alertmanager)?;
    Ok(wired)
}

#[cfg(feature = "sim")]
async fn simulation(settings: &Settings, data_dir: &Path, clock: Clock) -> anyhow::Result<Wired> {
    let scenario = squad_sim::Scenario::load(&settings.backend.scenario)?;
    let served = squad_sim::serve_cluster(
        scenario,
        Some(data_dir.join("sim")),
        &squad_sim::ServeKube::default(),
    )
    .await?;
    let b = served.into_backends();
    // The simulated GitHub over HTTP, reached through the GitHub adapter.
    let hub = squad_sim::SimGitHub::start(&b, clock).await?;
    Ok(Wired {
        cluster: b.cluster.clone(),
        forge: hub.gitops.clone(),
        app: hub.app.clone(),
        kubeconfig: Some(b.kubeconfig.clone()),
        replayer: Some(b.replayer.clone()),
        alerts: None,
        _simulation: Some((Box::new(b), Box::new(hub))),
    })
}

#[cfg(not(feature = "sim"))]
async fn simulation(_: &Settings, _: &Path, _: Clock) -> anyhow::Result<Wired> {
    anyhow::bail!(
        "backend.kind = \"simulation\": this squad was built without the `sim` feature; use kind = \"kubernetes\""
    )
}

/// A real cluster. Without `[github]`, the GitOps repository is a local git repository under
/// `data_dir` (seeded once from `[backend] scenario`'s manifests), as is the application's.
async fn kubernetes(settings: &Settings, data_dir: &Path, clock: Clock) -> anyhow::Result<Wired> {
    let cluster: Arc<dyn Cluster> =
        Arc::new(crate::diagnose::connect(settings, None, None, None, clock.clone()).await?);
    let (forge, app) = local_repositories(settings, data_dir, clock)?;
    Ok(Wired {
        cluster,
        forge,
        app,
        kubeconfig: settings.kubernetes.kubeconfig.clone().map(PathBuf::from),
        // Set in `wire`, once the forge is known.
        replayer: None,
        alerts: None,
        #[cfg(feature = "sim")]
        _simulation: None,
    })
}

#[cfg(feature = "sim")]
fn local_repositories(
    settings: &Settings,
    data_dir: &Path,
    clock: Clock,
) -> anyhow::Result<(Arc<dyn Forge>, Arc<dyn Forge>)> {
    use squad_adapters::git::GitRepo;
    use squad_sim::SimForge;
    let scenario = squad_sim::Scenario::load(&settings.backend.scenario)?;
    let repo_dir = data_dir.join("gitops");
    let repo = if repo_dir.join(".git").exists() {
        GitRepo::open(&repo_dir)?
    } else {
        squad_sim::seed_gitops_repo(&scenario, &repo_dir)?
    };
    let forge = SimForge::new(
        &format!("local/{}-gitops", scenario.workload.namespace),
        repo,
        Some(&data_dir.join("forge.json")),
        clock.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    let app_dir = data_dir.join("app");
    // Open what an earlier start seeded; seeding again would add a commit.
    let app_repo = if app_dir.join(".git").exists() {
        GitRepo::open(&app_dir)?
    } else {
        squad_sim::seed_app_repo(&scenario, &app_dir)?
    };
    let app = SimForge::new("local/app", app_repo, None, clock).map_err(anyhow::Error::msg)?;
    Ok((Arc::new(forge), Arc::new(app)))
}

#[cfg(not(feature = "sim"))]
fn local_repositories(
    settings: &Settings,
    _: &Path,
    _: Clock,
) -> anyhow::Result<(Arc<dyn Forge>, Arc<dyn Forge>)> {
    match connect_github(&settings.github, |v| std::env::var(v).ok())? {
        Some(gh) => Ok((gh.clone(), gh)),
        None => anyhow::bail!(
            "github.repo is not set: without the `sim` feature squad keeps no local GitOps repository; name the GitOps repository in [github]"
        ),
    }
}

/// The Alertmanager adapter for `[alertmanager]`, when it names a URL.
pub fn connect_alertmanager(
    settings: &squad_config::AlertmanagerSettings,
) -> anyhow::Result<Option<Arc<dyn Alerts>>> {
    let Some(am) = squad_adapters::alertmanager::Alertmanager::from_settings(settings)
        .map_err(|e| anyhow::anyhow!("alertmanager.url: {e}"))?
    else {
        return Ok(None);
    };
    tracing::info!(
        "alerts: Ralph asks Alertmanager at {} whether an incident's alert resolved",
        am.url()
    );
    Ok(Some(Arc::new(am)))
}

/// The GitHub adapter for `[github]`, when it names a repository; the token is read from the
/// environment variable it names.
pub fn connect_github(
    settings: &squad_config::settings::GitHubSettings,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Arc<GitHubForge>>> {
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
            Some(GitHubApp {
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
        GitHubForge::new(&GitHubOptions {
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
