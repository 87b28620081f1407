//! The ports: traits the crew talks to the world through. Adapters implement them (the
//! simulation, kube-rs, octocrab, HolmesGPT, an LLM); agents only ever see these traits.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use squad_protocols::cluster::{
    ClaimInfo, ClusterEvent, CpuHistory, CronJobInfo, HpaInfo, ImageVulnerability,
    NetworkPolicyInfo, NodeInfo, NodePod, PodInfo, RbacRule, Revision, Sample, ServiceInfo,
    StorageClassInfo, VolumeUsage, WorkloadInfo,
};
use squad_protocols::{
    Alert, Diagnosis, FileChange, IssueDetail, IssueRef, IssueSpec, PrActivity, PrRef, PrSpec,
    PrState, Replay, WorkloadRef,
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
    /// The data of a namespace's ConfigMaps as (ConfigMap, key, value), for Worf's credential
    /// scan: what it finds is named by ConfigMap, key, line and kind, never by value.
    async fn config_map_texts(&self, namespace: &str) -> PortResult<Vec<(String, String, String)>>;
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
    /// An issue's state, labels, body and comments. A forge that cannot read them back fails
    /// (not transiently), and callers act as they did before they asked.
    async fn issue(&self, number: u64) -> PortResult<IssueDetail> {
        Err(PortError::Rejected {
            what: format!("read issue #{number}"),
            detail: "this forge cannot read an issue back".into(),
        })
    }
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

/// The labels of an alert that say what it is about, kept from the original alert when Ralph
/// asks whether it still fires: its pod, its workload (as kube-state-metrics labels them), its
/// container, claim or HPA.
pub const ALERT_SCOPE_LABELS: [&str; 10] = [
    "pod",
    "deployment",
    "statefulset",
    "daemonset",
    "cronjob",
    "job_name",
    "workload",
    "container",
    "persistentvolumeclaim",
    "horizontalpodautoscaler",
];

/// Labels that name the workload itself; an active alert whose label names it is about it.
const WORKLOAD_LABELS: [&str; 5] = [
    "deployment",
    "statefulset",
    "daemonset",
    "cronjob",
    "workload",
];

/// Which alerts to look for: the original alert's name, in its namespace, scoped to the workload
/// as it is now. After a fix the original alert's pod is usually gone (the rollout replaced it),
/// so an alert is the original one again when its pod is one of the workload's current pods, or
/// when it names the workload, or the same claim or HPA the original named.
///
/// ```
/// use squad_protocols::{Alert, WorkloadRef};
/// use squad_runtime::ports::AlertQuery;
/// let original = Alert::firing("KubePodCrashLooping")
///     .with_label("namespace", "shop")
///     .with_label("pod", "web-5d9f-old11")
///     .with_label("container", "app");
/// let query = AlertQuery::of(
///     &original,
///     &WorkloadRef::deployment("shop", "web"),
///     vec!["web-7c4b-new22".into()],
/// );
/// let now = Alert::firing("KubePodCrashLooping")
///     .with_label("namespace", "shop")
///     .with_label("pod", "web-7c4b-new22")
///     .with_label("container", "app");
/// assert!(query.matches(&now.labels));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertQuery {
    /// The alert's name (its `alertname` label).
    pub name: String,
    pub namespace: String,
    /// The original alert's labels among [`ALERT_SCOPE_LABELS`].
    pub labels: BTreeMap<String, String>,
    /// The workload the incident is about.
    pub workload: WorkloadRef,
    /// The names of the workload's current pods.
    pub pods: Vec<String>,
}

