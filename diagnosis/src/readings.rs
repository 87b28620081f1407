//! The measurements every family reads, computed once from the [`Facts`]: the container's status,
//! its node, traffic, memory against the limit (and whether it grows on its own), the last rollout
//! and what a crash's logs say. Each adds its evidence, quoting the cluster.

use regex::Regex;
use squad_protocols::cluster::{Revision, Sample};
use squad_protocols::diagnosis::{
    CrashSignals, DeploySignals, MemorySignals, Signals, TrafficSignals,
};
use squad_protocols::{Evidence, Quantity};

use crate::Facts;

mod demand;
pub use demand::{PeakDemand, peak_demand};

/// A leak is suspected when memory unexplained by traffic grows faster than this.
pub const LEAK_MIB_PER_HOUR: f64 = 5.0;

/// What the measurements show, typed, with the evidence behind them in the order it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Readings {
    pub signals: Signals,
    /// The container was OOM-killed (its last termination, or the alert says so).
    pub oom: bool,
    pub evidence: Vec<Evidence>,
}

/// How long ago a span was, as an on-call engineer reads it: `75 min ago` under two hours, else
/// whole hours (`30 h ago`).
pub fn ago(span: chrono::Duration) -> String {
    if span < chrono::Duration::hours(2) {
        format!("{} min ago", span.num_minutes().max(0))
    } else {
        format!("{} h ago", span.num_hours())
    }
}

/// What the last rollout changed in one aspect of the workload, read from each revision by `of`.
pub struct RolloutChange<T> {
    pub revision: u32,
    /// How long ago it rolled out ([`ago`]).
    pub ago: String,
    pub before: T,
    pub after: T,
}

/// The last rollout's change of what `of` reads from a revision, when both the last revision and
/// the one before have it and they differ.
pub fn last_rollout_change<T: PartialEq>(
    facts: &Facts,
    of: impl Fn(&squad_protocols::cluster::Revision) -> Option<T>,
) -> Option<RolloutChange<T>> {
    let [.., before, last] = facts.history.as_slice() else {
        return None;
    };
    let (before_value, after_value) = (of(before)?, of(last)?);
    (before_value != after_value).then(|| RolloutChange {
        revision: last.revision,
        ago: ago(facts.now - last.at),
        before: before_value,
        after: after_value,
    })
}

/// The alerted container as a revision declares it.
pub fn container_in<'r>(
    r: &'r squad_protocols::cluster::Revision,
    facts: &Facts,
) -> Option<&'r squad_protocols::cluster::ContainerSpec> {
    r.container(&facts.container)
}

impl Readings {
    pub fn of(facts: &Facts) -> Readings {
        let mut evidence = Vec::new();
        status_evidence(facts, &mut evidence);
        let traffic = traffic(facts, &mut evidence);
        let memory = memory(facts, &mut evidence);
        let last_deploy = deploy_signals(&facts.history, &facts.container, facts.now);
        if let Some(d) = &last_deploy {
            let word = |changed: bool| if changed { "changed" } else { "unchanged" };
            evidence.push(Evidence {
                source: "rollout history".into(),
                observation: format!(
                    "last rollout revision {} {} ({}): resources {}, environment {}",
                    d.revision,
                    facts.history.last().map_or_else(
                        || format!("{} h ago", d.age_hours),
                        |r| ago(facts.now - r.at)
                    ),
                    d.change_cause,
                    word(d.resources_changed),
                    word(d.env_changed)
                ),
            });
        }
        // What the workload's controller says about it, when something is wrong.
        for c in facts
            .info
            .conditions
            .iter()
            .filter(|c| c.status != "True" || c.kind == "ReplicaFailure")
        {
            evidence.push(Evidence {
                source: format!("{} status", facts.info.kind),
                observation: format!(
                    "condition {}={} ({}): {}",
                    c.kind, c.status, c.reason, c.message
                ),
            });
        }
        let crash = crash(facts, &mut evidence);
        let oom = facts.termination().is_some_and(|t| t.reason == "OOMKilled")
            || facts.alert.label("reason") == Some("OOMKilled");
        Readings {
            signals: Signals {
                memory,
                traffic,
                last_deploy,
                crash,
                ..Signals::default()
            },
            oom,
            evidence,
        }
    }
}

