//! Simulation scenarios: what the simulated cluster holds, how its workload behaves under load,
//! and the GitOps repo and application source that come with it.
//!
//! A scenario is a directory: `scenario.toml`, the GitOps tree in `manifests/` (the deploy that is
//! live now) and earlier deploys under `history/`, and the app's source under `app/`. The shipped
//! scenarios are embedded in the binary; `squad simulate ./path/to/dir` loads one from disk.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use squad_protocols::{Alert, Quantity, WorkloadRef};

use squad_config::ConfigError;

mod app;
mod validate;
mod versions;

pub use app::{AppSpec, Dependency};
pub use versions::{Version, tag_of};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_scenarios.rs"));
}

/// A loaded, validated scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// The virtual clock's start.
    pub now: DateTime<Utc>,
    pub alert: AlertSpec,
    pub workload: WorkloadSpec,
    pub app: AppSpec,
    pub load: LoadModel,
    pub image: ImageSpec,
    #[serde(default)]
    pub logs: LogSpec,
    /// Deploys, oldest first; the last one is what runs now.
    pub history: Vec<Deploy>,
    /// Secrets that exist in the namespace besides those the GitOps repo declares: name -> key
    /// names (never values). Without `[secrets]` the world does not model Secrets and every
    /// reference to one resolves; with it (even empty), a reference to any other is broken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, Vec<String>>>,
    /// ConfigMaps that exist in the namespace besides those the GitOps repo declares (cluster-only
    /// objects): name -> key names. Without `[configmaps]` every reference to one resolves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configmaps: Option<BTreeMap<String, Vec<String>>>,
    /// Values of Secret keys (`[secret_values.<secret>] <key> = "..."`); keys left out hold the
    /// value `simulated-secret-value`. A Secret `[secrets]` does not list exists with the keys
    /// given here.
    #[serde(default)]
    pub secret_values: BTreeMap<String, BTreeMap<String, String>>,
    /// More events the kubelet records about each pod (a probe failure, a mount error), besides
    /// the starts, kills and back-offs the load model produces.
    #[serde(default)]
    pub pod_events: Vec<EventSpec>,
    /// The container registry the cluster pulls from; without one, every image a deploy of the
    /// history names can be pulled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<Registry>,
    /// The cluster's StorageClasses. Without `[[storage_classes]]` the world does not model
    /// storage and every claim binds; with them, a claim binds only through one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_classes: Option<Vec<StorageClassSpec>>,
    /// ResourceQuotas in the workload's namespace (cluster-only objects, the platform's): the
    /// apiserver admits a pod only within each of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_quotas: Vec<QuotaSpec>,
    /// LimitRanges in the workload's namespace: per-container `max` and `min`, checked when a
    /// pod is created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limit_ranges: Vec<LimitRangeSpec>,
    /// `[namespaces.<name>]`: what the cluster's Namespaces carry besides what the GitOps repo
    /// declares (labels the platform team applies: `pod-security.kubernetes.io/enforce`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespaces: BTreeMap<String, NamespaceSpec>,
    /// The cluster's nodes. Without `[[nodes]]` the cluster has one node, `workload.node`, with
    /// 3800m CPU and 15564Mi memory allocatable and nothing else on it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeSpec>,
    /// How the incident must end, for the test that runs every shipped scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectation>,
    /// Every other file of the scenario, by path relative to its directory.
    #[serde(skip)]
    pub files: BTreeMap<String, String>,
    /// Each declared version's application and load model, resolved (see `versions.rs`).
    #[serde(skip)]
    pub versions: BTreeMap<String, std::sync::Arc<Version>>,
}

/// `[registry]`: which image references exist. A pod whose image is not among them never
/// starts: the kubelet reports `ErrImagePull`, then backs off (`ImagePullBackOff`), and a
/// rollout to it stalls while the previous ReplicaSet keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Full references (`ghcr.io/acme/app:1.2.3`) the registry holds.
    pub images: Vec<String>,
    /// Repositories (`ghcr.io/acme`, a prefix of the reference up to a `/`) that refuse
    /// anonymous pulls: a pod pulls their images only when its `imagePullSecrets` names a
    /// Secret the namespace has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private: Vec<String>,
}

