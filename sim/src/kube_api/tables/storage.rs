//! kubectl's columns for StorageClasses and PersistentVolumeClaims, as kube-apiserver's
//! printers declare them.

use serde_json::{Value, json};
use squad_gitops::objects;

use super::{AGE, Column, NAME};
use crate::kube_api::selectors::value_str;

pub(super) const STORAGE_CLASS: &[Column] = &[
    Column {
        cell: |c, _| {
            let name = objects::name(c);
            if c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
            {
                json!(format!("{name} (default)"))
            } else {
                json!(name)
            }
        },
        ..NAME
    },
    Column {
        name: "Provisioner",
        ty: "string",
        priority: 0,
        description: "Indicates the type of the provisioner.",
        cell: |c, _| json!(value_str(&c["provisioner"])),
    },
    Column {
        name: "ReclaimPolicy",
        ty: "string",
        priority: 0,
        description: "Indicates the type of the reclaim policy.",
        cell: |c, _| json!(c["reclaimPolicy"].as_str().unwrap_or("Delete")),
    },
    Column {
        name: "VolumeBindingMode",
        ty: "string",
        priority: 0,
        description: "Indicates the binding mode of the volume.",
        cell: |c, _| json!(c["volumeBindingMode"].as_str().unwrap_or("Immediate")),
    },
    Column {
        name: "AllowVolumeExpansion",
        ty: "string",
        priority: 0,
        description: "Indicates the volume expansion is allowed or not.",
        cell: |c, _| {
            json!(
                c["allowVolumeExpansion"]
                    .as_bool()
                    .unwrap_or(false)
                    .to_string()
            )
        },
    },
    AGE,
];

/// `RWO`, `RWX`, … as kubectl abbreviates access modes.
fn access_modes(modes: &Value) -> String {
    modes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) const PERSISTENT_VOLUME_CLAIM: &[Column] = &[
    NAME,
    Column {
        name: "Status",
        ty: "string",
        priority: 0,
        description: "PersistentVolumeClaimStatus is the current status of a persistent volume claim.",
        cell: |c, _| json!(value_str(&c["status"]["phase"])),
    },
    Column {
        name: "Volume",
        ty: "string",
        priority: 0,
        description: "volumeName is the binding reference to the PersistentVolume backing this claim.",
        cell: |c, _| json!(value_str(&c["spec"]["volumeName"])),
    },
    Column {
        name: "Capacity",
        ty: "string",
        priority: 0,
        description: "capacity represents the actual resources of the underlying volume.",
        cell: |c, _| json!(value_str(&c["status"]["capacity"]["storage"])),
    },
    Column {
        name: "Access Modes",
        ty: "string",
        priority: 0,
        description: "accessModes contains the actual access modes the volume backing the PVC has.",
        cell: |c, _| json!(access_modes(&c["status"]["accessModes"])),
    },
    Column {
        name: "StorageClass",
        ty: "string",
        priority: 0,
        description: "storageClassName is the name of the StorageClass required by the claim.",
        cell: |c, _| json!(value_str(&c["spec"]["storageClassName"])),
    },
    Column {
        name: "VolumeAttributesClass",
        ty: "string",
        priority: 0,
        description: "volumeAttributesClassName may be used to set the VolumeAttributesClass used by this claim.",
        cell: |_, _| json!("<unset>"),
    },
    AGE,
    Column {
        name: "VolumeMode",
        ty: "string",
        priority: 1,
        description: "volumeMode defines what type of volume is required by the claim.",
        cell: |c, _| json!(value_str(&c["spec"]["volumeMode"])),
    },
];
