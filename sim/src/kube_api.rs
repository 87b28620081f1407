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
use super::cluster::{World, ts};
use squad_gitops::objects;

/// One kind of resource the server serves.
#[derive(Debug, Clone, Copy)]
struct Resource {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    /// The kind of the objects in the world it is made from (core Events back events.k8s.io too).
    source_kind: &'static str,
}

const fn res(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
) -> Resource {
    Resource {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short,
        source_kind: kind,
    }
}

const RESOURCES: &[Resource] = &[
    res("", "v1", "pods", "pod", "Pod", true, &["po"]),
    res("", "v1", "events", "event", "Event", true, &["ev"]),
    res("", "v1", "nodes", "node", "Node", false, &["no"]),
    res(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
    ),
    res("", "v1", "secrets", "secret", "Secret", true, &[]),
    res(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
    ),
    res("", "v1", "services", "service", "Service", true, &["svc"]),
    res(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
    ),
    res(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
    ),
    res(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
    ),
    res(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
    ),
    res(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
    ),
    res(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
    ),
    res(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        &["netpol"],
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        &[],
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        &[],
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        &[],
    ),
    Resource {
        source_kind: "Event",
        ..res(
            "events.k8s.io",
            "v1",
            "events",
            "event",
            "Event",
            true,
            &["ev"],
        )
    },
    res(
        "aquasecurity.github.io",
        "v1alpha1",
        "vulnerabilityreports",
        "vulnerabilityreport",
        "VulnerabilityReport",
        true,
        &["vuln", "vulns"],
    ),
];

impl Resource {
    fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

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
        ["version"] => json_response(&json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.4-squad-sim",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"
        })),
        ["api"] => json_response(&json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]
        })),
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

fn api_groups() -> Value {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, vs)) => {
                if !vs.contains(&r.version) {
                    vs.push(r.version)
                }
            }
            None => groups.push((r.group, vec![r.version])),
        }
    }
    let groups: Vec<Value> = groups
        .iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions.clone(), "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
            "kind": r.kind, "verbs": ["get", "list"],
        });
        if !r.short.is_empty() {
            entry["shortNames"] = json!(r.short);
        }
        if matches!(
            r.kind,
            "Pod"
                | "Deployment"
                | "ReplicaSet"
                | "StatefulSet"
                | "DaemonSet"
                | "Service"
                | "HorizontalPodAutoscaler"
        ) {
            entry["categories"] = json!(["all"]);
        }
        resources.push(entry);
        if r.kind == "Pod" {
            resources.push(
                json!({"name": "pods/log", "singularName": "", "namespaced": true,
                                  "kind": "Pod", "verbs": ["get"]}),
            );
        }
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
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
            ("Pod", "log", Some(ns), Some(pod)) => pod_log(shared, &world, ns, pod, q),
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
            Some(o) if table => json_response(&to_table(r, vec![o], world.now, q)),
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
                json_response(&to_table(r, items, world.now, q))
            } else {
                json_response(&json!({
                    "kind": format!("{}List", r.kind), "apiVersion": r.group_version(),
                    "metadata": {"resourceVersion": "1"}, "items": items,
                }))
            }
        }
    }
}

/// An object as this resource's group version presents it.
fn served_as(r: &Resource, o: &Value) -> Value {
    let mut o = o.clone();
    if r.group == "events.k8s.io" {
        // The server's conversion from a core Event: field for field, inventing nothing (a
        // kubelet's Events have no `action`, so none is served).
        let series = o["count"].as_u64().unwrap_or(1);
        let action = o.get("action").cloned();
        o = json!({
            "metadata": o["metadata"].clone(),
            "eventTime": o.get("eventTime").cloned().unwrap_or(Value::Null),
            "reportingController": o["reportingComponent"].clone(),
            "reportingInstance": o["reportingInstance"].clone(),
            "reason": o["reason"].clone(),
            "regarding": o["involvedObject"].clone(),
            "note": o["message"].clone(),
            "type": o["type"].clone(),
            "deprecatedSource": o["source"].clone(),
            "deprecatedFirstTimestamp": o["firstTimestamp"].clone(),
            "deprecatedLastTimestamp": o["lastTimestamp"].clone(),
            "deprecatedCount": series,
        });
        if let Some(action) = action {
            o["action"] = action;
        }
    }
    o["apiVersion"] = json!(r.group_version());
    o["kind"] = json!(r.kind);
    o
}

