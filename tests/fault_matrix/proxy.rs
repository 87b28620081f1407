//! A fault-injecting HTTP/1.1 reverse proxy on 127.0.0.1, in front of one real port server (the
//! simulated kube-apiserver, its Prometheus API, the GitHub API, a model server, HolmesGPT).
//!
//! Each request is matched against the plan's rules in order; the first rule whose method and
//! path match, and whose fraction the request falls in (decided by a hash of the seed, the rule
//! and the request's number, so a run is reproducible given the order of requests), injects its
//! fault. Everything else is forwarded as it is. The plan can be changed while the proxy runs,
//! and every injected fault is counted.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// What the proxy does to a request a rule picked.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer this status (500, 502, 503, 403, …) without forwarding.
    Status(u16),
    /// 429 with `Retry-After` (seconds), without forwarding.
    RateLimited { retry_after: u64 },
    /// Hold the request (not forwarded) for this long, then drop the connection: longer than
    /// the client's timeout, the client gives up first.
    Timeout { hold: Duration },
    /// Forward the request (the write happens upstream), then drop the connection without the
    /// upstream's answer.
    LostAnswer,
    /// Connection refused/reset: the connection is dropped at once, nothing forwarded.
    Down,
    /// 200 with a body that is not what the protocol says.
    Garbage,
    /// Wait, then forward.
    Slow { delay: Duration },
}

impl Fault {
    pub fn name(&self) -> String {
        match self {
            Fault::Status(s) => s.to_string(),
            Fault::RateLimited { retry_after } => format!("429 (Retry-After {retry_after})"),
            Fault::Timeout { hold } => format!("timeout ({} s held)", hold.as_secs()),
            Fault::LostAnswer => "lost answer".into(),
            Fault::Down => "down".into(),
            Fault::Garbage => "garbage".into(),
            Fault::Slow { delay } => format!("slow ({} ms)", delay.as_millis()),
        }
    }
}

/// One rule of a plan.
#[derive(Debug, Clone)]
pub struct Rule {
    pub fault: Fault,
    /// Methods it applies to; empty: any.
    pub methods: Vec<&'static str>,
    /// A substring the path (with its query) must contain; empty: any.
    pub path: &'static str,
    /// The share of matching requests it applies to, 0 to 1.
    pub fraction: f64,
}

impl Rule {
    pub fn any(fault: Fault, fraction: f64) -> Rule {
        Rule {
            fault,
            methods: Vec::new(),
            path: "",
            fraction,
        }
    }

    /// Only writes (POST, PATCH, PUT).
    pub fn writes(fault: Fault, fraction: f64) -> Rule {
        Rule {
            fault,
            methods: vec!["POST", "PATCH", "PUT"],
            path: "",
            fraction,
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.contains(&method))
            && (self.path.is_empty() || path.contains(self.path))
    }
}

/// The rules and the seed; empty rules: a transparent proxy.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub seed: u64,
    pub rules: Vec<Rule>,
}

struct Shared {
    upstream: String,
    plan: Mutex<Plan>,
    injected: Mutex<BTreeMap<String, u64>>,
    requests: AtomicU64,
    http: reqwest::Client,
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// splitmix64: a well-mixed hash of the seed, the rule and the request number.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn picked(seed: u64, rule: usize, n: u64, fraction: f64) -> bool {
    if fraction >= 1.0 {
        return true;
    }
    let h = mix(seed ^ mix(rule as u64 ^ mix(n)));
    (h as f64 / u64::MAX as f64) < fraction
}

const HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
    "upgrade",
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (k, v) in from {
        if !HOP.contains(&k.as_str()) {
            to.append(k.clone(), v.clone());
        }
    }
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream` (`http://127.0.0.1:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            plan: Mutex::new(Plan::default()),
            injected: Mutex::new(BTreeMap::new()),
            requests: AtomicU64::new(0),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    // Set by a handler to drop this connection without an answer.
                    let cut = Arc::new(Notify::new());
                    let c = cut.clone();
                    let service = hyper::service::service_fn(move |req: Request<_>| {
                        let (s, c) = (s.clone(), c.clone());
                        async move {
                            let req = req.map(Body::new);
                            Ok::<_, Infallible>(handle(s, c, req).await)
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = cut.notified() => {}
                    }
                });
            }
        });
        Proxy { url, shared, task }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn set_plan(&self, plan: Plan) {
        *self.shared.plan.lock().unwrap() = plan;
    }

    /// Faults injected so far, by name.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.shared.injected.lock().unwrap().clone()
    }

    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

/// Which fault, if any, this request gets.
fn choose(s: &Shared, method: &str, path: &str) -> Option<Fault> {
    let n = s.requests.fetch_add(1, Ordering::SeqCst);
    let plan = s.plan.lock().unwrap();
    let fault = plan
        .rules
        .iter()
        .enumerate()
        .find(|(i, r)| r.matches(method, path) && picked(plan.seed, *i, n, r.fraction))
        .map(|(_, r)| r.fault.clone())?;
    *s.injected.lock().unwrap().entry(fault.name()).or_default() += 1;
    Some(fault)
}

async fn handle(s: Arc<Shared>, cut: Arc<Notify>, req: Request<Body>) -> Response<Body> {
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    // Drops the connection: the handler never answers.
    let drop_connection = || async {
        cut.notify_one();
        std::future::pending::<Response<Body>>().await
    };
    match choose(&s, &method, &path) {
        None => forward(&s, req, &path).await,
        Some(Fault::Status(code)) => status(code, "{\"message\":\"injected by the fault proxy\"}"),
        Some(Fault::RateLimited { retry_after }) => {
            let mut r = status(429, "{\"message\":\"API rate limit exceeded (injected)\"}");
            r.headers_mut().insert(
                HeaderName::from_static("retry-after"),
                retry_after.to_string().parse().unwrap(),
            );
            r
        }
        Some(Fault::Timeout { hold }) => {
            tokio::time::sleep(hold).await;
            drop_connection().await
        }
        Some(Fault::LostAnswer) => {
            let _ = forward(&s, req, &path).await;
            drop_connection().await
        }
        Some(Fault::Down) => drop_connection().await,
        Some(Fault::Garbage) => {
            let mut r = Response::new(Body::from(
                "<html><body>502 upstream says: {\"this is\": not JSON</body></html>",
            ));
            r.headers_mut().insert(
                HeaderName::from_static("content-type"),
                "application/json".parse().unwrap(),
            );
            r
        }
        Some(Fault::Slow { delay }) => {
            tokio::time::sleep(delay).await;
            forward(&s, req, &path).await
        }
    }
}

fn status(code: u16, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap();
    r.headers_mut().insert(
        HeaderName::from_static("content-type"),
        "application/json".parse().unwrap(),
    );
    r
}

async fn forward(s: &Shared, req: Request<Body>, path: &str) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(_) => return status(400, "{\"message\":\"proxy: unreadable body\"}"),
    };
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in &parts.headers {
        if !HOP.contains(&k.as_str()) {
            headers.append(
                reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
    }
    let sent = s
        .http
        .request(method, format!("{}{path}", s.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let Ok(resp) = sent else {
        return status(502, "{\"message\":\"proxy: upstream unreachable\"}");
    };
    let code = resp.status().as_u16();
    let mut out_headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        if !HOP.contains(&k.as_str()) {
            out_headers.append(
                HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                v.as_bytes().try_into().unwrap(),
            );
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = StatusCode::from_u16(code).unwrap();
    copy_headers(&out_headers, r.headers_mut());
    r
}
