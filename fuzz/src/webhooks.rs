//! The daemon's intake: Alertmanager, PagerDuty, generic and GitHub webhook bodies, and the
//! HMAC signature headers checked before any of them is read.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use squad::signature::{verify_github_signature, verify_pagerduty_signature};
use squad_protocols::Alert;
use squad_protocols::github::{GitHubEvent, parse_github_webhook};

/// An accepted alert serializes and parses back to itself. (Alertmanager's parser also
/// validates; the PagerDuty and generic ones leave that to the intake, which runs it here too.)
fn check_alert(alert: &Alert) {
    let _ = alert.validate();
    let json = serde_json::to_string(alert);
    assert!(json.is_ok(), "accepted alert does not serialize: {alert:?}");
    let back = json
        .ok()
        .map(|j| serde_json::from_str::<Alert>(&j).map_err(|e| e.to_string()));
    assert_eq!(
        back,
        Some(Ok(alert.clone())),
        "alert does not survive its JSON"
    );
}

/// `squad_protocols::alert::parse_alertmanager_webhook`: what it accepts is non-empty and every
/// alert is valid and round-trips.
pub fn alertmanager_webhook(data: &[u8]) {
    let Ok(alerts) = squad_protocols::alert::parse_alertmanager_webhook(data) else {
        return;
    };
    assert!(
        !alerts.is_empty(),
        "an accepted Alertmanager body has no alert"
    );
    for alert in &alerts {
        assert!(
            alert.validate().is_ok(),
            "accepted alert fails validation: {alert:?}"
        );
        check_alert(alert);
    }
}

/// `squad_protocols::pagerduty::parse_pagerduty_webhook`: an accepted event round-trips through
/// its JSON, and its alert (if any) is valid.
pub fn pagerduty_webhook(data: &[u8]) {
    let Ok(event) = squad_protocols::pagerduty::parse_pagerduty_webhook(data) else {
        return;
    };
    if let Some(alert) = &event.alert {
        check_alert(alert);
    }
    let back = serde_json::to_string(&event)
        .map_err(|e| e.to_string())
        .and_then(|j| serde_json::from_str(&j).map_err(|e| e.to_string()));
    assert_eq!(back, Ok(event), "PagerDuty event does not survive its JSON");
}

/// `squad_protocols::generic::parse_generic_alerts`: the accepted alerts round-trip, and written
/// back in the generic format they parse to themselves again.
pub fn generic_alerts(data: &[u8]) {
    let Ok(alerts) = squad_protocols::generic::parse_generic_alerts(data) else {
        return;
    };
    assert!(!alerts.is_empty(), "an accepted generic body has no alert");
    alerts.iter().for_each(check_alert);
    let written: Vec<Value> = alerts
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "status": a.status,
                "labels": a.labels,
                "annotations": a.annotations,
                "starts_at": a.starts_at.map(|t| t.to_rfc3339()),
                "fingerprint": a.fingerprint,
            })
        })
        .collect();
    let body = json!({ "alerts": written }).to_string();
    let again = squad_protocols::generic::parse_generic_alerts(body.as_bytes());
    assert_eq!(
        again.as_ref().ok(),
        Some(&alerts),
        "generic alerts written back: {again:?}"
    );
}

/// The events squad follows, and one it does not.
const GITHUB_EVENTS: [&str; 4] = [
    "pull_request",
    "pull_request_review",
    "issue_comment",
    "push",
];

/// `squad_protocols::github::parse_github_webhook`: the first line is the `X-GitHub-Event`
/// header (an index into [`GITHUB_EVENTS`] when it is one digit), the rest the body. An accepted
/// event, written back as the smallest payload of its kind, parses to itself.
pub fn github_webhook(data: &[u8]) {
    let (head, body) = super::split_first_line(data);
    let event = match head {
        [d @ b'0'..=b'9'] => GITHUB_EVENTS[usize::from(d - b'0') % GITHUB_EVENTS.len()],
        other => match super::text(other) {
            Some(name) => name,
            None => return,
        },
    };
    let Ok(Some(parsed)) = parse_github_webhook(event, body) else {
        return;
    };
    let _ = parsed.describe();
    let payload = match &parsed {
        GitHubEvent::PullRequest {
            repo,
            number,
            action,
            merged,
            by,
        } => json!({
            "action": action, "repository": {"full_name": repo}, "sender": {"login": by},
            "pull_request": {"number": number, "merged": merged},
        }),
        GitHubEvent::Review {
            repo,
            number,
            action,
            state,
            by,
        } => json!({
            "action": action, "repository": {"full_name": repo}, "sender": {"login": by},
            "pull_request": {"number": number}, "review": {"state": state},
        }),
        GitHubEvent::IssueComment {
            repo,
            number,
            action,
            by,
            body,
        } => json!({
            "action": action, "repository": {"full_name": repo}, "sender": {"login": by},
            "issue": {"number": number}, "comment": {"body": body},
        }),
    };
    let again = parse_github_webhook(event, payload.to_string().as_bytes());
    assert_eq!(again, Ok(Some(parsed)), "GitHub event written back");
}

/// The secret the signature target signs with.
const SECRET: &str = "fuzz-webhook-secret";

fn hmac_hex(body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// `squad::signature`: the first line is the header value (for both `X-PagerDuty-Signature` and
/// `X-Hub-Signature-256`), the rest the body. A header is accepted only when it carries the
/// body's true HMAC; the true signature, alone or among others, is always accepted.
pub fn webhook_signatures(data: &[u8]) {
    let (head, body) = super::split_first_line(data);
    let Some(header) = super::text(head) else {
        return;
    };
    let secrets = vec![String::new(), "other-secret".to_owned(), SECRET.to_owned()];
    let truth = hmac_hex(body);
    let carries_truth = header.to_ascii_lowercase().contains(&truth);
    let pagerduty = verify_pagerduty_signature(body, Some(header), &secrets);
    assert!(
        pagerduty.is_err() || carries_truth,
        "X-PagerDuty-Signature {header:?} accepted without the body's HMAC"
    );
    let github = verify_github_signature(body, Some(header), &secrets);
    assert!(
        github.is_err() || carries_truth,
        "X-Hub-Signature-256 {header:?} accepted without the body's HMAC"
    );
    let _ = (
        pagerduty.map_err(|e| e.to_string()),
        github.map_err(|e| e.to_string()),
    );
    let rotated = format!("v0=abc, v1={}, v1={truth}", "0".repeat(64));
    assert_eq!(
        verify_pagerduty_signature(body, Some(&rotated), &secrets),
        Ok(())
    );
    let github_header = format!("sha256={truth}");
    assert_eq!(
        verify_github_signature(body, Some(&github_header), &secrets),
        Ok(())
    );
    // The header's signature over the body with one more byte is refused.
    let mut longer = body.to_vec();
    longer.push(b'\n');
    assert!(verify_github_signature(&longer, Some(&github_header), &secrets).is_err());
}
