//! Unschedulable by capacity: the nodes the pod may go to have too little CPU or memory left
//! for its requests (`0/3 nodes are available: 3 Insufficient memory.`), or too many pods. The pod
//! stays Pending. Either the requests are larger than the app needs (often raised by the last
//! deploy) or the cluster is full. Requests sized from observed use are the workload's fix (with
//! the remediations); a full cluster belongs to whoever runs the node pools, so the crew
//! escalates with the figures. The proof is every pod scheduled with requests at or above what it
//! uses.

use serde::{Deserialize, Serialize};
use squad_protocols::{
    Diagnosis, Evidence, Finding, Member, Quantity, RootCause, Severity, WorkloadRef,
};

use super::scheduling::{FitError, pod_request};
use crate::{
    Change, Detection, Edit, Facts, Family, FollowupContext, IssueDraft, Readings, Remedy,
    RemedyInput, Runbook, family_signals,
};

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacitySignals {
    /// The resources the nodes are short of (`memory`, `cpu`, `pods`).
    pub short: Vec<String>,
    /// The alerted container, and its memory request now.
    pub container: String,
    pub memory_request: Option<Quantity>,
    /// The largest memory allocatable among the cluster's nodes.
    pub largest_memory: Option<Quantity>,
}

pub struct UnschedulableCapacity;

pub const ROOT_CAUSE: &str = "unschedulable_capacity";

/// The last rollout's change of the container's request of `resource`: (ago, before, after).
fn request_change(facts: &Facts, resource: &str) -> Option<(String, Quantity, Quantity)> {
    let c = crate::readings::last_rollout_change(facts, |r| {
        crate::readings::container_in(r, facts)
            .and_then(|c| c.requests.get(resource).or_else(|| c.limits.get(resource)))
            .copied()
    })?;
    (c.after > c.before).then_some((c.ago, c.before, c.after))
}

/// The memory request sized from what the pods use: the 24 h peak working set with the team's
/// headroom (`[remediation.memory] headroom_percent`, rounded up to `round_to`) — below today's
/// request, and within the largest node's allocatable. A request already at that size is what
/// the app needs: the cluster needs room, which is the platform team's.
fn memory_request(
    d: &Diagnosis,
    input: &RemedyInput<'_>,
    s: &CapacitySignals,
    m: &squad_protocols::diagnosis::MemorySignals,
) -> Remedy {
    let rule = &input.rules.remediation.memory;
    let sized = m
        .peak_24h
        .scale(100 + rule.headroom_percent, 100)
        .round_up_to(rule.round_to);
    let Some(now) = s.memory_request.filter(|now| sized < *now) else {
        return Remedy::owned_by(
            "the platform team",
            d,
            &format!(
                "adds room to the node pool: the pods use up to {} ({} with {}% headroom), so the request is what they need",
                m.peak_24h, sized, rule.headroom_percent
            ),
        );
    };
    if s.largest_memory.is_some_and(|max| sized > max) {
        return Remedy::owned_by(
            "the platform team",
            d,
            "provides nodes large enough for the pods' observed use",
        );
    }
    let why = format!(
        "Each pod requests {now} of memory, more than any node the pods may use has left; the running pods' working set peaked at {} over 24 h",
        m.peak_24h
    );
    Remedy::Change(Change {
        branch_word: "memory-request".into(),
        title: format!(
            "fix(infra): size {}'s memory request from observed use ({now} → {sized})",
            input.workload.name
        ),
        edits: vec![Edit::SetContainerResource {
            path: input.repo.path.clone(),
            kind: input.workload.kind.clone(),
            workload: input.workload.name.clone(),
            container: s.container.clone(),
            section: "requests".into(),
            resource: "memory".into(),
            value: sized.canonical(),
        }],
        notes: format!(
            "### A request the nodes can hold\n{why}. Rule: request = 24 h peak × {}% (`headroom_percent`), rounded up to {} → **{sized}**, within the largest node's allocatable{}. The limit stays as it is: the pods may still burst to it where a node has room. Whether the nodes hold the new pods is what the replay below checks.\n",
            100 + rule.headroom_percent,
            rule.round_to,
            s.largest_memory
                .map_or(String::new(), |q| format!(" ({q})"))
        ),
        findings: vec![Finding {
            severity: Severity::High,
            title: "memory request larger than the nodes have room for".into(),
            detail: why,
        }],
    })
}

