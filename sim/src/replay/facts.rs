//! The world model seeded from a real cluster's facts, so a fix is replayed before it is
//! proposed there too, not only in a simulation.
//!
//! Just before the replay, the facts are read through the same ports the crew reads: the
//! workload and its pods, the nodes (allocatable, labels, taints, cordons) with what the other
//! pods on them request, the last day of the container's working set, CPU and request rates,
//! the rollout that runs, and the GitOps repository at its default branch. From them a scenario
//! is written — the load fitted as the simulator models it (memory and CPU as a base plus a
//! share per request per second, plus a steady growth when the working set climbed all day),
//! played at the day's peak for the whole horizon, so the replay errs on the side of more
//! load — and [`SimReplayer`] forks that world with the fix and without it.
//!
//! What the facts do not say is not modelled, and every check it would drive passes: the app's
//! routes, executables and flags, the registry, Secrets and ConfigMaps, storage, quotas and
//! admission. A replay whose world without the fix shows no failure at all says nothing about
//! the fix: it is refused with why, and the PR says it was not replayed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use squad_protocols::cluster::{NodeInfo, NodePod, PodInfo, Sample, WorkloadInfo};
use squad_protocols::{Quantity, Replay};
use squad_runtime::Clock;
use squad_runtime::ports::{Cluster, Forge, PortError, PortResult, ReplayRequest, Replayer};

use super::SimReplayer;
use crate::Scenario;

/// How much history the load is fitted on, and its resolution.
const HISTORY: Duration = Duration::from_secs(24 * 3600);
const STEP: Duration = Duration::from_secs(300);
/// A repository past these is not copied into the model (the replay is refused, with why).
const MAX_FILES: usize = 5_000;
const MAX_BYTES: usize = 32 << 20;
const MIB: f64 = 1024.0 * 1024.0;
const WHAT: &str = "replay the fix in a world seeded from the cluster";

/// Replays fixes in a world seeded from the facts of the cluster `cluster` reads.
pub struct FactsReplayer {
    cluster: Arc<dyn Cluster>,
    forge: Arc<dyn Forge>,
    clock: Clock,
}

impl FactsReplayer {
    pub fn new(cluster: Arc<dyn Cluster>, forge: Arc<dyn Forge>, clock: Clock) -> FactsReplayer {
        FactsReplayer {
            cluster,
            forge,
            clock,
        }
    }

    /// Reads what the model is seeded with.
    async fn read(&self, r: &ReplayRequest) -> PortResult<Seed> {
        let w = &r.workload;
        let c = &self.cluster;
        let workload = c.workload(w).await?;
        let container = app_container(&workload, &r.container)
            .ok_or_else(|| PortError::failed(WHAT, format!("{w} declares no container")))?;
        let pods: Vec<PodInfo> = c
            .pods_of(w)
            .await?
            .into_iter()
            .filter(|p| p.deleted_at.is_none())
            .collect();
        let now = self.clock.now();
        // The rollout that runs: its ReplicaSet's (or revision's) creation, else the oldest pod.
        let rolled_out_at = c
            .rollout_history(w)
            .await
            .ok()
            .and_then(|h| h.iter().map(|r| r.at).max())
            .or_else(|| pods.iter().map(|p| p.created_at).min())
            .unwrap_or(now)
            .min(now);
        let nodes = c.nodes().await?;
        let mut node_pods = BTreeMap::new();
        for n in &nodes {
            node_pods.insert(n.name.clone(), c.pods_on_node(&n.name).await?);
        }
        let memory = c
            .memory_working_set(w, &container, HISTORY, STEP)
            .await
            .map_err(|e| {
                PortError::failed(
                    WHAT,
                    format!("no memory history of {w}/{container} to replay the load from: {e}"),
                )
            })?;
        // Traffic and CPU are optional: without them the model keeps them flat.
        let rps = c
            .request_rates(w, HISTORY, STEP)
            .await
            .map(|routes| total(routes.into_iter().map(|(_, s)| s)))
            .unwrap_or_default();
        let cpu = c
            .cpu(w, &container, HISTORY, STEP)
            .await
            .map(|h| h.usage)
            .unwrap_or_default();
        let repo = self.repository().await?;
        Ok(Seed {
            now,
            container,
            workload,
            pods,
            rolled_out_at,
            nodes,
            node_pods,
            memory,
            rps,
            cpu,
            repo,
        })
    }

