//! The simulated cluster's metrics, as the series kube-state-metrics, cAdvisor (through the
//! kubelet) and the service's own instrumentation would expose them. Values are computed from the
//! model at any instant, so a range query over the last 24 h and a scrape now agree.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Life, SimCluster, secs};
use crate::series::{Labels, Point, SeriesKind, SeriesSource};

mod latency;
mod nodes;

pub(super) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

type Lives = Arc<BTreeMap<u32, Life>>;

/// CFS enforces a CPU limit per period of 100 ms: ten periods a second.
const CFS_PERIODS_PER_SECOND: f64 = 10.0;

/// A container's CPU at one instant, per second: cores used, and the CFS periods in which it
/// was throttled (out of [`CFS_PERIODS_PER_SECOND`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CpuRate {
    pub used: f64,
    pub throttled_periods: f64,
}

/// The CPU model: a mean demand of `demand` cores arriving in bursts, so that the work of one
/// 100 ms period is exponentially distributed around the mean. A period whose work exceeds the
/// quota (`limit` cores × 100 ms) is throttled — probability `exp(-limit / demand)` — and runs
/// only its quota: the container uses `demand × (1 − exp(−limit / demand))` cores. So throttling
/// starts well below the limit (14% of periods at half of it, 37% at it) as it does for real
/// request-driven services, and usage never passes the limit. Without a limit nothing throttles.
pub(crate) fn cpu_rate(demand: f64, limit: Option<f64>) -> CpuRate {
    match limit {
        Some(l) if demand > 0.0 && l > 0.0 => {
            let p = (-l / demand).exp();
            CpuRate {
                used: demand * (1.0 - p),
                throttled_periods: CFS_PERIODS_PER_SECOND * p,
            }
        }
        _ => CpuRate {
            used: demand.max(0.0),
            throttled_periods: 0.0,
        },
    }
}

/// The pieces a day's traffic swing is integrated in (aligned to the epoch) …
const SWING_PIECE_SECONDS: i64 = 24 * 3600;
/// … and Simpson's step over them: an hour of a 24-hour cosine errs by about 1e-5 of it.
const SWING_STEP_SECONDS: f64 = 3600.0;

impl SimCluster {
    /// The integral over `[t0, t]` of a function of a pod's request rate (of the service's,
    /// at the reference replica count, unless `per_pod`). It is piecewise linear in t (flat,
    /// then the surge's 30-minute ramp, each replica count a piece): Simpson's rule on each
    /// piece is exact for the request counter and within a part in 10⁶ for the CPU model's
    /// curves.
    fn integrate_over_load(
        &self,
        d: &super::Desired,
        (t0, t): (DateTime<Utc>, DateTime<Utc>),
        per_pod: bool,
        f: impl Fn(f64) -> f64,
    ) -> f64 {
        if t <= t0 {
            return 0.0;
        }
        let l = &self.scenario.load;
        let surge_start = self.scenario.now - secs((l.surge_started_hours_ago * 3600.0) as i64);
        let mut cuts = vec![t0, t];
        for c in [surge_start, surge_start + secs(1800)] {
            if c > t0 && c < t {
                cuts.push(c);
            }
        }
        // The replica count changes the share each pod takes.
        cuts.extend(d.scale.changes_between(t0, t));
        // A day's swing is smooth: Simpson's rule with a step of SWING_STEP is exact enough.
        // The pieces start at fixed instants (whole days since the epoch), so two counters read
        // a moment apart share all but their last piece and their difference — a rate —
        // carries only that piece's error.
        let swing = l.daily_swing_percent > 0.0;
        if swing {
            let piece = SWING_PIECE_SECONDS;
            let mut c = (t0.timestamp().div_euclid(piece) + 1) * piece;
            while c < t.timestamp() {
                if let Some(at) = DateTime::from_timestamp(c, 0) {
                    cuts.push(at);
                }
                c += piece;
            }
        }
        cuts.sort();
        cuts.windows(2)
            .map(|w| {
                let span = (w[1] - w[0]).num_milliseconds() as f64 / 1000.0;
                // Intervals: 16 (exact for the linear pieces), more for a long swinging one.
                let n = if swing {
                    (((span / SWING_STEP_SECONDS).ceil() as i32 + 1) & !1).max(16)
                } else {
                    16
                };
                let h = span / f64::from(n);
                let at = |i: i32| {
                    let dt = chrono::Duration::milliseconds((h * f64::from(i) * 1000.0) as i64);
                    {
                        let at = w[0] + dt;
                        f(if per_pod {
                            self.rps(d, at)
                        } else {
                            self.traffic(at)
                        })
                    }
                };
                let inner: f64 = (1..n)
                    .map(|i| if i % 2 == 1 { 4.0 } else { 2.0 } * at(i))
                    .sum();
                h / 3.0 * (at(0) + inner + at(n))
            })
            .sum()
    }

