#![allow(clippy::unwrap_used, clippy::expect_used)]

use squad_protocols::Declared;
use squad_protocols::cluster::{ContainerSpec, ContainerStatus, NodeCondition, Termination};

use super::*;

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::minutes(minutes)
}

fn series(f: impl Fn(f64) -> f64) -> Vec<Sample> {
    (0..288)
        .map(|i| Sample {
            at: at(i * 5 - 24 * 60),
            value: f(i as f64 * 5.0 / 60.0),
        })
        .collect()
}

fn pod(name: &str, node: &str, oom: bool) -> PodInfo {
    PodInfo {
        namespace: "shop".into(),
        name: name.into(),
        node: node.into(),
        phase: "Running".into(),
        reason: None,
        message: None,
        owner: Some("ReplicaSet/cart-7d9".into()),
        created_at: at(-30 * 60),
        containers: vec![ContainerStatus {
            name: "cart".into(),
            ready: true,
            restart_count: u32::from(oom),
            state: "running".into(),
            last_termination: oom.then(|| Termination {
                reason: "OOMKilled".into(),
                exit_code: 137,
                finished_at: at(-10),
            }),
        }],
        init_containers: Vec::new(),
        deleted_at: None,
    }
}

fn workload(replicas: u32, limit: &str) -> WorkloadInfo {
    WorkloadInfo {
        kind: "Deployment".into(),
        namespace: "shop".into(),
        name: "cart".into(),
        replicas,
        containers: vec![ContainerSpec {
            name: "cart".into(),
            image: "registry.example/cart:2.1.0".into(),
            limits: [("memory".to_owned(), limit.parse().unwrap())].into(),
            ..ContainerSpec::default()
        }],
        ..WorkloadInfo::default()
    }
}

fn node_info(name: &str, taints: &[&str], ready: bool) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        conditions: vec![NodeCondition {
            kind: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            ..NodeCondition::default()
        }],
        allocatable_memory: Some("7Gi".parse().unwrap()),
        capacity_memory: Some("8Gi".parse().unwrap()),
        allocatable_cpu: Some("1930m".parse().unwrap()),
        labels: [("pool".to_owned(), "general".to_owned())].into(),
        taints: taints.iter().map(|t| (*t).to_owned()).collect(),
        ..NodeInfo::default()
    }
}

fn node_pod(name: &str, cpu: &str, memory: &str) -> NodePod {
    NodePod {
        pod: pod(name, "n1", false),
        priority: 0,
        priority_class: None,
        memory_request: Some(memory.parse().unwrap()),
        memory_limit: None,
        cpu_request: Some(cpu.parse().unwrap()),
    }
}

fn seed(memory: Vec<Sample>, rps: Vec<Sample>, replicas: u32, oom: bool) -> Seed {
    Seed {
        now: at(0),
        container: "cart".into(),
        workload: workload(replicas, "512Mi"),
        pods: (0..replicas)
            .map(|i| pod(&format!("cart-7d9-{i}"), "n1", oom))
            .collect(),
        rolled_out_at: at(-30 * 60),
        nodes: vec![
            node_info("n1", &[], true),
            node_info("n2", &["dedicated=gpu:NoSchedule"], true),
            node_info("n3", &[], false),
        ],
        node_pods: [(
            "n1".to_owned(),
            vec![
                node_pod("cart-7d9-0", "100m", "256Mi"),
                node_pod("search-1", "500m", "1Gi"),
                node_pod("search-2", "250m", "512Mi"),
            ],
        )]
        .into(),
        memory,
        rps,
        cpu: Vec::new(),
        repo: [(
            "apps/cart.yaml".to_owned(),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\n  namespace: shop\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: cart}\n  template:\n    metadata:\n      labels: {app: cart}\n    spec:\n      containers:\n        - name: cart\n          image: registry.example/cart:2.1.0\n          resources:\n            limits: {memory: 512Mi}\n".to_owned(),
        )]
        .into(),
    }
}

fn workload_ref(kind: &str, ns: &str, name: &str) -> squad_protocols::WorkloadRef {
    squad_protocols::WorkloadRef {
        kind: kind.into(),
        namespace: ns.into(),
        name: name.into(),
    }
}

fn request() -> ReplayRequest {
    ReplayRequest {
        workload: workload_ref("Deployment", "shop", "cart"),
        container: "cart".into(),
        declared: Declared {
            manifest: "apps/cart.yaml".into(),
            ..Declared::default()
        },
        files: Vec::new(),
        horizon: Duration::from_secs(24 * 3600),
    }
}

