//! What an API server fills in: a real API server stores an object with its defaults filled in
//! (and only those: a field the manifest leaves out stays out, never `null`), the fields its
//! admission plugins add to Pods, quantities in canonical form, its own metadata (uid, creation
//! time, resource version, generation), and serves status counters that are zero as absent.
//! These do the same to the world's objects, so clients read what a cluster would show them.
//! They only ever add a field that is absent (or null) inside an object that exists: a missing
//! `livenessProbe` stays missing rather than becoming `null`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use squad_gitops::objects;
use squad_protocols::Quantity;
use squad_protocols::quantity::Format;

use super::{ts, uid};

/// Sets `key` in `o` (when `o` is an object) unless it holds a value already.
fn default_field(o: &mut Value, key: &str, value: impl FnOnce() -> Value) {
    if let Some(m) = o.as_object_mut()
        && m.get(key).is_none_or(Value::is_null)
    {
        m.insert(key.to_owned(), value());
    }
}

/// The objects of the array at `key` in `o`, if there is one.
fn items_mut<'a>(o: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    o.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// A resource quantity in the canonical form the API server serves it in
/// ([`Quantity::canonical`]: `16384Mi` → `16Gi`, `0.5` → `500m`, `2000` → `2k`). `None` for
/// what does not parse, which is then served as written; quantities in exponent notation (`1e3`)
/// are served as written too, as they always have been here (a real server would serve `1.5e3`
/// as `1500`).
fn canonical_quantity(q: &str) -> Option<String> {
    let q: Quantity = q.parse().ok()?;
    (q.format() != Format::DecimalExponent).then(|| q.canonical())
}

/// Rewrites every quantity in a map of them (`limits`, `capacity`, ...) canonically.
fn canonical_quantities(map: Option<&mut Value>) {
    for v in map
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|m| m.values_mut())
    {
        if let Some(q) = v.as_str().and_then(canonical_quantity) {
            *v = json!(q);
        }
    }
}

/// `imagePullPolicy`'s default: `Always` for an image at `:latest` or at no tag, else
/// `IfNotPresent`.
fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// The defaults of one container (an init container's too).
fn default_container(c: &mut Value) {
    for p in items_mut(c, "ports") {
        default_field(p, "protocol", || json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) else {
            continue;
        };
        for (k, v) in [
            ("timeoutSeconds", 1),
            ("periodSeconds", 10),
            ("successThreshold", 1),
            ("failureThreshold", 3),
        ] {
            default_field(p, k, || json!(v));
        }
        if let Some(get) = p.get_mut("httpGet") {
            default_field(get, "scheme", || json!("HTTP"));
        }
    }
    for e in items_mut(c, "env") {
        if let Some(field) = e.get_mut("valueFrom").and_then(|v| v.get_mut("fieldRef")) {
            default_field(field, "apiVersion", || json!("v1"));
        }
    }
    let image = c["image"].as_str().unwrap_or("").to_owned();
    default_field(c, "imagePullPolicy", || json!(default_pull_policy(&image)));
    default_field(c, "terminationMessagePath", || {
        json!("/dev/termination-log")
    });
    default_field(c, "terminationMessagePolicy", || json!("File"));
    // `resources` is a struct in the API types: always served, `{}` when nothing is set.
    default_field(c, "resources", || json!({}));
    if let Some(r) = c.get_mut("resources") {
        canonical_quantities(r.get_mut("limits"));
        canonical_quantities(r.get_mut("requests"));
    }
}

/// The defaults of a pod spec, a template's as well as a Pod's.
fn default_pod_spec(spec: &mut Value) {
    for key in ["containers", "initContainers"] {
        items_mut(spec, key).for_each(default_container);
    }
    for (k, v) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("securityContext", json!({})),
        ("schedulerName", json!("default-scheduler")),
    ] {
        default_field(spec, k, || v);
    }
    // The deprecated alias the API still serves beside the name.
    if let Some(sa) = spec.get("serviceAccountName").filter(|v| v.is_string()) {
        let sa = sa.clone();
        default_field(spec, "serviceAccount", || sa);
    }
}

/// A pod template: its spec's defaults, and the zero creation time a server serializes for a
/// template's metadata.
pub(super) fn default_pod_template(template: &mut Value) {
    if let Some(meta) = template.get_mut("metadata")
        && let Some(m) = meta.as_object_mut()
    {
        m.entry("creationTimestamp").or_insert(Value::Null);
    }
    if let Some(spec) = template.get_mut("spec") {
        default_pod_spec(spec);
    }
}

