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
