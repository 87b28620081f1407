//! Replicas sharing the work: the leases on a real kube-apiserver (conditional writes, expiry,
//! the fencing epoch, the shards spread over replicas).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use squad_adapters::kubernetes::KubeCluster;
use squad_runtime::Clock;
use squad_runtime::shards::{INTAKE, LeaseParams, Leases, Ownership, lease_round};
use squad_testkit::apiserver::{self, Options, RealApiserver};

async fn cluster(server: &RealApiserver) -> KubeCluster {
    server.kube_cluster(Clock::system()).await.unwrap()
}

#[tokio::test]
async fn leases_on_a_real_apiserver_are_won_once_expire_and_count_their_holders() {
    let Some(server) = apiserver::start_or_skip("leases", Options::default())
        .await
        .unwrap()
    else {
        return;
    };
    let kube = cluster(&server).await;
    let leases: Arc<dyn Leases> = Arc::new(kube.leases("default", "squad"));
    let now = Utc::now();
    let long = Duration::from_secs(30);
    assert_eq!(
        leases.claim("shard-0", "a", long, now).await.unwrap(),
        Some(1)
    );
    assert_eq!(leases.claim("shard-0", "b", long, now).await.unwrap(), None);
    assert_eq!(
        leases
            .claim("shard-0", "a", long, Utc::now())
            .await
            .unwrap(),
        Some(1),
        "a renewal keeps the epoch"
    );
    // Ten claims at once on a fresh lease: one wins, by the server's conditional writes.
    let racers: Vec<_> = (0..10)
        .map(|i| {
            let leases = leases.clone();
            tokio::spawn(async move {
                leases
                    .claim("shard-1", &format!("r{i}"), long, Utc::now())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap().is_some());
    }
    assert_eq!(won, 1);
    // A lease left unrenewed past its duration goes to the next claimant, one epoch later.
    let short = Duration::from_secs(1);
    assert_eq!(
        leases
            .claim("intake", "a", short, Utc::now())
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        leases
            .claim("intake", "b", short, Utc::now())
            .await
            .unwrap(),
        None
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        leases
            .claim("intake", "b", short, Utc::now())
            .await
            .unwrap(),
        Some(2)
    );
    // Released, it is free at once; forgotten, it is gone.
    leases.release("shard-0", "a").await.unwrap();
    assert_eq!(
        leases
            .claim("shard-0", "b", long, Utc::now())
            .await
            .unwrap(),
        Some(2)
    );
    let listed = leases.list().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    leases.forget("shard-1").await.unwrap();
    assert_eq!(leases.list().await.unwrap().len(), 2);
    let out = server
        .kubectl()
        .args(["get", "leases", "-n", "default", "-o", "name"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("lease.coordination.k8s.io/squad-shard-0"),
        "{text}"
    );
}

#[tokio::test]
async fn three_replicas_spread_eight_shards_on_a_real_apiserver() {
    let Some(server) = apiserver::start_or_skip("shard spread", Options::default())
        .await
        .unwrap()
    else {
        return;
    };
    let kube = cluster(&server).await;
    let leases = kube.leases("default", "spread");
    let replicas: Vec<(Arc<Ownership>, LeaseParams)> = ["r0", "r1", "r2"]
        .iter()
        .map(|id| {
            (
                Ownership::leased(8),
                LeaseParams {
                    identity: (*id).into(),
                    clock: Clock::system(),
                    duration: Duration::from_secs(15),
                    renew_every: Duration::from_millis(200),
                    margin: Duration::from_secs(5),
                },
            )
        })
        .collect();
    for _ in 0..6 {
        for (o, p) in &replicas {
            lease_round(o, &leases, p, None).await.unwrap();
        }
    }
    let mut counts: Vec<usize> = replicas
        .iter()
        .map(|(o, _)| {
            o.held()
                .iter()
                .filter(|(n, _)| n.starts_with("shard-"))
                .count()
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, [2, 3, 3]);
    let intake: usize = replicas.iter().filter(|(o, _)| o.holds(INTAKE)).count();
    assert_eq!(intake, 1);
}
