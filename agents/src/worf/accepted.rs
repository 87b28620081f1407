//! Accepted risk: a team that closes a workload's security issue on purpose ("not planned", or
//! with one of `[security] accepted_risk_labels`) has accepted the findings written on it. Worf
//! then leaves the issue closed for those findings, and reopens it only for findings it has not
//! listed there before.
//!
//! Every list of findings Worf writes on the issue ends with a hidden marker of their keys, so
//! what was accepted is read back from the issue itself (body and comments), not from squad's
//! own store: it survives a new install, and a person may edit it.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use squad_protocols::{Finding, IssueDetail};

const OPEN: &str = "<!-- squad:worf-findings ";
const CLOSE: &str = " -->";

/// A finding's key: its title, hashed (titles name the check and the object, never a value).
pub fn key(f: &Finding) -> String {
    let digest = Sha256::digest(f.title.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The hidden marker listing `findings`' keys, written under each list of findings.
pub fn marker(findings: &[&Finding]) -> String {
    let keys: Vec<String> = findings.iter().map(|f| key(f)).collect();
    format!("{OPEN}{}{CLOSE}", keys.join(" "))
}

/// The keys every marker in `texts` lists.
fn listed(texts: &[String]) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for text in texts {
        let mut rest = text.as_str();
        while let Some(at) = rest.find(OPEN) {
            rest = &rest[at + OPEN.len()..];
            let end = rest.find(CLOSE).unwrap_or(rest.len());
            keys.extend(rest[..end].split_whitespace().map(str::to_owned));
            rest = &rest[end..];
        }
    }
    keys
}

/// Why the team accepted the risk on this issue, or none: it is closed as not planned, or closed
/// with one of `labels`. An open issue is being worked on, whatever its labels.
pub fn accepted_because(issue: &IssueDetail, labels: &[String]) -> Option<String> {
    if issue.open {
        return None;
    }
    if let Some(label) = issue
        .labels
        .iter()
        .find(|l| labels.iter().any(|a| a.eq_ignore_ascii_case(l)))
    {
        return Some(format!("closed with the label `{label}`"));
    }
    (issue.state_reason.as_deref() == Some("not_planned")).then(|| "closed as not planned".into())
}

/// The findings of `serious` the issue has not listed yet: what an accepted risk does not cover.
pub fn not_listed<'a>(issue: &IssueDetail, serious: &[&'a Finding]) -> Vec<&'a Finding> {
    let known = listed(&issue.texts);
    serious
        .iter()
        .copied()
        .filter(|f| !known.contains(&key(f)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use squad_protocols::Severity;

    fn finding(title: &str) -> Finding {
        Finding {
            severity: Severity::High,
            title: title.into(),
            detail: "detail".into(),
        }
    }

    fn issue(open: bool, reason: Option<&str>, labels: &[&str], texts: &[String]) -> IssueDetail {
        IssueDetail {
            open,
            state_reason: reason.map(str::to_owned),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            texts: texts.to_vec(),
        }
    }

    #[test]
    fn closed_as_not_planned_or_with_a_label_is_accepted_open_or_completed_is_not() {
        let labels = vec!["accepted-risk".to_owned(), "wontfix".to_owned()];
        let cases = [
            (
                issue(false, Some("not_planned"), &[], &[]),
                Some("closed as not planned"),
            ),
            (
                issue(false, Some("completed"), &["security", "WontFix"], &[]),
                Some("closed with the label `WontFix`"),
            ),
            (issue(false, Some("completed"), &["security"], &[]), None),
            (issue(false, None, &[], &[]), None),
            (issue(true, Some("reopened"), &["accepted-risk"], &[]), None),
        ];
        for (i, want) in cases {
            assert_eq!(accepted_because(&i, &labels).as_deref(), want, "{i:?}");
        }
    }

    #[test]
    fn only_findings_no_marker_on_the_issue_lists_are_new() {
        let (privileged, root, latest) = (
            finding("container app is privileged"),
            finding("container app may run as root"),
            finding("image nginx:latest is not pinned"),
        );
        let body = format!(
            "Found while handling incident a.\n- [ ] privileged\n{}\n",
            marker(&[&privileged])
        );
        let comment = format!("Seen again.\n{}", marker(&[&privileged, &root]));
        let i = issue(false, Some("not_planned"), &[], &[body.clone(), comment]);
        let serious = [&privileged, &root, &latest];
        let new: Vec<&str> = not_listed(&i, &serious)
            .iter()
            .map(|f| f.title.as_str())
            .collect();
        assert_eq!(new, ["image nginx:latest is not pinned"]);
        // A body without markers (an issue filed before them, or edited) covers nothing.
        let bare = issue(false, Some("not_planned"), &[], &["no marker".into()]);
        assert_eq!(not_listed(&bare, &serious).len(), 3);
        // A marker cut short at the end of a text still counts its keys.
        let cut = issue(false, None, &[], &[format!("{OPEN}{}", key(&latest))]);
        assert_eq!(not_listed(&cut, &serious).len(), 2);
        assert_ne!(key(&privileged), key(&root));
        assert_eq!(key(&privileged).len(), 12);
    }
}