impl Registry {
    pub fn holds(&self, image: &str) -> bool {
        self.images.iter().any(|i| i == image)
    }

    /// Whether `image` lives in a repository that refuses anonymous pulls.
    pub fn is_private(&self, image: &str) -> bool {
        self.private.iter().any(|p| {
            let p = p.trim_end_matches('/');
            image
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/') || rest.starts_with(':'))
        })
    }
}

/// `[[storage_classes]]`: a StorageClass of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageClassSpec {
    pub name: String,
    pub provisioner: String,
    /// The default class (claims that name none get it).
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub allow_volume_expansion: bool,
}

/// `[[resource_quotas]]`: a ResourceQuota of the workload's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSpec {
    pub name: String,
    /// `spec.hard`: `pods`, `requests.cpu`/`cpu`, `requests.memory`/`memory`, `limits.cpu`,
    /// `limits.memory`.
    pub hard: BTreeMap<String, Quantity>,
    /// What the namespace's other pods already use of it (the workload's own pods are counted
    /// by the world).
    #[serde(default)]
    pub used_by_others: BTreeMap<String, Quantity>,
}

/// `[namespaces.<name>]`: a Namespace's cluster-only metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSpec {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When the labels were applied, in hours before `now` (unset: always there). Admission
    /// judges a pod when it is created: pods created before keep running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labelled_hours_ago: Option<f64>,
}

/// `[[limit_ranges]]`: a LimitRange of the workload's namespace, its `type: Container` limits.
/// As the API defaults it, a missing `default` is `max`, and a missing `default_request` is
/// `default`, else `min`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRangeSpec {
    pub name: String,
    /// The most a container may set as its limit, per resource (`cpu`, `memory`).
    #[serde(default)]
    pub max: BTreeMap<String, Quantity>,
    /// The least a container may request, per resource.
    #[serde(default)]
    pub min: BTreeMap<String, Quantity>,
    /// The limit a container that sets none gets.
    #[serde(default)]
    pub default: BTreeMap<String, Quantity>,
    /// The request a container that sets none gets.
    #[serde(default)]
    pub default_request: BTreeMap<String, Quantity>,
}

impl LimitRangeSpec {
    /// `default` and `default_request` as the API server defaults them.
    pub fn defaults(&self) -> (BTreeMap<String, Quantity>, BTreeMap<String, Quantity>) {
        let mut limit = self.default.clone();
        for (k, v) in &self.max {
            limit.entry(k.clone()).or_insert(*v);
        }
        let mut request = self.default_request.clone();
        for (k, v) in limit.iter().chain(&self.min) {
            request.entry(k.clone()).or_insert(*v);
        }
        (limit, request)
    }
}

/// `[[nodes]]`: one node of the cluster, as its kubelet registers it. The scheduler places the
/// workload's pods on these by their requests, nodeSelector, required node affinity and
/// tolerations, and says why not in the real scheduler's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    /// Allocatable CPU (`3800m`).
    pub cpu: Quantity,
    /// Allocatable memory (`15564Mi`).
    pub memory: Quantity,
    /// Allocatable pods.
    #[serde(default = "default_max_pods")]
    pub pods: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<TaintSpec>,
    /// Cordoned (`kubectl cordon`): nothing new is scheduled there.
    #[serde(default)]
    pub unschedulable: bool,
    /// What the other workloads' pods on the node already request.
    #[serde(default)]
    pub requested: Requested,
    /// `[[nodes.other_pods]]`: other teams' pods on the node, each with the memory it uses (their
    /// workloads are not in the GitOps repo). Their requests count for the scheduler beside
    /// `requested`; their working sets count for the node's memory, and the kubelet may evict
    /// them under memory pressure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_pods: Vec<NodePodSpec>,
    /// How many minutes before `now` the machine stopped answering (at most 1440, a day): its
    /// kubelet posts no status after, the node controller marks it `Unknown` and
    /// taints it unreachable 40 s later, and deletes its pods once their toleration of that
    /// taint runs out (300 s unless the pod says otherwise; a DaemonSet's pods stay). Relative
    /// to `now`, so a served cluster re-anchored at the wall clock keeps the story.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_minutes_ago: Option<u32>,
    /// `[nodes.pod_network]`: the node's network plugin and how many pod addresses it can still
    /// give (absent: as many as pods need).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_network: Option<PodNetwork>,
}

