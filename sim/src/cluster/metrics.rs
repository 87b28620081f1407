//! The simulated cluster's metrics, as the series kube-state-metrics, cAdvisor (through the
//! kubelet) and the service's own instrumentation would expose them. Values are computed from the
//! model at any instant, so a range query over the last 24 h and a scrape now agree.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Life, SimCluster, secs};
use crate::series::{Labels, Point, SeriesKind, SeriesSource};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

type Lives = Arc<BTreeMap<u32, Life>>;

impl SimCluster {
    /// Requests served since `t0` (the integral of the request rate), for the request counter.
    fn requests_between(&self, t0: DateTime<Utc>, t: DateTime<Utc>) -> f64 {
        // rps is piecewise linear in t: integrate it by the trapezoid rule on its breakpoints,
        // which is exact for a piecewise-linear function.
        let l = &self.scenario.load;
        let surge_start = self.scenario.now - secs((l.surge_started_hours_ago * 3600.0) as i64);
        let mut cuts = vec![t0, t];
        for c in [surge_start, surge_start + secs(1800)] {
            if c > t0 && c < t {
                cuts.push(c);
            }
        }
        cuts.sort();
        cuts.windows(2)
            .map(|w| {
                let dt = (w[1] - w[0]).num_milliseconds() as f64 / 1000.0;
                (self.rps(w[0]) + self.rps(w[1])) / 2.0 * dt
            })
            .sum()
    }

    /// Each rollout's container life up to the clock's now (cached per main head and instant).
    fn lives(&self) -> Option<(Arc<super::Desired>, Lives)> {
        let (d, now) = self.current().ok()?;
        let mut cache = self.lives.lock().ok()?;
        if let Some((head, at, lives)) = cache.as_ref()
            && *head == d.head
            && *at == now
        {
            return Some((d, lives.clone()));
        }
        let lives: Arc<BTreeMap<u32, Life>> = Arc::new(
            d.rollouts
                .iter()
                .map(|r| (r.revision, self.life(&d, r, now)))
                .collect(),
        );
        *cache = Some((d.head.clone(), now, lives.clone()));
        Some((d, lives))
    }
}

