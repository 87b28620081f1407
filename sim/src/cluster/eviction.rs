//! The kubelet's eviction manager, for memory: every 10 s each node's kubelet compares the
//! memory its pods use with what it may give them. A node's capacity is its allocatable plus
//! the kubelet's reservations (see `world.rs`), the system daemons using what is reserved for
//! them; so the node's `memory.available` falls below the hard eviction threshold
//! (`memory.available<100Mi`) exactly when its pods' working sets exceed its allocatable.
//! Then the node reports `MemoryPressure=True` (and keeps it until 5 minutes have passed
//! without the threshold met: `--eviction-pressure-transition-period`), the node lifecycle
//! controller taints it `node.kubernetes.io/memory-pressure:NoSchedule`, and the kubelet
//! evicts one pod per interval, ranked as it ranks them: pods using more memory than they
//! request first, then the lowest priority, then the most memory used over the request.
//!
//! An evicted pod stays, `Failed` with reason `Evicted` and the kubelet's message; its memory is
//! freed at once. The workload's ReplicaSet creates a pod in its place, which the scheduler
//! places away from nodes under pressure (or leaves Pending until one has room). Other teams'
//! pods (`[[nodes.other_pods]]`) are replaced somewhere the world does not model.
//!
//! Stated simplifications: the workload's pods use what the load model asks of a container
//! started when its pod was created, capped at its memory limit (their OOM kills and restarts
//! are not replayed here); the manager runs from a day before the scenario's now (or the first
//! rollout, if later) to a day past the clock; only memory is modelled (no disk or PID
//! pressure).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use squad_gitops::objects;
use squad_protocols::Quantity;

use super::scheduler::{self, NodeState, Placement};
use super::{Desired, SimCluster, secs, short_hash};

/// The kubelet's housekeeping interval.
const INTERVAL: i64 = 10;
/// `--eviction-pressure-transition-period`.
const TRANSITION: i64 = 300;
/// The taint the node lifecycle controller puts on a node under memory pressure.
pub(super) const PRESSURE_TAINT: &str = "node.kubernetes.io/memory-pressure";

/// Who removed a pod from its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    /// The node's kubelet, short of memory: the pod stays, `Failed`, reason `Evicted`.
    Pressure,
    /// The taint eviction controller, the node having gone silent (`node_lifecycle.rs`): the
    /// pod stays, `Terminating`, as its kubelet last posted it.
    NodeLost,
}

/// A pod the kubelet evicted, or the control plane deleted from a node gone silent.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Evicted {
    pub cause: Cause,
    pub pod: String,
    pub namespace: String,
    /// `Kind/name` of what owns it (`ReplicaSet/x-5d8f`), if anything.
    pub owner: Option<String>,
    pub node: String,
    pub created: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub container: String,
    /// Its container's working set and memory request when it was evicted, in bytes.
    pub usage: u64,
    pub request: u64,
    pub priority: i32,
    /// For the workload's own pods: the rollout's revision and the pod's slot in it.
    pub slot: Option<(u32, usize)>,
}

impl Evicted {
    /// Another team's pod `p` taken off `node` at `at`, using and requesting `(usage,
    /// request)` bytes of memory then.
    fn foreign(
        cause: Cause,
        node: &str,
        p: &crate::scenario::NodePodSpec,
        at: DateTime<Utc>,
        (usage, request): (u64, u64),
    ) -> Evicted {
        Evicted {
            cause,
            pod: p.name.clone(),
            namespace: p.namespace.clone(),
            owner: p.owner.clone(),
            node: node.to_owned(),
            created: p.started,
            at,
            container: p.container.clone(),
            usage,
            request,
            priority: p.priority,
            slot: None,
        }
    }

    /// The pod's `status.message`, in the kubelet's words.
    pub fn message(&self) -> String {
        format!(
            "The node was low on resource: memory. Container {} was using {}, which exceeds its request of {}. ",
            self.container,
            Quantity::from_bytes(self.usage / 1024 * 1024).canonical(),
            if self.request == 0 {
                "0".to_owned()
            } else {
                Quantity::from_bytes(self.request).canonical()
            }
        )
    }
}

/// A span during which a node reported `MemoryPressure=True`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pressure {
    pub node: String,
    pub from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

