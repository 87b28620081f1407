//! Admission refused: the apiserver refuses the pods a ReplicaSet asks for, for a reason other
//! than a ResourceQuota or a LimitRange (those are `quota_or_limit_range`'s, listed before this
//! one): Pod Security admission (`pods "x" is forbidden: violates PodSecurity "restricted:latest":
//! allowPrivilegeEscalation != false (container "api" must set …)`), a validating or mutating
//! webhook (`admission webhook "…" denied the request: …`, or `failed calling webhook "…"` when
//! it is down), or a ServiceAccount that does not exist (`error looking up service account
//! shop/api: serviceaccount "api" not found`). The controller records `FailedCreate` on the
//! ReplicaSet; no pod exists; the rollout stalls with the previous ReplicaSet serving. Usually
//! the last deploy changed what is refused (a securityContext, a ServiceAccount), and the family
//! says what that rollout changed; a webhook that is down is the platform's. The crew escalates
//! with the apiserver's words.
//!
//! Pod Security's `restricted` level, when the template sets no securityContext, gets a PR that
//! answers exactly the refusal's checks ([`restricted`]). One of them, `runAsNonRoot: true`, is a
//! promise about the image that admission does not check and squad cannot read (the registry's
//! image config is not fetched): the kubelet checks it when it creates the container, and
//! refuses an image that runs as root (`CreateContainerConfigError`: `container has runAsNonRoot
//! and image will run as root`, [`non_root`]). So the PR is replayed before it is proposed; when
//! the replay shows its pods admitted and then refused at container creation, the fix does not
//! hold and the escalation names the app's owners ([`Family::replay_failed`]): a non-root UID
//! the image's files allow (a numeric `USER` rebuilt into the image, or a `runAsUser`) is theirs
//! to choose, and squad does not pick one. Without a world model to replay in, Ralph's verdict
//! after the merge is the proof: the pods show the kubelet's refusal, the incident reopens, and
//! this family reads that refusal ([`Refuser::RunAsNonRoot`]) and escalates to the same owners
//! up front.

use serde::{Deserialize, Serialize};
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::families::quota_or_limit_range;
use crate::readings::last_rollout_change;
use crate::{Detection, Facts, Family, IssueDraft, Readings, Remedy, RemedyInput, Runbook};

mod non_root;
mod restricted;

pub struct AdmissionRefused;

pub const ROOT_CAUSE: &str = "admission_refused";

/// What refused the pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refuser {
    /// Pod Security admission, with the level (`restricted:latest`) and what the pod violates.
    PodSecurity {
        level: String,
        violations: String,
    },
    /// A webhook that denied the pod, or that could not be called.
    Webhook {
        name: String,
        reachable: bool,
    },
    /// The pod's ServiceAccount does not exist.
    ServiceAccount {
        name: String,
    },
    /// Admitted, but the kubelet refuses to create the container: `runAsNonRoot` and an image
    /// that runs as root (or as a user it cannot verify), in its words ([`non_root`]).
    RunAsNonRoot {
        container: String,
        words: String,
    },
    Other,
}

fn quoted(s: &str) -> Option<&str> {
    let rest = s.split_once('"')?.1;
    Some(rest.split_once('"')?.0)
}

/// The apiserver's refusal in a controller's `FailedCreate`: the ReplicaSet's `Error creating:
/// …`, or the StatefulSet's and DaemonSet's `create Pod x in StatefulSet y failed error: …`.
fn refusal(message: &str) -> Option<&str> {
    message
        .strip_prefix("Error creating: ")
        .or_else(|| message.split_once(" failed error: ").map(|x| x.1))
}

