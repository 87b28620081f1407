//! An OpenAI-compatible model server on loopback that replays recorded exchanges, so the crew can
//! run a scenario on the LLM path without a model server, the same way every run, and a prompt
//! change shows up as a diff to review instead of as quietly different behaviour.
//!
//! A cassette is a directory of JSON files, one exchange each:
//!
//! ```json
//! {"request": {"model": "...", "messages": [...]}, "response": {"choices": [...]}, "status": 200}
//! ```
//!
//! `request` is the `/v1/chat/completions` body the client sent (keys sorted), `response` the body
//! the model server answered: a JSON value, or a string when it was not JSON (a streamed
//! `text/event-stream` answer). Files are named `<hash>-<slug>.json`: `hash` is 12 hex digits of
//! a hash of the request's match key (below), `slug` the model and the first words of the first
//! user message. A listing reads as a list of conversations, and a re-recorded prompt shows in a
//! diff of the directory as one file removed and one added.
//!
//! A request matches a recorded one when their match keys are equal: the body in canonical form
//! (object keys sorted, no whitespace) without the top-level [`IGNORED_FIELDS`], and with issue
//! and PR numbers in text normalised ([`VOLATILE_NUMBERS`]: parallel members race for them). In
//! [`Mode::Replay`] a miss answers 400 with an OpenAI-style error of type `cassette_miss` whose
//! message names the nearest recorded request and a compact line diff against it (`- recorded`,
//! `+ received`); misses are logged and kept for tests ([`CassetteServer::misses`]). Never
//! weaken a cassette to make a test pass: re-record it and review the diff.
//!
//! Secrets: only request and response bodies are stored, never headers. The API key (from
//! [`Mode`], or else the client's `Authorization` header) goes to the upstream only. Bodies are
//! stored verbatim, so whatever is in a prompt lands in the cassette: redaction has to happen
//! before the request is built, not here.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

mod diff;
mod key;
#[cfg(test)]
mod tests;

use diff::Nearest;
pub use key::{IGNORED_FIELDS, VOLATILE_NUMBERS, same_request};
use key::{file_name, match_key};

/// How long a recorded request may take upstream (a long completion on a slow model included).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(300);
/// Request bodies carry whole conversations with tool output; axum's 2 MiB default is too small.
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// What the server does with a request.
#[derive(Clone, PartialEq, Eq)]
pub enum Mode {
    /// Answers from the cassette only; a miss is a 400 `cassette_miss` error.
    Replay,
    /// Forwards every request to `upstream` (an OpenAI-compatible base URL ending in `/v1`),
    /// stores the exchange (replacing a recorded one with the same match key) and answers it.
    Record {
        upstream: String,
        api_key: Option<String>,
    },
    /// Answers hits from the cassette and records misses as [`Mode::Record`] does.
    ReplayOrRecord {
        upstream: String,
        api_key: Option<String>,
    },
}

// By hand, so the API key never reaches a log.
impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |key: &Option<String>| key.as_ref().map(|_| "<redacted>");
        match self {
            Mode::Replay => f.write_str("Replay"),
            Mode::Record { upstream, api_key } => f
                .debug_struct("Record")
                .field("upstream", upstream)
                .field("api_key", &redacted(api_key))
                .finish(),
            Mode::ReplayOrRecord { upstream, api_key } => f
                .debug_struct("ReplayOrRecord")
                .field("upstream", upstream)
                .field("api_key", &redacted(api_key))
                .finish(),
        }
    }
}

/// One recorded exchange: the content of one cassette file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// The `/v1/chat/completions` request body as the client sent it.
    pub request: Value,
    /// The response body: JSON, or a string when the upstream answered something else.
    pub response: Value,
    /// The HTTP status the upstream answered.
    pub status: u16,
}

/// Chat-completion requests served so far, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CassetteStats {
    /// Answered from the cassette.
    pub hits: u64,
    /// Not in the cassette and not recorded: answered with a `cassette_miss` error.
    pub misses: u64,
    /// Forwarded upstream and stored.
    pub recorded: u64,
    /// Forwarded upstream, which failed or answered an error; passed on, not stored, so a
    /// transient failure is never replayed as if the model had said it.
    pub upstream_errors: u64,
}

/// A request the cassette did not hold, in [`Mode::Replay`].
#[derive(Debug, Clone, PartialEq)]
pub struct CassetteMiss {
    /// The request body as received.
    pub request: Value,
    /// The file of the nearest recorded request, if the cassette holds any.
    pub nearest: Option<String>,
    /// A compact line diff from the nearest recorded request (`-`) to this one (`+`).
    pub diff: String,
    /// The error message the client got.
    pub message: String,
}