/// A pod the workload's ReplicaSet created in place of an evicted one: where it was from when.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Replacement {
    pub created: DateTime<Utc>,
    pub placed: Vec<(DateTime<Utc>, Placement)>,
}

/// What the eviction managers did.
#[derive(Debug, Clone, Default)]
pub(super) struct Evictions {
    pub evicted: Vec<Evicted>,
    pub pressure: Vec<Pressure>,
    /// Per slot of the workload's pods (revision, index): the pods created in its place,
    /// oldest first. The newest carries the slot's name; each evicted one got its own.
    pub replaced: BTreeMap<(u32, usize), Vec<Replacement>>,
}

impl Evictions {
    /// Whether `node` reports memory pressure at `t`.
    pub fn under_pressure(&self, node: &str, t: DateTime<Utc>) -> Option<&Pressure> {
        self.pressure
            .iter()
            .find(|p| p.node == node && p.from <= t && p.until.is_none_or(|u| t < u))
    }

    /// The pod now in `slot`, created in place of an evicted one, as of `t`.
    pub fn replacement(&self, slot: (u32, usize), t: DateTime<Utc>) -> Option<&Replacement> {
        self.replaced
            .get(&slot)?
            .iter()
            .rev()
            .find(|r| r.created <= t)
    }

    /// The pods evicted by `t`.
    pub fn by(&self, t: DateTime<Utc>) -> impl Iterator<Item = &Evicted> {
        self.evicted.iter().filter(move |e| e.at <= t)
    }
}

impl Replacement {
    pub fn placement_at(&self, t: DateTime<Utc>) -> Option<&Placement> {
        self.placed
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map(|(_, p)| p)
    }
}

/// A pod the kubelet may rank.
struct Candidate {
    usage: f64,
    request: f64,
    priority: i32,
    /// Which pod: a foreign one's index, or the workload's slot.
    who: Who,
}

#[derive(Clone, Copy, PartialEq)]
enum Who {
    Foreign(usize, usize),
    Ours(u32, usize),
}

/// The name an evicted pod of the workload had: the slot's name, with its own suffix (the
/// slot keeps its name for the pod that replaced it).
pub(super) fn evicted_name(live: &str, revision: u32, slot: usize, n: usize) -> String {
    let prefix = live.rsplit_once('-').map_or(live, |x| x.0);
    format!(
        "{prefix}-{}",
        short_hash(&format!("evicted{revision}/{slot}/{n}"), 5)
    )
}

