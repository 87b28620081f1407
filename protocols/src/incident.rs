//! Incidents: an append-only event log, and the state machine the log drives.
//!
//! The log is the truth. [`Incident`] is a fold over it, so a restarted process rebuilds exactly
//! what it knew, including which side effects already happened ([`EventKind::ActionCompleted`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::id::IncidentId;
use crate::{
    Action, Alert, Diagnosis, IssueRef, LlmUsage, Member, PrRef, ProtocolError, Quantity, Report,
    Usage, WorkloadRef,
};

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// Alert accepted, nothing done yet.
    Open,
    Diagnosing,
    /// Incident issue filed, the crew is working.
    Remediating,
    /// The remediation PR is open and waits for a human.
    AwaitingApproval,
    /// The fix is merged; Ralph watches the cluster.
    Verifying,
    Resolved,
    /// A human must step in: the fix did not hold, or the crew is stuck.
    Escalated,
    /// The alert fired again after resolution.
    Reopened,
}

impl IncidentState {
    pub const ALL: [IncidentState; 8] = [
        IncidentState::Open,
        IncidentState::Diagnosing,
        IncidentState::Remediating,
        IncidentState::AwaitingApproval,
        IncidentState::Verifying,
        IncidentState::Resolved,
        IncidentState::Escalated,
        IncidentState::Reopened,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Diagnosing => "diagnosing",
            IncidentState::Remediating => "remediating",
            IncidentState::AwaitingApproval => "awaiting_approval",
            IncidentState::Verifying => "verifying",
            IncidentState::Resolved => "resolved",
            IncidentState::Escalated => "escalated",
            IncidentState::Reopened => "reopened",
        }
    }

    /// The transitions the state machine allows.
    ///
    /// ```
    /// use squad_protocols::IncidentState::*;
    /// assert!(AwaitingApproval.can_become(Verifying));
    /// assert!(!Open.can_become(Resolved));
    /// ```
    pub fn can_become(self, next: IncidentState) -> bool {
        use IncidentState::*;
        matches!(
            (self, next),
            (Open, Diagnosing)
                | (Diagnosing, Remediating)
                | (Diagnosing, Escalated)
                | (Remediating, AwaitingApproval)
                | (Remediating, Escalated)
                | (AwaitingApproval, Verifying)
                | (AwaitingApproval, Escalated)
                | (Verifying, Resolved)
                | (Verifying, Escalated)
                | (Escalated, Verifying)
                | (Escalated, Resolved)
                | (Resolved, Reopened)
                | (Reopened, Diagnosing)
        )
    }

    /// Checks a transition, with an error that names both ends.
    pub fn transition(self, next: IncidentState) -> Result<IncidentState, ProtocolError> {
        if self.can_become(next) {
            Ok(next)
        } else {
            Err(ProtocolError::Transition {
                from: self.as_str().into(),
                to: next.as_str().into(),
            })
        }
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who wrote an event: a crew member, or the runtime itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    Picard,
    Belanna,
    Worf,
    Data,
    Scribe,
    Ralph,
    System,
    Human,
}

impl From<Member> for Author {
    fn from(m: Member) -> Self {
        match m {
            Member::Picard => Author::Picard,
            Member::Belanna => Author::Belanna,
            Member::Worf => Author::Worf,
            Member::Data => Author::Data,
            Member::Scribe => Author::Scribe,
            Member::Ralph => Author::Ralph,
        }
    }
}

impl Author {
    pub fn as_str(&self) -> &'static str {
        match self {
            Author::Picard => "picard",
            Author::Belanna => "belanna",
            Author::Worf => "worf",
            Author::Data => "data",
            Author::Scribe => "scribe",
            Author::Ralph => "ralph",
            Author::System => "system",
            Author::Human => "human",
        }
    }
}

