//! Services: their cluster IPs, the workloads of the GitOps repo beside the alerted one that back
//! them (its *peers*), the endpoints the endpoints controller gives each, and where a
//! dependency's host leads.
//!
//! A Service's endpoints are the pods of its namespace whose labels carry its selector; for each
//! Service port, a pod is left out when the port's `targetPort` names a container port the pod
//! does not declare (as the endpoints controller does); a pod that is not ready is listed under
//! `notReadyAddresses`. The peers are healthy, stated simplification: every pod of a peer
//! Deployment runs and is ready, at the version the repo's head declares (peers do not roll
//! out, and StatefulSets and DaemonSets beside the alerted workload are served as declared,
//! without pods).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use squad_gitops::objects;
use squad_protocols::cluster::{ContainerStatus, Endpoint, PodInfo, ServiceInfo};

use super::scheduler::PodNeeds;
use super::world::{Addresses, uid};
use super::{Rollout, SimCluster, short_hash};
use crate::scenario::Dependency;

/// A pod a Service may send traffic to.
#[derive(Debug, Clone)]
pub(super) struct Backend {
    pub name: String,
    pub namespace: String,
    pub node: String,
    pub ip: String,
    pub labels: BTreeMap<String, String>,
    /// The pod's spec (its containers' ports).
    pub spec: Value,
    pub ready: bool,
}

/// Where a dependency's host leads.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lookup<'a> {
    /// A Service of the GitOps repo.
    Service(&'a ServiceInfo),
    /// An address outside the repo the scenario states (`ip`).
    Address(&'a str),
    /// Nothing: the cluster's DNS has no such name.
    NoSuchHost,
}

/// The Service a host names, from a pod in `namespace`: `svc`, `svc.ns`, `svc.ns.svc` or
/// `svc.ns.svc.cluster.local` (a trailing dot allowed), as the pod's DNS search path resolves
/// them.
pub(super) fn service_named<'a>(
    host: &str,
    namespace: &str,
    services: &'a [ServiceInfo],
) -> Option<&'a ServiceInfo> {
    let host = host.trim_end_matches('.');
    let parts: Vec<&str> = host.split('.').collect();
    let (name, ns) = match parts.as_slice() {
        [name] => (*name, namespace),
        [name, ns] | [name, ns, "svc"] | [name, ns, "svc", "cluster", "local"] => (*name, *ns),
        _ => return None,
    };
    services
        .iter()
        .find(|s| s.name == name && s.namespace == ns)
}

/// Where `dep`'s host leads from a pod in `namespace`.
pub(super) fn lookup<'a>(
    dep: &'a Dependency,
    namespace: &str,
    services: &'a [ServiceInfo],
) -> Lookup<'a> {
    if dep.host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Lookup::Address(&dep.host);
    }
    match service_named(&dep.host, namespace, services) {
        Some(s) => Lookup::Service(s),
        None if !dep.ip.is_empty() => Lookup::Address(&dep.ip),
        None => Lookup::NoSuchHost,
    }
}

