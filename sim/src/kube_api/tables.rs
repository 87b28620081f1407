//! kubectl's columns: the `meta.k8s.io/v1` Table the server answers with when a client asks for
//! one (`Accept: ...;as=Table`, as `kubectl get` does), so `kubectl get` prints what it prints
//! against a real cluster.
//!
//! The columns are data: per kind, a list of [`Column`]s, each the definition the server sends
//! (name, type, priority, description, as kube-apiserver's printers declare them) and how its
//! cell is read from an object. A kind without a list gets Name and Age, as a server does for
//! kinds it has no printer for.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use squad_gitops::objects;

use super::selectors::{field, value_str};

mod jobs;
mod services;
mod storage;

/// One column of a kind's table.
struct Column {
    name: &'static str,
    /// The column's type: `string` or `integer`.
    ty: &'static str,
    /// 0 is shown by default, 1 only with `-o wide`.
    priority: u8,
    description: &'static str,
    /// The cell of an object's row, given the time the table is made at.
    cell: fn(&Value, DateTime<Utc>) -> Value,
}

/// Where an object's age is read from.
const CREATED: &str = "metadata.creationTimestamp";

const NAME: Column = Column {
    name: "Name",
    ty: "string",
    priority: 0,
    description: "Name must be unique within a namespace.",
    cell: |o, _| json!(objects::name(o)),
};

/// A workload's template's container names and images (`-o wide`).
const CONTAINERS: Column = Column {
    name: "Containers",
    ty: "string",
    priority: 1,
    description: "Names of each container in the template.",
    cell: |o, _| json!(template_containers(o, "name")),
};

const IMAGES: Column = Column {
    name: "Images",
    ty: "string",
    priority: 1,
    description: "Images referenced by each container in the template.",
    cell: |o, _| json!(template_containers(o, "image")),
};

const AGE: Column = Column {
    name: "Age",
    ty: "string",
    priority: 0,
    description: "CreationTimestamp is a timestamp representing the server time when this object was created.",
    cell: |o, now| json!(age(o, CREATED, now)),
};

/// The columns of every kind that has its own, by kind.
const TABLES: &[(&str, &[Column])] = &[
    ("Pod", POD),
    ("Deployment", DEPLOYMENT),
    ("ReplicaSet", REPLICA_SET),
    ("HorizontalPodAutoscaler", HORIZONTAL_POD_AUTOSCALER),
    ("NetworkPolicy", NETWORK_POLICY),
    ("Event", EVENT),
    ("Node", NODE),
    ("Namespace", NAMESPACE),
    ("Secret", SECRET),
    ("PersistentVolumeClaim", storage::PERSISTENT_VOLUME_CLAIM),
    ("StorageClass", storage::STORAGE_CLASS),
    ("Service", services::SERVICE),
    ("Endpoints", services::ENDPOINTS),
    ("Job", jobs::JOB),
    ("CronJob", jobs::CRON_JOB),
];

/// The columns of a kind without its own.
const DEFAULT: &[Column] = &[NAME, AGE];

const POD: &[Column] = &[
    NAME,
    Column {
        name: "Ready",
        ty: "string",
        priority: 0,
        description: "The aggregate readiness state of this pod for accepting traffic.",
        cell: |p, _| json!(pod_ready(p)),
    },
    Column {
        name: "Status",
        ty: "string",
        priority: 0,
        description: "The aggregate status of the containers in this pod.",
        cell: |p, _| json!(pod_status(p)),
    },
    Column {
        name: "Restarts",
        ty: "string",
        priority: 0,
        description: "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        cell: |p, now| json!(pod_restarts(p, now)),
    },
    AGE,
    Column {
        name: "IP",
        ty: "string",
        priority: 1,
        description: "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
        cell: |p, _| json!(value_str(&p["status"]["podIP"])),
    },
    Column {
        name: "Node",
        ty: "string",
        priority: 1,
        description: "Name of the Node this Pod is scheduled on.",
        cell: |p, _| json!(value_str(&p["spec"]["nodeName"])),
    },
    Column {
        name: "Nominated Node",
        ty: "string",
        priority: 1,
        description: "nominatedNodeName is set only when this pod preempts other pods on the node.",
        cell: |_, _| json!("<none>"),
    },
    Column {
        name: "Readiness Gates",
        ty: "string",
        priority: 1,
        description: "If specified, all readiness gates will be evaluated for pod readiness.",
        cell: |_, _| json!("<none>"),
    },
];

