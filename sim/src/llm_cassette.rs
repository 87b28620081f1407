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

/// Top-level request fields left out of the match key: they vary from run to run, or are
/// bookkeeping, and do not change what the model answers.
pub const IGNORED_FIELDS: &[&str] = &[
    // An end-user id for abuse monitoring; the model never sees it.
    "user",
    // Whether a streamed answer ends with a usage chunk: accounting, not content.
    "stream_options",
    // Tags for stored completions, and whether to store them: the provider's bookkeeping.
    "metadata",
    "store",
];

/// How long a recorded request may take upstream (a long completion on a slow model included).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(300);
/// Request bodies carry whole conversations with tool output; axum's 2 MiB default is too small.
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
/// Lines of unchanged context around each change in a miss's diff.
const DIFF_CONTEXT: usize = 2;
/// Lines a miss's diff shows at most; the rest is counted.
const DIFF_MAX_LINES: usize = 60;
/// Characters of one diff line shown at most.
const DIFF_MAX_LINE_CHARS: usize = 240;
/// Beyond this many cells the line diff stops looking for common lines in the changed middle.
const DIFF_MAX_CELLS: usize = 4_000_000;

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
    let received = render_lines(&strip_ignored(&request));
    let nearest = {
        let cassette = shared
            .cassette
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        cassette
            .values()
            .map(|recorded| {
                let lines = render_lines(&strip_ignored(&recorded.exchange.request));
                let ops = line_diff(&lines, &received);
                let changed = ops.iter().filter(|(edit, _)| *edit != Edit::Keep).count();
                (changed, recorded.file.clone(), render_diff(&ops))
            })
            .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)))
    };
    let dir = shared.dir.display();
    let (message, nearest, diff) = match nearest {
        Some((changed, file, diff)) => (
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

/// The request without [`IGNORED_FIELDS`], with [`VOLATILE_NUMBERS`] normalised.
fn strip_ignored(request: &Value) -> Value {
    let mut request = request.clone();
    if let Value::Object(fields) = &mut request {
        for field in IGNORED_FIELDS {
            fields.remove(*field);
        }
    }
    normalise_numbers(&mut request);
    request
}

/// Issue and pull-request numbers (`#12`) in the text of a request match any number: members
/// file issues in parallel, so which of two gets #3 and which #4 is a race, on GitHub as in the
/// simulation, and it is all a prompt may differ by from one run to the next. Everything else in
/// the text still has to match.
pub const VOLATILE_NUMBERS: &str = r"#[0-9]+\b";

fn normalise_numbers(v: &mut Value) {
    static RE: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(VOLATILE_NUMBERS).ok());
    let Some(re) = RE.as_ref() else { return };
    match v {
        Value::String(s) if re.is_match(s) => *s = re.replace_all(s, "#N").into_owned(),
        Value::Array(items) => items.iter_mut().for_each(normalise_numbers),
        Value::Object(fields) => fields.values_mut().for_each(normalise_numbers),
        _ => {}
    }
}

/// Whether the cassette takes `a` and `b` for the same request.
pub fn same_request(a: &Value, b: &Value) -> bool {
    match_key(a) == match_key(b)
}

/// What two requests must share to match: the canonical form without [`IGNORED_FIELDS`].
fn match_key(request: &Value) -> String {
    let mut out = String::new();
    write_canonical(&strip_ignored(request), &mut out);
    out
}

/// JSON with object keys sorted and no whitespace, whatever order the map keeps.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(fields) => {
            let mut fields: Vec<_> = fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (name, value)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(name.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// `<hash>-<slug>.json`: 12 hex digits of the match key's hash, then the model and the first
/// words of the first user message.
fn file_name(key: &str, request: &Value) -> String {
    format!(
        "{:012x}-{}.json",
        fnv1a(key.as_bytes()) >> 16,
        slug(request)
    )
}

/// FNV-1a, 64 bits: file names must not change with the toolchain, as `DefaultHasher`'s may,
/// and a cassette of a few hundred exchanges needs no cryptographic hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn slug(request: &Value) -> String {
    const WORDS: usize = 6;
    const MAX_CHARS: usize = 60;
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("model");
    let text = first_user_text(request).unwrap_or_default();
    let words: Vec<&str> = text.split_whitespace().take(WORDS).collect();
    let mut slug = String::new();
    for c in format!("{model} {}", words.join(" ")).chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= MAX_CHARS {
            break;
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// The text of the first user message (its first text part, if it has parts).
fn first_user_text(request: &Value) -> Option<String> {
    let message = request
        .get("messages")?
        .as_array()?
        .iter()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    match message.get("content")? {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => parts
            .iter()
            .find_map(|p| p.get("text")?.as_str().map(str::to_owned)),
        _ => None,
    }
}

/// The request as lines for a diff: one `path: value` line per leaf, strings with line breaks
/// spread over indented lines, so a changed prompt line is a changed diff line.
fn render_lines(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    render(value, "", &mut out);
    out
}

fn render(value: &Value, path: &str, out: &mut Vec<String>) {
    let label = if path.is_empty() { "." } else { path };
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            let mut fields: Vec<_> = fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            for (name, value) in fields {
                let child = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                render(value, &child, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                render(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::String(text) if text.contains('\n') => {
            out.push(format!("{label}: |"));
            out.extend(text.split('\n').map(|line| format!("    {line}")));
        }
        other => out.push(format!("{label}: {other}")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Keep,
    Remove,
    Add,
}

/// A line diff from `old` to `new`: common prefix and suffix, then a longest common subsequence
/// of the middle (or, past [`DIFF_MAX_CELLS`], the whole middle removed and added).
fn line_diff<'a>(old: &'a [String], new: &'a [String]) -> Vec<(Edit, &'a str)> {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (a, b) = (
        &old[prefix..old.len() - suffix],
        &new[prefix..new.len() - suffix],
    );
    let mut ops: Vec<(Edit, &str)> = old[..prefix]
        .iter()
        .map(|l| (Edit::Keep, l.as_str()))
        .collect();
    let (n, m) = (a.len(), b.len());
    if n.saturating_mul(m) > DIFF_MAX_CELLS {
        ops.extend(a.iter().map(|l| (Edit::Remove, l.as_str())));
        ops.extend(b.iter().map(|l| (Edit::Add, l.as_str())));
    } else {
        // lcs[i * (m + 1) + j]: the longest common subsequence of a[i..] and b[j..].
        let width = m + 1;
        let mut lcs = vec![0u32; (n + 1) * width];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * width + j] = if a[i] == b[j] {
                    lcs[(i + 1) * width + j + 1] + 1
                } else {
                    lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n && j < m {
            if a[i] == b[j] {
                ops.push((Edit::Keep, &a[i]));
                i += 1;
                j += 1;
            } else if lcs[(i + 1) * width + j] >= lcs[i * width + j + 1] {
                ops.push((Edit::Remove, &a[i]));
                i += 1;
            } else {
                ops.push((Edit::Add, &b[j]));
                j += 1;
            }
        }
        ops.extend(a[i..].iter().map(|l| (Edit::Remove, l.as_str())));
        ops.extend(b[j..].iter().map(|l| (Edit::Add, l.as_str())));
    }
    ops.extend(
        old[old.len() - suffix..]
            .iter()
            .map(|l| (Edit::Keep, l.as_str())),
    );
    ops
}

/// The changes with [`DIFF_CONTEXT`] lines around each, `...` where lines are skipped, at most
/// [`DIFF_MAX_LINES`] lines.
fn render_diff(ops: &[(Edit, &str)]) -> String {
    let mut shown = vec![false; ops.len()];
    for (i, (edit, _)) in ops.iter().enumerate() {
        if *edit != Edit::Keep {
            let end = (i + DIFF_CONTEXT).min(ops.len() - 1);
            shown[i.saturating_sub(DIFF_CONTEXT)..=end].fill(true);
        }
    }
    let mut out = String::new();
    let mut lines = 0;
    let mut skipped = false;
    let mut cut = false;
    for (i, (edit, line)) in ops.iter().enumerate() {
        if !shown[i] {
            skipped = true;
            continue;
        }
        if lines == DIFF_MAX_LINES {
            let rest = ops[i..].iter().filter(|(e, _)| *e != Edit::Keep).count();
            if rest > 0 {
                out.push_str(&format!("  ... and {rest} more changed lines\n"));
            } else {
                out.push_str("  ...\n");
            }
            cut = true;
            break;
        }
        if skipped {
            out.push_str("  ...\n");
            skipped = false;
        }
        let mark = match edit {
            Edit::Keep => ' ',
            Edit::Remove => '-',
            Edit::Add => '+',
        };
        let mut text: String = line.chars().take(DIFF_MAX_LINE_CHARS).collect();
        if text.len() < line.len() {
            text.push_str(" ...");
        }
        out.push_str(&format!("{mark} {text}\n"));
        lines += 1;
    }
    if skipped && !cut {
        out.push_str("  ...\n");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    use axum::extract::State as AxumState;

    /// A fake OpenAI-compatible upstream: answers "echo: <last message>" and keeps the
    /// `Authorization` header of every request.
    #[derive(Default)]
    struct Fake {
        authorizations: Mutex<Vec<Option<String>>>,
    }

    async fn fake_upstream() -> (String, Arc<Fake>, JoinHandle<()>) {
        async fn complete(
            AxumState(fake): AxumState<Arc<Fake>>,
            headers: HeaderMap,
            axum::Json(request): axum::Json<Value>,
        ) -> Response {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_owned());
            fake.authorizations.lock().unwrap().push(authorization);
            let last = request["messages"]
                .as_array()
                .and_then(|m| m.last())
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default()
                .to_owned();
            if last == "fail" {
                return error(StatusCode::TOO_MANY_REQUESTS, "rate_limit", "slow down");
            }
            axum::Json(json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": request["model"],
                "choices": [{
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": format!("echo: {last}")},
                }],
            }))
            .into_response()
        }
        let fake = Arc::new(Fake::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(fake.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (url, fake, task)
    }

    fn request(prompt: &str) -> Value {
        json!({
            "model": "gpt-test",
            "temperature": 0,
            "messages": [
                {"role": "system", "content": "You are Picard.\nYou lead the crew.\nBe brief."},
                {"role": "user", "content": prompt},
            ],
        })
    }

    async fn post_chat(
        server: &CassetteServer,
        body: &Value,
        authorization: Option<&str>,
    ) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}/chat/completions", server.url()))
            .json(body);
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        let reply = req.send().await.unwrap();
        let status = reply.status().as_u16();
        (status, reply.json().await.unwrap())
    }

    fn cassette_files(dir: &Path) -> Vec<(String, String)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    }

    fn record(upstream: &str) -> Mode {
        Mode::Record {
            upstream: upstream.to_owned(),
            api_key: None,
        }
    }

    #[tokio::test]
    async fn cassette_recorded_exchange_replays_from_a_fresh_server() {
        let (upstream, fake, _task) = fake_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let body = request("Why is checkout crash looping?");

        let recorder = CassetteServer::start(dir.path().to_owned(), record(&upstream))
            .await
            .unwrap();
        let (status, recorded) = post_chat(&recorder, &body, None).await;
        assert_eq!(status, 200);
        assert_eq!(
            recorded["choices"][0]["message"]["content"],
            "echo: Why is checkout crash looping?"
        );
        assert_eq!(
            recorder.stats(),
            CassetteStats {
                recorded: 1,
                ..Default::default()
            }
        );
        drop(recorder);

        let files = cassette_files(dir.path());
        assert_eq!(files.len(), 1);
        let (name, text) = &files[0];
        assert!(
            name.ends_with("-gpt-test-why-is-checkout-crash-looping.json"),
            "{name}"
        );
        assert_eq!(name.split('-').next().unwrap().len(), 12, "{name}");
        let exchange: Exchange = serde_json::from_str(text).unwrap();
        assert_eq!(exchange.request, body);
        assert_eq!(exchange.response, recorded);
        assert_eq!(exchange.status, 200);

        let replayer = CassetteServer::start(dir.path().to_owned(), Mode::Replay)
            .await
            .unwrap();
        let (status, replayed) = post_chat(&replayer, &body, None).await;
        assert_eq!(status, 200);
        assert_eq!(replayed, recorded);
        assert_eq!(
            replayer.stats(),
            CassetteStats {
                hits: 1,
                ..Default::default()
            }
        );
        assert_eq!(replayer.requests(), vec![body]);
        assert!(replayer.misses().is_empty());
        assert_eq!(
            fake.authorizations.lock().unwrap().len(),
            1,
            "replay went upstream"
        );
    }

    #[test]
    fn issue_numbers_are_all_a_request_may_differ_by() {
        let a = request("Data filed follow-up issue #3; PR #2 is open; 512Mi limit");
        let b = request("Data filed follow-up issue #4; PR #2 is open; 512Mi limit");
        let c = request("Data filed follow-up issue #3; PR #2 is open; 513Mi limit");
        assert_eq!(match_key(&a), match_key(&b));
        assert_ne!(match_key(&a), match_key(&c));
    }

    #[tokio::test]
    async fn cassette_changed_prompt_is_a_miss_with_a_line_diff() {
        let (upstream, _fake, _task) = fake_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let recorder = CassetteServer::start(dir.path().to_owned(), record(&upstream))
            .await
            .unwrap();
        post_chat(&recorder, &request("Why is checkout crash looping?"), None).await;
        post_chat(
            &recorder,
            &request("Summarise the incident for the PR"),
            None,
        )
        .await;
        drop(recorder);

        let replayer = CassetteServer::start(dir.path().to_owned(), Mode::Replay)
            .await
            .unwrap();
        let changed = request("Why is checkout crash-looping now?");
        let (status, body) = post_chat(&replayer, &changed, None).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["type"], "cassette_miss");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("- messages[1].content: \"Why is checkout crash looping?\""),
            "{message}"
        );
        assert!(
            message.contains("+ messages[1].content: \"Why is checkout crash-looping now?\""),
            "{message}"
        );
        assert!(message.contains("2 lines differ"), "{message}");

        let misses = replayer.misses();
        assert_eq!(misses.len(), 1);
        assert_eq!(misses[0].request, changed);
        assert_eq!(misses[0].message, message);
        let nearest = misses[0].nearest.as_deref().unwrap();
        assert!(
            nearest.contains("why-is-checkout-crash-looping"),
            "{nearest}"
        );
        assert!(message.contains(nearest), "{message}");
        assert_eq!(
            replayer.stats(),
            CassetteStats {
                misses: 1,
                ..Default::default()
            }
        );
    }

    #[tokio::test]
    async fn cassette_multi_line_prompt_change_diffs_by_line() {
        let (upstream, _fake, _task) = fake_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let recorder = CassetteServer::start(dir.path().to_owned(), record(&upstream))
            .await
            .unwrap();
        post_chat(&recorder, &request("hello"), None).await;
        drop(recorder);

        let replayer = CassetteServer::start(dir.path().to_owned(), Mode::Replay)
            .await
            .unwrap();
        let mut changed = request("hello");
        changed["messages"][0]["content"] =
            json!("You are Picard.\nYou command the crew.\nBe brief.");
        let (status, _) = post_chat(&replayer, &changed, None).await;
        assert_eq!(status, 400);
        let diff = &replayer.misses()[0].diff;
        assert_eq!(
            diff,
            "  messages[0].content: |\n      You are Picard.\n-     You lead the crew.\n\
             +     You command the crew.\n      Be brief.\n  messages[0].role: \"system\"\n  ...\n"
        );
    }

    #[tokio::test]
    async fn cassette_ignored_fields_do_not_cause_misses() {
        let (upstream, _fake, _task) = fake_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let mut first = request("hello");
        first["user"] = json!("run-1");
        let recorder = CassetteServer::start(dir.path().to_owned(), record(&upstream))
            .await
            .unwrap();
        post_chat(&recorder, &first, None).await;
        drop(recorder);

        let replayer = CassetteServer::start(dir.path().to_owned(), Mode::Replay)
            .await
            .unwrap();
        let mut second = request("hello");
        second["user"] = json!("run-2");
        second["stream_options"] = json!({"include_usage": true});
        second["metadata"] = json!({"incident": "INC-7"});
        second["store"] = json!(false);
        let (status, _) = post_chat(&replayer, &second, None).await;
        assert_eq!(status, 200, "{:?}", replayer.misses());
        // Key order and whitespace do not matter either.
        let reordered = r#"{ "temperature": 0, "messages": [{"content": "You are Picard.\nYou lead the crew.\nBe brief.", "role": "system"}, {"role": "user", "content": "hello"}], "model": "gpt-test" }"#;
        let reply = reqwest::Client::new()
            .post(format!("{}/chat/completions", replayer.url()))
            .header(header::CONTENT_TYPE, "application/json")
            .body(reordered)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 200);
        assert_eq!(replayer.stats().hits, 2);
        // A field that is not ignored does.
        let mut hotter = request("hello");
        hotter["temperature"] = json!(0.7);
        let (status, _) = post_chat(&replayer, &hotter, None).await;
        assert_eq!(status, 400);
        assert!(
            replayer.misses()[0]
                .diff
                .contains("- temperature: 0\n+ temperature: 0.7\n")
        );
    }

    #[tokio::test]
    async fn cassette_never_stores_the_api_key() {
        let (upstream, fake, _task) = fake_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        // A configured key replaces the client's.
        let server = CassetteServer::start(
            dir.path().to_owned(),
            Mode::Record {
                upstream: upstream.clone(),
                api_key: Some("sk-configured-secret".to_owned()),
            },
        )
        .await
        .unwrap();
        assert!(
            !format!(
                "{:?}",
                Mode::Record {
                    upstream: upstream.clone(),
                    api_key: Some("sk-configured-secret".to_owned()),
                }
            )
            .contains("sk-configured-secret")
        );
        post_chat(&server, &request("one"), Some("Bearer sk-client-secret")).await;
        drop(server);
        // Without one, the client's goes upstream.
        let server = CassetteServer::start(dir.path().to_owned(), record(&upstream))
            .await
            .unwrap();
        post_chat(&server, &request("two"), Some("Bearer sk-client-secret")).await;
        drop(server);

        assert_eq!(
            *fake.authorizations.lock().unwrap(),
            vec![
                Some("Bearer sk-configured-secret".to_owned()),
                Some("Bearer sk-client-secret".to_owned()),
            ]
        );
        let files = cassette_files(dir.path());
        assert_eq!(files.len(), 2);
        for (name, text) in files {
            assert!(!text.contains("sk-"), "{name} holds a key:\n{text}");
            assert!(!text.to_lowercase().contains("authorization"), "{name}");
        }
    }

    #[tokio::test]
    async fn cassette_lists_the_models_it_holds() {
        let (upstream, _fake, _task) = fake_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let server = CassetteServer::start(dir.path().to_owned(), record(&upstream))
            .await
            .unwrap();
        let mut other = request("b");
        other["model"] = json!("gpt-other");
        for body in [request("a"), other, request("c")] {
            post_chat(&server, &body, None).await;
        }
        let list: Value = reqwest::get(format!("{}/models", server.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(list["object"], "list");
        assert_eq!(ids, ["gpt-other", "gpt-test"]);
    }

    #[tokio::test]
    async fn cassette_replay_or_record_records_misses_only() {
        let (upstream, fake, _task) = fake_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let mode = Mode::ReplayOrRecord {
            upstream,
            api_key: None,
        };
        let server = CassetteServer::start(dir.path().to_owned(), mode.clone())
            .await
            .unwrap();
        post_chat(&server, &request("a"), None).await;
        post_chat(&server, &request("a"), None).await;
        drop(server);
        let server = CassetteServer::start(dir.path().to_owned(), mode)
            .await
            .unwrap();
        post_chat(&server, &request("a"), None).await;
        post_chat(&server, &request("b"), None).await;
        assert_eq!(
            server.stats(),
            CassetteStats {
                hits: 1,
                recorded: 1,
                ..Default::default()
            }
        );
        assert_eq!(fake.authorizations.lock().unwrap().len(), 2);
        assert_eq!(cassette_files(dir.path()).len(), 2);
    }

    #[tokio::test]
    async fn cassette_does_not_record_upstream_errors() {
        let (upstream, _fake, _task) = fake_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let server = CassetteServer::start(dir.path().to_owned(), record(&upstream))
            .await
            .unwrap();
        let (status, body) = post_chat(&server, &request("fail"), None).await;
        assert_eq!(status, 429);
        assert_eq!(body["error"]["type"], "rate_limit");
        assert_eq!(server.stats().upstream_errors, 1);
        assert!(cassette_files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn cassette_replay_needs_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-cassette");
        let err = CassetteServer::start(missing, Mode::Replay)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("no-such-cassette"), "{err}");
    }

    #[tokio::test]
    async fn cassette_empty_replay_miss_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let server = CassetteServer::start(dir.path().to_owned(), Mode::Replay)
            .await
            .unwrap();
        let (status, body) = post_chat(&server, &request("a"), None).await;
        assert_eq!(status, 400);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("holds no exchanges")
        );
        assert_eq!(server.misses()[0].nearest, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn cassette_serves_concurrent_requests() {
        let (upstream, fake, _task) = fake_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let prompts: Vec<String> = (0..8).map(|i| format!("question {i}")).collect();
        let mode = Mode::ReplayOrRecord {
            upstream,
            api_key: None,
        };
        let server = Arc::new(
            CassetteServer::start(dir.path().to_owned(), mode)
                .await
                .unwrap(),
        );
        for round in 0..2 {
            // All in flight before any is awaited.
            let handles: Vec<_> = prompts
                .iter()
                .map(|p| {
                    let server = server.clone();
                    let body = request(p);
                    tokio::spawn(async move { post_chat(&server, &body, None).await })
                })
                .collect();
            for (handle, prompt) in handles.into_iter().zip(&prompts) {
                let (status, body) = handle.await.unwrap();
                assert_eq!(status, 200, "round {round}");
                assert_eq!(
                    body["choices"][0]["message"]["content"],
                    format!("echo: {prompt}")
                );
            }
        }
        assert_eq!(
            server.stats(),
            CassetteStats {
                hits: 8,
                recorded: 8,
                ..Default::default()
            }
        );
        assert_eq!(server.requests().len(), 16);
        assert_eq!(fake.authorizations.lock().unwrap().len(), 8);
        let files = cassette_files(dir.path());
        assert_eq!(
            files.len(),
            8,
            "{:?}",
            files.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
    }

    #[test]
    fn cassette_match_key_is_canonical_and_ignores_noise() {
        let a: Value =
            serde_json::from_str(r#"{"b": [1, {"y": 2, "x": 1}], "a": "z", "user": "u1"}"#)
                .unwrap();
        assert_eq!(match_key(&a), r#"{"a":"z","b":[1,{"x":1,"y":2}]}"#);
        assert_eq!(
            file_name(&match_key(&a), &a),
            format!("{:012x}-model.json", fnv1a(match_key(&a).as_bytes()) >> 16)
        );
        // The hash is fixed: file names must not change between toolchains.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn cassette_line_diff_finds_the_changed_lines() {
        let lines = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let (old, new) = (lines("a b c d e f g h"), lines("a b x d e f g h y"));
        let ops = line_diff(&old, &new);
        let changed: Vec<_> = ops.iter().filter(|(e, _)| *e != Edit::Keep).collect();
        assert_eq!(
            changed,
            [&(Edit::Remove, "c"), &(Edit::Add, "x"), &(Edit::Add, "y")]
        );
        assert_eq!(
            render_diff(&ops),
            "  a\n  b\n- c\n+ x\n  d\n  e\n  ...\n  g\n  h\n+ y\n"
        );
    }
}