/// The endpoints of `svc` among `backends`, one per address and Service port.
pub(super) fn endpoints(svc: &Value, backends: &[Backend]) -> Vec<Endpoint> {
    let ns = svc["metadata"]["namespace"].as_str().unwrap_or("");
    let selector: BTreeMap<String, String> = svc["spec"]["selector"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
        .collect();
    // A Service without a selector has its endpoints managed by hand.
    if selector.is_empty() {
        return Vec::new();
    }
    let ports = objects::service_ports(svc);
    let mut out = Vec::new();
    for b in backends.iter().filter(|b| {
        b.namespace == ns
            && selector
                .iter()
                .all(|(k, v)| b.labels.get(k).is_some_and(|l| l == v))
    }) {
        for p in &ports {
            if let Some(port) = objects::target_port(p, &b.spec) {
                out.push(Endpoint {
                    ip: b.ip.clone(),
                    pod: b.name.clone(),
                    ready: b.ready,
                    port_name: p.name.clone(),
                    port,
                });
            }
        }
    }
    out
}

/// The `Endpoints` object the endpoints controller writes for `svc`: addresses grouped into
/// subsets by the ports they serve.
pub(super) fn endpoints_object(svc: &Value, eps: &[Endpoint], backends: &[Backend]) -> Value {
    let ns = svc["metadata"]["namespace"].as_str().unwrap_or("");
    let protocol_of = |name: &str| {
        objects::service_ports(svc)
            .into_iter()
            .find(|p| p.name == name)
            .map_or("TCP".to_owned(), |p| p.protocol)
    };
    // pod -> the ports it serves, then the pods grouped by that set.
    let mut by_pod: BTreeMap<&str, Vec<(&str, u16)>> = BTreeMap::new();
    for e in eps {
        by_pod
            .entry(e.pod.as_str())
            .or_default()
            .push((e.port_name.as_str(), e.port));
    }
    // ports -> (ready addresses, not-ready addresses)
    type Addresses = (Vec<Value>, Vec<Value>);
    let mut subsets: BTreeMap<Vec<(&str, u16)>, Addresses> = BTreeMap::new();
    for (pod, mut ports) in by_pod {
        ports.sort();
        let Some(b) = backends.iter().find(|b| b.name == pod && b.namespace == ns) else {
            continue;
        };
        let address = json!({"ip": b.ip, "nodeName": b.node,
            "targetRef": {"kind": "Pod", "namespace": ns, "name": b.name,
                          "uid": uid(&format!("Pod/{ns}/{}", b.name))}});
        let entry = subsets.entry(ports).or_default();
        if b.ready {
            entry.0.push(address);
        } else {
            entry.1.push(address);
        }
    }
    let subsets: Vec<Value> = subsets
        .into_iter()
        .map(|(ports, (ready, unready))| {
            let mut s = json!({"ports": ports.iter().map(|(name, port)| {
                let mut p = json!({"port": port, "protocol": protocol_of(name)});
                if !name.is_empty() {
                    p["name"] = json!(name);
                }
                p
            }).collect::<Vec<_>>()});
            if !ready.is_empty() {
                s["addresses"] = json!(ready);
            }
            if !unready.is_empty() {
                s["notReadyAddresses"] = json!(unready);
            }
            s
        })
        .collect();
    let mut o = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": objects::name(svc), "namespace": ns},
    });
    if let Some(labels) = svc["metadata"]["labels"].as_object() {
        o["metadata"]["labels"] = json!(labels);
    }
    if !subsets.is_empty() {
        o["subsets"] = json!(subsets);
    }
    o
}

