//! Node not ready: the alerted pod's node reports `Ready` other than `True` — `Unknown`
//! (`NodeStatusUnknown`: `Kubelet stopped posting node status.`, the node controller's words when
//! the kubelet went silent: a dead machine, a partition) or `False` (`KubeletNotReady`: the
//! runtime or the network plugin is down, `container runtime network not ready: …`). Its pods
//! are not the workload's doing: every pod on that node, of every workload, is stuck alike
//! (`Unknown`, unready, or `Terminating` once the taint's `tolerationSeconds` pass, 300 s unless
//! set). The family reads the node's conditions, taints and events and every pod on it, and names
//! the node, since when and why, and how many pods of how many workloads it holds. The pod the
//! alert leads to may also be the one the ReplicaSet created in place of the workload's pod
//! there, that no other node takes (`… 1 node(s) had untolerated taint
//! {node.kubernetes.io/unreachable: }`): then the node is found among the nodes, its pods are
//! read, and the family holds only when the workload lost a pod there (otherwise the scheduler's
//! other reasons are the pod's own). A node is not a workload fix: the crew escalates (the node
//! pool, the cloud instance or the kubelet are a human's), noting whether the workload's other
//! replicas run elsewhere.

use serde::{Deserialize, Serialize};
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use squad_protocols::cluster::{NodeInfo, PodInfo};

use super::scheduling::{FitError, Reason};
use crate::{Detection, Facts, Family, IssueDraft, Lookup, Readings, Remedy, RemedyInput, Runbook};

pub struct NodeNotReady;

pub const ROOT_CAUSE: &str = "node_not_ready";

/// What the family found, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeNotReadySignals {
    pub node: String,
    /// The Ready condition's status (`False`, `Unknown`) and reason.
    pub status: String,
    pub reason: String,
    /// The other workloads with pods on the node, `namespace/name`.
    pub workloads: Vec<String>,
    /// The workload's own pods on the node.
    pub own_pods: usize,
}

/// The taints the node lifecycle controller puts on a node that is not Ready.
const NOT_READY_TAINTS: [&str; 2] = [
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/not-ready",
];

fn node_of(facts: &Facts) -> Option<&NodeInfo> {
    let node = facts.node.as_ref()?;
    let on_it = facts.pod.as_ref().is_some_and(|p| p.node == node.name);
    (on_it && !node.ready() && !node.conditions.is_empty()).then_some(node)
}

/// For a pod the scheduler cannot place, partly because a node carries a not-ready taint
/// (`node(s) had untolerated taint {node.kubernetes.io/unreachable: }`): that node, when it is
/// not Ready. Whether the workload lost a pod there is read from the node's pods.
fn left_node(facts: &Facts) -> Option<(&NodeInfo, FitError)> {
    let fit = FitError::of(facts)?;
    let tainted = fit.reasons.iter().any(|(_, _, r)| {
        matches!(r, Reason::Taint { key, .. } if NOT_READY_TAINTS.contains(&key.as_str()))
    });
    if !tainted {
        return None;
    }
    let node = facts.nodes.iter().find(|n| {
        !n.ready()
            && !n.conditions.is_empty()
            && n.taints.iter().any(|t| {
                NOT_READY_TAINTS
                    .iter()
                    .any(|k| t.starts_with(&format!("{k}:")))
            })
    })?;
    Some((node, fit))
}

/// The workload's pods on the node read by the lookup.
fn own_pods_there(facts: &Facts) -> Vec<&PodInfo> {
    let workload = format!("{}/{}", facts.workload.namespace, facts.workload.name);
    facts
        .node_pods
        .iter()
        .map(|p| &p.pod)
        .filter(|p| p.workload_name() == workload)
        .collect()
}

