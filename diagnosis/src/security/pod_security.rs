//! Pod Security admission checks (the Pod Security Standards) over a pod spec
//! given as JSON, worded exactly as kube-apiserver's built-in `PodSecurity`
//! admission plugin words its refusals.
//!
//! It serves both the simulated apiserver's admission and Worf's review (`super::pss`).
//!
//! The checks, their order and their wording follow the upstream module
//! `k8s.io/pod-security-admission` (repository `kubernetes/pod-security-admission`,
//! mirrored from `kubernetes/kubernetes` at
//! `staging/src/k8s.io/pod-security-admission`). Each check below names the
//! upstream file it follows.
//!
//! # Policy version
//!
//! The checks are those that the policy version `latest` selects in
//! kube-apiserver v1.36 (upstream tag `v0.36.0`). The `version` argument of
//! [`refusal`] only affects the wording of the message; it does not select older
//! check revisions. Where `latest` differs between apiserver releases, this
//! module follows v1.36:
//!
//! - `hostProbesAndHostLifecycle` exists from v1.34 on.
//! - From v1.35 on, a pod with `hostUsers: false` is exempt from
//!   `runAsNonRoot`, `runAsUser` and the baseline `procMount` check, and the
//!   restricted level replaces baseline `procMount` with `procMount_restricted`
//!   (same wording, no user-namespace exemption).
//! - The safe sysctls are those of v1.32 to v1.36. v1.37 adds
//!   `net.ipv4.tcp_slow_start_after_idle` and `net.ipv4.tcp_notsent_lowat`.
//! - `seLinuxOptions` allows the type `container_engine_t` from v1.31 on.
//! - `restrictedVolumes` allows `image` volumes from v1.33 on; older servers
//!   report them as restricted type `"unknown"`.
//!
//! # Order and joining
//!
//! Upstream (`policy/registry.go`) sorts baseline check IDs and restricted check
//! IDs separately by byte order and evaluates all baseline checks first, then
//! all restricted checks. At the restricted level, a restricted check may
//! replace ("override") a baseline check, which is then skipped. Each failing
//! check contributes `reason` or `reason (detail)`; the pieces are joined with
//! `", "` (`policy/checks.go`, `AggregateCheckResult.ForbiddenDetail`).
//! The refusal is `violates PodSecurity "<level>:<version>": <pieces>` wrapped by
//! `apierrors.NewForbidden` into `pods "<name>" is forbidden: ...`
//! (`admission/admission.go`, `admission/response.go`).
//!
//! # Input and apiserver defaulting
//!
//! `pod_spec` is the object at a pod's `.spec`, in the JSON shape of the
//! `v1` API (camelCase keys). A JSON `null` is treated like an absent field.
//! The apiserver evaluates a pod after defaulting it; this module reproduces
//! the two defaults that change a check's outcome:
//!
//! - with `hostNetwork: true`, every port of a container or init container
//!   whose `hostPort` is unset or 0 gets `hostPort = containerPort`
//!   (`SetDefaults_Pod` in `pkg/apis/core/v1/defaults.go`), so such ports count
//!   as host ports;
//! - a volume with no volume source becomes an `emptyDir` volume
//!   (`SetDefaults_Volume`), so it passes `restrictedVolumes`.
//!
//! # Not checked
//!
//! The parts of checks that read pod metadata annotations are not evaluated,
//! because only the spec is given: the deprecated AppArmor annotations
//! `container.apparmor.security.beta.kubernetes.io/*` (in `appArmorProfile`)
//! and the seccomp alpha annotations (only consulted by policy versions
//! before v1.19). Exemptions configured in the admission configuration
//! (users, namespaces, runtime classes) are outside this module.

use serde_json::Value;

mod baseline;
mod restricted;
mod spec;
#[cfg(test)]
mod tests;

use baseline::*;
use restricted::*;
use spec::go_quote;

/// A Pod Security level as a namespace label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// No restrictions; nothing is ever refused.
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Baseline plus current pod-hardening practice.
    Restricted,
}

