//! CPU throttling: the kernel's CFS quota (the container's CPU limit) stops the container for
//! the rest of a 100 ms period once it has used its share, so a request-driven service is
//! throttled in a growing share of periods as its demand nears the limit — long before its
//! average use reaches it. cAdvisor counts both (`container_cpu_cfs_throttled_periods_total`,
//! `container_cpu_cfs_periods_total`); kubernetes-mixin's `CPUThrottlingHigh` fires when more
//! than 25% of periods are throttled for 15 minutes. Nothing restarts and nothing is logged:
//! requests get slower. The fix (a CPU limit from the observed use with headroom, or none where
//! the team's policy says so) comes with the remediations; until then the crew escalates.

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::Sample;
use squad_protocols::{Diagnosis, Evidence, Member, Quantity, RootCause, WorkloadRef};

use crate::readings::{container_in, last_rollout_change};
use crate::{
    Detection, Facts, Family, FollowupContext, IssueDraft, Readings, Remedy, RemedyInput,
    RepoNeeds, Runbook,
};

pub struct CpuThrottling;

pub const ROOT_CAUSE: &str = "cpu_throttling";

/// CPUThrottlingHigh's threshold: the share of throttled CFS periods.
pub const THRESHOLD: f64 = 0.25;
/// The recent window the share is measured over (the alert's 15 min `for` and its 5 min range,
/// and some more).
const RECENT_MINUTES: i64 = 30;

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuThrottlingSignals {
    /// Share of CFS periods throttled over the recent window, and a day before (0 to 1).
    pub throttled: f64,
    pub throttled_day_before: Option<f64>,
    /// CPU used, in cores: the recent mean and the 24 h peak.
    pub usage_cores: f64,
    pub peak_cores: f64,
    pub limit: Quantity,
    pub request: Option<Quantity>,
}

fn finite(samples: &[Sample]) -> impl Iterator<Item = &Sample> {
    samples.iter().filter(|s| s.value.is_finite())
}

/// The mean of the samples since `from`.
fn mean_since(samples: &[Sample], from: chrono::DateTime<chrono::Utc>) -> Option<f64> {
    let recent: Vec<f64> = finite(samples)
        .filter(|s| s.at >= from)
        .map(|s| s.value)
        .collect();
    (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64)
}

