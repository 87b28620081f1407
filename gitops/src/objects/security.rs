//! The security view of a workload's pod template (what the Pod Security Standards read).

use serde_json::Value;

use super::{kind, pod_spec};

/// What the Pod Security Standards read of a workload's pod template (as a pod spec of its own,
/// with the template's AppArmor annotations): the host namespaces, whether the ServiceAccount
/// token is mounted, `hostUsers`, `os`, `hostAliases`, the pod's securityContext,
/// each volume's type (a hostPath's path), and each container's name, securityContext, host
/// ports and the host a probe or lifecycle hook is aimed at. Nothing else — no env, command or args, which may hold secrets — and no empty object,
/// so what an apiserver defaults reads as what the manifest says.
pub fn security_view(obj: &Value) -> Value {
    let spec = pod_spec(obj);
    let template = match kind(obj) {
        "Pod" => obj,
        "CronJob" => &obj["spec"]["jobTemplate"]["spec"]["template"],
        _ => &obj["spec"]["template"],
    };
    let non_empty = |v: &Value| !(v.is_null() || v.as_object().is_some_and(|o| o.is_empty()));
    let mut view = serde_json::Map::new();
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[key].as_bool() == Some(true) {
            view.insert(key.into(), Value::Bool(true));
        }
    }
    if let Some(b) = spec["automountServiceAccountToken"].as_bool() {
        view.insert("automountServiceAccountToken".into(), Value::Bool(b));
    }
    // User namespaces and Windows pods change what Pod Security asks; host aliases rewrite
    // /etc/hosts (kubesec, Trivy KSV007).
    if let Some(b) = spec["hostUsers"].as_bool() {
        view.insert("hostUsers".into(), Value::Bool(b));
    }
    if let Some(os) = spec["os"]["name"].as_str() {
        view.insert("os".into(), serde_json::json!({ "name": os }));
    }
    if spec["hostAliases"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        view.insert("hostAliases".into(), spec["hostAliases"].clone());
    }
    if non_empty(&spec["securityContext"]) {
        view.insert("securityContext".into(), spec["securityContext"].clone());
    }
    let volumes: Vec<Value> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let mut out = serde_json::Map::new();
            out.insert("name".into(), v["name"].clone());
            if let Some(kind) = v
                .as_object()
                .and_then(|o| o.keys().find(|k| k.as_str() != "name"))
            {
                let detail = if kind == "hostPath" {
                    serde_json::json!({ "path": v["hostPath"]["path"] })
                } else {
                    serde_json::json!({})
                };
                out.insert(kind.clone(), detail);
            }
            Value::Object(out)
        })
        .collect();
    if !volumes.is_empty() {
        view.insert("volumes".into(), Value::Array(volumes));
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let containers: Vec<Value> = spec[list]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let mut out = serde_json::Map::new();
                out.insert("name".into(), c["name"].clone());
                if non_empty(&c["securityContext"]) {
                    out.insert("securityContext".into(), c["securityContext"].clone());
                }
                let ports: Vec<Value> = c["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["hostPort"].as_i64().is_some_and(|h| h != 0))
                    .map(|p| {
                        serde_json::json!({
                            "containerPort": p["containerPort"],
                            "hostPort": p["hostPort"],
                        })
                    })
                    .collect();
                if !ports.is_empty() {
                    out.insert("ports".into(), Value::Array(ports));
                }
                // A probe or hook aimed at another host (Pod Security baseline): only the host.
                let aimed = |handler: &Value| -> Option<Value> {
                    ["httpGet", "tcpSocket"].into_iter().find_map(|action| {
                        handler[action]["host"]
                            .as_str()
                            .filter(|h| !h.is_empty())
                            .map(|h| serde_json::json!({ action: { "host": h } }))
                    })
                };
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    if let Some(v) = aimed(&c[probe]) {
                        out.insert(probe.into(), v);
                    }
                }
                let hooks: serde_json::Map<String, Value> = ["postStart", "preStop"]
                    .into_iter()
                    .filter_map(|hook| aimed(&c["lifecycle"][hook]).map(|v| (hook.into(), v)))
                    .collect();
                if !hooks.is_empty() {
                    out.insert("lifecycle".into(), Value::Object(hooks));
                }
                Value::Object(out)
            })
            .collect();
        if !containers.is_empty() {
            view.insert(list.into(), Value::Array(containers));
        }
    }
    let apparmor: serde_json::Map<String, Value> = template["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("container.apparmor.security.beta.kubernetes.io/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut out = serde_json::Map::new();
    out.insert("spec".into(), Value::Object(view));
    if !apparmor.is_empty() {
        out.insert("annotations".into(), Value::Object(apparmor));
    }
    Value::Object(out)
}
