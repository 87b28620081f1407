//! The simulated cluster.
//!
//! What it serves is computed, not canned: the desired state is the GitOps repo's `main` branch
//! (every commit that touched the workload's manifest is a rollout, synced a minute after it
//! lands), and the running state follows from the scenario's load model. Each container's memory
//! demand is `base + per_rps × rps(t) + leak × hours since the container started`; when the demand
//! passes the container's memory limit the container is OOMKilled and restarted with the
//! kubelet's back-off (10 s doubling to 5 min, reset after 10 min of running). A container whose
//! required environment variables are missing from its manifest exits 1 at start-up. Merging a
//! fix therefore changes what the cluster does, under the same load.
//!
//! An image the scenario's registry does not hold is never pulled: the kubelet reports
//! `ErrImagePull` and retries with back-off (`ImagePullBackOff`, 10 s doubling to 5 min). A
//! rollout whose pods never start does not take over: as the Deployment controller's rolling
//! update does, the previous ReplicaSet keeps `replicas - maxUnavailable` pods and the new one
//! holds `maxSurge + maxUnavailable` (25% each unless the manifest's strategy says otherwise);
//! a rollout whose containers start takes over at once.
//!
//! The working set the metrics report is the demand capped at the memory limit (the cgroup's
//! ceiling; the kill happens there). Simplification, stated: all pods of a rollout behave alike.
//! An HPA over the workload sets its replica count, and the load is shared among the pods (see
//! `autoscaler.rs`). What else the world replays has a module each: the scheduler, the kubelet's
//! start-up (volumes, init containers, images, environment, pod addresses), probes, evictions
//! and silent nodes, admission, storage, Services and NetworkPolicies, RBAC, Jobs and CronJobs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::Scenario;
use chrono::{DateTime, Utc};
use serde_json::Value;
use squad_protocols::WorkloadRef;
use squad_protocols::cluster::{ContainerSpec, ContainerStatus, PodInfo, WorkloadInfo};
use squad_runtime::Clock;
use squad_runtime::ports::{PortError, PortResult};

use squad_adapters::git::GitRepo;
use squad_gitops::objects;

mod admission;
mod attach;
mod autoscaler;
mod cron_jobs;
mod disk;
mod events;
mod eviction;
mod init_containers;
mod jobs;
mod kubelet;
mod life;
mod metrics;
mod model;
mod network;
mod node_lifecycle;
mod prober;
mod rbac;
mod render;
mod sandbox;
mod scheduler;
mod services;
mod storage;
mod world;

use kubelet::Blocker;
use life::Life;
use scheduler::{NodeState, Placement, PodNeeds};
pub use world::{World, cluster_scoped, ts, uid};

const SYNC_LAG_SECONDS: i64 = 60;
const STEP_SECONDS: i64 = 60;
const MIB: f64 = 1024.0 * 1024.0;

/// One rollout of the workload: a commit on main that changed its manifest.
#[derive(Debug, Clone)]
struct Rollout {
    revision: u32,
    at: DateTime<Utc>,
    message: String,
    workload: WorkloadInfo,
    /// The workload's object as the manifest declares it.
    object: Value,
    pods: Vec<String>,
    /// What keeps the rollout's container from ever starting, if anything.
    blocked: Option<Blocker>,
    /// The init container `blocked` stops the pod's start-up at (its position and name), when
    /// it is one: the containers wait, `PodInitializing`.
    init_stop: Option<kubelet::InitStop>,
    /// What one of its pods asks of a node.
    needs: PodNeeds,
    /// The scheduler's message when not one of its pods fits any node (besides the other
    /// workloads' pods): the rollout never takes over.
    unschedulable: Option<String>,
    /// Why its container's readiness probe fails against the app, if it does: its pods run but
    /// are never ready, and the rollout never takes over.
    unready: Option<prober::ProbeFailure>,
    /// How long after a start its container becomes ready (the app's start-up, as its
    /// readiness probe sees it); 0: at once.
    ready_after: i64,
    /// Why the apiserver refuses its pods (a LimitRange, a ResourceQuota), if it does: not one
    /// is created, and the rollout never takes over.
    refused: Option<String>,
    /// Later commits that changed the workload but not its pod template (a Deployment's
    /// `replicas`, say): no new ReplicaSet, the controller scales this one. Each: when it
    /// synced, the replicas it declares, and whether it declares them at all.
    rescaled: Vec<(DateTime<Utc>, u32, bool)>,
    /// Those same commits' objects, when each synced: the spec the controller reads from then
    /// on (its `progressDeadlineSeconds`) and the apiserver serves.
    respecified: Vec<(DateTime<Utc>, Value)>,
}

