//! Unschedulable by constraints: the scheduler finds no node the pod may go to. Every node is
//! ruled out by the pod's own spec (a nodeSelector or required node affinity no node's labels
//! meet, a taint it does not tolerate, a cordoned node), so more capacity would not help. The
//! scheduler says so in its `FailedScheduling` event (`0/3 nodes are available: 3 node(s) didn't
//! match Pod's node affinity/selector.`); the pod stays Pending with `PodScheduled=False`. The
//! proof is every pod scheduled and Ready.
//!
//! The remedy, in order:
//! 1. **The last deploy changed the rules** (nodeSelector, affinity, tolerations): they go back to
//!    the previous revision's, which scheduled.
//! 2. **The nodes were relabelled under an unchanged selector** (a node pool migrated by its
//!    owners): the PR rewrites only the one selector line, when the rule below finds exactly one
//!    label to put there. Deleting the selector would let the pods land on any node (a GPU or
//!    system pool); tolerating every taint likewise. Neither is ever proposed.
//! 3. Otherwise the platform team decides, told which labels the nodes carry now.
//!
//! The relabel rule (`relabel::find`). *Usable* nodes are those not cordoned whose
//! `NoSchedule`/`NoExecute` taints the pod tolerates. A selector entry `k=v` is *broken* when no
//! usable node carries it. There must be exactly one broken entry and no required node affinity.
//! Its *candidates* are the labels of usable nodes that are either
//! (a) the same value `v` under another key with the same name after its prefix (`pool` →
//!     `example.com/pool`; `node-pool.example.com/pool` → `pool`), or
//! (b) the same key `k` with another value, carried by a node the workload's pods run on or were
//!     placed on (`Facts::pod_nodes`: pods scheduled before the relabelling stay where they are;
//!     `Scheduled` events; the alerted pod's node) — a value merely present in the cluster is not
//!     enough: that is another pool.
//! Exactly one candidate must exist; the selector with it in place of `k=v` must match at least
//! one usable node; and those nodes must have the allocatable for one pod on some node and for all
//! replicas together. Then the PR sets that line (its indentation and comment kept); anything
//! else escalates with the labels the usable nodes carry under `k` or a key of the same name.

use squad_protocols::cluster::PlacementRules;
use squad_protocols::{Diagnosis, Member, RootCause, WorkloadRef};

use super::scheduling::{FitError, Reason, describe_rules, labels_of, pod_request};
use crate::{
    Change, Detection, Facts, Family, FollowupContext, IssueDraft, Readings, Remedy, RemedyInput,
    RepoNeeds, Runbook, family_signals,
};

mod relabel;

use relabel::{Ask, Relabel, SelectorSignals};

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

