//! Job failing: a Job's `Failed` condition is True — `BackoffLimitExceeded` (`Job has reached
//! the specified backoff limit`: its pods kept exiting non-zero) or `DeadlineExceeded` (`Job was
//! active longer than specified deadline`: the Job controller deleted the pod still running at
//! `activeDeadlineSeconds`). `KubeJobFailed` fires on `kube_job_failed`. A pod-level cause a
//! more specific family knows (a missing variable, a command, a refusal by RBAC, …) is named by
//! that family first; this one reads the Job's own events (the pods it created and deleted, and
//! when) and the last pod's exit and logs, and says which way the Job failed. The fix (a
//! deadline above the run time, or the command, config or code that fails) comes with the
//! remediations; until then the crew escalates with the diagnosis. The proof is the next run
//! completing.

use serde::{Deserialize, Serialize};
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::{
    Detection, Facts, Family, FollowupContext, IssueDraft, Lookup, Readings, Remedy, RemedyInput,
    RepoNeeds, Runbook,
};

mod cron_job;

pub struct JobFailed;

pub const ROOT_CAUSE: &str = "job_failed";

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSignals {
    /// `BackoffLimitExceeded`, `DeadlineExceeded`, …
    pub reason: String,
    pub message: String,
    /// The pods the Job controller created.
    pub pods_created: usize,
    /// How long after its first pod the Job failed, in seconds.
    pub ran_seconds: Option<i64>,
}

pub(crate) fn minutes(seconds: i64) -> String {
    if seconds >= 120 {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    }
}

