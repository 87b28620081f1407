//! Jobs: a workload of kind `Job` (a migration or a backfill the GitOps repo declares). Each
//! commit that changes its manifest replaces it (as a GitOps tool must: a Job's template is
//! immutable), and the Job controller runs it: one pod at a time (`restartPolicy: Never`),
//! each attempt's container exiting at the app's first failure (the same causes a Deployment's
//! pods die of: a command the image lacks, a flag, a missing variable, a refusal by RBAC, a
//! dependency out of reach, the memory limit) or completing after `[app] run_seconds`. A failed
//! attempt is followed by a new pod after the controller's back-off (10 s doubling, at most
//! 6 min); past `backoffLimit` failures (6 unless set) the Job fails with
//! `BackoffLimitExceeded`, its failed pods kept. Past `activeDeadlineSeconds` it fails with
//! `DeadlineExceeded`, and the controller deletes the pod still running.

use chrono::{DateTime, Utc};
use squad_protocols::cluster::{ClusterEvent, ContainerStatus, PodInfo, Termination};

use super::metrics::labels;
use super::{Desired, Placement, Rollout, STEP_SECONDS, SimCluster, secs};
use crate::series::{Labels, SeriesKind};

/// How an attempt's container ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum End {
    /// It exited (0: completed).
    Exited(Termination),
    /// The Job controller deleted its pod at the Job's deadline, the container still running.
    Deleted(DateTime<Utc>),
}

/// One pod of the Job.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Attempt {
    pub pod: String,
    pub start: DateTime<Utc>,
    pub end: Option<End>,
}

/// How the Job ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Outcome {
    Complete(DateTime<Utc>),
    Failed {
        at: DateTime<Utc>,
        reason: &'static str,
        message: &'static str,
    },
}

/// The Job's run up to some time.
#[derive(Debug, Clone, Default)]
pub(super) struct JobRun {
    pub attempts: Vec<Attempt>,
    pub outcome: Option<Outcome>,
}

impl JobRun {
    /// The attempts whose pods still exist.
    pub(super) fn pods(&self) -> impl Iterator<Item = &Attempt> {
        self.attempts
            .iter()
            .filter(|a| !matches!(a.end, Some(End::Deleted(_))))
    }

    pub(super) fn failed(&self) -> usize {
        self.attempts
            .iter()
            .filter(|a| matches!(&a.end, Some(End::Exited(t)) if t.exit_code != 0))
            .count()
    }

    /// `status.failed`: the pods that failed, and (as the 1.20 Job controller counts them) the
    /// pods it deleted when the Job failed.
    pub(super) fn failed_in_status(&self) -> usize {
        self.failed()
            + self
                .attempts
                .iter()
                .filter(|a| matches!(a.end, Some(End::Deleted(_))))
                .count()
    }

    pub(super) fn active(&self) -> usize {
        self.attempts.iter().filter(|a| a.end.is_none()).count()
    }
}

/// The Job controller's back-off before the pod after `n` failures.
fn backoff(n: usize) -> i64 {
    (10i64 << n.saturating_sub(1).min(6)).min(360)
}

pub(super) const BACKOFF_LIMIT_EXCEEDED: &str = "Job has reached the specified backoff limit";
pub(super) const DEADLINE_EXCEEDED: &str = "Job was active longer than specified deadline";

impl SimCluster {
    /// Whether the workload is a Job.
    pub(super) fn is_job(&self) -> bool {
        self.scenario.workload.kind == "Job"
    }

    /// The pods a Job rollout may create: the scenario's names for the live one, then more.
    pub(super) fn job_pods(&self, r: &Rollout, given: &[String]) -> Vec<String> {
        let limit = r.object["spec"]["backoffLimit"].as_u64().unwrap_or(6) as usize;
        let mut pods = given.to_vec();
        let mut n = 0;
        while pods.len() < limit + 1 {
            let name = format!(
                "{}-{}",
                r.workload.name,
                super::short_hash(&format!("{}{}{n}", r.revision, r.at), 5)
            );
            n += 1;
            if !pods.contains(&name) {
                pods.push(name);
            }
        }
        pods
    }