/// The cassette server. Serves until dropped.
pub struct CassetteServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl CassetteServer {
    /// Loads the cassette in `dir` and serves it on 127.0.0.1 (a free port) in `mode`.
    ///
    /// In [`Mode::Replay`] the directory must exist; the recording modes create it.
    pub async fn start(dir: PathBuf, mode: Mode) -> io::Result<Self> {
        let upstream = match &mode {
            Mode::Replay => None,
            Mode::Record { upstream, api_key } | Mode::ReplayOrRecord { upstream, api_key } => {
                tokio::fs::create_dir_all(&dir).await?;
                Some(Upstream::new(upstream, api_key.clone())?)
            }
        };
        let cassette = load(&dir).await?;
        let shared = Arc::new(Shared {
            dir,
            replay_first: !matches!(mode, Mode::Record { .. }),
            upstream,
            cassette: RwLock::new(cassette),
            log: Mutex::new(Log::default()),
            writes: AtomicU64::new(0),
        });
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("cassette server stopped: {e}");
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// The OpenAI-compatible base URL, ending in `/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The cassette directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    pub fn stats(&self) -> CassetteStats {
        lock(&self.shared.log).stats
    }

    /// Every chat-completion request body received, in order (a body that was not JSON as a
    /// string): what did, or did not, reach the model server.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.shared.log).requests.clone()
    }

    /// The requests answered with a `cassette_miss` error, in order.
    pub fn misses(&self) -> Vec<CassetteMiss> {
        lock(&self.shared.log).misses.clone()
    }
}

impl Drop for CassetteServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    dir: PathBuf,
    /// Whether a request the cassette holds is answered from it (all modes but `Record`).
    replay_first: bool,
    upstream: Option<Upstream>,
    /// Recorded exchanges by match key.
    cassette: RwLock<BTreeMap<String, Recorded>>,
    log: Mutex<Log>,
    /// Numbers temporary files, so concurrent writes of one exchange do not share one.
    writes: AtomicU64,
}

#[derive(Default)]
struct Log {
    stats: CassetteStats,
    requests: Vec<Value>,
    misses: Vec<CassetteMiss>,
}

struct Recorded {
    file: String,
    exchange: Exchange,
}

struct Upstream {
    chat_url: String,
    api_key: Option<String>,
    client: reqwest::Client,
}

impl Upstream {
    fn new(base: &str, api_key: Option<String>) -> io::Result<Self> {
        let invalid = |reason: String| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cassette upstream {base:?}: {reason}"),
            )
        };
        match reqwest::Url::parse(base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            Ok(url) => return Err(invalid(format!("scheme {:?} is not http(s)", url.scheme()))),
            Err(e) => return Err(invalid(e.to_string())),
        }
        squad_adapters::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(UPSTREAM_TIMEOUT)
            .build()
            .map_err(|e| invalid(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            chat_url: format!("{}/chat/completions", base.trim_end_matches('/')),
            api_key,
            client,
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let text = String::from_utf8_lossy(&body).into_owned();
            lock(&shared.log).requests.push(Value::String(text));
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("the request body is not JSON: {e}"),
            );
        }
    };
    lock(&shared.log).requests.push(request.clone());
    let key = match_key(&request);

    if shared.replay_first {
        let found = shared
            .cassette
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .map(|r| r.exchange.clone());
        if let Some(exchange) = found {
            lock(&shared.log).stats.hits += 1;
            return answer(&exchange);
        }
    }
    match &shared.upstream {
        Some(upstream) => record(&shared, upstream, &headers, body, request, key).await,
        None => miss(&shared, request),
    }
}

/// Answers a miss in replay mode: a `cassette_miss` error naming the nearest recorded request.
fn miss(shared: &Shared, request: Value) -> Response {
    let nearest = {
        let cassette = shared
            .cassette
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        diff::nearest(
            &request,
            cassette
                .values()
                .map(|recorded| (recorded.file.as_str(), &recorded.exchange.request)),
        )
    };
    let dir = shared.dir.display();
    let (message, nearest, diff) = match nearest {
        Some(Nearest {
            file,
            changed,
            diff,
        }) => (
            format!(
                "no exchange in cassette {dir} matches this request; the nearest is {file}, \
                 {changed} lines differ (- recorded, + received):\n{diff}\
                 If the change is intended, re-record the cassette and review its diff."
            ),
            Some(file),
            diff,
        ),
        None => (
            format!("cassette {dir} holds no exchanges; record it first"),
            None,
            String::new(),
        ),
    };
    tracing::warn!("{message}");
    let response = error(StatusCode::BAD_REQUEST, "cassette_miss", &message);
    let mut log = lock(&shared.log);
    log.stats.misses += 1;
    log.misses.push(CassetteMiss {
        request,
        nearest,
        diff,
        message,
    });
    response
}

