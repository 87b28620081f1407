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
