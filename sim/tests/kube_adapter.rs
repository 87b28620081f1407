//! The Kubernetes adapter over HTTP.
//!
//! - Against the simulated cluster's API server: the adapter must read exactly the facts the
//!   model holds (the model is the oracle; the model itself is checked against a real
//!   kube-apiserver in the squad crate's `apiserver` tests).
//! - Against a mock API server with canned responses: owner chains the simulation does not have
//!   (bare pods, StatefulSets, CronJobs), API fallbacks, and errors (403, 404, unreachable).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use squad_adapters::kubernetes::{KubeCluster, KubeOptions};
use squad_adapters::prometheus::{MetricQueries, Prometheus, PrometheusOptions};
use squad_protocols::WorkloadRef;
use squad_runtime::Clock;
use squad_runtime::ports::{Cluster, PortError};
use squad_sim::Scenario;
use squad_sim::kube_api::{ServeOptions, SimApiServer};
use squad_sim::{SimCluster, seed_gitops_repo};

struct Served {
    model: Arc<SimCluster>,
    api: SimApiServer,
    adapter: KubeCluster,
    scenario: Arc<Scenario>,
    _dir: tempfile::TempDir,
}

async fn serve(name: &str, deny: &[&str]) -> Served {
    serve_scenario(Scenario::embedded(name).unwrap(), deny).await
}

async fn serve_scenario(scenario: Scenario, deny: &[&str]) -> Served {
    let scenario = Arc::new(scenario);
    let dir = tempfile::tempdir().unwrap();
    let git = seed_gitops_repo(&scenario, &dir.path().join("gitops")).unwrap();
    let clock = Clock::starting_at(scenario.now);
    let model = Arc::new(SimCluster::new(scenario.clone(), git, clock.clone()));
    let opts = ServeOptions {
        deny: deny.iter().map(|s| (*s).to_owned()).collect(),
        ..ServeOptions::default()
    };
    let api = SimApiServer::bind(model.clone(), 0, opts).await.unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig, &scenario.workload.namespace)
        .unwrap();
    let prometheus = Prometheus::new(PrometheusOptions {
        url: api.prometheus_url(),
        timeout: Some(Duration::from_secs(10)),
        queries: MetricQueries::default(),
    })
    .unwrap();
    let adapter = KubeCluster::connect(
        &KubeOptions {
            kubeconfig: Some(kubeconfig),
            ..KubeOptions::default()
        },
        clock,
    )
    .await
    .unwrap()
    .with_metrics(Arc::new(prometheus));
    Served {
        model,
        api,
        adapter,
        scenario,
        _dir: dir,
    }
}

fn sorted<T: Clone, K: Ord>(v: &[T], key: impl Fn(&T) -> K) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort_by_key(|x| key(x));
    v
}