impl SimCluster {
    /// A Service's cluster IP: the one it declares, else the address a dependency naming it
    /// states, else one allocated from the Service range (10.96.0.0/12) by its name.
    pub(super) fn cluster_ip(&self, svc: &Value) -> String {
        if let Some(ip) = svc["spec"]["clusterIP"]
            .as_str()
            .filter(|ip| !ip.is_empty())
        {
            return ip.to_owned();
        }
        let name = objects::name(svc);
        let ns = svc["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&self.scenario.workload.namespace);
        let caller = self.scenario.workload.namespace.as_str();
        let named = self
            .scenario
            .apps()
            .flat_map(|a| &a.dependencies)
            .find(|d| {
                !d.ip.is_empty()
                    && service_named(&d.host, caller, &[service_stub(name, ns)]).is_some()
            });
        if let Some(d) = named {
            return d.ip.clone();
        }
        let h = uid(&format!("Service/{ns}/{name}"));
        let b = h.as_bytes();
        // 10.96.0.0/12, past the first addresses (kubernetes, kube-dns).
        format!("10.{}.{}.{}", 96 + b[0] % 16, b[1], 20 + b[2] % 230)
    }

    /// The Services among `objects` (the workload's namespace when they name none), with their
    /// cluster IPs.
    pub(super) fn services_among(&self, objects: &[Value]) -> Vec<Value> {
        let ns = self.scenario.workload.namespace.as_str();
        objects
            .iter()
            .filter(|o| objects::kind(o) == "Service")
            .map(|o| {
                let mut o = o.clone();
                if o["metadata"]["namespace"].is_null() {
                    o["metadata"]["namespace"] = json!(ns);
                }
                let ip = self.cluster_ip(&o);
                o["spec"]["clusterIPs"] = json!([ip]);
                o["spec"]["clusterIP"] = json!(ip);
                o
            })
            .collect()
    }

    /// The Services among `objects` as the `Cluster` port reads them, endpoints included.
    pub(super) fn service_infos(
        &self,
        objects: &[Value],
        backends: &[Backend],
    ) -> Vec<ServiceInfo> {
        self.services_among(objects)
            .iter()
            .map(|svc| {
                let mut info = objects::service_info(svc, None);
                info.endpoints = endpoints(svc, backends);
                info
            })
            .collect()
    }

    /// The repo's Deployments beside the alerted workload, each as a rollout that took over
    /// at `at` (its pods named as the Deployment controller names them).
    pub(super) fn peers(&self, objects: &[Value], at: DateTime<Utc>) -> Vec<Rollout> {
        let s = &self.scenario;
        let ns = s.workload.namespace.as_str();
        objects
            .iter()
            .filter(|o| {
                objects::kind(o) == "Deployment"
                    && !(s.workload.kind == "Deployment"
                        && objects::name(o) == s.workload.name
                        && o["metadata"]["namespace"].as_str().unwrap_or(ns) == ns)
            })
            .map(|o| {
                let workload = objects::workload_info(o, ns);
                let hash = short_hash(
                    &format!(
                        "{}/{}{}",
                        workload.namespace, workload.name, o["spec"]["template"]
                    ),
                    10,
                );
                let pods = (0..workload.replicas)
                    .map(|n| {
                        format!(
                            "{}-{hash}-{}",
                            workload.name,
                            short_hash(&format!("{hash}{n}"), 5)
                        )
                    })
                    .collect();
                Rollout {
                    revision: 1,
                    at,
                    message: String::new(),
                    needs: PodNeeds::of(objects::pod_spec(o)),
                    object: o.clone(),
                    workload,
                    pods,
                    blocked: None,
                    init_stop: None,
                    unschedulable: None,
                    unready: None,
                    ready_after: 0,
                    refused: None,
                    rescaled: Vec::new(),
                    respecified: Vec::new(),
                }
            })
            .collect()
    }

    /// A peer's pod: placed on the cluster's nodes in turn, running and ready since `r.at`.
    pub(super) fn peer_pod(&self, r: &Rollout, i: usize, name: &str) -> PodInfo {
        let nodes = self.scenario.cluster_nodes();
        let node = nodes
            .get(i % nodes.len().max(1))
            .map_or(self.scenario.workload.node.clone(), |n| n.name.clone());
        PodInfo {
            init_containers: Vec::new(),
            deleted_at: None,
            namespace: r.workload.namespace.clone(),
            name: name.to_owned(),
            node,
            phase: "Running".into(),
            reason: None,
            message: None,
            owner: Some(format!("ReplicaSet/{}", Self::rs_name(r))),
            created_at: r.at,
            containers: r
                .workload
                .containers
                .iter()
                .map(|c| ContainerStatus {
                    name: c.name.clone(),
                    ready: true,
                    restart_count: 0,
                    state: "running".into(),
                    last_termination: None,
                })
                .collect(),
        }
    }

    /// A rollout's pod as a Service sees it.
    pub(super) fn backend(&self, addresses: &Addresses, r: &Rollout, info: &PodInfo) -> Backend {
        let mut labels = r.workload.pod_labels.clone();
        labels.insert("pod-template-hash".into(), Self::pod_template_hash(r));
        Backend {
            name: info.name.clone(),
            namespace: info.namespace.clone(),
            ip: format!(
                "10.244.{}.{}",
                self.node_index(&info.node),
                addresses.octet(&info.name)
            ),
            node: info.node.clone(),
            labels,
            spec: objects::pod_spec(&r.object).clone(),
            ready: !info.containers.is_empty() && info.containers.iter().all(|c| c.ready),
        }
    }

    /// The peers' pods among `objects`, as backends (ready, all of them).
    pub(super) fn peer_backends(
        &self,
        addresses: &Addresses,
        objects: &[Value],
        at: DateTime<Utc>,
    ) -> Vec<Backend> {
        self.peers(objects, at)
            .iter()
            .flat_map(|r| {
                r.pods
                    .iter()
                    .enumerate()
                    .map(|(i, p)| self.backend(addresses, r, &self.peer_pod(r, i, p)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// A Service named `name` in `ns`, for matching a host against.
fn service_stub(name: &str, ns: &str) -> ServiceInfo {
    ServiceInfo {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        cluster_ip: String::new(),
        selector: BTreeMap::new(),
        ports: Vec::new(),
        endpoints: Vec::new(),
        service_type: String::new(),
        external_ips: Vec::new(),
        load_balancer_source_ranges: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;
    use std::time::Duration;

    use squad_runtime::Clock;

    use super::*;
    use crate::{Scenario, seed_gitops_repo};

    fn backend(name: &str, labels: &[(&str, &str)], port: (&str, u16), ready: bool) -> Backend {
        Backend {
            name: name.into(),
            namespace: "shop".into(),
            node: "n1".into(),
            ip: format!("10.244.1.{}", name.len()),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            spec: json!({"containers": [{"name": "c", "ports": [
                {"name": port.0, "containerPort": port.1, "protocol": "TCP"}]}]}),
            ready,
        }
    }

    fn service(selector: Value, target: Value) -> Value {
        json!({"kind": "Service", "metadata": {"name": "api", "namespace": "shop"},
               "spec": {"selector": selector, "ports": [{"name": "web", "port": 80, "targetPort": target}]}})
    }

    #[test]
    fn endpoints_follow_the_selector_the_target_port_and_readiness() {
        let pods = [
            backend("api-1", &[("app", "api")], ("http", 8080), true),
            backend("api-22", &[("app", "api")], ("http", 8080), false),
            backend("web-1", &[("app", "web")], ("http", 8080), true),
        ];
        let svc = service(json!({"app": "api"}), json!("http"));
        let eps = endpoints(&svc, &pods);
        assert_eq!(
            eps.iter()
                .map(|e| (e.pod.as_str(), e.port, e.ready))
                .collect::<Vec<_>>(),
            [("api-1", 8080, true), ("api-22", 8080, false)]
        );
        let o = endpoints_object(&svc, &eps, &pods);
        assert_eq!(
            o["subsets"][0]["addresses"][0]["targetRef"]["name"],
            "api-1"
        );
        assert_eq!(o["subsets"][0]["notReadyAddresses"][0]["ip"], "10.244.1.6");
        assert_eq!(
            o["subsets"][0]["ports"],
            json!([{"name": "web", "port": 8080, "protocol": "TCP"}])
        );
        // A port name no pod declares, a selector no pod matches, no selector: no endpoints,
        // and an Endpoints object without subsets.
        for svc in [
            service(json!({"app": "api"}), json!("grpc")),
            service(json!({"app": "api-v2"}), json!(8080)),
            service(Value::Null, json!(8080)),
        ] {
            let eps = endpoints(&svc, &pods);
            assert!(eps.is_empty(), "{svc}");
            assert!(endpoints_object(&svc, &eps, &pods).get("subsets").is_none());
        }
        // A number is taken as it is.
        assert_eq!(
            endpoints(&service(json!({"app": "web"}), json!(9000)), &pods)[0].port,
            9000
        );
    }

    #[test]
    fn every_pod_gets_its_own_address() {
        let names: Vec<String> = (0..240).map(|i| format!("api-7d9f8c6b5-{i:05}")).collect();
        let a = Addresses::allocate(names.iter().map(String::as_str));
        let mut octets: Vec<u8> = names.iter().map(|n| a.octet(n)).collect();
        octets.sort_unstable();
        octets.dedup();
        assert_eq!(octets.len(), 240);
        assert!(octets.iter().all(|o| (10..250).contains(o)));
        // The first pods keep their addresses when more come.
        let fewer = Addresses::allocate(names[..3].iter().map(String::as_str));
        assert!(names[..3].iter().all(|n| fewer.octet(n) == a.octet(n)));
    }

    #[test]
    fn hosts_resolve_through_the_pods_search_path() {
        let svc = |ns: &str| ServiceInfo {
            namespace: ns.into(),
            ..service_stub("inventory", ns)
        };
        let all = [svc("retail"), svc("data")];
        for (host, ns) in [
            ("inventory", "retail"),
            ("inventory.data", "data"),
            ("inventory.data.svc", "data"),
            ("inventory.data.svc.cluster.local.", "data"),
        ] {
            assert_eq!(
                service_named(host, "retail", &all).map(|s| s.namespace.as_str()),
                Some(ns),
                "{host}"
            );
        }
        assert!(service_named("inventory.example.com", "retail", &all).is_none());
        assert!(service_named("stock", "retail", &all).is_none());
    }

    /// The no-endpoints scenario, then a fix to the Service alone (the caller's manifest
    /// untouched): once it syncs, the Service has endpoints and the caller's pods come up.
    #[tokio::test(start_paused = true)]
    async fn fixing_the_service_alone_brings_the_caller_up() {
        let scenario = Arc::new(Scenario::embedded("no-endpoints").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let git = seed_gitops_repo(&scenario, &dir.path().join("gitops")).unwrap();
        let clock = Clock::starting_at(scenario.now);
        let sim = SimCluster::new(scenario.clone(), git.clone(), clock.clone());
        let w = scenario.workload_ref();
        let ready = |sim: &SimCluster| {
            sim.pods_of(&w)
                .unwrap()
                .iter()
                .filter(|p| p.containers.iter().all(|c| c.ready))
                .count()
        };
        let inventory = |sim: &SimCluster| {
            sim.services("retail")
                .unwrap()
                .into_iter()
                .find(|s| s.name == "inventory")
                .unwrap()
        };
        assert_eq!(ready(&sim), 0);
        assert!(inventory(&sim).endpoints.is_empty());
        let path = "k8s/retail/inventory.yaml";
        let text = git.read("main", path).unwrap().unwrap();
        git.commit(
            "main",
            None,
            "inventory: target the port the pods name",
            &[(
                path.into(),
                text.replace("targetPort: http", "targetPort: web"),
            )],
            clock.now(),
            false,
        )
        .unwrap();
        clock.sleep(Duration::from_secs(15 * 60)).await;
        let eps = inventory(&sim).endpoints;
        assert_eq!(eps.len(), 2, "{eps:?}");
        assert!(eps.iter().all(|e| e.ready && e.port == 8080));
        assert_eq!(ready(&sim), 3);
        // The caller's rollout history is untouched: the fix was not a rollout of it.
        assert_eq!(sim.rollout_history(&w).unwrap().len(), 2);
    }
}
