//! Alerts as squad sees them, and parsing of what alerting systems send.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ProtocolError;

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
        Ok(())
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmWebhook {
    version: Option<String>,
    group_key: Option<String>,
    alerts: Option<Vec<AmAlert>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmAlert {
    status: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: Option<String>,
    fingerprint: Option<String>,
}

/// Parses an Alertmanager webhook body (payload version 4) into squad alerts.
///
/// Errors name the field that is wrong and what was expected, e.g.
/// `invalid field `version`: expected "4" ...`.
pub fn parse_alertmanager_webhook(body: &[u8]) -> Result<Vec<Alert>, ProtocolError> {
    let hook: AmWebhook = serde_json::from_slice(body).map_err(|e| {
        ProtocolError::Malformed(format!(
            "Alertmanager webhook is not valid JSON of the expected shape: {e}"
        ))
    })?;
    match hook.version.as_deref() {
        Some("4") => {}
        Some(other) => {
            return Err(ProtocolError::invalid(
                "version",
                "\"4\" (Alertmanager webhook payload version 4)",
                other,
            ));
        }
        None => {
            return Err(ProtocolError::missing(
                "version",
                "\"4\" (Alertmanager webhook payload version 4)",
            ));
        }
    }
    let alerts = hook
        .alerts
        .ok_or_else(|| ProtocolError::missing("alerts", "an array of alerts"))?;
    if alerts.is_empty() {
        return Err(ProtocolError::invalid("alerts", "at least one alert", "[]"));
    }
    alerts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let field = |f: &str| format!("alerts[{i}].{f}");
            let status = match a.status.as_deref() {
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
            let name = a.labels.get("alertname").cloned().ok_or_else(|| {
                ProtocolError::missing(field("labels.alertname"), "the alert's name")
            })?;
            let starts_at = match a.starts_at.as_deref() {
                None => None,
                Some(s) => Some(
                    DateTime::parse_from_rfc3339(s)
                        .map_err(|_| {
                            ProtocolError::invalid(field("startsAt"), "an RFC 3339 timestamp", s)
                        })?
                        .with_timezone(&Utc),
                ),
            };
            let fingerprint = a.fingerprint.unwrap_or_else(|| fingerprint_of(&a.labels));
            let alert = Alert {
                source: AlertSource::Alertmanager,
                name,
                status,
                labels: a.labels,
                annotations: a.annotations,
                starts_at,
                fingerprint,
                group_key: hook.group_key.clone(),
            };
            alert.validate().map_err(|e| match e {
                ProtocolError::Missing { field: f, expected } => ProtocolError::Missing {
                    field: field(&f),
                    expected,
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
