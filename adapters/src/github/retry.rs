//! When a failed GitHub request is tried again: rate limits and 5xx answers with backoff, and
//! never a write that makes a new artifact and may have been done.

use super::*;

impl Caller {
    pub(super) fn classify(&self, what: &str, e: octocrab::Error, attempt: u32) -> Failure {
        let repo = format!("{}/{}", self.owner, self.name);
        match e {
            octocrab::Error::GitHub { source, .. } => {
                let status = source.status_code.as_u16();
                let header = |name: &str| {
                    source
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(name))
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
                let exhausted = header("x-ratelimit-remaining").as_deref() == Some("0");
                let reset_wait = source.rate_limit_reset.map(|reset| {
                    let now = Utc::now().timestamp().max(0) as u64;
                    Duration::from_secs(reset.saturating_sub(now) + 1)
                });
                let backoff = Duration::from_millis(500 * 2u64.pow(attempt.min(6)));
                let details = source
                    .errors
                    .as_ref()
                    .map(|errs| {
                        errs.iter()
                            .map(|e| {
                                e.get("message")
                                    .and_then(Value::as_str)
                                    .map(str::to_string)
                                    .unwrap_or_else(|| e.to_string())
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .filter(|s| !s.is_empty())
                    .map_or(String::new(), |s| format!(" ({s})"));
                let message = format!("{}{details}", source.message);
                match status {
                    429 => Failure::Retry(
                        retry_after
                            .map(Duration::from_secs)
                            .or(reset_wait)
                            .unwrap_or(backoff),
                        format!("rate limited: {message}"),
                    ),
                    403 if retry_after.is_some() || exhausted => Failure::Retry(
                        retry_after
                            .map(Duration::from_secs)
                            .or(reset_wait)
                            .unwrap_or(backoff),
                        format!("rate limited: {message}"),
                    ),
                    500..=599 => Failure::Retry(backoff, format!("HTTP {status}: {message}")),
                    401 => Failure::Final(PortError::Forbidden {
                        what: format!("{what} on {repo}"),
                        detail: format!(
                            "GitHub refused the credentials (401: {message}); check the token"
                        ),
                    }),
                    403 => Failure::Final(PortError::Forbidden {
                        what: format!("{what} on {repo}"),
                        detail: format!("403: {message}; the token lacks a permission this needs"),
                    }),
                    404 => Failure::Final(PortError::NotFound {
                        what: format!("{what} on {repo}"),
                    }),
                    400 | 409 | 422 => Failure::Final(PortError::Rejected {
                        what: format!("{what} on {repo}"),
                        detail: format!("GitHub rejected it ({status}): {message}"),
                    }),
                    _ => Failure::Final(PortError::failed(
                        format!("{what} on {repo}"),
                        format!("HTTP {status}: {message}"),
                    )),
                }
            }
            other => Failure::Retry(
                Duration::from_millis(500 * 2u64.pow(attempt.min(6))),
                format!("cannot reach GitHub: {other}"),
            ),
        }
    }
}

/// Which kind of failure, for retries and messages.
pub(super) enum Failure {
    /// Worth another try after the wait.
    Retry(Duration, String),
    Final(PortError),
}

impl Failure {
    pub(super) fn reason(self) -> String {
        match self {
            Failure::Retry(_, why) => why,
            Failure::Final(e) => e.to_string(),
        }
    }
}

/// Whether sending `method route` twice does no more than sending it once: everything but the
/// POSTs that make a new issue, comment or pull request (a label, a blob, a tree, a commit
/// object, a ref that then exists, are the same the second time).
pub(super) fn replayable(method: &str, route: &str) -> bool {
    let route = route.split('?').next().unwrap_or(route);
    method != "POST"
        || !(route.ends_with("/issues")
            || route.ends_with("/comments")
            || route.ends_with("/pulls"))
}

/// Whether GitHub may have acted on a request that failed this way: a 5xx, or no answer at all
/// (a 429 or a 4xx was refused before anything was done).
pub(super) fn may_have_happened(e: &octocrab::Error) -> bool {
    match e {
        octocrab::Error::GitHub { source, .. } => source.status_code.is_server_error(),
        _ => true,
    }
}