/// What the apiserver's refusal message names.
pub fn refuser(message: &str) -> Refuser {
    if let Some(rest) = message.split_once("violates PodSecurity ").map(|x| x.1) {
        let level = quoted(rest).unwrap_or("").to_owned();
        let violations = rest
            .split_once(": ")
            .map_or(String::new(), |x| x.1.trim().to_owned());
        return Refuser::PodSecurity { level, violations };
    }
    if let Some(rest) = message.split_once("admission webhook ").map(|x| x.1) {
        return Refuser::Webhook {
            name: quoted(rest).unwrap_or("").to_owned(),
            reachable: true,
        };
    }
    if let Some(rest) = message.split_once("failed calling webhook ").map(|x| x.1) {
        return Refuser::Webhook {
            name: quoted(rest).unwrap_or("").to_owned(),
            reachable: false,
        };
    }
    if let Some(rest) = message.split_once("serviceaccount ").map(|x| x.1)
        && message.contains("not found")
    {
        return Refuser::ServiceAccount {
            name: quoted(rest).unwrap_or("").to_owned(),
        };
    }
    Refuser::Other
}

/// What the last rollout changed that Pod Security judges: the containers' security settings,
/// or, when those are as before, that the template already broke the level (pods are judged
/// only when created, so the namespace's level was raised after the previous rollout).
fn security_change(facts: &Facts) -> String {
    let security = |r: &squad_protocols::cluster::Revision| {
        Some(
            r.containers
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        c.run_as_non_root,
                        c.privileged,
                        c.allow_privilege_escalation,
                    )
                })
                .collect::<Vec<_>>(),
        )
    };
    if let Some(c) = last_rollout_change(facts, security) {
        let changed: Vec<&str> = c
            .after
            .iter()
            .filter(|a| !c.before.contains(a))
            .map(|a| a.0.as_str())
            .collect();
        return format!(
            "; revision {} ({}) changed the securityContext of {}",
            c.revision,
            c.ago,
            if changed.is_empty() {
                "its containers".to_owned()
            } else {
                format!("container(s) {}", changed.join(", "))
            }
        );
    }
    let [.., _, last] = facts.history.as_slice() else {
        return String::new();
    };
    format!(
        "; revision {} ({}) left the containers' securityContext as it was: the template already broke this level, so the namespace began enforcing it after the previous rollout (admission judges pods only when they are created, which is why the old pods run)",
        last.revision,
        crate::readings::ago(facts.now - last.at)
    )
}

/// The pods admitted, and the kubelet refusing their container for `runAsNonRoot`
/// ([`non_root`]): the image runs as root (or as a user it cannot verify).
fn kubelet_refusal(facts: &Facts) -> Option<Detection> {
    let r = non_root::refusal(facts)?;
    let container = if r.container.is_empty() {
        facts.container.clone()
    } else {
        r.container.clone()
    };
    let mut d = Detection::new(String::new(), 0.85, &[]);
    d.evidence.push(Evidence {
        source: "kubelet events".into(),
        observation: format!(
            "{} on {} ({} times since {}): {}",
            r.event.reason,
            r.event.object,
            r.event.count,
            r.event.first_seen.to_rfc3339(),
            r.event.message
        ),
    });
    d.recommendations.push(
        "the app's owners give the image a numeric non-root USER (or set a runAsUser its files allow); read the image's user with `crane config <image> | jq -r .config.User`".into(),
    );
    d.summary = format!(
        "{}'s pods are admitted but their container {container} never starts: the kubelet refuses it (CreateContainerConfigError): {} ({})",
        facts.workload.name, r.meaning, r.words
    );
    d.signals = serde_json::to_value(Refuser::RunAsNonRoot {
        container,
        words: r.words.to_owned(),
    })
    .ok();
    Some(d)
}

