//! What a container's memory demand was at its peak when the cgroup held the working set at the
//! limit. A working set never reads above the limit (the kernel reclaims, then kills), so an
//! OOM-killed container's observed peak is the limit itself: sizing from it alone only bumps the
//! limit, and the next surge kills the pod again. The demand is estimated from the samples the
//! limit did not hold, against traffic:
//! - memory regressed on request rate (enough spread, a clear correlation): the fit, at the
//!   window's peak traffic;
//! - one traffic level seen below the limit: scaled in proportion to traffic from there (an upper
//!   bound: it assumes none of the memory is fixed);
//! - no traffic to relate it to: the observed peak (the sizing rule's headroom is then a bump).

use squad_protocols::cluster::Sample;

use super::{mib, nearest_rate, slope};

/// A working set at or above this fraction of the limit is held by the cgroup.
pub(super) const HELD_FRACTION: f64 = 0.97;
/// The fit is trusted only over traffic that varied by at least this fraction of its maximum…
const MIN_SPREAD: f64 = 0.1;
/// …and that memory follows this closely (Pearson's r).
const MIN_CORRELATION: f64 = 0.9;

/// The 24 h peak demand, in bytes, and how it was found when it is not the observed peak.
#[derive(Debug, Clone, PartialEq)]
pub struct PeakDemand {
    pub bytes: f64,
    /// Whether any sample sat at the limit.
    pub held_at_limit: bool,
    /// How the demand above the limit was estimated (`None`: the observed peak).
    pub estimate: Option<String>,
}

/// The samples at or above [`HELD_FRACTION`] of `limit` (bytes) are held; see the module doc.
pub fn peak_demand(memory: &[Sample], rps: &[Sample], limit: Option<f64>) -> PeakDemand {
    let observed = memory.iter().map(|s| s.value).fold(0.0, f64::max);
    let plain = |held_at_limit| PeakDemand {
        bytes: observed,
        held_at_limit,
        estimate: None,
    };
    let Some(limit) = limit.filter(|l| *l > 0.0) else {
        return plain(false);
    };
    let held = |s: &Sample| s.value >= HELD_FRACTION * limit;
    if !memory.iter().any(held) {
        return plain(false);
    }
    let rate = nearest_rate(memory, rps);
    // Traffic when the limit held the container, else over the whole window.
    let peak_rps = memory
        .iter()
        .filter(|s| held(s))
        .filter_map(&rate)
        .fold(0.0, f64::max)
        .max(rps.iter().map(|s| s.value).fold(0.0, f64::max));
    let free: Vec<(f64, f64)> = memory
        .iter()
        .filter(|s| !held(s))
        .filter_map(|s| rate(s).map(|r| (r, mib(s.value))))
        .collect();
    let (estimate, basis) = if let Some((a, b)) = fit(&free) {
        let at_peak = a + b * peak_rps;
        (
            at_peak,
            format!(
                "memory follows traffic at {b:.2} MiB per req/s over the {} samples below the limit (fit {a:.0} MiB + {b:.2} × req/s): at the window's peak {peak_rps:.0} req/s the container needs {at_peak:.0} MiB",
                free.len()
            ),
        )
    } else if let Some((r, m)) = free
        .iter()
        .filter(|(r, _)| *r > 0.0)
        .max_by(|x, y| (x.1 / x.0).total_cmp(&(y.1 / y.0)))
        .copied()
    {
        let at_peak = m / r * peak_rps;
        (
            at_peak,
            format!(
                "below the limit it used {m:.0} MiB at {r:.0} req/s; scaled to the window's peak {peak_rps:.0} req/s that is {at_peak:.0} MiB (an upper bound: it assumes all of it grows with traffic)"
            ),
        )
    } else {
        return plain(true);
    };
    let bytes = estimate * 1024.0 * 1024.0;
    if bytes <= observed {
        return plain(true);
    }
    PeakDemand {
        bytes,
        held_at_limit: true,
        estimate: Some(basis),
    }
}

