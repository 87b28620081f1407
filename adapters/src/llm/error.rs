//! What can go wrong talking to a model, classified so callers can act on it (retry, switch
//! profile, shorten the conversation, tell a human to fix a key).

use std::time::Duration;

use async_openai::error::OpenAIError;

/// A failed model call. Messages name the endpoint; they never contain the API key.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("llm profile: {0}")]
    Config(String),
    #[error("environment variable {var} (the API key for {url}) is not set or empty")]
    MissingApiKey { var: String, url: String },
    #[error("{url} refused the API key (HTTP {status}): {message}")]
    Unauthorized {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "model {model:?} not found at {url} (or the URL serves no chat completions): {message}"
    )]
    ModelNotFound {
        model: String,
        url: String,
        message: String,
    },
    #[error("{url} rate-limited the request{}: {message}", retry_hint(.retry_after))]
    RateLimited {
        url: String,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error(
        "{url}: quota exhausted (check the plan and billing; retrying will not help): {message}"
    )]
    QuotaExceeded { url: String, message: String },
    #[error("the conversation is too long for model {model:?}: {message}")]
    ContextTooLong { model: String, message: String },
    #[error("{url} rejected the request (HTTP {status}): {message}")]
    BadRequest {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url} failed (HTTP {status}): {message}")]
    Server {
        url: String,
        status: u16,
        message: String,
    },
    #[error("no answer from {url} within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("bad response from {url}: {what}")]
    BadResponse { url: String, what: String },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

fn retry_hint(after: &Option<Duration>) -> String {
    after
        .map(|d| format!(" (retry after {} s)", d.as_secs()))
        .unwrap_or_default()
}

impl LlmError {
    /// Worth sending again after a pause: rate limits, server errors, timeouts, refused
    /// connections.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LlmError::RateLimited { .. }
                | LlmError::Server { .. }
                | LlmError::Timeout { .. }
                | LlmError::Unreachable { .. }
        )
    }

    /// The server said how long to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The server (or model) does not do native tool calling: worth one try in json_schema mode.
    pub fn is_tools_unsupported(&self) -> bool {
        let LlmError::BadRequest { message, .. } = self else {
            return false;
        };
        let m = message.to_ascii_lowercase();
        m.contains("tool")
            && [
                "not supported",
                "unsupported",
                "does not support",
                "not support",
                "--jinja",
                "enable-auto-tool-choice",
            ]
            .iter()
            .any(|p| m.contains(p))
    }
}

/// A non-2xx answer, as the transport saw it (async-openai's own error drops the headers).
#[derive(Debug)]
pub(super) struct HttpStatus {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

impl std::fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)
    }
}

impl std::error::Error for HttpStatus {}

/// What the classification needs to know about the call, and how to scrub server messages.
pub(super) struct CallContext<'a> {
    pub url: &'a str,
    pub model: &'a str,
    pub timeout: Duration,
    /// The API key, replaced in anything a server echoes back.
    pub secret: Option<&'a str>,
}

impl CallContext<'_> {
    fn scrub(&self, text: &str) -> String {
        let mut text: String = text.chars().take(1000).collect();
        if let Some(key) = self.secret.filter(|k| !k.is_empty()) {
            text = text.replace(key, "***");
        }
        text
    }

    pub fn classify(&self, err: OpenAIError) -> LlmError {
        let url = self.url.to_string();
        match err {
            OpenAIError::Boxed(boxed) => match boxed.downcast::<HttpStatus>() {
                Ok(http) => self.classify_status(*http),
                Err(other) => LlmError::Unreachable {
                    url,
                    message: self.scrub(&other.to_string()),
                },
            },
            OpenAIError::Reqwest(e) if e.is_timeout() => LlmError::Timeout {
                url,
                seconds: self.timeout.as_secs(),
            },
            OpenAIError::Reqwest(e) => LlmError::Unreachable {
                url,
                message: self.scrub(&error_chain(&e)),
            },
            OpenAIError::JSONDeserialize(e, body) => LlmError::BadResponse {
                url,
                what: format!(
                    "not a chat completion ({e}): {}",
                    self.scrub(&body.chars().take(200).collect::<String>())
                ),
            },
            OpenAIError::ApiError(api) => self.classify_status(HttpStatus {
                status: api.status_code.as_u16(),
                retry_after: None,
                body: serde_json::json!({ "error": api.api_error }).to_string(),
            }),
            other => LlmError::InvalidRequest(self.scrub(&other.to_string())),
        }
    }

    fn classify_status(&self, http: HttpStatus) -> LlmError {
        let url = self.url.to_string();
        let (message, code) = error_message(&http.body);
        let message = self.scrub(&message);
        let code = code.to_ascii_lowercase();
        let lower = message.to_ascii_lowercase();
        let context_too_long = code.contains("context_length")
            || code.contains("exceed_context")
            || [
                "context length",
                "context_length",
                "maximum context",
                "context size",
                "context window",
                "too many tokens",
                "prompt is too long",
            ]
            .iter()
            .any(|p| lower.contains(p));
        match http.status {
            401 | 403 => LlmError::Unauthorized {
                url,
                status: http.status,
                message,
            },
            404 => LlmError::ModelNotFound {
                model: self.model.to_string(),
                url,
                message,
            },
            429 if code.contains("insufficient_quota") => LlmError::QuotaExceeded { url, message },
            429 => LlmError::RateLimited {
                url,
                retry_after: http.retry_after,
                message,
            },
            400 | 413 | 422 if context_too_long => LlmError::ContextTooLong {
                model: self.model.to_string(),
                message,
            },
            408 | 500..=599 => LlmError::Server {
                url,
                status: http.status,
                message,
            },
            status => LlmError::BadRequest {
                url,
                status,
                message,
            },
        }
    }
}

/// The message and code (or type) of an error body: OpenAI's `{"error": {...}}`, a bare
/// `{"error": "..."}`, `{"detail": ...}`, or plain text.
fn error_message(body: &str) -> (String, String) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return (body.trim().to_string(), String::new());
    };
    let err = v.get("error").unwrap_or(&v);
    let text = |key: &str| err.get(key).and_then(|m| m.as_str()).map(str::to_string);
    let message = match err {
        serde_json::Value::String(s) => s.clone(),
        _ => text("message")
            .or_else(|| v.get("detail").map(|d| d.to_string()))
            .unwrap_or_else(|| body.trim().to_string()),
    };
    let code = [text("code"), text("type")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (message, code)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

/// `Retry-After` as seconds or an HTTP date, relative to `now`.
pub(super) fn parse_retry_after(
    value: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}
