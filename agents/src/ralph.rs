//! Ralph — work monitor: follows the remediation PR to merge, verifies in the cluster over an
//! observation window that the fix holds and then that the incident's alert resolved, marks the
//! incident resolved or escalates.

mod alert;

use std::time::Duration;

use async_trait::async_trait;
use squad_config::charters;
use squad_diagnosis::{Observation, RolloutState, Rules, families};
use squad_protocols::{
    Action, Assignment, Author, EventKind, IncidentState, Member, PrState, Report, Task,
    Verification,
};

use squad_protocols::cluster::{ContainerStatus, PodInfo};
use squad_protocols::llm::Rejection;
use squad_runtime::CrewError;
use squad_runtime::ports::AlertQuery;

use crate::mind::{self, Ask, Tool};
use crate::specialist::Skill;
use crate::{CrewContext, effects};

pub fn charter() -> &'static str {
    charters::charter(Member::Ralph)
}

pub struct Ralph;

impl Ralph {
    /// Watches the workload for the configured window after the rollout, asks the family for
    /// its verdict on what was seen and, when the fix held, whether the incident's alert
    /// resolved.
    async fn observe(&self, ctx: &CrewContext, a: &Assignment) -> Result<Verification, CrewError> {
        let v = &ctx.settings.verification;
        let container = a
            .diagnosis
            .signals
            .memory
            .as_ref()
            .map(|m| m.container.clone())
            .or_else(|| {
                a.diagnosis
                    .signals
                    .crash
                    .as_ref()
                    .map(|c| c.container.clone())
            })
            .unwrap_or_default();
        // The container the diagnosis names, or (none named: an image, a volume, a Service)
        // every container of the pods.
        let watched = |p: &PodInfo| -> Vec<ContainerStatus> {
            if container.is_empty() {
                p.containers
                    .iter()
                    .chain(&p.init_containers)
                    .cloned()
                    .collect()
            } else {
                p.container(&container).cloned().into_iter().collect()
            }
        };
        let started = ctx.journal.clock().now();
        let restarts_before: u32 = ctx
            .cluster
            .pods_of(&a.workload)
            .await?
            .iter()
            .flat_map(watched)
            .map(|c| c.restart_count)
            .sum();
        let mut elapsed = 0;
        while elapsed < v.window_minutes {
            tokio::time::sleep(Duration::from_secs(v.poll_minutes * 60)).await;
            elapsed += v.poll_minutes;
        }
        let pods: Vec<_> = ctx
            .cluster
            .pods_of(&a.workload)
            .await?
            .into_iter()
            .filter(|p| p.deleted_at.is_none())
            .collect();
        let mut oom_kills = 0;
        let mut restarts = 0;
        for p in &pods {
            for c in watched(p) {
                restarts += c.restart_count;
                if c.last_termination
                    .as_ref()
                    .is_some_and(|t| t.reason == "OOMKilled" && t.finished_at >= started)
                {
                    oom_kills += 1;
                }
            }
        }
        let restarts = restarts.saturating_sub(if pods.iter().all(|p| p.created_at < started) {
            restarts_before
        } else {
            0
        });
        let info = ctx.cluster.workload(&a.workload).await?;
        // Memory is an app container's: the one named, else (an init container, or none named)
        // the one with the largest memory limit, the first when none has one.
        let memory_container = if info.containers.iter().any(|c| c.name == container) {
            container.clone()
        } else {
            info.containers
                .iter()
                .rev()
                .max_by_key(|c| c.limits.get("memory").map(|q| q.bytes()))
                .map_or_else(|| container.clone(), |c| c.name.clone())
        };
        let limit = info
            .container(&memory_container)
            .and_then(|c| c.limits.get("memory").copied());
        let window = Duration::from_secs(v.window_minutes * 60);
        let memory = ctx
            .cluster
            .memory_working_set(
                &a.workload,
                &memory_container,
                window,
                Duration::from_secs(60),
            )
            .await?;
        // Best effort: without traffic, memory's whole trend is projected.
        let traffic = match ctx
            .cluster
            .request_rates(&a.workload, window, Duration::from_secs(60))
            .await
        {
            Ok(rates) => squad_diagnosis::readings::total_rate(&rates),
            Err(e) => {
                tracing::debug!(error = %e, "no request rates for the verification");
                Vec::new()
            }
        };
        // Best effort, and only what the family's verdict reads: the CFS throttling, the
        // volumes, the namespace's Services, HPAs and claims.
        let family = families::of(&a.diagnosis.root_cause);
        let needs = family.verify_needs();
        fn best<T: Default>(what: &str, e: squad_runtime::ports::PortError) -> T {
            tracing::debug!(error = %e, "no {what} for the verification");
            T::default()
        }
        let step = Duration::from_secs(60);
        let throttled = if needs.throttling {
            match ctx.cluster.cpu(&a.workload, &container, window, step).await {
                Ok(cpu) => cpu.throttled,
                Err(e) => best("CPU history", e),
            }
        } else {
            Vec::new()
        };
        let mut volumes = Vec::new();
        for claim in info.claims.iter().filter(|_| needs.volumes) {
            match ctx.cluster.volume(&a.workload, claim, window, step).await {
                Ok(v) => volumes.push(v),
                Err(e) => best::<()>("volume stats", e),
            }
        }
        let ns = &a.workload.namespace;
        let services = if needs.services {
            ctx.cluster
                .services(ns)
                .await
                .unwrap_or_else(|e| best("Services", e))
        } else {
            Vec::new()
        };
        let hpas = if needs.hpas {
            ctx.cluster
                .hpas(ns)
                .await
                .unwrap_or_else(|e| best("HPAs", e))
        } else {
            Vec::new()
        };
        let claims = if needs.claims {
            ctx.cluster
                .claims(ns)
                .await
                .unwrap_or_else(|e| best("claims", e))
        } else {
            Vec::new()
        };
        // The pods' warning events once the rollout has settled: the second half of the window.
        let settled = started + chrono::Duration::seconds((v.window_minutes * 30) as i64);
        let mut warnings = Vec::new();
        for p in &pods {
            match ctx.cluster.events(ns, &p.name).await {
                Ok(events) => warnings.extend(
                    events
                        .into_iter()
                        .filter(|e| e.kind == "Warning" && e.last_seen >= settled),
                ),
                Err(e) => best::<()>("events", e),
            }
        }
        let observation = Observation {
            window_minutes: v.window_minutes,
            restarts,
            oom_kills,
            memory,
            limit,
            traffic,
            rollout: Some(rollout_state(&pods, info.replicas)),
            throttled,
            volumes,
            services,
            hpas,
            claims,
            warnings,
        };
        // The family decides from what was observed whether its fix held; warnings on the pods
        // after the rollout settled overrule it.
        let verdict = family.verify(&a.diagnosis, &observation, &Rules::of(&ctx.settings));
        let mut verdict = squad_diagnosis::verdict::with_warnings(verdict, &observation);
        // The fix held: the original alert must resolve too, the workload's current pods
        // standing in for the one it named.
        if verdict.healthy {
            let incident = ctx.journal.load(&a.incident)?;
            let query = AlertQuery::of(
                &incident.alert,
                &a.workload,
                pods.iter().map(|p| p.name.clone()).collect(),
            );
            let state = alert::after_window(
                ctx.alerts.as_deref(),
                &query,
                incident.alert_resolved,
                v.poll_minutes,
                v.alert_grace_minutes,
            )
            .await;
            alert::conclude(&state, &incident.alert.name, &mut verdict);
        }
        Ok(verdict)
    }
}