/// Intercept and slope of memory (MiB) over traffic, when the traffic varied enough and memory
/// follows it clearly and upwards.
fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let (lo, hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    if hi <= 0.0 || hi - lo < MIN_SPREAD * hi {
        return None;
    }
    let b = slope(points)?;
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    let r = if syy > f64::EPSILON {
        b * (sxx / syy).sqrt()
    } else {
        0.0
    };
    (b > 0.0 && r >= MIN_CORRELATION).then_some((my - b * mx, b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    const MIB: f64 = 1024.0 * 1024.0;

    /// Samples every 5 minutes of `mem(rps)` under the traffic `rps(i)`, capped at `limit` MiB.
    fn series(
        n: usize,
        rps: impl Fn(usize) -> f64,
        mem: impl Fn(f64) -> f64,
        limit: f64,
    ) -> (Vec<Sample>, Vec<Sample>) {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let at = |i: usize| t0 + Duration::minutes(5 * i as i64);
        let r: Vec<Sample> = (0..n)
            .map(|i| Sample {
                at: at(i),
                value: rps(i),
            })
            .collect();
        let m = (0..n)
            .map(|i| Sample {
                at: at(i),
                value: mem(rps(i)).min(limit) * MIB,
            })
            .collect();
        (m, r)
    }

    #[test]
    fn a_working_set_below_the_limit_is_its_own_peak() {
        let (m, r) = series(50, |i| 100.0 + i as f64, |x| 200.0 + 2.0 * x, 1024.0);
        let d = peak_demand(&m, &r, Some(1024.0 * MIB));
        assert!(!d.held_at_limit && d.estimate.is_none());
        assert!((d.bytes / MIB - 498.0).abs() < 1e-6, "{d:?}");
    }

    #[test]
    fn with_varied_traffic_the_fit_finds_the_demand_at_the_peak() {
        // 80..=160 req/s, then a surge to 500: the limit holds it at 700 MiB.
        let rps = |i: usize| if i < 40 { 80.0 + 2.0 * i as f64 } else { 500.0 };
        let (m, r) = series(60, rps, |x| 150.0 + 3.0 * x, 700.0);
        let d = peak_demand(&m, &r, Some(700.0 * MIB));
        assert!(d.held_at_limit);
        assert!((d.bytes / MIB - 1650.0).abs() < 0.01, "{d:?}");
        assert!(d.estimate.unwrap().contains("3.00 MiB per req/s"));
    }

    #[test]
    fn with_one_traffic_level_below_the_limit_it_scales_in_proportion() {
        let rps = |i: usize| if i < 40 { 100.0 } else { 440.0 };
        let (m, r) = series(60, rps, |x| 213.76 + 2.4 * x, 512.0);
        let d = peak_demand(&m, &r, Some(512.0 * MIB));
        assert!((d.bytes / MIB - 453.76 * 4.4).abs() < 0.01, "{d:?}");
        assert!(d.estimate.unwrap().contains("upper bound"));
    }

    #[test]
    fn without_traffic_the_observed_peak_stands() {
        let (m, _) = series(30, |i| i as f64, |x| 400.0 + 10.0 * x, 512.0);
        let d = peak_demand(&m, &[], Some(512.0 * MIB));
        assert!(d.held_at_limit && d.estimate.is_none());
        assert_eq!(d.bytes, 512.0 * MIB);
    }

    #[test]
    fn memory_that_does_not_follow_traffic_is_not_extrapolated_by_a_fit() {
        // Memory climbs with time while traffic swings: no clear fit, and the proportional
        // bound at the swing's peak is no more than what was seen.
        let rps = |i: usize| 100.0 + if i.is_multiple_of(2) { 50.0 } else { 0.0 };
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let r: Vec<Sample> = (0..60)
            .map(|i| Sample {
                at: t0 + Duration::minutes(5 * i),
                value: rps(i as usize),
            })
            .collect();
        let m: Vec<Sample> = (0..60)
            .map(|i| Sample {
                at: t0 + Duration::minutes(5 * i),
                value: (300.0 + 4.0 * i as f64).min(512.0) * MIB,
            })
            .collect();
        let d = peak_demand(&m, &r, Some(512.0 * MIB));
        assert!(d.held_at_limit);
        assert!(
            d.estimate
                .as_deref()
                .is_none_or(|e| !e.contains("follows traffic")),
            "{d:?}"
        );
    }
}
