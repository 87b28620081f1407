//! PagerDuty V3 webhooks: verifying their signatures and turning incident events into alerts.
//!
//! A V3 webhook subscription POSTs one event per request, `{"event": {"id", "event_type",
//! "resource_type", "occurred_at", "agent", "client", "data"}}`, and signs the raw body in the
//! `X-PagerDuty-Signature` header: one or more comma-separated `v1=<hex HMAC-SHA256 of the body>`
//! entries, one per signing secret, so a secret can be rotated without downtime. The daemon calls
//! [`verify_pagerduty_signature`] on the raw body before [`parse_pagerduty_webhook`].
//!
//! What squad makes of each event:
//!
//! | `event.event_type`                                              | alert                      |
//! |-----------------------------------------------------------------|----------------------------|
//! | `incident.triggered`, `incident.reopened`, `incident.escalated` | firing                     |
//! | `incident.resolved`                                             | resolved, same fingerprint |
//! | other incident events, and PagerDuty's `pagey.ping` test event  | none (acknowledge, drop)   |
//! | events about anything but incidents                             | error                      |
//!
//! The alert's fingerprint is derived from the PagerDuty incident id, so the triggered, escalated,
//! reopened and resolved events of one incident all land on the same squad incident.
//!
//! PagerDuty incidents do not carry labels, so squad looks for the Kubernetes ones it needs
//! (`alertname`, `namespace`, `pod`, `container`, `deployment`) in, first to last: a JSON
//! `details` / `custom_details` object on the incident or its `body` (direct keys, then
//! `key=value` pairs inside its string values, which is how Alertmanager's default `firing`
//! detail lists labels), then `key=value` pairs in the title, then in the incident key. Pairs may
//! be quoted (`pod="api-0"`) and spaced (`pod = api-0`). Labels found nowhere are left absent.
//! With Alertmanager's `pagerduty_configs`, a description naming the labels gives squad all it
//! needs:
//!
//! ```yaml
//! description: >-
//!   [{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}
//!   alertname={{ .CommonLabels.alertname }} namespace={{ .CommonLabels.namespace }}
//!   pod={{ .CommonLabels.pod }} container={{ .CommonLabels.container }}
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::alert::fingerprint_of;
use crate::generic::{describe, optional_str, shorten};
use crate::{Alert, AlertSource, AlertStatus, ProtocolError};

/// The request header that carries PagerDuty's webhook signatures.
pub const PAGERDUTY_SIGNATURE_HEADER: &str = "X-PagerDuty-Signature";

/// The labels squad takes from a PagerDuty incident's title, key or details when present.
pub const PAGERDUTY_KUBERNETES_LABELS: [&str; 5] =
    ["alertname", "namespace", "pod", "container", "deployment"];

/// Why a PagerDuty webhook delivery failed signature verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The request has no `X-PagerDuty-Signature` header.
    #[error(
        "missing header `X-PagerDuty-Signature`: expected one or more comma-separated \
         `v1=<hex HMAC-SHA256 of the body>` signatures"
    )]
    MissingHeader,
    /// The header is present but holds no usable `v1=` signature.
    #[error(
        "malformed header `X-PagerDuty-Signature`: expected comma-separated \
         `v1=<64 hex digits>` signatures, {problem}"
    )]
    MalformedHeader { problem: String },
    /// Well-formed signatures, none of which any configured secret produced.
    #[error(
        "no signature in `X-PagerDuty-Signature` matches a configured PagerDuty webhook secret \
         ({signatures} signature(s) checked against {secrets} secret(s))"
    )]
    NoMatch { signatures: usize, secrets: usize },
    /// No non-empty secret is configured, so nothing can be verified.
    #[error("no PagerDuty webhook secret is configured: expected at least one non-empty secret")]
    NoSecrets,
}

type HmacSha256 = Hmac<Sha256>;

/// Checks `X-PagerDuty-Signature` against the raw request body.
///
/// Accepts the delivery when any `v1=` signature in the header is the HMAC-SHA256 of `body` under
/// any of `secrets` (PagerDuty signs with every active secret during a rotation). Entries of other
/// versions are skipped, as PagerDuty's documentation asks; empty secrets are never used, since
/// anyone could sign with them. Comparison is constant-time.
///
/// ```
/// use squad_protocols::pagerduty::{verify_pagerduty_signature, SignatureError};
/// // RFC 4231 test case 2: HMAC-SHA256 of "what do ya want for nothing?" under "Jefe".
/// let body = b"what do ya want for nothing?";
/// let header = "v1=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
/// let secrets = vec!["old-secret".to_string(), "Jefe".to_string()];
/// assert_eq!(verify_pagerduty_signature(body, Some(header), &secrets), Ok(()));
/// assert_eq!(
///     verify_pagerduty_signature(body, None, &secrets),
///     Err(SignatureError::MissingHeader)
/// );
/// ```
pub fn verify_pagerduty_signature(
    body: &[u8],
    header: Option<&str>,
    secrets: &[String],
) -> Result<(), SignatureError> {
    let keys: Vec<&[u8]> = secrets
        .iter()
        .map(|secret| secret.as_bytes())
        .filter(|key| !key.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(SignatureError::NoSecrets);
    }
    let signatures = parse_signature_header(header.ok_or(SignatureError::MissingHeader)?)?;
    for key in &keys {
        // HMAC takes keys of any length, so this never skips a secret.
        let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
            continue;
        };
        mac.update(body);
        for signature in &signatures {
            // verify_slice compares in constant time.
            if mac.clone().verify_slice(signature).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::NoMatch {
        signatures: signatures.len(),
        secrets: keys.len(),
    })
}

