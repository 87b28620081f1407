//! `squad.toml`: the runtime's settings, with defaults that work out of the box.
//!
//! Every section is optional; an unknown key is an error (a typo must not silently do nothing).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use squad_protocols::{Budget, Member, Quantity};

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
    pub github: GitHubSettings,
    pub intake: IntakeSettings,
    pub backend: BackendSettings,
    /// Models for the crew; absent means no model (the deterministic skills decide).
    pub llm: Option<LlmSettings>,
    /// Who diagnoses: the native analyzers or HolmesGPT.
    pub diagnoser: DiagnoserSettings,
    /// How to run HolmesGPT (with `[diagnoser] kind = "holmes"`).
    pub holmes: HolmesSettings,
}

/// `[diagnoser]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiagnoserSettings {
    pub kind: DiagnoserKind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnoserKind {
    /// squad's own analyzers.
    #[default]
    Native,
    /// HolmesGPT, cross-checked by the native analyzers, which take over when it fails.
    Holmes,
}

/// How HolmesGPT is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolmesTransport {
    /// The `holmes` CLI as a subprocess (`holmes ask ... --json-output-file`).
    #[default]
    Cli,
    /// A HolmesGPT server's `POST /api/chat`.
    Server,
}

/// `[holmes]`: the CLI or server, the model it uses, and limits. The model's API key stays in
/// the environment (HolmesGPT reads it through litellm, e.g. `OPENAI_API_KEY`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HolmesSettings {
    pub transport: HolmesTransport,
    /// The CLI: a path or a name on `PATH`.
    pub command: String,
    /// `--model` (litellm form, e.g. `openai/gpt-4.1-mini`); unset: HolmesGPT's default.
    pub model: Option<String>,
    /// `--config` for the CLI (toolsets, custom settings).
    pub config: Option<String>,
    /// Extra environment for the CLI (e.g. `OPENAI_API_BASE` for an OpenAI-compatible server).
    /// Not for keys: those pass through from squad's own environment.
    pub env: BTreeMap<String, String>,
    /// The server transport's base URL (e.g. `http://holmes:5050`).
    pub server_url: Option<String>,
    /// Alertmanager's URL: with it, the CLI runs `holmes investigate alertmanager` for the alert.
    pub alertmanager_url: Option<String>,
    /// Per investigation, after which the subprocess is killed (or the request abandoned).
    pub timeout_seconds: u64,
    /// Investigations at once.
    pub max_concurrent: usize,
    /// Put squad's redacting proxy between the CLI and its model: what HolmesGPT's tools read
    /// (kubectl output, logs) is redacted before it reaches the model. HolmesGPT is pointed at the
    /// proxy with `OPENAI_API_BASE`, so its `--config` must not set `api_base`.
    pub redact: bool,
    /// The model API the proxy forwards to; unset: `OPENAI_API_BASE` from `env` or squad's
    /// environment, else `https://api.openai.com/v1`.
    pub model_api_base: Option<String>,
}

impl Default for HolmesSettings {
    fn default() -> Self {
        HolmesSettings {
            transport: HolmesTransport::Cli,
            command: "holmes".into(),
            model: None,
            config: None,
            env: BTreeMap::new(),
            server_url: None,
            alertmanager_url: None,
            timeout_seconds: 300,
            max_concurrent: 2,
            redact: true,
            model_api_base: None,
        }
    }
}

