//! The apiserver's admission of a pod the ReplicaSet controller creates, for the namespace's
//! LimitRanges, its Pod Security level and its ResourceQuotas (in that order, as the validating
//! plugins run: `LimitRanger`, `PodSecurity`, `ResourceQuota`). A pod refused is never created:
//! the controller records `FailedCreate` on its ReplicaSet, `Error creating: pods "x" is
//! forbidden: …`, in the plugins' words.

use std::collections::BTreeMap;

use serde_json::Value;
use squad_protocols::Quantity;

use crate::scenario::{LimitRangeSpec, QuotaSpec};
use squad_diagnosis::security::pod_security::{self, Level};

/// What a pod counts against a quota, per quota resource, in thousandths.
pub(crate) type Usage = BTreeMap<String, i128>;

/// A container's declared value of `resources.<which>.<resource>`, in thousandths.
fn declared(container: &Value, which: &str, resource: &str) -> Option<i128> {
    container["resources"][which][resource]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            container["resources"][which][resource]
                .as_f64()
                .map(|n| n.to_string())
        })
        .and_then(|s| s.parse::<Quantity>().ok())
        .map(|q| q.milli())
}

/// A container's request: as declared, else its limit (the apiserver defaults it so).
fn request(container: &Value, resource: &str) -> Option<i128> {
    declared(container, "requests", resource).or_else(|| declared(container, "limits", resource))
}

fn containers(pod_spec: &Value) -> &[Value] {
    pod_spec["containers"].as_array().map_or(&[], Vec::as_slice)
}

/// The quota resources a pod uses, and those a quota tracks that some container leaves
/// unspecified.
pub(crate) fn pod_usage(pod_spec: &Value) -> (Usage, Vec<String>) {
    let mut usage = Usage::from([("pods".to_owned(), 1000)]);
    let mut unspecified = Vec::new();
    for resource in ["cpu", "memory"] {
        let keys = [
            (format!("requests.{resource}"), true),
            (resource.to_owned(), true),
            (format!("limits.{resource}"), false),
        ];
        for (key, is_request) in keys {
            let mut total = 0;
            for c in containers(pod_spec) {
                let v = if is_request {
                    request(c, resource)
                } else {
                    declared(c, "limits", resource)
                };
                match v {
                    Some(v) => total += v,
                    None => {
                        if !unspecified.contains(&key) {
                            unspecified.push(key.clone());
                        }
                    }
                }
            }
            usage.insert(key, total);
        }
    }
    unspecified.sort();
    (usage, unspecified)
}

/// A quantity as the apiserver prints it (its canonical form): cores or millicores for CPU,
/// the largest binary suffix that divides memory exactly, a count for pods.
pub(crate) fn canonical(resource: &str, milli: i128) -> String {
    if resource.ends_with("cpu") {
        return if milli % 1000 == 0 {
            (milli / 1000).to_string()
        } else {
            format!("{milli}m")
        };
    }
    if milli % 1000 != 0 {
        return format!("{milli}m");
    }
    let units = milli / 1000;
    if resource.ends_with("memory") {
        for (suffix, shift) in [
            ("Ei", 60),
            ("Pi", 50),
            ("Ti", 40),
            ("Gi", 30),
            ("Mi", 20),
            ("Ki", 10),
        ] {
            let unit = 1i128 << shift;
            if units != 0 && units % unit == 0 {
                return format!("{}{suffix}", units / unit);
            }
        }
    }
    units.to_string()
}

fn pretty(values: &Usage, keys: &[&String]) -> String {
    keys.iter()
        .map(|k| format!("{k}={}", canonical(k, values.get(*k).copied().unwrap_or(0))))
        .collect::<Vec<_>>()
        .join(",")
}

