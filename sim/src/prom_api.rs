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
    // The histogram family whose HELP and TYPE were written last: its `_bucket`, `_count` and
    // `_sum` series follow one another (sorted by name) under one TYPE line.
    let mut histogram = String::new();
    for (name, mut series) in metrics {
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let kind = series.first().map(|p| p.kind);
        let family = match kind {
            Some(SeriesKind::Histogram) => crate::series::histogram_family(name),
            _ => name,
        };
        if kind != Some(SeriesKind::Histogram) || histogram != family {
            if let Some(help) = source.help(family) {
                let _ = writeln!(out, "# HELP {family} {}", escape_help(help));
            }
            let kind = match kind {
                Some(SeriesKind::Counter) => "counter",
                Some(SeriesKind::Histogram) => "histogram",
                _ => "gauge",
            };
            let _ = writeln!(out, "# TYPE {family} {kind}");
            if kind == "histogram" {
                histogram = family.to_owned();
            }
        }
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
                SeriesKind::Histogram => crate::series::histogram_family(name).to_owned(),
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
            SeriesKind::Histogram => "histogram",
            SeriesKind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# TYPE {family} {kind}");
        if let Some(help) = series
            .keys()
            .next()
            .and_then(|l| l.get("__name__"))
            .and_then(|n| source.help(n).or_else(|| source.help(&family)))
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
mod tests;