fn status_evidence(facts: &Facts, evidence: &mut Vec<Evidence>) {
    if let (Some(p), Some(s)) = (&facts.pod, facts.status()) {
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
    if let Some(n) = &facts.node {
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
}

/// The route whose rate changed most in the last 2 h against the 22 h before.
fn traffic(facts: &Facts, evidence: &mut Vec<Evidence>) -> Option<TrafficSignals> {
    let recent_from = facts.now - chrono::Duration::hours(2);
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
    let busiest = facts
        .request_rates
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(route, s)| (route, traffic_of(s)))
        .max_by(|a, b| a.1.2.total_cmp(&b.1.2));
    busiest.map(|(route, (now_rps, base, change))| {
        evidence.push(Evidence {
            source: "traffic".into(),
            observation: format!("{route}: {now_rps:.0} rps now vs {base:.0} rps baseline over the previous 22 h ({change:+.0}%)"),
        });
        TrafficSignals { route: route.clone(), change_pct: change.round(), window_hours: 2 }
    })
}

/// The workload's total request rate: the routes' series summed sample by sample.
pub fn total_rate(rates: &[(String, Vec<Sample>)]) -> Vec<Sample> {
    let mut rps: Vec<Sample> = Vec::new();
    for (_, series) in rates {
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
    rps
}

fn memory(facts: &Facts, evidence: &mut Vec<Evidence>) -> Option<MemorySignals> {
    let memory = &facts.memory;
    if memory.is_empty() {
        return None;
    }
    let spec = facts.info.container(&facts.container);
    let rps = total_rate(&facts.request_rates);
    let limit = spec.and_then(|s| s.limits.get("memory").copied());
    let request = spec.and_then(|s| s.requests.get("memory").copied());
    let observed = memory.iter().map(|s| s.value).fold(0.0, f64::max);
    let demand = peak_demand(memory, &rps, limit.map(|l| l.bytes() as f64));
    let med = median(&mut memory.iter().map(|s| s.value).collect::<Vec<_>>());
    // What the limit held is not the demand: traffic and growth are read from the rest.
    let free: Vec<Sample> = match limit {
        Some(l) if demand.held_at_limit => memory
            .iter()
            .filter(|s| s.value < demand::HELD_FRACTION * l.bytes() as f64)
            .copied()
            .collect(),
        _ => memory.clone(),
    };
    let per_rps = mib_per_rps(&free, &rps);
    let growth = growth_beyond(&free, &rps, per_rps);
    let leak = growth > LEAK_MIB_PER_HOUR;
    evidence.push(Evidence {
        source: "memory (24 h working set)".into(),
        observation: format!(
            "peak {} ({:.0} MiB){}, median {} against limit {} / request {}; {}",
            quantity(observed).round_up_to(Quantity::mebibytes(1)),
            mib(observed),
            if demand.held_at_limit {
                ": held at the limit by the cgroup"
            } else {
                ""
            },
            quantity(med).round_up_to(Quantity::mebibytes(1)),
            limit.map_or("none".into(), |q| q.to_string()),
            request.map_or("none".into(), |q| q.to_string()),
            if leak {
                format!("memory grows {growth:.1} MiB/h independently of traffic: leak pattern")
            } else {
                // (Within rounding of none, without a sign.)
                let growth = if growth.abs() < 0.05 { 0.0 } else { growth };
                format!(
                    "memory follows traffic (unexplained growth {growth:.1} MiB/h): no leak pattern"
                )
            }
        ),
    });
    if let Some(basis) = &demand.estimate {
        evidence.push(Evidence {
            source: "memory demand above the limit".into(),
            observation: basis.clone(),
        });
    }
    Some(MemorySignals {
        container: facts.container.clone(),
        limit,
        request,
        peak_24h: quantity(demand.bytes),
        held_at_limit: demand.held_at_limit,
        demand_estimate: demand.estimate,
        median_24h: quantity(med),
        trend_mib_per_hour: (growth * 10.0).round() / 10.0,
        mib_per_rps: per_rps,
        leak_suspected: leak,
    })
}

fn crash(facts: &Facts, evidence: &mut Vec<Evidence>) -> Option<CrashSignals> {
    let t = facts.termination().filter(|t| t.reason != "OOMKilled")?;
    let missing = missing_env_in(&facts.logs);
    if let Some(var) = &missing {
        evidence.push(Evidence {
            source: "container logs".into(),
            observation: format!(
                "the container exits at start-up: environment variable {var} is missing"
            ),
        });
    }
    Some(CrashSignals {
        container: facts.container.clone(),
        reason: t.reason.clone(),
        exit_code: t.exit_code,
        restarts: facts.status().map_or(0, |s| s.restart_count),
        missing_env: missing,
        log_excerpt: facts.logs.iter().rev().take(5).rev().cloned().collect(),
    })
}

pub(crate) fn mib(bytes: f64) -> f64 {
    bytes / 1024.0 / 1024.0
}

fn quantity(bytes: f64) -> Quantity {
    Quantity::from_bytes(bytes.max(0.0).ceil() as u64)
}

/// Least-squares slope of y over x.
pub(crate) fn slope(points: &[(f64, f64)]) -> Option<f64> {
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

/// The traffic sample nearest in time to a memory sample, within half the memory series' step:
/// two range queries asked a moment apart do not share timestamps.
pub(crate) fn nearest_rate<'a>(
    memory: &[Sample],
    rps: &'a [Sample],
) -> impl Fn(&Sample) -> Option<f64> + 'a {
    let step = memory
        .windows(2)
        .map(|w| (w[1].at - w[0].at).num_seconds().abs())
        .filter(|s| *s > 0)
        .min()
        .unwrap_or(60);
    move |m: &Sample| {
        rps.iter()
            .map(|r| ((r.at - m.at).num_seconds().abs(), r))
            .filter(|(d, _)| *d * 2 <= step)
            .min_by_key(|(d, _)| *d)
            .map(|(_, r)| r.value)
    }
}

/// Memory growth not explained by traffic, in MiB/h: memory is regressed on request rate
/// ([`mib_per_rps`]), and what traffic does not explain is measured by [`growth_beyond`].
pub fn unexplained_growth(memory: &[Sample], rps: &[Sample]) -> f64 {
    growth_beyond(memory, rps, mib_per_rps(memory, rps))
}

/// How much memory (MiB) each request per second holds: the least-squares slope of memory over
/// the request rate (0 when the traffic did not vary).
pub fn mib_per_rps(memory: &[Sample], rps: &[Sample]) -> f64 {
    let near = nearest_rate(memory, rps);
    let pairs: Vec<(f64, f64)> = memory
        .iter()
        .filter_map(|m| near(m).map(|r| (r, mib(m.value))))
        .collect();
    slope(&pairs).unwrap_or(0.0)
}

/// The growth over time, in MiB/h, of memory less `per_rps` MiB for each request per second:
/// the residual's slope within each run of the container (a drop of more than a tenth marks a
/// restart), so restarts do not hide a leak's saw-tooth.
pub fn growth_beyond(memory: &[Sample], rps: &[Sample], per_rps: f64) -> f64 {
    let near = nearest_rate(memory, rps);
    let residual: Vec<(f64, f64)> = memory
        .iter()
        .map(|m| {
            let r = near(m).unwrap_or(0.0);
            (m.at.timestamp() as f64 / 3600.0, mib(m.value) - per_rps * r)
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

/// The environment variable a crashed container's logs say is missing, in the shapes common
/// runtimes and frameworks print it.
pub fn missing_env_in(lines: &[String]) -> Option<String> {
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

/// The last rollout against the one before it, for the alerted container.
pub fn deploy_signals(
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

    #[test]
    fn routes_sum_sample_by_sample_within_a_second() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let s = |ms: i64, v: f64| Sample {
            at: t0 + chrono::Duration::milliseconds(ms),
            value: v,
        };
        let total = total_rate(&[
            ("/a".into(), vec![s(0, 1.0), s(60_000, 2.0)]),
            ("/b".into(), vec![s(400, 10.0), s(60_000, 20.0)]),
        ]);
        assert_eq!(
            total.iter().map(|s| s.value).collect::<Vec<_>>(),
            [11.0, 22.0]
        );
    }

    #[test]
    fn the_last_rollout_says_what_it_changed_for_the_container() {
        use squad_protocols::cluster::{ContainerSpec, EnvVar};
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let spec = |env: &[&str]| ContainerSpec {
            name: "app".into(),
            image: "i".into(),
            limits: Default::default(),
            requests: Default::default(),
            env: env
                .iter()
                .map(|n| EnvVar {
                    name: (*n).into(),
                    source: "value".into(),
                    literal: None,
                })
                .collect(),
            run_as_non_root: None,
            privileged: None,
            allow_privilege_escalation: None,
            read_only_root_filesystem: None,
            has_readiness_probe: false,
            has_liveness_probe: false,
            ports: Vec::new(),
            readiness_probe: None,
            liveness_probe: None,
            command: Vec::new(),
            args: Vec::new(),
        };
        let rev = |n: u32, env: &[&str]| Revision {
            revision: n,
            at: t0 + chrono::Duration::hours(i64::from(n)),
            change_cause: format!("r{n}"),
            name: format!("w-{n}"),
            containers: vec![spec(env)],
            init_containers: Vec::new(),
            pod_labels: Default::default(),
            placement: Default::default(),
            claims: Vec::new(),
            service_account: "cart".into(),
        };
        let d = deploy_signals(
            &[rev(1, &["A", "DB"]), rev(2, &["A"])],
            "app",
            t0 + chrono::Duration::hours(5),
        )
        .unwrap();
        assert!(d.env_changed && !d.resources_changed);
        assert_eq!((d.revision, d.age_hours), (2, 3));
        // Another container's name finds nothing to compare.
        let other = deploy_signals(&[rev(1, &["A"]), rev(2, &[])], "sidecar", t0).unwrap();
        assert!(!other.env_changed);
    }
}
