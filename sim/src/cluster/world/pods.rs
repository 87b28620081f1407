//! Pods and Events as the API server stores them: a rollout's pod as the ReplicaSet controller
//! creates it and the kubelet reports it (scheduled or not), and the events the kubelet, the
//! scheduler and the controllers record.

use serde_json::{Value, json};
use squad_gitops::objects;
use squad_protocols::cluster::{ClusterEvent, ContainerStatus, PodInfo};

use super::defaults::{default_pod, qos_class, stored};
use super::{Desired, Rollout, SimCluster, ts, uid};

impl SimCluster {
    /// The pod's metadata and spec (without a node) as the ReplicaSet controller creates it.
    pub(super) fn pod_skeleton(&self, r: &Rollout, info: &PodInfo) -> Value {
        let rs = Self::rs_name(r);
        let mut labels = r.object["spec"]["template"]["metadata"]["labels"].clone();
        labels["pod-template-hash"] = json!(Self::pod_template_hash(r));
        let mut spec = r.object["spec"]["template"]["spec"].clone();
        if spec["serviceAccountName"].is_null() {
            spec["serviceAccountName"] = json!("default");
        }
        default_pod(&mut spec);
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": info.name, "namespace": info.namespace, "labels": labels,
                "generateName": format!("{rs}-"),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                    "uid": uid(&format!("ReplicaSet/{}/{rs}", info.namespace)),
                    "controller": true, "blockOwnerDeletion": true}],
            },
            "spec": spec,
        })
    }

    /// A pod the scheduler could not place: Pending, `PodScheduled=False` with the scheduler's
    /// message, no node, no container statuses.
    pub(super) fn unscheduled_pod_object(
        &self,
        r: &Rollout,
        info: &PodInfo,
        message: &str,
    ) -> Value {
        let mut o = self.pod_skeleton(r, info);
        let qos = qos_class(&o["spec"]);
        o["status"] = json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "lastProbeTime": null,
                            "lastTransitionTime": ts(info.created_at),
                            "reason": "Unschedulable", "message": message}],
            "qosClass": qos,
        });
        stored(o, None, info.created_at)
    }

    pub(super) fn pod_object(&self, d: &Desired, r: &Rollout, info: &PodInfo) -> Value {
        let skeleton = self.pod_skeleton(r, info);
        let mut spec = skeleton["spec"].clone();
        spec["nodeName"] = json!(info.node);
        let ip = self.pod_ip(d, &info.name, &info.node);
        // The blocker applies to the container it stops: the init container the pod stops at,
        // else the app's.
        let stop = r.init_stop.as_ref().map(|(_, name)| name.as_str());
        // The rollout's blocker, or the volume another replica holds (`attach.rs`).
        let own = self.pod_blocker(d, r, &info.name, self.clock.now());
        let status = |c: &ContainerStatus, key: &str| -> Value {
            let image = objects::pod_spec(&r.object)[key]
                .as_array()
                .and_then(|cs| cs.iter().find(|x| x["name"] == c.name.as_str()))
                .and_then(|x| x["image"].as_str())
                .unwrap_or("")
                .to_owned();
            let started = c
                .last_termination
                .as_ref()
                .map_or(info.created_at, |t| t.finished_at);
            let blocked = own.as_ref().filter(|_| stop.is_none_or(|s| s == c.name));
            // An init container that ran to completion.
            if let Some(t) = c
                .last_termination
                .as_ref()
                .filter(|_| c.state == "terminated: Completed")
            {
                let id = format!(
                    "containerd://{}",
                    uid(&format!("{}{}", info.name, c.name)).replace('-', "")
                );
                return json!({"name": c.name, "ready": true, "started": false,
                    "restartCount": c.restart_count, "image": image,
                    "imageID": format!("{image}@sha256:{}", uid(&image).replace('-', "")),
                    "containerID": id,
                    "state": {"terminated": {"reason": t.reason, "exitCode": t.exit_code,
                        "startedAt": ts(info.created_at), "finishedAt": ts(t.finished_at),
                        "containerID": id}},
                    "lastState": {}});
            }
            let state = match c.state.strip_prefix("waiting: ") {
                Some(reason) if reason == super::super::init_containers::INITIALIZING => {
                    json!({"waiting": {"reason": reason}})
                }
                Some(reason) if blocked.is_some() => {
                    match blocked.and_then(|b| b.waiting_message(reason, &info.name)) {
                        Some(message) => json!({"waiting": {"reason": reason, "message": message}}),
                        None => json!({"waiting": {"reason": reason}}),
                    }
                }
                Some(reason) => json!({"waiting": {"reason": reason, "message":
                    format!("back-off restarting failed container {} in pod {}_{}({})",
                            c.name, info.name, info.namespace, uid(&format!("Pod/{}/{}", info.namespace, info.name)))}}),
                None => json!({"running": {"startedAt": ts(started)}}),
            };
            // A container that never started has no image id and no container id yet.
            if info.phase == "Pending" {
                return json!({"name": c.name, "ready": false, "started": false,
                              "restartCount": c.restart_count, "image": image,
                              "imageID": "", "state": state, "lastState": {}});
            }
            let last = c.last_termination.as_ref().map_or(json!({}), |t| {
                json!({"terminated": {"reason": t.reason, "exitCode": t.exit_code,
                    "startedAt": ts(info.created_at.max(t.finished_at - chrono::Duration::minutes(10))),
                    "finishedAt": ts(t.finished_at),
                    "containerID": format!("containerd://{}", uid(&format!("{}{}", info.name, t.finished_at)).replace('-', ""))}})
            });
            json!({"name": c.name, "ready": c.ready, "started": c.state == "running",
                   "restartCount": c.restart_count, "image": image,
                   "imageID": format!("{image}@sha256:{}", uid(&image).replace('-', "")),
                   "containerID": format!("containerd://{}", uid(&info.name).replace('-', "")),
                   "state": state, "lastState": last})
        };
        let statuses: Vec<Value> = info
            .containers
            .iter()
            .map(|c| status(c, "containers"))
            .collect();
        let init_statuses: Vec<Value> = info
            .init_containers
            .iter()
            .map(|c| status(c, "initContainers"))
            .collect();
        // Initialized once every init container completed.
        let incomplete: Vec<&str> = info
            .init_containers
            .iter()
            .filter(|c| c.state != "terminated: Completed")
            .map(|c| c.name.as_str())
            .collect();
        let all_ready = info.containers.iter().all(|c| c.ready);
        let ready = if all_ready { "True" } else { "False" };
        let unready: Vec<&str> = info
            .containers
            .iter()
            .filter(|c| !c.ready)
            .map(|c| c.name.as_str())
            .collect();
        let cond = |t: &str, st: &str| {
            let mut c = json!({"type": t, "status": st, "lastProbeTime": null,
                   "lastTransitionTime": ts(info.created_at)});
            if st == "False" && matches!(t, "Ready" | "ContainersReady") {
                c["reason"] = json!("ContainersNotReady");
                c["message"] = json!(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                ));
            }
            if st == "False" && t == "Initialized" {
                c["reason"] = json!("ContainersNotInitialized");
                c["message"] = json!(format!(
                    "containers with incomplete status: [{}]",
                    incomplete.join(" ")
                ));
            }
            c
        };
        let initialized = if incomplete.is_empty() {
            "True"
        } else {
            "False"
        };
        let qos = qos_class(&spec);
        let mut o = stored(
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": skeleton["metadata"].clone(),
                "spec": spec,
                "status": {
                    "phase": info.phase,
                    "conditions": [cond("Initialized", initialized), cond("Ready", ready),
                                   cond("ContainersReady", ready), cond("PodScheduled", "True")],
                    "hostIP": "127.0.0.1", "podIP": ip, "podIPs": [{"ip": ip}],
                    "startTime": ts(info.created_at),
                    "qosClass": qos,
                    "containerStatuses": statuses,
                }
            }),
            None,
            info.created_at,
        );
        if !init_statuses.is_empty() {
            o["status"]["initContainerStatuses"] = json!(init_statuses);
        }
        o
    }

    pub(super) fn event_object(&self, pod: &str, node: &str, i: usize, e: &ClusterEvent) -> Value {
        let s = &self.scenario;
        let ns = s.workload.namespace.as_str();
        let (kind, name) = e.object.split_once('/').unwrap_or(("Pod", pod));
        let scheduler = e.reason == "FailedScheduling" || e.reason == "Scheduled";
        let (event_ns, involved) = if kind == "Node" {
            (
                "default",
                json!({"kind": "Node", "name": name, "uid": uid(&format!("Node//{name}"))}),
            )
        } else {
            (
                ns,
                json!({"kind": kind, "namespace": ns, "name": name, "apiVersion": "v1",
                       "uid": uid(&format!("{kind}/{ns}/{name}")),
                       "fieldPath": format!("spec.containers{{{}}}", s.workload.container)}),
            )
        };
        let mut involved = involved;
        if (scheduler || e.reason == "NodeNotReady" || e.reason == "TaintManagerEviction")
            && let Some(o) = involved.as_object_mut()
        {
            o.remove("fieldPath");
        }
        // The scheduler's and the controllers' events name their instance (the control-plane
        // host), not a node.
        let (component, host, instance) = match e.reason.as_str() {
            _ if scheduler => ("default-scheduler", None, "default-scheduler-control-plane"),
            "NodeNotReady" => ("node-controller", None, ""),
            "TaintManagerEviction" => ("taint-eviction-controller", None, ""),
            _ => ("kubelet", Some(node), node),
        };
        let mut source = json!({"component": component});
        if let Some(h) = host {
            source["host"] = json!(h);
        }
        let first = e.first_seen;
        let ev_name = format!("{pod}.{}", &uid(&format!("{pod}{i}{}", e.reason))[..8]);
        stored(
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": ev_name, "namespace": event_ns},
                "involvedObject": involved,
                "reason": e.reason, "message": e.message, "type": e.kind, "count": e.count,
                "firstTimestamp": ts(first), "lastTimestamp": ts(e.last_seen),
                // A core Event always serializes `eventTime` (null: the kubelet's recorder
                // leaves it unset). The reporting fields are what a current kubelet's
                // recorder writes; older ones left them empty, served as "".
                "eventTime": null,
                "source": source,
                "reportingComponent": component, "reportingInstance": instance,
            }),
            None,
            first,
        )
    }

    /// An event a controller recorded about one of the workload's objects (a ReplicaSet).
    pub(super) fn controller_event_object(&self, i: usize, e: &ClusterEvent) -> Value {
        let ns = self.scenario.workload.namespace.as_str();
        let (kind, name) = e.object.split_once('/').unwrap_or(("ReplicaSet", ""));
        let (component, api_version) = match kind {
            "Job" => ("job-controller", "batch/v1"),
            "CronJob" => ("cronjob-controller", "batch/v1"),
            "HorizontalPodAutoscaler" => ("horizontal-pod-autoscaler", "autoscaling/v2"),
            _ => ("replicaset-controller", "apps/v1"),
        };
        stored(
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": format!("{name}.{}", &uid(&format!("{name}{i}{}", e.reason))[..8]),
                             "namespace": ns},
                "involvedObject": {"kind": kind, "namespace": ns, "name": name,
                                   "apiVersion": api_version,
                                   "uid": uid(&format!("{kind}/{ns}/{name}"))},
                "reason": e.reason, "message": e.message, "type": e.kind, "count": e.count,
                "firstTimestamp": ts(e.first_seen), "lastTimestamp": ts(e.last_seen),
                "eventTime": null,
                "source": {"component": component},
                "reportingComponent": component, "reportingInstance": "",
            }),
            None,
            e.first_seen,
        )
    }
}
