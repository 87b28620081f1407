//! Volume attach or mount: the container waits in `ContainerCreating` because the kubelet cannot
//! get a volume onto the node — the attach/detach controller's `FailedAttachVolume` (`Multi-Attach
//! error for volume "pvc-…" Volume is already exclusively attached to one node and can't be
//! attached to another`: a ReadWriteOnce volume still held by the node an earlier pod ran on; or
//! `AttachVolume.Attach failed for volume …`: the storage backend refuses or times out), or the
//! kubelet's `FailedMount` that is not a missing ConfigMap or Secret (`Unable to attach or mount
//! volumes: unmounted volumes=[data] …: timed out waiting for the condition`, `MountVolume.MountDevice
//! failed …`). A missing ConfigMap or Secret is `broken_config_reference`'s (listed before this
//! one). Not a workload change as such, but the usual cause of Multi-Attach is one: a Deployment
//! that rolls (`RollingUpdate`) with a ReadWriteOnce claim, its new pod scheduled to another node
//! while the old one still holds the volume: the fix is `strategy: Recreate`. When the pods that
//! hold the volume are replicas of the waiting pod's own ReplicaSet (a workload scaled out over a
//! ReadWriteOnce claim), Recreate changes nothing: the change that raised `replicas` is undone,
//! or the app's owners decide how it scales out (`replicas.rs`). Any other attach or mount
//! failure goes to the platform team with the volume, the node and what the events say.

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::ClusterEvent;
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::facts::Lookup;
use crate::{
    Change, ClusterNeeds, Detection, Edit, Facts, Family, IssueDraft, Readings, Remedy,
    RemedyInput, RepoNeeds, RepoView, Runbook,
};

mod replicas;
pub use replicas::SharedByReplicas;

pub struct VolumeAttach;

pub const ROOT_CAUSE: &str = "volume_attach";

/// What the family found, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeAttachSignals {
    /// `multi_attach`, `attach_failed` or `mount_timeout`.
    pub kind: String,
    /// The volume the events name (`pvc-…`, or the pod's volume name), if they name one.
    pub volume: Option<String>,
    pub message: String,
    /// When the pods that hold the volume are the waiting pod's own replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<SharedByReplicas>,
}

/// The text between the first pair of quotes after `after`.
fn quoted_after<'a>(message: &'a str, after: &str) -> Option<&'a str> {
    let rest = message.split_once(after)?.1;
    let rest = rest.split_once('"')?.1;
    Some(rest.split_once('"')?.0)
}

/// The newest event that says the volume cannot be attached or mounted (not a missing
/// ConfigMap or Secret).
fn failure(facts: &Facts) -> Option<&ClusterEvent> {
    facts
        .events
        .iter()
        .filter(|e| match e.reason.as_str() {
            "FailedAttachVolume" => true,
            "FailedMount" => {
                !e.message.contains("configmap")
                    && !e.message.contains("secret")
                    && (e.message.starts_with("Unable to attach or mount volumes")
                        || e.message.starts_with("MountVolume.MountDevice failed")
                        || e.message.starts_with("MountVolume.WaitForAttach failed")
                        || e.message.starts_with("MountVolume.SetUp failed"))
            }
            _ => false,
        })
        .max_by_key(|e| (e.reason == "FailedAttachVolume", e.last_seen))
}