/// What a Pod gets beyond its template's defaults: requests default to limits,
/// `enableServiceLinks`, and what the admission plugins add (Priority: `priority` and
/// `preemptionPolicy`; DefaultTolerationSeconds: five minutes' tolerance of a not-ready or
/// unreachable node).
pub(super) fn default_pod(spec: &mut Value) {
    for key in ["containers", "initContainers"] {
        for c in items_mut(spec, key) {
            let Some(limits) = c.pointer("/resources/limits").and_then(Value::as_object) else {
                continue;
            };
            let limits = limits.clone();
            if let Some(r) = c.get_mut("resources") {
                default_field(r, "requests", || json!({}));
                if let Some(requests) = r.get_mut("requests").and_then(Value::as_object_mut) {
                    for (k, v) in limits {
                        requests.entry(k).or_insert(v);
                    }
                }
            }
        }
    }
    default_pod_spec(spec);
    default_field(spec, "enableServiceLinks", || json!(true));
    if spec.get("priorityClassName").is_none() {
        default_field(spec, "priority", || json!(0));
    }
    default_field(spec, "preemptionPolicy", || json!("PreemptLowerPriority"));
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = spec["tolerations"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| {
                (t["key"] == key
                    || (t["key"].as_str().unwrap_or("").is_empty() && t["operator"] == "Exists"))
                    && matches!(t["effect"].as_str(), None | Some("") | Some("NoExecute"))
            });
        if !tolerated {
            default_field(spec, "tolerations", || json!([]));
            if let Some(ts) = spec.get_mut("tolerations").and_then(Value::as_array_mut) {
                ts.push(
                    json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                               "tolerationSeconds": 300}),
                );
            }
        }
    }
}

/// A Deployment's spec defaults (apps/v1).
fn default_deployment_spec(spec: &mut Value) {
    default_field(spec, "replicas", || json!(1));
    default_field(spec, "strategy", || json!({"type": "RollingUpdate"}));
    if let Some(strategy) = spec.get_mut("strategy")
        && strategy["type"] == "RollingUpdate"
    {
        default_field(strategy, "rollingUpdate", || json!({}));
        if let Some(rolling) = strategy.get_mut("rollingUpdate") {
            default_field(rolling, "maxSurge", || json!("25%"));
            default_field(rolling, "maxUnavailable", || json!("25%"));
        }
    }
    default_field(spec, "revisionHistoryLimit", || json!(10));
    default_field(spec, "progressDeadlineSeconds", || json!(600));
    if let Some(template) = spec.get_mut("template") {
        default_pod_template(template);
    }
}

/// The defaults of an object from the GitOps repo, by kind (the workload's are applied where
/// its objects are built).
pub(super) fn default_object(o: &mut Value) {
    match objects::kind(o) {
        "NetworkPolicy" => {
            let Some(spec) = o.get_mut("spec") else {
                return;
            };
            for rule in ["ingress", "egress"] {
                for r in items_mut(spec, rule) {
                    for p in items_mut(r, "ports") {
                        default_field(p, "protocol", || json!("TCP"));
                    }
                }
            }
            let egress = spec["egress"].as_array().is_some_and(|e| !e.is_empty());
            default_field(spec, "policyTypes", || {
                if egress {
                    json!(["Ingress", "Egress"])
                } else {
                    json!(["Ingress"])
                }
            });
        }
        "Service" => {
            let Some(spec) = o.get_mut("spec") else {
                return;
            };
            for p in items_mut(spec, "ports") {
                default_field(p, "protocol", || json!("TCP"));
                let port = p["port"].clone();
                default_field(p, "targetPort", || port);
            }
            default_field(spec, "type", || json!("ClusterIP"));
            default_field(spec, "sessionAffinity", || json!("None"));
        }
        "Deployment" => {
            if let Some(spec) = o.get_mut("spec") {
                default_deployment_spec(spec);
            }
        }
        "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            if let Some(template) = o.pointer_mut("/spec/template") {
                default_pod_template(template);
            }
        }
        _ => {}
    }
}

/// Drops the status counters that are zero: the API types mark them `omitempty`, so a server
/// never serves a zero there.
pub(super) fn omit_zeros(status: &mut Value, keys: &[&str]) {
    if let Some(m) = status.as_object_mut() {
        m.retain(|k, v| !(keys.contains(&k.as_str()) && v.as_u64() == Some(0)));
    }
}

