//! kube-state-metrics' series about the nodes and what happened on them: their conditions and
//! taints, the pods the kubelets evicted or the control plane deleted from a silent node, and
//! the other teams' pods there.

use chrono::{DateTime, Utc};

use super::super::SimCluster;
use super::labels;
use crate::series::{Labels, SeriesKind};

impl SimCluster {
    /// kube-state-metrics' node conditions, the pods the kubelets evicted (Failed, reason
    /// `Evicted`) and the other teams' pods on the nodes (phase, owner, working set).
    pub(super) fn eviction_points(
        &self,
        d: &super::super::Desired,
        t: DateTime<Utc>,
        push: &mut impl FnMut(SeriesKind, Labels, f64),
    ) {
        let with = |name: &str, pairs: &[(&str, &str)]| {
            let mut l = labels(pairs);
            l.insert("__name__".into(), name.into());
            l
        };
        for node in self.scenario.cluster_nodes() {
            let n = node.name.as_str();
            let pressure = d.evictions.under_pressure(n, t).is_some();
            // Gone silent, and noticed: every condition Unknown, and the unreachable taints.
            let unknown = self.unknown(n, t).is_some();
            let heard = self.silent(n, t).is_none();
            for (condition, on) in [
                ("Ready", true),
                ("MemoryPressure", pressure),
                ("DiskPressure", false),
                ("PIDPressure", false),
            ] {
                for status in ["true", "false", "unknown"] {
                    let value = match status {
                        _ if unknown => status == "unknown",
                        "true" => on,
                        "false" => !on,
                        _ => false,
                    };
                    push(
                        SeriesKind::Gauge,
                        with(
                            "kube_node_status_condition",
                            &[("node", n), ("condition", condition), ("status", status)],
                        ),
                        if value { 1.0 } else { 0.0 },
                    );
                }
            }
            push(
                SeriesKind::Gauge,
                with("kube_node_spec_unschedulable", &[("node", n)]),
                if node.unschedulable { 1.0 } else { 0.0 },
            );
            let mut taints: Vec<(String, String, String)> = node
                .taints
                .iter()
                .map(|x| (x.key.clone(), x.value.clone(), x.effect.clone()))
                .collect();
            if pressure {
                taints.push((
                    super::super::eviction::PRESSURE_TAINT.into(),
                    String::new(),
                    "NoSchedule".into(),
                ));
            }
            if unknown {
                for effect in ["NoSchedule", "NoExecute"] {
                    taints.push((
                        super::super::node_lifecycle::UNREACHABLE_TAINT.into(),
                        String::new(),
                        effect.into(),
                    ));
                }
            }
            for (key, value, effect) in &taints {
                push(
                    SeriesKind::Gauge,
                    with(
                        "kube_node_spec_taint",
                        &[
                            ("node", n),
                            ("key", key),
                            ("value", value),
                            ("effect", effect),
                        ],
                    ),
                    1.0,
                );
            }
            for p in node.other_pods.iter().filter(|p| p.started <= t) {
                let removed = d
                    .evictions
                    .by(t)
                    .find(|e| e.slot.is_none() && e.namespace == p.namespace && e.pod == p.name);
                // The kubelet evicted it (Failed); the control plane deleted it from a silent
                // node (Running, Terminating).
                let evicted =
                    removed.is_some_and(|e| e.cause == super::super::eviction::Cause::Pressure);
                let pod = [
                    ("namespace", p.namespace.as_str()),
                    ("pod", p.name.as_str()),
                ];
                if let Some(e) = removed.filter(|_| !evicted) {
                    push(
                        SeriesKind::Gauge,
                        with("kube_pod_deletion_timestamp", &pod),
                        super::super::node_lifecycle::Silence::deletion_timestamp(e.at).timestamp()
                            as f64,
                    );
                }
                for phase in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
                    let current = if evicted { "Failed" } else { "Running" };
                    let mut l = with("kube_pod_status_phase", &pod);
                    l.insert("phase".into(), phase.into());
                    push(
                        SeriesKind::Gauge,
                        l,
                        if phase == current { 1.0 } else { 0.0 },
                    );
                }
                if evicted {
                    let mut l = with("kube_pod_status_reason", &pod);
                    l.insert("reason".into(), "Evicted".into());
                    push(SeriesKind::Gauge, l, 1.0);
                } else if heard {
                    let mut l = with("container_memory_working_set_bytes", &pod);
                    l.insert("container".into(), p.container.clone());
                    l.insert("image".into(), p.image.clone());
                    push(SeriesKind::Gauge, l, p.working_set(t));
                }
            }
        }
        let ns = self.scenario.workload.namespace.as_str();
        for e in d.evictions.by(t).filter(|e| e.slot.is_some()) {
            let pod = [("namespace", ns), ("pod", e.pod.as_str())];
            // Evicted by its kubelet: Failed. Deleted from a silent node: Running as last
            // posted, and its deletion timestamp.
            let lost = e.cause == super::super::eviction::Cause::NodeLost;
            let current = if lost { "Running" } else { "Failed" };
            for phase in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
                let mut l = with("kube_pod_status_phase", &pod);
                l.insert("phase".into(), phase.into());
                push(
                    SeriesKind::Gauge,
                    l,
                    if phase == current { 1.0 } else { 0.0 },
                );
            }
            if lost {
                push(
                    SeriesKind::Gauge,
                    with("kube_pod_deletion_timestamp", &pod),
                    super::super::node_lifecycle::Silence::deletion_timestamp(e.at).timestamp()
                        as f64,
                );
            } else {
                let mut l = with("kube_pod_status_reason", &pod);
                l.insert("reason".into(), "Evicted".into());
                push(SeriesKind::Gauge, l, 1.0);
            }
            let rs = e
                .owner
                .as_deref()
                .and_then(|o| o.split_once('/'))
                .map_or("", |x| x.1);
            push(
                SeriesKind::Gauge,
                with(
                    "kube_pod_owner",
                    &[
                        ("namespace", ns),
                        ("pod", e.pod.as_str()),
                        ("owner_kind", "ReplicaSet"),
                        ("owner_name", rs),
                        ("owner_is_controller", "true"),
                    ],
                ),
                1.0,
            );
        }
    }
}
