//! Verdicts families share: whether a workload held over Ralph's observation window.

use squad_protocols::cluster::Sample;
use squad_protocols::{Quantity, Verification};

/// What Ralph observed over the window after the rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub window_minutes: u64,
    /// Restarts of the container during the window.
    pub restarts: u32,
    /// OOM kills since the window started.
    pub oom_kills: u32,
    /// The container's working set over the window.
    pub memory: Vec<Sample>,
    /// The container's memory limit as it runs now.
    pub limit: Option<Quantity>,
    /// The workload's request rate over the window, all routes summed (empty when unknown).
    pub traffic: Vec<Sample>,
    /// Its pods at the end of the window (unknown: not checked).
    pub rollout: Option<RolloutState>,
    /// The share of CFS periods the container was throttled in over the window (0 to 1; empty
    /// when unknown, or when it has no CPU limit).
    pub throttled: Vec<Sample>,
    /// How full each claim the pods mount has been over the window (empty when unknown).
    pub volumes: Vec<squad_protocols::cluster::VolumeUsage>,
    /// The namespace's Services with their endpoints, HPAs with their status, and claims with
    /// their phase, at the end of the window (each empty when it could not be read).
    pub services: Vec<squad_protocols::cluster::ServiceInfo>,
    pub hpas: Vec<squad_protocols::cluster::HpaInfo>,
    pub claims: Vec<squad_protocols::cluster::ClaimInfo>,
    /// Warning events on the workload's pods at the end of the window, last seen in its second
    /// half (after a rollout's start-up has settled; empty when unknown).
    pub warnings: Vec<squad_protocols::cluster::ClusterEvent>,
}

/// The workload's pods at the end of Ralph's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutState {
    /// The replicas the workload asks for.
    pub desired: u32,
    /// Its pods with every container ready.
    pub ready: u32,
    /// Each pod that is not, and why (`web-7f9c-x2: Pending`, `web-7f9c-x2: app waiting: ImagePullBackOff`).
    pub not_ready: Vec<String>,
}

/// Why the rollout is not complete: fewer pods Ready than the workload asks for, or a pod not
/// Ready (an old ReplicaSet's pods count as ready pods; the new ones waiting say the rollout is
/// stuck). `None` when it is complete, or when it was not observed.
pub fn rollout_incomplete(obs: &Observation) -> Option<String> {
    let r = obs.rollout.as_ref()?;
    if r.ready >= r.desired && r.not_ready.is_empty() {
        return None;
    }
    let mut why = format!("{} of {} replicas Ready", r.ready, r.desired);
    if !r.not_ready.is_empty() {
        let shown: Vec<&str> = r.not_ready.iter().take(3).map(String::as_str).collect();
        why.push_str(&format!(" ({})", shown.join("; ")));
    }
    Some(why)
}

/// The default verdict: the rollout complete (every replica Ready, no pod stuck) and the
/// container stable within its memory ([`stable_within_memory`]).
pub fn ready_and_stable(
    obs: &Observation,
    projection_hours: u64,
    mib_per_rps: f64,
) -> Verification {
    let mut v = stable_within_memory(obs, projection_hours, mib_per_rps);
    match (rollout_incomplete(obs), &obs.rollout) {
        (Some(why), _) => {
            v.healthy = false;
            v.detail = format!("rollout not complete: {why}; {}", v.detail);
        }
        (None, Some(r)) => {
            v.detail = format!("{} of {} replicas Ready; {}", r.ready, r.desired, v.detail)
        }
        (None, None) => {}
    }
    v
}

const MIB: f64 = 1024.0 * 1024.0;

