//! kubectl's columns for Jobs, as kube-apiserver's printers declare them.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{AGE, CONTAINERS, Column, IMAGES, NAME, human_duration, selector_text};

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// From the start to completion, or to now while it has not completed (a failed Job too).
fn duration(job: &Value, now: DateTime<Utc>) -> String {
    match time(&job["status"]["startTime"]) {
        Some(start) => {
            let end = time(&job["status"]["completionTime"]).unwrap_or(now);
            human_duration(end - start)
        }
        None => String::new(),
    }
}

pub(super) const JOB: &[Column] = &[
    NAME,
    Column {
        name: "Completions",
        ty: "string",
        priority: 0,
        description: "The desired number of successfully finished pods the job should be run with.",
        cell: |j, _| {
            json!(format!(
                "{}/{}",
                j["status"]["succeeded"].as_u64().unwrap_or(0),
                j["spec"]["completions"].as_u64().unwrap_or(1)
            ))
        },
    },
    Column {
        name: "Duration",
        ty: "string",
        priority: 0,
        description: "Time required to complete the job.",
        cell: |j, now| json!(duration(j, now)),
    },
    AGE,
    CONTAINERS,
    IMAGES,
    Column {
        name: "Selector",
        ty: "string",
        priority: 1,
        description: "A label query over pods that should match the pod count.",
        cell: |j, _| json!(selector_text(&j["spec"]["selector"]["matchLabels"])),
    },
];

/// `kubectl get cronjobs`: the schedule, time zone, suspension, active Jobs and the last
/// scheduled time (containers, images and selector of its Job template with `-o wide`).
pub(super) const CRON_JOB: &[Column] = &[
    NAME,
    Column {
        name: "Schedule",
        ty: "string",
        priority: 0,
        description: "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
        cell: |c, _| c["spec"]["schedule"].clone(),
    },
    Column {
        name: "Timezone",
        ty: "string",
        priority: 0,
        description: "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.",
        cell: |c, _| json!(c["spec"]["timeZone"].as_str().unwrap_or("<none>")),
    },
    Column {
        name: "Suspend",
        ty: "boolean",
        priority: 0,
        description: "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
        cell: |c, _| json!(c["spec"]["suspend"].as_bool().unwrap_or(false)),
    },
    Column {
        name: "Active",
        ty: "integer",
        priority: 0,
        description: "A list of pointers to currently running jobs.",
        cell: |c, _| json!(c["status"]["active"].as_array().map_or(0, Vec::len)),
    },
    Column {
        name: "Last Schedule",
        ty: "date",
        priority: 0,
        description: "Information when was the last time the job was successfully scheduled.",
        cell: |c, now| {
            json!(
                time(&c["status"]["lastScheduleTime"])
                    .map_or_else(|| "<none>".to_owned(), |t| human_duration(now - t))
            )
        },
    },
    AGE,
    CONTAINERS,
    IMAGES,
    Column {
        name: "Selector",
        ty: "string",
        priority: 1,
        description: "A label query over pods that should match the pod count.",
        cell: |c, _| {
            json!(selector_text(
                &c["spec"]["jobTemplate"]["spec"]["selector"]["matchLabels"]
            ))
        },
    },
];
