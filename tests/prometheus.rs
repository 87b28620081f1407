//! The simulated cluster's metrics against a real Prometheus (Debian's 2.42):
//! - it scrapes the simulated `/metrics` (the exposition format passes `promtool check metrics`),
//!   and its answers to the crew's queries agree with the simulated query API's;
//! - the simulated 24 h history, backfilled into it with `promtool`, gives the Prometheus adapter
//!   the same memory and traffic series, and the native diagnosis through the real Prometheus is
//!   the one the simulation makes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use squad::simulation::{self, ServeKube, SimBackends};
use squad_adapters::prometheus::{MetricQueries, Prometheus, PrometheusOptions};
use squad_diagnosis::NativeDiagnoser;
use squad_runtime::Clock;
use squad_runtime::ports::{Cluster, Diagnoser, DiagnosisRequest};
use squad_sim::Scenario;
use squad_sim::prom_api::openmetrics_history;
use squad_testkit::prometheus::{self, RealPrometheus, available_or_skip, backfill};

/// A client with a generous timeout: these tests compare answers, not speed (the simulated
/// API computes a day of counters per range query, slowly on a loaded 2-core CI machine, where
/// 10 s once timed out).
fn client(url: &str) -> Prometheus {
    Prometheus::new(PrometheusOptions {
        url: url.to_owned(),
        timeout: Some(Duration::from_secs(120)),
        queries: MetricQueries::default(),
    })
    .unwrap()
}

