//! `squad.toml`: the runtime's settings, with defaults that work out of the box.
//!
//! Every section is optional; an unknown key is an error (a typo must not silently do nothing).

use serde::{Deserialize, Serialize};
use squad_protocols::Quantity;

use crate::ConfigError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub store: StoreSettings,
    pub remediation: RemediationSettings,
    pub supervision: SupervisionSettings,
    pub crew: CrewSettings,
    pub verification: VerificationSettings,
    pub kubernetes: KubernetesSettings,
    pub prometheus: PrometheusSettings,
    pub server: ServerSettings,
    pub pagerduty: PagerDutySettings,
    pub intake: IntakeSettings,
    pub backend: BackendSettings,
}

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

/// What the daemon's crew acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// The simulated cluster (served over the Kubernetes API) and a simulated GitHub on a local
    /// git repo, from `scenario`.
    #[default]
    Simulation,
    /// A real cluster through `[kubernetes]` (and `[prometheus]`), with the GitOps repo of
    /// `scenario` simulated locally until the GitHub adapter lands.
    Kubernetes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendSettings {
    pub kind: BackendKind,
    /// A shipped scenario name or a scenario directory.
    pub scenario: String,
    /// Where the daemon keeps its repositories, simulated GitHub and (unless `[store] path`)
    /// the incident store.
    pub data_dir: String,
}

impl Default for BackendSettings {
    fn default() -> Self {
        BackendSettings {
            kind: BackendKind::Simulation,
            scenario: "oomkilled".into(),
            data_dir: "squad-data".into(),
        }
    }
}

/// How to reach the cluster (ignored by `squad simulate`, which serves its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSettings {
    /// A kubeconfig file; unset means `$KUBECONFIG`, `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<String>,
    /// The kubeconfig context; unset means its current context.
    pub context: Option<String>,
    /// API requests in flight at once.
    pub max_concurrent_requests: usize,
    /// Per-request timeout.
    pub timeout_seconds: u64,
}

impl Default for KubernetesSettings {
    fn default() -> Self {
        KubernetesSettings {
            kubeconfig: None,
            context: None,
            max_concurrent_requests: 8,
            timeout_seconds: 30,
        }
    }
}

/// Where memory and traffic history come from: a Prometheus HTTP API, and the PromQL squad asks.
/// Placeholders: `{namespace}`, `{name}` (workload), `{container}`, `{pod_regex}` (the
/// workload's pod names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusSettings {
    /// Base URL (e.g. `http://prometheus.monitoring:9090`); unset means no history (the
    /// diagnosis says so).
    pub url: Option<String>,
    pub timeout_seconds: u64,
    pub memory_query: String,
    pub traffic_query: String,
}

