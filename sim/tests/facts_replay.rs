//! The world seeded from a cluster's facts against the world itself: a simulated cluster is read
//! over HTTP as a real one would be (the Kubernetes adapter on its API server, its Prometheus
//! API, its forge), a world is seeded from those facts alone, and the same fix is replayed in
//! both. Where the facts hold what decides the outcome (memory, requests, nodes), the two must
//! agree; where they do not (a missing variable the app exits on), the seeded world must say it
//! cannot reproduce the incident rather than predict.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use squad_protocols::{Declared, FileChange};
use squad_runtime::Clock;
use squad_runtime::ports::{ReplayRequest, Replayer};
use squad_sim::{FactsReplayer, Scenario, ServeKube, SimBackends};

struct Both {
    scenario: Arc<Scenario>,
    backends: SimBackends,
    facts: FactsReplayer,
    _dir: tempfile::TempDir,
}

async fn both(name: &str) -> Both {
    let scenario = Arc::new(Scenario::embedded(name).unwrap());
    let dir = tempfile::tempdir().unwrap();
    // The world stands still at the alert while both replays read it.
    let clock = Clock::frozen_at(scenario.now);
    let backends = SimBackends::seed(
        scenario.clone(),
        dir.path(),
        clock.clone(),
        &ServeKube::default(),
    )
    .await
    .unwrap();
    let facts = FactsReplayer::new(backends.cluster.clone(), backends.forge.clone(), clock);
    Both {
        scenario,
        backends,
        facts,
        _dir: dir,
    }
}

/// The scenario's manifest with `from` replaced by `to` (exactly once).
fn edited(s: &Scenario, from: &str, to: &str) -> FileChange {
    let path = s.workload.manifest.clone();
    let text = s.live_manifests()[&path].clone();
    assert_eq!(text.matches(from).count(), 1, "{from:?} in {path}");
    FileChange {
        path,
        content: text.replace(from, to),
    }
}

fn request(s: &Scenario, files: Vec<FileChange>) -> ReplayRequest {
    ReplayRequest {
        workload: s.workload_ref(),
        container: s.workload.container.clone(),
        declared: Declared {
            manifest: s.workload.manifest.clone(),
            kustomize: s.workload.kustomize.clone(),
            helm: s.workload.helm.clone(),
        },
        files,
        horizon: Duration::from_secs(24 * 3600),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bigger_limit_replays_alike_in_the_world_seeded_from_the_facts() {
    let b = both("oomkilled").await;
    let s = &b.scenario;
    for (limit, holds) in [("2Gi", true), ("1Gi", false), ("520Mi", false)] {
        let r = request(
            s,
            vec![edited(
                s,
                "memory: 512Mi # sized",
                &format!("memory: {limit} # sized"),
            )],
        );
        let model = b.backends.replayer.replay(&r).await.unwrap();
        let seeded = b.facts.replay(&r).await.unwrap();
        eprintln!(
            "{limit}: model {} / {}\n  seeded {} / {}\n  {}",
            model.without.describe(),
            model.with.describe(),
            seeded.without.describe(),
            seeded.with.describe(),
            seeded.seeded_from
        );
        assert!(!model.without.holds() && !seeded.without.holds());
        assert_eq!(model.holds(), holds, "the model, {limit}");
        assert_eq!(seeded.holds(), holds, "the seeded world, {limit}");
        assert!(seeded.seeded_from.contains("the cluster's facts"));
        assert!(seeded.table().contains("the cluster's facts"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_no_node_holds_stay_pending_in_the_world_seeded_from_the_facts() {
    let b = both("capacity").await;
    let s = &b.scenario;
    let text = s.live_manifests()[&s.workload.manifest].clone();
    // The request the last deploy raised, back under what the nodes have left.
    let lowered = FileChange {
        path: s.workload.manifest.clone(),
        content: text.replacen("memory: 4Gi", "memory: 1Gi", 1),
    };
    let r = request(s, vec![lowered]);
    let model = b.backends.replayer.replay(&r).await.unwrap();
    let seeded = b.facts.replay(&r).await.unwrap();
    eprintln!(
        "model {} / {}\nseeded {} / {}\n{}",
        model.without.describe(),
        model.with.describe(),
        seeded.without.describe(),
        seeded.with.describe(),
        seeded.seeded_from
    );
    assert_eq!(model.without.ready, seeded.without.ready);
    assert_eq!(model.holds(), seeded.holds());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_facts_do_not_hold_is_refused_not_predicted() {
    // orders-api exits without DATABASE_URL: no fact read from a cluster says so.
    let b = both("crashloop").await;
    let s = &b.scenario;
    let r = request(s, Vec::new());
    let e = b.facts.replay(&r).await.unwrap_err().to_string();
    assert!(e.contains("does not reproduce the incident"), "{e}");
}
