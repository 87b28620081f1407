//! The real servers a row runs against, each behind its own fault proxy: the simulated cluster
//! (`squad sim-cluster serve`, its Kubernetes API and its Prometheus API through two proxies),
//! GitHub (`SimGitHubApi` over a fresh `SimForge`), a model server and a HolmesGPT server; and
//! the daemon itself, spawned, killed with SIGKILL and restarted on the same data directory.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use squad_testkit::daemon::{Api, Daemon};
use std::sync::Arc;

use serde_json::json;

use crate::proxy::Proxy;

pub const TOKEN: &str = "fault-matrix-token-0123456789";
const GITHUB_TOKEN: &str = "ghp_fault_matrix_token";
const GITHUB_TOKEN_ENV: &str = "SQUAD_FAULT_MATRIX_GITHUB_TOKEN";

/// The squad binary: `SQUAD_FAULT_MATRIX_BIN` (scripts/fault-matrix sets a copy, since other
/// builds in a shared target directory may re-link `target/debug/squad` under a running matrix),
/// else cargo's.
pub fn squad_bin() -> std::path::PathBuf {
    std::env::var_os("SQUAD_FAULT_MATRIX_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_squad").into(), Into::into)
}

/// One `squad sim-cluster serve oomkilled`, shared by every row (they only read it).
pub struct Cluster {
    child: Child,
    pub server: String,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cluster {
    pub fn start(scenario: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("cluster");
        let mut child = Command::new(squad_bin())
            .args(["sim-cluster", "serve", scenario, "--out"])
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && !line.contains("is served at") {
            line.clear();
        }
        assert!(line.contains("is served at"), "sim-cluster did not start");
        std::thread::spawn(move || for _ in reader.lines() {});
        let server = std::fs::read_to_string(out.join("kubeconfig"))
            .unwrap()
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: ").map(str::to_owned))
            .unwrap();
        assert!(server.starts_with("http://127.0.0.1:"), "{server}");
        Cluster {
            child,
            server,
            _dir: dir,
        }
    }
}

/// The five ports' proxies.
pub struct Ports {
    pub kube: Proxy,
    pub prometheus: Proxy,
    pub github: Proxy,
    pub model: Proxy,
    pub holmes: Proxy,
}

/// A row's world: a fresh GitOps repository on a simulated GitHub, the servers, the proxies
/// and the daemon's config and data directory.
pub struct World {
    _dir: tempfile::TempDir,
    pub forge: Arc<squad_sim::SimForge>,
    pub repo: PathBuf,
    pub config: PathBuf,
    pub ports: Ports,
    _github: squad_sim::github_api::SimGitHubApi,
}

/// An axum app on 127.0.0.1:0; returns its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A model that answers every question with prose: each member's check rejects it and the
/// deterministic skill decides (the members still call it, twice each).
async fn model_server() -> String {
    serve(axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            axum::Json(json!({
                "id": "x", "object": "chat.completion", "created": 0, "model": "nonsense",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Have you tried turning it off and on again?"}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 12, "total_tokens": 112}
            }))
        }),
    ))
    .await
}

/// A HolmesGPT server (`POST /api/chat`) that answers the diagnosis squad asks for.
async fn holmes_server() -> String {
    let analysis = json!({
        "root_cause": "memory_under_provisioned",
        "summary": "the container is OOMKilled at its memory limit",
        "confidence": 0.8,
        "recommendations": ["raise the memory limit"],
        "memory_limit": "512Mi",
        "memory_peak": "1.2Gi"
    })
    .to_string();
    serve(axum::Router::new().route(
        "/api/chat",
        axum::routing::post(move || {
            let analysis = analysis.clone();
            async move {
                axum::Json(json!({"analysis": analysis, "tool_calls": [],
                                  "metadata": {"usage": {"prompt_tokens": 10, "completion_tokens": 10}}}))
            }
        }),
    ))
    .await
}

impl World {
    pub async fn start(cluster: &Cluster, scenario: &str, holmes: bool) -> World {
        let dir = tempfile::tempdir().unwrap();
        let scenario_def = squad_sim::Scenario::embedded(scenario).unwrap();
        let repo = dir.path().join("remote");
        let git = squad_sim::seed_gitops_repo(&scenario_def, &repo).unwrap();
        let forge = Arc::new(
            squad_sim::SimForge::new(
                "acme/gitops",
                git,
                None,
                squad_runtime::Clock::starting_at(chrono::Utc::now()),
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
        let ports = Ports {
            kube: Proxy::start(&cluster.server).await,
            prometheus: Proxy::start(&cluster.server).await,
            github: Proxy::start(&github.url()).await,
            model: Proxy::start(&model_server().await).await,
            holmes: Proxy::start(&holmes_server().await).await,
        };
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {}\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    user: squad\n    namespace: production\ncurrent-context: sim\nusers:\n- name: squad\n  user: {{}}\n",
                ports.kube.url()
            ),
        )
        .unwrap();
        let diagnoser = if holmes {
            format!(
                "[diagnoser]\nkind = \"holmes\"\n[holmes]\ntransport = \"server\"\nserver_url = \"{}\"\ntimeout_seconds = 3\n",
                ports.holmes.url()
            )
        } else {
            String::new()
        };
        let config = dir.path().join("squad.toml");
        std::fs::write(
            &config,
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
scenario = "{scenario}"
data_dir = "{data}"
[intake]
repeat_note_seconds = 1
[kubernetes]
kubeconfig = "{kubeconfig}"
timeout_seconds = 8
[prometheus]
url = "{prometheus}/prometheus"
timeout_seconds = 30
[github]
url = "{github}"
repo = "acme/gitops"
token_env = "{GITHUB_TOKEN_ENV}"
[crew]
retry_initial_ms = 200
retry_max_ms = 3000
[llm.profiles.local]
base_url = "{model}/v1"
model = "nonsense"
tool_mode = "json_schema"
timeout_seconds = 3
{diagnoser}"#,
                data = dir.path().join("data").display(),
                kubeconfig = kubeconfig.display(),
                prometheus = ports.prometheus.url(),
                github = ports.github.url(),
                model = ports.model.url(),
            ),
        )
        .unwrap();
        World {
            _dir: dir,
            forge,
            repo,
            config,
            ports,
            _github: github,
        }
    }
}

/// The daemon on a row's config, with the GitHub token its config names.
pub fn daemon(config: &Path) -> Daemon {
    Daemon::start(&squad_bin(), config, &[(GITHUB_TOKEN_ENV, GITHUB_TOKEN)]).unwrap()
}

/// The daemon's HTTP API with the rows' token.
pub fn api() -> Api {
    Api::new(TOKEN).unwrap()
}
