//! The differential tier, first half: the real Kubernetes 1.20.2 control plane (kube-apiserver,
//! kube-scheduler and kube-controller-manager from `squad_testkit::control_plane`) deciding where
//! the pods of Deployments go, on three registered Nodes without kubelets:
//!
//! | node   | allocatable          | labels          | taints                      |
//! |--------|----------------------|-----------------|-----------------------------|
//! | node-a | 4 CPU, 8Gi, 110 pods | `disktype=ssd`  |                             |
//! | node-b | 4 CPU, 8Gi, 110 pods |                 |                             |
//! | node-c | 4 CPU, 8Gi, 110 pods |                 | `dedicated=gpu:NoSchedule`  |
//!
//! The simulator's scheduler must reproduce these reasons and messages.
//!
//! # What the real 1.20 control plane says
//!
//! Observed here (verbatim; pod and ReplicaSet name suffixes vary):
//!
//! - (a) A Deployment (2 replicas) with `nodeSelector: {disktype: nvme}`: the ReplicaSet
//!   controller creates both pods; each stays `Pending`, unbound, with condition
//!   `PodScheduled=False`, reason `Unschedulable`, and a `Warning` event `FailedScheduling`
//!   (reporting component `default-scheduler`) whose message is the condition's:
//!   `0/3 nodes are available: 1 node(s) had taint {dedicated: gpu}, that the pod didn't
//!   tolerate, 2 node(s) didn't match Pod's node affinity.` (1.20 says "node affinity" for a
//!   plain nodeSelector too; the reasons are sorted as strings). In every run each pod had two
//!   identical FailedScheduling events about 20 ms apart (two scheduling attempts); they are
//!   separate `events.k8s.io/v1` objects (`eventTime` and action `Scheduling` set; no `count`,
//!   `series`, `firstTimestamp` or `source.component`). The count is not asserted.
//! - (b) A Deployment requesting 16Gi of memory: `Unschedulable`, and
//!   `0/3 nodes are available: 1 node(s) had taint {dedicated: gpu}, that the pod didn't
//!   tolerate, 2 Insufficient memory.` (node-c, short of memory too, is counted once, for its
//!   taint: 1.20 stops at a node's first failing filter).
//! - (c) A Deployment that fits: bound to `node-a` or `node-b`, `PodScheduled=True` with no
//!   reason, a `Normal` `Scheduled` event `Successfully assigned default/fits-… to node-a`; the
//!   pod stays `Pending` (no kubelet).
//! - (d) The Deployment of (a) with `progressDeadlineSeconds: 10`, about 10 s later:
//!   `Progressing=False` reason `ProgressDeadlineExceeded`, message
//!   `ReplicaSet "nowhere-…" has timed out progressing.`; `Available=False` reason
//!   `MinimumReplicasUnavailable`, message `Deployment does not have minimum availability.`
//! - Controller events (core v1: `count` 1, `firstTimestamp` = `lastTimestamp`, no
//!   `eventTime`): the Deployment's `Normal ScalingReplicaSet` `Scaled up replica set nowhere-…
//!   to 2` (source `deployment-controller`); the ReplicaSet's `Normal SuccessfulCreate`
//!   `Created pod: nowhere-…`, one per pod (source `replicaset-controller`).
//!
//! Skipped (with a message) when a control-plane binary is missing, unless `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use squad_testkit::apiserver::Options;
use squad_testkit::control_plane::{
    self, ControlPlane, NodeRegistration, events_of, node_of, register_node,
    wait_for_deployment_condition, wait_for_event, wait_for_pod_condition, wait_for_pods,
};

const NS: &str = "default";
/// Generous: the scheduler acts within a second, but the machine's 2 cores are shared.
const WITHIN: Duration = Duration::from_secs(60);
/// The Deployment whose pods fit nowhere gives up after this (its `progressDeadlineSeconds`).
const PROGRESS_DEADLINE_SECONDS: i32 = 10;