impl HolmesSettings {
    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let field = |name: &str, expected: &str| {
            Err(ConfigError::field(
                origin,
                format!("holmes.{name}"),
                expected,
            ))
        };
        let is_url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        match (self.transport, &self.server_url) {
            (HolmesTransport::Server, None) => {
                return field(
                    "server_url",
                    "the HolmesGPT server's URL, such as http://holmes:5050 (transport = \"server\")",
                );
            }
            (_, Some(u)) if !is_url(u) => return field("server_url", "an http:// or https:// URL"),
            _ => {}
        }
        if self.model_api_base.as_deref().is_some_and(|u| !is_url(u)) {
            return field("model_api_base", "an http:// or https:// URL ending in /v1");
        }
        if self.alertmanager_url.as_deref().is_some_and(|u| !is_url(u)) {
            return field("alertmanager_url", "an http:// or https:// URL");
        }
        if self.command.trim().is_empty() {
            return field("command", "the holmes CLI, a path or a name on PATH");
        }
        if self.timeout_seconds == 0 {
            return field("timeout_seconds", "a positive number of seconds");
        }
        if self.max_concurrent == 0 {
            return field("max_concurrent", "at least 1");
        }
        for key in self.env.keys() {
            let upper = key.to_ascii_uppercase();
            if ["KEY", "TOKEN", "SECRET", "PASSWORD"]
                .iter()
                .any(|w| upper.contains(w))
            {
                return Err(ConfigError::field(
                    origin,
                    format!("holmes.env.{key}"),
                    "no secrets in the file: set it in squad's environment, HolmesGPT inherits it",
                ));
            }
        }
        Ok(())
    }
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

/// `[github]`: the GitOps repository on GitHub (or GitHub Enterprise) and its webhooks.
///
/// With `repo` set, the daemon files issues and opens pull requests there through the GitHub API
/// (token from the environment variable `token_env`); without it, on its local simulated forge.
/// Webhook signing secrets (several while rotating) are for `POST /v1/webhooks/github`;
/// environment override `SQUAD_GITHUB_WEBHOOK_SECRETS` (comma-separated). Without one, the
/// endpoint refuses every delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitHubSettings {
    /// The API base: `https://api.github.com`, or `https://<host>/api/v3` for GitHub Enterprise.
    pub url: String,
    /// `OWNER/NAME` of the GitOps repository.
    pub repo: Option<String>,
    /// The environment variable holding the token (never the token itself).
    pub token_env: String,
    /// Authenticate as a GitHub App installation instead of with a token: the App's id, the
    /// installation's id and the App's private key file (PEM).
    pub app_id: Option<u64>,
    pub installation_id: Option<u64>,
    pub private_key_path: Option<String>,
    /// Open remediation pull requests as drafts.
    pub draft_prs: bool,
    pub webhook_secrets: Vec<String>,
}

impl Default for GitHubSettings {
    fn default() -> Self {
        GitHubSettings {
            url: "https://api.github.com".into(),
            repo: None,
            token_env: "GITHUB_TOKEN".into(),
            app_id: None,
            installation_id: None,
            private_key_path: None,
            draft_prs: false,
            webhook_secrets: Vec::new(),
        }
    }
}

impl GitHubSettings {
    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let field = |name: &str, expected: &str| {
            Err(ConfigError::field(
                origin,
                format!("github.{name}"),
                expected,
            ))
        };
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return field("url", "the API base URL, such as https://api.github.com");
        }
        if let Some(r) = &self.repo {
            let parts: Vec<&str> = r.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                return field("repo", "OWNER/NAME of the GitOps repository");
            }
        }
        match (self.app_id, self.installation_id, &self.private_key_path) {
            (None, None, None) | (Some(_), Some(_), Some(_)) => {}
            _ => {
                return field(
                    "app_id",
                    "app_id, installation_id and private_key_path together (a GitHub App), or none of them (a token)",
                );
            }
        }
        let is_name = !self.token_env.is_empty()
            && self
                .token_env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_name {
            return field(
                "token_env",
                "the name of an environment variable holding the token (such as GITHUB_TOKEN), not the token itself",
            );
        }
        Ok(())
    }
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
    /// Attempts per step (the first included) before the incident is escalated. Only transient
    /// failures are retried: a refused call (403, 404, 422) escalates at once.
    pub max_attempts: u32,
    /// The delay before the first retry, in milliseconds; it doubles with each further one.
    pub retry_initial_ms: u64,
    /// The longest delay between retries, in milliseconds.
    pub retry_max_ms: u64,
}

