//! What well-known volume provisioners can provision: the access modes a StorageClass's
//! provisioner accepts. Block-storage drivers attach a volume to one node at a time
//! (`ReadWriteOnce`, `ReadWriteOncePod`) and refuse a claim that asks for `ReadWriteMany` or
//! `ReadOnlyMany` (`InvalidArgument … Only AccessModes[ReadWriteOnce] supported.`); file drivers
//! serve one file system to many nodes. The simulated cluster refuses what this table refuses, and
//! the diagnosis picks a class by it. A provisioner missing from the table is assumed to provision
//! what is asked.
//!
//! ```
//! use squad_protocols::storage::{Provisions, can_provision, provisions};
//!
//! let rwx = ["ReadWriteMany".to_owned()];
//! assert_eq!(provisions("ebs.csi.aws.com"), Provisions::SingleNode);
//! assert!(!can_provision("ebs.csi.aws.com", &rwx));
//! assert!(can_provision("efs.csi.aws.com", &rwx));
//! assert!(can_provision("example.com/in-house", &rwx));
//! ```

use serde::{Deserialize, Serialize};

/// Block-storage provisioners: one node at a time (the in-tree names are their CSI drivers'
/// migrated aliases). vSphere's driver serves ReadWriteMany only from vSAN file services, which
/// its name does not tell: counted as block.
const SINGLE_NODE: &[&str] = &[
    "ebs.csi.aws.com",
    "kubernetes.io/aws-ebs",
    "pd.csi.storage.gke.io",
    "kubernetes.io/gce-pd",
    "disk.csi.azure.com",
    "kubernetes.io/azure-disk",
    "rancher.io/local-path",
    "topolvm.io",
    "topolvm.cybozu.com",
    "csi.vsphere.vmware.com",
];

/// Shared file-system provisioners: every access mode, `ReadWriteMany` included.
const SHARED: &[&str] = &[
    "efs.csi.aws.com",
    "filestore.csi.storage.gke.io",
    "file.csi.azure.com",
    "kubernetes.io/azure-file",
    "nfs.csi.k8s.io",
    "cephfs.csi.ceph.com",
];

/// The access modes a single-node provisioner provisions.
const SINGLE_NODE_MODES: &[&str] = &["ReadWriteOnce", "ReadWriteOncePod"];

/// What a provisioner can provision, as far as squad knows.
///
/// ```
/// use squad_protocols::storage::Provisions;
///
/// let p: Provisions = serde_json::from_str("\"single_node\"").unwrap();
/// assert_eq!(p, Provisions::SingleNode);
/// assert_eq!(serde_json::to_string(&p).unwrap(), "\"single_node\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Provisions {
    /// Block storage attached to one node at a time: `ReadWriteOnce` and `ReadWriteOncePod`.
    SingleNode,
    /// A shared file system: every access mode.
    Shared,
    /// A provisioner the table does not know: assumed to provision what is asked.
    Unknown,
}

impl Provisions {
    /// `ReadWriteOnce only`, `ReadWriteMany (a shared file system)`, `unknown access modes`.
    pub fn in_words(self) -> &'static str {
        match self {
            Provisions::SingleNode => "ReadWriteOnce only",
            Provisions::Shared => "ReadWriteMany (a shared file system)",
            Provisions::Unknown => "access modes squad does not know",
        }
    }
}

/// What `provisioner` can provision.
pub fn provisions(provisioner: &str) -> Provisions {
    if SINGLE_NODE.contains(&provisioner) {
        Provisions::SingleNode
    } else if SHARED.contains(&provisioner) {
        Provisions::Shared
    } else {
        Provisions::Unknown
    }
}

/// The first of a claim's `accessModes` that `provisioner` refuses, if any.
pub fn refused<'m>(provisioner: &str, modes: &'m [String]) -> Option<&'m str> {
    match provisions(provisioner) {
        Provisions::SingleNode => modes
            .iter()
            .map(String::as_str)
            .find(|m| !SINGLE_NODE_MODES.contains(m)),
        Provisions::Shared | Provisions::Unknown => None,
    }
}

/// Whether `provisioner` can provision a volume with every one of `modes`.
pub fn can_provision(provisioner: &str, modes: &[String]) -> bool {
    refused(provisioner, modes).is_none()
}

/// The CSI volume capability an access mode asks a driver for (`MULTI_NODE_MULTI_WRITER`).
pub fn csi_capability(mode: &str) -> &'static str {
    match mode {
        "ReadWriteOnce" => "SINGLE_NODE_WRITER",
        "ReadWriteOncePod" => "SINGLE_NODE_SINGLE_WRITER",
        "ReadOnlyMany" => "MULTI_NODE_READER_ONLY",
        "ReadWriteMany" => "MULTI_NODE_MULTI_WRITER",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn modes(m: &[&str]) -> Vec<String> {
        m.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn block_drivers_refuse_modes_that_span_nodes() {
        for p in [
            "ebs.csi.aws.com",
            "pd.csi.storage.gke.io",
            "rancher.io/local-path",
        ] {
            assert_eq!(
                refused(p, &modes(&["ReadWriteMany"])),
                Some("ReadWriteMany")
            );
            assert_eq!(
                refused(p, &modes(&["ReadWriteOnce", "ReadOnlyMany"])),
                Some("ReadOnlyMany")
            );
            assert!(can_provision(p, &modes(&["ReadWriteOnce"])));
            assert!(can_provision(p, &modes(&["ReadWriteOncePod"])));
        }
    }

    #[test]
    fn file_drivers_and_unknown_ones_provision_what_is_asked() {
        let rwx = modes(&["ReadWriteMany"]);
        assert!(can_provision("efs.csi.aws.com", &rwx));
        assert!(can_provision("nfs.csi.k8s.io", &rwx));
        assert_eq!(provisions("nfs.csi.k8s.io"), Provisions::Shared);
        assert_eq!(provisions("example.com/in-house"), Provisions::Unknown);
        assert!(can_provision("example.com/in-house", &rwx));
        assert!(can_provision("ebs.csi.aws.com", &[]));
    }

    #[test]
    fn provisions_round_trips() {
        for p in [
            Provisions::SingleNode,
            Provisions::Shared,
            Provisions::Unknown,
        ] {
            let back: Provisions =
                serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
            assert_eq!(back, p);
        }
        assert_eq!(csi_capability("ReadWriteMany"), "MULTI_NODE_MULTI_WRITER");
    }
}