/// The workload's pods against the replicas it asks for: which are Ready, and why the others
/// are not.
fn rollout_state(pods: &[PodInfo], desired: u32) -> RolloutState {
    let not_ready: Vec<String> = pods
        .iter()
        .filter_map(|p| p.not_ready().map(|why| format!("{}: {why}", p.name)))
        .collect();
    RolloutState {
        desired,
        ready: (pods.len() - not_ready.len()) as u32,
        not_ready,
    }
}

#[async_trait]
impl Skill for Ralph {
    fn member(&self) -> Member {
        Member::Ralph
    }

    async fn perform(&self, ctx: &CrewContext, a: &Assignment) -> Result<Report, CrewError> {
        let Task::MonitorRemediation {
            pr: Some(pr),
            replay,
        } = &a.task
        else {
            return Ok(Report::new(Member::Ralph, "no remediation PR to follow"));
        };
        let v = &ctx.settings.verification;
        let poll = Duration::from_secs(v.poll_minutes * 60);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(v.merge_wait_hours * 3600);
        let state = loop {
            let s = ctx.forge.pr_state(pr.number).await?;
            if s != PrState::Open || tokio::time::Instant::now() + poll > deadline {
                break s;
            }
            // The next poll, sooner when a webhook says something happened to the PR.
            ctx.wakeups.sleep(pr.number, poll).await;
        };
        match state {
            PrState::Open => {
                // What reviewers and CI say so far, when the forge knows (GitHub does).
                let activity = match ctx.forge.pr_activity(pr.number).await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("reviews and checks of PR #{} unreadable: {e}", pr.number);
                        Default::default()
                    }
                };
                let described = activity
                    .describe()
                    .map_or(String::new(), |d| format!(" ({d})"));
                // A reviewer asked for changes: the fix waits for a revised PR, and the issue
                // says so once.
                let wanted: Vec<&str> = activity
                    .reviews
                    .iter()
                    .filter(|(_, state)| state == "changes_requested")
                    .map(|(by, _)| by.as_str())
                    .collect();
                if !wanted.is_empty() {
                    effects::comment_once(
                        ctx,
                        &a.incident,
                        Member::Ralph,
                        "changes-requested",
                        a.issue.number,
                        &format!(
                            "**Ralph** (work monitor): {} requested changes on PR #{}. The incident stays open awaiting a revised PR: squad does not push to a PR under review. Revise it (or close it, and the incident escalates), and Ralph follows it from there.",
                            wanted.join(", "),
                            pr.number
                        ),
                    )
                    .await?;
                    return Ok(Report::new(
                        Member::Ralph,
                        format!(
                            "PR #{} open with changes requested by {}{described}; awaiting a revised PR",
                            pr.number,
                            wanted.join(", ")
                        ),
                    ));
                }
                Ok(Report::new(
                    Member::Ralph,
                    format!("PR #{} open, pending merge{described}", pr.number),
                ))
            }
            PrState::Closed => {
                effects::comment_once(ctx, &a.incident, Member::Ralph, "pr-closed", a.issue.number, &format!("**Ralph** (work monitor): PR #{} was closed without merging; escalating to a human, who decides the fix (reopen the PR, or make another change) and closes this issue when the cluster is healthy.", pr.number)).await?;
                ctx.journal.transition(
                    &a.incident,
                    Author::Ralph,
                    IncidentState::Escalated,
                    "remediation PR closed without merge",
                )?;
                Ok(Report::new(
                    Member::Ralph,
                    format!("PR #{} closed without merge; escalated", pr.number),
                ))
            }
            PrState::Merged => {
                ctx.journal.transition(
                    &a.incident,
                    Author::Ralph,
                    IncidentState::Verifying,
                    &format!("PR #{} merged; watching the rollout", pr.number),
                )?;
                let mut verification = self.observe(ctx, a).await?;
                // The replay's prediction, beside the verdict: was the world model right?
                let predicted = match replay {
                    Some(replay) => {
                        let right = replay.holds() == verification.healthy;
                        let said = format!(
                            "the replay over {} h before the PR predicted that the fix {} ({})",
                            replay.horizon_hours,
                            if replay.holds() {
                                "holds"
                            } else {
                                "does not hold"
                            },
                            replay.with.describe()
                        );
                        let line = format!(
                            " {}; the cluster {} it: the replay was {}.",
                            capitalise(&said),
                            if right { "agrees with" } else { "contradicts" },
                            if right { "right" } else { "wrong" }
                        );
                        verification.prediction = Some(said);
                        verification.prediction_right = Some(right);
                        line
                    }
                    None => String::new(),
                };
                let handover = handover(ctx, a, pr.number, &verification).await;
                let mut r = Report::new(Member::Ralph, String::new());
                if verification.healthy {
                    effects::comment_once(ctx, &a.incident, Member::Ralph, "resolved", a.issue.number, &format!("**Ralph** (work monitor): PR #{} merged and rolled out. Verified over {} min: {}.{predicted} Resolving.{handover}", pr.number, verification.window_minutes, verification.detail)).await?;
                    effects::set_issue_open_once(
                        ctx,
                        &a.incident,
                        Member::Ralph,
                        "close-issue",
                        a.issue.number,
                        false,
                    )
                    .await?;
                    r.actions.push(Action::ClosedIssue {
                        issue: a.issue.number,
                    });
                    r.summary = format!(
                        "PR #{} merged; verified healthy: {}",
                        pr.number, verification.detail
                    );
                } else {
                    effects::comment_once(ctx, &a.incident, Member::Ralph, "not-holding", a.issue.number, &format!("**Ralph** (work monitor): PR #{} merged, but the fix does not hold: {}.{predicted} Not resolving; escalating to a human.{handover}", pr.number, verification.detail)).await?;
                    r.summary = format!(
                        "PR #{} merged; NOT healthy: {}",
                        pr.number, verification.detail
                    );
                }
                // Recorded last: once it is in the log, Picard concludes on it.
                ctx.journal.record(
                    &a.incident,
                    Author::Ralph,
                    EventKind::Verified {
                        verification: verification.clone(),
                    },
                )?;
                Ok(r)
            }
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// What Ralph's model adds to the verdict: a note for the humans who read the issue.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Handover {
    /// What the verification shows, in one or two sentences.
    pub note: String,
    /// What a human should do or watch next (at most 4).
    pub next_steps: Vec<String>,
}

