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
//! Each test skips with a message when no kube-apiserver is built, unless `CI=true`. The model's
//! clock runs in real time from the scenario's alert (the runtime is not paused: the apiserver,
//! etcd and kubectl are real processes), so the model's pods move on by themselves after a while
//! (crashloop's container restarts about a minute in); each test seeds from the model right after
//! its clock starts and reads both sides well within that.

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
        let real = apiserver::start_or_skip(test, options).await.unwrap()?;
        let scenario = Arc::new(Scenario::embedded(scenario).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::starting_at(scenario.now);
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

// ---- Facts through the adapter ----

/// Every difference between what the adapter read from each server.
#[derive(Default)]
struct Differences(Vec<String>);

impl Differences {
    fn check<T: PartialEq + Debug>(
        &mut self,
        what: &str,
        simulated: PortResult<T>,
        real: PortResult<T>,
    ) {
        let same = match (&simulated, &real) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => std::mem::discriminant(a) == std::mem::discriminant(b),
            _ => false,
        };
        if !same {
            self.0.push(format!(
                "{what}:\n    simulated: {simulated:?}\n    real:      {real:?}"
            ));
        }
    }

    /// Like [`Differences::check`], where the model holds the fact: an error from both is a
    /// difference too (it would hide that neither server serves it).
    fn check_ok<T: PartialEq + Debug>(
        &mut self,
        what: &str,
        simulated: PortResult<T>,
        real: PortResult<T>,
    ) {
        if let (Err(a), Err(b)) = (&simulated, &real) {
            self.0.push(format!(
                "{what}: an error from both\n    simulated: {a}\n    real:      {b}"
            ));
        }
        self.check(what, simulated, real);
    }

    /// Rows of kubectl output; printing nothing at all from both is a difference too.
    fn rows(&mut self, what: &str, simulated: Vec<Vec<String>>, real: Vec<Vec<String>>) {
        if simulated.is_empty() && real.is_empty() {
            self.0.push(format!("{what}: nothing printed by either"));
        }
        self.check::<Vec<Vec<String>>>(what, Ok(simulated), Ok(real));
    }
}

/// `created_at` is the server's creationTimestamp: a real apiserver assigns it at seeding.
fn pod_facts(mut p: PodInfo) -> PodInfo {
    p.created_at = DateTime::UNIX_EPOCH;
    p
}

/// `at` is the ReplicaSet's creationTimestamp: a real apiserver assigns it at seeding.
fn revision_facts(mut r: Revision) -> Revision {
    r.at = DateTime::UNIX_EPOCH;
    r
}

fn sorted<T, K: Ord>(mut v: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    v.sort_by_key(|x| key(x));
    v
}

fn event_key(e: &ClusterEvent) -> (DateTime<chrono::Utc>, String, String, String) {
    (
        e.last_seen,
        e.reason.clone(),
        e.object.clone(),
        e.message.clone(),
    )
}