impl AlertQuery {
    /// The query for `alert` (the incident's original alert) about `workload`, whose pods are
    /// now `pods`.
    pub fn of(alert: &Alert, workload: &WorkloadRef, pods: Vec<String>) -> Self {
        AlertQuery {
            name: alert.name.clone(),
            namespace: alert.namespace().unwrap_or(&workload.namespace).to_owned(),
            labels: alert
                .labels
                .iter()
                .filter(|(k, _)| ALERT_SCOPE_LABELS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            workload: workload.clone(),
            pods,
        }
    }

    /// Whether an active alert with these labels is the original alert, in the workload's
    /// scope: the same name and namespace; the same container when both name one; and about a
    /// current pod of the workload, the workload itself (a CronJob's Jobs included), or the
    /// same claim or HPA as the original.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let label = |k: &str| labels.get(k).map(String::as_str);
        let original = |k: &str| self.labels.get(k).map(String::as_str);
        if label("alertname") != Some(self.name.as_str())
            || label("namespace") != Some(self.namespace.as_str())
        {
            return false;
        }
        if let (Some(was), Some(is)) = (original("container"), label("container"))
            && was != is
        {
            return false;
        }
        let name = self.workload.name.as_str();
        let of_pod = label("pod").is_some_and(|p| self.pods.iter().any(|q| q == p));
        let of_workload = WORKLOAD_LABELS.iter().any(|k| label(k) == Some(name));
        // A Job is the workload, or one of its CronJob's: `<cronjob>-<minutes since the epoch>`.
        let of_job = label("job_name").is_some_and(|job| {
            job == name
                || (self.workload.kind == "CronJob"
                    && job
                        .strip_prefix(name)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
        });
        let same_object = ["persistentvolumeclaim", "horizontalpodautoscaler"]
            .iter()
            .any(|k| original(k).is_some_and(|was| label(k) == Some(was)));
        of_pod || of_workload || of_job || same_object
    }
}

/// An alert the alerting system holds active (firing, neither silenced nor inhibited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveAlert {
    pub labels: BTreeMap<String, String>,
    pub starts_at: Option<DateTime<Utc>>,
}

impl ActiveAlert {
    /// What the alert is about, as `pod web-7c4b-new22` (its first subject label), and since
    /// when: `for pod web-7c4b-new22 since 2026-11-23T19:21:20Z`.
    pub fn describe(&self) -> String {
        let subject = ["pod", "container"]
            .iter()
            .chain(WORKLOAD_LABELS.iter())
            .chain(
                [
                    "job_name",
                    "persistentvolumeclaim",
                    "horizontalpodautoscaler",
                ]
                .iter(),
            )
            .find_map(|k| self.labels.get(*k).map(|v| format!(" for {k} {v}")))
            .unwrap_or_default();
        let since = self
            .starts_at
            .map(|t| {
                format!(
                    " since {}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )
            })
            .unwrap_or_default();
        format!("{subject}{since}").trim_start().to_owned()
    }
}

/// The alerting system (Alertmanager): which alerts still fire.
#[async_trait]
pub trait Alerts: Send + Sync {
    /// The active alerts (firing, not silenced, not inhibited) that match `query`
    /// ([`AlertQuery::matches`]).
    async fn firing(&self, query: &AlertQuery) -> PortResult<Vec<ActiveAlert>>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn crashloop_query(pods: &[&str]) -> AlertQuery {
        let original = Alert::firing("KubePodCrashLooping")
            .with_label("namespace", "shop")
            .with_label("pod", "web-5d9f7c-old11")
            .with_label("container", "app")
            .with_label("severity", "warning")
            .with_label("job", "kube-state-metrics");
        AlertQuery::of(
            &original,
            &WorkloadRef::deployment("shop", "web"),
            pods.iter().map(|p| (*p).to_owned()).collect(),
        )
    }

    #[test]
    fn the_query_keeps_only_the_labels_that_scope_the_alert() {
        let q = crashloop_query(&[]);
        assert_eq!(q.name, "KubePodCrashLooping");
        assert_eq!(q.namespace, "shop");
        assert_eq!(
            q.labels,
            labels(&[("container", "app"), ("pod", "web-5d9f7c-old11")])
        );
    }

    #[test]
    fn an_alert_on_a_current_pod_of_the_workload_is_the_original_one() {
        let q = crashloop_query(&["web-7c4b2d-new22", "web-7c4b2d-new33"]);
        assert!(q.matches(&labels(&[
            ("alertname", "KubePodCrashLooping"),
            ("namespace", "shop"),
            ("pod", "web-7c4b2d-new33"),
            ("container", "app"),
        ])));
    }

