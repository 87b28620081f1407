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
        let limit = m.limit.map_or("none".into(), |q| q.to_string());
        let peak = m.peak_24h.round_up_to(Quantity::mebibytes(1));
        let reached = if m.demand_estimate.is_some() {
            format!("its {limit} limit holds the working set while the demand reaches about {peak}")
        } else {
            format!("working set peaked at {peak} against a {limit} limit")
        };
        Some(Detection::new(
            format!(
                "{} is OOMKilled: {reached}{traffic_note}; memory follows load, no leak pattern{deploy_note}",
                facts.container,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::cluster::HpaInfo;

    use super::*;
    use crate::testing::{self, MIB};
    use crate::{ClusterView, Decision, Edit, Observation, Readings};

    fn detected() -> Diagnosis {
        testing::diagnosis(&testing::oom_under_load())
    }

    fn cluster(hpas: Result<Vec<HpaInfo>, String>) -> ClusterView {
        ClusterView {
            hpas: Some(hpas),
            workload: Some(testing::oom_under_load().info),
            secret_keys: None,
        }
    }

    #[test]
    fn oom_kills_that_follow_traffic_are_under_provisioning_not_a_leak() {
        let f = testing::oom_under_load();
        let d = MemoryUnderProvisioned
            .detect(&f, &Readings::of(&f))
            .unwrap();
        assert!(d.summary.starts_with("api is OOMKilled: its 600Mi limit holds the working set while the demand reaches about 750Mi after +296% traffic on /cart"), "{}", d.summary);
        assert_eq!(d.confidence, 0.9);
        let leak = testing::oom_leaking();
        assert!(
            MemoryUnderProvisioned
                .detect(&leak, &Readings::of(&leak))
                .is_none()
        );
        let crash = testing::crashing(&["boom"]);
        assert!(
            MemoryUnderProvisioned
                .detect(&crash, &Readings::of(&crash))
                .is_none()
        );
    }

    #[test]
    fn the_remedy_sizes_both_values_and_adds_an_hpa_listed_in_the_kustomization() {
        let (s, w, repo) = (
            testing::settings(),
            testing::workload(),
            testing::manifest(),
        );
        let view = cluster(Ok(Vec::new()));
        let Remedy::Change(c) =
            MemoryUnderProvisioned.remedy(&detected(), &testing::input(&s, &w, &repo, &view))
        else {
            panic!("expected a change");
        };
        // Peak 750Mi × 120% = 900Mi, rounded up to 256Mi: 1Gi; median 300Mi rounded up: 512Mi.
        let values: Vec<String> = c
            .edits
            .iter()
            .filter_map(|e| match e {
                Edit::SetContainerResource { section, value, .. } => {
                    Some(format!("{section}={value}"))
                }
                _ => None,
            })
            .collect();
        assert_eq!(values, ["limits=1Gi", "requests=512Mi"]);
        assert!(
            matches!(&c.edits[2], Edit::AddFile { path, content } if path == "apps/cart/hpa.yaml" && content.contains("minReplicas: 2") && content.contains("maxReplicas: 6"))
        );
        assert!(
            matches!(&c.edits[3], Edit::AddKustomizeResource { after, .. } if after == "apps/cart/deployment.yaml")
        );
        assert_eq!(c.branch_word, "memory");
    }

    #[test]
    fn an_existing_or_unreadable_hpa_list_adds_no_hpa() {
        let (s, w, repo) = (
            testing::settings(),
            testing::workload(),
            testing::manifest(),
        );
        let existing = cluster(Ok(vec![HpaInfo {
            name: "cart".into(),
            target: "Deployment/cart".into(),
            min_replicas: 2,
            max_replicas: 4,
            metrics: vec!["cpu".into()],
            current_replicas: 2,
            desired_replicas: 2,
            current_metrics: Vec::new(),
            conditions: Vec::new(),
            last_scale_time: None,
        }]));
        let forbidden = cluster(Err("forbidden".into()));
        for (view, note) in [
            (existing, "An HPA already targets"),
            (forbidden, "could not be read (forbidden)"),
        ] {
            let Remedy::Change(c) =
                MemoryUnderProvisioned.remedy(&detected(), &testing::input(&s, &w, &repo, &view))
            else {
                panic!("expected a change");
            };
            assert_eq!(c.edits.len(), 2, "{:?}", c.edits);
            assert!(c.notes.contains(note), "{}", c.notes);
        }
    }

    #[test]
    fn a_models_checked_plan_replaces_the_rule_and_an_unsound_one_does_not() {
        let (s, w, repo) = (
            testing::settings(),
            testing::workload(),
            testing::manifest(),
        );
        let view = cluster(Ok(Vec::new()));
        let d = detected();
        let plan = |limit: &str| serde_json::json!({"limit": limit, "request": "512Mi", "add_hpa": false, "rationale": "sized from the 24 h peak with margin"});
        assert!(
            MemoryUnderProvisioned
                .check_proposal(&d, &plan("2Gi"))
                .is_ok()
        );
        assert!(
            MemoryUnderProvisioned
                .check_proposal(&d, &plan("700Mi"))
                .is_err()
        );
        let good = plan("2Gi");
        let mut input = testing::input(&s, &w, &repo, &view);
        input.decision = Some(Decision {
            answer: &good,
            model: "local/m",
        });
        let Remedy::Change(c) = MemoryUnderProvisioned.remedy(&d, &input) else {
            panic!("expected a change");
        };
        assert!(matches!(&c.edits[0], Edit::SetContainerResource { value, .. } if value == "2Gi"));
        assert!(
            c.notes.contains("No HPA added: sizing alone")
                && c.notes.contains("(decided with local/m)")
        );
        let bad = plan("700Mi");
        input.decision = Some(Decision {
            answer: &bad,
            model: "local/m",
        });
        let Remedy::Change(c) = MemoryUnderProvisioned.remedy(&d, &input) else {
            panic!("expected a change");
        };
        assert!(matches!(&c.edits[0], Edit::SetContainerResource { value, .. } if value == "1Gi"));
    }

    #[test]
    fn the_fix_holds_when_the_window_is_quiet_and_memory_stays_under_the_new_limit() {
        let s = testing::settings();
        let obs = |restarts: u32, mib: f64| Observation {
            window_minutes: 60,
            restarts,
            oom_kills: 0,
            memory: testing::series(|_| mib * MIB).split_off(276),
            limit: Some("1Gi".parse().unwrap()),
            traffic: Vec::new(),
            rollout: None,
            throttled: Vec::new(),
            volumes: Vec::new(),
            services: Vec::new(),
            hpas: Vec::new(),
            claims: Vec::new(),
            warnings: Vec::new(),
        };
        let d = detected();
        assert!(
            MemoryUnderProvisioned
                .verify(&d, &obs(0, 750.0), &Rules::of(&s))
                .healthy
        );
        assert!(
            !MemoryUnderProvisioned
                .verify(&d, &obs(2, 750.0), &Rules::of(&s))
                .healthy
        );
    }
}