/// A node's pod network, as its CNI plugin has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodNetwork {
    /// The plugin's `type` (`aws-cni`, `calico`, `flannel`, …): `aws-cni` hands out the
    /// addresses of the node's network interfaces, the others a range of the node's pod CIDR.
    pub plugin: String,
    /// How many more pod addresses it can give: the pods already there hold theirs; each new
    /// pod placed there takes one, and a pod that finds none never gets its sandbox.
    pub free_ips: u32,
}

/// A pod of another team's workload on a node: what it requests, its priority and the memory
/// its one container uses, from `started` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodePodSpec {
    pub name: String,
    pub namespace: String,
    /// The workload that owns it, `Kind/name` (`Deployment/etl-loader`, `DaemonSet/fluent-bit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub container: String,
    pub image: String,
    /// Its container's requests (`{ cpu = "500m", memory = "1Gi" }`; none: BestEffort).
    #[serde(default)]
    pub requests: PodResources,
    /// Its container's limits (`{ memory = "2Gi" }`): its working set stays below the memory one.
    #[serde(default)]
    pub limits: PodResources,
    /// Its PriorityClass, and the priority the apiserver resolved from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class: Option<String>,
    #[serde(default)]
    pub priority: i32,
    /// When its container started.
    pub started: DateTime<Utc>,
    /// Its working set when it started.
    pub memory: Quantity,
    /// How much its working set grows each hour after that (`{ memory = "1100Mi" }`: a cache
    /// filling, a leak).
    #[serde(default)]
    pub growth_per_hour: PodResources,
}

/// CPU and memory quantities of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
}

impl NodePodSpec {
    /// Its working set at `t`, in bytes (0 before it started).
    pub fn working_set(&self, t: DateTime<Utc>) -> f64 {
        if t < self.started {
            return 0.0;
        }
        let hours = (t - self.started).num_seconds() as f64 / 3600.0;
        let grown = self.memory.bytes() as f64
            + self
                .growth_per_hour
                .memory
                .map_or(0.0, |g| g.bytes() as f64)
                * hours;
        self.limits
            .memory
            .map_or(grown, |l| grown.min(l.bytes() as f64))
    }
}

fn default_max_pods() -> u32 {
    110
}

/// A node taint: `effect` is `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaintSpec {
    pub key: String,
    #[serde(default)]
    pub value: String,
    pub effect: String,
}

/// Requests already placed on a node by other pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requested {
    #[serde(default)]
    pub cpu: Option<Quantity>,
    #[serde(default)]
    pub memory: Option<Quantity>,
    #[serde(default)]
    pub pods: u32,
}

/// `[expect]`: what the crew must conclude and where the incident must end when the simulated
/// human approves whatever PR is opened (`squad simulate <scenario> --approve`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The diagnosis's root cause (a failure family's name, or `unknown`).
    pub root_cause: String,
    /// `resolved` or `escalated`.
    pub state: String,
    /// Whether B'Elanna opens a remediation PR.
    pub pr: bool,
    /// For an escalation a PR is the wrong tool for: words of the owner its reason names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    pub name: String,
    pub severity: String,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub container: String,
    /// Path of the workload's manifest in the GitOps repo (in a Kustomize repository, the base
    /// file that declares it).
    pub manifest: String,
    /// A Kustomize repository: the overlay directory the environment syncs, rendered with
    /// `kubectl kustomize` at each commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<String>,
    /// A Helm repository: the Argo CD Application (a file of the repository) that deploys the
    /// chart to the workload's namespace, rendered with `helm template` at each commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<String>,
    pub pods: Vec<String>,
    pub node: String,
}