impl Family for JobFailed {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("JobFailed")
    }

    fn lookups(&self, facts: &Facts) -> Vec<Lookup> {
        match facts.workload.kind.as_str() {
            "Job" => vec![Lookup::WorkloadEvents],
            "CronJob" => vec![Lookup::WorkloadEvents, Lookup::CronJob],
            _ => Vec::new(),
        }
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        if facts.workload.kind == "CronJob" {
            return cron_job::detect(facts);
        }
        if facts.workload.kind != "Job" {
            return None;
        }
        // Suspended (`spec.suspend`, the `Suspended` condition): it runs no pod at all.
        if let Some(c) = facts
            .info
            .conditions
            .iter()
            .find(|c| c.kind == "Suspended" && c.status == "True")
        {
            let mut d = Detection::new(
                format!(
                    "Job {} is suspended ({}: {}): it runs no pod until spec.suspend is false",
                    facts.workload.name, c.reason, c.message
                ),
                0.8,
                &[
                    "resume it (`spec.suspend: false`, through the repo) if it should run; a queueing controller (Kueue) may be holding it for quota",
                ],
            );
            d.evidence.push(Evidence {
                source: "Job status".into(),
                observation: format!("condition Suspended=True ({}): {}", c.reason, c.message),
            });
            return Some(d);
        }
        let failed = facts
            .info
            .conditions
            .iter()
            .find(|c| c.kind == "Failed" && c.status == "True")?;
        let created: Vec<_> = facts
            .workload_events
            .iter()
            .filter(|e| e.reason == "SuccessfulCreate")
            .collect();
        let deleted: Vec<_> = facts
            .workload_events
            .iter()
            .filter(|e| e.reason == "SuccessfulDelete")
            .collect();
        let first = created.iter().map(|e| e.first_seen).min();
        let failed_at = facts
            .workload_events
            .iter()
            .filter(|e| e.reason == failed.reason)
            .map(|e| e.last_seen)
            .max();
        let ran = first.zip(failed_at).map(|(a, b)| (b - a).num_seconds());
        let job = &facts.workload.name;
        let mut d = Detection::new(String::new(), 0.85, &[]);
        d.evidence.push(Evidence {
            source: "Job status".into(),
            observation: format!(
                "condition Failed=True ({}): {}",
                failed.reason, failed.message
            ),
        });
        for e in created.iter().chain(&deleted) {
            d.evidence.push(Evidence {
                source: "job-controller events".into(),
                observation: format!(
                    "{}: {} at {}",
                    e.reason,
                    e.message,
                    e.first_seen.to_rfc3339()
                ),
            });
        }
        let what = match failed.reason.as_str() {
            "DeadlineExceeded" => {
                let still = if deleted.is_empty() {
                    String::new()
                } else {
                    ", and deleted the pod that was still running: the work was not done, nothing had failed"
                        .to_owned()
                };
                d.recommendations.push(
                    "measure how long a run takes (the pod was still working when its deadline came) and set activeDeadlineSeconds above it with a margin".into(),
                );
                d.recommendations.push(
                    "if the work grows with the data, make the job resumable or split it, so a deadline does not throw the work away".into(),
                );
                format!(
                    "the Job controller stopped it at its activeDeadlineSeconds{}{still}",
                    ran.map_or(String::new(), |s| format!(
                        ", {} after its first pod",
                        minutes(s)
                    ))
                )
            }
            "BackoffLimitExceeded" => {
                let exit = facts.termination().map_or(String::new(), |t| {
                    format!(
                        "; the last pod ({}) exited {} ({})",
                        facts.pod.as_ref().map_or("?", |p| p.name.as_str()),
                        t.exit_code,
                        t.reason
                    )
                });
                let said = facts
                    .logs
                    .last()
                    .map_or(String::new(), |l| format!(", its last words: {l}"));
                for l in facts.logs.iter().rev().take(3).rev() {
                    d.evidence.push(Evidence {
                        source: "container logs".into(),
                        observation: l.clone(),
                    });
                }
                d.recommendations.push(
                    "fix what makes each pod exit non-zero (its logs and exit code), then let the Job run again; raising backoffLimit only repeats the failure".into(),
                );
                format!(
                    "all {} pods it created failed{exit}{said}",
                    created.len().max(1)
                )
            }
            _ => failed.message.clone(),
        };
        d.summary = format!("Job {job} failed ({}): {what}", failed.reason);
        d.recommendations.push(format!(
            "delete the failed Job after the fix (`kubectl delete job -n {} {job}`) so the sync recreates it and KubeJobFailed clears",
            facts.workload.namespace
        ));
        d.signals = serde_json::to_value(JobSignals {
            reason: failed.reason.clone(),
            message: failed.message.clone(),
            pods_created: created.len(),
            ran_seconds: ran,
        })
        .ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the Job's activeDeadlineSeconds, backoffLimit and command against what a run needs",
            ),
            (
                Member::Data,
                "how long the job's work takes and whether it can resume after a stop",
            ),
        ]
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds::NONE
    }

    fn remedy(&self, d: &Diagnosis, _input: &RemedyInput<'_>) -> Remedy {
        Remedy::owned_by(
            "the Job's owners (the app team: its logic and its deadline)",
            d,
            "sets the deadline or fixes what fails, and recreates the Job",
        )
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "job-failed".into(),
            meaning: "A Job's `Failed` condition is True: `BackoffLimitExceeded` (its pods kept exiting non-zero, `backoffLimit` + 1 times) or `DeadlineExceeded` (it ran past `activeDeadlineSeconds`; the Job controller deleted the pod still running). `KubeJobFailed` fires until the failed Job is deleted.".into(),
            checks: "1. `kubectl describe job -n <ns> <job>`: the condition, and the events (`Created pod`, `Deleted pod`, the failure) with their times.\n2. `kubectl get pods -n <ns> -l job-name=<job>`: the failed pods (none left after a deadline).\n3. `kubectl logs -n <ns> <pod>` of the last failed pod: why it exited.\n4. The GitOps diff that added or changed the Job (its deadline, command, image).".into(),
            fixes: "- **DeadlineExceeded**: `activeDeadlineSeconds` above the measured run time; a resumable or split job when the work grows.\n- **BackoffLimitExceeded**: fix the cause the pods' logs give; raising `backoffLimit` only repeats it.\n- Then delete the failed Job so the sync recreates it.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Time {workload} against production-sized data before it ships, and size its deadline from that."
            ),
            "A Job's deadline copied from another job is a guess: write down where it comes from."
                .into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Make {} finish within its deadline, or resume",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) the Job {} failed.\n\n\
                 1. Log progress and time a full run on production-sized data.\n\
                 2. Make the work resumable (checkpoints, idempotent batches), so a stop does not lose it.\n\
                 3. Reproduce: `kubectl describe job -n {} {}`.",
                cx.incident, cx.issue, cx.workload.name, cx.workload.namespace, cx.workload.name
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::cluster::{ClusterEvent, WorkloadCondition};

    use super::*;
    use crate::testing;

    fn event(reason: &str, message: &str, minutes_ago: i64, f: &Facts) -> ClusterEvent {
        let at = f.now - chrono::Duration::minutes(minutes_ago);
        ClusterEvent {
            kind: "Normal".into(),
            reason: reason.into(),
            message: message.into(),
            count: 1,
            first_seen: at,
            last_seen: at,
            object: "Job/reindex".into(),
        }
    }

    fn failed_job(reason: &str, message: &str) -> Facts {
        let mut f = testing::crashing(&["reindexing batch 7/40", "Killed"]);
        f.workload.kind = "Job".into();
        f.workload.name = "reindex".into();
        f.info.conditions = vec![WorkloadCondition {
            kind: "Failed".into(),
            status: "True".into(),
            reason: reason.into(),
            message: message.into(),
        }];
        f
    }

    #[test]
    fn a_job_stopped_at_its_deadline_says_so_and_how_long_it_ran() {
        let mut f = failed_job(
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        );
        f.pod = None;
        f.workload_events = vec![
            event("SuccessfulCreate", "Created pod: reindex-x2k9p", 50, &f),
            event("SuccessfulDelete", "Deleted pod: reindex-x2k9p", 5, &f),
            event(
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
                5,
                &f,
            ),
        ];
        assert_eq!(JobFailed.lookups(&f), [Lookup::WorkloadEvents]);
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "Job reindex failed (DeadlineExceeded): the Job controller stopped it at its activeDeadlineSeconds, 45 min after its first pod, and deleted the pod that was still running: the work was not done, nothing had failed"
        );
        let reason = testing::escalation(&JobFailed, &d);
        assert!(reason.contains("deadline"), "{reason}");
    }

    #[test]
    fn a_job_out_of_retries_names_the_last_pods_exit_and_words() {
        let mut f = failed_job(
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        );
        f.workload_events = (0..3)
            .map(|i| {
                event(
                    "SuccessfulCreate",
                    &format!("Created pod: reindex-{i}"),
                    10 - i,
                    &f,
                )
            })
            .collect();
        let d = JobFailed.detect(&f, &Readings::of(&f)).unwrap();
        assert!(
            d.summary
                .starts_with("Job reindex failed (BackoffLimitExceeded): all 3 pods it created failed; the last pod"),
            "{}",
            d.summary
        );
        assert!(
            d.summary.ends_with("its last words: Killed"),
            "{}",
            d.summary
        );
        // Suspended: said as such.
        let mut suspended = f.clone();
        suspended.info.conditions = vec![WorkloadCondition {
            kind: "Suspended".into(),
            status: "True".into(),
            reason: "JobSuspended".into(),
            message: "Job suspended".into(),
        }];
        let d = JobFailed
            .detect(&suspended, &Readings::of(&suspended))
            .unwrap();
        assert_eq!(
            d.summary,
            "Job reindex is suspended (JobSuspended: Job suspended): it runs no pod until spec.suspend is false"
        );
        // A Deployment, or a Job that has not failed, is not this family.
        let mut f2 = f.clone();
        f2.info.conditions[0].status = "False".into();
        assert!(JobFailed.detect(&f2, &Readings::of(&f2)).is_none());
        f.workload.kind = "Deployment".into();
        assert!(JobFailed.detect(&f, &Readings::of(&f)).is_none());
    }
}
