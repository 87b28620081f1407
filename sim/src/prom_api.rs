//! The simulated Prometheus's HTTP API: the query endpoints of Prometheus 2.x
//! (`/api/v1/query`, `/api/v1/query_range`, GET or form POST, same JSON) evaluated by
//! [`super::promql`] over a [`SeriesSource`], and `/metrics` exposing the source's current
//! points in the text exposition format 0.0.4. The Prometheus adapter
//! ([`crate::prometheus`]) and real tools (promtool, Grafana) can point at it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::promql::{self, InstantValue};
use super::series::{Labels, Point, SeriesKind, SeriesSource};

/// Prometheus refuses range queries with more points per series than this.
pub const MAX_POINTS_PER_SERIES: u32 = 11_000;

/// The exposition format's content type.
pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The API's routes over `source`.
pub fn router<S: SeriesSource>(source: Arc<S>) -> Router {
    Router::new()
        .route("/api/v1/query", get(query::<S>).post(query::<S>))
        .route(
            "/api/v1/query_range",
            get(query_range::<S>).post(query_range::<S>),
        )
        .route("/metrics", get(metrics::<S>))
        .with_state(source)
}

async fn query<S: SeriesSource>(
    State(source): State<Arc<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::new(&method, &uri, &headers, &body);
    let expr = params.get("query").unwrap_or_default().to_string();
    let t = match params.get("time").filter(|s| !s.is_empty()) {
        None => source.now(),
        Some(s) => match parse_time(s) {
            Ok(t) => t,
            Err(e) => return bad_data(format!("invalid parameter \"time\": {e}")),
        },
    };
    let evaluated =
        tokio::task::spawn_blocking(move || promql::evaluate(source.as_ref(), &expr, t)).await;
    let data = match evaluated {
        Ok(Ok(InstantValue::Scalar(v))) => json!({
            "resultType": "scalar",
            "result": sample_pair(t, v),
        }),
        Ok(Ok(InstantValue::Vector(vector))) => json!({
            "resultType": "vector",
            "result": vector
                .into_iter()
                .map(|(labels, v)| json!({ "metric": metric(&labels), "value": sample_pair(t, v) }))
                .collect::<Vec<_>>(),
        }),
        Ok(Err(e)) => return bad_data(e),
        Err(e) => return internal(e.to_string()),
    };
    success(data)
}