impl Family for VolumeAttach {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("FailedAttachVolume")
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let status = facts.status()?;
        if status.state != "waiting: ContainerCreating" {
            return None;
        }
        let e = failure(facts)?;
        let node = facts
            .pod
            .as_ref()
            .map(|p| p.node.as_str())
            .filter(|n| !n.is_empty())
            .unwrap_or("its node");
        let mut d = Detection::new(String::new(), 0.85, &[]);
        for ev in facts
            .events
            .iter()
            .filter(|x| x.reason == "FailedAttachVolume" || x.reason == "FailedMount")
        {
            d.evidence.push(Evidence {
                source: "pod events".into(),
                observation: format!(
                    "{} ({}×, since {}): {}",
                    ev.reason,
                    ev.count,
                    ev.first_seen.to_rfc3339(),
                    ev.message
                ),
            });
        }
        let since = e.first_seen.to_rfc3339();
        let mut shared = None;
        let (kind, volume, what) = if e.message.contains("Multi-Attach error") {
            let volume = quoted_after(&e.message, "for volume").map(str::to_owned);
            shared = replicas::shared_by_replicas(facts, volume.as_deref(), &e.message);
            if let Some(s) = &shared {
                d.recommendations.extend(replicas::recommendations(s));
                let what = replicas::what(s, volume.as_deref(), node, &facts.workload.name);
                ("multi_attach", volume, what)
            } else {
                let strategy = if facts.info.claims.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} mounts claim{} {} (ReadWriteOnce volumes go to one node at a time)",
                        facts.workload.name,
                        if facts.info.claims.len() == 1 {
                            ""
                        } else {
                            "s"
                        },
                        facts.info.claims.join(", ")
                    )
                };
                d.recommendations.push(format!(
                    "find the node that still holds it (`kubectl get volumeattachments | grep {}`) and the pod there: a pod of the previous rollout, or one on a node that went down",
                    volume.as_deref().unwrap_or("<volume>")
                ));
                d.recommendations.push(
                    "a Deployment with a ReadWriteOnce claim rolls with `strategy: Recreate` (or becomes a StatefulSet), so the old pod releases the volume before the new one needs it".into(),
                );
                d.recommendations.push(
                    "a node that is gone releases its volumes only after the attach/detach controller's 6-minute force-detach or when the node object is deleted".into(),
                );
                (
                    "multi_attach",
                    volume.clone(),
                    format!(
                        "volume {} is still attached to another node, so it cannot attach to {node}{strategy}",
                        volume.as_deref().unwrap_or("(unnamed)")
                    ),
                )
            }
        } else if e.reason == "FailedAttachVolume" {
            let volume = quoted_after(&e.message, "for volume").map(str::to_owned);
            d.recommendations.push(
                "read the storage driver's controller logs and the VolumeAttachment's status (`kubectl describe volumeattachment`): the backend refused or timed out".into(),
            );
            (
                "attach_failed",
                volume.clone(),
                format!(
                    "the storage backend fails to attach volume {} to {node}",
                    volume.as_deref().unwrap_or("(unnamed)")
                ),
            )
        } else {
            let volume = quoted_after(&e.message, "unmounted volumes=[")
                .or_else(|| quoted_after(&e.message, "for volume"))
                .map(str::to_owned)
                .or_else(|| {
                    e.message
                        .split_once("unmounted volumes=[")
                        .and_then(|x| x.1.split_once(']'))
                        .map(|x| x.0.to_owned())
                });
            d.recommendations.push(format!(
                "`kubectl describe pod` and the kubelet's log on {node}: which volume never attached or mounted, and the CSI node plugin's pod on that node"
            ));
            (
                "mount_timeout",
                volume.clone(),
                format!(
                    "the kubelet on {node} cannot mount volume {}",
                    volume.as_deref().unwrap_or("(unnamed)")
                ),
            )
        };
        d.summary = format!(
            "{} waits in ContainerCreating since {since}: {what} ({}: {})",
            facts.container, e.reason, e.message
        );
        d.signals = serde_json::to_value(VolumeAttachSignals {
            kind: kind.into(),
            volume,
            message: e.message.clone(),
            replicas: shared,
        })
        .ok();
        Some(d)
    }

    /// A Multi-Attach error: the claims (their access modes) and the HPAs that scale the
    /// workload, to tell replicas sharing a claim from a rollout's old and new pods.
    fn lookups(&self, facts: &Facts) -> Vec<Lookup> {
        let multi = facts
            .events
            .iter()
            .any(|e| e.reason == "FailedAttachVolume" && e.message.contains("Multi-Attach error"));
        if multi && !facts.info.claims.is_empty() {
            vec![Lookup::Claims, Lookup::Autoscalers]
        } else {
            Vec::new()
        }
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[(
            Member::Belanna,
            "the claim's access mode against the workload's update strategy, and the node that still holds the volume",
        )]
    }

    /// The manifest's history: a change of `replicas` to undo.
    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds {
            manifest: true,
            history: true,
        }
    }

    /// The HPAs, when replicas share the volume: an HPA sets the replica count, not the manifest.
    fn cluster_needs(&self, d: &Diagnosis, _repo: &RepoView) -> ClusterNeeds {
        let s: Option<VolumeAttachSignals> = crate::family_signals(d);
        ClusterNeeds {
            hpas: s.is_some_and(|s| s.replicas.is_some()),
            ..ClusterNeeds::default()
        }
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        let s: Option<VolumeAttachSignals> = crate::family_signals(d);
        if let Some(shared) = s.as_ref().and_then(|s| s.replicas.as_ref()) {
            return replicas::remedy(d, shared, input);
        }
        let multi = s.as_ref().is_some_and(|s| s.kind == "multi_attach");
        if !multi || input.workload.kind != "Deployment" {
            return Remedy::owned_by(
                "the platform team (storage)",
                d,
                "releases the volume (the node or the attachment that holds it) or fixes the storage driver",
            );
        }
        // A rolling update starts the new pod before the old one stops: a ReadWriteOnce volume
        // cannot follow it to another node. `Recreate` stops the old pod first.
        let Some(doc) = input.repo.workload(input.workload).document() else {
            return Remedy::Escalate {
                reason: format!(
                    "{} (the GitOps repository does not declare {}): a human rolls it out with strategy Recreate, or releases the volume",
                    d.summary, input.workload
                ),
            };
        };
        let strategy = doc["spec"]["strategy"]["type"].as_str().map(str::to_owned);
        if strategy.as_deref() == Some("Recreate") {
            return Remedy::owned_by(
                "the platform team (storage)",
                d,
                "releases the volume the old attachment still holds (the Deployment already rolls with Recreate)",
            );
        }
        let why = format!(
            "{}'s new pod cannot attach the ReadWriteOnce volume the old pod still holds on another node ({})",
            input.workload.name,
            s.as_ref().map_or("", |s| s.message.as_str())
        );
        Remedy::Change(Change {
            branch_word: "recreate".into(),
            title: format!(
                "fix(infra): roll {} out with strategy Recreate (ReadWriteOnce volume)",
                input.workload.name
            ),
            edits: vec![Edit::SetObjectKey {
                path: input.repo.path.clone(),
                kind: input.workload.kind.clone(),
                name: input.workload.name.clone(),
                keys: vec!["spec".into(), "strategy".into()],
                lines: Some(vec!["strategy:".into(), "  type: Recreate".into()]),
            }],
            notes: format!(
                "### Roll out with Recreate\n{why}. A Deployment's RollingUpdate (the default{}) starts the new pod before the old one stops, so a ReadWriteOnce volume can follow it only when both land on the same node. `strategy: Recreate` stops the old pod first: the volume detaches and attaches to the new pod wherever it is scheduled. The cost: each rollout has a short gap with no pod (the workload cannot serve from two pods on one RWO volume anyway). For replicas that each need their own volume, a StatefulSet is the lasting shape.\n",
                strategy.map_or(String::new(), |s| format!("; now `{s}`"))
            ),
            findings: vec![squad_protocols::Finding {
                severity: squad_protocols::Severity::High,
                title: "rolling update with a ReadWriteOnce volume".into(),
                detail: why,
            }],
        })
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "volume-attach".into(),
            meaning: "A pod's volume cannot be attached to its node or mounted there, so its containers never start (`ContainerCreating`): `FailedAttachVolume` (`Multi-Attach error …`: a ReadWriteOnce volume still attached to another node; or the storage backend refuses) or `FailedMount` (`Unable to attach or mount volumes … timed out`).".into(),
            checks: "1. `kubectl describe pod <pod> -n <ns>`: Events (FailedAttachVolume, FailedMount).\n2. `kubectl get volumeattachments` (the PV's name): which node holds it, attached or not.\n3. `kubectl get pods -A -o wide` on that node: the pod that still uses the claim.\n4. The CSI driver's controller and node plugin logs.".into(),
            fixes: "- **Multi-Attach**: let the old pod go (or the dead node be deleted); roll ReadWriteOnce workloads with `strategy: Recreate`, or use a StatefulSet.\n- **Replicas of one ReplicaSet sharing a ReadWriteOnce claim** (the pods named as holding it are the waiting pod's own replicas): Recreate changes nothing; run one replica (undo the change that raised `replicas`), and let the app's owners choose storage per replica (a StatefulSet with `volumeClaimTemplates`) or a ReadWriteMany class.\n- **Backend**: fix the storage driver or the cloud quota it hits; the kubelet retries on its own.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!("{workload} mounts a ReadWriteOnce volume: a rolling update can start its new pod on another node before the old one lets go."),
            "A volume attached to a dead node is released only after the force-detach timeout or when the node object goes.".into(),
            "Replicas on several nodes cannot share one ReadWriteOnce claim: scaling out needs a claim per replica (a StatefulSet) or a ReadWriteMany class.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &crate::FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Let {} roll without waiting on its volume",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) a pod of {} could not get its volume attached.\n\n\
                 1. If it mounts a ReadWriteOnce claim, use `strategy: Recreate` (or a StatefulSet), and run one replica unless each has its own claim.\n\
                 2. Alert on pods in ContainerCreating for more than 10 minutes.\n\
                 3. Check: `kubectl describe pod -n {} {}`.",
                cx.incident, cx.issue, cx.workload.name, cx.workload.namespace, cx.pod
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing;

    fn creating(reason: &str, message: &str) -> Facts {
        let mut f = testing::facts("Completed", 0, |_| 80.0, |_| 10.0);
        let p = f.pod.as_mut().unwrap();
        p.phase = "Pending".into();
        p.node = "pool-a-2".into();
        p.containers[0].state = "waiting: ContainerCreating".into();
        p.containers[0].last_termination = None;
        p.containers[0].restart_count = 0;
        f.info.claims = vec!["orders-data".into()];
        f.events = vec![ClusterEvent {
            kind: "Warning".into(),
            reason: reason.into(),
            message: message.into(),
            count: 9,
            first_seen: testing::now() - chrono::Duration::minutes(14),
            last_seen: testing::now(),
            object: "Pod/orders-7d9f-x2k9p".into(),
        }];
        f
    }

    #[test]
    fn a_read_write_once_volume_held_by_another_node_is_a_multi_attach() {
        let f = creating(
            "FailedAttachVolume",
            "Multi-Attach error for volume \"pvc-3f1c2a9e-8d4b-4e7a-9c1d-2b5e6f7a8c9d\" Volume is already exclusively attached to one node and can't be attached to another",
        );
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE, "{}", d.summary);
        assert!(
            d.summary.contains("volume pvc-3f1c2a9e-8d4b-4e7a-9c1d-2b5e6f7a8c9d is still attached to another node, so it cannot attach to pool-a-2; "),
            "{}",
            d.summary
        );
        assert!(
            d.summary.contains("mounts claim orders-data"),
            "{}",
            d.summary
        );
        assert!(
            d.recommendations
                .iter()
                .any(|r| r.contains("strategy: Recreate")),
            "{:?}",
            d.recommendations
        );
        let reason = testing::escalation(&VolumeAttach, &d);
        assert!(reason.contains("Recreate"), "{reason}");
    }

    #[test]
    fn a_mount_that_times_out_names_the_volume_and_a_missing_config_map_is_not_this_family() {
        let f = creating(
            "FailedMount",
            "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data kube-api-access-8h2kq]: timed out waiting for the condition",
        );
        let d = VolumeAttach.detect(&f, &Readings::of(&f)).unwrap();
        assert!(
            d.summary.contains("cannot mount volume data ("),
            "{}",
            d.summary
        );
        let f = creating(
            "FailedMount",
            "MountVolume.SetUp failed for volume \"config\" : configmap \"orders-config\" not found",
        );
        assert!(VolumeAttach.detect(&f, &Readings::of(&f)).is_none());
        assert_eq!(
            testing::diagnosis(&f).root_cause.as_str(),
            "broken_config_reference"
        );
    }
}