impl Default for CrewSettings {
    fn default() -> Self {
        Self {
            assignment_timeout_seconds: 300,
            max_attempts: 4,
            retry_initial_ms: 200,
            retry_max_ms: 30_000,
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

/// `[llm]`: named model profiles, which member uses which, and what they may spend.
///
/// ```toml
/// [llm]
/// default = "local"
/// [llm.profiles.local]
/// provider = "openai_compatible"
/// base_url = "http://127.0.0.1:8081/v1"
/// model = "smollm2"
/// tool_mode = "json_schema"
/// [llm.members]
/// scribe = "local"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmSettings {
    /// The profile of members without their own; may be left out when there is one profile.
    pub default: Option<String>,
    pub profiles: BTreeMap<String, LlmProfile>,
    /// Member id (`picard`, `belanna`, ...) to profile name.
    pub members: BTreeMap<String, String>,
    pub budget: LlmBudget,
    /// Extra regexes whose matches are redacted before anything reaches a model (the named group
    /// `secret`, else group 1, else the whole match), on top of the built-in detectors and the
    /// values of the namespace's Secrets.
    pub redact_patterns: Vec<String>,
}

impl LlmSettings {
    /// The profile `member` uses, with its name: its own, else the default, else the only one.
    pub fn profile_for(&self, member: Member) -> Option<(&str, &LlmProfile)> {
        let name = self
            .members
            .get(member.id())
            .or(self.default.as_ref())
            .map(String::as_str)
            .or_else(|| {
                (self.profiles.len() == 1)
                    .then(|| self.profiles.keys().next().map(String::as_str))
                    .flatten()
            })?;
        self.profiles
            .get_key_value(name)
            .map(|(k, p)| (k.as_str(), p))
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        if self.profiles.is_empty() {
            return Err(ConfigError::field(
                origin,
                "llm.profiles",
                "at least one profile such as [llm.profiles.local] (or no [llm] section)",
            ));
        }
        let known = |name: &str| self.profiles.contains_key(name);
        let names = || self.profiles.keys().cloned().collect::<Vec<_>>().join(", ");
        match &self.default {
            Some(d) if !known(d) => {
                return Err(ConfigError::field(
                    origin,
                    "llm.default",
                    format!("one of the profiles ({}), not {d:?}", names()),
                ));
            }
            None if self.profiles.len() > 1 => {
                return Err(ConfigError::field(
                    origin,
                    "llm.default",
                    format!(
                        "the profile of members without their own, one of {}",
                        names()
                    ),
                ));
            }
            _ => {}
        }
        for (member, profile) in &self.members {
            if !Member::ALL.iter().any(|m| m.id() == member) {
                let ids: Vec<_> = Member::ALL.iter().map(|m| m.id()).collect();
                return Err(ConfigError::field(
                    origin,
                    format!("llm.members.{member}"),
                    format!("a crew member ({})", ids.join(", ")),
                ));
            }
            if !known(profile) {
                return Err(ConfigError::field(
                    origin,
                    format!("llm.members.{member}"),
                    format!("one of the profiles ({}), not {profile:?}", names()),
                ));
            }
        }
        for (name, p) in &self.profiles {
            p.validate(origin, &format!("llm.profiles.{name}"))?;
        }
        for (i, pattern) in self.redact_patterns.iter().enumerate() {
            if let Err(e) = regex::Regex::new(pattern) {
                return Err(ConfigError::field(
                    origin,
                    format!("llm.redact_patterns[{i}]"),
                    format!("a regular expression ({e})"),
                ));
            }
        }
        let b = &self.budget;
        for (field, v) in [
            (
                "llm.budget.max_calls_per_member",
                u64::from(b.max_calls_per_member),
            ),
            (
                "llm.budget.max_tokens_per_incident",
                b.max_tokens_per_incident,
            ),
            (
                "llm.budget.max_wall_seconds_per_member",
                b.max_wall_seconds_per_member,
            ),
        ] {
            if v == 0 {
                return Err(ConfigError::field(origin, field, "a positive number"));
            }
        }
        Ok(())
    }
}

/// Which API a profile speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmProvider {
    /// api.openai.com (or `base_url`), key in `Authorization: Bearer`.
    Openai,
    /// Azure OpenAI: `base_url` is the resource endpoint, with `deployment` and `api_version`;
    /// key in the `api-key` header.
    Azure,
    /// Any server with an OpenAI-style `/chat/completions` (llama.cpp, vLLM, Ollama, ...).
    #[default]
    OpenaiCompatible,
}

/// How tools are offered to the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmToolMode {
    /// The API's own `tools`.
    Native,
    /// No `tools`: a JSON-schema response format whose variants are the tool calls and the answer.
    JsonSchema,
    /// Native, falling back to json_schema when the server rejects tools.
    #[default]
    Auto,
}

