//! Which workload an alert is about, from its labels and, where they name a pod, a claim or an
//! HPA, from the cluster.

use squad_protocols::{Alert, WorkloadRef};

/// The workload an alert is about: a workload label if the alert names one (`job_name` a
/// Job, as kube-state-metrics labels it, or the CronJob that created it); for an alert about an HPA, its scale target; otherwise
/// the pod's owner as the cluster reports it (pod -> ReplicaSet -> Deployment), the pod being
/// the alert's or, for an alert about a PersistentVolumeClaim, one that mounts it; if the
/// cluster cannot say, the Deployment the pod's name implies.
pub async fn resolve_workload(
    cluster: &dyn squad_runtime::ports::Cluster,
    alert: &Alert,
) -> WorkloadRef {
    let namespace = alert.namespace().unwrap_or("default").to_owned();
    for (label, kind) in [
        ("deployment", "Deployment"),
        ("statefulset", "StatefulSet"),
        ("daemonset", "DaemonSet"),
        ("cronjob", "CronJob"),
        ("job_name", "Job"),
    ] {
        if let Some(name) = alert.label(label) {
            let job = WorkloadRef {
                kind: kind.into(),
                namespace,
                name: name.into(),
            };
            if kind == "Job" {
                return cron_job_of(cluster, job).await;
            }
            return job;
        }
    }
    if let Some(hpa) = alert.label("horizontalpodautoscaler") {
        match cluster.hpas(&namespace).await {
            Ok(hpas) => {
                if let Some((kind, name)) = hpas
                    .iter()
                    .find(|h| h.name == hpa)
                    .and_then(|h| h.target.split_once('/'))
                {
                    return WorkloadRef {
                        kind: kind.into(),
                        namespace,
                        name: name.into(),
                    };
                }
                tracing::warn!(hpa, "no such HPA; taking its name for its Deployment's");
            }
            Err(e) => tracing::warn!(
                hpa,
                "cannot read the HPA ({e}); taking its name for its Deployment's"
            ),
        }
        return WorkloadRef {
            kind: "Deployment".into(),
            namespace,
            name: hpa.into(),
        };
    }
    let mut pod = alert.label("pod").map(str::to_owned);
    if pod.is_none()
        && let Some(claim) = alert.label("persistentvolumeclaim")
    {
        match cluster.pods_mounting(&namespace, claim).await {
            Ok(pods) => pod = pods.into_iter().min(),
            Err(e) => tracing::warn!(claim, "cannot find the pods that mount the claim ({e})"),
        }
    }
    if let Some(pod) = pod.as_deref() {
        match cluster.owner_of(&namespace, pod).await {
            Ok(w) => return w,
            Err(e) => tracing::warn!(
                pod,
                "cannot resolve the pod's owner ({e}); inferring it from the name"
            ),
        }
        return WorkloadRef {
            kind: "Deployment".into(),
            namespace,
            name: pod_to_workload(pod),
        };
    }
    let name = alert
        .label("workload")
        .map_or_else(|| alert.name.clone(), str::to_owned);
    WorkloadRef {
        kind: "Deployment".into(),
        namespace,
        name,
    }
}

/// The CronJob that created `job`, if one did: the CronJob controller names its Jobs
/// `<cronjob>-<scheduled time in minutes since the epoch>`, and the CronJob of that name must
/// exist (the repository declares the CronJob, not its Jobs). Otherwise the Job itself.
async fn cron_job_of(cluster: &dyn squad_runtime::ports::Cluster, job: WorkloadRef) -> WorkloadRef {
    let Some((cron, minutes)) = job.name.rsplit_once('-') else {
        return job;
    };
    // Minutes since the epoch: eight digits from 1990 to 2160.
    if minutes.len() < 8 || !minutes.bytes().all(|b| b.is_ascii_digit()) {
        return job;
    }
    let candidate = WorkloadRef {
        kind: "CronJob".into(),
        namespace: job.namespace.clone(),
        name: cron.into(),
    };
    match cluster.workload(&candidate).await {
        Ok(_) => candidate,
        Err(e) => {
            tracing::debug!(job = %job.name, "no CronJob {cron} ({e}); the Job stands alone");
            job
        }
    }
}

/// `payment-service-7d4b9c-xk2p` -> `payment-service` (Deployment pods: name-<rs hash>-<pod hash>).
pub fn pod_to_workload(pod: &str) -> String {
    let parts: Vec<&str> = pod.rsplitn(3, '-').collect();
    if parts.len() == 3 {
        parts[2].to_owned()
    } else {
        pod.to_owned()
    }
}