/// The tools Ralph's model may use.
pub const TOOLS: &[Tool] = &[
    Tool::PrState,
    Tool::Pods,
    Tool::PodEvents,
    Tool::MemoryHistory,
    Tool::RequestRates,
];

/// Ralph decides by measurement: a note that contradicts the verdict is rejected.
pub fn check_handover(h: &Handover, healthy: bool) -> Result<(), Rejection> {
    let note = mind::clean_text(&h.note, 800, "note")?.to_lowercase();
    if h.next_steps.len() > 4 {
        return Err(Rejection::from("more than 4 next steps"));
    }
    for (i, step) in h.next_steps.iter().enumerate() {
        mind::clean_text(step, 300, &format!("next_steps[{i}]"))?;
    }
    let says_failed = [
        "not healthy",
        "does not hold",
        "not resolved",
        "failed",
        "regress",
    ]
    .iter()
    .any(|w| note.contains(w));
    if healthy && says_failed {
        return Err(Rejection::from(
            "the note says the fix failed, but the verification measured it healthy",
        ));
    }
    if !healthy && !says_failed {
        return Err(Rejection::from(
            "the note does not say the fix does not hold, but the verification measured it unhealthy",
        ));
    }
    if !healthy && h.next_steps.is_empty() {
        return Err(Rejection::from(
            "an unhealthy verdict needs next steps for the human",
        ));
    }
    Ok(())
}

