//! The restricted level's checks (upstream `policy/check_*.go`, one function each).

use std::collections::BTreeSet;

use serde_json::Value;

use super::Finding;
use super::baseline::proc_mount;
use super::spec::*;

/// Follows `policy/check_allowPrivilegeEscalation.go` (`allowPrivilegeEscalation_1_25`):
/// Windows pods are exempt.
pub(super) fn allow_privilege_escalation(spec: &Value) -> Option<Finding> {
    if is_windows(spec) {
        return None;
    }
    let bad: Vec<&str> = containers(spec)
        .filter(|c| {
            security_context(c).and_then(|sc| flag(sc, "allowPrivilegeEscalation")) != Some(false)
        })
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    Finding::new(
        "allowPrivilegeEscalation != false",
        format!(
            "{} {} must set securityContext.allowPrivilegeEscalation=false",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad)
        ),
    )
}

/// Follows `policy/check_capabilities_restricted.go` (`capabilitiesRestricted_1_25`):
/// containers must drop `ALL` and may add only `NET_BIND_SERVICE`; Windows pods
/// are exempt. Replaces `capabilities_baseline` at the restricted level.
pub(super) fn capabilities_restricted(spec: &Value) -> Option<Finding> {
    if is_windows(spec) {
        return None;
    }
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden = BTreeSet::new();
    for c in containers(spec) {
        let Some(caps) = security_context(c).and_then(|sc| field(sc, "capabilities")) else {
            missing_drop_all.push(name(c));
            continue;
        };
        if !strings(caps, "drop").any(|cap| cap == "ALL") {
            missing_drop_all.push(name(c));
        }
        let mut added_forbidden = false;
        for cap in strings(caps, "add") {
            if cap != "NET_BIND_SERVICE" {
                added_forbidden = true;
                forbidden.insert(cap);
            }
        }
        if added_forbidden {
            adding_forbidden.push(name(c));
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            r#"{} {} must set securityContext.capabilities.drop=["ALL"]"#,
            pluralize("container", "containers", missing_drop_all.len()),
            join_quote(&missing_drop_all),
        ));
    }
    if !adding_forbidden.is_empty() {
        details.push(format!(
            "{} {} must not include {} in securityContext.capabilities.add",
            pluralize("container", "containers", adding_forbidden.len()),
            join_quote(&adding_forbidden),
            join_quote(&forbidden),
        ));
    }
    if details.is_empty() {
        return None;
    }
    Finding::new("unrestricted capabilities", details.join("; "))
}

/// Follows `policy/check_procMount_restricted.go` (v1.35+): the unconditional
/// `procMount` check, replacing the baseline one at the restricted level.
pub(super) fn proc_mount_restricted(spec: &Value) -> Option<Finding> {
    proc_mount(spec)
}

/// Volume sources the restricted level allows.
pub(super) const ALLOWED_VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Volume sources the restricted level forbids, in the order upstream tests
/// them to name a volume's type.
pub(super) const RESTRICTED_VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

/// Follows `policy/check_restrictedVolumes.go`. Replaces `hostPathVolumes` at
/// the restricted level. A volume with no known source is defaulted to
/// `emptyDir` by the apiserver and so is allowed.
pub(super) fn restricted_volumes(spec: &Value) -> Option<Finding> {
    let mut bad_volumes = Vec::new();
    let mut bad_types = BTreeSet::new();
    for volume in list(spec, "volumes") {
        if ALLOWED_VOLUME_SOURCES
            .iter()
            .any(|source| field(volume, source).is_some())
        {
            continue;
        }
        if let Some(source) = RESTRICTED_VOLUME_SOURCES
            .iter()
            .find(|source| field(volume, source).is_some())
        {
            bad_volumes.push(name(volume));
            bad_types.insert(*source);
        }
    }
    if bad_volumes.is_empty() {
        return None;
    }
    Finding::new(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad_volumes.len()),
            join_quote(&bad_volumes),
            pluralize("uses", "use", bad_volumes.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                bad_types.len()
            ),
            join_quote(&bad_types),
        ),
    )
}

