//! `squad.toml`: the runtime's settings, with defaults that work out of the box.
//!
//! Every section is optional; an unknown key is an error (a typo must not silently do nothing).

use serde::{Deserialize, Serialize};

use crate::ConfigError;

mod backend;
mod crew;
mod diagnoser;
mod github;
mod llm;
mod replicas;
mod security;
mod server;

pub use backend::{
    AlertmanagerSettings, BackendKind, BackendSettings, KubernetesSettings, PrometheusSettings,
    StoreSettings,
};
pub use crew::{
    CrewSettings, MemoryRule, RemediationSettings, SupervisionSettings, VerificationSettings,
};
pub use diagnoser::{DiagnoserKind, DiagnoserSettings, HolmesSettings, HolmesTransport};
pub use github::GitHubSettings;
pub use llm::{LlmBudget, LlmProfile, LlmProvider, LlmSettings, LlmToolMode};
pub use replicas::ReplicaSettings;
pub use security::SecuritySettings;
pub use server::{
    AuthSettings, IntakeSettings, PagerDutySettings, RateLimitSettings, ServerSettings, TlsSettings,
};

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
    /// Where Ralph reads whether the incident's alert still fires.
    pub alertmanager: AlertmanagerSettings,
    pub server: ServerSettings,
    pub pagerduty: PagerDutySettings,
    pub github: GitHubSettings,
    pub intake: IntakeSettings,
    pub backend: BackendSettings,
    /// Models for the crew; absent means no model (the deterministic skills decide).
    pub llm: Option<LlmSettings>,
    /// Who diagnoses: the native analyzers or HolmesGPT.
    pub diagnoser: DiagnoserSettings,
    /// How to run HolmesGPT (with `[diagnoser] kind = "holmes"`).
    pub holmes: HolmesSettings,
    /// What Worf holds the workload to.
    pub security: SecuritySettings,
    /// Two or more replicas sharing the work.
    pub replicas: ReplicaSettings,
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
    /// `SQUAD_PAGERDUTY_SECRETS` and `SQUAD_GITHUB_WEBHOOK_SECRETS`, comma-separated, and
    /// `SQUAD_STORE_URL` (the PostgreSQL store's URL, which may hold a password).
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
        if let Some(v) = var("SQUAD_GITHUB_WEBHOOK_SECRETS") {
            self.github.webhook_secrets = list(v);
        }
        if let Some(v) = var("SQUAD_STORE_URL").filter(|v| !v.trim().is_empty()) {
            self.store.url = Some(v.trim().to_owned());
            self.store.path = None;
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
        self.server.validate(origin)?;
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
        if let Some(url) = &self.alertmanager.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::field(
                origin,
                "alertmanager.url",
                "an http:// or https:// URL such as \"http://alertmanager.monitoring:9093\"",
            ));
        }
        if self.alertmanager.timeout_seconds == 0 {
            return Err(ConfigError::field(
                origin,
                "alertmanager.timeout_seconds",
                "a positive number of seconds",
            ));
        }
        for (field, q) in [
            ("prometheus.memory_query", &self.prometheus.memory_query),
            ("prometheus.traffic_query", &self.prometheus.traffic_query),
            ("prometheus.cpu_query", &self.prometheus.cpu_query),
            (
                "prometheus.throttling_query",
                &self.prometheus.throttling_query,
            ),
            (
                "prometheus.volume_used_query",
                &self.prometheus.volume_used_query,
            ),
            (
                "prometheus.volume_capacity_query",
                &self.prometheus.volume_capacity_query,
            ),
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
        if self.crew.retry_initial_ms == 0 || self.crew.retry_max_ms < self.crew.retry_initial_ms {
            return Err(ConfigError::field(
                origin,
                "crew.retry_max_ms",
                "a delay in milliseconds at least crew.retry_initial_ms (> 0)",
            ));
        }
        self.holmes.validate(origin)?;
        self.github.validate(origin)?;
        self.security.validate(origin)?;
        self.store.validate(origin)?;
        self.replicas.validate(origin)?;
        if self.replicas.enabled && self.backend.kind != BackendKind::Kubernetes {
            return Err(ConfigError::field(
                origin,
                "replicas.enabled",
                "[backend] kind = \"kubernetes\": the Leases live in the cluster",
            ));
        }
        if let Some(llm) = &self.llm {
            llm.validate(origin)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