/// How the workload behaves: memory demand and traffic over time, and what it needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadModel {
    pub baseline_rps: f64,
    #[serde(default)]
    pub surge_percent: f64,
    #[serde(default)]
    pub surge_started_hours_ago: f64,
    /// The day's swing of traffic around the baseline, in percent (0: flat): traffic is
    /// `× (1 + swing/100 × cos(2π (hours since now + daily_peak_hours_ago) / 24))`.
    #[serde(default)]
    pub daily_swing_percent: f64,
    /// How many hours before `now` the day's traffic last peaked (fractions allowed): the swing
    /// keeps its place in the story when a served cluster re-anchors `now` at the wall clock.
    #[serde(default)]
    pub daily_peak_hours_ago: f64,
    pub base_mib: f64,
    pub per_rps_mib: f64,
    #[serde(default)]
    pub leak_mib_per_hour: f64,
    /// Environment variables the container exits without (exit 1 at start-up).
    #[serde(default)]
    pub required_env: Vec<String>,
    /// The log line the app prints when one is missing; `{var}` is replaced.
    #[serde(default)]
    pub missing_env_log: Option<String>,
    /// `[load.versions."<tag>"]`: the fields above as the version of that image tag has them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    pub name: String,
    pub base: String,
    /// The image config's `User` (the Dockerfile's last `USER`): `""` (none: root), `"0"`,
    /// `"65532"`, `"app"`, `"1000:1000"`. The kubelet checks it against `runAsNonRoot` for the
    /// containers of this image's repository; `None`: not modelled, every check passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub vulnerabilities: Vec<Vulnerability>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vulnerability {
    pub id: String,
    pub package: String,
    pub installed: String,
    pub fixed: String,
    pub severity: String,
    pub title: String,
}

/// An event about a pod: `kind` is `Normal` or `Warning`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub kind: String,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    #[serde(default)]
    pub current: Vec<String>,
    #[serde(default)]
    pub previous: Vec<String>,
}

/// One deploy in the GitOps repo's history: the tree under `dir`, committed `hours_ago`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    pub dir: String,
    pub hours_ago: f64,
    pub message: String,
}