    /// The GitOps repository's files at its default branch, bounded.
    async fn repository(&self) -> PortResult<BTreeMap<String, String>> {
        let base = self.forge.default_branch().await?;
        let paths = self.forge.list_files("", &base).await?;
        if paths.len() > MAX_FILES {
            return Err(PortError::failed(
                WHAT,
                format!(
                    "the repository has {} files, more than the {MAX_FILES} the model copies",
                    paths.len()
                ),
            ));
        }
        let mut files = BTreeMap::new();
        let mut bytes = 0;
        for p in paths {
            if let Some(text) = self.forge.read_file(&p, &base).await? {
                bytes += text.len();
                if bytes > MAX_BYTES {
                    return Err(PortError::failed(
                        WHAT,
                        format!(
                            "the repository holds more than the {} MiB the model copies",
                            MAX_BYTES >> 20
                        ),
                    ));
                }
                files.insert(p, text);
            }
        }
        Ok(files)
    }
}

/// The container whose memory is modelled: the one asked for when the workload has it, else
/// the app's (the largest memory limit; the first when none has one).
fn app_container(w: &WorkloadInfo, asked: &str) -> Option<String> {
    if w.containers.iter().any(|c| c.name == asked) {
        return Some(asked.to_owned());
    }
    w.containers
        .iter()
        .rev()
        .max_by_key(|c| c.limits.get("memory").map(|q| q.bytes()))
        .map(|c| c.name.clone())
}

/// Several series summed per timestamp.
fn total(series: impl Iterator<Item = Vec<Sample>>) -> Vec<Sample> {
    let mut sum: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
    for s in series {
        for x in s {
            *sum.entry(x.at).or_default() += x.value;
        }
    }
    sum.into_iter()
        .map(|(at, value)| Sample { at, value })
        .collect()
}

/// What the model is seeded with.
#[derive(Debug, Clone)]
pub struct Seed {
    pub now: DateTime<Utc>,
    /// The container whose memory and CPU are modelled.
    pub container: String,
    pub workload: WorkloadInfo,
    pub pods: Vec<PodInfo>,
    /// When the rollout that runs now began.
    pub rolled_out_at: DateTime<Utc>,
    pub nodes: Vec<NodeInfo>,
    /// The pods on each node (the workload's own are left out when seeding).
    pub node_pods: BTreeMap<String, Vec<NodePod>>,
    /// The container's working set in bytes (per sample, the most over the pods).
    pub memory: Vec<Sample>,
    /// Requests per second to the workload, all routes.
    pub rps: Vec<Sample>,
    /// The container's CPU in cores (per sample, the most over the pods).
    pub cpu: Vec<Sample>,
    /// The GitOps repository's files.
    pub repo: BTreeMap<String, String>,
}

/// The load model fitted on the seed's history, as the simulator's `[load]` and `[app]` have it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// Requests per second per pod: the day's peak.
    pub baseline_rps: f64,
    pub base_mib: f64,
    pub per_rps_mib: f64,
    pub leak_mib_per_hour: f64,
    pub cpu_millicores: f64,
    pub cpu_millicores_per_rps: f64,
    /// Whether the working set was held at the memory limit (OOM kills): the demand above it
    /// was never observed.
    pub capped_at: Option<Quantity>,
}

/// Least squares `y = a + b x`: (a, b, r²); `None` with fewer than 3 points or no spread in x.
fn line(points: &[(f64, f64)]) -> Option<(f64, f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 3 {
        return None;
    }
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= f64::EPSILON {
        return None;
    }
    let b = sxy / sxx;
    let r2 = if syy <= f64::EPSILON {
        1.0
    } else {
        sxy * sxy / (sxx * syy)
    };
    Some((my - b * mx, b, r2))
}