/// `value` of a rolling update's `maxSurge` or `maxUnavailable` (an integer or a percentage of
/// `replicas`, rounded up for the surge and down for the unavailable, as the controller does).
fn rolling_param(value: &Value, replicas: usize, round_up: bool) -> usize {
    match value {
        Value::Number(n) => n.as_u64().unwrap_or(0) as usize,
        Value::String(s) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(25.0);
            let v = pct / 100.0 * replicas as f64;
            (if round_up { v.ceil() } else { v.floor() }) as usize
        }
        _ => {
            let v = 0.25 * replicas as f64;
            (if round_up { v.ceil() } else { v.floor() }) as usize
        }
    }
}

/// When a rollout that makes no pod available times out: `progressDeadlineSeconds` (600 unless
/// the manifest says) after it began, under the deadline in force. A later commit that changes the
/// Deployment's spec but not its template (no new ReplicaSet) changes the deadline the controller
/// measures against from when it syncs: a longer one keeps a rollout that has not timed out yet
/// progressing, a shorter one already passed times it out at that sync. A rollout that timed out
/// stays so until its pods become available: the controller does not go back on
/// `ProgressDeadlineExceeded` when the deadline grows (`DeploymentTimedOut`).
fn progress_deadline(r: &Rollout) -> DateTime<Utc> {
    let seconds = |o: &Value| o["spec"]["progressDeadlineSeconds"].as_i64().unwrap_or(600);
    let spans: Vec<(DateTime<Utc>, &Value)> = std::iter::once((r.at, &r.object))
        .chain(r.respecified.iter().map(|(at, o)| (*at, o)))
        .collect();
    for (i, (from, object)) in spans.iter().enumerate() {
        let at = (r.at + secs(seconds(object))).max(*from);
        if spans.get(i + 1).is_none_or(|(until, _)| at < *until) {
            return at;
        }
    }
    r.at + secs(seconds(&r.object))
}

/// The rollout's object as the apiserver holds it at `now`: the last commit synced by then that
/// changed it without changing its template, else the rollout's own.
fn object_at(r: &Rollout, now: DateTime<Utc>) -> &Value {
    r.respecified
        .iter()
        .rev()
        .find(|(at, _)| *at <= now)
        .map_or(&r.object, |(_, o)| o)
}

/// A stalled rolling update's split of `replicas`: the pods the previous ReplicaSet keeps, and
/// those the new one is scaled to (`maxSurge + maxUnavailable`, at most `replicas`).
fn rolling_split(newest: &Rollout, replicas: u32) -> (usize, usize) {
    let replicas = replicas as usize;
    let strategy = &newest.object["spec"]["strategy"]["rollingUpdate"];
    let unavailable = rolling_param(&strategy["maxUnavailable"], replicas, false);
    let mut surge = rolling_param(&strategy["maxSurge"], replicas, true);
    if surge == 0 && unavailable == 0 {
        surge = 1;
    }
    (
        replicas.saturating_sub(unavailable),
        (surge + unavailable).min(replicas.max(1)),
    )
}

/// When a commit on main is in force in the cluster: commits made by the scenario's history
/// carry their own time; later ones sync a minute after landing.
fn synced_at(commit: &squad_adapters::git::Commit, now: DateTime<Utc>) -> DateTime<Utc> {
    if commit.at <= now {
        commit.at
    } else {
        commit.at + secs(SYNC_LAG_SECONDS)
    }
}

struct Desired {
    head: String,
    rollouts: Vec<Rollout>,
    objects: Vec<Value>,
    /// What decides the app's connections, per commit on main (only when it has dependencies).
    network: Vec<network::Network>,
    /// What each rollout's pods cannot reach under each commit's network.
    reach: BTreeMap<(u32, usize), Option<(usize, network::Unreachable)>>,
    /// The pods' addresses.
    addresses: world::Addresses,
    /// The workload's replica count over time (its HPA's decisions).
    scale: autoscaler::Scaling,
    /// What the kubelets evicted under memory pressure.
    evictions: eviction::Evictions,
    /// The Jobs a CronJob workload's controller created.
    cron: cron_jobs::CronRuns,
}

