//! Rollout stuck: the Deployment passed its progress deadline (`Progressing=False`,
//! `ProgressDeadlineExceeded`: `ReplicaSet "x" has timed out progressing.`) while its new pods
//! run without crashing but are not ready — the app answers its readiness endpoint with a 5xx
//! (it says it is not ready yet: warming a cache, building an index, migrating at boot) or no
//! probe has failed at all. Nothing is misconfigured and nothing is refused: the new version
//! takes longer to become ready than `progressDeadlineSeconds`, and the old ReplicaSet keeps
//! serving. (A probe answered 404 or refused is a misconfigured probe, not this family; a
//! crash, a pull or a refusal of the pods is theirs.) The family reads the condition, the new
//! pods' age and readiness events, the logs of the starting container and the last rollout's
//! change. The fix (a startupProbe and a progress deadline above the start-up time, or the
//! previous revision back when the slow start is a regression) comes with the remediations;
//! until then the crew escalates with the diagnosis.

use serde::{Deserialize, Serialize};
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::{
    Detection, Facts, Family, FollowupContext, IssueDraft, Readings, Remedy, RemedyInput,
    RepoNeeds, Runbook,
};

pub struct RolloutStuck;

pub const ROOT_CAUSE: &str = "rollout_stuck";

const FAILED: &str = "Readiness probe failed: ";

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckSignals {
    /// The condition's message.
    pub condition: String,
    /// How long the alerted pod has run without becoming ready, in seconds.
    pub unready_seconds: i64,
    /// The status its readiness endpoint answers, when a probe failed with one.
    pub readiness_status: Option<u16>,
    /// The last rollout's image change: (before, after).
    pub image_change: Option<(String, String)>,
}

/// The HTTP status of a failed probe's message (`HTTP probe failed with statuscode: 503`).
fn status_of(message: &str) -> Option<u16> {
    message
        .rsplit_once("statuscode: ")
        .and_then(|(_, code)| code.trim().parse().ok())
}

