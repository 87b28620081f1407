//! The Pod Security Standards, evaluated on a pod spec: every control of the `baseline` and
//! `restricted` profiles as the Kubernetes documentation defines them (the same checks the
//! apiserver's Pod Security admission runs), each violation named by the field that breaks it,
//! and the strictest level the pod meets.

use std::fmt;

use serde_json::Value;

/// The profiles, from the most permissive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        })
    }
}

/// One broken control: which, at what level it is required, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The control's name as the documentation has it (`Host Namespaces`, `Capabilities`).
    pub control: &'static str,
    /// The lowest profile that forbids it.
    pub level: Level,
    /// The field and its value (`spec.hostNetwork=true`, `containers[app].securityContext.capabilities.add=[SYS_ADMIN]`).
    pub field: String,
}

/// The evaluation of a pod spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub violations: Vec<Violation>,
}

impl Evaluation {
    /// The strictest profile the pod meets.
    pub fn level(&self) -> Level {
        match self.violations.iter().map(|v| v.level).min() {
            None => Level::Restricted,
            Some(Level::Restricted) => Level::Baseline,
            Some(_) => Level::Privileged,
        }
    }

    /// The violations that keep the pod from `level`.
    pub fn against(&self, level: Level) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(move |v| v.level <= level)
    }
}

