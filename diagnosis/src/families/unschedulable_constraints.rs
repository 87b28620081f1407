//! Unschedulable by constraints: the scheduler finds no node the pod may go to. Every node is
//! ruled out by the pod's own spec (a nodeSelector or required node affinity no node's labels
//! meet, a taint it does not tolerate, a cordoned node), so more capacity would not help. The
//! scheduler says so in its `FailedScheduling` event (`0/3 nodes are available: 3 node(s) didn't
//! match Pod's node affinity/selector.`); the pod stays Pending with `PodScheduled=False`. Most
//! often the last deploy added or changed the selector or dropped a toleration. The fix (labels
//! and tolerations that match real nodes, or the previous revision's) comes with the
//! remediations; until then the crew escalates with the diagnosis. The proof is every pod
//! scheduled and Ready.

use squad_protocols::cluster::PlacementRules;
use squad_protocols::{Diagnosis, Member, RootCause, WorkloadRef};

use super::scheduling::{FitError, Reason, describe_rules, labels_of};
use crate::{
    Detection, Facts, Family, FollowupContext, IssueDraft, Readings, Remedy, RemedyInput,
    RepoNeeds, Runbook,
};

pub struct UnschedulableConstraints;

pub const ROOT_CAUSE: &str = "unschedulable_constraints";

/// What the last rollout changed in where the pods may go: (revision, how long ago, before,
/// after).
fn placement_change(facts: &Facts) -> Option<(u32, String, PlacementRules, PlacementRules)> {
    let c = crate::readings::last_rollout_change(facts, |r| Some(r.placement.clone()))?;
    Some((c.revision, c.ago, c.before, c.after))
}

fn words(p: &PlacementRules) -> String {
    let mut rules = describe_rules(p);
    if !p.tolerations.is_empty() {
        rules.push(format!("tolerations {}", p.tolerations.join(", ")));
    }
    if rules.is_empty() {
        "no placement rules".into()
    } else {
        rules.join("; ")
    }
}