impl Family for RolloutStuck {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("ProgressDeadlineExceeded")
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let condition = facts.info.conditions.iter().find(|c| {
            c.kind == "Progressing" && c.status == "False" && c.reason == "ProgressDeadlineExceeded"
        })?;
        let pod = facts.pod.as_ref()?;
        let status = facts.status()?;
        if status.ready
            || status.state != "running"
            || status.restart_count > 0
            || status.last_termination.is_some()
        {
            return None;
        }
        // The probe's latest failure: a 5xx is the app saying it is not ready; anything else
        // (404, refused, timeout) is the probe's own family.
        let failure = facts
            .events
            .iter()
            .filter(|e| e.reason == "Unhealthy" && e.message.starts_with(FAILED))
            .max_by_key(|e| e.last_seen);
        let readiness_status = match failure {
            Some(e) => match status_of(&e.message) {
                Some(code) if code >= 500 => Some(code),
                _ => return None,
            },
            None => None,
        };
        let unready = facts.now - pod.created_at;
        let minutes = unready.num_minutes();
        let mut d = Detection::new(String::new(), 0.8, &[]);
        if let Some(e) = failure {
            d.evidence.push(Evidence {
                source: "kubelet events".into(),
                observation: format!(
                    "Unhealthy: {} ({} times since {})",
                    e.message,
                    e.count,
                    e.first_seen.to_rfc3339()
                ),
            });
        }
        d.evidence.push(Evidence {
            source: "pods".into(),
            observation: format!(
                "{} has run {minutes} min without becoming ready (no restart)",
                pod.name
            ),
        });
        for line in facts.logs.iter().rev().take(3).rev() {
            d.evidence.push(Evidence {
                source: "container logs".into(),
                observation: line.clone(),
            });
        }
        let image_change = crate::readings::last_rollout_change(facts, |r| {
            crate::readings::container_in(r, facts).map(|c| c.image.clone())
        });
        let change = match &image_change {
            Some(c) => {
                d.confidence = 0.85;
                format!(
                    "the rollout of revision {} ({}: {} → {})",
                    c.revision, c.ago, c.before, c.after
                )
            }
            None => "the last rollout".to_owned(),
        };
        let why = match readiness_status {
            Some(code) => {
                format!("their readiness endpoint answers {code}: the app says it is not ready yet")
            }
            None => "no readiness probe has failed: they are still starting".to_owned(),
        };
        d.summary = format!(
            "{change} is stuck: its new pods have run {minutes} min without becoming ready ({why}), past the Deployment's progress deadline; the previous ReplicaSet keeps serving"
        );
        d.recommendations.push(
            "read the new pods' start-up in their logs: if the slow start is expected, add a startupProbe and set progressDeadlineSeconds above the start-up time".into(),
        );
        if let Some(c) = &image_change {
            d.recommendations.push(format!(
                "if the slow start is a regression of {}, roll back to {} and fix the start-up",
                c.after, c.before
            ));
        }
        d.recommendations.push(
            "do not delete the readiness probe: it is what keeps the old pods serving".into(),
        );
        d.signals = serde_json::to_value(StuckSignals {
            condition: condition.message.clone(),
            unready_seconds: unready.num_seconds(),
            readiness_status,
            image_change: image_change.map(|c| (c.before, c.after)),
        })
        .ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the Deployment's progress deadline, rolling update and probes against the new pods' start-up time",
            ),
            (
                Member::Data,
                "what the new version does at start-up before it reports ready",
            ),
        ]
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds {
            manifest: true,
            history: true,
        }
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        // The release whose pods never become ready goes back to the image that rolled out: the
        // Deployment completes on the version that served, and the release ships again once its
        // start-up is fixed (or is measured, for a startupProbe and a longer deadline).
        let s: Option<StuckSignals> = crate::family_signals(d);
        let undo = s
            .as_ref()
            .and_then(|s| s.image_change.as_ref())
            .and_then(|_| crate::undo::find(input.repo, input.workload, None, &["image"]));
        let (Some(s), Some(undo)) = (s.as_ref(), undo) else {
            return Remedy::owned_by(
                "the release's owner",
                d,
                "decides between a startupProbe with a longer progress deadline (from the measured start-up) and a rollback; the last deploy did not change the image squad could go back to",
            );
        };
        let why = format!(
            "The release's pods have not become ready in {} min{} and the Deployment passed its progress deadline; the previous version's pods keep serving",
            s.unready_seconds / 60,
            s.readiness_status
                .map_or(String::new(), |c| format!(" (readiness answers {c})"))
        );
        let mut change = undo.change(input.workload, &why, "the release never becomes ready");
        change.notes.push_str(
            "\nRolling back completes the Deployment on the version that ran. To ship the release again: make its start-up fast, or measure it and give the container a startupProbe and the Deployment a `progressDeadlineSeconds` above it.\n",
        );
        Remedy::Change(change)
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "rollout-stuck".into(),
            meaning: "The Deployment passed `progressDeadlineSeconds` without its new ReplicaSet's pods becoming available (`Progressing=False`, `ProgressDeadlineExceeded`). Here the new pods run and do not crash, but are not ready: the app answers its readiness endpoint with 503 while it starts, and its start-up takes longer than the deadline. The old ReplicaSet keeps serving.".into(),
            checks: "1. `kubectl rollout status deploy/<name> -n <ns>` and `kubectl get rs -n <ns>`: the new ReplicaSet's ready count.\n2. `kubectl describe pod <new pod> -n <ns>`: `Unhealthy … statuscode: 503`, no restarts.\n3. `kubectl logs <new pod> -n <ns>`: what the app does at start-up, and how far it is.\n4. The GitOps diff of the last deploy: a new version, a start-up change, a smaller progress deadline.".into(),
            fixes: "- **Expected slow start**: a `startupProbe` sized to the start-up, and `progressDeadlineSeconds` above it.\n- **Regression**: roll back to the previous revision and fix the start-up (load a snapshot, warm lazily).\n- Never delete the readiness probe to get through: the pods would take traffic before they can serve it.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Measure {workload}'s start-up time in CI or staging for every release, and keep progressDeadlineSeconds above it."
            ),
            "A start-up that depends on data size grows with it: load a snapshot instead of rebuilding.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!("Bring {}'s start-up time down", cx.workload.name),
            body: format!(
                "During incident {} (#{}) the new pods of {} ran for longer than the progress deadline without becoming ready.\n\n\
                 1. Time the start-up of the release against the previous one (first log line to the first ready probe).\n\
                 2. Move work out of start-up (a prebuilt snapshot, lazy warm-up), or make it resumable.\n\
                 3. Reproduce: `kubectl logs -n {} {}` and `kubectl describe pod -n {} {}`.",
                cx.incident,
                cx.issue,
                cx.workload.name,
                cx.workload.namespace,
                cx.pod,
                cx.workload.namespace,
                cx.pod
            ),
            label: "performance".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::cluster::{ClusterEvent, WorkloadCondition};

    use super::*;
    use crate::testing;

    fn stuck(message: Option<&str>) -> Facts {
        let mut f = testing::facts("Completed", 0, |_| 80.0, |_| 10.0);
        let p = f.pod.as_mut().unwrap();
        p.created_at = f.now - chrono::Duration::minutes(34);
        p.containers[0].state = "running".into();
        p.containers[0].ready = false;
        p.containers[0].restart_count = 0;
        p.containers[0].last_termination = None;
        f.info.conditions = vec![WorkloadCondition {
            kind: "Progressing".into(),
            status: "False".into(),
            reason: "ProgressDeadlineExceeded".into(),
            message: "ReplicaSet \"cart-5d8f\" has timed out progressing.".into(),
        }];
        f.history[0].containers[0].image = "ghcr.io/acme/cart:1.4.0".into();
        f.history.last_mut().unwrap().containers[0].image = "ghcr.io/acme/cart:1.5.0".into();
        f.events = message
            .map(|m| ClusterEvent {
                kind: "Warning".into(),
                reason: "Unhealthy".into(),
                message: format!("Readiness probe failed: {m}"),
                count: 200,
                first_seen: f.now - chrono::Duration::minutes(33),
                last_seen: f.now,
                object: "Pod/cart-1".into(),
            })
            .into_iter()
            .collect();
        f.logs = vec!["warming the cache: 61%".into()];
        f
    }

    #[test]
    fn pods_that_answer_503_past_the_deadline_are_a_stuck_rollout() {
        let f = stuck(Some("HTTP probe failed with statuscode: 503"));
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert!(
            d.summary.contains("ghcr.io/acme/cart:1.4.0 → ghcr.io/acme/cart:1.5.0) is stuck: its new pods have run 34 min without becoming ready (their readiness endpoint answers 503: the app says it is not ready yet)"),
            "{}",
            d.summary
        );
        assert!(
            d.evidence
                .iter()
                .any(|e| e.observation == "warming the cache: 61%")
        );
        assert!(
            d.recommendations
                .iter()
                .any(|r| r.contains("roll back to ghcr.io/acme/cart:1.4.0"))
        );
        let reason = testing::escalation(&RolloutStuck, &d);
        assert!(reason.contains("startupProbe"), "{reason}");
    }

    #[test]
    fn a_misconfigured_probe_or_a_progressing_rollout_is_not_this_family() {
        for message in [
            "HTTP probe failed with statuscode: 404",
            "Get \"http://10.244.1.7:8081/healthz\": dial tcp 10.244.1.7:8081: connect: connection refused",
        ] {
            let f = stuck(Some(message));
            assert!(
                RolloutStuck.detect(&f, &Readings::of(&f)).is_none(),
                "{message}"
            );
        }
        let mut f = stuck(None);
        assert!(RolloutStuck.detect(&f, &Readings::of(&f)).is_some());
        f.info.conditions[0].status = "True".into();
        f.info.conditions[0].reason = "ReplicaSetUpdated".into();
        assert!(RolloutStuck.detect(&f, &Readings::of(&f)).is_none());
    }
}
