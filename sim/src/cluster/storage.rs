//! Storage: the PersistentVolumeClaims a pod mounts, bound by the volume controller through the
//! cluster's StorageClasses (`[[storage_classes]]`). A claim that names a class the cluster does
//! not have never binds (`ProvisioningFailed`: `storageclass.storage.k8s.io "x" not found`), nor
//! does one that names none when there is no default class (`FailedBinding`); the scheduler's
//! VolumeBinding PreFilter then rules out every node for its pods (`pod has unbound immediate
//! PersistentVolumeClaims`), as it does for a claim that does not exist (`persistentvolumeclaim
//! "x" not found`). A class whose provisioner is a block-storage driver (the table in
//! `squad_protocols::storage`) refuses a claim that asks for `ReadWriteMany` or `ReadOnlyMany`
//! (`ProvisioningFailed`: `… InvalidArgument desc = Volume capabilities MULTI_NODE_MULTI_WRITER
//! not supported. Only AccessModes[ReadWriteOnce] supported.`). Without `[[storage_classes]]`
//! every claim binds.

use serde_json::Value;
use squad_gitops::objects;
use squad_protocols::storage;

use crate::scenario::Scenario;

/// Where a claim stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClaimState {
    /// Bound to a volume provisioned through `class`.
    Bound { class: String },
    /// Never bound: the volume controller's event reason and message.
    Pending {
        class: Option<String>,
        reason: &'static str,
        message: String,
    },
    /// No such claim in the namespace.
    Missing,
}

/// The claim `name` of the workload's namespace, among the GitOps repo's objects.
pub(crate) fn claim<'o>(s: &Scenario, objects: &'o [Value], name: &str) -> Option<&'o Value> {
    let ns = s.workload.namespace.as_str();
    objects.iter().find(|o| {
        objects::kind(o) == "PersistentVolumeClaim"
            && objects::name(o) == name
            && o["metadata"]["namespace"].as_str().unwrap_or(ns) == ns
    })
}

/// How the volume controller leaves the claim `name`.
pub(crate) fn claim_state(s: &Scenario, objects: &[Value], name: &str) -> ClaimState {
    let Some(pvc) = claim(s, objects, name) else {
        return ClaimState::Missing;
    };
    let asked = pvc["spec"]["storageClassName"].as_str();
    let Some(classes) = &s.storage_classes else {
        return ClaimState::Bound {
            class: asked.unwrap_or("standard").to_owned(),
        };
    };
    // Unset: the default class (set on the claim when it is created); "" asks for none.
    let class = match asked {
        Some(a) => Some(a.to_owned()).filter(|a| !a.is_empty()),
        None => classes.iter().find(|c| c.default).map(|c| c.name.clone()),
    };
    match class {
        None => ClaimState::Pending {
            class: None,
            reason: "FailedBinding",
            message: "no persistent volumes available for this claim and no storage class is set"
                .into(),
        },
        Some(class) => match classes.iter().find(|c| c.name == class) {
            Some(c) => match storage::refused(
                &c.provisioner,
                &objects::strings(&pvc["spec"]["accessModes"]),
            ) {
                // The CSI driver refuses what it cannot attach (the external-provisioner's words).
                Some(mode) => ClaimState::Pending {
                    message: format!(
                        "failed to provision volume with StorageClass \"{class}\": rpc error: code = InvalidArgument desc = Volume capabilities {} not supported. Only AccessModes[ReadWriteOnce] supported.",
                        storage::csi_capability(mode)
                    ),
                    class: Some(class),
                    reason: "ProvisioningFailed",
                },
                None => ClaimState::Bound { class },
            },
            None => ClaimState::Pending {
                message: format!("storageclass.storage.k8s.io \"{class}\" not found"),
                class: Some(class),
                reason: "ProvisioningFailed",
            },
        },
    }
}

