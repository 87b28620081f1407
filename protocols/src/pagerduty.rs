//! PagerDuty V3 webhooks: turning incident events into alerts.
//!
//! A V3 webhook subscription POSTs one event per request, `{"event": {"id", "event_type",
//! "resource_type", "occurred_at", "agent", "client", "data"}}`, and signs the raw body in the
//! `X-PagerDuty-Signature` header. Checking that signature is the daemon's part (the `squad`
//! crate's `signature` module), done on the raw body before [`parse_pagerduty_webhook`].
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
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::alert::fingerprint_of;
use crate::json::{describe, optional_str};
use crate::{Alert, AlertSource, AlertStatus, ProtocolError};

/// The labels squad takes from a PagerDuty incident's title, key or details when present.
pub const PAGERDUTY_KUBERNETES_LABELS: [&str; 5] =
    ["alertname", "namespace", "pod", "container", "deployment"];

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
        ProtocolError::Malformed(format!(
            "PagerDuty webhook is not valid JSON: {}",
            crate::json::json_error(&e)
        ))
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
    let alert = incident_alert(data, status)?.sanitized();
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
mod tests;