    /// How the container of an attempt that starts at `start` ends, if it fails: the app's
    /// first failure, as a Deployment's container would meet it.
    fn job_failure(
        &self,
        d: &Desired,
        r: &Rollout,
        start: DateTime<Utc>,
        run: i64,
    ) -> Option<Termination> {
        let c = self.container_spec(r)?;
        let error = |after: i64, code: i32| Termination {
            reason: "Error".into(),
            exit_code: code,
            finished_at: start + secs(after),
        };
        if self.missing_executable(c).is_some() {
            return Some(Termination {
                reason: "StartError".into(),
                exit_code: 128,
                finished_at: start,
            });
        }
        if let Some((_, code)) = self.bad_flag_of(c) {
            return Some(error(1, code));
        }
        if self
            .missing_env(c)
            .or_else(|| self.forbidden(d, r))
            .is_some()
        {
            return Some(error(2, 1));
        }
        if let Some((_, how)) = self.unreachable(d, r, start) {
            let wait = if how.at_once() {
                1
            } else {
                i64::from(self.app(r).connect_timeout_seconds.max(1))
            };
            return Some(error(wait, 1));
        }
        let limit = c
            .limits
            .get("memory")
            .map_or(f64::INFINITY, |q| q.bytes() as f64);
        let mut t = 0;
        while t <= run {
            if self.demand(d, r, start + secs(t), start) > limit {
                return Some(Termination {
                    reason: "OOMKilled".into(),
                    exit_code: 137,
                    finished_at: start + secs(t),
                });
            }
            t += STEP_SECONDS;
        }
        None
    }

    /// The Job rollout `r`'s run up to `now`.
    pub(super) fn job_run(&self, d: &Desired, r: &Rollout, now: DateTime<Utc>) -> JobRun {
        let spec = &r.object["spec"];
        let limit = spec["backoffLimit"].as_u64().unwrap_or(6) as usize;
        let deadline = spec["activeDeadlineSeconds"]
            .as_i64()
            .map(|s| r.at + secs(s));
        let run = self.app(r).run_seconds.ceil() as i64;
        let mut job = JobRun::default();
        let mut start = r.at;
        for pod in &r.pods {
            if start > now {
                break;
            }
            if let Some(dl) = deadline.filter(|dl| *dl <= start) {
                if dl <= now {
                    job.outcome = Some(Outcome::Failed {
                        at: dl,
                        reason: "DeadlineExceeded",
                        message: DEADLINE_EXCEEDED,
                    });
                }
                break;
            }
            let failure = self.job_failure(d, r, start, run);
            let ends = failure
                .as_ref()
                .map_or(start + secs(run), |f| f.finished_at);
            let mut attempt = Attempt {
                pod: pod.clone(),
                start,
                end: None,
            };
            if let Some(dl) = deadline.filter(|dl| *dl < ends) {
                if dl <= now {
                    attempt.end = Some(End::Deleted(dl));
                    job.outcome = Some(Outcome::Failed {
                        at: dl,
                        reason: "DeadlineExceeded",
                        message: DEADLINE_EXCEEDED,
                    });
                }
                job.attempts.push(attempt);
                break;
            }
            if ends > now {
                job.attempts.push(attempt);
                break;
            }
            match failure {
                None => {
                    attempt.end = Some(End::Exited(Termination {
                        reason: "Completed".into(),
                        exit_code: 0,
                        finished_at: ends,
                    }));
                    job.attempts.push(attempt);
                    job.outcome = Some(Outcome::Complete(ends));
                    break;
                }
                Some(f) => {
                    attempt.end = Some(End::Exited(f));
                    job.attempts.push(attempt);
                    let failed = job.failed();
                    if failed > limit {
                        job.outcome = Some(Outcome::Failed {
                            at: ends,
                            reason: "BackoffLimitExceeded",
                            message: BACKOFF_LIMIT_EXCEEDED,
                        });
                        break;
                    }
                    start = ends + secs(backoff(failed));
                }
            }
        }
        job
    }

    /// An attempt's pod as the kubelet reports it.
    pub(super) fn job_pod_info(
        &self,
        d: &Desired,
        r: &Rollout,
        a: &Attempt,
        now: DateTime<Utc>,
    ) -> PodInfo {
        let s = &self.scenario;
        let node = match self.placement(d, &a.pod, now) {
            Placement::Node(node) => node,
            Placement::Unschedulable(_) => String::new(),
        };
        let (phase, state, termination) = match &a.end {
            Some(End::Exited(t)) if t.exit_code == 0 => {
                ("Succeeded", format!("terminated: {}", t.reason), Some(t))
            }
            Some(End::Exited(t)) => ("Failed", format!("terminated: {}", t.reason), Some(t)),
            _ => ("Running", "running".to_owned(), None),
        };
        PodInfo {
            init_containers: Vec::new(),
            deleted_at: None,
            namespace: s.workload.namespace.clone(),
            name: a.pod.clone(),
            node,
            phase: phase.into(),
            reason: None,
            message: None,
            owner: Some(format!("Job/{}", r.workload.name)),
            created_at: a.start,
            containers: vec![ContainerStatus {
                name: s.workload.container.clone(),
                ready: termination.is_none(),
                restart_count: 0,
                state,
                last_termination: termination.cloned(),
            }],
        }
    }