impl Family for NodeNotReady {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("NodeNotReady")
    }

    fn lookups(&self, facts: &Facts) -> Vec<Lookup> {
        if node_of(facts).is_some() {
            vec![Lookup::NodePods]
        } else if let Some((node, _)) = left_node(facts) {
            vec![Lookup::PodsOn(node.name.clone())]
        } else {
            Vec::new()
        }
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        // The pod is on the node; or it is a pod created in place of one the node held.
        let (node, fit) = match node_of(facts) {
            Some(n) => (n, None),
            None => {
                let (n, fit) = left_node(facts)?;
                if own_pods_there(facts).is_empty() {
                    return None;
                }
                (n, Some(fit))
            }
        };
        let name = &node.name;
        let ready = node.conditions.iter().find(|c| c.kind == "Ready");
        let (status, reason, message) = ready.map_or(
            (
                "Unknown",
                "NoReadyCondition",
                "the node reports no Ready condition",
            ),
            |c| (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
        );
        let mut d = Detection::new(String::new(), 0.9, &[]);
        for c in &node.conditions {
            d.evidence.push(Evidence {
                source: format!("node {name} conditions"),
                observation: format!("{}={} ({}): {}", c.kind, c.status, c.reason, c.message),
            });
        }
        if !node.taints.is_empty() {
            d.evidence.push(Evidence {
                source: format!("node {name} taints"),
                observation: node.taints.join(", "),
            });
        }
        for e in facts
            .node_events
            .iter()
            .filter(|e| e.reason.contains("NotReady") || e.reason == "NodeNotSchedulable")
            .rev()
            .take(3)
        {
            d.evidence.push(Evidence {
                source: format!("node {name} events"),
                observation: format!(
                    "{} (last {}): {}",
                    e.reason,
                    e.last_seen.to_rfc3339(),
                    e.message
                ),
            });
        }
        // The workload's own pods there: the alerted pod's owner's.
        let alerted = facts.pod.as_ref();
        let mine = |p: &squad_protocols::cluster::PodInfo| {
            alerted.is_some_and(|a| a.namespace == p.namespace && a.owner == p.owner)
        };
        let mut workloads: Vec<String> = facts
            .node_pods
            .iter()
            .filter(|p| !mine(&p.pod))
            .map(|p| p.pod.workload_name())
            .collect();
        workloads.sort();
        workloads.dedup();
        let others = facts.node_pods.iter().filter(|p| !mine(&p.pod)).count();
        let own = facts
            .node_pods
            .iter()
            .filter(|p| mine(&p.pod))
            .count()
            .max(1);
        let why = if message.is_empty() {
            reason.to_owned()
        } else {
            format!("{reason}: {message}")
        };
        let since = facts
            .node_events
            .iter()
            .filter(|e| e.reason == "NodeNotReady")
            .map(|e| e.first_seen)
            .max()
            .map_or(String::new(), |t| {
                format!(" since {}", t.format("%Y-%m-%d %H:%M:%S UTC"))
            });
        let neighbours = if others == 0 {
            String::new()
        } else {
            format!(
                "; {others} other pod{} of {} workload{} there are stuck alike",
                if others == 1 { "" } else { "s" },
                workloads.len(),
                if workloads.len() == 1 { "" } else { "s" }
            )
        };
        let elsewhere = format!(
            "; {own} of {}'s {} replica{} on it",
            facts.workload.name,
            facts.info.replicas,
            if facts.info.replicas == 1 {
                " is"
            } else {
                "s are"
            }
        );
        d.summary = match &fit {
            None => format!(
                "node {name} is not Ready (Ready={status}, {why}){since}: {} runs there{neighbours}{elsewhere} — the node, not the workload",
                facts.pod.as_ref().map_or("the pod", |p| p.name.as_str())
            ),
            Some(fit) => {
                let left = own_pods_there(facts);
                let fates: Vec<String> = left
                    .iter()
                    .map(|p| match p.deleted_at {
                        Some(at) => format!(
                            "{} was deleted when its toleration of the node's taint ran out (deletionTimestamp {}) and stays Terminating: no kubelet there confirms it",
                            p.name,
                            at.format("%H:%M:%S UTC")
                        ),
                        None => format!("{} is marked not ready", p.name),
                    })
                    .collect();
                for p in &left {
                    d.evidence.push(Evidence {
                        source: format!("pods on node {name}"),
                        observation: format!(
                            "{}/{}: phase {}{}",
                            p.namespace,
                            p.name,
                            p.phase,
                            p.deleted_at.map_or(String::new(), |t| format!(
                                ", deletionTimestamp {} (Terminating)",
                                t.to_rfc3339()
                            ))
                        ),
                    });
                }
                d.evidence.push(fit.evidence());
                let elsewhere: Vec<&str> = fit
                    .reasons
                    .iter()
                    .filter(|(_, _, r)| !matches!(r, Reason::Taint { key, .. } if NOT_READY_TAINTS.contains(&key.as_str())))
                    .map(|(_, text, _)| text.as_str())
                    .collect();
                let stuck = facts
                    .pod
                    .as_ref()
                    .map_or("its replacement", |p| p.name.as_str());
                let room = if elsewhere.is_empty() {
                    String::new()
                } else {
                    format!(
                        ": every other node is ruled out ({})",
                        fit.reasons
                            .iter()
                            .filter(|(_, text, _)| elsewhere.contains(&text.as_str()))
                            .map(|(c, text, _)| format!("{c} {text}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                if fit.shortages().is_empty() {
                    d.recommendations.push(format!(
                        "{stuck} may run on no node but {name}: bring {name} back, or widen where the pod may go (its nodeSelector, affinity, tolerations) if that is intended"
                    ));
                } else {
                    d.recommendations.push(format!(
                        "the nodes {stuck} may use have no room left without {name}: bring it back or add a node to the pool (the replicas need the capacity {name} gave them)"
                    ));
                }
                format!(
                    "node {name} is not Ready (Ready={status}, {why}){since}: {}'s pod {}, and the pod created in its place, {stuck}, cannot be scheduled{room}{neighbours} — the node, not the workload",
                    facts.workload.name,
                    fates.join("; ")
                )
            }
        };
        if node
            .taints
            .iter()
            .any(|t| t.contains("unreachable") || t.contains("not-ready"))
        {
            d.recommendations.push(format!(
                "the node controller tainted {name}: its pods are evicted once their toleration (300 s unless set) runs out, and replaced on other nodes if they fit; check that they did"
            ));
        }
        d.recommendations.push(format!(
            "`kubectl describe node {name}` (Conditions, Events) and the machine itself: is the kubelet running (`systemctl status kubelet`, `journalctl -u kubelet`), the container runtime, the network plugin; is the instance up?"
        ));
        d.recommendations.push(
            "if the node is gone for good, cordon and drain it (`kubectl drain --ignore-daemonsets --delete-emptydir-data`) or delete it so its pods are rescheduled".into(),
        );
        if fit.is_some() {
            d.recommendations.push(format!(
                "the pods deleted from {name} stay Terminating until its kubelet returns or the Node object is deleted; force-delete them (`kubectl delete pod --force --grace-period=0`) only once the machine is known to be down (a StatefulSet's pod or a ReadWriteOnce volume must not run twice)"
            ));
        }
        d.signals = serde_json::to_value(NodeNotReadySignals {
            node: name.clone(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            workloads,
            own_pods: own,
        })
        .ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[(
            Member::Belanna,
            "the node's conditions and events, and whether the workload's replicas and disruption budget keep it serving when one node goes",
        )]
    }

    fn remedy(&self, d: &Diagnosis, _input: &RemedyInput<'_>) -> Remedy {
        Remedy::owned_by(
            "the platform team (the node pool)",
            d,
            "brings the node back (kubelet, runtime, network plugin, the instance) or drains and replaces it",
        )
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "node-not-ready".into(),
            meaning: "A node's `Ready` condition is `Unknown` (the kubelet stopped posting status: the machine is down or cut off) or `False` (the kubelet runs but the runtime or the network plugin does not). Every pod on it is affected alike; after the taint's `tolerationSeconds` (300 s by default) the pods are evicted and replaced elsewhere if they fit. `KubeNodeNotReady` fires after 15 minutes.".into(),
            checks: "1. `kubectl describe node <node>`: Conditions (Ready, its reason and message, last heartbeat), Taints, Events.\n2. `kubectl get pods -A -o wide --field-selector spec.nodeName=<node>`: what ran there.\n3. On the machine: `systemctl status kubelet containerd`, `journalctl -u kubelet`, disk and network.\n4. The cloud console: is the instance running?".into(),
            fixes: "- Restart what is down (kubelet, runtime, network plugin) or replace the instance.\n- A node gone for good: `kubectl drain` or delete it, so its pods are rescheduled.\n- Workloads that stopped serving: more than one replica spread across nodes (topology spread or anti-affinity) and a PodDisruptionBudget.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!("Spread {workload}'s replicas across nodes, so one node going down leaves the others serving."),
            "A node that stops reporting keeps its pods listed as running for minutes: read the node's Ready condition before the pod's.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &crate::FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!("Keep {} serving when one node goes down", cx.workload.name),
            body: format!(
                "During incident {} (#{}) a node that ran pods of {} stopped being Ready.\n\n\
                 1. At least two replicas, spread across nodes (`topologySpreadConstraints` on `kubernetes.io/hostname`).\n\
                 2. A PodDisruptionBudget, so drains keep one serving.\n\
                 3. Check: `kubectl get pods -n {} -o wide`.",
                cx.incident, cx.issue, cx.workload.name, cx.workload.namespace
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use squad_protocols::cluster::{NodeCondition, NodeInfo, NodePod, PodInfo};

    use super::*;
    use crate::testing;

    fn node(status: &str, reason: &str, message: &str) -> NodeInfo {
        NodeInfo {
            name: "pool-b-3".into(),
            conditions: vec![
                NodeCondition {
                    kind: "MemoryPressure".into(),
                    status: "Unknown".into(),
                    reason: "NodeStatusUnknown".into(),
                    message: "Kubelet stopped posting node status.".into(),
                },
                NodeCondition {
                    kind: "Ready".into(),
                    status: status.into(),
                    reason: reason.into(),
                    message: message.into(),
                },
            ],
            allocatable_memory: None,
            capacity_memory: None,
            kubelet_version: "v1.30.4".into(),
            allocatable_cpu: None,
            labels: Default::default(),
            taints: vec!["node.kubernetes.io/unreachable:NoExecute".into()],
            unschedulable: false,
        }
    }

    fn neighbour(ns: &str, name: &str, owner: &str) -> NodePod {
        NodePod {
            pod: PodInfo {
                init_containers: Vec::new(),
                deleted_at: None,
                namespace: ns.into(),
                name: name.into(),
                node: "pool-b-3".into(),
                phase: "Running".into(),
                reason: None,
                message: None,
                owner: Some(owner.into()),
                created_at: chrono::Utc::now(),
                containers: Vec::new(),
            },
            priority: 0,
            priority_class: None,
            memory_request: None,
            memory_limit: None,
            cpu_request: None,
        }
    }

    #[test]
    fn a_silent_node_is_named_with_its_neighbours_and_the_replicas_elsewhere() {
        let mut f = testing::crashing(&[]);
        f.pod.as_mut().unwrap().node = "pool-b-3".into();
        f.pod.as_mut().unwrap().owner = Some("ReplicaSet/x-1".into());
        f.info.replicas = 3;
        let pod = f.pod.clone().unwrap();
        f.node = Some(node(
            "Unknown",
            "NodeStatusUnknown",
            "Kubelet stopped posting node status.",
        ));
        assert_eq!(NodeNotReady.lookups(&f), [Lookup::NodePods]);
        f.node_pods = vec![
            neighbour(&pod.namespace, &pod.name, "ReplicaSet/x-1"),
            neighbour("search", "indexer-7d9-abcde", "ReplicaSet/indexer-7d9"),
            neighbour("kube-system", "fluent-bit-q2x8z", "DaemonSet/fluent-bit"),
        ];
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert!(
            d.summary.starts_with("node pool-b-3 is not Ready (Ready=Unknown, NodeStatusUnknown: Kubelet stopped posting node status.)"),
            "{}",
            d.summary
        );
        assert!(
            d.summary
                .contains("2 other pods of 2 workloads there are stuck alike; 1 of"),
            "{}",
            d.summary
        );
        assert!(
            d.recommendations[0].contains("tainted pool-b-3"),
            "{:?}",
            d.recommendations
        );
    }

    /// The pod created in place of one a silent node held cannot be scheduled: the node is the
    /// cause when the workload lost a pod there; without one there, the shortage is the pod's.
    #[test]
    fn a_replacement_that_cannot_be_placed_names_the_node_its_pod_was_taken_off() {
        let message = "0/3 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.";
        let mut f = testing::unscheduled(message, 80.0, 4, 20);
        let mut lost = node(
            "Unknown",
            "NodeStatusUnknown",
            "Kubelet stopped posting node status.",
        );
        lost.taints = vec![
            "node.kubernetes.io/unreachable:NoSchedule".into(),
            "node.kubernetes.io/unreachable:NoExecute".into(),
        ];
        f.nodes = vec![lost];
        assert_eq!(
            NodeNotReady.lookups(&f),
            [Lookup::PodsOn("pool-b-3".into())]
        );
        // Nothing of the workload was there: the scheduler's reasons are the pod's own.
        f.node_pods = vec![neighbour(
            "search",
            "indexer-7d9-abcde",
            "ReplicaSet/indexer-7d9",
        )];
        assert!(NodeNotReady.detect(&f, &Readings::of(&f)).is_none());
        let mut gone = neighbour("shop", "cart-5d8f7-q2x8z", "ReplicaSet/cart-5d8f7");
        let deleted = testing::now() - chrono::Duration::minutes(40);
        gone.pod.deleted_at = Some(deleted);
        f.node_pods.push(gone);
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert!(
            d.summary.starts_with("node pool-b-3 is not Ready (Ready=Unknown, NodeStatusUnknown: Kubelet stopped posting node status.): cart's pod cart-5d8f7-q2x8z was deleted"),
            "{}",
            d.summary
        );
        assert!(
            d.summary.contains("cannot be scheduled: every other node is ruled out (1 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector)"),
            "{}",
            d.summary
        );
        assert!(
            d.evidence
                .iter()
                .any(|e| e.observation.contains("(Terminating)")),
            "{:?}",
            d.evidence
        );
        assert!(
            d.recommendations[0].contains("no room left without pool-b-3"),
            "{:?}",
            d.recommendations
        );
        // A pod held back by a not-ready node and its own selector alike: the node.
        let mut f2 = f.clone();
        f2.events[0].message = "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.".into();
        let d = testing::diagnosis(&f2);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert!(
            d.recommendations[0].contains("may run on no node but pool-b-3"),
            "{:?}",
            d.recommendations
        );
    }

    #[test]
    fn a_ready_node_or_a_pod_elsewhere_is_not_this_family() {
        let mut f = testing::crashing(&[]);
        f.pod.as_mut().unwrap().node = "pool-b-3".into();
        f.node = Some(node(
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ));
        assert!(NodeNotReady.detect(&f, &Readings::of(&f)).is_none());
        f.node = Some(node(
            "False",
            "KubeletNotReady",
            "container runtime network not ready",
        ));
        f.pod.as_mut().unwrap().node = "pool-b-1".into();
        assert!(NodeNotReady.detect(&f, &Readings::of(&f)).is_none());
        f.pod.as_mut().unwrap().node = "pool-b-3".into();
        let d = NodeNotReady.detect(&f, &Readings::of(&f)).unwrap();
        assert!(
            d.summary
                .contains("Ready=False, KubeletNotReady: container runtime network not ready"),
            "{}",
            d.summary
        );
    }
}