impl Level {
    /// Parses a namespace label value: `"privileged"`, `"baseline"` or
    /// `"restricted"`. Any other value, including a different letter case,
    /// gives `None`.
    pub fn parse(label_value: &str) -> Option<Level> {
        match label_value {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    /// The label value that names this level.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// What `level` forbids in the pod spec (the object at a pod's `.spec`), in the apiserver's order and words; empty when allowed.
///
/// Each element is one failing check, written `reason (detail)`, for example
/// `hostPath volumes (volume "data")`.
pub fn violations(level: Level, pod_spec: &Value) -> Vec<String> {
    CHECKS
        .iter()
        .filter(|check| check.applies_at(level))
        .filter_map(|check| (check.run)(pod_spec))
        .map(Finding::render)
        .collect()
}

/// A failing check, evaluated on its own (no level's replacement applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The upstream check ID (`hostNamespaces`, `runAsNonRoot`, `capabilities_restricted`).
    pub id: &'static str,
    /// Whether the check belongs to `restricted` only (else `baseline` has it).
    pub restricted: bool,
    /// `reason (detail)`, as the apiserver words it.
    pub text: String,
}

/// Every check of both levels that the pod spec fails, in the apiserver's order. A baseline
/// check that `restricted` replaces is kept: it says what `baseline` forbids.
pub fn failing(pod_spec: &Value) -> Vec<Failed> {
    CHECKS
        .iter()
        .filter_map(|check| {
            (check.run)(pod_spec).map(|f| Failed {
                id: check.id,
                restricted: check.tier == Tier::Restricted,
                text: f.render(),
            })
        })
        .collect()
}

/// Why the `PodSecurity` plugin refuses the pod, as the apiserver words it after `pods "x" is
/// forbidden: ` — `violates PodSecurity "restricted:latest": a, b, c` — or `None` when `level`
/// allows it. `version` is written as given (`latest`, `v1.N`).
pub fn cause(level: Level, version: &str, pod_spec: &Value) -> Option<String> {
    let found = violations(level, pod_spec);
    (!found.is_empty()).then(|| {
        format!(
            "violates PodSecurity {}: {}",
            go_quote(&format!("{}:{}", level.as_str(), version)),
            found.join(", ")
        )
    })
}

/// The level a check belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    Baseline,
    Restricted,
}

/// One upstream check: its ID, its level, whether a restricted check replaces
/// it at the restricted level, and the function that evaluates it.
struct Check {
    /// The upstream check ID.
    id: &'static str,
    tier: Tier,
    replaced_in_restricted: bool,
    run: fn(&Value) -> Option<Finding>,
}

impl Check {
    fn applies_at(&self, level: Level) -> bool {
        match (self.tier, level) {
            (_, Level::Privileged) => false,
            (Tier::Baseline, Level::Baseline) | (Tier::Restricted, Level::Restricted) => true,
            (Tier::Baseline, Level::Restricted) => !self.replaced_in_restricted,
            (Tier::Restricted, Level::Baseline) => false,
        }
    }
}

/// All checks in evaluation order: baseline IDs in byte order, then restricted
/// IDs in byte order (upstream `policy/registry.go`, `populate`).
const CHECKS: &[Check] = &[
    Check {
        id: "appArmorProfile",
        tier: Tier::Baseline,
        replaced_in_restricted: false,
        run: app_armor_profile,
    },
    Check {
        id: "capabilities_baseline",
        tier: Tier::Baseline,
        replaced_in_restricted: true,
        run: capabilities_baseline,
    },
    Check {
        id: "hostNamespaces",
        tier: Tier::Baseline,
        replaced_in_restricted: false,
        run: host_namespaces,
    },
    Check {
        id: "hostPathVolumes",
        tier: Tier::Baseline,
        replaced_in_restricted: true,
        run: host_path_volumes,
    },
    Check {
        id: "hostPorts",
        tier: Tier::Baseline,
        replaced_in_restricted: false,
        run: host_ports,
    },
    Check {
        id: "hostProbesAndHostLifecycle",
        tier: Tier::Baseline,
        replaced_in_restricted: false,
        run: host_probes_and_host_lifecycle,
    },
    Check {
        id: "privileged",
        tier: Tier::Baseline,
        replaced_in_restricted: false,
        run: privileged,
    },
    Check {
        id: "procMount",
        tier: Tier::Baseline,
        replaced_in_restricted: true,
        run: proc_mount_baseline,
    },
    Check {
        id: "seLinuxOptions",
        tier: Tier::Baseline,
        replaced_in_restricted: false,
        run: se_linux_options,
    },
    Check {
        id: "seccompProfile_baseline",
        tier: Tier::Baseline,
        replaced_in_restricted: true,
        run: seccomp_profile_baseline,
    },
    Check {
        id: "sysctls",
        tier: Tier::Baseline,
        replaced_in_restricted: false,
        run: sysctls,
    },
    Check {
        id: "windowsHostProcess",
        tier: Tier::Baseline,
        replaced_in_restricted: false,
        run: windows_host_process,
    },
    Check {
        id: "allowPrivilegeEscalation",
        tier: Tier::Restricted,
        replaced_in_restricted: false,
        run: allow_privilege_escalation,
    },
    Check {
        id: "capabilities_restricted",
        tier: Tier::Restricted,
        replaced_in_restricted: false,
        run: capabilities_restricted,
    },
    Check {
        id: "procMount_restricted",
        tier: Tier::Restricted,
        replaced_in_restricted: false,
        run: proc_mount_restricted,
    },
    Check {
        id: "restrictedVolumes",
        tier: Tier::Restricted,
        replaced_in_restricted: false,
        run: restricted_volumes,
    },
    Check {
        id: "runAsNonRoot",
        tier: Tier::Restricted,
        replaced_in_restricted: false,
        run: run_as_non_root,
    },
    Check {
        id: "runAsUser",
        tier: Tier::Restricted,
        replaced_in_restricted: false,
        run: run_as_user,
    },
    Check {
        id: "seccompProfile_restricted",
        tier: Tier::Restricted,
        replaced_in_restricted: false,
        run: seccomp_profile_restricted,
    },
];

/// A failing check: upstream `CheckResult.ForbiddenReason` and
/// `CheckResult.ForbiddenDetail`.
struct Finding {
    reason: String,
    detail: String,
}

impl Finding {
    fn new(reason: impl Into<String>, detail: impl Into<String>) -> Option<Finding> {
        Some(Finding {
            reason: reason.into(),
            detail: detail.into(),
        })
    }

    /// `reason (detail)`, or `reason` alone when the detail is empty.
    fn render(self) -> String {
        if self.detail.is_empty() {
            self.reason
        } else {
            format!("{} ({})", self.reason, self.detail)
        }
    }
}
