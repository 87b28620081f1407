//! The storage objects of the world: the cluster's StorageClasses, the GitOps repo's
//! PersistentVolumeClaims with the status the volume controller gives them, a PersistentVolume
//! for each bound claim, and the controller's events about claims it cannot bind.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use squad_gitops::objects;
use squad_protocols::cluster::ClusterEvent;

use super::super::storage::{self, ClaimState};
use super::super::{Desired, SimCluster, secs};
use super::defaults::stored;
use super::{ts, uid};

/// The volume controller resyncs every claim this often (`--pvclaimbinder-sync-period`), and
/// records its failure each time.
const RESYNC_SECONDS: i64 = 15;

impl SimCluster {
    /// The repo's claims in the workload's namespace, with when each was first mounted (else
    /// the first rollout).
    pub(in crate::cluster) fn claims_of<'d>(
        &self,
        d: &'d Desired,
    ) -> Vec<(&'d Value, DateTime<Utc>)> {
        let ns = self.scenario.workload.namespace.as_str();
        let first = d.rollouts.first().map_or(self.scenario.now, |r| r.at);
        d.objects
            .iter()
            .filter(|o| {
                objects::kind(o) == "PersistentVolumeClaim"
                    && o["metadata"]["namespace"].as_str().unwrap_or(ns) == ns
            })
            .map(|c| {
                let name = objects::name(c);
                let since = d
                    .rollouts
                    .iter()
                    .find(|r| {
                        objects::claim_names(objects::pod_spec(&r.object))
                            .iter()
                            .any(|m| m == name)
                    })
                    .map_or(first, |r| r.at);
                (c, since)
            })
            .collect()
    }

    /// StorageClasses, claims (with their status) and the volumes bound to them.
    pub(super) fn storage_objects(&self, d: &Desired, first: DateTime<Utc>) -> Vec<Value> {
        let s = &self.scenario;
        let ns = s.workload.namespace.as_str();
        let mut out = Vec::new();
        for c in s.storage_classes.iter().flatten() {
            let mut o = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": c.name}, "provisioner": c.provisioner,
                "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
                "allowVolumeExpansion": c.allow_volume_expansion});
            if c.default {
                o["metadata"]["annotations"] =
                    json!({"storageclass.kubernetes.io/is-default-class": "true"});
            }
            out.push(stored(o, None, first - chrono::Duration::days(30)));
        }
        for (claim, since) in self.claims_of(d) {
            let name = objects::name(claim);
            let mut o = stored(claim.clone(), Some(ns), since);
            o["metadata"]["finalizers"] = json!(["kubernetes.io/pvc-protection"]);
            let spec = &mut o["spec"];
            if spec["volumeMode"].is_null() {
                spec["volumeMode"] = json!("Filesystem");
            }
            let modes = spec["accessModes"].clone();
            let size = spec["resources"]["requests"]["storage"].clone();
            match storage::claim_state(s, &d.objects, name) {
                ClaimState::Bound { class } => {
                    let volume =
                        format!("pvc-{}", uid(&format!("PersistentVolumeClaim/{ns}/{name}")));
                    // Provisioned by the class's CSI driver (the CSI hostpath driver when the
                    // world does not model storage).
                    let driver = s
                        .storage_classes
                        .iter()
                        .flatten()
                        .find(|c| c.name == class)
                        .map_or("hostpath.csi.k8s.io", |c| c.provisioner.as_str());
                    let handle = format!("vol-{}", &uid(&volume).replace('-', "")[..17]);
                    o["spec"]["storageClassName"] = json!(class);
                    o["spec"]["volumeName"] = json!(volume);
                    o["status"] = json!({"phase": "Bound", "accessModes": modes,
                                         "capacity": {"storage": size}});
                    out.push(stored(
                        json!({"apiVersion": "v1", "kind": "PersistentVolume",
                            "metadata": {"name": volume,
                                         "finalizers": ["kubernetes.io/pv-protection"]},
                            "spec": {"accessModes": modes, "capacity": {"storage": size},
                                     "storageClassName": class,
                                     "persistentVolumeReclaimPolicy": "Delete",
                                     "csi": {"driver": driver, "volumeHandle": handle,
                                             "fsType": "ext4"},
                                     "volumeMode": "Filesystem",
                                     "claimRef": {"kind": "PersistentVolumeClaim", "namespace": ns,
                                                  "name": name, "apiVersion": "v1"}},
                            "status": {"phase": "Bound"}}),
                        None,
                        since,
                    ));
                }
                ClaimState::Pending { class, .. } => {
                    if let Some(class) = class {
                        o["spec"]["storageClassName"] = json!(class);
                    }
                    o["status"] = json!({"phase": "Pending"});
                }
                ClaimState::Missing => {}
            }
            out.push(o);
        }
        out
    }

    /// The volume controller's events about the claims it cannot bind.
    pub(in crate::cluster) fn claim_events(
        &self,
        d: &Desired,
        now: DateTime<Utc>,
    ) -> Vec<ClusterEvent> {
        let s = &self.scenario;
        self.claims_of(d)
            .into_iter()
            .filter(|(_, since)| *since <= now)
            .filter_map(|(claim, since)| {
                let name = objects::name(claim);
                let ClaimState::Pending {
                    reason, message, ..
                } = storage::claim_state(s, &d.objects, name)
                else {
                    return None;
                };
                let syncs = 1 + (now - since).num_seconds() / RESYNC_SECONDS;
                Some(ClusterEvent {
                    kind: "Warning".into(),
                    reason: reason.into(),
                    message,
                    count: syncs as u32,
                    first_seen: since,
                    last_seen: since + secs((syncs - 1) * RESYNC_SECONDS),
                    object: format!("PersistentVolumeClaim/{name}"),
                })
            })
            .collect()
    }

    /// A volume controller's event as the API serves it.
    pub(super) fn claim_event_object(&self, i: usize, e: &ClusterEvent) -> Value {
        let ns = self.scenario.workload.namespace.as_str();
        let (kind, name) = e
            .object
            .split_once('/')
            .unwrap_or(("PersistentVolumeClaim", ""));
        let component = "persistentvolume-controller";
        stored(
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": format!("{name}.{}", &uid(&format!("{name}{i}{}", e.reason))[..8]),
                             "namespace": ns},
                "involvedObject": {"kind": kind, "namespace": ns, "name": name, "apiVersion": "v1",
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
