//! The simulated scheduler: places pods on the scenario's nodes the way kube-scheduler's default
//! profile filters them, and says why not in its words.
//!
//! Filters, in the default profile's order, each node stopping at the first that fails:
//! `NodeUnschedulable` (a cordoned node: `node(s) were unschedulable`), `TaintToleration` (a
//! `NoSchedule`/`NoExecute` taint the pod does not tolerate: `node(s) had untolerated taint {k:
//! v}`), `NodeAffinity` (nodeSelector and required node affinity: `node(s) didn't match Pod's
//! node affinity/selector`), `NodeResourcesFit` (`Too many pods`, `Insufficient cpu`,
//! `Insufficient memory`, every one that applies). When no node passes, the message is the
//! scheduler's `FitError`: `0/N nodes are available: ` and the reasons' histogram, each `count
//! reason`, sorted as strings; then the preemption post-filter's own histogram (every pod has the
//! same priority here, so a node short of resources finds no victims and a node that fails any
//! other filter is one where preemption cannot help). This is kube-scheduler 1.33's wording;
//! 1.20 said `didn't match node selector` and `had taint {k: v}, that the pod didn't tolerate`
//! and had no preemption part.
//!
//! Among the nodes that fit, the pod goes to the one with the most room left (the
//! `LeastAllocated` score over CPU and memory), ties broken by name. Pods are placed one after
//! the other, each taking its requests from the node it lands on.

use std::collections::BTreeMap;

use serde_json::Value;
use squad_protocols::Quantity;

use crate::scenario::NodeSpec;

/// What a pod asks of a node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodNeeds {
    pub cpu_milli: i128,
    pub memory: u64,
    node_selector: BTreeMap<String, String>,
    /// `requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms` (ORed), when set.
    terms: Option<Vec<Value>>,
    tolerations: Vec<Value>,
    /// Why every node is ruled out before the filters run (a PreFilter's rejection: a claim that
    /// is missing or unbound), in the plugin's words.
    pub prefilter: Option<String>,
}

impl PodNeeds {
    /// Reads a pod spec (a Deployment's template spec): the requests the scheduler sums (each
    /// container's `requests`, else its `limits`, as the API server defaults them; the largest
    /// init container's when larger), and its placement constraints.
    pub fn of(spec: &Value) -> PodNeeds {
        let request = |c: &Value, resource: &str| -> Option<Quantity> {
            let r = &c["resources"];
            [&r["requests"][resource], &r["limits"][resource]]
                .into_iter()
                .find_map(|q| match q {
                    Value::String(s) => s.parse().ok(),
                    Value::Number(n) => n.to_string().parse().ok(),
                    _ => None,
                })
        };
        let sum = |key: &str, resource: &str| -> Vec<Quantity> {
            spec[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| request(c, resource))
                .collect()
        };
        let cpu: i128 = sum("containers", "cpu").iter().map(Quantity::milli).sum();
        let init_cpu = sum("initContainers", "cpu")
            .iter()
            .map(Quantity::milli)
            .max()
            .unwrap_or(0);
        let memory: u64 = sum("containers", "memory")
            .iter()
            .map(Quantity::bytes)
            .sum();
        let init_memory = sum("initContainers", "memory")
            .iter()
            .map(Quantity::bytes)
            .max()
            .unwrap_or(0);
        PodNeeds {
            cpu_milli: cpu.max(init_cpu),
            memory: memory.max(init_memory),
            node_selector: spec["nodeSelector"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect(),
            terms: spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"]
                .as_array()
                .cloned(),
            tolerations: spec["tolerations"].as_array().cloned().unwrap_or_default(),
            prefilter: None,
        }
    }
}

/// A node and what is already placed on it.
#[derive(Debug, Clone)]
pub struct NodeState {
    pub spec: NodeSpec,
    cpu_milli: i128,
    memory: u64,
    pods: u32,
}

impl NodeState {
    pub fn new(spec: &NodeSpec) -> NodeState {
        // The pods the scenario lists on the node count beside the summed `requested`.
        let listed = &spec.other_pods;
        NodeState {
            cpu_milli: spec.requested.cpu.as_ref().map_or(0, Quantity::milli)
                + listed
                    .iter()
                    .filter_map(|p| p.requests.cpu.as_ref())
                    .map(Quantity::milli)
                    .sum::<i128>(),
            memory: spec.requested.memory.as_ref().map_or(0, Quantity::bytes)
                + listed
                    .iter()
                    .filter_map(|p| p.requests.memory.as_ref())
                    .map(Quantity::bytes)
                    .sum::<u64>(),
            pods: spec.requested.pods + listed.len() as u32,
            spec: spec.clone(),
        }
    }

    /// Counts a pod already placed here.
    pub fn take(&mut self, pod: &PodNeeds) {
        self.cpu_milli += pod.cpu_milli;
        self.memory += pod.memory;
        self.pods += 1;
    }