/// Ralph's reading of the cluster over an observation window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub healthy: bool,
    pub window_minutes: u64,
    pub oom_kills: u32,
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Quantity>,
    pub detail: String,
    /// What the replay before the PR predicted, and whether it was right (when there was one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_right: Option<bool>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum EventKind {
    Opened {
        alert: Alert,
        workload: WorkloadRef,
    },
    /// The same alert again while the incident is open (dedup).
    AlertRepeated {
        fingerprint: String,
    },
    /// Repeats of the incident's alert counted by the daemon's intake since the last such event
    /// (each one is durable in the intake log; the incident's log gets the count).
    AlertsRepeated {
        count: u64,
        last_fingerprint: String,
    },
    /// The sender reported the alert resolved.
    AlertResolved {
        fingerprint: String,
    },
    StateChanged {
        from: IncidentState,
        to: IncidentState,
        reason: String,
    },
    Diagnosed {
        diagnosis: Box<Diagnosis>,
    },
    /// Written before a side effect, so a restart knows to look for it before doing it again.
    ActionStarted {
        key: String,
        description: String,
    },
    ActionCompleted {
        key: String,
        outcome: Action,
    },
    Assigned {
        member: Member,
        task: String,
    },
    Reported {
        report: Report,
    },
    MemberRestarted {
        member: Member,
        reason: String,
    },
    Approved {
        by: String,
    },
    /// Someone asked the crew to look at the remediation PR again where it lives (a re-run of a
    /// rehearsal against GitHub, after a reviewer acted there).
    FollowUp {
        reason: String,
    },
    Verified {
        verification: Verification,
    },
    /// The remedy replayed in the world model before its PR: without it and with it.
    Replayed {
        replay: crate::Replay,
    },
    Note {
        text: String,
    },
    /// A member put its work to its model: what the model was, what it cost, and whether its
    /// answer was used or the deterministic skill's (and why).
    Deliberated {
        member: Member,
        /// `profile/model` as the server named it.
        model: String,
        outcome: DeliberationOutcome,
        usage: Usage,
        /// The tools the model called, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tools: Vec<String>,
        /// Estimated from the profile's prices, when it has them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        /// Wall time the deliberation took, in milliseconds.
        #[serde(default)]
        wall_ms: u64,
    },
}

/// How a model deliberation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum DeliberationOutcome {
    /// The model's answer passed validation and was used.
    Accepted,
    /// The model's answer was not used; the deterministic skill's output was.
    Fallback { reason: String },
}

impl EventKind {
    /// One line a person reads in the timeline.
    pub fn describe(&self) -> String {
        match self {
            EventKind::Opened { alert, workload } => {
                format!("opened from alert {} on {workload}", alert.name)
            }
            EventKind::AlertRepeated { fingerprint } => format!("alert repeated ({fingerprint})"),
            EventKind::AlertsRepeated { count, .. } => format!("alert repeated {count} time(s)"),
            EventKind::AlertResolved { fingerprint } => {
                format!("the sender reports the alert resolved ({fingerprint})")
            }
            EventKind::StateChanged { from, to, reason } => {
                format!("state {from} -> {to}: {reason}")
            }
            EventKind::Diagnosed { diagnosis } => format!(
                "diagnosis ({}, {}): {}",
                match diagnosis.source {
                    crate::DiagnosisSource::Native => "native",
                    crate::DiagnosisSource::Holmesgpt => "holmesgpt",
                },
                diagnosis.root_cause.as_str(),
                diagnosis.summary
            ),
            EventKind::ActionStarted { description, .. } => format!("starting: {description}"),
            EventKind::ActionCompleted { outcome, .. } => match outcome {
                Action::OpenedIssue { issue, title } => {
                    format!("opened issue #{}: {title}", issue.number)
                }
                Action::Commented { issue } => format!("commented on issue #{issue}"),
                Action::OpenedPr { pr, title } => {
                    format!("opened PR #{} ({}): {title}", pr.number, pr.branch)
                }
                Action::CommittedFiles { branch, paths } => {
                    format!("committed {} to {branch}", paths.join(", "))
                }
                Action::ClosedIssue { issue } => format!("closed issue #{issue}"),
                Action::ReopenedIssue { issue } => format!("reopened issue #{issue}"),
            },
            EventKind::Assigned { member, task } => {
                format!("assigned {task} to {}", member.display_name())
            }
            EventKind::Reported { report } => format!(
                "report from {}: {}",
                report.member.display_name(),
                report.summary
            ),
            EventKind::MemberRestarted { member, reason } => format!(
                "{} restarted by supervisor: {reason}",
                member.display_name()
            ),
            EventKind::Approved { by } => format!("remediation approved and merged by {by}"),
            EventKind::FollowUp { reason } => format!("asked to follow the PR again: {reason}"),
            EventKind::Verified { verification } => format!(
                "verification over {} min: {} ({})",
                verification.window_minutes,
                if verification.healthy {
                    "healthy"
                } else {
                    "NOT healthy"
                },
                verification.detail
            ),
            EventKind::Replayed { replay } => format!(
                "replayed the fix over {} h: with it {}; without it {}",
                replay.horizon_hours,
                replay.with.describe(),
                replay.without.describe()
            ),
            EventKind::Note { text } => text.clone(),
            EventKind::Deliberated {
                member,
                model,
                outcome,
                usage,
                tools,
                cost_usd,
                wall_ms,
            } => {
                let cost = cost_usd.map_or(String::new(), |c| format!(", ~${c:.4}"));
                let tools = if tools.is_empty() {
                    String::new()
                } else {
                    format!(", tools {}", tools.join(", "))
                };
                let spent = format!(
                    "{} call(s), {} prompt + {} completion tokens{cost}{tools}, {:.1} s",
                    usage.calls,
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    *wall_ms as f64 / 1000.0
                );
                match outcome {
                    DeliberationOutcome::Accepted => format!(
                        "{}'s model {model} answered and its answer was used ({spent})",
                        member.display_name()
                    ),
                    DeliberationOutcome::Fallback { reason } => format!(
                        "{}'s model {model} was not used, the deterministic skill decided: {reason} ({spent})",
                        member.display_name()
                    ),
                }
            }
        }
    }
}