impl Family for UnschedulableConstraints {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("FailedScheduling")
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let fit = FitError::of(facts)?;
        // Every node ruled out by the pod's own constraints (none merely short of room).
        if fit.nodes == 0 || fit.constrained() < fit.nodes {
            return None;
        }
        let rules = &facts.info.placement;
        let mut d = Detection::new(String::new(), 0.9, &[]);
        d.evidence.push(fit.evidence());
        let mut causes = Vec::new();
        for (count, _, reason) in &fit.reasons {
            match reason {
                Reason::Selector => {
                    let mut what = describe_rules(rules).join(" and ");
                    if what.is_empty() {
                        what = "its node selector".into();
                    }
                    causes.push(format!("{count} node(s) do not match {what}"));
                    for key in rules.node_selector.keys() {
                        if !facts.nodes.is_empty() {
                            d.evidence.push(squad_protocols::Evidence {
                                source: "nodes".into(),
                                observation: format!(
                                    "label {key} on the nodes: {}",
                                    labels_of(&facts.nodes, key)
                                ),
                            });
                        }
                    }
                }
                Reason::Taint { key, value } => {
                    let taint = if value.is_empty() {
                        key.clone()
                    } else {
                        format!("{key}={value}")
                    };
                    causes.push(format!(
                        "{count} node(s) carry taint {taint} it does not tolerate"
                    ));
                }
                Reason::Cordoned => causes.push(format!("{count} node(s) are cordoned")),
                Reason::AntiAffinity => {
                    causes.push(format!(
                        "{count} node(s) already run a pod its required anti-affinity rules out"
                    ));
                    d.recommendations.push(format!(
                        "required pod anti-affinity allows one such pod per topology domain: {} wants {} replica(s); fewer replicas, more nodes, or preferred anti-affinity / topologySpreadConstraints with whenUnsatisfiable: ScheduleAnyway",
                        facts.workload.name, facts.info.replicas
                    ));
                }
                Reason::Affinity => causes.push(format!(
                    "{count} node(s) run no pod its required pod affinity needs beside it"
                )),
                Reason::TopologySpread => {
                    causes.push(format!(
                        "{count} node(s) would break its topology spread constraints (maxSkew)"
                    ));
                    d.recommendations.push(
                        "a DoNotSchedule spread over domains that cannot take more pods blocks the rollout: whenUnsatisfiable: ScheduleAnyway, a larger maxSkew, or nodes in the short domain".into(),
                    );
                }
                Reason::VolumeZone => {
                    causes.push(format!(
                        "{count} node(s) are outside the zone of a volume it mounts (the PersistentVolume's node affinity)"
                    ));
                    d.recommendations.push(
                        "a zonal volume pins its pod to the volume's zone: nodes there with room, or a StorageClass with volumeBindingMode: WaitForFirstConsumer for new claims".into(),
                    );
                }
                Reason::Ports => causes.push(format!(
                    "{count} node(s) have a host port it asks for already taken"
                )),
                _ => {}
            }
        }
        let change = placement_change(facts);
        let rollout = match &change {
            Some((revision, ago, before, after)) => {
                d.confidence = 0.95;
                d.evidence.push(squad_protocols::Evidence {
                    source: "rollout history".into(),
                    observation: format!(
                        "revision {revision} ({ago}) changed the pods' placement from {} to {}",
                        words(before),
                        words(after)
                    ),
                });
                d.recommendations.push(format!(
                    "restore the placement of the revision before the last deploy ({}), or labels and tolerations that real nodes carry",
                    words(before)
                ));
                if before.is_empty() {
                    format!("; the last rollout ({ago}) added {}", words(after))
                } else {
                    format!(
                        "; the last rollout ({ago}) changed it from {} to {}",
                        words(before),
                        words(after)
                    )
                }
            }
            None => String::new(),
        };
        d.recommendations.push(
            "match the nodeSelector/affinity to labels the nodes carry (`kubectl get nodes --show-labels`), and tolerate the taints of the nodes meant for it; more nodes of the same kind would not help"
                .into(),
        );
        d.summary = format!(
            "{} cannot be scheduled: 0/{} nodes are available: {}{rollout}",
            facts.workload.name,
            fit.nodes,
            causes.join(", ")
        );
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the pods' nodeSelector, affinity and tolerations against the nodes' labels and taints",
            ),
            (
                Member::Worf,
                "whether the taint guards nodes the workload must not share",
            ),
            (
                Member::Data,
                "whether the app needs the hardware the selector asks for",
            ),
        ]
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds {
            manifest: true,
            history: true,
        }
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        // The last deploy's own rules (a selector, an affinity, a dropped toleration) go back to
        // the ones that scheduled; otherwise the nodes changed, and that is not the workload's fix.
        match crate::undo::template_change(
            input,
            &[
                &["spec", "nodeSelector"],
                &["spec", "affinity"],
                &["spec", "tolerations"],
            ],
            "The scheduler finds no node the new pods may use",
            "the deploy's scheduling rules match no node",
        ) {
            Some((change, _)) => Remedy::Change(change),
            None => Remedy::owned_by(
                "the platform team",
                d,
                "brings back nodes the pods' rules allow (labels, taints, cordons) or agrees where the workload belongs; the last deploy did not change the pods' nodeSelector, affinity or tolerations",
            ),
        }
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "failedscheduling-constraints".into(),
            meaning: "The scheduler finds no node the pod is allowed on: its nodeSelector or required node affinity matches no node's labels, the nodes it could use carry taints it does not tolerate, or they are cordoned. The pod stays Pending (PodScheduled=False, reason Unschedulable); a rolling update to it stalls while the previous ReplicaSet keeps serving.".into(),
            checks: "1. `kubectl describe pod <pod> -n <ns>` — Events: `FailedScheduling … 0/N nodes are available: …`, each reason with how many nodes it ruled out.\n2. `kubectl get pod <pod> -n <ns> -o jsonpath='{.spec.nodeSelector}{.spec.affinity}{.spec.tolerations}'`.\n3. `kubectl get nodes --show-labels` and `kubectl describe nodes | grep -A3 Taints`.\n4. The GitOps diff of the last deploy: did it add a selector or drop a toleration?".into(),
            fixes: "- **Selector or affinity matches no node**: use a label the intended nodes carry, or restore the previous revision's selector, through a PR.\n- **Taint not tolerated**: add the toleration only if the workload belongs on those nodes; otherwise select the nodes it does belong on.\n- **Cordoned nodes**: uncordon them once maintenance ends; do not work around a drain.\n- Adding nodes of the same kind does not help: every node is ruled out by the pod's own rules.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Check {workload}'s nodeSelector, affinity and tolerations against the cluster's node labels and taints before a deploy merges."
            ),
            "Select nodes by labels the node pools are created with, not ones set by hand.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Check {}'s placement rules against the cluster's nodes before a deploy merges",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) the scheduler found no node the new pods were allowed on, so they stayed Pending.\n\n\
                 1. In CI, run the rendered Deployment through a scheduling dry run against the node labels and taints of each environment (`kubectl get nodes -o json`), and fail on a selector no node meets.\n\
                 2. Keep node labels and taints in the node pools' definitions, and reference only those.\n\
                 3. Reproduce: `kubectl describe pod -n {} {}` (Events).",
                cx.incident, cx.issue, cx.workload.namespace, cx.pod
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
        testing::unscheduled(message, 80.0, 4, 20)
    }

    fn node(name: &str, disk: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            conditions: Vec::new(),
            allocatable_memory: "15Gi".parse().ok(),
            capacity_memory: "16Gi".parse().ok(),
            kubelet_version: "v1.33.4".into(),
            allocatable_cpu: "3800m".parse().ok(),
            labels: BTreeMap::from([("disktype".into(), disk.into())]),
            taints: Vec::new(),
            unschedulable: false,
        }
    }

    #[test]
    fn a_selector_the_last_deploy_added_that_no_node_meets() {
        let mut f = pending(
            "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
        );
        let selector = BTreeMap::from([("disktype".to_owned(), "nvme".to_owned())]);
        f.info.placement.node_selector = selector.clone();
        f.history.last_mut().unwrap().placement.node_selector = selector;
        f.nodes = vec![node("n-1", "ssd"), node("n-2", "hdd")];
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "cart cannot be scheduled: 0/2 nodes are available: 2 node(s) do not match nodeSelector disktype=nvme; the last rollout (30 h ago) added nodeSelector disktype=nvme"
        );
        assert_eq!(d.confidence, 0.95);
        assert!(
            d.evidence
                .iter()
                .any(|e| e.observation == "label disktype on the nodes: n-1: ssd, n-2: hdd")
        );
    }

    /// The scheduler's other constraints: pod anti-affinity, topology spread, a volume's zone.
    #[test]
    fn anti_affinity_spread_and_volume_zones_are_constraints_too() {
        let mut f = pending(
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
        );
        f.info.replicas = 4;
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE, "{}", d.summary);
        assert_eq!(
            d.summary,
            "cart cannot be scheduled: 0/3 nodes are available: 3 node(s) already run a pod its required anti-affinity rules out"
        );
        assert!(
            d.recommendations
                .iter()
                .any(|r| r.contains("cart wants 4 replica(s)")),
            "{:?}",
            d.recommendations
        );
        let f = pending(
            "0/4 nodes are available: 1 node(s) had volume node affinity conflict, 3 node(s) didn't match pod topology spread constraints.",
        );
        let d = testing::diagnosis(&f);
        assert!(
            d.summary.ends_with("1 node(s) are outside the zone of a volume it mounts (the PersistentVolume's node affinity), 3 node(s) would break its topology spread constraints (maxSkew)"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn a_shortage_on_a_node_the_pod_may_use_is_not_a_constraint_problem() {
        let f = pending(
            "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match node selector.",
        );
        assert!(
            UnschedulableConstraints
                .detect(&f, &Readings::of(&f))
                .is_none()
        );
        let f = testing::oom_under_load();
        assert!(
            UnschedulableConstraints
                .detect(&f, &Readings::of(&f))
                .is_none()
        );
    }

    #[test]
    fn an_untolerated_taint_in_1_20_words_is_named() {
        let f = pending(
            "0/3 nodes are available: 3 node(s) had taint {dedicated: gpu}, that the pod didn't tolerate.",
        );
        let d = testing::diagnosis(&f);
        assert_eq!(
            d.summary,
            "cart cannot be scheduled: 0/3 nodes are available: 3 node(s) carry taint dedicated=gpu it does not tolerate"
        );
        let reason = testing::escalation(&UnschedulableConstraints, &d);
        assert!(reason.contains("dedicated=gpu"), "{reason}");
    }
}
