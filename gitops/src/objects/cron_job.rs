//! CronJobs: the schedule as the CronJob controller reads it, and a CronJob object with the Jobs
//! it owns as squad's [`CronJobInfo`].

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde_json::Value;
use squad_protocols::cluster::{CronJobInfo, OwnedJob};

use super::{conditions_of, name, str_of, time};

/// A parsed `spec.schedule`: five fields (minute, hour, day of month, month, day of week, with
/// names, ranges, steps and lists) or a descriptor (`@hourly`, `@daily`, `@midnight`, `@weekly`,
/// `@monthly`, `@yearly`, `@annually`), in UTC. A day of month and a day of week both restricted
/// match either, as cron has it.
#[derive(Debug, Clone)]
pub struct Schedule(Cron);

/// `spec.schedule` parsed, or why the CronJob controller would refuse it.
pub fn schedule(expr: &str) -> Result<Schedule, String> {
    let expr = expr.trim();
    if expr.starts_with("TZ=") || expr.starts_with("CRON_TZ=") {
        return Err(format!(
            "{expr:?}: a time zone in the schedule is not supported (set spec.timeZone)"
        ));
    }
    // `@every <duration>` is the one descriptor of the controller's parser this one lacks.
    if expr.starts_with("@every") {
        return Err(format!("{expr:?}: @every is not supported here"));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map(Schedule)
        .map_err(|e| format!("{expr:?}: {e}"))
}

impl Schedule {
    /// The first scheduled time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.find_next_occurrence(&t, false).ok()
    }

    /// The last scheduled time at or before `t`.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.find_previous_occurrence(&t, true).ok()
    }
}

/// A CronJob object and the Jobs among `jobs` it owns (by `ownerReferences`), oldest first (by
/// start).
pub fn cron_job_info(cron_job: &Value, jobs: &[Value]) -> CronJobInfo {
    let spec = &cron_job["spec"];
    let status = &cron_job["status"];
    let meta = &cron_job["metadata"];
    let cj_name = name(cron_job);
    let uid = meta["uid"].as_str();
    let mut owned: Vec<OwnedJob> = jobs
        .iter()
        .filter(|j| {
            j["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| {
                    o["kind"] == "CronJob"
                        && o["name"] == cj_name
                        && uid.is_none_or(|u| o["uid"].as_str().is_none_or(|x| x == u))
                })
        })
        .map(owned_job)
        .collect();
    owned.sort_by(|a, b| (a.start(), &a.name).cmp(&(b.start(), &b.name)));
    CronJobInfo {
        namespace: str_of(&meta["namespace"]),
        name: cj_name.to_owned(),
        schedule: str_of(&spec["schedule"]),
        time_zone: spec["timeZone"].as_str().map(str::to_owned),
        suspend: spec["suspend"].as_bool().unwrap_or(false),
        concurrency_policy: spec["concurrencyPolicy"]
            .as_str()
            .unwrap_or("Allow")
            .to_owned(),
        starting_deadline_seconds: spec["startingDeadlineSeconds"].as_i64(),
        successful_jobs_history_limit: spec["successfulJobsHistoryLimit"].as_u64().unwrap_or(3)
            as u32,
        failed_jobs_history_limit: spec["failedJobsHistoryLimit"].as_u64().unwrap_or(1) as u32,
        last_schedule_time: time(&status["lastScheduleTime"]),
        last_successful_time: time(&status["lastSuccessfulTime"]),
        active: status["active"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| str_of(&r["name"]))
            .collect(),
        jobs: owned,
    }
}

