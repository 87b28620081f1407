//! The differential tier for Jobs: the real Kubernetes 1.20.2 Job controller
//! (kube-controller-manager) against the simulator, on the shipped `job-failed` scenario's Job.
//! The test plays the kubelet: every pod the real Job controller creates and the real scheduler
//! binds gets the status the world gives that Job's pods — running (the deadline case), or
//! failed with the app's exit (the back-off case). Both sides must agree on how the Job ends:
//! its `Failed` condition (reason and message), its failed-pod count, the pods left, and the
//! reasons of the Job controller's events.
//!
//! Cases: the shipped scenario (its `activeDeadlineSeconds` shortened to 5 s on both sides: the
//! pod still running is deleted, `DeadlineExceeded`), and a variant whose pods exit 1 at once
//! (a variable the app needs is missing; `backoffLimit: 2`: three pods, `BackoffLimitExceeded`).
//!
//! Skipped (with a message) when a control-plane binary is missing, unless `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use squad_sim::Scenario;
use squad_testkit::apiserver::Options;
use squad_testkit::control_plane::{self, NodeRegistration, events_of, register_node};

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

/// The kubelet's part: each bound pod without a status runs; it exits 1 two seconds after it
/// starts when `exits`.
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
            let name = v["spec"]["containers"][0]["name"].as_str().unwrap_or("");
            let image = v["spec"]["containers"][0]["image"].as_str().unwrap_or("");
            let now = chrono::Utc::now();
            let at = |t: chrono::DateTime<chrono::Utc>| {
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            };
            let ip = format!("10.244.9.{n}");
            let (phase, state, ready) = if exits {
                (
                    "Failed",
                    json!({"terminated": {"exitCode": 1, "reason": "Error",
                        "startedAt": at(now), "finishedAt": at(now + chrono::Duration::seconds(2))}}),
                    "False",
                )
            } else {
                (
                    "Running",
                    json!({"running": {"startedAt": at(now)}}),
                    "True",
                )
            };
            let status = json!({"status": {
                "phase": phase, "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1",
                "startTime": at(now),
                "conditions": [
                    {"type": "Initialized", "status": "True", "lastTransitionTime": at(now)},
                    {"type": "Ready", "status": ready, "lastTransitionTime": at(now)},
                    {"type": "ContainersReady", "status": ready, "lastTransitionTime": at(now)},
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": at(now)}],
                "containerStatuses": [{"name": name, "image": image, "imageID": "",
                    "ready": ready == "True", "restartCount": 0, "started": !exits,
                    "state": state}],
            }});
            let pod_name = v["metadata"]["name"].as_str().unwrap_or("").to_owned();
            let _ = pods
                .patch_status(&pod_name, &PatchParams::default(), &Patch::Merge(&status))
                .await;
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
    for n in s.cluster_nodes() {
        register_node(
            &client,
            &NodeRegistration::new(&n.name, &n.cpu.to_string(), &n.memory.to_string()),
        )
        .await
        .unwrap();
    }
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
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
        ("a deadline shorter than the run", 5, false),
        ("pods that exit 1 past the backoff limit", 3600, true),
    ] {
        let s = case(deadline, exits);
        let real = real(&s, exits).await;
        if real.1 < 0 {
            return; // skipped
        }
        let simulated = simulated(&s).await;
        println!("{name}: simulated {simulated:?}\nreal {real:?}");
        assert_eq!(simulated, real, "{name}");
    }
}