/// Why the scheduler's VolumeBinding PreFilter rules out every node for a pod, if it does.
pub(crate) fn prefilter(s: &Scenario, objects: &[Value], pod_spec: &Value) -> Option<String> {
    let mut unbound = false;
    for name in objects::claim_names(pod_spec) {
        match claim_state(s, objects, &name) {
            ClaimState::Missing => {
                return Some(format!("persistentvolumeclaim \"{name}\" not found"));
            }
            ClaimState::Pending { .. } => unbound = true,
            ClaimState::Bound { .. } => {}
        }
    }
    unbound.then(|| "pod has unbound immediate PersistentVolumeClaims".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::scenario::StorageClassSpec;

    fn scenario(classes: Option<Vec<StorageClassSpec>>) -> Scenario {
        let mut s = Scenario::embedded("oomkilled").unwrap();
        s.storage_classes = classes;
        s
    }

    fn class(name: &str, default: bool) -> StorageClassSpec {
        provisioned_by(name, "ebs.csi.aws.com", default)
    }

    fn provisioned_by(name: &str, provisioner: &str, default: bool) -> StorageClassSpec {
        StorageClassSpec {
            name: name.into(),
            provisioner: provisioner.into(),
            default,
            allow_volume_expansion: true,
        }
    }

    fn pvc(s: &Scenario, class: Option<&str>) -> Value {
        let mut c = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": s.workload.namespace},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}});
        if let Some(class) = class {
            c["spec"]["storageClassName"] = json!(class);
        }
        c
    }

    #[test]
    fn a_claim_binds_only_through_a_class_the_cluster_has() {
        let s = scenario(Some(vec![class("gp3", true), class("sc1", false)]));
        let pod =
            json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]});
        assert_eq!(
            claim_state(&s, &[pvc(&s, Some("sc1"))], "data"),
            ClaimState::Bound {
                class: "sc1".into()
            }
        );
        assert_eq!(
            claim_state(&s, &[pvc(&s, None)], "data"),
            ClaimState::Bound {
                class: "gp3".into()
            }
        );
        let missing_class = [pvc(&s, Some("fast-ssd"))];
        assert_eq!(
            claim_state(&s, &missing_class, "data"),
            ClaimState::Pending {
                class: Some("fast-ssd".into()),
                reason: "ProvisioningFailed",
                message: "storageclass.storage.k8s.io \"fast-ssd\" not found".into()
            }
        );
        assert_eq!(
            prefilter(&s, &missing_class, &pod).unwrap(),
            "pod has unbound immediate PersistentVolumeClaims"
        );
        assert_eq!(
            prefilter(&s, &[], &pod).unwrap(),
            "persistentvolumeclaim \"data\" not found"
        );
        let no_default = scenario(Some(vec![class("sc1", false)]));
        assert!(matches!(
            claim_state(&no_default, &[pvc(&no_default, None)], "data"),
            ClaimState::Pending {
                reason: "FailedBinding",
                ..
            }
        ));
        // Without classes the world does not model storage.
        let s = scenario(None);
        assert_eq!(prefilter(&s, &[pvc(&s, Some("fast-ssd"))], &pod), None);
    }

    #[test]
    fn a_block_driver_refuses_a_claim_shared_between_nodes() {
        let s = scenario(Some(vec![
            class("gp3", true),
            provisioned_by("efs-sc", "efs.csi.aws.com", false),
        ]));
        let mut shared = pvc(&s, Some("gp3"));
        shared["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(
            claim_state(&s, std::slice::from_ref(&shared), "data"),
            ClaimState::Pending {
                class: Some("gp3".into()),
                reason: "ProvisioningFailed",
                message: "failed to provision volume with StorageClass \"gp3\": rpc error: code = InvalidArgument desc = Volume capabilities MULTI_NODE_MULTI_WRITER not supported. Only AccessModes[ReadWriteOnce] supported.".into()
            }
        );
        shared["spec"]["storageClassName"] = json!("efs-sc");
        assert_eq!(
            claim_state(&s, &[shared], "data"),
            ClaimState::Bound {
                class: "efs-sc".into()
            }
        );
        // A provisioner the table does not know provisions what is asked.
        let s = scenario(Some(vec![provisioned_by(
            "shared",
            "example.com/nas",
            true,
        )]));
        let mut shared = pvc(&s, None);
        shared["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(
            claim_state(&s, &[shared], "data"),
            ClaimState::Bound {
                class: "shared".into()
            }
        );
    }
}
