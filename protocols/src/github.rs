//! GitHub webhooks squad follows PRs with: the events Ralph cares about (`pull_request`,
//! `pull_request_review`, `issue_comment`) read into typed values. Their `X-Hub-Signature-256`
//! check is the daemon's (the `squad` crate's `signature` module), done before they are read.

use serde_json::Value;

use crate::ProtocolError;

/// A webhook event squad acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubEvent {
    /// A pull request changed: `action` as GitHub names it (`closed`, `reopened`, ...).
    PullRequest {
        repo: String,
        number: u64,
        action: String,
        merged: bool,
        by: String,
    },
    /// A review was submitted (or edited/dismissed): `state` is `approved`,
    /// `changes_requested`, `commented` or `dismissed`.
    Review {
        repo: String,
        number: u64,
        action: String,
        state: String,
        by: String,
    },
    /// A comment on an issue or a pull request (PRs are issues to GitHub).
    IssueComment {
        repo: String,
        number: u64,
        action: String,
        by: String,
        body: String,
    },
}

impl GitHubEvent {
    pub fn repo(&self) -> &str {
        match self {
            GitHubEvent::PullRequest { repo, .. }
            | GitHubEvent::Review { repo, .. }
            | GitHubEvent::IssueComment { repo, .. } => repo,
        }
    }

    /// The issue or pull request number it is about.
    pub fn number(&self) -> u64 {
        match self {
            GitHubEvent::PullRequest { number, .. }
            | GitHubEvent::Review { number, .. }
            | GitHubEvent::IssueComment { number, .. } => *number,
        }
    }

    /// One line for the incident's timeline (control and bidirectional characters of the
    /// sender's text replaced by U+FFFD).
    pub fn describe(&self) -> String {
        let line = match self {
            GitHubEvent::PullRequest {
                number,
                action,
                merged,
                by,
                ..
            } => {
                let what = if action == "closed" && *merged {
                    "merged"
                } else {
                    action
                };
                format!("GitHub: PR #{number} {what} by {by}")
            }
            GitHubEvent::Review {
                number, state, by, ..
            } => format!("GitHub: review on PR #{number}: {state} by {by}"),
            GitHubEvent::IssueComment {
                number, by, body, ..
            } => {
                let excerpt: String = body
                    .chars()
                    .take(120)
                    .map(|c| if c == '\n' { ' ' } else { c })
                    .collect();
                format!("GitHub: {by} commented on #{number}: {excerpt}")
            }
        };
        crate::text::sanitize(&line, false).into_owned()
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Result<&'a str, ProtocolError> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p).unwrap_or(&Value::Null);
    }
    match cur {
        Value::String(s) => Ok(s),
        Value::Null => Err(ProtocolError::missing(path.join("."), "a string")),
        other => Err(ProtocolError::invalid(
            path.join("."),
            "a string",
            crate::json::describe(other),
        )),
    }
}

fn u64_at(v: &Value, path: &[&str]) -> Result<u64, ProtocolError> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p).unwrap_or(&Value::Null);
    }
    match cur {
        Value::Null => Err(ProtocolError::missing(path.join("."), "a number")),
        other => other.as_u64().ok_or_else(|| {
            ProtocolError::invalid(
                path.join("."),
                "a non-negative integer (an issue or pull request number)",
                crate::json::describe(other),
            )
        }),
    }
}

/// Reads a delivery of `event` (the `X-GitHub-Event` header). Events squad does not follow are
/// `Ok(None)`; a followed event with a field missing is an error naming it.
pub fn parse_github_webhook(
    event: &str,
    body: &[u8],
) -> Result<Option<GitHubEvent>, ProtocolError> {
    let followed = matches!(
        event,
        "pull_request" | "pull_request_review" | "issue_comment"
    );
    if !followed {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ProtocolError::Malformed(format!(
            "the {event} payload is not JSON: {}",
            crate::json::json_error(&e)
        ))
    })?;
    let repo = str_at(&v, &["repository", "full_name"])?.to_string();
    let action = str_at(&v, &["action"])?.to_string();
    let by = str_at(&v, &["sender", "login"])?.to_string();
    Ok(Some(match event {
        "pull_request" => GitHubEvent::PullRequest {
            repo,
            number: u64_at(&v, &["pull_request", "number"])?,
            merged: v["pull_request"]["merged"].as_bool().unwrap_or(false),
            action,
            by,
        },
        "pull_request_review" => GitHubEvent::Review {
            repo,
            number: u64_at(&v, &["pull_request", "number"])?,
            state: str_at(&v, &["review", "state"])?.to_ascii_lowercase(),
            action,
            by,
        },
        _ => GitHubEvent::IssueComment {
            repo,
            number: u64_at(&v, &["issue", "number"])?,
            body: str_at(&v, &["comment", "body"])?.to_string(),
            action,
            by,
        },
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CLOSED: &str =
        include_str!("../../tests/fixtures/github-webhooks/pull_request.closed.json");
    const REVIEW: &str =
        include_str!("../../tests/fixtures/github-webhooks/pull_request_review.submitted.json");
    const COMMENT: &str =
        include_str!("../../tests/fixtures/github-webhooks/issue_comment.created.json");

    #[test]
    fn real_payloads_parse_into_the_events_ralph_follows() {
        let pr = parse_github_webhook("pull_request", CLOSED.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(
            pr,
            GitHubEvent::PullRequest {
                repo: "Codertocat/Hello-World".into(),
                number: 2,
                action: "closed".into(),
                merged: false,
                by: "Codertocat".into()
            }
        );
        assert_eq!(pr.describe(), "GitHub: PR #2 closed by Codertocat");
        // The same delivery for a merged PR.
        let mut merged: Value = serde_json::from_str(CLOSED).unwrap();
        merged["pull_request"]["merged"] = Value::Bool(true);
        let merged = parse_github_webhook("pull_request", merged.to_string().as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(merged.describe(), "GitHub: PR #2 merged by Codertocat");
        let review = parse_github_webhook("pull_request_review", REVIEW.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(
            review.describe(),
            "GitHub: review on PR #2: commented by Codertocat"
        );
        let comment = parse_github_webhook("issue_comment", COMMENT.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(
            (comment.repo(), comment.number()),
            ("Codertocat/Hello-World", 1)
        );
        assert!(parse_github_webhook("push", b"{}").unwrap().is_none());
        let e = parse_github_webhook(
            "pull_request",
            br#"{"action":"closed","repository":{"full_name":"a/b"},"sender":{"login":"x"}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("pull_request.number"), "{e}");
        let e = parse_github_webhook("issue_comment", b"not json").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
    }
}
