//! Tests of the simulated Prometheus's HTTP API: the exposition format, time, step and form
//! parsing, and the query endpoints over loopback with the Prometheus adapter as the client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::super::promql::fixtures::FakeSource;
use super::*;

fn point(pairs: &[(&str, &str)], kind: SeriesKind, value: f64) -> Point {
    Point {
        labels: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        kind,
        value,
    }
}

#[test]
fn exposition_has_help_type_and_escaped_label_values() {
    let points = [
        point(
            &[
                ("__name__", "mem_bytes"),
                ("pod", "b"),
                ("note", "say \"hi\"\\\nbye"),
            ],
            SeriesKind::Gauge,
            1.5,
        ),
        point(
            &[("__name__", "requests_total")],
            SeriesKind::Counter,
            f64::INFINITY,
        ),
        point(
            &[("__name__", "mem_bytes"), ("pod", "a")],
            SeriesKind::Gauge,
            f64::NAN,
        ),
        point(&[("pod", "nameless")], SeriesKind::Gauge, 1.0),
    ];

    let text = exposition(&FakeSource, &points);

    assert_eq!(
        text,
        concat!(
            "# HELP mem_bytes Working set of a container.\\nIn bytes, with a \\\\.\n",
            "# TYPE mem_bytes gauge\n",
            "mem_bytes{note=\"say \\\"hi\\\"\\\\\\nbye\",pod=\"b\"} 1.5\n",
            "mem_bytes{pod=\"a\"} NaN\n",
            "# TYPE requests_total counter\n",
            "requests_total +Inf\n",
        )
    );
}

#[test]
fn times_parse_as_unix_seconds_or_rfc3339() {
    let t = DateTime::from_timestamp(1_704_067_200, 0).unwrap();
    assert_eq!(parse_time("1704067200").unwrap(), t);
    assert_eq!(
        parse_time("1704067200.25").unwrap(),
        DateTime::from_timestamp_millis(1_704_067_200_250).unwrap()
    );
    assert_eq!(parse_time("2024-01-01T00:00:00Z").unwrap(), t);
    assert_eq!(parse_time("2024-01-01T01:00:00+01:00").unwrap(), t);
    assert_eq!(
        parse_time("yesterday").unwrap_err(),
        r#"cannot parse "yesterday" to a valid timestamp"#
    );
    assert!(parse_time("").is_err());
    assert!(parse_time("NaN").is_err());
}

#[test]
fn steps_parse_as_seconds_or_prometheus_durations() {
    assert_eq!(parse_step("60").unwrap(), Duration::from_secs(60));
    assert_eq!(parse_step("0.5").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_step("5m").unwrap(), Duration::from_secs(300));
    assert_eq!(parse_step("1h30m").unwrap(), Duration::from_secs(5400));
    assert!(parse_step("0").unwrap_err().starts_with("zero or negative"));
    assert!(
        parse_step("-15")
            .unwrap_err()
            .starts_with("zero or negative")
    );
    assert!(parse_step("-5m").unwrap_err().starts_with("cannot parse"));
    assert!(parse_step("soon").unwrap_err().starts_with("cannot parse"));
    assert!(parse_step("").unwrap_err().starts_with("cannot parse"));
}

#[test]
fn form_encoding_decodes_plus_and_percent_escapes() {
    assert_eq!(
        decode_form(b"query=sum%28x%7Bpod%3D%22a%22%7D%29+%2B+1&time=&flag&bad=%zz%4"),
        vec![
            ("query".to_string(), "sum(x{pod=\"a\"}) + 1".to_string()),
            ("time".to_string(), String::new()),
            ("flag".to_string(), String::new()),
            ("bad".to_string(), "%zz%4".to_string()),
        ]
    );
}

/// Over a loopback server, with reqwest (and the Prometheus adapter) as the client.
mod over_http {
    use serde_json::Value;
    use squad_protocols::WorkloadRef;

    use super::super::super::promql::fixtures::{FakeSource, at_hms};
    use super::*;
    use squad_adapters::prometheus::{MetricQueries, Prometheus, PrometheusOptions};

