//! A small series source for tests of the evaluator and the API.

use chrono::{DateTime, TimeDelta, Utc};

use crate::series::{Labels, Point, SeriesKind, SeriesSource};

/// `now` is 10:00 on 2024-01-01; `s(t)` is seconds since midnight.
///
/// - `mem_bytes{namespace="shop", pod="api-1", container="app"}` = 100 + s/60 (gauge)
/// - `mem_bytes{namespace="shop", pod="api-2", container="app"}` = 50
/// - `mem_bytes{namespace="other", pod="db-0", container="db"}` = 10
/// - `http_requests_total{namespace="shop", service="api", route="/a"}` = 2·s (counter)
/// - `http_requests_total{namespace="shop", service="api", route="/b"}` = 0.5·s
/// - `http_requests_total{namespace="shop", service="api", route="/c"}` = s - s(09:58),
///   existing from 09:58 on
/// - `restarts_total{pod="api-1"}` = s mod 1800 (resets every half hour)
/// - `cpu_seconds_total{pod="api-1"}` = s/4 (same labels as `restarts_total`)
pub(crate) struct FakeSource;

pub(crate) fn midnight() -> DateTime<Utc> {
    DateTime::from_timestamp(1_704_067_200, 0).unwrap_or_default()
}

pub(crate) fn at_hms(h: i64, m: i64, s: i64) -> DateTime<Utc> {
    midnight() + TimeDelta::seconds(h * 3600 + m * 60 + s)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl SeriesSource for FakeSource {
    fn now(&self) -> DateTime<Utc> {
        at_hms(10, 0, 0)
    }

    fn points_at(&self, t: DateTime<Utc>) -> Vec<Point> {
        let s = (t - midnight()).as_seconds_f64();
        let gauge = |pairs: &[(&str, &str)], value| Point {
            labels: labels(pairs),
            kind: SeriesKind::Gauge,
            value,
        };
        let counter = |pairs: &[(&str, &str)], value| Point {
            labels: labels(pairs),
            kind: SeriesKind::Counter,
            value,
        };
        let mem = "mem_bytes";
        let req = "http_requests_total";
        let mut points = vec![
            gauge(
                &[
                    ("__name__", mem),
                    ("namespace", "shop"),
                    ("pod", "api-1"),
                    ("container", "app"),
                ],
                100.0 + s / 60.0,
            ),
            gauge(
                &[
                    ("__name__", mem),
                    ("namespace", "shop"),
                    ("pod", "api-2"),
                    ("container", "app"),
                ],
                50.0,
            ),
            gauge(
                &[
                    ("__name__", mem),
                    ("namespace", "other"),
                    ("pod", "db-0"),
                    ("container", "db"),
                ],
                10.0,
            ),
            counter(
                &[
                    ("__name__", req),
                    ("namespace", "shop"),
                    ("service", "api"),
                    ("route", "/a"),
                ],
                2.0 * s,
            ),
            counter(
                &[
                    ("__name__", req),
                    ("namespace", "shop"),
                    ("service", "api"),
                    ("route", "/b"),
                ],
                0.5 * s,
            ),
            counter(
                &[("__name__", "restarts_total"), ("pod", "api-1")],
                s % 1800.0,
            ),
            counter(
                &[("__name__", "cpu_seconds_total"), ("pod", "api-1")],
                0.25 * s,
            ),
        ];
        let c_from = (at_hms(9, 58, 0) - midnight()).as_seconds_f64();
        if s >= c_from {
            points.push(counter(
                &[
                    ("__name__", req),
                    ("namespace", "shop"),
                    ("service", "api"),
                    ("route", "/c"),
                ],
                s - c_from,
            ));
        }
        points
    }

    fn help(&self, metric: &str) -> Option<&'static str> {
        match metric {
            "mem_bytes" => Some("Working set of a container.\nIn bytes, with a \\."),
            _ => None,
        }
    }
}