async fn query_range<S: SeriesSource>(
    State(source): State<Arc<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::new(&method, &uri, &headers, &body);
    let expr = params.get("query").unwrap_or_default().to_string();
    let start = match parse_time(params.get("start").unwrap_or_default()) {
        Ok(t) => t,
        Err(e) => return bad_data(format!("invalid parameter \"start\": {e}")),
    };
    let end = match parse_time(params.get("end").unwrap_or_default()) {
        Ok(t) => t,
        Err(e) => return bad_data(format!("invalid parameter \"end\": {e}")),
    };
    if end < start {
        return bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        );
    }
    let step = match parse_step(params.get("step").unwrap_or_default()) {
        Ok(step) => step,
        Err(e) => return bad_data(format!("invalid parameter \"step\": {e}")),
    };
    let span = (end - start).as_seconds_f64();
    if (span / step.as_secs_f64()).floor() > f64::from(MAX_POINTS_PER_SERIES) {
        return bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        );
    }
    let evaluated = tokio::task::spawn_blocking(move || {
        promql::range(source.as_ref(), &expr, start, end, step)
    })
    .await;
    let series = match evaluated {
        Ok(Ok(series)) => series,
        Ok(Err(e)) => return bad_data(e),
        Err(e) => return internal(e.to_string()),
    };
    success(json!({
        "resultType": "matrix",
        "result": series
            .into_iter()
            .map(|(labels, values)| json!({
                "metric": metric(&labels),
                "values": values.into_iter().map(|(t, v)| sample_pair(t, v)).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>(),
    }))
}

async fn metrics<S: SeriesSource>(State(source): State<Arc<S>>) -> Response {
    let points = source.points_at(source.now());
    (
        [(header::CONTENT_TYPE, EXPOSITION_CONTENT_TYPE)],
        exposition(source.as_ref(), &points),
    )
        .into_response()
}

/// The text exposition format 0.0.4 of `points`: per metric (sorted by name) its HELP (when the
/// source has one) and TYPE lines, then one line per series (sorted by labels), no timestamps.
fn exposition(source: &dyn SeriesSource, points: &[Point]) -> String {
    let mut metrics: BTreeMap<&str, Vec<&Point>> = BTreeMap::new();
    for point in points {
        if let Some(name) = point.labels.get("__name__") {
            metrics.entry(name).or_default().push(point);
        }
    }
    let mut out = String::new();
    for (name, mut series) in metrics {
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        if let Some(help) = source.help(name) {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        }
        let kind = match series.first().map(|p| p.kind) {
            Some(SeriesKind::Counter) => "counter",
            _ => "gauge",
        };
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for point in series {
            out.push_str(name);
            let mut labels = point
                .labels
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .peekable();
            if labels.peek().is_some() {
                out.push('{');
                for (i, (k, v)) in labels.enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label_value(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", format_value(point.value));
        }
    }
    out
}

/// HELP text escaping: backslash and line feed.
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

/// Label value escaping: backslash, double quote and line feed.
fn escape_label_value(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

/// A float as Prometheus writes it, in JSON strings and the exposition format.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

/// `[unix_seconds, "value"]`, the time with millisecond precision and no trailing `.0`, as
/// Prometheus writes it.
fn sample_pair(t: DateTime<Utc>, v: f64) -> Value {
    let ms = t.timestamp_millis();
    let seconds = if ms % 1000 == 0 {
        Value::from(ms / 1000)
    } else {
        Value::from(ms as f64 / 1000.0)
    };
    json!([seconds, format_value(v)])
}

fn metric(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

fn success(data: Value) -> Response {
    Json(json!({ "status": "success", "data": data })).into_response()
}

fn bad_data(error: String) -> Response {
    error_response(StatusCode::BAD_REQUEST, "bad_data", error)
}

fn internal(error: String) -> Response {
    error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", error)
}

fn error_response(status: StatusCode, error_type: &str, error: String) -> Response {
    (
        status,
        Json(json!({ "status": "error", "errorType": error_type, "error": error })),
    )
        .into_response()
}

/// A time as Prometheus takes it: unix seconds (decimals allowed) or RFC 3339.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let parsed = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() => {
            DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
        }
        Ok(_) => None,
        Err(_) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
    };
    parsed.ok_or_else(|| format!("cannot parse {text:?} to a valid timestamp"))
}

/// A step as Prometheus takes it: seconds (decimals allowed) or a duration like `5m`, `1h30m`.
fn parse_step(text: &str) -> Result<Duration, String> {
    const NOT_POSITIVE: &str =
        "zero or negative query resolution step widths are not accepted. Try a positive integer";
    let cannot = || format!("cannot parse {text:?} to a valid duration");
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_nan() => Err(cannot()),
        Ok(seconds) if seconds <= 0.0 => Err(NOT_POSITIVE.into()),
        Ok(seconds) => Duration::try_from_secs_f64(seconds).map_err(|_| cannot()),
        // parse_duration's own float branch panics on negative numbers; floats never reach it.
        Err(_) => match promql_parser::util::parse_duration(text) {
            Ok(d) if d.is_zero() => Err(NOT_POSITIVE.into()),
            Ok(d) => Ok(d),
            Err(_) => Err(cannot()),
        },
    }
}

/// Request parameters: a form body's (on POST) before the URL query's, as Go's
/// `Request.FormValue` reads them.
struct Params(Vec<(String, String)>);

impl Params {
    fn new(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut pairs = Vec::new();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if *method == Method::POST && is_form {
            pairs.extend(decode_form(body));
        }
        if let Some(query) = uri.query() {
            pairs.extend(decode_form(query.as_bytes()));
        }
        Self(pairs)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte).
fn decode_form(input: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(input).into_owned().collect()
}

/// The source's series from `start` to `end` every `step`, in the OpenMetrics text format with
/// timestamps — what `promtool tsdb create-blocks-from openmetrics` loads into a real Prometheus
/// (to compare its answers over history with the simulated query API's).
pub fn openmetrics_history(
    source: &dyn SeriesSource,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: Duration,
) -> String {
    let step = chrono::Duration::from_std(step)
        .unwrap_or(chrono::Duration::seconds(60))
        .max(chrono::Duration::seconds(1));
    // family -> (kind, series labels -> samples)
    type Samples = Vec<(DateTime<Utc>, f64)>;
    let mut families: BTreeMap<String, (SeriesKind, BTreeMap<Labels, Samples>)> = BTreeMap::new();
    let mut t = start;
    while t <= end {
        for p in source.points_at(t) {
            let Some(name) = p.labels.get("__name__") else {
                continue;
            };
            let family = match p.kind {
                SeriesKind::Counter => name.strip_suffix("_total").unwrap_or(name).to_owned(),
                SeriesKind::Gauge => name.clone(),
            };
            families
                .entry(family)
                .or_insert_with(|| (p.kind, BTreeMap::new()))
                .1
                .entry(p.labels.clone())
                .or_default()
                .push((t, p.value));
        }
        t += step;
    }
    let mut out = String::new();
    for (family, (kind, series)) in families {
        let kind = match kind {
            SeriesKind::Counter => "counter",
            SeriesKind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# TYPE {family} {kind}");
        if let Some(help) = series
            .keys()
            .next()
            .and_then(|l| l.get("__name__"))
            .and_then(|n| source.help(n))
        {
            let _ = writeln!(out, "# HELP {family} {}", escape_help(help));
        }
        for (labels, samples) in series {
            let name = labels.get("__name__").cloned().unwrap_or_default();
            let rendered: Vec<String> = labels
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
                .collect();
            for (at, v) in samples {
                let _ = writeln!(
                    out,
                    "{name}{{{}}} {} {}",
                    rendered.join(","),
                    format_value(v),
                    at.timestamp()
                );
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
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
            let error =
                bad_request("/api/v1/query", &[("query", "histogram_quantile(0.9, x)")]).await;
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
                text.contains(
                    "mem_bytes{container=\"app\",namespace=\"shop\",pod=\"api-1\"} 700\n"
                ),
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
}
