//! squad against a real kube-apiserver (1.20.2 + etcd, from `squad_testkit::apiserver`), loaded
//! with the simulated cluster's objects (`squad_testkit::seed`) and a fake kubelet serving the
//! model's container logs (`squad_testkit::kubelet`):
//!
//! - the Kubernetes adapter reads the same facts from the real apiserver as from the simulated
//!   one, and kubectl prints the same rows from both (so the simulated server is checked against
//!   the real thing, not against itself);
//! - every object the simulated server serves is, field for field, what the real apiserver
//!   serves once loaded with it (its defaults, canonical quantities, omitted zeros), but for a
//!   short allow-list of intended differences;
//! - the crew handles an incident reading the real apiserver, and a missing permission on
//!   `pods/log` (real RBAC) degrades its diagnosis instead of failing it.
//!
//! Each test skips with a message when no kube-apiserver is built, unless `CI=true`. The tests
//! that compare the two servers hold the model's clock still at the scenario's alert
//! ([`Twin::still`]), so what it serves stays what was seeded however slowly a loaded machine
//! seeds; the crew's tests run it in real time ([`Twin::start`]: the runtime is not paused, the
//! apiserver, etcd and kubectl are real processes).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::{Value, json};
use squad::{Squad, settled};
use squad_adapters::git::GitRepo;
use squad_adapters::kubernetes::{KubeCluster, KubeOptions};
use squad_adapters::prometheus::{MetricQueries, Prometheus, PrometheusOptions};
use squad_config::Settings;
use squad_gitops::objects;
use squad_protocols::cluster::{ClusterEvent, PodInfo, Revision};
use squad_protocols::{EventKind, IncidentState, RootCause};
use squad_runtime::Clock;
use squad_runtime::ports::{Cluster, PortError, PortResult};
use squad_sim::Scenario;
use squad_sim::SimBackends;
use squad_testkit::apiserver::{self, Options, RealApiserver};
use squad_testkit::kubelet::FakeKubelet;
use squad_testkit::seed::{self, Seeded};

mod crew;
mod facts;
mod printed;
mod rbac;
mod served;

use facts::Differences;
use printed::{kubectl, kubectl_ok};

/// Generous: the crew has no long timers before its PR, but four apiservers may share 2 cores.
const CREW_WITHIN: Duration = Duration::from_secs(300);

/// One scenario served twice: by the simulated API server and by a real apiserver seeded from
/// the same model.
struct Twin {
    scenario: Arc<Scenario>,
    clock: Clock,
    /// The model (`sim`), its API server (`api`), the simulated forge and app repo.
    backends: SimBackends,
    kubelet: FakeKubelet,
    seeded: Seeded,
    /// The model's pods when they were seeded, to tell a real difference from the model moving on.
    pods_at_seed: Vec<PodInfo>,
    /// The served objects as seeded: an object the model has changed since (an event counted
    /// again on the model's clock, which runs on) is not compared.
    world_at_seed: Arc<squad_sim::cluster::World>,
    real: RealApiserver,
    dir: tempfile::TempDir,
}

impl Twin {
    /// Starts a real apiserver, then the model (its clock starts here), and seeds the first
    /// from the second. `None` when the test is skipped.
    async fn start(test: &str, scenario: &str, options: Options) -> Option<Twin> {
        Twin::with_clock(test, scenario, options, Clock::starting_at).await
    }

    /// Like [`Twin::start`], with the model's clock standing still at the scenario's alert: what
    /// the model serves stays what was seeded, however long seeding and comparing take (four
    /// apiservers on two cores took 77 s to seed one, and the model's pods had moved on).
    async fn still(test: &str, scenario: &str, options: Options) -> Option<Twin> {
        Twin::with_clock(test, scenario, options, Clock::frozen_at).await
    }

    async fn with_clock(
        test: &str,
        scenario: &str,
        options: Options,
        clock: fn(DateTime<chrono::Utc>) -> Clock,
    ) -> Option<Twin> {
        let real = apiserver::start_or_skip(test, options).await.unwrap()?;
        let scenario = Arc::new(Scenario::embedded(scenario).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let clock = clock(scenario.now);
        let backends = SimBackends::seed(
            scenario.clone(),
            dir.path(),
            clock.clone(),
            &Default::default(),
        )
        .await
        .unwrap();
        let (cert, key) = real.kubelet_tls();
        let kubelet = FakeKubelet::start(backends.sim.clone(), &cert, &key)
            .await
            .unwrap();
        let admin = seed::client(real.kubeconfig_path()).await.unwrap();
        let world = backends.sim.world().unwrap();
        let pods_at_seed = backends.sim.pods_of(&scenario.workload_ref()).unwrap();
        let seeded = seed::seed(&admin, &world, kubelet.port())
            .await
            .unwrap_or_else(|e| panic!("{test}: seeding failed: {e:#}\n{}", real.log_tail()));
        Some(Twin {
            scenario,
            clock,
            backends,
            kubelet,
            seeded,
            pods_at_seed,
            world_at_seed: world,
            real,
            dir,
        })
    }

    async fn adapter(&self, kubeconfig: &Path) -> KubeCluster {
        KubeCluster::connect(
            &KubeOptions {
                kubeconfig: Some(kubeconfig.to_path_buf()),
                ..KubeOptions::default()
            },
            self.clock.clone(),
        )
        .await
        .unwrap()
    }

    /// The Kubernetes adapter over the real apiserver (with this kubeconfig), reading metrics
    /// from the simulated Prometheus API.
    async fn real_adapter_with_metrics(&self, kubeconfig: &Path) -> Arc<KubeCluster> {
        let prometheus = Prometheus::new(PrometheusOptions {
            url: self.backends.api.prometheus_url(),
            timeout: Some(Duration::from_secs(10)),
            queries: MetricQueries::default(),
        })
        .unwrap();
        Arc::new(
            self.adapter(kubeconfig)
                .await
                .with_metrics(Arc::new(prometheus)),
        )
    }

    /// Whether the model's pods changed since they were seeded.
    /// The objects (`namespace/name`, or `name`) the model serves otherwise than it did when
    /// it was seeded.
    fn moved_since_seeding(&self) -> BTreeSet<String> {
        let now = self.backends.sim.world().unwrap();
        let key = |o: &Value| {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or("");
            let name = o["metadata"]["name"].as_str().unwrap_or("");
            if ns.is_empty() {
                name.to_owned()
            } else {
                format!("{ns}/{name}")
            }
        };
        let then: BTreeMap<String, &Value> = self
            .world_at_seed
            .objects
            .iter()
            .map(|o| (key(o), o))
            .collect();
        let mut moved: BTreeSet<String> = now
            .objects
            .iter()
            .filter(|o| then.get(&key(o)) != Some(o))
            .map(key)
            .collect();
        let current: BTreeSet<String> = now.objects.iter().map(key).collect();
        moved.extend(then.keys().filter(|k| !current.contains(*k)).cloned());
        moved
    }

    fn model_moved_on(&self) -> bool {
        self.backends
            .sim
            .pods_of(&self.scenario.workload_ref())
            .is_ok_and(|now| now != self.pods_at_seed)
    }
}
