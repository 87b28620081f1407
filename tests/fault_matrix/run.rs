//! One row: the daemon on its world with the fault planned, many alerts at once, `kill -9` at
//! the row's points, until every incident settles or the deadline passes; then the measurement.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::measure::{self, Outcome};
use crate::proxy::Plan;
use crate::rows::{Port, Row};
use crate::world::{Cluster, World, api, daemon};

/// (alert name, pod): four alerts on the scenario's failing Deployment (four incidents: each
/// alert name is its own group) and two on workloads the cluster does not have.
pub const ALERTS: [(&str, &str); 6] = [
    ("KubernetesPodOOMKilled", "payment-service-7d4b9c-xk2p"),
    ("KubePodCrashLooping", "payment-service-7d4b9c-m2v7q"),
    (
        "KubeDeploymentReplicasMismatch",
        "payment-service-7d4b9c-xk2p",
    ),
    ("KubeContainerWaiting", "payment-service-7d4b9c-m2v7q"),
    ("KubePodCrashLooping", "checkout-api-5d8c7b9f4-p1x2z"),
    ("KubePodCrashLooping", "ledger-6b7c8d9f5-q3w4e"),
];

/// The (alert, workload) each alert of [`ALERTS`] must open an incident for.
pub fn expected() -> Vec<(String, String)> {
    ALERTS
        .iter()
        .map(|(name, pod)| {
            // The pod's name less its ReplicaSet hash and its own suffix.
            let base: Vec<&str> = pod.rsplitn(3, '-').collect();
            (
                (*name).to_owned(),
                format!("Deployment production/{}", base[2]),
            )
        })
        .collect()
}

fn body() -> Value {
    let alerts: Vec<Value> = ALERTS
        .iter()
        .map(|(name, pod)| {
            json!({"name": name, "status": "firing",
                   "labels": {"namespace": "production", "pod": pod, "container": "payment-api",
                              "severity": "critical"}})
        })
        .collect();
    json!({ "alerts": alerts })
}

pub const SETTLED: [&str; 3] = ["awaiting_approval", "resolved", "escalated"];

fn settled(list: &[Value]) -> bool {
    list.len() >= ALERTS.len()
        && list
            .iter()
            .all(|i| SETTLED.contains(&i["state"].as_str().unwrap_or("")))
}

fn entries(list: &[Value]) -> usize {
    list.iter()
        .map(|i| i["timeline"].as_array().map_or(0, Vec::len))
        .sum()
}

/// Runs `row`; `baseline_entries` places the kills (the fault-free run's total entries).
pub fn run(
    rt: &tokio::runtime::Handle,
    cluster: &Cluster,
    row: &Row,
    baseline_entries: usize,
    deadline: Duration,
) -> Outcome {
    let started = Instant::now();
    let world = rt.block_on(World::start(cluster, "oomkilled", row.holmes));
    let seed_head = measure::main_head(&world.repo).unwrap();
    let plan = Plan {
        seed: row.seed,
        rules: row.rules.clone(),
    };
    let proxy = match row.port {
        Port::None => None,
        Port::GitHub => Some(&world.ports.github),
        Port::Kubernetes => Some(&world.ports.kube),
        Port::Prometheus => Some(&world.ports.prometheus),
        Port::Model => Some(&world.ports.model),
        Port::Holmes => Some(&world.ports.holmes),
    };
    if let Some(p) = proxy {
        p.set_plan(plan);
    }
    let api = api();
    let mut daemon = daemon(&world.config);
    let mut kills = 0;
    let (code, text) = rt.block_on(api.post(&daemon.url, "/v1/alerts", &body()));
    assert_eq!(code, 202, "{}: {text}", row.fault);
    let answered = ALERTS.len();
    if row.kills.after_202 {
        daemon.kill_and_restart().unwrap();
        kills += 1;
    }
    let mut thresholds: Vec<usize> = row
        .kills
        .at_shares
        .iter()
        .map(|s| ((baseline_entries as f64) * s).ceil() as usize)
        .collect();
    thresholds.sort_unstable();
    thresholds.reverse();
    let mut healed = false;
    let mut last = Vec::new();
    let mut quiet_since: Option<(usize, Instant)> = None;
    // The deadline is soft: past it, the row goes on while a timeline entry was added in the
    // last 60 s (a slow incident is not a stuck one), up to 150 s more.
    let mut progress = (0, Instant::now());
    let hard = deadline + Duration::from_secs(150);
    while started.elapsed() < deadline
        || (started.elapsed() < hard && progress.1.elapsed() < Duration::from_secs(60))
    {
        if let (Some(h), Some(p), false) = (row.heal_after, proxy, healed)
            && started.elapsed() >= h
        {
            p.set_plan(Plan::default());
            healed = true;
        }
        if let Some(list) = rt.block_on(api.incidents(&daemon.url)) {
            let total = entries(&list);
            if total != progress.0 {
                progress = (total, Instant::now());
            }
            if let Some(&k) = thresholds.last()
                && total >= k
            {
                thresholds.pop();
                daemon.kill_and_restart().unwrap();
                kills += 1;
                continue;
            }
            let done = settled(&list) && thresholds.is_empty();
            last = list;
            if done {
                // Settled, and nothing new for two seconds (late reports land).
                match quiet_since {
                    Some((n, at)) if n == total && at.elapsed() >= Duration::from_secs(2) => break,
                    Some((n, _)) if n == total => {}
                    _ => quiet_since = Some((total, Instant::now())),
                }
            } else if settled(&last) && !thresholds.is_empty() {
                // Settled before the kill point: the remaining kills cannot happen.
                thresholds.clear();
            }
        }
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(250));
    }
    if let Some(list) = rt.block_on(api.incidents(&daemon.url)) {
        last = list;
    }
    let log = daemon.log();
    daemon.kill();
    // SQUAD_FAULT_MATRIX_DUMP=<dir>: each row's incidents and daemon log, to look at.
    if let Ok(dir) = std::env::var("SQUAD_FAULT_MATRIX_DUMP") {
        let name: String = format!("{}-{}-{}", row.port.name(), row.fault, row.seed)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let dir = std::path::Path::new(&dir);
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_string_pretty(&last).unwrap_or_default(),
        );
        let _ = std::fs::write(dir.join(format!("{name}.log")), &log);
    }
    let injected = proxy.map(|p| p.injected()).unwrap_or_default();
    let requests = proxy.map_or(0, |p| p.requests());
    let outcome = measure::measure(
        row,
        answered,
        &last,
        &world,
        &seed_head,
        kills,
        (injected, requests),
        started.elapsed(),
    );
    if !outcome.clean() {
        eprintln!(
            "--- {} {}: daemon log (last 4000 bytes):\n{}",
            row.port.name(),
            row.fault,
            &log[log.len().saturating_sub(4000)..]
        );
    }
    outcome
}
