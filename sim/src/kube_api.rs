//! The simulated cluster served over HTTP as a Kubernetes API server (read-only), with its
//! metrics beside it: `/metrics` for a Prometheus to scrape and a Prometheus-compatible query API
//! under `/prometheus`.
//!
//! It serves what `kubectl` and client libraries need: discovery (`/version`, `/api`, `/apis`,
//! each group version's resource list with short names), lists and gets for every namespace or
//! one, label and field selectors, `Status` errors, `meta.k8s.io/v1` Tables (so `kubectl get`
//! prints the same columns as against a real cluster), pod logs as `text/plain` with `container`,
//! `previous` and `tailLines`, and Events under both `v1` and `events.k8s.io/v1`. It is plain
//! HTTP on loopback: kubectl sends no bearer token over plain HTTP, so none is required; a client
//! that sends a wrong one is refused (401). For tests, resources can be denied (403) and every API
//! request is counted.
//!
//! This module routes requests and answers them; beside it are the data and the rules it serves
//! them with: `resources` (the resource kinds and the discovery documents), `selectors` (label
//! and field selectors), `tables` (kubectl's columns) and `logs` (pod logs).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::SimCluster;
use super::cluster::ts;
use squad_gitops::objects;

mod logs;
mod resources;
mod selectors;
mod tables;
#[cfg(test)]
mod tests;

use resources::{RESOURCES, api_groups, api_versions, resource_list, served_as, version};
use selectors::selected;
pub use tables::human_duration;

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// A bearer token written into the kubeconfig; a request that carries another is refused.
    pub token: Option<String>,
    /// Resources (`pods/log`, `secrets`, ...) answered with 403 Forbidden, as an RBAC-limited
    /// user would see them.
    pub deny: BTreeSet<String>,
}

struct Shared {
    cluster: Arc<SimCluster>,
    opts: ServeOptions,
    requests: AtomicU64,
}

/// A running simulated API server.
pub struct SimApiServer {
    addr: SocketAddr,
    token: Option<String>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SimApiServer {
    /// Serves `cluster` on `listener` until dropped.
    pub fn serve(cluster: Arc<SimCluster>, listener: TcpListener, opts: ServeOptions) -> Self {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let token = opts.token.clone();
        let shared = Arc::new(Shared {
            cluster: cluster.clone(),
            opts,
            requests: AtomicU64::new(0),
        });
        let app = router(shared.clone(), cluster);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("simulated API server stopped: {e}");
            }
        });
        SimApiServer {
            addr,
            token,
            shared,
            task,
        }
    }

    /// Binds 127.0.0.1:`port` (0 picks a free port) and serves `cluster` there.
    pub async fn bind(
        cluster: Arc<SimCluster>,
        port: u16,
        opts: ServeOptions,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        Ok(Self::serve(cluster, listener, opts))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Kubernetes API's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL of the Prometheus query API.
    pub fn prometheus_url(&self) -> String {
        format!("http://{}/prometheus", self.addr)
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Kubernetes API requests served so far (discovery included; metrics not).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Writes a kubeconfig for this server (context `squad-simulation`, default namespace
    /// `namespace`).
    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) -> std::io::Result<()> {
        let user = match &self.token {
            Some(t) => format!("\n    token: {t}"),
            None => " {}".to_owned(),
        };
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: squad-simulation\n  cluster:\n    server: {}\ncontexts:\n- name: squad-simulation\n  context:\n    cluster: squad-simulation\n    user: squad\n    namespace: {namespace}\ncurrent-context: squad-simulation\nusers:\n- name: squad\n  user:{user}\npreferences: {{}}\n",
            self.url(),
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text)
    }
}

impl Drop for SimApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(shared: Arc<Shared>, cluster: Arc<SimCluster>) -> Router {
    let prometheus = super::prom_api::router(cluster);
    Router::new()
        .fallback(handle)
        .with_state(shared)
        .nest("/prometheus", prometheus.clone())
        // The scrape endpoint, at the top level as exporters serve it.
        .route_service("/metrics", prometheus.into_service::<Body>())
}

