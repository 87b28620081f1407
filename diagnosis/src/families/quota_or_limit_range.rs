//! Quota or LimitRange rejecting pods: the apiserver refuses to create the pods a ReplicaSet
//! asks for, and the controller records `FailedCreate` on it — `Error creating: pods "x" is
//! forbidden: exceeded quota: compute, requested: limits.memory=1Gi, used: …, limited: …`, or
//! `failed quota: compute: must specify limits.memory`, or a LimitRange's `maximum memory usage
//! per Container is 1Gi, but limit is 2Gi`. No pod exists to look at: the rollout stalls with
//! the previous ReplicaSet serving (`KubeDeploymentRolloutStuck`), or replicas go missing
//! (`KubeDeploymentReplicasMismatch`). A quota is the platform's: the workload can be sized to
//! fit a LimitRange, but more quota is a human's call, so the crew escalates with the numbers.

use serde::{Deserialize, Serialize};
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::readings::{container_in, last_rollout_change};
use crate::{
    Detection, Facts, Family, FollowupContext, IssueDraft, Readings, Remedy, RemedyInput,
    RepoNeeds, Runbook,
};

pub struct QuotaOrLimitRange;

pub const ROOT_CAUSE: &str = "quota_or_limit_range";

const FORBIDDEN: &str = " is forbidden: ";

/// One resource of an `exceeded quota` refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exceeded {
    pub resource: String,
    pub requested: String,
    pub used: String,
    pub limited: String,
}

/// What the apiserver said, read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// `exceeded quota: <name>, requested: …, used: …, limited: …`
    QuotaExceeded {
        quota: String,
        exceeded: Vec<Exceeded>,
    },
    /// `failed quota: <name>: must specify a,b`
    QuotaNeedsResources { quota: String, missing: Vec<String> },
    /// A LimitRange's `minimum/maximum … usage per Container …` (one or more).
    LimitRange { violations: Vec<String> },
}

