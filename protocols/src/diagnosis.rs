//! What the diagnoser concluded about an incident, and the signals it read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Quantity, Usage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosisSource {
    Native,
    Holmesgpt,
}

/// The category of root cause; it decides who gets which assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootCause {
    /// The workload needs more memory than its limit for a legitimate reason (e.g. load).
    MemoryUnderProvisioned,
    /// Memory grows without bound regardless of load.
    MemoryLeak,
    /// The container exits at start-up because configuration it needs is absent.
    MissingConfiguration,
    /// The container keeps crashing for a reason the analyzers could not pin down.
    CrashLoop,
    Unknown,
}

impl RootCause {
    pub fn as_str(&self) -> &'static str {
        match self {
            RootCause::MemoryUnderProvisioned => "memory_under_provisioned",
            RootCause::MemoryLeak => "memory_leak",
            RootCause::MissingConfiguration => "missing_configuration",
            RootCause::CrashLoop => "crash_loop",
            RootCause::Unknown => "unknown",
        }
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
    pub peak_24h: Quantity,
    pub median_24h: Quantity,
    /// Least-squares slope of the working set over the window, MiB per hour.
    pub trend_mib_per_hour: f64,
    pub leak_suspected: bool,
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
}

/// The diagnosis attached to an incident.
///
/// ```
/// use squad_protocols::{Diagnosis, DiagnosisSource, RootCause};
/// let d = Diagnosis::new(DiagnosisSource::Native, RootCause::MemoryLeak, "memory grows 40 MiB/h");
/// let json = serde_json::to_string(&d).unwrap();
/// assert_eq!(serde_json::from_str::<Diagnosis>(&json).unwrap(), d);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub source: DiagnosisSource,
    pub summary: String,
    pub root_cause: RootCause,
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
