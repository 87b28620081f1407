//! A CronJob whose runs fail, or that runs nothing. The alert names one Job
//! (`KubeJobFailed{job_name="<cronjob>-<minutes>"}`); the repository declares the CronJob, so
//! the diagnosis is about the CronJob: how many runs in a row failed (the controller's
//! `SawCompletedJob … status: Failed` events), why the newest failed Job failed (its condition,
//! its events), how long the runs that completed took, and whether the failing runs run
//! another image than the ones that completed (a release). It also reports what k8sgpt's
//! CronJob analyzer checks: a suspended CronJob, a schedule that does not parse, a negative
//! starting deadline.

use squad_gitops::objects;
use squad_protocols::Evidence;
use squad_protocols::cluster::{CronJobInfo, OwnedJob};

use super::{JobSignals, minutes};
use crate::{Detection, Facts};

/// What the CronJob's spec keeps from running, in words (empty: nothing).
fn spec_problems(cj: &CronJobInfo) -> Vec<String> {
    let mut out = Vec::new();
    if cj.suspend {
        out.push("it is suspended (spec.suspend: true): no Job runs until it is resumed".into());
    }
    if let Err(e) = objects::schedule(&cj.schedule) {
        out.push(format!(
            "its schedule does not parse ({e}): the controller creates no Job"
        ));
    }
    if let Some(s) = cj.starting_deadline_seconds.filter(|s| *s < 0) {
        out.push(format!(
            "its startingDeadlineSeconds is negative ({s}): no run can start in time"
        ));
    }
    out
}

/// The runs the controller saw finish, oldest first: (job, succeeded).
fn finished_runs(facts: &Facts) -> Vec<(String, bool)> {
    let mut seen: Vec<_> = facts
        .workload_events
        .iter()
        .filter(|e| e.reason == "SawCompletedJob")
        .filter_map(|e| {
            let rest = e.message.strip_prefix("Saw completed job: ")?;
            let (job, status) = rest.split_once(", status: ")?;
            Some((e.last_seen, job.to_owned(), status.trim() == "Complete"))
        })
        .collect();
    seen.sort();
    seen.into_iter().map(|(_, j, ok)| (j, ok)).collect()
}