/// Reads every fact of the `Cluster` port from both servers. Only `PodInfo::created_at` and
/// `Revision::at` are left out: they are creation times, which a real apiserver assigns itself.
async fn same_facts(t: &Twin) -> Differences {
    let sim = t.adapter(&t.backends.kubeconfig).await;
    let real = t.adapter(t.real.kubeconfig_path()).await;
    let s = &t.scenario;
    let w = s.workload_ref();
    let ns = w.namespace.as_str();
    // The scenario's first pod, or, when it is gone (a Job's pod deleted at its deadline), the
    // first the workload has.
    let named = s.workload.pods[0].clone();
    let pod = if t.backends.sim.pod(ns, &named).is_ok() {
        named
    } else {
        t.backends
            .sim
            .pods_of(&w)
            .ok()
            .and_then(|p| p.first().map(|p| p.name.clone()))
            .unwrap_or(named)
    };
    let pod = pod.as_str();
    let container = s.workload.container.as_str();
    let node = s.workload.node.as_str();
    let mut d = Differences::default();
    if w.kind == "CronJob" {
        // `status.lastSuccessfulTime` is batch/v1 (1.21+): 1.20's v1beta1 has none. The Jobs'
        // creation times are the real apiserver's own.
        let cron = |r: PortResult<squad_protocols::cluster::CronJobInfo>| {
            r.map(|mut c| {
                c.last_successful_time = None;
                c.jobs
                    .iter_mut()
                    .for_each(|j| j.created_at = Default::default());
                c
            })
        };
        d.check_ok(
            "cron_job",
            cron(sim.cron_job(ns, &w.name).await),
            cron(real.cron_job(ns, &w.name).await),
        );
    }

    d.check_ok(
        "pod",
        sim.pod(ns, pod).await.map(pod_facts),
        real.pod(ns, pod).await.map(pod_facts),
    );
    let pods = |r: PortResult<Vec<PodInfo>>| {
        r.map(|v| sorted(v.into_iter().map(pod_facts).collect(), |p| p.name.clone()))
    };
    d.check_ok(
        "pods_of",
        pods(sim.pods_of(&w).await),
        pods(real.pods_of(&w).await),
    );
    d.check_ok(
        "owner_of",
        sim.owner_of(ns, pod).await,
        real.owner_of(ns, pod).await,
    );
    d.check_ok("workload", sim.workload(&w).await, real.workload(&w).await);
    let history = |r: PortResult<Vec<Revision>>| {
        r.map(|v| v.into_iter().map(revision_facts).collect::<Vec<_>>())
    };
    d.check_ok(
        "rollout_history",
        history(sim.rollout_history(&w).await),
        history(real.rollout_history(&w).await),
    );
    let events = |r: PortResult<Vec<ClusterEvent>>| r.map(|v| sorted(v, event_key));
    d.check_ok(
        "events of the pod",
        events(sim.events(ns, pod).await),
        events(real.events(ns, pod).await),
    );
    d.check_ok(
        "events of the node",
        events(sim.events("default", node).await),
        events(real.events("default", node).await),
    );
    let served_before = t.kubelet.served();
    for previous in [false, true] {
        d.check(
            &format!("logs (previous: {previous})"),
            sim.logs(ns, pod, container, previous, 20).await,
            real.logs(ns, pod, container, previous, 20).await,
        );
    }
    // A pod that is not scheduled has no kubelet to ask (both servers refuse alike).
    let scheduled = t
        .backends
        .sim
        .pod(ns, pod)
        .is_ok_and(|p| !p.node.is_empty());
    if scheduled && t.kubelet.served() < served_before + 2 {
        d.0.push("the real apiserver did not fetch the logs from the fake kubelet".into());
    }
    d.check_ok("hpas", sim.hpas(ns).await, real.hpas(ns).await);
    d.check_ok(
        "network_policies",
        sim.network_policies(ns).await,
        real.network_policies(ns).await,
    );
    let sa = t.backends.sim.workload(&w).unwrap().service_account;
    let rules = |r: PortResult<Vec<squad_protocols::cluster::RbacRule>>| {
        r.map(|v| {
            sorted(v, |x| {
                (x.role.clone(), x.binding.clone(), x.resources.clone())
            })
        })
    };
    d.check_ok(
        "rbac_rules",
        rules(sim.rbac_rules(ns, &sa).await),
        rules(real.rbac_rules(ns, &sa).await),
    );
    let image = t.backends.sim.workload(&w).unwrap().containers[0]
        .image
        .clone();
    d.check_ok(
        "image_vulnerabilities",
        sim.image_vulnerabilities(&image).await,
        real.image_vulnerabilities(&image).await,
    );
    let secrets = |r: PortResult<Vec<(String, Vec<String>)>>| r.map(|v| sorted(v, |x| x.0.clone()));
    d.check_ok(
        "secret_keys",
        secrets(sim.secret_keys(ns).await),
        secrets(real.secret_keys(ns).await),
    );
    d.check_ok("node", sim.node(node).await, real.node(node).await);
    d.check_ok("services", sim.services(ns).await, real.services(ns).await);
    d.check_ok(
        "workloads",
        sim.workloads(ns).await,
        real.workloads(ns).await,
    );
    d.check_ok("claims", sim.claims(ns).await, real.claims(ns).await);
    let classes = |r: PortResult<Vec<squad_protocols::cluster::StorageClassInfo>>| {
        r.map(|v| sorted(v, |c| c.name.clone()))
    };
    d.check_ok(
        "storage_classes",
        classes(sim.storage_classes().await),
        classes(real.storage_classes().await),
    );
    // The volume controller records a failure at every resync (15 s): the model's count and
    // last time move on between seeding and comparing (seconds, with several apiservers on two
    // cores), so those two are left out, as creation times are.
    let settled = |r: PortResult<Vec<ClusterEvent>>| {
        r.map(|v| {
            sorted(v, event_key)
                .into_iter()
                .map(|e| (e.kind, e.reason, e.message, e.first_seen, e.object))
                .collect::<Vec<_>>()
        })
    };
    for claim in &t.backends.sim.workload(&w).unwrap().claims {
        d.check_ok(
            &format!("events of claim {claim}"),
            settled(sim.events(ns, claim).await),
            settled(real.events(ns, claim).await),
        );
    }
    d
}

