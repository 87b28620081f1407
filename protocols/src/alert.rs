//! Alerts as squad sees them, and parsing of what alerting systems send.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ProtocolError;
use crate::json::{describe, optional_str, string_map};
use crate::text::{sanitize, unclean};

/// Where an alert came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSource {
    Alertmanager,
    Pagerduty,
    Generic,
    Simulation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// One alert, normalised from whichever system raised it.
///
/// ```
/// use squad_protocols::{Alert, AlertStatus};
/// let alert = Alert::firing("KubernetesPodOOMKilled")
///     .with_label("namespace", "production")
///     .with_label("pod", "payment-service-7d4b9c-xk2p");
/// assert_eq!(alert.status, AlertStatus::Firing);
/// assert_eq!(alert.namespace(), Some("production"));
/// let json = serde_json::to_string(&alert).unwrap();
/// assert_eq!(serde_json::from_str::<Alert>(&json).unwrap(), alert);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub source: AlertSource,
    pub name: String,
    pub status: AlertStatus,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    /// Stable identity of the alert (Alertmanager's fingerprint, or a hash of its labels).
    pub fingerprint: String,
    /// Alertmanager's group key, when the alert came in a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_key: Option<String>,
}

impl Alert {
    /// A firing alert with no labels yet; the fingerprint follows the labels.
    pub fn firing(name: impl Into<String>) -> Self {
        let mut alert = Alert {
            source: AlertSource::Simulation,
            name: name.into(),
            status: AlertStatus::Firing,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            starts_at: None,
            fingerprint: String::new(),
            group_key: None,
        };
        alert.labels.insert("alertname".into(), alert.name.clone());
        alert.fingerprint = fingerprint_of(&alert.labels);
        alert
    }

    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self.fingerprint = fingerprint_of(&self.labels);
        self
    }

    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub fn namespace(&self) -> Option<&str> {
        self.label("namespace")
    }

    pub fn severity(&self) -> Option<&str> {
        self.label("severity")
    }

    /// Checks that the alert names what squad needs to act on it.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if self.name.trim().is_empty() {
            return Err(ProtocolError::missing(
                "labels.alertname",
                "the alert's name, e.g. KubernetesPodOOMKilled",
            ));
        }
        if self.namespace().is_none() {
            // A node's alert (`KubeNodeNotReady`, `KubeNodeUnreachable`, node pressure) names
            // no namespace: say so, rather than only what is missing.
            let expected = match self.label("node") {
                Some(node) => format!(
                    "the Kubernetes namespace the alert is about; {} is about node {node}, and squad opens incidents about workloads only: route node-scoped alerts to another receiver (the workloads' own alerts, such as KubePodNotReady, lead squad to the node)",
                    self.name
                ),
                None => "the Kubernetes namespace the alert is about".to_owned(),
            };
            return Err(ProtocolError::missing("labels.namespace", expected));
        }
        if SUBJECT_LABELS.iter().all(|k| self.label(k).is_none()) {
            return Err(ProtocolError::missing(
                "labels.pod",
                "one of the labels pod, deployment, statefulset, daemonset, cronjob, job_name, horizontalpodautoscaler, workload or persistentvolumeclaim",
            ));
        }
        // These become Kubernetes API paths: only names Kubernetes could have given.
        if let Some(namespace) = self.namespace()
            && !kubernetes_name(namespace, 63, false)
        {
            return Err(ProtocolError::invalid(
                "labels.namespace",
                "a Kubernetes namespace name (lower-case letters, digits and '-', at most 63 characters)",
                namespace,
            ));
        }
        for key in SUBJECT_LABELS {
            if let Some(name) = self.label(key)
                && !kubernetes_name(name, 253, true)
            {
                return Err(ProtocolError::invalid(
                    format!("labels.{key}"),
                    "a Kubernetes object name (lower-case letters, digits, '-' and '.', at most 253 characters)",
                    name,
                ));
            }
        }
        Ok(())
    }

    /// The alert with control characters (NUL, escapes, line breaks) and Unicode bidirectional
    /// controls in its name, labels, annotations, fingerprint and group key replaced by U+FFFD;
    /// annotations keep their line breaks and tabs. The sender's text reaches issue titles and
    /// bodies, branch names and logs, where such characters break the format or disguise what
    /// the text says (an RTL override). Every webhook parser returns its alerts this way.
    ///
    /// ```
    /// use squad_protocols::Alert;
    /// let a = Alert::firing("Oom\u{202e}lliK")
    ///     .with_label("pod", "api-0\0")
    ///     .with_annotation("description", "line 1\r\nline 2\x1b[31m")
    ///     .sanitized();
    /// assert_eq!(a.name, "Oom\u{fffd}lliK");
    /// assert_eq!(a.label("pod"), Some("api-0\u{fffd}"));
    /// assert_eq!(a.annotations["description"], "line 1\nline 2\u{fffd}[31m");
    /// ```
    pub fn sanitized(mut self) -> Alert {
        let text = |s: String| match sanitize(&s, false) {
            Cow::Borrowed(_) => s,
            Cow::Owned(clean) => clean,
        };
        let multiline = |s: String| match sanitize(&s, true) {
            Cow::Borrowed(_) => s,
            Cow::Owned(clean) => clean,
        };
        self.name = text(self.name);
        self.fingerprint = text(self.fingerprint);
        self.group_key = self.group_key.map(text);
        if self.labels.iter().any(|(k, v)| unclean(k) || unclean(v)) {
            self.labels = std::mem::take(&mut self.labels)
                .into_iter()
                .map(|(k, v)| (text(k), text(v)))
                .collect();
        }
        if self
            .annotations
            .iter()
            .any(|(k, v)| unclean(k) || unclean(v))
        {
            self.annotations = std::mem::take(&mut self.annotations)
                .into_iter()
                .map(|(k, v)| (text(k), multiline(v)))
                .collect();
        }
        self
    }
}

