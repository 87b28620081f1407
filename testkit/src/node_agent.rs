//! The test as the node agent of a kubelet-less control plane: the scenario's nodes registered
//! and its namespace made, and pod statuses written as a kubelet would write them (phase,
//! conditions, addresses, the one container's state), so the real controllers react to pods
//! that run, are ready or not, or have exited.

use anyhow::{Result, anyhow};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use squad_sim::Scenario;

use crate::control_plane::{NodeRegistration, register_node, wait_until_scheduler_knows};

/// Registers the scenario's nodes (their allocatable; what other workloads use there is left
/// out) and creates its workload's namespace.
pub async fn prepare(client: &Client, scenario: &Scenario) -> Result<()> {
    for n in scenario.cluster_nodes() {
        register_node(
            client,
            &NodeRegistration::new(&n.name, &n.cpu.to_string(), &n.memory.to_string()),
        )
        .await?;
    }
    let nodes = scenario.cluster_nodes().len();
    wait_until_scheduler_knows(client, nodes, std::time::Duration::from_secs(60)).await?;
    let ns = &scenario.workload.namespace;
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .map_err(|e| anyhow!("creating namespace {ns}: {e}"))?;
    Ok(())
}

/// What a pod's one container is doing.
pub enum Container {
    /// Running since now; ready or not.
    Running { ready: bool },
    /// Exited with this code two seconds after it started.
    Exited(i32),
}

/// Writes `pod`'s status as its kubelet would: `Running` (or `Failed`/`Succeeded` once its
/// container exited), at `ip`. A pod deleted meanwhile is not an error.
pub async fn post_status(pods: &Api<Pod>, pod: &Value, ip: &str, container: Container) {
    let now = chrono::Utc::now();
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let name = pod["spec"]["containers"][0]["name"].as_str().unwrap_or("");
    let image = pod["spec"]["containers"][0]["image"].as_str().unwrap_or("");
    let (phase, ready, state) = match container {
        Container::Running { ready } => {
            ("Running", ready, json!({"running": {"startedAt": at(now)}}))
        }
        Container::Exited(code) => (
            if code == 0 { "Succeeded" } else { "Failed" },
            false,
            json!({"terminated": {"exitCode": code,
                "reason": if code == 0 { "Completed" } else { "Error" },
                "startedAt": at(now), "finishedAt": at(now + chrono::Duration::seconds(2))}}),
        ),
    };
    let flag = if ready { "True" } else { "False" };
    let status = json!({"status": {
        "phase": phase, "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1",
        "startTime": at(now),
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": at(now)},
            {"type": "Ready", "status": flag, "lastTransitionTime": at(now)},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": at(now)},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": at(now)}],
        "containerStatuses": [{"name": name, "image": image, "imageID": "", "ready": ready,
            "restartCount": 0, "started": phase == "Running", "state": state}],
    }});
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
    let _ = pods
        .patch_status(pod_name, &PatchParams::default(), &Patch::Merge(&status))
        .await;
}