async fn facts_match(scenario: &str) {
    const TEST: &str = "the_adapter_reads_the_same_facts_from_the_real_apiserver";
    let started = tokio::time::Instant::now();
    let Some(t) = Twin::start(TEST, scenario, Options::default()).await else {
        return;
    };
    let seeded_in = started.elapsed();
    assert!(
        // The scenario's pods, and those of an older ReplicaSet that keeps serving.
        t.seeded.created.get("Pod").copied().unwrap_or(0) >= t.scenario.workload.pods.len()
            && t.seeded.created.contains_key("Event")
            && t.seeded.statuses.get("Pod") == t.seeded.created.get("Pod"),
        "{scenario}: seeded {:?}",
        t.seeded
    );
    let d = same_facts(&t).await;
    let moved = t.model_moved_on();
    eprintln!(
        "{scenario}: apiserver up and seeded in {seeded_in:?} ({} objects), compared in {:?}",
        t.seeded.total(),
        started.elapsed() - seeded_in
    );
    assert!(
        d.0.is_empty(),
        "{scenario}: the adapter read different facts from the simulated and the real apiserver{}:\n{}",
        if moved {
            " (the model's pods also changed since seeding: the test ran too slowly)"
        } else {
            ""
        },
        d.0.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_reads_the_same_facts_from_the_real_apiserver() {
    tokio::join!(
        facts_match("oomkilled"),
        facts_match("crashloop"),
        facts_match("pvc-pending"),
        facts_match("rbac"),
        facts_match("netpol"),
        facts_match("volume-full"),
        facts_match("bad-args"),
        facts_match("no-endpoints"),
        facts_match("hpa-maxed"),
        facts_match("cronjob-failed")
    );
}

// ---- kubectl ----

/// `kubectl --kubeconfig=... ARGS`, run off the runtime's threads (both servers under test may
/// be served by this runtime).
async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(apiserver::kubectl_program());
    // Discovery is cached per server next to its kubeconfig: kubectl's default cache is keyed
    // by host:port, and a port reused by another server (1.20 vs the simulated 1.33) would
    // answer with the wrong resources.
    cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!(
            "--cache-dir={}",
            kubeconfig
                .parent()
                .map_or_else(
                    || std::path::PathBuf::from("."),
                    |d| d.join("kubectl-cache")
                )
                .display()
        ))
        .args(args);
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap()
}

async fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args).await;
    assert!(
        out.status.success(),
        "kubectl {} against {} failed ({}): {}",
        args.join(" "),
        kubeconfig.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A header's columns and the character offset each starts at (columns are separated by two
/// or more spaces; a header may hold one space, as in `LAST SEEN`).
fn columns(header: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = header.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !(chars[i] == ' ' && chars.get(i + 1).is_none_or(|c| *c == ' ')) {
            i += 1;
        }
        out.push((chars[start..i].iter().collect::<String>(), start));
    }
    out
}

/// The rows of kubectl's table output as column → cell, for every section (one per resource
/// type, separated by blank lines, each under its own header). Cells are cut at the header's
/// offsets, so a cell may hold spaces (`28 (2m ago)`).
fn rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut header: Option<Vec<(String, usize)>> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            header = None;
            continue;
        }
        let Some(cols) = &header else {
            header = Some(columns(line));
            continue;
        };
        let chars: Vec<char> = line.chars().collect();
        let mut row = BTreeMap::new();
        for (i, (name, start)) in cols.iter().enumerate() {
            let end = cols
                .get(i + 1)
                .map_or(chars.len(), |c| c.1)
                .min(chars.len());
            let start = (*start).min(end);
            let cell: String = chars[start..end].iter().collect();
            row.insert(name.clone(), cell.trim().to_owned());
        }
        out.push(row);
    }
    out
}

/// Selected cells of every row, sorted.
fn cells(
    rows: &[BTreeMap<String, String>],
    pick: impl Fn(&BTreeMap<String, String>) -> Vec<String>,
) -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = rows.iter().map(pick).collect();
    v.sort();
    v
}

fn cell(row: &BTreeMap<String, String>, column: &str) -> String {
    row.get(column).cloned().unwrap_or_default()
}

/// Every cell but AGE (ages differ: the real objects were created at seeding).
fn all_but_age(row: &BTreeMap<String, String>) -> Vec<String> {
    row.iter()
        .filter(|(k, _)| k.as_str() != "AGE")
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// The lines of `kubectl describe`'s Events table (Type, Reason, Message), dedented.
fn described_events(text: &str) -> Vec<Vec<String>> {
    let Some((_, after)) = text.split_once("\nEvents:") else {
        return Vec::new();
    };
    let table: Vec<&str> = after
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.trim_start().starts_with("----"))
        .map(|l| l.get(2..).unwrap_or(""))
        .collect();
    cells(&rows(&table.join("\n")), |r| {
        vec![cell(r, "Type"), cell(r, "Reason"), cell(r, "Message")]
    })
}

