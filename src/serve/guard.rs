//! Who may call: the bearer-token check and the rate limits, as answers (401, 403, 429).
//!
//! Order: a peer that used up its allowance of refused requests gets 429 before its credentials
//! are looked at; then the token (401 without one, 403 wrong, which counts against the peer);
//! then the token's own bucket (429). A 429 carries `Retry-After` and names the limit.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use squad_config::{AuthSettings, RateLimitSettings};

use super::auth::Tokens;
use super::error;
use super::limits::{Limit, RateLimits, RetryAfter};

/// The address a request came from (set by the listener; absent when the router is driven
/// without one, and then no per-peer limit applies).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The accepted tokens (digests only) and the limits.
pub(crate) struct Guard {
    tokens: Tokens,
    limits: RateLimits,
    rate: RateLimitSettings,
}

impl Guard {
    pub(crate) fn new(auth: &AuthSettings, rate: &RateLimitSettings) -> anyhow::Result<Guard> {
        let tokens = Tokens::from_settings(auth)?;
        let limits = RateLimits::new(rate, tokens.len());
        Ok(Guard {
            tokens,
            limits,
            rate: rate.clone(),
        })
    }

    /// The refusal, unless the request has `Authorization: Bearer <token>` with an accepted
    /// token, within the limits.
    pub(crate) fn bearer(&self, headers: &HeaderMap, peer: Peer) -> Option<Response> {
        self.bearer_over_limit(headers, peer, StatusCode::TOO_MANY_REQUESTS)
    }

    /// [`Self::bearer`], with a token over its rate limit answered `over_limit` (and
    /// `Retry-After`): Alertmanager's webhook sender retries a 5xx but drops a 429 (its
    /// `Retrier` retries 5xx only, and the webhook integration adds no codes), so its endpoint
    /// answers 503 to keep the alerts coming.
    pub(crate) fn bearer_over_limit(
        &self,
        headers: &HeaderMap,
        peer: Peer,
        over_limit: StatusCode,
    ) -> Option<Response> {
        if let Some(r) = self.peer_blocked(peer) {
            return Some(r);
        }
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Some(self.refused(
                peer,
                error(
                    StatusCode::UNAUTHORIZED,
                    "missing Authorization header: expected `Bearer <token>`",
                ),
            ));
        };
        let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
            return Some(self.refused(
                peer,
                error(
                    StatusCode::UNAUTHORIZED,
                    "malformed Authorization header: expected `Bearer <token>`",
                ),
            ));
        };
        let Some(index) = self.tokens.find(token) else {
            return Some(self.refused(
                peer,
                error(StatusCode::FORBIDDEN, "the bearer token is not accepted"),
            ));
        };
        self.limits.token(index).err().map(|wait| {
            let who = self
                .tokens
                .digest(index)
                .map_or_else(String::new, |d| d.fingerprint());
            tracing::debug!(
                token = %who,
                "rate limit: token sha256:{who}… over {} requests/s (burst {})",
                self.rate.per_second,
                self.rate.burst
            );
            self.too_many_as(over_limit, Limit::Token, wait, "this token")
        })
    }

    /// 429 when `peer` has used up its allowance of refused requests.
    pub(crate) fn peer_blocked(&self, peer: Peer) -> Option<Response> {
        self.limits
            .peer_blocked(peer.0)
            .err()
            .map(|wait| self.too_many(Limit::Peer, wait, &describe(peer)))
    }

    /// A refusal (401/403) counts against its peer; over the allowance it becomes a 429.
    pub(crate) fn refused(&self, peer: Peer, refusal: Response) -> Response {
        match self.limits.peer_refused(peer.0) {
            Ok(()) => refusal,
            Err(wait) => self.too_many(Limit::Peer, wait, &describe(peer)),
        }
    }

    fn too_many(&self, limit: Limit, wait: RetryAfter, who: &str) -> Response {
        self.too_many_as(StatusCode::TOO_MANY_REQUESTS, limit, wait, who)
    }

    fn too_many_as(
        &self,
        status: StatusCode,
        limit: Limit,
        wait: RetryAfter,
        who: &str,
    ) -> Response {
        metrics::counter!("squad_requests_rate_limited_total", "limit" => limit.as_str())
            .increment(1);
        let what = match limit {
            Limit::Token => "requests",
            Limit::Peer => "refused requests (401/403)",
        };
        let message = format!(
            "rate limit: {who} sent more than {} {what} per second (burst {}; [server.rate_limit]); retry after {} s",
            self.rate.per_second, self.rate.burst, wait.0
        );
        let body = json!({"error": {
            "status": status.as_u16(),
            "message": message,
            "limit": limit.as_str(),
            "retry_after_seconds": wait.0,
        }});
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.0));
        response
    }
}

fn describe(peer: Peer) -> String {
    peer.0
        .map_or_else(|| "this peer".to_owned(), |ip| format!("peer {ip}"))
}