/// One model endpoint. The API key is read from the environment variable `api_key_env` names;
/// it is never written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmProfile {
    pub provider: LlmProvider,
    /// Unset means `https://api.openai.com/v1` (openai); required for the other providers.
    pub base_url: Option<String>,
    /// The model name (for azure, the deployment decides; this is informational).
    pub model: String,
    /// Environment variable holding the key. Unset means `OPENAI_API_KEY` (openai),
    /// `AZURE_OPENAI_API_KEY` (azure), or no key (openai_compatible).
    pub api_key_env: Option<String>,
    pub tool_mode: LlmToolMode,
    /// Per HTTP request, including reading the answer.
    pub timeout_seconds: u64,
    /// Requests in flight at once through this profile's client.
    pub max_concurrent: usize,
    /// Retries on 429, 5xx, timeouts and refused connections (exponential backoff, `Retry-After`).
    pub max_retries: u32,
    /// Azure only.
    pub api_version: Option<String>,
    /// Azure only.
    pub deployment: Option<String>,
    /// The longest answer a member's model may write per call, in tokens.
    pub max_answer_tokens: u32,
    /// US dollars per million prompt tokens, for the cost estimate on the incident (optional).
    pub prompt_usd_per_million: Option<f64>,
    /// US dollars per million completion tokens.
    pub completion_usd_per_million: Option<f64>,
}

impl Default for LlmProfile {
    fn default() -> Self {
        LlmProfile {
            provider: LlmProvider::default(),
            base_url: None,
            model: String::new(),
            api_key_env: None,
            tool_mode: LlmToolMode::default(),
            timeout_seconds: 60,
            max_concurrent: 2,
            max_retries: 3,
            api_version: None,
            deployment: None,
            max_answer_tokens: 640,
            prompt_usd_per_million: None,
            completion_usd_per_million: None,
        }
    }
}