/// The value at a dotted field path (`involvedObject.name`, `metadata.namespace`, `spec.nodeName`).
fn field<'a>(o: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(o, |v, k| &v[k])
}

fn value_str(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether an object matches the request's `labelSelector` and `fieldSelector`.
fn selected(o: &Value, q: &[(String, String)]) -> Result<bool, String> {
    if let Some(sel) = param(q, "fieldSelector").filter(|s| !s.is_empty()) {
        for term in sel.split(',') {
            let (key, want, negate) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, true)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, v, false)
            } else {
                return Err(format!(
                    "invalid field selector: {term:?}: expected key=value"
                ));
            };
            let have = value_str(field(o, key.trim()));
            if (have == want.trim()) == negate {
                return Ok(false);
            }
        }
    }
    if let Some(sel) = param(q, "labelSelector").filter(|s| !s.is_empty()) {
        let labels = &o["metadata"]["labels"];
        for term in split_label_terms(sel) {
            let term = term.trim();
            let ok = if let Some((k, rest)) = term.split_once(" notin ") {
                let set = parse_set(rest)?;
                !set.contains(&value_str(&labels[k.trim()]))
            } else if let Some((k, rest)) = term.split_once(" in ") {
                let set = parse_set(rest)?;
                labels[k.trim()]
                    .as_str()
                    .is_some_and(|v| set.iter().any(|s| s == v))
            } else if let Some((k, v)) = term.split_once("!=") {
                labels[k.trim()].as_str() != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==") {
                labels[k.trim()].as_str() == Some(v.trim())
            } else if let Some((k, v)) = term.split_once('=') {
                labels[k.trim()].as_str() == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                labels[k.trim()].is_null()
            } else {
                !labels[term].is_null()
            };
            if !ok {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Splits a label selector on the commas that are not inside a `(...)` set.
fn split_label_terms(sel: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in sel.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&sel[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&sel[start..]);
    out
}

fn parse_set(s: &str) -> Result<Vec<String>, String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("invalid label selector set {s:?}: expected (a,b,...)"))?;
    Ok(inner.split(',').map(|v| v.trim().to_owned()).collect())
}

fn pod_log(
    shared: &Shared,
    world: &World,
    ns: &str,
    pod: &str,
    q: &[(String, String)],
) -> Response {
    let Some(p) = world
        .of_kind("Pod", Some(ns))
        .find(|o| objects::name(o) == pod)
    else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{pod}\" not found"),
            Some(json!({"name": pod, "kind": "pods"})),
        );
    };
    let containers: Vec<String> = p["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let container = match param(q, "container").filter(|c| !c.is_empty()) {
        Some(c) => c.to_owned(),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!(
                    "a container name must be specified for pod {pod}, choose one of: [{}]",
                    containers.join(" ")
                ),
                None,
            );
        }
    };
    if !containers.contains(&container) {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("container {container} is not valid for pod {pod}"),
            None,
        );
    }
    let previous = param(q, "previous") == Some("true");
    let tail = match param(q, "tailLines") {
        Some(t) => match t.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("tailLines: expected a non-negative integer, got {t:?}"),
                    None,
                );
            }
        },
        None => usize::MAX,
    };
    match shared.cluster.logs(ns, pod, &container, previous, tail) {
        Ok(lines) => {
            let mut text = lines.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(text))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Err(squad_runtime::ports::PortError::NotFound { .. }) if previous => status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("previous terminated container \"{container}\" in pod \"{pod}\" not found"),
            None,
        ),
        Err(e) => status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &e.to_string(),
            None,
        ),
    }
}

