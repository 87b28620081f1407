//! The repository's issues and pull requests as GitHub shows them now, for reports.

use serde_json::Value;
use squad_protocols::forge::{ForgeItem, PullItem};
use squad_runtime::ports::PortResult;

use super::GitHubForge;
use super::fields::{field_str, field_u64};

impl GitHubForge {
    /// Every issue and pull request of the repository as GitHub shows it now, with their
    /// comments, and for pull requests their branches, state and changed files. For reports: it
    /// reads the whole repository's issues (two list requests, two more per pull request).
    pub async fn listing(&self) -> PortResult<Vec<ForgeItem>> {
        let issues = self
            .get_all(
                "list issues",
                &self.route("/issues?state=all&sort=created&direction=asc"),
            )
            .await?;
        let comments = self
            .get_all(
                "list issue comments",
                &self.route("/issues/comments?sort=created&direction=asc"),
            )
            .await?;
        let mut by_issue: std::collections::BTreeMap<u64, Vec<(u64, String)>> = Default::default();
        for c in &comments {
            let issue = c
                .get("issue_url")
                .and_then(Value::as_str)
                .and_then(|u| u.rsplit('/').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let id = c.get("id").and_then(Value::as_u64).unwrap_or(0);
            let body = c
                .get("body")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            by_issue.entry(issue).or_default().push((id, body));
        }
        let mut out = Vec::new();
        for i in &issues {
            let number = field_u64(i, "number", "issue")?;
            let pull = match i.get("pull_request") {
                Some(_) => {
                    let pr = self
                        .get(
                            &format!("read #{number}"),
                            &self.route(&format!("/pulls/{number}")),
                        )
                        .await?;
                    let files = self
                        .get_all(
                            &format!("list the files of #{number}"),
                            &self.route(&format!("/pulls/{number}/files")),
                        )
                        .await?;
                    Some(PullItem {
                        branch: field_str(&pr, &["head", "ref"], "pull request")?,
                        base: field_str(&pr, &["base", "ref"], "pull request")?,
                        state: super::fields::pr_state_of(&pr),
                        files: files
                            .iter()
                            .filter_map(|f| f.get("filename").and_then(Value::as_str))
                            .map(str::to_owned)
                            .collect(),
                    })
                }
                None => None,
            };
            let mut comments = by_issue.remove(&number).unwrap_or_default();
            comments.sort_by_key(|(id, _)| *id);
            out.push(ForgeItem {
                number,
                url: i
                    .get("html_url")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                title: i
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                body: i
                    .get("body")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                labels: i
                    .get("labels")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l.get("name").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect(),
                open: i.get("state").and_then(Value::as_str) != Some("closed"),
                comments: comments.into_iter().map(|(_, b)| b).collect(),
                pull,
            });
        }
        out.sort_by_key(|i| i.number);
        Ok(out)
    }
}