/// The scheduler's message for (a): no untainted node has `disktype=nvme`.
const NO_NODE_MATCHES_THE_SELECTOR: &str = "0/3 nodes are available: 1 node(s) had taint \
     {dedicated: gpu}, that the pod didn't tolerate, 2 node(s) didn't match Pod's node affinity.";
/// The scheduler's message for (b): no untainted node has 16Gi.
const NO_NODE_HAS_THE_MEMORY: &str = "0/3 nodes are available: 1 node(s) had taint \
     {dedicated: gpu}, that the pod didn't tolerate, 2 Insufficient memory.";

/// A Deployment of `replicas` pause pods (never pulled: there is no kubelet) labelled
/// `app=NAME`, each requesting `cpu` and `memory`, with extra `spec` fields merged in.
fn deployment(
    name: &str,
    replicas: i32,
    cpu: &str,
    memory: &str,
    extra: serde_json::Value,
) -> Deployment {
    let mut spec = json!({
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [{
                    "name": "app",
                    "image": "registry.k8s.io/pause:3.2",
                    "resources": {"requests": {"cpu": cpu, "memory": memory}},
                }],
            },
        },
    });
    let extra = extra.as_object().cloned().unwrap_or_default();
    for (k, v) in extra {
        if k == "nodeSelector" {
            spec["template"]["spec"][k] = v;
        } else {
            spec[k] = v;
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }))
    .unwrap()
}

fn message(e: &Event) -> String {
    e.message.clone().unwrap_or_default()
}

fn pod_name(p: &Pod) -> &str {
    p.metadata.name.as_deref().unwrap()
}

/// Prints every event about an object (the record the simulator is compared against).
async fn print_events(client: &Client, kind: &str, name: &str) {
    for e in events_of(client, NS, kind, name).await.unwrap() {
        println!(
            "  event on {kind} {name}: {} {} {:?}",
            e.type_.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            message(&e)
        );
    }
}

