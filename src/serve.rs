//! `squad serve`: the daemon alerting systems call.
//!
//! Endpoints (errors are JSON `{"error": {"status", "message"}}` naming the field and what was
//! expected):
//! - `POST /v1/alerts/alertmanager` — Alertmanager webhook v4 (firing and resolved);
//! - `POST /v1/alerts/pagerduty` — PagerDuty v3 webhooks, `X-PagerDuty-Signature` checked against
//!   `[pagerduty] secrets` (any of them, for rotation);
//! - `POST /v1/alerts` — squad's generic format (see `squad_protocols::generic`);
//! - `GET /v1/incidents`, `GET /v1/incidents/{id}` (with its timeline);
//! - `GET /healthz`, `GET /readyz`, `GET /metrics`.
//!
//! The alert and incident endpoints need `Authorization: Bearer <token>` with a token from
//! `[server.auth]` (401 without one, 403 with a wrong one; see `serve/guard.rs`); PagerDuty's
//! needs its signature instead when secrets are configured. Bodies over `body_limit_bytes` get 413, slow
//! requests 408, and a panic anywhere in a handler becomes a 500, never a dead daemon.
//!
//! The edge (`serve/listener.rs`): TLS from `[server.tls]` with certificate reload
//! (`serve/tls.rs`), a 16 KiB limit on a request's head (431), and per-token rate limits
//! (`serve/limits.rs`, 429).
//!
//! An alert answered 202 is in the store's intake log already (see [`crate::intake`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use squad_config::Settings;
use squad_protocols::{Alert, AlertSource, Author, EventKind, IncidentId, IncidentState, Member};
use squad_runtime::{Clock, IncidentStore, RedbStore};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Squad;
use crate::intake::Intake;
use crate::signature;

mod auth;
mod guard;
mod limits;
mod listener;
mod tls;

pub use auth::hash_token;
use guard::{Guard, Peer};
pub use tls::{TlsError, check_tls_files};

struct AppState {
    intake: Intake,
    squad: Arc<Squad>,
    store: Arc<dyn IncidentStore>,
    /// The bearer tokens (as digests) and the rate limits.
    guard: Guard,
    pagerduty_secrets: Vec<String>,
    github_secrets: Vec<String>,
    /// `owner/name` of the GitOps repository: webhooks about other repositories are ignored.
    repo: String,
    metrics: Option<PrometheusHandle>,
    /// The shards this replica holds (every one without replicas).
    ownership: Arc<squad_runtime::shards::Ownership>,
}

/// A running daemon.
pub struct Daemon {
    addr: SocketAddr,
    tls: bool,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    state: Arc<AppState>,
    grace: Duration,
    _backends: crate::backends::Wired,
    replicas: crate::replicas::Replicas,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": {"status": status.as_u16(), "message": message}}).to_string(),
    )
        .into_response()
}

fn reject(source: &str, reason: &'static str, status: StatusCode, message: String) -> Response {
    metrics::counter!("squad_alerts_rejected_total", "source" => source.to_owned(), "reason" => reason)
        .increment(1);
    error(status, message)
}

/// The store a daemon keeps: `[store] path`, or `<data_dir>/incidents.redb`.
pub fn store_path(settings: &Settings) -> PathBuf {
    settings.store.path.as_ref().map_or_else(
        || Path::new(&settings.backend.data_dir).join("incidents.redb"),
        PathBuf::from,
    )
}

