//! A redacting proxy between HolmesGPT and its model.
//!
//! HolmesGPT sends what its tools read (kubectl output, logs) to its model itself, outside squad's
//! redaction gateway. For a CLI investigation squad starts this proxy on loopback, points
//! HolmesGPT at it (`OPENAI_API_BASE`), and forwards every request to the real model API after
//! redacting the conversation: the same detectors as the crew's gateway, plus the values of the
//! namespace's Kubernetes Secrets. Headers (the API key) pass through untouched and are never
//! logged; answers come back as they are.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use squad_runtime::Redactor;
use tokio::task::JoinHandle;

struct Shared {
    upstream: String,
    redactor: Arc<Redactor>,
    client: reqwest::Client,
}

/// The proxy; serves until dropped.
pub struct RedactingProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RedactingProxy {
    /// Listens on a free loopback port and forwards to `upstream` (an OpenAI-style base URL
    /// ending in `/v1`).
    pub async fn start(
        upstream: &str,
        redactor: Arc<Redactor>,
        timeout: Duration,
    ) -> Result<RedactingProxy, String> {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("the redacting proxy's HTTP client: {e}"))?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            redactor,
            client,
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("the redacting proxy cannot listen on loopback: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("the redacting proxy's address: {e}"))?;
        let app = Router::new()
            .route("/v1/{*rest}", axum::routing::any(forward))
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("redacting proxy stopped: {e}");
            }
        });
        Ok(RedactingProxy { addr, task })
    }

    /// The base URL to give HolmesGPT, ending in `/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for RedactingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request body with its conversation redacted: every string under `messages` (content, tool
/// results, tool-call arguments) and `prompt`/`input` when present. Not JSON: redacted as text.
pub fn redact_body(r: &Redactor, body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                for key in ["messages", "prompt", "input"] {
                    if let Some(x) = o.get_mut(key) {
                        *x = r.redact_json(x);
                    }
                }
            }
            serde_json::to_vec(&v).unwrap_or_default()
        }
        Err(_) => r.redact(&String::from_utf8_lossy(body)).into_bytes(),
    }
}

async fn forward(
    State(s): State<Arc<Shared>>,
    Path(rest): Path<String>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = format!("{}/{rest}", s.upstream);
    let body = if body.is_empty() {
        Vec::new()
    } else {
        redact_body(&s.redactor, &body)
    };
    let mut req = s.client.request(method, &url).body(body);
    for name in [
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::ACCEPT,
        header::HeaderName::from_static("api-key"),
        header::HeaderName::from_static("openai-organization"),
    ] {
        if let Some(v) = headers.get(&name) {
            req = req.header(name, v.clone());
        }
    }
    match req.send().await {
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("squad's redacting proxy could not reach the model at {url}: {e}"),
        )
            .into_response(),
        Ok(reply) => {
            let status =
                StatusCode::from_u16(reply.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = reply.headers().get(header::CONTENT_TYPE).cloned();
            let bytes = reply.bytes().await.unwrap_or_default();
            let mut resp = (status, bytes).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                content_type.unwrap_or(HeaderValue::from_static("application/json")),
            );
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn the_conversation_is_redacted_on_the_way_and_the_answer_comes_back() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::<(Value, Option<String>)>::new()));
        let log = seen.clone();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(
                move |headers: HeaderMap, axum::Json(b): axum::Json<Value>| {
                    let log = log.clone();
                    async move {
                        let auth = headers
                            .get(header::AUTHORIZATION)
                            .map(|v| v.to_str().unwrap().to_string());
                        log.lock().unwrap().push((b, auth));
                        (
                            StatusCode::CREATED,
                            axum::Json(json!({"choices": [], "ok": true})),
                        )
                    }
                },
            ),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let redactor = Arc::new(Redactor::new(&[]).unwrap());
        redactor.add_secret_values(["plain-secret-value-42".to_string()]);
        let proxy = RedactingProxy::start(
            &format!("http://{addr}/v1"),
            redactor,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let body = json!({"model": "m", "messages": [
            {"role": "user", "content": "why?"},
            {"role": "tool", "tool_call_id": "1", "content": "data:\n  password: plain-secret-value-42\n  token: ghp_0123456789abcdefghijABCDEFGHIJ012345"}
        ]});
        let reply = reqwest::Client::new()
            .post(format!("{}/chat/completions", proxy.url()))
            .header(header::AUTHORIZATION, "Bearer sk-the-real-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 201);
        assert_eq!(reply.json::<Value>().await.unwrap()["ok"], true);
        let (got, auth) = seen.lock().unwrap()[0].clone();
        let text = got.to_string();
        assert!(!text.contains("plain-secret-value-42"), "{text}");
        assert!(!text.contains("ghp_0123"), "{text}");
        assert!(text.contains("[REDACTED:"), "{text}");
        assert_eq!(got["messages"][0]["content"], "why?");
        assert_eq!(auth.as_deref(), Some("Bearer sk-the-real-key"));
        // An unreachable model: a 502 naming it.
        drop(proxy);
        let proxy = RedactingProxy::start(
            "http://127.0.0.1:9/v1",
            Arc::new(Redactor::new(&[]).unwrap()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let reply = reqwest::Client::new()
            .post(format!("{}/chat/completions", proxy.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 502);
        assert!(reply.text().await.unwrap().contains("127.0.0.1:9"));
    }
}