impl Family for AdmissionRefused {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("FailedCreate")
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let Some(event) = facts
            .rollout_events
            .iter()
            .filter(|e| e.reason == "FailedCreate" && refusal(&e.message).is_some())
            .filter(|e| {
                // A quota or a LimitRange is the other family's.
                e.message
                    .split_once(" is forbidden: ")
                    .is_none_or(|(_, reason)| quota_or_limit_range::parse(reason).is_none())
            })
            .max_by_key(|e| e.last_seen)
        else {
            return kubelet_refusal(facts);
        };
        let message = refusal(&event.message)?;
        let refuser = refuser(message);
        let owner = event
            .object
            .split_once('/')
            .map_or(event.object.as_str(), |x| x.1);
        let mut d = Detection::new(String::new(), 0.85, &[]);
        d.evidence.push(Evidence {
            source: "ReplicaSet events (replicaset-controller)".into(),
            observation: format!(
                "FailedCreate on {owner}: {} ({} times since {})",
                event.message,
                event.count,
                event.first_seen.to_rfc3339()
            ),
        });
        let what = match &refuser {
            Refuser::PodSecurity { level, violations } => {
                d.recommendations.push(format!(
                    "make the pod template meet Pod Security \"{level}\" (what it violates: {violations}), or have the platform team decide on the namespace's level"
                ));
                format!("Pod Security admission ({level}) refuses them: {violations}")
            }
            Refuser::Webhook {
                name,
                reachable: true,
            } => {
                d.recommendations.push(format!(
                    "read webhook {name}'s policy (its ValidatingWebhookConfiguration or MutatingWebhookConfiguration, and the policy engine behind it) and change the pod template to pass it, or ask its owners"
                ));
                format!("admission webhook {name} denies them")
            }
            Refuser::Webhook {
                name,
                reachable: false,
            } => {
                d.recommendations.push(format!(
                    "webhook {name} cannot be called: its Service and pods (the platform's); with `failurePolicy: Fail` nothing it covers can be created until it answers"
                ));
                format!("admission webhook {name} cannot be called, and it fails closed")
            }
            Refuser::ServiceAccount { name } => {
                d.recommendations.push(format!(
                    "create ServiceAccount {name} in {} (through the GitOps repo) or point the pod template back at one that exists",
                    facts.workload.namespace
                ));
                format!("their ServiceAccount {name} does not exist")
            }
            Refuser::RunAsNonRoot { .. } | Refuser::Other => {
                "the apiserver refuses them".to_owned()
            }
        };
        let change = match &refuser {
            Refuser::PodSecurity { .. } => security_change(facts),
            _ => last_rollout_change(facts, |r| {
                Some((
                    r.service_account.clone(),
                    r.containers
                        .iter()
                        .map(|c| c.image.clone())
                        .collect::<Vec<_>>(),
                ))
            })
            .map_or(String::new(), |c| {
                format!(
                    "; revision {} ({}) changed the pod template",
                    c.revision, c.ago
                )
            }),
        };
        // The Pod Security refusal is quoted whole in the evidence; its violations are in `what`.
        let quote = match &refuser {
            Refuser::PodSecurity { .. } => String::new(),
            _ => format!(" ({message})"),
        };
        d.summary = format!(
            "{}'s new pods are never created: {what}{quote}{change}; the previous ReplicaSet keeps serving",
            facts.workload.name
        );
        d.signals = serde_json::to_value(&refuser).ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "what the last rollout changed in the pod template against what the apiserver refuses",
            ),
            (
                Member::Worf,
                "the Pod Security level and the admission policies the pod must meet",
            ),
        ]
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        match crate::family_signals::<Refuser>(d) {
            Some(Refuser::PodSecurity { level, violations }) => {
                match restricted::fix(input, &level, &violations) {
                    Ok(change) => Remedy::Change(change),
                    Err(why) => Remedy::Escalate {
                        reason: format!("{}; {why}", d.summary),
                    },
                }
            }
            Some(Refuser::RunAsNonRoot { .. }) => {
                Remedy::owned_by(non_root::OWNER, d, non_root::DECIDES)
            }
            Some(Refuser::Webhook { name, .. }) => Remedy::owned_by(
                &format!("the owners of the admission webhook {name}"),
                d,
                "say what the pods must change, or fix the webhook when it cannot be called",
            ),
            _ => Remedy::not_yet(
                "pods refused by admission",
                d,
                "a human changes the pod template to pass the policy (or restores the ServiceAccount), or the platform's owners change the policy",
            ),
        }
    }

    /// The restricted fix admitted and its container refused at creation: with `runAsNonRoot`
    /// and no `runAsUser`, that is the image's user (root, or a name). The replay's outcome
    /// carries the waiting reason, not the kubelet's words; the PR changes nothing else the
    /// kubelet checks, though a reference admission had hidden (a missing Secret) would read the
    /// same, which the escalation says.
    fn replay_failed(&self, d: &Diagnosis, replay: &squad_protocols::Replay) -> Option<String> {
        let Some(Refuser::PodSecurity { .. }) = crate::family_signals::<Refuser>(d) else {
            return None;
        };
        let refused = replay
            .with
            .not_ready
            .iter()
            .find(|p| p.contains("CreateContainerConfigError"))?;
        Some(format!(
            "the owner is {}, who {}; with the fix the pods are admitted, but the kubelet refuses to create their container ({refused}), which with `runAsNonRoot: true` and no `runAsUser` means the image runs as root or as a user it cannot verify (`container has runAsNonRoot and image will run as root`; if `kubectl describe pod` names a missing Secret or ConfigMap instead, that reference is the next fix)",
            non_root::OWNER,
            non_root::DECIDES
        ))
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "admission-refused".into(),
            meaning: "The apiserver refuses to create a ReplicaSet's pods (`FailedCreate`) for a reason other than quota: Pod Security admission (`violates PodSecurity …`), a webhook (`admission webhook … denied the request`, or `failed calling webhook` when it is down), a missing ServiceAccount. No pod exists; the rollout stalls with the previous ReplicaSet serving.".into(),
            checks: "1. `kubectl describe rs -n <ns> <new replicaset>`: the FailedCreate message.\n2. Pod Security: `kubectl get ns <ns> --show-labels` (pod-security.kubernetes.io/enforce) and the template's securityContext.\n3. Webhooks: `kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations` and the webhook's Service and pods.\n4. The GitOps diff of the last deploy.\n5. Admitted but `CreateContainerConfigError` (`kubectl describe pod`: `container has runAsNonRoot and image will run as root`): the image's user, `crane config <image> | jq -r .config.User` (empty or `0` is root).".into(),
            fixes: "- **Pod Security**: meet the level (runAsNonRoot, allowPrivilegeEscalation: false, drop ALL capabilities, seccompProfile RuntimeDefault). `runAsNonRoot` holds only if the image runs as a numeric non-root user: an image that runs as root is refused by the kubelet (`CreateContainerConfigError: container has runAsNonRoot and image will run as root`), and its owners rebuild it with `USER 65532` (files owned accordingly) or set a `runAsUser` its files allow.\n- **Webhook denies**: change the template to pass its policy; **webhook down**: bring it back (it is the platform's).\n- **ServiceAccount**: create it through the repo, or point back at one that exists.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![format!(
            "Render {workload}'s manifests against the namespace's admission policies (Pod Security level, webhooks) in CI, so a refused pod never merges."
        )]
    }

    fn followup(&self, _d: &Diagnosis, cx: &crate::FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Check {}'s pod template against admission before it merges",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) the apiserver refused the pods of {}.\n\n\
                 1. In CI, dry-run the rendered manifests against the cluster (`kubectl apply --dry-run=server`).\n\
                 2. Check: `kubectl describe rs -n {}` (FailedCreate).",
                cx.incident, cx.issue, cx.workload.name, cx.workload.namespace
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use squad_protocols::cluster::ClusterEvent;

    use super::*;
    use crate::testing;

    fn refused(message: &str) -> Facts {
        let mut f = testing::facts("Completed", 0, |_| 80.0, |_| 10.0);
        f.pod = None;
        f.rollout_events = vec![ClusterEvent {
            kind: "Warning".into(),
            reason: "FailedCreate".into(),
            message: format!("Error creating: {message}"),
            count: 14,
            first_seen: testing::now() - chrono::Duration::minutes(30),
            last_seen: testing::now(),
            object: "ReplicaSet/cart-6f9c8d7b54".into(),
        }];
        f
    }

    #[test]
    fn pod_security_webhooks_and_service_accounts_are_named() {
        let f = refused(
            "pods \"cart-6f9c8d7b54-x2k9p\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"api\" must set securityContext.allowPrivilegeEscalation=false), runAsNonRoot != true (pod or container \"api\" must set securityContext.runAsNonRoot=true)",
        );
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE, "{}", d.summary);
        assert!(
            d.summary.contains("new pods are never created: Pod Security admission (restricted:latest) refuses them: allowPrivilegeEscalation != false"),
            "{}",
            d.summary
        );
        // The last rollout did not touch the security settings: the namespace's level is newer.
        assert!(
            d.summary.contains("revision 2 (30 h ago) left the containers' securityContext as it was: the template already broke this level")
                && !d.summary.contains("is forbidden"),
            "{}",
            d.summary
        );
        let mut g = f.clone();
        g.history[1].containers[0].allow_privilege_escalation = Some(true);
        let d = testing::diagnosis(&g);
        assert!(
            d.summary
                .contains("revision 2 (30 h ago) changed the securityContext of container(s) api"),
            "{}",
            d.summary
        );
        assert_eq!(
            refuser(
                "admission webhook \"validate.kyverno.svc-fail\" denied the request: policy require-labels: label 'team' is required"
            ),
            Refuser::Webhook {
                name: "validate.kyverno.svc-fail".into(),
                reachable: true
            }
        );
        assert_eq!(
            refuser(
                "Internal error occurred: failed calling webhook \"mpod.gatekeeper.sh\": Post \"https://gatekeeper-webhook-service.gatekeeper-system.svc:443/v1/mutate?timeout=3s\": context deadline exceeded"
            ),
            Refuser::Webhook {
                name: "mpod.gatekeeper.sh".into(),
                reachable: false
            }
        );
        assert_eq!(
            refuser(
                "pods \"cart-6f9c8d7b54-x2k9p\" is forbidden: error looking up service account shop/cart-api: serviceaccount \"cart-api\" not found"
            ),
            Refuser::ServiceAccount {
                name: "cart-api".into()
            }
        );
    }

    /// A StatefulSet's controller says it its own way, on the StatefulSet.
    #[test]
    fn a_statefulsets_refusal_is_read_too() {
        let mut f = refused("");
        f.rollout_events[0].message = "create Pod ledger-db-0 in StatefulSet ledger-db failed error: pods \"ledger-db-0\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"pg\" must not set securityContext.privileged=true)".into();
        f.rollout_events[0].object = "StatefulSet/ledger-db".into();
        let d = AdmissionRefused.detect(&f, &Readings::of(&f)).unwrap();
        assert!(
            d.summary
                .contains("Pod Security admission (baseline:latest) refuses them: privileged"),
            "{}",
            d.summary
        );
    }

    /// The restricted fix replayed: admitted, then the container refused at creation (the image
    /// runs as root); the escalation names the app's owners. Pods that only wait for a node are
    /// not this family's to explain.
    #[test]
    fn a_replayed_restricted_fix_whose_container_is_refused_goes_to_the_apps_owners() {
        let f = refused(
            "pods \"cart-6f9c8d7b54-x2k9p\" is forbidden: violates PodSecurity \"restricted:latest\": runAsNonRoot != true (pod or container \"api\" must set securityContext.runAsNonRoot=true)",
        );
        let d = testing::diagnosis(&f);
        let outcome = |not_ready: &str| squad_protocols::Outcome {
            desired: 2,
            ready: 2,
            not_ready: vec![not_ready.to_owned()],
            restarts: 0,
            oom_kills: 0,
            peak: None,
            limit: None,
        };
        let replay = |not_ready: &str| squad_protocols::Replay {
            horizon_hours: 24,
            without: outcome("cart-6f9c8d7b54-x2k9p: Pending"),
            with: outcome(not_ready),
            seeded_from: String::new(),
        };
        let why = AdmissionRefused
            .replay_failed(
                &d,
                &replay("cart-7d4b9c6f58-q2w3e: api waiting: CreateContainerConfigError"),
            )
            .unwrap();
        assert!(
            why.starts_with(
                "the owner is the app's owners, who choose the non-root user it runs as"
            ) && why.contains("squad does not pick a UID")
                && why.contains("(cart-7d4b9c6f58-q2w3e: api waiting: CreateContainerConfigError)"),
            "{why}"
        );
        assert!(
            AdmissionRefused
                .replay_failed(&d, &replay("cart-7d4b9c6f58-q2w3e: Pending"))
                .is_none()
        );
        // A webhook's refusal is not about the image's user.
        let w = refused(
            "admission webhook \"validate.kyverno.svc-fail\" denied the request: policy require-labels: label 'team' is required",
        );
        assert!(
            AdmissionRefused
                .replay_failed(
                    &testing::diagnosis(&w),
                    &replay("cart-7d4b9c6f58-q2w3e: api waiting: CreateContainerConfigError")
                )
                .is_none()
        );
    }

    /// Once such a fix merged (no world model to replay in), the kubelet's words on the admitted
    /// pods say it: the family reads them and escalates to the app's owners up front, before
    /// the missing-reference family could take the CreateContainerConfigError for its own.
    #[test]
    fn the_kubelets_run_as_non_root_refusal_is_escalated_to_the_apps_owners() {
        let mut f = testing::facts("Completed", 0, |_| 80.0, |_| 10.0);
        if let Some(p) = f.pod.as_mut() {
            p.phase = "Pending".into();
            p.containers[0].restart_count = 0;
            p.containers[0].last_termination = None;
            p.containers[0].state = "waiting: CreateContainerConfigError".into();
        }
        f.events = vec![ClusterEvent {
            kind: "Warning".into(),
            reason: "Failed".into(),
            message: "Error: container has runAsNonRoot and image will run as root (pod: \"cart-5d8f7-abcde_shop(5c1f0e4e-0000-4000-8000-000000000000)\", container: api)".into(),
            count: 31,
            first_seen: testing::now() - chrono::Duration::minutes(5),
            last_seen: testing::now(),
            object: "Pod/cart-5d8f7-abcde".into(),
        }];
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE, "{}", d.summary);
        assert!(
            d.summary.contains("cart's pods are admitted but their container api never starts: the kubelet refuses it (CreateContainerConfigError): runAsNonRoot is set and the image runs as root"),
            "{}",
            d.summary
        );
        let why = testing::escalation(&AdmissionRefused, &d);
        assert!(
            why.contains("the wrong tool here")
                && why.contains("the owner is the app's owners, who choose the non-root user"),
            "{why}"
        );
        // A missing Secret is the other family's.
        f.events[0].message = "Error: secret \"db-creds\" not found".into();
        assert!(AdmissionRefused.detect(&f, &Readings::of(&f)).is_none());
    }

    #[test]
    fn a_quota_refusal_is_the_quota_familys() {
        let f = refused(
            "pods \"cart-6f9c8d7b54-x2k9p\" is forbidden: exceeded quota: compute, requested: limits.memory=1Gi, used: limits.memory=7Gi, limited: limits.memory=8Gi",
        );
        assert!(AdmissionRefused.detect(&f, &Readings::of(&f)).is_none());
        assert_eq!(
            testing::diagnosis(&f).root_cause.as_str(),
            quota_or_limit_range::ROOT_CAUSE
        );
    }
}