/// Each pod of the Deployment `app` stays Pending with PodScheduled=False/Unschedulable and a
/// FailedScheduling Warning; returns the (single) scheduler message, printed.
async fn unschedulable(cp: &ControlPlane, client: &Client, app: &str, replicas: usize) -> String {
    let pods = wait_for_pods(client, NS, &format!("app={app}"), replicas, WITHIN)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", cp.log_tail()));
    let mut messages = Vec::new();
    for pod in &pods {
        let name = pod_name(pod);
        let condition = wait_for_pod_condition(client, NS, name, "PodScheduled", "False", WITHIN)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n{}", cp.log_tail()));
        println!(
            "{app}: pod {name} PodScheduled={} reason={:?} message={:?}",
            condition.status, condition.reason, condition.message
        );
        assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));
        let event = wait_for_event(client, NS, "Pod", name, "FailedScheduling", WITHIN)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n{}", cp.log_tail()));
        println!(
            "{app}: pod {name} event {:?} {:?} {:?} (from {:?})",
            event.type_,
            event.reason,
            message(&event),
            event.reporting_component
        );
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(condition.message.as_deref(), Some(message(&event).as_str()));
        let pod: Pod = Api::namespaced(client.clone(), NS).get(name).await.unwrap();
        assert_eq!(node_of(&pod), None, "{name} was bound");
        assert_eq!(pod.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
        print_events(client, "Pod", name).await;
        messages.push(message(&event));
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "the pods of {app} differ: {messages:?}");
    messages.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_scheduler_and_controllers_decide_and_report_like_1_20() {
    const TEST: &str = "the_real_scheduler_and_controllers_decide_and_report_like_1_20";
    let Some(cp) = control_plane::start_or_skip(TEST, Options::default())
        .await
        .unwrap()
    else {
        return;
    };
    let client = cp.client().await.unwrap();
    for node in [
        NodeRegistration::new("node-a", "4", "8Gi").label("disktype", "ssd"),
        NodeRegistration::new("node-b", "4", "8Gi"),
        NodeRegistration::new("node-c", "4", "8Gi").taint("dedicated", "gpu", "NoSchedule"),
    ] {
        register_node(&client, &node).await.unwrap();
    }

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    for d in [
        // (a) no node has disktype=nvme
        deployment(
            "nowhere",
            2,
            "100m",
            "64Mi",
            json!({
                "nodeSelector": {"disktype": "nvme"},
                "progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS,
            }),
        ),
        // (b) more memory than any node has
        deployment("too-big", 1, "100m", "16Gi", json!({})),
        // (c) fits on node-a or node-b
        deployment("fits", 1, "500m", "256Mi", json!({})),
    ] {
        deployments
            .create(&PostParams::default(), &d)
            .await
            .unwrap();
    }

    // (a) The ReplicaSet controller creates the pods; the scheduler finds no node for them.
    let nowhere = unschedulable(&cp, &client, "nowhere", 2).await;
    println!("(a) FailedScheduling: {nowhere}");
    assert_eq!(nowhere, NO_NODE_MATCHES_THE_SELECTOR);

    // (b)
    let too_big = unschedulable(&cp, &client, "too-big", 1).await;
    println!("(b) FailedScheduling: {too_big}");
    assert!(too_big.contains("Insufficient memory"), "{too_big}");
    assert_eq!(too_big, NO_NODE_HAS_THE_MEMORY);

    // (c) Bound to a node that fits (pods stay Pending: no kubelet runs them).
    let pods = wait_for_pods(&client, NS, "app=fits", 1, WITHIN)
        .await
        .unwrap();
    let name = pod_name(&pods[0]);
    let condition = wait_for_pod_condition(&client, NS, name, "PodScheduled", "True", WITHIN)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", cp.log_tail()));
    println!(
        "(c) pod {name} PodScheduled=True reason={:?}",
        condition.reason
    );
    let pod: Pod = Api::namespaced(client.clone(), NS).get(name).await.unwrap();
    let node = node_of(&pod).unwrap_or_default().to_string();
    assert!(
        ["node-a", "node-b"].contains(&node.as_str()),
        "bound to {node:?}"
    );
    let scheduled = wait_for_event(&client, NS, "Pod", name, "Scheduled", WITHIN)
        .await
        .unwrap();
    println!(
        "(c) {:?} {:?} {:?}",
        scheduled.type_,
        scheduled.reason,
        message(&scheduled)
    );
    assert_eq!(
        message(&scheduled),
        format!("Successfully assigned {NS}/{name} to {node}")
    );
    print_events(&client, "Pod", name).await;

    // (d) The Deployment controller gives up on (a) after its progress deadline.
    let within = WITHIN + Duration::from_secs(PROGRESS_DEADLINE_SECONDS as u64);
    let progressing =
        wait_for_deployment_condition(&client, NS, "nowhere", "Progressing", "False", within)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n{}", cp.log_tail()));
    println!(
        "(d) Progressing={} reason={:?} message={:?}",
        progressing.status, progressing.reason, progressing.message
    );
    assert_eq!(
        progressing.reason.as_deref(),
        Some("ProgressDeadlineExceeded")
    );
    let available =
        wait_for_deployment_condition(&client, NS, "nowhere", "Available", "False", WITHIN)
            .await
            .unwrap();
    println!(
        "(d) Available={} reason={:?} message={:?}",
        available.status, available.reason, available.message
    );
    assert_eq!(
        available.reason.as_deref(),
        Some("MinimumReplicasUnavailable")
    );
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    for app in ["nowhere", "too-big", "fits"] {
        print_events(&client, "Deployment", app).await;
        let params = ListParams::default().labels(&format!("app={app}"));
        for rs in replica_sets.list(&params).await.unwrap() {
            print_events(&client, "ReplicaSet", rs.metadata.name.as_deref().unwrap()).await;
        }
    }
}
