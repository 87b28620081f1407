//! `squad diagnose`: the native analyzers against a real cluster, read-only — what squad would
//! conclude about a pod, with every fact it read and every fact it could not read.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use squad_adapters::kubernetes::{KubeCluster, KubeOptions};
use squad_adapters::prometheus::{MetricQueries, Prometheus, PrometheusOptions};
use squad_config::Settings;
use squad_diagnosis::NativeDiagnoser;
use squad_protocols::{Alert, Diagnosis};
use squad_runtime::Clock;
use squad_runtime::ports::{Cluster, Diagnoser, DiagnosisRequest};

/// The diagnoser `[diagnoser] kind` names: the native analyzers on `cluster`, or HolmesGPT
/// (given `kubeconfig` for its kubectl) with the native analyzers beside it.
pub fn diagnoser_for(
    settings: &Settings,
    cluster: Arc<dyn Cluster>,
    clock: Clock,
    kubeconfig: Option<PathBuf>,
) -> Arc<dyn Diagnoser> {
    let native: Arc<dyn Diagnoser> = Arc::new(NativeDiagnoser::new(cluster.clone(), clock));
    match settings.diagnoser.kind {
        squad_config::DiagnoserKind::Native => native,
        // What HolmesGPT's model reads goes through the same redaction as the crew's: the
        // namespace's Secret values and the configured patterns.
        squad_config::DiagnoserKind::Holmes => Arc::new(
            squad_adapters::holmes::HolmesDiagnoser::new(
                settings.holmes.clone(),
                native,
                kubeconfig,
            )
            .with_secret_values_from(cluster)
            .with_redact_patterns(
                settings
                    .llm
                    .as_ref()
                    .map(|l| l.redact_patterns.clone())
                    .unwrap_or_default(),
            ),
        ),
    }
}

/// What to diagnose and where.
#[derive(Debug, Clone)]
pub struct DiagnoseOptions {
    /// The pod's namespace; `None` takes the kubeconfig context's namespace.
    pub namespace: Option<String>,
    pub pod: String,
    /// A workload `(kind, name)` to diagnose instead of a pod (its pods are looked up).
    pub workload: Option<(String, String)>,
    pub container: Option<String>,
    /// Overrides `[kubernetes] kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// Overrides `[kubernetes] context`.
    pub context: Option<String>,
    /// Overrides `[prometheus] url`.
    pub prometheus: Option<String>,
    pub settings: Settings,
}

/// The Kubernetes adapter (with Prometheus when configured) that settings describe.
pub async fn connect(
    settings: &Settings,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    prometheus: Option<String>,
    clock: Clock,
) -> anyhow::Result<KubeCluster> {
    let k = &settings.kubernetes;
    let cluster = KubeCluster::connect(
        &KubeOptions {
            kubeconfig: kubeconfig.or_else(|| k.kubeconfig.clone().map(PathBuf::from)),
            context: context.or_else(|| k.context.clone()),
            max_concurrent: Some(k.max_concurrent_requests),
            read_timeout: Some(Duration::from_secs(k.timeout_seconds)),
            no_timeouts: false,
        },
        clock,
    )
    .await?;
    let p = &settings.prometheus;
    Ok(match prometheus.or_else(|| p.url.clone()) {
        Some(url) => cluster.with_metrics(Arc::new(Prometheus::new(PrometheusOptions {
            url,
            timeout: Some(Duration::from_secs(p.timeout_seconds)),
            queries: MetricQueries::from(p),
        })?)),
        None => cluster,
    })
}

/// Diagnoses one pod. Never writes to the cluster.
pub async fn diagnose(opts: DiagnoseOptions) -> anyhow::Result<(Diagnosis, String)> {
    let clock = Clock::starting_at(chrono::Utc::now());
    let kube = connect(
        &opts.settings,
        opts.kubeconfig,
        opts.context,
        opts.prometheus,
        clock.clone(),
    )
    .await?;
    let namespace = opts
        .namespace
        .clone()
        .unwrap_or_else(|| kube.default_namespace().to_owned());
    let cluster: Arc<dyn Cluster> = Arc::new(kube);
    let mut alert = Alert::firing("ManualDiagnosis").with_label("namespace", &namespace);
    let workload = match &opts.workload {
        Some((kind, name)) => {
            alert = alert.with_label(kind.to_lowercase(), name);
            squad_protocols::WorkloadRef {
                kind: kind.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
            }
        }
        None => {
            alert = alert.with_label("pod", &opts.pod);
            cluster.owner_of(&namespace, &opts.pod).await?
        }
    };
    if let Some(c) = &opts.container {
        alert = alert.with_label("container", c);
    }
    let diagnosis = NativeDiagnoser::new(cluster, clock)
        .diagnose(&DiagnosisRequest {
            alert,
            workload: workload.clone(),
            memory: Vec::new(),
        })
        .await?;
    Ok((diagnosis, workload.to_string()))
}
