//! The LLM adapter: chat completions with tools against OpenAI, Azure OpenAI or any
//! OpenAI-compatible server (llama.cpp, vLLM, Ollama), for the crew's model-backed brains.
//!
//! Only this module knows async-openai. Agents speak [`ChatRequest`] / [`ChatResponse`] in
//! squad's own message types; tool calls come back as [`ToolCall`]s whether the server does native
//! tool calling or only JSON-schema constrained output ([`ToolProtocol`]).
//!
//! The client brings its own HTTP stack: the workspace's reqwest (rustls on ring) with the
//! profile's timeout, under a transport that keeps status and `Retry-After` so errors are
//! classified ([`LlmError`]) and retries honour the server. Calls through one client are limited
//! to the profile's `max_concurrent`. The API key is read from the environment at construction and
//! never appears in `Debug`, errors or logs.

mod error;
mod model;
mod wire;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::{AzureConfig, Config, OpenAIConfig};
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use squad_config::{LlmProfile, LlmProvider, LlmToolMode};
use squad_protocols::Usage;
use tokio::sync::Semaphore;

pub use error::LlmError;
use error::{CallContext, HttpStatus, parse_retry_after};
pub use model::{LlmModel, minds_from_settings};
pub use squad_protocols::llm::{
    ChatMessage, ChatRequest, ChatResponse, FinishReason, ResponseSchema, ToolCall, ToolProtocol,
    ToolSpec,
};

/// The longest `Retry-After` the client waits out itself; a longer one is returned to the caller.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(120);
/// First backoff delay; doubles per retry, capped at [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The most of a model's answer squad reads (16 MiB; a chat completion is kilobytes): a longer
/// one is a bad response, read no further.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;
/// The most of an error answer's body kept for its message.
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// A chat-completions client for one [`LlmProfile`].
pub struct LlmClient {
    client: Client<Box<dyn Config>>,
    /// The chat completions URL, for errors and logs.
    endpoint: String,
    model: String,
    provider: LlmProvider,
    tool_mode: LlmToolMode,
    /// In auto mode: native tools were refused once, so this client uses json_schema.
    json_schema_fallback: AtomicBool,
    permits: Semaphore,
    max_concurrent: usize,
    max_retries: u32,
    timeout: Duration,
    secret: Option<ApiKey>,
}

/// The key, kept only to scrub it from anything a server echoes back.
struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("provider", &self.provider)
            .field("tool_protocol", &self.tool_protocol())
            .field("max_concurrent", &self.max_concurrent)
            .field("max_retries", &self.max_retries)
            .field("timeout", &self.timeout)
            .field("api_key", &self.secret)
            .finish_non_exhaustive()
    }
}

impl LlmClient {
    /// A client for `profile`, reading its API key from the process environment.
    pub fn new(profile: &LlmProfile) -> Result<Self, LlmError> {
        Self::with_env(profile, |var| std::env::var(var).ok())
    }

