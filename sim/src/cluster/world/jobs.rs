//! A Job as the API server serves it (see `cluster/jobs.rs` for how it runs): the Job with the
//! selector and labels the apiserver gives it and the status the Job controller writes, its pods
//! (`restartPolicy: Never`: one per attempt, `Failed` or `Succeeded` once their container
//! exits), and the events about them.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use squad_gitops::objects;
use squad_protocols::cluster::{ClusterEvent, PodInfo};

use super::defaults::{default_object, default_pod, omit_zeros, qos_class, stored};
use super::{Desired, Rollout, SimCluster, ts, uid};
use crate::cluster::jobs::{Attempt, End, Outcome};

impl SimCluster {
    /// The live Job, its pods and the events about them.
    pub(super) fn job_objects(&self, d: &Desired, r: &Rollout, now: DateTime<Utc>) -> Vec<Value> {
        let run = self.job_run(d, r, now);
        let ns = r.workload.namespace.as_str();
        let name = r.workload.name.as_str();
        let job_uid = uid(&format!("Job/{ns}/{name}"));
        let mut out = Vec::new();

        let mut job = stored(r.object.clone(), Some(ns), r.at);
        default_object(&mut job);
        let spec = &mut job["spec"];
        for (k, v) in [("backoffLimit", 6), ("completions", 1), ("parallelism", 1)] {
            if spec[k].is_null() {
                spec[k] = json!(v);
            }
        }
        // The apiserver selects the Job's pods by its uid, and labels its template so.
        spec["selector"] = json!({"matchLabels": {"controller-uid": job_uid}});
        spec["template"]["metadata"]["labels"]["controller-uid"] = json!(job_uid);
        spec["template"]["metadata"]["labels"]["job-name"] = json!(name);
        let template = spec["template"].clone();
        // A Job without labels of its own takes its template's (as 1.20 serves it: the
        // `job-name` label, not the uid).
        if job["metadata"]["labels"]
            .as_object()
            .is_none_or(serde_json::Map::is_empty)
        {
            let mut labels = template["metadata"]["labels"].clone();
            if let Some(m) = labels.as_object_mut() {
                m.remove("controller-uid");
            }
            job["metadata"]["labels"] = labels;
        }
        let mut status = json!({
            "startTime": ts(r.at),
            "active": run.active(),
            "failed": run.failed_in_status(),
            "succeeded": usize::from(matches!(run.outcome, Some(Outcome::Complete(_)))),
        });
        let condition = |kind: &str, at: DateTime<Utc>, reason: Option<&str>, message: &str| {
            let mut c = json!({"type": kind, "status": "True", "lastProbeTime": ts(at),
                               "lastTransitionTime": ts(at)});
            if let Some(reason) = reason {
                c["reason"] = json!(reason);
                c["message"] = json!(message);
            }
            c
        };
        match &run.outcome {
            Some(Outcome::Complete(at)) => {
                status["completionTime"] = json!(ts(*at));
                status["conditions"] = json!([condition("Complete", *at, None, "")]);
            }
            Some(Outcome::Failed {
                at,
                reason,
                message,
            }) => {
                status["conditions"] = json!([condition("Failed", *at, Some(reason), message)]);
            }
            None => {}
        }
        omit_zeros(&mut status, &["active", "failed", "succeeded"]);
        job["status"] = status;
        out.push(job);

        for a in run.pods() {
            let info = self.job_pod_info(d, r, a, now);
            out.push(self.job_pod_object(d, r, &template, &job_uid, a, &info));
            for (i, e) in self.job_pod_events(a, &info).iter().enumerate() {
                out.push(self.event_object(&a.pod, &info.node, i, e));
            }
        }
        for (i, e) in self.job_events(r, &run).iter().enumerate() {
            out.push(self.controller_event_object(i, e));
        }
        out
    }

