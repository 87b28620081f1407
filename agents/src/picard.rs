//! Picard — coordinator: opens the incident, gets the diagnosis, files the incident issue,
//! routes typed assignments and moves the incident through its state machine.
//!
//! Picard is a reconciler over the incident log: on every message it folds the incident from the
//! store and starts whatever step the state calls for that is not already running. That is also
//! how a restarted process resumes: the log says what is done, Picard does the rest.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use squad_config::charters;
use squad_diagnosis::families;
use squad_protocols::incident::INCIDENT_ISSUE_KEY;
use squad_protocols::{
    Alert, AlertStatus, Assignment, Author, Diagnosis, EventKind, Incident, IncidentId,
    IncidentState, IssueSpec, Member, RootCause, Task, WorkloadRef,
};
use squad_runtime::ports::DiagnosisRequest;
use squad_runtime::reconcile::{Backoff, Controller, GiveUp, Next, Outcome};

use squad_protocols::llm::Rejection;
use squad_runtime::CrewError;

use crate::{CrewContext, effects, memory};

mod replicas;
mod resolve;

pub use resolve::{pod_to_workload, resolve_workload};

/// The charter Picard works under.
pub fn charter() -> &'static str {
    charters::charter(Member::Picard)
}

/// What Picard accepts.
pub enum PicardMsg {
    /// A new alert: opens an incident, or joins the open one it belongs to.
    Ingest {
        alert: Box<Alert>,
        reply: RpcReplyPort<Result<IncidentId, CrewError>>,
    },
    /// The alert with its workload resolved: open or join the incident.
    Open {
        alert: Box<Alert>,
        workload: WorkloadRef,
        reply: RpcReplyPort<Result<IncidentId, CrewError>>,
    },
    /// Look at the incident again and start what its state calls for.
    Advance(IncidentId),
    /// A step Picard started has finished.
    StepDone {
        incident: IncidentId,
        step: Step,
        result: Result<(), CrewError>,
    },
    /// This replica holds these shards' leases (just acquired, or at a sweep): their unfinished
    /// incidents are resumed here, in one pass over the store.
    ShardsHeld(Vec<String>),
    /// This replica lost a shard's lease: its steps in flight stop (another replica resumes).
    ShardLost(String),
}

/// Where the live Picard is (updated by the supervisor's factory on every restart).
#[derive(Clone, Default)]
pub struct PicardHandle {
    inner: Arc<std::sync::RwLock<Option<ActorRef<PicardMsg>>>>,
}

impl PicardHandle {
    pub fn set(&self, actor: ActorRef<PicardMsg>) {
        if let Ok(mut g) = self.inner.write() {
            *g = Some(actor);
        }
    }

    pub fn get(&self) -> Option<ActorRef<PicardMsg>> {
        self.inner.read().ok().and_then(|g| g.clone())
    }
}

/// One unit of Picard's work on an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Diagnose,
    FileIssue,
    Assign(Member),
    /// Every report is in and the PR is open: wait for the human.
    AwaitApproval,
    /// Ralph's verification is recorded: resolve or escalate on it.
    Conclude,
    Escalate,
}

/// The members a root cause is routed to, with why: its failure family's routing.
pub fn routing(root: &RootCause) -> &'static [(Member, &'static str)] {
    families::of(root).routing()
}

