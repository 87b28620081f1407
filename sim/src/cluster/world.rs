//! The simulated cluster as Kubernetes objects: what its API server serves.
//!
//! Everything here is derived from the model at one instant: the GitOps repo's objects as synced,
//! one ReplicaSet per rollout (revision and change-cause annotations, as the Deployment
//! controller writes them), the live rollout's Pods with their container statuses, the kubelet's
//! Events, the Node, the namespace's Secrets (key names only; the values are placeholders) and
//! Trivy Operator VulnerabilityReports for the running image.
//!
//! Each object is served as an API server stores it (`defaults` holds what one fills in): with
//! the defaults it fills in (and only those: a field the manifest leaves out stays out, never
//! `null`), the fields its admission plugins add to Pods, quantities in canonical form and zero
//! status counters omitted. `tests/apiserver/` compares them, field by field, with what a real kube-apiserver serves
//! after being loaded with the same objects.

use std::collections::BTreeMap;

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use squad_protocols::cluster::NodeInfo;
use squad_runtime::ports::PortResult;

use super::{Desired, Rollout, SimCluster};
use squad_gitops::objects;

mod cluster_scoped;
mod defaults;
mod evicted;
mod jobs;
mod peers;
mod pods;
mod volumes;

use defaults::{default_object, default_pod_template, omit_zeros, stored};

/// The last octet of each pod's address (10 to 249), distinct across the world's pods: given in
/// the order the pods are created, each the slot its name hashes to or the next free one.
#[derive(Debug, Clone, Default)]
pub(super) struct Addresses(BTreeMap<String, u8>);

const SLOTS: usize = 240;

fn slot(pod: &str) -> usize {
    u64::from_str_radix(&uid(pod)[..8], 16).unwrap_or(0) as usize % SLOTS
}

impl Addresses {
    pub(super) fn allocate<'a>(pods: impl IntoIterator<Item = &'a str>) -> Addresses {
        let mut taken = [false; SLOTS];
        let mut out = BTreeMap::new();
        for pod in pods {
            if out.contains_key(pod) {
                continue;
            }
            let mut n = slot(pod);
            for _ in 0..SLOTS {
                if !taken[n] {
                    break;
                }
                n = (n + 1) % SLOTS;
            }
            taken[n] = true;
            out.insert(pod.to_owned(), 10 + n as u8);
        }
        Addresses(out)
    }

    pub(super) fn octet(&self, pod: &str) -> u8 {
        self.0
            .get(pod)
            .copied()
            .unwrap_or_else(|| 10 + slot(pod) as u8)
    }
}

/// Every object the simulated API server serves, at `now`.
#[derive(Debug, Clone)]
pub struct World {
    pub now: DateTime<Utc>,
    pub objects: Vec<Value>,
}

impl World {
    /// The objects of one kind (and namespace, for namespaced kinds).
    pub fn of_kind<'a>(
        &'a self,
        kind: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| {
            objects::kind(o) == kind
                && namespace.is_none_or(|ns| o["metadata"]["namespace"].as_str() == Some(ns))
        })
    }
}

/// A stable UUID-shaped id for an object (the same object gets the same uid on every request).
pub fn uid(seed: &str) -> String {
    let h = |salt: u64| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
        for b in seed.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let (a, b) = (h(1), h(2));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The value of a Secret's key the scenario gives none for: not a word, so the redaction of
/// known Secret values (which it is one of) never swallows prose such as "the simulated world".
const DEFAULT_SECRET_VALUE: &str = "simulated-secret-value";

const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
];

pub fn cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&kind)
}

impl SimCluster {
    /// A node as the model holds it.
    pub fn node(&self, name: &str) -> PortResult<NodeInfo> {
        self.world()?
            .of_kind("Node", None)
            .find(|n| objects::name(n) == name)
            .map(objects::node_info)
            .ok_or_else(|| squad_runtime::ports::PortError::not_found(format!("node {name}")))
    }

