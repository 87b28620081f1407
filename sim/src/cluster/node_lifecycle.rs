//! A node that stops answering (`[[nodes]] unreachable_minutes_ago`): the machine died or was
//! cut off, so its kubelet posts no status and no lease after that instant (its last
//! heartbeat). What the control plane then does, as kube-controller-manager's node lifecycle
//! and taint eviction controllers do it:
//!
//! - `--node-monitor-grace-period` (40 s) after the last heartbeat, every condition of the node
//!   turns `Unknown` (`NodeStatusUnknown`: `Kubelet stopped posting node status.`), the node is
//!   tainted `node.kubernetes.io/unreachable` with `NoSchedule` and `NoExecute`, its event
//!   `NodeNotReady` (`Node <name> status is now: NodeNotReady`) is recorded, and each of its
//!   pods is marked not ready (its `Ready` condition only; the container statuses stay as the
//!   kubelet last posted them) with the event `NodeNotReady`: `Node is not ready`;
//! - a pod is deleted once its toleration of the `NoExecute` taint runs out — 300 s unless its
//!   spec says otherwise (the `DefaultTolerationSeconds` admission plugin's default), never for
//!   a toleration without `tolerationSeconds` (a DaemonSet's pods) — with the event
//!   `TaintManagerEviction` (`Marking for deletion Pod <ns>/<name>`) and the condition
//!   `DisruptionTarget` (`DeletionByTaintManager`). No kubelet confirms the deletion, so the pod
//!   stays, `Terminating`, its phase and containers as last posted;
//! - its ReplicaSet creates a pod in its place at once, which the scheduler keeps off the
//!   tainted node (`node(s) had untolerated taint {node.kubernetes.io/unreachable: }`) and
//!   places elsewhere if one has room (see `eviction.rs`, which replays it).
//!
//! The kubelet's own metrics (cAdvisor) from the node stop with it; kube-state-metrics, which
//! reads the apiserver, goes on.

use chrono::{DateTime, Utc};
use serde_json::Value;
use squad_protocols::cluster::ClusterEvent;

use super::{SimCluster, secs};
use crate::scenario::NodeSpec;

/// `--node-monitor-grace-period`.
const GRACE: i64 = 40;
/// The toleration the `DefaultTolerationSeconds` admission plugin gives every pod that states
/// none of its own.
const DEFAULT_TOLERATION: i64 = 300;
/// The taint the node lifecycle controller puts on a node whose kubelet went silent.
pub(super) const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
/// How long a deleted pod's containers are given to stop (`terminationGracePeriodSeconds`).
const GRACE_PERIOD: i64 = 30;

/// When a node went silent, and when the control plane noticed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Silence {
    /// Its kubelet's last heartbeat.
    pub last_heard: DateTime<Utc>,
    /// When the node controller marked it `Unknown` and tainted it.
    pub unknown: DateTime<Utc>,
}

impl Silence {
    /// When a pod whose spec tolerates as `tolerations` says is deleted from the node: never
    /// for a toleration of the `NoExecute` taint without `tolerationSeconds`.
    pub fn deletes_at(&self, tolerations: &[Value]) -> Option<DateTime<Utc>> {
        let matching = tolerations.iter().find(|t| {
            let key = t["key"].as_str().unwrap_or("");
            let effect = t["effect"].as_str().unwrap_or("");
            let exists = t["operator"].as_str() == Some("Exists");
            (key == UNREACHABLE_TAINT || (key.is_empty() && exists))
                && (effect.is_empty() || effect == "NoExecute")
        });
        let seconds = match matching {
            Some(t) => t["tolerationSeconds"].as_i64()?.max(0),
            None => DEFAULT_TOLERATION,
        };
        Some(self.unknown + secs(seconds))
    }

    /// The `deletionTimestamp` of a pod deleted at `at`: its grace period later.
    pub fn deletion_timestamp(at: DateTime<Utc>) -> DateTime<Utc> {
        at + secs(GRACE_PERIOD)
    }
}

impl NodeSpec {
    /// When the node went silent, relative to the scenario's `now`.
    pub(super) fn silence(&self, now: DateTime<Utc>) -> Option<Silence> {
        let last_heard = now - secs(i64::from(self.unreachable_minutes_ago?) * 60);
        Some(Silence {
            last_heard,
            unknown: last_heard + secs(GRACE),
        })
    }
}

