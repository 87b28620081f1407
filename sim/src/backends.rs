//! The simulated world wired to the adapters the crew uses on real systems: the simulated cluster
//! served on loopback as a Kubernetes and a Prometheus API and read through the kube-rs and
//! Prometheus adapters, the simulated GitHub served over HTTP and written through the octocrab
//! adapter, and the output directory a simulation lives in (seeded once, resumed after).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use squad_adapters::git::GitRepo;
use squad_adapters::github::{GitHubForge, GitHubOptions};
use squad_adapters::kubernetes::{KubeCluster, KubeOptions};
use squad_adapters::prometheus::{MetricQueries, Prometheus, PrometheusOptions};
use squad_runtime::{Clock, IncidentStore, RedbStore};

use crate::SimError;
use crate::github_api::SimGitHubApi;
use crate::kube_api::{ServeOptions, SimApiServer};
use crate::{Scenario, SimCluster, SimForge, seed_app_repo, seed_gitops_repo};

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
    /// The world model B'Elanna replays a fix in: a fork of this world.
    pub replayer: Arc<crate::SimReplayer>,
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
    ) -> Result<SimBackends, SimError> {
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
    ) -> Result<SimBackends, SimError> {
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
    ) -> Result<SimBackends, SimError> {
        let ns = &scenario.workload.namespace;
        let forge = SimForge::new(
            &format!("acme/{ns}-gitops"),
            gitops.clone(),
            Some(&dir.join("forge.json")),
            clock.clone(),
        )
        .map_err(SimError::adapter("the simulated GitOps forge"))?;
        let app_forge = SimForge::new(
            &format!("acme/{}", scenario.workload.name),
            app,
            None,
            clock.clone(),
        )
        .map_err(SimError::adapter("the simulated application forge"))?;
        let replayer = Arc::new(crate::SimReplayer::new(
            scenario.clone(),
            gitops.clone(),
            clock.clone(),
        ));
        let sim = Arc::new(SimCluster::new(scenario.clone(), gitops, clock.clone()));
        // A repository the world renders (Kustomize, Helm) fails here, in words, rather than as
        // every read the crew makes.
        sim.check_renders()?;
        let opts = ServeOptions {
            deny: serve.deny.iter().cloned().collect(),
            ..ServeOptions::default()
        };
        let api = SimApiServer::bind(sim.clone(), serve.port, opts)
            .await
            .map_err(SimError::io(format!(
                "serve the simulated cluster on 127.0.0.1:{}",
                serve.port
            )))?;
        let kubeconfig = dir.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig, ns)
            .map_err(SimError::io(format!("write {}", kubeconfig.display())))?;
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
        .map_err(|e| SimError::Adapter {
            what: "the Prometheus adapter".into(),
            detail: e.to_string(),
        })?;
        Ok(SimBackends {
            cluster: Arc::new(cluster.with_metrics(Arc::new(prometheus))),
            sim,
            api,
            forge: Arc::new(forge),
            app: Arc::new(app_forge),
            kubeconfig,
            replayer,
        })
    }
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

/// The simulated GitHub served over HTTP (the GitOps repository and the application's), and the
/// octocrab adapter the crew reaches it through: the same GitHub code as against github.com.
pub struct SimGitHub {
    pub gitops_api: SimGitHubApi,
    pub app_api: SimGitHubApi,
    pub gitops: Arc<GitHubForge>,
    pub app: Arc<GitHubForge>,
}

impl SimGitHub {
    /// Serves `sim`'s forges on loopback and connects the GitHub adapter to them.
    pub async fn start(sim: &SimBackends, clock: Clock) -> Result<SimGitHub, SimError> {
        let token = format!("ghs_simulated_{}", std::process::id());
        let serve = |forge: Arc<SimForge>| {
            let clock = clock.clone();
            let token = token.clone();
            async move {
                let name = squad_runtime::ports::Forge::repo(forge.as_ref());
                let api = SimGitHubApi::start(&name, forge, &token, move || clock.now())
                    .await
                    .map_err(SimError::io(format!(
                        "serve the simulated GitHub for {name}"
                    )))?;
                let client = GitHubForge::new(&GitHubOptions {
                    base_url: api.url(),
                    repo: name,
                    token: token.clone(),
                    max_attempts: 3,
                    max_wait: Duration::from_secs(60),
                    app: None,
                    draft: false,
                })
                .map_err(SimError::adapter(
                    "the GitHub adapter for the simulated GitHub",
                ))?;
                Ok::<_, SimError>((api, Arc::new(client)))
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

pub const MARKER: &str = "scenario.txt";

/// Makes sure `dir` can hold a simulation of `scenario`: it is new or empty (created here), or
/// it holds an earlier simulation of the same scenario (then `true`: resume it).
pub fn claim_dir(dir: &Path, scenario: &str, hint: &str) -> Result<bool, SimError> {
    let marker = dir.join(MARKER);
    if marker.exists() {
        let text = std::fs::read_to_string(&marker)
            .map_err(SimError::io(format!("read {}", marker.display())))?;
        let held = text.lines().next().unwrap_or("").trim();
        if held != scenario {
            return Err(SimError::Directory(format!(
                "{} holds a simulation of scenario {:?}, not {:?}: {hint}",
                dir.display(),
                held,
                scenario
            )));
        }
        return Ok(true);
    }
    let listed = SimError::io(format!("list {}", dir.display()));
    if dir.exists() && dir.read_dir().map_err(listed)?.next().is_some() {
        return Err(SimError::Directory(format!(
            "{} exists and is not a squad simulation directory: pass an empty or new --out",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(SimError::io(format!("create {}", dir.display())))?;
    Ok(false)
}

/// The time a simulation directory's incident log ends at, if it holds one.
fn last_event_at(dir: &Path) -> Result<Option<chrono::DateTime<chrono::Utc>>, SimError> {
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
) -> Result<ServedCluster, SimError> {
    let mut scenario = scenario;
    let (dir, scratch) = match dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile::tempdir().map_err(SimError::io("create a scratch directory"))?;
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
        )
        .map_err(SimError::io(format!("write {}", marker.display())))?;
        b
    };
    Ok(ServedCluster {
        backends,
        resumed,
        _scratch: scratch,
    })
}
