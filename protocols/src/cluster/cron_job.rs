//! A CronJob and the Jobs it owns, as the crew reads them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::WorkloadCondition;

/// A CronJob, as its spec and the CronJob controller's status say, and the Jobs it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronJobInfo {
    pub namespace: String,
    pub name: String,
    /// `spec.schedule`, as written.
    pub schedule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub suspend: bool,
    /// `Allow` (the default), `Forbid` or `Replace`.
    pub concurrency_policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline_seconds: Option<i64>,
    /// How many finished Jobs the controller keeps (3 succeeded, 1 failed unless set).
    pub successful_jobs_history_limit: u32,
    pub failed_jobs_history_limit: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<DateTime<Utc>>,
    /// `status.active`: the Jobs running now.
    #[serde(default)]
    pub active: Vec<String>,
    /// The Jobs it owns (by `ownerReferences`), oldest first.
    #[serde(default)]
    pub jobs: Vec<OwnedJob>,
}

/// A Job a CronJob created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedJob {
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// `status.startTime`: when the Job controller started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// The images of its pod template's containers, in order.
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub active: u32,
    #[serde(default)]
    pub succeeded: u32,
    #[serde(default)]
    pub failed: u32,
    /// `spec.activeDeadlineSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// When it finished: `status.completionTime`, or when its `Failed` condition became True.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub conditions: Vec<WorkloadCondition>,
}

impl OwnedJob {
    /// Its `Complete` or `Failed` condition, if True.
    pub fn outcome(&self) -> Option<&WorkloadCondition> {
        self.conditions
            .iter()
            .find(|c| c.status == "True" && (c.kind == "Complete" || c.kind == "Failed"))
    }

    pub fn failed_condition(&self) -> Option<&WorkloadCondition> {
        self.outcome().filter(|c| c.kind == "Failed")
    }

    /// When it started (its creation when the status does not say).
    pub fn start(&self) -> DateTime<Utc> {
        self.started_at.unwrap_or(self.created_at)
    }

    /// From its start to when it finished, in seconds.
    pub fn ran_seconds(&self) -> Option<i64> {
        self.finished_at.map(|f| (f - self.start()).num_seconds())
    }
}