    async fn serve() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(Arc::new(FakeSource))).await });
        format!("http://{addr}")
    }

    fn http() -> reqwest::Client {
        squad_adapters::tls::install_crypto_provider();
        reqwest::Client::new()
    }

    async fn get(url: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let response = http().get(url).query(params).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    #[tokio::test]
    async fn instant_query_answers_a_vector_as_prometheus_does() {
        let base = serve().await;

        let (status, body) = get(
            &format!("{base}/api/v1/query"),
            &[
                ("query", r#"mem_bytes{pod="api-2"}"#),
                ("time", "1704103200"),
            ],
        )
        .await;

        assert_eq!(status, 200);
        assert_eq!(
            body,
            serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {"__name__": "mem_bytes", "container": "app", "namespace": "shop", "pod": "api-2"},
                 "value": [1704103200, "50"]}
            ]}})
        );
    }

    #[tokio::test]
    async fn instant_query_without_time_evaluates_at_the_source_clock() {
        let base = serve().await;

        let (_, body) = get(
            &format!("{base}/api/v1/query"),
            &[("query", r#"mem_bytes{pod="api-1"}"#)],
        )
        .await;

        let value = &body["data"]["result"][0]["value"];
        assert_eq!(value[0], at_hms(10, 0, 0).timestamp());
        assert_eq!(value[1], "700");
    }

    #[tokio::test]
    async fn scalar_query_answers_a_scalar_with_fractional_time() {
        let base = serve().await;

        let (_, body) = get(
            &format!("{base}/api/v1/query"),
            &[("query", "1 / 0"), ("time", "1704103200.5")],
        )
        .await;

        assert_eq!(
            body["data"],
            serde_json::json!({"resultType": "scalar", "result": [1704103200.5, "+Inf"]})
        );
    }

    #[tokio::test]
    async fn form_post_is_read_like_get() {
        let base = serve().await;

        let response = http()
            .post(format!("{base}/api/v1/query"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("query=count%28mem_bytes%7Bnamespace%3D%22shop%22%7D%29+*+2&time=2024-01-01T10%3A00%3A00Z")
            .send()
            .await
            .unwrap();

        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["result"][0]["value"][1], "4");
        assert_eq!(body["data"]["result"][0]["metric"], serde_json::json!({}));
    }

    #[tokio::test]
    async fn range_query_answers_a_matrix() {
        let base = serve().await;

        let (status, body) = get(
            &format!("{base}/api/v1/query_range"),
            &[
                ("query", r#"mem_bytes{pod="api-1"}"#),
                ("start", "2024-01-01T09:00:00Z"),
                ("end", "1704099720"),
                ("step", "1m"),
            ],
        )
        .await;

        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["resultType"], "matrix");
        assert_eq!(
            body["data"]["result"][0]["values"],
            serde_json::json!([
                [1704099600, "640"],
                [1704099660, "641"],
                [1704099720, "642"]
            ])
        );
        assert_eq!(body["data"]["result"][0]["metric"]["pod"], "api-1");
    }

    #[tokio::test]
    async fn range_query_with_post_form() {
        let base = serve().await;

        let response = http()
            .post(format!("{base}/api/v1/query_range"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("query=max(mem_bytes)&start=1704099600&end=1704099660&step=30")
            .send()
            .await
            .unwrap();

        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["data"]["result"][0]["values"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }

    async fn bad_request(path: &str, params: &[(&str, &str)]) -> String {
        let base = serve().await;
        let (status, body) = get(&format!("{base}{path}"), params).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["status"], "error");
        assert_eq!(body["errorType"], "bad_data");
        body["error"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn range_query_rejects_an_end_before_the_start() {
        let error = bad_request(
            "/api/v1/query_range",
            &[
                ("query", "1"),
                ("start", "1704099660"),
                ("end", "1704099600"),
                ("step", "15"),
            ],
        )
        .await;
        assert!(
            error.contains("end timestamp must not be before start time"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn range_query_rejects_more_than_11000_points_per_series() {
        let error = bad_request(
            "/api/v1/query_range",
            &[
                ("query", "1"),
                ("start", "0"),
                ("end", "11001"),
                ("step", "1"),
            ],
        )
        .await;
        assert!(
            error.contains("exceeded maximum resolution of 11,000 points"),
            "{error}"
        );

        let base = serve().await;
        let (status, _) = get(
            &format!("{base}/api/v1/query_range"),
            &[
                ("query", "1"),
                ("start", "0"),
                ("end", "11000"),
                ("step", "1"),
            ],
        )
        .await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn range_query_rejects_bad_steps_and_times() {
        let params = |step| {
            [
                ("query", "1"),
                ("start", "0"),
                ("end", "60"),
                ("step", step),
            ]
        };
        let error = bad_request("/api/v1/query_range", &params("0")).await;
        assert!(
            error.contains("zero or negative query resolution step"),
            "{error}"
        );
        let error = bad_request("/api/v1/query_range", &params("often")).await;
        assert!(error.starts_with("invalid parameter \"step\""), "{error}");
        let error = bad_request(
            "/api/v1/query_range",
            &[("query", "1"), ("end", "60"), ("step", "15")],
        )
        .await;
        assert!(error.starts_with("invalid parameter \"start\""), "{error}");
    }

    #[tokio::test]
    async fn unsupported_and_unparsable_queries_are_bad_data() {
        let error = bad_request("/api/v1/query", &[("query", "absent(x)")]).await;
        assert!(
            error.starts_with("unsupported in the simulated Prometheus"),
            "{error}"
        );
        let error = bad_request("/api/v1/query", &[("query", "sum(")]).await;
        assert!(error.starts_with("parse error"), "{error}");
        let error = bad_request("/api/v1/query", &[("query", "1"), ("time", "later")]).await;
        assert!(error.starts_with("invalid parameter \"time\""), "{error}");
    }

    #[tokio::test]
    async fn metrics_serves_the_exposition_format_at_the_source_clock() {
        let base = serve().await;

        let response = http().get(format!("{base}/metrics")).send().await.unwrap();

        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = response.text().await.unwrap();
        assert!(
            text.contains("# TYPE http_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "http_requests_total{namespace=\"shop\",route=\"/a\",service=\"api\"} 72000\n"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE mem_bytes gauge\n"), "{text}");
        assert!(
            text.contains("mem_bytes{container=\"app\",namespace=\"shop\",pod=\"api-1\"} 700\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_prometheus_adapter_reads_the_simulated_api() {
        let base = serve().await;
        let prom = Prometheus::new(PrometheusOptions {
            url: base,
            timeout: Some(Duration::from_secs(5)),
            queries: MetricQueries {
                memory_working_set: r#"max(mem_bytes{namespace="{namespace}", pod=~"{pod_regex}", container="{container}"})"#.into(),
                ..MetricQueries::default()
            },
        })
        .unwrap();
        let workload = WorkloadRef {
            kind: "DaemonSet".into(),
            namespace: "shop".into(),
            name: "api".into(),
        };

        let memory = prom
            .memory_working_set(
                &workload,
                "app",
                Duration::from_secs(600),
                Duration::from_secs(300),
                at_hms(10, 0, 0),
            )
            .await
            .unwrap();
        let values: Vec<f64> = memory.iter().map(|s| s.value).collect();
        assert_eq!(values, [690.0, 695.0, 700.0]);
        assert_eq!(memory[2].at, at_hms(10, 0, 0));

        let rates = prom
            .request_rates(
                &workload,
                Duration::from_secs(120),
                Duration::from_secs(120),
                at_hms(10, 0, 0),
            )
            .await
            .unwrap();
        let routes: Vec<(&str, Vec<f64>)> = rates
            .iter()
            .map(|(r, s)| (r.as_str(), s.iter().map(|s| s.value).collect()))
            .collect();
        assert_eq!(
            routes,
            [
                ("/a", vec![2.0, 2.0]),
                ("/b", vec![0.5, 0.5]),
                ("/c", vec![0.0, 0.4])
            ]
        );
    }
}