/// Follows `policy/check_runAsNonRoot.go` (`runAsNonRoot1_35`). A container
/// passes with its own `runAsNonRoot: true`, or with none and the pod's
/// `runAsNonRoot: true`. An explicit `false` anywhere is reported in
/// preference to a missing value. Pods with `hostUsers: false` are exempt.
pub(super) fn run_as_non_root(spec: &Value) -> Option<Finding> {
    if in_user_namespace(spec) {
        return None;
    }
    let pod_value = pod_security_context(spec).and_then(|sc| flag(sc, "runAsNonRoot"));
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in containers(spec) {
        match security_context(c).and_then(|sc| flag(sc, "runAsNonRoot")) {
            Some(true) => {}
            Some(false) => explicitly_bad.push(name(c)),
            None if pod_value == Some(true) => {}
            None => implicitly_bad.push(name(c)),
        }
    }
    let setters = setters(pod_value == Some(false), &explicitly_bad);
    if !setters.is_empty() {
        return Finding::new(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if !implicitly_bad.is_empty() {
        return Finding::new(
            "runAsNonRoot != true",
            format!(
                "pod or {} {} must set securityContext.runAsNonRoot=true",
                pluralize("container", "containers", implicitly_bad.len()),
                join_quote(&implicitly_bad),
            ),
        );
    }
    None
}

/// Follows `policy/check_runAsUser.go` (`runAsUser1_35`): `runAsUser: 0` is
/// forbidden at pod and container level; pods with `hostUsers: false` are exempt.
pub(super) fn run_as_user(spec: &Value) -> Option<Finding> {
    if in_user_namespace(spec) {
        return None;
    }
    let is_root = |sc: &Value| integer(sc, "runAsUser") == Some(0);
    let pod_bad = pod_security_context(spec).is_some_and(is_root);
    let bad_containers: Vec<&str> = containers(spec)
        .filter(|c| security_context(c).is_some_and(is_root))
        .map(name)
        .collect();
    let setters = setters(pod_bad, &bad_containers);
    if setters.is_empty() {
        return None;
    }
    Finding::new(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    )
}

/// Follows `policy/check_seccompProfile_restricted.go` (`seccompProfileRestricted_1_25`):
/// every container needs `RuntimeDefault` or `Localhost`, set on itself or
/// inherited from the pod; Windows pods are exempt. Replaces
/// `seccompProfile_baseline` at the restricted level.
pub(super) fn seccomp_profile_restricted(spec: &Value) -> Option<Finding> {
    if is_windows(spec) {
        return None;
    }
    let mut bad_values = BTreeSet::new();
    let mut pod_bad = false;
    let mut pod_set = false;
    if let Some(profile) = pod_security_context(spec).and_then(|sc| field(sc, "seccompProfile")) {
        if valid_seccomp(profile) {
            pod_set = true;
        } else {
            pod_bad = true;
            bad_values.insert(text(profile, "type"));
        }
    }
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in containers(spec) {
        match security_context(c).and_then(|sc| field(sc, "seccompProfile")) {
            Some(profile) if !valid_seccomp(profile) => {
                explicitly_bad.push(name(c));
                bad_values.insert(text(profile, "type"));
            }
            Some(_) => {}
            None if !pod_set => implicitly_bad.push(name(c)),
            None => {}
        }
    }
    let setters = setters(pod_bad, &explicitly_bad);
    if !setters.is_empty() {
        return Finding::new(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&bad_values)
            ),
        );
    }
    if !implicitly_bad.is_empty() {
        return Finding::new(
            "seccompProfile",
            format!(
                r#"pod or {} {} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#,
                pluralize("container", "containers", implicitly_bad.len()),
                join_quote(&implicitly_bad),
            ),
        );
    }
    None
}
