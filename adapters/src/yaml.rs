//! Reading Kubernetes objects out of YAML manifests into squad's cluster types.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use squad_protocols::Quantity;
use squad_protocols::cluster::{ContainerSpec, EnvVar, HpaInfo, NetworkPolicyInfo, WorkloadInfo};

/// Every object in a (multi-document) YAML file; empty documents are skipped.
pub fn objects(file: &str, text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc).map_err(|e| format!("{file}: document {i}: {e}"))?;
        if v.is_object() {
            out.push(v);
        }
    }
    Ok(out)
}

pub fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or("")
}

pub fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or("")
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn quantities(v: &Value) -> BTreeMap<String, Quantity> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| {
                    let s = q
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| q.to_string());
                    s.parse().ok().map(|q| (k.clone(), q))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The pod template's spec of a workload object.
pub fn pod_spec(obj: &Value) -> &Value {
    match kind(obj) {
        "Pod" => &obj["spec"],
        "CronJob" => &obj["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => &obj["spec"]["template"]["spec"],
    }
}

pub fn containers(obj: &Value) -> Vec<ContainerSpec> {
    pod_spec(obj)["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| ContainerSpec {
                    name: c["name"].as_str().unwrap_or("").to_owned(),
                    image: c["image"].as_str().unwrap_or("").to_owned(),
                    limits: quantities(&c["resources"]["limits"]),
                    requests: quantities(&c["resources"]["requests"]),
                    env: c["env"]
                        .as_array()
                        .map(|env| {
                            env.iter()
                                .map(|e| EnvVar {
                                    name: e["name"].as_str().unwrap_or("").to_owned(),
                                    source: if let Some(s) =
                                        e["valueFrom"]["secretKeyRef"].as_object()
                                    {
                                        format!(
                                            "secret:{}/{}",
                                            s.get("name").and_then(Value::as_str).unwrap_or(""),
                                            s.get("key").and_then(Value::as_str).unwrap_or("")
                                        )
                                    } else if let Some(s) =
                                        e["valueFrom"]["configMapKeyRef"].as_object()
                                    {
                                        format!(
                                            "configmap:{}/{}",
                                            s.get("name").and_then(Value::as_str).unwrap_or(""),
                                            s.get("key").and_then(Value::as_str).unwrap_or("")
                                        )
                                    } else {
                                        "value".into()
                                    },
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    run_as_non_root: c["securityContext"]["runAsNonRoot"].as_bool(),
                    privileged: c["securityContext"]["privileged"].as_bool(),
                    allow_privilege_escalation: c["securityContext"]["allowPrivilegeEscalation"]
                        .as_bool(),
                    read_only_root_filesystem: c["securityContext"]["readOnlyRootFilesystem"]
                        .as_bool(),
                    has_readiness_probe: c.get("readinessProbe").is_some(),
                    has_liveness_probe: c.get("livenessProbe").is_some(),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn workload_info(obj: &Value, namespace: &str) -> WorkloadInfo {
    let spec = pod_spec(obj);
    WorkloadInfo {
        kind: kind(obj).to_owned(),
        namespace: obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or(namespace)
            .to_owned(),
        name: name(obj).to_owned(),
        replicas: obj["spec"]["replicas"].as_u64().unwrap_or(1) as u32,
        service_account: spec["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_owned(),
        pod_labels: string_map(&obj["spec"]["template"]["metadata"]["labels"]),
        containers: containers(obj),
        pod_run_as_non_root: spec["securityContext"]["runAsNonRoot"].as_bool(),
    }
}

pub fn network_policy(obj: &Value) -> NetworkPolicyInfo {
    NetworkPolicyInfo {
        name: name(obj).to_owned(),
        pod_selector: string_map(&obj["spec"]["podSelector"]["matchLabels"]),
        policy_types: strings(&obj["spec"]["policyTypes"]),
        ingress_rules: obj["spec"]["ingress"].as_array().map_or(0, Vec::len),
        egress_rules: obj["spec"]["egress"].as_array().map_or(0, Vec::len),
    }
}

pub fn hpa(obj: &Value) -> HpaInfo {
    let metrics = obj["spec"]["metrics"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    let r = &m["resource"];
                    format!(
                        "{} {}%",
                        r["name"].as_str().unwrap_or("?"),
                        r["target"]["averageUtilization"].as_u64().unwrap_or(0)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    HpaInfo {
        name: name(obj).to_owned(),
        target: format!(
            "{}/{}",
            obj["spec"]["scaleTargetRef"]["kind"].as_str().unwrap_or(""),
            obj["spec"]["scaleTargetRef"]["name"].as_str().unwrap_or("")
        ),
        min_replicas: obj["spec"]["minReplicas"].as_u64().unwrap_or(1) as u32,
        max_replicas: obj["spec"]["maxReplicas"].as_u64().unwrap_or(1) as u32,
        metrics,
    }
}

/// One RBAC rule: (apiGroups, resources, resourceNames, verbs).
pub type RuleParts = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

pub fn rules(role: &Value) -> Vec<RuleParts> {
    role["rules"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    (
                        strings(&r["apiGroups"]),
                        strings(&r["resources"]),
                        strings(&r["resourceNames"]),
                        strings(&r["verbs"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_a_deployment_with_resources_env_and_security() {
        let text = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: w\nspec:\n  replicas: 3\n  template:\n    metadata:\n      labels:\n        app: w\n    spec:\n      serviceAccountName: sa\n      containers:\n        - name: c\n          image: i:1\n          env:\n            - name: A\n              value: x\n            - name: B\n              valueFrom:\n                secretKeyRef:\n                  name: s\n                  key: k\n          resources:\n            limits:\n              memory: 512Mi\n              cpu: \"1\"\n";
        let objs = objects("f.yaml", text).unwrap();
        let w = workload_info(&objs[0], "ns");
        assert_eq!(w.replicas, 3);
        assert_eq!(w.service_account, "sa");
        let c = w.container("c").unwrap();
        assert_eq!(c.limits["memory"], "512Mi".parse().unwrap());
        assert_eq!(c.env[1].source, "secret:s/k");
    }

    #[test]
    fn a_broken_document_names_the_file() {
        let err = objects("bad.yaml", "a: [1,\n").unwrap_err();
        assert!(err.contains("bad.yaml"), "{err}");
    }
}
