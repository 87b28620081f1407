//! The real `kubectl` against the simulated cluster's API server: each command a person would use
//! to look at the incident, asserting the rows and fields they would look for.
//!
//! kubectl is `$SQUAD_KUBECTL` (scripts/setup installs one when the machine has none), else the
//! one on PATH.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use squad::simulation::{self, ServeKube, SimulationOptions};
use squad_config::Settings;
use squad_runtime::Faults;
use squad_sim::Scenario;

mod admission;
mod families;
mod jobs;
mod nodes;

fn kubectl_program() -> PathBuf {
    std::env::var_os("SQUAD_KUBECTL").map_or_else(|| PathBuf::from("kubectl"), PathBuf::from)
}

/// Runs kubectl (blocking, off the runtime's threads) and returns (success, stdout, stderr).
async fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let kubeconfig = kubeconfig.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        // A discovery cache per served cluster: kubectl's default cache is keyed by host:port,
        // and another test's server (a real 1.20 apiserver) may have used the same port.
        let cache = kubeconfig
            .parent()
            .map_or_else(|| PathBuf::from("."), |d| d.join("kubectl-cache"));
        let out = Command::new(kubectl_program())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(&cache)
            .args(&args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): run scripts/setup, or set SQUAD_KUBECTL",
                    kubectl_program().display()
                )
            });
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

async fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let (success, out, err) = kubectl(kubeconfig, args).await;
    assert!(success, "kubectl {args:?} failed:\n{err}\n{out}");
    out
}

/// A table's rows as columns (whitespace-separated; the last column may hold spaces).
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// A scenario's cluster served on its own, fresh (at the alert).
async fn serve(name: &str, deny: &[&str]) -> simulation::ServedCluster {
    serve_denying(Scenario::embedded(name).unwrap(), deny).await
}

/// A (possibly edited) scenario's cluster served on its own, fresh.
async fn serve_scenario(scenario: Scenario) -> simulation::ServedCluster {
    serve_denying(scenario, &[]).await
}

