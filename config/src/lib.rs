//! squad-config: typed configuration and the defaults squad ships with.
//!
//! - [`settings`]: `squad.toml` — the runtime's knobs, validated with clear messages.
//! - [`charters`]: each crew member's charter (system prompt), from `config/agents/<name>.md`.
//! - [`templates`]: runbook, decision record and incident report templates.

pub mod charters;
pub mod error;
pub mod settings;
pub mod templates;

pub use error::ConfigError;
pub use settings::{
    AlertmanagerSettings, AuthSettings, BackendKind, BackendSettings, DiagnoserKind,
    DiagnoserSettings, HolmesSettings, HolmesTransport, IntakeSettings, LlmBudget, LlmProfile,
    LlmProvider, LlmSettings, LlmToolMode, PagerDutySettings, PrometheusSettings,
    RateLimitSettings, SecuritySettings, ServerSettings, Settings, TlsSettings,
};
