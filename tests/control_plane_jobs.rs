//! The differential tier for Jobs: the real Kubernetes 1.20.2 Job controller
//! (kube-controller-manager) against the simulator, on the shipped `job-failed` scenario's Job.
//! The test plays the kubelet: every pod the real Job controller creates and the real scheduler
//! binds gets the status the world gives that Job's pods — running (the deadline case), or
//! failed with the app's exit (the back-off case). Both sides must agree on how the Job ends:
//! its `Failed` condition (reason and message), its failed-pod count, the pods left, and the
//! reasons of the Job controller's events.
//!
//! Cases: the shipped scenario (its `activeDeadlineSeconds` shortened to 15 s on both sides —
//! long enough for the controller to see its pod active: the pod still running is deleted, and
//! counted failed, `DeadlineExceeded`), and a variant whose pods exit 1 at once
//! (a variable the app needs is missing; `backoffLimit: 2`: three pods, `BackoffLimitExceeded`).
//!
//! Skipped (with a message) when a control-plane binary is missing, unless `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use squad_sim::Scenario;
use squad_testkit::apiserver::Options;
use squad_testkit::control_plane::{self, events_of};
use squad_testkit::node_agent::{self, Container};

const WITHIN: Duration = Duration::from_secs(120);

/// How a Job ended, in the terms both sides share: its Failed condition (reason, message), its
/// failed pods, the pods left, and the Job controller's event reasons.
type Ending = (Option<(String, String)>, i64, usize, BTreeSet<String>);

fn ending(job: &Value, pods: usize, reasons: BTreeSet<String>) -> Ending {
    let failed = job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Failed" && c["status"] == "True")
        .map(|c| {
            (
                c["reason"].as_str().unwrap_or("").to_owned(),
                c["message"].as_str().unwrap_or("").to_owned(),
            )
        });
    (
        failed,
        job["status"]["failed"].as_i64().unwrap_or(0),
        pods,
        reasons,
    )
}

/// The kubelet's part: each bound pod without a status runs, or exits 1 when `exits`.
async fn kubelet(client: Client, ns: String, exits: bool, stop: Arc<AtomicBool>) {
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let mut n = 10;
    while !stop.load(Ordering::Relaxed) {
        for pod in pods.list(&ListParams::default()).await.unwrap().items {
            let v = serde_json::to_value(&pod).unwrap();
            let phase = v["status"]["phase"].as_str().unwrap_or("");
            if v["spec"]["nodeName"].is_null() || matches!(phase, "Running" | "Failed") {
                continue;
            }
            n += 1;
            let container = if exits {
                Container::Exited(1)
            } else {
                Container::Running { ready: true }
            };
            node_agent::post_status(&pods, &v, &format!("10.244.9.{n}"), container).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The scenario's Job with its deadline at `deadline` seconds (and, for `exits`, its pods
/// missing a variable the app needs).
fn case(deadline: u32, exits: bool) -> Scenario {
    let mut s = Scenario::embedded("job-failed").unwrap();
    for (path, text) in s.files.iter_mut() {
        if path.ends_with("orders-backfill.yaml") {
            *text = text.replace(
                "activeDeadlineSeconds: 1800",
                &format!("activeDeadlineSeconds: {deadline}"),
            );
        }
    }
    if exits {
        s.load.required_env = vec!["LEDGER_DSN".into()];
    }
    s
}

async fn simulated(s: &Scenario) -> Ending {
    let scenario = Arc::new(s.clone());
    let dir = tempfile::tempdir().unwrap();
    let clock = squad_runtime::Clock::starting_at(scenario.now);
    let backends = squad_sim::SimBackends::seed(scenario, dir.path(), clock, &Default::default())
        .await
        .unwrap();
    let world = backends.sim.world().unwrap();
    let ns = s.workload.namespace.as_str();
    let job = world.of_kind("Job", Some(ns)).next().unwrap().clone();
    let pods = world
        .of_kind("Pod", Some(ns))
        .filter(|p| p["metadata"]["labels"]["job-name"] == s.workload.name.as_str())
        .count();
    let reasons = world
        .of_kind("Event", Some(ns))
        .filter(|e| e["involvedObject"]["kind"] == "Job")
        .map(|e| e["reason"].as_str().unwrap_or("").to_owned())
        .collect();
    ending(&job, pods, reasons)
}

async fn real(s: &Scenario, exits: bool) -> Ending {
    const TEST: &str = "the_job_controller_ends_each_job_as_the_simulator_does";
    let Some(cp) = control_plane::start_or_skip(TEST, Options::default())
        .await
        .unwrap()
    else {
        return (None, -1, 0, BTreeSet::new());
    };
    let client = cp.client().await.unwrap();
    let ns = s.workload.namespace.clone();
    node_agent::prepare(&client, s).await.unwrap();
    let path = format!("manifests/{}", s.workload.manifest);
    let mut job = squad_gitops::objects::parse(&path, &s.files[&path])
        .unwrap()
        .remove(0);
    job["metadata"]["namespace"] = json!(ns);
    let stop = Arc::new(AtomicBool::new(false));
    let kubelet = tokio::spawn(kubelet(client.clone(), ns.clone(), exits, stop.clone()));
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    jobs.create(
        &PostParams::default(),
        &serde_json::from_value(job).unwrap(),
    )
    .await
    .unwrap();
    let name = s.workload.name.as_str();
    let deadline = tokio::time::Instant::now() + WITHIN;
    let job = loop {
        let j = serde_json::to_value(jobs.get(name).await.unwrap()).unwrap();
        let done = j["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Failed"));
        if done {
            break j;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Job did not fail within {WITHIN:?}: {}\n{}",
            j["status"],
            cp.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Settled: the controller's deletions and events land a moment after the condition.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    kubelet.await.unwrap();
    let job = serde_json::to_value(jobs.get(name).await.unwrap()).unwrap_or(job);
    let pods = Api::<Pod>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels(&format!("job-name={name}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count();
    let reasons = events_of(&client, &ns, "Job", name)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    ending(&job, pods, reasons)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_controller_ends_each_job_as_the_simulator_does() {
    for (name, deadline, exits) in [
        ("a deadline shorter than the run", 15, false),
        ("pods that exit 1 past the backoff limit", 3600, true),
    ] {
        let s = case(deadline, exits);
        let real = real(&s, exits).await;
        if real.1 < 0 {
            return; // skipped
        }
        let mut simulated = simulated(&s).await;
        let mut real = real;
        println!("{name}: simulated {simulated:?}\nreal {real:?}");
        if !exits {
            // The pod deleted at the deadline counts as failed as the 1.20 controller writes the
            // status when the Job fails (`failed += active`; the simulator's 1), but runs here
            // have read 0 and 1 alike (the status write races the deletion): not compared.
            simulated.1 = 0;
            real.1 = 0;
        }
        assert_eq!(simulated, real, "{name}");
    }
}
