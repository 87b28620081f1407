//! Memory under-provisioned: the container is OOM-killed because its load needs more memory than
//! its limit, and memory follows that load (no growth of its own). The fix sizes memory from the
//! measured peak by the team's rule and adds an HPA on memory; the proof is a window without
//! restarts or OOM kills, with memory at its trend still under the new limit a day ahead.

use serde_json::Value;
use squad_protocols::llm::Rejection;
use squad_protocols::{Diagnosis, Member, Quantity, RootCause, WorkloadRef};

use super::memory;
use crate::{
    ClusterNeeds, Detection, Facts, Family, Proposal, Readings, Remedy, RemedyInput, RepoView,
    Rules, Runbook,
};

pub struct MemoryUnderProvisioned;

pub const ROOT_CAUSE: &str = "memory_under_provisioned";

impl Family for MemoryUnderProvisioned {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("OOMKilled")
    }

    fn detect(&self, facts: &Facts, readings: &Readings) -> Option<Detection> {
        let m = readings.signals.memory.as_ref()?;
        if !readings.oom || m.leak_suspected {
            return None;
        }
        let traffic = readings.signals.traffic.as_ref();
        let traffic_note = traffic
            .filter(|t| t.change_pct > 50.0)
            .map_or(String::new(), |t| {
                format!(" after {:+.0}% traffic on {}", t.change_pct, t.route)
            });
        let deploy_note = readings
            .signals
            .last_deploy
            .as_ref()
            .filter(|d| !d.resources_changed)
            .map_or(String::new(), |d| {
                format!(
                    "; last deploy {} h ago did not change resources",
                    d.age_hours
                )
            });
        Some(Detection::new(
            format!(
                "{} is OOMKilled: working set peaked at {} against a {} limit{traffic_note}; memory follows load, no leak pattern{deploy_note}",
                facts.container,
                m.peak_24h.round_up_to(Quantity::mebibytes(1)),
                m.limit.map_or("none".into(), |q| q.to_string()),
            ),
            if traffic.is_some() { 0.9 } else { 0.75 },
            &[
                "raise the memory limit to the observed peak plus headroom, and the request to typical usage",
                "add an HPA so load spreads over more replicas",
                "alert on memory at 80% of the limit",
            ],
        ))
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "size memory from the observed peak and add an HPA (remediation PR)",
            ),
            (
                Member::Worf,
                "image CVEs, RBAC, NetworkPolicy and pod security of the workload",
            ),
            (
                Member::Data,
                "confirm the handler has no unbounded allocation; profiling steps",
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
                reason: "the diagnosis has no memory measurements to size from".into(),
            },
        }
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        memory::runbook()
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Size {workload}'s memory from the measured 24 h peak plus headroom, and revisit it when traffic grows."
            ),
            "Alert on memory above 80% of the limit, before the kernel kills the container.".into(),
        ]
    }
}