impl SimCluster {
    /// `node`'s silence, if its kubelet has gone silent by `t`.
    pub(super) fn silent(&self, node: &str, t: DateTime<Utc>) -> Option<Silence> {
        self.scenario
            .nodes
            .iter()
            .find(|n| n.name == node)
            .and_then(|n| n.silence(self.scenario.now))
            .filter(|s| s.last_heard <= t)
    }

    /// `node`'s silence, if the control plane has noticed it by `t` (the node is `Unknown`).
    pub(super) fn unknown(&self, node: &str, t: DateTime<Utc>) -> Option<Silence> {
        self.silent(node, t).filter(|s| s.unknown <= t)
    }

    /// What the node controller recorded about `node` by `now`.
    pub(super) fn node_lifecycle_events(
        &self,
        node: &str,
        now: DateTime<Utc>,
    ) -> Vec<ClusterEvent> {
        self.unknown(node, now)
            .map(|s| ClusterEvent {
                kind: "Normal".into(),
                reason: "NodeNotReady".into(),
                message: format!("Node {node} status is now: NodeNotReady"),
                count: 1,
                first_seen: s.unknown,
                last_seen: s.unknown,
                object: format!("Node/{node}"),
            })
            .into_iter()
            .collect()
    }
}

/// What the node controller records about a pod on a node it found silent: `Node is not ready`.
pub(super) fn pod_not_ready_event(pod: &str, s: &Silence) -> ClusterEvent {
    ClusterEvent {
        kind: "Warning".into(),
        reason: "NodeNotReady".into(),
        message: "Node is not ready".into(),
        count: 1,
        first_seen: s.unknown,
        last_seen: s.unknown,
        object: format!("Pod/{pod}"),
    }
}

/// What the taint eviction controller records about a pod it deletes at `at`.
pub(super) fn taint_eviction_event(namespace: &str, pod: &str, at: DateTime<Utc>) -> ClusterEvent {
    ClusterEvent {
        kind: "Normal".into(),
        reason: "TaintManagerEviction".into(),
        message: format!("Marking for deletion Pod {namespace}/{pod}"),
        count: 1,
        first_seen: at,
        last_seen: at,
        object: format!("Pod/{pod}"),
    }
}

