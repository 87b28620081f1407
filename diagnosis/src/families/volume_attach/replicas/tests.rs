#![allow(clippy::unwrap_used, clippy::panic)]
use squad_protocols::cluster::{ClaimInfo, ClusterEvent, HpaInfo, WorkloadCondition};
use squad_runtime::ports::FileVersion;

use super::super::{ROOT_CAUSE, VolumeAttach, VolumeAttachSignals};
use crate::testing;
use crate::{ClusterView, Facts, Family, Remedy, RepoView};

const PV: &str = "pvc-3f1c2a9e-8d4b-4e7a-9c1d-2b5e6f7a8c9d";

/// A pod of ReplicaSet `cart-7d9f` waits on a volume that `holders` hold; the workload runs
/// `replicas` and mounts claim `cart-data` (bound to `PV`) with `modes`.
fn waiting(holders: &str, replicas: u32, modes: &[&str]) -> Facts {
    let mut f = testing::facts("Completed", 0, |_| 80.0, |_| 10.0);
    let p = f.pod.as_mut().unwrap();
    p.name = "cart-7d9f-x2k9p".into();
    p.owner = Some("ReplicaSet/cart-7d9f".into());
    p.phase = "Pending".into();
    p.node = "pool-a-2".into();
    p.containers[0].state = "waiting: ContainerCreating".into();
    p.containers[0].last_termination = None;
    p.containers[0].restart_count = 0;
    f.info.replicas = replicas;
    f.info.claims = vec!["cart-data".into()];
    f.claims = vec![ClaimInfo {
        name: "cart-data".into(),
        phase: "Bound".into(),
        storage_class: Some("gp3".into()),
        access_modes: modes.iter().map(|m| (*m).into()).collect(),
        requested: None,
        capacity: None,
        volume: PV.into(),
    }];
    f.events = vec![ClusterEvent {
        kind: "Warning".into(),
        reason: "FailedAttachVolume".into(),
        message: format!(
            "Multi-Attach error for volume \"{PV}\" Volume is already used by pod(s) {holders}"
        ),
        count: 40,
        first_seen: testing::now() - chrono::Duration::minutes(90),
        last_seen: testing::now(),
        object: "Pod/cart-7d9f-x2k9p".into(),
    }];
    f
}

fn signals(f: &Facts) -> (squad_protocols::Diagnosis, VolumeAttachSignals) {
    let d = testing::diagnosis(f);
    assert_eq!(d.root_cause.as_str(), ROOT_CAUSE, "{}", d.summary);
    let s = crate::family_signals(&d).unwrap();
    (d, s)
}

const V1: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\n  namespace: shop\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n        - name: api\n          image: r/cart:3.1\n";

fn version(commit: &str, content: &str) -> FileVersion {
    FileVersion {
        commit: commit.into(),
        at: testing::now(),
        message: format!("cart: {commit}"),
        content: content.into(),
    }
}

/// The manifest's versions, newest first (the newest is the repository's text).
fn repo(versions: &[(&str, &str)]) -> RepoView {
    RepoView {
        path: "apps/cart/deployment.yaml".into(),
        text: versions[0].1.into(),
        history: versions.iter().map(|(c, t)| version(c, t)).collect(),
        layers: Vec::new(),
        objects: Vec::new(),
    }
}

fn remedy(f: &Facts, repo: &RepoView, cluster: &ClusterView) -> Remedy {
    let d = testing::diagnosis(f);
    let settings = testing::settings();
    let w = testing::workload();
    let input = testing::input(&settings, &w, repo, cluster);
    VolumeAttach.remedy(&d, &input)
}

#[test]
fn holders_are_the_pods_the_multi_attach_error_names() {
    assert_eq!(
        super::holders(
            "Multi-Attach error for volume \"pvc-1\" Volume is already used by pod(s) web-1-a, web-1-b"
        ),
        ["web-1-a", "web-1-b"]
    );
    assert!(
        super::holders("Multi-Attach error for volume \"pvc-1\" Volume is already exclusively attached to one node and can't be attached to another").is_empty()
    );
}

#[test]
fn replicas_of_one_replica_set_on_a_read_write_once_claim_are_the_replicas_case() {
    let f = waiting("cart-7d9f-q8w2m", 3, &["ReadWriteOnce"]);
    let (d, s) = signals(&f);
    let shared = s.replicas.unwrap();
    assert_eq!(shared.owner, "ReplicaSet/cart-7d9f");
    assert_eq!(shared.holders, ["cart-7d9f-q8w2m"]);
    assert_eq!(shared.claim, "cart-data");
    assert_eq!(shared.replicas, 3);
    assert!(
        d.summary
            .contains("held on another node by cart-7d9f-q8w2m (its own ReplicaSet cart-7d9f)")
            && d.summary
                .contains("3 replicas of cart share claim cart-data (ReadWriteOnce)"),
        "{}",
        d.summary
    );
    assert!(
        !d.recommendations
            .iter()
            .any(|r| r.contains("rolls with `strategy: Recreate`")),
        "{:?}",
        d.recommendations
    );
}

#[test]
fn an_old_replica_set_holding_the_volume_is_a_rollout_and_keeps_recreate() {
    // The holder belongs to the previous ReplicaSet: a rolling update, not the replicas.
    let f = waiting("cart-5b4c-r7t2z", 3, &["ReadWriteOnce"]);
    let (_, s) = signals(&f);
    assert_eq!(s.replicas, None);
    let Remedy::Change(c) = remedy(&f, &repo(&[("b2", V1)]), &ClusterView::default()) else {
        panic!("expected the Recreate PR");
    };
    assert!(c.title.contains("strategy Recreate"), "{}", c.title);
}