const DEPLOYMENT: &[Column] = &[
    NAME,
    Column {
        name: "Ready",
        ty: "string",
        priority: 0,
        description: "Number of the pod with ready state",
        cell: |d, _| {
            json!(format!(
                "{}/{}",
                d["status"]["readyReplicas"].as_u64().unwrap_or(0),
                d["spec"]["replicas"].as_u64().unwrap_or(1)
            ))
        },
    },
    Column {
        name: "Up-to-date",
        ty: "string",
        priority: 0,
        description: "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
        cell: |d, _| json!(d["status"]["updatedReplicas"].as_u64().unwrap_or(0)),
    },
    Column {
        name: "Available",
        ty: "string",
        priority: 0,
        description: "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
        cell: |d, _| json!(d["status"]["availableReplicas"].as_u64().unwrap_or(0)),
    },
    AGE,
    CONTAINERS,
    IMAGES,
    Column {
        name: "Selector",
        ty: "string",
        priority: 1,
        description: "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
        cell: |d, _| json!(selector_text(&d["spec"]["selector"]["matchLabels"])),
    },
];

const REPLICA_SET: &[Column] = &[
    NAME,
    Column {
        name: "Desired",
        ty: "integer",
        priority: 0,
        description: "Replicas is the number of desired replicas.",
        cell: |o, _| json!(o["spec"]["replicas"].as_u64().unwrap_or(0)),
    },
    Column {
        name: "Current",
        ty: "integer",
        priority: 0,
        description: "Replicas is the most recently observed number of replicas.",
        cell: |o, _| json!(o["status"]["replicas"].as_u64().unwrap_or(0)),
    },
    Column {
        name: "Ready",
        ty: "integer",
        priority: 0,
        description: "The number of ready replicas for this replica set.",
        cell: |o, _| json!(o["status"]["readyReplicas"].as_u64().unwrap_or(0)),
    },
    AGE,
];

const HORIZONTAL_POD_AUTOSCALER: &[Column] = &[
    NAME,
    Column {
        name: "Reference",
        ty: "string",
        priority: 0,
        description: "The identifying information of the target resource.",
        cell: |o, _| {
            let target = &o["spec"]["scaleTargetRef"];
            json!(format!(
                "{}/{}",
                value_str(&target["kind"]),
                value_str(&target["name"])
            ))
        },
    },
    Column {
        name: "Targets",
        ty: "string",
        priority: 0,
        description: "The current and desired values of the metrics.",
        cell: |o, _| json!(hpa_targets(o)),
    },
    Column {
        name: "MinPods",
        ty: "string",
        priority: 0,
        description: "The lower limit for the number of replicas.",
        cell: |o, _| json!(o["spec"]["minReplicas"].as_u64().unwrap_or(1).to_string()),
    },
    Column {
        name: "MaxPods",
        ty: "integer",
        priority: 0,
        description: "The upper limit for the number of replicas.",
        cell: |o, _| json!(o["spec"]["maxReplicas"].as_u64().unwrap_or(0)),
    },
    Column {
        name: "Replicas",
        ty: "integer",
        priority: 0,
        description: "Current number of replicas of pods managed by this autoscaler.",
        cell: |o, _| json!(o["status"]["currentReplicas"].as_u64().unwrap_or(0)),
    },
    AGE,
];

const NETWORK_POLICY: &[Column] = &[
    NAME,
    Column {
        name: "Pod-Selector",
        ty: "string",
        priority: 0,
        description: "Selects the pods to which this NetworkPolicy object applies.",
        cell: |o, _| json!(selector_text(&o["spec"]["podSelector"]["matchLabels"])),
    },
    AGE,
];

const EVENT: &[Column] = &[
    Column {
        name: "Last Seen",
        ty: "string",
        priority: 0,
        description: "Time when last occurred",
        cell: |e, now| json!(age(e, EventFields::of(e).last, now)),
    },
    Column {
        name: "Type",
        ty: "string",
        priority: 0,
        description: "Type of this event (Normal, Warning), new types could be added in the future.",
        cell: |e, _| json!(value_str(&e["type"])),
    },
    Column {
        name: "Reason",
        ty: "string",
        priority: 0,
        description: "Why the action was taken.",
        cell: |e, _| json!(value_str(&e["reason"])),
    },
    Column {
        name: "Object",
        ty: "string",
        priority: 0,
        description: "The object that this event is about.",
        cell: |e, _| {
            let regarding = EventFields::of(e).regarding;
            json!(format!(
                "{}/{}",
                value_str(&regarding["kind"]).to_ascii_lowercase(),
                value_str(&regarding["name"])
            ))
        },
    },
    Column {
        name: "Message",
        ty: "string",
        priority: 0,
        description: "A human-readable description of the status of this operation.",
        cell: |e, _| json!(value_str(EventFields::of(e).note)),
    },
    Column {
        name: "Subobject",
        ty: "string",
        priority: 1,
        description: "The subobject of the object this event is about.",
        cell: |e, _| json!(value_str(&EventFields::of(e).regarding["fieldPath"])),
    },
    Column {
        name: "Source",
        ty: "string",
        priority: 1,
        description: "The component reporting this event.",
        cell: |e, _| {
            json!(format!(
                "{}, {}",
                value_str(&e["source"]["component"]),
                value_str(&e["source"]["host"])
            ))
        },
    },
    Column {
        name: "First Seen",
        ty: "string",
        priority: 1,
        description: "Time when first occurred",
        cell: |e, now| json!(age(e, EventFields::of(e).first, now)),
    },
    Column {
        name: "Count",
        ty: "string",
        priority: 1,
        description: "The number of times this event has occurred.",
        cell: |e, _| json!(value_str(EventFields::of(e).count)),
    },
    Column {
        priority: 1,
        ..NAME
    },
];

