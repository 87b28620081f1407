//! The family's detection and remedy, on facts made for each case: a class the cluster lacks,
//! no default, a failing provisioner, and a claim shared between nodes.

#![allow(clippy::unwrap_used, clippy::panic)]
use super::*;
use crate::testing;

fn pending(message: &str) -> Facts {
    let mut f = testing::unscheduled(message, 80.0, 7, 25);
    f.info.claims = vec!["cart-cache".into()];
    f.history[1].claims = vec!["cart-cache".into()];
    f
}

fn class(name: &str, default: bool) -> StorageClassInfo {
    provisioned_by(name, "pd.csi.storage.gke.io", default)
}

fn provisioned_by(name: &str, provisioner: &str, default: bool) -> StorageClassInfo {
    StorageClassInfo {
        name: name.into(),
        provisioner: provisioner.into(),
        default,
        allow_volume_expansion: true,
        binding_mode: "Immediate".into(),
    }
}

fn claim(class: Option<&str>) -> ClaimInfo {
    ClaimInfo {
        name: "cart-cache".into(),
        phase: "Pending".into(),
        storage_class: class.map(str::to_owned),
        access_modes: vec!["ReadWriteOnce".into()],
        requested: "20Gi".parse().ok(),
        capacity: None,
        volume: String::new(),
    }
}

fn provisioning_failed(message: &str) -> ClusterEvent {
    ClusterEvent {
        kind: "Warning".into(),
        reason: "ProvisioningFailed".into(),
        message: message.into(),
        count: 101,
        first_seen: testing::now() - chrono::Duration::minutes(25),
        last_seen: testing::now(),
        object: "PersistentVolumeClaim/cart-cache".into(),
    }
}

#[test]
fn a_class_the_cluster_does_not_have_is_named_with_the_ones_it_has() {
    let mut f = pending(
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
    );
    f.claims = vec![claim(Some("premium-rwo"))];
    f.storage_classes = vec![class("standard-rwo", true), class("standard", false)];
    f.claim_events = vec![provisioning_failed(
        "storageclass.storage.k8s.io \"premium-rwo\" not found",
    )];
    let d = testing::diagnosis(&f);
    assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
    assert_eq!(
        d.summary,
        "cart cannot be scheduled: 0/3 nodes are available because claim cart-cache asks for StorageClass premium-rwo, which the cluster does not have (it has standard-rwo (default), standard); the last rollout (30 h ago) mounted claim cart-cache"
    );
    assert_eq!(d.confidence, 0.95);
    assert!(d.evidence.iter().any(|e| e.observation.starts_with(
        "ProvisioningFailed on claim cart-cache: storageclass.storage.k8s.io \"premium-rwo\" not found (101 times"
    )));
    let s: PvcSignals = crate::family_signals(&d).unwrap();
    assert_eq!(s.default_class.as_deref(), Some("standard-rwo"));
    let reason = testing::escalation(&PvcPending, &d);
    assert!(reason.contains("premium-rwo"), "{reason}");
}

#[test]
fn no_default_class_a_failing_provisioner_and_a_missing_claim_in_1_20_words() {
    let mut f =
        pending("0/2 nodes are available: 2 pod has unbound immediate PersistentVolumeClaims.");
    f.claims = vec![claim(None)];
    f.storage_classes = vec![class("fast", false)];
    let d = testing::diagnosis(&f);
    assert!(
        d.summary.contains(
            "claim cart-cache names no StorageClass and the cluster has no default one (it has fast)"
        ),
        "{}",
        d.summary
    );
    f.claims = vec![claim(Some("fast"))];
    f.claim_events = vec![provisioning_failed(
        "failed to provision volume with StorageClass \"fast\": rpc error: code = ResourceExhausted desc = Quota 'SSD_TOTAL_GB' exceeded",
    )];
    let d = testing::diagnosis(&f);
    assert!(
        d.summary.contains("claim cart-cache's volume of class fast has not been provisioned by pd.csi.storage.gke.io: failed to provision volume"),
        "{}",
        d.summary
    );
    let f = pending(
        "0/2 nodes are available: persistentvolumeclaim \"cart-cache\" not found. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
    );
    let d = testing::diagnosis(&f);
    assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
    assert!(
        d.summary.contains("claim cart-cache does not exist"),
        "{}",
        d.summary
    );
}

#[test]
fn other_scheduling_failures_are_not_this_family() {
    let f = pending("0/3 nodes are available: 3 Insufficient memory.");
    assert!(PvcPending.detect(&f, &Readings::of(&f)).is_none());
    let f = testing::oom_under_load();
    assert!(PvcPending.detect(&f, &Readings::of(&f)).is_none());
}

