//! Memory leak: the container is OOM-killed and its memory grows on its own, whatever the
//! traffic (the residual after regressing memory on request rate has a slope). More memory only
//! buys time: the fix is a stop-gap sized like an under-provisioned container's, with the leak
//! named in the PR, and Data's follow-up on the code is the primary assignment. The proof is the
//! same window as for under-provisioning, which a leak fails at its trend.

use serde_json::Value;
use squad_protocols::llm::Rejection;
use squad_protocols::{Diagnosis, Member, Quantity, RootCause, WorkloadRef};

use super::memory;
use crate::{
    ClusterNeeds, Detection, Facts, Family, FollowupContext, IssueDraft, Proposal, Readings,
    Remedy, RemedyInput, RepoView, Rules, Runbook,
};

pub struct MemoryLeak;

pub const ROOT_CAUSE: &str = "memory_leak";

impl Family for MemoryLeak {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("OOMKilled")
    }

    fn detect(&self, facts: &Facts, readings: &Readings) -> Option<Detection> {
        let m = readings.signals.memory.as_ref()?;
        if !readings.oom || !m.leak_suspected {
            return None;
        }
        Some(Detection::new(
            format!(
                "{} is OOMKilled: memory grows {:.1} MiB/h regardless of traffic (peak {} vs limit {}) — a leak; more memory only buys time",
                facts.container,
                m.trend_mib_per_hour,
                m.peak_24h.round_up_to(Quantity::mebibytes(1)),
                m.limit.map_or("none".into(), |q| q.to_string())
            ),
            0.8,
            &[
                "raise the memory limit as a stop-gap so the service stays up",
                "find and fix the unbounded allocation (heap profile under load)",
            ],
        ))
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Data,
                "find the leak in the handler (primary); profiling steps",
            ),
            (
                Member::Belanna,
                "stop-gap memory increase so the service stays up",
            ),
            (
                Member::Worf,
                "image CVEs, RBAC, NetworkPolicy and pod security of the workload",
            ),
        ]
    }

    fn cluster_needs(&self, _: &Diagnosis, _: &RepoView) -> ClusterNeeds {
        ClusterNeeds {
            hpas: true,
            workload: true,
            secret_keys: false,
        }
    }

    fn proposal(&self, d: &Diagnosis, rules: &Rules<'_>) -> Option<Proposal> {
        memory::proposal(d, rules)
    }

    fn check_proposal(&self, d: &Diagnosis, answer: &Value) -> Result<(), Rejection> {
        memory::check_proposal(d, answer)
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        match &d.signals.memory {
            Some(m) => Remedy::Change(memory::remedy(m, input)),
            None => Remedy::Escalate {
                reason: "the diagnosis has no memory measurements to size a stop-gap from".into(),
            },
        }
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        memory::runbook()
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            "More memory buys time against a leak; the fix is in the code.".into(),
            format!("Profile {workload} under load before raising its limit again."),
        ]
    }

    fn followup(&self, d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        crate::followup::profiling(d, cx, "memory-leak")
    }

    fn code_is_prime_suspect(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::testing::{self, MIB};
    use crate::{Observation, Readings};

    #[test]
    fn memory_that_grows_at_flat_traffic_is_a_leak() {
        let f = testing::oom_leaking();
        let d = MemoryLeak.detect(&f, &Readings::of(&f)).unwrap();
        assert!(
            d.summary
                .contains("memory grows 30.0 MiB/h regardless of traffic"),
            "{}",
            d.summary
        );
        let load = testing::oom_under_load();
        assert!(MemoryLeak.detect(&load, &Readings::of(&load)).is_none());
    }

    #[test]
    fn the_stop_gap_says_it_is_one_and_data_owns_the_code() {
        let d = testing::diagnosis(&testing::oom_leaking());
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        let (s, w, repo) = (
            testing::settings(),
            testing::workload(),
            testing::manifest(),
        );
        let view = crate::ClusterView {
            hpas: Some(Ok(Vec::new())),
            workload: Some(testing::oom_leaking().info),
            secret_keys: None,
        };
        let Remedy::Change(c) = MemoryLeak.remedy(&d, &testing::input(&s, &w, &repo, &view)) else {
            panic!("expected a stop-gap");
        };
        assert!(c.notes.contains("**Stop-gap.**"), "{}", c.notes);
        assert!(
            c.findings
                .iter()
                .any(|f| f.title == "more memory will not hold against a leak")
        );
        assert_eq!(MemoryLeak.routing()[0].0, Member::Data);
        assert!(MemoryLeak.code_is_prime_suspect());
    }

    #[test]
    fn a_leak_fails_verification_at_its_trend() {
        let s = testing::settings();
        let d = testing::diagnosis(&testing::oom_leaking());
        // 30 MiB/h from 800 MiB: past a 1Gi limit within the 24 h projection.
        let obs = Observation {
            window_minutes: 60,
            restarts: 0,
            oom_kills: 0,
            memory: testing::series(|i| (800.0 + 2.5 * (i - 276).max(0) as f64) * MIB)
                .split_off(276),
            limit: Some("1Gi".parse().unwrap()),
            traffic: Vec::new(),
            rollout: None,
        };
        let v = MemoryLeak.verify(&d, &obs, &Rules::of(&s));
        assert!(!v.healthy, "{}", v.detail);
    }
}