impl SimCluster {
    /// Runs every node's eviction manager over the desired state's rollouts.
    pub(super) fn evictions(&self, d: &Desired) -> Evictions {
        let s = &self.scenario;
        let nodes = s.cluster_nodes();
        let mut out = Evictions::default();
        let Some(first) = d.rollouts.first().map(|r| r.at) else {
            return out;
        };
        let start = first.max(s.now - chrono::Duration::hours(24));
        let end = s.now.max(self.clock.now()) + chrono::Duration::days(1);
        let foreign: Vec<(usize, usize)> = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| (0..n.other_pods.len()).map(move |j| (i, j)))
            .collect();
        // Nothing to do where no pod can outgrow its node: every container of the workload
        // is capped below its node's allocatable, and no one else is declared.
        let largest = nodes.iter().map(|n| n.memory.bytes()).max().unwrap_or(0) as f64;
        let capped = d.rollouts.iter().all(|r| {
            let per_pod = self.pod_memory_cap(r);
            per_pod * f64::from(d.scale.most().max(r.workload.replicas)) < largest
        });
        let silent: Vec<Option<super::node_lifecycle::Silence>> =
            nodes.iter().map(|n| n.silence(s.now)).collect();
        if foreign.is_empty() && capped && silent.iter().all(Option::is_none) || self.is_batch() {
            return out;
        }
        let mut gone: BTreeSet<(usize, usize)> = BTreeSet::new();
        let mut last_met: BTreeMap<usize, DateTime<Utc>> = BTreeMap::new();
        let mut open: BTreeMap<usize, usize> = BTreeMap::new();
        let mut t = start;
        while t <= end {
            let serving = self.serving(d, t);
            let base = self.raw_placements(d, t);
            // Where each of the workload's pods is, and what it uses.
            let mut ours: Vec<(usize, Candidate, String)> = Vec::new();
            for (r, n) in &serving {
                for (i, name) in r.pods.iter().take(*n).enumerate() {
                    let slot = (r.revision, i);
                    let (placement, created) = match out.replacement(slot, t) {
                        Some(rep) => (rep.placement_at(t).cloned(), rep.created),
                        None => (base.get(name).cloned(), self.created_at(d, r, i, t)),
                    };
                    let Some(Placement::Node(node)) = placement else {
                        continue;
                    };
                    let Some(k) = nodes.iter().position(|x| x.name == node) else {
                        continue;
                    };
                    let usage = self.pod_memory(d, r, created, t);
                    ours.push((
                        k,
                        Candidate {
                            usage,
                            request: self.pod_memory_request(r),
                            priority: self.pod_priority(r),
                            who: Who::Ours(r.revision, i),
                        },
                        name.clone(),
                    ));
                }
            }
            for (k, node) in nodes.iter().enumerate() {
                // A node gone silent: no kubelet weighs its memory any more; the control
                // plane deletes its pods once their toleration of the taint runs out.
                if let Some(quiet) = silent[k].filter(|q| q.last_heard <= t) {
                    // Another team's pods tolerate the taint for the default time.
                    let due = quiet.deletes_at(&[]).filter(|at| *at <= t);
                    for (j, p) in node.other_pods.iter().enumerate() {
                        let owner = p.owner.as_deref().unwrap_or("");
                        let Some(at) = due else {
                            break;
                        };
                        if gone.contains(&(k, j))
                            || p.started > quiet.unknown
                            || owner.starts_with("DaemonSet/")
                        {
                            continue;
                        }
                        gone.insert((k, j));
                        out.evicted.push(Evicted::foreign(
                            Cause::NodeLost,
                            &node.name,
                            p,
                            at,
                            (0, 0),
                        ));
                    }
                    for (_, c, _) in ours.iter().filter(|(n, _, _)| *n == k) {
                        let Who::Ours(revision, i) = c.who else {
                            continue;
                        };
                        let Some(r) = d.rollouts.iter().find(|r| r.revision == revision) else {
                            continue;
                        };
                        let tolerations = objects::pod_spec(&r.object)["tolerations"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        let Some(at) = quiet.deletes_at(&tolerations).filter(|at| *at <= t) else {
                            continue;
                        };
                        let created = out
                            .replacement((revision, i), t)
                            .map_or_else(|| self.created_at(d, r, i, t), |rep| rep.created);
                        // A pod created after the node went silent never ran there.
                        if created > quiet.unknown {
                            continue;
                        }
                        self.remove_ours(
                            (d, &mut out),
                            (r, i),
                            (Cause::NodeLost, &node.name),
                            (at, c),
                        );
                    }
                    continue;
                }
                let mut candidates: Vec<Candidate> = node
                    .other_pods
                    .iter()
                    .enumerate()
                    .filter(|(j, p)| p.started <= t && !gone.contains(&(k, *j)))
                    .map(|(j, p)| Candidate {
                        usage: p.working_set(t),
                        request: p.requests.memory.map_or(0.0, |q| q.bytes() as f64),
                        priority: p.priority,
                        who: Who::Foreign(k, j),
                    })
                    .collect();
                candidates.extend(
                    ours.iter()
                        .filter(|(n, _, _)| *n == k)
                        .map(|(_, c, _)| Candidate { ..*c }),
                );
                let used: f64 = candidates.iter().map(|c| c.usage).sum();
                let met = used > node.memory.bytes() as f64;
                if met {
                    last_met.insert(k, t);
                    if let std::collections::btree_map::Entry::Vacant(e) = open.entry(k) {
                        e.insert(out.pressure.len());
                        out.pressure.push(Pressure {
                            node: node.name.clone(),
                            from: t,
                            until: None,
                        });
                    }
                } else if let Some(&p) = open.get(&k)
                    && last_met.get(&k).is_some_and(|m| t - *m >= secs(TRANSITION))
                {
                    out.pressure[p].until = Some(t);
                    open.remove(&k);
                }
                if !met {
                    continue;
                }
                let Some(victim) = rank(candidates) else {
                    continue;
                };
                match victim.who {
                    Who::Foreign(k, j) => {
                        let p = &node.other_pods[j];
                        gone.insert((k, j));
                        out.evicted.push(Evicted::foreign(
                            Cause::Pressure,
                            &node.name,
                            p,
                            t,
                            (victim.usage as u64, victim.request as u64),
                        ));
                    }
                    Who::Ours(revision, i) => {
                        let Some(r) = d.rollouts.iter().find(|r| r.revision == revision) else {
                            continue;
                        };
                        self.remove_ours(
                            (d, &mut out),
                            (r, i),
                            (Cause::Pressure, &node.name),
                            (t, &victim),
                        );
                    }
                }
            }
            // The replacements not on a node yet go to one now, if one has room.
            let pending: Vec<(u32, usize)> = out
                .replaced
                .iter()
                .filter(|(_, reps)| {
                    reps.last().is_some_and(|rep| {
                        !matches!(rep.placed.last(), Some((_, Placement::Node(_))))
                    })
                })
                .map(|(slot, _)| *slot)
                .collect();
            for slot in pending {
                let Some(r) = d.rollouts.iter().find(|r| r.revision == slot.0) else {
                    continue;
                };
                if !serving
                    .iter()
                    .any(|(x, n)| x.revision == r.revision && slot.1 < *n)
                {
                    continue;
                }
                let mut states = self.nodes_at(&out, &gone, t);
                // Everyone else of the workload first: they were there.
                for (k, _, _) in &ours {
                    states[*k].take(&r.needs);
                }
                let placement = scheduler::place(&mut states, &r.needs);
                if let Some(rep) = out.replaced.get_mut(&slot).and_then(|v| v.last_mut())
                    && rep.placed.last().is_none_or(|(_, p)| *p != placement)
                {
                    rep.placed.push((t.max(rep.created), placement));
                }
            }
            t += secs(INTERVAL);
        }
        out
    }

