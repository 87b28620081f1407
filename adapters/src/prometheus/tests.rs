#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;

use super::*;

type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// Serves `path` on 127.0.0.1 with a canned status and body, recording each request's query
/// parameters. Returns the base URL.
async fn canned(path: &str, status: u16, body: &'static str) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let app = Router::new().route(
        path,
        get(
            move |Query(params): Query<HashMap<String, String>>| async move {
                record.lock().unwrap().push(params);
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    body,
                )
            },
        ),
    );
    (serve(app).await, seen)
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn client(url: &str) -> Prometheus {
    Prometheus::new(PrometheusOptions {
        url: url.into(),
        timeout: Some(Duration::from_secs(5)),
        queries: MetricQueries::default(),
    })
    .unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

const MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[
    {"metric":{"route":"/checkout"},"values":[[1700000000,"1.5"],[1700000060.5,"2"]]},
    {"metric":{"route":"/cart"},"values":[[1700000000,"0.25"]]}]}}"#;

#[tokio::test]
async fn range_query_sends_unix_seconds_under_the_path_prefix_and_parses_the_matrix() {
    let (base, seen) = canned("/prometheus/api/v1/query_range", 200, MATRIX).await;
    let prom = client(&format!("{base}/prometheus/"));
    let start = DateTime::from_timestamp_millis(1_699_999_700_250).unwrap();

    let series = prom
        .query_range("up", start, at(1_700_000_060), Duration::from_secs(30))
        .await
        .unwrap();

    let params = seen.lock().unwrap()[0].clone();
    assert_eq!(params["query"], "up");
    assert_eq!(params["start"], "1699999700.250");
    assert_eq!(params["end"], "1700000060.000");
    assert_eq!(params["step"], "30");
    assert_eq!(series.len(), 2);
    assert_eq!(series[0].0["route"], "/checkout");
    assert_eq!(
        series[0].1,
        vec![
            Sample {
                at: at(1_700_000_000),
                value: 1.5
            },
            Sample {
                at: DateTime::from_timestamp_millis(1_700_000_060_500).unwrap(),
                value: 2.0
            },
        ]
    );
    assert_eq!(series[1].1[0].value, 0.25);
}

#[tokio::test]
async fn instant_query_parses_a_vector_with_its_labels() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"up","job":"api","instance":"10.0.0.1:8080"},"value":[1700000000.781,"1"]},
        {"metric":{"__name__":"up","job":"db","instance":"10.0.0.2:5432"},"value":[1700000000.781,"0"]}]}}"#;
    let (base, seen) = canned("/api/v1/query", 200, body).await;

    let result = client(&base)
        .query("up", Some(at(1_700_000_000)))
        .await
        .unwrap();

    assert_eq!(seen.lock().unwrap()[0]["time"], "1700000000.000");
    assert_eq!(result.len(), 2);
    assert_eq!(result[0].0["job"], "api");
    assert_eq!(result[0].0["__name__"], "up");
    assert_eq!(
        result[0].1.at,
        DateTime::from_timestamp_millis(1_700_000_000_781).unwrap()
    );
    assert_eq!(result[1].1.value, 0.0);
}

#[tokio::test]
async fn instant_query_without_a_time_lets_prometheus_pick_now() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    let (base, seen) = canned("/api/v1/query", 200, body).await;

    let result = client(&base).query("up", None).await.unwrap();

    assert!(result.is_empty());
    assert!(!seen.lock().unwrap()[0].contains_key("time"));
}

#[tokio::test]
async fn scalar_result_is_one_sample_with_empty_labels() {
    let body =
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42.5"]}}"#;
    let (base, _) = canned("/api/v1/query", 200, body).await;

    let result = client(&base).query("42.5", None).await.unwrap();

    assert_eq!(
        result,
        vec![(
            Labels::new(),
            Sample {
                at: at(1_700_000_000),
                value: 42.5
            }
        )]
    );
}

#[tokio::test]
async fn nan_and_infinite_values_parse() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{},"values":[[1700000000,"NaN"],[1700000015,"+Inf"],[1700000030,"-Inf"],[1700000045,"1e3"]]}]}}"#;
    let (base, _) = canned("/api/v1/query_range", 200, body).await;

    let series = client(&base)
        .query_range(
            "x / 0",
            at(1_700_000_000),
            at(1_700_000_045),
            Duration::from_secs(15),
        )
        .await
        .unwrap();

    let values: Vec<f64> = series[0].1.iter().map(|s| s.value).collect();
    assert!(values[0].is_nan());
    assert_eq!(values[1..], [f64::INFINITY, f64::NEG_INFINITY, 1000.0]);
}