fn owned_job(j: &Value) -> OwnedJob {
    let status = &j["status"];
    let failed_at = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Failed" && c["status"] == "True")
        .and_then(|c| time(&c["lastTransitionTime"]));
    let count = |k: &str| status[k].as_u64().unwrap_or(0) as u32;
    OwnedJob {
        name: name(j).to_owned(),
        created_at: time(&j["metadata"]["creationTimestamp"]).unwrap_or_default(),
        started_at: time(&status["startTime"]),
        images: j["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| str_of(&c["image"]))
            .collect(),
        active: count("active"),
        succeeded: count("succeeded"),
        failed: count("failed"),
        active_deadline_seconds: j["spec"]["activeDeadlineSeconds"].as_i64(),
        finished_at: time(&status["completionTime"]).or(failed_at),
        conditions: conditions_of(status),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn schedules_read_as_the_cronjob_controller_reads_them() {
        let hourly = schedule("0 * * * *").unwrap();
        assert_eq!(
            hourly.next_after(at("2026-12-05T10:00:00Z")),
            Some(at("2026-12-05T11:00:00Z"))
        );
        assert_eq!(
            hourly.last_at_or_before(at("2026-12-05T10:00:00Z")),
            Some(at("2026-12-05T10:00:00Z"))
        );
        let weekdays = schedule("*/15 9-17 * * MON-FRI").unwrap();
        // Saturday 2026-12-05: the next is Monday 09:00.
        assert_eq!(
            weekdays.next_after(at("2026-12-05T10:07:00Z")),
            Some(at("2026-12-07T09:00:00Z"))
        );
        assert_eq!(
            schedule("@daily")
                .unwrap()
                .next_after(at("2026-12-05T10:07:00Z")),
            Some(at("2026-12-06T00:00:00Z"))
        );
        // Day of month and day of week both restricted: either.
        let either = schedule("0 0 1 * MON").unwrap();
        assert_eq!(
            either.next_after(at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-07T00:00:00Z"))
        );
        for bad in [
            "61 * * * *",
            "* * * *",
            "0 0 * * * *",
            "",
            "TZ=Europe/Paris 0 * * * *",
        ] {
            assert!(schedule(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_cronjob_lists_the_jobs_it_owns_oldest_first() {
        let cj = json!({"kind": "CronJob", "metadata": {"name": "sweep", "namespace": "billing",
            "uid": "u1"}, "spec": {"schedule": "0 * * * *", "concurrencyPolicy": "Forbid"},
            "status": {"lastScheduleTime": "2026-12-05T10:00:00Z",
                       "active": [{"kind": "Job", "name": "sweep-29416980"}]}});
        let job = |name: &str, created: &str, owner: &str, status: Value| {
            json!({"kind": "Job", "metadata": {"name": name, "creationTimestamp": created,
                "ownerReferences": [{"kind": "CronJob", "name": owner, "uid": "u1"}]},
                "spec": {"activeDeadlineSeconds": 900, "template": {"spec": {"containers": [
                    {"name": "sweep", "image": "ghcr.io/acme/sweep:2.4.0"}]}}},
                "status": status})
        };
        let jobs = [
            job(
                "sweep-29416980",
                "2026-12-05T10:00:00Z",
                "sweep",
                json!({"active": 1}),
            ),
            job(
                "sweep-29416920",
                "2026-12-05T09:00:00Z",
                "sweep",
                json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True",
                    "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline",
                    "lastTransitionTime": "2026-12-05T09:15:00Z"}]}),
            ),
            job("other-29416920", "2026-12-05T09:00:00Z", "other", json!({})),
        ];
        let info = cron_job_info(&cj, &jobs);
        assert_eq!(info.concurrency_policy, "Forbid");
        assert_eq!(
            (
                info.successful_jobs_history_limit,
                info.failed_jobs_history_limit
            ),
            (3, 1)
        );
        assert_eq!(info.active, ["sweep-29416980"]);
        let names: Vec<&str> = info.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["sweep-29416920", "sweep-29416980"]);
        let failed = &info.jobs[0];
        assert_eq!(failed.finished_at, Some(at("2026-12-05T09:15:00Z")));
        assert_eq!(
            failed.failed_condition().map(|c| c.reason.as_str()),
            Some("DeadlineExceeded")
        );
        assert_eq!(failed.images, ["ghcr.io/acme/sweep:2.4.0"]);
        assert_eq!(failed.active_deadline_seconds, Some(900));
        assert!(info.jobs[1].outcome().is_none());
    }
}