/// `k=v,k=v` into pairs.
fn pairs(list: &str) -> Vec<(String, String)> {
    list.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Reads the apiserver's reason for refusing a pod (the text after `is forbidden: `).
pub fn parse(reason: &str) -> Option<Refusal> {
    if let Some(rest) = reason.strip_prefix("exceeded quota: ") {
        let (quota, rest) = rest.split_once(", requested: ")?;
        let (requested, rest) = rest.split_once(", used: ")?;
        let (used, limited) = rest.split_once(", limited: ")?;
        let (used, limited) = (pairs(used), pairs(limited));
        let value = |list: &[(String, String)], k: &str| {
            list.iter()
                .find(|(r, _)| r == k)
                .map_or(String::new(), |(_, v)| v.clone())
        };
        return Some(Refusal::QuotaExceeded {
            quota: quota.to_owned(),
            exceeded: pairs(requested)
                .into_iter()
                .map(|(resource, requested)| Exceeded {
                    used: value(&used, &resource),
                    limited: value(&limited, &resource),
                    resource,
                    requested,
                })
                .collect(),
        });
    }
    if let Some(rest) = reason.strip_prefix("failed quota: ") {
        let (quota, missing) = rest.split_once(": must specify ")?;
        return Some(Refusal::QuotaNeedsResources {
            quota: quota.to_owned(),
            missing: missing.split(',').map(|m| m.trim().to_owned()).collect(),
        });
    }
    let inner = reason
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(reason);
    let violations: Vec<String> = inner
        .split(", m")
        .enumerate()
        .map(|(i, v)| {
            if i == 0 {
                v.to_owned()
            } else {
                format!("m{v}")
            }
        })
        .filter(|v| {
            (v.starts_with("maximum ") || v.starts_with("minimum ")) && v.contains(" usage per ")
        })
        .collect();
    (!violations.is_empty()).then_some(Refusal::LimitRange { violations })
}

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSignals {
    /// The ReplicaSet that cannot create its pods.
    pub replica_set: String,
    pub refusal: Refusal,
    /// How many times the controller tried.
    pub attempts: u32,
}

impl Family for QuotaOrLimitRange {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("FailedCreate")
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let (event, refusal) = facts
            .rollout_events
            .iter()
            .filter(|e| e.reason == "FailedCreate")
            .filter_map(|e| {
                let (_, reason) = e.message.split_once(FORBIDDEN)?;
                Some((e, parse(reason)?))
            })
            .max_by_key(|(e, _)| e.last_seen)?;
        let rs = event
            .object
            .split_once('/')
            .map_or(event.object.as_str(), |x| x.1);
        let mut d = Detection::new(String::new(), 0.9, &[]);
        d.evidence.push(Evidence {
            source: "ReplicaSet events (replicaset-controller)".into(),
            observation: format!(
                "FailedCreate on {rs}: {} ({} times since {})",
                event.message,
                event.count,
                event.first_seen.to_rfc3339()
            ),
        });
        let what = match &refusal {
            Refusal::QuotaExceeded { quota, exceeded } => format!(
                "exceeded ResourceQuota {quota}: {}",
                exceeded
                    .iter()
                    .map(|x| format!(
                        "{} {} requested with {} of {} used",
                        x.resource, x.requested, x.used, x.limited
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Refusal::QuotaNeedsResources { quota, missing } => format!(
                "ResourceQuota {quota} requires {} on every container, and the pod sets none",
                missing.join(", ")
            ),
            Refusal::LimitRange { violations } => {
                format!("the namespace's LimitRange: {}", violations.join("; "))
            }
        };
        // What changed: the last deploy's resources.
        let resources = |r: &squad_protocols::cluster::Revision| {
            container_in(r, facts).map(|c| (c.limits.clone(), c.requests.clone()))
        };
        let change = last_rollout_change(facts, resources).map(|c| {
            let mut parts = Vec::new();
            for (which, before, after) in [
                ("limit", &c.before.0, &c.after.0),
                ("request", &c.before.1, &c.after.1),
            ] {
                for (resource, q) in after {
                    match before.get(resource) {
                        Some(b) if b != q => {
                            parts.push(format!("the {resource} {which} from {b} to {q}"))
                        }
                        None => parts.push(format!("a {resource} {which} of {q}")),
                        _ => {}
                    }
                }
            }
            (c.revision, c.ago, parts)
        });
        let cause = match &change {
            Some((revision, ago, parts)) if !parts.is_empty() => {
                d.evidence.push(Evidence {
                    source: "rollout history".into(),
                    observation: format!("revision {revision} ({ago}) set {}", parts.join(", ")),
                });
                format!(
                    " since revision {revision} ({ago}) set {}",
                    parts.join(", ")
                )
            }
            _ => String::new(),
        };
        d.summary = format!(
            "the apiserver refuses every pod of ReplicaSet {rs} ({} attempts): {what}{cause}; the rollout cannot progress and the previous ReplicaSet keeps serving",
            event.count
        );
        d.recommendations = match &refusal {
            Refusal::QuotaExceeded { quota, .. } => vec![
                format!("quota {quota} is the platform's: ask its owners for room, with the numbers above"),
                "or size the pods to fit what the workload uses (requests and limits from observed use), or roll with maxSurge: 0 when the final footprint fits".into(),
            ],
            Refusal::QuotaNeedsResources { missing, .. } => vec![format!(
                "set {} on every container of the pod template",
                missing.join(", ")
            )],
            Refusal::LimitRange { .. } => vec![
                "size the container within the LimitRange (or ask its owners why the workload needs more)".into(),
            ],
        };
        d.signals = serde_json::to_value(QuotaSignals {
            replica_set: rs.to_owned(),
            refusal,
            attempts: event.count,
        })
        .ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the pod template's requests and limits against the namespace's quota and LimitRange",
            ),
            (
                Member::Worf,
                "whether the quota is the namespace's intended guard-rail",
            ),
            (
                Member::Data,
                "whether the app needs the resources the last deploy asked for",
            ),
        ]
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds::NONE
    }

    fn remedy(&self, d: &Diagnosis, _input: &RemedyInput<'_>) -> Remedy {
        Remedy::owned_by(
            "the platform team (the namespace's ResourceQuota and LimitRange are theirs)",
            d,
            "decides between more quota and smaller pods; squad never changes the platform's quota",
        )
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "quota-or-limit-range".into(),
            meaning: "The apiserver refuses to create the pods a ReplicaSet asks for: a ResourceQuota has no room for them (or requires requests/limits the pods do not set), or a LimitRange forbids their sizes. No pod exists; the ReplicaSet records `FailedCreate`, the rollout stalls with the previous ReplicaSet serving, and `KubeDeploymentRolloutStuck` or `KubeDeploymentReplicasMismatch` fires.".into(),
            checks: "1. `kubectl describe rs -n <ns> <new replicaset>` — Events: `FailedCreate … is forbidden: exceeded quota: …` or `maximum memory usage per Container …`.\n2. `kubectl describe resourcequota -n <ns>` and `kubectl describe limitrange -n <ns>`: used against hard, the per-container bounds.\n3. What the last deploy changed in requests and limits: `kubectl rollout history deployment/<name> -n <ns> --revision=<n>`.".into(),
            fixes: "- **Quota full**: the quota is the platform's; ask for room with the numbers, or size requests/limits from observed use, or roll with `maxSurge: 0` when the final footprint fits.\n- **Quota requires requests/limits**: set them on every container.\n- **LimitRange**: size the container within its bounds.\n- Never raise a namespace's quota from a workload PR.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Check {workload}'s namespace quota before raising its requests or limits: a rolling update needs room for the surge pods too."
            ),
            "Alert on FailedCreate and on quotas nearly full, not only on the stalled rollout."
                .into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Confirm what {} needs before the namespace's quota grows",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) the apiserver refused {}'s new pods (quota or LimitRange).\n\n\
                 1. Measure the container's memory and CPU at peak on the running pods.\n\
                 2. Size requests from typical use and limits from the peak with headroom; say whether the last deploy's increase is needed.\n\
                 3. Reproduce: `kubectl describe rs -n {}` (FailedCreate) and `kubectl describe resourcequota -n {}`.",
                cx.incident,
                cx.issue,
                cx.workload.name,
                cx.workload.namespace,
                cx.workload.namespace
            ),
            label: "capacity".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::cluster::ClusterEvent;

    use super::*;
    use crate::testing;

    fn refused(message: &str) -> Facts {
        let mut f = testing::facts("", 0, |_| 200.0, |_| 20.0);
        f.pod.as_mut().unwrap().containers[0].last_termination = None;
        f.pod.as_mut().unwrap().containers[0].state = "running".into();
        f.rollout_events = vec![ClusterEvent {
            kind: "Warning".into(),
            reason: "FailedCreate".into(),
            message: format!("Error creating: pods \"cart-5d8f7-x9k2m\" is forbidden: {message}"),
            count: 21,
            first_seen: testing::now() - chrono::Duration::hours(2),
            last_seen: testing::now() - chrono::Duration::minutes(4),
            object: "ReplicaSet/cart-5d8f7".into(),
        }];
        f
    }

    #[test]
    fn an_exceeded_quota_names_each_resource_and_the_deploy() {
        let mut f = refused(
            "exceeded quota: compute, requested: limits.memory=1Gi,requests.memory=768Mi, used: limits.memory=5376Mi,requests.memory=3584Mi, limited: limits.memory=6Gi,requests.memory=4Gi",
        );
        f.history[1].containers[0]
            .limits
            .insert("memory".into(), "1Gi".parse().unwrap());
        f.info.conditions = vec![
            squad_protocols::cluster::WorkloadCondition {
                kind: "Available".into(),
                status: "True".into(),
                reason: "MinimumReplicasAvailable".into(),
                message: "Deployment has minimum availability.".into(),
            },
            squad_protocols::cluster::WorkloadCondition {
                kind: "Progressing".into(),
                status: "False".into(),
                reason: "ProgressDeadlineExceeded".into(),
                message: "ReplicaSet \"cart-5d8f7\" has timed out progressing.".into(),
            },
        ];
        let d = testing::diagnosis(&f);
        // The controller's word is evidence; a healthy condition is not.
        let said: Vec<&str> = d
            .evidence
            .iter()
            .filter(|e| e.source == "Deployment status")
            .map(|e| e.observation.as_str())
            .collect();
        assert_eq!(
            said,
            [
                "condition Progressing=False (ProgressDeadlineExceeded): ReplicaSet \"cart-5d8f7\" has timed out progressing."
            ]
        );
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert!(
            d.summary.starts_with(
                "the apiserver refuses every pod of ReplicaSet cart-5d8f7 (21 attempts): exceeded ResourceQuota compute: limits.memory 1Gi requested with 5376Mi of 6Gi used; requests.memory 768Mi requested with 3584Mi of 4Gi used since revision 2 (30 h ago) set the memory limit from 600Mi to 1Gi"
            ),
            "{}",
            d.summary
        );
    }

    #[test]
    fn the_other_refusals_are_read() {
        assert_eq!(
            parse("failed quota: compute: must specify limits.cpu,limits.memory"),
            Some(Refusal::QuotaNeedsResources {
                quota: "compute".into(),
                missing: vec!["limits.cpu".into(), "limits.memory".into()]
            })
        );
        assert_eq!(
            parse(
                "[minimum cpu usage per Container is 100m, but request is 50m, maximum memory usage per Container is 1Gi, but limit is 2Gi]"
            ),
            Some(Refusal::LimitRange {
                violations: vec![
                    "minimum cpu usage per Container is 100m, but request is 50m".into(),
                    "maximum memory usage per Container is 1Gi, but limit is 2Gi".into()
                ]
            })
        );
        let d = testing::diagnosis(&refused(
            "maximum memory usage per Container is 1Gi, but limit is 2Gi",
        ));
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert!(parse("pods \"x\" already exists").is_none());
    }

    #[test]
    fn without_a_refusal_it_is_not_this_family() {
        let f = testing::oom_under_load();
        assert!(QuotaOrLimitRange.detect(&f, &Readings::of(&f)).is_none());
        let mut f = refused("node(s) had untolerated taint");
        f.rollout_events[0].message = "Error creating: pods \"x\" already exists".into();
        assert!(QuotaOrLimitRange.detect(&f, &Readings::of(&f)).is_none());
    }
}