#[tokio::test]
async fn bad_data_with_400_reports_prometheus_error_type_message_and_query() {
    let body = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:4: parse error: unexpected end of input"}"#;
    let (base, _) = canned("/api/v1/query", 400, body).await;

    let err = client(&base).query("sum(", None).await.unwrap_err();

    match &err {
        PromError::Status {
            status,
            error_type,
            error,
            query,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(error_type, "bad_data");
            assert!(error.contains("parse error"), "{error}");
            assert_eq!(query, "sum(");
        }
        other => panic!("expected Status, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("`sum(`") && message.contains("HTTP 400"),
        "{message}"
    );
}

#[tokio::test]
async fn non_json_error_page_reports_the_status_and_the_body() {
    let (base, _) = canned("/api/v1/query", 503, "Service Unavailable").await;

    let err = client(&base).query("up", None).await.unwrap_err();

    match err {
        PromError::Status {
            status,
            error_type,
            error,
            ..
        } => {
            assert_eq!(status, 503);
            assert_eq!(error_type, "");
            assert_eq!(error, "Service Unavailable");
        }
        other => panic!("expected Status, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_success_body_says_what_was_wrong() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,1.5]]}]}}"#;
    let (base, _) = canned("/api/v1/query_range", 200, body).await;

    let err = client(&base)
        .query_range(
            "up",
            at(1_700_000_000),
            at(1_700_000_000),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, PromError::Malformed { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(r#"[unix_seconds, "value"]"#), "{message}");
    assert!(message.contains("`up`"), "{message}");
}

#[tokio::test]
async fn matrix_from_an_instant_query_is_malformed() {
    let (base, _) = canned("/api/v1/query", 200, MATRIX).await;

    let err = client(&base).query("up[5m]", None).await.unwrap_err();

    assert!(err.to_string().contains("resultType \"matrix\""), "{err}");
}

#[tokio::test]
async fn unreachable_server_names_the_url_and_the_query() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let base = format!("http://{addr}");

    let err = client(&base).query("up", None).await.unwrap_err();

    assert!(matches!(err, PromError::Unreachable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&base) && message.contains("`up`"),
        "{message}"
    );
}

#[tokio::test]
async fn slow_server_times_out_as_unreachable() {
    let app = Router::new().route(
        "/api/v1/query",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "{}"
        }),
    );
    let base = serve(app).await;
    let prom = Prometheus::new(PrometheusOptions {
        url: base,
        timeout: Some(Duration::from_millis(200)),
        queries: MetricQueries::default(),
    })
    .unwrap();

    let err = prom.query("up", None).await.unwrap_err();

    assert!(matches!(err, PromError::Unreachable { .. }), "{err:?}");
}

#[test]
fn invalid_url_is_rejected_at_construction() {
    let err = Prometheus::new(PrometheusOptions {
        url: "prometheus:9090".into(),
        timeout: Some(Duration::from_secs(1)),
        queries: MetricQueries::default(),
    })
    .unwrap_err();
    assert!(matches!(err, PromError::InvalidUrl { .. }), "{err:?}");
}

#[tokio::test]
async fn memory_working_set_queries_the_rendered_template_over_the_window() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{},"values":[[1700000000,"104857600"],[1700000060,"209715200"]]}]}}"#;
    let (base, seen) = canned("/api/v1/query_range", 200, body).await;
    let workload = WorkloadRef::deployment("shop", "checkout");

    let samples = client(&base)
        .memory_working_set(
            &workload,
            "app",
            Duration::from_secs(3600),
            Duration::from_secs(60),
            at(1_700_000_060),
        )
        .await
        .unwrap();

    let params = seen.lock().unwrap()[0].clone();
    assert_eq!(
        params["query"],
        r#"max(container_memory_working_set_bytes{namespace="shop", pod=~"checkout-[a-z0-9]+-[a-z0-9]+", container="app"})"#
    );
    assert_eq!(params["start"], "1699996460.000");
    assert_eq!(params["end"], "1700000060.000");
    assert_eq!(params["step"], "60");
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[1].value, 209_715_200.0);
}

