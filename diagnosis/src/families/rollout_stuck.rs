//! Rollout stuck: the Deployment passed its progress deadline (`Progressing=False`,
//! `ProgressDeadlineExceeded`: `ReplicaSet "x" has timed out progressing.`) while its new pods
//! run without crashing but are not ready — the app answers its readiness endpoint with a 5xx
//! (it says it is not ready yet: warming a cache, building an index, migrating at boot) or no
//! probe has failed at all. Nothing is misconfigured and nothing is refused: the new version
//! takes longer to become ready than `progressDeadlineSeconds`, and the old ReplicaSet keeps
//! serving. (A probe answered 404 or refused is a misconfigured probe, not this family; a
//! crash, a pull or a refusal of the pods is theirs.) The family reads the condition, the new
//! pods' age and readiness events, the logs of the starting container and the last rollout's
//! change. The fix: when the last deploy lowered `progressDeadlineSeconds` and the pods have not
//! yet been unready for as long as the deadline before it allowed, that line goes back (the
//! release gets the time that ran before; a startupProbe sized to the start-up is the lasting
//! fix); otherwise, when the last deploy changed the image, the previous image back (the slow
//! start is a regression); without either, the release's owner decides.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};
use squad_runtime::ports::FileVersion;

use crate::undo::Undo;
use crate::{
    Change, Detection, Facts, Family, FollowupContext, IssueDraft, Readings, Remedy, RemedyInput,
    RepoNeeds, RepoObject, Runbook,
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

/// The Deployment's `progressDeadlineSeconds`, and what the controller takes when it is unset.
const DEADLINE: &[&str] = &["spec", "progressDeadlineSeconds"];
const DEFAULT_DEADLINE_SECONDS: i64 = 600;

/// The last deploy's lowering of the Deployment's progress deadline: the undo of that line, and
/// the deadline before and after it, in seconds.
struct LoweredDeadline<'r> {
    undo: Undo<'r>,
    before: i64,
    after: i64,
}

/// The progress deadline one version of the manifest gives the workload (the controller's 600
/// when it sets none); `None` when it does not read as seconds.
fn deadline_in(version: &FileVersion, obj: &RepoObject) -> Option<i64> {
    let doc = squad_gitops::objects::parse(&obj.path, &version.content)
        .ok()?
        .into_iter()
        .find(|o| {
            squad_gitops::objects::kind(o) == obj.kind && squad_gitops::objects::name(o) == obj.name
        })?;
    match DEADLINE.iter().fold(&doc, |v, k| &v[*k]) {
        Value::Null => Some(DEFAULT_DEADLINE_SECONDS),
        v => v.as_i64(),
    }
}

/// The newest change of the workload's progress deadline, when it lowered it and was made by
/// the last deploy (the newest version that changed the pod template) or after it: the deadline
/// that stopped this rollout is not the one that ran before it. `None` when the deadline was
/// raised, left alone, or lowered by an older deploy that has run since.
fn lowered_deadline<'r>(w: &WorkloadRef, obj: &'r RepoObject) -> Option<LoweredDeadline<'r>> {
    let undo = crate::undo::find_keys(obj, &[DEADLINE])?;
    let rollout = crate::undo::find_keys(obj, &[crate::undo::template_keys(&w.kind)])?;
    let position = |v: &FileVersion| obj.history.iter().position(|h| h.commit == v.commit);
    if position(undo.deploy)? > position(rollout.deploy)? {
        return None;
    }
    let (before, after) = (
        deadline_in(undo.before, obj)?,
        deadline_in(undo.deploy, obj)?,
    );
    (after < before).then_some(LoweredDeadline {
        undo,
        before,
        after,
    })
}

