//! Pods the apiserver refuses, as kubectl shows them: the new ReplicaSet's `FailedCreate` in
//! the admission plugin's words (a ResourceQuota, Pod Security), no new pod, the old ones
//! serving.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_the_quota_refuses_shows_failed_creates_and_the_old_pods_serving() {
    let s = serve("quota", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("quota").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let name = scenario.workload.name.as_str();
    // READY 3/3 (the old pods), UP-TO-DATE 0 (no new pod exists).
    let deploys = rows(&ok(&kc, &["get", "deployments", "-n", ns]).await);
    let row = deploys.iter().find(|r| r[0] == name).unwrap();
    assert_eq!(&row[1..4], ["3/3", "0", "3"], "{deploys:?}");
    let out = ok(&kc, &["describe", "deployment", name, "-n", ns]).await;
    assert!(
        out.contains("Progressing    False   ProgressDeadlineExceeded"),
        "{out}"
    );
    let new_rs = scenario.workload.pods[0].rsplit_once('-').unwrap().0;
    let out = ok(&kc, &["describe", "replicaset", new_rs, "-n", ns]).await;
    assert!(
        out.contains("FailedCreate")
            && out.contains("is forbidden: exceeded quota: compute, requested: limits.memory=1Gi,requests.memory=768Mi")
            && out.contains("Replicas:       0 current / 1 desired"),
        "{out}"
    );
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    assert_eq!(pods.len(), 4, "a header and the three old pods: {pods:?}");
    assert!(
        pods[1..].iter().all(|r| r[1] == "1/1" && r[2] == "Running"),
        "{pods:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_pod_security_refuses_shows_the_violations_and_the_namespace_label() {
    let s = serve("pod-security", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let scenario = Scenario::embedded("pod-security").unwrap();
    let ns = scenario.workload.namespace.as_str();
    let name = scenario.workload.name.as_str();
    // The level is a label on the Namespace (the platform's, not in the GitOps repo).
    let labels = ok(&kc, &["get", "namespace", ns, "--show-labels"]).await;
    assert!(
        labels.contains("pod-security.kubernetes.io/enforce=restricted"),
        "{labels}"
    );
    // READY 3/4: maxUnavailable (25% of 4) let the controller scale the old ReplicaSet down by
    // one for the new pods that never came; UP-TO-DATE 0 (no new pod exists).
    let deploys = rows(&ok(&kc, &["get", "deployments", "-n", ns]).await);
    let row = deploys.iter().find(|r| r[0] == name).unwrap();
    assert_eq!(&row[1..4], ["3/4", "0", "3"], "{deploys:?}");
    let new_rs = scenario.workload.pods[0].rsplit_once('-').unwrap().0;
    let out = ok(&kc, &["describe", "replicaset", new_rs, "-n", ns]).await;
    assert!(
        out.contains("FailedCreate")
            && out.contains("is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"api\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"api\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"api\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"api\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"),
        "{out}"
    );
    let pods = rows(&ok(&kc, &["get", "pods", "-n", ns]).await);
    assert_eq!(
        pods.len(),
        4,
        "a header and the three old pods left: {pods:?}"
    );
    assert!(
        pods[1..].iter().all(|r| r[1] == "1/1" && r[2] == "Running"),
        "{pods:?}"
    );
}
