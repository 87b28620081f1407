#![allow(clippy::unwrap_used, clippy::panic)]
use chrono::{DateTime, Utc};

use super::super::testing::served;
use super::*;
use crate::Scenario;

/// The newest rollout's blocker, as the desired state holds it now.
fn newest_blocker(sim: &SimCluster) -> Option<Blocker> {
    let (d, _) = sim.current().unwrap();
    d.rollouts.last().unwrap().blocked.clone()
}

/// Commits the workload's manifest with `edit` applied to its text, at `at`.
fn commit(git: &squad_adapters::git::GitRepo, s: &Scenario, at: DateTime<Utc>, edit: &str) {
    let path = &s.workload.manifest;
    let text = git.read("main", path).unwrap().unwrap();
    let text = text.replace("spec:\n  replicas: 1\n", edit);
    git.commit(
        "main",
        None,
        "thumbnailer: edit",
        &[(path.clone(), text)],
        at,
        false,
    )
    .unwrap();
}

/// The rolling update's new pod lands on the emptier node while the old pod holds the volume:
/// Multi-Attach, naming the old pod; the volume is the claim's PersistentVolume.
#[test]
fn a_rolling_update_to_another_node_cannot_attach_the_rwo_volume() {
    let s = Scenario::embedded("multi-attach").unwrap();
    let (sim, _git, _clock, _dir) = served(s.clone());
    let Some(Blocker::Attach {
        volume,
        pv,
        holders,
    }) = newest_blocker(&sim)
    else {
        panic!("no Multi-Attach: {:?}", newest_blocker(&sim));
    };
    assert_eq!(volume, "cache");
    assert_eq!(
        pv,
        format!(
            "pvc-{}",
            crate::cluster::world::uid("PersistentVolumeClaim/media/thumbnail-cache")
        )
    );
    let (d, _) = sim.current().unwrap();
    assert_eq!(holders, d.rollouts[0].pods[..1]);
}

/// `Recreate` (committed mid-rollout: the controller then scales the old ReplicaSet down first)
/// deletes the old pod first, and a claim that allows ReadWriteMany attaches
/// anywhere: neither conflicts.
#[tokio::test(start_paused = true)]
async fn recreate_or_a_shared_volume_does_not_conflict() {
    let s = Scenario::embedded("multi-attach").unwrap();
    let (sim, git, clock, _dir) = served(s.clone());
    commit(
        &git,
        &s,
        clock.now(),
        "spec:\n  replicas: 1\n  strategy:\n    type: Recreate\n",
    );
    clock.sleep(std::time::Duration::from_secs(120)).await;
    assert_eq!(newest_blocker(&sim), None);

    let mut shared = s.clone();
    let claim = "deploy/media/thumbnailer/pvc.yaml".to_owned();
    for dir in ["manifests", "history/r1"] {
        let key = format!("{dir}/{claim}");
        let text = shared.files[&key].replace("- ReadWriteOnce", "- ReadWriteMany");
        shared.files.insert(key, text);
    }
    let (sim, _git, _clock, _dir) = served(shared);
    assert_eq!(newest_blocker(&sim), None);
}

/// Replicas of one ReplicaSet (a commit that only raised `replicas`): the pods the scheduler puts
/// on another node than the first pod's cannot attach its ReadWriteOnce volume, whatever the
/// strategy; the pods on that node run. Back to one replica, nothing waits.
#[tokio::test(start_paused = true)]
async fn replicas_on_other_nodes_cannot_attach_the_rwo_volume_the_first_holds() {
    let s = Scenario::embedded("multi-attach-replicas").unwrap();
    let (sim, git, clock, _dir) = served(s.clone());
    let (d, now) = sim.current().unwrap();
    let r = d.rollouts.last().unwrap();
    assert_eq!(r.blocked, None, "no rollout conflicts: one ReplicaSet");
    let placements = sim.placements(&d, now);
    let waiting: Vec<&String> = r
        .pods
        .iter()
        .filter(|p| sim.replica_attach(&d, r, p, now, &placements).is_some())
        .collect();
    assert!(!waiting.is_empty() && waiting.len() < 3, "{waiting:?}");
    let Some((Blocker::Attach { holders, .. }, created)) =
        sim.replica_attach(&d, r, waiting[0], now, &placements)
    else {
        panic!("no Multi-Attach");
    };
    assert!(holders.contains(&r.pods[0]), "{holders:?}");
    assert!(created > r.at, "created when the ReplicaSet was scaled");
    let info = sim.pod_info(&d, r, waiting[0], now);
    assert_eq!(info.containers[0].state, "waiting: ContainerCreating");
    assert_eq!(
        sim.pod_info(&d, r, &r.pods[0], now).containers[0].state,
        "running"
    );

    let path = &s.workload.manifest;
    let text = git.read("main", path).unwrap().unwrap();
    let text = text.replace(
        "replicas: 3 # catalog launch: more throughput",
        "replicas: 1",
    );
    git.commit(
        "main",
        None,
        "one replica",
        &[(path.clone(), text)],
        clock.now(),
        false,
    )
    .unwrap();
    clock.sleep(std::time::Duration::from_secs(120)).await;
    let (d, now) = sim.current().unwrap();
    let placements = sim.placements(&d, now);
    for (r, n) in sim.serving(&d, now) {
        for p in r.pods.iter().take(n) {
            assert!(
                sim.replica_attach(&d, r, p, now, &placements).is_none(),
                "{p}"
            );
        }
    }
}
