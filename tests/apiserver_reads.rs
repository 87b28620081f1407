//! What the Kubernetes adapter reads from a real kube-apiserver 1.20 (`squad_testkit::apiserver`)
//! beyond the simulated scenarios' differential: CronJobs, which 1.20 serves at batch/v1beta1
//! only (the adapter falls back to it, reads the Jobs a CronJob owns by `ownerReferences`, not by
//! name, with the status their controller would have written, and the pods of those Jobs), and
//! a pod's init containers (their specs and `initContainerStatuses`, as the kubelet would have
//! written them). Skipped (with a message) when no kube-apiserver is built, unless `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use squad_adapters::kubernetes::{KubeCluster, KubeOptions, cron_jobs_v1beta1};
use squad_protocols::WorkloadRef;
use squad_runtime::Clock;
use squad_runtime::ports::{Cluster, PortError};
use squad_testkit::apiserver::{self, Options, RealApiserver};
use squad_testkit::seed;

const NS: &str = "billing";

fn object<K: DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).unwrap()
}

async fn create<K>(api: &Api<K>, o: Value, server: &RealApiserver) -> K
where
    K: Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let what = format!("{}/{}", o["kind"], o["metadata"]["name"]);
    api.create(&PostParams::default(), &object(o))
        .await
        .unwrap_or_else(|e| panic!("creating {what}: {e}\n{}", server.log_tail()))
}

fn job(name: &str, owner: Option<(&str, &str)>) -> Value {
    let owner_references: Vec<Value> = owner
        .into_iter()
        .map(|(name, uid)| {
            json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "name": name, "uid": uid,
                   "controller": true, "blockOwnerDeletion": true})
        })
        .collect();
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": NS, "ownerReferences": owner_references},
        "spec": {"activeDeadlineSeconds": 600, "backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "sweep", "image": "ghcr.io/acme/sweep:2.4.0"}]}}}})
}

fn pod_of(job: &Job) -> Value {
    let name = job.metadata.name.clone().unwrap();
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{name}-x7k2p"), "namespace": NS,
            "labels": {"job-name": name},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                "uid": job.metadata.uid, "controller": true}]},
        "spec": {"restartPolicy": "Never",
            "containers": [{"name": "sweep", "image": "ghcr.io/acme/sweep:2.4.0"}]}})
}

async fn adapter(server: &RealApiserver) -> KubeCluster {
    KubeCluster::connect(
        &KubeOptions {
            kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
            ..KubeOptions::default()
        },
        Clock::system(),
    )
    .await
    .unwrap()
}

