//! Reading Kubernetes objects out of YAML manifests into squad's cluster types.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use squad_protocols::Quantity;
use squad_protocols::cluster::{
    ClaimInfo, ClusterEvent, ContainerPort, ContainerSpec, ContainerStatus, EnvVar, HpaInfo,
    Literal, NodeCondition, NodeInfo, NodePod, PlacementRules, PodInfo, ProbeSpec, Revision,
    StorageClassInfo, Termination, WorkloadCondition, WorkloadInfo,
};

mod cron_job;
mod network;
mod rbac;
mod security;
pub use cron_job::{Schedule, cron_job_info, schedule};
pub use network::{endpoint_list, network_policy, service_info, service_ports, target_port};
pub use rbac::{BUILT_IN_ROLES, binds_service_account, bound_rules, role_ref, rules};
pub use security::security_view;

/// Every object in a (multi-document) YAML file; empty documents are skipped.
pub fn parse(file: &str, text: &str) -> Result<Vec<Value>, String> {
    crate::yaml::check(text).map_err(|e| format!("{file}: {e}"))?;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc)
            .map_err(crate::yaml::explain)
            .map_err(|e| format!("{file}: document {i}: {e}"))?;
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

/// The strings of a JSON array (none when it is not one).
pub fn strings(v: &Value) -> Vec<String> {
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

/// A probe with the API's defaults (period 10 s, timeout 1 s, failure threshold 3).
pub fn probe(p: &Value) -> Option<ProbeSpec> {
    let (kind, action) = ["httpGet", "tcpSocket", "grpc", "exec"]
        .iter()
        .find_map(|k| p.get(*k).map(|a| (*k, a)))?;
    let n = |key: &str, default: u32| p[key].as_u64().map_or(default, |v| v as u32);
    Some(ProbeSpec {
        kind: kind.to_owned(),
        port: match &action["port"] {
            Value::Number(n) => n.to_string(),
            other => str_of(other),
        },
        path: if kind == "httpGet" {
            action["path"].as_str().unwrap_or("/").to_owned()
        } else {
            String::new()
        },
        initial_delay_seconds: n("initialDelaySeconds", 0),
        period_seconds: n("periodSeconds", 10),
        timeout_seconds: n("timeoutSeconds", 1),
        failure_threshold: n("failureThreshold", 3),
    })
}

pub fn containers(obj: &Value) -> Vec<ContainerSpec> {
    container_specs(&pod_spec(obj)["containers"])
}

/// The workload's init containers (`initContainers`), in order.
pub fn init_containers(obj: &Value) -> Vec<ContainerSpec> {
    container_specs(&pod_spec(obj)["initContainers"])
}

fn container_specs(list: &Value) -> Vec<ContainerSpec> {
    list.as_array()
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
                                    literal: e["value"]
                                        .as_str()
                                        .filter(|v| !v.is_empty())
                                        .map(|v| Literal(v.to_owned())),
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
                    command: strings(&c["command"]),
                    args: strings(&c["args"]),
                    ports: c["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| {
                            Some(ContainerPort {
                                port: u16::try_from(p["containerPort"].as_u64()?).ok()?,
                                name: str_of(&p["name"]),
                            })
                        })
                        .collect(),
                    readiness_probe: probe(&c["readinessProbe"]),
                    liveness_probe: probe(&c["livenessProbe"]),
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
        replicas: if kind(obj) == "DaemonSet" {
            obj["status"]["desiredNumberScheduled"]
                .as_u64()
                .unwrap_or(1) as u32
        } else {
            obj["spec"]["replicas"].as_u64().unwrap_or(1) as u32
        },
        service_account: service_account_of(spec),
        pod_labels: match kind(obj) {
            "Pod" => string_map(&obj["metadata"]["labels"]),
            "CronJob" => {
                string_map(&obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"])
            }
            _ => string_map(&obj["spec"]["template"]["metadata"]["labels"]),
        },
        containers: containers(obj),
        init_containers: init_containers(obj),
        pod_run_as_non_root: spec["securityContext"]["runAsNonRoot"].as_bool(),
        placement: placement_rules(spec),
        claims: claim_names(spec)
            .into_iter()
            .chain(template_claims(obj))
            .collect(),
        conditions: conditions_of(&obj["status"]),
        pod_security: security_view(obj),
    }
}

