//! Node pressure: the alerted pod was evicted (`Failed`, reason `Evicted`: `The node was low on
//! resource: memory. Container x was using 300Mi, which exceeds its request of 256Mi.`) because
//! its node ran short of memory, not because of anything in the workload's own change. The
//! kubelet evicts, one pod at a time, pods using more than they request, the lowest priority
//! first: the evictions cross workloads, and the pod that fills the node is often the last to
//! go (a higher priority, or a request so large it is not over it). The family reads every pod
//! on the node and the node's events, and names the node, when it was under pressure, the pods
//! evicted there (of how many workloads), and the worst offender still on it: the pod that uses
//! most beyond its request or, where its use is not known, the higher-priority pod with no memory
//! limit. This is not a workload PR: the crew escalates with the node and the offender (a limit
//! on the offender, requests that match use, or a node pool decision are for a human). Disk
//! (`ephemeral-storage`, `DiskPressure`) and process-ID (`pids`, `PIDPressure`) evictions are
//! named as such; their offender is not known from the facts read (no per-pod disk or process
//! use), so none is named.

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::NodePod;
use squad_protocols::{Diagnosis, Evidence, Member, Quantity, RootCause, WorkloadRef};

use crate::{Detection, Facts, Family, IssueDraft, Lookup, Readings, Remedy, RemedyInput, Runbook};

pub struct NodePressure;

pub const ROOT_CAUSE: &str = "node_pressure";

/// What the family found, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePressureSignals {
    pub node: String,
    /// The pressure the node reports now (`MemoryPressure`), if it still does.
    pub pressure_now: Option<String>,
    /// The evicted pods on the node, `namespace/name`, and the workloads they belong to.
    pub evicted: Vec<String>,
    pub workloads: Vec<String>,
    /// The pod still on the node the evictions spared: `namespace/name`.
    pub offender: Option<String>,
}

fn quantity(q: Option<&Quantity>) -> String {
    q.map_or_else(|| "nothing".to_owned(), Quantity::to_string)
}

