//! `[diagnoser]` and `[holmes]`: who diagnoses, and how HolmesGPT is run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

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
    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
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