#[test]
fn one_replica_or_a_shared_access_mode_or_no_claim_read_is_not_the_replicas_case() {
    for f in [
        waiting("cart-7d9f-q8w2m", 1, &["ReadWriteOnce"]),
        waiting("cart-7d9f-q8w2m", 3, &["ReadWriteOnce", "ReadWriteMany"]),
        waiting("cart-7d9f-q8w2m", 3, &["ReadOnlyMany"]),
        {
            let mut f = waiting("cart-7d9f-q8w2m", 3, &["ReadWriteOnce"]);
            f.claims.clear();
            f
        },
        {
            let mut f = waiting("cart-7d9f-q8w2m", 3, &["ReadWriteOnce"]);
            f.pod.as_mut().unwrap().owner = None;
            f
        },
    ] {
        let (_, s) = signals(&f);
        assert_eq!(s.replicas, None, "{f:?}");
    }
}

#[test]
fn with_no_holder_named_a_finished_rollout_says_the_replicas_hold_it() {
    let mut f = waiting("x", 3, &["ReadWriteOnce"]);
    f.events[0].message = format!(
        "Multi-Attach error for volume \"{PV}\" Volume is already exclusively attached to one node and can't be attached to another"
    );
    let (_, s) = signals(&f);
    assert_eq!(s.replicas, None, "a rollout may be in progress");
    f.info.conditions = vec![WorkloadCondition {
        kind: "Progressing".into(),
        status: "True".into(),
        reason: "NewReplicaSetAvailable".into(),
        message: "ReplicaSet \"cart-7d9f\" has successfully progressed.".into(),
    }];
    let (_, s) = signals(&f);
    assert!(s.replicas.unwrap().holders.is_empty());
}

#[test]
fn the_change_that_raised_replicas_from_one_is_undone() {
    let f = waiting("cart-7d9f-q8w2m", 3, &["ReadWriteOnce"]);
    let v2 = V1.replace("replicas: 1", "replicas: 3 # launch");
    let v3 = v2.replace("image: r/cart:3.1", "image: r/cart:3.2");
    let r = repo(&[("c3", &v3), ("b2", &v2), ("a1", V1)]);
    let Remedy::Change(c) = remedy(&f, &r, &ClusterView::default()) else {
        panic!("expected a PR");
    };
    let [crate::Edit::SetObjectKey { keys, lines, .. }] = c.edits.as_slice() else {
        panic!("{:?}", c.edits);
    };
    assert_eq!(keys, &["spec", "replicas"]);
    assert_eq!(lines.as_deref(), Some(&["replicas: 1".to_owned()][..]));
    assert!(c.title.contains("from before b2"), "{}", c.title);
    assert!(
        c.notes.contains("volumeClaimTemplates")
            && c.notes.contains("ReadWriteMany")
            && c.notes.contains("app's owners")
            && c.notes.contains("`strategy: Recreate` would not help"),
        "{}",
        c.notes
    );
    assert!(!c.title.contains("Recreate"), "{}", c.title);
}

#[test]
fn replicas_that_never_ran_as_one_go_to_the_app_owners() {
    let f = waiting("cart-7d9f-q8w2m", 3, &["ReadWriteOnce"]);
    // Raised from 2: no count of one pod ran.
    let two = V1.replace("replicas: 1", "replicas: 2");
    let three = V1.replace("replicas: 1", "replicas: 3");
    for r in [
        repo(&[("b2", &three), ("a1", &two)]),
        // Never changed: nothing to undo.
        repo(&[("a1", &three)]),
    ] {
        let Remedy::Escalate { reason } = remedy(&f, &r, &ClusterView::default()) else {
            panic!("expected an escalation");
        };
        assert!(
            reason.contains("the owner is the app's owners")
                && reason.contains("volumeClaimTemplates")
                && reason.contains("`strategy: Recreate` would not help"),
            "{reason}"
        );
    }
}

#[test]
fn an_hpa_that_scales_the_replicas_goes_to_the_app_owners_with_its_min_replicas() {
    let f = waiting("cart-7d9f-q8w2m", 3, &["ReadWriteOnce"]);
    let v2 = V1.replace("replicas: 1", "replicas: 3");
    let cluster = ClusterView {
        hpas: Some(Ok(vec![HpaInfo {
            name: "cart".into(),
            target: "Deployment/cart".into(),
            min_replicas: 2,
            max_replicas: 6,
            metrics: vec!["cpu 70%".into()],
            current_replicas: 3,
            desired_replicas: 3,
            current_metrics: Vec::new(),
            conditions: Vec::new(),
            last_scale_time: None,
        }])),
        ..ClusterView::default()
    };
    let Remedy::Escalate { reason } = remedy(&f, &repo(&[("b2", &v2), ("a1", V1)]), &cluster)
    else {
        panic!("expected an escalation");
    };
    assert!(
        reason.contains("HPA cart scales it between minReplicas 2 and maxReplicas 6")
            && reason.contains("the owner is the app's owners"),
        "{reason}"
    );
}

#[test]
fn the_replicas_case_reads_the_claims_and_the_hpas() {
    let f = waiting("cart-7d9f-q8w2m", 3, &["ReadWriteOnce"]);
    assert_eq!(
        VolumeAttach.lookups(&f),
        [crate::Lookup::Claims, crate::Lookup::Autoscalers]
    );
    let (d, _) = signals(&f);
    assert!(VolumeAttach.cluster_needs(&d, &RepoView::default()).hpas);
    let mut f = f;
    f.events[0].reason = "FailedMount".into();
    assert!(VolumeAttach.lookups(&f).is_empty());
}
