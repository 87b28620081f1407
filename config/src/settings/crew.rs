//! How the crew works: `[remediation]`, `[supervision]`, `[crew]` and `[verification]`.

use serde::{Deserialize, Serialize};
use squad_protocols::Quantity;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemediationSettings {
    pub memory: MemoryRule,
    /// How far ahead B'Elanna replays a fix in the world model before she proposes it, where the
    /// backend has one (the simulation); 0 turns the replay off.
    pub replay_hours: u64,
}

impl Default for RemediationSettings {
    fn default() -> Self {
        Self {
            memory: MemoryRule::default(),
            replay_hours: 24,
        }
    }
}

/// B'Elanna's sizing rule for memory:
/// - limit = observed 24 h peak × (1 + headroom_percent/100), rounded up to `round_to`;
/// - request = 24 h median working set, rounded up to `round_to`, never below the current request;
/// - an HPA on memory utilisation at `hpa_target_percent` of the request, from the current replica
///   count to `hpa_max_replicas_factor` times it;
/// - against a leak, a stop-gap instead: the limit raised by the leak's growth over
///   `leak_stopgap_hours` (rounded up to `round_to`), no HPA (more pods would leak alike).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryRule {
    pub headroom_percent: u32,
    pub round_to: Quantity,
    pub hpa_target_percent: u32,
    pub hpa_max_replicas_factor: u32,
    pub leak_stopgap_hours: u32,
}

impl Default for MemoryRule {
    fn default() -> Self {
        Self {
            headroom_percent: 20,
            round_to: Quantity::mebibytes(256),
            hpa_target_percent: 70,
            hpa_max_replicas_factor: 3,
            leak_stopgap_hours: 12,
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
    /// After the window, how long the incident's alert may go on firing before the verdict
    /// fails (with `[alertmanager] url`): resolving takes the rule's range, an evaluation and
    /// Alertmanager's group_interval, not the rule's `for:`.
    pub alert_grace_minutes: u64,
}

impl Default for VerificationSettings {
    fn default() -> Self {
        Self {
            window_minutes: 60,
            poll_minutes: 5,
            projection_hours: 24,
            merge_wait_hours: 24,
            alert_grace_minutes: 15,
        }
    }
}