const NODE: &[Column] = &[
    NAME,
    Column {
        name: "Status",
        ty: "string",
        priority: 0,
        description: "The status of the node",
        cell: |n, _| json!(node_status(n)),
    },
    Column {
        name: "Roles",
        ty: "string",
        priority: 0,
        description: "The roles of the node",
        cell: |n, _| json!(node_roles(n)),
    },
    AGE,
    Column {
        name: "Version",
        ty: "string",
        priority: 0,
        description: "Kubelet Version reported by the node.",
        cell: |n, _| json!(value_str(&n["status"]["nodeInfo"]["kubeletVersion"])),
    },
];

const NAMESPACE: &[Column] = &[
    NAME,
    Column {
        name: "Status",
        ty: "string",
        priority: 0,
        description: "The status of the namespace",
        cell: |o, _| json!(value_str(&o["status"]["phase"])),
    },
    AGE,
];

const SECRET: &[Column] = &[
    NAME,
    Column {
        name: "Type",
        ty: "string",
        priority: 0,
        description: "The type of the secret",
        cell: |o, _| json!(value_str(&o["type"])),
    },
    Column {
        name: "Data",
        ty: "string",
        priority: 0,
        description: "The number of entries in the data",
        cell: |o, _| json!(o["data"].as_object().map_or(0, |m| m.len())),
    },
    AGE,
];

/// The Table of `items` (objects of `kind`) at `now`; each row carries its object as
/// `includeObject` asks: `Object`, `None`, or by default its metadata only.
pub(super) fn to_table(
    kind: &str,
    items: &[Value],
    now: DateTime<Utc>,
    include_object: Option<&str>,
) -> Value {
    let columns = TABLES
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(DEFAULT, |(_, columns)| columns);
    let definitions: Vec<Value> = columns.iter().map(Column::definition).collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let object = match include_object.unwrap_or("Metadata") {
                "Object" => o.clone(),
                "None" => Value::Null,
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                            "metadata": o["metadata"].clone()}),
            };
            let cells: Vec<Value> = columns.iter().map(|c| (c.cell)(o, now)).collect();
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": "1"},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

impl Column {
    /// The column as a `TableColumnDefinition`.
    fn definition(&self) -> Value {
        let mut c = json!({"name": self.name, "type": self.ty, "format": "",
                           "description": self.description, "priority": self.priority});
        if self.name == "Name" {
            c["format"] = json!("name");
        }
        c
    }
}

/// `duration.HumanDuration` from k8s.io/apimachinery: how kubectl prints ages.
pub fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of the time at `path` in `o`, as kubectl prints it.
fn age(o: &Value, path: &str, now: DateTime<Utc>) -> String {
    field(o, path)
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or("<unknown>".into(), |t| {
            human_duration(now - t.with_timezone(&Utc))
        })
}

/// `k=v,k=v`, or `<none>` for an empty or absent selector.
fn selector_text(sel: &Value) -> String {
    sel.as_object()
        .filter(|m| !m.is_empty())
        .map_or("<none>".into(), |m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", value_str(v)))
                .collect::<Vec<_>>()
                .join(",")
        })
}

/// A Pod's READY column: ready containers out of all.
fn pod_ready(p: &Value) -> String {
    let ready = p["status"]["containerStatuses"]
        .as_array()
        .map_or(0, |cs| cs.iter().filter(|c| c["ready"] == true).count());
    let total = p["spec"]["containers"].as_array().map_or(0, Vec::len);
    format!("{ready}/{total}")
}

