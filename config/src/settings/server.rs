//! The intake side: `[server]` (with `[server.auth]`), `[pagerduty]` and `[intake]`.

use serde::{Deserialize, Serialize};

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
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            request_timeout_seconds: 10,
            body_limit_bytes: 1024 * 1024,
            shutdown_grace_seconds: 30,
            auth: AuthSettings::default(),
        }
    }
}

/// Bearer tokens for the alert endpoints (`Authorization: Bearer <token>`). Secrets: prefer the
/// environment override `SQUAD_SERVER_TOKENS` (comma-separated) to writing them in the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub tokens: Vec<String>,
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
