//! NetworkPolicies: whether the app's pods may reach what it connects to at start-up
//! (`[app] dependencies`), and the cluster's DNS first for a dependency named by host. The
//! policies in force are those of the GitOps repo's commit that rolled out last (the workload's
//! namespace, `matchLabels` selectors), evaluated as a CNI plugin enforces them: a pod no
//! egress policy selects may send anything; one that some do may send only what a rule of
//! one of them allows. Ingress policies at the destination are not modelled.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use squad_gitops::objects;
use squad_protocols::cluster::{Destination, NetworkPolicyInfo};
use squad_runtime::ports::{PortError, PortResult};

use super::{Desired, Rollout, SimCluster};
use crate::scenario::Dependency;

/// The cluster's DNS Service (kube-dns), where every pod sends its lookups.
pub(super) const DNS_IP: &str = "10.96.0.10";

/// What the app could not reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unreachable {
    /// The lookup of the dependency's host timed out: DNS egress is blocked.
    Dns,
    /// The connection to the dependency's address timed out.
    Dial,
}

fn namespace_labels(namespace: &str, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels = extra.clone();
    labels.insert("kubernetes.io/metadata.name".into(), namespace.into());
    labels
}

fn dns() -> Destination {
    Destination {
        namespace: "kube-system".into(),
        namespace_labels: namespace_labels("kube-system", &BTreeMap::new()),
        pod_labels: BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())]),
        ip: DNS_IP.into(),
        port: 53,
        protocol: "UDP".into(),
    }
}

fn destination(dep: &Dependency) -> Destination {
    Destination {
        namespace: dep.namespace.clone(),
        namespace_labels: namespace_labels(&dep.namespace, &dep.namespace_labels),
        pod_labels: dep.pod_labels.clone(),
        ip: dep.ip.clone(),
        port: dep.port,
        protocol: dep.protocol.clone(),
    }
}

impl SimCluster {
    /// The NetworkPolicies of the workload's namespace at commit `rev`.
    pub(super) fn policies_at(&self, rev: &str) -> PortResult<Vec<NetworkPolicyInfo>> {
        let what = "read the GitOps repo";
        let ns = self.scenario.workload.namespace.as_str();
        let mut out = Vec::new();
        for path in self
            .git
            .list(rev, "")
            .map_err(|e| PortError::failed(what, e))?
        {
            if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
                continue;
            }
            let Some(text) = self
                .git
                .read(rev, &path)
                .map_err(|e| PortError::failed(what, e))?
            else {
                continue;
            };
            let objs = objects::parse(&path, &text).map_err(|e| PortError::failed(what, e))?;
            out.extend(
                objs.iter()
                    .filter(|o| {
                        objects::kind(o) == "NetworkPolicy"
                            && o["metadata"]["namespace"].as_str().unwrap_or(ns) == ns
                    })
                    .map(objects::network_policy),
            );
        }
        Ok(out)
    }

    /// The first dependency `r`'s container cannot reach when it starts at `t`, and how.
    pub(super) fn unreachable(
        &self,
        d: &Desired,
        r: &Rollout,
        t: DateTime<Utc>,
    ) -> Option<(&Dependency, Unreachable)> {
        let s = &self.scenario;
        if s.app.dependencies.is_empty() {
            return None;
        }
        let policies = &Self::rollout_at(d, t)?.policies;
        let ns = s.workload.namespace.as_str();
        let labels = &r.workload.pod_labels;
        let allowed =
            |dest: &Destination| NetworkPolicyInfo::egress_allowed(policies, ns, labels, dest);
        s.app.dependencies.iter().find_map(|dep| {
            let named = dep.host.parse::<std::net::Ipv4Addr>().is_err();
            if named && !allowed(&dns()) {
                Some((dep, Unreachable::Dns))
            } else if !allowed(&destination(dep)) {
                Some((dep, Unreachable::Dial))
            } else {
                None
            }
        })
    }

    /// The line the app logs when it gives up on `dep`, from the pod at `pod_ip`.
    pub(super) fn unreachable_line(
        &self,
        dep: &Dependency,
        how: &Unreachable,
        pod_ip: &str,
        source_port: u16,
    ) -> String {
        let error = match how {
            Unreachable::Dns => format!(
                "dial tcp: lookup {} on {DNS_IP}:53: read udp {pod_ip}:{source_port}->{DNS_IP}:53: i/o timeout",
                dep.host
            ),
            Unreachable::Dial => format!("dial tcp {}:{}: i/o timeout", dep.ip, dep.port),
        };
        self.scenario
            .app
            .dependency_log
            .as_deref()
            .unwrap_or("failed to connect to {name}: {error}")
            .replace("{name}", &dep.name)
            .replace("{error}", &error)
    }
}
