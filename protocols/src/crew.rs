//! The crew, the assignments Picard routes to them, and the reports they send back.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::id::IncidentId;
use crate::{Diagnosis, IssueRef, PrRef, ProtocolError, WorkloadRef};

/// A crew member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Member {
    Picard,
    Belanna,
    Worf,
    Data,
    Scribe,
    Ralph,
}

impl Member {
    pub const ALL: [Member; 6] = [
        Member::Picard,
        Member::Belanna,
        Member::Worf,
        Member::Data,
        Member::Scribe,
        Member::Ralph,
    ];

    /// The id used in file names, labels (`squad:belanna`) and JSON.
    pub fn id(&self) -> &'static str {
        match self {
            Member::Picard => "picard",
            Member::Belanna => "belanna",
            Member::Worf => "worf",
            Member::Data => "data",
            Member::Scribe => "scribe",
            Member::Ralph => "ralph",
        }
    }

    /// The name a person reads.
    pub fn display_name(&self) -> &'static str {
        match self {
            Member::Picard => "Picard",
            Member::Belanna => "B'Elanna",
            Member::Worf => "Worf",
            Member::Data => "Data",
            Member::Scribe => "Scribe",
            Member::Ralph => "Ralph",
        }
    }

    pub fn role(&self) -> &'static str {
        match self {
            Member::Picard => "coordinator",
            Member::Belanna => "infrastructure",
            Member::Worf => "security",
            Member::Data => "code and application",
            Member::Scribe => "memory",
            Member::Ralph => "work monitor",
        }
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Member {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Member::ALL
            .into_iter()
            .find(|m| m.id() == s.to_ascii_lowercase().replace('\'', ""))
            .ok_or_else(|| {
                ProtocolError::invalid(
                    "member",
                    "one of picard, belanna, worf, data, scribe, ralph",
                    s,
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Something a member found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    pub title: String,
    pub detail: String,
}

/// What a member is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "task")]
pub enum Task {
    /// B'Elanna: fix the infrastructure through a pull request.
    RemediateInfra,
    /// Worf: review the workload's security posture.
    SecurityReview,
    /// Data: look for a code-level or runtime cause.
    CodeInvestigation,
    /// Scribe: write the decision record, runbook and incident report.
    RecordMemory,
    /// Ralph: follow the remediation PR to merge and verify the fix.
    MonitorRemediation {
        pr: Option<PrRef>,
        /// What the replay before the PR predicted, to set beside the verdict.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replay: Option<Box<crate::Replay>>,
    },
}

impl Task {
    pub fn name(&self) -> &'static str {
        match self {
            Task::RemediateInfra => "remediate_infra",
            Task::SecurityReview => "security_review",
            Task::CodeInvestigation => "code_investigation",
            Task::RecordMemory => "record_memory",
            Task::MonitorRemediation { .. } => "monitor_remediation",
        }
    }
}

/// A typed assignment Picard sends to a member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub incident: IncidentId,
    pub member: Member,
    pub task: Task,
    pub workload: WorkloadRef,
    pub alert_name: String,
    pub diagnosis: Diagnosis,
    pub issue: IssueRef,
    /// Reports already in, for members that build on the others (Scribe).
    #[serde(default)]
    pub reports: Vec<Report>,
    /// What past incidents of this workload taught (from Scribe's memory).
    #[serde(default)]
    pub memory: Vec<String>,
}

/// What a member did, as recorded on the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    OpenedIssue { issue: IssueRef, title: String },
    Commented { issue: u64 },
    OpenedPr { pr: PrRef, title: String },
    CommittedFiles { branch: String, paths: Vec<String> },
    ClosedIssue { issue: u64 },
    ReopenedIssue { issue: u64 },
}

/// A member's answer to an assignment.
///
/// ```
/// use squad_protocols::{Member, Report};
/// let r = Report::new(Member::Worf, "no critical findings");
/// let json = serde_json::to_string(&r).unwrap();
/// assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub member: Member,
    pub summary: String,
    #[serde(default)]
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub actions: Vec<Action>,
}

impl Report {
    pub fn new(member: Member, summary: impl Into<String>) -> Self {
        Self {
            member,
            summary: summary.into(),
            findings: Vec::new(),
            actions: Vec::new(),
        }
    }

    pub fn opened_pr(&self) -> Option<&PrRef> {
        self.actions.iter().find_map(|a| match a {
            Action::OpenedPr { pr, .. } => Some(pr),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn member_ids_parse_back() {
        for m in Member::ALL {
            assert_eq!(m.id().parse::<Member>().unwrap(), m);
        }
        assert_eq!("B'Elanna".parse::<Member>().unwrap(), Member::Belanna);
        assert!(
            "q".parse::<Member>()
                .unwrap_err()
                .to_string()
                .contains("picard")
        );
    }

    #[test]
    fn task_serialises_with_a_tag() {
        let t = Task::MonitorRemediation {
            pr: None,
            replay: None,
        };
        let s = serde_json::to_string(&t).unwrap();
        assert!(s.contains("\"task\":\"monitor_remediation\""), "{s}");
        assert_eq!(serde_json::from_str::<Task>(&s).unwrap(), t);
    }
}
