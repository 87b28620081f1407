//! Each failure family as kubectl shows it: what a person looking at the incident would see.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_no_node_may_take_stays_pending_with_the_schedulers_reasons() {
    let s = serve("node-selector", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("node-selector").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let stuck = scenario.workload.pods[0].as_str();
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns, "-o", "wide"]).await);
    let new = pods
        .iter()
        .find(|r| r[0] == stuck)
        .unwrap_or_else(|| panic!("{stuck} in {pods:?}"));
    // NAME READY STATUS RESTARTS AGE IP NODE ...: no IP, no node.
    assert_eq!(
        (
            new[1].as_str(),
            new[2].as_str(),
            new[5].as_str(),
            new[6].as_str()
        ),
        ("0/1", "Pending", "<none>", "<none>"),
        "{pods:?}"
    );
    // The old pods keep serving, spread by the scheduler over the two nodes they may use.
    let old: Vec<_> = pods
        .iter()
        .filter(|r| r[0] != stuck && r[0] != "NAME")
        .collect();
    assert_eq!(old.len(), 3, "{pods:?}");
    assert!(
        old.iter()
            .all(|r| r[2] == "Running" && r[6].starts_with("pool-a-")),
        "{pods:?}"
    );
    let out = ok(&kc, &["describe", "pod", stuck, "-n", ns]).await;
    assert!(
        out.contains("PodScheduled   False")
            && out.contains("FailedScheduling")
            && out.contains("default-scheduler")
            && out.contains(
                "0/3 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: present}, 2 node(s) didn't match Pod's node affinity/selector."
            )
            && out
                .lines()
                .any(|l| l.starts_with("Node-Selectors:") && l.ends_with(" disktype=nvme")),
        "{out}"
    );
    // No node, no kubelet: the API server answers with no lines.
    assert_eq!(ok(&kc, &["logs", stuck, "-n", ns]).await.trim(), "");
    let nodes = ok(&kc, &["describe", "node", "gpu-l4-1"]).await;
    assert!(
        nodes.contains("Taints:             nvidia.com/gpu=present:NoSchedule")
            && nodes.contains("disktype=nvme"),
        "{nodes}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_whose_requests_no_node_has_room_for_stay_pending_beside_the_old_ones() {
    let s = serve("capacity", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("capacity").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns, "-o", "wide"]).await);
    let pending: Vec<_> = pods.iter().filter(|r| r[2] == "Pending").collect();
    let running: Vec<_> = pods.iter().filter(|r| r[2] == "Running").collect();
    // 4 replicas, maxSurge 1 and maxUnavailable 1: the new ReplicaSet holds two pods, both
    // unschedulable; the old one keeps three, spread over the three nodes (1Gi each fits).
    let mut stuck = scenario.workload.pods.clone();
    stuck.sort();
    assert_eq!(
        pending.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        stuck,
        "{pods:?}"
    );
    assert_eq!(running.len(), 3, "{pods:?}");
    let mut nodes: Vec<_> = running.iter().map(|r| r[6].as_str()).collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 3, "{pods:?}");
    let out = ok(
        &kc,
        &["describe", "pod", &scenario.workload.pods[1], "-n", ns],
    )
    .await;
    assert!(
        out.contains("0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."),
        "{out}"
    );
    let deploy = ok(&kc, &["get", "deploy", &scenario.workload.name, "-n", ns]).await;
    let row = &rows(&deploy)[1];
    // READY UP-TO-DATE AVAILABLE
    assert_eq!(
        (row[1].as_str(), row[2].as_str(), row[3].as_str()),
        ("3/4", "2", "3"),
        "{deploy}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_probe_on_a_path_the_app_does_not_serve_leaves_the_pods_running_unready() {
    let s = serve("readiness", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("readiness").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    let new: Vec<_> = pods
        .iter()
        .filter(|r| scenario.workload.pods.contains(&r[0]))
        .collect();
    assert_eq!(new.len(), 2, "{pods:?}");
    assert!(
        new.iter()
            .all(|r| r[1] == "0/1" && r[2] == "Running" && r[3] == "0"),
        "{pods:?}"
    );
    let old: Vec<_> = pods
        .iter()
        .filter(|r| r[0] != "NAME" && !scenario.workload.pods.contains(&r[0]))
        .collect();
    assert_eq!(old.len(), 3, "{pods:?}");
    assert!(old.iter().all(|r| r[1] == "1/1"), "{pods:?}");
    let out = ok(
        &kc,
        &["describe", "pod", &scenario.workload.pods[0], "-n", ns],
    )
    .await;
    assert!(
        out.contains("Readiness probe failed: HTTP probe failed with statuscode: 404")
            && out.contains("http-get http://:http/ready"),
        "{out}"
    );
    let deploy = rows(&ok(&kc, &["get", "deploy", &scenario.workload.name, "-n", ns]).await);
    // READY UP-TO-DATE AVAILABLE
    assert_eq!(
        (
            deploy[1][1].as_str(),
            deploy[1][2].as_str(),
            deploy[1][3].as_str()
        ),
        ("3/4", "2", "3"),
        "{deploy:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_the_image_does_not_hold_crash_loops_with_start_errors_and_no_logs() {
    let s = serve("bad-start", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("bad-start").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let pod = scenario.workload.pods[0].as_str();
    let out = ok(&kc, &["describe", "pod", pod, "-n", ns]).await;
    assert!(
        out.contains("Reason:       StartError")
            && out.contains("Exit Code:    128")
            && out
                .contains("exec: \"/usr/local/bin/notifier\": executable file not found in $PATH"),
        "{out}"
    );
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    let row = pods.iter().find(|r| r[0] == pod).unwrap();
    assert_eq!(
        (row[1].as_str(), row[2].as_str()),
        ("0/1", "CrashLoopBackOff"),
        "{pods:?}"
    );
    assert_eq!(
        ok(&kc, &["logs", pod, "-n", ns, "--previous"]).await.trim(),
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liveness_probe_slower_than_its_timeout_restarts_the_pods_with_exit_137() {
    let s = serve("liveness", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("liveness").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let pod = scenario.workload.pods[0].as_str();
    let out = ok(&kc, &["describe", "pod", pod, "-n", ns]).await;
    assert!(
        out.contains("Exit Code:    137")
            && !out.contains("OOMKilled")
            && out.contains("Container pricing failed liveness probe, will be restarted")
            && out.contains(
                "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ),
        "{out}"
    );
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    let row = pods.iter().find(|r| r[0] == pod).unwrap();
    assert!(row[3].parse::<u32>().unwrap() > 5, "{pods:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_pod_looks_healthy_to_kubectl_but_for_its_cpu_limit() {
    let s = serve("cpu-throttling", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("cpu-throttling").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let pod = scenario.workload.pods[0].as_str();
    // Throttling restarts nothing and leaves no event: Running, ready, no restarts.
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    let row = pods.iter().find(|r| r[0] == pod).unwrap();
    assert_eq!(&row[1..4], ["1/1", "Running", "0"], "{pods:?}");
    let out = ok(&kc, &["describe", "pod", pod, "-n", ns]).await;
    assert!(
        out.contains("Limits:\n      cpu:     300m") && !out.contains("Warning"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_of_a_storage_class_the_cluster_lacks_stays_pending_and_so_does_its_pod() {
    let s = serve("pvc-pending", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("pvc-pending").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let pod = scenario.workload.pods[0].as_str();
    // kubectl's columns (VOLUME, CAPACITY and ACCESS MODES empty until the claim binds).
    let claims = rows(&ok(&kc, &["get", "pvc", "-n", ns]).await);
    assert_eq!(
        claims[1],
        ["reports-scratch", "Pending", "fast-ssd", "<unset>", "40m"],
        "{claims:?}"
    );
    let classes = rows(&ok(&kc, &["get", "storageclass"]).await);
    assert_eq!(
        &classes[1][..7],
        [
            "gp3",
            "(default)",
            "ebs.csi.aws.com",
            "Delete",
            "Immediate",
            "true",
            "42d"
        ],
        "{classes:?}"
    );
    let out = ok(&kc, &["describe", "pvc", "reports-scratch", "-n", ns]).await;
    assert!(
        out.contains("Status:        Pending")
            && out.contains(&format!("Used By:       {pod}"))
            && out.contains("ProvisioningFailed")
            && out.contains(
                "persistentvolume-controller  storageclass.storage.k8s.io \"fast-ssd\" not found"
            ),
        "{out}"
    );
    let out = ok(&kc, &["describe", "pod", pod, "-n", ns]).await;
    assert!(
        out.contains("PodScheduled   False")
            && out.contains("ClaimName:   reports-scratch")
            && out.contains("default-scheduler  0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."),
        "{out}"
    );
    // The old pod keeps serving beside the new one that waits.
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    let row = pods.iter().find(|r| r[0] == pod).unwrap();
    assert_eq!(&row[1..3], ["0/1", "Pending"], "{pods:?}");
    assert!(
        pods[1..]
            .iter()
            .any(|r| r[0] != pod && r[1] == "1/1" && r[2] == "Running"),
        "{pods:?}"
    );
    // A claim that binds: kubectl shows its volume and capacity.
    drop(s);
    let mut bound = scenario.clone();
    bound.storage_classes.as_mut().unwrap()[1].name = "fast-ssd".into();
    let s = serve_scenario(bound).await;
    let claims = rows(&ok(&s.backends.kubeconfig, &["get", "pvc", "-n", ns]).await);
    assert!(
        claims[1][1] == "Bound" && claims[1][2].starts_with("pvc-") && claims[1][3] == "50Gi",
        "{claims:?}"
    );
    let pods = rows(&ok(&s.backends.kubeconfig, &["get", "pods", "-n", ns]).await);
    assert!(pods[1..].iter().all(|r| r[2] == "Running"), "{pods:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_that_fills_up_crash_loops_its_writer_until_the_claim_is_larger() {
    let scenario = Scenario::embedded("volume-full").unwrap();
    let ns = scenario.workload.namespace.clone();
    let pod = scenario.workload.pods[0].clone();
    // At the alert: 97.5% full, the writer still runs.
    let s = serve_scenario(scenario.clone()).await;
    let claims = rows(&ok(&s.backends.kubeconfig, &["get", "pvc", "-n", &ns]).await);
    assert_eq!(
        (
            &claims[1][0][..],
            &claims[1][1][..],
            &claims[1][3][..],
            &claims[1][5][..]
        ),
        ("audit-segments", "Bound", "20Gi", "gp3"),
        "{claims:?}"
    );
    let pods = rows(&ok(&s.backends.kubeconfig, &["get", "pods", "-n", &ns]).await);
    assert_eq!(&pods[1][1..4], ["1/1", "Running", "0"], "{pods:?}");
    drop(s);
    // Twelve hours on (the same history, older): full, the writes fail, the app exits 1.
    let mut later = scenario.clone();
    for h in &mut later.history {
        h.hours_ago += 12.0;
    }
    let s = serve_scenario(later.clone()).await;
    let kc = s.backends.kubeconfig.clone();
    let pods = rows(&ok(&kc, &["get", "pods", "-n", &ns]).await);
    assert_eq!(&pods[1][1..3], ["0/1", "CrashLoopBackOff"], "{pods:?}");
    let out = ok(&kc, &["describe", "pod", &pod, "-n", &ns]).await;
    assert!(out.contains("Exit Code:    1"), "{out}");
    let logs = ok(&kc, &["logs", &pod, "-n", &ns, "--previous"]).await;
    assert!(
        logs.contains("write /var/lib/audit/segments/2026-12-05.jsonl: no space left on device"),
        "{logs}"
    );
    drop(s);
    // The same, with the claim at 40Gi in the repo (gp3 allows expansion): room again.
    let mut larger = later;
    for (path, text) in larger.files.iter_mut() {
        if path.starts_with("manifests/") && path.ends_with("pvc.yaml") {
            *text = text.replace("storage: 20Gi", "storage: 40Gi");
        }
    }
    let s = serve_scenario(larger).await;
    let pods = rows(&ok(&s.backends.kubeconfig, &["get", "pods", "-n", &ns]).await);
    assert_eq!(&pods[1][1..3], ["1/1", "Running"], "{pods:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_rbac_refuses_crash_loops_the_new_pods_with_the_apiservers_words() {
    let s = serve("rbac", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("rbac").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let pod = scenario.workload.pods[0].as_str();
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    let row = pods.iter().find(|r| r[0] == pod).unwrap();
    assert_eq!(&row[1..3], ["0/1", "CrashLoopBackOff"], "{pods:?}");
    // Each new pod runs for a moment before the refusal (no readiness probe: Ready, so
    // available), so the rolling update went through: every pod crash-loops.
    assert!(
        pods[1..].iter().all(|r| r[2] == "CrashLoopBackOff"),
        "{pods:?}"
    );
    let logs = ok(&kc, &["logs", pod, "-n", ns, "--previous"]).await;
    assert!(
        logs.contains("Failed to watch *v1.Pod: failed to list *v1.Pod: pods is forbidden: User \"system:serviceaccount:warehouse:warehouse-inventory-sync\" cannot list resource \"pods\" in API group \"\" in the namespace \"warehouse\""),
        "{logs}"
    );
    let out = ok(
        &kc,
        &[
            "get",
            "rolebinding",
            "inventory-sync",
            "-n",
            ns,
            "-o",
            "yaml",
        ],
    )
    .await;
    assert!(
        out.contains("name: inventory-sync\n  namespace: warehouse"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn args_the_binary_does_not_define_exit_2_with_the_flag_parsers_words() {
    let s = serve("bad-args", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("bad-args").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let pod = scenario.workload.pods[0].as_str();
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    eprintln!("{pods:?}");
    let row = pods.iter().find(|r| r[0] == pod).unwrap();
    assert_eq!(&row[1..3], ["0/1", "CrashLoopBackOff"], "{pods:?}");
    let out = ok(&kc, &["describe", "pod", pod, "-n", ns]).await;
    assert!(
        out.contains("Exit Code:    2") && out.contains("--metrics.listen-address=:9102"),
        "{out}"
    );
    let logs = ok(&kc, &["logs", pod, "-n", ns, "--previous"]).await;
    assert_eq!(
        logs.trim(),
        "flag provided but not defined: -metrics.listen-address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_egress_policy_without_dns_crash_loops_the_app_until_it_allows_kube_dns() {
    let scenario = Scenario::embedded("netpol").unwrap();
    let ns = scenario.workload.namespace.clone();
    let pod = scenario.workload.pods[0].clone();
    let s = serve_scenario(scenario.clone()).await;
    let kc = s.backends.kubeconfig.clone();
    let pods = rows(&ok(&kc, &["get", "pods", "-n", &ns]).await);
    assert!(
        pods[1..].iter().all(|r| r[2] == "CrashLoopBackOff"),
        "{pods:?}"
    );
    let logs = ok(&kc, &["logs", &pod, "-n", &ns, "--previous"]).await;
    assert!(
        logs.contains(
            "dial tcp: lookup orders-db.data.svc.cluster.local on 10.96.0.10:53: read udp "
        ) && logs.contains("->10.96.0.10:53: i/o timeout"),
        "{logs}"
    );
    let policies = rows(&ok(&kc, &["get", "networkpolicy", "-n", &ns]).await);
    assert_eq!(policies[1][0], "checkout-api-egress", "{policies:?}");
    // No event explains it: the kubelet only reports the back-off.
    let out = ok(&kc, &["describe", "pod", &pod, "-n", &ns]).await;
    assert!(!out.contains("NetworkPolicy"), "{out}");
    drop(s);
    // The same commit with DNS allowed to kube-dns: every pod runs.
    let mut fixed = scenario;
    for (path, text) in fixed.files.iter_mut() {
        if path.starts_with("manifests/") && path.ends_with("networkpolicy.yaml") {
            text.push_str(
                "  - to:\n    - namespaceSelector:\n        matchLabels:\n          kubernetes.io/metadata.name: kube-system\n      podSelector:\n        matchLabels:\n          k8s-app: kube-dns\n    ports:\n    - protocol: UDP\n      port: 53\n    - protocol: TCP\n      port: 53\n",
            );
        }
    }
    let s = serve_scenario(fixed).await;
    let pods = rows(&ok(&s.backends.kubeconfig, &["get", "pods", "-n", &ns]).await);
    assert!(
        pods[1..].iter().all(|r| r[1] == "1/1" && r[2] == "Running"),
        "{pods:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_endpoints_crash_loops_its_caller_until_it_targets_the_pods_port() {
    let scenario = Scenario::embedded("no-endpoints").unwrap();
    let ns = scenario.workload.namespace.clone();
    let pod = scenario.workload.pods[0].clone();
    let s = serve_scenario(scenario.clone()).await;
    let kc = s.backends.kubeconfig.clone();
    // The caller crash-loops; the Deployment beside it runs, ready.
    let pods = rows(&ok(&kc, &["get", "pods", "-n", &ns]).await);
    let (callers, others): (Vec<_>, Vec<_>) = pods[1..]
        .iter()
        .partition(|r| r[0].starts_with("storefront-"));
    assert_eq!(callers.len(), 3, "{pods:?}");
    assert!(
        callers.iter().all(|r| r[2] == "CrashLoopBackOff"),
        "{pods:?}"
    );
    assert_eq!(others.len(), 2, "{pods:?}");
    assert!(
        others.iter().all(|r| r[1] == "1/1" && r[2] == "Running"),
        "{pods:?}"
    );
    let deploys = rows(&ok(&kc, &["get", "deploy", "inventory", "-n", &ns]).await);
    assert_eq!(&deploys[1][1..4], ["2/2", "2", "2"], "{deploys:?}");
    // The Service and its (absent) endpoints.
    let svc = rows(&ok(&kc, &["get", "svc", "-n", &ns, "-o", "wide"]).await);
    assert_eq!(
        svc[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    assert_eq!(svc[1][0], "inventory");
    assert_eq!(svc[1][1], "ClusterIP");
    assert_eq!(svc[1][4], "80/TCP");
    assert_eq!(svc[1][6], "app=inventory");
    let ip = svc[1][2].clone();
    let eps = rows(&ok(&kc, &["get", "endpoints", "inventory", "-n", &ns]).await);
    assert_eq!(eps[1][..2], ["inventory", "<none>"], "{eps:?}");
    let logs = ok(&kc, &["logs", &pod, "-n", &ns, "--previous"]).await;
    assert!(
        logs.contains(&format!("dial tcp {ip}:80: connect: connection refused")),
        "{logs}"
    );
    let described = ok(&kc, &["describe", "svc", "inventory", "-n", &ns]).await;
    assert!(
        described.contains("TargetPort:        http/TCP"),
        "{described}"
    );
    drop(s);
    // The last release with the target port the pods name: endpoints, and every caller up.
    let mut fixed = scenario;
    for (path, text) in fixed.files.iter_mut() {
        if path.starts_with("manifests/") && path.ends_with("inventory.yaml") {
            *text = text.replace("targetPort: http", "targetPort: web");
        }
    }
    let s = serve_scenario(fixed).await;
    let kc = s.backends.kubeconfig.clone();
    let eps = rows(&ok(&kc, &["get", "endpoints", "inventory", "-n", &ns]).await);
    let listed: Vec<&str> = eps[1][1].split(',').collect();
    assert_eq!(listed.len(), 2, "{eps:?}");
    assert!(listed.iter().all(|e| e.ends_with(":8080")), "{eps:?}");
    let pods = rows(&ok(&kc, &["get", "pods", "-n", &ns]).await);
    assert!(
        pods[1..].iter().all(|r| r[1] == "1/1" && r[2] == "Running"),
        "{pods:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_starting_release_is_stuck_past_its_progress_deadline_while_the_old_pods_serve() {
    let scenario = Scenario::embedded("rollout-stuck").unwrap();
    let ns = scenario.workload.namespace.clone();
    let s = serve_scenario(scenario.clone()).await;
    let kc = s.backends.kubeconfig.clone();
    let pods = rows(&ok(&kc, &["get", "pods", "-n", &ns]).await);
    let (new, old): (Vec<_>, Vec<_>) = pods[1..]
        .iter()
        .partition(|r| r[0].starts_with("search-api-7c6d9b8f45-"));
    assert_eq!(new.len(), 2, "{pods:?}");
    assert!(
        new.iter()
            .all(|r| r[1] == "0/1" && r[2] == "Running" && r[3] == "0"),
        "{pods:?}"
    );
    assert_eq!(old.len(), 3, "{pods:?}");
    assert!(old.iter().all(|r| r[1] == "1/1"), "{pods:?}");
    let deploy = rows(&ok(&kc, &["get", "deploy", "search-api", "-n", &ns]).await);
    assert_eq!(&deploy[1][1..4], ["3/4", "2", "3"], "{deploy:?}");
    // kubectl's own verdict on the rollout.
    let (success, out, err) = kubectl(
        &kc,
        &[
            "rollout",
            "status",
            "deploy/search-api",
            "-n",
            &ns,
            "--timeout=2s",
        ],
    )
    .await;
    assert!(!success, "{out}");
    assert!(
        err.contains("deployment \"search-api\" exceeded its progress deadline"),
        "{out}\n{err}"
    );
    let described = ok(&kc, &["describe", "pod", &new[0][0], "-n", &ns]).await;
    assert!(
        described.contains("Readiness probe failed: HTTP probe failed with statuscode: 503"),
        "{described}"
    );
    let logs = ok(&kc, &["logs", &new[0][0], "-n", &ns]).await;
    assert!(logs.contains("Building the product index"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_at_its_maximum_shows_its_metric_over_target_and_the_rescales_that_got_it_there() {
    let s = serve("hpa-maxed", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let ns = "storefront";
    let hpas = rows(&ok(&kc, &["get", "hpa", "-n", ns]).await);
    // NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE (TARGETS holds a space)
    assert_eq!(
        hpas[1][..7],
        [
            "catalog",
            "Deployment/catalog",
            "cpu:",
            "109%/70%",
            "2",
            "4",
            "4"
        ],
        "{hpas:?}"
    );
    let out = ok(&kc, &["describe", "hpa", "catalog", "-n", ns]).await;
    assert!(
        out.contains("109% (274m) / 70%")
            && out.contains("4 current / 4 desired")
            && out.contains("ScalingLimited  True    TooManyReplicas")
            && out.contains("the desired replica count is more than the maximum replica count")
            && out.contains(
                "New size: 4; reason: cpu resource utilization (percentage of request) above target"
            )
            && out.contains("horizontal-pod-autoscaler"),
        "{out}"
    );
    // The Deployment at the HPA's count: the two pods it kept at its minimum and the two the
    // campaign added.
    let deploy = rows(&ok(&kc, &["get", "deployment", "catalog", "-n", ns]).await);
    assert_eq!(deploy[1][1], "4/4", "{deploy:?}");
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    assert_eq!(pods.len(), 5, "{pods:?}");
    assert!(
        pods[1..].iter().all(|r| r[1] == "1/1" && r[2] == "Running"),
        "{pods:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_pod_on_another_node_than_the_rwo_volume_waits_on_multi_attach() {
    let s = serve("multi-attach", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("multi-attach").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let new = scenario.workload.pods[0].as_str();
    // `get pods -o wide`: the old pod runs on one node, the new one waits on another.
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns, "-o", "wide"]).await);
    assert_eq!(
        pods.len(),
        3,
        "a header, the old pod and the new one: {pods:?}"
    );
    let new_row = pods.iter().find(|r| r[0] == new).unwrap();
    let old_row = pods[1..].iter().find(|r| r[0] != new).unwrap();
    assert_eq!(&new_row[1..3], ["0/1", "ContainerCreating"], "{pods:?}");
    assert_eq!(&old_row[1..3], ["1/1", "Running"], "{pods:?}");
    assert_ne!(
        new_row[6], old_row[6],
        "the two pods share a node: {pods:?}"
    );
    let out = ok(&kc, &["describe", "pod", new, "-n", ns]).await;
    assert!(
        out.contains("FailedAttachVolume")
            && out.contains("Multi-Attach error for volume \"pvc-")
            && out.contains(&format!("Volume is already used by pod(s) {}", old_row[0]))
            && out.contains("unattached volumes=[cache]"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_container_whose_image_is_missing_holds_the_new_pods_initializing() {
    let s = serve("init-image", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("init-image").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let new = scenario.workload.pods[0].as_str();
    // NAME READY STATUS RESTARTS AGE: the new pod stops at its init container; the old serve.
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    let row = pods.iter().find(|r| r[0] == new).unwrap();
    assert_eq!(&row[1..3], ["0/1", "Init:ImagePullBackOff"], "{pods:?}");
    let old: Vec<_> = pods[1..].iter().filter(|r| r[0] != new).collect();
    assert_eq!(old.len(), 3, "{pods:?}");
    assert!(
        old.iter().all(|r| r[1] == "1/1" && r[2] == "Running"),
        "{pods:?}"
    );
    let described = ok(&kc, &["describe", "pod", "-n", ns, new]).await;
    for want in [
        "Init Containers:",
        "ghcr.io/acme/invoice-migrations:7.2.0",
        "ImagePullBackOff",
        "PodInitializing",
        "Failed to pull image \"ghcr.io/acme/invoice-migrations:7.2.0\"",
    ] {
        assert!(described.contains(want), "{want}:\n{described}");
    }
    assert!(
        described.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words == ["Initialized", "False"]
        }),
        "{described}"
    );
    let (logged, _, err) = kubectl(&kc, &["logs", "-n", ns, new, "-c", "migrate"]).await;
    assert!(!logged, "{err}");
    assert!(
        err.contains("is waiting to start: trying and failing to pull image"),
        "{err}"
    );
    let (logged, _, err) = kubectl(&kc, &["logs", "-n", ns, new, "-c", "api"]).await;
    assert!(!logged, "{err}");
    assert!(
        err.contains("is waiting to start: PodInitializing"),
        "{err}"
    );
}