    /// Why the pod cannot go here (the first failing filter's reasons), and whether preemption
    /// could help (only a shortage of resources can be relieved by evicting someone).
    fn reject(&self, pod: &PodNeeds) -> Option<(Vec<String>, bool)> {
        let n = &self.spec;
        if n.unschedulable && !tolerates(pod, "node.kubernetes.io/unschedulable", "", "NoSchedule")
        {
            return Some((vec!["node(s) were unschedulable".into()], false));
        }
        if let Some(t) = n
            .taints
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .find(|t| !tolerates(pod, &t.key, &t.value, &t.effect))
        {
            return Some((
                vec![format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    t.key, t.value
                )],
                false,
            ));
        }
        let selected = pod
            .node_selector
            .iter()
            .all(|(k, v)| n.labels.get(k) == Some(v));
        let affine = pod
            .terms
            .as_ref()
            .is_none_or(|terms| terms.iter().any(|t| term_matches(t, n)));
        if !selected || !affine {
            return Some((
                vec!["node(s) didn't match Pod's node affinity/selector".into()],
                false,
            ));
        }
        let mut short = Vec::new();
        if self.pods + 1 > n.pods {
            short.push("Too many pods".to_owned());
        }
        if pod.cpu_milli > 0 && self.cpu_milli + pod.cpu_milli > n.cpu.milli() {
            short.push("Insufficient cpu".to_owned());
        }
        if pod.memory > 0 && self.memory + pod.memory > n.memory.bytes() {
            short.push("Insufficient memory".to_owned());
        }
        (!short.is_empty()).then_some((short, true))
    }

    /// The `LeastAllocated` score: the mean free fraction of CPU and memory after placing.
    fn score(&self, pod: &PodNeeds) -> f64 {
        let free = |used: f64, cap: f64| if cap > 0.0 { (cap - used) / cap } else { 0.0 };
        (free(
            (self.cpu_milli + pod.cpu_milli) as f64,
            self.spec.cpu.milli() as f64,
        ) + free(
            (self.memory + pod.memory) as f64,
            self.spec.memory.bytes() as f64,
        )) / 2.0
    }
}

/// Where a pod went, or the scheduler's `FailedScheduling` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Node(String),
    Unschedulable(String),
}

/// Places one pod on `nodes`, taking its requests from the node it lands on.
pub fn place(nodes: &mut [NodeState], pod: &PodNeeds) -> Placement {
    if let Some(why) = &pod.prefilter {
        // A PreFilter rejection rules out every node at once: no per-node histogram.
        let total = nodes.len();
        return Placement::Unschedulable(format!(
            "0/{total} nodes are available: {why}. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
        ));
    }
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut preemption: BTreeMap<&str, usize> = BTreeMap::new();
    let mut best: Option<usize> = None;
    for (i, n) in nodes.iter().enumerate() {
        match n.reject(pod) {
            Some((why, resources)) => {
                for r in why {
                    *reasons.entry(r).or_default() += 1;
                }
                *preemption
                    .entry(if resources {
                        "No preemption victims found for incoming pod"
                    } else {
                        "Preemption is not helpful for scheduling"
                    })
                    .or_default() += 1;
            }
            None => {
                let better = best.is_none_or(|b| {
                    let (sb, sn) = (nodes[b].score(pod), n.score(pod));
                    sn > sb || (sn == sb && n.spec.name < nodes[b].spec.name)
                });
                if better {
                    best = Some(i);
                }
            }
        }
    }
    if let Some(i) = best {
        let n = &mut nodes[i];
        n.cpu_milli += pod.cpu_milli;
        n.memory += pod.memory;
        n.pods += 1;
        return Placement::Node(n.spec.name.clone());
    }
    let histogram = |counts: Vec<String>| {
        let mut counts = counts;
        counts.sort();
        counts.join(", ")
    };
    let total = nodes.len();
    let mut message = format!("0/{total} nodes are available");
    if total > 0 {
        message.push_str(&format!(
            ": {}. preemption: 0/{total} nodes are available: {}.",
            histogram(reasons.iter().map(|(r, c)| format!("{c} {r}")).collect()),
            histogram(preemption.iter().map(|(r, c)| format!("{c} {r}")).collect())
        ));
    } else {
        message.push('.');
    }
    Placement::Unschedulable(message)
}

/// Whether a toleration of the pod tolerates the taint `key=value:effect`.
fn tolerates(pod: &PodNeeds, key: &str, value: &str, effect: &str) -> bool {
    pod.tolerations.iter().any(|t| {
        let t_key = t["key"].as_str().unwrap_or("");
        let exists = t["operator"].as_str() == Some("Exists");
        let t_effect = t["effect"].as_str().unwrap_or("");
        (t_effect.is_empty() || t_effect == effect)
            && ((t_key.is_empty() && exists)
                || (t_key == key && (exists || t["value"].as_str().unwrap_or("") == value)))
    })
}

