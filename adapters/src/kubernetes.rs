//! The Kubernetes adapter: the [`Cluster`] port over `kube::Client`, read-only.
//!
//! It reads what the crew needs for an incident: pods and their container statuses, the owner
//! chain pod → ReplicaSet → Deployment (or StatefulSet, DaemonSet, Job → CronJob), rollout history
//! (ReplicaSets, or ControllerRevisions), CronJobs with the Jobs they own (batch/v1, falling back
//! to batch/v1beta1 on older clusters), Events (core/v1, falling back to events.k8s.io/v1), pod
//! logs, HPAs (autoscaling/v2, falling back to v2beta2 on older clusters), NetworkPolicies, the
//! RBAC rules bound to a ServiceAccount, Secrets' key names (values are dropped on receipt),
//! Services with their Endpoints, a namespace's workloads, nodes, and Trivy Operator VulnerabilityReports. Memory and traffic history come from a
//! Prometheus HTTP API adapter when one is configured.
//!
//! It never writes, but for the replicas' own Leases ([`leases`]): every other request is a GET. Concurrency is bounded by a semaphore, transient
//! failures (unreachable, 429, 5xx) are retried with backoff, and every error names the resource
//! and the reason (not found, forbidden, unreachable).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::kube::api::{Api, DynamicObject, ListParams, LogParams};
use ::kube::config::{KubeConfigOptions, Kubeconfig};
use ::kube::core::{ApiResource, Status};
use ::kube::{Client, Config};
use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{ControllerRevision, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolumeClaim, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::storage::v1::StorageClass;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use squad_protocols::WorkloadRef;
use squad_protocols::cluster::{
    ClaimInfo, ClusterEvent, CpuHistory, CronJobInfo, HpaInfo, ImageVulnerability,
    NetworkPolicyInfo, NodeInfo, NodePod, PodInfo, RbacRule, Revision, Sample, ServiceInfo,
    StorageClassInfo, VolumeUsage, WorkloadInfo,
};
use squad_runtime::Clock;
use squad_runtime::ports::{Cluster, PortError, PortResult};
use tokio::sync::Semaphore;

#[cfg(feature = "prometheus")]
use crate::prometheus::Prometheus;
use squad_gitops::objects;

mod cron_jobs;
pub use cron_jobs::cron_jobs_v1beta1;
mod images;
pub mod leases;
mod owners;
mod rbac;
mod secrets;
mod services;

/// Where the cluster is and how to talk to it.
#[derive(Debug, Clone, Default)]
pub struct KubeOptions {
    /// A kubeconfig file; without one, `$KUBECONFIG`, `~/.kube/config`, then the in-cluster
    /// service account are tried (as kubectl does).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    pub context: Option<String>,
    /// Requests in flight at once (default 8).
    pub max_concurrent: Option<usize>,
    /// Per-request read timeout. `None` keeps kube's defaults; a simulation on a virtual clock
    /// sets [`KubeOptions::no_timeouts`] because its clock can jump while a request is in flight.
    pub read_timeout: Option<Duration>,
    pub no_timeouts: bool,
}

/// The Kubernetes adapter.
pub struct KubeCluster {
    client: Client,
    server: String,
    limit: Semaphore,
    requests: AtomicU64,
    clock: Clock,
    #[cfg(feature = "prometheus")]
    metrics: Option<Arc<Prometheus>>,
}

/// Memory or traffic history asked for with no Prometheus to ask.
fn no_prometheus(what: String) -> PortError {
    PortError::Unavailable {
        what,
        detail: "no Prometheus is configured (set [prometheus] url in squad.toml)".into(),
    }
}

/// The API resource of Trivy Operator's VulnerabilityReports.
fn hpa_resource(version: &str) -> ApiResource {
    ApiResource {
        group: "autoscaling".into(),
        version: version.into(),
        api_version: format!("autoscaling/{version}"),
        kind: "HorizontalPodAutoscaler".into(),
        plural: "horizontalpodautoscalers".into(),
    }
}

fn events_v1() -> ApiResource {
    ApiResource {
        group: "events.k8s.io".into(),
        version: "v1".into(),
        api_version: "events.k8s.io/v1".into(),
        kind: "Event".into(),
        plural: "events".into(),
    }
}

fn to_value<T: Serialize>(what: &str, o: &T) -> PortResult<Value> {
    serde_json::to_value(o).map_err(|e| PortError::failed(what, e))
}

/// Whether a 404 says the server does not serve the resource type at all (kube-apiserver's "the
/// server could not find the requested resource", with no details) rather than that it has no
/// object `name` (a `NotFound` whose details name the object).
fn not_served(s: &Status, name: &str) -> bool {
    s.code == 404 && s.details.as_ref().is_none_or(|d| d.name != name)
}

/// The most of a container's log one read takes (256 KiB), asked of the server as `limitBytes`
/// and held to on receipt whatever the server sends: the `tail` lines asked for, unless they are
/// longer (one 100 MiB line, say), then their first 256 KiB and a line saying so.
pub const LOG_LIMIT_BYTES: usize = 256 << 10;

/// A log body as lines, read up to [`LOG_LIMIT_BYTES`] (the rest is not read off the connection),
/// bytes that are not UTF-8 replaced by U+FFFD.
async fn read_log(stream: impl futures::AsyncBufRead) -> std::io::Result<Vec<String>> {
    use futures::AsyncReadExt;
    let mut bytes = Vec::new();
    let cap = LOG_LIMIT_BYTES as u64;
    std::pin::pin!(stream)
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .await?;
    // At the cap, whether the server stopped there (`limitBytes`) or squad did.
    let cut = bytes.len() as u64 >= cap;
    bytes.truncate(LOG_LIMIT_BYTES);
    let mut lines: Vec<String> = String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_owned)
        .collect();
    if cut {
        lines.push(format!(
            "[squad: the log was cut here, after {LOG_LIMIT_BYTES} bytes]"
        ));
    }
    Ok(lines)
}

