//! What the HPA controller reports about the workload's HPA: its status, its events and
//! kube-state-metrics' series, read from the decisions `autoscaler.rs` computed.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use squad_protocols::cluster::ClusterEvent;

use super::super::metrics::labels;
use super::super::{Desired, SimCluster, secs, ts};
use super::{Decision, SYNC_SECONDS, Target};
use crate::series::{Labels, SeriesKind};

impl SimCluster {
    /// What the HPA controller said about the workload's HPA up to `t`, in its words: one
    /// event per message, counted (a rescale, a metric it could not read at each sync).
    pub(in crate::cluster) fn hpa_events(
        &self,
        d: &Desired,
        t: DateTime<Utc>,
    ) -> Vec<ClusterEvent> {
        let mut out: Vec<ClusterEvent> = Vec::new();
        let mut add = |name: &str, kind: &str, reason: &str, message: String, at, count: u32| {
            let object = format!("HorizontalPodAutoscaler/{name}");
            match out
                .iter_mut()
                .find(|e| e.object == object && e.reason == reason && e.message == message)
            {
                Some(e) => {
                    e.count += count;
                    e.last_seen = at;
                }
                None => out.push(ClusterEvent {
                    kind: kind.into(),
                    reason: reason.into(),
                    message,
                    count,
                    first_seen: at,
                    last_seen: at,
                    object,
                }),
            }
        };
        let decisions: Vec<&Decision> = d.scale.decisions.iter().filter(|x| x.at <= t).collect();
        for (i, x) in decisions.iter().enumerate() {
            let Some(hpa) = d.scale.hpa_at(x.at) else {
                continue;
            };
            if let Some(why) = &x.rescaled {
                add(
                    &hpa.name,
                    "Normal",
                    "SuccessfulRescale",
                    why.clone(),
                    x.at,
                    1,
                );
            }
            if let Err(e) = &x.active {
                // Said at every sync until the next decision.
                let until = decisions
                    .get(i + 1)
                    .map_or(t, |n| n.at - secs(SYNC_SECONDS));
                let syncs = 1 + ((until - x.at).num_seconds().max(0) / SYNC_SECONDS) as u32;
                let last = x.at + secs(i64::from(syncs - 1) * SYNC_SECONDS);
                let cause = e
                    .strip_prefix("the HPA was unable to compute the replica count: ")
                    .unwrap_or(e);
                add(
                    &hpa.name,
                    "Warning",
                    "FailedGetResourceMetric",
                    cause.to_owned(),
                    x.at,
                    0,
                );
                add(
                    &hpa.name,
                    "Warning",
                    "FailedGetResourceMetric",
                    cause.to_owned(),
                    last,
                    syncs,
                );
                let invalid = format!(
                    "invalid metrics ({n} invalid out of {n}), first error is: {cause}",
                    n = hpa.metrics.len()
                );
                add(
                    &hpa.name,
                    "Warning",
                    "FailedComputeMetricsReplicas",
                    invalid.clone(),
                    x.at,
                    0,
                );
                add(
                    &hpa.name,
                    "Warning",
                    "FailedComputeMetricsReplicas",
                    invalid,
                    last,
                    syncs,
                );
            }
        }
        out
    }

