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
//! Replicas of one ReplicaSet conflict the same way: a Deployment that runs more than one pod
//! with a ReadWriteOnce claim (scaled out, by a commit or its HPA) has its pods spread over the
//! nodes by the scheduler; the first pod's node holds the volume, and each pod placed on another
//! node waits in `ContainerCreating` with the same `FailedAttachVolume`, naming the pods on the
//! holding node, for as long as it exists (`Recreate` changes nothing: no rollout is involved).
//!
//! Stated simplifications: the old pods are those the rolling update keeps (`replicas −
//! maxUnavailable`), placed on the nodes as they are without the workload; among replicas, the
//! rollout's first pod that has a node holds the volume; no VolumeAttachment objects are served.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use squad_gitops::objects;

use super::kubelet::Blocker;
use super::life::Life;
use super::scheduler::{self, Placement};
use super::storage::{self, ClaimState};
use super::{Desired, Rollout, SimCluster, rolling_split};

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

impl SimCluster {
    /// The blocker of one pod of `r` at `t`: the rollout's own, else a ReadWriteOnce volume
    /// another pod of the same ReplicaSet holds on another node ([`Self::replica_attach`]).
    pub(super) fn pod_blocker(
        &self,
        d: &Desired,
        r: &Rollout,
        pod: &str,
        t: DateTime<Utc>,
    ) -> Option<Blocker> {
        r.blocked.clone().or_else(|| {
            self.replica_attach(d, r, pod, t, &self.placements(d, t))
                .map(|(b, _)| b)
        })
    }

    /// The container's life in one pod of `r` up to `end`: the rollout's, unless the pod cannot
    /// get the volume another replica holds (then it has waited since it was created).
    pub(super) fn pod_life(&self, d: &Desired, r: &Rollout, pod: &str, end: DateTime<Utc>) -> Life {
        match self.replica_attach(d, r, pod, end, &self.placements(d, end)) {
            Some((b, created)) => Life {
                waiting: true,
                attempts: b.attempts(created, end),
                blocked: Some(b),
                ..Life::default()
            },
            None => self.life(d, r, end),
        }
    }

    /// When `pod`, a replica of `r` serving at `t` placed as `placements` say, mounts a bound
    /// ReadWriteOnce-only claim that the rollout's first placed pod holds on another node: the
    /// attach/detach controller's refusal, naming the pods on that node, and when the pod was
    /// created (its first attempt). `None` for the rollout's own blocker (it stops every pod).
    pub(super) fn replica_attach(
        &self,
        d: &Desired,
        r: &Rollout,
        pod: &str,
        t: DateTime<Utc>,
        placements: &BTreeMap<String, Placement>,
    ) -> Option<(Blocker, DateTime<Utc>)> {
        let s = &self.scenario;
        if s.workload.kind != "Deployment" || r.blocked.is_some() {
            return None;
        }
        let count = self
            .serving(d, t)
            .into_iter()
            .find(|(x, _)| std::ptr::eq(*x, r))?
            .1;
        let pods = &r.pods[..count.min(r.pods.len())];
        let slot = pods.iter().position(|p| p == pod)?;
        let node_of = |p: &String| match placements.get(p) {
            Some(Placement::Node(n)) => Some(n.as_str()),
            _ => None,
        };
        let here = node_of(&pods[slot])?;
        let (first, there) = pods
            .iter()
            .enumerate()
            .find_map(|(i, p)| node_of(p).map(|n| (i, n)))?;
        if first == slot || here == there {
            return None;
        }
        let (volume, claim) = exclusive_claims(s, &d.objects, r).into_iter().next()?;
        let holders = pods
            .iter()
            .filter(|p| node_of(p) == Some(there))
            .cloned()
            .collect();
        let ns = s.workload.namespace.as_str();
        let blocker = Blocker::Attach {
            volume,
            pv: format!(
                "pvc-{}",
                super::world::uid(&format!("PersistentVolumeClaim/{ns}/{claim}"))
            ),
            holders,
        };
        Some((blocker, self.created_at(d, r, slot, t)))
    }
}

/// The pod volumes of `x` and the claims they mount, when the claim is bound and ReadWriteOnce
/// only (a claim that also allows ReadWriteMany or ReadOnlyMany attaches to many nodes).
fn exclusive_claims(
    s: &crate::scenario::Scenario,
    objects: &[Value],
    x: &Rollout,
) -> Vec<(String, String)> {
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
        .filter(|(_, claim)| {
            matches!(
                storage::claim_state(s, objects, claim),
                ClaimState::Bound { .. }
            ) && storage::claim(s, objects, claim).is_some_and(|o| {
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
        .collect()
}

/// The pod volume and claim both rollouts mount, when the claim is bound and ReadWriteOnce
/// only.
fn shared_exclusive_claim(
    s: &crate::scenario::Scenario,
    objects: &[Value],
    prev: &Rollout,
    r: &Rollout,
) -> Option<(String, String)> {
    let before = exclusive_claims(s, objects, prev);
    exclusive_claims(s, objects, r)
        .into_iter()
        .find(|(_, claim)| before.iter().any(|(_, c)| c == claim))
}

#[cfg(test)]
mod tests;