/// A `Status` error as the API server sends it.
fn status(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn json_response(v: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn query_pairs(req: &Request) -> Vec<(String, String)> {
    req.uri().query().map(url_decode_pairs).unwrap_or_default()
}

fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let path = if path.is_empty() {
        "/".to_owned()
    } else {
        path
    };
    if matches!(path.as_str(), "/healthz" | "/readyz" | "/livez") {
        return (StatusCode::OK, "ok").into_response();
    }
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let sent = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v));
    let refused = match (sent, &shared.opts.token) {
        (Some(sent), Some(token)) => sent != token,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if refused {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized",
            None,
        );
    }
    if req.method() != axum::http::Method::GET {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the simulated cluster is read-only: only GET is served",
            None,
        );
    }
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let q = query_pairs(&req);
    let table = wants_table(req.headers());
    match segs.as_slice() {
        ["version"] => json_response(&version()),
        ["api"] => json_response(&api_versions()),
        ["apis"] => json_response(&api_groups()),
        ["api", "v1"] => json_response(&resource_list("", "v1")),
        ["apis", g, v] => {
            if RESOURCES.iter().any(|r| r.group == *g && r.version == *v) {
                json_response(&resource_list(g, v))
            } else {
                status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "the server could not find the requested resource",
                    None,
                )
            }
        }
        ["api", "v1", rest @ ..] => resource_request(&shared, "", "v1", rest, &q, table),
        ["apis", g, v, rest @ ..] => resource_request(&shared, g, v, rest, &q, table),
        _ => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
            None,
        ),
    }
}

fn wants_table(h: &HeaderMap) -> bool {
    h.get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .next()
                .is_some_and(|first| first.contains("as=Table"))
        })
}

fn resource_request(
    shared: &Shared,
    group: &str,
    version: &str,
    rest: &[&str],
    q: &[(String, String)],
    table: bool,
) -> Response {
    // [plural] | [plural, name] | [namespaces, ns, plural] | [namespaces, ns, plural, name] |
    // [namespaces, ns, pods, name, log]
    let (namespace, plural, name, sub) = match rest {
        ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
        ["namespaces", ns, plural] => (Some(*ns), *plural, None, None),
        [plural, name] => (None, *plural, Some(*name), None),
        [plural] => (None, *plural, None, None),
        _ => {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
                None,
            );
        }
    };
    let Some(r) = RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
    else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
            None,
        );
    };
    let resource_key = match sub {
        Some(s) => format!("{plural}/{s}"),
        None => plural.to_owned(),
    };
    if shared.opts.deny.contains(&resource_key) {
        let group_name = if group.is_empty() { "" } else { group };
        let where_ = namespace.map_or(" at the cluster scope".to_owned(), |ns| {
            format!(" in the namespace \"{ns}\"")
        });
        let verb = if name.is_some() { "get" } else { "list" };
        let what = name.map_or(plural.to_owned(), |n| format!("{plural} \"{n}\""));
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "{what} is forbidden: User \"squad\" cannot {verb} resource \"{resource_key}\" in API group \"{group_name}\"{where_}"
            ),
            Some(json!({"name": name.unwrap_or(""), "kind": plural})),
        );
    }
    if !r.namespaced && namespace.is_some() {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
            None,
        );
    }
    let world = match shared.cluster.world() {
        Ok(w) => w,
        Err(e) => {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &format!("simulated cluster: {e}"),
                None,
            );
        }
    };
    if let Some(sub) = sub {
        return match (r.kind, sub, namespace, name) {
            ("Pod", "log", Some(ns), Some(pod)) => logs::pod_log(shared, &world, ns, pod, q),
            _ => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
                None,
            ),
        };
    }
    let objects: Vec<Value> = world
        .of_kind(r.source_kind, namespace.filter(|_| r.namespaced))
        .map(|o| served_as(r, o))
        .collect();
    match name {
        Some(n) => match objects.into_iter().find(|o| objects::name(o) == n) {
            Some(o) if table => json_response(&tables::to_table(
                r.kind,
                &[o],
                world.now,
                param(q, "includeObject"),
            )),
            Some(o) => json_response(&o),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!(
                    "{} \"{n}\" not found",
                    if r.group.is_empty() {
                        r.plural.to_owned()
                    } else {
                        format!("{}.{}", r.plural, r.group)
                    }
                ),
                Some(json!({"name": n, "group": r.group, "kind": r.plural})),
            ),
        },
        None => {
            let mut items = Vec::new();
            for o in objects {
                match selected(&o, q) {
                    Ok(true) => items.push(o),
                    Ok(false) => {}
                    Err(msg) => return status(StatusCode::BAD_REQUEST, "BadRequest", &msg, None),
                }
            }
            items.sort_by(|a, b| {
                (a["metadata"]["namespace"].as_str(), objects::name(a))
                    .cmp(&(b["metadata"]["namespace"].as_str(), objects::name(b)))
            });
            if table {
                json_response(&tables::to_table(
                    r.kind,
                    &items,
                    world.now,
                    param(q, "includeObject"),
                ))
            } else {
                json_response(&json!({
                    "kind": format!("{}List", r.kind), "apiVersion": r.group_version(),
                    "metadata": {"resourceVersion": "1"}, "items": items,
                }))
            }
        }
    }
}

/// Creation time of an object as served (for tests and the seeder).
pub fn creation_time(o: &Value) -> Option<DateTime<Utc>> {
    o["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Formats a time as the API server does.
pub fn api_time(t: DateTime<Utc>) -> String {
    ts(t)
}