async fn same_facts(name: &str) {
    let s = serve(name, &[]).await;
    let (m, a) = (&s.model, &s.adapter);
    let w = s.scenario.workload_ref();
    let ns = w.namespace.as_str();
    let pod = s.scenario.workload.pods[0].clone();
    let c = s.scenario.workload.container.clone();

    assert_eq!(a.pod(ns, &pod).await.unwrap(), m.pod(ns, &pod).unwrap());
    assert_eq!(
        sorted(&a.pods_of(&w).await.unwrap(), |p| p.name.clone()),
        sorted(&m.pods_of(&w).unwrap(), |p| p.name.clone())
    );
    assert_eq!(a.owner_of(ns, &pod).await.unwrap(), w);
    assert_eq!(a.workload(&w).await.unwrap(), m.workload(&w).unwrap());
    assert_eq!(
        a.rollout_history(&w).await.unwrap(),
        m.rollout_history(&w).unwrap()
    );
    let key = |e: &squad_protocols::cluster::ClusterEvent| {
        (e.last_seen, e.reason.clone(), e.message.clone())
    };
    assert_eq!(
        sorted(&a.events(ns, &pod).await.unwrap(), key),
        sorted(&m.events(ns, &pod).unwrap(), key)
    );
    let node = s.scenario.workload.node.clone();
    assert_eq!(
        sorted(&a.events("default", &node).await.unwrap(), key),
        sorted(&m.events("default", &node).unwrap(), key)
    );
    for previous in [false, true] {
        let want = m.logs(ns, &pod, &c, previous, 20);
        let got = a.logs(ns, &pod, &c, previous, 20).await;
        match (want, got) {
            (Ok(w), Ok(g)) => assert_eq!(g, w, "logs previous={previous}"),
            (Err(PortError::NotFound { .. }), Err(PortError::NotFound { .. })) => {}
            (w, g) => panic!("logs previous={previous}: model {w:?}, adapter {g:?}"),
        }
    }
    assert_eq!(a.hpas(ns).await.unwrap(), m.hpas(ns).unwrap());
    assert_eq!(
        a.network_policies(ns).await.unwrap(),
        m.network_policies(ns).unwrap()
    );
    assert_eq!(a.services(ns).await.unwrap(), m.services(ns).unwrap());
    assert_eq!(a.workloads(ns).await.unwrap(), m.workloads(ns).unwrap());
    let sa = m.workload(&w).unwrap().service_account;
    assert_eq!(
        sorted(&a.rbac_rules(ns, &sa).await.unwrap(), |r| r.role.clone()),
        sorted(&m.rbac_rules(ns, &sa).unwrap(), |r| r.role.clone())
    );
    let image = m.workload(&w).unwrap().containers[0].image.clone();
    assert_eq!(
        a.image_vulnerabilities(&image).await.unwrap(),
        m.image_vulnerabilities(&image).unwrap()
    );
    assert_eq!(
        sorted(&a.secret_keys(ns).await.unwrap(), |x| x.0.clone()),
        sorted(&m.secret_keys(ns).unwrap(), |x| x.0.clone())
    );
    assert_eq!(a.node(&node).await.unwrap(), m.node(&node).unwrap());

    // Metrics through the Prometheus API: the same samples, at the same instants.
    let day = Duration::from_secs(24 * 3600);
    let step = Duration::from_secs(300);
    let want = m.memory_working_set(&w, &c, day, step).unwrap();
    let got = a.memory_working_set(&w, &c, day, step).await.unwrap();
    // Prometheus works in whole seconds here (the adapter asks at the clock's second).
    let same = |a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>| {
        (a - b).num_milliseconds().abs() < 1000
    };
    let running: Vec<_> = want
        .iter()
        .filter(|s| got.iter().any(|g| same(g.at, s.at)))
        .collect();
    assert!(
        got.len() + 12 >= want.len() && !got.is_empty(),
        "memory: {} samples from Prometheus, {} in the model",
        got.len(),
        want.len()
    );
    for g in &got {
        let w = running
            .iter()
            .find(|s| same(s.at, g.at))
            .unwrap_or_else(|| {
                panic!(
                    "memory sample at {} is not in the model: {:?}",
                    g.at,
                    &want[..3]
                )
            });
        assert!(
            (g.value - w.value).abs() < 1.0,
            "memory at {}: {} vs {}",
            g.at,
            g.value,
            w.value
        );
    }
    let want = m.request_rates(&w, day, step).unwrap();
    let got = a.request_rates(&w, day, step).await.unwrap();
    assert_eq!(got.len(), want.len());
    assert_eq!(got[0].0, want[0].0, "route");
    // rate() over 5 minutes equals the model's rate wherever the rate is flat, and within half a
    // percent where the day's swing moves it (at most 2π × 10% / 288 ≈ 0.22% in 5 minutes).
    let flat = |t| {
        (want[0]
            .1
            .iter()
            .find(|s: &&squad_protocols::cluster::Sample| same(s.at, t)))
        .map(|s| s.value)
    };
    let close = got[0]
        .1
        .iter()
        .filter(|g| flat(g.at).is_some_and(|v| (v - g.value).abs() <= 0.005 * v.max(1.0)))
        .count();
    assert!(
        close + 8 >= got[0].1.len(),
        "traffic: only {close} of {} samples match the model",
        got[0].1.len()
    );
}