/// The pull request that gives the release back the deadline that ran before: exactly the line
/// the deploy lowered, the commit named.
fn restore_deadline(w: &WorkloadRef, s: &StuckSignals, lowered: &LoweredDeadline<'_>) -> Change {
    let minutes = s.unready_seconds / 60;
    let answers = s
        .readiness_status
        .map_or(String::new(), |c| format!(", readiness answers {c}"));
    let why = format!(
        "The release's pods are starting, not failing: unready for {minutes} min (no restart, no crash{answers}). The Deployment gave up at the {} s progress deadline it was given; under the {} s deadline that ran before, this rollout would still be progressing",
        lowered.after, lowered.before
    );
    let mut change = lowered.undo.change(
        w,
        &why,
        "the deploy lowered the progress deadline below the release's start-up",
    );
    let image = s.image_change.as_ref().map_or(String::new(), |(before, after)| {
        format!(
            " The image stays {after}; if its pods are still not ready when that time has passed, the slow start is a regression, and the way back is {before}."
        )
    });
    change.notes.push_str(&format!(
        "\nThis gives the release the time the previous deadline allowed ({} min; its pods have been starting for {minutes} min).{image} The lasting fix is a `startupProbe` sized to the measured start-up (at least {minutes} min so far: `failureThreshold × periodSeconds` above it), with `progressDeadlineSeconds` above it, so that a template change cannot cut the start-up short again.\n",
        lowered.before / 60
    ));
    change
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
        let s: Option<StuckSignals> = crate::family_signals(d);
        // The deploy lowered the deadline that stopped the release, and its pods (starting: no
        // restart, no crash) are still within the deadline that ran before: that line goes
        // back, the release kept.
        if let Some(s) = &s {
            let obj = input.repo.workload(input.workload);
            if let Some(lowered) =
                lowered_deadline(input.workload, &obj).filter(|l| s.unready_seconds < l.before)
            {
                return Remedy::Change(restore_deadline(input.workload, s, &lowered));
            }
        }
        // Otherwise the release whose pods never become ready goes back to the image that rolled
        // out: the Deployment completes on the version that served, and the release ships again
        // once its start-up is fixed (or is measured, for a startupProbe and a longer deadline).
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
    use squad_runtime::ports::FileVersion;

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

    /// The cart Deployment with `image` and, when given, `progressDeadlineSeconds`.
    fn manifest(image: &str, deadline: Option<u32>) -> String {
        let deadline = deadline.map_or(String::new(), |d| {
            format!("  progressDeadlineSeconds: {d} # room for the start-up\n")
        });
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\nspec:\n  replicas: 3\n{deadline}  template:\n    spec:\n      containers:\n        - name: api\n          image: ghcr.io/acme/cart:{image}\n          readinessProbe:\n            httpGet:\n              path: /ready\n              port: 8080\n"
        )
    }

    /// The manifest's versions, newest first (the newest is the repository's text).
    fn repo(versions: &[(&str, String)]) -> crate::RepoView {
        crate::RepoView {
            path: "apps/cart/deployment.yaml".into(),
            text: versions[0].1.clone(),
            history: versions
                .iter()
                .enumerate()
                .map(|(i, (commit, content))| FileVersion {
                    commit: (*commit).into(),
                    at: testing::now() - chrono::Duration::hours(i as i64),
                    message: format!("cart: deploy {commit}"),
                    content: content.clone(),
                })
                .collect(),
            layers: Vec::new(),
            objects: Vec::new(),
        }
    }

    /// The remedy for pods unready for `minutes` against `repo`.
    fn remedy(minutes: i64, repo: &crate::RepoView) -> Remedy {
        let mut f = stuck(Some("HTTP probe failed with statuscode: 503"));
        f.pod.as_mut().unwrap().created_at = f.now - chrono::Duration::minutes(minutes);
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        let (settings, w) = (testing::settings(), testing::workload());
        let cluster = crate::ClusterView::default();
        RolloutStuck.remedy(&d, &testing::input(&settings, &w, repo, &cluster))
    }

    fn change(remedy: Remedy) -> Change {
        match remedy {
            Remedy::Change(c) => c,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    /// The manifest after the change.
    fn applied(c: &Change, repo: &crate::RepoView) -> String {
        let files = std::collections::BTreeMap::from([(repo.path.clone(), repo.text.clone())]);
        squad_gitops::apply(&c.edits, &files).unwrap()[0].1.clone()
    }

    fn rolls_the_image_back(c: &Change) -> bool {
        matches!(c.edits.as_slice(), [crate::Edit::SetContainerKey { key, .. }] if key == "image")
    }

    #[test]
    fn a_deadline_the_deploy_lowered_goes_back_while_the_release_is_within_the_old_one() {
        let r = repo(&[
            ("bbbbbbbbbb", manifest("1.5.0", Some(600))),
            ("aaaaaaaaaa", manifest("1.4.0", Some(3600))),
        ]);
        let c = change(remedy(34, &r));
        assert_eq!(
            c.title,
            "fix(infra): restore spec.progressDeadlineSeconds of Deployment/cart from before bbbbbbbb"
        );
        // Exactly the deadline line, its comment kept; the release's image stays.
        assert_eq!(
            applied(&c, &r),
            manifest("1.5.0", Some(600)).replace(": 600 #", ": 3600 #")
        );
        for words in [
            "unready for 34 min (no restart, no crash, readiness answers 503)",
            "gave up at the 600 s progress deadline it was given; under the 3600 s deadline that ran before, this rollout would still be progressing",
            "the time the previous deadline allowed (60 min",
            "The image stays ghcr.io/acme/cart:1.5.0",
            "a `startupProbe` sized to the measured start-up (at least 34 min so far",
        ] {
            assert!(c.notes.contains(words), "{words}: {}", c.notes);
        }
        // A deadline the deploy removed goes back too (unset, the controller's 600 ran).
        let r = repo(&[
            ("bbbbbbbbbb", manifest("1.5.0", None)),
            ("aaaaaaaaaa", manifest("1.4.0", Some(3600))),
        ]);
        let c = change(remedy(34, &r));
        assert!(c.title.contains("progressDeadlineSeconds"), "{}", c.title);
        assert!(
            applied(&c, &r).contains("progressDeadlineSeconds: 3600"),
            "{}",
            applied(&c, &r)
        );
    }

    #[test]
    fn the_image_goes_back_when_the_deadline_is_not_what_stopped_the_release() {
        let lowered = repo(&[
            ("bbbbbbbbbb", manifest("1.5.0", Some(600))),
            ("aaaaaaaaaa", manifest("1.4.0", Some(3600))),
        ]);
        // Unready for longer than even the previous deadline: the slow start is a regression.
        assert!(rolls_the_image_back(&change(remedy(75, &lowered))));
        // The deploy left the deadline alone, or raised it.
        for (before, after) in [(Some(600), Some(600)), (None, None), (Some(600), Some(900))] {
            let r = repo(&[
                ("bbbbbbbbbb", manifest("1.5.0", after)),
                ("aaaaaaaaaa", manifest("1.4.0", before)),
            ]);
            assert!(
                rolls_the_image_back(&change(remedy(34, &r))),
                "{before:?} → {after:?}"
            );
        }
        // Unset before (the controller's 600), 300 now: 34 min is past both.
        let r = repo(&[
            ("bbbbbbbbbb", manifest("1.5.0", Some(300))),
            ("aaaaaaaaaa", manifest("1.4.0", None)),
        ]);
        assert!(rolls_the_image_back(&change(remedy(34, &r))));
        // Lowered by an older deploy that rolled out fine since: not this release's deadline.
        let r = repo(&[
            ("cccccccccc", manifest("1.5.0", Some(600))),
            ("bbbbbbbbbb", manifest("1.4.0", Some(600))),
            ("aaaaaaaaaa", manifest("1.3.0", Some(3600))),
        ]);
        assert!(rolls_the_image_back(&change(remedy(34, &r))));
    }

    #[test]
    fn a_deadline_lowered_after_the_rollout_began_is_the_one_that_stopped_it() {
        let r = repo(&[
            ("cccccccccc", manifest("1.5.0", Some(600))),
            ("bbbbbbbbbb", manifest("1.5.0", Some(3600))),
            ("aaaaaaaaaa", manifest("1.4.0", Some(3600))),
        ]);
        let c = change(remedy(34, &r));
        // That commit changed nothing else: its whole revert.
        assert_eq!(
            c.title,
            "revert \"cart: deploy cccccccccc\" (cccccccc) in deployment.yaml: cart"
        );
        assert_eq!(applied(&c, &r), manifest("1.5.0", Some(3600)));
    }
}
