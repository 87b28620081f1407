//! The ports: traits the crew talks to the world through. Adapters implement them (the
//! simulation, kube-rs, octocrab, HolmesGPT, an LLM); agents only ever see these traits.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use squad_protocols::cluster::{
    ClaimInfo, ClusterEvent, CpuHistory, CronJobInfo, HpaInfo, ImageVulnerability,
    NetworkPolicyInfo, NodeInfo, NodePod, PodInfo, RbacRule, Revision, Sample, ServiceInfo,
    StorageClassInfo, VolumeUsage, WorkloadInfo,
};
use squad_protocols::{
    Alert, Diagnosis, FileChange, IssueRef, IssueSpec, PrActivity, PrRef, PrSpec, PrState, Replay,
    WorkloadRef,
};

/// An error from an adapter, naming what it was doing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PortError {
    #[error("{what}: not found")]
    NotFound { what: String },
    #[error("{what}: forbidden: {detail}")]
    Forbidden { what: String, detail: String },
    #[error("{what}: unavailable: {detail}")]
    Unavailable { what: String, detail: String },
    /// The other side refused the request as invalid (a 400, 409 or 422): sending it again as
    /// it is cannot succeed.
    #[error("{what}: rejected: {detail}")]
    Rejected { what: String, detail: String },
    #[error("{what}: {detail}")]
    Failed { what: String, detail: String },
}

