//! Unit tests of the PromQL evaluator against the fixture series in `super::fixtures`: selectors
//! and matchers, range functions and counter resets, aggregations, arithmetic, range queries, and
//! what it refuses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::fixtures::{FakeSource, at_hms};
use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn eval(expr: &str) -> Vec<(Labels, f64)> {
    instant(&FakeSource, expr, at_hms(10, 0, 0)).unwrap()
}

fn values(expr: &str) -> Vec<f64> {
    eval(expr).into_iter().map(|(_, v)| v).collect()
}

fn pods(expr: &str) -> Vec<String> {
    eval(expr)
        .into_iter()
        .map(|(l, _)| l.get("pod").cloned().unwrap_or_default())
        .collect()
}

fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}

#[test]
fn selector_sees_points_at_exactly_t_with_the_metric_name() {
    let result = eval(r#"mem_bytes{pod="api-1"}"#);
    assert_eq!(
        result,
        vec![(
            labels(&[
                ("__name__", "mem_bytes"),
                ("container", "app"),
                ("namespace", "shop"),
                ("pod", "api-1")
            ]),
            100.0 + 36_000.0 / 60.0
        )]
    );
}

#[test]
fn all_four_matchers_work_and_regexes_are_anchored() {
    assert_eq!(pods(r#"mem_bytes{namespace="shop"}"#), ["api-1", "api-2"]);
    assert_eq!(pods(r#"mem_bytes{namespace!="shop"}"#), ["db-0"]);
    assert_eq!(pods(r#"mem_bytes{pod=~"api-[0-9]+"}"#), ["api-1", "api-2"]);
    assert_eq!(pods(r#"mem_bytes{pod!~"api-.*"}"#), ["db-0"]);
    // Anchored: "api" alone matches no pod; "pi-1" does not match inside "api-1".
    assert!(pods(r#"mem_bytes{pod=~"api"}"#).is_empty());
    assert!(pods(r#"mem_bytes{pod=~"pi-1"}"#).is_empty());
    // A missing label matches the empty string.
    assert_eq!(pods(r#"mem_bytes{zone=""}"#).len(), 3);
    assert_eq!(pods(r#"{__name__=~"mem_.*", container="db"}"#), ["db-0"]);
}

#[test]
fn rate_is_the_increase_over_the_range_per_second() {
    let result = eval(r#"rate(http_requests_total{route=~"/a|/b"}[5m])"#);
    assert_eq!(result.len(), 2);
    assert_eq!(
        result[0].0,
        labels(&[("namespace", "shop"), ("route", "/a"), ("service", "api")])
    );
    assert_close(result[0].1, 2.0);
    assert_close(result[1].1, 0.5);
}

#[test]
fn increase_is_rate_times_the_range() {
    assert_close(
        values(r#"increase(http_requests_total{route="/a"}[5m])"#)[0],
        600.0,
    );
}

#[test]
fn a_counter_that_went_down_was_reset() {
    // At 10:02 the counter is 120 (reset at 10:00); at 09:57 it was 1620.
    let result = instant(&FakeSource, "rate(restarts_total[5m])", at_hms(10, 2, 0)).unwrap();
    assert_close(result[0].1, 120.0 / 300.0);
}

#[test]
fn a_counter_created_within_the_range_counts_from_zero() {
    // /c started at 09:58 and is 120 at 10:00.
    assert_close(
        values(r#"rate(http_requests_total{route="/c"}[5m])"#)[0],
        120.0 / 300.0,
    );
}

#[test]
fn irate_uses_the_last_sample_interval_and_needs_two_samples() {
    assert_close(
        values(r#"irate(http_requests_total{route="/a"}[5m])"#)[0],
        2.0,
    );
    assert!(values(r#"irate(http_requests_total{route="/a"}[1m])"#).is_empty());
}

#[test]
fn over_time_functions_sample_every_minute_within_the_range() {
    // api-1 grows by 1 per minute; at 10:00 it is 700; samples at 10:00, 09:59, ..., 09:51.
    let q = |f: &str| values(&format!(r#"{f}(mem_bytes{{pod="api-1"}}[10m])"#))[0];
    assert_close(q("max_over_time"), 700.0);
    assert_close(q("min_over_time"), 691.0);
    assert_close(q("avg_over_time"), 695.5);
    let result = eval(r#"max_over_time(mem_bytes{pod="api-2"}[10m])"#);
    assert!(!result[0].0.contains_key("__name__"));
}

#[test]
fn aggregations_with_by_and_without() {
    let sum = eval(r#"sum by (namespace) (mem_bytes)"#);
    assert_eq!(sum[0].0, labels(&[("namespace", "other")]));
    assert_close(sum[0].1, 10.0);
    assert_eq!(sum[1].0, labels(&[("namespace", "shop")]));
    assert_close(sum[1].1, 750.0);

    assert_eq!(values("max(mem_bytes)"), [700.0]);
    assert_eq!(values("min(mem_bytes)"), [10.0]);
    assert_close(values("avg(mem_bytes)")[0], 760.0 / 3.0);
    assert_eq!(values("count(mem_bytes)"), [3.0]);
    assert!(eval("count(mem_bytes)")[0].0.is_empty());

    let without = eval(r#"sum without (pod) (mem_bytes)"#);
    assert_eq!(
        without
            .iter()
            .map(|(l, v)| (l.clone(), *v))
            .collect::<Vec<_>>(),
        vec![
            (
                labels(&[("container", "app"), ("namespace", "shop")]),
                750.0
            ),
            (labels(&[("container", "db"), ("namespace", "other")]), 10.0),
        ]
    );
}

#[test]
fn request_rate_by_route_as_the_cluster_adapter_asks_for_it() {
    let result =
        eval(r#"sum by (route) (rate(http_requests_total{namespace="shop", service="api"}[5m]))"#);
    let by_route: Vec<(String, f64)> = result
        .into_iter()
        .map(|(l, v)| (l["route"].clone(), v))
        .collect();
    assert_eq!(by_route.len(), 3);
    assert_eq!(by_route[0].0, "/a");
    assert_close(by_route[0].1, 2.0);
    assert_close(by_route[1].1, 0.5);
    assert_close(by_route[2].1, 0.4);
}

#[test]
fn number_literals_and_scalar_arithmetic() {
    assert_eq!(eval("1 + 2 * 3"), vec![(Labels::new(), 7.0)]);
    assert_eq!(
        evaluate(&FakeSource, "2 ^ 10 % 1000", at_hms(10, 0, 0)).unwrap(),
        InstantValue::Scalar(24.0)
    );
    assert_eq!(values("-(4 - 6)"), [2.0]);
}

#[test]
fn vector_scalar_arithmetic_drops_the_metric_name() {
    let result = eval(r#"mem_bytes{pod="api-2"} / 2"#);
    assert_eq!(
        result,
        vec![(
            labels(&[
                ("container", "app"),
                ("namespace", "shop"),
                ("pod", "api-2")
            ]),
            25.0
        )]
    );
    assert_eq!(values(r#"100 - mem_bytes{pod="api-2"}"#), [50.0]);
    assert_eq!(values(r#"-mem_bytes{pod="db-0"}"#), [-10.0]);
}

#[test]
fn vector_vector_arithmetic_matches_identical_label_sets() {
    // Both sides keep namespace and route after the aggregation; /c is only on the left.
    let result = eval(
        r#"sum by (route) (rate(http_requests_total[5m])) / sum by (route) (rate(http_requests_total{route!="/c"}[5m]))"#,
    );
    assert_eq!(result.len(), 2);
    assert_close(result[0].1, 1.0);

    let ratio = eval(r#"mem_bytes{pod="api-1"} / mem_bytes{pod="api-1"}"#);
    assert_eq!(ratio[0].1, 1.0);
    assert!(!ratio[0].0.contains_key("__name__"));
    assert!(eval(r#"mem_bytes{pod="api-1"} + mem_bytes{pod="api-2"}"#).is_empty());
}

#[test]
fn series_left_with_the_same_labels_after_dropping_names_are_an_error() {
    let t = at_hms(10, 0, 0);
    let err = instant(
        &FakeSource,
        r#"rate({__name__=~".+_total", pod="api-1"}[5m])"#,
        t,
    )
    .unwrap_err();
    assert!(err.contains(r#"same labelset {pod="api-1"}"#), "{err}");

    let err = instant(
        &FakeSource,
        r#"{__name__=~".+_total", pod="api-1"} + restarts_total"#,
        t,
    )
    .unwrap_err();
    assert!(
        err.contains("many-to-one matching must be explicit"),
        "{err}"
    );
}

#[test]
fn range_evaluates_each_step_and_groups_by_series() {
    let series = range(
        &FakeSource,
        r#"mem_bytes{namespace="shop"}"#,
        at_hms(9, 0, 0),
        at_hms(9, 2, 30),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0].0["pod"], "api-1");
    assert_eq!(
        series[0].1,
        vec![
            (at_hms(9, 0, 0), 640.0),
            (at_hms(9, 1, 0), 641.0),
            (at_hms(9, 2, 0), 642.0)
        ]
    );
    assert_eq!(series[1].1.len(), 3);
}

#[test]
fn range_of_a_scalar_is_one_unlabelled_series() {
    let series = range(
        &FakeSource,
        "3",
        at_hms(9, 0, 0),
        at_hms(9, 1, 0),
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(series.len(), 1);
    assert!(series[0].0.is_empty());
    assert_eq!(series[0].1.len(), 3);
}

#[test]
fn range_series_appear_when_they_come_into_existence() {
    let series = range(
        &FakeSource,
        r#"rate(http_requests_total{route="/c"}[5m])"#,
        at_hms(9, 56, 0),
        at_hms(10, 0, 0),
        Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(
        series[0].1.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [at_hms(9, 58, 0), at_hms(10, 0, 0)]
    );
}

#[test]
fn range_rejects_a_zero_step_and_an_end_before_the_start() {
    assert!(
        range(
            &FakeSource,
            "1",
            at_hms(9, 0, 0),
            at_hms(10, 0, 0),
            Duration::ZERO
        )
        .is_err()
    );
    assert!(
        range(
            &FakeSource,
            "1",
            at_hms(10, 0, 0),
            at_hms(9, 0, 0),
            Duration::from_secs(1)
        )
        .is_err()
    );
}

#[test]
fn unsupported_constructs_say_so() {
    for (expr, what) in [
        ("mem_bytes offset 5m", "offset"),
        ("mem_bytes @ 1704067200", "@ modifier"),
        ("absent(mem_bytes)", "absent()"),
        ("topk(2, mem_bytes)", "topk"),
        ("mem_bytes > 10", ">"),
        ("mem_bytes / on(pod) mem_bytes", "vector matching"),
        ("max_over_time(mem_bytes[10m:1m])", "subqueries"),
        ("mem_bytes[5m]", "range vector"),
    ] {
        let err = instant(&FakeSource, expr, at_hms(10, 0, 0)).unwrap_err();
        assert!(
            err.starts_with("unsupported in the simulated Prometheus: "),
            "{expr}: {err}"
        );
        assert!(err.contains(what), "{expr}: {err}");
    }
}

#[test]
fn parse_errors_are_reported() {
    let err = instant(&FakeSource, "sum(", at_hms(10, 0, 0)).unwrap_err();
    assert!(err.starts_with("parse error"), "{err}");
}