    /// The cluster's objects now.
    ///
    /// The world is computed at the current second (the API's timestamps have whole seconds) and
    /// kept until the second or `main`'s head changes, so a burst of requests builds it once.
    pub fn world(&self) -> PortResult<Arc<World>> {
        let (d, now) = self.current()?;
        let second = now.timestamp();
        if let Ok(cache) = self.world_cache.lock()
            && let Some((head, at, w)) = cache.as_ref()
            && *head == d.head
            && *at == second
        {
            return Ok(w.clone());
        }
        let now = DateTime::from_timestamp(second, 0).unwrap_or(now);
        let w = Arc::new(self.world_at(&d, now));
        if let Ok(mut cache) = self.world_cache.lock() {
            *cache = Some((d.head.clone(), second, w.clone()));
        }
        Ok(w)
    }

    fn world_at(&self, d: &Desired, now: DateTime<Utc>) -> World {
        let s = &self.scenario;
        let ns = s.workload.namespace.as_str();
        let live = Self::rollout_at(d, now);
        let first = d.rollouts.first().map_or(now, |r| r.at);
        let mut objects = Vec::new();

        objects.extend(self.cluster_scoped_objects(d, first, now));

        // The GitOps repo's objects (the workload itself comes from the live rollout below).
        let is_workload = |o: &Value| {
            objects::kind(o) == s.workload.kind
                && objects::name(o) == s.workload.name
                && o["metadata"]["namespace"].as_str().unwrap_or(ns) == ns
        };
        for o in d.objects.iter().filter(|o| !is_workload(o)) {
            let kind = objects::kind(o);
            // Claims come with the volume controller's status, Services with their cluster IPs
            // and Deployments beside the workload with their pods (below).
            if kind.is_empty()
                || kind == "Kustomization"
                || kind == "Namespace"
                || kind == "PersistentVolumeClaim"
                || kind == "Service"
                || kind == "Deployment"
            {
                continue;
            }
            let scope = (!cluster_scoped(kind)).then_some(ns);
            let mut o = stored(o.clone(), scope, first);
            default_object(&mut o);
            if kind == "HorizontalPodAutoscaler" {
                // The workload's HPA as its controller reports it; another one, idle.
                o["status"] = self
                    .autoscaler_among(std::slice::from_ref(&o))
                    .and_then(|_| self.hpa_status(d, now))
                    .unwrap_or_else(|| {
                        let replicas = live.map_or(0, |r| r.workload.replicas);
                        json!({"currentReplicas": replicas, "desiredReplicas": replicas,
                               "currentMetrics": []})
                    });
            }
            objects.push(o);
        }
        objects.extend(self.storage_objects(d, first));
        for (i, e) in self.claim_events(d, now).iter().enumerate() {
            objects.push(self.claim_event_object(i, e));
        }
        // The workload's ServiceAccount, when the repo does not declare it.
        if let Some(r) = live {
            let sa = r.workload.service_account.clone();
            let declared = objects.iter().any(|o| {
                objects::kind(o) == "ServiceAccount"
                    && objects::name(o) == sa
                    && o["metadata"]["namespace"] == ns
            });
            if !declared {
                objects.push(stored(
                    json!({"apiVersion": "v1", "kind": "ServiceAccount",
                           "metadata": {"name": sa, "namespace": ns}}),
                    None,
                    first,
                ));
            }
        }
        // A Secret the scenario gives values for exists with those keys, even where `[secrets]`
        // does not model the namespace's Secrets (references to others still resolve).
        let values_only = s.secret_values.iter().filter_map(|(name, values)| {
            let listed = s.secrets.as_ref().is_some_and(|t| t.contains_key(name));
            (!listed).then(|| (name, values.keys().cloned().collect::<Vec<_>>()))
        });
        let cluster_secrets: Vec<(&String, Vec<String>)> = s
            .secrets
            .iter()
            .flatten()
            .map(|(name, keys)| (name, keys.clone()))
            .chain(values_only)
            .collect();
        for (name, keys) in &cluster_secrets {
            let values = s.secret_values.get(*name);
            let data: BTreeMap<&str, String> = keys
                .iter()
                .map(|k| {
                    let v = values
                        .and_then(|v| v.get(k))
                        .map_or(DEFAULT_SECRET_VALUE, String::as_str);
                    (
                        k.as_str(),
                        squad_runtime::redact::base64_standard(v.as_bytes()),
                    )
                })
                .collect();
            objects.push(stored(
                json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                       "metadata": {"name": name, "namespace": ns}, "data": data}),
                None,
                first,
            ));
        }

        // The cluster-only ConfigMaps (the repo's are above); values are the world's secret.
        for (name, keys) in s.configmaps.iter().flatten() {
            let declared = objects.iter().any(|o| {
                objects::kind(o) == "ConfigMap"
                    && objects::name(o) == name
                    && o["metadata"]["namespace"] == ns
            });
            if declared {
                continue;
            }
            let data: BTreeMap<&str, &str> =
                keys.iter().map(|k| (k.as_str(), "simulated")).collect();
            objects.push(stored(
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": ns}, "data": data}),
                None,
                first,
            ));
        }

        // The workload, its ReplicaSets (each with the pods the rolling update gives it), Pods
        // and their Events.
        let serving = self.serving(d, now);
        let counts: BTreeMap<u32, (usize, usize)> = serving
            .iter()
            .map(|(r, n)| (r.revision, (*n, self.ready_pods(d, r, *n, now))))
            .collect();
        if let Some(r) = live
            && self.is_cron_job()
        {
            objects.extend(self.cron_job_objects(d, r, now));
        } else if let Some(r) = live
            && self.is_job()
        {
            objects.extend(self.job_objects(d, r, now));
        } else if let Some(r) = live {
            objects.push(self.workload_object(d, r, &counts, now));
        }
        for r in d
            .rollouts
            .iter()
            .filter(|r| r.at <= now && !self.is_batch())
        {
            let mut rs = self.replica_set(r, counts.get(&r.revision).copied());
            // A refused rollout's ReplicaSet is scaled up, but holds no pod.
            if r.refused.is_some() && live.is_some_and(|l| l.revision == r.revision) {
                rs["spec"]["replicas"] = json!(super::rolling_split(r, d.scale.replicas_at(now)).1);
            }
            objects.push(rs);
            for (i, e) in self.replica_set_events(r, now).iter().enumerate() {
                objects.push(self.controller_event_object(i, e));
            }
        }
        for (i, e) in self.hpa_events(d, now).iter().enumerate() {
            objects.push(self.controller_event_object(i, e));
        }
        let placements = self.placements(d, now);
        let mut backends = Vec::new();
        for (r, n) in serving.iter().filter(|_| !self.is_batch()) {
            for pod in r.pods.iter().take(*n) {
                let info = self.pod_info(d, r, pod, now);
                let events = self.pod_events(d, r, pod, now);
                objects.push(match placements.get(pod) {
                    Some(super::Placement::Unschedulable(message)) => {
                        self.unscheduled_pod_object(r, &info, message)
                    }
                    _ => {
                        backends.push(self.backend(&d.addresses, r, &info));
                        self.pod_object(d, r, &info)
                    }
                });
                for (i, e) in events.iter().enumerate() {
                    objects.push(self.event_object(pod, &info.node, i, e));
                }
            }
        }
        // What node pressure left: the pods the kubelets evicted (the workload's, and other
        // teams'), the other teams' pods still there, and what the kubelets said.
        for e in d.evictions.by(now) {
            let Some((revision, _)) = e.slot else {
                continue;
            };
            if let Some(r) = d.rollouts.iter().find(|r| r.revision == revision) {
                objects.push(self.evicted_pod_object(d, r, e));
                for (i, ev) in self.eviction_events(e).iter().enumerate() {
                    objects.push(self.event_object(&e.pod, &e.node, i, ev));
                }
            }
        }
        for node in s.cluster_nodes() {
            for p in node.other_pods.iter().filter(|p| p.started <= now) {
                let evicted = d
                    .evictions
                    .by(now)
                    .find(|e| e.slot.is_none() && e.namespace == p.namespace && e.pod == p.name);
                objects.push(self.other_pod_object(&node, p, evicted));
            }
            let mut events = self.pressure_events(d, &node.name, now);
            events.extend(self.node_lifecycle_events(&node.name, now));
            for (i, ev) in events.iter().enumerate() {
                objects.push(self.event_object(&node.name, &node.name, i, ev));
            }
        }
        // The Deployments beside the workload, their ReplicaSets and pods; the Services and
        // the endpoints the pods give them.
        for r in self.peers(&d.objects, first) {
            let n = r.pods.len();
            objects.push(self.peer_object(&r));
            objects.push(self.replica_set(&r, Some((n, n))));
            for (i, pod) in r.pods.iter().enumerate() {
                let info = self.peer_pod(&r, i, pod);
                backends.push(self.backend(&d.addresses, &r, &info));
                objects.push(self.pod_object(d, &r, &info));
            }
        }
        for svc in self.services_among(&d.objects) {
            let eps = super::services::endpoints(&svc, &backends);
            let mut endpoints = super::services::endpoints_object(&svc, &eps, &backends);
            let mut svc = stored(svc, None, first);
            default_object(&mut svc);
            svc["status"] = json!({"loadBalancer": {}});
            endpoints = stored(endpoints, None, first);
            objects.push(svc);
            objects.push(endpoints);
        }
        if let Some(r) = live
            && !s.image.vulnerabilities.is_empty()
        {
            objects.push(self.vulnerability_report(r));
        }
        self.mark_silent_nodes_pods(d, &mut objects, now);
        World { now, objects }
    }

    /// A pod's address: in its node's /24 (10.244.<node>.0), the last octet the world gave it.
    pub(super) fn pod_ip(&self, d: &Desired, pod: &str, node: &str) -> String {
        format!(
            "10.244.{}.{}",
            self.node_index(node),
            d.addresses.octet(pod)
        )
    }

    /// The node's position among the cluster's nodes, from 1 (its pod CIDR's third octet).
    pub(super) fn node_index(&self, node: &str) -> usize {
        self.scenario
            .cluster_nodes()
            .iter()
            .position(|n| n.name == node)
            .map_or(1, |i| i + 1)
    }

    pub(super) fn rs_name(r: &Rollout) -> String {
        r.pods.first().and_then(|p| p.rsplit_once('-')).map_or_else(
            || format!("{}-{}", r.workload.name, r.revision),
            |x| x.0.to_owned(),
        )
    }

    pub(super) fn pod_template_hash(r: &Rollout) -> String {
        let rs = Self::rs_name(r);
        rs.rsplit_once('-').map_or(rs.clone(), |x| x.1.to_owned())
    }

    /// How many of the rollout's first `count` pods are ready: every container ready, on a node
    /// the node controller has not found silent (it marks their pods not ready).
    fn ready_pods(&self, d: &Desired, r: &Rollout, count: usize, now: DateTime<Utc>) -> usize {
        r.pods
            .iter()
            .take(count)
            .filter(|p| {
                let info = self.pod_info(d, r, p, now);
                !info.containers.is_empty()
                    && info.containers.iter().all(|c| c.ready)
                    && self.unknown(&info.node, now).is_none()
            })
            .count()
    }

    /// The Deployment as its controller reports it; `counts` holds each serving rollout's pods
    /// and ready pods.
    fn workload_object(
        &self,
        d: &Desired,
        r: &Rollout,
        counts: &BTreeMap<u32, (usize, usize)>,
        now: DateTime<Utc>,
    ) -> Value {
        let s = &self.scenario;
        let first = d.rollouts.first().map_or(r.at, |f| f.at);
        let total: usize = counts.values().map(|(n, _)| n).sum();
        let ready: usize = counts.values().map(|(_, k)| k).sum();
        let updated = counts.get(&r.revision).map_or(0, |(n, _)| *n);
        let wanted = total
            + if r.refused.is_some() {
                super::rolling_split(r, d.scale.replicas_at(now)).1
            } else {
                0
            };
        // The spec as the last commit synced declares it (a later deadline, say), the template the
        // rollout's.
        let mut o = stored(
            super::object_at(r, now).clone(),
            Some(&s.workload.namespace),
            first,
        );
        default_object(&mut o);
        // The replicas as the GitOps sync or the HPA last wrote them.
        let replicas = d.scale.replicas_at(now);
        o["spec"]["replicas"] = json!(replicas);
        o["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
            json!(r.revision.to_string());
        // The generation counts writes to the spec. The GitOps sync writes the spec once per
        // rollout (the history starts with the first), so the live rollout's revision is the
        // generation a real cluster would show after the same syncs, and the controller has
        // observed it. (A real apiserver seeded with the object once shows 1.)
        o["metadata"]["generation"] = json!(r.revision);
        // Progress: done once the new ReplicaSet's pods are available; a rollout that makes none
        // available times out after progressDeadlineSeconds (600 unless the manifest says).
        let deadline = super::progress_deadline(r);
        let progressing = if let Some(at) = self.available_at(r).filter(|a| *a <= now) {
            json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                   "message": format!("ReplicaSet \"{}\" has successfully progressed.", Self::rs_name(r)),
                   "lastUpdateTime": ts(at),
                   // It turned True again if it had timed out first.
                   "lastTransitionTime": ts(if at >= super::progress_deadline(r) { at } else { r.at })})
        } else if now >= deadline {
            let at = deadline;
            json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                   "message": format!("ReplicaSet \"{}\" has timed out progressing.", Self::rs_name(r)),
                   "lastUpdateTime": ts(at), "lastTransitionTime": ts(at)})
        } else {
            json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                   "message": format!("ReplicaSet \"{}\" is progressing.", Self::rs_name(r)),
                   "lastUpdateTime": ts(r.at), "lastTransitionTime": ts(r.at)})
        };
        let strategy = &r.object["spec"]["strategy"]["rollingUpdate"];
        let max_unavailable =
            super::rolling_param(&strategy["maxUnavailable"], replicas as usize, false);
        let available = ready + max_unavailable >= replicas as usize;
        o["status"] = json!({
            "observedGeneration": r.revision,
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            // As the Deployment controller counts it: the pods its ReplicaSets want (a refused
            // rollout's included) less the available ones.
            "unavailableReplicas": wanted.saturating_sub(ready),
            "conditions": [
                {"type": "Available", "status": if available { "True" } else { "False" },
                 "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                 "message": if available { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
                 "lastUpdateTime": ts(r.at), "lastTransitionTime": ts(r.at)},
                progressing
            ]
        });
        omit_zeros(
            &mut o["status"],
            &[
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
            ],
        );
        o
    }

    /// One rollout's ReplicaSet; `pods` is its pods' and ready pods' count when it has any.
    fn replica_set(&self, r: &Rollout, pods: Option<(usize, usize)>) -> Value {
        let name = Self::rs_name(r);
        let hash = Self::pod_template_hash(r);
        let mut template = r.object["spec"]["template"].clone();
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        default_pod_template(&mut template);
        let mut selector = r.object["spec"]["selector"].clone();
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let (replicas, ready) = pods.unwrap_or((0, 0));
        let mut annotations = json!({"deployment.kubernetes.io/revision": r.revision.to_string()});
        if !r.message.is_empty() {
            annotations["kubernetes.io/change-cause"] = json!(r.message);
        }
        let w = &r.workload;
        let owner_uid = uid(&format!("{}/{}/{}", w.kind, w.namespace, w.name));
        let mut o = stored(
            json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {
                    "name": name, "namespace": w.namespace,
                    "labels": template["metadata"]["labels"].clone(),
                    "annotations": annotations,
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": w.kind,
                        "name": w.name, "uid": owner_uid,
                        "controller": true, "blockOwnerDeletion": true}],
                },
                "spec": {"replicas": replicas, "selector": selector, "template": template},
                // As the ReplicaSet controller writes it; `replicas` is the one counter
                // served when zero.
                "status": {"replicas": replicas, "fullyLabeledReplicas": replicas,
                           "readyReplicas": ready, "availableReplicas": ready,
                           "observedGeneration": 1}
            }),
            None,
            r.at,
        );
        omit_zeros(
            &mut o["status"],
            &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"],
        );
        o
    }

    fn vulnerability_report(&self, r: &Rollout) -> Value {
        let s = &self.scenario;
        let rs = Self::rs_name(r);
        let (repo_full, tag) = s
            .image
            .name
            .rsplit_once(':')
            .unwrap_or((s.image.name.as_str(), "latest"));
        let (server, repository) = repo_full
            .split_once('/')
            .filter(|(h, _)| h.contains('.') || h.contains(':'))
            .unwrap_or(("index.docker.io", repo_full));
        let count = |sev: &str| {
            s.image
                .vulnerabilities
                .iter()
                .filter(|v| v.severity.eq_ignore_ascii_case(sev))
                .count()
        };
        let vulns: Vec<Value> = s
            .image
            .vulnerabilities
            .iter()
            .map(|v| {
                json!({"vulnerabilityID": v.id, "resource": v.package,
                       "installedVersion": v.installed, "fixedVersion": v.fixed,
                       "severity": v.severity.to_ascii_uppercase(), "title": v.title,
                       "primaryLink": format!("https://avd.aquasec.com/nvd/{}", v.id.to_ascii_lowercase())})
            })
            .collect();
        stored(
            json!({
                "apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "VulnerabilityReport",
                "metadata": {
                    "name": format!("replicaset-{rs}-{}", s.workload.container),
                    "namespace": s.workload.namespace,
                    "labels": {"trivy-operator.resource.kind": "ReplicaSet",
                               "trivy-operator.resource.name": rs,
                               "trivy-operator.resource.namespace": s.workload.namespace,
                               "trivy-operator.container.name": s.workload.container},
                },
                "report": {
                    "updateTimestamp": ts(r.at),
                    "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "0.58.1"},
                    "registry": {"server": server},
                    "artifact": {"repository": repository, "tag": tag},
                    "os": {"family": "debian", "name": "12.8"},
                    "summary": {"criticalCount": count("critical"), "highCount": count("high"),
                                "mediumCount": count("medium"), "lowCount": count("low"),
                                "unknownCount": count("unknown")},
                    "vulnerabilities": vulns,
                }
            }),
            None,
            r.at,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use crate::Scenario;
    use squad_runtime::Clock;

    use super::*;
    use crate::seed_gitops_repo;

    /// Every `null` in `v`, by path.
    fn nulls(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Null => out.push(path.to_owned()),
            Value::Object(m) => m
                .iter()
                .for_each(|(k, v)| nulls(v, &format!("{path}.{k}"), out)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, v)| nulls(v, &format!("{path}[{i}]"), out)),
            _ => {}
        }
    }

    #[test]
    fn the_world_holds_only_the_nulls_a_real_server_serves() {
        // Where an API server serializes a zero time as null.
        let expected = |path: &str| {
            path == ".eventTime"
                || path == ".spec.template.metadata.creationTimestamp"
                || (path.starts_with(".status.conditions[") && path.ends_with("].lastProbeTime"))
        };
        for name in ["oomkilled", "crashloop"] {
            let scenario = Arc::new(Scenario::embedded(name).unwrap());
            let dir = tempfile::tempdir().unwrap();
            let git = seed_gitops_repo(&scenario, &dir.path().join("gitops")).unwrap();
            let sim = SimCluster::new(scenario.clone(), git, Clock::starting_at(scenario.now));
            let world = sim.world().unwrap();
            for o in &world.objects {
                let mut found = Vec::new();
                nulls(o, "", &mut found);
                found.retain(|p| !expected(p));
                assert!(
                    found.is_empty(),
                    "{name}: {} {} has nulls at {found:?}",
                    objects::kind(o),
                    objects::name(o)
                );
            }
            assert_eq!(
                world.of_kind("Namespace", None).count(),
                5,
                "{name}: the four system namespaces and the workload's"
            );
        }
    }

    /// The deadline of a commit that changes the Deployment's spec but not its template is the
    /// one the controller measures the running rollout against from its sync: raised before the
    /// old one passed, the rollout keeps progressing; raised after it timed out, it stays timed
    /// out until its pods become available (the controller does not go back on a timeout).
    #[tokio::test(start_paused = true)]
    async fn a_deadline_changed_without_the_template_is_the_one_in_force() {
        let s = Scenario::embedded("rollout-deadline-lowered").unwrap();
        let w = s.workload_ref();
        let path = s.workload.manifest.clone();
        let deploy = s.now - chrono::Duration::minutes(30);
        let progressing = |sim: &SimCluster| {
            let c = sim.workload(&w).unwrap().conditions;
            c.into_iter()
                .find(|c| c.kind == "Progressing")
                .map(|c| (c.status, c.reason))
                .unwrap()
        };
        let deadline = |sim: &SimCluster| {
            sim.world()
                .unwrap()
                .objects
                .iter()
                .find(|o| objects::kind(o) == "Deployment" && objects::name(o) == w.name)
                .map(|o| o["spec"]["progressDeadlineSeconds"].clone())
                .unwrap()
        };
        let raise = |git: &squad_adapters::git::GitRepo, at| {
            let text = git.read("main", &path).unwrap().unwrap();
            let raised = text.replace(
                "progressDeadlineSeconds: 600",
                "progressDeadlineSeconds: 3600",
            );
            git.commit(
                "main",
                None,
                "deadline back",
                &[(path.clone(), raised)],
                at,
                false,
            )
            .unwrap();
        };
        // Raised at once: the rollout never timed out.
        let (sim, git, _clock, _dir) = crate::cluster::testing::served(s.clone());
        raise(&git, deploy + chrono::Duration::minutes(5));
        assert_eq!(deadline(&sim), 3600);
        assert_eq!(
            progressing(&sim),
            ("True".into(), "ReplicaSetUpdated".into())
        );
        // Raised after the 600 s passed: the spec says 3600 from its sync, the condition stays
        // False until the pods are ready (38 min into the rollout), then the rollout completes.
        let (sim, git, clock, _dir) = crate::cluster::testing::served(s.clone());
        assert_eq!(
            progressing(&sim),
            ("False".into(), "ProgressDeadlineExceeded".into())
        );
        raise(&git, clock.now());
        clock.sleep(std::time::Duration::from_secs(2 * 60)).await;
        assert_eq!(deadline(&sim), 3600);
        assert_eq!(
            progressing(&sim),
            ("False".into(), "ProgressDeadlineExceeded".into())
        );
        clock.sleep(std::time::Duration::from_secs(8 * 60)).await;
        assert_eq!(
            progressing(&sim),
            ("True".into(), "NewReplicaSetAvailable".into())
        );
        let pods = sim.pods_of(&w).unwrap();
        assert!(
            pods.iter().all(|p| p.containers.iter().all(|c| c.ready)),
            "{pods:?}"
        );
    }
}