async fn kubectl_matches(scenario: &str) {
    const TEST: &str = "kubectl_prints_the_same_rows_from_both";
    let Some(t) = Twin::start(TEST, scenario, Options::default()).await else {
        return;
    };
    let sim_kc = t.backends.kubeconfig.clone();
    let real_kc: PathBuf = t.real.kubeconfig_path().to_path_buf();
    let s = &t.scenario;
    let ns = s.workload.namespace.as_str();
    let pod = s.workload.pods[0].as_str();
    let container = s.workload.container.as_str();
    let mut d = Differences::default();

    // Pods: the restart count is RESTARTS' first token (`28 (2m ago)` from servers >= 1.22, and
    // from the simulated one; a bare `28` from 1.20).
    let get_pods = ["get", "pods", "-n", ns];
    let pod_cells = |r: &BTreeMap<String, String>| {
        vec![
            cell(r, "NAME"),
            cell(r, "READY"),
            cell(r, "STATUS"),
            cell(r, "RESTARTS")
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_owned(),
        ]
    };
    d.rows(
        "kubectl get pods",
        cells(&rows(&kubectl_ok(&sim_kc, &get_pods).await), pod_cells),
        cells(&rows(&kubectl_ok(&real_kc, &get_pods).await), pod_cells),
    );

    let get_more = ["get", "deploy,hpa,netpol", "-n", ns];
    d.rows(
        "kubectl get deploy,hpa,netpol",
        cells(&rows(&kubectl_ok(&sim_kc, &get_more).await), all_but_age),
        cells(&rows(&kubectl_ok(&real_kc, &get_more).await), all_but_age),
    );

    // describe: the last termination, and the pod's Events (found by the pod's uid, which the
    // seeding rewrote in every Event).
    let describe = ["describe", "pod", pod, "-n", ns];
    let sim_described = kubectl_ok(&sim_kc, &describe).await;
    let real_described = kubectl_ok(&real_kc, &describe).await;
    let last = t.backends.sim.pod(ns, pod).unwrap().containers[0]
        .last_termination
        .clone()
        .unwrap();
    for (server, text) in [("simulated", &sim_described), ("real", &real_described)] {
        for line in [
            "Last State:     Terminated".to_owned(),
            format!("Reason:       {}", last.reason),
            format!("Exit Code:    {}", last.exit_code),
        ] {
            assert!(
                text.contains(&line),
                "{scenario}: kubectl describe pod against the {server} apiserver lacks {line:?}:\n{text}"
            );
        }
    }
    if scenario == "oomkilled" {
        assert_eq!((last.reason.as_str(), last.exit_code), ("OOMKilled", 137));
    }
    d.rows(
        "kubectl describe pod: Events",
        described_events(&sim_described),
        described_events(&real_described),
    );

    // logs: through the real apiserver, they come from the fake kubelet.
    let logs = ["logs", "--previous", pod, "-c", container, "-n", ns];
    let sim_logs = kubectl_ok(&sim_kc, &logs).await;
    let real_logs = kubectl_ok(&real_kc, &logs).await;
    assert!(!sim_logs.trim().is_empty(), "{scenario}: no previous logs");
    d.check::<String>("kubectl logs --previous", Ok(sim_logs), Ok(real_logs));

    // Events: the namespace's, and the node's (in `default`; only OOM kills make some).
    let event_cells = |r: &BTreeMap<String, String>| vec![cell(r, "REASON"), cell(r, "OBJECT")];
    let get_events = ["get", "events", "-n", ns];
    d.rows(
        &format!("kubectl get events -n {ns}"),
        cells(&rows(&kubectl_ok(&sim_kc, &get_events).await), event_cells),
        cells(&rows(&kubectl_ok(&real_kc, &get_events).await), event_cells),
    );
    let get_events = ["get", "events", "-n", "default"];
    d.check::<Vec<Vec<String>>>(
        "kubectl get events -n default",
        Ok(cells(
            &rows(&kubectl_ok(&sim_kc, &get_events).await),
            event_cells,
        )),
        Ok(cells(
            &rows(&kubectl_ok(&real_kc, &get_events).await),
            event_cells,
        )),
    );

    let moved = t.model_moved_on();
    assert!(
        d.0.is_empty(),
        "{scenario}: kubectl printed different rows from the simulated and the real apiserver{}:\n{}",
        if moved {
            " (the model's pods also changed since seeding: the test ran too slowly)"
        } else {
            ""
        },
        d.0.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_prints_the_same_rows_from_both() {
    tokio::join!(kubectl_matches("oomkilled"), kubectl_matches("crashloop"));
}

// ---- Served objects, field by field ----

/// Every resource the simulated server serves objects of, in one `kubectl get` (each at the
/// version the simulated server serves it). Cluster roles and bindings are left out: the world
/// has none, and a real apiserver holds its bootstrap policy there.
const SIM_RESOURCES: &str = "namespaces,nodes,pods,events,events.v1.events.k8s.io,secrets,\
     serviceaccounts,services,endpoints,configmaps,deployments.v1.apps,replicasets.v1.apps,\
     statefulsets.v1.apps,daemonsets.v1.apps,horizontalpodautoscalers.v2.autoscaling,\
     networkpolicies.v1.networking.k8s.io,roles.v1.rbac.authorization.k8s.io,\
     rolebindings.v1.rbac.authorization.k8s.io,persistentvolumeclaims,persistentvolumes,\
     storageclasses.v1.storage.k8s.io,vulnerabilityreports.v1alpha1.aquasecurity.github.io,\
     jobs.v1.batch,cronjobs.v1.batch";

/// The same resources on 1.20, which serves HorizontalPodAutoscalers up to `v2beta2` and
/// CronJobs at `v1beta1`.
fn real_resources() -> String {
    SIM_RESOURCES
        .replace(
            "horizontalpodautoscalers.v2.autoscaling",
            "horizontalpodautoscalers.v2beta2.autoscaling",
        )
        .replace("cronjobs.v1.batch", "cronjobs.v1beta1.batch")
}

/// A known, intended difference between the servers: tolerated at `path` (and below it) of the
/// objects whose key starts with `object` (`Kind[.group] [namespace/]name`). An empty `path`
/// is the whole object, served by one side only.
struct Allowed {
    object: &'static str,
    path: &'static str,
    /// Why the simulated server differs there on purpose.
    why: &'static str,
}

/// Kept short: each entry is a difference the simulated server keeps on purpose. Everything else
/// a real apiserver fills in or normalises, the simulated one does too (`world.rs`).
const ALLOWED: &[Allowed] = &[
    Allowed {
        object: "HorizontalPodAutoscaler.autoscaling ",
        path: ".apiVersion",
        why: "1.20 serves autoscaling/v2beta2 at most; the simulated server serves v2 (GA since \
              1.23), whose shape is the same for the resource metrics the world uses",
    },
    Allowed {
        object: "CronJob.batch ",
        path: ".status.lastSuccessfulTime",
        why: "a batch/v1 field (1.21+): 1.20's batch/v1beta1 CronJob has no place for it",
    },
    Allowed {
        object: "CronJob.batch ",
        path: ".metadata.generation",
        why: "1.20 counts no generations of CronJobs and Jobs; later servers (the simulated \
              one serves 1.33) start them at 1 on create",
    },
    Allowed {
        object: "Job.batch ",
        path: ".metadata.generation",
        why: "as for CronJobs: 1.20 counts no generations of Jobs",
    },
    Allowed {
        object: "CronJob.batch ",
        path: ".apiVersion",
        why: "1.20 serves batch/v1beta1 CronJobs; the simulated server serves batch/v1 (GA since \
              1.21), the same shape",
    },
    Allowed {
        object: "Service default/kubernetes",
        path: "",
        why: "the apiserver's own Service, made by its bootstrap controller; the simulated \
              cluster models the workload's objects, not the control plane's",
    },
];

/// `Kind[.group] [namespace/]name`: one object's identity on both servers.
fn object_key(o: &Value) -> String {
    let kind = o["kind"].as_str().unwrap_or("");
    let group = o["apiVersion"]
        .as_str()
        .and_then(|v| v.rsplit_once('/'))
        .map_or(String::new(), |(g, _)| format!(".{g}"));
    let ns = o["metadata"]["namespace"]
        .as_str()
        .map_or(String::new(), |n| format!("{n}/"));
    let name = o["metadata"]["name"].as_str().unwrap_or("");
    format!("{kind}{group} {ns}{name}")
}

/// Removes the value at `path` (keys separated by `/`; `*` is every element of an array or
/// every value of a map).
fn remove_at(v: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        if let Some(m) = v.as_object_mut() {
            m.remove(*first);
        }
        return;
    }
    match (*first, v) {
        ("*", Value::Array(items)) => items.iter_mut().for_each(|i| remove_at(i, rest)),
        ("*", Value::Object(m)) => m.values_mut().for_each(|i| remove_at(i, rest)),
        (key, Value::Object(m)) => {
            if let Some(child) = m.get_mut(key) {
                remove_at(child, rest);
            }
        }
        _ => {}
    }
}

/// An object without what a server assigns itself or what seeding necessarily makes different:
/// identity and bookkeeping metadata, uids in references and Job labels (the seeder rewrote
/// them), the
/// Deployment's generation (the simulated one counts rollouts, where a real one counts spec
/// writes and seeding writes once), the Node's heartbeat and transition times (the simulated
/// server's clock runs on) and its kubelet port (the fake kubelet's), and Secret values (only
/// their keys are modelled).
fn comparable(mut o: Value) -> Value {
    for path in [
        "metadata/uid",
        "metadata/resourceVersion",
        "metadata/creationTimestamp",
        "metadata/managedFields",
        "metadata/selfLink",
        "metadata/ownerReferences/*/uid",
        "involvedObject/uid",
        "regarding/uid",
        // A Job's selector, its pods' and template's label, and a CronJob's active Jobs hold
        // the Job's uid.
        "spec/selector/matchLabels/controller-uid",
        "spec/template/metadata/labels/controller-uid",
        "metadata/labels/controller-uid",
        "status/active/*/uid",
    ] {
        remove_at(&mut o, &path.split('/').collect::<Vec<_>>());
    }
    match o["kind"].as_str().unwrap_or("") {
        "Deployment" => remove_at(&mut o, &["metadata", "generation"]),
        "Node" => {
            for path in [
                "status/conditions/*/lastHeartbeatTime",
                "status/conditions/*/lastTransitionTime",
                "status/daemonEndpoints/kubeletEndpoint/Port",
            ] {
                remove_at(&mut o, &path.split('/').collect::<Vec<_>>());
            }
        }
        "Secret" => {
            if let Some(data) = o.get_mut("data").and_then(Value::as_object_mut) {
                data.values_mut().for_each(|v| *v = json!("(value)"));
            }
        }
        _ => {}
    }
    o
}

/// The objects of a `kubectl get -o json` list, comparable, by key.
fn served_objects(list: &str) -> BTreeMap<String, Value> {
    let list: Value = serde_json::from_str(list).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (object_key(o), comparable(o.clone())))
        .collect()
}

