//! The owner chain: the workload object a reference names, the selector of its pods, and the
//! owner references that lead from a pod to its ReplicaSet, Deployment, Job or CronJob.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::Value;
use squad_protocols::WorkloadRef;
use squad_runtime::ports::{PortError, PortResult};

use super::KubeCluster;

impl KubeCluster {
    /// The workload object a reference names.
    pub(super) async fn workload_object(&self, w: &WorkloadRef) -> PortResult<Value> {
        let c = self.client.clone();
        let ns = w.namespace.as_str();
        let what = format!("{} {}/{}", w.kind, ns, w.name);
        let n = w.name.as_str();
        match w.kind.as_str() {
            "Deployment" => {
                self.get(Api::<Deployment>::namespaced(c, ns), &what, n)
                    .await
            }
            "StatefulSet" => {
                self.get(Api::<StatefulSet>::namespaced(c, ns), &what, n)
                    .await
            }
            "DaemonSet" => {
                self.get(Api::<DaemonSet>::namespaced(c, ns), &what, n)
                    .await
            }
            "ReplicaSet" => {
                self.get(Api::<ReplicaSet>::namespaced(c, ns), &what, n)
                    .await
            }
            "Job" => self.get(Api::<Job>::namespaced(c, ns), &what, n).await,
            "CronJob" => self.cron_job_object(ns, n).await,
            "Pod" => self.get(Api::<Pod>::namespaced(c, ns), &what, n).await,
            other => Err(PortError::failed(
                what,
                format!(
                    "unsupported workload kind {other:?}: expected Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod"
                ),
            )),
        }
    }

    /// The label selector of a workload's pods (`matchLabels` and `matchExpressions`).
    pub(super) fn selector_of(obj: &Value) -> Option<String> {
        let sel = &obj["spec"]["selector"];
        let mut terms: Vec<String> = sel["matchLabels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        for e in sel["matchExpressions"].as_array().into_iter().flatten() {
            let key = e["key"].as_str().unwrap_or("");
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e["operator"].as_str() {
                Some("In") => terms.push(format!("{key} in ({})", values.join(","))),
                Some("NotIn") => terms.push(format!("{key} notin ({})", values.join(","))),
                Some("Exists") => terms.push(key.to_owned()),
                Some("DoesNotExist") => terms.push(format!("!{key}")),
                _ => {}
            }
        }
        (!terms.is_empty()).then(|| terms.join(","))
    }

    pub(super) fn uid(o: &Value) -> &str {
        o["metadata"]["uid"].as_str().unwrap_or("")
    }

    pub(super) fn owned_by(o: &Value, owner_uid: &str) -> bool {
        o["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["uid"] == owner_uid)
    }

    pub(super) fn controller_of(o: &Value) -> Option<(String, String)> {
        let refs = o["metadata"]["ownerReferences"].as_array()?;
        let r = refs
            .iter()
            .find(|r| r["controller"] == true)
            .or_else(|| refs.first())?;
        Some((
            r["kind"].as_str()?.to_owned(),
            r["name"].as_str()?.to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn selectors_cover_labels_and_expressions() {
        let d = serde_json::json!({"kind": "Deployment", "spec": {"selector": {
            "matchLabels": {"app": "a"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]}}});
        assert_eq!(
            KubeCluster::selector_of(&d).unwrap(),
            "app=a,tier in (web,api),!canary"
        );
    }
}