/// The pod as the LimitRanger lets it through: a container with no limit for a resource gets
/// the range's default limit, one with no request its default request (the apiserver has
/// already set a missing request to the limit when only the limit is set).
pub(crate) fn defaulted(ranges: &[LimitRangeSpec], pod_spec: &Value) -> Value {
    let mut spec = pod_spec.clone();
    let Some(cs) = spec["containers"].as_array_mut() else {
        return spec;
    };
    for c in cs {
        for resource in ["cpu", "memory"] {
            if declared(c, "requests", resource).is_none()
                && let Some(limit) = c["resources"]["limits"][resource]
                    .as_str()
                    .map(str::to_owned)
            {
                c["resources"]["requests"][resource] = Value::from(limit);
            }
        }
        for range in ranges {
            let (limits, requests) = range.defaults();
            for (which, values) in [("limits", &limits), ("requests", &requests)] {
                for (resource, q) in values {
                    if declared(c, which, resource).is_none() {
                        c["resources"][which][resource] = Value::from(q.to_string());
                    }
                }
            }
        }
    }
    spec
}

/// The LimitRanger's verdict on a pod's containers: each `min` against the request, each `max`
/// against the limit.
fn limit_ranges(ranges: &[LimitRangeSpec], pod_spec: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    for range in ranges {
        for c in containers(pod_spec) {
            for (resource, min) in &range.min {
                let min_text = canonical(resource, min.milli());
                match request(c, resource) {
                    None => errors.push(format!(
                        "minimum {resource} usage per Container is {min_text}.  No request is specified"
                    )),
                    Some(r) if r < min.milli() => errors.push(format!(
                        "minimum {resource} usage per Container is {min_text}, but request is {}",
                        canonical(resource, r)
                    )),
                    Some(_) => {}
                }
            }
            for (resource, max) in &range.max {
                let max_text = canonical(resource, max.milli());
                match declared(c, "limits", resource) {
                    None => errors.push(format!(
                        "maximum {resource} usage per Container is {max_text}.  No limit is specified"
                    )),
                    Some(l) if l > max.milli() => errors.push(format!(
                        "maximum {resource} usage per Container is {max_text}, but limit is {}",
                        canonical(resource, l)
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    errors
}

/// The ResourceQuota plugin's verdict on a pod, given what the workload's other live pods
/// already use (`used`): the first quota it does not fit.
fn quotas(quotas: &[QuotaSpec], pod_spec: &Value, used: &Usage) -> Option<String> {
    let (usage, unspecified) = pod_usage(pod_spec);
    for q in quotas {
        let missing: Vec<&str> = unspecified
            .iter()
            .filter(|k| q.hard.contains_key(*k) && k.contains('.'))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Some(format!(
                "failed quota: {}: must specify {}",
                q.name,
                missing.join(",")
            ));
        }
        let now: Usage = q
            .hard
            .keys()
            .map(|k| {
                let others = q.used_by_others.get(k).map_or(0, Quantity::milli);
                (k.clone(), others + used.get(k).copied().unwrap_or(0))
            })
            .collect();
        let exceeded: Vec<&String> = q
            .hard
            .iter()
            .filter(|(k, hard)| {
                now.get(*k).copied().unwrap_or(0) + usage.get(*k).copied().unwrap_or(0)
                    > hard.milli()
            })
            .map(|(k, _)| k)
            .collect();
        if !exceeded.is_empty() {
            let hard: Usage = q.hard.iter().map(|(k, v)| (k.clone(), v.milli())).collect();
            return Some(format!(
                "exceeded quota: {}, requested: {}, used: {}, limited: {}",
                q.name,
                pretty(&usage, &exceeded),
                pretty(&now, &exceeded),
                pretty(&hard, &exceeded)
            ));
        }
    }
    None
}

/// Why the apiserver refuses to create a pod of `pod_spec`, if it does (see [`forbidden`]).
/// `used` is what the workload's other live pods count against the quotas.
pub(crate) fn refusal(
    (ranges, security, quota): (&[LimitRangeSpec], Option<&Enforced>, &[QuotaSpec]),
    pod_spec: &Value,
    used: &Usage,
) -> Option<String> {
    let pod_spec = &defaulted(ranges, pod_spec);
    let errors = limit_ranges(ranges, pod_spec);
    Some(match errors.len() {
        0 => match security.and_then(|e| e.violated_by(pod_spec)) {
            Some(why) => why,
            None => quotas(quota, pod_spec, used)?,
        },
        1 => errors[0].clone(),
        _ => format!("[{}]", errors.join(", ")),
    })
}

/// The Pod Security level a namespace enforces (its `pod-security.kubernetes.io/enforce`
/// label, at its `enforce-version`, `latest` unless set).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Enforced {
    level: Level,
    version: String,
}

impl Enforced {
    /// From a namespace's labels; `None` when it enforces nothing (or `privileged`).
    pub(crate) fn of(labels: &BTreeMap<String, String>) -> Option<Enforced> {
        let level = Level::parse(labels.get("pod-security.kubernetes.io/enforce")?)?;
        (level != Level::Privileged).then(|| Enforced {
            level,
            version: labels
                .get("pod-security.kubernetes.io/enforce-version")
                .cloned()
                .unwrap_or_else(|| "latest".into()),
        })
    }

    /// `violates PodSecurity "restricted:latest": …` when the pod breaks the level.
    fn violated_by(&self, pod_spec: &Value) -> Option<String> {
        pod_security::cause(self.level, &self.version, pod_spec)
    }
}

/// A namespace's labels in the cluster at `at`: those its manifest in the GitOps repo declares,
/// and those the scenario says the platform applied (`[namespaces.<name>]`, from
/// `labelled_hours_ago` on), which win.
pub(crate) fn namespace_labels(
    s: &crate::scenario::Scenario,
    objects: &[Value],
    ns: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = objects
        .iter()
        .filter(|o| o["kind"] == "Namespace" && o["metadata"]["name"] == ns)
        .filter_map(|o| o["metadata"]["labels"].as_object())
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    if let Some(n) = s.namespaces.get(ns)
        && n.labelled_hours_ago
            .is_none_or(|h| s.now - chrono::Duration::seconds((h * 3600.0) as i64) <= at)
    {
        labels.extend(n.labels.clone());
    }
    labels
}

/// The apiserver's answer to creating pod `name`, refused for `why`.
pub(crate) fn forbidden(name: &str, why: &str) -> String {
    format!("pods \"{name}\" is forbidden: {why}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn spec(limits: Value, requests: Value) -> Value {
        json!({"containers": [{"name": "app", "resources": {"limits": limits, "requests": requests}}]})
    }

    fn quota(hard: &[(&str, &str)], others: &[(&str, &str)]) -> QuotaSpec {
        let map = |xs: &[(&str, &str)]| {
            xs.iter()
                .map(|(k, v)| ((*k).to_owned(), v.parse().unwrap()))
                .collect()
        };
        QuotaSpec {
            name: "compute".into(),
            hard: map(hard),
            used_by_others: map(others),
        }
    }

    #[test]
    fn a_pod_past_the_quota_is_refused_with_only_the_exceeded_resources() {
        let pod = spec(json!({"memory": "1Gi", "cpu": "500m"}), json!({}));
        let q = quota(
            &[
                ("limits.memory", "6Gi"),
                ("limits.cpu", "8"),
                ("pods", "20"),
            ],
            &[("limits.memory", "3Gi"), ("limits.cpu", "2")],
        );
        let used = Usage::from([
            ("limits.memory".into(), 3 * 768 * 1024 * 1024 * 1000),
            ("limits.cpu".into(), 1500),
            ("pods".into(), 3000),
        ]);
        assert_eq!(
            forbidden(
                "api-5d8f7-x2k9q",
                &refusal((&[], None, std::slice::from_ref(&q)), &pod, &used).unwrap()
            ),
            "pods \"api-5d8f7-x2k9q\" is forbidden: exceeded quota: compute, requested: limits.memory=1Gi, used: limits.memory=5376Mi, limited: limits.memory=6Gi"
        );
        // With the old pods gone it fits.
        assert_eq!(refusal((&[], None, &[q]), &pod, &Usage::new()), None);
    }

    #[test]
    fn a_quota_on_limits_refuses_a_pod_that_sets_none() {
        let pod = spec(json!({}), json!({"memory": "256Mi"}));
        let q = quota(&[("limits.memory", "6Gi"), ("requests.cpu", "4")], &[]);
        assert_eq!(
            forbidden(
                "p",
                &refusal((&[], None, &[q]), &pod, &Usage::new()).unwrap()
            ),
            "pods \"p\" is forbidden: failed quota: compute: must specify limits.memory,requests.cpu"
        );
    }

    #[test]
    fn a_limit_range_refuses_a_container_past_its_max_or_under_its_min() {
        let range = LimitRangeSpec {
            name: "container-limits".into(),
            max: BTreeMap::from([("memory".into(), "1Gi".parse().unwrap())]),
            min: BTreeMap::from([("cpu".into(), "100m".parse().unwrap())]),
            default: BTreeMap::new(),
            default_request: BTreeMap::new(),
        };
        let pod = spec(json!({"memory": "2048Mi"}), json!({"cpu": "50m"}));
        assert_eq!(
            forbidden(
                "p",
                &refusal(
                    (std::slice::from_ref(&range), None, &[]),
                    &pod,
                    &Usage::new()
                )
                .unwrap()
            ),
            "pods \"p\" is forbidden: [minimum cpu usage per Container is 100m, but request is 50m, maximum memory usage per Container is 1Gi, but limit is 2Gi]"
        );
        let pod = spec(json!({"memory": "1Gi"}), json!({"cpu": "100m"}));
        assert_eq!(
            refusal(
                (std::slice::from_ref(&range), None, &[]),
                &pod,
                &Usage::new()
            ),
            None
        );
        // A container with no limit gets the max as its default (and no request, the min).
        let pod = spec(json!({}), json!({}));
        assert_eq!(
            refusal(
                (std::slice::from_ref(&range), None, &[]),
                &pod,
                &Usage::new()
            ),
            None
        );
        let d = defaulted(&[range], &pod);
        assert_eq!(d["containers"][0]["resources"]["limits"]["memory"], "1Gi");
        assert_eq!(d["containers"][0]["resources"]["requests"]["memory"], "1Gi");
        assert_eq!(d["containers"][0]["resources"]["requests"]["cpu"], "100m");
    }

    #[test]
    fn quantities_print_as_the_apiserver_prints_them() {
        assert_eq!(canonical("limits.cpu", 2000), "2");
        assert_eq!(canonical("requests.cpu", 1500), "1500m");
        assert_eq!(
            canonical("limits.memory", 1536 * 1024 * 1024 * 1000),
            "1536Mi"
        );
        assert_eq!(canonical("memory", 1000 * 1000), "1000");
        assert_eq!(canonical("pods", 3000), "3");
    }

    #[test]
    fn pod_security_refuses_after_the_limit_ranges_and_before_the_quota() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(Enforced::of(&labels(&[])), None);
        assert_eq!(
            Enforced::of(&labels(&[(
                "pod-security.kubernetes.io/enforce",
                "privileged"
            )])),
            None
        );
        assert_eq!(
            Enforced::of(&labels(&[(
                "pod-security.kubernetes.io/warn",
                "restricted"
            )])),
            None
        );
        let restricted = Enforced::of(&labels(&[
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/enforce-version", "v1.29"),
        ]))
        .unwrap();
        let pod = spec(json!({"memory": "1Gi"}), json!({"memory": "1Gi"}));
        let why = refusal((&[], Some(&restricted), &[]), &pod, &Usage::new()).unwrap();
        assert!(
            why.starts_with("violates PodSecurity \"restricted:v1.29\": allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false), "),
            "{why}"
        );
        // A quota the pod exceeds still answers second; a hardened pod passes to it.
        let q = quota(&[("requests.memory", "512Mi")], &[]);
        let refused = |pod: &Value| {
            refusal(
                (&[], Some(&restricted), std::slice::from_ref(&q)),
                pod,
                &Usage::new(),
            )
            .unwrap()
        };
        assert!(refused(&pod).starts_with("violates PodSecurity"));
        let mut hardened = pod.clone();
        hardened["securityContext"] =
            json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
        hardened["containers"][0]["securityContext"] = json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]}
        });
        assert!(
            refused(&hardened).starts_with("exceeded quota: compute"),
            "{}",
            refused(&hardened)
        );
    }
}