pub(super) fn detect(facts: &Facts) -> Option<Detection> {
    let cj = facts.cron_job.as_ref()?;
    let problems = spec_problems(cj);
    let newest_failed = cj
        .jobs
        .iter()
        .rev()
        .find(|j| j.outcome().is_some())
        .filter(|j| j.failed_condition().is_some());
    let runs = finished_runs(facts);
    let in_a_row = runs.iter().rev().take_while(|(_, ok)| !ok).count();
    let name = &cj.name;
    let mut d = Detection::new(String::new(), 0.85, &[]);
    d.evidence.push(Evidence {
        source: "CronJob spec".into(),
        observation: format!(
            "schedule {:?}{}, concurrencyPolicy {}, suspend {}, keeps {} succeeded and {} failed Jobs",
            cj.schedule,
            cj.time_zone
                .as_deref()
                .map_or(String::new(), |z| format!(" ({z})")),
            cj.concurrency_policy,
            cj.suspend,
            cj.successful_jobs_history_limit,
            cj.failed_jobs_history_limit
        ),
    });
    for p in &problems {
        d.evidence.push(Evidence {
            source: "CronJob spec".into(),
            observation: p.clone(),
        });
    }
    for j in &cj.jobs {
        let outcome = match j.outcome() {
            Some(c) if c.kind == "Failed" => format!("Failed ({}): {}", c.reason, c.message),
            Some(_) => format!(
                "Complete{}",
                j.ran_seconds()
                    .map_or(String::new(), |s| format!(" in {}", minutes(s)))
            ),
            None => "running".into(),
        };
        d.evidence.push(Evidence {
            source: "CronJob's Jobs".into(),
            observation: format!(
                "{} started {} ({}): {outcome}",
                j.name,
                j.start().to_rfc3339(),
                j.images.join(", ")
            ),
        });
    }
    let said: Vec<_> = facts
        .workload_events
        .iter()
        .filter(|e| e.reason == "SawCompletedJob" || e.reason == "JobAlreadyActive")
        .collect();
    for e in &said[said.len().saturating_sub(6)..] {
        d.evidence.push(Evidence {
            source: "cronjob-controller events".into(),
            observation: format!(
                "{}: {} at {}{}",
                e.reason,
                e.message,
                e.last_seen.to_rfc3339(),
                if e.count > 1 {
                    format!(" ({} times)", e.count)
                } else {
                    String::new()
                }
            ),
        });
    }
    let Some(failed_job) = newest_failed else {
        if problems.is_empty() {
            return None;
        }
        d.summary = format!("CronJob {name} runs nothing: {}", problems.join("; "));
        d.recommendations.push(
            "fix the CronJob's spec (resume it, or a schedule in the five-field cron format) and watch the next scheduled run".into(),
        );
        return Some(d);
    };
    let failed = failed_job.failed_condition()?;
    for e in &facts.job_events {
        d.evidence.push(Evidence {
            source: "job-controller events".into(),
            observation: format!(
                "{} {}: {} at {}",
                failed_job.name,
                e.reason,
                e.message,
                e.first_seen.to_rfc3339()
            ),
        });
    }
    let completed: Vec<&OwnedJob> = cj
        .jobs
        .iter()
        .filter(|j| j.outcome().is_some_and(|c| c.kind == "Complete"))
        .collect();
    let durations: Vec<String> = completed
        .iter()
        .filter_map(|j| j.ran_seconds())
        .map(minutes)
        .collect();
    let last_ok = completed.last();
    // The failing runs' images against those of the runs that completed.
    let release = last_ok
        .filter(|ok| ok.images != failed_job.images)
        .map(|ok| {
            format!(
                "; the failing runs run {}, the runs that completed ran {}",
                failed_job.images.join(", "),
                ok.images.join(", ")
            )
        })
        .unwrap_or_default();
    let how = match failed.reason.as_str() {
        "DeadlineExceeded" => {
            let deadline = failed_job
                .active_deadline_seconds
                .map_or(String::new(), |s| format!(" ({})", minutes(s)));
            d.recommendations.push(format!(
                "time a run of {} and set the Job template's activeDeadlineSeconds above it with a margin, or make the run shorter",
                failed_job.images.join(", ")
            ));
            format!(
                "the Job controller stopped it at activeDeadlineSeconds{deadline} with its pod still running"
            )
        }
        "BackoffLimitExceeded" => {
            d.recommendations.push(
                "fix what makes each pod exit non-zero (its logs and exit code); raising backoffLimit only repeats the failure".into(),
            );
            let exit = facts.termination().map_or(String::new(), |t| {
                format!(" (the last exited {}, {})", t.exit_code, t.reason)
            });
            format!("its pods kept exiting non-zero{exit}")
        }
        _ => failed.message.clone(),
    };
    // A run longer than the schedule's interval overlaps the next one.
    if let Ok(schedule) = objects::schedule(&cj.schedule)
        && let Some(next) = schedule.next_after(facts.now)
        && let Some(after) = schedule.next_after(next)
    {
        let interval = (after - next).num_seconds();
        let overlap = match cj.concurrency_policy.as_str() {
            "Forbid" => "the next scheduled run is skipped while one is active (JobAlreadyActive)",
            "Replace" => "the next scheduled run deletes the one still active",
            _ => "runs overlap",
        };
        d.recommendations.push(format!(
            "keep a run under the schedule's interval ({}): past it, {overlap}",
            minutes(interval)
        ));
    }
    let runs_text = if in_a_row > 1 {
        format!("its last {in_a_row} runs failed")
    } else {
        "its last run failed".to_owned()
    };
    let took = if durations.is_empty() {
        String::new()
    } else {
        format!(
            "; the runs it keeps that completed took {}",
            durations.join(", ")
        )
    };
    d.summary = format!(
        "CronJob {name}: {runs_text} ({}), the newest {}: {how}{took}{release}",
        failed.reason, failed_job.name
    );
    if !problems.is_empty() {
        d.summary
            .push_str(&format!("; also, {}", problems.join("; ")));
    }
    if in_a_row >= 3 && !release.is_empty() {
        d.confidence = 0.9;
    }
    d.recommendations.push(format!(
        "after the fix, delete the failed Job (`kubectl delete job -n {} {}`) so KubeJobFailed clears, and watch the next scheduled run complete",
        cj.namespace, failed_job.name
    ));
    d.signals = serde_json::to_value(JobSignals {
        reason: failed.reason.clone(),
        message: failed.message.clone(),
        pods_created: facts
            .job_events
            .iter()
            .filter(|e| e.reason == "SuccessfulCreate")
            .count(),
        ran_seconds: failed_job.active_deadline_seconds,
    })
    .ok();
    Some(d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::{DateTime, Duration, Utc};
    use squad_protocols::cluster::{ClusterEvent, WorkloadCondition};

    use super::*;
    use crate::testing;

    fn job(
        name: &str,
        created: DateTime<Utc>,
        image: &str,
        outcome: Option<(&str, i64)>,
    ) -> OwnedJob {
        let (conditions, finished_at) = match outcome {
            Some((kind, after)) => (
                vec![WorkloadCondition {
                    kind: kind.into(),
                    status: "True".into(),
                    reason: if kind == "Failed" {
                        "DeadlineExceeded".into()
                    } else {
                        String::new()
                    },
                    message: if kind == "Failed" {
                        "Job was active longer than specified deadline".into()
                    } else {
                        String::new()
                    },
                }],
                Some(created + Duration::seconds(after)),
            ),
            None => (Vec::new(), None),
        };
        OwnedJob {
            name: name.into(),
            created_at: created,
            started_at: Some(created),
            images: vec![image.into()],
            active: u32::from(outcome.is_none()),
            succeeded: u32::from(matches!(outcome, Some(("Complete", _)))),
            failed: u32::from(matches!(outcome, Some(("Failed", _)))),
            active_deadline_seconds: Some(1200),
            finished_at,
            conditions,
        }
    }

    fn saw(job: &str, status: &str, at: DateTime<Utc>) -> ClusterEvent {
        ClusterEvent {
            kind: "Normal".into(),
            reason: "SawCompletedJob".into(),
            message: format!("Saw completed job: {job}, status: {status}"),
            count: 1,
            first_seen: at,
            last_seen: at,
            object: "CronJob/nightly-export".into(),
        }
    }

    /// A daily CronJob: three nights completed on 7.1, then two failed at the deadline on 7.2.
    fn failing() -> Facts {
        let mut f = testing::crashing(&[]);
        f.pod = None;
        f.workload.kind = "CronJob".into();
        f.workload.name = "nightly-export".into();
        let day = |n: i64| f.now - Duration::days(n) - Duration::hours(3);
        let mut jobs: Vec<OwnedJob> = (3..=5)
            .rev()
            .map(|n| {
                job(
                    &format!("nightly-export-{n}"),
                    day(n),
                    "reg/export:7.1",
                    Some(("Complete", 1500 + n * 60)),
                )
            })
            .collect();
        jobs.push(job(
            "nightly-export-1",
            day(1),
            "reg/export:7.2",
            Some(("Failed", 1200)),
        ));
        let mut events: Vec<ClusterEvent> = (3..=5)
            .rev()
            .map(|n| {
                saw(
                    &format!("nightly-export-{n}"),
                    "Complete",
                    day(n) + Duration::minutes(30),
                )
            })
            .collect();
        events.push(saw(
            "nightly-export-2",
            "Failed",
            day(2) + Duration::minutes(20),
        ));
        events.push(saw(
            "nightly-export-1",
            "Failed",
            day(1) + Duration::minutes(20),
        ));
        f.workload_events = events;
        f.cron_job = Some(CronJobInfo {
            namespace: f.workload.namespace.clone(),
            name: "nightly-export".into(),
            schedule: "0 2 * * *".into(),
            time_zone: None,
            suspend: false,
            concurrency_policy: "Allow".into(),
            starting_deadline_seconds: None,
            successful_jobs_history_limit: 3,
            failed_jobs_history_limit: 1,
            last_schedule_time: Some(day(1)),
            last_successful_time: Some(day(3)),
            active: Vec::new(),
            jobs,
        });
        f
    }

    #[test]
    fn failing_runs_are_counted_timed_and_tied_to_the_image_they_run() {
        let f = failing();
        let d = detect(&f).unwrap();
        assert_eq!(
            d.summary,
            "CronJob nightly-export: its last 2 runs failed (DeadlineExceeded), the newest nightly-export-1: the Job controller stopped it at activeDeadlineSeconds (20 min) with its pod still running; the runs it keeps that completed took 30 min, 29 min, 28 min; the failing runs run reg/export:7.2, the runs that completed ran reg/export:7.1"
        );
        assert!(
            d.recommendations
                .iter()
                .any(|r| r.contains("schedule's interval (1440 min)")),
            "{:?}",
            d.recommendations
        );
        assert_eq!(d.confidence, 0.85);
    }

    #[test]
    fn a_cronjob_that_runs_nothing_says_why_and_a_healthy_one_is_not_this_family() {
        let mut f = failing();
        let cj = f.cron_job.as_mut().unwrap();
        cj.jobs.pop();
        f.workload_events.truncate(3);
        assert!(detect(&f).is_none(), "three completed runs: healthy");
        let cj = f.cron_job.as_mut().unwrap();
        cj.suspend = true;
        cj.schedule = "0 25 * * *".into();
        let d = detect(&f).unwrap();
        assert!(
            d.summary.starts_with("CronJob nightly-export runs nothing: it is suspended (spec.suspend: true): no Job runs until it is resumed; its schedule does not parse"),
            "{}",
            d.summary
        );
    }
}