/// A Pod's STATUS column, as kubectl's printer derives it.
fn pod_status(p: &Value) -> String {
    let mut reason = value_str(&p["status"]["phase"]);
    if let Some(r) = p["status"]["reason"].as_str() {
        reason = r.to_owned();
    }
    // The first init container that has not completed speaks for the pod.
    let inits = p["status"]["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let declared = p["spec"]["initContainers"].as_array().map_or(0, Vec::len);
    let mut initializing = false;
    for (i, c) in inits.iter().enumerate() {
        let terminated = &c["state"]["terminated"];
        let waiting = c["state"]["waiting"]["reason"].as_str().unwrap_or("");
        if terminated.is_object() && terminated["exitCode"].as_i64() == Some(0) {
            continue;
        }
        initializing = true;
        reason = if terminated.is_object() {
            match terminated["reason"].as_str().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None => format!(
                    "Init:ExitCode:{}",
                    terminated["exitCode"].as_i64().unwrap_or(0)
                ),
            }
        } else if !waiting.is_empty() && waiting != "PodInitializing" {
            format!("Init:{waiting}")
        } else {
            format!("Init:{i}/{declared}")
        };
        break;
    }
    if let Some(cs) = p["status"]["containerStatuses"]
        .as_array()
        .filter(|_| !initializing)
    {
        for c in cs.iter().rev() {
            if let Some(r) = c["state"]["waiting"]["reason"].as_str() {
                reason = r.to_owned();
            } else if let Some(r) = c["state"]["terminated"]["reason"].as_str() {
                reason = r.to_owned();
            }
        }
    }
    // Deleted and not gone yet: `Unknown` when the node controller marked it lost (an old
    // cluster's `NodeLost`), `Terminating` otherwise.
    if p["metadata"]["deletionTimestamp"].is_string() {
        return if p["status"]["reason"] == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

/// A Pod's RESTARTS column: the count, and how long ago the last one was.
fn pod_restarts(p: &Value, now: DateTime<Utc>) -> String {
    let mut restarts = 0;
    let mut last: Option<DateTime<Utc>> = None;
    for c in p["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        restarts += c["restartCount"].as_u64().unwrap_or(0);
        if let Some(t) = c["lastState"]["terminated"]["finishedAt"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        {
            let t = t.with_timezone(&Utc);
            last = Some(last.map_or(t, |l| l.max(t)));
        }
    }
    match last {
        Some(t) if restarts > 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    }
}

/// One field (`name`, `image`) of each container in a workload's pod template, comma-separated.
fn template_containers(workload: &Value, key: &str) -> String {
    objects::pod_spec(workload)["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| value_str(&c[key]))
        .collect::<Vec<_>>()
        .join(",")
}

/// An HPA's TARGETS column: each resource metric's current value (from the controller's
/// status, `<unknown>` before it read one) over its target, as kubectl prints them.
fn hpa_targets(o: &Value) -> String {
    let current = |name: &Value| {
        o["status"]["currentMetrics"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Resource" && c["resource"]["name"] == *name)
            .map(|c| c["resource"]["current"].clone())
    };
    let targets: Vec<String> = o["spec"]["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let r = &m["resource"];
            let now = current(&r["name"]);
            match r["target"]["averageUtilization"].as_u64() {
                Some(u) => format!(
                    "{}: {}/{u}%",
                    value_str(&r["name"]),
                    now.and_then(|c| c["averageUtilization"].as_u64())
                        .map_or_else(|| "<unknown>".to_owned(), |c| format!("{c}%"))
                ),
                None => format!(
                    "{}: {}/{}",
                    value_str(&r["name"]),
                    now.and_then(|c| c["averageValue"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| "<unknown>".to_owned()),
                    value_str(&r["target"]["averageValue"])
                ),
            }
        })
        .collect();
    if targets.is_empty() {
        "<none>".into()
    } else {
        targets.join(", ")
    }
}

/// What an Event's row reads, from a core `v1` Event or an `events.k8s.io/v1` one.
struct EventFields<'a> {
    regarding: &'a Value,
    note: &'a Value,
    /// The paths of the last and first times it was seen.
    last: &'static str,
    first: &'static str,
    count: &'a Value,
}

impl<'a> EventFields<'a> {
    fn of(e: &'a Value) -> Self {
        if e["regarding"].is_object() {
            EventFields {
                regarding: &e["regarding"],
                note: &e["note"],
                last: "deprecatedLastTimestamp",
                first: "deprecatedFirstTimestamp",
                count: &e["deprecatedCount"],
            }
        } else {
            EventFields {
                regarding: &e["involvedObject"],
                note: &e["message"],
                last: "lastTimestamp",
                first: "firstTimestamp",
                count: &e["count"],
            }
        }
    }
}

/// A Node's STATUS column: from its Ready condition.
fn node_status(n: &Value) -> &'static str {
    n["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .map_or("Unknown", |c| {
            if c["status"] == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        })
}

/// A Node's ROLES column: from its `node-role.kubernetes.io/<role>` labels.
fn node_roles(n: &Value) -> String {
    let roles: Vec<String> = n["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_owned)
        })
        .collect();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}