/// A CronJob `sweep` (batch/v1beta1), two Jobs it owns (the older one failed past its
/// deadline), a Job named like them that it does not own, and one pod of each of these Jobs'.
async fn seed_sweep(client: &Client, server: &RealApiserver) -> DateTime<Utc> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    create(
        &namespaces,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        server,
    )
    .await;
    let cron_jobs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &cron_jobs_v1beta1());
    let cron_job = create(
        &cron_jobs,
        json!({"apiVersion": "batch/v1beta1", "kind": "CronJob",
            "metadata": {"name": "sweep", "namespace": NS},
            "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid",
                "failedJobsHistoryLimit": 2,
                "jobTemplate": {"spec": {"activeDeadlineSeconds": 600, "template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "sweep", "image": "ghcr.io/acme/sweep:2.4.0"}]}}}}}}),
        server,
    )
    .await;
    let uid = cron_job.meta().uid.clone().unwrap();

    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    // Named against their order of creation, so that "oldest first" is not "by name" (creation
    // timestamps have whole seconds).
    let older = create(&jobs, job("sweep-b", Some(("sweep", &uid))), server).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let newer = create(&jobs, job("sweep-a", Some(("sweep", &uid))), server).await;
    let unrelated = create(&jobs, job("sweep-manual", None), server).await;

    // What the Job controller writes when the deadline passes (1.20 has no controller here):
    // it started the Job when it was created.
    let failed_at = Utc::now().trunc_subsecs(0);
    let started = older.metadata.creation_timestamp.clone().unwrap().0;
    jobs.patch_status(
        "sweep-b",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"status": {"failed": 1, "startTime": started, "conditions": [{
            "type": "Failed", "status": "True", "reason": "DeadlineExceeded",
            "message": "Job was active longer than specified deadline",
            "lastProbeTime": failed_at, "lastTransitionTime": failed_at}]}}),
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("setting sweep-b's status: {e}\n{}", server.log_tail()));

    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    for j in [&older, &newer, &unrelated] {
        create(&pods, pod_of(j), server).await;
    }
    failed_at
}

#[tokio::test]
async fn a_v1beta1_cronjob_is_read_with_exactly_the_jobs_it_owns() {
    let Some(server) = apiserver::start_or_skip(
        "a_v1beta1_cronjob_is_read_with_exactly_the_jobs_it_owns",
        Options::default(),
    )
    .await
    .unwrap() else {
        return;
    };
    let client = seed::client(server.kubeconfig_path()).await.unwrap();
    let failed_at = seed_sweep(&client, &server).await;
    let k = adapter(&server).await;

    let info = k.cron_job(NS, "sweep").await.unwrap();
    assert_eq!((info.namespace.as_str(), info.name.as_str()), (NS, "sweep"));
    assert_eq!(info.schedule, "*/5 * * * *");
    assert_eq!(info.concurrency_policy, "Forbid");
    assert!(!info.suspend);
    assert_eq!(info.time_zone, None);
    // The apiserver defaults the successful history limit (3) and keeps the failed one set.
    assert_eq!(
        (
            info.successful_jobs_history_limit,
            info.failed_jobs_history_limit
        ),
        (3, 2)
    );
    assert_eq!(info.last_schedule_time, None);
    assert!(info.active.is_empty(), "{:?}", info.active);

    let names: Vec<&str> = info.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["sweep-b", "sweep-a"], "oldest first, its own only");
    let failed = &info.jobs[0];
    assert_eq!(failed.failed, 1);
    assert_eq!(failed.finished_at, Some(failed_at));
    let condition = failed.failed_condition().expect("a Failed condition");
    assert_eq!(condition.reason, "DeadlineExceeded");
    assert_eq!(
        condition.message,
        "Job was active longer than specified deadline"
    );
    assert_eq!(failed.active_deadline_seconds, Some(600));
    assert_eq!(failed.images, ["ghcr.io/acme/sweep:2.4.0"]);
    let running = &info.jobs[1];
    assert!(running.outcome().is_none(), "{running:?}");
    assert_eq!(running.finished_at, None);
    assert!(info.jobs[0].created_at < info.jobs[1].created_at);

    let missing = k.cron_job(NS, "nightly").await.unwrap_err();
    assert!(
        matches!(missing, PortError::NotFound { .. }),
        "a CronJob that does not exist: {missing:?}"
    );
    assert!(
        missing.to_string().contains("CronJob billing/nightly"),
        "{missing}"
    );
}

#[tokio::test]
async fn a_cronjob_workload_and_its_pods_are_read_from_kubernetes_1_20() {
    let Some(server) = apiserver::start_or_skip(
        "a_cronjob_workload_and_its_pods_are_read_from_kubernetes_1_20",
        Options::default(),
    )
    .await
    .unwrap() else {
        return;
    };
    let client = seed::client(server.kubeconfig_path()).await.unwrap();
    seed_sweep(&client, &server).await;
    let k = adapter(&server).await;
    let sweep = WorkloadRef {
        kind: "CronJob".into(),
        namespace: NS.into(),
        name: "sweep".into(),
    };

    let w = k.workload(&sweep).await.unwrap();
    assert_eq!(
        (w.kind.as_str(), w.namespace.as_str(), w.name.as_str()),
        ("CronJob", NS, "sweep")
    );
    let images: Vec<&str> = w.containers.iter().map(|c| c.image.as_str()).collect();
    assert_eq!(images, ["ghcr.io/acme/sweep:2.4.0"]);

    let mut pods: Vec<String> = k
        .pods_of(&sweep)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    pods.sort();
    assert_eq!(pods, ["sweep-a-x7k2p", "sweep-b-x7k2p"]);

    // A pod of one of its Jobs resolves to the CronJob (pod -> Job -> CronJob).
    assert_eq!(k.owner_of(NS, "sweep-a-x7k2p").await.unwrap(), sweep);
    assert_eq!(
        k.owner_of(NS, "sweep-manual-x7k2p").await.unwrap(),
        WorkloadRef {
            kind: "Job".into(),
            namespace: NS.into(),
            name: "sweep-manual".into(),
        }
    );
}