/// A ReadWriteMany claim naming `asked` on a cluster with `classes`, its remedy over a
/// repository that declares it.
fn shared_claim_remedy(asked: &str, classes: Vec<StorageClassInfo>, said: &str) -> Remedy {
    let mut f = pending(
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
    );
    let mut c = claim(Some(asked));
    c.access_modes = vec!["ReadWriteMany".into()];
    f.claims = vec![c];
    f.storage_classes = classes;
    f.claim_events = vec![provisioning_failed(said)];
    let d = testing::diagnosis(&f);
    assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
    let settings = testing::settings();
    let workload = testing::workload();
    let mut repo = testing::manifest();
    repo.objects.push(crate::RepoObject {
        kind: "PersistentVolumeClaim".into(),
        name: "cart-cache".into(),
        path: "apps/cart/pvc.yaml".into(),
        text: "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: cart-cache\nspec:\n  accessModes:\n  - ReadWriteMany\n  storageClassName: premium-rwx\n".into(),
        history: Vec::new(),
    });
    let cluster = crate::ClusterView::default();
    PvcPending.remedy(&d, &testing::input(&settings, &workload, &repo, &cluster))
}

fn class_set_by(r: &Remedy) -> (&str, &Change) {
    let Remedy::Change(c) = r else {
        panic!("expected a PR, got {r:?}");
    };
    let Some(Edit::SetObjectKey {
        lines: Some(lines), ..
    }) = c.edits.first()
    else {
        panic!(
            "expected the claim's storageClassName set, got {:?}",
            c.edits
        );
    };
    (lines[0].as_str(), c)
}

const NOT_FOUND: &str = "storageclass.storage.k8s.io \"premium-rwx\" not found";

#[test]
fn a_default_class_that_provisions_the_claim_is_the_fix() {
    let r = shared_claim_remedy(
        "premium-rwx",
        vec![
            provisioned_by("filestore", "filestore.csi.storage.gke.io", true),
            provisioned_by("nfs", "nfs.csi.k8s.io", false),
        ],
        NOT_FOUND,
    );
    let (set, c) = class_set_by(&r);
    assert_eq!(set, "storageClassName: filestore");
    assert!(
        c.notes.contains("the cluster's default class"),
        "{}",
        c.notes
    );
    assert!(c.notes.contains("kubectl delete pvc"), "{}", c.notes);
}

#[test]
fn a_block_default_gives_way_to_the_one_class_that_provisions_read_write_many() {
    let r = shared_claim_remedy(
        "premium-rwx",
        vec![
            provisioned_by("gp3", "ebs.csi.aws.com", true),
            provisioned_by("st1", "ebs.csi.aws.com", false),
            provisioned_by("efs-sc", "efs.csi.aws.com", false),
        ],
        NOT_FOUND,
    );
    let (set, c) = class_set_by(&r);
    assert_eq!(set, "storageClassName: efs-sc");
    assert_eq!(
        c.title,
        "fix(storage): provision cart-cache from StorageClass efs-sc"
    );
    assert!(
        c.notes.contains("not the default gp3: its provisioner ebs.csi.aws.com provisions ReadWriteOnce only and would refuse the claim"),
        "{}",
        c.notes
    );
    assert!(c.notes.contains("kubectl delete pvc -n"), "{}", c.notes);
    // The naive fix already applied: the claim names gp3 and the driver refuses it.
    let r = shared_claim_remedy(
        "gp3",
        vec![
            provisioned_by("gp3", "ebs.csi.aws.com", true),
            provisioned_by("efs-sc", "efs.csi.aws.com", false),
        ],
        "failed to provision volume with StorageClass \"gp3\": rpc error: code = InvalidArgument desc = Volume capabilities MULTI_NODE_MULTI_WRITER not supported. Only AccessModes[ReadWriteOnce] supported.",
    );
    let (set, c) = class_set_by(&r);
    assert_eq!(set, "storageClassName: efs-sc");
    assert!(
        c.notes.contains("`gp3`, whose provisioner ebs.csi.aws.com provisions ReadWriteOnce only, not ReadWriteMany"),
        "{}",
        c.notes
    );
}

#[test]
fn no_class_or_several_that_provision_the_claim_go_to_the_platform_team() {
    let escalated = |r: Remedy| match r {
        Remedy::Escalate { reason } => reason,
        other => panic!("expected an escalation, got {other:?}"),
    };
    let none = escalated(shared_claim_remedy(
        "premium-rwx",
        vec![
            provisioned_by("gp3", "ebs.csi.aws.com", true),
            provisioned_by("st1", "ebs.csi.aws.com", false),
        ],
        NOT_FOUND,
    ));
    assert!(none.contains("the platform team (storage)"), "{none}");
    assert!(
        none.contains("none of the cluster's classes can provision it (gp3 (default; ebs.csi.aws.com: ReadWriteOnce only), st1 (ebs.csi.aws.com: ReadWriteOnce only))"),
        "{none}"
    );
    let several = escalated(shared_claim_remedy(
        "premium-rwx",
        vec![
            provisioned_by("gp3", "ebs.csi.aws.com", true),
            provisioned_by("efs-sc", "efs.csi.aws.com", false),
            provisioned_by("nfs", "nfs.csi.k8s.io", false),
        ],
        NOT_FOUND,
    ));
    assert!(
        several.contains("chooses among the classes that can (efs-sc, nfs;"),
        "{several}"
    );
    assert!(several.contains("ReadWriteMany"), "{several}");
}
