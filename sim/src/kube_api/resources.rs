//! What the simulated API server serves: its resource kinds, as a table, the discovery documents
//! made from that table (`/version`, `/api`, `/apis`, each group version's resource list) and
//! how an object looks through one group version (core Events through `events.k8s.io/v1`).

use serde_json::{Value, json};

/// One kind of resource the server serves.
#[derive(Debug, Clone, Copy)]
pub(super) struct Resource {
    pub(super) group: &'static str,
    pub(super) version: &'static str,
    pub(super) plural: &'static str,
    pub(super) singular: &'static str,
    pub(super) kind: &'static str,
    pub(super) namespaced: bool,
    pub(super) short: &'static [&'static str],
    /// The kind of the objects in the world it is made from (core Events back events.k8s.io too).
    pub(super) source_kind: &'static str,
}

const fn res(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
) -> Resource {
    Resource {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short,
        source_kind: kind,
    }
}

pub(super) const RESOURCES: &[Resource] = &[
    res("", "v1", "pods", "pod", "Pod", true, &["po"]),
    res("", "v1", "events", "event", "Event", true, &["ev"]),
    res("", "v1", "nodes", "node", "Node", false, &["no"]),
    res(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
    ),
    res("", "v1", "secrets", "secret", "Secret", true, &[]),
    res(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
    ),
    res("", "v1", "services", "service", "Service", true, &["svc"]),
    res(
        "",
        "v1",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
    ),
    res(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
    ),
    res(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "storageclass",
        "StorageClass",
        false,
        &["sc"],
    ),
    res(
        "",
        "v1",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
        &["pv"],
    ),
    res(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
    ),
    res(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
    ),
    res(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
    ),
    res(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
    ),
    res(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
    ),
    res("batch", "v1", "jobs", "job", "Job", true, &[]),
    res(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        &["cj"],
    ),
    res(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
    ),
    res(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        &["netpol"],
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        &[],
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        &[],
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        &[],
    ),
    Resource {
        source_kind: "Event",
        ..res(
            "events.k8s.io",
            "v1",
            "events",
            "event",
            "Event",
            true,
            &["ev"],
        )
    },
    res(
        "aquasecurity.github.io",
        "v1alpha1",
        "vulnerabilityreports",
        "vulnerabilityreport",
        "VulnerabilityReport",
        true,
        &["vuln", "vulns"],
    ),
];

impl Resource {
    pub(super) fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// `/version`: the Kubernetes release the server claims to be.
pub(super) fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.4-squad-sim",
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"
    })
}

/// `/api`: the core group's versions.
pub(super) fn api_versions() -> Value {
    json!({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]
    })
}

/// `/apis`: every named group and its versions.
pub(super) fn api_groups() -> Value {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, vs)) => {
                if !vs.contains(&r.version) {
                    vs.push(r.version)
                }
            }
            None => groups.push((r.group, vec![r.version])),
        }
    }
    let groups: Vec<Value> = groups
        .iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions.clone(), "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// One group version's `APIResourceList`, with short names, the `all` category and `pods/log`.
pub(super) fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
            "kind": r.kind, "verbs": ["get", "list"],
        });
        if !r.short.is_empty() {
            entry["shortNames"] = json!(r.short);
        }
        if matches!(
            r.kind,
            "Pod"
                | "Deployment"
                | "ReplicaSet"
                | "StatefulSet"
                | "DaemonSet"
                | "Service"
                | "Job"
                | "CronJob"
                | "HorizontalPodAutoscaler"
        ) {
            entry["categories"] = json!(["all"]);
        }
        resources.push(entry);
        if r.kind == "Pod" {
            resources.push(
                json!({"name": "pods/log", "singularName": "", "namespaced": true,
                                  "kind": "Pod", "verbs": ["get"]}),
            );
        }
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// An object as this resource's group version presents it.
pub(super) fn served_as(r: &Resource, o: &Value) -> Value {
    let mut o = o.clone();
    if r.group == "events.k8s.io" {
        // The server's conversion from a core Event: field for field, inventing nothing (a
        // kubelet's Events have no `action`, so none is served).
        let series = o["count"].as_u64().unwrap_or(1);
        let action = o.get("action").cloned();
        o = json!({
            "metadata": o["metadata"].clone(),
            "eventTime": o.get("eventTime").cloned().unwrap_or(Value::Null),
            "reportingController": o["reportingComponent"].clone(),
            "reportingInstance": o["reportingInstance"].clone(),
            "reason": o["reason"].clone(),
            "regarding": o["involvedObject"].clone(),
            "note": o["message"].clone(),
            "type": o["type"].clone(),
            "deprecatedSource": o["source"].clone(),
            "deprecatedFirstTimestamp": o["firstTimestamp"].clone(),
            "deprecatedLastTimestamp": o["lastTimestamp"].clone(),
            "deprecatedCount": series,
        });
        if let Some(action) = action {
            o["action"] = action;
        }
        // `omitempty` in events.k8s.io/v1 (not in core/v1): an empty reporter is left out.
        if let Some(m) = o.as_object_mut() {
            for k in ["reportingController", "reportingInstance"] {
                if m.get(k).is_some_and(|v| v == "") {
                    m.remove(k);
                }
            }
        }
    }
    o["apiVersion"] = json!(r.group_version());
    o["kind"] = json!(r.kind);
    o
}
