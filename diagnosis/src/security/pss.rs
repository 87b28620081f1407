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
    /// What breaks it, as the apiserver's admission words it
    /// (`host namespaces (hostNetwork=true)`, `non-default capabilities (container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add)`).
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

/// The Pod Security Standards documentation's name for an upstream check.
fn control_of(id: &str) -> &'static str {
    match id {
        "appArmorProfile" => "AppArmor",
        "capabilities_baseline" | "capabilities_restricted" => "Capabilities",
        "hostNamespaces" => "Host Namespaces",
        "hostPathVolumes" => "HostPath Volumes",
        "hostPorts" => "Host Ports",
        "hostProbesAndHostLifecycle" => "Host Probes / Lifecycle Hooks",
        "privileged" => "Privileged Containers",
        "procMount" | "procMount_restricted" => "/proc Mount Type",
        "seLinuxOptions" => "SELinux",
        "seccompProfile_baseline" | "seccompProfile_restricted" => "Seccomp",
        "sysctls" => "Sysctls",
        "windowsHostProcess" => "HostProcess",
        "allowPrivilegeEscalation" => "Privilege Escalation",
        "restrictedVolumes" => "Volume Types",
        "runAsNonRoot" => "Running as Non-root",
        "runAsUser" => "Running as Non-root user",
        _ => "Pod Security",
    }
}

/// Evaluates a pod spec (a Pod's `spec`, or a workload's `spec.template.spec`) with the checks
/// the apiserver's Pod Security admission runs ([`super::pod_security`]), worded as it words
/// them; `annotations` are the pod template's, for AppArmor's older form, which admission reads
/// from the pod's metadata.
pub fn evaluate(spec: &Value, annotations: &Value) -> Evaluation {
    let mut violations: Vec<Violation> = super::pod_security::failing(spec)
        .into_iter()
        .map(|f| Violation {
            control: control_of(f.id),
            level: if f.restricted {
                Level::Restricted
            } else {
                Level::Baseline
            },
            field: f.text,
        })
        .collect();
    for (key, value) in annotations.as_object().into_iter().flatten() {
        if let Some(c) = key.strip_prefix("container.apparmor.security.beta.kubernetes.io/") {
            let v = value.as_str().unwrap_or("");
            if v != "runtime/default" && !v.starts_with("localhost/") {
                violations.push(Violation {
                    control: "AppArmor",
                    level: Level::Baseline,
                    field: format!(
                        "forbidden AppArmor profile (annotation {key}={v:?}, container {c:?})"
                    ),
                });
            }
        }
    }
    Evaluation { violations }
}

#[cfg(test)]
mod tests;