impl SeriesSource for SimCluster {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn points_at(&self, t: DateTime<Utc>) -> Vec<Point> {
        let Some((d, lives)) = self.lives() else {
            return Vec::new();
        };
        let s = &self.scenario;
        let ns = s.workload.namespace.as_str();
        let c = s.workload.container.as_str();
        let mut out = Vec::new();
        let mut push = |kind, labels: Labels, value: f64| {
            out.push(Point {
                labels,
                kind,
                value,
            })
        };
        let placements = self.placements(&d, t);
        let newest = super::SimCluster::rollout_at(&d, t).map(|r| r.revision);
        // The Deployment's counters: pods of the newest rollout, and pods ready (available:
        // minReadySeconds is 0).
        let (mut updated, mut available) = (0usize, 0usize);
        for (r, count) in self.serving(&d, t) {
            let life = lives.get(&r.revision).cloned().unwrap_or_default();
            let started = life
                .starts
                .iter()
                .rev()
                .find(|x| **x <= t)
                .copied()
                .unwrap_or(r.at);
            let kills: Vec<_> = life.kills.iter().filter(|k| k.finished_at <= t).collect();
            // Waiting: for a start the kubelet cannot make (a volume, the image, the environment),
            // or in back-off (killed, and not started again yet).
            let blocked = life.waiting_reason(t);
            // (Only the starts up to `t`: a restart still to come does not end a back-off now.)
            let waiting = blocked.is_some()
                || kills.last().is_some_and(|k| {
                    life.starts
                        .iter()
                        .filter(|s| **s <= t)
                        .all(|s| *s <= k.finished_at)
                });
            let waiting_reason = blocked.unwrap_or("CrashLoopBackOff");
            let spec = self.container_spec(r);
            let rs = r
                .pods
                .first()
                .and_then(|p| p.rsplit_once('-'))
                .map_or("", |x| x.0);
            for pod in r.pods.iter().take(count) {
                let node = match placements.get(pod) {
                    Some(super::Placement::Node(n)) => Some(n.as_str()),
                    _ => None,
                };
                // kube-state-metrics' pod series: the phase (each of the five, 1 for the
                // current), the owner, whether it is scheduled.
                let phase = match (node, blocked) {
                    (None, _) | (Some(_), Some(_)) => "Pending",
                    _ => "Running",
                };
                let pod_labels = |name: &str, extra: &[(&str, &str)]| {
                    let mut l = labels(&[("namespace", ns), ("pod", pod.as_str())]);
                    l.insert("__name__".into(), name.into());
                    for (k, v) in extra {
                        l.insert((*k).into(), (*v).into());
                    }
                    l
                };
                for p in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
                    push(
                        SeriesKind::Gauge,
                        pod_labels("kube_pod_status_phase", &[("phase", p)]),
                        if p == phase { 1.0 } else { 0.0 },
                    );
                }
                push(
                    SeriesKind::Gauge,
                    pod_labels(
                        "kube_pod_owner",
                        &[
                            ("owner_kind", "ReplicaSet"),
                            ("owner_name", rs),
                            ("owner_is_controller", "true"),
                        ],
                    ),
                    1.0,
                );
                for (condition, on) in [("true", node.is_some()), ("false", node.is_none())] {
                    push(
                        SeriesKind::Gauge,
                        pod_labels("kube_pod_status_scheduled", &[("condition", condition)]),
                        if on { 1.0 } else { 0.0 },
                    );
                }
                if node.is_none() {
                    push(
                        SeriesKind::Gauge,
                        pod_labels("kube_pod_status_unschedulable", &[]),
                        1.0,
                    );
                }
                let base = [("namespace", ns), ("pod", pod.as_str()), ("container", c)];
                let with = |name: &str, extra: &[(&str, &str)]| {
                    let mut l = labels(&base);
                    l.insert("__name__".into(), name.into());
                    for (k, v) in extra {
                        l.insert((*k).into(), (*v).into());
                    }
                    l
                };
                if let Some(spec) = spec {
                    for (which, map) in [("limits", &spec.limits), ("requests", &spec.requests)] {
                        for (resource, q) in map.iter() {
                            let unit = if resource == "cpu" { "core" } else { "byte" };
                            let value = q.milli() as f64 / 1000.0;
                            push(
                                SeriesKind::Gauge,
                                with(
                                    &format!("kube_pod_container_resource_{which}"),
                                    &[
                                        ("resource", resource.as_str()),
                                        ("unit", unit),
                                        ("node", node.unwrap_or("")),
                                    ],
                                ),
                                value,
                            );
                        }
                    }
                }
                if Some(r.revision) == newest {
                    updated += 1;
                }
                // A pod with no node has no container statuses: no container series.
                if node.is_none() {
                    continue;
                }
                // The working set is the container's memory demand whenever it can start at all
                // (the stated simplification: through back-offs too, as the model's
                // `memory_working_set` reports it), not only at the instants it runs.
                if blocked.is_none() {
                    push(
                        SeriesKind::Gauge,
                        with(
                            "container_memory_working_set_bytes",
                            &[("image", spec.map_or("", |x| x.image.as_str()))],
                        ),
                        self.demand(t, started),
                    );
                }
                push(
                    SeriesKind::Counter,
                    with("kube_pod_container_status_restarts_total", &[]),
                    kills.len() as f64,
                );
                push(
                    SeriesKind::Gauge,
                    with("kube_pod_container_status_ready", &[]),
                    if waiting || r.unready.is_some() {
                        0.0
                    } else {
                        1.0
                    },
                );
                if !waiting && r.unready.is_none() {
                    available += 1;
                }
                if let Some(k) = kills.last() {
                    push(
                        SeriesKind::Gauge,
                        with(
                            "kube_pod_container_status_last_terminated_reason",
                            &[("reason", k.reason.as_str())],
                        ),
                        1.0,
                    );
                    push(
                        SeriesKind::Gauge,
                        with("kube_pod_container_status_last_terminated_exitcode", &[]),
                        f64::from(k.exit_code),
                    );
                }
                if waiting {
                    push(
                        SeriesKind::Gauge,
                        with(
                            "kube_pod_container_status_waiting_reason",
                            &[("reason", waiting_reason)],
                        ),
                        1.0,
                    );
                }
            }
        }
        if let Some(r) = super::SimCluster::rollout_at(&d, t)
            && s.workload.kind == "Deployment"
        {
            for (name, value) in [
                ("kube_deployment_spec_replicas", r.workload.replicas as f64),
                (
                    "kube_deployment_status_replicas_available",
                    available as f64,
                ),
                ("kube_deployment_status_replicas_updated", updated as f64),
            ] {
                let mut l = labels(&[("namespace", ns), ("deployment", s.workload.name.as_str())]);
                l.insert("__name__".into(), name.into());
                push(SeriesKind::Gauge, l, value);
            }
        }
        let mut l = labels(&[
            ("namespace", ns),
            ("service", s.workload.name.as_str()),
            ("route", s.app.route.as_str()),
        ]);
        l.insert("__name__".into(), "http_requests_total".into());
        let epoch = s.now - chrono::Duration::days(30);
        push(SeriesKind::Counter, l, self.requests_between(epoch, t));
        out
    }

    fn help(&self, metric: &str) -> Option<&'static str> {
        Some(match metric {
            "container_memory_working_set_bytes" => "Current working set of the container in bytes",
            "kube_pod_container_status_restarts_total" => {
                "The number of container restarts per container."
            }
            "kube_pod_container_status_ready" => {
                "Describes whether the containers readiness check succeeded."
            }
            "kube_pod_container_status_last_terminated_reason" => {
                "Describes the last reason the container was in terminated state."
            }
            "kube_pod_container_status_last_terminated_exitcode" => {
                "Describes the exit code for the last container in terminated state."
            }
            "kube_pod_container_status_waiting_reason" => {
                "Describes the reason the container is currently in waiting state."
            }
            "kube_pod_container_resource_limits" => {
                "The number of requested limit resource by a container."
            }
            "kube_pod_container_resource_requests" => {
                "The number of requested request resource by a container."
            }
            "http_requests_total" => "Requests served by the service, by route.",
            "kube_pod_status_phase" => "The pods current phase.",
            "kube_deployment_spec_replicas" => "Number of desired pods for a deployment.",
            "kube_deployment_status_replicas_available" => {
                "The number of available replicas per deployment."
            }
            "kube_deployment_status_replicas_updated" => {
                "The number of updated replicas per deployment."
            }
            "kube_pod_owner" => "Information about the Pod's owner.",
            "kube_pod_status_scheduled" => {
                "Describes the status of the scheduling process for the pod."
            }
            "kube_pod_status_unschedulable" => "Describes the unschedulable status for the pod.",
            _ => return None,
        })
    }
}