pub struct SimCluster {
    scenario: Arc<Scenario>,
    git: GitRepo,
    clock: Clock,
    desired: Mutex<Option<Arc<Desired>>>,
    /// Container lives per rollout, computed up to an instant (for the metrics).
    lives: LivesCache,
    /// The served objects at one second of one main head.
    world_cache: Mutex<Option<(String, i64, Arc<World>)>>,
}

type LivesCache = Mutex<Option<(String, DateTime<Utc>, Arc<BTreeMap<u32, Life>>)>>;

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

fn short_hash(seed: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..len)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
            c
        })
        .collect()
}

impl SimCluster {
    pub fn new(scenario: Arc<Scenario>, git: GitRepo, clock: Clock) -> SimCluster {
        SimCluster {
            scenario,
            git,
            clock,
            desired: Mutex::new(None),
            lives: Mutex::new(None),
            world_cache: Mutex::new(None),
        }
    }

    fn workload_ref(&self) -> WorkloadRef {
        self.scenario.workload_ref()
    }

    fn check_workload(&self, w: &WorkloadRef) -> PortResult<()> {
        if *w == self.workload_ref() {
            Ok(())
        } else {
            Err(PortError::not_found(format!("{w}")))
        }
    }

    /// The desired state at main's head (cached per head commit).
    fn desired(&self) -> PortResult<Arc<Desired>> {
        let what = "read the GitOps repo";
        let head = self
            .git
            .head_of("main")
            .map_err(|e| PortError::failed(what, e))?;
        let mut cache = self
            .desired
            .lock()
            .map_err(|_| PortError::failed(what, "lock poisoned"))?;
        if let Some(d) = cache.as_ref().filter(|d| d.head == head) {
            return Ok(d.clone());
        }
        let s = &self.scenario;
        let mut log = self.workload_log()?;
        log.reverse();
        let mut rollouts: Vec<Rollout> = Vec::new();
        for commit in &log {
            let Some(objs) = self.workload_objects(&commit.id)? else {
                continue;
            };
            let Some(obj) = objs.iter().find(|o| {
                objects::kind(o) == s.workload.kind && objects::name(o) == s.workload.name
            }) else {
                continue;
            };
            let workload = objects::workload_info(obj, &s.workload.namespace);
            let at = synced_at(commit, s.now);
            // The same pod template: a Deployment's controller makes no new ReplicaSet (it
            // scales the one it has); a Job is replaced only when its spec changed.
            let same = |prev: &Rollout| {
                if self.is_batch() {
                    prev.object["spec"] == obj["spec"]
                } else {
                    prev.object["spec"]["template"] == obj["spec"]["template"]
                }
            };
            if let Some(prev) = rollouts.last_mut().filter(|p| same(p)) {
                prev.rescaled.push((
                    at,
                    workload.replicas,
                    obj["spec"]["replicas"].as_u64().is_some(),
                ));
                prev.respecified.push((at, obj.clone()));
                continue;
            }
            rollouts.push(Rollout {
                revision: rollouts.len() as u32 + 1,
                at,
                message: commit.message.lines().next().unwrap_or("").to_owned(),
                pods: Vec::new(),
                workload,
                needs: PodNeeds::of(objects::pod_spec(obj)),
                object: obj.clone(),
                blocked: None,
                init_stop: None,
                unschedulable: None,
                unready: None,
                ready_after: 0,
                refused: None,
                rescaled: Vec::new(),
                respecified: Vec::new(),
            });
        }
        let objects = self.objects_at("main")?;
        let store = kubelet::Store::new(s, &objects);
        for r in &mut rollouts {
            r.needs.prefilter = storage::prefilter(s, &objects, objects::pod_spec(&r.object));
            (r.blocked, r.init_stop) =
                match kubelet::blocker(s, &store, &r.object, &s.workload.container) {
                    Some((b, init)) => (Some(b), init),
                    None => (None, None),
                };
            r.unschedulable = match scheduler::place(&mut self.fresh_nodes(), &r.needs) {
                Placement::Unschedulable(message) => Some(message),
                Placement::Node(_) => None,
            };
            let container = r.workload.container(&s.workload.container);
            r.unready = container.and_then(|c| prober::readiness(s.app_for(&c.image), c));
            r.ready_after = container.map_or(0, |c| prober::ready_after(s.app_for(&c.image), c));
        }
        // Admission: a rollout's first pod next to the pods the previous rollout keeps while it
        // surges (the workload's own share of the quotas; the scenario states the others').
        // Once one is admitted the rollout proceeds: each later pod replaces an old one.
        let mut previous: Option<usize> = None;
        for i in 0..rollouts.len() {
            let used = previous.map_or_else(admission::Usage::new, |p| {
                let (per_pod, _) = admission::pod_usage(objects::pod_spec(&rollouts[p].object));
                let (keep, _) = rolling_split(&rollouts[i], rollouts[i].workload.replicas);
                per_pod
                    .into_iter()
                    .map(|(k, v)| (k, v * keep as i128))
                    .collect()
            });
            let r = &mut rollouts[i];
            // The namespace's Pod Security level when the rollout creates its pods.
            let security = admission::Enforced::of(&admission::namespace_labels(
                s,
                &objects,
                &s.workload.namespace,
                r.at,
            ));
            r.refused = admission::refusal(
                (&s.limit_ranges, security.as_ref(), &s.resource_quotas),
                objects::pod_spec(&r.object),
                &used,
            );
            if r.refused.is_none() {
                previous = Some(i);
            }
        }
        let live = rollouts.iter().rposition(|r| r.at <= s.now);
        let scale = self.scaling(&rollouts, &objects)?;
        // Scaled (by an HPA, or a commit that only changed its replicas) a rollout may hold
        // more pods than it declares: names for the most.
        let most = |r: &Rollout| scale.most().max(r.workload.replicas).max(1);
        for (i, r) in rollouts.iter_mut().enumerate() {
            r.pods = if self.is_cron_job() {
                // Its Jobs have the pods (`cron_jobs.rs`).
                Vec::new()
            } else if self.is_job() {
                let given = if Some(i) == live {
                    s.workload.pods.clone()
                } else {
                    Vec::new()
                };
                self.job_pods(r, &given)
            } else if Some(i) == live {
                let mut pods = s.workload.pods.clone();
                let prefix = pods
                    .first()
                    .and_then(|p| p.rsplit_once('-'))
                    .map_or_else(|| s.workload.name.clone(), |x| x.0.to_owned());
                let mut k = 0;
                while (pods.len() as u32) < most(r) {
                    let name = format!("{prefix}-{}", short_hash(&format!("{prefix}{k}"), 5));
                    if !pods.contains(&name) {
                        pods.push(name);
                    }
                    k += 1;
                }
                pods
            } else {
                let hash = short_hash(&format!("{}{}", r.revision, r.at), 6);
                (0..most(r))
                    .map(|n| {
                        format!(
                            "{}-{hash}-{}",
                            s.workload.name,
                            short_hash(&format!("{hash}{n}"), 5)
                        )
                    })
                    .collect()
            };
        }
        // A ReadWriteOnce volume the rollout before still holds on another node.
        self.attach_conflicts(&mut rollouts, &objects);
        // A node whose network plugin has no pod address left for the new pods.
        self.sandbox_failures(&mut rollouts);
        // Addresses in the order pods are created: the Deployments beside the workload, then
        // each rollout's.
        let first = rollouts.first().map_or(s.now, |r| r.at);
        let peers = self.peers(&objects, first);
        let addresses = world::Addresses::allocate(
            peers
                .iter()
                .chain(rollouts.iter())
                .flat_map(|r| r.pods.iter().map(String::as_str)),
        );
        let network = self.network_history(&addresses)?;
        let reach = self.reachability(&rollouts, &network);
        let mut d = Desired {
            head,
            rollouts,
            objects,
            network,
            reach,
            addresses,
            scale,
            evictions: eviction::Evictions::default(),
            cron: cron_jobs::CronRuns::default(),
        };
        d.evictions = self.evictions(&d);
        d.cron = self.cron_runs(&d);
        let d = Arc::new(d);
        *cache = Some(d.clone());
        Ok(d)
    }