/// `duration.HumanDuration` from k8s.io/apimachinery: how kubectl prints ages.
pub fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age(o: &Value, path: &str, now: DateTime<Utc>) -> String {
    field(o, path)
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or("<unknown>".into(), |t| {
            human_duration(now - t.with_timezone(&Utc))
        })
}

fn col(name: &str, kind: &str, priority: u8, description: &str) -> Value {
    let mut c = json!({"name": name, "type": kind, "format": "", "description": description,
                       "priority": priority});
    if name == "Name" {
        c["format"] = json!("name");
    }
    c
}

fn selector_text(sel: &Value) -> String {
    sel.as_object()
        .filter(|m| !m.is_empty())
        .map_or("<none>".into(), |m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", value_str(v)))
                .collect::<Vec<_>>()
                .join(",")
        })
}

/// A Pod's STATUS column, as kubectl's printer derives it.
fn pod_status(p: &Value) -> String {
    let mut reason = value_str(&p["status"]["phase"]);
    if let Some(r) = p["status"]["reason"].as_str() {
        reason = r.to_owned();
    }
    if let Some(cs) = p["status"]["containerStatuses"].as_array() {
        for c in cs.iter().rev() {
            if let Some(r) = c["state"]["waiting"]["reason"].as_str() {
                reason = r.to_owned();
            } else if let Some(r) = c["state"]["terminated"]["reason"].as_str() {
                reason = r.to_owned();
            }
        }
    }
    reason
}