/// The PR that rewrites the one selector line the nodes were relabelled under; `None` when the
/// manifest does not declare the entry on a line of its own (a Helm value, an overlay).
fn relabelled(input: &RemedyInput<'_>, r: &Relabel) -> Option<Change> {
    let obj = input.repo.workload(input.workload);
    let keys: Vec<&str> = crate::undo::template_keys(&input.workload.kind)
        .iter()
        .copied()
        .chain(["spec", "nodeSelector"])
        .collect();
    let lines =
        squad_gitops::editor::object_key_lines(&obj.text, &obj.kind, &obj.name, &keys).ok()??;
    let lines = relabel::rewrite(&lines, r)?;
    let why = format!(
        "The pods select {}={}, which no node carries any more; the nodes they may use ({}) carry {}={} ({}). The selector has not changed: the nodes were relabelled",
        r.key,
        r.value,
        r.nodes.join(", "),
        r.to_key,
        r.to_value,
        r.why
    );
    Some(Change {
        branch_word: "node-selector".into(),
        title: format!(
            "fix(infra): select {}'s nodes by their new label ({}={} → {}={})",
            input.workload.name, r.key, r.value, r.to_key, r.to_value
        ),
        edits: vec![crate::Edit::SetObjectKey {
            path: obj.path.clone(),
            kind: obj.kind.clone(),
            name: obj.name.clone(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            lines: Some(lines),
        }],
        notes: format!(
            "### The nodes' new label, not a looser selector\n{why}. Only that selector line changes: dropping the selector would let the pods land on any node (a GPU or system pool), and tolerating more taints likewise. Whether the nodes hold the pods is what the replay below checks.\n"
        ),
        findings: vec![squad_protocols::Finding {
            severity: squad_protocols::Severity::High,
            title: "nodeSelector names a label the nodes no longer carry".into(),
            detail: why,
        }],
    })
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
        let mut selector: Option<SelectorSignals> = None;
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
                    let found = relabel::find(
                        rules,
                        &facts.nodes,
                        &relabel::ran_on(facts),
                        &Ask {
                            cpu: pod_request(facts, "cpu"),
                            memory: pod_request(facts, "memory"),
                            replicas: facts.info.replicas,
                        },
                    );
                    if let Some(r) = &found.relabel {
                        d.evidence.push(squad_protocols::Evidence {
                            source: "nodes".into(),
                            observation: format!(
                                "no node the pods may use carries {}={}; {} carry {}={} ({})",
                                r.key,
                                r.value,
                                r.nodes.join(", "),
                                r.to_key,
                                r.to_value,
                                r.why
                            ),
                        });
                    } else if found.labels.iter().any(|l| {
                        // Labels under the selector's own keys are in the evidence already.
                        !rules
                            .node_selector
                            .keys()
                            .any(|k| l.starts_with(&format!("{k}=")))
                    }) {
                        d.evidence.push(squad_protocols::Evidence {
                            source: "nodes".into(),
                            observation: format!(
                                "labels of the same name on the nodes the pods may use: {}",
                                found.labels.join(", ")
                            ),
                        });
                    }
                    selector = Some(found);
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
            None => match selector.as_ref().and_then(|s| s.relabel.as_ref()) {
                Some(r) => {
                    d.recommendations.push(format!(
                        "select {}={} in place of {}={}: only that selector line, not the whole selector (the pods would land on any node) nor more tolerations",
                        r.to_key, r.to_value, r.key, r.value
                    ));
                    format!(
                        "; the selector did not change, the nodes did: {} carry {}={} where it asks for {}={}",
                        r.nodes.join(", "),
                        r.to_key,
                        r.to_value,
                        r.key,
                        r.value
                    )
                }
                None => String::new(),
            },
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
        if let Some(s) = selector.filter(|s| *s != SelectorSignals::default()) {
            d.signals = serde_json::to_value(s).ok();
        }
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
            None => {
                let s = family_signals::<SelectorSignals>(d).unwrap_or_default();
                if let Some(change) = s.relabel.as_ref().and_then(|r| relabelled(input, r)) {
                    return Remedy::Change(change);
                }
                let mut decides = "brings back nodes the pods' rules allow (labels, taints, cordons) or agrees where the workload belongs; the last deploy did not change the pods' nodeSelector, affinity or tolerations".to_owned();
                if !s.labels.is_empty() {
                    decides.push_str(&format!(
                        ". The nodes the pods may use carry now: {}",
                        s.labels.join(", ")
                    ));
                }
                if let Some(why) = &s.doubt {
                    decides.push_str(&format!(". Not corrected by squad: {why}"));
                }
                Remedy::owned_by("the platform team", d, &decides)
            }
        }
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "failedscheduling-constraints".into(),
            meaning: "The scheduler finds no node the pod is allowed on: its nodeSelector or required node affinity matches no node's labels, the nodes it could use carry taints it does not tolerate, or they are cordoned. The pod stays Pending (PodScheduled=False, reason Unschedulable); a rolling update to it stalls while the previous ReplicaSet keeps serving.".into(),
            checks: "1. `kubectl describe pod <pod> -n <ns>` — Events: `FailedScheduling … 0/N nodes are available: …`, each reason with how many nodes it ruled out.\n2. `kubectl get pod <pod> -n <ns> -o jsonpath='{.spec.nodeSelector}{.spec.affinity}{.spec.tolerations}'`.\n3. `kubectl get nodes --show-labels` and `kubectl describe nodes | grep -A3 Taints`.\n4. The GitOps diff of the last deploy: did it add a selector or drop a toleration?".into(),
            fixes: "- **Selector or affinity matches no node**: use a label the intended nodes carry, or restore the previous revision's selector, through a PR.\n- **Node pool relabelled under an unchanged selector**: select the label the workload's nodes carry now, changing only that selector line; never drop the selector (the pods would land on any pool) nor tolerate every taint.\n- **Taint not tolerated**: add the toleration only if the workload belongs on those nodes; otherwise select the nodes it does belong on.\n- **Cordoned nodes**: uncordon them once maintenance ends; do not work around a drain.\n- Adding nodes of the same kind does not help: every node is ruled out by the pod's own rules.".into(),
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

    fn labelled(name: &str, labels: &[(&str, &str)], taints: &[&str]) -> NodeInfo {
        let mut n = node(name, "ssd");
        n.labels = labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        n.taints = taints.iter().map(|t| (*t).into()).collect();
        n
    }

    /// A workload whose nodeSelector `pool: batch` is the same in every revision, Pending.
    fn relabelled_pool(nodes: Vec<NodeInfo>) -> Facts {
        let mut f = pending(
            "0/4 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: present}, 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.",
        );
        let selector = BTreeMap::from([("pool".to_owned(), "batch".to_owned())]);
        f.info.placement.node_selector = selector.clone();
        for r in &mut f.history {
            r.placement.node_selector = selector.clone();
        }
        f.nodes = nodes;
        f
    }

    const MANIFEST: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\n  namespace: shop\nspec:\n  replicas: 2\n  template:\n    spec:\n      nodeSelector:\n        pool: batch  # off the latency-sensitive nodes\n        tier: backend\n      containers:\n      - name: shipper\n        image: r/shipper:1\n      - name: api\n        image: r/cart:3.1\n";

    fn repo(versions: &[&str]) -> crate::RepoView {
        crate::RepoView {
            path: "apps/cart.yaml".into(),
            text: versions[0].to_owned(),
            history: versions
                .iter()
                .enumerate()
                .map(|(i, t)| squad_runtime::ports::FileVersion {
                    commit: format!("{i:0>10}"),
                    at: testing::now() - chrono::Duration::hours(i as i64 * 100),
                    message: format!("deploy {i}"),
                    content: (*t).to_owned(),
                })
                .collect(),
            layers: Vec::new(),
            objects: Vec::new(),
        }
    }

    fn remedy(d: &Diagnosis, repo: &crate::RepoView) -> Remedy {
        let settings = testing::settings();
        let w = testing::workload();
        let cluster = crate::ClusterView::default();
        UnschedulableConstraints.remedy(d, &testing::input(&settings, &w, repo, &cluster))
    }

    fn batch_nodes() -> Vec<NodeInfo> {
        vec![
            labelled(
                "b-1",
                &[("example.com/pool", "batch"), ("tier", "backend")],
                &[],
            ),
            labelled(
                "b-2",
                &[("example.com/pool", "batch"), ("tier", "backend")],
                &[],
            ),
            labelled(
                "sys-1",
                &[("example.com/pool", "system"), ("tier", "backend")],
                &[],
            ),
            labelled(
                "gpu-1",
                &[("example.com/pool", "batch"), ("tier", "backend")],
                &["nvidia.com/gpu=present:NoSchedule"],
            ),
        ]
    }

    #[test]
    fn a_relabelled_pool_gets_only_its_selector_line_rewritten() {
        let f = relabelled_pool(batch_nodes());
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert!(
            d.summary.ends_with(
                "; the selector did not change, the nodes did: b-1, b-2 carry example.com/pool=batch where it asks for pool=batch"
            ),
            "{}",
            d.summary
        );
        // The deploy before the last had the same selector: nothing to revert.
        let older = MANIFEST.replace("r/cart:3.1", "r/cart:3.0");
        let repo = repo(&[MANIFEST, &older]);
        let Remedy::Change(c) = remedy(&d, &repo) else {
            panic!("expected a PR");
        };
        assert_eq!(
            c.title,
            "fix(infra): select cart's nodes by their new label (pool=batch → example.com/pool=batch)"
        );
        let files = BTreeMap::from([(repo.path.clone(), repo.text.clone())]);
        let out = squad_gitops::apply(&c.edits, &files).unwrap();
        assert_eq!(
            out[0].1,
            MANIFEST.replace(
                "        pool: batch  #",
                "        example.com/pool: batch  #"
            )
        );
    }

    #[test]
    fn several_or_no_candidate_labels_escalate_naming_the_nodes_labels() {
        let mut nodes = batch_nodes();
        nodes[1].labels.remove("example.com/pool");
        nodes[1]
            .labels
            .insert("cloud.io/pool".into(), "batch".into());
        let d = testing::diagnosis(&relabelled_pool(nodes));
        let reason = testing::escalation(&UnschedulableConstraints, &d);
        assert!(reason.contains("the platform team"), "{reason}");
        assert!(
            reason.contains("cloud.io/pool=batch (b-2), example.com/pool=batch (b-1), example.com/pool=system (sys-1)"),
            "{reason}"
        );
        assert!(
            reason.contains("2 labels could replace pool=batch"),
            "{reason}"
        );

        // Same key, new values: which pool the pods belong to is not the cluster's say.
        let nodes = vec![
            labelled("b-1", &[("pool", "batch-v2")], &[]),
            labelled("sys-1", &[("pool", "system")], &[]),
        ];
        let mut f = relabelled_pool(nodes);
        let d = testing::diagnosis(&f);
        let reason = testing::escalation(&UnschedulableConstraints, &d);
        assert!(
            reason.contains("carry now: pool=batch-v2 (b-1), pool=system (sys-1)"),
            "{reason}"
        );
        // Unless the workload's pods run on one of them (placed before the relabelling).
        f.pod_nodes = vec!["b-1".into()];
        let d = testing::diagnosis(&f);
        let s: SelectorSignals = family_signals(&d).unwrap();
        assert_eq!(s.relabel.unwrap().to_value, "batch-v2");
    }

    #[test]
    fn a_selector_the_last_deploy_changed_is_restored_not_relabelled() {
        let mut f = relabelled_pool(batch_nodes());
        f.history[0].placement = Default::default();
        let d = testing::diagnosis(&f);
        let before = MANIFEST
            .replace("      nodeSelector:\n        pool: batch  # off the latency-sensitive nodes\n        tier: backend\n", "")
            .replace("r/cart:3.1", "r/cart:3.0");
        let repo = repo(&[MANIFEST, &before]);
        let Remedy::Change(c) = remedy(&d, &repo) else {
            panic!("expected a PR");
        };
        assert!(c.title.starts_with("fix(infra): restore"), "{}", c.title);
        let files = BTreeMap::from([(repo.path.clone(), repo.text.clone())]);
        let out = squad_gitops::apply(&c.edits, &files).unwrap();
        assert!(!out[0].1.contains("nodeSelector"), "{}", out[0].1);
    }
}
