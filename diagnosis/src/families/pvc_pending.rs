//! PVC pending: a pod mounts a PersistentVolumeClaim that is not bound, so the scheduler's
//! VolumeBinding plugin rules out every node (`0/3 nodes are available: pod has unbound immediate
//! PersistentVolumeClaims.`, or `persistentvolumeclaim "x" not found` when the claim does not
//! exist) and the pod stays Pending. The volume controller says why the claim is not bound in its
//! own events: `ProvisioningFailed` — `storageclass.storage.k8s.io "fast-ssd" not found` for a
//! class the cluster does not have, or the provisioner's error — or `FailedBinding` when the claim
//! names no class and there is no default. Most often the deploy that added the volume named a
//! class from another cluster. A claim's `storageClassName` is immutable: the fix (an existing
//! class, the claim recreated) comes with the remediations; until then the crew escalates with
//! the diagnosis. The proof is the claim Bound and the pods scheduled and Ready.

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::{ClaimInfo, ClusterEvent, StorageClassInfo};
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, Verification, WorkloadRef};

use super::scheduling::{FitError, Reason};
use crate::readings::last_rollout_change;
use crate::{
    Change, Detection, Edit, Facts, Family, FollowupContext, IssueDraft, Lookup, Observation,
    Readings, Remedy, RemedyInput, Rules, Runbook, family_signals,
};

pub struct PvcPending;

pub const ROOT_CAUSE: &str = "pvc_pending";

/// Why one claim is not bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ClaimProblem {
    /// The pods mount a claim the namespace does not have.
    Missing,
    /// It names a StorageClass the cluster does not have.
    NoSuchClass { class: String },
    /// It names no class and the cluster has no default one.
    NoClass,
    /// The class exists; its provisioner has not provisioned a volume (its words, if it said).
    NotProvisioned {
        class: String,
        provisioner: String,
        said: Option<String>,
    },
}

/// A claim the pods wait for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingClaim {
    pub name: String,
    pub problem: ClaimProblem,
}

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PvcSignals {
    pub claims: Vec<WaitingClaim>,
    /// The cluster's StorageClasses, the default first.
    pub classes: Vec<String>,
    /// The default class, if the cluster has one.
    pub default_class: Option<String>,
}