/// Marks a served Pod object on a silent node as the controllers leave it: `Ready=False` from
/// when the node controller noticed; and, when the taint eviction controller deleted it at
/// `deleted`, its deletion timestamp and `DisruptionTarget` condition.
pub(super) fn mark_pod(o: &mut Value, s: &Silence, deleted: Option<DateTime<Utc>>) {
    use serde_json::json;
    let created = o["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    // A pod created after the node went silent was never reported there.
    if created.is_some_and(|c| c > s.unknown) {
        return;
    }
    if let Some(conds) = o["status"]["conditions"].as_array_mut() {
        for c in conds.iter_mut().filter(|c| c["type"] == "Ready") {
            if c["status"] != "False" {
                c["status"] = json!("False");
                c["lastTransitionTime"] = json!(super::ts(s.unknown));
            }
        }
        if let Some(at) = deleted {
            conds.push(json!({"type": "DisruptionTarget", "status": "True",
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
                "lastProbeTime": null, "lastTransitionTime": super::ts(at)}));
        }
    }
    if let Some(at) = deleted {
        o["metadata"]["deletionTimestamp"] = json!(super::ts(Silence::deletion_timestamp(at)));
        o["metadata"]["deletionGracePeriodSeconds"] = json!(GRACE_PERIOD);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn silence() -> Silence {
        let last_heard = DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Silence {
            last_heard,
            unknown: last_heard + secs(GRACE),
        }
    }

    #[test]
    fn a_pod_goes_when_its_toleration_of_the_taint_runs_out() {
        let s = silence();
        // The admission plugin's default: 300 s after the taint.
        assert_eq!(s.deletes_at(&[]), Some(s.unknown + secs(300)));
        // Its own, for the unreachable key or any key.
        let own = json!([{"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute",
                          "tolerationSeconds": 30}]);
        assert_eq!(
            s.deletes_at(own.as_array().unwrap()),
            Some(s.unknown + secs(30))
        );
        // A DaemonSet's: no tolerationSeconds, never deleted; a blanket Exists, likewise.
        let forever =
            json!([{"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute"}]);
        assert_eq!(s.deletes_at(forever.as_array().unwrap()), None);
        assert_eq!(s.deletes_at(&[json!({"operator": "Exists"})]), None);
        // A toleration of another taint changes nothing.
        let other = json!([{"key": "dedicated", "operator": "Equal", "value": "gpu",
                            "effect": "NoSchedule"}]);
        assert_eq!(
            s.deletes_at(other.as_array().unwrap()),
            Some(s.unknown + secs(300))
        );
    }

    #[test]
    fn a_pod_on_a_silent_node_is_marked_not_ready_then_deleted() {
        let s = silence();
        let pod = json!({"metadata": {"name": "p", "creationTimestamp": "2026-12-04T08:00:00Z"},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-04T08:00:05Z"},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-12-04T08:00:05Z"}]}});
        let mut marked = pod.clone();
        mark_pod(&mut marked, &s, None);
        assert_eq!(marked["status"]["conditions"][0]["status"], "False");
        assert_eq!(
            marked["status"]["conditions"][0]["lastTransitionTime"],
            "2026-12-05T10:00:40Z"
        );
        // The containers' own readiness stays as the kubelet last posted it.
        assert_eq!(marked["status"]["conditions"][1]["status"], "True");
        assert!(marked["metadata"]["deletionTimestamp"].is_null());
        let mut deleted = pod.clone();
        mark_pod(&mut deleted, &s, Some(s.unknown + secs(300)));
        assert_eq!(
            deleted["metadata"]["deletionTimestamp"],
            "2026-12-05T10:06:10Z"
        );
        assert_eq!(
            deleted["status"]["conditions"][2]["reason"],
            "DeletionByTaintManager"
        );
        assert_eq!(deleted["status"]["phase"], "Running");
    }

    /// The node-lost scenario with its node going silent at `now`: the timeline as the control
    /// plane keeps it, second by second.
    #[tokio::test(start_paused = true)]
    async fn the_control_plane_notices_after_40_s_and_deletes_after_its_toleration() {
        let mut scenario = crate::Scenario::embedded("node-lost").unwrap();
        let lost = scenario
            .nodes
            .iter_mut()
            .find(|n| n.unreachable_minutes_ago.is_some())
            .unwrap();
        lost.unreachable_minutes_ago = Some(0);
        let node = lost.name.clone();
        let (sim, _git, clock, _dir) = super::super::testing::served(scenario.clone());
        let wl = scenario.workload_ref();
        let on_node = |sim: &SimCluster| {
            sim.pods_of(&wl)
                .unwrap()
                .into_iter()
                .filter(|p| p.node == node)
                .collect::<Vec<_>>()
        };
        let ready_condition = |sim: &SimCluster, pod: &str| {
            sim.world()
                .unwrap()
                .of_kind("Pod", None)
                .find(|o| o["metadata"]["name"] == pod)
                .and_then(|o| {
                    o["status"]["conditions"]
                        .as_array()
                        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                        .map(|c| c["status"].as_str().unwrap_or("").to_owned())
                })
        };
        let step = |s: u64| clock.sleep(std::time::Duration::from_secs(s));
        // Within the grace period: Ready, its pod ready.
        step(30).await;
        assert!(sim.node(&node).unwrap().ready());
        let pod = on_node(&sim).pop().unwrap();
        assert_eq!(ready_condition(&sim, &pod.name).as_deref(), Some("True"));
        // Noticed: Unknown, tainted, the pod not ready (its containers as last posted).
        step(15).await;
        let info = sim.node(&node).unwrap();
        assert!(!info.ready());
        assert_eq!(
            info.taints,
            [
                "node.kubernetes.io/unreachable:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute"
            ]
        );
        assert_eq!(ready_condition(&sim, &pod.name).as_deref(), Some("False"));
        assert!(on_node(&sim)[0].containers.iter().all(|c| c.ready));
        assert!(!on_node(&sim)[0].terminating());
        // 300 s after the taint the pod is deleted, and stays; its replacement waits.
        step(290).await;
        assert!(!on_node(&sim)[0].terminating());
        step(20).await;
        let left = on_node(&sim);
        assert_eq!(left.len(), 1);
        assert!(left[0].terminating());
        let pending: Vec<_> = sim
            .pods_of(&wl)
            .unwrap()
            .into_iter()
            .filter(|p| p.phase == "Pending")
            .collect();
        assert_eq!(pending.len(), 1);
        let events = sim.events(&wl.namespace, &pending[0].name).unwrap();
        assert!(
            events.iter().any(|e| e.reason == "FailedScheduling"
                && e.message
                    .contains("had untolerated taint {node.kubernetes.io/unreachable: }")),
            "{events:?}"
        );
        let gone = sim.events(&wl.namespace, &left[0].name).unwrap();
        let reasons: Vec<&str> = gone.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["NodeNotReady", "TaintManagerEviction"]);
    }
}