impl Scenario {
    /// Names of the scenarios shipped in the binary.
    pub fn embedded_names() -> Vec<String> {
        let mut names: Vec<String> = embedded::FILES
            .iter()
            .filter_map(|(p, _)| p.strip_suffix("/scenario.toml"))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    /// Loads a shipped scenario by name.
    pub fn embedded(name: &str) -> Result<Scenario, ConfigError> {
        let prefix = format!("{name}/");
        let files: BTreeMap<String, String> = embedded::FILES
            .iter()
            .filter_map(|(p, c)| {
                p.strip_prefix(&prefix)
                    .map(|rel| (rel.to_owned(), (*c).to_owned()))
            })
            .collect();
        if !files.contains_key("scenario.toml") {
            return Err(ConfigError::UnknownScenario {
                name: name.into(),
                available: Self::embedded_names().join(", "),
            });
        }
        Self::from_files(&format!("scenario {name}"), files)
    }

    /// Loads a scenario from a directory on disk.
    pub fn from_dir(dir: &Path) -> Result<Scenario, ConfigError> {
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d).map_err(|source| ConfigError::Io {
                path: d.display().to_string(),
                source,
            })?;
            for entry in entries {
                let path = entry
                    .map_err(|source| ConfigError::Io {
                        path: d.display().to_string(),
                        source,
                    })?
                    .path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let text =
                        std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
                            path: path.display().to_string(),
                            source,
                        })?;
                    let rel = path
                        .strip_prefix(dir)
                        .unwrap_or(&path)
                        .to_string_lossy()
                        .replace('\\', "/");
                    files.insert(rel, text);
                }
            }
        }
        Self::from_files(&dir.display().to_string(), files)
    }

    /// Resolves `name_or_path`: a shipped scenario name, or a directory holding `scenario.toml`.
    pub fn load(name_or_path: &str) -> Result<Scenario, ConfigError> {
        let path = Path::new(name_or_path);
        if path.join("scenario.toml").is_file() {
            Self::from_dir(path)
        } else {
            Self::embedded(name_or_path)
        }
    }

    /// Loads a scenario from the text of its `scenario.toml` and the directory's other files (by
    /// path relative to it), as [`Scenario::from_dir`] reads them from disk; `origin` names the
    /// scenario in errors. For text that does not come from a directory (the fuzz targets).
    pub fn from_toml_str(
        origin: &str,
        text: &str,
        mut files: BTreeMap<String, String>,
    ) -> Result<Scenario, ConfigError> {
        files.insert("scenario.toml".to_owned(), text.to_owned());
        Self::from_files(origin, files)
    }

    pub(crate) fn from_files(
        origin: &str,
        mut files: BTreeMap<String, String>,
    ) -> Result<Scenario, ConfigError> {
        let file = format!("{origin}/scenario.toml");
        let text = files
            .remove("scenario.toml")
            .ok_or_else(|| ConfigError::Invalid {
                file: file.clone(),
                message: "missing: a scenario directory must hold scenario.toml".into(),
            })?;
        let mut scenario: Scenario = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            file: file.clone(),
            message: e.to_string(),
        })?;
        scenario.files = files;
        scenario.resolve_versions().map_err(|(field, why)| {
            ConfigError::field(&file, &field, format!("fields of [app] or [load]: {why}"))
        })?;
        scenario.validate(&file)?;
        Ok(scenario)
    }

    /// The manifests of the deploy that runs now, by repo path.
    pub fn live_manifests(&self) -> BTreeMap<String, String> {
        self.history
            .last()
            .map(|d| self.tree(&d.dir))
            .unwrap_or_default()
    }

    /// The files of one deploy's tree, by repo path.
    pub fn tree(&self, dir: &str) -> BTreeMap<String, String> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.files
            .iter()
            .filter_map(|(p, c)| {
                p.strip_prefix(&prefix)
                    .map(|rel| (rel.to_owned(), c.clone()))
            })
            .collect()
    }

    /// The application source files, by path under `app/`.
    pub fn app_files(&self) -> BTreeMap<String, String> {
        self.tree("app")
    }

    /// The cluster's nodes: `[[nodes]]`, else the one node `workload.node`.
    pub fn cluster_nodes(&self) -> Vec<NodeSpec> {
        if !self.nodes.is_empty() {
            return self.nodes.clone();
        }
        vec![NodeSpec {
            name: self.workload.node.clone(),
            cpu: Quantity::from_milli(3800),
            memory: Quantity::mebibytes(15564),
            pods: default_max_pods(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            unschedulable: false,
            requested: Requested::default(),
            other_pods: Vec::new(),
            unreachable_minutes_ago: None,
            pod_network: None,
        }]
    }

    pub fn workload_ref(&self) -> WorkloadRef {
        WorkloadRef {
            kind: self.workload.kind.clone(),
            namespace: self.workload.namespace.clone(),
            name: self.workload.name.clone(),
        }
    }

    /// The alert that opens the scenario's incident, as Alertmanager would send it.
    pub fn alert(&self) -> Alert {
        let mut alert = Alert::firing(self.alert.name.clone());
        for (k, v) in &self.alert.labels {
            alert = alert.with_label(k.clone(), v.clone());
        }
        alert = alert
            .with_label("severity", self.alert.severity.clone())
            .with_annotation("summary", self.alert.summary.clone());
        alert.starts_at = Some(self.now);
        alert
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_shipped_scenario_loads_and_validates() {
        let names = Scenario::embedded_names();
        assert!(names.contains(&"oomkilled".to_string()), "{names:?}");
        for n in names {
            let s = Scenario::embedded(&n).unwrap();
            assert_eq!(s.name, n);
        }
    }

    #[test]
    fn oomkilled_describes_payment_service() {
        let s = Scenario::embedded("oomkilled").unwrap();
        assert_eq!(s.workload.name, "payment-service");
        assert!(
            s.live_manifests()
                .contains_key("k8s/production/payment-service/deployment.yaml")
        );
        assert_eq!(s.alert().namespace(), Some("production"));
    }

    #[test]
    fn unknown_scenario_lists_the_available_ones() {
        let err = Scenario::embedded("nope").unwrap_err().to_string();
        assert!(
            err.contains("unknown scenario \"nope\"") && err.contains("oomkilled"),
            "{err}"
        );
    }

    #[test]
    fn malformed_scenario_file_names_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("scenario.toml"),
            "name = \"x\"\nnow = \"yesterday\"\n",
        )
        .unwrap();
        let err = Scenario::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("scenario.toml"), "{err}");
        assert!(err.contains("now") || err.contains("description"), "{err}");
    }

    #[test]
    fn a_label_or_swing_the_cluster_would_refuse_is_rejected_by_name() {
        let reject = |name: &str, edit: &dyn Fn(&mut Scenario)| {
            let mut s = Scenario::embedded(name).unwrap();
            edit(&mut s);
            let mut files = s.files.clone();
            files.insert("scenario.toml".into(), toml::to_string(&s).unwrap());
            Scenario::from_files("x", files).unwrap_err().to_string()
        };
        let err = reject("pod-security", &|s| {
            s.namespaces
                .get_mut("storefront")
                .unwrap()
                .labels
                .insert("pod-security.kubernetes.io/enforce".into(), "strict".into());
        });
        assert!(
            err.contains("namespaces.storefront.labels.\"pod-security.kubernetes.io/enforce\"")
                && err.contains("privileged, baseline or restricted"),
            "{err}"
        );
        let err = reject("pod-security", &|s| {
            s.namespaces.get_mut("storefront").unwrap().labels.insert(
                "pod-security.kubernetes.io/enforce-version".into(),
                "1.29".into(),
            );
        });
        assert!(err.contains("enforce-version"), "{err}");
        let err = reject("oomkilled", &|s| s.load.daily_swing_percent = 120.0);
        assert!(err.contains("load.daily_swing_percent"), "{err}");
        let err = reject("oomkilled", &|s| s.load.daily_peak_hours_ago = 24.0);
        assert!(err.contains("load.daily_peak_hours_ago"), "{err}");
    }

    #[test]
    fn an_unknown_field_is_rejected_by_name() {
        let s = Scenario::embedded("config-ref").unwrap();
        let text = toml::to_string(&s)
            .unwrap()
            .replace("[configmaps]", "[configmap]");
        let mut files = s.files.clone();
        files.insert("scenario.toml".into(), text);
        let err = Scenario::from_files("x", files).unwrap_err().to_string();
        assert!(err.contains("unknown field `configmap`"), "{err}");
    }

    #[test]
    fn scenario_whose_manifest_is_missing_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let s = Scenario::embedded("oomkilled").unwrap();
        let text = toml::to_string(&s).unwrap().replace(
            "k8s/production/payment-service/deployment.yaml",
            "nope.yaml",
        );
        std::fs::write(dir.path().join("scenario.toml"), text).unwrap();
        for (p, c) in &s.files {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, c).unwrap();
        }
        let err = Scenario::from_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("workload.manifest") && err.contains("nope.yaml"),
            "{err}"
        );
    }
}