impl Daemon {
    /// Opens the store, starts the crew on the configured backends and the intake, and listens.
    pub async fn start(
        mut settings: Settings,
        metrics: Option<PrometheusHandle>,
    ) -> anyhow::Result<Daemon> {
        settings.validate("squad.toml")?;
        // Tokens are kept as digests only: the plain text goes before anything else sees it.
        let guard = Guard::new(&settings.server.auth, &settings.server.rate_limit)?;
        settings.server.auth.tokens.clear();
        let tls = settings
            .server
            .tls
            .as_ref()
            .map(tls::Tls::new)
            .transpose()?;
        let minds = crate::models::minds(&settings, &crate::models::LlmChoice::default(), |v| {
            std::env::var(v).ok()
        })?;
        for line in crate::models::describe(&minds) {
            tracing::info!("crew model: {line}");
        }
        let data_dir = PathBuf::from(&settings.backend.data_dir);
        private_dir(&data_dir)
            .map_err(|e| anyhow::anyhow!("backend.data_dir {}: {e}", data_dir.display()))?;
        let store: Arc<dyn IncidentStore> = match &settings.store.url {
            Some(url) => {
                let store = squad_pgstore::PgStore::connect(url)?;
                tracing::info!(
                    "incident store: PostgreSQL at {}",
                    squad_pgstore::redacted_url(url)
                );
                Arc::new(store)
            }
            None => Arc::new(RedbStore::open(&store_path(&settings))?),
        };
        let clock = Clock::starting_at(chrono::Utc::now());
        let replicas = crate::replicas::start(&settings, clock.clone(), store.clone()).await?;
        let ownership = replicas.ownership.clone();
        // For HolmesGPT's kubectl: the cluster squad reads.
        let wired = crate::backends::wire(&settings, &data_dir, clock.clone()).await?;
        let (cluster, forge, app) = (
            wired.cluster.clone(),
            wired.forge.clone(),
            wired.app.clone(),
        );
        let kubeconfig = wired.kubeconfig.clone();
        let repo = forge.repo();
        let diagnoser =
            crate::diagnose::diagnoser_for(&settings, cluster.clone(), clock.clone(), kubeconfig);
        let mut builder = Squad::builder()
            .store(store.clone())
            .clock(clock.clone())
            .cluster(cluster)
            .forge(forge)
            .app_repo(app)
            .settings(settings.clone())
            .minds(minds)
            .diagnoser(diagnoser)
            .ownership(ownership.clone());
        if let Some(replayer) = wired.replayer.clone() {
            builder = builder.replayer(replayer);
        }
        if let Some(alerts) = wired.alerts.clone() {
            builder = builder.alerts(alerts);
        }
        let squad = Arc::new(builder.start().await?);
        let intake = Intake::start_replica(
            store.clone(),
            squad.clone(),
            clock,
            settings.intake.clone(),
            ownership.clone(),
        )?;
        spawn_task_timer(store.clone());
        let state = Arc::new(AppState {
            intake,
            squad,
            store,
            guard,
            pagerduty_secrets: settings.pagerduty.secrets.clone(),
            github_secrets: settings.github.webhook_secrets.clone(),
            repo: repo.clone(),
            metrics,
            ownership,
        });
        let listener = TcpListener::bind(&settings.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("server.listen {}: {e}", settings.server.listen))?;
        let addr = listener.local_addr()?;
        let app = router(
            state.clone(),
            settings.server.body_limit_bytes,
            Duration::from_secs(settings.server.request_timeout_seconds),
        );
        let (shutdown, rx) = watch::channel(false);
        let edge = listener::Edge {
            tls: tls.as_ref().map(tls::Tls::acceptor),
            header_timeout: Duration::from_secs(settings.server.request_timeout_seconds),
        };
        if let Some(t) = &tls {
            // Stops with the server (it watches the same shutdown signal).
            drop(t.spawn_reloader(rx.clone()));
        }
        let server = tokio::spawn(listener::serve(listener, app, edge, rx));
        tracing::info!(%addr, tls = tls.is_some(), "squad serve: listening");
        Ok(Daemon {
            addr,
            tls: tls.is_some(),
            shutdown,
            server,
            state,
            grace: Duration::from_secs(settings.server.shutdown_grace_seconds),
            _backends: wired,
            replicas,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://<addr>` with `[server.tls]`, else `http://<addr>`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops intake and the server (in-flight requests finish), lets the intake processor reach a
    /// checkpoint, then stops the crew. Everything accepted is in the store for the next start.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(self.grace, self.server).await;
        let state = match Arc::try_unwrap(self.state) {
            Ok(s) => s,
            Err(shared) => {
                // Handlers still hold it: stop the crew anyway.
                shared.squad.shutdown_ref().await;
                return;
            }
        };
        state.intake.stop(self.grace).await;
        state.squad.shutdown_ref().await;
        // Last: the others take the leases over at once instead of after they expire.
        self.replicas.stop().await;
    }
}

/// Records crew task durations (assignment to report) as a histogram, and model usage as
/// counters per member and model.
fn spawn_task_timer(store: Arc<dyn IncidentStore>) {
    let mut rx = store.subscribe();
    tokio::spawn(async move {
        let mut started: std::collections::HashMap<
            (IncidentId, Member),
            chrono::DateTime<chrono::Utc>,
        > = std::collections::HashMap::new();
        loop {
            match rx.recv().await {
                Ok(e) => match &e.kind {
                    EventKind::Assigned { member, .. } => {
                        started.insert((e.incident.clone(), *member), e.at);
                    }
                    EventKind::Deliberated {
                        member,
                        model,
                        outcome,
                        usage,
                        cost_usd,
                        ..
                    } => {
                        let m = member.id();
                        let labels = [("member", m.to_owned()), ("model", model.clone())];
                        metrics::counter!("squad_llm_calls_total", &labels)
                            .increment(u64::from(usage.calls));
                        metrics::counter!("squad_llm_prompt_tokens_total", &labels)
                            .increment(usage.prompt_tokens);
                        metrics::counter!("squad_llm_completion_tokens_total", &labels)
                            .increment(usage.completion_tokens);
                        let outcome = match outcome {
                            squad_protocols::DeliberationOutcome::Accepted => "accepted",
                            squad_protocols::DeliberationOutcome::Fallback { .. } => "fallback",
                        };
                        metrics::counter!("squad_llm_deliberations_total", "member" => m, "outcome" => outcome)
                            .increment(1);
                        if let Some(c) = cost_usd {
                            metrics::gauge!("squad_llm_estimated_cost_usd_total", &labels)
                                .increment(*c);
                        }
                    }
                    EventKind::Reported { report } => {
                        if let Some(t0) = started.remove(&(e.incident.clone(), report.member)) {
                            let secs = (e.at - t0).num_milliseconds() as f64 / 1000.0;
                            metrics::histogram!("squad_crew_task_duration_seconds", "member" => report.member.id())
                                .record(secs);
                        }
                    }
                    _ => {}
                },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
}

fn router(state: Arc<AppState>, body_limit: usize, timeout: Duration) -> Router {
    Router::new()
        .route("/v1/alerts/alertmanager", post(alertmanager))
        .route("/v1/alerts/pagerduty", post(pagerduty))
        .route("/v1/webhooks/github", post(github_webhook))
        .route("/v1/alerts", post(generic))
        .route("/v1/incidents", get(incidents))
        .route("/v1/incidents/{id}", get(incident))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (recorded in the log)",
                )
            },
        ))
        .with_state(state)
}

/// Creates `dir` (and its parents) if missing; a directory squad creates is its owner's alone
/// (mode 0700 on Unix): it holds the incident store and the repositories' checkouts.
fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The rejection (401, 403 or 429), unless the request carries an accepted bearer token within
/// its rate limit.
fn unauthorized(state: &AppState, headers: &HeaderMap, peer: Peer) -> Option<Response> {
    state.guard.bearer(headers, peer)
}

/// The `reason` label of `squad_alerts_rejected_total` for a refusal from [`unauthorized`].
fn refusal_reason(r: &Response) -> &'static str {
    if r.status() == StatusCode::TOO_MANY_REQUESTS || r.headers().contains_key(header::RETRY_AFTER)
    {
        "rate_limit"
    } else {
        "auth"
    }
}

fn body_or_reject(
    source: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Box<Response>> {
    body.map_err(|e| {
        let status = e.status();
        let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "body"
        };
        Box::new(reject(source, reason, status, format!("request body: {e}")))
    })
}

async fn accept(state: &AppState, source: &str, alerts: Vec<Alert>) -> Response {
    let n = alerts.len();
    metrics::counter!("squad_alerts_received_total", "source" => source.to_owned())
        .increment(n as u64);
    match state.intake.submit(alerts).await {
        Ok(seqs) => (
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"accepted": n, "intake_seqs": seqs}).to_string(),
        )
            .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn alertmanager(
    State(state): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(r) = state
        .guard
        .bearer_over_limit(&headers, peer, StatusCode::SERVICE_UNAVAILABLE)
    {
        metrics::counter!("squad_alerts_rejected_total", "source" => "alertmanager", "reason" => refusal_reason(&r)).increment(1);
        return r;
    }
    let body = match body_or_reject("alertmanager", body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match squad_protocols::alert::parse_alertmanager_webhook(&body) {
        Ok(alerts) => accept(&state, "alertmanager", alerts).await,
        Err(e) => reject(
            "alertmanager",
            "invalid",
            StatusCode::BAD_REQUEST,
            e.to_string(),
        ),
    }
}

/// `POST /v1/webhooks/github`: a signed delivery about a PR or issue squad follows is written on
/// the incident's timeline and wakes Ralph, who looks at the PR now instead of at its next poll.
async fn github_webhook(
    State(state): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(r) = state.guard.peer_blocked(peer) {
        return r;
    }
    let body = match body_or_reject("github", body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let sig = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = signature::verify_github_signature(&body, sig, &state.github_secrets) {
        let status = match e {
            signature::GitHubSignatureError::MissingHeader => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        };
        return state
            .guard
            .refused(peer, reject("github", "signature", status, e.to_string()));
    }
    let Some(event) = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return reject(
            "github",
            "payload",
            StatusCode::BAD_REQUEST,
            "the X-GitHub-Event header is missing".into(),
        );
    };
    if event == "ping" {
        return (StatusCode::OK, Json(json!({"pong": true}))).into_response();
    }
    let parsed = match squad_protocols::github::parse_github_webhook(&event, &body) {
        Ok(Some(e)) => e,
        Ok(None) => {
            return (
                StatusCode::ACCEPTED,
                Json(json!({"ignored": format!("squad does not follow {event} events")})),
            )
                .into_response();
        }
        Err(e) => return reject("github", "payload", StatusCode::BAD_REQUEST, e.to_string()),
    };
    if parsed.repo() != state.repo {
        return (
            StatusCode::ACCEPTED,
            Json(json!({"ignored": format!("{} is not squad's repository ({})", parsed.repo(), state.repo)})),
        )
            .into_response();
    }
    let store = state.store.clone();
    let number = parsed.number();
    let matched = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for id in store.incident_ids().unwrap_or_default() {
            if let Ok(i) = store.load(&id) {
                let follows = i.pr.as_ref().is_some_and(|p| p.number == number)
                    || i.issue.as_ref().is_some_and(|p| p.number == number);
                if follows && !matches!(i.state, IncidentState::Resolved) {
                    out.push(id);
                }
            }
        }
        out
    })
    .await
    .unwrap_or_default();
    let text = parsed.describe();
    for id in &matched {
        if let Err(e) =
            state
                .squad
                .journal()
                .record(id, Author::System, EventKind::Note { text: text.clone() })
        {
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    }
    if !matches!(
        parsed,
        squad_protocols::github::GitHubEvent::IssueComment { .. }
    ) {
        state.squad.wake_pr(number);
    }
    metrics::counter!("squad_github_webhooks_total", "event" => event.clone()).increment(1);
    (
        StatusCode::ACCEPTED,
        Json(json!({"event": text, "incidents": matched.iter().map(|i| i.as_str()).collect::<Vec<_>>()})),
    )
        .into_response()
}

async fn pagerduty(
    State(state): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(r) = state.guard.peer_blocked(peer) {
        return r;
    }
    let body = match body_or_reject("pagerduty", body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if state.pagerduty_secrets.is_empty() {
        if let Some(r) = unauthorized(&state, &headers, peer) {
            metrics::counter!("squad_alerts_rejected_total", "source" => "pagerduty", "reason" => refusal_reason(&r)).increment(1);
            return r;
        }
    } else {
        let sig = headers
            .get("x-pagerduty-signature")
            .and_then(|v| v.to_str().ok());
        if let Err(e) = signature::verify_pagerduty_signature(&body, sig, &state.pagerduty_secrets)
        {
            let status = if sig.is_none() {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            return state.guard.refused(
                peer,
                reject("pagerduty", "signature", status, e.to_string()),
            );
        }
    }
    match squad_protocols::pagerduty::parse_pagerduty_webhook(&body) {
        Ok(event) => match event.alert {
            Some(alert) => accept(&state, "pagerduty", vec![alert]).await,
            None => (
                StatusCode::ACCEPTED,
                [(header::CONTENT_TYPE, "application/json")],
                json!({"accepted": 0, "ignored": event.event_type}).to_string(),
            )
                .into_response(),
        },
        Err(e) => reject(
            "pagerduty",
            "invalid",
            StatusCode::BAD_REQUEST,
            e.to_string(),
        ),
    }
}

async fn generic(
    State(state): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(r) = unauthorized(&state, &headers, peer) {
        metrics::counter!("squad_alerts_rejected_total", "source" => "generic", "reason" => refusal_reason(&r))
            .increment(1);
        return r;
    }
    let body = match body_or_reject("generic", body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match squad_protocols::generic::parse_generic_alerts(&body) {
        Ok(alerts) => accept(&state, "generic", alerts).await,
        Err(e) => reject("generic", "invalid", StatusCode::BAD_REQUEST, e.to_string()),
    }
}

fn incident_json(i: &squad_protocols::Incident) -> Value {
    json!({
        "id": i.id.as_str(),
        "state": i.state.as_str(),
        "alert": i.alert.name,
        "source": match i.alert.source {
            AlertSource::Alertmanager => "alertmanager",
            AlertSource::Pagerduty => "pagerduty",
            AlertSource::Generic => "generic",
            AlertSource::Simulation => "simulation",
        },
        "workload": i.workload.to_string(),
        "root_cause": i.diagnosis.as_ref().map(|d| d.root_cause.as_str()),
        "issue": i.issue.as_ref().map(|x| x.number),
        "pr": i.pr.as_ref().map(|x| json!({"number": x.number, "branch": x.branch})),
        "repeats": i.repeats,
        "alert_resolved": i.alert_resolved,
    })
}

async fn incidents(State(state): State<Arc<AppState>>, peer: Peer, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorized(&state, &headers, peer) {
        return r;
    }
    let store = state.store.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        for id in store.incident_ids().map_err(|e| e.to_string())? {
            if let Ok(i) = store.load(&id) {
                out.push(incident_json(&i));
            }
        }
        Ok(out)
    })
    .await;
    match result {
        Ok(Ok(list)) => axum::Json(json!({"incidents": list})).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn incident(
    State(state): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if let Some(r) = unauthorized(&state, &headers, peer) {
        return r;
    }
    let id = IncidentId(id);
    let events = match state.store.events(&id) {
        Ok(e) if !e.is_empty() => e,
        Ok(_) => return error(StatusCode::NOT_FOUND, format!("incident {id} not found")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match squad_protocols::Incident::replay(&events) {
        Ok(i) => {
            let mut body = incident_json(&i);
            body["timeline"] = events
                .iter()
                .map(|e| json!({"seq": e.seq, "at": e.at, "author": e.author.as_str(), "event": e.kind.describe()}))
                .collect();
            axum::Json(body).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if !state.intake.running() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the intake is not running");
    }
    // Ready means accepting alerts: a replica holding no shard still takes them into the log.
    let o = &state.ownership;
    if o.is_everything() {
        return (StatusCode::OK, "ready").into_response();
    }
    let leases = o.leases();
    let shards: Vec<&str> = leases
        .iter()
        .filter(|(l, held)| *held && l != squad_runtime::shards::INTAKE)
        .map(|(l, _)| l.as_str())
        .collect();
    let intake = leases
        .iter()
        .any(|(l, held)| *held && l == squad_runtime::shards::INTAKE);
    let list = if shards.is_empty() {
        String::new()
    } else {
        format!(" ({})", shards.join(", "))
    };
    (
        StatusCode::OK,
        format!(
            "ready; shards held: {} of {}{list}; intake: {}",
            shards.len(),
            o.shards(),
            if intake { "held" } else { "another replica's" }
        ),
    )
        .into_response()
}

async fn render_metrics(State(state): State<Arc<AppState>>) -> Response {
    let Some(handle) = &state.metrics else {
        return error(
            StatusCode::NOT_FOUND,
            "no metrics recorder is installed (the squad binary installs one)",
        );
    };
    // Gauges computed at scrape time.
    let s = &state.intake.stats;
    metrics::gauge!("squad_intake_accepted").set(s.accepted.load(Ordering::Relaxed) as f64);
    metrics::gauge!("squad_intake_processed").set(s.processed.load(Ordering::Relaxed) as f64);
    metrics::counter!("squad_alerts_deduplicated_total")
        .absolute(s.deduplicated.load(Ordering::Relaxed));
    metrics::counter!("squad_incidents_opened_total").absolute(s.opened.load(Ordering::Relaxed));
    metrics::counter!("squad_alert_regressions_total")
        .absolute(s.regressions.load(Ordering::Relaxed));
    for (lease, holds) in state.ownership.leases() {
        metrics::gauge!("squad_lease_held", "lease" => lease).set(if holds { 1.0 } else { 0.0 });
    }
    for (name, a) in state.squad.adapter_stats() {
        let adapter = name.clone();
        metrics::gauge!("squad_adapter_queue_depth", "adapter" => adapter.clone())
            .set(a.queued.load(Ordering::Relaxed) as f64);
        metrics::gauge!("squad_adapter_in_flight", "adapter" => adapter.clone())
            .set(a.in_flight.load(Ordering::Relaxed) as f64);
        metrics::counter!("squad_adapter_calls_total", "adapter" => adapter.clone())
            .absolute(a.completed.load(Ordering::Relaxed));
        metrics::counter!("squad_adapter_restarts_total", "adapter" => adapter)
            .absolute(a.restarts.load(Ordering::Relaxed));
    }
    let store = state.store.clone();
    let by_state = tokio::task::spawn_blocking(move || {
        let mut counts: std::collections::BTreeMap<&'static str, u64> =
            std::collections::BTreeMap::new();
        for id in store.incident_ids().unwrap_or_default() {
            if let Ok(i) = store.load(&id) {
                *counts.entry(i.state.as_str()).or_default() += 1;
            }
        }
        counts
    })
    .await
    .unwrap_or_default();
    for st in squad_protocols::IncidentState::ALL {
        metrics::gauge!("squad_incidents", "state" => st.as_str())
            .set(by_state.get(st.as_str()).copied().unwrap_or(0) as f64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