#[test]
fn memory_is_fitted_as_a_base_plus_a_share_per_request_at_the_days_peak() {
    // Two pods share 40..120 requests/s over the day; each holds 200 MiB + 1.5 MiB per req/s.
    let rps = series(|h| 80.0 + 40.0 * (h / 24.0 * std::f64::consts::TAU).sin());
    let memory = series(|h| {
        (200.0 + 1.5 * (80.0 + 40.0 * (h / 24.0 * std::f64::consts::TAU).sin()) / 2.0) * MIB
    });
    let fit = seed(memory, rps, 2, false).fit();
    assert!((fit.per_rps_mib - 1.5).abs() < 0.01, "{fit:?}");
    assert!((fit.base_mib - 200.0).abs() < 0.5, "{fit:?}");
    assert!((fit.baseline_rps - 60.0).abs() < 0.1, "{fit:?}");
    assert_eq!(fit.leak_mib_per_hour, 0.0);
    assert_eq!(fit.capped_at, None);
}

#[test]
fn flat_traffic_keeps_memory_at_its_highest_and_a_steady_climb_is_a_growth_per_hour() {
    let flat = seed(
        series(|h| (300.0 + (h * 7.0).sin()) * MIB),
        Vec::new(),
        1,
        false,
    )
    .fit();
    assert_eq!(flat.per_rps_mib, 0.0);
    assert_eq!(flat.leak_mib_per_hour, 0.0, "{flat:?}");
    assert!((flat.base_mib - 301.0).abs() < 0.01, "{flat:?}");

    // 12 MiB an hour all day, in pods 30 h old: a growth, and the base where they started.
    let climbing = seed(
        series(|h| (100.0 + 12.0 * (6.0 + h)) * MIB),
        Vec::new(),
        1,
        false,
    )
    .fit();
    assert!(
        (climbing.leak_mib_per_hour - 12.0).abs() < 0.01,
        "{climbing:?}"
    );
    assert!((climbing.base_mib - 100.0).abs() < 0.5, "{climbing:?}");
}

#[test]
fn oom_kills_put_the_demand_just_over_the_limit_they_held_it_at() {
    let fit = seed(series(|_| 512.0 * MIB), Vec::new(), 1, true).fit();
    assert_eq!(fit.capped_at, Some("512Mi".parse().unwrap()));
    assert!(fit.base_mib > 512.0, "{fit:?}");
    let s = seed(series(|_| 512.0 * MIB), Vec::new(), 1, true);
    assert!(
        s.describe(&fit).contains("at least just over"),
        "{}",
        s.describe(&fit)
    );
}

#[test]
fn the_scenario_holds_the_nodes_the_other_pods_requests_and_the_repository() {
    let s = seed(series(|_| 300.0 * MIB), Vec::new(), 2, false);
    let scenario = s.scenario(&request()).unwrap();
    assert_eq!(scenario.workload.manifest, "apps/cart.yaml");
    assert_eq!(scenario.workload.pods, ["cart-7d9-0", "cart-7d9-1"]);
    assert_eq!(scenario.nodes.len(), 3);
    let n1 = &scenario.nodes[0];
    // The workload's own pod is not counted as placed: the model places it.
    assert_eq!(n1.requested.pods, 2);
    assert_eq!(n1.requested.cpu, Some("750m".parse().unwrap()));
    assert_eq!(n1.requested.memory, Some("1536Mi".parse().unwrap()));
    let n2 = &scenario.nodes[1];
    assert_eq!(n2.taints.len(), 1);
    assert_eq!(
        (n2.taints[0].key.as_str(), n2.taints[0].value.as_str()),
        ("dedicated", "gpu")
    );
    assert_eq!(n2.taints[0].effect, "NoSchedule");
    // A node that is not Ready takes nothing new.
    assert!(scenario.nodes[2].unschedulable && !n1.unschedulable);
    assert_eq!(
        scenario.live_manifests().keys().collect::<Vec<_>>(),
        ["apps/cart.yaml"]
    );
}

#[test]
fn a_seed_the_model_cannot_hold_is_a_clear_error() {
    let mut s = seed(series(|_| 300.0 * MIB), Vec::new(), 1, false);
    s.nodes.iter_mut().for_each(|n| n.allocatable_cpu = None);
    assert!(s.scenario(&request()).unwrap_err().contains("allocatable"));
    let mut r = request();
    r.declared.manifest = "apps/elsewhere.yaml".into();
    let e = seed(series(|_| 300.0 * MIB), Vec::new(), 1, false)
        .scenario(&r)
        .unwrap_err();
    assert!(e.contains("workload.manifest"), "{e}");
}