/// The decoded `v1=` signatures of the header, each 32 bytes.
fn parse_signature_header(header: &str) -> Result<Vec<Vec<u8>>, SignatureError> {
    let mut signatures = Vec::new();
    for (i, entry) in header.split(',').map(str::trim).enumerate() {
        let Some(hex_digits) = entry.strip_prefix("v1=") else {
            continue;
        };
        match hex::decode(hex_digits) {
            Ok(bytes) if bytes.len() == 32 => signatures.push(bytes),
            _ => {
                return Err(SignatureError::MalformedHeader {
                    problem: format!(
                        "entry {i} is not 64 hex digits after `v1=`: {:?}",
                        shorten(entry)
                    ),
                });
            }
        }
    }
    if signatures.is_empty() {
        return Err(SignatureError::MalformedHeader {
            problem: format!("found no `v1=` entry in {:?}", shorten(header)),
        });
    }
    Ok(signatures)
}

/// One PagerDuty webhook event, and the alert squad makes of it, if any.
///
/// ```
/// use squad_protocols::pagerduty::{parse_pagerduty_webhook, PagerDutyEvent};
/// use squad_protocols::AlertStatus;
/// let body = br#"{"event": {"id": "01DEN2MQ7BGT7S1ZR8TSC6SPWX",
///   "event_type": "incident.triggered", "resource_type": "incident",
///   "data": {"id": "Q2OFMEBLB1OQ9Y", "type": "incident",
///            "title": "KubePodCrashLooping namespace=shop pod=cart-5f7c9-2kq4z"}}}"#;
/// let event: PagerDutyEvent = parse_pagerduty_webhook(body).unwrap();
/// let alert = event.alert.as_ref().unwrap();
/// assert_eq!(alert.status, AlertStatus::Firing);
/// assert_eq!(alert.namespace(), Some("shop"));
/// assert_eq!(alert.label("pagerduty_incident_id"), Some("Q2OFMEBLB1OQ9Y"));
/// let json = serde_json::to_string(&event).unwrap();
/// assert_eq!(serde_json::from_str::<PagerDutyEvent>(&json).unwrap(), event);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagerDutyEvent {
    /// PagerDuty's id for the event (`event.id`); a redelivery carries the same id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// `event.event_type`, e.g. `incident.triggered`.
    pub event_type: String,
    /// The alert for triggered, reopened, escalated and resolved incidents; `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Alert>,
}

/// Parses a PagerDuty V3 webhook body. See the module docs for what becomes an alert.
///
/// Errors name the field that is wrong and what was expected, e.g.
/// ``invalid field `event.resource_type`: expected "incident" ...``.
pub fn parse_pagerduty_webhook(body: &[u8]) -> Result<PagerDutyEvent, ProtocolError> {
    let root: Value = serde_json::from_slice(body).map_err(|e| {
        ProtocolError::Malformed(format!("PagerDuty webhook is not valid JSON: {e}"))
    })?;
    let Value::Object(root) = root else {
        return Err(ProtocolError::Malformed(format!(
            "PagerDuty webhook must be a JSON object with an `event` object, got {}",
            describe(&root)
        )));
    };
    let event = match root.get("event") {
        Some(Value::Object(event)) => event,
        Some(other) => {
            return Err(ProtocolError::invalid(
                "event",
                "an object (PagerDuty V3 webhook)",
                describe(other),
            ));
        }
        None => {
            return Err(ProtocolError::missing(
                "event",
                "an object (PagerDuty V3 webhook; V1/V2 webhooks are not supported)",
            ));
        }
    };
    let event_type = required_str(event, "event_type", "event.event_type", EVENT_TYPE)?;
    let event_id = optional_str(event, "id", "event.id")?.map(str::to_owned);
    let acknowledged_only = |event_type: &str| PagerDutyEvent {
        event_id: event_id.clone(),
        event_type: event_type.to_owned(),
        alert: None,
    };
    // PagerDuty's "send test event" button; its resource_type is "pagey".
    if event_type == "pagey.ping" {
        return Ok(acknowledged_only(event_type));
    }
    let resource_type = required_str(event, "resource_type", "event.resource_type", RESOURCE_TYPE)?;
    if resource_type != "incident" {
        return Err(ProtocolError::invalid(
            "event.resource_type",
            RESOURCE_TYPE,
            resource_type,
        ));
    }
    let status = match event_type {
        "incident.triggered" | "incident.reopened" | "incident.escalated" => AlertStatus::Firing,
        "incident.resolved" => AlertStatus::Resolved,
        _ => return Ok(acknowledged_only(event_type)),
    };
    let data = match event.get("data") {
        Some(Value::Object(data)) => data,
        Some(other) => {
            return Err(ProtocolError::invalid(
                "event.data",
                "the incident object",
                describe(other),
            ));
        }
        None => return Err(ProtocolError::missing("event.data", "the incident object")),
    };
    let alert = incident_alert(data, status)?;
    Ok(PagerDutyEvent {
        event_id,
        event_type: event_type.to_owned(),
        alert: Some(alert),
    })
}

