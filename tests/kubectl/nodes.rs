//! Nodes in trouble as kubectl shows them: one short of memory evicting pods across workloads,
//! one that stopped answering with its pods stuck Terminating, one whose network plugin has no
//! pod address left.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_evicted_under_node_memory_pressure_show_as_evicted_across_workloads() {
    let s = serve("node-pressure", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let pods = rows(&ok(&kc, &["get", "pods", "-A", "-o", "wide"]).await);
    // NAMESPACE NAME READY STATUS RESTARTS AGE IP NODE ...
    let evicted: Vec<(&str, &str)> = pods[1..]
        .iter()
        .filter(|r| r[3] == "Evicted")
        .map(|r| (r[0].as_str(), r[7].as_str()))
        .collect();
    assert!(
        evicted.iter().all(|(_, node)| *node == "pool-a-1"),
        "{pods:?}"
    );
    for ns in ["shop", "search", "observability"] {
        assert!(evicted.iter().any(|(n, _)| *n == ns), "{ns}: {pods:?}");
    }
    // checkout's replacements run on the other node (by the end of the run the offender,
    // alone on pool-a-1 and still growing, has gone too).
    let replaced = pods
        .iter()
        .filter(|r| r[0] == "shop" && r[3] == "Running")
        .collect::<Vec<_>>();
    assert_eq!(replaced.len(), 3, "{pods:?}");
    assert!(replaced.iter().all(|r| r[7] == "pool-a-2"), "{pods:?}");
    let described = ok(
        &kc,
        &["describe", "pod", "-n", "shop", "checkout-7c9f6d8b4-w68n2"],
    )
    .await;
    for want in [
        "Status:           Failed",
        "Reason:           Evicted",
        "Container checkout was using 300Mi, which exceeds its request of 256Mi.",
    ] {
        assert!(described.contains(want), "{want}:\n{described}");
    }
    let node = ok(&kc, &["describe", "node", "pool-a-1"]).await;
    assert!(node.contains("EvictionThresholdMet"), "{node}");
    assert!(node.contains("Attempting to reclaim memory"), "{node}");
    // The adapter reads every pod on the node, in any namespace, as the model serves them.
    use squad_runtime::ports::Cluster;
    let via_http = s.backends.cluster.pods_on_node("pool-a-1").await.unwrap();
    let model = s.backends.sim.pods_on_node("pool-a-1").unwrap();
    assert_eq!(via_http, model);
    let etl = via_http
        .iter()
        .find(|p| p.pod.name.starts_with("etl-loader-"))
        .unwrap();
    assert_eq!(
        (
            etl.priority,
            etl.priority_class.as_deref(),
            etl.memory_limit
        ),
        (100_000, Some("data-pipeline-high"), None)
    );
    assert_eq!(etl.memory_request, Some("1Gi".parse().unwrap()));
    assert!(via_http.iter().filter(|p| p.pod.evicted()).count() >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stopped_answering_is_not_ready_and_its_pods_stay_terminating() {
    let s = serve("node-lost", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("node-lost").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let lost = scenario
        .nodes
        .iter()
        .find(|n| n.unreachable_minutes_ago.is_some())
        .unwrap()
        .name
        .clone();
    // NAME STATUS ROLES AGE VERSION
    let nodes = rows(&ok(&kc, &["get", "nodes"]).await);
    for n in &nodes[1..] {
        let want = if n[0] == lost { "NotReady" } else { "Ready" };
        assert_eq!(n[1], want, "{nodes:?}");
    }
    // NAME READY STATUS RESTARTS AGE IP NODE ...: the pod on the silent node as its kubelet last
    // posted it, deleted; the one in its place Pending; the other replica serving.
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns, "-o", "wide"]).await);
    assert_eq!(pods.len(), 4, "{pods:?}");
    let terminating: Vec<_> = pods[1..].iter().filter(|r| r[2] == "Terminating").collect();
    assert_eq!(terminating.len(), 1, "{pods:?}");
    assert_eq!(
        (terminating[0][1].as_str(), terminating[0][6].as_str()),
        ("1/1", lost.as_str()),
        "{pods:?}"
    );
    let pending = pods[1..].iter().find(|r| r[2] == "Pending").unwrap();
    assert_eq!(
        (pending[1].as_str(), pending[6].as_str()),
        ("0/1", "<none>")
    );
    assert!(
        pods[1..]
            .iter()
            .any(|r| r[1] == "1/1" && r[2] == "Running" && r[6] != lost),
        "{pods:?}"
    );
    // Other teams' pods there: deleted too, but for the DaemonSet's, which tolerates the taint.
    let all = rows(&ok(&kc, &["get", "pods", "-A", "-o", "wide"]).await);
    let on_lost: Vec<(&str, &str)> = all[1..]
        .iter()
        .filter(|r| r[7] == lost)
        .map(|r| (r[0].as_str(), r[3].as_str()))
        .collect();
    assert!(on_lost.contains(&("risk", "Terminating")), "{all:?}");
    assert!(on_lost.contains(&("monitoring", "Running")), "{all:?}");
    let node = ok(&kc, &["describe", "node", &lost]).await;
    for want in [
        "node.kubernetes.io/unreachable:NoExecute",
        "node.kubernetes.io/unreachable:NoSchedule",
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
        &format!("Node {lost} status is now: NodeNotReady"),
    ] {
        assert!(node.contains(want), "{want}:\n{node}");
    }
    let gone = &terminating[0][0];
    let described = ok(&kc, &["describe", "pod", "-n", ns, gone]).await;
    for want in [
        "Status:                    Terminating (lasts",
        "Termination Grace Period:  30s",
        "DisruptionTarget",
        "Node is not ready",
        &format!("Marking for deletion Pod {ns}/{gone}"),
    ] {
        assert!(described.contains(want), "{want}:\n{described}");
    }
    let waiting = ok(&kc, &["describe", "pod", "-n", ns, &pending[0]]).await;
    assert!(
        waiting.contains("1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }"),
        "{waiting}"
    );
    // The adapter reads the node's pods, deletion included, as the model serves them.
    use squad_runtime::ports::Cluster;
    let via_http = s.backends.cluster.pods_on_node(&lost).await.unwrap();
    assert_eq!(via_http, s.backends.sim.pods_on_node(&lost).unwrap());
    assert_eq!(via_http.iter().filter(|p| p.pod.terminating()).count(), 2);
    let node = s.backends.cluster.node(&lost).await.unwrap();
    assert!(!node.ready());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_a_node_without_pod_addresses_wait_in_container_creating() {
    let s = serve("ip-exhausted", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("ip-exhausted").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let starved = scenario
        .nodes
        .iter()
        .find(|n| n.pod_network.as_ref().is_some_and(|p| p.free_ips == 0))
        .unwrap()
        .name
        .clone();
    // NAME READY STATUS RESTARTS AGE IP NODE ...: the old pods serve, the new ones wait there.
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns, "-o", "wide"]).await);
    let new: Vec<_> = pods[1..]
        .iter()
        .filter(|r| scenario.workload.pods.contains(&r[0]))
        .collect();
    assert_eq!(new.len(), 2, "{pods:?}");
    for r in &new {
        assert_eq!(
            (r[1].as_str(), r[2].as_str(), r[6].as_str()),
            ("0/1", "ContainerCreating", starved.as_str()),
            "{pods:?}"
        );
    }
    let old: Vec<_> = pods[1..]
        .iter()
        .filter(|r| !scenario.workload.pods.contains(&r[0]))
        .collect();
    assert_eq!(old.len(), 3, "{pods:?}");
    assert!(
        old.iter().all(|r| r[1] == "1/1" && r[2] == "Running"),
        "{pods:?}"
    );
    let described = ok(&kc, &["describe", "pod", "-n", ns, &new[0][0]]).await;
    for want in [
        "FailedCreatePodSandBox",
        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox",
        "plugin type=\"aws-cni\" name=\"aws-cni\" failed (add): add cmd: failed to assign an IP address to container",
    ] {
        assert!(described.contains(want), "{want}:\n{described}");
    }
    let (logged, _, err) = kubectl(&kc, &["logs", "-n", ns, &new[0][0]]).await;
    assert!(!logged, "{err}");
    assert!(
        err.contains("is waiting to start: ContainerCreating"),
        "{err}"
    );
}
