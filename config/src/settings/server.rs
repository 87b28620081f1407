//! The intake side: `[server]` (with `[server.auth]`, `[server.tls]` and `[server.rate_limit]`),
//! `[pagerduty]` and `[intake]`.

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// `squad serve`'s HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: String,
    /// A request that takes longer is answered 408.
    pub request_timeout_seconds: u64,
    /// A larger body is answered 413.
    pub body_limit_bytes: usize,
    /// On SIGTERM, how long in-flight work may take to reach a checkpoint.
    pub shutdown_grace_seconds: u64,
    pub auth: AuthSettings,
    /// TLS on the listener; absent means plain HTTP (fine on loopback or behind a TLS proxy).
    pub tls: Option<TlsSettings>,
    /// Per-token (and, for refused requests, per-peer) request rates.
    pub rate_limit: RateLimitSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            request_timeout_seconds: 10,
            body_limit_bytes: 1024 * 1024,
            shutdown_grace_seconds: 30,
            auth: AuthSettings::default(),
            tls: None,
            rate_limit: RateLimitSettings::default(),
        }
    }
}

impl ServerSettings {
    /// Whether `listen` is a loopback address (then plain HTTP never leaves the machine).
    pub fn listens_on_loopback(&self) -> bool {
        self.listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback())
    }

    /// Checks `[server.auth] token_hashes`, `[server.tls]` and `[server.rate_limit]`.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        if let Some(i) = self
            .auth
            .token_hashes
            .iter()
            .position(|h| !is_token_hash(h))
        {
            return Err(ConfigError::field(
                origin,
                format!("server.auth.token_hashes[{i}]"),
                "\"sha256:\" followed by 64 hex digits (the output of `squad token hash`)",
            ));
        }
        if let Some(tls) = &self.tls {
            for (field, value) in [
                ("server.tls.cert_file", Some(&tls.cert_file)),
                ("server.tls.key_file", Some(&tls.key_file)),
                ("server.tls.client_ca_file", tls.client_ca_file.as_ref()),
            ] {
                if value.is_some_and(|v| v.trim().is_empty()) {
                    return Err(ConfigError::field(origin, field, "the path of a PEM file"));
                }
            }
            if tls.reload_seconds == 0 {
                return Err(ConfigError::field(
                    origin,
                    "server.tls.reload_seconds",
                    "a positive number of seconds between checks of the certificate files",
                ));
            }
            if tls.handshake_timeout_seconds == 0 {
                return Err(ConfigError::field(
                    origin,
                    "server.tls.handshake_timeout_seconds",
                    "a positive number of seconds",
                ));
            }
        }
        if self.rate_limit.per_second > 0 && self.rate_limit.burst == 0 {
            return Err(ConfigError::field(
                origin,
                "server.rate_limit.burst",
                "at least 1 request when server.rate_limit.per_second is set (0 disables the limit)",
            ));
        }
        Ok(())
    }
}

/// `sha256:` and 64 hex digits.
fn is_token_hash(h: &str) -> bool {
    h.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Bearer tokens for the alert endpoints (`Authorization: Bearer <token>`).
///
/// Prefer `token_hashes` (from `squad token hash`): the file then holds no secret. Plain `tokens`
/// (or the environment override `SQUAD_SERVER_TOKENS`, comma-separated) are still accepted; the
/// daemon hashes them at start and keeps only the hashes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub tokens: Vec<String>,
    /// `"sha256:<64 hex>"`: SHA-256 of an accepted token.
    pub token_hashes: Vec<String>,
}

impl AuthSettings {
    /// Whether any token is configured, plain or hashed.
    pub fn any(&self) -> bool {
        !self.tokens.is_empty() || !self.token_hashes.is_empty()
    }
}

/// `[server.tls]`: the listener's certificate (PEM files, re-read when they change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate, then any intermediates (the whole chain is served).
    pub cert_file: String,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// With a CA here, clients must present a certificate it signed (mutual TLS). Read at start.
    #[serde(default)]
    pub client_ca_file: Option<String>,
    /// How often the files' modification times are checked (SIGHUP checks at once).
    #[serde(default = "default_reload_seconds")]
    pub reload_seconds: u64,
    /// A client that has not finished its TLS handshake by then is disconnected.
    #[serde(default = "default_handshake_timeout_seconds")]
    pub handshake_timeout_seconds: u64,
}

fn default_reload_seconds() -> u64 {
    30
}

fn default_handshake_timeout_seconds() -> u64 {
    10
}

/// `[server.rate_limit]`: a token bucket per bearer token, refilled at `per_second` and holding
/// up to `burst` requests; over it a request gets 429 with `Retry-After`. Refused requests (401,
/// 403) are limited per peer address with the same numbers. `per_second = 0` disables both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        // Alertmanager sends one request per alert group per group_interval: far below this.
        RateLimitSettings {
            per_second: 100,
            burst: 200,
        }
    }
}

/// PagerDuty v3 webhook signing secrets (several while rotating); environment override
/// `SQUAD_PAGERDUTY_SECRETS` (comma-separated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagerDutySettings {
    pub secrets: Vec<String>,
}

/// How alerts are grouped into incidents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeSettings {
    /// Labels whose values make the grouping key. Empty (the default) means: Alertmanager's
    /// group key when the alert has one, else `alertname` + `namespace` + the workload (from a
    /// `deployment`/`statefulset`/`daemonset`/`workload` label, or the pod's name).
    pub group_by: Vec<String>,
    /// Repeats of an open incident's alert are counted, and the count written to its log at
    /// most this often (every repeat is already durable in the intake log).
    pub repeat_note_seconds: u64,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            group_by: Vec::new(),
            repeat_note_seconds: 60,
        }
    }
}
