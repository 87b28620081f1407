//! What squad runs on: `[backend]`, `[kubernetes]`, `[prometheus]`, `[alertmanager]` and
//! `[store]`.

use crate::ConfigError;
use serde::{Deserialize, Serialize};

/// What the daemon's crew acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// The simulated cluster (served over the Kubernetes API) and a simulated GitHub on a local
    /// git repo, from `scenario`.
    #[default]
    Simulation,
    /// A real cluster through `[kubernetes]` (and `[prometheus]`), with the GitOps repo of
    /// `scenario` simulated locally until the GitHub adapter lands.
    Kubernetes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendSettings {
    pub kind: BackendKind,
    /// A shipped scenario name or a scenario directory.
    pub scenario: String,
    /// Where the daemon keeps its repositories, simulated GitHub and (unless `[store] path`)
    /// the incident store.
    pub data_dir: String,
}

impl Default for BackendSettings {
    fn default() -> Self {
        BackendSettings {
            kind: BackendKind::Simulation,
            scenario: "oomkilled".into(),
            data_dir: "squad-data".into(),
        }
    }
}

/// How to reach the cluster (ignored by `squad simulate`, which serves its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSettings {
    /// A kubeconfig file; unset means `$KUBECONFIG`, `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<String>,
    /// The kubeconfig context; unset means its current context.
    pub context: Option<String>,
    /// API requests in flight at once.
    pub max_concurrent_requests: usize,
    /// Per-request timeout.
    pub timeout_seconds: u64,
}

impl Default for KubernetesSettings {
    fn default() -> Self {
        KubernetesSettings {
            kubeconfig: None,
            context: None,
            max_concurrent_requests: 8,
            timeout_seconds: 30,
        }
    }
}

/// Where memory and traffic history come from: a Prometheus HTTP API, and the PromQL squad asks.
/// Placeholders: `{namespace}`, `{name}` (workload), `{container}`, `{pod_regex}` (the
/// workload's pod names); the volume queries also `{claim}` (a PersistentVolumeClaim's name), the
/// latency query `{route}` (a path the app serves).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusSettings {
    /// Base URL (e.g. `http://prometheus.monitoring:9090`); unset means no history (the
    /// diagnosis says so).
    pub url: Option<String>,
    pub timeout_seconds: u64,
    pub memory_query: String,
    pub traffic_query: String,
    /// CPU used, in cores.
    pub cpu_query: String,
    /// The share of CFS periods the container was throttled in (0 to 1).
    pub throttling_query: String,
    /// Bytes used on the volume bound to claim `{claim}` (as the kubelet measures it).
    pub volume_used_query: String,
    /// The size of the volume bound to claim `{claim}`, in bytes.
    pub volume_capacity_query: String,
    /// The 99th-percentile latency of the app's answers on `{route}` (a path such as the
    /// liveness probe's), in seconds.
    pub latency_query: String,
}

/// The default `cpu_query`: cAdvisor's CPU counter, as a rate, the busiest pod.
pub const CPU_QUERY: &str = r#"max(rate(container_cpu_usage_seconds_total{namespace="{namespace}", pod=~"{pod_regex}", container="{container}"}[5m]))"#;
/// The default `throttling_query`: throttled CFS periods over all periods (CPUThrottlingHigh's
/// ratio), the most throttled pod.
pub const THROTTLING_QUERY: &str = r#"max(increase(container_cpu_cfs_throttled_periods_total{namespace="{namespace}", pod=~"{pod_regex}", container="{container}"}[5m]) / increase(container_cpu_cfs_periods_total{namespace="{namespace}", pod=~"{pod_regex}", container="{container}"}[5m]))"#;

/// The default `latency_query`: the app's own request-duration histogram (the name and labels
/// Prometheus' client libraries and most HTTP middlewares give it), its 99th percentile over the
/// workload's pods.
pub const LATENCY_QUERY: &str = r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{namespace}", pod=~"{pod_regex}", route="{route}"}[5m])))"#;

/// The default `volume_used_query`: the kubelet's volume stats (what KubePersistentVolumeFillingUp
/// reads).
pub const VOLUME_USED_QUERY: &str = r#"max(kubelet_volume_stats_used_bytes{namespace="{namespace}", persistentvolumeclaim="{claim}"})"#;
/// The default `volume_capacity_query`.
pub const VOLUME_CAPACITY_QUERY: &str = r#"max(kubelet_volume_stats_capacity_bytes{namespace="{namespace}", persistentvolumeclaim="{claim}"})"#;

impl Default for PrometheusSettings {
    fn default() -> Self {
        PrometheusSettings {
            url: None,
            timeout_seconds: 30,
            memory_query: r#"max(container_memory_working_set_bytes{namespace="{namespace}", pod=~"{pod_regex}", container="{container}"})"#.into(),
            traffic_query: r#"sum by (route) (rate(http_requests_total{namespace="{namespace}", service="{name}"}[5m]))"#.into(),
            cpu_query: CPU_QUERY.into(),
            throttling_query: THROTTLING_QUERY.into(),
            volume_used_query: VOLUME_USED_QUERY.into(),
            volume_capacity_query: VOLUME_CAPACITY_QUERY.into(),
            latency_query: LATENCY_QUERY.into(),
        }
    }
}

/// Where Ralph asks whether the incident's alert still fires: Alertmanager's API v2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerSettings {
    /// Base URL (e.g. `http://alertmanager.monitoring:9093`); unset means the alert's state is
    /// not read (a verdict then says so, unless Alertmanager's resolved notification came in).
    pub url: Option<String>,
    /// Per-request timeout.
    pub timeout_seconds: u64,
}

impl Default for AlertmanagerSettings {
    fn default() -> Self {
        AlertmanagerSettings {
            url: None,
            timeout_seconds: 10,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// The durable incident store file; unset means `<data dir>/incidents.redb`.
    pub path: Option<String>,
    /// A PostgreSQL store instead (`postgres://user@host:5432/squad?sslmode=require`), shared
    /// by two or more replicas. Its password is better left to `PGPASSWORD`, or the whole URL
    /// to `SQUAD_STORE_URL`.
    pub url: Option<String>,
}

impl StoreSettings {
    pub(crate) fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        if self.path.is_some() {
            return Err(ConfigError::field(
                file,
                "store.url",
                "either store.path (redb) or store.url (PostgreSQL), not both",
            ));
        }
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            return Err(ConfigError::field(
                file,
                "store.url",
                "a PostgreSQL URL such as postgres://squad@db.example:5432/squad",
            ));
        }
        Ok(())
    }
}