fn pod_restarts(p: &Value, now: DateTime<Utc>) -> String {
    let mut restarts = 0;
    let mut last: Option<DateTime<Utc>> = None;
    for c in p["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        restarts += c["restartCount"].as_u64().unwrap_or(0);
        if let Some(t) = c["lastState"]["terminated"]["finishedAt"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        {
            let t = t.with_timezone(&Utc);
            last = Some(last.map_or(t, |l| l.max(t)));
        }
    }
    match last {
        Some(t) if restarts > 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    }
}

type Cells = Box<dyn Fn(&Value) -> Vec<Value>>;

fn to_table(r: &Resource, items: Vec<Value>, now: DateTime<Utc>, q: &[(String, String)]) -> Value {
    let name_col = col(
        "Name",
        "string",
        0,
        "Name must be unique within a namespace.",
    );
    let age_col = col(
        "Age",
        "string",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
    let created = "metadata.creationTimestamp";
    let (columns, cells): (Vec<Value>, Cells) = match r.kind {
        "Pod" => (
            vec![
                name_col,
                col(
                    "Ready",
                    "string",
                    0,
                    "The aggregate readiness state of this pod for accepting traffic.",
                ),
                col(
                    "Status",
                    "string",
                    0,
                    "The aggregate status of the containers in this pod.",
                ),
                col(
                    "Restarts",
                    "string",
                    0,
                    "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                ),
                age_col,
                col(
                    "IP",
                    "string",
                    1,
                    "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
                ),
                col(
                    "Node",
                    "string",
                    1,
                    "Name of the Node this Pod is scheduled on.",
                ),
                col(
                    "Nominated Node",
                    "string",
                    1,
                    "nominatedNodeName is set only when this pod preempts other pods on the node.",
                ),
                col(
                    "Readiness Gates",
                    "string",
                    1,
                    "If specified, all readiness gates will be evaluated for pod readiness.",
                ),
            ],
            Box::new(move |p: &Value| {
                let cs = p["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let total = p["spec"]["containers"].as_array().map_or(0, Vec::len);
                let ready = cs.iter().filter(|c| c["ready"] == true).count();
                vec![
                    json!(objects::name(p)),
                    json!(format!("{ready}/{total}")),
                    json!(pod_status(p)),
                    json!(pod_restarts(p, now)),
                    json!(age(p, created, now)),
                    json!(value_str(&p["status"]["podIP"])),
                    json!(value_str(&p["spec"]["nodeName"])),
                    json!("<none>"),
                    json!("<none>"),
                ]
            }),
        ),
        "Deployment" => (
            vec![
                name_col,
                col("Ready", "string", 0, "Number of the pod with ready state"),
                col(
                    "Up-to-date",
                    "string",
                    0,
                    "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                ),
                col(
                    "Available",
                    "string",
                    0,
                    "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                ),
                age_col,
                col(
                    "Containers",
                    "string",
                    1,
                    "Names of each container in the template.",
                ),
                col(
                    "Images",
                    "string",
                    1,
                    "Images referenced by each container in the template.",
                ),
                col(
                    "Selector",
                    "string",
                    1,
                    "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
                ),
            ],
            Box::new(move |d: &Value| {
                let st = &d["status"];
                let containers = objects::pod_spec(d)["containers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                vec![
                    json!(objects::name(d)),
                    json!(format!(
                        "{}/{}",
                        st["readyReplicas"].as_u64().unwrap_or(0),
                        d["spec"]["replicas"].as_u64().unwrap_or(1)
                    )),
                    json!(st["updatedReplicas"].as_u64().unwrap_or(0)),
                    json!(st["availableReplicas"].as_u64().unwrap_or(0)),
                    json!(age(d, created, now)),
                    json!(
                        containers
                            .iter()
                            .map(|c| value_str(&c["name"]))
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                    json!(
                        containers
                            .iter()
                            .map(|c| value_str(&c["image"]))
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                    json!(selector_text(&d["spec"]["selector"]["matchLabels"])),
                ]
            }),
        ),
        "ReplicaSet" => (
            vec![
                name_col,
                col(
                    "Desired",
                    "integer",
                    0,
                    "Replicas is the number of desired replicas.",
                ),
                col(
                    "Current",
                    "integer",
                    0,
                    "Replicas is the most recently observed number of replicas.",
                ),
                col(
                    "Ready",
                    "integer",
                    0,
                    "The number of ready replicas for this replica set.",
                ),
                age_col,
            ],
            Box::new(move |o: &Value| {
                vec![
                    json!(objects::name(o)),
                    json!(o["spec"]["replicas"].as_u64().unwrap_or(0)),
                    json!(o["status"]["replicas"].as_u64().unwrap_or(0)),
                    json!(o["status"]["readyReplicas"].as_u64().unwrap_or(0)),
                    json!(age(o, created, now)),
                ]
            }),
        ),
        "HorizontalPodAutoscaler" => (
            vec![
                name_col,
                col(
                    "Reference",
                    "string",
                    0,
                    "The identifying information of the target resource.",
                ),
                col(
                    "Targets",
                    "string",
                    0,
                    "The current and desired values of the metrics.",
                ),
                col(
                    "MinPods",
                    "string",
                    0,
                    "The lower limit for the number of replicas.",
                ),
                col(
                    "MaxPods",
                    "integer",
                    0,
                    "The upper limit for the number of replicas.",
                ),
                col(
                    "Replicas",
                    "integer",
                    0,
                    "Current number of replicas of pods managed by this autoscaler.",
                ),
                age_col,
            ],
            Box::new(move |o: &Value| {
                let s = &o["spec"];
                let targets: Vec<String> = s["metrics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        let r = &m["resource"];
                        match r["target"]["averageUtilization"].as_u64() {
                            Some(u) => format!("{}: <unknown>/{u}%", value_str(&r["name"])),
                            None => format!(
                                "{}: <unknown>/{}",
                                value_str(&r["name"]),
                                value_str(&r["target"]["averageValue"])
                            ),
                        }
                    })
                    .collect();
                vec![
                    json!(objects::name(o)),
                    json!(format!(
                        "{}/{}",
                        value_str(&s["scaleTargetRef"]["kind"]),
                        value_str(&s["scaleTargetRef"]["name"])
                    )),
                    json!(if targets.is_empty() {
                        "<none>".into()
                    } else {
                        targets.join(", ")
                    }),
                    json!(s["minReplicas"].as_u64().unwrap_or(1).to_string()),
                    json!(s["maxReplicas"].as_u64().unwrap_or(0)),
                    json!(o["status"]["currentReplicas"].as_u64().unwrap_or(0)),
                    json!(age(o, created, now)),
                ]
            }),
        ),
        "NetworkPolicy" => (
            vec![
                name_col,
                col(
                    "Pod-Selector",
                    "string",
                    0,
                    "Selects the pods to which this NetworkPolicy object applies.",
                ),
                age_col,
            ],
            Box::new(move |o: &Value| {
                vec![
                    json!(objects::name(o)),
                    json!(
                        o["spec"]["podSelector"]["matchLabels"]
                            .as_object()
                            .filter(|m| !m.is_empty())
                            .map_or("<none>".to_owned(), |_| selector_text(
                                &o["spec"]["podSelector"]["matchLabels"]
                            ))
                    ),
                    json!(age(o, created, now)),
                ]
            }),
        ),
        "Event" => (
            vec![
                col("Last Seen", "string", 0, "Time when last occurred"),
                col(
                    "Type",
                    "string",
                    0,
                    "Type of this event (Normal, Warning), new types could be added in the future.",
                ),
                col("Reason", "string", 0, "Why the action was taken."),
                col(
                    "Object",
                    "string",
                    0,
                    "The object that this event is about.",
                ),
                col(
                    "Message",
                    "string",
                    0,
                    "A human-readable description of the status of this operation.",
                ),
                col(
                    "Subobject",
                    "string",
                    1,
                    "The subobject of the object this event is about.",
                ),
                col("Source", "string", 1, "The component reporting this event."),
                col("First Seen", "string", 1, "Time when first occurred"),
                col(
                    "Count",
                    "string",
                    1,
                    "The number of times this event has occurred.",
                ),
                col(
                    "Name",
                    "string",
                    1,
                    "Name must be unique within a namespace.",
                ),
            ],
            Box::new(move |e: &Value| {
                let (inv, note, last, first, count) = if e["regarding"].is_object() {
                    (
                        &e["regarding"],
                        &e["note"],
                        "deprecatedLastTimestamp",
                        "deprecatedFirstTimestamp",
                        &e["deprecatedCount"],
                    )
                } else {
                    (
                        &e["involvedObject"],
                        &e["message"],
                        "lastTimestamp",
                        "firstTimestamp",
                        &e["count"],
                    )
                };
                vec![
                    json!(age(e, last, now)),
                    json!(value_str(&e["type"])),
                    json!(value_str(&e["reason"])),
                    json!(format!(
                        "{}/{}",
                        value_str(&inv["kind"]).to_ascii_lowercase(),
                        value_str(&inv["name"])
                    )),
                    json!(value_str(note)),
                    json!(value_str(&inv["fieldPath"])),
                    json!(format!(
                        "{}, {}",
                        value_str(&e["source"]["component"]),
                        value_str(&e["source"]["host"])
                    )),
                    json!(age(e, first, now)),
                    json!(value_str(count)),
                    json!(objects::name(e)),
                ]
            }),
        ),
        "Node" => (
            vec![
                name_col,
                col("Status", "string", 0, "The status of the node"),
                col("Roles", "string", 0, "The roles of the node"),
                age_col,
                col(
                    "Version",
                    "string",
                    0,
                    "Kubelet Version reported by the node.",
                ),
            ],
            Box::new(move |n: &Value| {
                let ready = n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "Ready")
                    .map_or("Unknown", |c| {
                        if c["status"] == "True" {
                            "Ready"
                        } else {
                            "NotReady"
                        }
                    });
                let roles: Vec<String> = n["metadata"]["labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, _)| {
                        k.strip_prefix("node-role.kubernetes.io/")
                            .map(str::to_owned)
                    })
                    .collect();
                vec![
                    json!(objects::name(n)),
                    json!(ready),
                    json!(if roles.is_empty() {
                        "<none>".into()
                    } else {
                        roles.join(",")
                    }),
                    json!(age(n, created, now)),
                    json!(value_str(&n["status"]["nodeInfo"]["kubeletVersion"])),
                ]
            }),
        ),
        "Namespace" => (
            vec![
                name_col,
                col("Status", "string", 0, "The status of the namespace"),
                age_col,
            ],
            Box::new(move |o: &Value| {
                vec![
                    json!(objects::name(o)),
                    json!(value_str(&o["status"]["phase"])),
                    json!(age(o, created, now)),
                ]
            }),
        ),
        "Secret" => (
            vec![
                name_col,
                col("Type", "string", 0, "The type of the secret"),
                col("Data", "string", 0, "The number of entries in the data"),
                age_col,
            ],
            Box::new(move |o: &Value| {
                vec![
                    json!(objects::name(o)),
                    json!(value_str(&o["type"])),
                    json!(o["data"].as_object().map_or(0, |m| m.len())),
                    json!(age(o, created, now)),
                ]
            }),
        ),
        _ => (
            vec![name_col, age_col],
            Box::new(move |o: &Value| vec![json!(objects::name(o)), json!(age(o, created, now))]),
        ),
    };
    let include_object = param(q, "includeObject").unwrap_or("Metadata");
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let object = match include_object {
                "Object" => o.clone(),
                "None" => Value::Null,
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                            "metadata": o["metadata"].clone()}),
            };
            json!({"cells": cells(o), "object": object})
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": "1"},
        "columnDefinitions": columns,
        "rows": rows,
    })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn human_duration_matches_kubectl() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(5)), "5s");
        assert_eq!(human_duration(d(119)), "119s");
        assert_eq!(human_duration(d(185)), "3m5s");
        assert_eq!(human_duration(d(600)), "10m");
        assert_eq!(human_duration(d(3 * 3600 + 120)), "3h2m");
        assert_eq!(human_duration(d(30 * 3600)), "30h");
        assert_eq!(human_duration(d(3 * 86400 + 3600)), "3d1h");
        assert_eq!(human_duration(d(40 * 86400)), "40d");
    }

    #[test]
    fn label_selectors_handle_sets_and_negation() {
        let o = json!({"metadata": {"labels": {"app": "a", "tier": "web"}}});
        let q = |s: &str| vec![("labelSelector".to_owned(), s.to_owned())];
        assert!(selected(&o, &q("app=a,tier in (web,api)")).unwrap());
        assert!(!selected(&o, &q("app=a,tier notin (web)")).unwrap());
        assert!(selected(&o, &q("app,!missing")).unwrap());
        assert!(!selected(&o, &q("app!=a")).unwrap());
    }

    #[test]
    fn field_selectors_read_nested_fields() {
        let o =
            json!({"involvedObject": {"name": "p", "uid": "u"}, "metadata": {"namespace": "n"}});
        let q = |s: &str| vec![("fieldSelector".to_owned(), s.to_owned())];
        assert!(selected(&o, &q("involvedObject.name=p,metadata.namespace=n")).unwrap());
        assert!(!selected(&o, &q("involvedObject.uid!=u")).unwrap());
        assert!(selected(&o, &q("bogus")).is_err());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            url_decode_pairs(
                "fieldSelector=involvedObject.name%3Dp%2CinvolvedObject.namespace%3Dn"
            ),
            vec![(
                "fieldSelector".to_owned(),
                "involvedObject.name=p,involvedObject.namespace=n".to_owned()
            )]
        );
    }
}