/// Whether a node selector term (all its expressions and fields) matches the node; a term with
/// none matches nothing, as in the API.
fn term_matches(term: &Value, node: &NodeSpec) -> bool {
    let exprs = term["matchExpressions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let fields = term["matchFields"].as_array().cloned().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let mut name_labels = BTreeMap::new();
    name_labels.insert("metadata.name".to_owned(), node.name.clone());
    exprs.iter().all(|e| expression_matches(e, &node.labels))
        && fields.iter().all(|e| expression_matches(e, &name_labels))
}

fn expression_matches(e: &Value, labels: &BTreeMap<String, String>) -> bool {
    let key = e["key"].as_str().unwrap_or("");
    let values: Vec<&str> = e["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let label = labels.get(key).map(String::as_str);
    let number = |s: &str| s.parse::<i64>().ok();
    match e["operator"].as_str().unwrap_or("") {
        "In" => label.is_some_and(|l| values.contains(&l)),
        "NotIn" => label.is_none_or(|l| !values.contains(&l)),
        "Exists" => label.is_some(),
        "DoesNotExist" => label.is_none(),
        "Gt" => {
            matches!((label.and_then(number), values.first().and_then(|v| number(v))), (Some(l), Some(v)) if l > v)
        }
        "Lt" => {
            matches!((label.and_then(number), values.first().and_then(|v| number(v))), (Some(l), Some(v)) if l < v)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::scenario::{Requested, TaintSpec};
    use serde_json::json;

    fn node(name: &str, cpu: &str, memory: &str, labels: &[(&str, &str)]) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            cpu: cpu.parse().unwrap(),
            memory: memory.parse().unwrap(),
            pods: 110,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            taints: Vec::new(),
            unschedulable: false,
            requested: Requested::default(),
            other_pods: Vec::new(),
            unreachable_minutes_ago: None,
            pod_network: None,
        }
    }

    fn states(nodes: &[NodeSpec]) -> Vec<NodeState> {
        nodes.iter().map(NodeState::new).collect()
    }

    #[test]
    fn a_selector_no_node_matches_is_reported_with_the_taints_first() {
        let mut gpu = node("gpu-1", "8", "32Gi", &[("pool", "gpu")]);
        gpu.taints.push(TaintSpec {
            key: "dedicated".into(),
            value: "gpu".into(),
            effect: "NoSchedule".into(),
        });
        let nodes = [
            node("a", "4", "16Gi", &[("disktype", "hdd")]),
            node("b", "4", "16Gi", &[("disktype", "hdd")]),
            gpu,
        ];
        let pod = PodNeeds::of(&json!({
            "nodeSelector": {"disktype": "ssd"},
            "containers": [{"name": "app", "resources": {"requests": {"memory": "1Gi"}}}]
        }));
        assert_eq!(
            place(&mut states(&nodes), &pod),
            Placement::Unschedulable(
                "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.".into()
            )
        );
    }

    #[test]
    fn pods_fill_the_roomiest_node_first_until_memory_runs_out() {
        let mut busy = node("busy", "4", "8Gi", &[]);
        busy.requested.memory = Some("6Gi".parse().unwrap());
        let nodes = [busy, node("idle", "4", "6Gi", &[])];
        let pod = PodNeeds::of(&json!({"containers": [
            {"name": "app", "resources": {"limits": {"memory": "3Gi", "cpu": "500m"}}},
            {"name": "sidecar", "resources": {"requests": {"memory": "512Mi"}}}
        ]}));
        assert_eq!(pod.memory, (3 * 1024 + 512) * 1024 * 1024);
        let mut s = states(&nodes);
        assert_eq!(place(&mut s, &pod), Placement::Node("idle".into()));
        assert_eq!(
            place(&mut s, &pod),
            Placement::Unschedulable(
                "0/2 nodes are available: 2 Insufficient memory. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.".into()
            )
        );
    }

    #[test]
    fn tolerations_and_required_affinity_are_honoured() {
        let mut spot = node("spot-1", "4", "16Gi", &[("zone", "b"), ("gen", "5")]);
        spot.taints.push(TaintSpec {
            key: "spot".into(),
            value: String::new(),
            effect: "NoExecute".into(),
        });
        let mut cordoned = node("old-1", "4", "16Gi", &[("zone", "b"), ("gen", "3")]);
        cordoned.unschedulable = true;
        let nodes = [node("a-1", "4", "16Gi", &[("zone", "a")]), spot, cordoned];
        let affinity = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["b"]},
                {"key": "gen", "operator": "Gt", "values": ["4"]}]}]}}});
        let without = PodNeeds::of(&json!({"affinity": affinity, "containers": []}));
        assert_eq!(
            place(&mut states(&nodes), &without),
            Placement::Unschedulable(
                "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {spot: }, 1 node(s) were unschedulable. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.".into()
            )
        );
        let with = PodNeeds::of(&json!({"affinity": affinity, "containers": [],
            "tolerations": [{"key": "spot", "operator": "Exists"}]}));
        assert_eq!(
            place(&mut states(&nodes), &with),
            Placement::Node("spot-1".into())
        );
    }
}