impl Family for NodePressure {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("NodePressure")
    }

    fn lookups(&self, facts: &Facts) -> Vec<Lookup> {
        let evicted = facts.pod.as_ref().is_some_and(|p| p.evicted());
        let pressured = facts
            .node
            .as_ref()
            .is_some_and(|n| !n.pressures().is_empty());
        if evicted || pressured {
            vec![Lookup::NodePods]
        } else {
            Vec::new()
        }
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let pod = facts.pod.as_ref()?;
        let pressure_now = facts
            .node
            .as_ref()
            .and_then(|n| n.pressures().first().map(|c| c.kind.clone()));
        if !pod.evicted() && pressure_now.is_none() {
            return None;
        }
        let node = pod.node.clone();
        let resource = Resource::of(pod, pressure_now.as_deref());
        let evicted: Vec<&NodePod> = facts.node_pods.iter().filter(|p| p.pod.evicted()).collect();
        let mut workloads: Vec<String> = evicted.iter().map(|p| p.pod.workload_name()).collect();
        workloads.sort();
        workloads.dedup();
        // Still on the node: who the kubelet spared. The worst offender is the one it would
        // rank last: no memory limit, the highest priority, then the largest request.
        let lowest_evicted = evicted.iter().map(|p| p.priority).min();
        let offender = facts
            .node_pods
            .iter()
            .filter(|_| resource == Resource::Memory)
            .filter(|p| !p.pod.evicted() && p.pod.phase == "Running")
            .filter(|p| p.memory_limit.is_none())
            .filter(|p| lowest_evicted.is_none_or(|low| p.priority > low) || evicted.is_empty())
            .max_by_key(|p| (p.priority, p.memory_request.map_or(0, |q| q.bytes())));
        let mut d = Detection::new(String::new(), 0.9, &[]);
        if let Some(m) = &pod.message {
            d.evidence.push(Evidence {
                source: "pod status".into(),
                observation: format!("pod {} was evicted from node {node}: {m}", pod.name),
            });
        }
        for e in facts
            .node_events
            .iter()
            .filter(|e| e.reason == "EvictionThresholdMet" || e.reason.starts_with("NodeHas"))
            .rev()
            .take(4)
        {
            d.evidence.push(Evidence {
                source: format!("node {node} events"),
                observation: format!(
                    "{} ({}×, last {}): {}",
                    e.reason,
                    e.count,
                    e.last_seen.to_rfc3339(),
                    e.message
                ),
            });
        }
        for p in evicted.iter().take(8) {
            d.evidence.push(Evidence {
                source: format!("pods on node {node}"),
                observation: format!(
                    "{}/{} (priority {}) evicted: {}",
                    p.pod.namespace,
                    p.pod.name,
                    p.priority,
                    p.pod.message.as_deref().unwrap_or("")
                ),
            });
        }
        if let Some(o) = offender {
            d.evidence.push(Evidence {
                source: format!("pods on node {node}"),
                observation: format!(
                    "{}/{} still runs there: priority {}{}, requests {} of memory, no memory limit",
                    o.pod.namespace,
                    o.pod.name,
                    o.priority,
                    o.priority_class
                        .as_deref()
                        .map_or(String::new(), |c| format!(" ({c})")),
                    quantity(o.memory_request.as_ref())
                ),
            });
        }
        let now = pressure_now
            .as_deref()
            .map_or(" (relieved for now)".to_owned(), |p| format!(" ({p} now)"));
        d.summary = format!(
            "node {node} ran short of {}{now}: the kubelet evicted {} pod{} of {} workload{} there{}{}",
            resource.words(),
            evicted.len().max(1),
            if evicted.len() == 1 { "" } else { "s" },
            workloads.len().max(1),
            if workloads.len() == 1 { "" } else { "s" },
            if pod.evicted() {
                format!(", {} among them", pod.name)
            } else {
                String::new()
            },
            offender.map_or(String::new(), |o| format!(
                "; {}/{} (priority {}, requests {}, no memory limit) is spared and fills it",
                o.pod.namespace,
                o.pod.name,
                o.priority,
                quantity(o.memory_request.as_ref())
            ))
        );
        d.recommendations.push(match resource {
            Resource::Memory => format!(
                "`kubectl describe node {node}` and `kubectl top pods -A --field-selector spec.nodeName={node}`: who uses the memory, against their requests"
            ),
            Resource::Disk => format!(
                "`kubectl describe node {node}` and its pods' ephemeral-storage use (`kubectl get --raw /api/v1/nodes/{node}/proxy/stats/summary`): who fills the node's disk (container logs, emptyDir volumes, writable layers, images), against their ephemeral-storage requests"
            ),
            Resource::Pids => format!(
                "`kubectl describe node {node}` and its pods' process counts (`kubectl get --raw /api/v1/nodes/{node}/proxy/stats/summary`): which pod forks without bound; the kubelet's podPidsLimit caps it per pod"
            ),
        });
        if let Some(o) = offender {
            d.recommendations.push(format!(
                "ask the owners of {}/{} for a memory limit and a request that match its use: with neither, the kubelet evicts everyone else's pods first",
                o.pod.namespace,
                o.pod.workload_name().split_once('/').map_or("", |x| x.1)
            ));
        }
        d.recommendations.push(format!(
            "delete the evicted pods once understood (`kubectl delete pod -n {} --field-selector status.phase=Failed`); requests that match observed use keep {}'s pods out of the first eviction rank",
            facts.workload.namespace, facts.workload.name
        ));
        let signals = NodePressureSignals {
            node,
            pressure_now,
            evicted: evicted
                .iter()
                .map(|p| format!("{}/{}", p.pod.namespace, p.pod.name))
                .collect(),
            workloads,
            offender: offender.map(|o| format!("{}/{}", o.pod.namespace, o.pod.name)),
        };
        d.signals = serde_json::to_value(&signals).ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the node's memory against its pods' requests and use, and which workload outgrows its request",
            ),
            (
                Member::Worf,
                "pods without limits and priority classes that let one team starve a shared node",
            ),
        ]
    }

    fn remedy(&self, d: &Diagnosis, _input: &RemedyInput<'_>) -> Remedy {
        Remedy::owned_by(
            "the platform team (the node and what runs on it)",
            d,
            "has the offending workload's owners set a memory limit and a request that matches its use, or moves it to a node pool of its own",
        )
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "node-pressure".into(),
            meaning: "A node ran short of memory: its kubelet reported `MemoryPressure=True` (`KubeNodePressure` after 10 minutes) and evicted pods that use more than they request, lowest priority first (`Evicted`: `The node was low on resource: memory. ...`). The evicted pods are often not the ones filling the node.".into(),
            checks: "1. `kubectl describe node <node>`: Conditions (MemoryPressure), Events (`EvictionThresholdMet`), Allocated resources.\n2. `kubectl get pods -A --field-selector spec.nodeName=<node>`: who was evicted, who is left.\n3. `kubectl top pods -A --field-selector spec.nodeName=<node>` against each pod's memory request and limit.\n4. The priority classes of the pods left on the node.".into(),
            fixes: "- The offender's owners set a memory limit and a request matching its use (or it moves to a node pool of its own).\n- Workloads that were evicted: requests equal to their observed use keep them out of the first eviction rank.\n- When every pod is sized right and the node still runs short, it is a capacity decision.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "{workload}'s pods were evicted for a neighbour's memory: requests that match use rank them last."
            ),
            "A pod with a high priority and no memory limit can evict everyone else on its node."
                .into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &crate::FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Size {}'s memory requests from observed use",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) pods of {} were evicted under node memory pressure.\n\n\
                 1. Compare the container's working set (p95 over a week) with its memory request.\n\
                 2. Set the request to that use so the kubelet ranks the pods after those over their requests.\n\
                 3. Check: `kubectl get pods -n {} --field-selector status.phase=Failed`.",
                cx.incident, cx.issue, cx.workload.name, cx.workload.namespace
            ),
            label: "reliability".into(),
        }
    }
}

/// The resource the node ran short of, from the kubelet's eviction message or the pressure
/// condition it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Memory,
    Disk,
    Pids,
}

