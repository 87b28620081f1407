//! NetworkPolicies, Services and their endpoints, read from their objects.

use serde_json::Value;
use squad_protocols::cluster::{
    EgressRule, Endpoint, IngressRule, NetworkPolicyInfo, PolicyPeer, PolicyPort, ServiceInfo,
    ServicePort,
};

use super::*;

pub fn network_policy(obj: &Value) -> NetworkPolicyInfo {
    NetworkPolicyInfo {
        name: name(obj).to_owned(),
        pod_selector: string_map(&obj["spec"]["podSelector"]["matchLabels"]),
        policy_types: strings(&obj["spec"]["policyTypes"]),
        ingress_rules: obj["spec"]["ingress"].as_array().map_or(0, Vec::len),
        egress_rules: obj["spec"]["egress"].as_array().map_or(0, Vec::len),
        egress: obj["spec"]["egress"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|rule| EgressRule {
                to: peers(&rule["to"]),
                ports: ports(&rule["ports"]),
            })
            .collect(),
        ingress: obj["spec"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|rule| IngressRule {
                from: peers(&rule["from"]),
                ports: ports(&rule["ports"]),
            })
            .collect(),
    }
}

/// A rule's peers (`to` or `from`; selectors by `matchLabels`).
fn peers(list: &Value) -> Vec<PolicyPeer> {
    let selector = |v: &Value| v.is_object().then(|| string_map(&v["matchLabels"]));
    list.as_array()
        .into_iter()
        .flatten()
        .map(|peer| PolicyPeer {
            pod_selector: selector(&peer["podSelector"]),
            namespace_selector: selector(&peer["namespaceSelector"]),
            ip_block: peer["ipBlock"]["cidr"]
                .as_str()
                .map(|c| (c.to_owned(), strings(&peer["ipBlock"]["except"]))),
        })
        .collect()
}

/// A rule's ports.
fn ports(list: &Value) -> Vec<PolicyPort> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|p| PolicyPort {
            protocol: p["protocol"].as_str().unwrap_or("TCP").to_owned(),
            port: match &p["port"] {
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) => Some(s.clone()),
                _ => None,
            },
            end_port: p["endPort"].as_u64().map(|e| e as u16),
        })
        .collect()
}

/// A Service's ports (`targetPort` defaulting to `port`, as the apiserver does).
pub fn service_ports(svc: &Value) -> Vec<ServicePort> {
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p["port"].as_u64().unwrap_or(0) as u16;
            ServicePort {
                name: str_of(&p["name"]),
                port,
                target_port: match &p["targetPort"] {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    _ => port.to_string(),
                },
                protocol: p["protocol"].as_str().unwrap_or("TCP").to_owned(),
            }
        })
        .collect()
}

/// A Service with the endpoints its `Endpoints` object (of the same name) lists.
pub fn service_info(svc: &Value, endpoints: Option<&Value>) -> ServiceInfo {
    ServiceInfo {
        namespace: str_of(&svc["metadata"]["namespace"]),
        name: name(svc).to_owned(),
        cluster_ip: str_of(&svc["spec"]["clusterIP"]),
        selector: string_map(&svc["spec"]["selector"]),
        ports: service_ports(svc),
        endpoints: endpoints.map(endpoint_list).unwrap_or_default(),
        service_type: str_of(&svc["spec"]["type"]),
        external_ips: strings(&svc["spec"]["externalIPs"]),
        load_balancer_source_ranges: strings(&svc["spec"]["loadBalancerSourceRanges"]),
    }
}

/// An `Endpoints` object's addresses, one per address and port (`addresses` ready,
/// `notReadyAddresses` not).
pub fn endpoint_list(ep: &Value) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
            for a in subset[field].as_array().into_iter().flatten() {
                for p in subset["ports"].as_array().into_iter().flatten() {
                    out.push(Endpoint {
                        ip: str_of(&a["ip"]),
                        pod: if a["targetRef"]["kind"] == "Pod" {
                            str_of(&a["targetRef"]["name"])
                        } else {
                            String::new()
                        },
                        ready,
                        port_name: str_of(&p["name"]),
                        port: p["port"].as_u64().unwrap_or(0) as u16,
                    });
                }
            }
        }
    }
    out
}

/// The port of a pod (its spec) a Service port's `targetPort` leads to: the number itself, or
/// the container port of that name; `None` when the pod declares no port of that name (the
/// endpoints controller leaves the pod out).
pub fn target_port(port: &ServicePort, pod_spec: &Value) -> Option<u16> {
    if let Ok(n) = port.target_port.parse::<u16>() {
        return Some(n);
    }
    pod_spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|p| {
            p["name"] == port.target_port.as_str()
                && p["protocol"].as_str().unwrap_or("TCP") == port.protocol
        })
        .and_then(|p| p["containerPort"].as_u64())
        .map(|n| n as u16)
}