/// One field that differs: `path` in `object`, the simulated value vs the real one.
struct FieldDifference {
    object: String,
    path: String,
    simulated: String,
    real: String,
}

impl std::fmt::Display for FieldDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() { "" } else { " " };
        write!(
            f,
            "{}{path}{}: {} vs {}",
            self.object, self.path, self.simulated, self.real
        )
    }
}

impl FieldDifference {
    fn allowed(&self) -> Option<&'static Allowed> {
        ALLOWED.iter().find(|a| {
            let at_path = if a.path.is_empty() {
                self.path.is_empty()
            } else {
                self.path == a.path || self.path.starts_with(&format!("{}.", a.path))
            };
            self.object.starts_with(a.object) && at_path
        })
    }
}

fn shown(v: Option<&Value>) -> String {
    v.map_or("(absent)".to_owned(), Value::to_string)
}

/// Every leaf where `simulated` and `real` differ, with its path (`.spec.containers[0].ports`).
/// An absent key and an explicit `null` are different: that is what clients see.
fn field_differences(
    object: &str,
    path: &str,
    simulated: &Value,
    real: &Value,
    out: &mut Vec<FieldDifference>,
) {
    let difference = |path: String, s: Option<&Value>, r: Option<&Value>| FieldDifference {
        object: object.to_owned(),
        path,
        simulated: shown(s),
        real: shown(r),
    };
    match (simulated, real) {
        (Value::Object(s), Value::Object(r)) => {
            let keys: BTreeSet<&String> = s.keys().chain(r.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (s.get(k), r.get(k)) {
                    (Some(a), Some(b)) => field_differences(object, &p, a, b, out),
                    (a, b) => out.push(difference(p, a, b)),
                }
            }
        }
        (Value::Array(s), Value::Array(r)) if s.len() == r.len() => {
            for (i, (a, b)) in s.iter().zip(r).enumerate() {
                field_differences(object, &format!("{path}[{i}]"), a, b, out);
            }
        }
        (s, r) if s != r => out.push(difference(path.to_owned(), Some(s), Some(r))),
        _ => {}
    }
}