#[tokio::test]
async fn memory_working_set_without_series_is_empty() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
    let (base, _) = canned("/api/v1/query_range", 200, body).await;

    let samples = client(&base)
        .memory_working_set(
            &WorkloadRef::deployment("shop", "checkout"),
            "app",
            Duration::from_secs(600),
            Duration::from_secs(60),
            at(1_700_000_000),
        )
        .await
        .unwrap();

    assert!(samples.is_empty());
}

#[tokio::test]
async fn request_rates_come_back_per_route_sorted() {
    let (base, seen) = canned("/api/v1/query_range", 200, MATRIX).await;

    let rates = client(&base)
        .request_rates(
            &WorkloadRef::deployment("shop", "checkout"),
            Duration::from_secs(600),
            Duration::from_secs(60),
            at(1_700_000_060),
        )
        .await
        .unwrap();

    assert_eq!(
        seen.lock().unwrap()[0]["query"],
        r#"sum by (route) (rate(http_requests_total{namespace="shop", service="checkout"}[5m]))"#
    );
    let routes: Vec<&str> = rates.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(routes, ["/cart", "/checkout"]);
    assert_eq!(rates[1].1.len(), 2);
}

#[test]
fn pod_regex_follows_the_workload_kind() {
    let of = |kind: &str| {
        pod_regex(&WorkloadRef {
            kind: kind.into(),
            namespace: "shop".into(),
            name: "api.v2".into(),
        })
    };
    assert_eq!(of("Deployment"), r"api\.v2-[a-z0-9]+-[a-z0-9]+");
    assert_eq!(of("StatefulSet"), r"api\.v2-[0-9]+");
    assert_eq!(of("DaemonSet"), r"api\.v2-[a-z0-9]+");
    assert_eq!(of("Job"), r"api\.v2-[a-z0-9]+");
}

#[test]
fn render_leaves_promql_braces_and_unknown_placeholders_alone() {
    let workload = WorkloadRef::deployment("shop", "api");
    let rendered = render_query(
        r#"x{a="{namespace}", b="{unknown}"} / on() {name}{container}{"#,
        &workload,
        "c",
    );
    assert_eq!(rendered, r#"x{a="shop", b="{unknown}"} / on() apic{"#);
}

#[test]
fn rendered_values_are_escaped_and_parse_back_to_the_original() {
    use promql_parser::label::MatchOp;
    use promql_parser::parser::{self, Expr};

    let workload = WorkloadRef {
        kind: "StatefulSet".into(),
        namespace: "we\"ird\\ns".into(),
        name: "db.{name}".into(),
    };
    let rendered = render_query(
        &MetricQueries::default().memory_working_set,
        &workload,
        "a\nb",
    );

    let Expr::Aggregate(agg) = parser::parse(&rendered).unwrap() else {
        panic!("not an aggregation: {rendered}");
    };
    let Expr::VectorSelector(vs) = *agg.expr else {
        panic!("not a selector: {rendered}");
    };
    let find = |name: &str| {
        vs.matchers
            .matchers
            .iter()
            .find(|m| m.name == name)
            .unwrap()
    };
    assert_eq!(find("namespace").value, "we\"ird\\ns");
    assert_eq!(find("container").value, "a\nb");
    let pod = find("pod");
    assert_eq!(pod.value, r"db\.\{name\}-[0-9]+");
    assert!(matches!(pod.op, MatchOp::Re(_)));
    assert!(pod.is_match("db.{name}-0"));
    assert!(!pod.is_match("dbx{name}-0"));
    assert!(!pod.is_match("db.{name}-0-extra"));
}

#[tokio::test]
async fn latency_renders_the_route_and_leaves_out_instants_with_no_answer() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{},"values":[[1700000000,"NaN"],[1700000060,"2.485"]]}]}}"#;
    let (base, seen) = canned("/api/v1/query_range", 200, body).await;
    let workload = WorkloadRef::deployment("catalog", "pricing-api");
    let samples = client(&base)
        .latency(
            &workload,
            "/healthz",
            Duration::from_secs(3600),
            Duration::from_secs(60),
            at(1_700_000_060),
        )
        .await
        .unwrap();
    let params = seen.lock().unwrap()[0].clone();
    assert_eq!(
        params["query"],
        r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="catalog", pod=~"pricing\\-api-[a-z0-9]+-[a-z0-9]+", route="/healthz"}[5m])))"#
    );
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0].value, 2.485);
}
