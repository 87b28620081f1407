//! Follow-ups families share for Data's issue.

use squad_protocols::{Diagnosis, WorkloadRef};

/// What Data knows when filing the follow-up issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowupContext {
    pub incident: String,
    pub issue: u64,
    pub workload: WorkloadRef,
    pub container: String,
    pub pod: String,
    /// The application's language (`python`, `go`, …).
    pub language: String,
    /// The route under the most load.
    pub route: String,
    /// Profiling steps for the language, in markdown.
    pub profiling_steps: String,
    /// What the scan of the source found, in markdown.
    pub code_findings: String,
}

/// An issue to file: title, body and its topic label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueDraft {
    pub title: String,
    pub body: String,
    pub label: String,
}

/// Profile the application under the incident's load: the steps for its language and what the
/// scan of its source found.
pub fn profiling(d: &Diagnosis, cx: &FollowupContext, label: &str) -> IssueDraft {
    IssueDraft {
        title: format!(
            "Profile {} memory under {} load ({})",
            cx.container, cx.route, cx.language
        ),
        body: format!(
            "Follow-up of incident {} (#{}): {}\n\n## Profiling steps\n{}\n\n## What was found in the code\n{}",
            cx.incident, cx.issue, d.summary, cx.profiling_steps, cx.code_findings
        ),
        label: label.into(),
    }
}