    /// What the Job controller said about the Job: each pod it created, the pod it deleted at
    /// the deadline, and why the Job failed.
    pub(super) fn job_events(&self, r: &Rollout, job: &JobRun) -> Vec<ClusterEvent> {
        let name = &r.workload.name;
        let event = |kind: &str, reason: &str, message: String, at: DateTime<Utc>| {
            ClusterEvent::once(format!("Job/{name}"), kind, reason, message, at)
        };
        let mut out: Vec<ClusterEvent> = job
            .attempts
            .iter()
            .map(|a| {
                event(
                    "Normal",
                    "SuccessfulCreate",
                    format!("Created pod: {}", a.pod),
                    a.start,
                )
            })
            .collect();
        for a in &job.attempts {
            if let Some(End::Deleted(at)) = a.end {
                out.push(event(
                    "Normal",
                    "SuccessfulDelete",
                    format!("Deleted pod: {}", a.pod),
                    at,
                ));
            }
        }
        match &job.outcome {
            Some(Outcome::Failed {
                at,
                reason,
                message,
            }) => out.push(event("Warning", reason, (*message).to_owned(), *at)),
            Some(Outcome::Complete(at)) => {
                out.push(event("Normal", "Completed", "Job completed".into(), *at))
            }
            None => {}
        }
        out
    }
}

impl SimCluster {
    /// kube-state-metrics' series of the Job at `t`: its pods' phase and owner, its counters,
    /// and a series per condition it has (`kube_job_failed{condition="true"}` 1 once it failed).
    pub(super) fn job_points(
        &self,
        d: &Desired,
        t: DateTime<Utc>,
        push: &mut impl FnMut(SeriesKind, Labels, f64),
    ) {
        if let Some(r) = Self::rollout_at(d, t) {
            self.job_points_of(d, r, t, None, push);
        }
    }