async fn scalar(p: &Prometheus, q: &str, at: DateTime<Utc>) -> f64 {
    let r = p.query(q, Some(at)).await.unwrap();
    assert_eq!(r.len(), 1, "{q} at {at} from {}: {r:?}", p.url());
    r[0].1.value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_simulated_metrics_and_agrees() {
    if !available_or_skip("a_real_prometheus_scrapes_the_simulated_metrics_and_agrees").unwrap() {
        return;
    }
    let served = simulation::serve_cluster(
        Scenario::embedded("oomkilled").unwrap(),
        None,
        &ServeKube::default(),
    )
    .await
    .unwrap();
    let api = &served.backends.api;

    // The exposition format, as Prometheus' own linter reads it.
    let text = tokio::task::spawn_blocking({
        let url = format!("{}/metrics", api.url());
        move || {
            std::process::Command::new("curl")
                .args(["-sf", &url])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(text.status.success());
    let mut lint = std::process::Command::new(prometheus::PROMTOOL)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(lint.stdin.as_mut().unwrap(), &text.stdout).unwrap();
    let lint = lint.wait_with_output().unwrap();
    assert!(
        lint.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: squad-sim\n    static_configs:\n      - targets: ['{}']\n",
        api.addr()
    );
    let real = RealPrometheus::start(&config, None).await.unwrap();
    let (real_api, sim_api) = (client(&real.url()), client(&api.prometheus_url()));

    // Wait for six scrapes, so a 5 s rate has samples to work with.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = real_api
            .query("count_over_time(up{job=\"squad-sim\"}[1m])", None)
            .await
            .ok()
            .and_then(|r| r.first().map(|s| s.1.value))
            .unwrap_or(0.0);
        if n >= 6.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no scrapes of the simulated cluster:\n{}",
            real.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let at = Utc::now() - chrono::Duration::seconds(1);
    let rate = "sum by (route) (rate(http_requests_total{namespace=\"production\", service=\"payment-service\"}[5s]))";
    let (r, s) = (
        scalar(&real_api, rate, at).await,
        scalar(&sim_api, rate, at).await,
    );
    assert!((r - s).abs() / s < 0.01, "rate: real {r}, simulated {s}");
    assert!((s - 440.0).abs() < 1.0, "the surge: {s} rps");
    for q in [
        "max(kube_pod_container_resource_limits{namespace=\"production\", resource=\"memory\"})",
        "count(kube_pod_container_status_last_terminated_reason{namespace=\"production\", reason=\"OOMKilled\"})",
        "sum(kube_pod_container_resource_requests{namespace=\"production\", resource=\"cpu\"})",
    ] {
        let (r, s) = (
            scalar(&real_api, q, at).await,
            scalar(&sim_api, q, at).await,
        );
        assert_eq!(r, s, "{q}");
    }
    let restarts = "sum(kube_pod_container_status_restarts_total{namespace=\"production\"})";
    let (r, s) = (
        scalar(&real_api, restarts, at).await,
        scalar(&sim_api, restarts, at).await,
    );
    // A kill between the last scrape and `at` may count on one side only.
    assert!((r - s).abs() <= 2.0, "restarts: real {r}, simulated {s}");
}

/// A scenario's simulated world, its 25 h history backfilled into a real Prometheus, and a
/// Prometheus adapter on each.
struct Backfilled {
    scenario: Arc<Scenario>,
    sim: SimBackends,
    clock: Clock,
    real: RealPrometheus,
    real_api: Prometheus,
    sim_api: Prometheus,
    _dir: tempfile::TempDir,
}

async fn backfilled(name: &str) -> Backfilled {
    let scenario = Arc::new(Scenario::embedded(name).unwrap());
    let dir = tempfile::tempdir().unwrap();
    // The clock stands still at the alert (a paused-free runtime, but nothing here waits).
    let clock = Clock::starting_at(scenario.now);
    let sim = SimBackends::seed(
        scenario.clone(),
        dir.path(),
        clock.clone(),
        &ServeKube::default(),
    )
    .await
    .unwrap();
    let now = scenario.now;
    let history = openmetrics_history(
        sim.sim.as_ref(),
        now - chrono::Duration::hours(25),
        now,
        Duration::from_secs(60),
    );
    let tsdb = dir.path().join("tsdb");
    backfill(&history, &tsdb).unwrap();
    let real = RealPrometheus::start("global:\n  scrape_interval: 1m\n", Some(&tsdb))
        .await
        .unwrap();
    let (real_api, sim_api) = (client(&real.url()), client(&sim.api.prometheus_url()));
    Backfilled {
        scenario,
        sim,
        clock,
        real,
        real_api,
        sim_api,
        _dir: dir,
    }
}

/// The native diagnosis of the scenario's alert, with history from the real Prometheus.
async fn diagnosed_through_the_real_prometheus(b: Backfilled) -> squad_protocols::Diagnosis {
    let cluster: Arc<dyn Cluster> = Arc::new(
        squad_adapters::kubernetes::KubeCluster::connect(
            &squad_adapters::kubernetes::KubeOptions {
                kubeconfig: Some(b.sim.kubeconfig.clone()),
                ..Default::default()
            },
            b.clock.clone(),
        )
        .await
        .unwrap()
        .with_metrics(Arc::new(b.real_api)),
    );
    let d = NativeDiagnoser::new(cluster, b.clock)
        .diagnose(&DiagnosisRequest {
            alert: b.scenario.alert(),
            workload: b.scenario.workload_ref(),
            memory: Vec::new(),
        })
        .await
        .unwrap();
    drop(b.real);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_backfilled_into_a_real_prometheus_gives_the_same_series_and_diagnosis() {
    if !available_or_skip("history_backfilled_into_a_real_prometheus").unwrap() {
        return;
    }
    let b = backfilled("oomkilled").await;
    let (scenario, real_api, sim_api) = (&b.scenario, &b.real_api, &b.sim_api);
    let now = scenario.now;
    let w = scenario.workload_ref();
    let c = &scenario.workload.container;
    let day = Duration::from_secs(24 * 3600);
    let step = Duration::from_secs(300);
    let at = now;
    let real_mem = real_api
        .memory_working_set(&w, c, day, step, at)
        .await
        .unwrap();
    let sim_mem = sim_api
        .memory_working_set(&w, c, day, step, at)
        .await
        .unwrap();
    assert!(!sim_mem.is_empty());
    // The real Prometheus carries a sample forward through its 5-minute lookback where the
    // simulated one has none (a container waiting in back-off exposes no working set): compare
    // where both have one, and require that to be nearly everywhere.
    let both: Vec<_> = sim_mem
        .iter()
        .filter_map(|s| real_mem.iter().find(|r| r.at == s.at).map(|r| (s, r)))
        .collect();
    assert!(
        both.len() * 10 >= sim_mem.len() * 9,
        "{} of {} memory samples in both",
        both.len(),
        sim_mem.len()
    );
    for (s, r) in &both {
        assert!(
            (s.value - r.value).abs() < 1.0,
            "memory at {}: simulated {}, real {}",
            s.at,
            s.value,
            r.value
        );
    }
    let real_rps = real_api.request_rates(&w, day, step, at).await.unwrap();
    let sim_rps = sim_api.request_rates(&w, day, step, at).await.unwrap();
    assert_eq!(real_rps.len(), 1);
    assert_eq!(real_rps[0].0, sim_rps[0].0);
    let close = sim_rps[0]
        .1
        .iter()
        .filter(|s| {
            real_rps[0]
                .1
                .iter()
                .find(|r| r.at == s.at)
                .is_some_and(|r| (r.value - s.value).abs() / s.value < 0.005)
        })
        .count();
    // rate() over 5 minutes of 1-minute samples is exact where traffic is flat or linear; only
    // the bends of the surge's ramp differ.
    assert!(
        close + 4 >= sim_rps[0].1.len(),
        "{close} of {} traffic samples agree",
        sim_rps[0].1.len()
    );

    let d = diagnosed_through_the_real_prometheus(b).await;
    assert_eq!(
        d.root_cause.as_str(),
        "memory_under_provisioned",
        "{}",
        d.summary
    );
    assert!(
        d.summary.contains("1269Mi") && d.summary.contains("+338%"),
        "{}",
        d.summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_throttling_backfilled_into_a_real_prometheus_reads_the_same_and_diagnoses_it() {
    if !available_or_skip("cpu_throttling_backfilled_into_a_real_prometheus").unwrap() {
        return;
    }
    let b = backfilled("cpu-throttling").await;
    let w = b.scenario.workload_ref();
    let c = &b.scenario.workload.container;
    let day = Duration::from_secs(24 * 3600);
    let step = Duration::from_secs(300);
    let now = b.scenario.now;
    let real = b.real_api.cpu(&w, c, day, step, now).await.unwrap();
    let sim = b.sim_api.cpu(&w, c, day, step, now).await.unwrap();
    for (what, real, sim) in [
        ("usage", &real.usage, &sim.usage),
        ("throttled", &real.throttled, &sim.throttled),
    ] {
        assert!(sim.len() >= 280, "{what}: {} samples", sim.len());
        // increase() and rate() extrapolate at the window's edges the same way in both; the
        // container's restart at the deploy is where they may differ.
        let agree = sim
            .iter()
            .filter(|s| {
                real.iter()
                    .find(|r| r.at == s.at)
                    .is_some_and(|r| (r.value - s.value).abs() <= 1e-3 * s.value.abs().max(1e-3))
            })
            .count();
        assert!(
            agree + 3 >= sim.len(),
            "{what}: {agree} of {} samples agree",
            sim.len()
        );
    }
    let last = sim.throttled.last().unwrap().value;
    assert!(last > 0.25 && last < 0.5, "throttled now: {last}");
    let d = diagnosed_through_the_real_prometheus(b).await;
    assert_eq!(d.root_cause.as_str(), "cpu_throttling", "{}", d.summary);
    assert!(d.summary.contains("limit 300m"), "{}", d.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_backfilled_into_a_real_prometheus_reads_alike_and_sizes_the_same_timeout() {
    if !available_or_skip("latency_backfilled_into_a_real_prometheus").unwrap() {
        return;
    }
    let b = backfilled("liveness").await;
    let w = b.scenario.workload_ref();
    let day = Duration::from_secs(24 * 3600);
    let step = Duration::from_secs(300);
    let now = b.scenario.now;
    let real = b
        .real_api
        .latency(&w, "/healthz", day, step, now)
        .await
        .unwrap();
    let sim = b
        .sim_api
        .latency(&w, "/healthz", day, step, now)
        .await
        .unwrap();
    assert!(sim.len() >= 200, "{} samples", sim.len());
    // Before the surge the containers ran for days: the two engines' histogram_quantile agree.
    let calm: Vec<_> = sim
        .iter()
        .filter(|s| s.at < now - chrono::Duration::hours(3))
        .collect();
    let agree = calm
        .iter()
        .filter(|s| {
            real.iter()
                .find(|r| r.at == s.at)
                .is_some_and(|r| (r.value - s.value).abs() <= 1e-3 * s.value.abs().max(1e-3))
        })
        .count();
    assert!(
        agree + 3 >= calm.len(),
        "{agree} of {} samples before the surge agree",
        calm.len()
    );
    // Under the surge the containers restart every few minutes (counter resets, where the
    // engines' rate() may differ); the worst 99th percentile lands in the same bucket.
    let peak =
        |s: &[squad_protocols::cluster::Sample]| s.iter().map(|x| x.value).fold(0.0, f64::max);
    let (real_peak, sim_peak) = (peak(&real), peak(&sim));
    assert!(
        sim_peak > 1.0 && sim_peak <= 2.5 && real_peak > 1.0 && real_peak <= 2.5,
        "peaks: real {real_peak}, simulated {sim_peak}"
    );
    let d = diagnosed_through_the_real_prometheus(b).await;
    assert_eq!(
        d.root_cause.as_str(),
        "liveness_probe_restarts",
        "{}",
        d.summary
    );
    let s: squad_diagnosis::families::liveness_probe::LivenessSignals =
        squad_diagnosis::family_signals(&d).unwrap();
    let p99 = s.p99_peak_seconds.unwrap();
    assert!(p99 > 1.0 && p99 <= 2.5, "{p99}");
}