/// A DNS-1123 name as Kubernetes names objects: lower-case ASCII letters and digits, `-` (and `.`
/// in a subdomain) inside, at most `max` bytes.
fn kubernetes_name(name: &str, max: usize, dots: bool) -> bool {
    let inner = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= max
                && inner(first)
                && inner(last)
                && bytes
                    .iter()
                    .all(|&b| inner(b) || b == b'-' || (dots && b == b'.'))
        }
        _ => false,
    }
}

/// The labels that name what an alert is about (one is required): a pod, a workload (as
/// kube-state-metrics labels them: `job_name` for a Job, as `KubeJobFailed` carries it), an
/// HPA (whose scale target it is then about), or a PersistentVolumeClaim (whose pods' workload
/// it is then about).
pub const SUBJECT_LABELS: [&str; 9] = [
    "pod",
    "deployment",
    "statefulset",
    "daemonset",
    "cronjob",
    "job_name",
    "horizontalpodautoscaler",
    "workload",
    "persistentvolumeclaim",
];

/// A stable fingerprint of a label set (FNV-1a over sorted `key=value` pairs), used when the
/// sender gives none.
pub fn fingerprint_of(labels: &BTreeMap<String, String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Parses an Alertmanager webhook body (payload version 4) into squad alerts.
///
/// Errors name the field that is wrong and what was expected, e.g.
/// `invalid field `version`: expected "4" ...` or, for a value of the wrong JSON type,
/// ``invalid field `alerts[0].labels.severity`: expected a string, got number 2``.
pub fn parse_alertmanager_webhook(body: &[u8]) -> Result<Vec<Alert>, ProtocolError> {
    let root: Value = serde_json::from_slice(body).map_err(|e| {
        ProtocolError::Malformed(format!(
            "Alertmanager webhook is not valid JSON: {}",
            crate::json::json_error(&e)
        ))
    })?;
    let Value::Object(hook) = root else {
        return Err(ProtocolError::Malformed(format!(
            "Alertmanager webhook must be a JSON object (payload version 4), got {}",
            describe(&root)
        )));
    };
    const VERSION: &str = "\"4\" (Alertmanager webhook payload version 4)";
    match optional_str(&hook, "version", "version")? {
        Some("4") => {}
        Some(other) => return Err(ProtocolError::invalid("version", VERSION, other)),
        None => return Err(ProtocolError::missing("version", VERSION)),
    }
    let group_key = optional_str(&hook, "groupKey", "groupKey")?.map(str::to_owned);
    let alerts = match hook.get("alerts") {
        Some(Value::Array(alerts)) => alerts,
        None | Some(Value::Null) => {
            return Err(ProtocolError::missing("alerts", "an array of alerts"));
        }
        Some(other) => {
            return Err(ProtocolError::invalid(
                "alerts",
                "an array of alerts",
                describe(other),
            ));
        }
    };
    if alerts.is_empty() {
        return Err(ProtocolError::invalid("alerts", "at least one alert", "[]"));
    }
    alerts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let field = |f: &str| format!("alerts[{i}].{f}");
            let Value::Object(a) = a else {
                return Err(ProtocolError::invalid(
                    format!("alerts[{i}]"),
                    "an alert object",
                    describe(a),
                ));
            };
            let status = match optional_str(a, "status", &field("status"))? {
                Some("firing") => AlertStatus::Firing,
                Some("resolved") => AlertStatus::Resolved,
                Some(other) => {
                    return Err(ProtocolError::invalid(
                        field("status"),
                        "\"firing\" or \"resolved\"",
                        other,
                    ));
                }
                None => {
                    return Err(ProtocolError::missing(
                        field("status"),
                        "\"firing\" or \"resolved\"",
                    ));
                }
            };
            let labels = string_map(a, "labels", &field("labels"))?;
            let annotations = string_map(a, "annotations", &field("annotations"))?;
            let name = labels.get("alertname").cloned().ok_or_else(|| {
                ProtocolError::missing(field("labels.alertname"), "the alert's name")
            })?;
            let starts_at = match optional_str(a, "startsAt", &field("startsAt"))? {
                None => None,
                Some(s) => Some(
                    DateTime::parse_from_rfc3339(s)
                        .map_err(|_| {
                            ProtocolError::invalid(field("startsAt"), "an RFC 3339 timestamp", s)
                        })?
                        .with_timezone(&Utc),
                ),
            };
            let fingerprint = optional_str(a, "fingerprint", &field("fingerprint"))?
                .map_or_else(|| fingerprint_of(&labels), str::to_owned);
            let alert = Alert {
                source: AlertSource::Alertmanager,
                name,
                status,
                labels,
                annotations,
                starts_at,
                fingerprint,
                group_key: group_key.clone(),
            }
            .sanitized();
            alert.validate().map_err(|e| match e {
                ProtocolError::Missing { field: f, expected } => ProtocolError::Missing {
                    field: field(&f),
                    expected,
                },
                ProtocolError::Invalid {
                    field: f,
                    expected,
                    got,
                } => ProtocolError::Invalid {
                    field: field(&f),
                    expected,
                    got,
                },
                other => other,
            })?;
            Ok(alert)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const FIXTURE: &str =
        include_str!("../../tests/fixtures/alertmanager/webhook-v4-oomkilled-0.25.0.json");

    #[test]
    fn parses_the_captured_alertmanager_0_25_webhook() {
        let alerts = parse_alertmanager_webhook(FIXTURE.as_bytes()).unwrap();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.name, "KubernetesPodOOMKilled");
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.namespace(), Some("production"));
        assert_eq!(a.label("pod"), Some("payment-service-7d4b9c-xk2p"));
        assert_eq!(a.fingerprint, "f884382574979cd7");
        assert!(
            a.group_key
                .as_deref()
                .unwrap()
                .contains("KubernetesPodOOMKilled")
        );
        assert_eq!(
            a.starts_at.unwrap().to_rfc3339(),
            "2026-11-23T19:21:20.953+00:00"
        );
    }

    #[test]
    fn wrong_version_names_the_field() {
        let body = FIXTURE.replace("\"version\": \"4\"", "\"version\": \"3\"");
        let err = parse_alertmanager_webhook(body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`version`") && err.contains("\"4\""), "{err}");
    }

    #[test]
    fn missing_namespace_names_the_alert_and_label() {
        let body = FIXTURE.replace("\"namespace\": \"production\",\n        \"pod\"", "\"pod\"");
        let err = parse_alertmanager_webhook(body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("alerts[0].labels.namespace"), "{err}");
    }

    /// A node's alert carries no namespace: the error says it is node-scoped.
    #[test]
    fn a_node_scoped_alert_says_why_it_is_refused() {
        let alert = Alert::firing("KubeNodeNotReady")
            .with_label("node", "pool-p-2")
            .with_label("severity", "warning");
        let err = alert.validate().unwrap_err().to_string();
        assert!(
            err.contains("labels.namespace")
                && err.contains("KubeNodeNotReady is about node pool-p-2")
                && err.contains("route node-scoped alerts to another receiver"),
            "{err}"
        );
    }

    #[test]
    fn not_json_is_a_clear_error() {
        let err = parse_alertmanager_webhook(b"{not json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn fingerprint_is_stable_and_label_sensitive() {
        let a = Alert::firing("X").with_label("namespace", "a");
        let b = Alert::firing("X").with_label("namespace", "a");
        let c = Alert::firing("X").with_label("namespace", "b");
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
    }
}
