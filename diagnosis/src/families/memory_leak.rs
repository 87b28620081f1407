//! Memory leak: the container is OOM-killed and its memory grows on its own, whatever the
//! traffic (the residual after regressing memory on request rate has a slope). More memory only
//! buys time: the fix is a stop-gap sized to last `[remediation.memory] leak_stopgap_hours` at the
//! measured growth, no HPA (new pods leak alike), with the leak named in the PR, and Data's
//! follow-up on the code is the primary assignment. It is replayed over those hours, not a day.
//! The proof is the same window as for under-provisioning, which a leak fails at its trend: the
//! incident stays with a human until the code is fixed.

use squad_protocols::{Diagnosis, Member, Quantity, RootCause, WorkloadRef};

use super::memory;
use squad_protocols::Verification;

use crate::{
    ClusterNeeds, Detection, Facts, Family, FollowupContext, IssueDraft, Observation, Readings,
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

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        match &d.signals.memory {
            Some(m) => Remedy::Change(memory::stopgap(m, input)),
            None => Remedy::Escalate {
                reason: "the diagnosis has no memory measurements to size a stop-gap from".into(),
            },
        }
    }

    /// A stop-gap that holds does not end a leak: the incident stays with a human until the code
    /// is fixed, and the verdict says how the stop-gap is doing.
    fn verify(&self, d: &Diagnosis, obs: &Observation, rules: &Rules<'_>) -> Verification {
        let m = d.signals.memory.as_ref();
        let mut v = crate::verdict::ready_and_stable(
            obs,
            rules.verification.projection_hours,
            m.map_or(0.0, |m| m.mib_per_rps),
        );
        if v.healthy {
            v.healthy = false;
            v.detail = format!(
                "the stop-gap holds so far ({}), but a leak is not over until the code is fixed: memory grew {:.1} MiB/h whatever the traffic (Data's follow-up issue has the suspects)",
                v.detail,
                m.map_or(0.0, |m| m.trend_mib_per_hour)
            );
        }
        v
    }

    fn replay_hours(&self, _d: &Diagnosis, rules: &Rules<'_>) -> u64 {
        match rules.remediation.replay_hours {
            0 => 0,
            h => h.min(u64::from(
                rules.remediation.memory.leak_stopgap_hours.max(1),
            )),
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
        // 30 MiB/h × 12 h on top of today's limit, rounded up; no HPA.
        assert!(c.notes.contains("stop-gap against a leak"), "{}", c.notes);
        assert!(c.notes.contains("+ 30.0 MiB/h × 12 h"), "{}", c.notes);
        assert!(
            c.title.contains("12 h against a 30 MiB/h leak"),
            "{}",
            c.title
        );
        assert!(
            c.edits
                .iter()
                .all(|e| !matches!(e, crate::Edit::AddFile { .. }))
        );
        assert!(
            c.findings
                .iter()
                .any(|f| f.title == "more memory will not hold against a leak")
        );
        assert_eq!(MemoryLeak.replay_hours(&d, &Rules::of(&s)), 12);
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
            throttled: Vec::new(),
            volumes: Vec::new(),
            services: Vec::new(),
            hpas: Vec::new(),
            claims: Vec::new(),
            warnings: Vec::new(),
        };
        let v = MemoryLeak.verify(&d, &obs, &Rules::of(&s));
        assert!(!v.healthy, "{}", v.detail);
        // A stop-gap that holds the window still leaves the leak to a human.
        let flat = Observation {
            memory: testing::series(|_| 400.0 * MIB).split_off(276),
            limit: Some("2Gi".parse().unwrap()),
            ..obs
        };
        let v = MemoryLeak.verify(&d, &flat, &Rules::of(&s));
        assert!(
            !v.healthy && v.detail.starts_with("the stop-gap holds so far"),
            "{}",
            v.detail
        );
    }
}