impl LlmProfile {
    pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        self.base_url.as_deref().unwrap_or(Self::OPENAI_BASE_URL)
    }

    /// The environment variable the key is read from, if the profile uses one.
    pub fn api_key_env(&self) -> Option<&str> {
        match (&self.api_key_env, self.provider) {
            (Some(v), _) => Some(v.as_str()),
            (None, LlmProvider::Openai) => Some("OPENAI_API_KEY"),
            (None, LlmProvider::Azure) => Some("AZURE_OPENAI_API_KEY"),
            (None, LlmProvider::OpenaiCompatible) => None,
        }
    }

    fn validate(&self, origin: &str, at: &str) -> Result<(), ConfigError> {
        let field = |name: &str, expected: &str| {
            Err(ConfigError::field(origin, format!("{at}.{name}"), expected))
        };
        match (&self.base_url, self.provider) {
            (Some(url), _) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return field("base_url", "an http:// or https:// URL");
            }
            (None, LlmProvider::Azure) => {
                return field(
                    "base_url",
                    "the Azure OpenAI endpoint, https://<resource>.openai.azure.com",
                );
            }
            (None, LlmProvider::OpenaiCompatible) => {
                return field(
                    "base_url",
                    "the server's OpenAI-style API base, such as http://127.0.0.1:8081/v1",
                );
            }
            _ => {}
        }
        if self.provider == LlmProvider::Azure {
            if self
                .deployment
                .as_deref()
                .is_none_or(|d| d.trim().is_empty())
            {
                return field(
                    "deployment",
                    "the Azure deployment name (provider = \"azure\")",
                );
            }
            if self
                .api_version
                .as_deref()
                .is_none_or(|v| v.trim().is_empty())
            {
                return field(
                    "api_version",
                    "an Azure OpenAI API version such as \"2024-10-21\"",
                );
            }
        } else if self.model.trim().is_empty() {
            return field("model", "a model name");
        }
        if let Some(var) = &self.api_key_env {
            // A key pasted here by mistake must not be echoed back in the error.
            let is_name = !var.is_empty()
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !var.starts_with(|c: char| c.is_ascii_digit());
            if !is_name {
                return field(
                    "api_key_env",
                    "the name of an environment variable holding the key (such as OPENAI_API_KEY), not the key itself",
                );
            }
        }
        if self.timeout_seconds == 0 {
            return field("timeout_seconds", "a positive number of seconds");
        }
        if self.max_concurrent == 0 {
            return field("max_concurrent", "at least 1");
        }
        if self.max_retries > 10 {
            return field("max_retries", "at most 10");
        }
        if !(16..=32_768).contains(&self.max_answer_tokens) {
            return field("max_answer_tokens", "a number of tokens from 16 to 32768");
        }
        for (name, price) in [
            ("prompt_usd_per_million", self.prompt_usd_per_million),
            (
                "completion_usd_per_million",
                self.completion_usd_per_million,
            ),
        ] {
            if price.is_some_and(|p| !p.is_finite() || p < 0.0) {
                return field(name, "a price in US dollars, zero or more");
            }
        }
        Ok(())
    }
}

/// What model calls may spend, per incident and per member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmBudget {
    pub max_calls_per_member: u32,
    pub max_tokens_per_incident: u64,
    pub max_wall_seconds_per_member: u64,
}

impl Default for LlmBudget {
    fn default() -> Self {
        LlmBudget {
            max_calls_per_member: 8,
            max_tokens_per_incident: 200_000,
            max_wall_seconds_per_member: 300,
        }
    }
}