fn cores(q: &Quantity) -> f64 {
    q.milli() as f64 / 1000.0
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

impl Family for CpuThrottling {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("CPUThrottling")
    }

    fn detect(&self, facts: &Facts, readings: &Readings) -> Option<Detection> {
        // A container that is down is paged for that, not for its throttling.
        if facts
            .status()
            .is_some_and(|s| s.state.starts_with("waiting"))
        {
            return None;
        }
        let spec = facts.info.container(&facts.container)?;
        let limit = *spec.limits.get("cpu")?;
        let recent = facts.now - chrono::Duration::minutes(RECENT_MINUTES);
        let throttled = mean_since(&facts.cpu.throttled, recent)?;
        if throttled <= THRESHOLD {
            return None;
        }
        let day_before = facts.now - chrono::Duration::hours(24);
        let throttled_day_before = finite(&facts.cpu.throttled)
            .find(|s| s.at <= day_before + chrono::Duration::minutes(RECENT_MINUTES))
            .map(|s| s.value);
        let usage_cores = mean_since(&facts.cpu.usage, recent).unwrap_or(0.0);
        let peak_cores = finite(&facts.cpu.usage)
            .map(|s| s.value)
            .fold(0.0, f64::max);
        let request = spec.requests.get("cpu").copied();
        let signals = CpuThrottlingSignals {
            throttled,
            throttled_day_before,
            usage_cores,
            peak_cores,
            limit,
            request,
        };

        let mut d = Detection::new(String::new(), 0.85, &[]);
        d.evidence.push(Evidence {
            source: "cAdvisor (container_cpu_cfs_throttled_periods_total / container_cpu_cfs_periods_total)".into(),
            observation: format!(
                "throttled in {} of its CFS periods over the last {RECENT_MINUTES} min (CPUThrottlingHigh fires above {}){}",
                pct(throttled),
                pct(THRESHOLD),
                throttled_day_before.map_or(String::new(), |b| format!("; {} a day before", pct(b)))
            ),
        });
        d.evidence.push(Evidence {
            source: "cAdvisor (container_cpu_usage_seconds_total)".into(),
            observation: format!(
                "uses {:.3} cores on average ({} of its {limit} limit{}), {:.3} at the 24 h peak: the limit's quota runs out inside the busiest 100 ms periods",
                usage_cores,
                pct(usage_cores / cores(&limit).max(f64::MIN_POSITIVE)),
                request.as_ref().map_or(String::new(), |r| format!(", request {r}")),
                peak_cores
            ),
        });
        // What changed: a deploy that lowered the limit, else the load.
        let lowered = last_rollout_change(facts, |r| {
            container_in(r, facts).and_then(|c| c.limits.get("cpu").cloned())
        })
        .filter(|c| c.after.milli() < c.before.milli());
        let cause = if let Some(c) = &lowered {
            d.confidence = 0.9;
            d.evidence.push(Evidence {
                source: "rollout history".into(),
                observation: format!(
                    "revision {} ({}) lowered the CPU limit from {} to {}",
                    c.revision, c.ago, c.before, c.after
                ),
            });
            format!(
                " since revision {} ({}) lowered its CPU limit from {} to {}",
                c.revision, c.ago, c.before, c.after
            )
        } else if let Some(t) = readings
            .signals
            .traffic
            .as_ref()
            .filter(|t| t.change_pct >= 25.0)
        {
            d.confidence = 0.9;
            format!(
                " under {:+.0}% traffic on {} (the last {} h against the baseline before)",
                t.change_pct, t.route, t.window_hours
            )
        } else {
            String::new()
        };
        d.summary = format!(
            "{} is CPU-throttled in {} of its CFS periods (limit {limit}, using {:.3} cores on average){cause}: requests wait for the next period",
            facts.container,
            pct(throttled),
            usage_cores
        );
        d.recommendations.push(format!(
            "set the CPU limit from the observed use with headroom (peak {:.3} cores over 24 h; throttling stays low only well above the mean), or remove it where the team's policy allows, keeping the request at the typical use",
            peak_cores
        ));
        if lowered.is_some() {
            d.recommendations
                .push("or restore the CPU limit the last rollout lowered".into());
        }
        d.signals = serde_json::to_value(&signals).ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the CPU limit against the container's observed use",
            ),
            (
                Member::Worf,
                "whether the load behind the CPU use is legitimate",
            ),
            (Member::Data, "what burns CPU per request on the hot path"),
        ]
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds::NONE
    }

    fn remedy(&self, d: &Diagnosis, _input: &RemedyInput<'_>) -> Remedy {
        Remedy::not_yet(
            "CPU throttling",
            d,
            "a human sizes the CPU limit from the observed use",
        )
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "cpu-throttling".into(),
            meaning: "The container's CPU limit is a CFS quota per 100 ms period: once the container has used it, it is stopped until the next period. Request-driven services do their work in bursts, so they are throttled in many periods while their average use is still below the limit; requests wait, latency rises, and health checks may time out. Nothing restarts and nothing is logged.".into(),
            checks: "1. The throttled share: `sum(increase(container_cpu_cfs_throttled_periods_total{namespace=\"<ns>\", pod=\"<pod>\"}[5m])) / sum(increase(container_cpu_cfs_periods_total{…}[5m]))`.\n2. Use against the limit: `rate(container_cpu_usage_seconds_total{…}[5m])` and `kubectl get pod <pod> -n <ns> -o jsonpath='{.spec.containers[*].resources}'`.\n3. What changed: the request rate against its baseline, and the last rollout's resources (`kubectl rollout history deployment/<name> -n <ns>`).".into(),
            fixes: "- **Limit below the bursts**: raise the CPU limit well above the observed peak (throttling falls off only far above the mean), through a PR.\n- **Policy allows no CPU limits**: remove it and keep the request at the typical use (the node's spare CPU absorbs bursts).\n- **Load grew**: more replicas (or an HPA on CPU against the request) before a bigger limit.\n- **A deploy lowered the limit**: restore it.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Size {workload}'s CPU limit from its peak use with room for bursts, or leave CPU unlimited where policy allows; the mean hides the throttling."
            ),
            "Alert on the throttled share of CFS periods, not only on CPU use against the limit."
                .into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Find what burns CPU per request on {} ({})",
                cx.route, cx.container
            ),
            body: format!(
                "During incident {} (#{}) {} was throttled by its CPU limit under load.\n\n\
                 1. Profile CPU under the incident's load on one pod ({}).\n\
                 2. Look for per-request work that can be cached, batched or moved off the request path.\n\
                 3. Reproduce: the throttled share of `container_cpu_cfs_throttled_periods_total` for pod {} in {}.",
                cx.incident, cx.issue, cx.container, cx.language, cx.pod, cx.workload.namespace
            ),
            label: "performance".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::testing;

    /// A running container with a 500m limit, throttled in `recent` of its periods in the last
    /// hour and 10% before, using 0.45 cores.
    fn throttled(recent: f64) -> Facts {
        let mut f = testing::facts("", 0, |_| 200.0, |i| if i > 270 { 40.0 } else { 20.0 });
        f.pod.as_mut().unwrap().containers[0].last_termination = None;
        let status = &mut f.pod.as_mut().unwrap().containers[0];
        (status.state, status.ready, status.restart_count) = ("running".into(), true, 0);
        f.info.containers[0]
            .limits
            .insert("cpu".into(), "500m".parse().unwrap());
        f.info.containers[0]
            .requests
            .insert("cpu".into(), "250m".parse().unwrap());
        let at = |i: i64| testing::now() - chrono::Duration::minutes(5 * (288 - i));
        f.cpu.throttled = (0..=288)
            .map(|i| Sample {
                at: at(i),
                value: if i > 276 { recent } else { 0.1 },
            })
            .collect();
        f.cpu.usage = (0..=288)
            .map(|i| Sample {
                at: at(i),
                value: if i > 276 { 0.45 } else { 0.3 },
            })
            .collect();
        f
    }

    #[test]
    fn a_container_throttled_past_the_threshold_is_cpu_throttling() {
        let f = throttled(0.4);
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert!(
            d.summary
                .starts_with("api is CPU-throttled in 40% of its CFS periods (limit 500m, using 0.450 cores on average) under +100% traffic on /cart"),
            "{}",
            d.summary
        );
        let s: CpuThrottlingSignals = crate::family_signals(&d).unwrap();
        assert_eq!(s.throttled_day_before, Some(0.1));
        assert_eq!(s.peak_cores, 0.45);
    }

    #[test]
    fn throttling_under_the_threshold_or_without_a_limit_is_not_cpu_throttling() {
        let f = throttled(0.2);
        assert!(CpuThrottling.detect(&f, &Readings::of(&f)).is_none());
        let mut f = throttled(0.6);
        f.info.containers[0].limits.remove("cpu");
        assert!(CpuThrottling.detect(&f, &Readings::of(&f)).is_none());
        let mut f = throttled(0.6);
        f.cpu.throttled.clear();
        assert!(CpuThrottling.detect(&f, &Readings::of(&f)).is_none());
    }

    #[test]
    fn a_crash_looping_container_is_paged_for_the_crash() {
        let mut f = testing::crashing(&["KeyError: 'X'"]);
        f.info.containers[0]
            .limits
            .insert("cpu".into(), "500m".parse().unwrap());
        f.cpu = throttled(0.6).cpu;
        f.pod.as_mut().unwrap().containers[0].state = "waiting: CrashLoopBackOff".into();
        assert!(CpuThrottling.detect(&f, &Readings::of(&f)).is_none());
    }

    #[test]
    fn a_deploy_that_lowered_the_limit_is_named() {
        let mut f = throttled(0.5);
        for (r, limit) in f.history.iter_mut().zip(["2", "500m"]) {
            r.containers[0]
                .limits
                .insert("cpu".into(), limit.parse().unwrap());
        }
        let d = testing::diagnosis(&f);
        assert!(
            d.summary
                .contains("since revision 2 (30 h ago) lowered its CPU limit from 2 to 500m"),
            "{}",
            d.summary
        );
    }
}