    /// kube-state-metrics' series of the workload's HPA at `t`.
    pub(in crate::cluster) fn hpa_points(
        &self,
        d: &Desired,
        t: DateTime<Utc>,
        push: &mut impl FnMut(SeriesKind, Labels, f64),
    ) {
        let (Some(hpa), Some(x)) = (d.scale.hpa_at(t), d.scale.decision_at(t)) else {
            return;
        };
        let ns = self.scenario.workload.namespace.as_str();
        let series = |name: &str, extra: &[(&str, &str)]| {
            let mut l = labels(&[
                ("namespace", ns),
                ("horizontalpodautoscaler", hpa.name.as_str()),
            ]);
            for (k, v) in extra {
                l.insert((*k).into(), (*v).into());
            }
            l.insert("__name__".into(), name.into());
            l
        };
        for (name, value) in [
            ("kube_horizontalpodautoscaler_spec_max_replicas", hpa.max),
            ("kube_horizontalpodautoscaler_spec_min_replicas", hpa.min),
            (
                "kube_horizontalpodautoscaler_status_current_replicas",
                x.replicas,
            ),
            (
                "kube_horizontalpodautoscaler_status_desired_replicas",
                x.desired,
            ),
        ] {
            push(SeriesKind::Gauge, series(name, &[]), f64::from(value));
        }
        for (resource, target) in &hpa.metrics {
            let (kind, value) = match target {
                Target::Utilization(u) => ("utilization", f64::from(*u)),
                Target::AverageValue(v) => ("average", *v),
            };
            push(
                SeriesKind::Gauge,
                series(
                    "kube_horizontalpodautoscaler_spec_target_metric",
                    &[
                        ("metric_name", resource.as_str()),
                        ("metric_target_type", kind),
                    ],
                ),
                value,
            );
        }
        let active = x.active.as_ref().is_ok_and(|m| !m.is_empty());
        for (condition, on) in [
            ("AbleToScale", true),
            ("ScalingActive", active),
            ("ScalingLimited", x.limited.is_some()),
        ] {
            for status in ["true", "false", "unknown"] {
                let current = if on { "true" } else { "false" };
                push(
                    SeriesKind::Gauge,
                    series(
                        "kube_horizontalpodautoscaler_status_condition",
                        &[("condition", condition), ("status", status)],
                    ),
                    if status == current { 1.0 } else { 0.0 },
                );
            }
        }
    }

    /// The HPA over the workload as the controller reports it at `t` (`status` of `o`).
    pub(in crate::cluster) fn hpa_status(&self, d: &Desired, t: DateTime<Utc>) -> Option<Value> {
        let hpa = d.scale.hpa_at(t)?;
        let decision = d.scale.decision_at(t)?;
        let r = Self::rollout_at(d, t)?;
        let n = decision.replicas;
        let transition =
            |f: &dyn Fn(&Decision) -> bool| ts(d.scale.transition(t, f).unwrap_or(decision.at));
        let mut metrics = Vec::new();
        if decision.active.is_ok() {
            for (resource, target) in &hpa.metrics {
                if let Ok(m) = self.read_metric(resource, target, r, t, d.scale.share(t)) {
                    let value = if resource == "cpu" {
                        format!("{}m", (m.average * 1000.0).round() as i64)
                    } else {
                        (m.average.round() as i64).to_string()
                    };
                    let mut current = json!({"averageValue": value});
                    if let Some(u) = m.utilization {
                        current["averageUtilization"] = json!(u);
                    }
                    metrics.push(json!({"type": "Resource",
                        "resource": {"name": resource, "current": current}}));
                }
            }
        }
        let (active_status, active_reason, active_message) = match &decision.active {
            Ok(metric) if metric.is_empty() => (
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero".to_owned(),
            ),
            Ok(metric) => (
                "True",
                "ValidMetricFound",
                format!("the HPA was able to successfully calculate a replica count from {metric}"),
            ),
            Err(e) => ("False", "FailedGetResourceMetric", e.clone()),
        };
        let (limited_status, limited_reason, limited_message) = match decision.limited {
            Some((reason, message)) => ("True", reason, message),
            None => (
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            ),
        };
        let last_scale = d
            .scale
            .decisions
            .iter()
            .rev()
            .filter(|x| x.at <= t)
            .find(|x| x.rescaled.is_some())
            .map(|x| ts(x.at));
        let mut status = json!({
            "currentReplicas": n,
            "desiredReplicas": decision.desired,
            "currentMetrics": metrics,
            "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": decision.able.0,
                 "message": decision.able.1, "lastTransitionTime": transition(&|_| true)},
                {"type": "ScalingActive", "status": active_status, "reason": active_reason,
                 "message": active_message,
                 "lastTransitionTime": transition(&|x| x.active.as_ref().is_ok_and(|m| !m.is_empty()))},
                {"type": "ScalingLimited", "status": limited_status, "reason": limited_reason,
                 "message": limited_message,
                 "lastTransitionTime": transition(&|x| x.limited.is_some())},
            ]
        });
        if let Some(at) = last_scale {
            status["lastScaleTime"] = json!(at);
        }
        let _ = hpa;
        Some(status)
    }
}