#[tokio::test]
async fn the_adapter_reads_what_the_model_holds_oomkilled() {
    same_facts("oomkilled").await;
}

#[tokio::test]
async fn the_adapter_reads_what_the_model_holds_crashloop() {
    same_facts("crashloop").await;
}

#[tokio::test]
async fn the_adapter_reads_what_the_model_holds_netpol() {
    same_facts("netpol").await;
}

#[tokio::test]
async fn the_adapter_reads_what_the_model_holds_no_endpoints() {
    same_facts("no-endpoints").await;
    let s = serve("no-endpoints", &[]).await;
    let services = s.adapter.services("retail").await.unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0].name, "inventory");
    assert!(services[0].endpoints.is_empty(), "{services:?}");
    let names: Vec<String> = s
        .adapter
        .workloads("retail")
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["inventory", "storefront"]);
}

/// A Job: as the model holds it, past its deadline (its pod deleted) and out of retries (its
/// failed pods kept, their exits and logs).
#[tokio::test]
async fn the_adapter_reads_a_failed_job_as_the_model_holds_it() {
    let mut backoff = Scenario::embedded("job-failed").unwrap();
    backoff.load.required_env = vec!["LEDGER_DSN".into()];
    for (scenario, pods) in [(Scenario::embedded("job-failed").unwrap(), 0), (backoff, 3)] {
        let s = serve_scenario(scenario, &[]).await;
        let (m, a) = (&s.model, &s.adapter);
        let w = s.scenario.workload_ref();
        let ns = w.namespace.as_str();
        let info = a.workload(&w).await.unwrap();
        assert_eq!(info, m.workload(&w).unwrap());
        assert_eq!(info.conditions[0].kind, "Failed");
        let key = |e: &squad_protocols::cluster::ClusterEvent| (e.first_seen, e.reason.clone());
        assert_eq!(
            sorted(&a.events(ns, &w.name).await.unwrap(), key),
            sorted(&m.events(ns, &w.name).unwrap(), key)
        );
        let got = a.pods_of(&w).await.unwrap();
        assert_eq!(
            sorted(&got, |p| p.name.clone()),
            sorted(&m.pods_of(&w).unwrap(), |p| p.name.clone())
        );
        assert_eq!(got.len(), pods);
        assert_eq!(a.rollout_history(&w).await.unwrap(), Vec::new());
        for p in &got {
            assert_eq!(a.owner_of(ns, &p.name).await.unwrap(), w);
            assert_eq!(
                a.logs(ns, &p.name, "backfill", false, 5).await.unwrap(),
                m.logs(ns, &p.name, "backfill", false, 5).unwrap()
            );
            assert_eq!(
                a.events(ns, &p.name).await.unwrap().len(),
                m.events(ns, &p.name).unwrap().len()
            );
        }
    }
}

#[tokio::test]
async fn an_incident_read_is_a_handful_of_requests() {
    let s = serve("oomkilled", &[]).await;
    let w = s.scenario.workload_ref();
    let pod = &s.scenario.workload.pods[0];
    let before = s.adapter.requests();
    let served_before = s.api.requests();
    let p = s.adapter.pod(&w.namespace, pod).await.unwrap();
    s.adapter.owner_of(&w.namespace, pod).await.unwrap();
    s.adapter.workload(&w).await.unwrap();
    s.adapter.rollout_history(&w).await.unwrap();
    s.adapter.events(&w.namespace, pod).await.unwrap();
    s.adapter.node(&p.node).await.unwrap();
    let _ = s
        .adapter
        .logs(&w.namespace, pod, &s.scenario.workload.container, true, 50)
        .await;
    let sent = s.adapter.requests() - before;
    // pod, pod+RS (owner), deployment, deployment+RS list (history), events, node, logs.
    assert_eq!(sent, 9);
    // The client sends no discovery requests of its own: what it sent is what the server saw.
    assert_eq!(s.api.requests() - served_before, sent);
}

