//! CronJobs, the Jobs they own and those Jobs' pods. A CronJob is read at batch/v1, or at
//! batch/v1beta1 where the apiserver serves only that (Kubernetes 1.20; both until 1.25).

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use serde_json::Value;
use squad_gitops::objects;
use squad_protocols::cluster::PodInfo;
use squad_runtime::ports::{PortError, PortResult};

use super::KubeCluster;

/// CronJobs as Kubernetes before 1.21 serve them; the fields squad reads are those of batch/v1.
pub fn cron_jobs_v1beta1() -> ApiResource {
    ApiResource {
        group: "batch".into(),
        version: "v1beta1".into(),
        api_version: "batch/v1beta1".into(),
        kind: "CronJob".into(),
        plural: "cronjobs".into(),
    }
}

impl KubeCluster {
    /// The CronJob object, from batch/v1 or, on a server that does not serve that, batch/v1beta1.
    pub(super) async fn cron_job_object(&self, namespace: &str, name: &str) -> PortResult<Value> {
        let what = format!("CronJob {namespace}/{name}");
        let v1: Api<CronJob> = Api::namespaced(self.client.clone(), namespace);
        if let Some(o) = self.get_if_served(v1, &what, name).await? {
            return Ok(o);
        }
        let v1beta1: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &cron_jobs_v1beta1());
        self.get_if_served(v1beta1, &what, name)
            .await?
            .ok_or_else(|| {
                PortError::failed(
                    &what,
                    "the API server serves CronJobs at neither batch/v1 nor batch/v1beta1",
                )
            })
    }

    /// The namespace's Jobs (batch/v1, served by every apiserver squad supports).
    pub(super) async fn jobs(&self, namespace: &str) -> PortResult<Vec<Value>> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        self.list(api, &format!("Jobs in {namespace}"), &ListParams::default())
            .await
    }

    /// The pods of the Jobs a CronJob owns: each Job labels its pods `job-name=<job>` and
    /// controls them.
    pub(super) async fn cron_job_pods(
        &self,
        namespace: &str,
        name: &str,
    ) -> PortResult<Vec<PodInfo>> {
        let cron_job = self.cron_job_object(namespace, name).await?;
        let jobs = self.jobs(namespace).await?;
        let owned: Vec<String> = objects::cron_job_info(&cron_job, &jobs)
            .jobs
            .into_iter()
            .map(|j| j.name)
            .collect();
        if owned.is_empty() {
            return Ok(Vec::new());
        }
        let what = format!("pods of CronJob {namespace}/{name}");
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let selector = format!("job-name in ({})", owned.join(","));
        let pods = self
            .list(api, &what, &ListParams::default().labels(&selector))
            .await?;
        Ok(pods
            .iter()
            .filter(|p| {
                Self::controller_of(p)
                    .is_some_and(|(kind, job)| kind == "Job" && owned.contains(&job))
            })
            .map(objects::pod_info)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::Request;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use serde_json::json;
    use squad_protocols::WorkloadRef;
    use squad_runtime::Clock;
    use squad_runtime::ports::Cluster;

    use super::*;

    /// An API server answering `routes` (path → status and body) and a 404 with no details
    /// (what kube-apiserver says of a resource it does not serve) for any other path; it keeps
    /// the request URIs it was sent.
    async fn mock(
        routes: Vec<(&'static str, u16, Value)>,
    ) -> (KubeCluster, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = Router::new().fallback(move |req: Request| {
            let (routes, log) = (routes.clone(), log.clone());
            async move {
                log.lock().unwrap().push(req.uri().to_string());
                let (code, body) = routes
                    .iter()
                    .find(|(p, _, _)| *p == req.uri().path())
                    .map_or_else(
                        || {
                            (
                                404,
                                json!({"kind": "Status", "apiVersion": "v1",
                                "status": "Failure", "reason": "NotFound", "code": 404,
                                "message": "the server could not find the requested resource"}),
                            )
                        },
                        |(_, c, b)| (*c, b.clone()),
                    );
                (
                    StatusCode::from_u16(code).unwrap(),
                    [("content-type", "application/json")],
                    body.to_string(),
                )
                    .into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        crate::tls::install_crypto_provider();
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let cluster =
            KubeCluster::with_client(client, url, 4, Clock::starting_at(chrono::Utc::now()));
        (cluster, seen)
    }

    fn list(kind: &str, items: Vec<Value>) -> Value {
        json!({"kind": kind, "apiVersion": "v1", "metadata": {}, "items": items})
    }

    fn job(name: &str, created: &str, owner: Option<(&str, &str)>) -> Value {
        let refs: Vec<Value> = owner
            .into_iter()
            .map(|(name, uid)| {
                json!({"apiVersion": "batch/v1beta1", "kind": "CronJob",
                "name": name, "uid": uid, "controller": true})
            })
            .collect();
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name,
            "namespace": "billing", "creationTimestamp": created, "uid": format!("uid-{name}"),
            "ownerReferences": refs}, "spec": {"template": {"spec": {"containers": []}}}})
    }

    fn pod(name: &str, job: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "billing",
            "labels": {"job-name": job}, "ownerReferences": [{"apiVersion": "batch/v1",
            "kind": "Job", "name": job, "uid": format!("uid-{job}"), "controller": true}]},
            "spec": {"containers": [{"name": "sweep", "image": "sweep:1"}]}})
    }

    #[tokio::test]
    async fn a_cronjob_is_read_at_v1beta1_where_batch_v1_does_not_serve_it() {
        let cron_job = json!({"apiVersion": "batch/v1beta1", "kind": "CronJob",
            "metadata": {"name": "sweep", "namespace": "billing", "uid": "cj-1"},
            "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid",
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}});
        let (k, seen) = mock(vec![
            (
                "/apis/batch/v1beta1/namespaces/billing/cronjobs/sweep",
                200,
                cron_job,
            ),
            (
                "/apis/batch/v1/namespaces/billing/jobs",
                200,
                list(
                    "JobList",
                    vec![
                        job("sweep-2", "2026-12-05T10:05:00Z", Some(("sweep", "cj-1"))),
                        job("sweep-1", "2026-12-05T10:00:00Z", Some(("sweep", "cj-1"))),
                        job("backup-1", "2026-12-05T10:00:00Z", None),
                    ],
                ),
            ),
            (
                "/api/v1/namespaces/billing/pods",
                200,
                list(
                    "PodList",
                    vec![
                        pod("sweep-1-abcde", "sweep-1"),
                        pod("backup-1-fghij", "backup-1"),
                    ],
                ),
            ),
        ])
        .await;

        let info = k.cron_job("billing", "sweep").await.unwrap();
        assert_eq!(
            (info.schedule.as_str(), info.concurrency_policy.as_str()),
            ("*/5 * * * *", "Forbid")
        );
        let jobs: Vec<&str> = info.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(jobs, ["sweep-1", "sweep-2"]);

        let workload = WorkloadRef {
            kind: "CronJob".into(),
            namespace: "billing".into(),
            name: "sweep".into(),
        };
        assert_eq!(k.workload(&workload).await.unwrap().name, "sweep");
        let pods: Vec<String> = k
            .pods_of(&workload)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(pods, ["sweep-1-abcde"]);
        let seen = seen.lock().unwrap();
        assert!(
            seen.iter()
                .any(|u| u.starts_with("/api/v1/namespaces/billing/pods?")
                    && u.contains("labelSelector=job-name+in+%28sweep-1%2Csweep-2%29")),
            "{seen:#?}"
        );
    }

    #[tokio::test]
    async fn a_missing_cronjob_is_not_found_without_falling_back() {
        let missing = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": "NotFound", "code": 404, "message": "cronjobs.batch \"sweep\" not found",
            "details": {"name": "sweep", "group": "batch", "kind": "cronjobs"}});
        let (k, seen) = mock(vec![(
            "/apis/batch/v1/namespaces/billing/cronjobs/sweep",
            404,
            missing,
        )])
        .await;
        let e = k.cron_job("billing", "sweep").await.unwrap_err();
        assert!(matches!(e, PortError::NotFound { .. }), "{e:?}");
        assert!(e.to_string().contains("CronJob billing/sweep"), "{e}");
        let seen = seen.lock().unwrap();
        assert!(!seen.iter().any(|u| u.contains("v1beta1")), "{seen:#?}");
    }

    #[tokio::test]
    async fn a_cronjob_served_at_neither_version_says_so() {
        let (k, _) = mock(Vec::new()).await;
        let e = k.cron_job("billing", "sweep").await.unwrap_err();
        assert!(
            e.to_string().contains("neither batch/v1 nor batch/v1beta1"),
            "{e}"
        );
    }
}
