//! Which label the nodes carry now in place of the one a nodeSelector entry asks for: the node
//! pool was relabelled under an unchanged workload. The rule (see the family's module doc) finds
//! at most one replacement, and only on nodes the pods may use and that could hold them; anything
//! less clear is the platform team's, with the labels the nodes carry named.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use squad_protocols::Quantity;
use squad_protocols::cluster::{NodeInfo, PlacementRules};

/// One selector entry and the label the nodes carry in its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relabel {
    /// The entry as the workload asks for it.
    pub key: String,
    pub value: String,
    /// The label the nodes carry instead.
    pub to_key: String,
    pub to_value: String,
    /// The nodes the corrected selector matches (schedulable, taints tolerated).
    pub nodes: Vec<String>,
    /// Which clause of the rule found it, in words.
    pub why: String,
}

/// What the family found about the nodeSelector, kept in the diagnosis' signals for the remedy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectorSignals {
    /// The one label that replaces the broken entry, when the rule finds exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relabel: Option<Relabel>,
    /// The labels the usable nodes carry now under each broken entry's key or a key of the same
    /// name in another prefix, with their nodes: `example.com/pool=batch (batch-v2-1, batch-v2-2)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Why no replacement was chosen, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doubt: Option<String>,
}

/// What one pod of the workload asks of a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ask {
    pub cpu: Option<Quantity>,
    pub memory: Option<Quantity>,
    pub replicas: u32,
}

/// A label key's name without its prefix: `example.com/pool` → `pool`.
fn name_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Whether a toleration (as [`PlacementRules::tolerations`] words it) tolerates a taint
/// (`key=value:Effect` or `key:Effect`).
fn tolerates(toleration: &str, taint: &str) -> bool {
    if toleration.starts_with(':') {
        return true;
    }
    let (t_kv, t_effect) = taint.rsplit_once(':').unwrap_or((taint, ""));
    let (t_key, t_value) = t_kv.split_once('=').unwrap_or((t_kv, ""));
    let (kv, effect) = match toleration.rsplit_once(':') {
        Some((kv, e)) => (kv, Some(e)),
        None => (toleration, None),
    };
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (kv, None),
    };
    key == t_key && value.is_none_or(|v| v == t_value) && effect.is_none_or(|e| e == t_effect)
}

/// A node the pod may be scheduled on, its labels aside: not cordoned, and every taint that
/// keeps pods off (`NoSchedule`, `NoExecute`) tolerated.
pub fn usable(node: &NodeInfo, rules: &PlacementRules) -> bool {
    !node.unschedulable
        && node
            .taints
            .iter()
            .filter(|t| !t.ends_with(":PreferNoSchedule"))
            .all(|t| rules.tolerations.iter().any(|tol| tolerates(tol, t)))
}

fn matches(node: &NodeInfo, selector: &BTreeMap<String, String>) -> bool {
    selector
        .iter()
        .all(|(k, v)| node.labels.get(k).is_some_and(|l| l == v))
}

/// Whether the nodes could hold the workload's pods by their allocatable: one pod fits on some
/// node, and all replicas within the nodes' sum. (Facts carry no node's requested total: the
/// replay after the merge proves the rest.)
fn room(nodes: &[&NodeInfo], ask: &Ask) -> Result<(), String> {
    let fits = |n: &NodeInfo| {
        ask.cpu
            .is_none_or(|c| n.allocatable_cpu.is_none_or(|a| c <= a))
            && ask
                .memory
                .is_none_or(|m| n.allocatable_memory.is_none_or(|a| m <= a))
    };
    if !nodes.iter().any(|n| fits(n)) {
        return Err("no node that carries it has the allocatable for one pod".into());
    }
    let replicas = u64::from(ask.replicas.max(1));
    let total = |f: fn(&NodeInfo) -> Option<Quantity>| -> Option<u128> {
        nodes
            .iter()
            .map(|n| f(n).map(|q| q.milli().max(0).unsigned_abs()))
            .sum()
    };
    let over = |ask: Option<Quantity>, total: Option<u128>| matches!((ask, total), (Some(a), Some(t)) if a.milli().max(0).unsigned_abs() * u128::from(replicas) > t);
    if over(ask.cpu, total(|n| n.allocatable_cpu))
        || over(ask.memory, total(|n| n.allocatable_memory))
    {
        return Err(format!(
            "the nodes that carry it cannot hold {replicas} pods by their allocatable"
        ));
    }
    Ok(())
}

