//! The attach/detach controller, for ReadWriteOnce volumes: a volume is attached to one node
//! at a time. A Deployment that rolls (`RollingUpdate`, the default) with a ReadWriteOnce claim
//! creates its new pod while the old ones still run; the scheduler places it by its own scores
//! (the claim does not pin it to the node that holds the volume), and when it lands elsewhere
//! the controller cannot attach the volume there: the pod stays `ContainerCreating` with
//! `FailedAttachVolume` (`Multi-Attach error for volume "pvc-…" Volume is already used by
//! pod(s) …`), the kubelet times out mounting it, and the rollout never progresses, so the old
//! pods never go and the volume is never released. Under `Recreate` (the Deployment's strategy
//! as it is now: switched mid-rollout, the controller scales the old ReplicaSet down first) the
//! old pods are gone first and nothing conflicts.
//!
//! Stated simplifications: the old pods are those the rolling update keeps (`replicas −
//! maxUnavailable`), placed on the nodes as they are without the workload; no VolumeAttachment
//! objects are served.

use serde_json::Value;
use squad_gitops::objects;

use super::kubelet::Blocker;
use super::scheduler::{self, Placement};
use super::storage::{self, ClaimState};
use super::{Rollout, SimCluster, rolling_split};

impl SimCluster {
    /// Marks each rollout whose new pod cannot get a ReadWriteOnce volume the rollout before it
    /// holds on another node (see the module doc).
    pub(super) fn attach_conflicts(&self, rollouts: &mut [Rollout], objects: &[Value]) {
        let s = &self.scenario;
        if s.workload.kind != "Deployment" {
            return;
        }
        // The strategy in force is the Deployment's as it is now: switched to `Recreate`
        // mid-rollout, the controller scales the old ReplicaSet down before the new one up.
        let ns = s.workload.namespace.as_str();
        let recreate = objects.iter().any(|o| {
            objects::kind(o) == "Deployment"
                && objects::name(o) == s.workload.name
                && o["metadata"]["namespace"].as_str().unwrap_or(ns) == ns
                && o["spec"]["strategy"]["type"].as_str() == Some("Recreate")
        });
        if recreate {
            return;
        }
        for i in 1..rollouts.len() {
            let (before, after) = rollouts.split_at_mut(i);
            let (prev, r) = (&before[i - 1], &mut after[0]);
            let clean = |x: &Rollout| {
                x.blocked.is_none() && x.refused.is_none() && x.unschedulable.is_none()
            };
            if !clean(prev) || !clean(r) {
                continue;
            }
            let Some((volume, claim)) = shared_exclusive_claim(s, objects, prev, r) else {
                continue;
            };
            // Where the old pods the rolling update keeps run, then where the new one lands.
            let mut nodes = self.fresh_nodes();
            let (keep, _) = rolling_split(r, prev.workload.replicas);
            let old: Vec<(String, Placement)> = prev
                .pods
                .iter()
                .take(keep)
                .map(|p| (p.clone(), scheduler::place(&mut nodes, &prev.needs)))
                .collect();
            let Placement::Node(there) = scheduler::place(&mut nodes, &r.needs) else {
                continue;
            };
            let holders: Vec<String> = old
                .into_iter()
                .filter(|(_, at)| !matches!(at, Placement::Node(n) if *n == there))
                .map(|(p, _)| p)
                .collect();
            if holders.is_empty() {
                continue;
            }
            r.blocked = Some(Blocker::Attach {
                volume,
                pv: format!(
                    "pvc-{}",
                    super::world::uid(&format!("PersistentVolumeClaim/{ns}/{claim}"))
                ),
                holders,
            });
        }
    }
}

/// The pod volume and claim both rollouts mount, when the claim is bound and ReadWriteOnce
/// only (a claim that also allows ReadWriteMany or ReadOnlyMany attaches to many nodes).
fn shared_exclusive_claim(
    s: &crate::scenario::Scenario,
    objects: &[Value],
    prev: &Rollout,
    r: &Rollout,
) -> Option<(String, String)> {
    let claims = |x: &Rollout| -> Vec<(String, String)> {
        objects::pod_spec(&x.object)["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                Some((
                    v["name"].as_str()?.to_owned(),
                    v["persistentVolumeClaim"]["claimName"].as_str()?.to_owned(),
                ))
            })
            .collect()
    };
    let before = claims(prev);
    claims(r).into_iter().find(|(_, claim)| {
        before.iter().any(|(_, c)| c == claim)
            && matches!(
                storage::claim_state(s, objects, claim),
                ClaimState::Bound { .. }
            )
            && storage::claim(s, objects, claim).is_some_and(|o| {
                let modes: Vec<&str> = o["spec"]["accessModes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                modes.contains(&"ReadWriteOnce")
                    && !modes.contains(&"ReadWriteMany")
                    && !modes.contains(&"ReadOnlyMany")
            })
    })
}

#[cfg(test)]
mod tests;
