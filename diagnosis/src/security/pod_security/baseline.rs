//! The baseline level's checks (upstream `policy/check_*.go`, one function each).

use std::collections::BTreeSet;

use serde_json::Value;

use super::Finding;
use super::spec::*;

/// Follows `policy/check_appArmorProfile.go` (spec fields only; the deprecated
/// AppArmor annotations live in pod metadata and are not checked here).
pub(super) fn app_armor_profile(spec: &Value) -> Option<Finding> {
    let allowed = |profile: &Value| matches!(text(profile, "type"), "RuntimeDefault" | "Localhost");
    let (setters, bad_values) = bad_profiles(spec, "appArmorProfile", allowed)?;
    Finding::new(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            bad_values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&bad_values)
        ),
    )
}

/// Capabilities a baseline container may add (`capabilities_allowed_1_0`).
pub(super) const BASELINE_CAPABILITIES: &[&str] = &[
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

/// Follows `policy/check_capabilities_baseline.go`.
pub(super) fn capabilities_baseline(spec: &Value) -> Option<Finding> {
    let mut bad_containers = Vec::new();
    let mut forbidden = BTreeSet::new();
    for c in containers(spec) {
        let Some(caps) = security_context(c).and_then(|sc| field(sc, "capabilities")) else {
            continue;
        };
        let mut valid = true;
        for cap in strings(caps, "add") {
            if !BASELINE_CAPABILITIES.contains(&cap) {
                valid = false;
                forbidden.insert(cap);
            }
        }
        if !valid {
            bad_containers.push(name(c));
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Finding::new(
        "non-default capabilities",
        format!(
            "{} {} must not include {} in securityContext.capabilities.add",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            join_quote(&forbidden),
        ),
    )
}

/// Follows `policy/check_hostNamespaces.go`.
pub(super) fn host_namespaces(spec: &Value) -> Option<Finding> {
    let shared: Vec<&str> = [
        ("hostNetwork", "hostNetwork=true"),
        ("hostPID", "hostPID=true"),
        ("hostIPC", "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(key, _)| flag(spec, key) == Some(true))
    .map(|(_, shown)| shown)
    .collect();
    if shared.is_empty() {
        return None;
    }
    Finding::new("host namespaces", shared.join(", "))
}

/// Follows `policy/check_hostPathVolumes.go`.
pub(super) fn host_path_volumes(spec: &Value) -> Option<Finding> {
    let host_volumes: Vec<&str> = list(spec, "volumes")
        .iter()
        .filter(|v| field(v, "hostPath").is_some())
        .map(name)
        .collect();
    if host_volumes.is_empty() {
        return None;
    }
    Finding::new(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", host_volumes.len()),
            join_quote(&host_volumes)
        ),
    )
}

/// Follows `policy/check_hostPorts.go`, after the apiserver's `hostNetwork`
/// port defaulting (see the module documentation).
pub(super) fn host_ports(spec: &Value) -> Option<Finding> {
    let host_network = flag(spec, "hostNetwork") == Some(true);
    let mut bad_containers = Vec::new();
    let mut forbidden = BTreeSet::new();
    for (kind, c) in containers_with_kind(spec) {
        let mut valid = true;
        for port in list(c, "ports") {
            let mut host_port = integer(port, "hostPort").unwrap_or(0);
            if host_port == 0 && host_network && kind != ContainerKind::Ephemeral {
                host_port = integer(port, "containerPort").unwrap_or(0);
            }
            if host_port != 0 {
                valid = false;
                forbidden.insert(host_port.to_string());
            }
        }
        if !valid {
            bad_containers.push(name(c));
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let ports: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    Finding::new(
        "hostPort",
        format!(
            "{} {} {} {} {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize("hostPort", "hostPorts", forbidden.len()),
            ports.join(", "),
        ),
    )
}

/// Follows `policy/check_hostProbesAndhostLifecycle.go` (v1.34+).
pub(super) fn host_probes_and_host_lifecycle(spec: &Value) -> Option<Finding> {
    let mut bad_containers = BTreeSet::new();
    let mut forbidden = BTreeSet::new();
    for c in containers(spec) {
        let probes = ["livenessProbe", "readinessProbe", "startupProbe"]
            .into_iter()
            .filter_map(|key| field(c, key));
        let hooks = field(c, "lifecycle").into_iter().flat_map(|lifecycle| {
            ["postStart", "preStop"]
                .into_iter()
                .filter_map(move |key| field(lifecycle, key))
        });
        for handler in probes.chain(hooks) {
            for action in ["httpGet", "tcpSocket"] {
                if let Some(action) = field(handler, action) {
                    let host = text(action, "host");
                    if !host.is_empty() {
                        bad_containers.insert(name(c));
                        forbidden.insert(host);
                    }
                }
            }
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Finding::new(
        "probe or lifecycle host",
        format!(
            "{} {} {} {} {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                forbidden.len()
            ),
            join_quote(&forbidden),
        ),
    )
}

/// Follows `policy/check_privileged.go`.
pub(super) fn privileged(spec: &Value) -> Option<Finding> {
    let bad: Vec<&str> = containers(spec)
        .filter(|c| security_context(c).and_then(|sc| flag(sc, "privileged")) == Some(true))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    Finding::new(
        "privileged",
        format!(
            "{} {} must not set securityContext.privileged=true",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad)
        ),
    )
}

/// Follows `policy/check_procMount_baseline.go` (`procMount1_35baseline`):
/// pods in a user namespace may set any `procMount`.
pub(super) fn proc_mount_baseline(spec: &Value) -> Option<Finding> {
    if in_user_namespace(spec) {
        return None;
    }
    proc_mount(spec)
}

/// Follows `policy/check_procMount_baseline.go` (`procMount_1_0`), which
/// `policy/check_procMount_restricted.go` also runs.
pub(super) fn proc_mount(spec: &Value) -> Option<Finding> {
    let mut bad_containers = Vec::new();
    let mut forbidden = BTreeSet::new();
    for c in containers(spec) {
        if let Some(mount) = security_context(c).and_then(|sc| field(sc, "procMount")) {
            let mount = mount.as_str().unwrap_or("");
            if mount != "Default" {
                bad_containers.push(name(c));
                forbidden.insert(mount);
            }
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Finding::new(
        "procMount",
        format!(
            "{} {} must not set securityContext.procMount to {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            join_quote(&forbidden),
        ),
    )
}

/// SELinux types a pod or container may set (`selinuxAllowedTypes1_31`).
pub(super) const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// Follows `policy/check_seLinuxOptions.go` (`seLinuxOptions1_31`).
pub(super) fn se_linux_options(spec: &Value) -> Option<Finding> {
    let mut bad_types = BTreeSet::new();
    let mut set_user = false;
    let mut set_role = false;
    let mut valid = |opts: &Value| {
        let mut ok = true;
        let kind = text(opts, "type");
        if !SELINUX_TYPES.contains(&kind) {
            ok = false;
            bad_types.insert(kind.to_owned());
        }
        if !text(opts, "user").is_empty() {
            ok = false;
            set_user = true;
        }
        if !text(opts, "role").is_empty() {
            ok = false;
            set_role = true;
        }
        ok
    };
    let pod_bad = pod_security_context(spec)
        .and_then(|sc| field(sc, "seLinuxOptions"))
        .is_some_and(|o| !valid(o));
    let bad_containers: Vec<&str> = containers(spec)
        .filter(|c| {
            security_context(c)
                .and_then(|sc| field(sc, "seLinuxOptions"))
                .is_some_and(|o| !valid(o))
        })
        .map(name)
        .collect();
    let setters = setters(pod_bad, &bad_containers);
    if setters.is_empty() {
        return None;
    }
    let mut bad_data = Vec::new();
    if !bad_types.is_empty() {
        bad_data.push(format!(
            "{} {}",
            pluralize("type", "types", bad_types.len()),
            join_quote(&bad_types)
        ));
    }
    if set_user {
        bad_data.push("user may not be set".to_owned());
    }
    if set_role {
        bad_data.push("role may not be set".to_owned());
    }
    Finding::new(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            bad_data.join("; ")
        ),
    )
}

/// Follows `policy/check_seccompProfile_baseline.go` (`seccompProfileBaseline_1_19`).
pub(super) fn seccomp_profile_baseline(spec: &Value) -> Option<Finding> {
    let (setters, bad_values) = bad_profiles(spec, "seccompProfile", valid_seccomp)?;
    Finding::new(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(&bad_values)
        ),
    )
}

/// Sysctls a pod may set (`sysctlsAllowedV1Dot32`, the newest set released as
/// of v1.36).
pub(super) const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// Follows `policy/check_sysctls.go`. Names are listed unquoted, in spec order.
pub(super) fn sysctls(spec: &Value) -> Option<Finding> {
    let forbidden: Vec<&str> = pod_security_context(spec)
        .map(|sc| list(sc, "sysctls"))
        .unwrap_or_default()
        .iter()
        .map(name)
        .filter(|sysctl| !SAFE_SYSCTLS.contains(sysctl))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    Finding::new("forbidden sysctls", forbidden.join(", "))
}

/// Follows `policy/check_windowsHostProcess.go`.
pub(super) fn windows_host_process(spec: &Value) -> Option<Finding> {
    let host_process =
        |sc: &Value| field(sc, "windowsOptions").and_then(|w| flag(w, "hostProcess")) == Some(true);
    let bad_containers: Vec<&str> = containers(spec)
        .filter(|c| security_context(c).is_some_and(host_process))
        .map(name)
        .collect();
    let pod_bad = pod_security_context(spec).is_some_and(host_process);
    let setters = setters(pod_bad, &bad_containers);
    if setters.is_empty() {
        return None;
    }
    Finding::new(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    )
}

/// Who sets the profile `key` (`appArmorProfile`, `seccompProfile`) to a type `allowed` refuses,
/// the pod's security context or containers' (upstream's `pod or container` wording), and the
/// types they set; `None` when nobody does.
fn bad_profiles<'a>(
    spec: &'a Value,
    key: &str,
    allowed: impl Fn(&Value) -> bool,
) -> Option<(Vec<String>, BTreeSet<&'a str>)> {
    let mut bad_values = BTreeSet::new();
    let pod_bad = match pod_security_context(spec).and_then(|sc| field(sc, key)) {
        Some(profile) if !allowed(profile) => {
            bad_values.insert(text(profile, "type"));
            true
        }
        _ => false,
    };
    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        if let Some(profile) = security_context(c).and_then(|sc| field(sc, key))
            && !allowed(profile)
        {
            bad_containers.push(name(c));
            bad_values.insert(text(profile, "type"));
        }
    }
    let setters = setters(pod_bad, &bad_containers);
    (!setters.is_empty()).then_some((setters, bad_values))
}
