//! The registry: every failure family squad knows, in one list.

pub mod admission_refused;
pub mod bad_start;
pub mod broken_config_reference;
pub mod container_runtime;
pub mod cpu_throttling;
pub mod crash_loop;
pub mod hpa_limited;
pub mod image_pull;
pub mod job_failed;
pub mod liveness_probe;
pub mod memory;
pub mod memory_leak;
pub mod memory_under_provisioned;
pub mod missing_configuration;
pub mod network_policy_blocked;
pub mod node_not_ready;
pub mod node_pressure;
pub mod pvc_pending;
pub mod quota_or_limit_range;
pub mod rbac_denied;
pub mod readiness_probe;
pub mod rollout_stuck;
pub mod scheduling;
pub mod service_without_endpoints;
pub mod unknown;
pub mod unschedulable_capacity;
pub mod unschedulable_constraints;
pub mod volume_attach;
pub mod volume_full;

use squad_protocols::RootCause;

use crate::facts::Lookup;
use crate::{Detection, Facts, Family, Readings};

/// Every family the native analyzers detect, most specific first: the first whose `detect`
/// fires names the root cause (a crash with no recognised cause is last).
pub static ALL: &[&dyn Family] = &[
    &node_not_ready::NodeNotReady,
    &node_pressure::NodePressure,
    &quota_or_limit_range::QuotaOrLimitRange,
    &admission_refused::AdmissionRefused,
    &pvc_pending::PvcPending,
    &volume_full::VolumeFull,
    &unschedulable_constraints::UnschedulableConstraints,
    &unschedulable_capacity::UnschedulableCapacity,
    &image_pull::ImagePull,
    &broken_config_reference::BrokenConfigReference,
    &volume_attach::VolumeAttach,
    &container_runtime::ContainerRuntime,
    &rollout_stuck::RolloutStuck,
    &readiness_probe::ReadinessProbe,
    &bad_start::BadStart,
    &liveness_probe::LivenessProbe,
    &memory_under_provisioned::MemoryUnderProvisioned,
    &memory_leak::MemoryLeak,
    &rbac_denied::RbacDenied,
    &network_policy_blocked::NetworkPolicyBlocked,
    &service_without_endpoints::ServiceWithoutEndpoints,
    &missing_configuration::MissingConfiguration,
    &hpa_limited::HpaLimited,
    &cpu_throttling::CpuThrottling,
    &job_failed::JobFailed,
    &crash_loop::CrashLoop,
];

/// The family of a root cause; [`unknown::Unknown`] for one no family names.
pub fn of(root: &RootCause) -> &'static dyn Family {
    ALL.iter()
        .copied()
        .find(|f| f.root_cause() == *root)
        .unwrap_or(&unknown::Unknown)
}

/// The root cause a name stands for, when a family (or `unknown`) has it.
pub fn root_cause(name: &str) -> Option<RootCause> {
    ALL.iter()
        .map(|f| f.root_cause())
        .chain([RootCause::unknown()])
        .find(|r| r.as_str() == name)
}

/// Every root cause's name, the families' and `unknown`.
pub fn names() -> Vec<String> {
    ALL.iter()
        .map(|f| f.root_cause().as_str().to_owned())
        .chain([RootCause::unknown().as_str().to_owned()])
        .collect()
}

/// What the families need read beyond the base facts, in the registry's order.
pub fn lookups(facts: &Facts) -> Vec<Lookup> {
    ALL.iter().flat_map(|f| f.lookups(facts)).collect()
}

/// The first family that detects a failure in the facts, or `unknown` with its fallback.
pub fn detect(facts: &Facts, readings: &Readings) -> (&'static dyn Family, Detection) {
    ALL.iter()
        .find_map(|f| f.detect(facts, readings).map(|d| (*f, d)))
        .unwrap_or_else(|| (&unknown::Unknown, unknown::Unknown::fallback(facts)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn every_family_names_a_distinct_root_cause_that_round_trips() {
        let names = names();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for n in &names {
            assert_eq!(
                root_cause(n).map(|r| r.as_str().to_owned()).as_deref(),
                Some(n.as_str())
            );
            assert_eq!(of(&RootCause::new(n.clone())).root_cause().as_str(), n);
        }
        assert!(root_cause("disk_full").is_none());
        assert_eq!(
            of(&RootCause::new("disk_full")).root_cause(),
            RootCause::unknown()
        );
    }

    #[test]
    fn the_first_family_that_detects_names_the_root_cause() {
        // A crash whose logs name a variable is missing configuration, not a crash loop.
        let f = testing::crashing(&[
            "level=fatal msg=\"missing required environment variable\" var=DB_DSN",
        ]);
        assert_eq!(
            detect(&f, &crate::Readings::of(&f)).0.root_cause().as_str(),
            missing_configuration::ROOT_CAUSE
        );
        let f = testing::oom_under_load();
        assert_eq!(
            detect(&f, &crate::Readings::of(&f)).0.root_cause().as_str(),
            memory_under_provisioned::ROOT_CAUSE
        );
    }

    #[test]
    fn families_ask_for_what_their_detectors_read() {
        // A plain crash: nothing beyond the base facts.
        let f = testing::crashing(&["panic: nil map"]);
        assert!(lookups(&f).is_empty());
        // A refusal by RBAC, a timed-out lookup and a refused connection in the logs, and a
        // mounted claim: each family asks for its own facts.
        let mut f = testing::crashing(&[
            "pods is forbidden: User \"system:serviceaccount:shop:cart\" cannot list resource \"pods\" in API group \"\" in the namespace \"shop\"",
            "dial tcp: lookup db on 10.96.0.10:53: read udp 10.244.1.7:41234->10.96.0.10:53: i/o timeout",
            "dial tcp 10.96.4.2:80: connect: connection refused",
        ]);
        f.workload.namespace = "shop".into();
        f.info.claims = vec!["data".into()];
        assert_eq!(
            lookups(&f),
            [
                Lookup::Claims,
                Lookup::Claims,
                Lookup::Rbac("cart".into()),
                Lookup::NetworkPolicies,
                Lookup::Services,
            ]
        );
    }
}
