//! `[llm]`: the crew's model profiles, who thinks with which, and the budget.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use squad_protocols::{Budget, Member};

use crate::ConfigError;

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

    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
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

    pub(super) fn validate(&self, origin: &str, at: &str) -> Result<(), ConfigError> {
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
