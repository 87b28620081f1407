//! The events recorded about a pod: the scheduler's (FailedScheduling, Scheduled) and the
//! kubelet's (starts, probe failures, kills, back-offs, and the node's OOM kill records).

use chrono::{DateTime, Utc};
use squad_protocols::Quantity;
use squad_protocols::cluster::{ClusterEvent, Termination};

use super::{Desired, Life, Placement, Rollout, SimCluster, prober, secs};

impl SimCluster {
    /// The events about one pod of a rollout: the scheduler's, then the kubelet's (and the node's OOM
    /// kill records for it).
    pub(super) fn pod_events(
        &self,
        d: &Desired,
        r: &Rollout,
        pod: &str,
        now: DateTime<Utc>,
    ) -> Vec<ClusterEvent> {
        let s = &self.scenario;
        // A pod the ReplicaSet created in place of an evicted one: since then, and placed
        // when the scheduler found it a node.
        let replacement = r
            .pods
            .iter()
            .position(|p| p == pod)
            .and_then(|i| d.evictions.replacement((r.revision, i), now));
        let created = replacement.map_or(r.at, |rep| rep.created);
        let node = match self.placement(d, pod, now) {
            Placement::Node(node) => node,
            Placement::Unschedulable(message) => {
                // The scheduler retries an unschedulable pod at least every 5 minutes (when
                // nothing in the cluster changes sooner) and records each failure.
                let tries = 1 + (now - created).num_seconds().max(0) / 300;
                return vec![ClusterEvent {
                    kind: "Warning".into(),
                    reason: "FailedScheduling".into(),
                    message,
                    count: tries as u32,
                    first_seen: created,
                    last_seen: created + secs((tries - 1) * 300),
                    object: format!("Pod/{pod}"),
                }];
            }
        };
        let placed = replacement
            .and_then(|rep| {
                rep.placed
                    .iter()
                    .find(|(_, p)| matches!(p, Placement::Node(_)))
                    .map(|(at, _)| *at)
            })
            .unwrap_or(created);
        let scheduled = ClusterEvent {
            kind: "Normal".into(),
            reason: "Scheduled".into(),
            message: format!(
                "Successfully assigned {}/{pod} to {node}",
                s.workload.namespace
            ),
            count: 1,
            first_seen: placed,
            last_seen: placed,
            object: format!("Pod/{pod}"),
        };
        // On a node gone silent: what its kubelet said before, and the node controller's word.
        let silent = self.silent(&node, now);
        let heard = silent.map_or(now, |q| q.last_heard.min(now));
        let life = self.pod_life(d, r, pod, heard);
        let mut events = self.kubelet_events(d, r, pod, &node, &life, heard);
        events.insert(0, scheduled);
        if let Some(q) = silent.filter(|q| q.unknown <= now && placed <= q.unknown) {
            events.push(super::node_lifecycle::pod_not_ready_event(pod, &q));
        }
        events
    }