/// One entry of an incident's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvent {
    pub incident: IncidentId,
    /// Position in the incident's log, from 0.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub author: Author,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The incident as its log describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub alert: Alert,
    pub workload: WorkloadRef,
    pub opened_at: DateTime<Utc>,
    pub state: IncidentState,
    pub diagnosis: Option<Diagnosis>,
    pub issue: Option<IssueRef>,
    pub pr: Option<PrRef>,
    pub reports: BTreeMap<Member, Report>,
    /// Side effects done, by idempotency key.
    pub completed: BTreeMap<String, Action>,
    /// Side effects started (and maybe not finished) by idempotency key.
    pub started: BTreeSet<String>,
    pub assigned: BTreeSet<Member>,
    pub approved: bool,
    /// A human approved, or asked the crew to look again, after Ralph last reported: Ralph has
    /// something new to follow.
    pub approved_since_ralph: bool,
    pub verification: Option<Verification>,
    /// What the replay before the PR predicted.
    pub replay: Option<crate::Replay>,
    pub repeats: u64,
    /// The sender reported the alert resolved (it may fire again).
    pub alert_resolved: bool,
    /// Model calls per member, summed over the incident's deliberations.
    #[serde(default)]
    pub llm_usage: BTreeMap<Member, LlmUsage>,
    pub last_seq: u64,
}

impl Incident {
    /// Rebuilds an incident from its log. The first event must be `Opened`.
    pub fn replay<'a>(
        events: impl IntoIterator<Item = &'a IncidentEvent>,
    ) -> Result<Incident, ProtocolError> {
        let mut it = events.into_iter();
        let first = it
            .next()
            .ok_or_else(|| ProtocolError::missing("events[0]", "an `opened` event"))?;
        let EventKind::Opened { alert, workload } = &first.kind else {
            return Err(ProtocolError::invalid(
                "events[0].event",
                "opened",
                format!("{:?}", first.kind),
            ));
        };
        let mut incident = Incident {
            id: first.incident.clone(),
            alert: alert.clone(),
            workload: workload.clone(),
            opened_at: first.at,
            state: IncidentState::Open,
            diagnosis: None,
            issue: None,
            pr: None,
            reports: BTreeMap::new(),
            completed: BTreeMap::new(),
            started: BTreeSet::new(),
            assigned: BTreeSet::new(),
            approved: false,
            approved_since_ralph: false,
            verification: None,
            replay: None,
            repeats: 0,
            alert_resolved: false,
            llm_usage: BTreeMap::new(),
            last_seq: first.seq,
        };
        for e in it {
            incident.apply(e);
        }
        Ok(incident)
    }

    /// Folds one more event in.
    pub fn apply(&mut self, e: &IncidentEvent) {
        self.last_seq = e.seq;
        match &e.kind {
            EventKind::Opened { .. } => {}
            EventKind::AlertRepeated { .. } => {
                self.repeats += 1;
                self.alert_resolved = false;
            }
            EventKind::AlertsRepeated { count, .. } => {
                self.repeats += *count;
                self.alert_resolved = false;
            }
            EventKind::AlertResolved { .. } => self.alert_resolved = true,
            EventKind::StateChanged { to, .. } => self.state = *to,
            EventKind::Diagnosed { diagnosis } => self.diagnosis = Some((**diagnosis).clone()),
            EventKind::ActionStarted { key, .. } => {
                self.started.insert(key.clone());
            }
            EventKind::ActionCompleted { key, outcome } => {
                match outcome {
                    Action::OpenedIssue { issue, .. } if key == INCIDENT_ISSUE_KEY => {
                        self.issue = Some(issue.clone())
                    }
                    Action::OpenedPr { pr, .. } if key == REMEDIATION_PR_KEY => {
                        self.pr = Some(pr.clone())
                    }
                    _ => {}
                }
                self.completed.insert(key.clone(), outcome.clone());
            }
            EventKind::Assigned { member, .. } => {
                self.assigned.insert(*member);
            }
            EventKind::Reported { report } => {
                if report.member == Member::Ralph {
                    self.approved_since_ralph = false;
                }
                self.reports.insert(report.member, report.clone());
            }
            EventKind::MemberRestarted { .. } | EventKind::Note { .. } => {}
            EventKind::Approved { .. } => {
                self.approved = true;
                self.approved_since_ralph = true;
            }
            EventKind::FollowUp { .. } => self.approved_since_ralph = true,
            EventKind::Verified { verification } => self.verification = Some(verification.clone()),
            EventKind::Replayed { replay } => self.replay = Some(replay.clone()),
            EventKind::Deliberated {
                member,
                outcome,
                usage,
                cost_usd,
                ..
            } => {
                let u = self.llm_usage.entry(*member).or_default();
                u.calls += u64::from(usage.calls);
                u.prompt_tokens += usage.prompt_tokens;
                u.completion_tokens += usage.completion_tokens;
                if matches!(outcome, DeliberationOutcome::Fallback { .. }) {
                    u.fallbacks += 1;
                }
                if let Some(c) = cost_usd {
                    *u.estimated_cost_usd.get_or_insert(0.0) += c;
                }
            }
        }
    }

    /// The incident issue title squad files: `[Incident] OOMKilled: payment-service (production)`.
    pub fn issue_title(&self, reason: &str) -> String {
        format!(
            "[Incident] {reason}: {} ({})",
            self.workload.name, self.workload.namespace
        )
    }

    /// The short reason in the incident's title: the diagnosis's (`OOMKilled`,
    /// `CrashLoopBackOff`), else the alert's `reason` label, else the alert's name.
    pub fn incident_reason(&self) -> String {
        self.diagnosis
            .as_ref()
            .and_then(|d| d.reason.clone())
            .or_else(|| self.alert.label("reason").map(str::to_owned))
            .unwrap_or_else(|| self.alert.name.clone())
    }

    /// The incident issue's title.
    pub fn title(&self) -> String {
        self.issue_title(&self.incident_reason())
    }
}

