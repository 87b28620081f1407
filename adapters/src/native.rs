//! The native analyzers: squad's own diagnoser, reading the cluster through the `Cluster` port.
//!
//! k8sgpt-style checks, each adding evidence: the failing container's status and last
//! termination; its memory limit against the 24 h working-set peak; whether memory grows with
//! time independently of traffic (a leak) or follows traffic; the change in request rate; the last
//! rollout and what it changed; and, for crashes, what the logs say is missing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use regex::Regex;
use squad_protocols::cluster::{Revision, Sample};
use squad_protocols::diagnosis::{
    CrashSignals, DeploySignals, MemorySignals, Signals, TrafficSignals,
};
use squad_protocols::{Diagnosis, DiagnosisSource, Evidence, Quantity, RootCause, WorkloadRef};
use squad_runtime::Clock;
use squad_runtime::ports::{Cluster, Diagnoser, DiagnosisRequest, PortError, PortResult};

const HOUR: u64 = 3600;
/// A leak is suspected when memory unexplained by traffic grows faster than this.
const LEAK_MIB_PER_HOUR: f64 = 5.0;

pub struct NativeDiagnoser {
    cluster: Arc<dyn Cluster>,
    clock: Clock,
}

impl NativeDiagnoser {
    pub fn new(cluster: Arc<dyn Cluster>, clock: Clock) -> Self {
        Self { cluster, clock }
    }
}

fn mib(bytes: f64) -> f64 {
    bytes / 1024.0 / 1024.0
}

fn quantity(bytes: f64) -> Quantity {
    Quantity::from_bytes(bytes.max(0.0).ceil() as u64)
}

/// Least-squares slope of y over x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 3 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > f64::EPSILON).then(|| sxy / sxx)
}

/// Memory growth not explained by traffic, in MiB/h: memory is regressed on request rate, and the
/// residual's slope over time is measured within each run of the container (a drop of more than a
/// tenth marks a restart), so restarts do not hide a leak's saw-tooth.
pub fn unexplained_growth(memory: &[Sample], rps: &[Sample]) -> f64 {
    // Two range queries asked a moment apart do not share timestamps: pair each memory sample
    // with the traffic sample nearest in time, within half the sampling step.
    let step = memory
        .windows(2)
        .map(|w| (w[1].at - w[0].at).num_seconds().abs())
        .filter(|s| *s > 0)
        .min()
        .unwrap_or(60);
    let near = |m: &Sample| {
        rps.iter()
            .map(|r| ((r.at - m.at).num_seconds().abs(), r))
            .filter(|(d, _)| *d * 2 <= step)
            .min_by_key(|(d, _)| *d)
            .map(|(_, r)| r.value)
    };
    let pairs: Vec<(f64, f64)> = memory
        .iter()
        .filter_map(|m| near(m).map(|r| (r, mib(m.value))))
        .collect();
    let b = slope(&pairs).unwrap_or(0.0);
    let residual: Vec<(f64, f64)> = memory
        .iter()
        .map(|m| {
            let r = near(m).unwrap_or(0.0);
            (m.at.timestamp() as f64 / 3600.0, mib(m.value) - b * r)
        })
        .collect();
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (i, p) in residual.iter().enumerate() {
        if i > 0 && mib(memory[i].value) < 0.9 * mib(memory[i - 1].value) {
            runs.push(Vec::new());
        }
        if let Some(run) = runs.last_mut() {
            run.push(*p);
        }
    }
    let (mut sum, mut weight) = (0.0, 0.0);
    for run in &runs {
        if let Some(s) = slope(run) {
            sum += s * run.len() as f64;
            weight += run.len() as f64;
        }
    }
    if weight > 0.0 { sum / weight } else { 0.0 }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        0.0
    } else {
        values[values.len() / 2]
    }
}