    /// The kubelet's events about one pod of a rollout on `node` (and the node's OOM kill
    /// records for it).
    fn kubelet_events(
        &self,
        d: &Desired,
        r: &Rollout,
        pod: &str,
        node: &str,
        life: &Life,
        now: DateTime<Utc>,
    ) -> Vec<ClusterEvent> {
        let s = &self.scenario;
        let c = &s.workload.container;
        if let Some(b) = &life.blocked {
            let policy = self
                .container_object(r)
                .and_then(|c| c["imagePullPolicy"].as_str())
                .unwrap_or("IfNotPresent");
            return b.events(pod, &life.attempts, now, policy);
        }
        // A command the image does not hold: containerd creates the container and fails to
        // start its process, every attempt.
        let not_found = self
            .container_spec(r)
            .and_then(|spec| self.missing_executable(spec));
        let mut events = vec![match &not_found {
            Some(cmd) => ClusterEvent {
                kind: "Warning".into(),
                reason: "Failed".into(),
                message: format!(
                    "Error: failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"{cmd}\": executable file not found in $PATH: unknown"
                ),
                count: life.starts.len() as u32,
                first_seen: *life.starts.first().unwrap_or(&r.at),
                last_seen: *life.starts.last().unwrap_or(&r.at),
                object: format!("Pod/{pod}"),
            },
            None => ClusterEvent {
                kind: "Normal".into(),
                reason: "Started".into(),
                message: format!("Started container {c}"),
                count: life.starts.len() as u32,
                first_seen: *life.starts.first().unwrap_or(&r.at),
                last_seen: *life.starts.last().unwrap_or(&r.at),
                object: format!("Pod/{pod}"),
            },
        }];
        // A readiness probe that fails on the app fails at every period while the container
        // runs (the kubelet aggregates the identical events into one with a count).
        if let (Some(f), Some(probe), Some(first)) = (
            &r.unready,
            self.container_spec(r)
                .and_then(|c| c.readiness_probe.as_ref()),
            life.starts.first(),
        ) {
            let first_probe = *first + secs(i64::from(probe.initial_delay_seconds));
            let period = i64::from(probe.period_seconds.max(1));
            if first_probe <= now {
                let probes = 1 + (now - first_probe).num_seconds() / period;
                events.push(ClusterEvent {
                    kind: "Warning".into(),
                    reason: "Unhealthy".into(),
                    message: format!(
                        "Readiness probe failed: {}",
                        f.message(&self.pod_ip(d, pod, node))
                    ),
                    count: probes as u32,
                    first_seen: first_probe,
                    last_seen: first_probe + secs((probes - 1) * period),
                    object: format!("Pod/{pod}"),
                });
            }
        }
        // While the app starts, its readiness endpoint answers 503 at every probe of the
        // current run until the first that passes.
        if let (None, Some(probe), Some(start)) = (
            &r.unready,
            self.container_spec(r)
                .and_then(|c| c.readiness_probe.as_ref())
                .filter(|_| r.ready_after > 0),
            life.starts.last(),
        ) {
            let first_probe = *start + secs(i64::from(probe.initial_delay_seconds));
            let period = i64::from(probe.period_seconds.max(1));
            let ready = *start + secs(r.ready_after);
            let last = now.min(ready - secs(1));
            if first_probe <= last {
                let probes = 1 + (last - first_probe).num_seconds() / period;
                events.push(ClusterEvent {
                    kind: "Warning".into(),
                    reason: "Unhealthy".into(),
                    message: format!(
                        "Readiness probe failed: {}",
                        prober::ProbeFailure::Status(503).message("")
                    ),
                    count: probes as u32,
                    first_seen: first_probe,
                    last_seen: first_probe + secs((probes - 1) * period),
                    object: format!("Pod/{pod}"),
                });
            }
        }
        // Liveness kills: each after `failureThreshold` failed probes, then the kubelet's
        // Killing (the container ends a grace period later).
        let liveness_kills: Vec<_> = life
            .kills
            .iter()
            .filter(|k| k.reason == "Error" && k.exit_code == 137)
            .collect();
        if let (Some(first), Some(last), Some(spec)) = (
            liveness_kills.first(),
            liveness_kills.last(),
            self.container_spec(r),
        ) && let Some(probe) = spec.liveness_probe.as_ref()
        {
            let grace = r.object["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30);
            let killed_at = |k: &Termination| k.finished_at - secs(grace);
            let n = liveness_kills.len() as u32;
            if let Some(f) = prober::failure_at(
                self.app(r),
                spec,
                probe,
                self.latency_ms(d, r, killed_at(last)),
            ) {
                events.push(ClusterEvent {
                    kind: "Warning".into(),
                    reason: "Unhealthy".into(),
                    message: format!(
                        "Liveness probe failed: {}",
                        f.message(&self.pod_ip(d, pod, node))
                    ),
                    count: n * probe.failure_threshold.max(1),
                    first_seen: killed_at(first)
                        - secs(
                            i64::from(probe.period_seconds.max(1))
                                * i64::from(probe.failure_threshold.max(1) - 1),
                        ),
                    last_seen: killed_at(last),
                    object: format!("Pod/{pod}"),
                });
            }
            events.push(ClusterEvent {
                kind: "Normal".into(),
                reason: "Killing".into(),
                message: format!("Container {c} failed liveness probe, will be restarted"),
                count: n,
                first_seen: killed_at(first),
                last_seen: killed_at(last),
                object: format!("Pod/{pod}"),
            });
        }
        for e in &s.pod_events {
            events.push(ClusterEvent {
                kind: e.kind.clone(),
                reason: e.reason.clone(),
                message: e.message.clone(),
                count: 1,
                first_seen: r.at,
                last_seen: r.at,
                object: format!("Pod/{pod}"),
            });
        }
        if let (Some(first), Some(last)) = (life.kills.first(), life.kills.last()) {
            let ooms: Vec<_> = life
                .kills
                .iter()
                .filter(|k| k.reason == "OOMKilled")
                .collect();
            if let (Some(f), Some(l)) = (ooms.first(), ooms.last()) {
                events.push(ClusterEvent {
                    kind: "Warning".into(),
                    reason: "OOMKilling".into(),
                    message: format!(
                        "Memory cgroup out of memory: Killed process in container {c} of pod {}/{pod} (limit {})",
                        s.workload.namespace,
                        self.container_spec(r)
                            .and_then(|x| x.limits.get("memory"))
                            .map(Quantity::to_string)
                            .unwrap_or_default()
                    ),
                    count: ooms.len() as u32,
                    first_seen: f.finished_at,
                    last_seen: l.finished_at,
                    object: format!("Node/{node}"),
                });
            }
            events.push(ClusterEvent {
                kind: "Warning".into(),
                reason: "BackOff".into(),
                message: format!("Back-off restarting failed container {c} in pod {pod}"),
                count: life.kills.len() as u32,
                first_seen: first.finished_at,
                last_seen: last.finished_at,
                object: format!("Pod/{pod}"),
            });
        }
        events
    }
}

/// The ReplicaSet controller retries a failed sync with its per-item exponential back-off:
/// 5 ms doubling, capped at 1000 s. The instants of its attempts since `start`, up to `now`.
fn controller_attempts(start: DateTime<Utc>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let (mut at, mut delay_ms) = (start, 5i64);
    while at <= now {
        out.push(at);
        at += chrono::Duration::milliseconds(delay_ms);
        delay_ms = (delay_ms * 2).min(1_000_000);
    }
    out
}

impl SimCluster {
    /// The events about a rollout's ReplicaSet: the controller's `FailedCreate` for each pod the
    /// apiserver refused (one event, counted, with the last attempt's pod name: the recorder
    /// aggregates them).
    pub(super) fn replica_set_events(&self, r: &Rollout, now: DateTime<Utc>) -> Vec<ClusterEvent> {
        let Some(why) = &r.refused else {
            return Vec::new();
        };
        let attempts = controller_attempts(r.at, now);
        let Some(last) = attempts.last().copied() else {
            return Vec::new();
        };
        let rs = Self::rs_name(r);
        let pod = format!(
            "{rs}-{}",
            crate::cluster::short_hash(&format!("{rs}{}", attempts.len()), 5)
        );
        vec![ClusterEvent {
            kind: "Warning".into(),
            reason: "FailedCreate".into(),
            message: format!("Error creating: {}", super::admission::forbidden(&pod, why)),
            count: attempts.len() as u32,
            first_seen: r.at,
            last_seen: last,
            object: format!("ReplicaSet/{rs}"),
        }]
    }
}