impl PortError {
    pub fn failed(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        PortError::Failed {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        PortError::NotFound { what: what.into() }
    }

    /// Whether the same call may succeed later: an unavailable service, or a failure of no
    /// known kind. Not found, forbidden and rejected calls fail the same way again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PortError::Unavailable { .. } | PortError::Failed { .. }
        )
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// Read-only access to a cluster and its metrics.
#[async_trait]
pub trait Cluster: Send + Sync {
    async fn pod(&self, namespace: &str, name: &str) -> PortResult<PodInfo>;
    async fn pods_of(&self, workload: &WorkloadRef) -> PortResult<Vec<PodInfo>>;
    /// Resolves the workload that owns a pod (pod -> ReplicaSet -> Deployment).
    async fn owner_of(&self, namespace: &str, pod: &str) -> PortResult<WorkloadRef>;
    async fn workload(&self, workload: &WorkloadRef) -> PortResult<WorkloadInfo>;
    async fn rollout_history(&self, workload: &WorkloadRef) -> PortResult<Vec<Revision>>;
    async fn events(&self, namespace: &str, object: &str) -> PortResult<Vec<ClusterEvent>>;
    async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        tail: usize,
    ) -> PortResult<Vec<String>>;
    /// Per-sample maximum of the container's working set over the workload's pods, in bytes.
    async fn memory_working_set(
        &self,
        workload: &WorkloadRef,
        container: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<Vec<Sample>>;
    /// Requests per second to the workload, one series per route (like `sum by (route)`).
    async fn request_rates(
        &self,
        workload: &WorkloadRef,
        window: Duration,
        step: Duration,
    ) -> PortResult<Vec<(String, Vec<Sample>)>>;
    /// The container's CPU use and CFS throttling over the window.
    async fn cpu(
        &self,
        workload: &WorkloadRef,
        container: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<CpuHistory>;
    async fn hpas(&self, namespace: &str) -> PortResult<Vec<HpaInfo>>;
    async fn network_policies(&self, namespace: &str) -> PortResult<Vec<NetworkPolicyInfo>>;
    /// The RBAC rules bound to a ServiceAccount (Roles and ClusterRoles through their bindings).
    async fn rbac_rules(&self, namespace: &str, service_account: &str)
    -> PortResult<Vec<RbacRule>>;
    async fn image_vulnerabilities(&self, image: &str) -> PortResult<Vec<ImageVulnerability>>;
    /// Secrets in a namespace: name and key names, never values.
    async fn secret_keys(&self, namespace: &str) -> PortResult<Vec<(String, Vec<String>)>>;
    /// The values of a namespace's Secrets, decoded, for the redaction gateway only: they are
    /// redacted wherever they appear before anything reaches a model, and go nowhere else.
    async fn secret_values(&self, namespace: &str) -> PortResult<Vec<String>>;
    /// A node and its conditions.
    async fn node(&self, name: &str) -> PortResult<NodeInfo>;
    /// Every node of the cluster (where a pod could have gone).
    async fn nodes(&self) -> PortResult<Vec<NodeInfo>>;
    /// Every pod bound to a node, in any namespace (the evicted ones too).
    async fn pods_on_node(&self, node: &str) -> PortResult<Vec<NodePod>>;
    /// The PersistentVolumeClaims of a namespace.
    async fn claims(&self, namespace: &str) -> PortResult<Vec<ClaimInfo>>;
    /// The cluster's StorageClasses.
    async fn storage_classes(&self) -> PortResult<Vec<StorageClassInfo>>;
    /// The 99th-percentile latency, in seconds, of the app's answers on `route` (a path it
    /// serves, such as its liveness probe's) over the window.
    async fn latency(
        &self,
        workload: &WorkloadRef,
        route: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<Vec<Sample>>;
    /// How full the volume of `claim` (in the workload's namespace) has been over the window.
    async fn volume(
        &self,
        workload: &WorkloadRef,
        claim: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<VolumeUsage>;
    /// The pods of a namespace that mount `claim`.
    async fn pods_mounting(&self, namespace: &str, claim: &str) -> PortResult<Vec<String>>;
    /// The Services of a namespace, each with its endpoints.
    async fn services(&self, namespace: &str) -> PortResult<Vec<ServiceInfo>>;
    /// The workloads of a namespace (Deployments, StatefulSets, DaemonSets), as their live
    /// objects declare them.
    async fn workloads(&self, namespace: &str) -> PortResult<Vec<WorkloadInfo>>;
    /// A CronJob and the Jobs it owns.
    async fn cron_job(&self, namespace: &str, name: &str) -> PortResult<CronJobInfo>;
}

/// A file as it was at one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVersion {
    pub commit: String,
    pub at: DateTime<Utc>,
    pub message: String,
    pub content: String,
}

/// An artifact found by its hidden marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkedArtifact {
    Issue(IssueRef),
    PullRequest(PrRef),
    Comment { issue: u64, id: u64 },
}

/// The code forge (GitHub) and the GitOps repository behind it.
#[async_trait]
pub trait Forge: Send + Sync {
    /// The repository's name, e.g. `acme/gitops`.
    fn repo(&self) -> String;
    async fn default_branch(&self) -> PortResult<String>;
    /// Looks for an issue, PR or comment whose body carries `marker`.
    async fn find_marker(&self, marker: &str) -> PortResult<Option<MarkedArtifact>>;
    async fn create_issue(&self, spec: &IssueSpec) -> PortResult<IssueRef>;
    async fn comment(&self, issue: u64, body: &str) -> PortResult<u64>;
    async fn set_issue_open(&self, issue: u64, open: bool) -> PortResult<()>;
    /// Creates `spec.branch` from `spec.base` with one commit of `spec.files`, and opens the PR.
    async fn open_pr(&self, spec: &PrSpec) -> PortResult<PrRef>;
    async fn pr_state(&self, number: u64) -> PortResult<PrState>;
    /// Commits files straight to a branch (Scribe's memory).
    async fn commit_files(
        &self,
        branch: &str,
        message: &str,
        files: &[FileChange],
    ) -> PortResult<String>;
    async fn read_file(&self, path: &str, git_ref: &str) -> PortResult<Option<String>>;
    async fn list_files(&self, prefix: &str, git_ref: &str) -> PortResult<Vec<String>>;
    /// The versions of a file on the default branch, newest first.
    async fn file_history(&self, path: &str) -> PortResult<Vec<FileVersion>>;
    /// Reviews and check runs of a pull request (none where the forge has neither).
    async fn pr_activity(&self, _number: u64) -> PortResult<PrActivity> {
        Ok(PrActivity::default())
    }
}

/// What the diagnoser is asked.
#[derive(Debug, Clone)]
pub struct DiagnosisRequest {
    pub alert: Alert,
    pub workload: WorkloadRef,
    /// What past incidents of this workload taught.
    pub memory: Vec<String>,
}

/// A fix to replay: the files it commits, for which workload, declared where.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub workload: WorkloadRef,
    /// The container the diagnosis names (empty: none named; the app's container is modelled).
    pub container: String,
    /// Where the repository declares the workload and what renders it.
    pub declared: squad_protocols::Declared,
    pub files: Vec<FileChange>,
    pub horizon: Duration,
}

/// The world model: a fix replayed before it is proposed. The simulation forks its own world; on
/// a real cluster the world is seeded from the facts read from it (`squad_sim::FactsReplayer`).
#[async_trait]
pub trait Replayer: Send + Sync {
    /// What the workload does over the horizon from now under the same load, without the files
    /// committed to the GitOps repository's default branch, and with them.
    async fn replay(&self, request: &ReplayRequest) -> PortResult<Replay>;
}

/// Finds the root cause of an alert.
#[async_trait]
pub trait Diagnoser: Send + Sync {
    fn name(&self) -> &'static str;
    async fn diagnose(&self, request: &DiagnosisRequest) -> PortResult<Diagnosis>;
}
