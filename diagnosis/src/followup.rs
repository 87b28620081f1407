//! Follow-ups families share for Data's issue.

use squad_protocols::Diagnosis;

use crate::{FollowupContext, IssueDraft};

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