/// `y` paired with the per-pod rate at the same instant (within half a step).
fn paired(y: &[Sample], rps: &[Sample], replicas: f64) -> Vec<(f64, f64, DateTime<Utc>)> {
    let half = chrono::Duration::seconds(STEP.as_secs() as i64 / 2);
    y.iter()
        .filter_map(|s| {
            let r = rps
                .iter()
                .find(|r| (r.at - s.at).abs() <= half)
                .map_or(0.0, |r| r.value / replicas);
            Some((r, s.value, s.at)).filter(|_| s.value.is_finite() && r.is_finite())
        })
        .collect()
}

/// `y = base + per × rate`, `base` the upper envelope (every observed sample at or under the
/// model), `per` the least-squares slope when the rate varies and explains `y` (r² ≥ 0.5).
fn envelope(points: &[(f64, f64, DateTime<Utc>)]) -> (f64, f64) {
    let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
    let per = line(&xy)
        .filter(|(_, b, r2)| *b > 0.0 && *r2 >= 0.5)
        .map_or(0.0, |(_, b, _)| b);
    let base = points.iter().map(|p| p.1 - per * p.0).fold(0.0, f64::max);
    (base, per)
}

impl Seed {
    /// The container's memory limit.
    fn limit(&self) -> Option<Quantity> {
        self.workload
            .container(&self.container)
            .and_then(|c| c.limits.get("memory").copied())
    }

    /// The load model that reproduces the observed day, at its peak.
    pub fn fit(&self) -> Fit {
        let replicas = f64::from(self.workload.replicas.max(1));
        let peak_rps = self
            .rps
            .iter()
            .map(|s| s.value / replicas)
            .fold(0.0, f64::max);
        // Samples at the limit are the limit, not the demand: the fit reads those under it
        // (when there are enough), and extrapolates to the peak.
        let limit = self.limit();
        let mut mem = paired(&self.memory, &self.rps, replicas);
        if let Some(l) = limit {
            let under: Vec<_> = mem
                .iter()
                .copied()
                .filter(|p| p.1 < 0.98 * l.bytes() as f64)
                .collect();
            if under.len() >= 3 {
                mem = under;
            }
        }
        let (mut base, per) = envelope(&mem);
        // A steady climb all day that traffic does not explain: a growth per hour since the
        // oldest running container started.
        let started = self
            .pods
            .iter()
            .map(|p| p.created_at)
            .min()
            .unwrap_or(self.rolled_out_at);
        let hours = |at: DateTime<Utc>| (at - started).num_seconds().max(0) as f64 / 3600.0;
        let residual: Vec<(f64, f64)> = mem.iter().map(|p| (hours(p.2), p.1 - per * p.0)).collect();
        let leak = line(&residual)
            .filter(|(a, b, r2)| {
                let span = residual.last().map_or(0.0, |l| l.0) - residual[0].0;
                *b > 0.0 && *r2 >= 0.8 && b * span >= 0.05 * a.abs().max(1.0)
            })
            .map_or(0.0, |(_, b, _)| b);
        if leak > 0.0 {
            base = residual
                .iter()
                .map(|(h, y)| y - leak * h)
                .fold(0.0, f64::max);
        }
        // OOM kills hold the working set at the limit: the demand was at least that.
        let killed = self.pods.iter().any(|p| {
            p.containers.iter().any(|c| {
                c.name == self.container
                    && c.last_termination
                        .as_ref()
                        .is_some_and(|t| t.reason == "OOMKilled")
            })
        });
        let capped_at = limit.filter(|_| killed);
        if let Some(l) = capped_at {
            let over = l.bytes() as f64 + MIB;
            base = base.max(over - per * peak_rps - leak * hours(self.now));
        }
        let cpu = paired(&self.cpu, &self.rps, replicas);
        let (cpu_base, cpu_per) = envelope(&cpu);
        Fit {
            baseline_rps: peak_rps,
            base_mib: (base / MIB).max(1.0),
            per_rps_mib: per / MIB,
            leak_mib_per_hour: leak / MIB,
            cpu_millicores: cpu_base * 1000.0,
            cpu_millicores_per_rps: cpu_per * 1000.0,
            capped_at,
        }
    }