/// Idempotency key of the incident issue.
pub const INCIDENT_ISSUE_KEY: &str = "picard:incident-issue";
/// Idempotency key of B'Elanna's remediation PR.
pub const REMEDIATION_PR_KEY: &str = "belanna:remediation-pr";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Alert, DiagnosisSource, RootCause};

    fn ev(seq: u64, kind: EventKind) -> IncidentEvent {
        IncidentEvent {
            incident: IncidentId("inc-1".into()),
            seq,
            at: DateTime::parse_from_rfc3339("2026-11-23T19:21:20Z")
                .unwrap()
                .with_timezone(&Utc),
            author: Author::Picard,
            kind,
        }
    }

    #[test]
    fn replay_folds_state_issue_and_completed_actions() {
        let events = vec![
            ev(
                0,
                EventKind::Opened {
                    alert: Alert::firing("A"),
                    workload: WorkloadRef::deployment("ns", "w"),
                },
            ),
            ev(
                1,
                EventKind::StateChanged {
                    from: IncidentState::Open,
                    to: IncidentState::Diagnosing,
                    reason: "x".into(),
                },
            ),
            ev(
                2,
                EventKind::Diagnosed {
                    diagnosis: Box::new(Diagnosis::new(
                        DiagnosisSource::Native,
                        RootCause::from_static("memory_leak"),
                        "s",
                    )),
                },
            ),
            ev(
                3,
                EventKind::ActionStarted {
                    key: INCIDENT_ISSUE_KEY.into(),
                    description: "file".into(),
                },
            ),
            ev(
                4,
                EventKind::ActionCompleted {
                    key: INCIDENT_ISSUE_KEY.into(),
                    outcome: Action::OpenedIssue {
                        issue: IssueRef {
                            number: 1,
                            url: "u".into(),
                        },
                        title: "t".into(),
                    },
                },
            ),
        ];
        let inc = Incident::replay(&events).unwrap();
        assert_eq!(inc.state, IncidentState::Diagnosing);
        assert_eq!(inc.issue.as_ref().unwrap().number, 1);
        assert!(inc.completed.contains_key(INCIDENT_ISSUE_KEY));
        assert_eq!(inc.last_seq, 4);
    }

    #[test]
    fn events_round_trip_as_flat_json() {
        let e = ev(1, EventKind::Approved { by: "human".into() });
        let s = serde_json::to_string(&e).unwrap();
        assert!(s.contains("\"event\":\"approved\""), "{s}");
        assert_eq!(serde_json::from_str::<IncidentEvent>(&s).unwrap(), e);
    }

    #[test]
    fn illegal_transition_names_both_states() {
        let err = IncidentState::Open
            .transition(IncidentState::Resolved)
            .unwrap_err()
            .to_string();
        assert!(err.contains("open") && err.contains("resolved"), "{err}");
    }

    #[test]
    fn replay_rejects_a_log_that_does_not_start_with_opened() {
        let err = Incident::replay(&[ev(0, EventKind::Note { text: "x".into() })]).unwrap_err();
        assert!(err.to_string().contains("events[0]"));
    }
}