    /// After the fix the original pod is gone: an alert still held for it is stale, not the
    /// workload failing now.
    #[test]
    fn an_alert_on_a_pod_the_workload_no_longer_has_does_not_match() {
        let q = crashloop_query(&["web-7c4b2d-new22"]);
        assert!(!q.matches(&labels(&[
            ("alertname", "KubePodCrashLooping"),
            ("namespace", "shop"),
            ("pod", "web-5d9f7c-old11"),
            ("container", "app"),
        ])));
    }

    #[test]
    fn another_name_namespace_container_or_workload_does_not_match() {
        let q = crashloop_query(&["web-7c4b2d-new22"]);
        let base = [
            ("alertname", "KubePodCrashLooping"),
            ("namespace", "shop"),
            ("pod", "web-7c4b2d-new22"),
            ("container", "app"),
        ];
        assert!(q.matches(&labels(&base)));
        for (i, other) in [
            ("alertname", "KubePodNotReady"),
            ("namespace", "staging"),
            ("pod", "api-6f8d9b-aaa11"),
            ("container", "istio-proxy"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut l = base;
            l[i] = other;
            assert!(!q.matches(&labels(&l)), "{other:?} matched");
        }
        // A container the original did not name does not rule an alert out.
        assert!(q.matches(&labels(&base[..3])));
    }

    #[test]
    fn an_alert_naming_the_workload_matches_whatever_its_pod() {
        let original = Alert::firing("KubeDeploymentReplicasMismatch")
            .with_label("namespace", "shop")
            .with_label("deployment", "web");
        let q = AlertQuery::of(&original, &WorkloadRef::deployment("shop", "web"), vec![]);
        assert!(q.matches(&labels(&[
            ("alertname", "KubeDeploymentReplicasMismatch"),
            ("namespace", "shop"),
            ("deployment", "web"),
        ])));
        assert!(!q.matches(&labels(&[
            ("alertname", "KubeDeploymentReplicasMismatch"),
            ("namespace", "shop"),
            ("deployment", "web-canary"),
        ])));
    }

    #[test]
    fn a_later_job_of_the_cronjob_matches_and_another_cronjobs_does_not() {
        let original = Alert::firing("KubeJobFailed")
            .with_label("namespace", "batch")
            .with_label("job_name", "report-29361600");
        let cron = WorkloadRef {
            kind: "CronJob".into(),
            namespace: "batch".into(),
            name: "report".into(),
        };
        let q = AlertQuery::of(&original, &cron, vec![]);
        let job = |name: &str| {
            labels(&[
                ("alertname", "KubeJobFailed"),
                ("namespace", "batch"),
                ("job_name", name),
            ])
        };
        assert!(q.matches(&job("report-29361660")));
        assert!(!q.matches(&job("report-weekly-29361660")));
        assert!(!q.matches(&job("reporter")));
    }

    #[test]
    fn a_claim_or_hpa_alert_matches_the_same_object_only() {
        let original = Alert::firing("KubePersistentVolumeFillingUp")
            .with_label("namespace", "db")
            .with_label("persistentvolumeclaim", "data-pg-0");
        let q = AlertQuery::of(
            &original,
            &WorkloadRef {
                kind: "StatefulSet".into(),
                namespace: "db".into(),
                name: "pg".into(),
            },
            vec!["pg-0".into()],
        );
        let claim = |c: &str| {
            labels(&[
                ("alertname", "KubePersistentVolumeFillingUp"),
                ("namespace", "db"),
                ("persistentvolumeclaim", c),
            ])
        };
        assert!(q.matches(&claim("data-pg-0")));
        assert!(!q.matches(&claim("wal-pg-0")));
    }

    #[test]
    fn an_active_alert_says_what_it_is_about_and_since_when() {
        let a = ActiveAlert {
            labels: labels(&[
                ("alertname", "KubePodCrashLooping"),
                ("container", "app"),
                ("pod", "web-7c4b2d-new22"),
            ]),
            starts_at: Some("2026-11-23T19:21:20.953Z".parse().unwrap()),
        };
        assert_eq!(
            a.describe(),
            "for pod web-7c4b2d-new22 since 2026-11-23T19:21:20Z"
        );
    }
}
