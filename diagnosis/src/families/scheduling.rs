//! What the scheduler said about a pod it could not place, read from its `FailedScheduling`
//! event: `0/N nodes are available: ` and a histogram of reasons, each `count reason`, in
//! kube-scheduler's words of any version since 1.20 (`didn't match Pod's node affinity/selector`
//! or `didn't match node selector`; `had untolerated taint {k: v}` or `had taint {k: v}, that the
//! pod didn't tolerate`; pod affinity and anti-affinity, topology spread, a volume's zone, host
//! ports), optionally followed by the preemption post-filter's own histogram.
//! Shared by the two unschedulable families: constraints no node meets, and capacity no node has.

use squad_protocols::cluster::{ClusterEvent, NodeInfo, PlacementRules};
use squad_protocols::{Evidence, Quantity};

use crate::Facts;

/// Why some nodes were rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// nodeSelector or required node affinity.
    Selector,
    /// An untolerated taint `{key: value}`.
    Taint { key: String, value: String },
    /// A cordoned node.
    Cordoned,
    /// Not enough of a resource left (`cpu`, `memory`, `pods`, an extended resource).
    Short(String),
    /// The VolumeBinding plugin's: a claim the pod mounts is not bound yet (`pod has unbound
    /// immediate PersistentVolumeClaims`).
    UnboundClaims,
    /// A claim the pod mounts does not exist (`persistentvolumeclaim "x" not found`).
    MissingClaim(String),
    /// Required pod anti-affinity: the node already runs a pod it must not share a node with
    /// (or a pod there rules this one out).
    AntiAffinity,
    /// Required pod affinity: no pod it must run beside is there.
    Affinity,
    /// A topology spread constraint (`whenUnsatisfiable: DoNotSchedule`) the node would break.
    TopologySpread,
    /// The node is outside the node affinity (zone) of a PersistentVolume the pod mounts.
    VolumeZone,
    /// A host port the pod asks for is taken there.
    Ports,
    /// Anything else, verbatim.
    Other(String),
}

impl Reason {
    fn of(text: &str) -> Reason {
        if text.contains("didn't match Pod's node affinity")
            || text.contains("didn't match node selector")
            || text.contains("didn't satisfy plugin(s) [NodeAffinity]")
        {
            return Reason::Selector;
        }
        if let Some(rest) = text
            .strip_prefix("node(s) had untolerated taint {")
            .or_else(|| text.strip_prefix("node(s) had taint {"))
            && let Some((inner, _)) = rest.split_once('}')
        {
            let (key, value) = inner.split_once(": ").unwrap_or((inner, ""));
            return Reason::Taint {
                key: key.to_owned(),
                value: value.to_owned(),
            };
        }
        if text.contains("were unschedulable") {
            return Reason::Cordoned;
        }
        if text.contains("anti-affinity") {
            return Reason::AntiAffinity;
        }
        if text.contains("didn't match pod affinity") {
            return Reason::Affinity;
        }
        if text.contains("topology spread constraints") {
            return Reason::TopologySpread;
        }
        if text.contains("volume node affinity conflict") {
            return Reason::VolumeZone;
        }
        if text.contains("didn't have free ports") {
            return Reason::Ports;
        }
        if let Some(r) = text.strip_prefix("Insufficient ") {
            return Reason::Short(r.to_owned());
        }
        if text == "Too many pods" {
            return Reason::Short("pods".into());
        }
        if text.contains("unbound immediate PersistentVolumeClaims") {
            return Reason::UnboundClaims;
        }
        if let Some(name) = text
            .strip_prefix("persistentvolumeclaim \"")
            .and_then(|r| r.strip_suffix("\" not found"))
        {
            return Reason::MissingClaim(name.to_owned());
        }
        Reason::Other(text.to_owned())
    }

    /// A constraint of the pod's own spec (as opposed to a shortage on the node).
    pub fn is_constraint(&self) -> bool {
        matches!(
            self,
            Reason::Selector
                | Reason::Taint { .. }
                | Reason::Cordoned
                | Reason::AntiAffinity
                | Reason::Affinity
                | Reason::TopologySpread
                | Reason::VolumeZone
                | Reason::Ports
        )
    }
}

/// A reason with the number of nodes it ruled out: `(count, reason text, reason)`.
pub type Counted = (u32, String, Reason);

/// The scheduler's verdict on a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    pub nodes: u32,
    /// `(count, reason text, reason)`, as the scheduler listed them.
    pub reasons: Vec<Counted>,
    pub event: ClusterEvent,
}

impl FitError {
    /// The last `FailedScheduling` event of an unscheduled pod.
    pub fn of(facts: &Facts) -> Option<FitError> {
        let pod = facts.pod.as_ref()?;
        if !pod.node.is_empty() || pod.phase != "Pending" {
            return None;
        }
        let event = facts
            .events
            .iter()
            .filter(|e| e.reason == "FailedScheduling")
            .max_by_key(|e| e.last_seen)?;
        Self::parse(event)
    }

    fn parse(event: &ClusterEvent) -> Option<FitError> {
        let (nodes, reasons) = parse_message(&event.message)?;
        Some(FitError {
            nodes,
            reasons,
            event: event.clone(),
        })
    }

    /// How many nodes a constraint of the pod's spec rejected.
    pub fn constrained(&self) -> u32 {
        self.reasons
            .iter()
            .filter(|(_, _, r)| r.is_constraint())
            .map(|(c, _, _)| c)
            .sum()
    }

