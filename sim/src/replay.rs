//! The world model as a port: B'Elanna's fix replayed before she proposes it.
//!
//! A replay forks the simulated world where it stands: the GitOps repository is copied and the
//! fix committed on its `main` now, and two clusters are computed `horizon` ahead — the fork, and
//! the world as it is — under the same scenario (the same load, nodes, registry, app). Each is
//! read as Ralph would read the real one: the replicas the workload asks for against its pods
//! Ready (and why the others are not), the container restarts and OOM kills since now, the
//! container's peak working set over the horizon against its memory limit. The world itself is
//! never touched.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use squad_adapters::git::GitRepo;
use squad_protocols::cluster::PodInfo;
use squad_protocols::{FileChange, Outcome, Quantity, Replay, WorkloadRef};
use squad_runtime::Clock;
use squad_runtime::ports::{PortError, PortResult, ReplayRequest, Replayer};

use crate::{Scenario, SimCluster};

mod facts;
pub use facts::{FactsReplayer, Fit, Seed};

/// Replays fixes in a fork of one simulated world.
pub struct SimReplayer {
    scenario: Arc<Scenario>,
    git: GitRepo,
    clock: Clock,
}

impl SimReplayer {
    pub fn new(scenario: Arc<Scenario>, git: GitRepo, clock: Clock) -> SimReplayer {
        SimReplayer {
            scenario,
            git,
            clock,
        }
    }
}

/// A directory copied, recursively.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The restart counts of the workload's pods, by name.
fn restarts_by_pod(pods: &[PodInfo]) -> BTreeMap<String, u32> {
    pods.iter()
        .map(|p| {
            (
                p.name.clone(),
                p.containers.iter().map(|c| c.restart_count).sum(),
            )
        })
        .collect()
}

/// What a cluster shows of the workload at its clock's now, since `since`.
fn outcome(
    sim: &SimCluster,
    w: &WorkloadRef,
    container: &str,
    since: (DateTime<Utc>, &BTreeMap<String, u32>),
    horizon: Duration,
) -> PortResult<Outcome> {
    let (at, before) = since;
    let pods: Vec<PodInfo> = sim
        .pods_of(w)?
        .into_iter()
        .filter(|p| p.deleted_at.is_none())
        .collect();
    let info = sim.workload(w)?;
    let mut ready = 0;
    let mut not_ready = Vec::new();
    let mut restarts = 0;
    let mut oom_kills = 0;
    for p in &pods {
        match p.not_ready() {
            None => ready += 1,
            Some(why) => not_ready.push(format!("{}: {why}", p.name)),
        }
        let count: u32 = p.containers.iter().map(|c| c.restart_count).sum();
        restarts += count.saturating_sub(before.get(&p.name).copied().unwrap_or(0));
        if p.containers.iter().any(|c| {
            c.last_termination
                .as_ref()
                .is_some_and(|t| t.reason == "OOMKilled" && t.finished_at >= at)
        }) {
            oom_kills += 1;
        }
    }
    let peak = sim
        .memory_working_set(w, container, horizon, Duration::from_secs(300))
        .ok()
        .and_then(|s| s.iter().map(|s| s.value).reduce(f64::max))
        .map(|bytes| Quantity::from_bytes(bytes as u64));
    let limit = info
        .container(container)
        .and_then(|c| c.limits.get("memory").copied());
    Ok(Outcome {
        desired: info.replicas,
        ready,
        not_ready,
        restarts,
        oom_kills,
        peak,
        limit,
    })
}

impl SimReplayer {
    /// Replays `files` committed now, `horizon` ahead; `container` is the one whose memory is
    /// read.
    pub(crate) fn run(
        &self,
        w: &WorkloadRef,
        container: &str,
        files: &[FileChange],
        horizon: Duration,
    ) -> PortResult<Replay> {
        let what = "replay the fix";
        let fail = |e: &dyn std::fmt::Display| PortError::failed(what, e.to_string());
        let now = self.clock.now();
        let end = now + chrono::Duration::from_std(horizon).map_err(|e| fail(&e))?;
        let tmp = tempfile::tempdir().map_err(|e| fail(&e))?;
        let fork_dir = tmp.path().join("gitops");
        copy_dir(self.git.path(), &fork_dir).map_err(|e| fail(&e))?;
        let fork = GitRepo::open(&fork_dir).map_err(|e| fail(&e))?;
        let changes: Vec<(String, String)> = files
            .iter()
            .map(|f| (f.path.clone(), f.content.clone()))
            .collect();
        fork.commit(
            "main",
            None,
            "squad replay: the proposed fix",
            &changes,
            now,
            false,
        )
        .map_err(|e| fail(&e))?;
        let present = SimCluster::new(
            self.scenario.clone(),
            self.git.clone(),
            Clock::starting_at(now),
        );
        let before = restarts_by_pod(&present.pods_of(w)?);
        let ahead =
            |git: GitRepo| SimCluster::new(self.scenario.clone(), git, Clock::starting_at(end));
        let without = outcome(
            &ahead(self.git.clone()),
            w,
            container,
            (now, &before),
            horizon,
        )?;
        let with = outcome(&ahead(fork), w, container, (now, &before), horizon)?;
        Ok(Replay {
            horizon_hours: horizon.as_secs() / 3600,
            without,
            with,
            seeded_from: String::new(),
        })
    }
}

#[async_trait]
impl Replayer for SimReplayer {
    async fn replay(&self, request: &ReplayRequest) -> PortResult<Replay> {
        let this = SimReplayer {
            scenario: self.scenario.clone(),
            git: self.git.clone(),
            clock: self.clock.clone(),
        };
        let r = request.clone();
        tokio::task::spawn_blocking(move || {
            let container = this.scenario.workload.container.clone();
            this.run(&r.workload, &container, &r.files, r.horizon)
                .map(|replay| Replay {
                    seeded_from: "the simulated world where it stands".into(),
                    ..replay
                })
        })
        .await
        .map_err(|e| PortError::failed("replay the fix", e.to_string()))?
    }
}