/// The `conditions` of an object's `status`.
pub(crate) fn conditions_of(status: &Value) -> Vec<WorkloadCondition> {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| WorkloadCondition {
            kind: str_of(&c["type"]),
            status: str_of(&c["status"]),
            reason: str_of(&c["reason"]),
            message: str_of(&c["message"]),
        })
        .collect()
}

/// The ServiceAccount a pod spec runs as (`default` when it names none).
pub fn service_account_of(pod_spec: &Value) -> String {
    pod_spec["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_owned()
}

/// The PersistentVolumeClaims a pod spec mounts (`volumes[].persistentVolumeClaim.claimName`).
pub fn claim_names(pod_spec: &Value) -> Vec<String> {
    pod_spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .map(str::to_owned)
        .collect()
}

/// The claims a StatefulSet's `volumeClaimTemplates` make, one per template and pod:
/// `<template>-<statefulset>-<ordinal>`, for the ordinals its replicas run.
pub fn template_claims(obj: &Value) -> Vec<String> {
    if kind(obj) != "StatefulSet" {
        return Vec::new();
    }
    let sts = name(obj);
    let replicas = obj["spec"]["replicas"].as_u64().unwrap_or(1);
    obj["spec"]["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["metadata"]["name"].as_str())
        .flat_map(|t| (0..replicas).map(move |i| format!("{t}-{sts}-{i}")))
        .collect()
}

/// A PersistentVolumeClaim object as a [`ClaimInfo`].
pub fn claim_info(c: &Value) -> ClaimInfo {
    let quantity = |v: &Value| v.as_str().and_then(|s| s.parse().ok());
    ClaimInfo {
        name: name(c).to_owned(),
        phase: c["status"]["phase"]
            .as_str()
            .unwrap_or("Pending")
            .to_owned(),
        storage_class: c["spec"]["storageClassName"].as_str().map(str::to_owned),
        access_modes: strings(&c["spec"]["accessModes"]),
        requested: quantity(&c["spec"]["resources"]["requests"]["storage"]),
        capacity: quantity(&c["status"]["capacity"]["storage"]),
        volume: str_of(&c["spec"]["volumeName"]),
    }
}

/// A StorageClass object as a [`StorageClassInfo`].
pub fn storage_class_info(c: &Value) -> StorageClassInfo {
    StorageClassInfo {
        name: name(c).to_owned(),
        provisioner: str_of(&c["provisioner"]),
        default: c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
            == "true",
        allow_volume_expansion: c["allowVolumeExpansion"].as_bool().unwrap_or(false),
        binding_mode: c["volumeBindingMode"]
            .as_str()
            .unwrap_or("Immediate")
            .to_owned(),
    }
}

/// A pod spec's nodeSelector, required node affinity and tolerations, in words.
pub fn placement_rules(spec: &Value) -> PlacementRules {
    let list = |v: &Value| -> Vec<Value> { v.as_array().cloned().unwrap_or_default() };
    let expression = |e: &Value| {
        let values: Vec<String> = list(&e["values"]).iter().map(str_of).collect();
        let op = str_of(&e["operator"]);
        if values.is_empty() {
            format!("{} {op}", str_of(&e["key"]))
        } else {
            format!("{} {op} [{}]", str_of(&e["key"]), values.join(", "))
        }
    };
    PlacementRules {
        node_selector: string_map(&spec["nodeSelector"]),
        required_affinity:
            list(
                &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                    ["nodeSelectorTerms"],
            )
            .iter()
            .map(|t| {
                list(&t["matchExpressions"])
                    .iter()
                    .chain(list(&t["matchFields"]).iter())
                    .map(expression)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect(),
        tolerations: list(&spec["tolerations"])
            .iter()
            .map(|t| {
                let (key, value, effect) =
                    (str_of(&t["key"]), str_of(&t["value"]), str_of(&t["effect"]));
                let exists = t["operator"] == "Exists";
                match (key.is_empty(), exists, effect.is_empty()) {
                    (true, _, _) => ":Exists".to_owned(),
                    (false, true, true) => key,
                    (false, true, false) => format!("{key}:{effect}"),
                    (false, false, true) => format!("{key}={value}"),
                    (false, false, false) => format!("{key}={value}:{effect}"),
                }
            })
            .collect(),
    }
}

pub fn hpa(obj: &Value) -> HpaInfo {
    // A resource metric's target or current value: `cpu 70%`, `memory 512Mi`; other kinds by
    // their metric's name.
    let said = |m: &Value, value: &str| {
        let r = &m["resource"];
        let name = r["name"].as_str().unwrap_or("?");
        let v = &r[value];
        match (v["averageUtilization"].as_u64(), v["averageValue"].as_str()) {
            (Some(u), _) => format!("{name} {u}%"),
            (None, Some(q)) => format!("{name} {q}"),
            _ => match m["type"].as_str() {
                Some("Resource") | None => format!("{name} ?"),
                Some(kind) => format!(
                    "{kind} {}",
                    m[kind.to_ascii_lowercase()]["metric"]["name"]
                        .as_str()
                        .unwrap_or("?")
                ),
            },
        }
    };
    let mut metrics: Vec<String> = obj["spec"]["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| said(m, "target"))
        .collect();
    // autoscaling/v1.
    if let Some(pct) = obj["spec"]["targetCPUUtilizationPercentage"].as_u64() {
        metrics.push(format!("cpu {pct}%"));
    }
    let status = &obj["status"];
    let mut current_metrics: Vec<String> = status["currentMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| said(m, "current"))
        .collect();
    if let Some(pct) = status["currentCPUUtilizationPercentage"].as_u64() {
        current_metrics.push(format!("cpu {pct}%"));
    }
    let count = |v: &Value| v.as_u64().unwrap_or(0) as u32;
    HpaInfo {
        current_replicas: count(&status["currentReplicas"]),
        desired_replicas: count(&status["desiredReplicas"]),
        current_metrics,
        conditions: conditions_of(status),
        last_scale_time: status["lastScaleTime"]
            .as_str()
            .and_then(|t| t.parse().ok()),
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

/// A timestamp field (RFC 3339), if set.
pub fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub(crate) fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or("").to_owned()
}

/// A Pod object as squad's [`PodInfo`]. Its owner is the controlling owner reference.
pub fn pod_info(p: &Value) -> PodInfo {
    let meta = &p["metadata"];
    let owners = meta["ownerReferences"].as_array();
    let owner = owners
        .and_then(|os| {
            os.iter()
                .find(|o| o["controller"] == true)
                .or_else(|| os.first())
        })
        .map(|o| format!("{}/{}", str_of(&o["kind"]), str_of(&o["name"])));
    let containers = container_statuses(&p["status"]["containerStatuses"]);
    let init_containers = container_statuses(&p["status"]["initContainerStatuses"]);
    PodInfo {
        namespace: str_of(&meta["namespace"]),
        name: str_of(&meta["name"]),
        node: str_of(&p["spec"]["nodeName"]),
        phase: str_of(&p["status"]["phase"]),
        reason: p["status"]["reason"].as_str().map(str::to_owned),
        message: p["status"]["message"].as_str().map(str::to_owned),
        owner,
        created_at: time(&meta["creationTimestamp"]).unwrap_or_default(),
        containers,
        init_containers,
        deleted_at: time(&meta["deletionTimestamp"]),
    }
}

/// `containerStatuses` (or `initContainerStatuses`) as squad's [`ContainerStatus`]es.
fn container_statuses(list: &Value) -> Vec<ContainerStatus> {
    list.as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let state = if let Some(w) = c["state"]["waiting"].as_object() {
                        format!(
                            "waiting: {}",
                            w.get("reason").and_then(Value::as_str).unwrap_or("")
                        )
                    } else if let Some(t) = c["state"]["terminated"].as_object() {
                        format!(
                            "terminated: {}",
                            t.get("reason").and_then(Value::as_str).unwrap_or("")
                        )
                    } else {
                        "running".to_owned()
                    };
                    // A container that has terminated (a Job's pod) ended its last run now;
                    // one running again, in its previous state.
                    let t = if c["state"]["terminated"].is_object() {
                        &c["state"]["terminated"]
                    } else {
                        &c["lastState"]["terminated"]
                    };
                    let last_termination = t.is_object().then(|| Termination {
                        reason: str_of(&t["reason"]),
                        exit_code: t["exitCode"].as_i64().unwrap_or(0) as i32,
                        finished_at: time(&t["finishedAt"]).unwrap_or_default(),
                    });
                    ContainerStatus {
                        name: str_of(&c["name"]),
                        ready: c["ready"].as_bool().unwrap_or(false),
                        restart_count: c["restartCount"].as_u64().unwrap_or(0) as u32,
                        state,
                        last_termination,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A Pod object as a [`NodePod`]: the pod, its priority and its containers' memory.
pub fn node_pod(p: &Value) -> NodePod {
    let spec = &p["spec"];
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    let sum = |which: &str, resource: &str| -> Option<Quantity> {
        let qs: Vec<Option<Quantity>> = containers
            .iter()
            .map(|c| {
                c["resources"][which][resource]
                    .as_str()
                    .and_then(|q| q.parse().ok())
            })
            .collect();
        if qs.iter().all(Option::is_none) || (which == "limits" && qs.iter().any(Option::is_none)) {
            return None;
        }
        qs.into_iter().flatten().reduce(|a, b| a + b)
    };
    NodePod {
        pod: pod_info(p),
        priority: spec["priority"].as_i64().map_or(0, |x| x as i32),
        priority_class: spec["priorityClassName"].as_str().map(str::to_owned),
        memory_request: sum("requests", "memory").or_else(|| sum("limits", "memory")),
        memory_limit: sum("limits", "memory"),
        cpu_request: sum("requests", "cpu").or_else(|| sum("limits", "cpu")),
    }
}

/// An Event (core/v1 or events.k8s.io/v1) as squad's [`ClusterEvent`].
pub fn event(e: &Value) -> ClusterEvent {
    let new_api = e["regarding"].is_object();
    let (object, message) = if new_api {
        (&e["regarding"], &e["note"])
    } else {
        (&e["involvedObject"], &e["message"])
    };
    let first = ["firstTimestamp", "deprecatedFirstTimestamp", "eventTime"]
        .iter()
        .find_map(|k| time(&e[*k]));
    let last = ["lastTimestamp", "deprecatedLastTimestamp"]
        .iter()
        .find_map(|k| time(&e[*k]))
        .or_else(|| time(&e["series"]["lastObservedTime"]))
        .or(first);
    let count = ["count", "deprecatedCount"]
        .iter()
        .find_map(|k| e[*k].as_u64())
        .or_else(|| e["series"]["count"].as_u64())
        .unwrap_or(1);
    ClusterEvent {
        kind: str_of(&e["type"]),
        reason: str_of(&e["reason"]),
        message: str_of(message),
        count: count as u32,
        first_seen: first.unwrap_or_default(),
        last_seen: last.unwrap_or_default(),
        object: format!("{}/{}", str_of(&object["kind"]), str_of(&object["name"])),
    }
}

/// A Node object as squad's [`NodeInfo`].
pub fn node_info(n: &Value) -> NodeInfo {
    let q = |v: &Value| v.as_str().and_then(|s| s.parse().ok());
    NodeInfo {
        name: name(n).to_owned(),
        conditions: n["status"]["conditions"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| NodeCondition {
                        kind: str_of(&c["type"]),
                        status: str_of(&c["status"]),
                        reason: str_of(&c["reason"]),
                        message: str_of(&c["message"]),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        allocatable_memory: q(&n["status"]["allocatable"]["memory"]),
        capacity_memory: q(&n["status"]["capacity"]["memory"]),
        kubelet_version: str_of(&n["status"]["nodeInfo"]["kubeletVersion"]),
        allocatable_cpu: q(&n["status"]["allocatable"]["cpu"]),
        labels: n["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), str_of(v)))
            .collect(),
        taints: n["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let (key, value, effect) =
                    (str_of(&t["key"]), str_of(&t["value"]), str_of(&t["effect"]));
                if value.is_empty() {
                    format!("{key}:{effect}")
                } else {
                    format!("{key}={value}:{effect}")
                }
            })
            .collect(),
        unschedulable: n["spec"]["unschedulable"].as_bool().unwrap_or(false),
    }
}

/// The labels a workload's (or a revision's) pod template gives its pods, without the
/// `pod-template-hash` and `controller-revision-hash` its controller adds.
fn template_labels(obj: &Value) -> BTreeMap<String, String> {
    let mut labels = string_map(&obj["spec"]["template"]["metadata"]["labels"]);
    labels.remove("pod-template-hash");
    labels.remove("controller-revision-hash");
    labels
}

/// A ReplicaSet (one Deployment revision) as a [`Revision`], if it carries a revision number.
pub fn replica_set_revision(rs: &Value) -> Option<Revision> {
    let meta = &rs["metadata"];
    let revision = meta["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()?
        .parse()
        .ok()?;
    Some(Revision {
        revision,
        at: time(&meta["creationTimestamp"]).unwrap_or_default(),
        change_cause: str_of(&meta["annotations"]["kubernetes.io/change-cause"]),
        name: str_of(&meta["name"]),
        containers: containers(rs),
        init_containers: init_containers(rs),
        pod_labels: template_labels(rs),
        placement: placement_rules(pod_spec(rs)),
        claims: claim_names(pod_spec(rs)),
        service_account: service_account_of(pod_spec(rs)),
    })
}

/// A ControllerRevision (a StatefulSet's or DaemonSet's revision) as a [`Revision`].
pub fn controller_revision(cr: &Value) -> Option<Revision> {
    let meta = &cr["metadata"];
    Some(Revision {
        revision: cr["revision"].as_u64()? as u32,
        at: time(&meta["creationTimestamp"]).unwrap_or_default(),
        change_cause: str_of(&meta["annotations"]["kubernetes.io/change-cause"]),
        name: str_of(&meta["name"]),
        containers: containers(&cr["data"]),
        init_containers: init_containers(&cr["data"]),
        pod_labels: template_labels(&cr["data"]),
        placement: placement_rules(pod_spec(&cr["data"])),
        claims: claim_names(pod_spec(&cr["data"])),
        service_account: service_account_of(pod_spec(&cr["data"])),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_statefulsets_claim_templates_are_its_pods_claims() {
        let sts = serde_json::json!({"kind": "StatefulSet", "metadata": {"name": "ledger-db"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "pg", "image": "postgres:16"}],
                                                           "volumes": [{"name": "wal", "persistentVolumeClaim": {"claimName": "ledger-wal"}}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}});
        assert_eq!(
            workload_info(&sts, "finance").claims,
            ["ledger-wal", "data-ledger-db-0", "data-ledger-db-1"]
        );
    }

    #[test]
    fn a_pod_reads_its_init_containers_in_order() {
        let p = serde_json::json!({"metadata": {"name": "api-7d9-x2k9p", "namespace": "shop"},
            "spec": {"nodeName": "w1", "initContainers": [{"name": "wait-for-db", "image": "busybox:1.36"},
                                                           {"name": "migrate", "image": "r/api:2.1"}],
                     "containers": [{"name": "api", "image": "r/api:2.1"}]},
            "status": {"phase": "Pending",
                "initContainerStatuses": [
                    {"name": "wait-for-db", "ready": true, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": "2026-12-05T10:00:05Z"}}},
                    {"name": "migrate", "ready": false, "restartCount": 4,
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                     "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-12-05T10:03:00Z"}}}],
                "containerStatuses": [{"name": "api", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "PodInitializing"}}}]}});
        let info = pod_info(&p);
        let names: Vec<&str> = info
            .init_containers
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["wait-for-db", "migrate"]);
        assert_eq!(info.blocking_init_container().unwrap().name, "migrate");
        let migrate = info.container("migrate").unwrap();
        assert_eq!(
            (
                migrate.restart_count,
                migrate.last_termination.as_ref().unwrap().exit_code
            ),
            (4, 1)
        );
        let w = workload_info(
            &serde_json::json!({"kind": "Pod", "metadata": {"name": "x"}, "spec": p["spec"]}),
            "shop",
        );
        assert_eq!(w.init_containers.len(), 2);
        assert_eq!(w.container("migrate").unwrap().image, "r/api:2.1");
    }

    #[test]
    fn reads_a_deployment_with_resources_env_and_security() {
        let text = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: w\nspec:\n  replicas: 3\n  template:\n    metadata:\n      labels:\n        app: w\n    spec:\n      serviceAccountName: sa\n      containers:\n        - name: c\n          image: i:1\n          env:\n            - name: A\n              value: x\n            - name: B\n              valueFrom:\n                secretKeyRef:\n                  name: s\n                  key: k\n          resources:\n            limits:\n              memory: 512Mi\n              cpu: \"1\"\n";
        let objs = parse("f.yaml", text).unwrap();
        let w = workload_info(&objs[0], "ns");
        assert_eq!(w.replicas, 3);
        assert_eq!(w.service_account, "sa");
        let c = w.container("c").unwrap();
        assert_eq!(c.limits["memory"], "512Mi".parse().unwrap());
        assert_eq!(c.env[1].source, "secret:s/k");
    }

    #[test]
    fn a_broken_document_names_the_file() {
        let err = parse("bad.yaml", "a: [1,\n").unwrap_err();
        assert!(err.contains("bad.yaml"), "{err}");
    }
}
