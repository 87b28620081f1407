//! What node pressure leaves behind (see `cluster/eviction.rs`): the pods the kubelets evicted,
//! `Failed` with reason `Evicted` and the kubelet's message, their containers stopped; the
//! other teams' pods on the nodes; and the events the kubelets record about both.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use squad_protocols::cluster::{ClusterEvent, ContainerStatus, PodInfo};

use super::defaults::{default_pod, qos_class, stored};
use super::{Desired, Rollout, SimCluster, ts, uid};
use crate::cluster::eviction::{Cause, Evicted};
use crate::cluster::node_lifecycle::{self, Silence};
use crate::scenario::{NodePodSpec, NodeSpec};

impl SimCluster {
    /// An evicted pod of the workload, as squad reads it: `Failed`, reason `Evicted`, its
    /// containers not ready and their statuses as the kubelet last posted them (running:
    /// it stops updating a pod it evicted, which is why `kubectl get pods` shows `Evicted`).
    pub(in crate::cluster) fn evicted_pod_info(&self, r: &Rollout, e: &Evicted) -> PodInfo {
        let lost = e.cause == Cause::NodeLost;
        let app = ContainerStatus {
            name: e.container.clone(),
            ready: false,
            restart_count: 0,
            state: "running".into(),
            last_termination: None,
        };
        // Deleted from a node gone silent: as its kubelet last posted it, running and ready.
        let containers = self
            .beside_the_app(r, app)
            .into_iter()
            .map(|mut c| {
                c.ready = lost;
                c
            })
            .collect();
        if lost {
            return PodInfo {
                init_containers: Vec::new(),
                deleted_at: Some(Silence::deletion_timestamp(e.at)),
                namespace: e.namespace.clone(),
                name: e.pod.clone(),
                node: e.node.clone(),
                phase: "Running".into(),
                reason: None,
                message: None,
                owner: e.owner.clone(),
                created_at: e.created,
                containers,
            };
        }
        PodInfo {
            init_containers: Vec::new(),
            deleted_at: None,
            namespace: e.namespace.clone(),
            name: e.pod.clone(),
            node: e.node.clone(),
            phase: "Failed".into(),
            reason: Some("Evicted".into()),
            message: Some(e.message()),
            owner: e.owner.clone(),
            created_at: e.created,
            containers,
        }
    }

    /// An evicted pod of the workload, as the API server stores it.
    pub(super) fn evicted_pod_object(&self, d: &Desired, r: &Rollout, e: &Evicted) -> Value {
        let info = self.evicted_pod_info(r, e);
        let mut o = self.pod_object(d, r, &info);
        // Deleted from a silent node: `mark_silent_nodes_pods` marks it.
        if e.cause == Cause::Pressure {
            stop(&mut o, e);
        }
        o
    }

    /// What the kubelet recorded about a pod it evicted; what the node and taint eviction
    /// controllers recorded about one they deleted from a silent node.
    pub(in crate::cluster) fn eviction_events(&self, e: &Evicted) -> Vec<ClusterEvent> {
        if e.cause == Cause::NodeLost {
            let mut out: Vec<ClusterEvent> = self
                .unknown(&e.node, e.at)
                .map(|q| node_lifecycle::pod_not_ready_event(&e.pod, &q))
                .into_iter()
                .collect();
            out.push(node_lifecycle::taint_eviction_event(
                &e.namespace,
                &e.pod,
                e.at,
            ));
            return out;
        }
        let event = |kind: &str, reason: &str, message: String| ClusterEvent {
            kind: kind.into(),
            reason: reason.into(),
            message,
            count: 1,
            first_seen: e.at,
            last_seen: e.at,
            object: format!("Pod/{}", e.pod),
        };
        vec![
            event("Warning", "Evicted", e.message()),
            event(
                "Normal",
                "Killing",
                format!("Stopping container {}", e.container),
            ),
        ]
    }

    /// What a node's kubelet recorded about its memory pressure by `now`.
    pub(in crate::cluster) fn pressure_events(
        &self,
        d: &Desired,
        node: &str,
        now: DateTime<Utc>,
    ) -> Vec<ClusterEvent> {
        let ev = &d.evictions;
        let event = |kind: &str, reason: &str, message: String, first, last, count| ClusterEvent {
            kind: kind.into(),
            reason: reason.into(),
            message,
            count,
            first_seen: first,
            last_seen: last,
            object: format!("Node/{node}"),
        };
        let mut out = Vec::new();
        for p in ev
            .pressure
            .iter()
            .filter(|p| p.node == node && p.from <= now)
        {
            out.push(event(
                "Normal",
                "NodeHasInsufficientMemory",
                format!("Node {node} status is now: NodeHasInsufficientMemory"),
                p.from,
                p.from,
                1,
            ));
            let within: Vec<&Evicted> = ev
                .by(now)
                .filter(|e| e.cause == Cause::Pressure)
                .filter(|e| e.node == node && e.at >= p.from && p.until.is_none_or(|u| e.at < u))
                .collect();
            if let (Some(f), Some(l)) = (within.first(), within.last()) {
                out.push(event(
                    "Warning",
                    "EvictionThresholdMet",
                    "Attempting to reclaim memory".into(),
                    f.at,
                    l.at,
                    within.len() as u32,
                ));
            }
            if let Some(u) = p.until.filter(|u| *u <= now) {
                out.push(event(
                    "Normal",
                    "NodeHasSufficientMemory",
                    format!("Node {node} status is now: NodeHasSufficientMemory"),
                    u,
                    u,
                    1,
                ));
            }
        }
        out
    }

