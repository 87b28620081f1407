//! The world the replicas share: one real kube-apiserver (with etcd) seeded with several copies
//! of the `oomkilled` scenario, each its own Deployment, Node and fake kubelet; one PostgreSQL;
//! and, per run, a fresh database, a fresh GitOps repository holding every copy's manifests on
//! a simulated GitHub, and the replicas' configs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use squad_protocols::WorkloadRef;
use squad_runtime::Clock;
use squad_runtime::shards::shard_of;
use squad_sim::backends::{ServeKube, SimBackends};
use squad_sim::{Scenario, SimForge};
use squad_testkit::apiserver::{self, Options, RealApiserver};
use squad_testkit::daemon::{Api, Daemon};
use squad_testkit::kubelet::FakeKubelet;
use squad_testkit::postgres::{self, RealPostgres};
use squad_testkit::seed;
use squad_testkit::variants::{Files, files_of, rename, write};

pub const TOKEN: &str = "failover-token-0123456789abcdef";
const GITHUB_TOKEN: &str = "ghp_failover_token";
const GITHUB_TOKEN_ENV: &str = "SQUAD_FAILOVER_GITHUB_TOKEN";
pub const NAMESPACE: &str = "production";
pub const SHARDS: u32 = 8;

/// The squad binary (`SQUAD_FAILOVER_BIN` when a copy must stand still under a long run).
pub fn squad_bin() -> PathBuf {
    std::env::var_os("SQUAD_FAILOVER_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_squad").into(), Into::into)
}

/// `k` workload names, each in a shard of its own (so that replicas share them).
pub fn workload_names(k: usize) -> Vec<String> {
    let mut taken = std::collections::BTreeSet::new();
    let mut names = Vec::new();
    for i in 0.. {
        if names.len() == k || taken.len() == SHARDS as usize {
            break;
        }
        let name = format!("payment-{i}");
        if taken.insert(shard_of(&WorkloadRef::deployment(NAMESPACE, &name), SHARDS)) {
            names.push(name);
        }
    }
    names
}

/// The `oomkilled` scenario's files with its Deployment renamed `name` and its Node `node`
/// (paths too).
fn copy_of(base: &Files, name: &str, node: &str) -> Files {
    base.iter()
        .map(|(path, text)| {
            let text = rename(&rename(text, "payment-service", name), "worker-1", node);
            (rename(path, "payment-service", name), text)
        })
        .collect()
}

