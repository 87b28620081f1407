//! squad's generic alert format, for alerting systems that are neither Alertmanager nor PagerDuty.
//!
//! POST a JSON object holding an `alerts` array:
//!
//! ```json
//! {
//!   "alerts": [
//!     {
//!       "name": "KubernetesPodOOMKilled",
//!       "status": "firing",
//!       "labels": {"namespace": "production", "pod": "payment-service-7d4b9c-xk2p"},
//!       "annotations": {"summary": "payment-api was OOMKilled"},
//!       "starts_at": "2026-11-23T19:21:00Z",
//!       "fingerprint": "payment-oom-1"
//!     }
//!   ]
//! }
//! ```
//!
//! or a single alert object without the `alerts` wrapper. Per alert:
//!
//! - `name` (required): the alert's name, non-empty; it also becomes the `alertname` label.
//! - `status`: `"firing"` (the default) or `"resolved"`.
//! - `labels`: an object of string values. squad acts on `namespace` plus one of `pod`,
//!   `deployment`, `statefulset`, `daemonset` or `workload`.
//! - `annotations`: an object of string values, e.g. `summary`, `description`.
//! - `starts_at`: an RFC 3339 timestamp, e.g. `2026-11-23T19:21:00Z`.
//! - `fingerprint`: the alert's stable identity; its repeats and its resolution must share it.
//!   Defaults to a hash of the labels (including `alertname`), so the same labels group together.
//!
//! A body holds at most [`MAX_GENERIC_ALERTS`] alerts. Fields not listed are rejected, so a typo
//! such as `startsAt` is reported rather than silently ignored; a `labels.alertname` that differs
//! from `name` is rejected too. `null` counts as absent for the optional fields.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::alert::fingerprint_of;
use crate::json::{describe, optional_str, string_map};
pub use crate::text::shorten;
use crate::{Alert, AlertSource, AlertStatus, ProtocolError};

/// The most alerts one generic webhook body may carry.
pub const MAX_GENERIC_ALERTS: usize = 1000;

const ALERT_FIELDS: [&str; 6] = [
    "name",
    "status",
    "labels",
    "annotations",
    "starts_at",
    "fingerprint",
];

/// Parses a body in squad's generic format (see the module docs) into alerts.
///
/// Errors name the field that is wrong and what was expected, e.g.
/// ``missing field `alerts[2].name`: expected the alert's name ...``.
///
/// ```
/// use squad_protocols::generic::parse_generic_alerts;
/// use squad_protocols::{AlertSource, AlertStatus};
/// let body = br#"{"name": "KubernetesPodOOMKilled",
///                 "labels": {"namespace": "production", "pod": "payment-service-7d4b9c-xk2p"}}"#;
/// let alerts = parse_generic_alerts(body).unwrap();
/// assert_eq!(alerts[0].source, AlertSource::Generic);
/// assert_eq!(alerts[0].status, AlertStatus::Firing);
/// assert_eq!(alerts[0].label("alertname"), Some("KubernetesPodOOMKilled"));
///
/// let err = parse_generic_alerts(br#"{"alerts": [{"name": ""}]}"#).unwrap_err();
/// assert!(err.to_string().contains("alerts[0].name"), "{err}");
/// ```
pub fn parse_generic_alerts(body: &[u8]) -> Result<Vec<Alert>, ProtocolError> {
    let root: Value = serde_json::from_slice(body).map_err(|e| {
        ProtocolError::Malformed(format!(
            "generic alert webhook is not valid JSON: {}",
            crate::json::json_error(&e)
        ))
    })?;
    let Value::Object(root) = root else {
        return Err(ProtocolError::Malformed(format!(
            "generic alert webhook must be a JSON object (an `alerts` array, or one alert), got {}",
            describe(&root)
        )));
    };
    if !root.contains_key("alerts") {
        return Ok(vec![parse_alert(&root, "")?.sanitized()]);
    }
    if let Some(unknown) = root.keys().find(|k| k.as_str() != "alerts") {
        return Err(ProtocolError::invalid(
            shorten(unknown),
            "no field besides `alerts` next to the alerts array",
            "an unknown field",
        ));
    }
    let alerts = match root.get("alerts") {
        Some(Value::Array(alerts)) => alerts,
        Some(other) => {
            return Err(ProtocolError::invalid(
                "alerts",
                "an array of alert objects",
                describe(other),
            ));
        }
        None => {
            return Err(ProtocolError::missing(
                "alerts",
                "an array of alert objects",
            ));
        }
    };
    if alerts.is_empty() {
        return Err(ProtocolError::invalid("alerts", "at least one alert", "[]"));
    }
    if alerts.len() > MAX_GENERIC_ALERTS {
        return Err(ProtocolError::invalid(
            "alerts",
            format!("at most {MAX_GENERIC_ALERTS} alerts per request"),
            format!("{} alerts", alerts.len()),
        ));
    }
    alerts
        .iter()
        .enumerate()
        .map(|(i, alert)| match alert {
            Value::Object(alert) => {
                parse_alert(alert, &format!("alerts[{i}].")).map(Alert::sanitized)
            }
            other => Err(ProtocolError::invalid(
                format!("alerts[{i}]"),
                "an alert object",
                describe(other),
            )),
        })
        .collect()
}

