//! Whether the app's pods may reach what it connects to at start-up (`[app] dependencies`):
//! the cluster's DNS first for a dependency named by host, then the address the name leads to.
//! The NetworkPolicies and Services in force are those of the GitOps repo's last commit synced
//! (whichever file it changed). Policies (the workload's namespace, `matchLabels` selectors) are evaluated as a CNI
//! plugin enforces them: a pod no egress policy selects may send anything; one that some do may
//! send only what a rule of one of them allows. Ingress policies at the destination are not
//! modelled. A host that names a Service of the repo leads to its cluster IP: a port the Service
//! does not have times out (no proxy rule), one without a ready endpoint is refused (the proxy
//! rejects it); a host that names none and states no address is not found.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use squad_gitops::objects;
use squad_protocols::cluster::{Destination, NetworkPolicyInfo, ServiceInfo};
use squad_runtime::ports::{PortError, PortResult};

use super::services::{Lookup, lookup};
use super::world::Addresses;
use super::{Desired, Rollout, SimCluster};
use crate::scenario::Dependency;

/// The cluster's DNS Service (kube-dns), where every pod sends its lookups.
pub(super) const DNS_IP: &str = "10.96.0.10";

/// What the app could not reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unreachable {
    /// The lookup of the dependency's host timed out: DNS egress is blocked.
    Dns,
    /// The cluster's DNS has no such name (no Service by it, no address stated).
    NoSuchHost,
    /// The connection to `ip` timed out: a NetworkPolicy drops it, or the Service has no such
    /// port (no proxy rule answers).
    Dial { ip: String },
    /// The Service at `ip` has no ready endpoint on the port: the proxy rejects the
    /// connection.
    Refused { ip: String },
}

impl Unreachable {
    /// Whether the app learns it at once (rather than after its connect timeout).
    pub(super) fn at_once(&self) -> bool {
        matches!(self, Unreachable::NoSuchHost | Unreachable::Refused { .. })
    }
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

fn destination(
    dep: &Dependency,
    namespace: &str,
    pod_labels: &BTreeMap<String, String>,
    ip: &str,
) -> Destination {
    Destination {
        namespace: namespace.to_owned(),
        namespace_labels: namespace_labels(namespace, &dep.namespace_labels),
        pod_labels: pod_labels.clone(),
        ip: ip.to_owned(),
        port: dep.port,
        protocol: dep.protocol.clone(),
    }
}

/// The NetworkPolicies of the workload's namespace and the repo's Services (with the
/// endpoints the peers give them) as one commit on main declares them: in force from its sync
/// until the next commit's.
#[derive(Debug, Clone)]
pub(super) struct Network {
    pub at: DateTime<Utc>,
    pub policies: Vec<NetworkPolicyInfo>,
    pub services: Vec<ServiceInfo>,
}

impl SimCluster {
    /// The network of every commit on main, oldest first; none when the app has no
    /// dependencies.
    pub(super) fn network_history(&self, addresses: &Addresses) -> PortResult<Vec<Network>> {
        let s = &self.scenario;
        if s.apps().all(|a| a.dependencies.is_empty()) {
            return Ok(Vec::new());
        }
        let mut log = self
            .git
            .log("main", "")
            .map_err(|e| PortError::failed("read the GitOps repo", e))?;
        log.reverse();
        let mut out = Vec::new();
        for commit in log {
            let at = super::synced_at(&commit, s.now);
            let all = self.objects_at(&commit.id)?;
            let backends = self.peer_backends(addresses, &all, at);
            out.push(Network {
                at,
                policies: self.policies_among(&all),
                services: self.service_infos(&all, &backends),
            });
        }
        Ok(out)
    }

    /// The NetworkPolicies of the workload's namespace among `objects`.
    pub(super) fn policies_among(&self, objects: &[Value]) -> Vec<NetworkPolicyInfo> {
        let ns = self.scenario.workload.namespace.as_str();
        objects
            .iter()
            .filter(|o| {
                objects::kind(o) == "NetworkPolicy"
                    && o["metadata"]["namespace"].as_str().unwrap_or(ns) == ns
            })
            .map(objects::network_policy)
            .collect()
    }

    /// The first dependency `r`'s container cannot reach when it starts at `t`, and how: the
    /// NetworkPolicies and Services of the last commit synced by then decide.
    pub(super) fn unreachable(
        &self,
        d: &Desired,
        r: &Rollout,
        t: DateTime<Utc>,
    ) -> Option<(&Dependency, Unreachable)> {
        let i = d.network.iter().rposition(|n| n.at <= t)?;
        let (dep, how) = d.reach.get(&(r.revision, i))?.clone()?;
        Some((self.app(r).dependencies.get(dep)?, how))
    }

    /// What each rollout's pods cannot reach under each commit's network (the dependency's
    /// index), computed once per main head: a container's life asks at every start.
    pub(super) fn reachability(
        &self,
        rollouts: &[Rollout],
        network: &[Network],
    ) -> BTreeMap<(u32, usize), Option<(usize, Unreachable)>> {
        let mut out = BTreeMap::new();
        for r in rollouts {
            for (i, net) in network.iter().enumerate() {
                out.insert((r.revision, i), self.first_unreachable(net, r));
            }
        }
        out
    }

    fn first_unreachable(&self, net: &Network, r: &Rollout) -> Option<(usize, Unreachable)> {
        let s = &self.scenario;
        let ns = s.workload.namespace.as_str();
        let labels = &r.workload.pod_labels;
        let allowed =
            |dest: &Destination| NetworkPolicyInfo::egress_allowed(&net.policies, ns, labels, dest);
        self.app(r)
            .dependencies
            .iter()
            .enumerate()
            .find_map(|(i, dep)| {
                let named = dep.host.parse::<std::net::Ipv4Addr>().is_err();
                if named && !allowed(&dns()) {
                    return Some((i, Unreachable::Dns));
                }
                let home = if dep.namespace.is_empty() {
                    ns
                } else {
                    dep.namespace.as_str()
                };
                let how = match lookup(dep, ns, &net.services) {
                    Lookup::NoSuchHost => Unreachable::NoSuchHost,
                    Lookup::Address(ip) => {
                        let dest = destination(dep, home, &dep.pod_labels, ip);
                        if allowed(&dest) {
                            return None;
                        }
                        Unreachable::Dial { ip: ip.to_owned() }
                    }
                    Lookup::Service(svc) => {
                        let ip = svc.cluster_ip.clone();
                        let dest = destination(dep, &svc.namespace, &svc.selector, &ip);
                        match svc.port(dep.port) {
                            _ if !allowed(&dest) => Unreachable::Dial { ip },
                            None => Unreachable::Dial { ip },
                            Some(p) if svc.ready_endpoints(p).is_empty() => {
                                Unreachable::Refused { ip }
                            }
                            Some(_) => return None,
                        }
                    }
                };
                Some((i, how))
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
            Unreachable::NoSuchHost => {
                format!("dial tcp: lookup {} on {DNS_IP}:53: no such host", dep.host)
            }
            Unreachable::Dial { ip } => format!("dial tcp {ip}:{}: i/o timeout", dep.port),
            Unreachable::Refused { ip } => {
                format!("dial tcp {ip}:{}: connect: connection refused", dep.port)
            }
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