/// One scenario holding every copy's manifests and history (its kustomizations list them all),
/// for the GitOps repository the replicas share.
fn combined(copies: &[Files]) -> Files {
    let mut out = Files::new();
    let mut resources: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for files in copies {
        for (path, text) in files {
            if path.ends_with("kustomization.yaml") {
                let lines = resources.entry(path.clone()).or_default();
                lines.extend(
                    text.lines()
                        .filter(|l| l.trim_start().starts_with("- "))
                        .map(str::to_owned),
                );
                out.entry(path.clone()).or_insert_with(|| text.clone());
            } else if path.starts_with("manifests/") || path.starts_with("history/") {
                out.insert(path.clone(), text.clone());
            }
        }
    }
    for (k, v) in copies[0].iter() {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (path, lines) in resources {
        let head: String = out[&path]
            .lines()
            .take_while(|l| !l.trim_start().starts_with("- "))
            .map(|l| format!("{l}\n"))
            .collect();
        out.insert(path, format!("{head}{}\n", lines.join("\n")));
    }
    out
}

/// (workload name, its copy's Prometheus URL).
type Routes = Arc<Vec<(String, String)>>;

/// One Prometheus API for every copy: a query naming a copy's workload (its pods, its
/// Deployment) goes to that copy's simulated Prometheus, any other to the first copy's.
async fn prometheus_router(routes: Vec<(String, String)>) -> String {
    use axum::body::Bytes;
    use axum::extract::{OriginalUri, State};
    use axum::http::{Method, StatusCode};
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let routes = Arc::new(routes);
    let app = axum::Router::new()
        .fallback(
            |State((http, routes)): State<(reqwest::Client, Routes)>,
             method: Method,
             OriginalUri(uri): OriginalUri,
             body: Bytes| async move {
                let query = uri.query().unwrap_or("");
                // Without backslashes: a pod regex escapes a name's dashes.
                let text = format!("{query} {}", String::from_utf8_lossy(&body))
                    .replace("%5C", "")
                    .replace('\\', "");
                // Names are unreserved characters: they appear as they are, a quote after one
                // encoded or not.
                let names = |name: &str| {
                    ["-", "\"", "%22"]
                        .iter()
                        .any(|end| text.contains(&format!("{name}{end}")))
                };
                // The longest name first: payment-1 is not payment-10.
                let target = routes
                    .iter()
                    .filter(|(name, _)| names(name))
                    .max_by_key(|(name, _)| name.len())
                    .unwrap_or(&routes[0]);
                let url = match uri.query() {
                    Some(q) => format!("{}{}?{q}", target.1, uri.path()),
                    None => format!("{}{}", target.1, uri.path()),
                };
                let answer = http
                    .request(method, url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await;
                match answer {
                    Ok(r) => {
                        let status = StatusCode::from_u16(r.status().as_u16())
                            .unwrap_or(StatusCode::BAD_GATEWAY);
                        (status, r.bytes().await.unwrap_or_default())
                    }
                    Err(e) => (StatusCode::BAD_GATEWAY, Bytes::from(e.to_string())),
                }
            },
        )
        .with_state((http, routes));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// The apiserver, PostgreSQL and the seeded copies, shared by every run.
pub struct Fleet {
    pub apiserver: RealApiserver,
    pub postgres: RealPostgres,
    pub workloads: Vec<String>,
    combined: Scenario,
    prometheus: String,
    _kubelets: Vec<FakeKubelet>,
    _backends: Vec<SimBackends>,
    dir: tempfile::TempDir,
}

impl Fleet {
    /// None (with a message) when the apiserver or PostgreSQL is not installed, outside CI.
    pub async fn start(test: &str, workloads: usize) -> Option<Fleet> {
        if !postgres::available_or_skip(test).unwrap() {
            return None;
        }
        let apiserver = apiserver::start_or_skip(test, Options::default())
            .await
            .unwrap()?;
        let postgres = RealPostgres::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let base = files_of("oomkilled").unwrap();
        let names = workload_names(workloads);
        let admin = seed::client(apiserver.kubeconfig_path()).await.unwrap();
        let (cert, key) = apiserver.kubelet_tls();
        let mut copies = Vec::new();
        let (mut kubelets, mut backends) = (Vec::new(), Vec::new());
        for (i, name) in names.iter().enumerate() {
            let files = copy_of(&base, name, &format!("worker-{i}"));
            let path = write(&files, &dir.path().join(format!("scenario-{name}"))).unwrap();
            let scenario = Scenario::load(path.to_str().unwrap()).unwrap();
            let clock = Clock::starting_at(scenario.now);
            let b = SimBackends::seed(
                Arc::new(scenario),
                &dir.path().join(format!("backends-{name}")),
                clock,
                &ServeKube::default(),
            )
            .await
            .unwrap();
            let kubelet = FakeKubelet::start(b.sim.clone(), &cert, &key)
                .await
                .unwrap();
            let world = b.sim.world().unwrap();
            seed::seed(&admin, &world, kubelet.port())
                .await
                .unwrap_or_else(|e| panic!("seeding {name}: {e:#}\n{}", apiserver.log_tail()));
            copies.push(files);
            kubelets.push(kubelet);
            backends.push(b);
        }
        let prometheus = prometheus_router(
            names
                .iter()
                .zip(&backends)
                .map(|(n, b)| (n.clone(), b.api.prometheus_url()))
                .collect(),
        )
        .await;
        let all = write(&combined(&copies), &dir.path().join("combined")).unwrap();
        let combined = Scenario::load(all.to_str().unwrap()).unwrap();
        Some(Fleet {
            apiserver,
            postgres,
            workloads: names,
            combined,
            prometheus,
            _kubelets: kubelets,
            _backends: backends,
            dir,
        })
    }

    /// The alerts of a run: one per workload and alert name.
    pub fn alerts(&self, names: &[&str]) -> Value {
        let alerts: Vec<Value> = self
            .workloads
            .iter()
            .flat_map(|w| {
                names.iter().map(move |n| {
                    json!({"name": n, "status": "firing",
                           "labels": {"namespace": NAMESPACE, "pod": format!("{w}-7d4b9c-xk2p"),
                                      "container": "payment-api", "severity": "critical"}})
                })
            })
            .collect();
        json!({ "alerts": alerts })
    }
}

/// One run: a fresh database and GitOps repository, and `replicas` daemons sharing them.
pub struct Run {
    pub forge: Arc<SimForge>,
    pub repo: PathBuf,
    pub seed: git2::Oid,
    pub daemons: Vec<Daemon>,
    pub api: Api,
    _github: squad_sim::github_api::SimGitHubApi,
}

impl Run {
    pub async fn start(fleet: &Fleet, name: &str, replicas: usize) -> Run {
        let dir = fleet.dir.path().join(name);
        let db = fleet.postgres.create_database(name).unwrap();
        let repo = dir.join("remote");
        let git = squad_sim::seed_gitops_repo(&fleet.combined, &repo).unwrap();
        let seed = squad_testkit::effects::main_head(&repo).unwrap();
        let forge = Arc::new(
            SimForge::new(
                "acme/gitops",
                git,
                None,
                Clock::starting_at(chrono::Utc::now()),
            )
            .unwrap(),
        );
        let github = squad_sim::github_api::SimGitHubApi::start(
            "acme/gitops",
            forge.clone(),
            GITHUB_TOKEN,
            chrono::Utc::now,
        )
        .await
        .unwrap();
        let mut daemons = Vec::new();
        for r in 0..replicas {
            let config = config(
                &dir.join(format!("r{r}")),
                &format!("r{r}"),
                name,
                &db,
                fleet.apiserver.kubeconfig_path(),
                &github.url(),
                &fleet.prometheus,
            );
            daemons.push(
                Daemon::start(&squad_bin(), &config, &[(GITHUB_TOKEN_ENV, GITHUB_TOKEN)]).unwrap(),
            );
        }
        Run {
            forge,
            repo,
            seed,
            daemons,
            api: Api::new(TOKEN).unwrap(),
            _github: github,
        }
    }
}

/// A replica's `squad.toml` (written under `dir`): the kube backend on the real apiserver, the
/// shared database, Leases named `<prefix>-…` that last 6 s, the copies' simulated Prometheus
/// APIs behind one router, the simulated GitHub; nobody
/// merges, so an incident settles once its PR is open.
fn config(
    dir: &Path,
    identity: &str,
    prefix: &str,
    db: &str,
    kubeconfig: &Path,
    github: &str,
    prometheus: &str,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("squad.toml");
    let prefix = prefix.replace('_', "-");
    std::fs::write(
        &path,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
shutdown_grace_seconds = 2
[server.auth]
tokens = ["{TOKEN}"]
[server.rate_limit]
per_second = 0
[backend]
kind = "kubernetes"
scenario = "oomkilled"
data_dir = "{data}"
[store]
url = "{db}"
[replicas]
enabled = true
shards = {SHARDS}
namespace = "default"
identity = "{identity}"
lease_prefix = "{prefix}"
lease_seconds = 6
renew_seconds = 1
margin_seconds = 2
[kubernetes]
kubeconfig = "{kubeconfig}"
timeout_seconds = 8
[prometheus]
url = "{prometheus}"
timeout_seconds = 30
[github]
url = "{github}"
repo = "acme/gitops"
token_env = "{GITHUB_TOKEN_ENV}"
[crew]
retry_initial_ms = 200
retry_max_ms = 3000
[verification]
merge_wait_hours = 0
"#,
            data = dir.join("data").display(),
            kubeconfig = kubeconfig.display(),
        ),
    )
    .unwrap();
    path
}