/// The family's verdict `v` with the pods' warning events weighed in: a fix under which the
/// pods still draw warnings (`BackOff`, `Unhealthy`, `FailedScheduling`, `FailedMount`, …) once
/// the rollout has settled does not hold, whatever the family's own reading says.
pub fn with_warnings(mut v: Verification, obs: &Observation) -> Verification {
    if obs.warnings.is_empty() {
        return v;
    }
    let mut seen: Vec<(&str, &str, u32, &str)> = Vec::new();
    for e in &obs.warnings {
        let pod = e.object.rsplit('/').next().unwrap_or(&e.object);
        match seen
            .iter_mut()
            .find(|(reason, p, _, _)| *reason == e.reason && *p == pod)
        {
            Some(s) => s.2 += e.count.max(1),
            None => seen.push((&e.reason, pod, e.count.max(1), &e.message)),
        }
    }
    let shown: Vec<String> = seen
        .iter()
        .take(3)
        .map(|(reason, pod, count, message)| {
            let message: String = message.chars().take(120).collect();
            format!("{reason} ×{count} on {pod} ({message})")
        })
        .collect();
    let more = seen.len().saturating_sub(shown.len());
    let words = format!(
        "warning events after the rollout settled: {}{}",
        shown.join("; "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
    v.detail = if v.healthy {
        format!("{words}; {}", v.detail)
    } else {
        format!("{}; {words}", v.detail)
    };
    v.healthy = false;
    v
}

/// Healthy when the container neither restarted nor was OOM-killed during the window, and its
/// memory — the current run's level, growing at the current run's trend — stays under the limit
/// `projection_hours` ahead.
///
/// With the window's traffic and the MiB per request per second the diagnosis measured over a
/// day (a window of an hour cannot tell a leak from traffic that rises with it), memory that
/// follows traffic is not projected: only the growth beyond it is.
pub fn stable_within_memory(
    obs: &Observation,
    projection_hours: u64,
    mib_per_rps: f64,
) -> Verification {
    let series = &obs.memory;
    let peak = series.iter().map(|s| s.value).fold(0.0, f64::max);
    // The trend of the current containers: samples since the last restart (a drop of more than a
    // tenth) or replacement (a jump of more than a tenth: the rollout's new pods, no longer held
    // at the old limit, take over the series' maximum).
    let since_restart = series
        .windows(2)
        .rposition(|w| w[1].value < 0.9 * w[0].value || w[1].value > 1.1 * w[0].value)
        .map_or(0, |i| i + 1);
    let run = &series[since_restart..];
    // Memory that follows traffic comes back down with it: with a request rate to relate it to,
    // only the growth traffic does not explain is projected.
    let adjusted = mib_per_rps > 0.0 && !obs.traffic.is_empty() && run.len() >= 3;
    let growth = match (run.first(), run.last()) {
        _ if adjusted => crate::readings::growth_beyond(run, &obs.traffic, mib_per_rps),
        (Some(first), Some(last)) if run.len() >= 2 => {
            let hours = (last.at - first.at).num_seconds() as f64 / 3600.0;
            if hours > 0.0 {
                (last.value - first.value) / MIB / hours
            } else {
                0.0
            }
        }
        _ => 0.0,
    };
    let current = run.last().map_or(0.0, |s| s.value);
    let projected = current / MIB + growth.max(0.0) * projection_hours as f64;
    let limit_mib = obs.limit.map_or(f64::INFINITY, |l| l.as_mib_f64());
    let holds = projected < limit_mib;
    let healthy = obs.oom_kills == 0 && obs.restarts == 0 && holds;
    let detail = format!(
        "{} restart(s), {} OOM kill(s) in {} min; peak {:.0} MiB of limit {} ({:.0}%); trend {growth:+.1} MiB/h{} → {:.0} MiB in {} h{}",
        obs.restarts,
        obs.oom_kills,
        obs.window_minutes,
        peak / MIB,
        obs.limit.map_or("none".into(), |l| l.to_string()),
        if limit_mib.is_finite() {
            peak / MIB / limit_mib * 100.0
        } else {
            0.0
        },
        if adjusted { " beyond traffic" } else { "" },
        projected,
        projection_hours,
        if holds {
            ""
        } else {
            " — exceeds the limit: the fix will not hold"
        }
    );
    Verification {
        healthy,
        window_minutes: obs.window_minutes,
        oom_kills: obs.oom_kills,
        restarts: obs.restarts,
        peak: Some(Quantity::from_bytes(peak as u64)),
        limit: obs.limit,
        detail,
        prediction: None,
        prediction_right: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{TimeZone, Utc};

    fn obs(mib: impl Fn(i64) -> f64, restarts: u32, limit: &str) -> Observation {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Observation {
            window_minutes: 60,
            restarts,
            oom_kills: 0,
            memory: (0..=60)
                .map(|i| Sample {
                    at: t0 + chrono::Duration::minutes(i),
                    value: mib(i) * MIB,
                })
                .collect(),
            limit: Some(limit.parse().unwrap()),
            traffic: Vec::new(),
            rollout: None,
            throttled: Vec::new(),
            volumes: Vec::new(),
            services: Vec::new(),
            hpas: Vec::new(),
            claims: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_rollout_with_a_pod_not_ready_does_not_hold() {
        let mut o = obs(|_| 100.0, 0, "1Gi");
        o.rollout = Some(RolloutState {
            desired: 3,
            ready: 3,
            not_ready: Vec::new(),
        });
        let v = ready_and_stable(&o, 24, 0.0);
        assert!(
            v.healthy && v.detail.starts_with("3 of 3 replicas Ready; 0 restart(s)"),
            "{}",
            v.detail
        );
        o.rollout = Some(RolloutState {
            desired: 3,
            ready: 2,
            not_ready: vec!["web-7f9c-x2: app waiting: ImagePullBackOff".into()],
        });
        let v = ready_and_stable(&o, 24, 0.0);
        assert!(!v.healthy);
        assert!(
            v.detail.starts_with("rollout not complete: 2 of 3 replicas Ready (web-7f9c-x2: app waiting: ImagePullBackOff); 0 restart(s)"),
            "{}",
            v.detail
        );
    }

    #[test]
    fn memory_that_rises_with_traffic_is_not_projected_as_growth() {
        // Traffic climbs 300 → 420 req/s over the hour and memory follows at 2 MiB per req/s
        // (+240 MiB): projected naively that is 1000 + 24 × 240 MiB; beyond traffic it is flat.
        let mut o = obs(|m| 400.0 + 2.0 * (300.0 + 2.0 * m as f64), 0, "1.5Gi");
        let naive = stable_within_memory(&o, 24, 2.0);
        assert!(!naive.healthy, "{}", naive.detail);
        o.traffic = o
            .memory
            .iter()
            .enumerate()
            .map(|(i, s)| Sample {
                at: s.at,
                value: 300.0 + 2.0 * i as f64,
            })
            .collect();
        let v = stable_within_memory(&o, 24, 2.0);
        assert!(v.healthy, "{}", v.detail);
        assert!(
            v.detail.contains("trend +0.0 MiB/h beyond traffic"),
            "{}",
            v.detail
        );
        // A leak under flat traffic is still projected.
        let mut leak = obs(|m| 1000.0 + 40.0 * m as f64 / 60.0, 0, "1.5Gi");
        leak.traffic = o
            .traffic
            .iter()
            .map(|s| Sample {
                at: s.at,
                value: 300.0,
            })
            .collect();
        let v = stable_within_memory(&leak, 24, 2.0);
        assert!(
            !v.healthy && v.detail.contains("+40.0 MiB/h beyond traffic"),
            "{}",
            v.detail
        );
    }

    #[test]
    fn flat_memory_under_the_limit_holds() {
        let v = stable_within_memory(&obs(|_| 1270.0, 0, "1.5Gi"), 24, 0.0);
        assert!(v.healthy, "{}", v.detail);
        assert!(
            v.detail.contains("peak 1270 MiB of limit 1.5Gi (83%)"),
            "{}",
            v.detail
        );
    }

    #[test]
    fn growth_that_crosses_the_limit_within_the_projection_does_not_hold() {
        // 40 MiB/h from 600 MiB: 1560 MiB in 24 h, over a 1.5Gi limit.
        let v = stable_within_memory(
            &obs(|m| 600.0 + 40.0 * m as f64 / 60.0, 0, "1.5Gi"),
            24,
            0.0,
        );
        assert!(!v.healthy);
        assert!(
            v.detail
                .ends_with("exceeds the limit: the fix will not hold"),
            "{}",
            v.detail
        );
        // The same growth against a larger limit holds.
        assert!(
            stable_within_memory(&obs(|m| 600.0 + 40.0 * m as f64 / 60.0, 0, "2Gi"), 24, 0.0)
                .healthy
        );
    }

    #[test]
    fn a_restart_in_the_window_is_not_healthy_and_the_trend_restarts_with_it() {
        let v = stable_within_memory(
            &obs(|m| if m < 30 { 900.0 + m as f64 } else { 300.0 }, 1, "1Gi"),
            24,
            0.0,
        );
        assert!(!v.healthy);
        // Since the restart memory is flat at 300 MiB.
        assert!(
            v.detail.contains("trend +0.0 MiB/h → 300 MiB"),
            "{}",
            v.detail
        );
    }

    fn warning(pod: &str, reason: &str, count: u32) -> squad_protocols::cluster::ClusterEvent {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 50, 0).unwrap();
        let mut e = squad_protocols::cluster::ClusterEvent::once(
            format!("Pod/{pod}"),
            "Warning",
            reason,
            "Back-off restarting failed container app in pod".into(),
            at,
        );
        e.count = count;
        e
    }

    #[test]
    fn warnings_after_the_rollout_settled_overrule_a_healthy_verdict() {
        let mut o = obs(|_| 100.0, 0, "1Gi");
        let healthy = ready_and_stable(&o, 24, 0.0);
        assert!(healthy.healthy);
        assert_eq!(with_warnings(healthy.clone(), &o), healthy);
        o.warnings = vec![
            warning("web-1", "BackOff", 4),
            warning("web-1", "BackOff", 2),
            warning("web-2", "Unhealthy", 1),
        ];
        let v = with_warnings(healthy, &o);
        assert!(!v.healthy);
        assert!(
            v.detail.starts_with(
                "warning events after the rollout settled: BackOff ×6 on web-1 (Back-off restarting"
            ) && v.detail.contains("; Unhealthy ×1 on web-2 (")
                && v.detail.contains("0 restart(s)"),
            "{}",
            v.detail
        );
    }

    #[test]
    fn warnings_are_added_to_a_verdict_that_already_failed() {
        let mut o = obs(|_| 100.0, 3, "1Gi");
        o.warnings = (0..5)
            .map(|i| warning(&format!("web-{i}"), "BackOff", 1))
            .collect();
        let v = with_warnings(ready_and_stable(&o, 24, 0.0), &o);
        assert!(!v.healthy);
        assert!(
            v.detail.starts_with("3 restart(s)") && v.detail.ends_with(" and 2 more"),
            "{}",
            v.detail
        );
    }
}
