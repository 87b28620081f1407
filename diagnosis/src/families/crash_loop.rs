//! Crash loop: the container keeps exiting and its logs do not name a cause the other families
//! recognise. There is no manifest fix to propose from that alone: the crew reads the logs and the
//! last rollout, and a human decides. It is last in the registry: any family that explains the
//! crash comes first. An OOM kill with no memory history to read (no Prometheus) lands here
//! too, said as such: the memory families need that history to tell load from a leak.

use squad_protocols::{Diagnosis, Member, RootCause, WorkloadRef};

use crate::{Detection, Facts, Family, Readings, Remedy, RemedyInput, RepoNeeds, Runbook};

pub struct CrashLoop;

pub const ROOT_CAUSE: &str = "crash_loop";

/// Who a crash with no recognised cause (or no failing signal at all) is routed to.
pub(crate) const ROUTING: &[(Member, &str)] = &[
    (
        Member::Belanna,
        "compare the last rollout with the previous one; probes and resources",
    ),
    (
        Member::Worf,
        "image CVEs, RBAC, NetworkPolicy and pod security of the workload",
    ),
    (
        Member::Data,
        "read the crash logs and the code path at start-up",
    ),
];

/// The runbook for containers that exit and restart.
pub(crate) fn runbook() -> Runbook {
    Runbook {
        name: "crashloopbackoff".into(),
        meaning: "A container exits repeatedly and Kubernetes restarts it with growing back-off (CrashLoopBackOff).".into(),
        checks: "1. `kubectl logs <pod> -n <ns> --previous` — the last lines before the exit.\n2. `kubectl describe pod` — exit code and reason.\n3. `kubectl rollout history` and the GitOps diff of the last deploy: what changed in env, config, image?".into(),
        fixes: "- **Missing configuration**: restore the variable from the previous revision of the manifest (or the Secret/ConfigMap that holds it) through a PR.\n- **Bad image**: roll back the image tag through a PR.".into(),
    }
}

/// What the record keeps when nothing more specific is known.
pub(crate) fn generic_lessons(workload: &WorkloadRef) -> Vec<String> {
    vec![format!(
        "Record what was tried on {workload} and what the cluster showed."
    )]
}

impl Family for CrashLoop {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("CrashLoopBackOff")
    }

    fn detect(&self, facts: &Facts, readings: &Readings) -> Option<Detection> {
        // OOM-killed, with no memory history to tell load from a leak (the memory families
        // need it): say so, rather than that nothing fails.
        if readings.oom && readings.signals.memory.is_none() {
            let limit = facts
                .info
                .container(&facts.container)
                .and_then(|c| c.limits.get("memory"))
                .map_or("no memory limit (the node's memory)".to_owned(), |q| {
                    format!("its {q} memory limit")
                });
            let restarts = facts.status().map_or(0, |s| s.restart_count);
            return Some(Detection::new(
                format!(
                    "{} is OOMKilled at {limit} (exit 137, {restarts} restarts); its memory history could not be read, so whether load or a leak drives it is open",
                    facts.container
                ),
                0.5,
                &[
                    "read the container's working set over the last day (`container_memory_working_set_bytes`) against its limit and its traffic, then size the limit or chase the leak",
                    "give squad a Prometheus (`[prometheus] url` in squad.toml, or --prometheus) so the memory families can decide",
                ],
            ));
        }
        let cr = readings.signals.crash.as_ref()?;
        Some(Detection::new(
            format!(
                "{} crash-loops (reason {}, exit {}); {}",
                facts.container,
                cr.reason,
                cr.exit_code,
                if facts.logs_unreadable {
                    "its logs could not be read (see the note), so the cause is open"
                } else {
                    "the logs do not name a cause"
                }
            ),
            0.4,
            &["inspect the previous container's logs and the last rollout's changes"],
        ))
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        ROUTING
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds::NONE
    }

    fn remedy(&self, _d: &Diagnosis, _input: &RemedyInput<'_>) -> Remedy {
        Remedy::Nothing
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        runbook()
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        generic_lessons(workload)
    }
}

#[cfg(test)]
mod tests {

    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn an_oom_kill_without_memory_history_is_said_as_such() {
        let mut f = crate::testing::crashing(&[]);
        f.memory = Default::default();
        let p = f.pod.as_mut().unwrap();
        let t = p.containers[0].last_termination.as_mut().unwrap();
        t.reason = "OOMKilled".into();
        t.exit_code = 137;
        let d = crate::testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), super::ROOT_CAUSE, "{}", d.summary);
        assert!(d.summary.contains("is OOMKilled at its"), "{}", d.summary);
        assert!(
            d.summary.contains("memory history could not be read"),
            "{}",
            d.summary
        );
    }
    use crate::testing;

    #[test]
    fn a_crash_no_family_explains_is_a_crash_loop_with_no_manifest_fix() {
        let f = testing::crashing(&["panic: assignment to entry in nil map"]);
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "api crash-loops (reason Error, exit 1); the logs do not name a cause"
        );
        assert_eq!(d.reason.as_deref(), Some("CrashLoopBackOff"));
        let (s, w, repo) = (
            testing::settings(),
            testing::workload(),
            crate::RepoView::default(),
        );
        let view = crate::ClusterView::default();
        assert_eq!(
            CrashLoop.remedy(&d, &testing::input(&s, &w, &repo, &view)),
            Remedy::Nothing
        );
        assert_eq!(CrashLoop.repo_needs(), RepoNeeds::NONE);
    }

    #[test]
    fn unreadable_logs_leave_the_cause_open_and_say_so() {
        let mut f = testing::crashing(&[]);
        f.logs_unreadable = true;
        f.notes
            .push("container logs not readable: forbidden".into());
        let d = testing::diagnosis(&f);
        assert!(
            d.summary
                .ends_with("its logs could not be read (see the note), so the cause is open")
        );
        assert_eq!(
            d.evidence.last().unwrap().observation,
            "container logs not readable: forbidden"
        );
    }
}