    /// Takes slot `i` of `r`'s pods off `node` at `at` (`who` its candidacy there), and has
    /// the ReplicaSet create a pod in its place a second later.
    fn remove_ours(
        &self,
        (d, out): (&Desired, &mut Evictions),
        (r, i): (&super::Rollout, usize),
        (cause, node): (Cause, &str),
        (at, who): (DateTime<Utc>, &Candidate),
    ) {
        let s = &self.scenario;
        let revision = r.revision;
        let live = &r.pods[i];
        let before = out.replaced.get(&(revision, i)).map_or(0, Vec::len);
        let created = out
            .replacement((revision, i), at)
            .map_or_else(|| self.created_at(d, r, i, at), |rep| rep.created);
        out.evicted.push(Evicted {
            cause,
            pod: evicted_name(live, revision, i, before),
            namespace: s.workload.namespace.clone(),
            owner: Some(format!(
                "ReplicaSet/{}",
                live.rsplit_once('-').map_or(live.as_str(), |x| x.0)
            )),
            node: node.to_owned(),
            created,
            at,
            container: s.workload.container.clone(),
            usage: who.usage as u64,
            request: who.request as u64,
            priority: who.priority,
            slot: Some((revision, i)),
        });
        out.replaced
            .entry((revision, i))
            .or_default()
            .push(Replacement {
                created: at + secs(1),
                placed: Vec::new(),
            });
    }

    /// The nodes as the scheduler sees them at `t`: the other teams' pods still there, the
    /// memory-pressure taint on those under pressure, the unreachable taints on those gone
    /// silent.
    fn nodes_at(
        &self,
        ev: &Evictions,
        gone: &BTreeSet<(usize, usize)>,
        t: DateTime<Utc>,
    ) -> Vec<NodeState> {
        self.scenario
            .cluster_nodes()
            .iter()
            .enumerate()
            .map(|(k, n)| {
                let mut spec = n.clone();
                spec.other_pods = n
                    .other_pods
                    .iter()
                    .enumerate()
                    .filter(|(j, p)| p.started <= t && !gone.contains(&(k, *j)))
                    .map(|(_, p)| p.clone())
                    .collect();
                if ev.under_pressure(&n.name, t).is_some() {
                    spec.taints.push(crate::scenario::TaintSpec {
                        key: PRESSURE_TAINT.into(),
                        value: String::new(),
                        effect: "NoSchedule".into(),
                    });
                }
                if self.unknown(&n.name, t).is_some() {
                    for effect in ["NoSchedule", "NoExecute"] {
                        spec.taints.push(crate::scenario::TaintSpec {
                            key: super::node_lifecycle::UNREACHABLE_TAINT.into(),
                            value: String::new(),
                            effect: effect.into(),
                        });
                    }
                }
                NodeState::new(&spec)
            })
            .collect()
    }