#[tokio::test]
async fn a_denied_log_read_says_forbidden_and_names_the_pod() {
    let s = serve("crashloop", &["pods/log"]).await;
    let w = s.scenario.workload_ref();
    let pod = &s.scenario.workload.pods[0];
    let err = s
        .adapter
        .logs(&w.namespace, pod, &s.scenario.workload.container, false, 10)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PortError::Forbidden { .. }), "{text}");
    assert!(
        text.contains(pod.as_str()) && text.contains("pods/log"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_pod_is_not_found_by_name() {
    let s = serve("oomkilled", &[]).await;
    let err = s
        .adapter
        .pod("production", "no-such-pod")
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("pod production/no-such-pod"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"),
    )
    .unwrap();
    let k = KubeCluster::connect(
        &KubeOptions {
            kubeconfig: Some(path),
            ..KubeOptions::default()
        },
        Clock::starting_at(chrono::Utc::now()),
    )
    .await
    .unwrap();
    let err = k.pod("production", "p").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PortError::Unavailable { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    // Retried (transient), then given up.
    assert_eq!(k.requests(), 3);
}

#[tokio::test]
async fn a_missing_kubeconfig_names_the_file() {
    let err = KubeCluster::connect(
        &KubeOptions {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            ..KubeOptions::default()
        },
        Clock::starting_at(chrono::Utc::now()),
    )
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("/nonexistent/kubeconfig"), "{err}");
}

#[tokio::test]
async fn without_prometheus_history_is_unavailable_with_a_note() {
    let s = serve("oomkilled", &[]).await;
    let k = KubeCluster::connect(
        &KubeOptions {
            kubeconfig: Some(s._dir.path().join("kubeconfig")),
            ..KubeOptions::default()
        },
        Clock::starting_at(s.scenario.now),
    )
    .await
    .unwrap();
    let err = k
        .memory_working_set(
            &s.scenario.workload_ref(),
            "payment-api",
            Duration::from_secs(3600),
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no Prometheus is configured"),
        "{err}"
    );
}

// ---- A mock API server with canned responses ----

type Canned = Arc<Mutex<HashMap<String, (u16, Value)>>>;

async fn mock(routes: &[(&str, u16, Value)]) -> (KubeCluster, Canned, tempfile::TempDir) {
    let canned: Canned = Arc::new(Mutex::new(
        routes
            .iter()
            .map(|(p, c, v)| ((*p).to_owned(), (*c, v.clone())))
            .collect(),
    ));
    let seen = canned.clone();
    let app = Router::new().fallback(move |req: Request| {
        let seen = seen.clone();
        async move {
            let path = req.uri().path().to_owned();
            let hit = seen.lock().unwrap().get(&path).cloned();
            match hit {
                Some((code, body)) => (
                    StatusCode::from_u16(code).unwrap(),
                    [("content-type", "application/json")],
                    body.to_string(),
                )
                    .into_response(),
                None => (
                    StatusCode::NOT_FOUND,
                    [("content-type", "application/json")],
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "reason": "NotFound", "code": 404,
                           "message": format!("the server could not find the requested resource ({path})")})
                    .to_string(),
                )
                    .into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: apps\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"),
    )
    .unwrap();
    let k = KubeCluster::connect(
        &KubeOptions {
            kubeconfig: Some(path),
            ..KubeOptions::default()
        },
        Clock::starting_at(chrono::Utc::now()),
    )
    .await
    .unwrap();
    (k, canned, dir)
}

fn pod(name: &str, owner: Option<(&str, &str)>) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "apps", "uid": "u-pod",
                     "creationTimestamp": "2026-11-01T00:00:00Z"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i:1"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": true,
            "restartCount": 2, "image": "i:1", "imageID": "", "state": {"running": {}},
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1,
                "finishedAt": "2026-11-02T00:00:00Z"}}}]}});
    if let Some((kind, owner)) = owner {
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind,
            "name": owner, "uid": "u-owner", "controller": true}]);
    }
    p
}