    /// Another team's pod on a node, as the API server stores it: running, or evicted.
    pub(super) fn other_pod_object(
        &self,
        node: &NodeSpec,
        p: &NodePodSpec,
        evicted: Option<&Evicted>,
    ) -> Value {
        let mut resources = json!({});
        for (which, r) in [("requests", &p.requests), ("limits", &p.limits)] {
            if let Some(q) = &r.memory {
                resources[which]["memory"] = json!(q.canonical());
            }
            if let Some(q) = &r.cpu {
                resources[which]["cpu"] = json!(q.canonical());
            }
        }
        let mut spec = json!({
            "containers": [{"name": p.container, "image": p.image, "resources": resources}],
            "nodeName": node.name,
            "priority": p.priority,
        });
        if let Some(pc) = &p.priority_class {
            spec["priorityClassName"] = json!(pc);
        }
        default_pod(&mut spec);
        let mut meta = json!({"name": p.name, "namespace": p.namespace});
        if let Some((kind, name)) = p.owner.as_deref().and_then(|o| o.split_once('/')) {
            // A Deployment's pods belong to its ReplicaSet, named as the pod's name implies.
            let (kind, name, api) = match kind {
                "Deployment" => (
                    "ReplicaSet",
                    p.name.rsplit_once('-').map_or(name, |x| x.0),
                    "apps/v1",
                ),
                "Job" => ("Job", name, "batch/v1"),
                other => (other, name, "apps/v1"),
            };
            meta["ownerReferences"] = json!([{"apiVersion": api, "kind": kind, "name": name,
                "uid": uid(&format!("{kind}/{}/{name}", p.namespace)),
                "controller": true, "blockOwnerDeletion": true}]);
        }
        let ip = format!(
            "10.244.{}.{}",
            self.node_index(&node.name),
            250 + (uid(&p.name).as_bytes()[0] % 5)
        );
        let started = ts(p.started);
        let cond = |t: &str, st: &str| json!({"type": t, "status": st, "lastProbeTime": null, "lastTransitionTime": started});
        let qos = qos_class(&spec);
        let mut o = stored(
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": meta,
                "spec": spec,
                "status": {
                    "phase": "Running",
                    "conditions": [cond("Initialized", "True"), cond("Ready", "True"),
                                   cond("ContainersReady", "True"), cond("PodScheduled", "True")],
                    "hostIP": "127.0.0.1", "podIP": ip, "podIPs": [{"ip": ip}],
                    "startTime": started,
                    "qosClass": qos,
                    "containerStatuses": [{"name": p.container, "ready": true, "started": true,
                        "restartCount": 0, "image": p.image,
                        "imageID": format!("{}@sha256:{}", p.image, uid(&p.image).replace('-', "")),
                        "containerID": format!("containerd://{}", uid(&p.name).replace('-', "")),
                        "state": {"running": {"startedAt": started}}, "lastState": {}}],
                }
            }),
            None,
            p.started,
        );
        if let Some(e) = evicted.filter(|e| e.cause == Cause::Pressure) {
            stop(&mut o, e);
        }
        o
    }

    /// Every served pod on a node gone silent, as the controllers leave it: not ready once the
    /// node controller noticed, and `Terminating` once the taint eviction controller deleted it
    /// (see `node_lifecycle.rs`).
    pub(super) fn mark_silent_nodes_pods(
        &self,
        d: &Desired,
        objects: &mut [Value],
        now: DateTime<Utc>,
    ) {
        for o in objects.iter_mut().filter(|o| o["kind"] == "Pod") {
            let Some(q) = o["spec"]["nodeName"]
                .as_str()
                .and_then(|n| self.unknown(n, now))
            else {
                continue;
            };
            let (ns, name) = (
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or(""),
            );
            let deleted = d
                .evictions
                .by(now)
                .find(|e| e.cause == Cause::NodeLost && e.namespace == ns && e.pod == name)
                .map(|e| e.at);
            node_lifecycle::mark_pod(o, &q, deleted);
        }
    }
}

/// Marks a pod object evicted: `Failed`, reason `Evicted` and the kubelet's message, not ready
/// (its container statuses otherwise as last posted).
fn stop(o: &mut Value, e: &Evicted) {
    let status = &mut o["status"];
    status["phase"] = json!("Failed");
    status["reason"] = json!("Evicted");
    status["message"] = json!(e.message());
    if let Some(conds) = status["conditions"].as_array_mut() {
        for c in conds {
            if matches!(c["type"].as_str(), Some("Ready" | "ContainersReady")) {
                c["status"] = json!("False");
                c["reason"] = json!("PodFailed");
                c["lastTransitionTime"] = json!(ts(e.at));
                if let Some(m) = c.as_object_mut() {
                    m.remove("message");
                }
            }
        }
    }
    if let Some(cs) = status["containerStatuses"].as_array_mut() {
        for c in cs {
            c["ready"] = json!(false);
        }
    }
}
