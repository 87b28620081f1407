//! The nodes' network plugins, for pod addresses. Before a pod's containers are created the
//! runtime makes its sandbox, and the CNI plugin gives the sandbox an address: `aws-cni` from
//! the node's network interfaces (a few per instance type), the others from the node's pod CIDR
//! through `host-local` IPAM. A node whose plugin has none left (`[nodes.pod_network]
//! free_ips`: the pods already there hold theirs) cannot start another pod however much CPU and
//! memory it has — the scheduler counts neither: the pod is placed there, waits in
//! `ContainerCreating`, and the kubelet records `FailedCreatePodSandBox` with the plugin's words
//! at every retry (`failed to setup network for sandbox "…": plugin type="aws-cni" name="aws-cni"
//! failed (add): add cmd: failed to assign an IP address to container`).
//!
//! Which rollouts it stops: from the one running at the scenario's `now` on (the earlier ones
//! got their addresses when there were some), those whose new pods — placed beside the pods the
//! rolling update keeps, as the attach controller's check does — all land on nodes with no
//! address left. Stated simplifications: a rollout's pods behave alike (one whose pods land on
//! several nodes is stopped only when none of them gets an address); the kubelet's events carry
//! one sandbox id per pod and a count, where a real kubelet records a new id at each attempt.

use std::collections::BTreeMap;

use super::kubelet::Blocker;
use super::scheduler::{self, Placement};
use super::{Rollout, SimCluster, rolling_split};
use crate::scenario::PodNetwork;

impl SimCluster {
    /// Marks each rollout whose new pods find no pod address on the nodes they land on (see the
    /// module doc).
    pub(super) fn sandbox_failures(&self, rollouts: &mut [Rollout]) {
        let s = &self.scenario;
        let nodes = s.cluster_nodes();
        let networks: BTreeMap<String, (usize, PodNetwork)> = nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((n.name.clone(), (i + 1, n.pod_network.clone()?))))
            .collect();
        if networks.is_empty() || self.is_batch() {
            return;
        }
        let live = rollouts.iter().rposition(|r| r.at <= s.now).unwrap_or(0);
        for i in live.max(1)..rollouts.len() {
            let (before, after) = rollouts.split_at_mut(i);
            let (prev, r) = (&before[i - 1], &mut after[0]);
            if r.blocked.is_some() || r.refused.is_some() || r.unschedulable.is_some() {
                continue;
            }
            let mut placed = self.fresh_nodes();
            let (keep, new) = rolling_split(r, prev.workload.replicas);
            for _ in 0..keep {
                scheduler::place(&mut placed, &prev.needs);
            }
            let mut free: BTreeMap<&str, u32> = networks
                .iter()
                .map(|(n, (_, net))| (n.as_str(), net.free_ips))
                .collect();
            let mut starved = None;
            let mut served = false;
            for _ in 0..new.max(1) {
                let Placement::Node(node) = scheduler::place(&mut placed, &r.needs) else {
                    continue;
                };
                match free.get_mut(node.as_str()) {
                    Some(0) => starved = Some(node),
                    Some(k) => {
                        *k -= 1;
                        served = true;
                    }
                    None => served = true,
                }
            }
            if served {
                continue;
            }
            let Some((index, net)) = starved.and_then(|n| networks.get(&n)) else {
                continue;
            };
            r.blocked = Some(Blocker::Sandbox {
                sandbox: format!(
                    "{}{}",
                    super::world::uid(&format!("sandbox/{}", r.revision)).replace('-', ""),
                    super::world::uid(&format!("sandbox/{}/2", r.revision)).replace('-', "")
                ),
                error: plugin_error(net, *index),
            });
        }
    }
}

/// What the plugin answers when it has no address for a pod, in its words; `index` is the
/// node's position (its pod CIDR is `10.244.<index>.0/24`).
fn plugin_error(net: &PodNetwork, index: usize) -> String {
    let p = net.plugin.as_str();
    match p {
        "aws-cni" => format!(
            "plugin type=\"{p}\" name=\"{p}\" failed (add): add cmd: failed to assign an IP address to container"
        ),
        _ => format!(
            "plugin type=\"{p}\" failed (add): {}failed to allocate for range 0: no IP addresses available in range set: 10.244.{index}.1-10.244.{index}.254",
            if p == "flannel" {
                "failed to delegate add: "
            } else {
                ""
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The shipped scenario's new pods find no address on the node they land on; given two
    /// addresses there, or the node another plugin's room, they start.
    #[test]
    fn a_rollout_waits_only_where_no_address_is_left() {
        let blocked = |edit: &dyn Fn(&mut crate::Scenario)| {
            let mut s = crate::Scenario::embedded("ip-exhausted").unwrap();
            edit(&mut s);
            let (sim, _git, _clock, _dir) = super::super::testing::served(s);
            let (d, _) = sim.current().unwrap();
            d.rollouts.last().unwrap().blocked.clone()
        };
        assert!(matches!(
            blocked(&|_| {}),
            Some(Blocker::Sandbox { error, .. }) if error.contains("failed to assign an IP address")
        ));
        let starved = |s: &mut crate::Scenario| -> usize {
            s.nodes
                .iter()
                .position(|n| n.pod_network.as_ref().is_some_and(|p| p.free_ips == 0))
                .unwrap()
        };
        assert_eq!(
            blocked(&|s| {
                let i = starved(s);
                s.nodes[i].pod_network.as_mut().unwrap().free_ips = 2;
            }),
            None
        );
        assert_eq!(
            blocked(&|s| {
                let i = starved(s);
                s.nodes[i].pod_network = None;
            }),
            None
        );
    }

    #[test]
    fn each_plugin_says_it_in_its_own_words() {
        let net = |p: &str| PodNetwork {
            plugin: p.into(),
            free_ips: 0,
        };
        assert_eq!(
            plugin_error(&net("aws-cni"), 3),
            "plugin type=\"aws-cni\" name=\"aws-cni\" failed (add): add cmd: failed to assign an IP address to container"
        );
        assert_eq!(
            plugin_error(&net("flannel"), 2),
            "plugin type=\"flannel\" failed (add): failed to delegate add: failed to allocate for range 0: no IP addresses available in range set: 10.244.2.1-10.244.2.254"
        );
        assert!(plugin_error(&net("bridge"), 1).starts_with(
            "plugin type=\"bridge\" failed (add): failed to allocate for range 0: no IP"
        ));
    }
}
