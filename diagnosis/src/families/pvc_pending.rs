//! PVC pending: a pod mounts a PersistentVolumeClaim that is not bound, so the scheduler's
//! VolumeBinding plugin rules out every node (`0/3 nodes are available: pod has unbound immediate
//! PersistentVolumeClaims.`, or `persistentvolumeclaim "x" not found` when the claim does not
//! exist) and the pod stays Pending. The volume controller says why the claim is not bound in its
//! own events: `ProvisioningFailed` — `storageclass.storage.k8s.io "fast-ssd" not found` for a
//! class the cluster does not have, or the provisioner's error — or `FailedBinding` when the claim
//! names no class and there is no default. Most often the deploy that added the volume named a
//! class from another cluster. The class it gets must also provision its `accessModes`: a claim
//! several nodes share (`ReadWriteMany`) needs a file-system class, and a block-storage default
//! (`gp3`, ebs.csi.aws.com) refuses it (`InvalidArgument … Only AccessModes[ReadWriteOnce]
//! supported.`) — the table of what each provisioner provisions is `squad_protocols::storage`. The
//! PR gives the claim the default class when it can provision the claim, else the one class that
//! can; with none or several the platform team chooses. A claim's `storageClassName` is
//! immutable: the PR says to delete the Pending claim before the sync. The proof is the claim
//! Bound and the pods scheduled and Ready.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::{ClaimInfo, ClusterEvent, StorageClassInfo};
use squad_protocols::storage;
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, Verification, WorkloadRef};

use super::scheduling::{FitError, Reason};
use crate::readings::last_rollout_change;
use crate::{
    Change, Detection, Edit, Facts, Family, FollowupContext, IssueDraft, Lookup, Observation,
    Readings, Remedy, RemedyInput, Rules, Runbook, family_signals,
};

mod class_choice;