    /// As [`LlmClient::new`], with the environment given (tests, embedding applications).
    pub fn with_env(
        profile: &LlmProfile,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LlmError> {
        let base = profile.base_url().trim_end_matches('/').to_string();
        let key = match profile.api_key_env() {
            Some(var) => {
                let key = env(var).map(|k| k.trim().to_string()).unwrap_or_default();
                if key.is_empty() {
                    return Err(LlmError::MissingApiKey {
                        var: var.to_string(),
                        url: base,
                    });
                }
                // async-openai puts the key in a header and panics if it cannot.
                if !key.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(LlmError::Config(format!(
                        "the API key in {var} contains spaces or control characters"
                    )));
                }
                Some(key)
            }
            None => None,
        };
        let config: Box<dyn Config> = match profile.provider {
            LlmProvider::Azure => {
                let deployment = profile.deployment.clone().unwrap_or_default();
                let api_version = profile.api_version.clone().unwrap_or_default();
                Box::new(
                    AzureConfig::new()
                        .with_api_base(&base)
                        .with_deployment_id(deployment)
                        .with_api_version(api_version)
                        .with_api_key(key.clone().unwrap_or_default()),
                )
            }
            LlmProvider::Openai | LlmProvider::OpenaiCompatible => Box::new(
                OpenAIConfig::new()
                    .with_api_base(&base)
                    .with_api_key(key.clone().unwrap_or_default()),
            ),
        };
        let endpoint = config.url("/chat/completions");
        let timeout = Duration::from_secs(profile.timeout_seconds.max(1));
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| LlmError::Config(format!("HTTP client for {endpoint}: {e}")))?;
        let client = Client::build(http.clone(), config).with_http_service(Transport { http });
        let max_concurrent = profile.max_concurrent.max(1);
        Ok(LlmClient {
            client,
            endpoint,
            model: profile.model.clone(),
            provider: profile.provider,
            tool_mode: profile.tool_mode,
            json_schema_fallback: AtomicBool::new(false),
            permits: Semaphore::new(max_concurrent),
            max_concurrent,
            max_retries: profile.max_retries,
            timeout,
            secret: key.map(ApiKey),
        })
    }

    /// The chat completions URL this client posts to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How tools are offered now (auto mode starts native and may have fallen back).
    pub fn tool_protocol(&self) -> ToolProtocol {
        match self.tool_mode {
            LlmToolMode::Native => ToolProtocol::Native,
            LlmToolMode::JsonSchema => ToolProtocol::JsonSchema,
            LlmToolMode::Auto if self.json_schema_fallback.load(Ordering::Relaxed) => {
                ToolProtocol::JsonSchema
            }
            LlmToolMode::Auto => ToolProtocol::Native,
        }
    }

    /// In auto mode, switch this client to json_schema from now on; for the agent loop when a
    /// model answers in prose where a tool call was required. Returns whether it switched.
    pub fn fall_back_to_json_schema(&self) -> bool {
        self.tool_mode == LlmToolMode::Auto
            && !self.json_schema_fallback.swap(true, Ordering::Relaxed)
    }

    /// Sends `req`, retrying rate limits, server errors and timeouts; in auto mode, a server
    /// that refuses native tools gets the call again in json_schema mode.
    pub async fn chat(&self, req: ChatRequest) -> Result<ChatResponse, LlmError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| LlmError::Config("the client is closed".into()))?;
        let protocol = self.tool_protocol();
        match self.send(&req, protocol).await {
            Err(e)
                if protocol == ToolProtocol::Native
                    && !req.tools.is_empty()
                    && e.is_tools_unsupported()
                    && self.fall_back_to_json_schema() =>
            {
                tracing::warn!(
                    endpoint = %self.endpoint,
                    model = %self.model,
                    error = %e,
                    "the server refused native tools; using json_schema mode from now on"
                );
                self.send(&req, ToolProtocol::JsonSchema).await
            }
            other => other,
        }
    }

    async fn send(
        &self,
        req: &ChatRequest,
        protocol: ToolProtocol,
    ) -> Result<ChatResponse, LlmError> {
        let body = wire::build_request(&self.model, self.provider, req, protocol)
            .map_err(LlmError::InvalidRequest)?;
        let ctx = CallContext {
            url: &self.endpoint,
            model: &self.model,
            timeout: self.timeout,
            secret: self.secret.as_ref().map(|k| k.0.as_str()),
        };
        let mut attempt = 0u32;
        let answer: wire::WireResponse = loop {
            let result = self.client.chat().create_byot(&body).await;
            match result.map_err(|e| ctx.classify(e)) {
                Ok(answer) => break answer,
                Err(e) if e.is_retryable() && attempt < self.max_retries => {
                    let wait = match e.retry_after() {
                        Some(wait) if wait > MAX_RETRY_WAIT => return Err(e),
                        Some(wait) => wait,
                        None => backoff(attempt),
                    };
                    attempt += 1;
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        attempt,
                        max_retries = self.max_retries,
                        wait_ms = wait.as_millis() as u64,
                        error = %e,
                        "model call failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        };
        let model = if answer.model.is_empty() {
            self.model.clone()
        } else {
            answer.model.clone()
        };
        let usage = answer.usage.as_ref().map_or(
            Usage {
                calls: 1,
                ..Usage::default()
            },
            |u| Usage {
                calls: 1,
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            },
        );
        // Named after the turn, not a client-wide counter: the same conversation gets the same
        // ids however many members share the client, so recorded exchanges replay.
        let turn = req.messages.len();
        let mut k = 0;
        let next_id = || {
            k += 1;
            format!("squad_call_{turn}_{k}")
        };
        let reply = wire::read_reply(answer, req, protocol, next_id).map_err(|what| {
            LlmError::BadResponse {
                url: self.endpoint.clone(),
                what,
            }
        })?;
        Ok(ChatResponse {
            content: reply.content,
            tool_calls: reply.tool_calls,
            usage,
            model,
            finish_reason: reply.finish_reason,
            tool_protocol: protocol,
        })
    }
}

fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(MAX_BACKOFF)
}

/// Sends each request once; a non-2xx answer becomes an [`HttpStatus`] error carrying the status,
/// `Retry-After` and body, which async-openai's own error type would drop.
#[derive(Clone)]
struct Transport {
    http: reqwest::Client,
}

type TransportFuture = Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send>>;

/// The answer with its body read (up to [`MAX_ANSWER_BYTES`]) and handed on as async-openai
/// expects it: a model or proxy that sends without end costs the cap, not what it sent.
async fn bounded_answer(response: reqwest::Response) -> Result<reqwest::Response, OpenAIError> {
    let (status, version) = (response.status(), response.version());
    let headers = response.headers().clone();
    let body = crate::bounded::http_body(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| match e {
            crate::bounded::BodyError::Read(e) => OpenAIError::Reqwest(e),
            too_large => OpenAIError::JSONDeserialize(
                <serde_json::Error as serde::de::Error>::custom(too_large),
                String::new(),
            ),
        })?;
    let mut read = http::Response::new(reqwest::Body::from(body));
    *read.status_mut() = status;
    *read.version_mut() = version;
    *read.headers_mut() = headers;
    Ok(reqwest::Response::from(read))
}

impl tower::Service<HttpRequestFactory> for Transport {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = TransportFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let http = self.http.clone();
        Box::pin(async move {
            let request = request.build().await?;
            let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
            let status = response.status();
            if status.is_success() {
                return bounded_answer(response).await;
            }
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
            let body = match crate::bounded::http_body(response, MAX_ERROR_BODY_BYTES).await {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) => format!("(the error body was not read: {e})"),
            };
            Err(OpenAIError::Boxed(Box::new(HttpStatus {
                status: status.as_u16(),
                retry_after,
                body,
            })))
        })
    }
}