/// Whether an error is worth retrying (the server may answer next time).
fn transient(e: &::kube::Error) -> bool {
    match e {
        ::kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        ::kube::Error::HyperError(_) | ::kube::Error::Service(_) => true,
        _ => false,
    }
}

impl KubeCluster {
    /// Connects with a kubeconfig (or the in-cluster service account). Nothing is requested yet.
    pub async fn connect(opts: &KubeOptions, clock: Clock) -> PortResult<KubeCluster> {
        crate::tls::install_crypto_provider();
        let what = "load the Kubernetes configuration";
        let kopts = KubeConfigOptions {
            context: opts.context.clone(),
            ..KubeConfigOptions::default()
        };
        let mut config = match &opts.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).map_err(|e| {
                    PortError::failed(what, format!("kubeconfig {}: {e}", path.display()))
                })?;
                Config::from_custom_kubeconfig(kc, &kopts)
                    .await
                    .map_err(|e| {
                        PortError::failed(what, format!("kubeconfig {}: {e}", path.display()))
                    })?
            }
            None if opts.context.is_some() => Config::from_kubeconfig(&kopts)
                .await
                .map_err(|e| PortError::failed(what, e))?,
            None => Config::infer()
                .await
                .map_err(|e| PortError::failed(what, e))?,
        };
        if opts.no_timeouts {
            config.connect_timeout = None;
            config.read_timeout = None;
            config.write_timeout = None;
        } else if let Some(t) = opts.read_timeout {
            config.read_timeout = Some(t);
        }
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| {
            PortError::failed(what, format!("cannot build a client for {server}: {e}"))
        })?;
        Ok(Self::with_client(
            client,
            server,
            opts.max_concurrent.unwrap_or(8),
            clock,
        ))
    }

    /// Wraps an existing client (tests use a mock service).
    pub fn with_client(
        client: Client,
        server: String,
        max_concurrent: usize,
        clock: Clock,
    ) -> Self {
        KubeCluster {
            client,
            server,
            limit: Semaphore::new(max_concurrent.max(1)),
            requests: AtomicU64::new(0),
            clock,
            #[cfg(feature = "prometheus")]
            metrics: None,
        }
    }

    /// Reads memory and traffic history from this Prometheus.
    #[cfg(feature = "prometheus")]
    pub fn with_metrics(mut self, prometheus: Arc<Prometheus>) -> Self {
        self.metrics = Some(prometheus);
        self
    }

    /// The leases replicas share work by, in `namespace` (see [`leases::KubeLeases`]).
    pub fn leases(&self, namespace: &str, prefix: &str) -> leases::KubeLeases {
        leases::KubeLeases::new(self.client.clone(), namespace, prefix, self.server.clone())
    }

    /// API requests sent so far (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// The namespace the kubeconfig's context selects (or the in-cluster service account's).
    pub fn default_namespace(&self) -> &str {
        self.client.default_namespace()
    }

    /// The instant range queries end at: now, rounded down to a multiple of the step, so that
    /// series asked a moment apart (memory, then traffic) share their timestamps.
    #[cfg(feature = "prometheus")]
    fn query_time(&self, step: Duration) -> chrono::DateTime<chrono::Utc> {
        let now = self.clock.now();
        let step_ms = i64::try_from(step.as_millis()).unwrap_or(1000).max(1000);
        let ms = now.timestamp_millis();
        chrono::DateTime::from_timestamp_millis(ms - ms.rem_euclid(step_ms)).unwrap_or(now)
    }

    fn error(&self, what: &str, e: ::kube::Error) -> PortError {
        match e {
            ::kube::Error::Api(s) => match s.code {
                404 => PortError::NotFound { what: what.into() },
                401 => PortError::Forbidden {
                    what: what.into(),
                    detail: format!(
                        "unauthorized (401): the credentials were rejected: {}",
                        s.message
                    ),
                },
                403 => PortError::Forbidden {
                    what: what.into(),
                    detail: s.message.clone(),
                },
                // A request the API server refuses as invalid fails the same way again.
                code @ (400 | 409 | 422) => PortError::Rejected {
                    what: what.into(),
                    detail: format!("{} ({code}): {}", s.reason, s.message),
                },
                code @ (429 | 500..=599) => PortError::Unavailable {
                    what: what.into(),
                    detail: format!("{} ({code}): {}", s.reason, s.message),
                },
                code => PortError::Failed {
                    what: what.into(),
                    detail: format!("{} ({code}): {}", s.reason, s.message),
                },
            },
            ::kube::Error::HyperError(_) | ::kube::Error::Service(_) => PortError::Unavailable {
                what: what.into(),
                detail: format!("cannot reach the API server at {}: {e}", self.server),
            },
            other => PortError::failed(what, other),
        }
    }

    /// Runs one request under the concurrency limit, retrying transient failures.
    async fn call<T, F, Fut>(&self, what: &str, mut f: F) -> PortResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ::kube::Error>>,
    {
        const ATTEMPTS: u32 = 3;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = {
                let _permit = self
                    .limit
                    .acquire()
                    .await
                    .map_err(|e| PortError::failed(what, e))?;
                self.requests.fetch_add(1, Ordering::Relaxed);
                f().await
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if attempt < ATTEMPTS && transient(&e) => {
                    tracing::debug!(
                        what,
                        attempt,
                        "transient Kubernetes API error, retrying: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                Err(e) => return Err(self.error(what, e)),
            }
        }
    }

    async fn get<K>(&self, api: Api<K>, what: &str, name: &str) -> PortResult<Value>
    where
        K: Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    {
        let o = self.call(what, || api.get(name)).await?;
        to_value(what, &o)
    }

    /// Like [`KubeCluster::get`], but `None` when the server does not serve the resource type
    /// (an API version it has not, or no longer, got); a missing object is still `NotFound`.
    async fn get_if_served<K>(
        &self,
        api: Api<K>,
        what: &str,
        name: &str,
    ) -> PortResult<Option<Value>>
    where
        K: Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    {
        let api = &api;
        let got = self
            .call(what, move || async move {
                match api.get(name).await {
                    Err(::kube::Error::Api(s)) if not_served(&s, name) => Ok(None),
                    other => other.map(Some),
                }
            })
            .await?;
        got.map(|o| to_value(what, &o)).transpose()
    }

    async fn list<K>(&self, api: Api<K>, what: &str, lp: &ListParams) -> PortResult<Vec<Value>>
    where
        K: Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    {
        let list = self.call(what, || api.list(lp)).await?;
        list.items.iter().map(|o| to_value(what, o)).collect()
    }

    async fn pod_object(&self, namespace: &str, name: &str) -> PortResult<Value> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        self.get(api, &format!("pod {namespace}/{name}"), name)
            .await
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn pod(&self, namespace: &str, name: &str) -> PortResult<PodInfo> {
        Ok(objects::pod_info(&self.pod_object(namespace, name).await?))
    }

    async fn pods_of(&self, workload: &WorkloadRef) -> PortResult<Vec<PodInfo>> {
        if workload.kind == "Pod" {
            return Ok(vec![self.pod(&workload.namespace, &workload.name).await?]);
        }
        if workload.kind == "CronJob" {
            return self
                .cron_job_pods(&workload.namespace, &workload.name)
                .await;
        }
        let obj = self.workload_object(workload).await?;
        let Some(selector) = Self::selector_of(&obj) else {
            return Ok(Vec::new());
        };
        let what = format!("pods of {workload}");
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &workload.namespace);
        let pods = self
            .list(api, &what, &ListParams::default().labels(&selector))
            .await?;
        // Pods the selector matches but another controller owns are not this workload's.
        let prefix = format!("{}-", workload.name);
        Ok(pods
            .iter()
            .filter(|p| match Self::controller_of(p) {
                Some((kind, name)) if kind == "ReplicaSet" && workload.kind == "Deployment" => {
                    name.starts_with(&prefix)
                }
                Some((kind, name)) => kind == workload.kind && name == workload.name,
                None => false,
            })
            .map(objects::pod_info)
            .collect())
    }

    async fn owner_of(&self, namespace: &str, pod: &str) -> PortResult<WorkloadRef> {
        let p = self.pod_object(namespace, pod).await?;
        let Some((kind, name)) = Self::controller_of(&p) else {
            // A bare pod is its own workload.
            return Ok(WorkloadRef {
                kind: "Pod".into(),
                namespace: namespace.into(),
                name: pod.into(),
            });
        };
        let parent = |kind: &str, name: &str| WorkloadRef {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        let owner = parent(&kind, &name);
        match kind.as_str() {
            "ReplicaSet" | "Job" => {
                // One level up: ReplicaSet -> Deployment, Job -> CronJob (if any).
                let o = self.workload_object(&owner).await?;
                Ok(match Self::controller_of(&o) {
                    Some((k, n)) => parent(&k, &n),
                    None => owner,
                })
            }
            _ => Ok(owner),
        }
    }

    async fn workload(&self, workload: &WorkloadRef) -> PortResult<WorkloadInfo> {
        let obj = self.workload_object(workload).await?;
        Ok(objects::workload_info(&obj, &workload.namespace))
    }

    async fn rollout_history(&self, workload: &WorkloadRef) -> PortResult<Vec<Revision>> {
        let what = format!("rollout history of {workload}");
        let c = self.client.clone();
        let ns = workload.namespace.as_str();
        // Deployments keep their revisions as ReplicaSets, StatefulSets and DaemonSets as
        // ControllerRevisions; either way: the owner's, found by its selector.
        if !matches!(
            workload.kind.as_str(),
            "Deployment" | "StatefulSet" | "DaemonSet"
        ) {
            return Ok(Vec::new());
        }
        let obj = self.workload_object(workload).await?;
        let uid = Self::uid(&obj).to_owned();
        let lp = Self::selector_of(&obj)
            .map_or_else(ListParams::default, |s| ListParams::default().labels(&s));
        let (items, revision_of): (Vec<Value>, fn(&Value) -> Option<Revision>) =
            if workload.kind == "Deployment" {
                let api = Api::<ReplicaSet>::namespaced(c, ns);
                (
                    self.list(api, &what, &lp).await?,
                    objects::replica_set_revision,
                )
            } else {
                let api = Api::<ControllerRevision>::namespaced(c, ns);
                (
                    self.list(api, &what, &lp).await?,
                    objects::controller_revision,
                )
            };
        let mut revisions: Vec<Revision> = items
            .iter()
            .filter(|o| Self::owned_by(o, &uid))
            .filter_map(revision_of)
            .collect();
        revisions.sort_by_key(|r| r.revision);
        Ok(revisions)
    }

    async fn events(&self, namespace: &str, object: &str) -> PortResult<Vec<ClusterEvent>> {
        let what = format!("events of {namespace}/{object}");
        let core: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        // The namespace is in the path; cluster-scoped objects (Nodes) have their events in
        // `default` with no involvedObject.namespace.
        let lp = ListParams::default().fields(&format!("involvedObject.name={object}"));
        let items = match self.list(core, &what, &lp).await {
            Ok(items) => items,
            // Clusters that only grant (or only serve) the newer API.
            Err(PortError::NotFound { .. } | PortError::Forbidden { .. }) => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), namespace, &events_v1());
                let lp = ListParams::default().fields(&format!("regarding.name={object}"));
                self.list(api, &what, &lp).await?
            }
            Err(e) => return Err(e),
        };
        let mut events: Vec<ClusterEvent> = items.iter().map(objects::event).collect();
        events.sort_by(|a, b| (a.last_seen, &a.reason).cmp(&(b.last_seen, &b.reason)));
        Ok(events)
    }

    async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        tail: usize,
    ) -> PortResult<Vec<String>> {
        let what = format!(
            "{}logs of container {container} in pod {namespace}/{pod}",
            if previous { "previous " } else { "" }
        );
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let lp = LogParams {
            container: Some(container.to_owned()),
            previous,
            tail_lines: Some(i64::try_from(tail).unwrap_or(i64::MAX)),
            limit_bytes: Some(LOG_LIMIT_BYTES as i64),
            ..LogParams::default()
        };
        let (api, lp) = (&api, &lp);
        let read = || async move {
            let stream = api.log_stream(pod, lp).await?;
            read_log(stream).await.map_err(::kube::Error::ReadEvents)
        };
        match self.call(&what, read).await {
            Ok(lines) => Ok(lines),
            // "previous terminated container ... not found" comes back as 400.
            Err(PortError::Rejected { detail, .. } | PortError::Failed { detail, .. })
                if detail.contains("not found") || detail.contains("(400)") =>
            {
                Err(PortError::NotFound { what })
            }
            Err(e) => Err(e),
        }
    }

    async fn memory_working_set(
        &self,
        workload: &WorkloadRef,
        container: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<Vec<Sample>> {
        let what = format!("memory history of {workload} container {container}");
        #[cfg(feature = "prometheus")]
        if let Some(p) = &self.metrics {
            return p
                .memory_working_set(workload, container, window, step, self.query_time(step))
                .await
                .map_err(|e| PortError::Unavailable {
                    what,
                    detail: e.to_string(),
                });
        }
        let _ = (window, step);
        Err(no_prometheus(what))
    }

    async fn request_rates(
        &self,
        workload: &WorkloadRef,
        window: Duration,
        step: Duration,
    ) -> PortResult<Vec<(String, Vec<Sample>)>> {
        let what = format!("request rates of {workload}");
        #[cfg(feature = "prometheus")]
        if let Some(p) = &self.metrics {
            return p
                .request_rates(workload, window, step, self.query_time(step))
                .await
                .map_err(|e| PortError::Unavailable {
                    what,
                    detail: e.to_string(),
                });
        }
        let _ = (window, step);
        Err(no_prometheus(what))
    }

    async fn cpu(
        &self,
        workload: &WorkloadRef,
        container: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<CpuHistory> {
        let what = format!("cpu history of {workload} container {container}");
        #[cfg(feature = "prometheus")]
        if let Some(p) = &self.metrics {
            return p
                .cpu(workload, container, window, step, self.query_time(step))
                .await
                .map_err(|e| PortError::Unavailable {
                    what,
                    detail: e.to_string(),
                });
        }
        let _ = (window, step);
        Err(no_prometheus(what))
    }

    async fn hpas(&self, namespace: &str) -> PortResult<Vec<HpaInfo>> {
        let what = format!("HorizontalPodAutoscalers in {namespace}");
        let lp = ListParams::default();
        let v2: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &hpa_resource("v2"));
        let items = match self.list(v2, &what, &lp).await {
            Ok(items) => items,
            // Kubernetes before 1.23 serves autoscaling/v2beta2 only; its shape is the same.
            Err(PortError::NotFound { .. }) => {
                let old: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), namespace, &hpa_resource("v2beta2"));
                self.list(old, &what, &lp).await?
            }
            Err(e) => return Err(e),
        };
        Ok(items.iter().map(objects::hpa).collect())
    }

    async fn network_policies(&self, namespace: &str) -> PortResult<Vec<NetworkPolicyInfo>> {
        let what = format!("NetworkPolicies in {namespace}");
        let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), namespace);
        Ok(self
            .list(api, &what, &ListParams::default())
            .await?
            .iter()
            .map(objects::network_policy)
            .collect())
    }

    async fn rbac_rules(
        &self,
        namespace: &str,
        service_account: &str,
    ) -> PortResult<Vec<RbacRule>> {
        self.rules_bound_to(namespace, service_account).await
    }

    async fn image_vulnerabilities(&self, image: &str) -> PortResult<Vec<ImageVulnerability>> {
        self.scanned_vulnerabilities(image).await
    }

    async fn secret_keys(&self, namespace: &str) -> PortResult<Vec<(String, Vec<String>)>> {
        self.secret_key_names(namespace).await
    }

    async fn secret_values(&self, namespace: &str) -> PortResult<Vec<String>> {
        self.secret_texts(namespace).await
    }

    async fn config_map_texts(&self, namespace: &str) -> PortResult<Vec<(String, String, String)>> {
        self.config_map_data(namespace).await
    }

    async fn node(&self, name: &str) -> PortResult<NodeInfo> {
        let api: Api<Node> = Api::all(self.client.clone());
        Ok(objects::node_info(
            &self.get(api, &format!("node {name}"), name).await?,
        ))
    }

    async fn nodes(&self) -> PortResult<Vec<NodeInfo>> {
        let api: Api<Node> = Api::all(self.client.clone());
        let nodes = self.list(api, "list nodes", &ListParams::default()).await?;
        Ok(nodes.iter().map(objects::node_info).collect())
    }

    async fn claims(&self, namespace: &str) -> PortResult<Vec<ClaimInfo>> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("PersistentVolumeClaims in {namespace}");
        let claims = self.list(api, &what, &ListParams::default()).await?;
        Ok(claims.iter().map(objects::claim_info).collect())
    }

    async fn latency(
        &self,
        workload: &WorkloadRef,
        route: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<Vec<Sample>> {
        let what = format!("latency of {workload} on {route}");
        #[cfg(feature = "prometheus")]
        if let Some(p) = &self.metrics {
            return p
                .latency(workload, route, window, step, self.query_time(step))
                .await
                .map_err(|e| PortError::Unavailable {
                    what,
                    detail: e.to_string(),
                });
        }
        let _ = (window, step);
        Err(no_prometheus(what))
    }

    async fn volume(
        &self,
        workload: &WorkloadRef,
        claim: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<VolumeUsage> {
        let what = format!(
            "usage of the volume of claim {claim} in {}",
            workload.namespace
        );
        #[cfg(feature = "prometheus")]
        if let Some(p) = &self.metrics {
            return p
                .volume(workload, claim, window, step, self.query_time(step))
                .await
                .map_err(|e| PortError::Unavailable {
                    what,
                    detail: e.to_string(),
                });
        }
        let _ = (window, step);
        Err(no_prometheus(what))
    }

    async fn pods_mounting(&self, namespace: &str, claim: &str) -> PortResult<Vec<String>> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("pods in {namespace}");
        let pods = self.list(api, &what, &ListParams::default()).await?;
        Ok(pods
            .iter()
            .filter(|p| objects::claim_names(&p["spec"]).iter().any(|c| c == claim))
            .map(|p| objects::name(p).to_owned())
            .collect())
    }

    async fn storage_classes(&self) -> PortResult<Vec<StorageClassInfo>> {
        let api: Api<StorageClass> = Api::all(self.client.clone());
        let classes = self
            .list(api, "list storage classes", &ListParams::default())
            .await?;
        Ok(classes.iter().map(objects::storage_class_info).collect())
    }

    async fn services(&self, namespace: &str) -> PortResult<Vec<ServiceInfo>> {
        self.service_infos(namespace).await
    }

    async fn workloads(&self, namespace: &str) -> PortResult<Vec<WorkloadInfo>> {
        self.workload_infos(namespace).await
    }

    async fn cron_job(&self, namespace: &str, name: &str) -> PortResult<CronJobInfo> {
        let cron_job = self.cron_job_object(namespace, name).await?;
        let jobs = self.jobs(namespace).await?;
        Ok(objects::cron_job_info(&cron_job, &jobs))
    }

    async fn pods_on_node(&self, node: &str) -> PortResult<Vec<NodePod>> {
        let api: Api<Pod> = Api::all(self.client.clone());
        let what = format!("pods on node {node}");
        let pods = self
            .list(
                api,
                &what,
                &ListParams::default().fields(&format!("spec.nodeName={node}")),
            )
            .await?;
        Ok(pods.iter().map(objects::node_pod).collect())
    }
}