/// Forwards `body` upstream; stores a successful exchange and answers it.
async fn record(
    shared: &Shared,
    upstream: &Upstream,
    headers: &HeaderMap,
    body: Bytes,
    request: Value,
    key: String,
) -> Response {
    let mut outgoing = upstream
        .client
        .post(&upstream.chat_url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body);
    match (&upstream.api_key, headers.get(header::AUTHORIZATION)) {
        (Some(key), _) => outgoing = outgoing.bearer_auth(key),
        (None, Some(authorization)) => {
            outgoing = outgoing.header(header::AUTHORIZATION, authorization.clone());
        }
        (None, None) => {}
    }
    let upstream_failed = |message: String| {
        tracing::warn!("{message}");
        lock(&shared.log).stats.upstream_errors += 1;
        error(StatusCode::BAD_GATEWAY, "upstream_error", &message)
    };
    let reply = match outgoing.send().await {
        Ok(reply) => reply,
        Err(e) => {
            return upstream_failed(format!("cassette upstream {}: {e}", upstream.chat_url));
        }
    };
    let status = reply.status().as_u16();
    let content_type = reply.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = match reply.bytes().await {
        Ok(bytes) => bytes,
        Err(e) => {
            return upstream_failed(format!(
                "cassette upstream {}: reading the answer: {e}",
                upstream.chat_url
            ));
        }
    };
    if !(200..300).contains(&status) {
        tracing::warn!(
            "cassette upstream {} answered {status}; passed on, not recorded",
            upstream.chat_url
        );
        lock(&shared.log).stats.upstream_errors += 1;
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        if let Some(content_type) = content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        return response;
    }

    let response = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    let exchange = Exchange {
        request,
        response,
        status,
    };
    let file = file_name(&key, &exchange.request);
    if let Err(e) = write_exchange(shared, &file, &exchange).await {
        let message = format!(
            "cannot write cassette file {}: {e}",
            shared.dir.join(&file).display()
        );
        tracing::error!("{message}");
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cassette_error",
            &message,
        );
    }
    tracing::info!("recorded {file}");
    let answered = answer(&exchange);
    shared
        .cassette
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, Recorded { file, exchange });
    lock(&shared.log).stats.recorded += 1;
    answered
}

/// Writes through a temporary file, so a reader never sees half an exchange.
async fn write_exchange(shared: &Shared, file: &str, exchange: &Exchange) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(exchange).map_err(io::Error::other)?;
    text.push('\n');
    let n = shared.writes.fetch_add(1, Ordering::Relaxed);
    let tmp = shared.dir.join(format!(".{file}.{n}.tmp"));
    tokio::fs::write(&tmp, text).await?;
    tokio::fs::rename(&tmp, shared.dir.join(file)).await
}

/// The recorded answer, as the model server gave it.
fn answer(exchange: &Exchange) -> Response {
    let status = StatusCode::from_u16(exchange.status).unwrap_or(StatusCode::OK);
    let (content_type, body) = match &exchange.response {
        Value::String(text) => {
            let streamed = exchange.request.get("stream") == Some(&Value::Bool(true));
            let content_type = if streamed {
                "text/event-stream"
            } else {
                "text/plain; charset=utf-8"
            };
            (content_type, text.clone())
        }
        other => ("application/json", other.to_string()),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The models the cassette's requests name, as OpenAI's model list.
async fn models(State(shared): State<Arc<Shared>>) -> Response {
    let mut ids: Vec<String> = shared
        .cassette
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .filter_map(|r| r.exchange.request.get("model")?.as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids.dedup();
    let data: Vec<Value> = ids
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "cassette"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "the cassette server serves POST /v1/chat/completions and GET /v1/models only",
    )
}

/// An OpenAI-style error body.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    (status, axum::Json(body)).into_response()
}

/// Reads every `*.json` exchange in `dir`, by match key.
async fn load(dir: &Path) -> io::Result<BTreeMap<String, Recorded>> {
    let mut entries = tokio::fs::read_dir(dir).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read cassette directory {}: {e}", dir.display()),
        )
    })?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && !name.starts_with('.') {
            files.push(name);
        }
    }
    files.sort();
    let mut cassette = BTreeMap::new();
    for file in files {
        let path = dir.join(&file);
        let text = tokio::fs::read(&path).await?;
        let exchange: Exchange = serde_json::from_slice(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cassette file {} is not an exchange: {e}", path.display()),
            )
        })?;
        let key = match_key(&exchange.request);
        if let Some(Recorded { file: first, .. }) = cassette.get(&key) {
            tracing::warn!(
                "cassette files {first} and {file} record the same request; replaying {first}"
            );
            continue;
        }
        cassette.insert(key, Recorded { file, exchange });
    }
    Ok(cassette)
}