impl Default for PrometheusSettings {
    fn default() -> Self {
        PrometheusSettings {
            url: None,
            timeout_seconds: 30,
            memory_query: r#"max(container_memory_working_set_bytes{namespace="{namespace}", pod=~"{pod_regex}", container="{container}"})"#.into(),
            traffic_query: r#"sum by (route) (rate(http_requests_total{namespace="{namespace}", service="{name}"}[5m]))"#.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// The durable incident store file; unset means `<data dir>/incidents.redb`.
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemediationSettings {
    pub memory: MemoryRule,
}

/// B'Elanna's sizing rule for memory:
/// - limit = observed 24 h peak × (1 + headroom_percent/100), rounded up to `round_to`;
/// - request = 24 h median working set, rounded up to `round_to`, never below the current request;
/// - an HPA on memory utilisation at `hpa_target_percent` of the request, from the current replica
///   count to `hpa_max_replicas_factor` times it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryRule {
    pub headroom_percent: u32,
    pub round_to: Quantity,
    pub hpa_target_percent: u32,
    pub hpa_max_replicas_factor: u32,
}

impl Default for MemoryRule {
    fn default() -> Self {
        Self {
            headroom_percent: 20,
            round_to: Quantity::mebibytes(256),
            hpa_target_percent: 70,
            hpa_max_replicas_factor: 3,
        }
    }
}

/// How the supervisor treats a crew member that fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionSettings {
    /// Restarts allowed within `within_seconds` before the supervisor escalates.
    pub max_restarts: u32,
    pub within_seconds: u64,
    /// First restart delay; doubles with each restart inside the window.
    pub backoff_ms: u64,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            within_seconds: 60,
            backoff_ms: 50,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrewSettings {
    /// How long Picard waits for a member's report before asking again.
    pub assignment_timeout_seconds: u64,
    /// Attempts per assignment before the incident is escalated.
    pub max_attempts: u32,
}

impl Default for CrewSettings {
    fn default() -> Self {
        Self {
            assignment_timeout_seconds: 300,
            max_attempts: 4,
        }
    }
}

/// Ralph's observation after a fix rolls out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerificationSettings {
    pub window_minutes: u64,
    pub poll_minutes: u64,
    /// The fix must also hold this far ahead at the observed memory trend.
    pub projection_hours: u64,
    /// How long Ralph waits for a human to merge before escalating.
    pub merge_wait_hours: u64,
}

impl Default for VerificationSettings {
    fn default() -> Self {
        Self {
            window_minutes: 60,
            poll_minutes: 5,
            projection_hours: 24,
            merge_wait_hours: 24,
        }
    }
}

impl Settings {
    /// Parses and validates a `squad.toml`; `origin` names it in errors.
    pub fn from_toml(origin: &str, text: &str) -> Result<Settings, ConfigError> {
        let s: Settings = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            file: origin.into(),
            message: e.to_string(),
        })?;
        s.validate(origin)?;
        Ok(s)
    }

    /// Secrets from the environment override the file: `SQUAD_SERVER_TOKENS` and
    /// `SQUAD_PAGERDUTY_SECRETS`, comma-separated.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        if let Some(v) = var("SQUAD_SERVER_TOKENS") {
            self.server.auth.tokens = list(v);
        }
        if let Some(v) = var("SQUAD_PAGERDUTY_SECRETS") {
            self.pagerduty.secrets = list(v);
        }
    }

    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::field(
                origin,
                "server.listen",
                "an address and port such as \"127.0.0.1:8080\"",
            ));
        }
        if self.server.request_timeout_seconds == 0 {
            return Err(ConfigError::field(
                origin,
                "server.request_timeout_seconds",
                "a positive number of seconds",
            ));
        }
        if self.server.body_limit_bytes < 1024 {
            return Err(ConfigError::field(
                origin,
                "server.body_limit_bytes",
                "at least 1024 bytes",
            ));
        }
        if let Some(i) = self.server.auth.tokens.iter().position(|t| t.len() < 16) {
            return Err(ConfigError::field(
                origin,
                format!("server.auth.tokens[{i}]"),
                "a token of at least 16 characters",
            ));
        }
        if let Some(i) = self.pagerduty.secrets.iter().position(|t| t.is_empty()) {
            return Err(ConfigError::field(
                origin,
                format!("pagerduty.secrets[{i}]"),
                "a non-empty signing secret",
            ));
        }
        if let Some(i) = self
            .intake
            .group_by
            .iter()
            .position(|l| l.trim().is_empty())
        {
            return Err(ConfigError::field(
                origin,
                format!("intake.group_by[{i}]"),
                "a label name",
            ));
        }
        if self.backend.scenario.trim().is_empty() {
            return Err(ConfigError::field(
                origin,
                "backend.scenario",
                "a scenario name or directory",
            ));
        }
        if self.kubernetes.max_concurrent_requests == 0 {
            return Err(ConfigError::field(
                origin,
                "kubernetes.max_concurrent_requests",
                "a positive number of requests",
            ));
        }
        if let Some(url) = &self.prometheus.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::field(
                origin,
                "prometheus.url",
                "an http:// or https:// URL",
            ));
        }
        for (field, q) in [
            ("prometheus.memory_query", &self.prometheus.memory_query),
            ("prometheus.traffic_query", &self.prometheus.traffic_query),
        ] {
            if q.trim().is_empty() {
                return Err(ConfigError::field(origin, field, "a PromQL query"));
            }
        }
        let m = &self.remediation.memory;
        if m.headroom_percent == 0 || m.headroom_percent > 400 {
            return Err(ConfigError::field(
                origin,
                "remediation.memory.headroom_percent",
                "a percentage between 1 and 400",
            ));
        }
        if m.round_to.bytes() == 0 {
            return Err(ConfigError::field(
                origin,
                "remediation.memory.round_to",
                "a positive quantity such as 256Mi",
            ));
        }
        if !(10..=100).contains(&m.hpa_target_percent) {
            return Err(ConfigError::field(
                origin,
                "remediation.memory.hpa_target_percent",
                "a percentage between 10 and 100",
            ));
        }
        if self.verification.poll_minutes == 0
            || self.verification.window_minutes < self.verification.poll_minutes
        {
            return Err(ConfigError::field(
                origin,
                "verification.window_minutes",
                "a window at least as long as verification.poll_minutes (> 0)",
            ));
        }
        if self.crew.max_attempts == 0 {
            return Err(ConfigError::field(
                origin,
                "crew.max_attempts",
                "at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(
            Settings::from_toml("squad.toml", "").unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let err = Settings::from_toml("squad.toml", "[remediation.memory]\nheadroom = 20\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("squad.toml") && err.contains("headroom"),
            "{err}"
        );
    }

    #[test]
    fn bad_quantity_names_the_field() {
        let err = Settings::from_toml("squad.toml", "[remediation.memory]\nround_to = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("round_to") || err.contains("quantity"),
            "{err}"
        );
    }

    #[test]
    fn zero_headroom_is_rejected() {
        let err = Settings::from_toml("squad.toml", "[remediation.memory]\nheadroom_percent = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("remediation.memory.headroom_percent"), "{err}");
    }
}