    /// The live CronJob (with the status its controller writes), each Job it has now with their
    /// pods, and the events about them.
    pub(super) fn cron_job_objects(
        &self,
        d: &Desired,
        r: &Rollout,
        now: DateTime<Utc>,
    ) -> Vec<Value> {
        let ns = r.workload.namespace.as_str();
        let name = r.workload.name.as_str();
        let cron_uid = uid(&format!("CronJob/{ns}/{name}"));
        let created = d.rollouts.first().map_or(r.at, |f| f.at);
        let mut cron = stored(r.object.clone(), Some(ns), created);
        let spec = &mut cron["spec"];
        for (k, v) in [
            ("concurrencyPolicy", json!("Allow")),
            ("suspend", json!(false)),
            ("successfulJobsHistoryLimit", json!(3)),
            ("failedJobsHistoryLimit", json!(1)),
        ] {
            if spec[k].is_null() {
                spec[k] = v;
            }
        }
        if let Some(template) = spec.pointer_mut("/jobTemplate/spec/template") {
            super::defaults::default_pod_template(template);
        }
        // The job template's metadata, empty, as the API serializes an empty ObjectMeta.
        if let Some(jt) = spec["jobTemplate"].as_object_mut() {
            let meta = jt.entry("metadata").or_insert_with(|| json!({}));
            if let Some(m) = meta.as_object_mut() {
                m.entry("creationTimestamp").or_insert(Value::Null);
            }
        }
        let existing: Vec<_> = d.cron.existing(now).collect();
        let active: Vec<Value> = existing
            .iter()
            .filter(|c| c.finished.is_none_or(|f| f.0 > now))
            .map(|c| {
                let job = c.rollout.workload.name.as_str();
                json!({"apiVersion": "batch/v1", "kind": "Job", "name": job, "namespace": ns,
                       "uid": uid(&format!("Job/{ns}/{job}"))})
            })
            .collect();
        let mut status = json!({});
        if !active.is_empty() {
            status["active"] = json!(active);
        }
        if let Some(last) = d.cron.children.iter().rfind(|c| c.rollout.at <= now) {
            status["lastScheduleTime"] = json!(ts(last.rollout.at));
        }
        if let Some(at) = d
            .cron
            .children
            .iter()
            .filter_map(|c| c.finished.filter(|f| f.1 && f.0 <= now).map(|f| f.0))
            .max()
        {
            status["lastSuccessfulTime"] = json!(ts(at));
        }
        cron["status"] = status;
        let mut out = vec![cron];
        for c in existing {
            let mut objs = self.job_objects(d, &c.rollout, now);
            if let Some(job) = objs.first_mut() {
                job["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1",
                    "kind": "CronJob", "name": name, "uid": cron_uid, "controller": true,
                    "blockOwnerDeletion": true}]);
            }
            out.extend(objs);
        }
        for (i, e) in self.cron_events(d, now).iter().enumerate() {
            out.push(self.controller_event_object(i, e));
        }
        out
    }

    /// What the kubelet said about an attempt's pod: scheduled, its image there, its container
    /// created and started (and stopped, when the Job's deadline deleted the pod).
    pub(in crate::cluster) fn job_pod_events(
        &self,
        a: &Attempt,
        info: &PodInfo,
    ) -> Vec<ClusterEvent> {
        let c = &self.scenario.workload.container;
        let image = &self.scenario.image.name;
        let pod = format!("Pod/{}", a.pod);
        let event = |reason: &str, message: String| ClusterEvent {
            kind: "Normal".into(),
            reason: reason.into(),
            message,
            count: 1,
            first_seen: a.start,
            last_seen: a.start,
            object: pod.clone(),
        };
        let mut out = vec![
            event(
                "Scheduled",
                format!(
                    "Successfully assigned {}/{} to {}",
                    info.namespace, a.pod, info.node
                ),
            ),
            event(
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            ),
            event("Created", format!("Created container {c}")),
            event("Started", format!("Started container {c}")),
        ];
        if let Some(End::Deleted(at)) = a.end {
            let mut e = event("Killing", format!("Stopping container {c}"));
            e.first_seen = at;
            e.last_seen = at;
            out.push(e);
        }
        out
    }

    fn job_pod_object(
        &self,
        d: &Desired,
        r: &Rollout,
        template: &Value,
        job_uid: &str,
        a: &Attempt,
        info: &PodInfo,
    ) -> Value {
        let ns = info.namespace.as_str();
        let job = r.workload.name.as_str();
        let mut spec = template["spec"].clone();
        if spec["serviceAccountName"].is_null() {
            spec["serviceAccountName"] = json!("default");
        }
        default_pod(&mut spec);
        spec["nodeName"] = json!(info.node);
        let ip = self.pod_ip(d, &info.name, &info.node);
        let image = objects::pod_spec(&r.object)["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let container_id = format!("containerd://{}", uid(&info.name).replace('-', ""));
        let statuses: Vec<Value> = info
            .containers
            .iter()
            .map(|c| {
                let state = match &c.last_termination {
                    Some(t) => json!({"terminated": {"exitCode": t.exit_code, "reason": t.reason,
                        "startedAt": ts(a.start), "finishedAt": ts(t.finished_at),
                        "containerID": container_id}}),
                    None => json!({"running": {"startedAt": ts(a.start)}}),
                };
                json!({"name": c.name, "ready": c.ready, "started": c.last_termination.is_none(),
                       "restartCount": 0, "image": image,
                       "imageID": format!("{image}@sha256:{}", uid(&image).replace('-', "")),
                       "containerID": container_id, "state": state, "lastState": {}})
            })
            .collect();
        let done = info.phase != "Running";
        let cond = |kind: &str, status: bool| {
            let mut c = json!({"type": kind, "status": if status { "True" } else { "False" },
                               "lastProbeTime": null, "lastTransitionTime": ts(a.start)});
            if done && kind != "PodScheduled" {
                c["reason"] = json!("PodCompleted");
            }
            c
        };
        let qos = qos_class(&spec);
        stored(
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": info.name, "namespace": ns, "generateName": format!("{job}-"),
                    "labels": template["metadata"]["labels"].clone(),
                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job,
                        "uid": job_uid, "controller": true, "blockOwnerDeletion": true}],
                },
                "spec": spec,
                "status": {
                    "phase": info.phase,
                    "conditions": [cond("Initialized", true), cond("Ready", !done),
                                   cond("ContainersReady", !done), cond("PodScheduled", true)],
                    "hostIP": "127.0.0.1", "podIP": ip, "podIPs": [{"ip": ip}],
                    "startTime": ts(a.start), "qosClass": qos,
                    "containerStatuses": statuses,
                }
            }),
            None,
            a.start,
        )
    }
}