/// Kinds whose `metadata.generation` the API server starts at 1 on create (it counts writes to
/// their spec); custom resources too. Pods, Services, RBAC objects, HorizontalPodAutoscalers
/// (until the HPAGeneration feature) and the rest have none.
const GENERATION_KINDS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "NetworkPolicy",
    "Ingress",
    "PodDisruptionBudget",
    "VulnerabilityReport",
];

/// Fills in what an API server adds to a stored object: namespace, uid, creation time.
pub(super) fn stored(mut o: Value, namespace: Option<&str>, created: DateTime<Utc>) -> Value {
    let kind = objects::kind(&o).to_owned();
    let name = objects::name(&o).to_owned();
    let meta = &mut o["metadata"];
    if let Some(ns) = namespace
        && meta["namespace"].as_str().is_none()
    {
        meta["namespace"] = json!(ns);
    }
    let ns = meta["namespace"].as_str().unwrap_or("").to_owned();
    if meta["uid"].is_null() {
        meta["uid"] = json!(uid(&format!("{kind}/{ns}/{name}")));
    }
    if meta["creationTimestamp"].is_null() {
        meta["creationTimestamp"] = json!(ts(created));
    }
    if meta["resourceVersion"].is_null() {
        meta["resourceVersion"] = json!("1");
    }
    if GENERATION_KINDS.contains(&kind.as_str()) && meta["generation"].is_null() {
        meta["generation"] = json!(1);
    }
    o
}

/// The pod's QoS class, as the API server computes it on create from a defaulted spec:
/// `Guaranteed` when every container limits CPU and memory and requests exactly that,
/// `BestEffort` when none requests or limits anything, `Burstable` otherwise.
pub(super) fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .collect();
    let set = |c: &Value, which: &str| {
        c["resources"][which]
            .as_object()
            .is_some_and(|m| m.keys().any(|k| k == "cpu" || k == "memory"))
    };
    if containers
        .iter()
        .all(|c| !set(c, "requests") && !set(c, "limits"))
    {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = &c["resources"]["limits"][*r];
            let request = &c["resources"]["requests"][*r];
            !limit.is_null()
                && (request.is_null()
                    || request
                        .as_str()
                        .and_then(|q| q.parse::<squad_protocols::Quantity>().ok())
                        == limit.as_str().and_then(|q| q.parse().ok()))
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn quantities_take_the_api_servers_canonical_form() {
        for (written, served) in [
            ("16384Mi", "16Gi"),
            ("15564Mi", "15564Mi"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1024", "1024"),
            ("512Ki", "512Ki"),
            ("0.5Ki", "512"),
            ("3800m", "3800m"),
            ("1000m", "1"),
            ("0.5", "500m"),
            ("2000", "2k"),
            ("4", "4"),
            ("110", "110"),
            ("512M", "512M"),
            ("0", "0"),
            ("0.0001", "100u"),
        ] {
            assert_eq!(
                canonical_quantity(written).as_deref(),
                Some(served),
                "{written}"
            );
        }
        assert_eq!(canonical_quantity("1e3"), None);
        assert_eq!(canonical_quantity("lots"), None);
    }

    #[test]
    fn pod_defaults_fill_what_is_absent_and_create_no_nulls() {
        let mut spec = json!({
            "serviceAccountName": "web",
            "containers": [{"name": "web", "image": "web:1.0",
                            "resources": {"limits": {"memory": "1024Mi", "cpu": "1"}},
                            "readinessProbe": {"httpGet": {"path": "/", "port": 80}}}],
        });
        default_pod(&mut spec);
        let c = &spec["containers"][0];
        for absent in ["ports", "livenessProbe", "startupProbe", "env"] {
            assert!(c.get(absent).is_none(), "{absent}: {c}");
        }
        assert!(spec.get("initContainers").is_none(), "{spec}");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(
            c["resources"],
            json!({"limits": {"memory": "1Gi", "cpu": "1"},
                   "requests": {"memory": "1Gi", "cpu": "1"}})
        );
        assert_eq!(spec["serviceAccount"], "web");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 2);

        // A template gets neither the Pod-only defaults nor the admission plugins' fields.
        let mut template = json!({"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "web"}]}});
        default_pod_template(&mut template);
        assert_eq!(
            template["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
        assert_eq!(
            template["metadata"].get("creationTimestamp"),
            Some(&Value::Null)
        );
        for pod_only in [
            "enableServiceLinks",
            "priority",
            "preemptionPolicy",
            "tolerations",
        ] {
            assert!(template["spec"].get(pod_only).is_none(), "{pod_only}");
        }
    }
}
