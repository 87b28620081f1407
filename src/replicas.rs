//! `squad serve` among replicas (`[replicas] enabled`): this replica's identity, its Leases in
//! the cluster, and the task that keeps them (see `squad_runtime::shards`).

use std::sync::Arc;
use std::time::Duration;

use squad_config::Settings;
use squad_runtime::shards::{LeaseParams, Ownership, keep_leases};
use squad_runtime::{Clock, IncidentStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The leases this replica keeps, and how to stop keeping them.
pub struct Replicas {
    pub ownership: Arc<Ownership>,
    stop: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Replicas {
    /// Releases every lease (after the crew stopped), so the others take over at once.
    pub async fn stop(self) {
        if let Some((stop, task)) = self.stop {
            let _ = stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// This replica's name: `[replicas] identity`, else `POD_NAME`, else the host name.
fn identity(settings: &Settings) -> String {
    settings
        .replicas
        .identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok())
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("squad-{}", std::process::id()))
}

/// Starts keeping this replica's leases, or, without `[replicas] enabled`, holds everything.
/// Each tenure the Lease server confirms is raised in `store` (the one the replicas share)
/// before this replica acts under it.
pub async fn start(
    settings: &Settings,
    clock: Clock,
    store: Arc<dyn IncidentStore>,
) -> anyhow::Result<Replicas> {
    let r = &settings.replicas;
    if !r.enabled {
        return Ok(Replicas {
            ownership: Ownership::everything(r.shards),
            stop: None,
        });
    }
    if settings.store.url.is_none() {
        anyhow::bail!(
            "replicas.enabled: expected a store the replicas share: [store] url = \"postgres://…\" (or SQUAD_STORE_URL)"
        );
    }
    let kube = crate::diagnose::connect(settings, None, None, None, clock.clone()).await?;
    let namespace = r
        .namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| kube.default_namespace().to_owned());
    let leases = Arc::new(kube.leases(&namespace, &r.lease_prefix));
    let ownership = Ownership::leased(r.shards);
    let params = LeaseParams {
        identity: identity(settings),
        clock,
        duration: Duration::from_secs(r.lease_seconds),
        renew_every: Duration::from_secs(r.renew_seconds),
        margin: Duration::from_secs(r.margin_seconds),
    };
    tracing::info!(
        identity = %params.identity,
        %namespace,
        shards = r.shards,
        "replicas: sharing the work through Leases {}-*",
        r.lease_prefix
    );
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(keep_leases(
        ownership.clone(),
        leases,
        params,
        Some(store),
        rx,
    ));
    Ok(Replicas {
        ownership,
        stop: Some((stop, task)),
    })
}