#[tokio::test]
async fn a_bare_pod_is_its_own_workload() {
    let (k, _, _d) = mock(&[("/api/v1/namespaces/apps/pods/solo", 200, pod("solo", None))]).await;
    let w = k.owner_of("apps", "solo").await.unwrap();
    assert_eq!(
        w,
        WorkloadRef {
            kind: "Pod".into(),
            namespace: "apps".into(),
            name: "solo".into()
        }
    );
    let info = k.workload(&w).await.unwrap();
    assert_eq!(info.containers[0].image, "i:1");
    assert_eq!(k.pods_of(&w).await.unwrap().len(), 1);
    assert!(k.rollout_history(&w).await.unwrap().is_empty());
}

#[tokio::test]
async fn owners_resolve_through_statefulsets_and_cronjobs() {
    let job = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "nightly-29000000", "namespace": "apps", "uid": "u-job",
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly",
                                 "uid": "u-cron", "controller": true}]},
        "spec": {"template": {"spec": {"containers": []}}}});
    let (k, _, _d) = mock(&[
        (
            "/api/v1/namespaces/apps/pods/db-0",
            200,
            pod("db-0", Some(("StatefulSet", "db"))),
        ),
        (
            "/api/v1/namespaces/apps/pods/nightly-29000000-abcde",
            200,
            pod("nightly-29000000-abcde", Some(("Job", "nightly-29000000"))),
        ),
        (
            "/apis/batch/v1/namespaces/apps/jobs/nightly-29000000",
            200,
            job,
        ),
    ])
    .await;
    let sts = k.owner_of("apps", "db-0").await.unwrap();
    assert_eq!(
        (sts.kind.as_str(), sts.name.as_str()),
        ("StatefulSet", "db")
    );
    let cron = k.owner_of("apps", "nightly-29000000-abcde").await.unwrap();
    assert_eq!(
        (cron.kind.as_str(), cron.name.as_str()),
        ("CronJob", "nightly")
    );
}

#[tokio::test]
async fn old_clusters_fall_back_to_autoscaling_v2beta2() {
    let hpa = json!({"apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscalerList",
        "metadata": {"resourceVersion": "1"},
        "items": [{"metadata": {"name": "web", "namespace": "apps"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 2, "maxReplicas": 5,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                         "target": {"type": "Utilization", "averageUtilization": 60}}}]}}]});
    let (k, _, _d) = mock(&[(
        "/apis/autoscaling/v2beta2/namespaces/apps/horizontalpodautoscalers",
        200,
        hpa,
    )])
    .await;
    let hpas = k.hpas("apps").await.unwrap();
    assert_eq!(hpas.len(), 1);
    assert_eq!(hpas[0].target, "Deployment/web");
    assert_eq!(hpas[0].metrics, vec!["cpu 60%".to_owned()]);
}

#[tokio::test]
async fn events_fall_back_to_events_k8s_io_when_core_events_are_forbidden() {
    let forbidden = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": "Forbidden", "code": 403,
        "message": "events is forbidden: User \"squad\" cannot list resource \"events\" in API group \"\" in the namespace \"apps\""});
    let list = json!({"apiVersion": "events.k8s.io/v1", "kind": "EventList", "metadata": {},
        "items": [{"metadata": {"name": "e1", "namespace": "apps", "uid": "u-e1"},
            "eventTime": null, "reason": "BackOff", "note": "Back-off restarting failed container",
            "type": "Warning", "regarding": {"kind": "Pod", "name": "p", "namespace": "apps"},
            "deprecatedCount": 7, "deprecatedFirstTimestamp": "2026-11-01T00:00:00Z",
            "deprecatedLastTimestamp": "2026-11-01T01:00:00Z"}]});
    let (k, _, _d) = mock(&[
        ("/api/v1/namespaces/apps/events", 403, forbidden),
        ("/apis/events.k8s.io/v1/namespaces/apps/events", 200, list),
    ])
    .await;
    let events = k.events("apps", "p").await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].count, 7);
    assert_eq!(events[0].object, "Pod/p");
    assert_eq!(events[0].message, "Back-off restarting failed container");
}