/// What the incident's state calls for next. Pure: the log decides.
pub fn plan(incident: &Incident) -> Vec<Step> {
    use IncidentState::*;
    let specialists = || {
        incident
            .diagnosis
            .as_ref()
            .map(|d| {
                routing(&d.root_cause)
                    .iter()
                    .map(|(m, _)| *m)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let ralph_due = !incident.reports.contains_key(&Member::Ralph) || incident.approved_since_ralph;
    match incident.state {
        Open => vec![Step::Diagnose],
        Diagnosing if incident.diagnosis.is_none() => vec![Step::Diagnose],
        Diagnosing => vec![Step::FileIssue],
        Remediating => {
            let missing: Vec<Step> = specialists()
                .into_iter()
                .filter(|m| !incident.reports.contains_key(m))
                .map(Step::Assign)
                .collect();
            if !missing.is_empty() {
                missing
            } else if !incident.reports.contains_key(&Member::Scribe) {
                vec![Step::Assign(Member::Scribe)]
            } else if incident.pr.is_some() {
                vec![Step::AwaitApproval]
            } else {
                vec![Step::Escalate]
            }
        }
        Verifying if incident.verification.is_some() => vec![Step::Conclude],
        AwaitingApproval | Verifying | Escalated
            if incident.pr.is_some() && ralph_due && incident.verification.is_none() =>
        {
            vec![Step::Assign(Member::Ralph)]
        }
        _ => Vec::new(),
    }
}

pub struct Picard {
    pub ctx: CrewContext,
}

/// Picard's controller: the steps in flight and their failed attempts. Dropped with Picard's
/// state (a crash or a stop), which aborts what was running, so a restarted Picard never races a
/// step its predecessor was still running.
pub struct PicardState {
    steps: Controller<(IncidentId, Step)>,
    /// The shard lease of each incident started here.
    leases: std::collections::HashMap<IncidentId, String>,
}

fn settled(state: IncidentState) -> bool {
    matches!(state, IncidentState::Resolved)
}

impl Picard {
    fn open_incident(&self, alert: Alert, workload: WorkloadRef) -> Result<IncidentId, CrewError> {
        let journal = &self.ctx.journal;
        let store = journal.store();
        // Group with an open incident for the same alert and workload.
        for id in store.incident_ids()? {
            let inc = store.load(&id)?;
            let same = inc.alert.fingerprint == alert.fingerprint
                || (inc.alert.name == alert.name && inc.workload == workload);
            if same && !settled(inc.state) {
                let kind = if alert.status == AlertStatus::Resolved {
                    EventKind::Note {
                        text: format!("alert {} reported resolved by the sender", alert.name),
                    }
                } else {
                    EventKind::AlertRepeated {
                        fingerprint: alert.fingerprint.clone(),
                    }
                };
                journal.record(&id, Author::Picard, kind)?;
                return Ok(id);
            }
        }
        let id = if self.ctx.derived_ids {
            let existing = store.incident_ids()?.len();
            IncidentId::derived(&alert.fingerprint, journal.clock().now(), existing)
        } else {
            IncidentId(format!(
                "inc-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ))
        };
        journal.record(&id, Author::Picard, EventKind::Opened { alert, workload })?;
        Ok(id)
    }

    fn start(&self, myself: &ActorRef<PicardMsg>, state: &mut PicardState, incident: &Incident) {
        // Another replica acts on incidents of shards this one does not hold.
        let ownership = &self.ctx.ownership;
        if !ownership.holds_workload(&incident.workload) {
            return;
        }
        if !ownership.is_everything() {
            state
                .leases
                .insert(incident.id.clone(), ownership.lease_of(&incident.workload));
        }
        for step in plan(incident) {
            let ctx = self.ctx.clone();
            let me = myself.clone();
            let id = incident.id.clone();
            state.steps.start((id.clone(), step), async move {
                let result = run_step(&ctx, &id, step).await;
                let _ = me.send_message(PicardMsg::StepDone {
                    incident: id,
                    step,
                    result,
                });
            });
        }
    }

    /// The error policy's decision on a failed step, written on the incident.
    fn failed(
        &self,
        myself: &ActorRef<PicardMsg>,
        incident: IncidentId,
        step: Step,
        e: &CrewError,
        attempt: u32,
        next: Next,
    ) {
        let note = format!("{step:?} failed (attempt {attempt}): {e}");
        tracing::warn!(%incident, "{note}");
        let _ = self
            .ctx
            .journal
            .record(&incident, Author::Picard, EventKind::Note { text: note });
        match next {
            // Backed off without blocking the mailbox.
            Next::RetryAfter(delay) => {
                myself.send_after(delay, move || PicardMsg::Advance(incident));
            }
            Next::GiveUp(why) => {
                let reason = match why {
                    GiveUp::AttemptsSpent => format!("{step:?} failed {attempt} times: {e}"),
                    GiveUp::Permanent => {
                        format!("{step:?} failed: {e} (retrying cannot help; not retried)")
                    }
                };
                let _ = self.ctx.journal.transition(
                    &incident,
                    Author::Picard,
                    IncidentState::Escalated,
                    &reason,
                );
            }
        }
    }
}

/// The diagnosis as the incident keeps it, with its text through the incident's redactor: what
/// a diagnoser quotes (log lines, events, HolmesGPT's tool output and summary) goes on to the
/// issue, the PR, the timeline, `--json`, the incident report and every prompt. Its typed
/// signals are what the crew acts on and stay as read, but for the crash's log excerpt.
async fn redacted(
    ctx: &CrewContext,
    id: &IncidentId,
    mut d: Diagnosis,
) -> Result<Diagnosis, CrewError> {
    let r = effects::redactor(ctx, id)
        .await
        .map_err(|e| CrewError::invalid(format!("redact the diagnosis of {id}"), e))?;
    let texts = d
        .evidence
        .iter_mut()
        .map(|e| &mut e.observation)
        .chain(std::iter::once(&mut d.summary))
        .chain(&mut d.recommendations)
        .chain(&mut d.cross_check)
        .chain(d.fallback_reason.iter_mut())
        .chain(
            d.signals
                .crash
                .iter_mut()
                .flat_map(|c| c.log_excerpt.iter_mut()),
        );
    for t in texts {
        *t = r.redact(t);
    }
    Ok(d)
}

async fn run_step(ctx: &CrewContext, id: &IncidentId, step: Step) -> Result<(), CrewError> {
    let j = &ctx.journal;
    let incident = j.load(id)?;
    match step {
        Step::Diagnose => {
            j.transition(
                id,
                Author::Picard,
                IncidentState::Diagnosing,
                "asking the diagnoser",
            )?;
            let memory = memory::recall(ctx, &incident.workload).await;
            let request = DiagnosisRequest {
                alert: incident.alert.clone(),
                workload: incident.workload.clone(),
                memory,
            };
            let diagnosis = redacted(ctx, id, ctx.diagnoser.diagnose(&request).await?).await?;
            j.record(
                id,
                Author::Picard,
                EventKind::Diagnosed {
                    diagnosis: Box::new(diagnosis),
                },
            )?;
            Ok(())
        }
        Step::FileIssue => {
            let spec = incident_issue(ctx, &incident).await;
            effects::issue_once(
                ctx,
                id,
                Member::Picard,
                INCIDENT_ISSUE_KEY.trim_start_matches("picard:"),
                spec,
            )
            .await?;
            j.transition(
                id,
                Author::Picard,
                IncidentState::Remediating,
                "incident issue filed; crew assigned",
            )?;
            Ok(())
        }
        Step::Assign(member) => {
            let assign = || format!("assign {member:?} on {id}");
            let issue = (incident.issue.clone())
                .ok_or_else(|| CrewError::invalid(assign(), "no incident issue yet"))?;
            let diagnosis = (incident.diagnosis.clone())
                .ok_or_else(|| CrewError::invalid(assign(), "no diagnosis yet"))?;
            let task = match member {
                Member::Belanna => Task::RemediateInfra,
                Member::Worf => Task::SecurityReview,
                Member::Data => Task::CodeInvestigation,
                Member::Scribe => Task::RecordMemory,
                Member::Ralph => Task::MonitorRemediation {
                    pr: incident.pr.clone(),
                    replay: incident.replay.clone().map(Box::new),
                },
                Member::Picard => {
                    return Err(CrewError::invalid(
                        assign(),
                        "Picard does not assign to himself",
                    ));
                }
            };
            j.record(
                id,
                Author::Picard,
                EventKind::Assigned {
                    member,
                    task: task.name().into(),
                },
            )?;
            let assignment = Assignment {
                incident: id.clone(),
                member,
                task,
                workload: incident.workload.clone(),
                alert_name: incident.alert.name.clone(),
                diagnosis,
                issue,
                reports: incident.reports.values().cloned().collect(),
                memory: memory::recall(ctx, &incident.workload).await,
            };
            // Ralph's assignment spans the wait for a merge, the observation window, and the
            // grace for the alert to resolve (polled: one poll past it at most).
            let v = &ctx.settings.verification;
            let extra = if member == Member::Ralph {
                v.merge_wait_hours * 3600
                    + v.window_minutes * 60
                    + (v.alert_grace_minutes + v.poll_minutes) * 60
            } else {
                0
            };
            let timeout = Duration::from_secs(ctx.settings.crew.assignment_timeout_seconds + extra);
            let report = ctx.directory.ask(assignment, timeout).await?;
            j.record(id, Author::from(member), EventKind::Reported { report })?;
            Ok(())
        }
        Step::AwaitApproval => {
            j.transition(
                id,
                Author::Picard,
                IncidentState::AwaitingApproval,
                "remediation PR open; Ralph follows it",
            )?;
            Ok(())
        }
        Step::Conclude => {
            let healthy = incident.verification.as_ref().is_some_and(|v| v.healthy);
            let (to, why) = if healthy {
                (
                    IncidentState::Resolved,
                    "Ralph verified the fix in the cluster",
                )
            } else {
                (
                    IncidentState::Escalated,
                    "the fix did not hold; a human must step in",
                )
            };
            j.transition(id, Author::Picard, to, why)?;
            // Settled: the incident's redaction placeholders are no longer needed in memory.
            ctx.minds.forget(id);
            Ok(())
        }
        Step::Escalate => {
            let why = "no remediation pull request could be produced; a human must decide the fix";
            j.transition(id, Author::Picard, IncidentState::Escalated, why)?;
            ctx.minds.forget(id);
            if let Some(issue) = &incident.issue {
                let body = format!(
                    "**Picard** (coordinator): escalating to a human. {why}.\n\nReports:\n{}",
                    incident
                        .reports
                        .values()
                        .map(|r| format!("- {}: {}", r.member.display_name(), r.summary))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                effects::comment_once(ctx, id, Member::Picard, "escalation", issue.number, &body)
                    .await?;
            }
            Ok(())
        }
    }
}

/// Picard's read of an incident before the crew is assigned.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Triage {
    /// P1 (customer-facing outage) to P4 (no user impact).
    pub priority: Priority,
    /// The incident in two or three sentences for whoever picks up the issue: impact, cause,
    /// what the crew is doing.
    pub assessment: String,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

/// The priority the alert's severity implies; a model may raise it, never lower it.
pub fn floor_priority(severity: Option<&str>) -> Priority {
    match severity.map(str::to_ascii_lowercase).as_deref() {
        Some("critical") | Some("page") => Priority::P1,
        Some("error") | Some("high") => Priority::P2,
        Some("warning") => Priority::P3,
        _ => Priority::P4,
    }
}

/// The tools Picard's model may use.
pub const TOOLS: &[crate::mind::Tool] = &[
    crate::mind::Tool::Workload,
    crate::mind::Tool::Pods,
    crate::mind::Tool::PodEvents,
    crate::mind::Tool::RequestRates,
];

pub fn check_triage(t: &Triage, floor: Priority, workload: &WorkloadRef) -> Result<(), Rejection> {
    if t.priority > floor {
        return Err(Rejection::from(format!(
            "priority {:?} is lower than the alert's severity implies ({floor:?})",
            t.priority
        )));
    }
    let text = crate::mind::clean_text(&t.assessment, 1_200, "assessment")?;
    if !text.contains(&workload.name) {
        return Err(Rejection::from(format!(
            "the assessment does not name the workload {}",
            workload.name
        )));
    }
    Ok(())
}

async fn triage(
    ctx: &CrewContext,
    incident: &Incident,
    d: &squad_protocols::Diagnosis,
) -> Option<(Triage, String)> {
    ctx.minds.model_of(Member::Picard)?;
    let floor = floor_priority(incident.alert.severity());
    // Picard deliberates before the issue exists: the brief has no issue number yet.
    let a = Assignment {
        incident: incident.id.clone(),
        member: Member::Picard,
        task: Task::RecordMemory,
        workload: incident.workload.clone(),
        alert_name: incident.alert.name.clone(),
        diagnosis: d.clone(),
        issue: squad_protocols::IssueRef {
            number: 0,
            url: String::new(),
        },
        reports: Vec::new(),
        memory: memory::recall(ctx, &incident.workload).await,
    };
    let routing_text: String = routing(&d.root_cause)
        .iter()
        .map(|(m, why)| format!("- {}: {why}\n", m.display_name()))
        .collect();
    let thought = crate::mind::deliberate(
        ctx,
        crate::mind::Ask {
            member: Member::Picard,
            assignment: &a,
            task: "Set the incident's priority (P1 to P4; never lower than the alert's severity implies) and write the assessment that opens the incident issue.".into(),
            context: format!(
                "Alert severity: {}. The crew will be routed as:\n{routing_text}",
                incident.alert.severity().unwrap_or("unknown")
            ),
            proposal: Triage {
                priority: floor,
                assessment: format!(
                    "{} ({}) alerted {}: {}",
                    incident.workload.name, incident.workload.namespace, incident.alert.name, d.summary
                ),
            },
            tools: TOOLS,
        },
        |t| check_triage(t, floor, &incident.workload),
    )
    .await;
    thought.by_model.map(|m| (thought.answer, m))
}

async fn incident_issue(ctx: &CrewContext, incident: &Incident) -> IssueSpec {
    let d = incident.diagnosis.as_ref();
    let env = incident.workload.namespace.clone();
    let triaged = match d {
        Some(d) => triage(ctx, incident, d).await,
        None => None,
    };
    let mut body = format!(
        "## {}\n\n**Alert:** `{}` ({}) on {} — opened {}\n\n",
        incident.id,
        incident.alert.name,
        incident.alert.severity().unwrap_or("unknown severity"),
        incident.workload,
        incident.opened_at.to_rfc3339()
    );
    if let Some((t, model)) = &triaged {
        body.push_str(&format!(
            "## Assessment — {:?}\n\n{}\n\n_Triage written with {model}._\n\n",
            t.priority,
            t.assessment.trim()
        ));
    }
    if let Some(d) = d {
        body.push_str(&format!(
            "## Diagnosis ({}, confidence {:.0}%)\n\n{}\n\n**Root cause:** `{}`\n\n### Evidence\n",
            match d.source {
                squad_protocols::DiagnosisSource::Native => "native analyzers",
                squad_protocols::DiagnosisSource::Holmesgpt => "HolmesGPT",
            },
            d.confidence * 100.0,
            d.summary,
            d.root_cause.as_str()
        ));
        for e in &d.evidence {
            body.push_str(&format!("- **{}:** {}\n", e.source, e.observation));
        }
        if !d.cross_check.is_empty() {
            body.push_str("\n### Cross-check against squad's own reading of the cluster\n");
            for c in &d.cross_check {
                body.push_str(&format!("- {c}\n"));
            }
        }
        if let Some(reason) = &d.fallback_reason {
            body.push_str(&format!("\n> {reason}\n"));
        }
        if !d.recommendations.is_empty() {
            body.push_str("\n### Recommendations\n");
            for r in &d.recommendations {
                body.push_str(&format!("- {r}\n"));
            }
        }
        body.push_str("\n## Routing\n\n| Member | Assignment |\n|---|---|\n");
        for (m, why) in routing(&d.root_cause) {
            body.push_str(&format!(
                "| {} (`squad:{}`) | {why} |\n",
                m.display_name(),
                m.id()
            ));
        }
        body.push_str("| Scribe (`squad:scribe`) | decision record, runbook, incident report |\n| Ralph (`squad:ralph`) | follow the PR to merge and verify in the cluster |\n");
    }
    let memory = memory::recall(ctx, &incident.workload).await;
    if !memory.is_empty() {
        body.push_str("\n## Past incidents of this workload\n");
        for m in memory {
            body.push_str(&format!("- {m}\n"));
        }
    }
    IssueSpec {
        title: incident.title(),
        body,
        labels: {
            let mut labels = vec!["incident".into(), env, "needs-remediation".into()];
            if let Some((t, _)) = &triaged {
                labels.push(format!("priority:{:?}", t.priority).to_lowercase());
            }
            labels
        },
    }
}

impl Actor for Picard {
    type Msg = PicardMsg;
    type State = PicardState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<PicardMsg>,
        _: (),
    ) -> Result<PicardState, ActorProcessingErr> {
        // Resume every incident the log says is not finished (of the shards held here).
        for id in self.ctx.journal.store().incident_ids()? {
            let _ = myself.send_message(PicardMsg::Advance(id));
        }
        if !self.ctx.ownership.is_everything() {
            replicas::follow(&self.ctx, &myself);
        }
        Ok(PicardState {
            steps: Controller::new(Backoff::of(&self.ctx.settings.crew)),
            leases: Default::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<PicardMsg>,
        msg: PicardMsg,
        state: &mut PicardState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PicardMsg::Ingest { alert, reply } => {
                // Resolving the owner is a cluster call: done off the mailbox, then Open.
                let cluster = self.ctx.cluster.clone();
                let me = myself.clone();
                tokio::spawn(async move {
                    let workload = resolve_workload(cluster.as_ref(), &alert).await;
                    let _ = me.send_message(PicardMsg::Open {
                        alert,
                        workload,
                        reply,
                    });
                });
            }
            PicardMsg::Open {
                alert,
                workload,
                reply,
            } => {
                let result = self.open_incident(*alert, workload);
                if let Ok(id) = &result {
                    let _ = myself.send_message(PicardMsg::Advance(id.clone()));
                }
                let _ = reply.send(result);
            }
            PicardMsg::Advance(id) => match self.ctx.journal.load(&id) {
                Ok(incident) => self.start(&myself, state, &incident),
                Err(e) => tracing::error!(incident = %id, "cannot load incident: {e}"),
            },
            PicardMsg::ShardsHeld(leases) => {
                for id in self.ctx.journal.store().incident_ids()? {
                    if let Ok(inc) = self.ctx.journal.load(&id)
                        && !settled(inc.state)
                        && leases.contains(&self.ctx.ownership.lease_of(&inc.workload))
                    {
                        let _ = myself.send_message(PicardMsg::Advance(id));
                    }
                }
            }
            PicardMsg::ShardLost(lease) => {
                let leases = &state.leases;
                let stopped = state
                    .steps
                    .abort_where(|(id, _)| leases.get(id).is_some_and(|l| *l == lease));
                if stopped > 0 {
                    tracing::info!("{lease} lost: {stopped} step(s) in flight stopped");
                }
                state.leases.retain(|_, l| *l != lease);
            }
            PicardMsg::StepDone {
                incident,
                step,
                result,
            } => {
                let key = (incident.clone(), step);
                match (
                    state.steps.finished(&key, result.as_ref().map(|_| ())),
                    &result,
                ) {
                    (Outcome::Failed { attempt, next }, Err(e)) => {
                        self.failed(&myself, incident, step, e, attempt, next);
                    }
                    _ => {
                        // Injected faults fire between steps: mid-incident, with work done and
                        // work to do.
                        self.ctx.faults.check(Member::Picard);
                        let _ = myself.send_message(PicardMsg::Advance(incident));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
