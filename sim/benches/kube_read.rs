//! The Kubernetes adapter's incident read — every fact the crew reads about one pod — against
//! the simulated API server on loopback, with the number of API requests it takes. The baseline,
//! measured in the same run, is the same facts read from the model in process (no HTTP, no JSON).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use squad_adapters::kubernetes::{KubeCluster, KubeOptions};
use squad_runtime::Clock;
use squad_runtime::ports::Cluster;
use squad_sim::Scenario;
use squad_sim::kube_api::{ServeOptions, SimApiServer};
use squad_sim::{SimCluster, seed_gitops_repo};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let scenario = Arc::new(Scenario::embedded("oomkilled").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let git = seed_gitops_repo(&scenario, &dir.path().join("gitops")).unwrap();
    let clock = Clock::starting_at(scenario.now);
    let model = Arc::new(SimCluster::new(scenario.clone(), git, clock.clone()));
    let (api, adapter) = rt.block_on(async {
        let api = SimApiServer::bind(model.clone(), 0, ServeOptions::default())
            .await
            .unwrap();
        let kc = dir.path().join("kubeconfig");
        api.write_kubeconfig(&kc, "production").unwrap();
        let adapter = KubeCluster::connect(
            &KubeOptions {
                kubeconfig: Some(kc),
                ..KubeOptions::default()
            },
            clock.clone(),
        )
        .await
        .unwrap();
        (api, adapter)
    });
    let w = scenario.workload_ref();
    let ns = w.namespace.clone();
    let pod = scenario.workload.pods[0].clone();
    let container = scenario.workload.container.clone();

    let read = || async {
        let p = adapter.pod(&ns, &pod).await.unwrap();
        adapter.owner_of(&ns, &pod).await.unwrap();
        let info = adapter.workload(&w).await.unwrap();
        adapter.rollout_history(&w).await.unwrap();
        adapter.events(&ns, &pod).await.unwrap();
        adapter.logs(&ns, &pod, &container, true, 50).await.unwrap();
        adapter.node(&p.node).await.unwrap();
        adapter.hpas(&ns).await.unwrap();
        adapter.network_policies(&ns).await.unwrap();
        adapter
            .rbac_rules(&ns, &info.service_account)
            .await
            .unwrap();
        adapter.secret_keys(&ns).await.unwrap();
        adapter
            .image_vulnerabilities(&info.containers[0].image)
            .await
            .unwrap();
    };
    let before = adapter.requests();
    rt.block_on(read());
    let per_read = adapter.requests() - before;
    eprintln!(
        "kube_read: one incident read = {per_read} API requests (server counted {})",
        api.requests()
    );

    let mut g = c.benchmark_group("kube_read");
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("adapter_over_http", |b| b.to_async(&rt).iter(read));
    g.bench_function("model_in_process_baseline", |b| {
        b.iter(|| {
            let p = model.pod(&ns, &pod).unwrap();
            model.owner_of(&ns, &pod).unwrap();
            let info = model.workload(&w).unwrap();
            model.rollout_history(&w).unwrap();
            model.events(&ns, &pod).unwrap();
            model.logs(&ns, &pod, &container, true, 50).unwrap();
            model.node(&p.node).unwrap();
            model.hpas(&ns).unwrap();
            model.network_policies(&ns).unwrap();
            model.rbac_rules(&ns, &info.service_account).unwrap();
            model.secret_keys(&ns).unwrap();
            model
                .image_vulnerabilities(&info.containers[0].image)
                .unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