impl LlmBudget {
    /// One member's budget within an incident (tokens are the incident's, shared).
    pub fn member_budget(&self) -> Budget {
        Budget {
            max_tokens: self.max_tokens_per_incident,
            max_calls: self.max_calls_per_member,
            max_wall_seconds: self.max_wall_seconds_per_member,
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
    /// `SQUAD_PAGERDUTY_SECRETS` and `SQUAD_GITHUB_WEBHOOK_SECRETS`, comma-separated.
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
        if self.crew.retry_initial_ms == 0 || self.crew.retry_max_ms < self.crew.retry_initial_ms {
            return Err(ConfigError::field(
                origin,
                "crew.retry_max_ms",
                "a delay in milliseconds at least crew.retry_initial_ms (> 0)",
            ));
        }
        self.holmes.validate(origin)?;
        self.github.validate(origin)?;
        if let Some(llm) = &self.llm {
            llm.validate(origin)?;
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

    const LLM: &str = r#"
[llm]
default = "local"
[llm.profiles.local]
provider = "openai_compatible"
base_url = "http://127.0.0.1:8081/v1"
model = "smollm2"
api_key_env = "OPENAI_API_KEY"
tool_mode = "json_schema"
timeout_seconds = 60
max_concurrent = 2
max_retries = 3
[llm.profiles.cloud]
provider = "openai"
model = "gpt-4.1-mini"
[llm.members]
scribe = "cloud"
[llm.budget]
max_calls_per_member = 8
max_tokens_per_incident = 200000
max_wall_seconds_per_member = 300
"#;

    #[test]
    fn no_llm_section_means_no_model() {
        assert_eq!(Settings::from_toml("squad.toml", "").unwrap().llm, None);
    }

    #[test]
    fn llm_profiles_members_and_budget_parse() {
        let llm = Settings::from_toml("squad.toml", LLM).unwrap().llm.unwrap();
        let local = &llm.profiles["local"];
        assert_eq!(local.provider, LlmProvider::OpenaiCompatible);
        assert_eq!(local.tool_mode, LlmToolMode::JsonSchema);
        assert_eq!(local.api_key_env(), Some("OPENAI_API_KEY"));
        let cloud = &llm.profiles["cloud"];
        assert_eq!(cloud.base_url(), LlmProfile::OPENAI_BASE_URL);
        assert_eq!(cloud.tool_mode, LlmToolMode::Auto);
        assert_eq!(llm.profile_for(Member::Scribe).unwrap().0, "cloud");
        assert_eq!(llm.profile_for(Member::Belanna).unwrap().0, "local");
        assert_eq!(llm.budget.member_budget().max_calls, 8);
    }

    #[test]
    fn a_single_profile_needs_no_default() {
        let text = "[llm.profiles.only]\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n";
        let llm = Settings::from_toml("squad.toml", text)
            .unwrap()
            .llm
            .unwrap();
        assert_eq!(llm.profile_for(Member::Worf).unwrap().0, "only");
        assert_eq!(llm.profiles["only"].api_key_env(), None);
    }

    fn llm_error(text: &str) -> String {
        Settings::from_toml("squad.toml", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn llm_validation_names_the_field() {
        // (text to replace in LLM, its replacement, the field the error must name)
        let edits = [
            ("default = \"local\"", "default = \"nope\"", "llm.default"),
            ("default = \"local\"", "", "llm.default"),
            (
                "scribe = \"cloud\"",
                "scribe = \"nope\"",
                "llm.members.scribe",
            ),
            (
                "scribe = \"cloud\"",
                "spock = \"cloud\"",
                "llm.members.spock",
            ),
            (
                "base_url = \"http://127.0.0.1:8081/v1\"",
                "",
                "llm.profiles.local.base_url",
            ),
            (
                "http://127.0.0.1",
                "ftp://127.0.0.1",
                "llm.profiles.local.base_url",
            ),
            ("model = \"smollm2\"", "", "llm.profiles.local.model"),
            (
                "timeout_seconds = 60",
                "timeout_seconds = 0",
                "llm.profiles.local.timeout_seconds",
            ),
            (
                "max_concurrent = 2",
                "max_concurrent = 0",
                "llm.profiles.local.max_concurrent",
            ),
            (
                "max_calls_per_member = 8",
                "max_calls_per_member = 0",
                "llm.budget.max_calls_per_member",
            ),
        ];
        let azure = "[llm.profiles.az]\nprovider = \"azure\"\n\
                     base_url = \"https://x.openai.azure.com\"\napi_version = \"2024-10-21\"\n";
        let cases = edits
            .iter()
            .map(|(from, to, field)| (LLM.replace(from, to), *field))
            .chain([
                ("[llm]\n".to_string(), "llm.profiles"),
                (azure.to_string(), "llm.profiles.az.deployment"),
            ]);
        for (text, field) in cases {
            let err = llm_error(&text);
            assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
        }
        let err = llm_error(&LLM.replace("\"openai_compatible\"", "\"anthropic\""));
        assert!(err.contains("provider"), "{err}");
    }

    #[test]
    fn a_key_pasted_as_api_key_env_is_rejected_without_echoing_it() {
        let err = llm_error(&LLM.replace(
            "api_key_env = \"OPENAI_API_KEY\"",
            "api_key_env = \"sk-live-secret-123\"",
        ));
        assert!(err.contains("llm.profiles.local.api_key_env"), "{err}");
        assert!(!err.contains("sk-live-secret-123"), "{err}");
    }
}