fn missing_env_in(lines: &[String]) -> Option<String> {
    let patterns = [
        r"KeyError: '([A-Z][A-Z0-9_]+)'",
        r"\bvar=([A-Z][A-Z0-9_]+)",
        r#"(?i:missing|required) (?i:environment variable):? "?([A-Z][A-Z0-9_]+)"#,
        r#"(?i:environment variable) "?([A-Z][A-Z0-9_]+)"? (?:is )?(?:not set|missing|required|unset)"#,
        r"\b([A-Z][A-Z0-9_]{2,}) (?:is not set|must be set|not set)",
    ];
    for p in patterns {
        let Ok(re) = Regex::new(p) else { continue };
        for l in lines {
            if let Some(c) = re.captures(l).and_then(|c| c.get(1)) {
                return Some(c.as_str().to_owned());
            }
        }
    }
    None
}

fn deploy_signals(
    history: &[Revision],
    container: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<DeploySignals> {
    let last = history.last()?;
    let prev = history.len().checked_sub(2).and_then(|i| history.get(i));
    let c_last = last.containers.iter().find(|c| c.name == container);
    let c_prev = prev.and_then(|p| p.containers.iter().find(|c| c.name == container));
    let (resources_changed, env_changed) = match (c_last, c_prev) {
        (Some(a), Some(b)) => (
            a.limits != b.limits || a.requests != b.requests,
            a.env != b.env,
        ),
        _ => (false, false),
    };
    Some(DeploySignals {
        revision: last.revision,
        at: last.at,
        // A clock behind the server (a revision stamped "in the future") reads as just now.
        age_hours: (now - last.at).num_hours().max(0),
        resources_changed,
        env_changed,
        change_cause: last.change_cause.clone(),
    })
}

#[async_trait]
impl Diagnoser for NativeDiagnoser {
    fn name(&self) -> &'static str {
        "native"
    }

    async fn diagnose(&self, req: &DiagnosisRequest) -> PortResult<Diagnosis> {
        let c = &self.cluster;
        let now = self.clock.now();
        let ns = req.workload.namespace.as_str();
        let mut evidence = Vec::new();
        let mut notes = Vec::new();
        let workload: WorkloadRef = req.workload.clone();
        let info = c.workload(&workload).await?;
        let container_name = req
            .alert
            .label("container")
            .map(str::to_owned)
            .or_else(|| info.containers.first().map(|c| c.name.clone()))
            .ok_or_else(|| {
                PortError::failed(
                    format!("diagnose {workload}"),
                    "the workload has no containers",
                )
            })?;
        let spec = info.container(&container_name).cloned();

        // Pod and container status.
        let pod = match req.alert.label("pod") {
            Some(p) => c.pod(ns, p).await.ok(),
            None => None,
        };
        let pod = match pod {
            Some(p) => Some(p),
            None => c
                .pods_of(&workload)
                .await?
                .into_iter()
                .max_by_key(|p| p.container(&container_name).map_or(0, |s| s.restart_count)),
        };
        let status = pod
            .as_ref()
            .and_then(|p| p.container(&container_name).cloned());
        if let (Some(p), Some(s)) = (&pod, &status) {
            let last = s
                .last_termination
                .as_ref()
                .map(|t| {
                    format!(
                        "last terminated {} (exit code {}) at {}",
                        t.reason,
                        t.exit_code,
                        t.finished_at.to_rfc3339()
                    )
                })
                .unwrap_or_else(|| "no previous termination".into());
            evidence.push(Evidence {
                source: "pod status".into(),
                observation: format!(
                    "pod {} container {}: {}, {} restarts, {last}",
                    p.name, s.name, s.state, s.restart_count
                ),
            });
        }
        // The node: memory pressure there changes the story (evictions, not only limits).
        if let Some(p) = pod.as_ref().filter(|p| !p.node.is_empty()) {
            match c.node(&p.node).await {
                Ok(n) => {
                    for cond in n.pressures() {
                        evidence.push(Evidence {
                            source: "node".into(),
                            observation: format!(
                                "node {} reports {} ({}): {}",
                                n.name, cond.kind, cond.reason, cond.message
                            ),
                        });
                    }
                    if !n.ready() {
                        evidence.push(Evidence {
                            source: "node".into(),
                            observation: format!("node {} is not Ready", n.name),
                        });
                    }
                }
                Err(e) => notes.push(format!("node {} not readable: {e}", p.node)),
            }
        }
        let termination = status.as_ref().and_then(|s| s.last_termination.clone());
        let oom = termination
            .as_ref()
            .is_some_and(|t| t.reason == "OOMKilled")
            || req.alert.label("reason") == Some("OOMKilled");

        // Memory over 24 h.
        let step = Duration::from_secs(300);
        let memory = match c
            .memory_working_set(
                &workload,
                &container_name,
                Duration::from_secs(24 * HOUR),
                step,
            )
            .await
        {
            Ok(m) => m,
            Err(e) => {
                notes.push(format!("memory history unavailable: {e}"));
                Vec::new()
            }
        };
        // Traffic: the route whose rate changed most in the last 2 h against the 22 h before.
        let rates = match c
            .request_rates(&workload, Duration::from_secs(24 * HOUR), step)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                notes.push(format!("request rates unavailable: {e}"));
                Vec::new()
            }
        };
        let recent_from = now - chrono::Duration::hours(2);
        let traffic_of = |series: &[Sample]| {
            let avg = |v: &[&Sample]| {
                if v.is_empty() {
                    0.0
                } else {
                    v.iter().map(|s| s.value).sum::<f64>() / v.len() as f64
                }
            };
            let (recent, before): (Vec<&Sample>, Vec<&Sample>) =
                series.iter().partition(|s| s.at > recent_from);
            let now_rps = recent.iter().map(|s| s.value).fold(avg(&recent), f64::max);
            let base = avg(&before);
            let change = if base > 0.0 {
                (now_rps - base) / base * 100.0
            } else {
                0.0
            };
            (now_rps, base, change)
        };
        let busiest = rates
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(route, s)| (route, traffic_of(s)))
            .max_by(|a, b| a.1.2.total_cmp(&b.1.2));
        let traffic = busiest.map(|(route, (now_rps, base, change))| {
            evidence.push(Evidence {
                source: "traffic".into(),
                observation: format!("{route}: {now_rps:.0} rps now vs {base:.0} rps baseline over the previous 22 h ({change:+.0}%)"),
            });
            TrafficSignals { route: route.clone(), change_pct: change.round(), window_hours: 2 }
        });
        // The workload's total rate, for separating load-driven memory from growth.
        let mut rps: Vec<Sample> = Vec::new();
        for (_, series) in &rates {
            for s in series {
                // Routes come from one query, so their samples share timestamps; allow a second.
                match rps
                    .iter_mut()
                    .find(|x| (x.at - s.at).num_milliseconds().abs() < 1000)
                {
                    Some(x) => x.value += s.value,
                    None => rps.push(*s),
                }
            }
        }
        let memory_signals = if memory.is_empty() {
            None
        } else {
            let peak = memory.iter().map(|s| s.value).fold(0.0, f64::max);
            let med = median(&mut memory.iter().map(|s| s.value).collect::<Vec<_>>());
            let growth = unexplained_growth(&memory, &rps);
            let leak = growth > LEAK_MIB_PER_HOUR;
            let limit = spec.as_ref().and_then(|s| s.limits.get("memory").copied());
            let request = spec
                .as_ref()
                .and_then(|s| s.requests.get("memory").copied());
            evidence.push(Evidence {
                source: "memory (24 h working set)".into(),
                observation: format!(
                    "peak {} ({:.0} MiB), median {} against limit {} / request {}; {}",
                    quantity(peak).round_up_to(Quantity::mebibytes(1)),
                    mib(peak),
                    quantity(med).round_up_to(Quantity::mebibytes(1)),
                    limit.map_or("none".into(), |q| q.to_string()),
                    request.map_or("none".into(), |q| q.to_string()),
                    if leak {
                        format!("memory grows {growth:.1} MiB/h independently of traffic: leak pattern")
                    } else {
                        format!("memory follows traffic (unexplained growth {growth:.1} MiB/h): no leak pattern")
                    }
                ),
            });
            Some(MemorySignals {
                container: container_name.clone(),
                limit,
                request,
                peak_24h: quantity(peak),
                median_24h: quantity(med),
                trend_mib_per_hour: (growth * 10.0).round() / 10.0,
                leak_suspected: leak,
            })
        };

        // Last rollout.
        let history = c.rollout_history(&workload).await.unwrap_or_else(|e| {
            notes.push(format!("rollout history unavailable: {e}"));
            Vec::new()
        });
        let deploy = deploy_signals(&history, &container_name, now);
        if let Some(d) = &deploy {
            evidence.push(Evidence {
                source: "rollout history".into(),
                observation: format!(
                    "last rollout revision {} {} h ago ({}): resources {}, environment {}",
                    d.revision,
                    d.age_hours,
                    d.change_cause,
                    if d.resources_changed {
                        "changed"
                    } else {
                        "unchanged"
                    },
                    if d.env_changed {
                        "changed"
                    } else {
                        "unchanged"
                    }
                ),
            });
        }

        // Crash: what the logs say.
        let mut crash = None;
        if let (Some(p), Some(t)) = (&pod, &termination)
            && t.reason != "OOMKilled"
        {
            {
                // The previous run's logs say why it died; without them (not found, or not
                // permitted), the current ones, and a note on what could not be read.
                let mut lines = match c.logs(ns, &p.name, &container_name, true, 50).await {
                    Ok(l) => l,
                    Err(PortError::NotFound { .. }) => Vec::new(),
                    Err(e) => {
                        notes.push(format!("container logs not readable: {e}"));
                        Vec::new()
                    }
                };
                if lines.is_empty() {
                    lines = match c.logs(ns, &p.name, &container_name, false, 50).await {
                        Ok(l) => l,
                        Err(e) => {
                            if !notes.iter().any(|n| n.starts_with("container logs")) {
                                notes.push(format!("container logs not readable: {e}"));
                            }
                            Vec::new()
                        }
                    };
                }
                let missing = missing_env_in(&lines);
                if let Some(var) = &missing {
                    evidence.push(Evidence {
                        source: "container logs".into(),
                        observation: format!(
                            "the container exits at start-up: environment variable {var} is missing"
                        ),
                    });
                }
                crash = Some(CrashSignals {
                    container: container_name.clone(),
                    reason: t.reason.clone(),
                    exit_code: t.exit_code,
                    restarts: status.as_ref().map_or(0, |s| s.restart_count),
                    missing_env: missing,
                    log_excerpt: lines.iter().rev().take(5).rev().cloned().collect(),
                });
            }
        }

        let (root_cause, summary, confidence, recommendations) = match (&memory_signals, &crash) {
            (Some(m), _) if oom && m.leak_suspected => (
                RootCause::MemoryLeak,
                format!(
                    "{} is OOMKilled: memory grows {:.1} MiB/h regardless of traffic (peak {} vs limit {}) — a leak; more memory only buys time",
                    container_name,
                    m.trend_mib_per_hour,
                    m.peak_24h.round_up_to(Quantity::mebibytes(1)),
                    m.limit.map_or("none".into(), |q| q.to_string())
                ),
                0.8,
                vec![
                    "raise the memory limit as a stop-gap so the service stays up".to_owned(),
                    "find and fix the unbounded allocation (heap profile under load)".to_owned(),
                ],
            ),
            (Some(m), _) if oom => {
                let traffic_note = traffic
                    .as_ref()
                    .filter(|t| t.change_pct > 50.0)
                    .map_or(String::new(), |t| {
                        format!(" after {:+.0}% traffic on {}", t.change_pct, t.route)
                    });
                let deploy_note =
                    deploy
                        .as_ref()
                        .filter(|d| !d.resources_changed)
                        .map_or(String::new(), |d| {
                            format!(
                                "; last deploy {} h ago did not change resources",
                                d.age_hours
                            )
                        });
                (
                    RootCause::MemoryUnderProvisioned,
                    format!(
                        "{} is OOMKilled: working set peaked at {} against a {} limit{traffic_note}; memory follows load, no leak pattern{deploy_note}",
                        container_name,
                        m.peak_24h.round_up_to(Quantity::mebibytes(1)),
                        m.limit.map_or("none".into(), |q| q.to_string()),
                    ),
                    if traffic.is_some() { 0.9 } else { 0.75 },
                    vec![
                        "raise the memory limit to the observed peak plus headroom, and the request to typical usage".to_owned(),
                        "add an HPA so load spreads over more replicas".to_owned(),
                        "alert on memory at 80% of the limit".to_owned(),
                    ],
                )
            }
            (_, Some(cr)) if cr.missing_env.is_some() => (
                RootCause::MissingConfiguration,
                format!(
                    "{} crash-loops (exit {}, {} restarts): environment variable {} is missing{}",
                    container_name,
                    cr.exit_code,
                    cr.restarts,
                    cr.missing_env.as_deref().unwrap_or(""),
                    deploy
                        .as_ref()
                        .filter(|d| d.env_changed)
                        .map_or(String::new(), |d| format!(
                            "; the last rollout ({} h ago) changed the environment",
                            d.age_hours
                        ))
                ),
                0.9,
                vec![
                    "restore the missing variable in the manifest from the previous revision"
                        .to_owned(),
                ],
            ),
            (_, Some(cr)) => (
                RootCause::CrashLoop,
                format!(
                    "{} crash-loops (reason {}, exit {}); {}",
                    container_name,
                    cr.reason,
                    cr.exit_code,
                    if notes
                        .iter()
                        .any(|n| n.starts_with("container logs not readable"))
                    {
                        "its logs could not be read (see the note), so the cause is open"
                    } else {
                        "the logs do not name a cause"
                    }
                ),
                0.4,
                vec![
                    "inspect the previous container's logs and the last rollout's changes"
                        .to_owned(),
                ],
            ),
            _ => (
                RootCause::Unknown,
                format!("no failing signal found for {container_name}"),
                0.2,
                Vec::new(),
            ),
        };
        let mut d = Diagnosis::new(DiagnosisSource::Native, root_cause, summary);
        for n in notes {
            evidence.push(Evidence {
                source: "note".into(),
                observation: n,
            });
        }
        d.evidence = evidence;
        d.recommendations = recommendations;
        d.confidence = confidence;
        d.signals = Signals {
            memory: memory_signals,
            traffic,
            last_deploy: deploy,
            crash,
        };
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{TimeZone, Utc};

    fn series(f: impl Fn(i64) -> f64) -> Vec<Sample> {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        (0..288)
            .map(|i| Sample {
                at: t0 + chrono::Duration::minutes(5 * i),
                value: f(i),
            })
            .collect()
    }

    #[test]
    fn memory_that_follows_traffic_is_not_a_leak() {
        let rps = series(|i| if i > 260 { 440.0 } else { 100.0 });
        let mem =
            series(|i| (213.76 + 2.4 * if i > 260 { 440.0 } else { 100.0 }) * 1024.0 * 1024.0);
        assert!(unexplained_growth(&mem, &rps).abs() < 1.0);
    }

    #[test]
    fn saw_tooth_growth_under_flat_traffic_is_a_leak() {
        let rps = series(|_| 100.0);
        // 60 MiB/h growth, restarting every 6 h.
        let mem = series(|i| (400.0 + 60.0 * ((i % 72) as f64 / 12.0)) * 1024.0 * 1024.0);
        let g = unexplained_growth(&mem, &rps);
        assert!((g - 60.0).abs() < 3.0, "{g}");
    }

    #[test]
    fn finds_the_missing_variable_in_common_log_shapes() {
        for (line, var) in [
            ("KeyError: 'DATABASE_URL'", "DATABASE_URL"),
            (
                "level=fatal msg=\"missing required environment variable\" var=DATABASE_URL",
                "DATABASE_URL",
            ),
            (
                "Error: environment variable REDIS_URL is not set",
                "REDIS_URL",
            ),
        ] {
            assert_eq!(
                missing_env_in(&[line.to_owned()]).as_deref(),
                Some(var),
                "{line}"
            );
        }
    }
}