const EVENT_TYPE: &str = "a PagerDuty event type such as \"incident.triggered\"";
const RESOURCE_TYPE: &str = "\"incident\" (squad handles PagerDuty incident events only)";

fn incident_alert(data: &Map<String, Value>, status: AlertStatus) -> Result<Alert, ProtocolError> {
    if let Some(kind) = optional_str(data, "type", "event.data.type")?
        && kind != "incident"
    {
        return Err(ProtocolError::invalid(
            "event.data.type",
            "\"incident\"",
            kind,
        ));
    }
    let id = required_str(
        data,
        "id",
        "event.data.id",
        "the PagerDuty incident id, e.g. \"PGR0VU2\"",
    )?;
    let title = optional_str(data, "title", "event.data.title")?;
    let incident_key = optional_str(data, "incident_key", "event.data.incident_key")?;
    let urgency = optional_str(data, "urgency", "event.data.urgency")?;
    let html_url = optional_str(data, "html_url", "event.data.html_url")?;
    let service = reference_summary(data, "service", "event.data.service")?;
    let priority = reference_summary(data, "priority", "event.data.priority")?;
    let starts_at = match optional_str(data, "created_at", "event.data.created_at")? {
        None => None,
        Some(s) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| {
                    ProtocolError::invalid("event.data.created_at", "an RFC 3339 timestamp", s)
                })?
                .with_timezone(&Utc),
        ),
    };

    let mut labels = kubernetes_labels(data, title, incident_key);
    let name = match (
        labels.get("alertname"),
        title.map(strip_alertmanager_prefix),
    ) {
        (Some(alertname), _) => alertname.clone(),
        (None, Some(title)) if !title.is_empty() => title.to_owned(),
        _ => {
            return Err(ProtocolError::missing(
                "event.data.title",
                "the incident's title (or an alertname=... pair), used as the alert's name",
            ));
        }
    };
    let identity = BTreeMap::from([("pagerduty_incident_id".to_owned(), id.to_owned())]);
    let fingerprint = fingerprint_of(&identity);
    labels.extend(identity);
    for (key, value) in [
        ("incident_key", incident_key),
        ("service", service),
        ("urgency", urgency),
        ("priority", priority),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            labels.insert(key.to_owned(), value.to_owned());
        }
    }
    let mut annotations = BTreeMap::new();
    for (key, value) in [("summary", title), ("pagerduty_url", html_url)] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            annotations.insert(key.to_owned(), value.to_owned());
        }
    }
    Ok(Alert {
        source: AlertSource::Pagerduty,
        name,
        status,
        labels,
        annotations,
        starts_at,
        fingerprint,
        group_key: None,
    })
}

/// `summary` of a PagerDuty reference object such as `service` or `priority`, which may be null.
fn reference_summary<'a>(
    data: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a str>, ProtocolError> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(reference)) => {
            optional_str(reference, "summary", &format!("{field}.summary"))
        }
        Some(other) => Err(ProtocolError::invalid(
            field,
            "a PagerDuty reference object with a `summary`, or null",
            describe(other),
        )),
    }
}

/// Alertmanager's default PagerDuty description starts `[FIRING:2] ` or `[RESOLVED] `.
fn strip_alertmanager_prefix(title: &str) -> &str {
    let title = title.trim();
    if (title.starts_with("[FIRING") || title.starts_with("[RESOLVED"))
        && let Some(end) = title.find(']')
    {
        return title.get(end + 1..).unwrap_or(title).trim();
    }
    title
}

/// The Kubernetes labels findable in the incident, in the order the module docs give.
fn kubernetes_labels(
    data: &Map<String, Value>,
    title: Option<&str>,
    incident_key: Option<&str>,
) -> BTreeMap<String, String> {
    let body = match data.get("body") {
        Some(Value::Object(body)) => Some(body),
        _ => None,
    };
    let details: Vec<&Value> = [Some(data), body]
        .into_iter()
        .flatten()
        .flat_map(|holder| ["details", "custom_details"].map(|key| holder.get(key)))
        .flatten()
        .collect();
    let mut labels = BTreeMap::new();
    for key in PAGERDUTY_KUBERNETES_LABELS {
        let found = details
            .iter()
            .find_map(|d| detail_value(d, key))
            .or_else(|| details.iter().find_map(|d| detail_text_pair(d, key)))
            .or_else(|| title.and_then(|t| find_pair(t, key)))
            .or_else(|| incident_key.and_then(|k| find_pair(k, key)));
        if let Some(value) = found {
            labels.insert(key.to_owned(), value);
        }
    }
    labels
}

/// `details.<key>` when details is an object holding a usable string there.
fn detail_value(details: &Value, key: &str) -> Option<String> {
    match details.get(key) {
        Some(Value::String(value)) => usable_value(value.trim()),
        _ => None,
    }
}

/// A `key=value` pair inside details given as text, or inside an object's string values.
fn detail_text_pair(details: &Value, key: &str) -> Option<String> {
    match details {
        Value::String(text) => find_pair(text, key),
        Value::Object(map) => map.values().find_map(|value| match value {
            Value::String(text) => find_pair(text, key),
            _ => None,
        }),
        _ => None,
    }
}