#[tokio::test]
async fn no_image_scanner_is_unavailable_not_an_empty_report() {
    let (k, _, _d) = mock(&[]).await;
    let err = k.image_vulnerabilities("i:1").await.unwrap_err();
    assert!(matches!(err, PortError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("VulnerabilityReports"), "{err}");
}

#[tokio::test]
async fn secret_values_never_leave_the_adapter() {
    let secrets = json!({"apiVersion": "v1", "kind": "SecretList", "metadata": {},
        "items": [{"metadata": {"name": "db", "namespace": "apps"}, "type": "Opaque",
                   "data": {"url": "cG9zdGdyZXM6Ly91OnBAaC9k", "password": "aHVudGVyMg=="}}]});
    let (k, _, _d) = mock(&[("/api/v1/namespaces/apps/secrets", 200, secrets)]).await;
    let keys = k.secret_keys("apps").await.unwrap();
    assert_eq!(
        keys,
        vec![(
            "db".to_owned(),
            vec!["password".to_owned(), "url".to_owned()]
        )]
    );
    let shown = format!("{keys:?}");
    assert!(!shown.contains("aHVudGVyMg") && !shown.contains("hunter2"));
}

#[tokio::test]
async fn config_map_data_is_read_key_by_key_and_binary_data_is_left_out() {
    let maps = json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {},
        "items": [
            {"metadata": {"name": "settings", "namespace": "apps"},
             "data": {"app.yaml": "port: 8080\n", "LOG_LEVEL": "debug"},
             "binaryData": {"logo.png": "iVBORw0KGgo="}},
            {"metadata": {"name": "empty", "namespace": "apps"}}]});
    let (k, _, _d) = mock(&[("/api/v1/namespaces/apps/configmaps", 200, maps)]).await;
    let mut data = k.config_map_texts("apps").await.unwrap();
    data.sort();
    let at = |m: &str, k: &str, v: &str| (m.to_owned(), k.to_owned(), v.to_owned());
    assert_eq!(
        data,
        vec![
            at("settings", "LOG_LEVEL", "debug"),
            at("settings", "app.yaml", "port: 8080\n"),
        ]
    );
}

#[tokio::test]
async fn the_context_chooses_the_cluster_and_its_namespace() {
    let s = serve("oomkilled", &[]).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap().port();
    drop(listener);
    let path = s._dir.path().join("two-contexts");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: http://127.0.0.1:{dead}\n- name: sim\n  cluster:\n    server: {}\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: u\n- name: sim-prod\n  context:\n    cluster: sim\n    user: u\n    namespace: production\ncurrent-context: gone\nusers:\n- name: u\n  user: {{}}\n",
            s.api.url()
        ),
    )
    .unwrap();
    let k = KubeCluster::connect(
        &KubeOptions {
            kubeconfig: Some(path.clone()),
            context: Some("sim-prod".into()),
            ..KubeOptions::default()
        },
        Clock::starting_at(s.scenario.now),
    )
    .await
    .unwrap();
    assert_eq!(k.default_namespace(), "production");
    let pod = &s.scenario.workload.pods[0];
    assert_eq!(k.pod("production", pod).await.unwrap().name, *pod);
    // The current context (the dead cluster) is what is used without one.
    let k = KubeCluster::connect(
        &KubeOptions {
            kubeconfig: Some(path),
            ..KubeOptions::default()
        },
        Clock::starting_at(s.scenario.now),
    )
    .await
    .unwrap();
    assert!(matches!(
        k.pod("production", pod).await,
        Err(PortError::Unavailable { .. })
    ));
}