/// Applies the rule to the workload's placement and the cluster's nodes; `ran_on` are the nodes
/// the workload's pods are known to have run on.
pub fn find(
    rules: &PlacementRules,
    nodes: &[NodeInfo],
    ran_on: &BTreeSet<String>,
    ask: &Ask,
) -> SelectorSignals {
    let mut out = SelectorSignals::default();
    if rules.node_selector.is_empty() || nodes.is_empty() {
        return out;
    }
    let usable: Vec<&NodeInfo> = nodes.iter().filter(|n| usable(n, rules)).collect();
    let broken: Vec<(&String, &String)> = rules
        .node_selector
        .iter()
        .filter(|(k, v)| {
            !usable
                .iter()
                .any(|n| n.labels.get(*k).is_some_and(|l| l == *v))
        })
        .collect();
    // The labels near each broken entry: its key, or a key of the same name.
    let mut near: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (k, _) in &broken {
        for n in &usable {
            for (lk, lv) in &n.labels {
                if lk == *k || name_of(lk) == name_of(k) {
                    near.entry((lk.clone(), lv.clone()))
                        .or_default()
                        .push(n.name.clone());
                }
            }
        }
    }
    out.labels = near
        .iter()
        .map(|((k, v), ns)| {
            let mut ns = ns.clone();
            ns.dedup();
            format!("{k}={v} ({})", ns.join(", "))
        })
        .collect();
    let doubt = |why: String| SelectorSignals {
        relabel: None,
        labels: out.labels.clone(),
        doubt: Some(why),
    };
    let [(key, value)] = broken.as_slice() else {
        return doubt(if broken.is_empty() {
            "every selector entry is met by some usable node: the entries together, the affinity or the nodes' room rule them out".into()
        } else {
            format!(
                "{} selector entries match no usable node; one relabelled entry is all squad corrects",
                broken.len()
            )
        });
    };
    if !rules.required_affinity.is_empty() {
        return doubt(
            "the pods also carry required node affinity, which squad does not correct".into(),
        );
    }
    let mut candidates: BTreeSet<(String, String, &'static str)> = BTreeSet::new();
    for ((lk, lv), on) in &near {
        if lk != *key && lv == *value {
            candidates.insert((
                lk.clone(),
                lv.clone(),
                "the same value under a key of the same name",
            ));
        }
        if lk == *key && lv != *value && on.iter().any(|n| ran_on.contains(n)) {
            candidates.insert((
                lk.clone(),
                lv.clone(),
                "the same key with the value the nodes the pods ran on carry now",
            ));
        }
    }
    let [(to_key, to_value, why)] = candidates.iter().collect::<Vec<_>>().as_slice() else {
        return doubt(if candidates.is_empty() {
            format!(
                "no usable node carries {value} under a key named {} nor a new value of {key} on a node the pods ran on",
                name_of(key)
            )
        } else {
            format!(
                "{} labels could replace {key}={value}: {}",
                candidates.len(),
                candidates
                    .iter()
                    .map(|(k, v, _)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    };
    let mut selector = rules.node_selector.clone();
    selector.remove(*key);
    selector.insert(to_key.clone(), to_value.clone());
    let there: Vec<&NodeInfo> = usable
        .iter()
        .copied()
        .filter(|n| matches(n, &selector))
        .collect();
    if there.is_empty() {
        return doubt(format!(
            "no usable node carries {to_key}={to_value} and the selector's other entries"
        ));
    }
    if let Err(why) = room(&there, ask) {
        return doubt(format!("{to_key}={to_value}: {why}"));
    }
    out.relabel = Some(Relabel {
        key: (*key).clone(),
        value: (*value).clone(),
        to_key: to_key.clone(),
        to_value: to_value.clone(),
        nodes: there.iter().map(|n| n.name.clone()).collect(),
        why: (*why).to_owned(),
    });
    out
}

/// The nodes the workload's pods were placed on: where its other pods run, what the events the
/// facts carry say (`Successfully assigned <ns>/<pod> to <node>`), and the alerted pod's node.
pub fn ran_on(facts: &crate::Facts) -> BTreeSet<String> {
    let prefix = format!("{}/{}-", facts.workload.namespace, facts.workload.name);
    let mut out: BTreeSet<String> = facts
        .events
        .iter()
        .chain(&facts.rollout_events)
        .chain(&facts.workload_events)
        .chain(&facts.node_events)
        .filter(|e| e.reason == "Scheduled")
        .filter_map(|e| e.message.strip_prefix("Successfully assigned "))
        .filter_map(|m| m.split_once(" to "))
        .filter(|(pod, _)| pod.starts_with(&prefix))
        .map(|(_, node)| node.trim().to_owned())
        .collect();
    out.extend(facts.node.as_ref().map(|n| n.name.clone()));
    out.extend(facts.pod_nodes.iter().cloned());
    out
}

/// The lines of the nodeSelector block (as `object_key_lines` gives them, `nodeSelector:`
/// first) with the entry `key` rewritten to `to_key: to_value`, its indentation and comment kept;
/// `None` when the entry is not on a line of its own.
pub fn rewrite(lines: &[String], r: &Relabel) -> Option<Vec<String>> {
    let mut out = lines.to_vec();
    let mut done = false;
    for line in out.iter_mut().skip(1) {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let Some((k, rest)) = body.split_once(':') else {
            continue;
        };
        if k.trim().trim_matches(['"', '\'']) != r.key {
            continue;
        }
        let comment = rest.find(" #").map_or("", |i| &rest[i..]);
        let old = rest[..rest.len() - comment.len()].trim();
        if old.trim_matches(['"', '\'']) != r.value || done {
            return None;
        }
        // The line's own quoting stays; a value YAML would read as another type is quoted.
        let quote = |text: &str| text.chars().next().filter(|c| matches!(c, '"' | '\''));
        let key = match quote(k.trim()) {
            Some(q) => format!("{q}{}{q}", r.to_key),
            None => r.to_key.clone(),
        };
        let plain_is_text = r.to_value.parse::<f64>().is_err()
            && !matches!(
                r.to_value.to_ascii_lowercase().as_str(),
                "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | ""
            );
        let value = match quote(old) {
            Some(q) => format!("{q}{}{q}", r.to_value),
            None if plain_is_text => r.to_value.clone(),
            None => format!("\"{}\"", r.to_value),
        };
        let gap = &rest[..rest.len() - comment.len()];
        let gap = &gap[gap.trim_end().len()..];
        *line = format!("{indent}{key}: {value}{gap}{comment}");
        done = true;
    }
    done.then_some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[&str]) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            conditions: Vec::new(),
            allocatable_memory: "15Gi".parse().ok(),
            capacity_memory: "16Gi".parse().ok(),
            kubelet_version: "v1.33.4".into(),
            allocatable_cpu: "3800m".parse().ok(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            taints: taints.iter().map(|t| (*t).into()).collect(),
            unschedulable: false,
        }
    }

    fn rules(selector: &[(&str, &str)]) -> PlacementRules {
        PlacementRules {
            node_selector: selector
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..Default::default()
        }
    }

    fn ask() -> Ask {
        Ask {
            cpu: "500m".parse().ok(),
            memory: "1Gi".parse().ok(),
            replicas: 3,
        }
    }

    #[test]
    fn a_key_moved_under_a_prefix_is_the_one_replacement() {
        let nodes = [
            node("b-1", &[("example.com/pool", "batch")], &[]),
            node("b-2", &[("example.com/pool", "batch")], &[]),
            node("s-1", &[("example.com/pool", "system")], &[]),
            node(
                "g-1",
                &[("example.com/pool", "batch")],
                &["nvidia.com/gpu=present:NoSchedule"],
            ),
        ];
        let s = find(
            &rules(&[("pool", "batch")]),
            &nodes,
            &BTreeSet::new(),
            &ask(),
        );
        let r = s.relabel.unwrap();
        assert_eq!(
            (r.to_key.as_str(), r.to_value.as_str()),
            ("example.com/pool", "batch")
        );
        assert_eq!(
            r.nodes,
            ["b-1", "b-2"],
            "the tainted node is not one of them"
        );
    }

    #[test]
    fn a_new_value_counts_only_on_nodes_the_pods_ran_on() {
        let nodes = [
            node("b-1", &[("pool", "batch-v2")], &[]),
            node("s-1", &[("pool", "system")], &[]),
        ];
        let r = rules(&[("pool", "batch")]);
        let none = find(&r, &nodes, &BTreeSet::new(), &ask());
        assert!(none.relabel.is_none());
        assert_eq!(none.labels, ["pool=batch-v2 (b-1)", "pool=system (s-1)"]);
        let ran = BTreeSet::from(["b-1".to_owned()]);
        let s = find(&r, &nodes, &ran, &ask());
        assert_eq!(s.relabel.unwrap().to_value, "batch-v2");
    }

    #[test]
    fn two_candidates_or_no_room_is_doubt() {
        let nodes = [
            node("b-1", &[("example.com/pool", "batch")], &[]),
            node("c-1", &[("cloud.io/pool", "batch")], &[]),
        ];
        let s = find(
            &rules(&[("pool", "batch")]),
            &nodes,
            &BTreeSet::new(),
            &ask(),
        );
        assert!(s.relabel.is_none());
        assert!(
            s.doubt
                .unwrap()
                .starts_with("2 labels could replace pool=batch")
        );
        let nodes = [node("b-1", &[("example.com/pool", "batch")], &[])];
        let big = Ask {
            memory: "64Gi".parse().ok(),
            ..ask()
        };
        let s = find(&rules(&[("pool", "batch")]), &nodes, &BTreeSet::new(), &big);
        assert!(s.relabel.is_none());
        assert!(s.doubt.unwrap().contains("allocatable"));
    }

    #[test]
    fn the_line_keeps_its_indent_and_comment() {
        let lines: Vec<String> = [
            "nodeSelector:",
            "  pool: batch   # the batch pool",
            "  zone: a",
        ]
        .iter()
        .map(|l| (*l).to_owned())
        .collect();
        let r = Relabel {
            key: "pool".into(),
            value: "batch".into(),
            to_key: "example.com/pool".into(),
            to_value: "batch".into(),
            nodes: Vec::new(),
            why: String::new(),
        };
        assert_eq!(
            rewrite(&lines, &r).unwrap(),
            [
                "nodeSelector:",
                "  example.com/pool: batch   # the batch pool",
                "  zone: a"
            ]
        );
    }
}
