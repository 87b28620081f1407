//! What the diagnoser concluded about an incident, and the signals it read.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Quantity, Usage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosisSource {
    Native,
    Holmesgpt,
}

/// The root cause a diagnosis names: a failure family's name (`memory_leak`,
/// `missing_configuration`, …) or `unknown`. It decides who gets which assignment. Open: each
/// failure family names its own (see squad-diagnosis), so adding one touches no enum here.
///
/// ```
/// use squad_protocols::RootCause;
/// let r = RootCause::from_static("memory_leak");
/// assert_eq!(serde_json::to_string(&r).unwrap(), "\"memory_leak\"");
/// assert_eq!(serde_json::from_str::<RootCause>("\"memory_leak\"").unwrap(), r);
/// assert_eq!(RootCause::unknown().as_str(), "unknown");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RootCause(Cow<'static, str>);

impl RootCause {
    pub const fn from_static(name: &'static str) -> Self {
        RootCause(Cow::Borrowed(name))
    }

    pub fn new(name: impl Into<String>) -> Self {
        RootCause(Cow::Owned(name.into()))
    }

    /// No family recognised the failure.
    pub const fn unknown() -> Self {
        Self::from_static("unknown")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RootCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One observation behind the diagnosis: which check or tool ran and what it showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub source: String,
    pub observation: String,
}

/// Memory facts for the failing container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemorySignals {
    pub container: String,
    pub limit: Option<Quantity>,
    pub request: Option<Quantity>,
    /// The highest demand over the last 24 h: the observed working set, or, where the cgroup
    /// held it at the limit, the demand estimated from traffic (`demand_estimate` says how).
    pub peak_24h: Quantity,
    pub median_24h: Quantity,
    /// Some sample sat at the limit: the working set there is the limit, not the demand.
    #[serde(default)]
    pub held_at_limit: bool,
    /// How the demand above the limit was estimated, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demand_estimate: Option<String>,
    /// Least-squares slope of the working set over the window, MiB per hour.
    pub trend_mib_per_hour: f64,
    pub leak_suspected: bool,
    /// MiB of working set per request per second, from the regression on traffic (0 when the
    /// traffic did not vary): Ralph's verification discounts what traffic explains.
    #[serde(default)]
    pub mib_per_rps: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficSignals {
    pub route: String,
    /// Percentage change of the recent window against the baseline before it.
    pub change_pct: f64,
    pub window_hours: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploySignals {
    pub revision: u32,
    pub at: DateTime<Utc>,
    pub age_hours: i64,
    pub resources_changed: bool,
    pub env_changed: bool,
    pub change_cause: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrashSignals {
    pub container: String,
    pub reason: String,
    pub exit_code: i32,
    pub restarts: u32,
    /// An environment variable the logs say is missing, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_env: Option<String>,
    pub log_excerpt: Vec<String>,
}

/// Everything the analyzers measured, typed so the crew can act on numbers, not prose.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemorySignals>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSignals>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deploy: Option<DeploySignals>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<CrashSignals>,
    /// Measurements of a family's own, under its root cause's name (typed by that family).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub family: BTreeMap<String, serde_json::Value>,
}

/// The diagnosis attached to an incident.
///
/// ```
/// use squad_protocols::{Diagnosis, DiagnosisSource, RootCause};
/// let leak = RootCause::from_static("memory_leak");
/// let d = Diagnosis::new(DiagnosisSource::Native, leak, "memory grows 40 MiB/h");
/// let json = serde_json::to_string(&d).unwrap();
/// assert_eq!(serde_json::from_str::<Diagnosis>(&json).unwrap(), d);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub source: DiagnosisSource,
    pub summary: String,
    pub root_cause: RootCause,
    /// The short reason in the incident's title, in the cluster's words (`OOMKilled`), when the
    /// root cause's family has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub evidence: Vec<Evidence>,
    pub recommendations: Vec<String>,
    /// 0.0 – 1.0.
    pub confidence: f64,
    #[serde(default)]
    pub signals: Signals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// The diagnoser's figures checked against squad's own reading of the cluster: each line an
    /// agreement or a disagreement (HolmesGPT's diagnoses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross_check: Vec<String>,
    /// What the diagnosis cost, as the diagnoser reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl Diagnosis {
    pub fn new(source: DiagnosisSource, root_cause: RootCause, summary: impl Into<String>) -> Self {
        Self {
            source,
            summary: summary.into(),
            root_cause,
            reason: None,
            evidence: Vec::new(),
            recommendations: Vec::new(),
            confidence: 0.0,
            signals: Signals::default(),
            usage: None,
            fallback_reason: None,
            cross_check: Vec::new(),
            cost_usd: None,
        }
    }
}