/// A Deployment's pod held back by its second init container (a migration in
/// CrashLoopBackOff, exit 1), the first completed, the app's container `PodInitializing`: the
/// adapter reads both lists in order, and the pod's focus is the init container that holds it.
#[tokio::test]
async fn a_pod_stuck_in_an_init_container_is_read_with_its_init_containers() {
    let Some(server) = apiserver::start_or_skip(
        "a_pod_stuck_in_an_init_container_is_read_with_its_init_containers",
        Options::default(),
    )
    .await
    .unwrap() else {
        return;
    };
    let client = seed::client(server.kubeconfig_path()).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    create(
        &namespaces,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        &server,
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    create(
        &pods,
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "cart-7d9f-x2k9p", "namespace": "shop"},
            "spec": {"initContainers": [
                        {"name": "wait-for-db", "image": "busybox:1.36",
                         "command": ["sh", "-c", "until nc -z db 5432; do sleep 2; done"]},
                        {"name": "migrate", "image": "ghcr.io/acme/cart:4.2.0",
                         "command": ["./migrate", "up"]}],
                     "containers": [{"name": "cart", "image": "ghcr.io/acme/cart:4.2.0"}]}}),
        &server,
    )
    .await;
    let at = "2026-12-05T10:03:00Z";
    pods.patch_status(
        "cart-7d9f-x2k9p",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Pending",
            "initContainerStatuses": [
                {"name": "wait-for-db", "ready": true, "restartCount": 0, "image": "busybox:1.36",
                 "imageID": "", "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                    "startedAt": "2026-12-05T10:00:00Z", "finishedAt": "2026-12-05T10:00:05Z"}}},
                {"name": "migrate", "ready": false, "restartCount": 4,
                 "image": "ghcr.io/acme/cart:4.2.0", "imageID": "",
                 "state": {"waiting": {"reason": "CrashLoopBackOff",
                    "message": "back-off 1m20s restarting failed container=migrate pod=cart-7d9f-x2k9p_shop"}},
                 "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                    "startedAt": "2026-12-05T10:02:58Z", "finishedAt": at}}}],
            "containerStatuses": [{"name": "cart", "ready": false, "restartCount": 0,
                "image": "ghcr.io/acme/cart:4.2.0", "imageID": "",
                "state": {"waiting": {"reason": "PodInitializing"}}}]}})),
    )
    .await
    .unwrap_or_else(|e| panic!("setting the pod's status: {e}\n{}", server.log_tail()));

    let k = adapter(&server).await;
    let pod = k.pod("shop", "cart-7d9f-x2k9p").await.unwrap();
    let names: Vec<&str> = pod
        .init_containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["wait-for-db", "migrate"]);
    let migrate = pod.container("migrate").unwrap();
    assert_eq!(migrate.state, "waiting: CrashLoopBackOff");
    assert_eq!(migrate.restart_count, 4);
    assert_eq!(migrate.last_termination.as_ref().unwrap().exit_code, 1);
    assert_eq!(
        squad_diagnosis::facts::focus_container(&pod, "cart"),
        "migrate"
    );
    let w = k
        .workload(&WorkloadRef {
            kind: "Pod".into(),
            namespace: "shop".into(),
            name: "cart-7d9f-x2k9p".into(),
        })
        .await
        .unwrap();
    let specs: Vec<(&str, &str)> = w
        .init_containers
        .iter()
        .map(|c| (c.name.as_str(), c.image.as_str()))
        .collect();
    assert_eq!(
        specs,
        [
            ("wait-for-db", "busybox:1.36"),
            ("migrate", "ghcr.io/acme/cart:4.2.0")
        ]
    );
}
