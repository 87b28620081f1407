#![allow(clippy::unwrap_used)]
use std::time::Duration;

use serde_json::json;
use squad_protocols::cluster::HpaInfo;

use super::super::testing::served;
use super::*;
use crate::Scenario;

#[test]
fn every_autoscaling_version_reads_the_same_targets() {
    let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "a"},
        "spec": {"maxReplicas": 5, "targetCPUUtilizationPercentage": 60}});
    let a = Autoscaler::parse(&v1);
    assert_eq!((a.min, a.max), (1, 5));
    assert_eq!(a.metrics, [("cpu".to_owned(), Target::Utilization(60))]);
    let v2beta1 = json!({"spec": {"minReplicas": 2, "maxReplicas": 5, "metrics": [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "512Mi"}}]}});
    assert_eq!(
        Autoscaler::parse(&v2beta1).metrics,
        [(
            "memory".to_owned(),
            Target::AverageValue(512.0 * 1024.0 * 1024.0)
        )]
    );
    let v2 = json!({"spec": {"maxReplicas": 5,
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
        "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                      "target": {"type": "Utilization", "averageUtilization": 70}}},
                    {"type": "External", "external": {"metric": {"name": "queue"}}}]}});
    let a = Autoscaler::parse(&v2);
    assert_eq!(a.metrics, [("cpu".to_owned(), Target::Utilization(70))]);
    assert_eq!(a.scale_down_window, 60);
    // No metrics at all: the controller's default, 80% CPU.
    let none = json!({"spec": {"maxReplicas": 3}});
    assert_eq!(
        Autoscaler::parse(&none).metrics,
        [("cpu".to_owned(), Target::Utilization(80))]
    );
}

fn hpa(sim: &SimCluster, ns: &str) -> HpaInfo {
    sim.hpas(ns).unwrap().remove(0)
}

fn condition(h: &HpaInfo, kind: &str) -> (String, String) {
    let c = h.condition(kind).unwrap();
    (c.status.clone(), c.reason.clone())
}

fn commit(
    s: &Scenario,
    git: &squad_adapters::git::GitRepo,
    at: DateTime<Utc>,
    path: &str,
    from: &str,
    to: &str,
) {
    let text = git.read("main", path).unwrap().unwrap();
    assert!(text.contains(from), "{path}: {from}");
    git.commit(
        "main",
        None,
        "test change",
        &[(path.to_owned(), text.replace(from, to))],
        at,
        false,
    )
    .unwrap();
    let _ = s;
}

/// The shipped case: two pods at the HPA's minimum, then the campaign: 3, then 4 (its
/// maximum), where it stays with CPU at 109% of the request.
#[test]
fn the_campaign_scales_the_catalog_to_its_maximum_and_no_further() {
    let s = Scenario::embedded("hpa-maxed").unwrap();
    let (sim, _git, _clock, _dir) = served(s.clone());
    let w = s.workload_ref();
    let pods = sim.pods_of(&w).unwrap();
    assert_eq!(pods.len(), 4);
    // The two the campaign added were created when the HPA scaled up.
    let mut created: Vec<i64> = pods
        .iter()
        .map(|p| (s.now - p.created_at).num_minutes())
        .collect();
    created.sort();
    assert_eq!(created, [171, 178, 43200, 43200]);
    let h = hpa(&sim, &w.namespace);
    assert_eq!((h.current_replicas, h.desired_replicas), (4, 4));
    assert_eq!(h.current_metrics, ["cpu 109%"]);
    assert_eq!(
        condition(&h, "ScalingLimited"),
        ("True".into(), "TooManyReplicas".into())
    );
    assert_eq!(
        condition(&h, "ScalingActive"),
        ("True".into(), "ValidMetricFound".into())
    );
    let rescales: Vec<String> = sim
        .events(&w.namespace, "catalog")
        .unwrap()
        .into_iter()
        .filter(|e| e.reason == "SuccessfulRescale")
        .map(|e| e.message)
        .collect();
    assert_eq!(rescales.len(), 3, "{rescales:?}");
    assert!(rescales[2].starts_with("New size: 4; reason: cpu resource utilization"));
    assert_eq!(sim.workload(&w).unwrap().replicas, 4);
}