    /// The scenario that holds the seed: validated as any scenario file is.
    pub fn scenario(&self, request: &ReplayRequest) -> Result<Scenario, String> {
        let w = &request.workload;
        let fit = self.fit();
        let app = self
            .workload
            .container(&self.container)
            .ok_or_else(|| format!("{w} has no container {}", self.container))?;
        let own: Vec<&str> = self.pods.iter().map(|p| p.name.as_str()).collect();
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .filter_map(|n| node(n, self.node_pods.get(&n.name), &own))
            .collect();
        if nodes.is_empty() {
            return Err("no node reports its allocatable CPU and memory".into());
        }
        let pods: Vec<String> = if own.is_empty() {
            vec![format!("{}-0", w.name)]
        } else {
            own.iter().map(|p| (*p).to_owned()).collect()
        };
        let first_node = self
            .pods
            .iter()
            .map(|p| p.node.clone())
            .find(|n| !n.is_empty())
            .or_else(|| nodes[0]["name"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let hours_ago = (self.now - self.rolled_out_at).num_seconds().max(0) as f64 / 3600.0;
        let mut workload = json!({
            "kind": w.kind,
            "namespace": w.namespace,
            "name": w.name,
            "container": self.container,
            "manifest": request.declared.manifest,
            "pods": pods,
            "node": first_node,
        });
        if let Some(k) = &request.declared.kustomize {
            workload["kustomize"] = json!(k);
        }
        if let Some(h) = &request.declared.helm {
            workload["helm"] = json!(h);
        }
        let doc = json!({
            "name": format!("replay-{}-{}", w.namespace, w.name),
            "description": format!("{w} as the cluster's facts showed it at {}", self.now.to_rfc3339()),
            "now": self.now.to_rfc3339(),
            "alert": {
                "name": "Replay",
                "severity": "none",
                "summary": "",
                "labels": { "namespace": w.namespace },
            },
            "workload": workload,
            "app": {
                "language": "unknown",
                "handler": "README",
                "route": "/",
                "cpu_millicores": fit.cpu_millicores,
                "cpu_millicores_per_rps": fit.cpu_millicores_per_rps,
            },
            "load": {
                "baseline_rps": fit.baseline_rps,
                "base_mib": fit.base_mib,
                "per_rps_mib": fit.per_rps_mib,
                "leak_mib_per_hour": fit.leak_mib_per_hour,
            },
            "image": { "name": app.image, "base": "" },
            "history": [{
                "dir": "repo",
                "hours_ago": hours_ago,
                "message": "the GitOps repository at its default branch",
            }],
            "nodes": nodes,
        });
        let text = toml::to_string(&doc).map_err(|e| e.to_string())?;
        let mut files: BTreeMap<String, String> = self
            .repo
            .iter()
            .map(|(p, t)| (format!("repo/{p}"), t.clone()))
            .collect();
        files.insert("scenario.toml".into(), text);
        files.insert(
            "app/README".into(),
            "The application's source is not part of a replay seeded from the cluster.\n".into(),
        );
        Scenario::from_files("the world seeded from the cluster", files).map_err(|e| e.to_string())
    }

    /// In words, for the PR: what the world was seeded from.
    pub fn describe(&self, fit: &Fit) -> String {
        let mut s = format!(
            "the cluster's facts read at {} ({} node(s), {} pod(s) of the workload, the last {} h of its load played at the day's peak: {:.0} MiB + {:.2} MiB per request/s at {:.1} requests/s per pod",
            self.now.format("%Y-%m-%d %H:%M UTC"),
            self.nodes.len(),
            self.pods.len(),
            HISTORY.as_secs() / 3600,
            fit.base_mib,
            fit.per_rps_mib,
            fit.baseline_rps,
        );
        if fit.leak_mib_per_hour > 0.0 {
            s.push_str(&format!(
                ", growing {:.1} MiB per hour",
                fit.leak_mib_per_hour
            ));
        }
        s.push(')');
        if let Some(l) = fit.capped_at {
            s.push_str(&format!("; OOM kills held the working set at the {l} limit: the demand above it is extrapolated from the samples under it, and taken as at least just over the limit"));
        }
        s
    }
}

/// A node as the scenario's `[[nodes]]`: what the other pods on it request is taken as placed;
/// a node that is not Ready takes nothing new, like a cordoned one. `None` without allocatable
/// CPU and memory.
fn node(n: &NodeInfo, pods: Option<&Vec<NodePod>>, own: &[&str]) -> Option<Value> {
    let (cpu, memory) = (n.allocatable_cpu?, n.allocatable_memory?);
    let others: Vec<&NodePod> = pods
        .into_iter()
        .flatten()
        .filter(|p| !own.contains(&p.pod.name.as_str()))
        .filter(|p| !matches!(p.pod.phase.as_str(), "Succeeded" | "Failed"))
        .collect();
    let sum = |q: fn(&NodePod) -> Option<Quantity>| -> Option<String> {
        others
            .iter()
            .filter_map(|p| q(p))
            .reduce(|a, b| a + b)
            .map(|q| q.canonical())
    };
    let taints: Vec<Value> = n
        .taints
        .iter()
        .filter_map(|t| {
            let (kv, effect) = t.rsplit_once(':')?;
            let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
            Some(json!({ "key": key, "value": value, "effect": effect }))
        })
        .collect();
    let mut requested = json!({ "pods": others.len() });
    if let Some(c) = sum(|p| p.cpu_request) {
        requested["cpu"] = json!(c);
    }
    if let Some(m) = sum(|p| p.memory_request) {
        requested["memory"] = json!(m);
    }
    Some(json!({
        "name": n.name,
        "cpu": cpu.canonical(),
        "memory": memory.canonical(),
        "labels": n.labels,
        "taints": taints,
        "unschedulable": n.unschedulable || !n.ready(),
        "requested": requested,
    }))
}

/// The replay refused when the world without the fix shows no failure: it does not reproduce
/// the incident, so what it says of the fix is not a prediction.
fn reproduces(replay: &Replay) -> Result<(), String> {
    if replay.without.holds() {
        return Err(format!(
            "the world seeded from the cluster's facts does not reproduce the incident (without the change it predicts {}): what the fix changes is not in the model",
            replay.without.describe()
        ));
    }
    Ok(())
}

#[async_trait]
impl Replayer for FactsReplayer {
    async fn replay(&self, request: &ReplayRequest) -> PortResult<Replay> {
        let seed = self.read(request).await?;
        let scenario = seed
            .scenario(request)
            .map_err(|e| PortError::failed(WHAT, e))?;
        let fit = seed.fit();
        let seeded_from = seed.describe(&fit);
        let (now, container, r) = (seed.now, seed.container.clone(), request.clone());
        let replay = tokio::task::spawn_blocking(move || -> PortResult<Replay> {
            let fail = |e: &dyn std::fmt::Display| PortError::failed(WHAT, e.to_string());
            let dir = tempfile::tempdir().map_err(|e| fail(&e))?;
            let git = crate::seed_gitops_repo(&scenario, &dir.path().join("gitops"))
                .map_err(|e| fail(&e))?;
            let world = SimReplayer::new(Arc::new(scenario), git, Clock::starting_at(now));
            world.run(&r.workload, &container, &r.files, r.horizon)
        })
        .await
        .map_err(|e| PortError::failed(WHAT, e.to_string()))??;
        reproduces(&replay).map_err(|e| PortError::failed(WHAT, e))?;
        Ok(Replay {
            seeded_from,
            ..replay
        })
    }
}

#[cfg(test)]
mod tests;
