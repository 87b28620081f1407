//! The simulated cluster's metrics as Prometheus series: what `/metrics` exposes for scraping
//! and what the simulated Prometheus query API evaluates PromQL over.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// Labels of one series, `__name__` included (the metric name).
pub type Labels = BTreeMap<String, String>;

/// Whether a series is a gauge, a monotonically increasing counter, or one of a classic
/// histogram's (`<family>_bucket` with `le`, `<family>_count`, `<family>_sum`: counters exposed
/// under one family).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesKind {
    Gauge,
    Counter,
    Histogram,
}

/// The family a histogram's series belongs to (`x_bucket` → `x`).
pub fn histogram_family(name: &str) -> &str {
    ["_bucket", "_count", "_sum"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// One series' value at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub labels: Labels,
    pub kind: SeriesKind,
    pub value: f64,
}

/// A source of series whose values can be computed at any instant (the simulated cluster's
/// model). Series that do not exist at `t` (a pod not yet created or already gone) are absent.
pub trait SeriesSource: Send + Sync + 'static {
    /// The source's current time (the simulation's clock).
    fn now(&self) -> DateTime<Utc>;
    /// Every series that exists at `t`, with its value at `t`.
    fn points_at(&self, t: DateTime<Utc>) -> Vec<Point>;
    /// HELP text of a metric, for the exposition format.
    fn help(&self, _metric: &str) -> Option<&'static str> {
        None
    }
}