    /// The resources some node is short of.
    pub fn shortages(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .reasons
            .iter()
            .filter_map(|(_, _, r)| match r {
                Reason::Short(x) => Some(x.as_str()),
                _ => None,
            })
            .collect();
        out.dedup();
        out
    }

    pub fn evidence(&self) -> Evidence {
        Evidence {
            source: "scheduler events".into(),
            observation: format!(
                "FailedScheduling: {} ({} times since {})",
                self.event.message,
                self.event.count,
                self.event.first_seen.to_rfc3339()
            ),
        }
    }
}

/// A scheduler message (`0/N nodes are available: …`) as the number of nodes and its reasons,
/// `(count, reason text, reason)`; the preemption part is left out. A PreFilter's rejection
/// (since 1.24 without a count: `0/3 nodes are available: pod has unbound immediate
/// PersistentVolumeClaims.`) rules out every node.
pub fn parse_message(message: &str) -> Option<(u32, Vec<Counted>)> {
    let rest = message.strip_prefix("0/")?;
    let (n, rest) = rest.split_once(" nodes are available")?;
    let nodes = n.parse().ok()?;
    let body = rest.strip_prefix(": ").unwrap_or("");
    let body = body.split(" preemption: ").next().unwrap_or(body);
    let body = body.trim_end().trim_end_matches('.');
    // Split at ", <count> " only: a 1.20 taint reason has a comma of its own.
    let mut items: Vec<String> = Vec::new();
    for piece in body.split(", ") {
        let starts_with_count = piece
            .split_once(' ')
            .is_some_and(|(c, _)| c.parse::<u32>().is_ok());
        match items.last_mut() {
            Some(last) if !starts_with_count => {
                last.push_str(", ");
                last.push_str(piece);
            }
            _ => items.push(piece.to_owned()),
        }
    }
    let reasons = items
        .iter()
        .filter(|i| !i.is_empty())
        .map(|i| match i.split_once(' ') {
            Some((c, text)) if c.parse::<u32>().is_ok() => (
                c.parse().unwrap_or(nodes),
                text.to_owned(),
                Reason::of(text),
            ),
            _ => (nodes, i.clone(), Reason::of(i)),
        })
        .collect();
    Some((nodes, reasons))
}

/// The placement rules in words, `nodeSelector disktype=nvme`, `tolerations: none`, ...
pub fn describe_rules(p: &PlacementRules) -> Vec<String> {
    let mut out = Vec::new();
    if !p.node_selector.is_empty() {
        out.push(format!(
            "nodeSelector {}",
            p.node_selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for t in &p.required_affinity {
        out.push(format!("required node affinity {t}"));
    }
    out
}

/// The nodes' labels for `key`, `node-a: ssd, node-b: (none)`.
pub fn labels_of(nodes: &[NodeInfo], key: &str) -> String {
    nodes
        .iter()
        .map(|n| {
            format!(
                "{}: {}",
                n.name,
                n.labels.get(key).map_or("(none)", String::as_str)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sum of the container requests of `resource` in the workload's pod.
pub fn pod_request(facts: &Facts, resource: &str) -> Option<Quantity> {
    facts
        .info
        .containers
        .iter()
        .filter_map(|c| c.requests.get(resource).or_else(|| c.limits.get(resource)))
        .copied()
        .reduce(|a, b| a + b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(message: &str) -> ClusterEvent {
        ClusterEvent {
            kind: "Warning".into(),
            reason: "FailedScheduling".into(),
            message: message.into(),
            count: 3,
            first_seen: crate::testing::now(),
            last_seen: crate::testing::now(),
            object: "Pod/p".into(),
        }
    }

    #[test]
    fn reads_current_and_1_20_wording_alike() {
        let now = FitError::parse(&event("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")).unwrap();
        let old = FitError::parse(&event("0/3 nodes are available: 1 node(s) had taint {dedicated: gpu}, that the pod didn't tolerate, 2 node(s) didn't match node selector.")).unwrap();
        for f in [&now, &old] {
            assert_eq!(f.nodes, 3);
            let kinds: Vec<_> = f.reasons.iter().map(|(c, _, r)| (*c, r.clone())).collect();
            assert_eq!(
                kinds,
                vec![
                    (
                        1,
                        Reason::Taint {
                            key: "dedicated".into(),
                            value: "gpu".into()
                        }
                    ),
                    (2, Reason::Selector)
                ]
            );
            assert_eq!(f.constrained(), 3);
        }
        let short = FitError::parse(&event("0/4 nodes are available: 1 node(s) were unschedulable, 3 Insufficient memory, 2 Insufficient cpu. preemption: 0/4 nodes are available: 1 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod.")).unwrap();
        assert_eq!(short.constrained(), 1);
        assert_eq!(short.shortages(), vec!["memory", "cpu"]);
    }

    #[test]
    fn a_prefilter_rejection_rules_out_every_node_with_or_without_a_count() {
        let now = parse_message("0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.").unwrap();
        let old = parse_message(
            "0/3 nodes are available: 3 pod has unbound immediate PersistentVolumeClaims.",
        )
        .unwrap();
        for (nodes, reasons) in [now, old] {
            assert_eq!(nodes, 3);
            assert_eq!(reasons.len(), 1);
            assert_eq!((reasons[0].0, &reasons[0].2), (3, &Reason::UnboundClaims));
        }
        let (_, missing) = parse_message("0/2 nodes are available: persistentvolumeclaim \"data\" not found. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.").unwrap();
        assert_eq!(missing[0].2, Reason::MissingClaim("data".into()));
    }
}