    fn rollout_at(d: &Desired, t: DateTime<Utc>) -> Option<&Rollout> {
        d.rollouts.iter().rev().find(|r| r.at <= t)
    }

    /// Requests per second a pod serves at `t`: the load model's rate, shared as the replica
    /// count at `t` says (see `autoscaler.rs`).
    fn rps(&self, d: &Desired, t: DateTime<Utc>) -> f64 {
        self.traffic(t) * d.scale.share(t)
    }

    /// Requests per second per pod at `t` at the reference replica count (the load model).
    fn traffic(&self, t: DateTime<Utc>) -> f64 {
        let l = &self.scenario.load;
        let surge_start = self.scenario.now - secs((l.surge_started_hours_ago * 3600.0) as i64);
        let ramp = if l.surge_percent > 0.0 && t > surge_start {
            ((t - surge_start).num_seconds() as f64 / 1800.0).min(1.0)
        } else {
            0.0
        };
        l.baseline_rps * daily(l, t - self.scenario.now) * (1.0 + l.surge_percent / 100.0 * ramp)
    }

    /// The image the rollout's app container runs.
    fn image_of<'r>(&self, r: &'r Rollout) -> &'r str {
        self.container_spec(r).map_or("", |c| c.image.as_str())
    }

    /// How the app behaves in `r`'s pods: the `[app]` of the version its image runs.
    fn app(&self, r: &Rollout) -> &crate::scenario::AppSpec {
        self.scenario.app_for(self.image_of(r))
    }

    /// The load model of the version `r`'s image runs.
    fn load(&self, r: &Rollout) -> &crate::scenario::LoadModel {
        self.scenario.load_for(self.image_of(r))
    }

    /// Memory demand in bytes at `t` of `r`'s container that started at `started`.
    fn demand(&self, d: &Desired, r: &Rollout, t: DateTime<Utc>, started: DateTime<Utc>) -> f64 {
        let l = self.load(r);
        let hours = ((t - started).num_seconds().max(0)) as f64 / 3600.0;
        (l.base_mib + l.per_rps_mib * self.rps(d, t) + l.leak_mib_per_hour * hours) * MIB
    }

    /// What the container's cgroup holds at `t`: its demand, capped at its memory limit (the
    /// kernel reclaims or kills at the limit; a sample never reads above it).
    fn working_set(
        &self,
        d: &Desired,
        r: &Rollout,
        t: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> f64 {
        let cap = self
            .container_spec(r)
            .and_then(|c| c.limits.get("memory"))
            .map_or(f64::INFINITY, |q| q.bytes() as f64);
        self.demand(d, r, t, started).min(cap)
    }

    fn container_spec<'r>(&self, r: &'r Rollout) -> Option<&'r ContainerSpec> {
        r.workload.container(&self.scenario.workload.container)
    }

    /// The rollout's container as its manifest declares it.
    fn container_object<'r>(&self, r: &'r Rollout) -> Option<&'r Value> {
        objects::pod_spec(&r.object)["containers"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == self.scenario.workload.container.as_str())
    }

    /// When the rollout's pods became available (scheduled, and their container started): it
    /// takes over then.
    fn available_at(&self, r: &Rollout) -> Option<DateTime<Utc>> {
        (r.blocked.is_none()
            && r.unschedulable.is_none()
            && r.unready.is_none()
            && r.refused.is_none())
        .then_some(r.at + secs(r.ready_after))
    }

    /// The cluster's nodes with only the other workloads' pods on them.
    fn fresh_nodes(&self) -> Vec<NodeState> {
        self.scenario
            .cluster_nodes()
            .iter()
            .map(NodeState::new)
            .collect()
    }

    /// Where each pod serving at `t` is: the scheduler places the older rollouts' pods first
    /// (they were there before), then the newest's; a pod created in place of an evicted one
    /// is where the scheduler put it then.
    fn placements(&self, d: &Desired, t: DateTime<Utc>) -> BTreeMap<String, Placement> {
        let mut out = self.raw_placements(d, t);
        for (r, n) in self.serving(d, t) {
            for (i, pod) in r.pods.iter().take(n).enumerate() {
                if let Some(rep) = d.evictions.replacement((r.revision, i), t) {
                    let p = rep
                        .placement_at(t)
                        .cloned()
                        .unwrap_or_else(|| Placement::Unschedulable(String::new()));
                    out.insert(pod.clone(), p);
                }
            }
        }
        out
    }

    /// Where the scheduler puts each pod serving at `t`, evictions aside.
    fn raw_placements(&self, d: &Desired, t: DateTime<Utc>) -> BTreeMap<String, Placement> {
        let mut nodes = self.fresh_nodes();
        let mut out = BTreeMap::new();
        for (r, n) in self.serving(d, t) {
            for pod in r.pods.iter().take(n) {
                out.insert(pod.clone(), scheduler::place(&mut nodes, &r.needs));
            }
        }
        out
    }

    /// The pod's node, or the scheduler's message when it has none.
    fn placement(&self, d: &Desired, pod: &str, t: DateTime<Utc>) -> Placement {
        self.placements(d, t)
            .remove(pod)
            .unwrap_or_else(|| Placement::Node(self.scenario.workload.node.clone()))
    }

    /// When the rollout's pods were scaled down: when a later rollout became available.
    fn scaled_down_at(&self, d: &Desired, r: &Rollout) -> Option<DateTime<Utc>> {
        d.rollouts
            .iter()
            .filter(|n| n.revision > r.revision)
            .find_map(|n| self.available_at(n))
    }

    /// The rollouts that have pods at `t`, and how many each: the newest takes over once its
    /// pods are available; until then the last available one keeps `replicas - maxUnavailable`
    /// and the newest holds `maxSurge + maxUnavailable` (the rolling update's stalled state).
    fn serving<'d>(&self, d: &'d Desired, t: DateTime<Utc>) -> Vec<(&'d Rollout, usize)> {
        let Some(newest) = Self::rollout_at(d, t) else {
            return Vec::new();
        };
        // A CronJob: the Jobs it has, each with its pods that exist.
        if self.is_cron_job() {
            return d
                .cron
                .existing(t)
                .map(|c| (&c.rollout, self.job_run(d, &c.rollout, t).pods().count()))
                .collect();
        }
        // A Job: its pods that exist (a replaced Job went with its pods).
        if self.is_job() {
            return vec![(newest, self.job_run(d, newest, t).pods().count())];
        }
        let replicas = d.scale.replicas_at(t);
        // A refused rollout's ReplicaSet wants pods the apiserver never creates.
        let created = |n: usize| if newest.refused.is_some() { 0 } else { n };
        if self.available_at(newest).is_some_and(|a| a <= t) {
            return vec![(newest, replicas as usize)];
        }
        let previous =
            d.rollouts.iter().rev().find(|r| {
                r.revision < newest.revision && self.available_at(r).is_some_and(|a| a <= t)
            });
        let Some(previous) = previous else {
            return vec![(newest, created(replicas as usize))];
        };
        let (keep, new) = rolling_split(newest, replicas);
        vec![(previous, keep), (newest, created(new))]
    }

    fn pod_info(&self, d: &Desired, r: &Rollout, name: &str, now: DateTime<Utc>) -> PodInfo {
        let s = &self.scenario;
        if self.is_batch()
            && let Some(a) = self
                .job_run(d, r, now)
                .attempts
                .iter()
                .find(|a| a.pod == name)
        {
            return self.job_pod_info(d, r, a, now);
        }
        let owner = Some(format!(
            "ReplicaSet/{}",
            name.rsplit_once('-').map_or(name, |x| x.0)
        ));
        let node = match self.placement(d, name, now) {
            Placement::Node(node) => node,
            // Never scheduled: no node, no container statuses yet.
            Placement::Unschedulable(_) => {
                return PodInfo {
                    init_containers: Vec::new(),
                    deleted_at: None,
                    namespace: s.workload.namespace.clone(),
                    name: name.into(),
                    node: String::new(),
                    phase: "Pending".into(),
                    reason: None,
                    message: None,
                    owner,
                    created_at: r
                        .pods
                        .iter()
                        .position(|p| p == name)
                        .and_then(|i| d.evictions.replacement((r.revision, i), now))
                        .map_or(r.at, |rep| rep.created),
                    containers: Vec::new(),
                };
            }
        };
        // On a node gone silent: as its kubelet last posted it.
        if let Some(q) = self.silent(&node, now).filter(|q| q.last_heard < now) {
            let mut info = self.pod_info(d, r, name, q.last_heard);
            info.node = node;
            return info;
        }
        let mut life = self.pod_life(d, r, name, now);
        let container = s.workload.container.clone();
        // A pod an HPA added was created when it scaled up; one the ReplicaSet created in
        // place of an evicted pod, then (its container started with it).
        let slot = r.pods.iter().position(|p| p == name);
        let created_at = match slot.and_then(|i| d.evictions.replacement((r.revision, i), now)) {
            Some(rep) => {
                life.kills.retain(|k| k.finished_at >= rep.created);
                life.starts.retain(|st| *st > rep.created);
                life.starts.insert(0, rep.created);
                rep.created
            }
            None => slot.map_or(r.at, |i| self.created_at(d, r, i, now)),
        };
        let waiting_reason = life.waiting_reason(now).unwrap_or("CrashLoopBackOff");
        let mut info = PodInfo {
            init_containers: Vec::new(),
            deleted_at: None,
            namespace: s.workload.namespace.clone(),
            name: name.into(),
            node,
            phase: if life.attempts.is_empty() {
                "Running"
            } else {
                "Pending"
            }
            .into(),
            reason: None,
            message: None,
            owner,
            created_at,
            containers: self.beside_the_app(
                r,
                ContainerStatus {
                    name: container,
                    ready: !life.waiting
                        && r.unready.is_none()
                        && life
                            .starts
                            .last()
                            .is_none_or(|st| now >= *st + secs(r.ready_after)),
                    restart_count: life.kills.len() as u32,
                    state: if life.waiting {
                        format!("waiting: {waiting_reason}")
                    } else {
                        "running".into()
                    },
                    last_termination: life.kills.last().cloned(),
                },
            ),
        };
        self.init_statuses(r, &mut info, created_at, waiting_reason);
        info
    }

    /// The statuses of all the pod's containers, in the order its spec declares them: the app's
    /// as simulated, any other (a sidecar) running and ready since the pod started (the world
    /// models the app, not its sidecars).
    fn beside_the_app(&self, r: &Rollout, app: ContainerStatus) -> Vec<ContainerStatus> {
        let mut out: Vec<ContainerStatus> = objects::pod_spec(&r.object)["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .map(|name| {
                if name == app.name {
                    app.clone()
                } else {
                    ContainerStatus {
                        name: name.to_owned(),
                        ready: true,
                        restart_count: 0,
                        state: "running".into(),
                        last_termination: None,
                    }
                }
            })
            .collect();
        if !out.iter().any(|c| c.name == app.name) {
            out.push(app);
        }
        out
    }

    fn current(&self) -> PortResult<(Arc<Desired>, DateTime<Utc>)> {
        Ok((self.desired()?, self.clock.now()))
    }
}

