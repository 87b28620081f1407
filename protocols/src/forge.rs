//! Forge artifacts (GitHub-shaped): issues, pull requests, and the file changes they carry.

use serde::{Deserialize, Serialize};

/// An issue to file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueSpec {
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
}

/// An issue as the team left it: open or closed and why, its labels, and what was written on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueDetail {
    pub open: bool,
    /// GitHub's `state_reason`: `completed`, `not_planned` or `reopened` (none on older issues).
    pub state_reason: Option<String>,
    pub labels: Vec<String>,
    /// The body, then each comment, oldest first.
    pub texts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueRef {
    pub number: u64,
    pub url: String,
}

/// The full new content of one file in a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: String,
    pub content: String,
}

/// A pull request to open: a branch from `base` with one commit of `files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrSpec {
    pub title: String,
    pub body: String,
    pub branch: String,
    pub base: String,
    pub commit_message: String,
    pub files: Vec<FileChange>,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrRef {
    pub number: u64,
    pub url: String,
    pub branch: String,
}

/// What reviewers and CI said about a pull request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrActivity {
    /// (reviewer, state: `approved`, `changes_requested`, `commented`, `dismissed`), oldest first.
    pub reviews: Vec<(String, String)>,
    /// (check name, conclusion: `success`, `failure`, ..., or the status while it runs).
    pub checks: Vec<(String, String)>,
}

impl PrActivity {
    /// One line for a report: "reviews: approved by ana; checks: 2 success, 1 failure".
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.reviews.is_empty() {
            let r: Vec<String> = self
                .reviews
                .iter()
                .map(|(by, state)| format!("{state} by {by}"))
                .collect();
            parts.push(format!("reviews: {}", r.join(", ")));
        }
        if !self.checks.is_empty() {
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            for (_, c) in &self.checks {
                *counts.entry(c.as_str()).or_default() += 1;
            }
            let c: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
            parts.push(format!("checks: {}", c.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrState {
    Open,
    Merged,
    Closed,
}

/// An issue or a pull request as the forge holding it shows it now, for reports (`squad simulate
/// --json` lists these, whichever GitHub holds them).
///
/// ```
/// use squad_protocols::forge::{ForgeItem, PrState, PullItem};
/// let pr = ForgeItem {
///     number: 4,
///     url: "https://github.com/acme/gitops/pull/4".into(),
///     title: "fix(infra): more memory".into(),
///     body: "...".into(),
///     labels: vec!["incident".into()],
///     open: false,
///     comments: vec![],
///     pull: Some(PullItem { branch: "squad/inc-1-memory".into(), base: "main".into(), state: PrState::Merged, files: vec!["k8s/app.yaml".into()] }),
/// };
/// let json = serde_json::to_string(&pr).unwrap();
/// assert_eq!(serde_json::from_str::<ForgeItem>(&json).unwrap(), pr);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeItem {
    pub number: u64,
    /// Where a person opens it.
    pub url: String,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub open: bool,
    /// The comments' bodies, oldest first.
    pub comments: Vec<String>,
    /// Set when the item is a pull request.
    pub pull: Option<PullItem>,
}

/// What a pull request adds to an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullItem {
    pub branch: String,
    pub base: String,
    pub state: PrState,
    /// The paths it changes.
    pub files: Vec<String>,
}

/// The hidden marker every artifact carries, so a retry finds it instead of making a second one.
///
/// ```
/// let m = squad_protocols::forge::marker("inc-1", "incident-issue");
/// assert_eq!(m, "<!-- squad:inc-1:incident-issue -->");
/// ```
pub fn marker(incident: &str, action: &str) -> String {
    format!("<!-- squad:{incident}:{action} -->")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn forge_types_round_trip() {
        let pr = PrSpec {
            title: "t".into(),
            body: "b".into(),
            branch: "squad/x".into(),
            base: "main".into(),
            commit_message: "m".into(),
            files: vec![FileChange {
                path: "a.yaml".into(),
                content: "x: 1\n".into(),
            }],
            labels: vec!["incident".into()],
        };
        let s = serde_json::to_string(&pr).unwrap();
        assert_eq!(serde_json::from_str::<PrSpec>(&s).unwrap(), pr);
        let st = serde_json::to_string(&PrState::Merged).unwrap();
        assert_eq!(st, "\"merged\"");
    }
}