/// Capabilities `baseline` lets a container add (the container runtime's defaults).
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The sysctls `baseline` calls safe.
const SAFE_SYSCTLS: [&str; 10] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// The SELinux types `baseline` allows.
const SELINUX_TYPES: [&str; 4] = [
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// The volume types `restricted` allows.
const RESTRICTED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Every container of the spec, with the path it is named by (`containers[app]`).
fn containers(spec: &Value) -> Vec<(String, &Value)> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| {
            spec[*list]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |c| (format!("{list}[{}]", c["name"].as_str().unwrap_or("?")), c))
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// Evaluates a pod spec (a Pod's `spec`, or a workload's `spec.template.spec`); `annotations`
/// are the pod template's (AppArmor's older form lives there).
pub fn evaluate(spec: &Value, annotations: &Value) -> Evaluation {
    let mut out = Vec::new();
    let mut add = |control: &'static str, level: Level, field: String| {
        out.push(Violation {
            control,
            level,
            field,
        })
    };
    let pod_sc = &spec["securityContext"];
    let all = containers(spec);
    let truthy = |v: &Value| v.as_bool() == Some(true);

    // Baseline.
    if truthy(&pod_sc["windowsOptions"]["hostProcess"]) {
        add(
            "HostProcess",
            Level::Baseline,
            "spec.securityContext.windowsOptions.hostProcess=true".into(),
        );
    }
    for ns in ["hostNetwork", "hostPID", "hostIPC"] {
        if truthy(&spec[ns]) {
            add(
                "Host Namespaces",
                Level::Baseline,
                format!("spec.{ns}=true"),
            );
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("?");
        if v.get("hostPath").is_some() {
            add(
                "HostPath Volumes",
                Level::Baseline,
                format!(
                    "volumes[{name}].hostPath.path={}",
                    v["hostPath"]["path"].as_str().unwrap_or("")
                ),
            );
        }
        let kind = v
            .as_object()
            .and_then(|o| o.keys().find(|k| k.as_str() != "name").cloned())
            .unwrap_or_default();
        if !RESTRICTED_VOLUMES.contains(&kind.as_str()) && kind != "hostPath" {
            add(
                "Volume Types",
                Level::Restricted,
                format!("volumes[{name}] is {kind}"),
            );
        }
    }
    let selinux: Vec<(String, &Value)> =
        std::iter::once(("spec.securityContext".to_owned(), &pod_sc["seLinuxOptions"]))
            .chain(all.iter().map(|(p, c)| {
                (
                    format!("{p}.securityContext"),
                    &c["securityContext"]["seLinuxOptions"],
                )
            }))
            .collect();
    for (path, value) in selinux {
        if let Some(t) = value["type"].as_str()
            && !t.is_empty()
            && !SELINUX_TYPES.contains(&t)
        {
            add(
                "SELinux",
                Level::Baseline,
                format!("{path}.seLinuxOptions.type={t}"),
            );
        }
        for key in ["user", "role"] {
            if value[key].as_str().is_some_and(|s| !s.is_empty()) {
                add(
                    "SELinux",
                    Level::Baseline,
                    format!("{path}.seLinuxOptions.{key} is set"),
                );
            }
        }
    }
    for s in pod_sc["sysctls"].as_array().into_iter().flatten() {
        let name = s["name"].as_str().unwrap_or("");
        if !SAFE_SYSCTLS.contains(&name) {
            add(
                "Sysctls",
                Level::Baseline,
                format!("spec.securityContext.sysctls[{name}]"),
            );
        }
    }
    if pod_sc["seccompProfile"]["type"].as_str() == Some("Unconfined") {
        add(
            "Seccomp",
            Level::Baseline,
            "spec.securityContext.seccompProfile.type=Unconfined".into(),
        );
    }
    if pod_sc["appArmorProfile"]["type"].as_str() == Some("Unconfined") {
        add(
            "AppArmor",
            Level::Baseline,
            "spec.securityContext.appArmorProfile.type=Unconfined".into(),
        );
    }
    for (key, value) in annotations.as_object().into_iter().flatten() {
        if let Some(c) = key.strip_prefix("container.apparmor.security.beta.kubernetes.io/") {
            let v = value.as_str().unwrap_or("");
            if v != "runtime/default" && !v.starts_with("localhost/") {
                add(
                    "AppArmor",
                    Level::Baseline,
                    format!("annotation {key}={v} (container {c})"),
                );
            }
        }
    }
    let pod_non_root = pod_sc["runAsNonRoot"].as_bool();
    let pod_seccomp = pod_sc["seccompProfile"]["type"].as_str();
    if pod_sc["runAsUser"].as_i64() == Some(0) {
        add(
            "Running as Non-root user",
            Level::Restricted,
            "spec.securityContext.runAsUser=0".into(),
        );
    }
    for (path, c) in &all {
        let sc = &c["securityContext"];
        if truthy(&sc["windowsOptions"]["hostProcess"]) {
            add(
                "HostProcess",
                Level::Baseline,
                format!("{path}.securityContext.windowsOptions.hostProcess=true"),
            );
        }
        if truthy(&sc["privileged"]) {
            add(
                "Privileged Containers",
                Level::Baseline,
                format!("{path}.securityContext.privileged=true"),
            );
        }
        let added = strings(&sc["capabilities"]["add"]);
        let beyond: Vec<&String> = added
            .iter()
            .filter(|c| !BASELINE_CAPABILITIES.contains(&c.as_str()))
            .collect();
        if !beyond.is_empty() {
            add(
                "Capabilities",
                Level::Baseline,
                format!("{path}.securityContext.capabilities.add={beyond:?}"),
            );
        }
        for p in c["ports"].as_array().into_iter().flatten() {
            if let Some(h) = p["hostPort"].as_i64().filter(|h| *h != 0) {
                add(
                    "Host Ports",
                    Level::Baseline,
                    format!("{path}.ports[{}].hostPort={h}", p["containerPort"]),
                );
            }
        }
        if sc["procMount"].as_str().is_some_and(|m| m != "Default") {
            add(
                "/proc Mount Type",
                Level::Baseline,
                format!(
                    "{path}.securityContext.procMount={}",
                    sc["procMount"].as_str().unwrap_or("")
                ),
            );
        }
        let seccomp = sc["seccompProfile"]["type"].as_str();
        if seccomp == Some("Unconfined") {
            add(
                "Seccomp",
                Level::Baseline,
                format!("{path}.securityContext.seccompProfile.type=Unconfined"),
            );
        }
        if sc["appArmorProfile"]["type"].as_str() == Some("Unconfined") {
            add(
                "AppArmor",
                Level::Baseline,
                format!("{path}.securityContext.appArmorProfile.type=Unconfined"),
            );
        }
        // Restricted.
        if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
            add(
                "Privilege Escalation",
                Level::Restricted,
                format!("{path}.securityContext.allowPrivilegeEscalation is not false"),
            );
        }
        if sc["runAsNonRoot"].as_bool().or(pod_non_root) != Some(true) {
            add(
                "Running as Non-root",
                Level::Restricted,
                format!("{path}: runAsNonRoot is not true (container or pod)"),
            );
        }
        if sc["runAsUser"].as_i64() == Some(0) {
            add(
                "Running as Non-root user",
                Level::Restricted,
                format!("{path}.securityContext.runAsUser=0"),
            );
        }
        if !matches!(
            seccomp.or(pod_seccomp),
            Some("RuntimeDefault" | "Localhost")
        ) {
            add(
                "Seccomp",
                Level::Restricted,
                format!(
                    "{path}: seccompProfile.type is not RuntimeDefault or Localhost (container or pod)"
                ),
            );
        }
        let dropped = strings(&sc["capabilities"]["drop"]);
        if !dropped.iter().any(|d| d == "ALL") {
            add(
                "Capabilities",
                Level::Restricted,
                format!("{path}.securityContext.capabilities.drop does not hold ALL"),
            );
        }
        let extra: Vec<&String> = added.iter().filter(|c| *c != "NET_BIND_SERVICE").collect();
        if !extra.is_empty() {
            add(
                "Capabilities",
                Level::Restricted,
                format!(
                    "{path}.securityContext.capabilities.add={extra:?} (only NET_BIND_SERVICE)"
                ),
            );
        }
    }
    Evaluation { violations: out }
}

#[cfg(test)]
mod tests;