/// The value of the first `key=value` (or `key = value`, `key="value"`) pair in `text`, where
/// `key` stands alone (so `exported_namespace=x` is not `namespace`).
fn find_pair(text: &str, key: &str) -> Option<String> {
    text.match_indices(key).find_map(|(start, _)| {
        let standalone = text
            .get(..start)
            .and_then(|before| before.chars().next_back())
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'));
        if !standalone {
            return None;
        }
        let rest = text
            .get(start + key.len()..)?
            .trim_start_matches([' ', '\t']);
        let rest = rest.strip_prefix('=')?.trim_start_matches([' ', '\t']);
        let value = match rest.chars().next()? {
            quote @ ('"' | '\'') => {
                let inner = rest.get(1..)?;
                inner.get(..inner.find(quote)?)?
            }
            _ => {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.:/".contains(c)))
                    .unwrap_or(rest.len());
                rest.get(..end)?.trim_end_matches(['.', ':', '/'])
            }
        };
        usable_value(value)
    })
}

/// Label values squad will carry: non-empty, single-line, and no longer than a Kubernetes name.
fn usable_value(value: &str) -> Option<String> {
    let ok = !value.is_empty() && value.len() <= 253 && !value.contains(['\n', '\r']);
    ok.then(|| value.to_owned())
}

