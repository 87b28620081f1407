//! The cluster-scoped objects every world serves: its Namespaces (the four every cluster has,
//! and each one an object lives in, with the labels the repo and the platform give them) and its
//! Nodes, as their kubelets register them and report their conditions.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::super::{Desired, SimCluster, eviction, node_lifecycle};
use super::defaults::stored;
use super::ts;

impl SimCluster {
    /// The Namespaces, then the Nodes, as served at `now` (all created a month before the
    /// first rollout, `first`).
    pub(super) fn cluster_scoped_objects(
        &self,
        d: &Desired,
        first: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<Value> {
        // Namespaces: the four every cluster has and every one an object lives in.
        let (s, ns) = (&self.scenario, self.scenario.workload.namespace.as_str());
        let mut objects = Vec::new();
        let mut namespaces: Vec<String> = [
            "default",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            ns,
        ]
        .map(str::to_owned)
        .to_vec();
        for o in &d.objects {
            if let Some(n) = o["metadata"]["namespace"].as_str() {
                namespaces.push(n.to_owned());
            }
        }
        for node in s.cluster_nodes() {
            namespaces.extend(node.other_pods.iter().map(|p| p.namespace.clone()));
        }
        namespaces.sort();
        namespaces.dedup();
        for n in &namespaces {
            let mut metadata = json!({ "name": n });
            let labels = super::super::admission::namespace_labels(s, &d.objects, n, now);
            if !labels.is_empty() {
                metadata["labels"] = json!(labels);
            }
            objects.push(stored(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata,
                       "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
                None,
                first - chrono::Duration::days(30),
            ));
        }
        for node in s.cluster_nodes() {
            objects.push(self.node_object(d, &node, first - chrono::Duration::days(30), now));
        }
        objects
    }

    /// A node as its kubelet registers it: the scenario's allocatable, and a capacity that adds
    /// the kubelet's usual reservations (200m CPU, 820Mi memory) to it.
    pub(super) fn node_object(
        &self,
        d: &Desired,
        node: &crate::scenario::NodeSpec,
        created: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Value {
        let name = &node.name;
        let mut labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/worker": ""});
        for (k, v) in &node.labels {
            labels[k] = json!(v);
        }
        let cidr = format!("10.244.{}.0/24", self.node_index(name));
        let mut spec = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
        let mut taints: Vec<Value> = node
            .taints
            .iter()
            .map(|t| {
                let mut taint = json!({"key": t.key, "effect": t.effect});
                if !t.value.is_empty() {
                    taint["value"] = json!(t.value);
                }
                taint
            })
            .collect();
        if node.unschedulable {
            spec["unschedulable"] = json!(true);
            taints.push(
                json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
                               "timeAdded": ts(created)}),
            );
        }
        // Memory pressure: the kubelet's condition, the node lifecycle controller's taint.
        let pressure = d.evictions.under_pressure(name, now);
        let relieved = d
            .evictions
            .pressure
            .iter()
            .filter(|p| p.node == *name && p.until.is_some_and(|u| u <= now))
            .filter_map(|p| p.until)
            .max();
        if let Some(p) = pressure {
            taints.push(
                json!({"key": eviction::PRESSURE_TAINT, "effect": "NoSchedule",
                               "timeAdded": ts(p.from)}),
            );
        }
        // A node gone silent: the node lifecycle controller's taints, once it noticed.
        let silent = self.unknown(name, now);
        if let Some(q) = silent {
            for effect in ["NoSchedule", "NoExecute"] {
                taints.push(
                    json!({"key": node_lifecycle::UNREACHABLE_TAINT, "effect": effect,
                                   "timeAdded": ts(q.unknown)}),
                );
            }
        }
        if !taints.is_empty() {
            spec["taints"] = json!(taints);
        }
        let capacity_cpu = squad_protocols::Quantity::from_milli(node.cpu.milli() + 200);
        let capacity_memory =
            squad_protocols::Quantity::from_bytes(node.memory.bytes() + 820 * 1024 * 1024);
        let pods = node.pods.to_string();
        let cond = |t: &str, status: &str, reason: &str, message: &str| {
            json!({"type": t, "status": status, "reason": reason, "message": message,
                   "lastHeartbeatTime": ts(now), "lastTransitionTime": ts(created)})
        };
        let mut conditions = vec![
            match pressure {
                Some(p) => json!({"type": "MemoryPressure", "status": "True",
                    "reason": "KubeletHasInsufficientMemory",
                    "message": "kubelet has insufficient memory available",
                    "lastHeartbeatTime": ts(now), "lastTransitionTime": ts(p.from)}),
                None => json!({"type": "MemoryPressure", "status": "False",
                    "reason": "KubeletHasSufficientMemory",
                    "message": "kubelet has sufficient memory available",
                    "lastHeartbeatTime": ts(now),
                    "lastTransitionTime": ts(relieved.unwrap_or(created))}),
            },
            cond(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            cond(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            cond(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
            ),
        ];
        // Silent: its last heartbeat stays, and the node controller turns every condition
        // Unknown.
        if let Some(q) = silent {
            for c in &mut conditions {
                c["status"] = json!("Unknown");
                c["reason"] = json!("NodeStatusUnknown");
                c["message"] = json!("Kubelet stopped posting node status.");
                c["lastHeartbeatTime"] = json!(ts(q.last_heard));
                c["lastTransitionTime"] = json!(ts(q.unknown));
            }
        }
        stored(
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": labels},
                "spec": spec,
                "status": {
                    "capacity": {"cpu": capacity_cpu.canonical(), "memory": capacity_memory.canonical(), "pods": pods},
                    "allocatable": {"cpu": node.cpu.canonical(), "memory": node.memory.canonical(), "pods": pods},
                    "conditions": conditions,
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                  {"type": "Hostname", "address": name}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                    "nodeInfo": {"kubeletVersion": "v1.33.4", "kubeProxyVersion": "v1.33.4",
                                 "containerRuntimeVersion": "containerd://1.7.27",
                                 "operatingSystem": "linux", "architecture": "amd64",
                                 "osImage": "Debian GNU/Linux 12 (bookworm)",
                                 "kernelVersion": "6.1.0-37-amd64",
                                 "machineID": "", "systemUUID": "", "bootID": ""},
                }
            }),
            None,
            created,
        )
    }
}