/// The day's traffic factor `since_now` after the scenario's `now` (1 without a swing).
fn daily(l: &crate::scenario::LoadModel, since_now: chrono::Duration) -> f64 {
    if l.daily_swing_percent == 0.0 {
        return 1.0;
    }
    let hours = since_now.num_seconds() as f64 / 3600.0 + l.daily_peak_hours_ago;
    1.0 + l.daily_swing_percent / 100.0 * (std::f64::consts::TAU * hours / 24.0).cos()
}

#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use squad_runtime::Clock;

    use super::SimCluster;
    use crate::{Scenario, seed_gitops_repo};

    /// The scenario's cluster over a freshly seeded GitOps repo, with the repo, the clock and
    /// the directory that holds the repo.
    pub(crate) fn served(
        scenario: Scenario,
    ) -> (
        SimCluster,
        squad_adapters::git::GitRepo,
        Clock,
        tempfile::TempDir,
    ) {
        let scenario = Arc::new(scenario);
        let dir = tempfile::tempdir().unwrap();
        let git = seed_gitops_repo(&scenario, &dir.path().join("gitops")).unwrap();
        let clock = Clock::starting_at(scenario.now);
        (
            SimCluster::new(scenario, git.clone(), clock.clone()),
            git,
            clock,
            dir,
        )
    }
}