impl Family for UnschedulableCapacity {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("FailedScheduling")
    }

    fn detect(&self, facts: &Facts, readings: &Readings) -> Option<Detection> {
        let fit = FitError::of(facts)?;
        let short = fit.shortages();
        // Some node the pod may use is merely short of room.
        if short.is_empty() || fit.constrained() >= fit.nodes {
            return None;
        }
        let mut d = Detection::new(String::new(), 0.85, &[]);
        d.evidence.push(fit.evidence());
        let open = fit.nodes - fit.constrained();
        let asks: Vec<String> = short
            .iter()
            .filter_map(|r| pod_request(facts, r).map(|q| format!("{q} {r}")))
            .collect();
        let mut summary = format!("{} cannot be scheduled: ", facts.workload.name);
        if asks.is_empty() {
            summary.push_str(&format!(
                "{} of {} nodes have too little {} left",
                open,
                fit.nodes,
                short.join(" and ")
            ));
        } else {
            summary.push_str(&format!(
                "each pod requests {} and {} of {} nodes it may use have too little left",
                asks.join(" and "),
                open,
                fit.nodes
            ));
        }
        // Could it ever fit? The largest allocatable among the nodes.
        let largest = |f: fn(&squad_protocols::cluster::NodeInfo) -> Option<Quantity>| {
            facts.nodes.iter().filter_map(f).max()
        };
        let mut never_fits = Vec::new();
        for r in &short {
            let (Some(ask), Some(max)) = (
                pod_request(facts, r),
                match *r {
                    "memory" => largest(|n| n.allocatable_memory),
                    "cpu" => largest(|n| n.allocatable_cpu),
                    _ => None,
                },
            ) else {
                continue;
            };
            d.evidence.push(Evidence {
                source: "nodes".into(),
                observation: format!("largest node allocatable {r}: {max}; the pod requests {ask}"),
            });
            if ask > max {
                never_fits.push(format!("{r} ({ask} > {max})"));
            }
        }
        if !never_fits.is_empty() {
            summary.push_str(&format!(
                "; no node could ever hold it: {}",
                never_fits.join(", ")
            ));
            d.confidence = 0.9;
        }
        if let Some(m) = readings
            .signals
            .memory
            .as_ref()
            .filter(|_| short.contains(&"memory"))
        {
            let peak = m.peak_24h;
            d.evidence.push(Evidence {
                source: "metrics".into(),
                observation: format!("the running pods' working set peaked at {peak} over 24 h"),
            });
            d.recommendations.push(format!(
                "size the memory request from observed use (peak {peak}) rather than a guess"
            ));
        }
        for r in &short {
            if let Some((ago, before, after)) = request_change(facts, r) {
                d.confidence = 0.95;
                d.evidence.push(Evidence {
                    source: "rollout history".into(),
                    observation: format!(
                        "the last rollout ({ago}) raised the {r} request of {} from {before} to {after}",
                        facts.container
                    ),
                });
                summary.push_str(&format!(
                    "; the last rollout ({ago}) raised the {r} request from {before} to {after}"
                ));
            }
        }
        d.recommendations.push(
            "if the requests are what the app needs, the cluster needs room: more or larger nodes (the node pool's owners decide)"
                .into(),
        );
        d.summary = summary;
        d.signals = serde_json::to_value(CapacitySignals {
            short: short.iter().map(|r| (*r).to_owned()).collect(),
            container: facts.container.clone(),
            memory_request: facts
                .info
                .container(&facts.container)
                .and_then(|c| c.requests.get("memory").copied()),
            largest_memory: largest(|n| n.allocatable_memory),
        })
        .ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the pods' requests against observed use and the nodes' allocatable",
            ),
            (Member::Worf, "whether a quota or policy set these requests"),
            (
                Member::Data,
                "what the app really needs per pod under today's load",
            ),
        ]
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        let (Some(s), Some(m)) = (family_signals::<CapacitySignals>(d), &d.signals.memory) else {
            return Remedy::not_yet(
                "capacity shortfalls without the pods' measured use",
                d,
                "a human sizes the requests or the node pool",
            );
        };
        if s.short.iter().any(|r| r != "memory") {
            return Remedy::owned_by(
                "the platform team",
                d,
                "adds room to the node pool (or agrees smaller requests with the app's owners): squad sizes memory requests from observed use, not CPU or pod counts",
            );
        }
        memory_request(d, input, &s, m)
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "failedscheduling-capacity".into(),
            meaning: "The nodes the pod may use have too little unrequested CPU or memory (or too many pods) for its requests, so the scheduler leaves it Pending (`Insufficient memory`, `Insufficient cpu`). Requests are reservations: a node is full when its pods' requests reach its allocatable, whatever they actually use.".into(),
            checks: "1. `kubectl describe pod <pod> -n <ns>` — Events: `FailedScheduling … N Insufficient memory`.\n2. `kubectl describe nodes | grep -A8 'Allocated resources'` — how much of each node is requested.\n3. The pod's requests against what it uses: `kubectl top pod -n <ns>` or `container_memory_working_set_bytes` over a day.\n4. The GitOps diff of the last deploy: did it raise the requests or the replicas?".into(),
            fixes: "- **Requests larger than the app needs**: size them from observed use with headroom, through a PR.\n- **A request larger than any node's allocatable**: it can never be scheduled; lower it or add a larger node pool.\n- **The cluster is full**: more nodes or a larger pool (cluster autoscaler limits), decided by the platform's owners; do not shrink requests below real use to squeeze in.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Size {workload}'s requests from observed use and check them against the nodes' allocatable before a deploy merges."
            ),
            "Alert on cluster requested/allocatable before it reaches 100%, not on the first Pending pod.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!("Size {}'s requests from what it uses", cx.workload.name),
            body: format!(
                "During incident {} (#{}) the scheduler found no node with room for the pods' requests, so they stayed Pending.\n\n\
                 1. Measure use per pod under peak load: `max_over_time(container_memory_working_set_bytes{{namespace=\"{}\"}}[7d])` and the CPU rate.\n\
                 2. Set requests to that with headroom, limits above; keep the largest request well under the smallest node's allocatable.\n\
                 3. Reproduce: `kubectl describe pod -n {} {}` (Events).",
                cx.incident, cx.issue, cx.workload.namespace, cx.workload.namespace, cx.pod
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use std::collections::BTreeMap;

    use squad_protocols::cluster::NodeInfo;

    use super::*;
    use crate::testing;

    fn pending(message: &str) -> Facts {
        let mut f = testing::unscheduled(message, 400.0, 2, 9);
        f.nodes = ["n-1", "n-2"]
            .iter()
            .map(|n| NodeInfo {
                name: (*n).into(),
                conditions: Vec::new(),
                allocatable_memory: "7Gi".parse().ok(),
                capacity_memory: "8Gi".parse().ok(),
                kubelet_version: "v1.33.4".into(),
                allocatable_cpu: "2".parse().ok(),
                labels: BTreeMap::new(),
                taints: Vec::new(),
                unschedulable: false,
            })
            .collect();
        f
    }

    #[test]
    fn a_request_the_last_deploy_raised_past_every_node() {
        let mut f = pending(
            "0/2 nodes are available: 2 Insufficient memory. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.",
        );
        let big: Quantity = "12Gi".parse().unwrap();
        f.info.containers[0].requests.insert("memory".into(), big);
        f.history.last_mut().unwrap().containers[0]
            .requests
            .insert("memory".into(), big);
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "cart cannot be scheduled: each pod requests 12Gi memory and 2 of 2 nodes it may use have too little left; no node could ever hold it: memory (12Gi > 7Gi); the last rollout (30 h ago) raised the memory request from 300Mi to 12Gi"
        );
        assert_eq!(d.confidence, 0.95);
        assert!(
            d.recommendations[0].contains("peak 400Mi"),
            "{:?}",
            d.recommendations
        );
    }

    #[test]
    fn constraints_alone_are_the_other_family() {
        let f = pending(
            "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
        );
        assert!(
            UnschedulableCapacity
                .detect(&f, &Readings::of(&f))
                .is_none()
        );
        let d = testing::diagnosis(&f);
        assert_eq!(
            d.root_cause.as_str(),
            super::super::unschedulable_constraints::ROOT_CAUSE
        );
    }
}
