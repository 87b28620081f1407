//! `histogram_quantile(φ, buckets)`: the quantile of classic histogram buckets (`le` labels,
//! cumulative counts), computed as Prometheus computes it (`promql/quantile.go`): buckets sorted
//! by upper bound, counts made monotonic, the rank `φ × total` located in its bucket and
//! interpolated linearly within it; the highest finite bound when it falls in `+Inf`; NaN
//! without a `+Inf` bucket or without observations; ±Inf for φ outside [0, 1].

/// The upper bound an `le` label gives (`+Inf` included).
pub(super) fn upper_bound(le: &str) -> Option<f64> {
    match le.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        other => other.parse().ok(),
    }
}

/// The φ-quantile of one histogram's buckets, `(upper bound, cumulative count)` in any order.
pub(super) fn bucket_quantile(phi: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if phi.is_nan() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Buckets of the same bound (from series that differ only by a dropped label) add up.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for (le, count) in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == le => last.1 += count,
            _ => merged.push((le, count)),
        }
    }
    let buckets = merged;
    if buckets.len() < 2 || buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Counts read at slightly different instants can dip: make them monotonic.
    let mut counts: Vec<f64> = buckets.iter().map(|b| b.1).collect();
    for i in 1..counts.len() {
        if counts[i] < counts[i - 1] {
            counts[i] = counts[i - 1];
        }
    }
    let total = counts[counts.len() - 1];
    if total == 0.0 || total.is_nan() {
        return f64::NAN;
    }
    let mut rank = phi * total;
    let b = counts
        .iter()
        .position(|c| *c >= rank)
        .unwrap_or(counts.len() - 1);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, counts[b]);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= counts[b - 1];
        rank -= counts[b - 1];
    }
    if count == 0.0 {
        return end;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(pairs: &[(f64, f64)]) -> Vec<(f64, f64)> {
        pairs.to_vec()
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let h = b(&[
            (0.1, 10.0),
            (0.5, 60.0),
            (1.0, 100.0),
            (f64::INFINITY, 100.0),
        ]);
        // Rank 50 of 100: in (0.1, 0.5], 40 of its 50.
        assert!((bucket_quantile(0.5, h.clone()) - 0.42).abs() < 1e-9);
        // Rank 99: in (0.5, 1], 39 of its 40.
        assert!((bucket_quantile(0.99, h.clone()) - 0.9875).abs() < 1e-9);
        // Rank 5 in the first bucket: from 0.
        assert!((bucket_quantile(0.05, h) - 0.05).abs() < 1e-9);
    }

    #[test]
    fn the_edges_answer_as_prometheus_does() {
        // Everything above the highest finite bound: that bound.
        let high = b(&[(1.0, 0.0), (2.5, 0.0), (f64::INFINITY, 7.0)]);
        assert_eq!(bucket_quantile(0.99, high), 2.5);
        assert!(
            bucket_quantile(0.5, b(&[(1.0, 1.0)])).is_nan(),
            "no +Inf bucket"
        );
        assert!(bucket_quantile(0.5, b(&[(1.0, 0.0), (f64::INFINITY, 0.0)])).is_nan());
        assert_eq!(
            bucket_quantile(-1.0, b(&[(1.0, 1.0), (f64::INFINITY, 1.0)])),
            f64::NEG_INFINITY
        );
        assert_eq!(
            bucket_quantile(2.0, b(&[(1.0, 1.0), (f64::INFINITY, 1.0)])),
            f64::INFINITY
        );
        // Out of order and dipping counts.
        let messy = b(&[(f64::INFINITY, 10.0), (1.0, 10.0), (0.5, 11.0)]);
        assert_eq!(bucket_quantile(0.5, messy), 0.5 * 5.5 / 11.0);
        assert_eq!(upper_bound("+Inf"), Some(f64::INFINITY));
        assert_eq!(upper_bound("0.25"), Some(0.25));
    }
}