/// One alert object; `prefix` locates it in the body (`alerts[3].`, or empty when unwrapped).
fn parse_alert(alert: &Map<String, Value>, prefix: &str) -> Result<Alert, ProtocolError> {
    let field = |name: &str| format!("{prefix}{name}");
    if let Some(unknown) = alert.keys().find(|k| !ALERT_FIELDS.contains(&k.as_str())) {
        return Err(ProtocolError::invalid(
            field(&shorten(unknown)),
            format!("only the alert fields {}", ALERT_FIELDS.join(", ")),
            "an unknown field",
        ));
    }
    let name = match optional_str(alert, "name", &field("name"))?.map(str::trim) {
        Some(name) if !name.is_empty() => name.to_owned(),
        Some(empty) => {
            return Err(ProtocolError::invalid(
                field("name"),
                "a non-empty alert name, e.g. \"KubernetesPodOOMKilled\"",
                empty,
            ));
        }
        None => {
            return Err(ProtocolError::missing(
                field("name"),
                "the alert's name, e.g. \"KubernetesPodOOMKilled\"",
            ));
        }
    };
    let status = match optional_str(alert, "status", &field("status"))? {
        None | Some("firing") => AlertStatus::Firing,
        Some("resolved") => AlertStatus::Resolved,
        Some(other) => {
            return Err(ProtocolError::invalid(
                field("status"),
                "\"firing\" or \"resolved\"",
                other,
            ));
        }
    };
    let mut labels = string_map(alert, "labels", &field("labels"))?;
    match labels.get("alertname") {
        Some(alertname) if *alertname != name => {
            return Err(ProtocolError::invalid(
                field("labels.alertname"),
                format!("the alert's `name` ({name:?}) or no alertname label"),
                alertname.as_str(),
            ));
        }
        _ => {
            labels.insert("alertname".to_owned(), name.clone());
        }
    }
    let annotations = string_map(alert, "annotations", &field("annotations"))?;
    let starts_at = match optional_str(alert, "starts_at", &field("starts_at"))? {
        None => None,
        Some(s) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| {
                    ProtocolError::invalid(
                        field("starts_at"),
                        "an RFC 3339 timestamp, e.g. \"2026-11-23T19:21:00Z\"",
                        s,
                    )
                })?
                .with_timezone(&Utc),
        ),
    };
    let fingerprint = match optional_str(alert, "fingerprint", &field("fingerprint"))? {
        None => fingerprint_of(&labels),
        Some(given) if !given.trim().is_empty() => given.to_owned(),
        Some(empty) => {
            return Err(ProtocolError::invalid(
                field("fingerprint"),
                "a non-empty fingerprint, or no fingerprint field",
                empty,
            ));
        }
    };
    Ok(Alert {
        source: AlertSource::Generic,
        name,
        status,
        labels,
        annotations,
        starts_at,
        fingerprint,
        group_key: None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// The example from the module docs, also used by the PagerDuty module's fuzz test.
    pub(crate) const SAMPLE: &str = r#"{
  "alerts": [
    {
      "name": "KubernetesPodOOMKilled",
      "status": "firing",
      "labels": {"namespace": "production", "pod": "payment-service-7d4b9c-xk2p"},
      "annotations": {"summary": "payment-api was OOMKilled"},
      "starts_at": "2026-11-23T19:21:00Z",
      "fingerprint": "payment-oom-1"
    },
    {
      "name": "KubernetesPodCrashLooping",
      "status": "resolved",
      "labels": {"namespace": "shop", "deployment": "cart",
                 "alertname": "KubernetesPodCrashLooping"}
    }
  ]
}"#;

    fn err(body: &str) -> String {
        parse_generic_alerts(body.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn wrapped_alerts_parse_with_their_fields() {
        let alerts = parse_generic_alerts(SAMPLE.as_bytes()).unwrap();
        assert_eq!(alerts.len(), 2);
        let oom = &alerts[0];
        assert_eq!(oom.source, AlertSource::Generic);
        assert_eq!(oom.name, "KubernetesPodOOMKilled");
        assert_eq!(oom.status, AlertStatus::Firing);
        assert_eq!(oom.namespace(), Some("production"));
        assert_eq!(oom.label("pod"), Some("payment-service-7d4b9c-xk2p"));
        assert_eq!(oom.label("alertname"), Some("KubernetesPodOOMKilled"));
        assert_eq!(
            oom.annotations.get("summary").map(String::as_str),
            Some("payment-api was OOMKilled")
        );
        assert_eq!(
            oom.starts_at.unwrap().to_rfc3339(),
            "2026-11-23T19:21:00+00:00"
        );
        assert_eq!(oom.fingerprint, "payment-oom-1");
        assert!(oom.validate().is_ok());
        assert_eq!(alerts[1].status, AlertStatus::Resolved);
        assert_eq!(alerts[1].starts_at, None);
    }

    #[test]
    fn a_single_alert_object_needs_no_wrapper() {
        let alerts =
            parse_generic_alerts(br#"{"name": "DiskFull", "labels": {"namespace": "db"}}"#)
                .unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].name, "DiskFull");
        assert_eq!(alerts[0].namespace(), Some("db"));
    }

    #[test]
    fn status_defaults_to_firing_and_null_optionals_are_absent() {
        let alerts = parse_generic_alerts(
            br#"{"name": "X", "status": null, "labels": null, "annotations": null,
                 "starts_at": null, "fingerprint": null}"#,
        )
        .unwrap();
        assert_eq!(alerts[0].status, AlertStatus::Firing);
        assert_eq!(alerts[0].starts_at, None);
        assert!(alerts[0].annotations.is_empty());
    }

    #[test]
    fn fingerprint_defaults_to_the_labels_including_alertname() {
        let alerts = parse_generic_alerts(
            br#"{"name": "KubernetesPodOOMKilled",
                 "labels": {"namespace": "production", "pod": "p"}}"#,
        )
        .unwrap();
        let expected = Alert::firing("KubernetesPodOOMKilled")
            .with_label("namespace", "production")
            .with_label("pod", "p");
        assert_eq!(alerts[0].fingerprint, expected.fingerprint);
        assert_eq!(alerts[0].labels, expected.labels);
    }

    #[test]
    fn firing_and_resolved_of_one_alert_share_a_fingerprint() {
        let firing = parse_generic_alerts(br#"{"name": "X", "labels": {"pod": "a"}}"#).unwrap();
        let resolved =
            parse_generic_alerts(br#"{"name": "X", "status": "resolved", "labels": {"pod": "a"}}"#)
                .unwrap();
        assert_eq!(firing[0].fingerprint, resolved[0].fingerprint);
    }

    #[test]
    fn parsed_alerts_round_trip_through_serde() {
        for alert in parse_generic_alerts(SAMPLE.as_bytes()).unwrap() {
            let json = serde_json::to_string(&alert).unwrap();
            assert_eq!(serde_json::from_str::<Alert>(&json).unwrap(), alert);
        }
    }

    #[test]
    fn up_to_the_limit_of_alerts_is_accepted() {
        let one = r#"{"name": "X"}"#;
        let body = format!(
            r#"{{"alerts": [{}]}}"#,
            vec![one; MAX_GENERIC_ALERTS].join(",")
        );
        assert_eq!(
            parse_generic_alerts(body.as_bytes()).unwrap().len(),
            MAX_GENERIC_ALERTS
        );
    }

    #[test]
    fn too_many_alerts_is_an_error_on_alerts() {
        let one = r#"{"name": "X"}"#;
        let body = format!(
            r#"{{"alerts": [{}]}}"#,
            vec![one; MAX_GENERIC_ALERTS + 1].join(",")
        );
        let e = err(&body);
        assert!(
            e.contains("`alerts`") && e.contains("at most 1000") && e.contains("1001 alerts"),
            "{e}"
        );
    }

    #[test]
    fn bad_json_is_malformed() {
        let e = err("{\"alerts\": [");
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn a_json_array_at_the_top_is_malformed() {
        let e = err(r#"[{"name": "X"}]"#);
        assert!(
            e.contains("must be a JSON object") && e.contains("array"),
            "{e}"
        );
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(err(&body).contains("not valid JSON"));
    }

    #[test]
    fn each_error_names_its_field_and_what_was_expected() {
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"{"alerts": {"name": "X"}}"#,
                "`alerts`",
                "an array of alert objects",
            ),
            (r#"{"alerts": []}"#, "`alerts`", "at least one alert"),
            (
                r#"{"alerts": [{"name": "X"}], "version": "4"}"#,
                "`version`",
                "besides `alerts`",
            ),
            (
                r#"{"alerts": [{"name": "X"}, 7]}"#,
                "`alerts[1]`",
                "an alert object",
            ),
            (
                r#"{"alerts": [{"labels": {}}]}"#,
                "`alerts[0].name`",
                "the alert's name",
            ),
            (
                r#"{"alerts": [{"name": "  "}]}"#,
                "`alerts[0].name`",
                "non-empty",
            ),
            (r#"{"name": 42}"#, "`name`", "number 42"),
            (
                r#"{"name": "X", "status": "pending"}"#,
                "`status`",
                "\"firing\" or \"resolved\"",
            ),
            (
                r#"{"name": "X", "labels": ["pod"]}"#,
                "`labels`",
                "object of string values",
            ),
            (
                r#"{"name": "X", "labels": {"pod": 3}}"#,
                "`labels.pod`",
                "a string",
            ),
            (
                r#"{"name": "X", "labels": {"": "v"}}"#,
                "`labels`",
                "non-empty keys",
            ),
            (
                r#"{"name": "X", "annotations": {"runbook": true}}"#,
                "`annotations.runbook`",
                "boolean true",
            ),
            (
                r#"{"name": "X", "labels": {"alertname": "Y"}}"#,
                "`labels.alertname`",
                "the alert's `name`",
            ),
            (
                r#"{"name": "X", "starts_at": "yesterday"}"#,
                "`starts_at`",
                "RFC 3339",
            ),
            (
                r#"{"name": "X", "starts_at": 1764000000}"#,
                "`starts_at`",
                "a string",
            ),
            (
                r#"{"name": "X", "fingerprint": ""}"#,
                "`fingerprint`",
                "non-empty fingerprint",
            ),
            (
                r#"{"name": "X", "startsAt": "2026-11-23T19:21:00Z"}"#,
                "`startsAt`",
                "only the alert fields",
            ),
            (
                r#"{"alerts": [{"name": "X", "labels": {"pod": null}}]}"#,
                "`alerts[0].labels.pod`",
                "got \"null\"",
            ),
        ];
        for (body, field, expected) in cases {
            let e = err(body);
            assert!(e.contains(field), "{body}: {e} should name {field}");
            assert!(e.contains(expected), "{body}: {e} should say {expected}");
        }
    }
}