async fn served_objects_match(scenario: &str) {
    const TEST: &str = "served_objects_match_the_real_apiserver";
    let Some(t) = Twin::start(TEST, scenario, Options::default()).await else {
        return;
    };
    let sim = served_objects(
        &kubectl_ok(
            &t.backends.kubeconfig,
            &["get", SIM_RESOURCES, "-A", "-o", "json"],
        )
        .await,
    );
    let real = served_objects(
        &kubectl_ok(
            t.real.kubeconfig_path(),
            &["get", &real_resources(), "-A", "-o", "json"],
        )
        .await,
    );
    // Every kind in the world is compared (a kind added to the world without a resource above
    // would otherwise go unchecked).
    let world = t.backends.sim.world().unwrap();
    let compared: BTreeSet<&str> = sim.values().filter_map(|o| o["kind"].as_str()).collect();
    let modelled: BTreeSet<&str> = world.objects.iter().map(objects::kind).collect();
    assert!(
        modelled.is_subset(&compared),
        "{scenario}: the world holds kinds not compared: {:?}",
        modelled.difference(&compared).collect::<Vec<_>>()
    );
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in sim.values() {
        *counts.entry(o["kind"].as_str().unwrap_or("")).or_default() += 1;
    }
    eprintln!(
        "{scenario}: comparing {} simulated objects ({counts:?}) with {} real ones",
        sim.len(),
        real.len()
    );
    let mut differences = Vec::new();
    let keys: BTreeSet<&String> = sim.keys().chain(real.keys()).collect();
    for key in keys {
        match (sim.get(key), real.get(key)) {
            (Some(s), Some(r)) => field_differences(key, "", s, r, &mut differences),
            (s, r) => differences.push(FieldDifference {
                object: key.clone(),
                path: String::new(),
                simulated: s.map_or("(absent)".into(), |_| "(served)".into()),
                real: r.map_or("(absent)".into(), |_| "(served)".into()),
            }),
        }
    }
    // An object the model changed after seeding (its clock runs on) differs for that reason.
    let moved = t.moved_since_seeding();
    let (moved_on, differences): (Vec<_>, Vec<_>) = differences.into_iter().partition(|d| {
        d.object
            .split_once(' ')
            .is_some_and(|(_, name)| moved.contains(name))
    });
    for d in &moved_on {
        eprintln!("{scenario}: not compared, the model moved on since seeding: {d}");
    }
    let (allowed, unexpected): (Vec<_>, Vec<_>) =
        differences.iter().partition(|d| d.allowed().is_some());
    for d in &allowed {
        eprintln!(
            "{scenario}: allowed: {d} ({})",
            d.allowed().map_or("", |a| a.why)
        );
    }
    let moved = t.model_moved_on();
    assert!(
        unexpected.is_empty(),
        "{scenario}: the simulated server serves {} object(s) differently from the real \
         apiserver{} (path: simulated vs real):\n{}",
        unexpected
            .iter()
            .map(|d| &d.object)
            .collect::<BTreeSet<_>>()
            .len(),
        if moved {
            " (the model's pods also changed since seeding: the test ran too slowly)"
        } else {
            ""
        },
        unexpected
            .iter()
            .map(|d| format!("  {d}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_objects_match_the_real_apiserver() {
    tokio::join!(
        served_objects_match("oomkilled"),
        served_objects_match("crashloop"),
        served_objects_match("pvc-pending"),
        served_objects_match("volume-full"),
        served_objects_match("no-endpoints"),
        served_objects_match("hpa-maxed"),
        served_objects_match("cronjob-failed")
    );
}

// ---- The crew ----

fn crew_settings() -> Settings {
    let mut settings = Settings::default();
    // Nobody merges here: Ralph reports the PR pending at once instead of waiting a day.
    settings.verification.merge_wait_hours = 0;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crew_handles_the_incident_against_the_real_apiserver() {
    const TEST: &str = "the_crew_handles_the_incident_against_the_real_apiserver";
    let Some(t) = Twin::start(TEST, "oomkilled", Options::default()).await else {
        return;
    };
    let cluster = t.real_adapter_with_metrics(t.real.kubeconfig_path()).await;
    let simulated_reads = t.backends.api.requests();
    let squad = Squad::builder()
        .clock(t.clock.clone())
        .settings(crew_settings())
        .cluster(cluster.clone())
        .forge(t.backends.forge.clone())
        .app_repo(t.backends.app.clone())
        .start()
        .await
        .unwrap();
    let id = squad.ingest(t.scenario.alert()).await.unwrap();
    let incident = squad
        .wait_until(
            &id,
            |i| i.state == IncidentState::AwaitingApproval && i.pr.is_some(),
            CREW_WITHIN,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", t.real.log_tail()));
    squad.shutdown().await;

    // The crew read the cluster from the real apiserver only (metrics from the simulated
    // Prometheus API, which is not counted).
    assert!(cluster.requests() > 0);
    assert_eq!(t.backends.api.requests(), simulated_reads);

    // Both checks are reported together: a wrong diagnosis still shows what the PR did.
    let mut wrong = Vec::new();
    let diagnosis = incident.diagnosis.as_ref().unwrap();
    if diagnosis.root_cause != RootCause::from_static("memory_under_provisioned") {
        wrong.push(format!(
            "root cause {} (expected memory_under_provisioned): {}\n{:#?}",
            diagnosis.root_cause.as_str(),
            diagnosis.summary,
            diagnosis.evidence
        ));
    }
    let pr = incident.pr.as_ref().unwrap();
    let manifest = &t.scenario.workload.manifest;
    let text = GitRepo::open(&t.dir.path().join("gitops"))
        .unwrap()
        .read(&pr.branch, manifest)
        .unwrap()
        .unwrap();
    let objects = objects::parse(manifest, &text).unwrap();
    let deployment = objects
        .iter()
        .find(|o| objects::kind(o) == "Deployment")
        .unwrap();
    let info = objects::workload_info(deployment, &t.scenario.workload.namespace);
    let limit = info
        .container(&t.scenario.workload.container)
        .and_then(|c| c.limits.get("memory"))
        .map(|q| q.to_string());
    if limit.as_deref() != Some("1.5Gi") {
        wrong.push(format!(
            "the PR's memory limit is {limit:?}, not 1.5Gi:\n{text}"
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// get/list/watch on everything the Kubernetes adapter reads, except `pods/log`.
fn everything_but_logs() -> Vec<PolicyRule> {
    let rule = |group: &str, resources: &[&str]| PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: ["get", "list", "watch"].map(str::to_owned).to_vec(),
        ..PolicyRule::default()
    };
    vec![
        rule(
            "",
            &[
                "pods",
                "events",
                "nodes",
                "secrets",
                "persistentvolumeclaims",
            ],
        ),
        rule("storage.k8s.io", &["storageclasses"]),
        rule(
            "apps",
            &[
                "deployments",
                "replicasets",
                "statefulsets",
                "daemonsets",
                "controllerrevisions",
            ],
        ),
        rule("batch", &["jobs", "cronjobs"]),
        rule("autoscaling", &["horizontalpodautoscalers"]),
        rule("networking.k8s.io", &["networkpolicies"]),
        rule(
            "rbac.authorization.k8s.io",
            &[
                "roles",
                "rolebindings",
                "clusterroles",
                "clusterrolebindings",
            ],
        ),
        rule("events.k8s.io", &["events"]),
        rule("aquasecurity.github.io", &["vulnerabilityreports"]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_log_permission_degrades_the_diagnosis() {
    const TEST: &str = "a_missing_log_permission_degrades_the_diagnosis";
    let Some(t) = Twin::start(TEST, "crashloop", Options { rbac: true }).await else {
        return;
    };
    let admin = seed::client(t.real.kubeconfig_path()).await.unwrap();
    let name = "squad-reader-without-logs";
    Api::<ClusterRole>::all(admin.clone())
        .create(
            &PostParams::default(),
            &ClusterRole {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..ObjectMeta::default()
                },
                rules: Some(everything_but_logs()),
                ..ClusterRole::default()
            },
        )
        .await
        .unwrap();
    // The harness's viewer is user `viewer`, in group `squad:viewers` only.
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(
            &PostParams::default(),
            &ClusterRoleBinding {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..ObjectMeta::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: name.into(),
                },
                subjects: Some(vec![Subject {
                    kind: "Group".into(),
                    name: "squad:viewers".into(),
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    namespace: None,
                }]),
            },
        )
        .await
        .unwrap();

    let viewer_kc = t.real.viewer_kubeconfig_path().unwrap().to_path_buf();
    let cluster = t.real_adapter_with_metrics(&viewer_kc).await;
    let s = &t.scenario;
    let (ns, pod) = (s.workload.namespace.as_str(), s.workload.pods[0].as_str());
    // RBAC's caches catch up with a new binding within moments.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while cluster.pod(ns, pod).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the viewer still cannot read pod {ns}/{pod}: {:?}",
            cluster.pod(ns, pod).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let denied = cluster
        .logs(ns, pod, &s.workload.container, true, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(denied, PortError::Forbidden { .. }) && denied.to_string().contains("pods/log"),
        "{denied}"
    );

    let squad = Squad::builder()
        .clock(t.clock.clone())
        .settings(crew_settings())
        .cluster(cluster.clone())
        .forge(t.backends.forge.clone())
        .app_repo(t.backends.app.clone())
        .start()
        .await
        .unwrap();
    let id = squad.ingest(s.alert()).await.unwrap();
    let incident = squad
        .wait_until(&id, |i| i.diagnosis.is_some() || settled(i), CREW_WITHIN)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", t.real.log_tail()));
    let events = squad.journal().store().events(&id).unwrap();
    squad.shutdown().await;

    assert_ne!(incident.state, IncidentState::Escalated, "{incident:#?}");
    let diagnosis = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Diagnosed { diagnosis } => Some(diagnosis.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Diagnosed event: {events:#?}"));
    let note = diagnosis
        .evidence
        .iter()
        .find(|e| e.observation.contains("container logs not readable"))
        .unwrap_or_else(|| panic!("no note on the unreadable logs: {diagnosis:#?}"));
    assert!(
        note.observation.contains("forbidden") && note.observation.contains("pods/log"),
        "{note:?}"
    );
    eprintln!("the diagnosis notes: {}", note.observation);
    // Without the logs the missing variable cannot be named: a crash loop, with low confidence.
    assert_eq!(
        diagnosis.root_cause,
        RootCause::from_static("crash_loop"),
        "{diagnosis:#?}"
    );
    assert!(
        diagnosis
            .signals
            .crash
            .as_ref()
            .is_some_and(|c| c.missing_env.is_none())
    );
}

// ---- RBAC ----

/// The rbac scenario's Roles and bindings seeded into the real apiserver: for each of the app's
/// requests and each of its ServiceAccounts (the old one, bound, and the new one, not), the
/// decision `RbacRule::allows` takes on the rules the adapter reads equals the real RBAC
/// authorizer's (`kubectl auth can-i --as`), and a refused request is refused in the words
/// `ApiRequest::forbidden` writes (what the simulated app logs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_decides_and_words_refusals_as_the_real_apiserver() {
    const TEST: &str = "rbac_decides_and_words_refusals_as_the_real_apiserver";
    let Some(t) = Twin::start(TEST, "rbac", Options { rbac: true }).await else {
        return;
    };
    let kc: PathBuf = t.real.kubeconfig_path().to_path_buf();
    let real = t.adapter(&kc).await;
    let ns = t.scenario.workload.namespace.as_str();
    let mut decisions = Vec::new();
    for sa in ["inventory-sync", "warehouse-inventory-sync"] {
        let rules = real.rbac_rules(ns, sa).await.unwrap();
        let user = format!("--as=system:serviceaccount:{ns}:{sa}");
        for call in &t.scenario.app.api_calls {
            let resource = if call.group.is_empty() {
                call.resource.clone()
            } else {
                format!("{}.{}", call.resource, call.group)
            };
            let target = match &call.name {
                Some(n) => format!("{resource}/{n}"),
                None => resource.clone(),
            };
            let can = kubectl(
                &kc,
                &["auth", "can-i", &call.verb, &target, "-n", ns, &user],
            )
            .await;
            let real_allows = String::from_utf8_lossy(&can.stdout).trim() == "yes";
            let allows = rules.iter().any(|r| r.allows(call));
            assert_eq!(
                allows, real_allows,
                "{sa} {} {target}: RbacRule::allows says {allows}, the apiserver {real_allows}",
                call.verb
            );
            decisions.push(format!("{sa} {} {target}: {allows}", call.verb));
            if !allows && matches!(call.verb.as_str(), "get" | "list") {
                let mut args = vec!["get", resource.as_str()];
                if let Some(n) = &call.name {
                    args.push(n);
                }
                args.extend(["-n", ns, &user]);
                let out = kubectl(&kc, &args).await;
                let said = String::from_utf8_lossy(&out.stderr).to_string();
                assert!(
                    !out.status.success() && said.contains(&call.forbidden(ns, sa)),
                    "{sa} {} {target}: the apiserver said {said:?}, we write {:?}",
                    call.verb,
                    call.forbidden(ns, sa)
                );
            }
        }
    }
    eprintln!("{decisions:#?}");
    // The old ServiceAccount may do both, the new one neither.
    assert_eq!(decisions.iter().filter(|d| d.ends_with("true")).count(), 2);
}