use class_choice::{default_refuses, modes_in_words, why_not_default};

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
    /// The class exists, but its provisioner cannot provision the claim's access mode `mode`
    /// (a block-storage driver asked for `ReadWriteMany`).
    ModeNotProvisioned {
        class: String,
        provisioner: String,
        mode: String,
    },
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
    /// Its `accessModes` (none when the claim is not readable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<String>,
}

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PvcSignals {
    pub claims: Vec<WaitingClaim>,
    /// The cluster's StorageClasses, the default first.
    pub classes: Vec<String>,
    /// The default class, if the cluster has one.
    pub default_class: Option<String>,
    /// Each class's provisioner.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub provisioners: BTreeMap<String, String>,
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
            Some(c) => match storage::refused(&c.provisioner, &claim.access_modes) {
                Some(mode) => ClaimProblem::ModeNotProvisioned {
                    class: class.to_owned(),
                    provisioner: c.provisioner.clone(),
                    mode: mode.to_owned(),
                },
                None => ClaimProblem::NotProvisioned {
                    class: class.to_owned(),
                    provisioner: c.provisioner.clone(),
                    said,
                },
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
        ClaimProblem::ModeNotProvisioned {
            class,
            provisioner,
            mode,
        } => format!(
            "claim {} asks for {mode} from StorageClass {class}, whose provisioner {provisioner} provisions {}",
            c.name,
            storage::provisions(provisioner).in_words()
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
                    access_modes: Vec::new(),
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
                    access_modes: c.access_modes.clone(),
                }
            }));
        }
        let classes = classes_in_words(&facts.storage_classes);
        let mut signals = PvcSignals {
            claims: Vec::new(),
            classes: facts
                .storage_classes
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            default_class: facts
                .storage_classes
                .iter()
                .find(|c| c.default)
                .map(|c| c.name.clone()),
            provisioners: facts
                .storage_classes
                .iter()
                .map(|c| (c.name.clone(), c.provisioner.clone()))
                .collect(),
        };
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
                .map(|c| in_words(c, &classes) + &default_refuses(&signals, c))
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
                ClaimProblem::NoSuchClass { .. }
                | ClaimProblem::NoClass
                | ClaimProblem::ModeNotProvisioned { .. } => {
                    match signals.class_for(&c.access_modes) {
                        Ok(class) => format!(
                            "give claim {} StorageClass {class}{}; storageClassName is immutable, so the claim is deleted and recreated (it never bound, so it holds no data)",
                            c.name,
                            why_not_default(&signals, &class)
                        ),
                        Err(can) => format!(
                            "have the platform team choose the StorageClass for claim {}{}: {} of the cluster's classes can provision it ({})",
                            c.name,
                            if c.access_modes.is_empty() {
                                String::new()
                            } else {
                                format!(" ({})", modes_in_words(&c.access_modes))
                            },
                            if can.is_empty() { "none" } else { "several" },
                            signals
                                .classes
                                .iter()
                                .map(|k| signals.class_in_words(k))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                }
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
        signals.claims = claims;
        d.signals = serde_json::to_value(signals).ok();
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
        let mut edits = Vec::new();
        let mut lines = Vec::new();
        let mut picked: Vec<String> = Vec::new();
        for c in &s.claims {
            let was = match &c.problem {
                ClaimProblem::NoSuchClass { class } => {
                    format!("`{class}`, which the cluster does not have")
                }
                ClaimProblem::NoClass => "no class, and the cluster has no default".to_owned(),
                ClaimProblem::ModeNotProvisioned {
                    class,
                    provisioner,
                    mode,
                } => format!(
                    "`{class}`, whose provisioner {provisioner} provisions {}, not {mode}",
                    storage::provisions(provisioner).in_words()
                ),
                ClaimProblem::Missing | ClaimProblem::NotProvisioned { .. } => {
                    return Remedy::owned_by(
                        "the platform team (storage)",
                        d,
                        &format!(
                            "provisions the volume or creates the claim {}: the workload names an existing class and claim correctly",
                            c.name
                        ),
                    );
                }
            };
            let class = match s.class_for(&c.access_modes) {
                Ok(class) => class,
                Err(can) => {
                    let modes = if c.access_modes.is_empty() {
                        "its access modes unread".to_owned()
                    } else {
                        modes_in_words(&c.access_modes)
                    };
                    let all: Vec<String> = s.classes.iter().map(|k| s.class_in_words(k)).collect();
                    let choice = if can.is_empty() {
                        format!(
                            "none of the cluster's classes can provision it ({}): adds a class whose provisioner does",
                            if all.is_empty() {
                                "it has none".to_owned()
                            } else {
                                all.join(", ")
                            }
                        )
                    } else {
                        format!(
                            "chooses among the classes that can ({}; the cluster's classes: {}), or marks one default",
                            can.join(", "),
                            all.join(", ")
                        )
                    };
                    return Remedy::owned_by(
                        "the platform team (storage)",
                        d,
                        &format!(
                            "decides which StorageClass claim {} ({modes}) is provisioned from: {choice}; then the claim is recreated with it (storageClassName is immutable)",
                            c.name
                        ),
                    );
                }
            };
            let Some(claim) = input.repo.object("PersistentVolumeClaim", &c.name) else {
                return Remedy::Escalate {
                    reason: format!(
                        "{} (the repository does not declare claim {}); {human}",
                        d.summary, c.name
                    ),
                };
            };
            let why = if s.default_class.as_deref() == Some(class.as_str()) {
                "the cluster's default class".to_owned()
            } else if s.default_class.is_some() {
                format!(
                    "the one class whose provisioner provisions {}{}",
                    modes_in_words(&c.access_modes),
                    why_not_default(&s, &class)
                )
            } else if c.access_modes.is_empty() || s.classes.len() == 1 {
                "the cluster's only class".to_owned()
            } else {
                format!(
                    "the one class whose provisioner provisions {}",
                    modes_in_words(&c.access_modes)
                )
            };
            lines.push(format!(
                "- `{}` ({}): {was} → `{class}`, {why}",
                c.name, claim.path
            ));
            edits.push(Edit::SetObjectKey {
                path: claim.path.clone(),
                kind: claim.kind.clone(),
                name: claim.name.clone(),
                keys: vec!["spec".into(), "storageClassName".into()],
                lines: Some(vec![format!("storageClassName: {class}")]),
            });
            if !picked.contains(&class) {
                picked.push(class);
            }
        }
        if edits.is_empty() {
            return Remedy::not_yet("pending PersistentVolumeClaims", d, human);
        }
        let names: Vec<&str> = s.claims.iter().map(|c| c.name.as_str()).collect();
        let classes: Vec<String> = s.classes.iter().map(|k| s.class_in_words(k)).collect();
        Remedy::Change(Change {
            branch_word: "storage-class".into(),
            title: format!(
                "fix(storage): provision {} from StorageClass {}",
                names.join(", "),
                picked.join(", ")
            ),
            edits,
            notes: format!(
                "### An existing StorageClass that provisions the claim\nThe claim the pods mount names a StorageClass the cluster cannot provision it from (classes: {}).\n{}\n\n**Before merging:** a claim's `storageClassName` cannot change once it exists, so the sync cannot update the Pending claim in place: delete it (`kubectl delete pvc -n {} {}`; it was never bound, so it holds no data) and let the sync recreate it from this PR.\n",
                classes.join(", "),
                lines.join("\n"),
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
            fixes: "- **Class the cluster does not have**: use one it has (usually the default); `storageClassName` is immutable, so delete the Pending claim (it never bound: no data) and let the repo recreate it.\n- **No class and no default**: name a class explicitly, or have the platform mark one default.\n- **Access mode the class cannot provision**: a claim pods on several nodes share (`ReadWriteMany`) needs a file-system class (EFS, Filestore, Azure Files, NFS, CephFS); a block-storage default (EBS, PD, Azure Disk, local-path) refuses it (`InvalidArgument … Only AccessModes[ReadWriteOnce] supported.`). Pick the class whose provisioner provisions the claim's access modes, not the default by habit.\n- **Provisioner failed**: read its logs (cloud quota, zone, parameters); that is the platform's to fix.\n- **StatefulSet**: `volumeClaimTemplates` are immutable — delete the StatefulSet with `--cascade=orphan`, re-apply, then recreate the unbound claims.\n- Never bind a claim by hand-made PersistentVolume to get past this.".into(),
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
mod tests;