    /// The series of the Job `r` at `t`; `owner`: the CronJob that created it, if one did
    /// (`kube_job_owner`).
    pub(super) fn job_points_of(
        &self,
        d: &Desired,
        r: &Rollout,
        t: DateTime<Utc>,
        owner: Option<(&str, &str)>,
        push: &mut impl FnMut(SeriesKind, Labels, f64),
    ) {
        let ns = self.scenario.workload.namespace.as_str();
        let job = r.workload.name.as_str();
        let run = self.job_run(d, r, t);
        let series = |name: &str, extra: &[(&str, &str)]| {
            let mut l = labels(&[("namespace", ns)]);
            l.insert("__name__".into(), name.into());
            for (k, v) in extra {
                l.insert((*k).into(), (*v).into());
            }
            l
        };
        for a in run.pods() {
            let phase = self.job_pod_info(d, r, a, t).phase;
            for p in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
                push(
                    SeriesKind::Gauge,
                    series("kube_pod_status_phase", &[("pod", &a.pod), ("phase", p)]),
                    if p == phase { 1.0 } else { 0.0 },
                );
            }
            push(
                SeriesKind::Gauge,
                series(
                    "kube_pod_owner",
                    &[
                        ("pod", &a.pod),
                        ("owner_kind", "Job"),
                        ("owner_name", job),
                        ("owner_is_controller", "true"),
                    ],
                ),
                1.0,
            );
        }
        let (owner_kind, owner_name) = owner.unwrap_or(("<none>", "<none>"));
        push(
            SeriesKind::Gauge,
            series(
                "kube_job_owner",
                &[
                    ("job_name", job),
                    ("owner_kind", owner_kind),
                    ("owner_name", owner_name),
                    (
                        "owner_is_controller",
                        if owner.is_some() { "true" } else { "<none>" },
                    ),
                ],
            ),
            1.0,
        );
        push(
            SeriesKind::Gauge,
            series("kube_job_status_start_time", &[("job_name", job)]),
            r.at.timestamp() as f64,
        );
        let succeeded = usize::from(matches!(run.outcome, Some(Outcome::Complete(_))));
        for (name, value) in [
            ("kube_job_spec_completions", 1),
            ("kube_job_status_active", run.active()),
            ("kube_job_status_failed", run.failed_in_status()),
            ("kube_job_status_succeeded", succeeded),
        ] {
            push(
                SeriesKind::Gauge,
                series(name, &[("job_name", job)]),
                value as f64,
            );
        }
        let condition = match run.outcome {
            Some(Outcome::Failed { .. }) => Some("kube_job_failed"),
            Some(Outcome::Complete(_)) => Some("kube_job_complete"),
            None => None,
        };
        if let Some(name) = condition {
            for status in ["true", "false", "unknown"] {
                push(
                    SeriesKind::Gauge,
                    series(name, &[("job_name", job), ("condition", status)]),
                    if status == "true" { 1.0 } else { 0.0 },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_job_controller_backs_off_doubling_to_six_minutes() {
        assert_eq!(
            (1..=8).map(backoff).collect::<Vec<_>>(),
            [10, 20, 40, 80, 160, 320, 360, 360]
        );
    }

    use std::time::Duration;

    use squad_protocols::WorkloadRef;

    use super::super::testing::served;
    use crate::Scenario;

    fn job_condition(sim: &SimCluster, w: &WorkloadRef) -> Option<(String, String)> {
        sim.workload(w)
            .unwrap()
            .conditions
            .into_iter()
            .find(|c| c.status == "True")
            .map(|c| (c.kind, c.reason))
    }

    /// Pods that exit at once (a variable missing): one per attempt after the controller's
    /// back-off, `backoffLimit` + 1 of them, kept Failed; then BackoffLimitExceeded.
    #[test]
    fn failing_pods_exhaust_the_backoff_limit() {
        let mut s = Scenario::embedded("job-failed").unwrap();
        s.load.required_env = vec!["LEDGER_DSN".into()];
        let (sim, _git, _clock, _dir) = served(s.clone());
        let w = s.workload_ref();
        let pods = sim.pods_of(&w).unwrap();
        assert_eq!(pods.len(), 3, "{pods:?}");
        assert!(pods.iter().all(|p| p.phase == "Failed"
            && p.containers[0].last_termination.as_ref().unwrap().exit_code == 1));
        // 2 s each, 10 s then 20 s of back-off between them.
        let starts: Vec<i64> = pods
            .iter()
            .map(|p| (p.created_at - s.now).num_seconds())
            .collect();
        assert_eq!(starts, [-3600, -3588, -3566]);
        assert_eq!(
            job_condition(&sim, &w),
            Some(("Failed".into(), "BackoffLimitExceeded".into()))
        );
        let events = sim.events(&w.namespace, &w.name).unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|e| e.reason == "SuccessfulCreate")
                .count(),
            3
        );
        assert!(events.iter().any(|e| e.message == BACKOFF_LIMIT_EXCEEDED));
        let logs = sim
            .logs(&w.namespace, &pods[2].name, "backfill", false, 10)
            .unwrap();
        assert!(logs.last().unwrap().contains("LEDGER_DSN"), "{logs:?}");
    }

    /// The fix: a deadline above the run time. The sync replaces the Job; its new pod runs the
    /// 75 minutes through and the Job completes.
    #[tokio::test(start_paused = true)]
    async fn a_deadline_above_the_run_time_lets_the_replaced_job_complete() {
        let s = Scenario::embedded("job-failed").unwrap();
        let (sim, git, clock, _dir) = served(s.clone());
        let w = s.workload_ref();
        assert_eq!(
            job_condition(&sim, &w),
            Some(("Failed".into(), "DeadlineExceeded".into()))
        );
        assert!(sim.pods_of(&w).unwrap().is_empty());
        let path = &s.workload.manifest;
        let text = git.read("main", path).unwrap().unwrap();
        git.commit(
            "main",
            None,
            "orders-backfill: a deadline above the run time",
            &[(
                path.clone(),
                text.replace("activeDeadlineSeconds: 1800", "activeDeadlineSeconds: 7200"),
            )],
            clock.now(),
            false,
        )
        .unwrap();
        clock.sleep(Duration::from_secs(40 * 60)).await;
        let pods = sim.pods_of(&w).unwrap();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].phase, "Running");
        assert_eq!(job_condition(&sim, &w), None);
        clock.sleep(Duration::from_secs(40 * 60)).await;
        let pods = sim.pods_of(&w).unwrap();
        assert_eq!(pods[0].phase, "Succeeded");
        assert_eq!(
            job_condition(&sim, &w),
            Some(("Complete".into(), String::new()))
        );
    }
}
