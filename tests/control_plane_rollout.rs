//! The differential tier for a rolling update that cannot finish: the real Kubernetes 1.20.2
//! Deployment and ReplicaSet controllers (kube-controller-manager) against the simulator, on
//! the shipped `rollout-stuck` scenario. The test plays the kubelet: every pod the real
//! controllers create and the real scheduler binds gets the status the world gives that
//! revision's pods — the previous release's Running and Ready, the new release's Running but
//! not Ready (its start-up outlasts the test). The previous revision is rolled out first and
//! becomes available, then the last deploy is applied; once the real Deployment controller
//! reports `ProgressDeadlineExceeded`, both sides must agree on each ReplicaSet's replicas and
//! ready pods (by image), the Deployment's counters, and its conditions.
//!
//! The progress deadline is shortened to 10 s on both sides (the scenario's is the default
//! 600 s); nothing else is changed.
//!
//! Skipped (with a message) when a control-plane binary is missing, unless `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use squad_sim::Scenario;
use squad_testkit::apiserver::Options;
use squad_testkit::control_plane;
use squad_testkit::node_agent::{self, Container};

const WITHIN: Duration = Duration::from_secs(90);
const DEADLINE: &str = "progressDeadlineSeconds: 10\n  selector:";

/// The scenario with both deploys' progress deadline at 10 s.
fn scenario() -> Scenario {
    let mut s = Scenario::embedded("rollout-stuck").unwrap();
    for (path, text) in s.files.iter_mut() {
        if path.ends_with("search-api.yaml") {
            *text = text.replacen("  selector:", &format!("  {DEADLINE}"), 1);
        }
    }
    s
}

/// The Deployment of the deploy at `dir`.
fn deployment(s: &Scenario, dir: &str) -> Value {
    let path = format!("{dir}/{}", s.workload.manifest);
    let mut d = squad_gitops::objects::parse(&path, &s.files[&path])
        .unwrap()
        .remove(0);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 10);
    d["metadata"]["namespace"] = json!(s.workload.namespace);
    d
}

/// What both sides are compared on: (image, replicas, ready) per ReplicaSet with pods or
/// wanting some; the Deployment's counters; its conditions (type, status, reason, message
/// with the ReplicaSet's hash left out).
type Outcome = (
    BTreeSet<(String, i64, i64)>,
    Vec<(String, i64)>,
    BTreeSet<(String, String, String, String)>,
);

fn outcome(deployment: &Value, replica_sets: &[Value]) -> Outcome {
    let image = |o: &Value| {
        o["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let sets = replica_sets
        .iter()
        .filter(|rs| rs["spec"]["replicas"].as_i64().unwrap_or(0) > 0)
        .map(|rs| {
            (
                image(rs),
                rs["spec"]["replicas"].as_i64().unwrap_or(0),
                rs["status"]["readyReplicas"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let status = &deployment["status"];
    let counters = [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
    ]
    .iter()
    .map(|k| ((*k).to_owned(), status[*k].as_i64().unwrap_or(0)))
    .collect();
    let conditions = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let message = c["message"].as_str().unwrap_or("");
            let message = match message.split_once("ReplicaSet \"") {
                Some((a, rest)) => {
                    let end = rest.find('"').unwrap_or(rest.len());
                    format!("{a}ReplicaSet \"<new>\"{}", &rest[end + 1..])
                }
                None => message.to_owned(),
            };
            (
                c["type"].as_str().unwrap_or("").to_owned(),
                c["status"].as_str().unwrap_or("").to_owned(),
                c["reason"].as_str().unwrap_or("").to_owned(),
                message,
            )
        })
        .collect();
    (sets, counters, conditions)
}

/// The kubelet's part: every bound pod of the namespace without a status runs, ready when its
/// image is `ready_image`.
async fn kubelet(client: Client, ns: String, ready_image: String, stop: Arc<AtomicBool>) {
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let mut n = 10;
    while !stop.load(Ordering::Relaxed) {
        for pod in pods.list(&ListParams::default()).await.unwrap().items {
            let v = serde_json::to_value(&pod).unwrap();
            if v["spec"]["nodeName"].is_null() || v["status"]["phase"] == "Running" {
                continue;
            }
            n += 1;
            let ready = v["spec"]["containers"][0]["image"] == ready_image.as_str();
            node_agent::post_status(
                &pods,
                &v,
                &format!("10.244.9.{n}"),
                Container::Running { ready },
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls the Deployment until `done` says so (or the time is up), then returns it with its
/// ReplicaSets.
async fn settle(
    client: &Client,
    ns: &str,
    name: &str,
    done: impl Fn(&Value) -> bool,
    log: impl Fn() -> String,
) -> (Value, Vec<Value>) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let d = serde_json::to_value(deployments.get(name).await.unwrap()).unwrap();
        if done(&d) {
            let rs = sets
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .map(|r| serde_json::to_value(r).unwrap())
                .collect();
            return (d, rs);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} did not settle within {WITHIN:?}: {}\n{}",
            d["status"],
            log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn condition(d: &Value, kind: &str) -> (String, String) {
    d["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").to_owned(),
                c["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployment_controller_stalls_the_slow_release_as_the_simulator_does() {
    const TEST: &str = "the_deployment_controller_stalls_the_slow_release_as_the_simulator_does";
    let Some(cp) = control_plane::start_or_skip(TEST, Options::default())
        .await
        .unwrap()
    else {
        return;
    };
    let s = Arc::new(scenario());
    let ns = s.workload.namespace.clone();
    let name = s.workload.name.clone();

    // The simulator, at the alert.
    let dir = tempfile::tempdir().unwrap();
    let clock = squad_runtime::Clock::starting_at(s.now);
    let backends = squad_sim::SimBackends::seed(s.clone(), dir.path(), clock, &Default::default())
        .await
        .unwrap();
    let world = backends.sim.world().unwrap();
    let simulated = outcome(
        world.of_kind("Deployment", Some(&ns)).next().unwrap(),
        &world
            .of_kind("ReplicaSet", Some(&ns))
            .cloned()
            .collect::<Vec<_>>(),
    );

    // The real controllers.
    let client = cp.client().await.unwrap();
    node_agent::prepare(&client, &s).await.unwrap();
    let before = deployment(&s, "history/r1");
    let after = deployment(&s, "manifests");
    let old_image = before["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let kubelet = tokio::spawn(kubelet(client.clone(), ns.clone(), old_image, stop.clone()));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(before).unwrap(),
        )
        .await
        .unwrap();
    settle(
        &client,
        &ns,
        &name,
        |d| d["status"]["availableReplicas"] == 4 && d["status"]["updatedReplicas"] == 4,
        || cp.log_tail(),
    )
    .await;
    deployments
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": after["spec"]})),
        )
        .await
        .unwrap();
    let (d, rs) = settle(
        &client,
        &ns,
        &name,
        |d| condition(d, "Progressing") == ("False".into(), "ProgressDeadlineExceeded".into()),
        || cp.log_tail(),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    kubelet.await.unwrap();
    let real = outcome(&d, &rs);
    println!("simulated {simulated:#?}\nreal {real:#?}");
    assert_eq!(simulated, real);
}
