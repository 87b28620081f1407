//! Jobs and CronJobs as kubectl shows them: a Job stopped at its deadline, a CronJob's history
//! of runs and the Jobs it keeps.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_deadline_is_failed_with_its_pod_deleted() {
    let scenario = Scenario::embedded("job-failed").unwrap();
    let ns = scenario.workload.namespace.clone();
    let s = serve_scenario(scenario).await;
    let kc = s.backends.kubeconfig.clone();
    let jobs = rows(&ok(&kc, &["get", "jobs", "-n", &ns]).await);
    assert_eq!(jobs[0], ["NAME", "COMPLETIONS", "DURATION", "AGE"]);
    assert_eq!(jobs[1][..3], ["orders-backfill", "0/1", "60m"], "{jobs:?}");
    let described = ok(&kc, &["describe", "job", "orders-backfill", "-n", &ns]).await;
    for want in [
        "Active Deadline Seconds:  1800s",
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
        "Deleted pod: orders-backfill-x7k2p",
    ] {
        assert!(described.contains(want), "{want}:\n{described}");
    }
    // The pod is gone; the Deployment beside the Job runs.
    let (_, out, err) = kubectl(
        &kc,
        &["get", "pods", "-n", &ns, "-l", "job-name=orders-backfill"],
    )
    .await;
    assert!(
        out.trim().is_empty() && err.contains("No resources found"),
        "{out}{err}"
    );
    let pods = rows(&ok(&kc, &["get", "pods", "-n", &ns]).await);
    assert_eq!(pods.len(), 3, "{pods:?}");
    assert!(
        pods[1..]
            .iter()
            .all(|r| r[0].starts_with("orders-api-") && r[2] == "Running")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cronjob_past_its_deadline_keeps_its_history_and_the_newest_failed_job() {
    let s = serve("cronjob-failed", &[]).await;
    let kc = s.backends.kubeconfig.clone();
    let cron = rows(&ok(&kc, &["get", "cronjobs", "-n", "billing"]).await);
    // NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE
    assert_eq!(
        cron[0][..5],
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE"]
    );
    assert_eq!(cron[1][..4], ["invoice-sweeper", "0", "*", "*"], "{cron:?}");
    // A served cluster is anchored at the wall clock: the hourly runs fall on real hours, so
    // which Jobs exist depends on the minute; what they show does not.
    let jobs = rows(&ok(&kc, &["get", "jobs", "-n", "billing", "-o", "wide"]).await);
    // NAME COMPLETIONS DURATION AGE CONTAINERS IMAGES SELECTOR: the three newest that completed
    // (2.3.1, 11 min each), then 2.4.0's: the newest failed one, and the one running if the
    // hour's run has not reached its deadline yet.
    assert!(
        jobs[1..]
            .iter()
            .all(|r| r[0].starts_with("invoice-sweeper-")),
        "{jobs:?}"
    );
    let completed: Vec<&Vec<String>> = jobs[1..].iter().filter(|r| r[1] == "1/1").collect();
    assert_eq!(completed.len(), 3, "{jobs:?}");
    assert!(
        completed
            .iter()
            .all(|r| r[2] == "11m" && r[5] == "ghcr.io/acme/invoice-sweeper:2.3.1"),
        "{jobs:?}"
    );
    let not_done: Vec<&str> = jobs[1..]
        .iter()
        .filter(|r| r[1] == "0/1")
        .map(|r| r[0].as_str())
        .collect();
    assert!((1..=2).contains(&not_done.len()), "{jobs:?}");
    let mut failed = Vec::new();
    for job in &not_done {
        let described = ok(&kc, &["describe", "job", "-n", "billing", job]).await;
        assert!(
            described
                .lines()
                .any(|l| l.starts_with("Controlled By:") && l.ends_with(" CronJob/invoice-sweeper")),
            "{described}"
        );
        if described.contains("DeadlineExceeded") {
            for want in [
                "Job was active longer than specified deadline",
                &format!("Deleted pod: {job}-"),
            ] {
                assert!(described.contains(want), "{want}:\n{described}");
            }
            failed.push(*job);
        }
    }
    assert_eq!(failed.len(), 1, "the newest failed Job is kept: {jobs:?}");
    let events = ok(
        &kc,
        &[
            "get",
            "events",
            "-n",
            "billing",
            "--field-selector",
            "involvedObject.kind=CronJob",
        ],
    )
    .await;
    // 2.4.0 came 5.5 hours ago: five or six of its hourly runs have failed.
    let failures = events.matches("status: Failed").count();
    assert!((5..=6).contains(&failures), "{failures}:\n{events}");
    // The adapter reads the CronJob and its Jobs as the model serves them.
    use squad_runtime::ports::Cluster;
    let via_http = s
        .backends
        .cluster
        .cron_job("billing", "invoice-sweeper")
        .await
        .unwrap();
    assert_eq!(
        via_http,
        s.backends
            .sim
            .cron_job("billing", "invoice-sweeper")
            .unwrap()
    );
    assert_eq!(via_http.jobs.len(), jobs.len() - 1);
    assert_eq!(via_http.concurrency_policy, "Forbid");
    let pods = s
        .backends
        .cluster
        .pods_of(&squad_protocols::WorkloadRef {
            kind: "CronJob".into(),
            namespace: "billing".into(),
            name: "invoice-sweeper".into(),
        })
        .await
        .unwrap();
    // The completed runs' pods, and the running one's if there is one (the failed one's pod
    // was deleted at its deadline).
    let succeeded = pods.iter().filter(|p| p.phase == "Succeeded").count();
    assert_eq!(succeeded, 3, "{pods:?}");
    assert_eq!(pods.len() - succeeded, not_done.len() - 1, "{pods:?}");
}