/// `gp3 (default), sc1`, or `none`.
fn classes_in_words(classes: &[StorageClassInfo]) -> String {
    if classes.is_empty() {
        return "none".into();
    }
    let mut sorted: Vec<&StorageClassInfo> = classes.iter().collect();
    sorted.sort_by_key(|c| (!c.default, c.name.clone()));
    sorted
        .iter()
        .map(|c| {
            if c.default {
                format!("{} (default)", c.name)
            } else {
                c.name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The volume controller's last word on a claim.
fn last_event<'f>(facts: &'f Facts, claim: &str) -> Option<&'f ClusterEvent> {
    let object = format!("PersistentVolumeClaim/{claim}");
    facts
        .claim_events
        .iter()
        .filter(|e| e.object == object && e.kind == "Warning")
        .max_by_key(|e| e.last_seen)
}

/// Why `claim` is not bound, from its spec, the classes and the controller's events.
fn problem(facts: &Facts, claim: &ClaimInfo) -> ClaimProblem {
    let default = facts.storage_classes.iter().find(|c| c.default);
    let class = match claim.storage_class.as_deref() {
        Some("") => None,
        Some(c) => Some(c),
        None => default.map(|c| c.name.as_str()),
    };
    let said = last_event(facts, &claim.name).map(|e| e.message.clone());
    match class {
        None => ClaimProblem::NoClass,
        Some(class) => match facts.storage_classes.iter().find(|c| c.name == class) {
            Some(c) => ClaimProblem::NotProvisioned {
                class: class.to_owned(),
                provisioner: c.provisioner.clone(),
                said,
            },
            // Without classes to compare against (not readable), the controller's words decide.
            None if facts.storage_classes.is_empty()
                && !said.as_deref().is_some_and(|s| s.contains("not found")) =>
            {
                ClaimProblem::NotProvisioned {
                    class: class.to_owned(),
                    provisioner: String::new(),
                    said,
                }
            }
            None => ClaimProblem::NoSuchClass {
                class: class.to_owned(),
            },
        },
    }
}

fn in_words(c: &WaitingClaim, classes: &str) -> String {
    match &c.problem {
        ClaimProblem::Missing => format!("claim {} does not exist", c.name),
        ClaimProblem::NoSuchClass { class } => format!(
            "claim {} asks for StorageClass {class}, which the cluster does not have (it has {classes})",
            c.name
        ),
        ClaimProblem::NoClass => format!(
            "claim {} names no StorageClass and the cluster has no default one (it has {classes})",
            c.name
        ),
        ClaimProblem::NotProvisioned {
            class,
            provisioner,
            said,
        } => {
            let by = if provisioner.is_empty() {
                String::new()
            } else {
                format!(" by {provisioner}")
            };
            match said {
                Some(s) => format!(
                    "claim {}'s volume of class {class} has not been provisioned{by}: {s}",
                    c.name
                ),
                None => format!(
                    "claim {}'s volume of class {class} has not been provisioned{by}",
                    c.name
                ),
            }
        }
    }
}

impl Family for PvcPending {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("FailedScheduling")
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let fit = FitError::of(facts)?;
        let mut claims: Vec<WaitingClaim> = Vec::new();
        let mut unbound = false;
        for (_, _, reason) in &fit.reasons {
            match reason {
                Reason::MissingClaim(name) => claims.push(WaitingClaim {
                    name: name.clone(),
                    problem: ClaimProblem::Missing,
                }),
                Reason::UnboundClaims => unbound = true,
                _ => {}
            }
        }
        if claims.is_empty() && !unbound {
            return None;
        }
        if unbound {
            claims.extend(facts.claims.iter().filter(|c| c.phase != "Bound").map(|c| {
                WaitingClaim {
                    name: c.name.clone(),
                    problem: problem(facts, c),
                }
            }));
        }
        let classes = classes_in_words(&facts.storage_classes);
        let mut d = Detection::new(String::new(), 0.9, &[]);
        d.evidence.push(fit.evidence());
        for c in &claims {
            let found = facts.claims.iter().find(|i| i.name == c.name);
            let observation = match (found, last_event(facts, &c.name)) {
                (_, Some(e)) => format!(
                    "{} on claim {}: {} ({} times since {})",
                    e.reason,
                    c.name,
                    e.message,
                    e.count,
                    e.first_seen.to_rfc3339()
                ),
                (Some(i), None) => format!(
                    "claim {} is {} (storageClassName {})",
                    c.name,
                    i.phase,
                    i.storage_class.as_deref().unwrap_or("unset")
                ),
                (None, None) => format!("no claim {} in {}", c.name, facts.workload.namespace),
            };
            d.evidence.push(Evidence {
                source: "PersistentVolumeClaims".into(),
                observation,
            });
        }
        if !facts.storage_classes.is_empty() {
            d.evidence.push(Evidence {
                source: "StorageClasses".into(),
                observation: format!(
                    "the cluster's StorageClasses: {}",
                    facts
                        .storage_classes
                        .iter()
                        .map(|c| format!(
                            "{}{} ({}, {}{})",
                            c.name,
                            if c.default { " [default]" } else { "" },
                            c.provisioner,
                            c.binding_mode,
                            if c.allow_volume_expansion {
                                ", expandable"
                            } else {
                                ""
                            }
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            });
        }
        // The deploy that added the volume.
        let added = last_rollout_change(facts, |r| Some(r.claims.clone())).map(|c| {
            let new: Vec<String> = c
                .after
                .iter()
                .filter(|n| !c.before.contains(n))
                .cloned()
                .collect();
            (c.revision, c.ago, new)
        });
        let mut cause = String::new();
        if let Some((revision, ago, new)) = &added
            && !new.is_empty()
        {
            d.confidence = 0.95;
            d.evidence.push(Evidence {
                source: "rollout history".into(),
                observation: format!(
                    "revision {revision} ({ago}) mounted claim(s) {} the previous revision did not",
                    new.join(", ")
                ),
            });
            cause = format!(
                "; the last rollout ({ago}) mounted {}",
                new.iter()
                    .map(|n| format!("claim {n}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            );
        }
        let why = if claims.is_empty() {
            "a claim its pods mount is not bound".to_owned()
        } else {
            claims
                .iter()
                .map(|c| in_words(c, &classes))
                .collect::<Vec<_>>()
                .join("; ")
        };
        d.summary = format!(
            "{} cannot be scheduled: 0/{} nodes are available because {why}{cause}",
            facts.workload.name, fit.nodes
        );
        for c in &claims {
            d.recommendations.push(match &c.problem {
                ClaimProblem::Missing => format!(
                    "create claim {} in {} (or mount the claim the previous revision used)",
                    c.name, facts.workload.namespace
                ),
                ClaimProblem::NoSuchClass { .. } | ClaimProblem::NoClass => format!(
                    "give claim {} a StorageClass the cluster has ({classes}); storageClassName is immutable, so the claim is deleted and recreated (it never bound, so it holds no data)",
                    c.name
                ),
                ClaimProblem::NotProvisioned { provisioner, .. } => format!(
                    "read the provisioner's logs{} for claim {}: the class exists, the volume was not created (cloud quota, zone, parameters)",
                    if provisioner.is_empty() {
                        String::new()
                    } else {
                        format!(" ({provisioner})")
                    },
                    c.name
                ),
            });
        }
        if facts.info.kind == "StatefulSet" {
            d.recommendations.push(
                "a StatefulSet's volumeClaimTemplates are immutable: changing the class means deleting the StatefulSet with --cascade=orphan and re-applying it, then recreating the unbound claims".into(),
            );
        }
        let default_class = facts
            .storage_classes
            .iter()
            .find(|c| c.default)
            .map(|c| c.name.clone());
        d.signals = serde_json::to_value(PvcSignals {
            claims,
            classes: facts
                .storage_classes
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            default_class,
        })
        .ok();
        Some(d)
    }

    fn lookups(&self, facts: &Facts) -> Vec<Lookup> {
        if facts.info.claims.is_empty() {
            Vec::new()
        } else {
            vec![Lookup::Claims]
        }
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the claims' storageClassName against the cluster's StorageClasses",
            ),
            (
                Member::Worf,
                "whether the class the data lands on is encrypted and backed up as the data needs",
            ),
            (
                Member::Data,
                "what the app writes to the volume and how much room it needs",
            ),
        ]
    }

    fn repo_objects(&self, d: &Diagnosis) -> Vec<(String, String)> {
        family_signals::<PvcSignals>(d)
            .map(|s| {
                s.claims
                    .into_iter()
                    .map(|c| ("PersistentVolumeClaim".to_owned(), c.name))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn verify_needs(&self) -> crate::VerifyNeeds {
        crate::VerifyNeeds {
            claims: true,
            ..crate::VerifyNeeds::default()
        }
    }

    /// The default verdict, and every claim the pods waited for Bound.
    fn verify(&self, d: &Diagnosis, obs: &Observation, rules: &Rules<'_>) -> Verification {
        let mut v = crate::family::default_verdict(d, obs, rules);
        let Some(s) = family_signals::<PvcSignals>(d) else {
            return v;
        };
        for c in &s.claims {
            let phase = obs
                .claims
                .iter()
                .find(|x| x.name == c.name)
                .map_or("unread", |x| x.phase.as_str());
            if phase == "Bound" {
                v.detail.push_str(&format!("; claim {} Bound", c.name));
            } else {
                v.healthy = false;
                v.detail = format!("claim {} is {phase}, not Bound; {}", c.name, v.detail);
            }
        }
        v
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        let human = "a human picks the StorageClass the claim should use and recreates the claim (storageClassName is immutable)";
        let Some(s) = family_signals::<PvcSignals>(d) else {
            return Remedy::not_yet("pending PersistentVolumeClaims", d, human);
        };
        // The class every claim without one gets: the default, else the cluster's only class.
        let class = s
            .default_class
            .clone()
            .or_else(|| (s.classes.len() == 1).then(|| s.classes[0].clone()));
        let mut edits = Vec::new();
        let mut lines = Vec::new();
        for c in &s.claims {
            let (ClaimProblem::NoSuchClass { .. } | ClaimProblem::NoClass) = &c.problem else {
                return Remedy::owned_by(
                    "the platform team (storage)",
                    d,
                    &format!(
                        "provisions the volume or creates the claim {}: the workload names an existing class and claim correctly",
                        c.name
                    ),
                );
            };
            let (Some(class), Some(claim)) =
                (&class, input.repo.object("PersistentVolumeClaim", &c.name))
            else {
                return Remedy::Escalate {
                    reason: format!(
                        "{} (the cluster has no default StorageClass to fall back on, or the repository does not declare claim {}); {human}",
                        d.summary, c.name
                    ),
                };
            };
            let was = match &c.problem {
                ClaimProblem::NoSuchClass { class } => {
                    format!("`{class}`, which the cluster does not have")
                }
                _ => "no class, and the cluster has no default".to_owned(),
            };
            lines.push(format!(
                "- `{}` ({}): {was} → `{class}`",
                c.name, claim.path
            ));
            edits.push(Edit::SetObjectKey {
                path: claim.path.clone(),
                kind: claim.kind.clone(),
                name: claim.name.clone(),
                keys: vec!["spec".into(), "storageClassName".into()],
                lines: Some(vec![format!("storageClassName: {class}")]),
            });
        }
        let (Some(class), false) = (class, edits.is_empty()) else {
            return Remedy::not_yet("pending PersistentVolumeClaims", d, human);
        };
        let names: Vec<&str> = s.claims.iter().map(|c| c.name.as_str()).collect();
        Remedy::Change(Change {
            branch_word: "storage-class".into(),
            title: format!(
                "fix(storage): provision {} from StorageClass {class}",
                names.join(", ")
            ),
            edits,
            notes: format!(
                "### An existing StorageClass\nThe claim the pods mount names a StorageClass the cluster cannot provision from (classes: {}).\n{}\n\n`{class}` is the cluster's {}. **Before merging:** a claim's `storageClassName` cannot change once it exists, so the sync cannot update the Pending claim in place: delete it (`kubectl delete pvc -n {} {}`; it was never bound, so it holds no data) and let the sync recreate it from this PR.\n",
                s.classes.join(", "),
                lines.join("\n"),
                if s.default_class.is_some() {
                    "default class"
                } else {
                    "only class"
                },
                input.workload.namespace,
                names.join(" ")
            ),
            findings: vec![squad_protocols::Finding {
                severity: squad_protocols::Severity::High,
                title: "claim names a StorageClass the cluster cannot provision from".into(),
                detail: d.summary.clone(),
            }],
        })
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "pvc-pending".into(),
            meaning: "A pod mounts a PersistentVolumeClaim that is not bound, so the scheduler rules out every node (`pod has unbound immediate PersistentVolumeClaims`, or `persistentvolumeclaim \"x\" not found`) and the pod stays Pending. The claim waits because it names a StorageClass the cluster does not have, names none with no default class, or its provisioner failed to create the volume. A rolling update to it stalls while the previous ReplicaSet keeps serving.".into(),
            checks: "1. `kubectl describe pod <pod> -n <ns>` — Events: `FailedScheduling … unbound immediate PersistentVolumeClaims`.\n2. `kubectl get pvc -n <ns>` (STATUS Pending, STORAGECLASS) and `kubectl describe pvc <claim> -n <ns>` — Events: `ProvisioningFailed … storageclass.storage.k8s.io \"x\" not found`, or the provisioner's error.\n3. `kubectl get storageclass`: which classes exist and which is `(default)`.\n4. The GitOps diff of the deploy that added the claim.".into(),
            fixes: "- **Class the cluster does not have**: use one it has (usually the default); `storageClassName` is immutable, so delete the Pending claim (it never bound: no data) and let the repo recreate it.\n- **No class and no default**: name a class explicitly, or have the platform mark one default.\n- **Provisioner failed**: read its logs (cloud quota, zone, parameters); that is the platform's to fix.\n- **StatefulSet**: `volumeClaimTemplates` are immutable — delete the StatefulSet with `--cascade=orphan`, re-apply, then recreate the unbound claims.\n- Never bind a claim by hand-made PersistentVolume to get past this.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Check {workload}'s PersistentVolumeClaims against each environment's StorageClasses before a deploy merges: class names differ between clusters."
            ),
            "Alert on claims Pending for more than a few minutes (kube_persistentvolumeclaim_status_phase), not only on the pods that wait for them.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Check {}'s volume claims against each environment's StorageClasses before a deploy merges",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) a claim {}'s pods mount never bound, so the new pods stayed Pending.\n\n\
                 1. In CI, compare every rendered claim's storageClassName with `kubectl get storageclass -o name` of each environment, and fail on one that does not exist.\n\
                 2. Prefer the default class (no storageClassName) unless the data needs a specific one, and say why in the manifest.\n\
                 3. Reproduce: `kubectl describe pvc -n {}` (Events) and `kubectl describe pod -n {} {}`.",
                cx.incident,
                cx.issue,
                cx.workload.name,
                cx.workload.namespace,
                cx.workload.namespace,
                cx.pod
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::testing;

    fn pending(message: &str) -> Facts {
        let mut f = testing::unscheduled(message, 80.0, 7, 25);
        f.info.claims = vec!["cart-cache".into()];
        f.history[1].claims = vec!["cart-cache".into()];
        f
    }

    fn class(name: &str, default: bool) -> StorageClassInfo {
        StorageClassInfo {
            name: name.into(),
            provisioner: "pd.csi.storage.gke.io".into(),
            default,
            allow_volume_expansion: true,
            binding_mode: "Immediate".into(),
        }
    }

    fn claim(class: Option<&str>) -> ClaimInfo {
        ClaimInfo {
            name: "cart-cache".into(),
            phase: "Pending".into(),
            storage_class: class.map(str::to_owned),
            requested: "20Gi".parse().ok(),
            capacity: None,
            volume: String::new(),
        }
    }

    fn provisioning_failed(message: &str) -> ClusterEvent {
        ClusterEvent {
            kind: "Warning".into(),
            reason: "ProvisioningFailed".into(),
            message: message.into(),
            count: 101,
            first_seen: testing::now() - chrono::Duration::minutes(25),
            last_seen: testing::now(),
            object: "PersistentVolumeClaim/cart-cache".into(),
        }
    }

    #[test]
    fn a_class_the_cluster_does_not_have_is_named_with_the_ones_it_has() {
        let mut f = pending(
            "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
        );
        f.claims = vec![claim(Some("premium-rwo"))];
        f.storage_classes = vec![class("standard-rwo", true), class("standard", false)];
        f.claim_events = vec![provisioning_failed(
            "storageclass.storage.k8s.io \"premium-rwo\" not found",
        )];
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "cart cannot be scheduled: 0/3 nodes are available because claim cart-cache asks for StorageClass premium-rwo, which the cluster does not have (it has standard-rwo (default), standard); the last rollout (30 h ago) mounted claim cart-cache"
        );
        assert_eq!(d.confidence, 0.95);
        assert!(d.evidence.iter().any(|e| e.observation.starts_with(
            "ProvisioningFailed on claim cart-cache: storageclass.storage.k8s.io \"premium-rwo\" not found (101 times"
        )));
        let s: PvcSignals = crate::family_signals(&d).unwrap();
        assert_eq!(s.default_class.as_deref(), Some("standard-rwo"));
        let reason = testing::escalation(&PvcPending, &d);
        assert!(reason.contains("premium-rwo"), "{reason}");
    }

    #[test]
    fn no_default_class_a_failing_provisioner_and_a_missing_claim_in_1_20_words() {
        let mut f =
            pending("0/2 nodes are available: 2 pod has unbound immediate PersistentVolumeClaims.");
        f.claims = vec![claim(None)];
        f.storage_classes = vec![class("fast", false)];
        let d = testing::diagnosis(&f);
        assert!(
            d.summary.contains(
                "claim cart-cache names no StorageClass and the cluster has no default one (it has fast)"
            ),
            "{}",
            d.summary
        );
        f.claims = vec![claim(Some("fast"))];
        f.claim_events = vec![provisioning_failed(
            "failed to provision volume with StorageClass \"fast\": rpc error: code = ResourceExhausted desc = Quota 'SSD_TOTAL_GB' exceeded",
        )];
        let d = testing::diagnosis(&f);
        assert!(
            d.summary.contains("claim cart-cache's volume of class fast has not been provisioned by pd.csi.storage.gke.io: failed to provision volume"),
            "{}",
            d.summary
        );
        let f = pending(
            "0/2 nodes are available: persistentvolumeclaim \"cart-cache\" not found. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
        );
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert!(
            d.summary.contains("claim cart-cache does not exist"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn other_scheduling_failures_are_not_this_family() {
        let f = pending("0/3 nodes are available: 3 Insufficient memory.");
        assert!(PvcPending.detect(&f, &Readings::of(&f)).is_none());
        let f = testing::oom_under_load();
        assert!(PvcPending.detect(&f, &Readings::of(&f)).is_none());
    }
}
