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