/// The fix a careful SRE opens: the maximum back at 10. The HPA scales to what the load
/// asks for (7) and is no longer limited; each pod's share falls under the target.
#[tokio::test(start_paused = true)]
async fn a_higher_maximum_lets_the_hpa_follow_the_load() {
    let s = Scenario::embedded("hpa-maxed").unwrap();
    let (sim, git, clock, _dir) = served(s.clone());
    let hpa_file = "deploy/storefront/catalog-hpa.yaml";
    commit(
        &s,
        &git,
        clock.now(),
        hpa_file,
        "maxReplicas: 4",
        "maxReplicas: 10",
    );
    clock.sleep(Duration::from_secs(5 * 60)).await;
    let h = hpa(&sim, &s.workload.namespace);
    assert_eq!((h.max_replicas, h.current_replicas), (10, 7));
    assert_eq!(
        condition(&h, "ScalingLimited"),
        ("False".into(), "DesiredWithinRange".into())
    );
    assert_eq!(h.current_metrics, ["cpu 67%"]);
    assert_eq!(sim.pods_of(&s.workload_ref()).unwrap().len(), 7);
}

/// A deploy that drops the CPU request: the controller cannot compute a utilisation, says
/// so at every sync, and leaves the replicas where they are.
#[tokio::test(start_paused = true)]
async fn without_the_request_the_hpa_cannot_compute_and_holds() {
    let s = Scenario::embedded("hpa-maxed").unwrap();
    let (sim, git, clock, _dir) = served(s.clone());
    commit(
        &s,
        &git,
        clock.now(),
        &s.workload.manifest,
        "            cpu: 250m\n",
        "",
    );
    clock.sleep(Duration::from_secs(10 * 60)).await;
    let h = hpa(&sim, &s.workload.namespace);
    assert_eq!(h.current_replicas, 4);
    let active = h.condition("ScalingActive").unwrap();
    assert_eq!(
        (
            active.status.as_str(),
            active.reason.as_str(),
            active.message.as_str()
        ),
        (
            "False",
            "FailedGetResourceMetric",
            "the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu"
        )
    );
    assert!(h.current_metrics.is_empty());
    let failed = sim
        .events(&s.workload.namespace, "catalog")
        .unwrap()
        .into_iter()
        .find(|e| e.reason == "FailedGetResourceMetric")
        .unwrap();
    assert_eq!(
        failed.message,
        "failed to get cpu utilization: missing request for cpu"
    );
    // Every 15 s over the 10 minutes since the sync (a commit at the scenario's now is in
    // force at once).
    assert_eq!(failed.count, 41);
}

/// A commit that changes the replicas and not the pod template is no rollout: the same
/// ReplicaSet is scaled, its pods stay, the revision holds, and each pod's share of the
/// traffic falls.
#[tokio::test(start_paused = true)]
async fn a_replicas_only_commit_scales_the_replica_set_it_has() {
    let s = Scenario::embedded("cpu-throttling").unwrap();
    let (sim, git, clock, _dir) = served(s.clone());
    let w = s.workload_ref();
    let before = sim.pods_of(&w).unwrap();
    let history = sim.rollout_history(&w).unwrap().len();
    let cpu = |sim: &SimCluster| {
        let d = sim.desired().unwrap();
        sim.rps(&d, sim.clock.now())
    };
    let per_pod = cpu(&sim);
    commit(
        &s,
        &git,
        clock.now(),
        &s.workload.manifest,
        "replicas: 3",
        "replicas: 5",
    );
    clock.sleep(Duration::from_secs(120)).await;
    let after = sim.pods_of(&w).unwrap();
    assert_eq!(after.len(), 5);
    let rs = |p: &squad_protocols::cluster::PodInfo| p.owner.clone();
    assert!(after.iter().all(|p| rs(p) == rs(&before[0])), "{after:?}");
    assert!(
        before
            .iter()
            .all(|b| after.iter().any(|a| a.name == b.name))
    );
    assert_eq!(sim.rollout_history(&w).unwrap().len(), history);
    assert_eq!(sim.workload(&w).unwrap().replicas, 5);
    assert!((cpu(&sim) - per_pod * 3.0 / 5.0).abs() < 1e-9);
}

/// A higher target: the proposal falls, but the scale-down waits out the stabilisation
/// window (5 minutes) with the highest recent recommendation.
#[tokio::test(start_paused = true)]
async fn a_scale_down_waits_out_the_stabilisation_window() {
    let s = Scenario::embedded("hpa-maxed").unwrap();
    let (sim, git, clock, _dir) = served(s.clone());
    let hpa_file = "deploy/storefront/catalog-hpa.yaml";
    commit(
        &s,
        &git,
        clock.now(),
        hpa_file,
        "averageUtilization: 70",
        "averageUtilization: 150",
    );
    clock.sleep(Duration::from_secs(3 * 60)).await;
    let h = hpa(&sim, &s.workload.namespace);
    assert_eq!(h.current_replicas, 4);
    assert_eq!(
        condition(&h, "AbleToScale"),
        ("True".into(), "ScaleDownStabilized".into())
    );
    clock.sleep(Duration::from_secs(5 * 60)).await;
    let h = hpa(&sim, &s.workload.namespace);
    assert_eq!(h.current_replicas, 3);
}