fn required_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    field: &str,
    expected: &str,
) -> Result<&'a str, ProtocolError> {
    match object.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(s)) => Err(ProtocolError::invalid(field, expected, s.as_str())),
        None | Some(Value::Null) => Err(ProtocolError::missing(field, expected)),
        Some(other) => Err(ProtocolError::invalid(field, expected, describe(other))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const TRIGGERED: &str = include_str!("../tests/fixtures/pagerduty/incident-triggered.json");
    const ACKNOWLEDGED: &str =
        include_str!("../tests/fixtures/pagerduty/incident-acknowledged.json");
    const RESOLVED: &str = include_str!("../tests/fixtures/pagerduty/incident-resolved.json");
    const ALERTMANAGER: &str =
        include_str!("../../tests/fixtures/alertmanager/webhook-v4-oomkilled-0.25.0.json");
    /// PagerDuty's "send test event" payload.
    const PING: &str = r#"{"event": {"id": "01FKZOXA868SHYEE4DVNWB5P9W",
        "event_type": "pagey.ping", "resource_type": "pagey",
        "occurred_at": "2026-11-23T19:00:00.000Z", "agent": null, "client": null,
        "data": {"message": "Hello from your friend Pagey!", "type": "ping"}}}"#;

    fn sign(body: &[u8], secret: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn secrets(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn parse(body: &str) -> PagerDutyEvent {
        parse_pagerduty_webhook(body.as_bytes()).unwrap()
    }

    fn err(body: &str) -> String {
        parse_pagerduty_webhook(body.as_bytes())
            .unwrap_err()
            .to_string()
    }

    /// The triggered fixture with `data` edited by `edit`.
    fn triggered_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut root: Value = serde_json::from_str(TRIGGERED).unwrap();
        let data = root["event"]["data"].as_object_mut().unwrap();
        edit(data);
        root.to_string()
    }

    // --- signatures -------------------------------------------------------------------------

    #[test]
    fn signature_over_the_raw_body_with_the_secret_is_accepted() {
        let header = sign(TRIGGERED.as_bytes(), "s3cret");
        assert_eq!(
            verify_pagerduty_signature(TRIGGERED.as_bytes(), Some(&header), &secrets(&["s3cret"])),
            Ok(())
        );
    }

    #[test]
    fn signature_matches_the_rfc_4231_hmac_sha256_vector() {
        let header = "v1=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let body = b"what do ya want for nothing?";
        assert_eq!(
            verify_pagerduty_signature(body, Some(header), &secrets(&["Jefe"])),
            Ok(())
        );
        assert_eq!(
            verify_pagerduty_signature(
                body,
                Some(&header.to_uppercase().replace("V1=", "v1=")),
                &secrets(&["Jefe"])
            ),
            Ok(()),
            "upper-case hex is still the same signature"
        );
    }

    #[test]
    fn signature_with_a_wrong_secret_is_no_match() {
        let header = sign(TRIGGERED.as_bytes(), "someone-else");
        assert_eq!(
            verify_pagerduty_signature(TRIGGERED.as_bytes(), Some(&header), &secrets(&["s3cret"])),
            Err(SignatureError::NoMatch {
                signatures: 1,
                secrets: 1
            })
        );
    }

    #[test]
    fn during_rotation_either_secret_verifies_either_signature() {
        let body = TRIGGERED.as_bytes();
        // PagerDuty signs with old and new secret; squad knows only the new one.
        let both = format!("{},{}", sign(body, "old"), sign(body, "new"));
        assert_eq!(
            verify_pagerduty_signature(body, Some(&both), &secrets(&["new"])),
            Ok(())
        );
        // PagerDuty signs with the new secret only; squad still lists the old one first.
        let new_only = sign(body, "new");
        assert_eq!(
            verify_pagerduty_signature(body, Some(&new_only), &secrets(&["old", "new"])),
            Ok(())
        );
        // Spaces after the comma, and entries of unknown versions, are tolerated.
        let spaced = format!("v2=abc, {}", sign(body, "new"));
        assert_eq!(
            verify_pagerduty_signature(body, Some(&spaced), &secrets(&["new"])),
            Ok(())
        );
    }

    #[test]
    fn missing_signature_header_is_its_own_error() {
        let e = verify_pagerduty_signature(TRIGGERED.as_bytes(), None, &secrets(&["s3cret"]));
        assert_eq!(e, Err(SignatureError::MissingHeader));
        assert!(e.unwrap_err().to_string().contains("X-PagerDuty-Signature"));
    }

    #[test]
    fn malformed_signature_headers_say_what_is_wrong() {
        let body = TRIGGERED.as_bytes();
        let good = sign(body, "s3cret");
        for (header, says) in [
            ("", "no `v1=` entry"),
            (" , ,", "no `v1=` entry"),
            ("sha256=deadbeef", "no `v1=` entry"),
            ("v1=", "entry 0 is not 64 hex digits"),
            ("v1=xyz", "entry 0 is not 64 hex digits"),
            ("v1=deadbeef", "entry 0 is not 64 hex digits"),
            (&format!("{good}00"), "entry 0 is not 64 hex digits"),
            (&format!("{good},v1=zz"), "entry 1 is not 64 hex digits"),
        ] {
            match verify_pagerduty_signature(body, Some(header), &secrets(&["s3cret"])) {
                Err(e @ SignatureError::MalformedHeader { .. }) => {
                    assert!(e.to_string().contains(says), "{header:?}: {e}")
                }
                other => panic!("{header:?}: expected MalformedHeader, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_tampered_body_fails_verification() {
        let header = sign(TRIGGERED.as_bytes(), "s3cret");
        let tampered = TRIGGERED.replace("production", "kube-system");
        assert!(matches!(
            verify_pagerduty_signature(tampered.as_bytes(), Some(&header), &secrets(&["s3cret"])),
            Err(SignatureError::NoMatch { .. })
        ));
        let mut trailing = TRIGGERED.as_bytes().to_vec();
        trailing.push(b' ');
        assert!(matches!(
            verify_pagerduty_signature(&trailing, Some(&header), &secrets(&["s3cret"])),
            Err(SignatureError::NoMatch { .. })
        ));
    }

    #[test]
    fn without_a_non_empty_secret_nothing_verifies() {
        let body = TRIGGERED.as_bytes();
        let signed_with_empty = sign(body, "");
        for configured in [secrets(&[]), secrets(&[""])] {
            assert_eq!(
                verify_pagerduty_signature(body, Some(&signed_with_empty), &configured),
                Err(SignatureError::NoSecrets)
            );
        }
        assert!(matches!(
            verify_pagerduty_signature(body, Some(&signed_with_empty), &secrets(&["", "s3cret"])),
            Err(SignatureError::NoMatch { secrets: 1, .. })
        ));
    }

    // --- events -----------------------------------------------------------------------------

    #[test]
    fn triggered_incident_from_alertmanager_fires_with_its_kubernetes_labels() {
        let event = parse(TRIGGERED);
        assert_eq!(event.event_type, "incident.triggered");
        assert_eq!(
            event.event_id.as_deref(),
            Some("01JDBQ7Y3K8M2V6T9X4W5R0NZA")
        );
        let alert = event.alert.unwrap();
        assert_eq!(alert.source, AlertSource::Pagerduty);
        assert_eq!(alert.status, AlertStatus::Firing);
        assert_eq!(alert.name, "KubernetesPodOOMKilled");
        assert_eq!(alert.label("alertname"), Some("KubernetesPodOOMKilled"));
        assert_eq!(alert.namespace(), Some("production"));
        assert_eq!(alert.label("pod"), Some("payment-service-7d4b9c-xk2p"));
        assert_eq!(alert.label("container"), Some("payment-api"));
        assert_eq!(alert.label("deployment"), None);
        assert_eq!(alert.label("pagerduty_incident_id"), Some("Q1P9JH2CK7X4LM"));
        assert_eq!(
            alert.label("incident_key"),
            Some("e36c4f1b10d364492dbc5a1c4a24daecfed1a157538bba435a19d9b417d77e05")
        );
        assert_eq!(alert.label("service"), Some("payment-service (production)"));
        assert_eq!(alert.label("urgency"), Some("high"));
        assert_eq!(alert.label("priority"), Some("P1"));
        assert_eq!(
            alert.annotations.get("pagerduty_url").map(String::as_str),
            Some("https://acme.pagerduty.com/incidents/Q1P9JH2CK7X4LM")
        );
        assert!(alert.annotations["summary"].starts_with("[FIRING:1] KubernetesPodOOMKilled"));
        assert_eq!(
            alert.starts_at.unwrap().to_rfc3339(),
            "2026-11-23T19:21:51+00:00"
        );
        assert_eq!(alert.group_key, None);
        assert!(alert.validate().is_ok());
    }

    #[test]
    fn resolved_incident_resolves_the_alert_it_triggered() {
        let fired = parse(TRIGGERED).alert.unwrap();
        let resolved = parse(RESOLVED).alert.unwrap();
        assert_eq!(resolved.status, AlertStatus::Resolved);
        assert_eq!(resolved.fingerprint, fired.fingerprint);
        assert_eq!(resolved.name, fired.name);
        assert_eq!(resolved.labels, fired.labels);
    }

    #[test]
    fn fingerprint_follows_the_incident_id_only() {
        let fired = parse(TRIGGERED).alert.unwrap();
        let retitled = triggered_with(|d| {
            d.insert("title".into(), "something else entirely".into());
        });
        assert_eq!(
            parse(&retitled).alert.unwrap().fingerprint,
            fired.fingerprint
        );
        let other = triggered_with(|d| {
            d.insert("id".into(), "Q0THER1NC1DNT".into());
        });
        assert_ne!(parse(&other).alert.unwrap().fingerprint, fired.fingerprint);
    }

    #[test]
    fn reopened_and_escalated_incidents_fire_again_on_the_same_fingerprint() {
        let fired = parse(TRIGGERED).alert.unwrap();
        for event_type in ["incident.reopened", "incident.escalated"] {
            let body = TRIGGERED.replace("incident.triggered", event_type);
            let event = parse(&body);
            assert_eq!(event.event_type, event_type);
            let alert = event.alert.unwrap();
            assert_eq!(alert.status, AlertStatus::Firing);
            assert_eq!(alert.fingerprint, fired.fingerprint);
        }
    }

    #[test]
    fn acknowledged_incident_carries_no_alert() {
        let event = parse(ACKNOWLEDGED);
        assert_eq!(event.event_type, "incident.acknowledged");
        assert_eq!(
            event.event_id.as_deref(),
            Some("01JDBQC2F6H1N8P3S7D0G4J5KB")
        );
        assert_eq!(event.alert, None);
    }

    #[test]
    fn other_incident_events_carry_no_alert_whatever_their_data() {
        for event_type in [
            "incident.priority_updated",
            "incident.unacknowledged",
            "incident.reassigned",
            "incident.delegated",
            "incident.custom_field_values.updated",
        ] {
            let event = parse(&TRIGGERED.replace("incident.triggered", event_type));
            assert_eq!(event.alert, None, "{event_type}");
        }
        // incident.annotated carries an incident_note, not an incident.
        let annotated = r#"{"event": {"id": "01E", "event_type": "incident.annotated",
            "resource_type": "incident", "occurred_at": "2026-11-23T19:30:00Z",
            "data": {"incident": {"id": "Q1P9JH2CK7X4LM", "type": "incident_reference"},
                     "id": "P2LA89X", "content": "Raised the memory limit", "trimmed": false,
                     "type": "incident_note"}}}"#;
        assert_eq!(parse(annotated).alert, None);
    }

    #[test]
    fn pagerduty_test_ping_is_accepted_without_an_alert() {
        let event = parse(PING);
        assert_eq!(event.event_type, "pagey.ping");
        assert_eq!(event.alert, None);
    }

    #[test]
    fn parsed_events_round_trip_through_serde() {
        for body in [TRIGGERED, ACKNOWLEDGED, RESOLVED, PING] {
            let event = parse(body);
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(
                serde_json::from_str::<PagerDutyEvent>(&json).unwrap(),
                event
            );
        }
    }

    #[test]
    fn an_incident_naming_no_kubernetes_labels_is_named_by_its_title() {
        // PagerDuty's documented example incident.
        let body = triggered_with(|d| {
            d.insert("title".into(), "A little bump in the road".into());
            d.insert(
                "incident_key".into(),
                "d3640fbd41094207a1c11e58e46b1662".into(),
            );
        });
        let alert = parse(&body).alert.unwrap();
        assert_eq!(alert.name, "A little bump in the road");
        for key in PAGERDUTY_KUBERNETES_LABELS {
            assert_eq!(alert.label(key), None, "{key}");
        }
    }

    #[test]
    fn alertmanager_status_prefix_is_dropped_from_a_title_used_as_name() {
        let body = triggered_with(|d| {
            d.insert("title".into(), "[FIRING:2] HighErrorRate checkout".into());
        });
        assert_eq!(parse(&body).alert.unwrap().name, "HighErrorRate checkout");
    }

    #[test]
    fn kubernetes_labels_come_from_a_custom_details_object_first() {
        let body = triggered_with(|d| {
            d.insert(
                "custom_details".into(),
                serde_json::json!({"alertname": "KubeDeploymentReplicasMismatch",
                                   "namespace": "shop", "deployment": "cart", "num_firing": 1}),
            );
        });
        let alert = parse(&body).alert.unwrap();
        assert_eq!(alert.name, "KubeDeploymentReplicasMismatch");
        assert_eq!(alert.namespace(), Some("shop"));
        assert_eq!(alert.label("deployment"), Some("cart"));
        // What details do not name still comes from the title.
        assert_eq!(alert.label("pod"), Some("payment-service-7d4b9c-xk2p"));
    }

    #[test]
    fn kubernetes_labels_come_from_alertmanagers_default_firing_detail_text() {
        let firing = "Labels:\n - alertname = KubernetesPodOOMKilled\n - container = payment-api\n \
                      - namespace = production\n - pod = payment-service-7d4b9c-xk2p\n\
                      Annotations:\n - summary = Container payment-api was OOMKilled\n";
        let body = triggered_with(|d| {
            d.insert(
                "title".into(),
                "[FIRING:1] KubernetesPodOOMKilled production".into(),
            );
            d.insert(
                "body".into(),
                serde_json::json!({"type": "incident_body",
                                   "details": {"firing": firing, "num_firing": "1"}}),
            );
        });
        let alert = parse(&body).alert.unwrap();
        assert_eq!(alert.name, "KubernetesPodOOMKilled");
        assert_eq!(alert.namespace(), Some("production"));
        assert_eq!(alert.label("pod"), Some("payment-service-7d4b9c-xk2p"));
        assert_eq!(alert.label("container"), Some("payment-api"));
    }

    #[test]
    fn kubernetes_labels_come_from_details_given_as_text() {
        let body = triggered_with(|d| {
            d.insert("title".into(), "Pod restarting".into());
            d.insert(
                "details".into(),
                r#"{namespace="billing", pod='invoice-0', deployment = invoice}"#.into(),
            );
        });
        let alert = parse(&body).alert.unwrap();
        assert_eq!(alert.namespace(), Some("billing"));
        assert_eq!(alert.label("pod"), Some("invoice-0"));
        assert_eq!(alert.label("deployment"), Some("invoice"));
    }

    #[test]
    fn label_pairs_must_stand_alone_and_be_sensible() {
        assert_eq!(
            find_pair("exported_namespace=kube-system namespace=prod", "namespace").as_deref(),
            Some("prod")
        );
        assert_eq!(find_pair("k8s.pod=a podname=b", "pod"), None);
        assert_eq!(find_pair("pod=", "pod"), None);
        assert_eq!(find_pair("pod=\"unterminated", "pod"), None);
        assert_eq!(find_pair("see pod=api-0.", "pod").as_deref(), Some("api-0"));
        assert_eq!(find_pair("pod=é", "pod"), None);
        assert_eq!(find_pair("épod=x", "pod"), None);
        assert_eq!(find_pair("—pod=x", "pod").as_deref(), Some("x"));
        assert_eq!(find_pair(&format!("pod={}", "a".repeat(300)), "pod"), None);
    }

    #[test]
    fn non_incident_resource_type_is_rejected_by_name() {
        let body = r#"{"event": {"id": "01BRB6ZP4M6T8ZG4X6BP63ZB9O",
            "event_type": "service.updated", "resource_type": "service",
            "occurred_at": "2021-03-02T13:35:11.682Z",
            "agent": null, "client": null,
            "data": {"id": "PF9KMXH", "type": "service", "summary": "testing service updates"}}}"#;
        let e = err(body);
        assert!(
            e.contains("`event.resource_type`")
                && e.contains("\"incident\"")
                && e.contains("service"),
            "{e}"
        );
    }

    #[test]
    fn each_error_names_its_field_and_what_was_expected() {
        let bodies: &[(&str, &str, &str)] = &[
            ("{\"event\": ", "not valid JSON", "EOF"),
            ("[1, 2]", "JSON object with an `event` object", "array"),
            (
                r#"{"messages": []}"#,
                "`event`",
                "V1/V2 webhooks are not supported",
            ),
            (r#"{"event": "incident.triggered"}"#, "`event`", "an object"),
            (
                r#"{"event": {"resource_type": "incident"}}"#,
                "`event.event_type`",
                "event type",
            ),
            (
                r#"{"event": {"event_type": 3}}"#,
                "`event.event_type`",
                "number 3",
            ),
            (
                r#"{"event": {"event_type": ""}}"#,
                "`event.event_type`",
                "event type",
            ),
            (
                r#"{"event": {"event_type": "incident.triggered", "id": 9}}"#,
                "`event.id`",
                "a string",
            ),
            (
                r#"{"event": {"event_type": "incident.triggered"}}"#,
                "`event.resource_type`",
                "\"incident\"",
            ),
            (
                r#"{"event": {"event_type": "incident.resolved", "resource_type": 5}}"#,
                "`event.resource_type`",
                "number 5",
            ),
            (
                r#"{"event": {"event_type": "incident.triggered", "resource_type": "incident"}}"#,
                "`event.data`",
                "the incident object",
            ),
            (
                concat!(
                    r#"{"event": {"event_type": "incident.resolved", "#,
                    r#""resource_type": "incident", "data": []}}"#
                ),
                "`event.data`",
                "an array",
            ),
        ];
        for (body, field, expected) in bodies {
            let e = err(body);
            assert!(e.contains(field), "{body}: {e} should name {field}");
            assert!(e.contains(expected), "{body}: {e} should say {expected}");
        }

        type Edit = fn(&mut Map<String, Value>);
        let edits: Vec<(Edit, &str, &str)> = vec![
            (
                |d| {
                    d.remove("id");
                },
                "`event.data.id`",
                "the PagerDuty incident id",
            ),
            (
                |d| {
                    d.insert("id".into(), 42.into());
                },
                "`event.data.id`",
                "number 42",
            ),
            (
                |d| {
                    d.insert("type".into(), "incident_note".into());
                },
                "`event.data.type`",
                "\"incident\"",
            ),
            (
                |d| {
                    d.insert("title".into(), serde_json::json!(["x"]));
                },
                "`event.data.title`",
                "an array",
            ),
            (
                |d| {
                    d.remove("title");
                },
                "`event.data.title`",
                "used as the alert's name",
            ),
            (
                |d| {
                    d.insert("title".into(), "[FIRING:1]".into());
                },
                "`event.data.title`",
                "used as the alert's name",
            ),
            (
                |d| {
                    d.insert("created_at".into(), "last tuesday".into());
                },
                "`event.data.created_at`",
                "RFC 3339",
            ),
            (
                |d| {
                    d.insert("priority".into(), "P1".into());
                },
                "`event.data.priority`",
                "reference object",
            ),
            (
                |d| {
                    d.insert("service".into(), serde_json::json!({"summary": 7}));
                },
                "`event.data.service.summary`",
                "number 7",
            ),
            (
                |d| {
                    d.insert("urgency".into(), true.into());
                },
                "`event.data.urgency`",
                "boolean true",
            ),
            (
                |d| {
                    d.insert("incident_key".into(), serde_json::json!({}));
                },
                "`event.data.incident_key`",
                "an object",
            ),
        ];
        for (edit, field, expected) in edits {
            let e = err(&triggered_with(edit));
            assert!(e.contains(field), "{e} should name {field}");
            assert!(e.contains(expected), "{e} should say {expected}");
        }
    }

    #[test]
    fn null_optional_incident_fields_are_absent() {
        let body = triggered_with(|d| {
            for key in [
                "priority",
                "service",
                "urgency",
                "incident_key",
                "created_at",
                "html_url",
            ] {
                d.insert(key.into(), Value::Null);
            }
        });
        let alert = parse(&body).alert.unwrap();
        for key in ["priority", "service", "urgency", "incident_key"] {
            assert_eq!(alert.label(key), None, "{key}");
        }
        assert_eq!(alert.starts_at, None);
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
        let body = format!("{}{}", "{\"event\":".repeat(50_000), "}".repeat(50_000));
        assert!(err(&body).contains("not valid JSON"));
    }

    // --- robustness -------------------------------------------------------------------------

    /// Runs every webhook parser, and signature verification, on `body`; none may panic.
    fn run_every_parser(body: &[u8]) {
        let _ = parse_pagerduty_webhook(body);
        let _ = crate::generic::parse_generic_alerts(body);
        let _ = crate::alert::parse_alertmanager_webhook(body);
        let header = String::from_utf8_lossy(body);
        let _ = verify_pagerduty_signature(body, Some(&header), &secrets(&["s3cret"]));
    }

    fn no_panic_on(body: &[u8], what: &str) {
        if std::panic::catch_unwind(|| run_every_parser(body)).is_err() {
            panic!(
                "a parser panicked on {what}: {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn truncated_and_byte_flipped_webhooks_never_panic() {
        let fixtures = [
            TRIGGERED,
            ACKNOWLEDGED,
            RESOLVED,
            PING,
            ALERTMANAGER,
            crate::generic::tests::SAMPLE,
        ];
        let mut inputs = 0usize;
        for fixture in fixtures {
            let bytes = fixture.as_bytes();
            for end in 0..=bytes.len() {
                no_panic_on(&bytes[..end], &format!("truncation at {end}"));
                inputs += 1;
            }
            // One replacement per position, cycling through bytes that break JSON structure,
            // strings, numbers and UTF-8 in different ways (0xff stands for "invert the byte").
            for (i, &original) in bytes.iter().enumerate() {
                let replacement = match [0xff, b'"', b'}', b'0', b'\\', 0xc3][i % 6] {
                    0xff => original ^ 0xff,
                    other => other,
                };
                let mut flipped = bytes.to_vec();
                flipped[i] = replacement;
                no_panic_on(&flipped, &format!("byte {i} set to {replacement:#04x}"));
                inputs += 1;
            }
            // Multi-byte mutations from a fixed-seed xorshift.
            let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            for round in 0..500 {
                let mut mutated = bytes.to_vec();
                for _ in 0..1 + next() % 8 {
                    let at = (next() as usize) % mutated.len();
                    mutated[at] = next() as u8;
                }
                let keep = (next() as usize) % (mutated.len() + 1);
                mutated.truncate(keep.max(mutated.len() / 2));
                no_panic_on(&mutated, &format!("mutation round {round}"));
                inputs += 1;
            }
        }
        assert!(inputs > 20_000, "only {inputs} inputs tried");
    }

    #[test]
    fn hostile_signature_headers_never_panic() {
        let body = TRIGGERED.as_bytes();
        let long = "v1=".to_string() + &"a".repeat(10_000);
        let many = vec![sign(body, "x"); 1_000].join(",");
        for header in [
            "v1=é",
            "v1=ééééééééééééééééééééééééééééééééé",
            ",,,,",
            "v1",
            "=v1=",
            &long,
            &many,
        ] {
            let result = std::panic::catch_unwind(|| {
                verify_pagerduty_signature(body, Some(header), &secrets(&["s3cret"]))
            });
            assert!(result.is_ok(), "panicked on header {header:?}");
            assert!(result.unwrap().is_err());
        }
    }
}