impl Resource {
    fn of(pod: &squad_protocols::cluster::PodInfo, pressure: Option<&str>) -> Resource {
        let message = pod.message.as_deref().unwrap_or("");
        if let Some(rest) = message.split("low on resource: ").nth(1) {
            let r = rest.split(['.', ',', ' ']).next().unwrap_or("");
            match r {
                "memory" => return Resource::Memory,
                "ephemeral-storage" | "nodefs" | "imagefs" => return Resource::Disk,
                "pids" => return Resource::Pids,
                _ => {}
            }
        }
        match pressure {
            Some("DiskPressure") => Resource::Disk,
            Some("PIDPressure") => Resource::Pids,
            _ => Resource::Memory,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Resource::Memory => "memory",
            Resource::Disk => "disk (ephemeral storage)",
            Resource::Pids => "process IDs",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use squad_protocols::cluster::PodInfo;

    use super::*;
    use crate::testing;

    fn on_node(ns: &str, name: &str, owner: &str, priority: i32, evicted: bool) -> NodePod {
        NodePod {
            pod: PodInfo {
                init_containers: Vec::new(),
                deleted_at: None,
                namespace: ns.into(),
                name: name.into(),
                node: "pool-a-1".into(),
                phase: if evicted { "Failed" } else { "Running" }.into(),
                reason: evicted.then(|| "Evicted".into()),
                message: evicted.then(|| "The node was low on resource: memory. ".into()),
                owner: Some(owner.into()),
                created_at: chrono::Utc::now(),
                containers: Vec::new(),
            },
            priority,
            priority_class: None,
            memory_request: Some("1Gi".parse().unwrap()),
            memory_limit: None,
            cpu_request: None,
        }
    }

    /// The alerted pod, evicted from pool-a-1 with the kubelet's `message`.
    fn evicted_from_pool_a_1(message: &str) -> Facts {
        let mut f = testing::crashing(&[]);
        let p = f.pod.as_mut().unwrap();
        p.phase = "Failed".into();
        p.reason = Some("Evicted".into());
        p.message = Some(message.into());
        p.node = "pool-a-1".into();
        f
    }

    #[test]
    fn a_disk_or_pid_eviction_is_worded_as_such_and_names_no_memory_offender() {
        let mut f = evicted_from_pool_a_1(
            "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 8Gi. Container api was using 12Gi, request is 0, has larger consumption of ephemeral-storage. ",
        );
        let name = f.pod.as_ref().unwrap().name.clone();
        f.node_pods = vec![
            on_node("shop", &name, "ReplicaSet/cart-7c9f", 0, true),
            on_node(
                "data",
                "etl-5b8d-qx2lm",
                "ReplicaSet/etl-5b8d",
                100_000,
                false,
            ),
        ];
        let d = NodePressure.detect(&f, &Readings::of(&f)).unwrap();
        assert!(
            d.summary
                .starts_with("node pool-a-1 ran short of disk (ephemeral storage) (relieved for now): the kubelet evicted 1 pod of 1 workload there"),
            "{}",
            d.summary
        );
        assert!(!d.summary.contains("no memory limit"), "{}", d.summary);
        assert!(
            d.recommendations[0].contains("stats/summary"),
            "{:?}",
            d.recommendations
        );
        let p = f.pod.as_mut().unwrap();
        p.message = Some("The node was low on resource: pids. ".into());
        let d = NodePressure.detect(&f, &Readings::of(&f)).unwrap();
        assert!(
            d.summary.contains("ran short of process IDs"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn an_evicted_pod_names_the_node_the_workloads_and_the_spared_offender() {
        let mut f = evicted_from_pool_a_1(
            "The node was low on resource: memory. Container api was using 300Mi, which exceeds its request of 256Mi. ",
        );
        assert_eq!(NodePressure.lookups(&f), [Lookup::NodePods]);
        let name = f.pod.as_ref().unwrap().name.clone();
        f.node_pods = vec![
            on_node("shop", &name, "ReplicaSet/cart-7c9f", 0, true),
            on_node(
                "search",
                "search-api-6c4b-2kq7p",
                "ReplicaSet/search-api-6c4b",
                0,
                true,
            ),
            on_node(
                "data",
                "etl-5b8d-qx2lm",
                "ReplicaSet/etl-5b8d",
                100_000,
                false,
            ),
            on_node("shop", "cart-7c9f-live", "ReplicaSet/cart-7c9f", 0, false),
        ];
        let d = NodePressure.detect(&f, &Readings::of(&f)).unwrap();
        assert!(
            d.summary.starts_with("node pool-a-1 ran short of memory (relieved for now): the kubelet evicted 2 pods of 2 workloads there"),
            "{}",
            d.summary
        );
        assert!(
            d.summary.contains(
                "data/etl-5b8d-qx2lm (priority 100000, requests 1Gi, no memory limit) is spared"
            ),
            "{}",
            d.summary
        );
        // A running pod on a calm node is not this family's.
        let calm = testing::crashing(&[]);
        assert!(NodePressure.lookups(&calm).is_empty());
        assert!(NodePressure.detect(&calm, &Readings::of(&calm)).is_none());
    }
}