    /// Requests one pod served since `t0` (the integral of its request rate).
    pub(super) fn requests_between(
        &self,
        d: &super::Desired,
        t0: DateTime<Utc>,
        t: DateTime<Utc>,
    ) -> f64 {
        self.integrate_over_load(d, (t0, t), true, |rps| rps)
    }

    /// The service's request counter since `t0`, in the load model's units: a pod's requests at
    /// the reference replica count (so the rate is the traffic, however many pods share it).
    fn service_requests_between(
        &self,
        d: &super::Desired,
        t0: DateTime<Utc>,
        t: DateTime<Utc>,
    ) -> f64 {
        self.integrate_over_load(d, (t0, t), false, |rps| rps)
    }

    /// The app's mean CPU demand in cores at a request rate.
    pub(super) fn cpu_demand(&self, r: &super::Rollout, rps: f64) -> f64 {
        let a = self.app(r);
        (a.cpu_millicores + a.cpu_millicores_per_rps * rps) / 1000.0
    }

    /// cAdvisor's CPU counters of a container that started at `started`, at `t`: CPU seconds
    /// used, CFS periods, throttled CFS periods (the last two only under a limit).
    fn cpu_counters(
        &self,
        (d, r): (&super::Desired, &super::Rollout),
        limit: Option<f64>,
        started: DateTime<Utc>,
        t: DateTime<Utc>,
    ) -> (f64, Option<(f64, f64)>) {
        let rate = |rps: f64| cpu_rate(self.cpu_demand(r, rps), limit);
        let used = self.integrate_over_load(d, (started, t), true, |r| rate(r).used);
        let periods = limit.map(|_| {
            let seconds = (t - started).num_milliseconds().max(0) as f64 / 1000.0;
            (
                CFS_PERIODS_PER_SECOND * seconds,
                self.integrate_over_load(d, (started, t), true, |r| rate(r).throttled_periods),
            )
        });
        (used, periods)
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
        if self.is_cron_job() {
            self.cron_points(&d, t, &mut push);
        } else if self.is_job() {
            self.job_points(&d, t, &mut push);
        }
        for (r, count) in self.serving(&d, t).into_iter().filter(|_| !self.is_batch()) {
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
            for (slot, pod) in r.pods.iter().take(count).enumerate() {
                let node = match placements.get(pod) {
                    Some(super::Placement::Node(n)) => Some(n.as_str()),
                    _ => None,
                };
                // A replica that cannot get the volume another one holds waits since it was
                // created (`attach.rs`).
                let own = self
                    .replica_attach(&d, r, pod, t, &placements)
                    .map(|(b, created)| Life {
                        waiting: true,
                        attempts: b.attempts(created, t),
                        blocked: Some(b),
                        ..Life::default()
                    });
                let blocked = own.as_ref().map_or(blocked, |l| l.waiting_reason(t));
                let waiting = own.is_some() || waiting;
                let waiting_reason = blocked.unwrap_or(waiting_reason);
                let kills = if own.is_some() {
                    Vec::new()
                } else {
                    kills.clone()
                };
                // A pod created in place of an evicted one: its container started with it.
                let started = d
                    .evictions
                    .replacement((r.revision, slot), t)
                    .map_or(started, |rep| started.max(rep.created));
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
                let Some(on) = node else {
                    continue;
                };
                // A node gone silent: its kubelet's own series stop with it; what the
                // apiserver last heard stays.
                let heard = self.silent(on, t).is_none();
                // The working set is the container's memory demand, capped at its limit,
                // whenever it can start at all (the stated simplification: through back-offs
                // too, as the model's `memory_working_set` reports it), not only at the
                // instants it runs.
                if blocked.is_none() && heard {
                    let image = spec.map_or("", |x| x.image.as_str());
                    push(
                        SeriesKind::Gauge,
                        with("container_memory_working_set_bytes", &[("image", image)]),
                        self.working_set(&d, r, t, started),
                    );
                    // CPU, with the CFS counters only where a limit sets a quota (as cAdvisor
                    // reports them), and only for an app that burns CPU at all.
                    let limit = spec
                        .and_then(|x| x.limits.get("cpu"))
                        .map(|q| q.milli() as f64 / 1000.0);
                    let (used, periods) = self.cpu_counters((&d, r), limit, started, t);
                    push(
                        SeriesKind::Counter,
                        with("container_cpu_usage_seconds_total", &[("image", image)]),
                        used,
                    );
                    if let Some((all, throttled)) = periods.filter(|_| self.app(r).burns_cpu()) {
                        push(
                            SeriesKind::Counter,
                            with("container_cpu_cfs_periods_total", &[("image", image)]),
                            all,
                        );
                        push(
                            SeriesKind::Counter,
                            with(
                                "container_cpu_cfs_throttled_periods_total",
                                &[("image", image)],
                            ),
                            throttled,
                        );
                    }
                    // The app's latency on its probed path, where the scenario models it.
                    if let Some((path, per_second)) = spec
                        .and_then(latency::probed)
                        .filter(|_| self.app(r).models_latency())
                    {
                        let h = self.latency_histogram(&d, r, per_second, (started, t));
                        let name = "http_request_duration_seconds";
                        for (le, n) in &h.buckets {
                            push(
                                SeriesKind::Histogram,
                                with(
                                    &format!("{name}_bucket"),
                                    &[("route", path.as_str()), ("le", le.as_str())],
                                ),
                                *n,
                            );
                        }
                        push(
                            SeriesKind::Histogram,
                            with(&format!("{name}_count"), &[("route", path.as_str())]),
                            h.count,
                        );
                        push(
                            SeriesKind::Histogram,
                            with(&format!("{name}_sum"), &[("route", path.as_str())]),
                            h.sum,
                        );
                    }
                }
                push(
                    SeriesKind::Counter,
                    with("kube_pod_container_status_restarts_total", &[]),
                    kills.len() as f64,
                );
                let ready = !waiting && r.unready.is_none() && t >= started + secs(r.ready_after);
                push(
                    SeriesKind::Gauge,
                    with("kube_pod_container_status_ready", &[]),
                    if ready { 1.0 } else { 0.0 },
                );
                // The node controller marks a silent node's pods not ready.
                if ready && self.unknown(on, t).is_none() {
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
                    // Stopped at an init container: that one waits for the blocker, the
                    // container for it.
                    match (&r.init_stop, blocked) {
                        (Some((_, init)), Some(reason)) => {
                            let mut l = with(
                                "kube_pod_init_container_status_waiting_reason",
                                &[("reason", reason)],
                            );
                            l.insert("container".into(), init.clone());
                            push(SeriesKind::Gauge, l, 1.0);
                            push(
                                SeriesKind::Gauge,
                                with(
                                    "kube_pod_container_status_waiting_reason",
                                    &[("reason", super::init_containers::INITIALIZING)],
                                ),
                                1.0,
                            );
                        }
                        _ => push(
                            SeriesKind::Gauge,
                            with(
                                "kube_pod_container_status_waiting_reason",
                                &[("reason", waiting_reason)],
                            ),
                            1.0,
                        ),
                    }
                }
            }
        }
        self.eviction_points(&d, t, &mut push);
        if let Some(r) = super::SimCluster::rollout_at(&d, t)
            && s.workload.kind == "Deployment"
        {
            for (name, value) in [
                (
                    "kube_deployment_spec_replicas",
                    f64::from(d.scale.replicas_at(t)),
                ),
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
            // The conditions, one series per status (1 for the current): Progressing turns
            // False at the deadline of a rollout that made no pod available; Available is False
            // while fewer than replicas − maxUnavailable pods are.
            let progressing =
                self.available_at(r).is_some_and(|a| a <= t) || t < super::progress_deadline(r);
            let replicas = d.scale.replicas_at(t);
            let (keep, _) = super::rolling_split(r, replicas);
            let minimum = keep.min(replicas as usize);
            for (condition, on) in [
                ("Progressing", progressing),
                ("Available", available >= minimum),
            ] {
                for status in ["true", "false", "unknown"] {
                    let mut l = labels(&[
                        ("namespace", ns),
                        ("deployment", s.workload.name.as_str()),
                        ("condition", condition),
                        ("status", status),
                    ]);
                    l.insert("__name__".into(), "kube_deployment_status_condition".into());
                    let current = if on { "true" } else { "false" };
                    push(
                        SeriesKind::Gauge,
                        l,
                        if status == current { 1.0 } else { 0.0 },
                    );
                }
            }
        }
        self.hpa_points(&d, t, &mut push);
        // The kubelet's stats of the data volume the newest pods mount.
        if let Some(r) = super::SimCluster::rollout_at(&d, t)
            && let Some(disk) = self.disk_at(&d, r, t)
        {
            for (name, value) in [
                ("kubelet_volume_stats_capacity_bytes", disk.capacity),
                ("kubelet_volume_stats_used_bytes", disk.used),
                (
                    "kubelet_volume_stats_available_bytes",
                    disk.capacity - disk.used,
                ),
            ] {
                let mut l = labels(&[
                    ("namespace", ns),
                    ("persistentvolumeclaim", disk.claim.as_str()),
                ]);
                l.insert("__name__".into(), name.into());
                push(SeriesKind::Gauge, l, value.round());
            }
        }
        // The claims that exist by then, each with its phase (kube-state-metrics: one series per
        // phase, 1 for the current) and its class.
        for (claim, since) in self.claims_of(&d) {
            if since > t {
                continue;
            }
            let name = squad_gitops::objects::name(claim);
            let (phase, class) = match super::storage::claim_state(s, &d.objects, name) {
                super::storage::ClaimState::Bound { class } => ("Bound", class),
                super::storage::ClaimState::Pending { class, .. } => {
                    ("Pending", class.unwrap_or_default())
                }
                super::storage::ClaimState::Missing => continue,
            };
            for p in ["Lost", "Bound", "Pending"] {
                let mut l = labels(&[
                    ("namespace", ns),
                    ("persistentvolumeclaim", name),
                    ("phase", p),
                ]);
                l.insert(
                    "__name__".into(),
                    "kube_persistentvolumeclaim_status_phase".into(),
                );
                push(SeriesKind::Gauge, l, if p == phase { 1.0 } else { 0.0 });
            }
            let mut l = labels(&[
                ("namespace", ns),
                ("persistentvolumeclaim", name),
                ("storageclass", class.as_str()),
            ]);
            l.insert("__name__".into(), "kube_persistentvolumeclaim_info".into());
            push(SeriesKind::Gauge, l, 1.0);
        }
        let mut l = labels(&[
            ("namespace", ns),
            ("service", s.workload.name.as_str()),
            ("route", s.app.route.as_str()),
        ]);
        l.insert("__name__".into(), "http_requests_total".into());
        let epoch = s.now - chrono::Duration::days(30);
        push(
            SeriesKind::Counter,
            l,
            self.service_requests_between(&d, epoch, t),
        );
        // The uptime check's requests through the Service, by the route each asks.
        let period = crate::scenario::AppSpec::HEALTH_CHECK_PERIOD_SECONDS;
        for path in &s.app.health_checks {
            let mut l = labels(&[
                ("namespace", ns),
                ("service", s.workload.name.as_str()),
                ("route", path.as_str()),
            ]);
            l.insert("__name__".into(), "http_requests_total".into());
            let seconds = (t - epoch).num_milliseconds().max(0) as f64 / 1000.0;
            push(SeriesKind::Counter, l, seconds / period);
        }
        out
    }

    fn help(&self, metric: &str) -> Option<&'static str> {
        Some(match metric {
            "container_memory_working_set_bytes" => "Current working set of the container in bytes",
            "container_cpu_usage_seconds_total" => "Cumulative cpu time consumed in seconds.",
            "container_cpu_cfs_periods_total" => "Number of elapsed enforcement period intervals.",
            "container_cpu_cfs_throttled_periods_total" => "Number of throttled period intervals.",
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
            "kube_pod_init_container_status_waiting_reason" => {
                "Describes the reason the init container is currently in waiting state."
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
            "kube_pod_status_reason" => "The pod status reasons",
            "kube_node_status_condition" => "The condition of a cluster node.",
            "kube_node_spec_unschedulable" => "Whether a node can schedule new pods.",
            "kube_node_spec_taint" => "The taint of a cluster node.",
            "kube_pod_deletion_timestamp" => "Unix deletion timestamp",
            "kube_job_failed" => "The job has failed its execution.",
            "kube_horizontalpodautoscaler_spec_max_replicas" => {
                "Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas."
            }
            "kube_horizontalpodautoscaler_spec_min_replicas" => {
                "Lower limit for the number of pods that can be set by the autoscaler, default 1."
            }
            "kube_horizontalpodautoscaler_status_current_replicas" => {
                "Current number of replicas of pods managed by this autoscaler."
            }
            "kube_horizontalpodautoscaler_status_desired_replicas" => {
                "Desired number of replicas of pods managed by this autoscaler."
            }
            "kube_horizontalpodautoscaler_status_condition" => "The condition of this autoscaler.",
            "kube_horizontalpodautoscaler_spec_target_metric" => {
                "The metric specifications used by this autoscaler when calculating the desired replica count."
            }
            "kube_job_complete" => "The job has completed its execution.",
            "kube_job_status_failed" => "The number of pods which reached Phase Failed.",
            "kube_job_status_active" => "The number of actively running pods.",
            "kube_job_status_succeeded" => "The number of pods which reached Phase Succeeded.",
            "kube_job_spec_completions" => {
                "The desired number of successfully finished pods the job should be run with."
            }
            "kube_deployment_status_condition" => "The current status conditions of a deployment.",
            "kube_pod_status_scheduled" => {
                "Describes the status of the scheduling process for the pod."
            }
            "kube_pod_status_unschedulable" => "Describes the unschedulable status for the pod.",
            "kube_persistentvolumeclaim_status_phase" => {
                "The phase the persistent volume claim is currently in."
            }
            "kube_persistentvolumeclaim_info" => "Information about persistent volume claim.",
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_limit_throttles_bursts_before_the_mean_reaches_it() {
        // At the limit, a period's work exceeds the quota with probability 1/e.
        let at = cpu_rate(0.5, Some(0.5));
        assert!((at.throttled_periods / CFS_PERIODS_PER_SECOND - (-1.0f64).exp()).abs() < 1e-12);
        // At half the limit, already one period in seven.
        let half = cpu_rate(0.25, Some(0.5));
        assert!((half.throttled_periods / CFS_PERIODS_PER_SECOND - 0.1353).abs() < 1e-4);
        // Use never passes the limit, however high the demand.
        for demand in [0.1, 0.5, 1.0, 4.0, 100.0] {
            assert!(cpu_rate(demand, Some(0.5)).used < 0.5);
        }
        // Without a limit (or demand) nothing is throttled and the demand is used.
        assert_eq!(
            cpu_rate(3.0, None),
            CpuRate {
                used: 3.0,
                throttled_periods: 0.0
            }
        );
        assert_eq!(cpu_rate(0.0, Some(0.5)).throttled_periods, 0.0);
    }
}