async fn handover(ctx: &CrewContext, a: &Assignment, pr: u64, v: &Verification) -> String {
    let thought = mind::deliberate(
        ctx,
        Ask {
            member: Member::Ralph,
            assignment: a,
            task: format!(
                "PR #{pr} is merged and the verification is in (it decides: {}). Write the note for the humans following the incident issue and what they should do or watch next.",
                if v.healthy { "healthy" } else { "NOT healthy" }
            ),
            context: format!(
                "Verification over {} min: healthy = {}; OOM kills {}, restarts {}; {}",
                v.window_minutes, v.healthy, v.oom_kills, v.restarts, v.detail
            ),
            proposal: Handover {
                note: if v.healthy {
                    format!("PR #{pr} rolled out and the workload held for {} min: {}.", v.window_minutes, v.detail)
                } else {
                    format!("PR #{pr} rolled out but the fix does not hold: {}.", v.detail)
                },
                next_steps: if v.healthy {
                    Vec::new()
                } else {
                    vec!["Review the measurements in this issue and decide on the next change; squad will not resolve it.".into()]
                },
            },
            tools: TOOLS,
        },
        |h| check_handover(h, v.healthy),
    )
    .await;
    let Some(model) = thought.by_model else {
        return String::new();
    };
    let mut out = format!("\n\n{}", thought.answer.note.trim());
    for step in &thought.answer.next_steps {
        out.push_str(&format!("\n- [ ] {}", step.trim()));
    }
    out.push_str(&format!(
        "\n\n_Note written with {model}; the verdict comes from the measurements._"
    ));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn note(note: &str, next: &[&str]) -> Handover {
        Handover {
            note: note.into(),
            next_steps: next.iter().map(|s| (*s).into()).collect(),
        }
    }

    #[test]
    fn a_note_may_not_contradict_the_measured_verdict() {
        assert!(check_handover(&note("The rollout held for the whole window.", &[]), true).is_ok());
        assert!(check_handover(&note("The fix failed after the rollout.", &[]), true).is_err());
        assert!(
            check_handover(&note("The rollout held for the whole window.", &[]), false)
                .unwrap_err()
                .0
                .contains("does not say the fix does not hold")
        );
        assert!(
            check_handover(
                &note("Memory still grows: the fix does not hold.", &[]),
                false
            )
            .unwrap_err()
            .0
            .contains("needs next steps")
        );
        assert!(
            check_handover(
                &note(
                    "Memory still grows: the fix does not hold.",
                    &["Profile the handler under load."]
                ),
                false
            )
            .is_ok()
        );
        let five = ["Check the dashboard now."; 5];
        assert!(
            check_handover(&note("The rollout held for the whole window.", &five), true).is_err()
        );
    }
}
