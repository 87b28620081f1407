//! The app's own request-latency histogram on the path its HTTP probes ask
//! (`http_request_duration_seconds{route}`, the name and default buckets Prometheus' client
//! libraries give it), for a scenario that models the app's latency: the kubelet's probe requests,
//! each answered in the app's latency at the pod's request rate. The app keeps answering after
//! the kubelet gave up waiting, so its histogram knows how slow the endpoint really is — what a
//! probe's timeout is sized from.

use chrono::{DateTime, Utc};
use squad_protocols::cluster::ContainerSpec;

use super::super::{Desired, Rollout, SimCluster};

/// The upper bounds of the client libraries' default buckets, in seconds (`+Inf` follows).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The path the container's HTTP liveness probe asks, and how many requests a second the
/// kubelet's HTTP probes make on it.
pub(super) fn probed(c: &ContainerSpec) -> Option<(String, f64)> {
    let liveness = c.liveness_probe.as_ref().filter(|p| p.kind == "httpGet")?;
    let per_second = [c.liveness_probe.as_ref(), c.readiness_probe.as_ref()]
        .into_iter()
        .flatten()
        .filter(|p| p.kind == "httpGet" && p.path == liveness.path)
        .map(|p| 1.0 / f64::from(p.period_seconds.max(1)))
        .sum();
    Some((liveness.path.clone(), per_second))
}

/// One histogram's series at an instant: each bucket's `le` and cumulative count (`+Inf` last),
/// the count and the sum of the latencies, in seconds.
pub(super) struct Histogram {
    pub(super) buckets: Vec<(String, f64)>,
    pub(super) count: f64,
    pub(super) sum: f64,
}

impl SimCluster {
    /// The histogram of the probe requests answered since the container started at `started`,
    /// at `t` (`per_second` requests a second, each in the app's latency at the pod's rate).
    pub(super) fn latency_histogram(
        &self,
        d: &Desired,
        r: &Rollout,
        per_second: f64,
        (started, t): (DateTime<Utc>, DateTime<Utc>),
    ) -> Histogram {
        let a = self.app(r);
        let seconds = |rps: f64| (a.latency_ms + a.latency_ms_per_rps * rps) / 1000.0;
        let mut buckets: Vec<(String, f64)> = BUCKETS
            .iter()
            .map(|le| {
                let n = self.integrate_over_load(d, (started, t), true, |rps| {
                    if seconds(rps) <= *le { per_second } else { 0.0 }
                });
                (le.to_string(), n)
            })
            .collect();
        let count = self.integrate_over_load(d, (started, t), true, |_| per_second);
        buckets.push(("+Inf".to_owned(), count));
        Histogram {
            buckets,
            count,
            sum: self.integrate_over_load(d, (started, t), true, |rps| per_second * seconds(rps)),
        }
    }
}
