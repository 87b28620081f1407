//! kubectl's columns for Services and their Endpoints, as kube-apiserver's printers declare
//! them.

use serde_json::{Value, json};

use super::{AGE, Column, NAME};
use crate::kube_api::selectors::value_str;

/// `80/TCP`, `80:30080/TCP`, joined by commas; `<none>` without ports.
fn ports(svc: &Value) -> String {
    let ports: Vec<String> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_u64() {
                Some(node) => format!("{}:{node}/{proto}", value_str(&p["port"])),
                None => format!("{}/{proto}", value_str(&p["port"])),
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

/// `k=v,k2=v2` (sorted), `<none>` when empty.
fn labels(map: &Value) -> String {
    let mut pairs: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", value_str(v)))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// The ready addresses as `ip:port`, the first three and `+ N more...`; `<none>` when none.
fn endpoints(ep: &Value) -> String {
    let mut all = Vec::new();
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        for a in subset["addresses"].as_array().into_iter().flatten() {
            let ports = subset["ports"].as_array().cloned().unwrap_or_default();
            if ports.is_empty() {
                all.push(value_str(&a["ip"]));
            }
            for p in ports {
                all.push(format!("{}:{}", value_str(&a["ip"]), value_str(&p["port"])));
            }
        }
    }
    match all.len() {
        0 => "<none>".into(),
        n if n > 3 => format!("{} + {} more...", all[..3].join(","), n - 3),
        _ => all.join(","),
    }
}

pub(super) const SERVICE: &[Column] = &[
    NAME,
    Column {
        name: "Type",
        ty: "string",
        priority: 0,
        description: "type determines how the Service is exposed. Defaults to ClusterIP.",
        cell: |o, _| json!(value_str(&o["spec"]["type"])),
    },
    Column {
        name: "Cluster-IP",
        ty: "string",
        priority: 0,
        description: "clusterIP is the IP address of the service and is usually assigned randomly.",
        cell: |o, _| json!(value_str(&o["spec"]["clusterIP"])),
    },
    Column {
        name: "External-IP",
        ty: "string",
        priority: 0,
        description: "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
        cell: |o, _| {
            let ips: Vec<String> = o["spec"]["externalIPs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(value_str)
                .collect();
            json!(if ips.is_empty() {
                "<none>".to_owned()
            } else {
                ips.join(",")
            })
        },
    },
    Column {
        name: "Port(s)",
        ty: "string",
        priority: 0,
        description: "The list of ports that are exposed by this service.",
        cell: |o, _| json!(ports(o)),
    },
    AGE,
    Column {
        name: "Selector",
        ty: "string",
        priority: 1,
        description: "Route service traffic to pods with label keys and values matching this selector.",
        cell: |o, _| json!(labels(&o["spec"]["selector"])),
    },
];

pub(super) const ENDPOINTS: &[Column] = &[
    NAME,
    Column {
        name: "Endpoints",
        ty: "string",
        priority: 0,
        description: "The set of all endpoints is the union of all subsets.",
        cell: |o, _| json!(endpoints(o)),
    },
    AGE,
];