async fn serve_denying(scenario: Scenario, deny: &[&str]) -> simulation::ServedCluster {
    simulation::serve_cluster(
        scenario,
        None,
        &ServeKube {
            port: 0,
            deny: deny.iter().map(|s| (*s).to_owned()).collect(),
            keep: true,
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pods_shows_ready_status_restarts_and_age() {
    let s = serve("oomkilled", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let out = ok(&kc, &["get", "pods", "-n", "production"]).await;
    let rows = rows(&out);
    assert_eq!(
        rows[0],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{out}"
    );
    let pods = &rows[1..];
    assert_eq!(pods.len(), 2, "{out}");
    for p in pods {
        assert!(p[0].starts_with("payment-service-7d4b9c-"), "{out}");
        assert_eq!(p[1], "0/1", "{out}");
        assert_eq!(p[2], "CrashLoopBackOff", "{out}");
        // `28 (2m ago)`: the count, then how long ago the last restart was.
        assert_eq!(p[3], "28", "{out}");
        assert!(p[4].starts_with('(') && p[5] == "ago)", "{out}");
        assert_eq!(p[6], "3d", "{out}");
    }
    // -o wide adds the node.
    let wide = ok(&kc, &["get", "pods", "-n", "production", "-o", "wide"]).await;
    assert!(wide.contains("NODE") && wide.contains("worker-1"), "{wide}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_pod_shows_the_oom_kill_and_its_events() {
    let s = serve("oomkilled", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let out = ok(
        &kc,
        &[
            "describe",
            "pod",
            "payment-service-7d4b9c-xk2p",
            "-n",
            "production",
        ],
    )
    .await;
    for want in [
        "Controlled By:  ReplicaSet/payment-service-7d4b9c",
        "Node:             worker-1/127.0.0.1",
        "Reason:       CrashLoopBackOff",
        "Last State:     Terminated",
        "Reason:       OOMKilled",
        "Exit Code:    137",
        "Restart Count:  28",
        "memory:  512Mi",
        "PAYMENTS_DB_URL:   <set to the key 'url' in secret 'payment-db'>",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let events = out.split("Events:").nth(1).unwrap();
    assert!(
        events.contains("Warning  BackOff") && events.contains("(x28 over"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_current_previous_and_tail() {
    let s = serve("oomkilled", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let pod = "payment-service-7d4b9c-xk2p";
    let model = &s.backends.sim;
    let current = ok(&kc, &["logs", pod, "-n", "production"]).await;
    let want = model
        .logs("production", pod, "payment-api", false, usize::MAX)
        .unwrap();
    assert_eq!(current.lines().collect::<Vec<_>>(), want);
    let previous = ok(&kc, &["logs", pod, "-n", "production", "--previous"]).await;
    let want = model
        .logs("production", pod, "payment-api", true, usize::MAX)
        .unwrap();
    assert_eq!(previous.lines().collect::<Vec<_>>(), want);
    let tail = ok(
        &kc,
        &[
            "logs",
            pod,
            "-n",
            "production",
            "-c",
            "payment-api",
            "--tail=2",
        ],
    )
    .await;
    assert_eq!(tail.lines().count(), 2, "{tail}");
    // A container that does not exist is kubectl's usual error.
    let (success, _, err) = kubectl(&kc, &["logs", pod, "-n", "production", "-c", "nope"]).await;
    assert!(
        !success && err.contains("container nope is not valid"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_events_lists_the_kubelet_and_node_events() {
    let s = serve("oomkilled", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let out = ok(&kc, &["get", "events", "-n", "production"]).await;
    let rows = rows(&out);
    assert_eq!(
        rows[0][..],
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    let pairs: Vec<(String, String)> = rows[1..]
        .iter()
        .map(|r| (r[2].clone(), r[3].clone()))
        .collect();
    for pod in [
        "payment-service-7d4b9c-xk2p",
        "payment-service-7d4b9c-m2v7q",
    ] {
        assert!(
            pairs.contains(&("BackOff".into(), format!("pod/{pod}"))),
            "{out}"
        );
        assert!(
            pairs.contains(&("Started".into(), format!("pod/{pod}"))),
            "{out}"
        );
    }
    // The OOM kills are recorded on the node, in `default`.
    let all = ok(&kc, &["get", "events", "-A"]).await;
    assert!(
        all.lines()
            .any(|l| l.contains("OOMKilling") && l.contains("node/worker-1")),
        "{all}"
    );
    // kubectl describe's own query: a field selector on the involved object.
    let sel = ok(
        &kc,
        &[
            "get",
            "events",
            "-n",
            "production",
            "--field-selector",
            "involvedObject.name=payment-service-7d4b9c-xk2p,reason=BackOff",
        ],
    )
    .await;
    assert_eq!(sel.lines().count(), 2, "{sel}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_deploy_hpa_netpol_before_and_after_the_fix() {
    // Run the incident to resolution (the PR merged by a simulated human), then serve the
    // cluster as the simulation left it: the GitOps sync has rolled out the fix.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    let before = serve("oomkilled", &[]).await;
    let kc = before.backends.kubeconfig.clone();
    let text = ok(&kc, &["get", "deploy,hpa,netpol", "-n", "production"]).await;
    let r = rows(&text);
    assert_eq!(
        r[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{text}"
    );
    assert_eq!(r[1][0], "deployment.apps/payment-service", "{text}");
    assert_eq!(r[1][1], "0/2", "{text}");
    assert!(!text.contains("horizontalpodautoscaler"), "{text}");
    assert!(
        text.contains("networkpolicy.networking.k8s.io/payment-service-ingress")
            && text.contains("app=payment-service"),
        "{text}"
    );

    let run_out = out.clone();
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(simulation::run(SimulationOptions {
            scenario: Scenario::embedded("oomkilled").unwrap(),
            out: run_out,
            approve: true,
            dry_run: false,
            fresh: false,
            settings: Settings::default(),
            faults: Faults::none(),
            abort_after_events: None,
            serve: ServeKube::default(),
            minds: Default::default(),
            github: None,
        }))
        .unwrap();
    })
    .await
    .unwrap();
    let after = simulation::serve_cluster(
        Scenario::embedded("oomkilled").unwrap(),
        Some(out),
        &ServeKube::default(),
    )
    .await
    .unwrap();
    assert!(after.resumed);
    let kc = after.backends.kubeconfig.clone();
    let text = ok(&kc, &["get", "deploy,hpa", "-n", "production"]).await;
    // The fix's HPA on memory at 70% of a request sized at the median: a pod's memory is
    // mostly its base, so more pods barely lower it and the HPA goes straight to its maximum
    // (what memory HPAs do; the remedy's HPA rule is #10's to correct).
    assert!(
        text.lines()
            .any(|l| l.starts_with("deployment.apps/payment-service") && l.contains(" 6/6 ")),
        "{text}"
    );
    let hpa = text
        .lines()
        .find(|l| l.starts_with("horizontalpodautoscaler.autoscaling/payment-service"))
        .unwrap_or_else(|| panic!("no HPA after the fix:\n{text}"));
    let cols: Vec<&str> = hpa.split_whitespace().collect();
    assert_eq!(cols[1], "Deployment/payment-service", "{hpa}");
    // Above its target (the day's traffic swing moves it by a few points), hence at its maximum.
    let utilisation: u32 = cols[3]
        .strip_suffix("%/70%")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no memory utilisation against a 70% target: {hpa}"));
    assert_eq!(cols[2], "memory:", "{hpa}");
    assert!((100..=125).contains(&utilisation), "{hpa}");
    assert_eq!(&cols[4..7], ["2", "6", "6"], "{hpa}");
    let pods = ok(&kc, &["get", "pods", "-n", "production"]).await;
    for p in &rows(&pods)[1..] {
        assert_eq!((p[1].as_str(), p[2].as_str()), ("1/1", "Running"), "{pods}");
    }
    let describe = ok(
        &kc,
        &["describe", "deploy", "payment-service", "-n", "production"],
    )
    .await;
    assert!(
        describe.contains("memory:  1536Mi") || describe.contains("memory:  1.5Gi"),
        "{describe}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashloop_describe_and_logs_show_the_missing_variable() {
    let s = serve("crashloop", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("crashloop").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let pod = scenario.workload.pods[0].as_str();
    let out = ok(&kc, &["describe", "pod", pod, "-n", ns]).await;
    assert!(
        out.contains("Reason:       Error") && out.contains("Exit Code:    1"),
        "{out}"
    );
    let logs = ok(&kc, &["logs", pod, "-n", ns]).await;
    assert!(logs.contains("DATABASE_URL"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_stalls_the_rollout_while_the_old_pods_serve() {
    let s = serve("image-pull", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("image-pull").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let stuck = scenario.workload.pods[0].as_str();
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    let row = |name: &str| pods.iter().find(|r| r[0] == name).cloned();
    let new = row(stuck).unwrap_or_else(|| panic!("{stuck} in {pods:?}"));
    assert_eq!(
        (new[1].as_str(), new[2].as_str(), new[3].as_str()),
        ("0/1", "ImagePullBackOff", "0")
    );
    // The previous ReplicaSet keeps both its pods (maxUnavailable 25% of 2 rounds down to 0).
    let old: Vec<_> = pods
        .iter()
        .filter(|r| r[0] != stuck && r[0] != "NAME")
        .collect();
    assert_eq!(old.len(), 2, "{pods:?}");
    assert!(
        old.iter().all(|r| r[1] == "1/1" && r[2] == "Running"),
        "{pods:?}"
    );
    let out = ok(&kc, &["describe", "pod", stuck, "-n", ns]).await;
    assert!(
        out.contains("Failed to pull image \"ghcr.io/acme/checkout-web:v2.4.0\"")
            && out.contains("Back-off pulling image"),
        "{out}"
    );
    let (success, _, err) = kubectl(&kc, &["logs", stuck, "-n", ns]).await;
    assert!(
        !success
            && err.contains("Error from server (BadRequest)")
            && err.contains("is waiting to start: trying and failing to pull image"),
        "{err}"
    );
    let deploy = ok(
        &kc,
        &[
            "get",
            "deploy",
            "checkout-web",
            "-n",
            ns,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}",
        ],
    )
    .await;
    assert_eq!(deploy.trim(), "ProgressDeadlineExceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_key_that_does_not_exist_keeps_the_container_from_being_created() {
    let s = serve("config-ref", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("config-ref").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let stuck = scenario.workload.pods[0].as_str();
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    let new = pods
        .iter()
        .find(|r| r[0] == stuck)
        .unwrap_or_else(|| panic!("{stuck} in {pods:?}"));
    assert_eq!(
        (new[1].as_str(), new[2].as_str(), new[3].as_str()),
        ("0/1", "CreateContainerConfigError", "0")
    );
    // 3 replicas: maxUnavailable 25% rounds down to 0, so the three old pods all keep serving.
    let old: Vec<_> = pods
        .iter()
        .filter(|r| r[0] != stuck && r[0] != "NAME")
        .collect();
    assert_eq!(old.len(), 3, "{pods:?}");
    assert!(
        old.iter().all(|r| r[1] == "1/1" && r[2] == "Running"),
        "{pods:?}"
    );
    let out = ok(&kc, &["describe", "pod", stuck, "-n", ns]).await;
    assert!(
        out.contains("Error: couldn't find key dsn in Secret billing/ledger-db")
            && out.contains("already present on machine"),
        "{out}"
    );
    let (success, _, err) = kubectl(&kc, &["logs", stuck, "-n", ns]).await;
    assert!(
        !success
            && err.contains("Error from server (BadRequest)")
            && err.contains("is waiting to start: CreateContainerConfigError"),
        "{err}"
    );
    // The Secret holds the keys the world declares (and no value from Git).
    let keys = ok(
        &kc,
        &[
            "get",
            "secret",
            "ledger-db",
            "-n",
            ns,
            "-o",
            "jsonpath={.data}",
        ],
    )
    .await;
    let keys: serde_json::Value = serde_json::from_str(&keys).unwrap();
    assert_eq!(
        keys.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["url", "username"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_of_a_configmap_that_does_not_exist_leaves_the_pod_container_creating() {
    // The same deploy, but its volume names a ConfigMap nobody created: the kubelet stops at the
    // volume, before the image and the environment.
    let mut scenario = Scenario::embedded("config-ref").unwrap();
    let manifest = format!("manifests/{}", scenario.workload.manifest);
    let text = scenario.files[&manifest].replace("name: ledger-settings", "name: ledger-config");
    scenario.files.insert(manifest, text);
    let ns = scenario.workload.namespace.clone();
    let stuck = scenario.workload.pods[0].clone();
    let s = serve_scenario(scenario).await;
    let kc = s.backends.kubeconfig.clone();
    let pods = rows(&ok(&kc, &["get", "pods", "-n", &ns]).await);
    let new = pods.iter().find(|r| r[0] == stuck).unwrap();
    assert_eq!(
        (new[1].as_str(), new[2].as_str()),
        ("0/1", "ContainerCreating")
    );
    let out = ok(&kc, &["describe", "pod", &stuck, "-n", &ns]).await;
    assert!(
        out.contains(
            "MountVolume.SetUp failed for volume \"settings\" : configmap \"ledger-config\" not found"
        ) && out.contains("Unable to attach or mount volumes: unmounted volumes=[settings]"),
        "{out}"
    );
    assert!(!out.contains("already present on machine"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_resource_is_forbidden_for_kubectl_too() {
    let s = serve("oomkilled", &["pods/log"]).await;
    let kc = s.backends.kubeconfig.clone();
    let (success, _, err) = kubectl(
        &kc,
        &["logs", "payment-service-7d4b9c-xk2p", "-n", "production"],
    )
    .await;
    assert!(!success, "{err}");
    assert!(
        err.contains("Error from server (Forbidden)") && err.contains("pods/log"),
        "{err}"
    );
    // Everything else still reads.
    ok(&kc, &["get", "pods", "-n", "production"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_serves_short_names_and_an_unknown_resource_is_kubectls_usual_error() {
    let s = serve("oomkilled", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let out = ok(&kc, &["api-resources"]).await;
    for (short, kind) in [
        ("po", "Pod"),
        ("deploy", "Deployment"),
        ("hpa", "HorizontalPodAutoscaler"),
        ("netpol", "NetworkPolicy"),
        ("vuln", "VulnerabilityReport"),
    ] {
        assert!(
            out.lines().any(|l| l.contains(short) && l.ends_with(kind)),
            "{short} {kind}:\n{out}"
        );
    }
    let (success, _, err) = kubectl(&kc, &["get", "widgets"]).await;
    assert!(
        !success && err.contains("the server doesn't have a resource type \"widgets\""),
        "{err}"
    );
    let (success, _, err) = kubectl(&kc, &["get", "pod", "nope", "-n", "production"]).await;
    assert!(!success && err.contains("pods \"nope\" not found"), "{err}");
}