    /// When slot `i` of rollout `r`'s pod was created (before any eviction): with the rollout,
    /// or when an HPA scaled up to it.
    pub(super) fn created_at(
        &self,
        d: &Desired,
        r: &super::Rollout,
        i: usize,
        t: DateTime<Utc>,
    ) -> DateTime<Utc> {
        d.scale.scaled_up_at(i as u32, r.at, t).unwrap_or(r.at)
    }

    /// What one of `r`'s pods uses at `t` (its container started at `created`), in bytes.
    fn pod_memory(
        &self,
        d: &Desired,
        r: &super::Rollout,
        created: DateTime<Utc>,
        t: DateTime<Utc>,
    ) -> f64 {
        if r.blocked.is_some() || t < created {
            return 0.0;
        }
        self.working_set(d, r, t, created)
    }

    /// The memory limit of `r`'s container, in bytes (infinite without one).
    fn pod_memory_cap(&self, r: &super::Rollout) -> f64 {
        self.container_spec(r)
            .and_then(|c| c.limits.get("memory"))
            .map_or(f64::INFINITY, |q| q.bytes() as f64)
    }

    fn pod_memory_request(&self, r: &super::Rollout) -> f64 {
        self.container_spec(r)
            .and_then(|c| c.requests.get("memory").or_else(|| c.limits.get("memory")))
            .map_or(0.0, |q| q.bytes() as f64)
    }

    /// The priority the pod spec states (the apiserver resolves a PriorityClass into it; the
    /// world knows only the default, 0).
    fn pod_priority(&self, r: &super::Rollout) -> i32 {
        objects::pod_spec(&r.object)["priority"]
            .as_i64()
            .map_or(0, |p| p as i32)
    }
}

/// The kubelet's choice: among the pods on the node, those using more than they request
/// first, then the lowest priority, then the most used over the request.
fn rank(mut candidates: Vec<Candidate>) -> Option<Candidate> {
    candidates.sort_by(|a, b| {
        let over = |c: &Candidate| c.usage > c.request;
        over(b)
            .cmp(&over(a))
            .then(a.priority.cmp(&b.priority))
            .then(
                (b.usage - b.request)
                    .partial_cmp(&(a.usage - a.request))
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
    });
    candidates.into_iter().next().filter(|c| c.usage > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(usage: f64, request: f64, priority: i32, n: usize) -> Candidate {
        Candidate {
            usage,
            request,
            priority,
            who: Who::Foreign(0, n),
        }
    }

    #[test]
    fn the_kubelet_ranks_over_request_then_priority_then_excess() {
        let pick = |v: Vec<Candidate>| match rank(v).map(|c| c.who) {
            Some(Who::Foreign(_, n)) => n,
            _ => usize::MAX,
        };
        // Within its request, however large, a pod goes after any that exceeds its own.
        assert_eq!(pick(vec![c(6e9, 7e9, 0, 0), c(3e8, 2.5e8, 0, 1)]), 1);
        // Both over: the lower priority first, whatever its excess.
        assert_eq!(
            pick(vec![c(6e9, 5e8, 1_000_000, 0), c(3e8, 2.5e8, 0, 1)]),
            1
        );
        // Same priority: the larger excess.
        assert_eq!(pick(vec![c(6e9, 5e8, 0, 0), c(3e8, 2.5e8, 0, 1)]), 0);
    }

    #[test]
    fn the_eviction_message_is_the_kubelets() {
        let e = Evicted {
            cause: Cause::Pressure,
            pod: "p".into(),
            namespace: "n".into(),
            owner: None,
            node: "w".into(),
            created: Utc::now(),
            at: Utc::now(),
            container: "app".into(),
            usage: 300 * 1024 * 1024 + 17,
            request: 256 * 1024 * 1024,
            priority: 0,
            slot: None,
        };
        assert_eq!(
            e.message(),
            "The node was low on resource: memory. Container app was using 300Mi, which exceeds its request of 256Mi. "
        );
    }
}
