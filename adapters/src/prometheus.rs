//! The Prometheus HTTP query API client: instant and range queries over `/api/v1/query` and
//! `/api/v1/query_range`, and the two metric reads the cluster adapter needs (a container's
//! memory working set, a workload's request rate per route) rendered from configurable PromQL
//! templates.
//!
//! The same client talks to a real Prometheus (or anything speaking its API: Thanos, Mimir,
//! VictoriaMetrics) and to the simulated one in [`crate::sim::prom_api`].

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use squad_protocols::WorkloadRef;
use squad_protocols::cluster::{CpuHistory, Sample, VolumeUsage};

/// Labels of one series as Prometheus returns them (`__name__` included when present).
pub type Labels = BTreeMap<String, String>;

/// PromQL templates for the metrics squad reads. Placeholders, substituted with values escaped
/// for a PromQL double-quoted string: `{namespace}`, `{name}` (the workload's name),
/// `{container}` and `{pod_regex}` (a fully anchored regex matching the workload's pod names,
/// see [`pod_regex`]). Any other `{...}` is left as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQueries {
    /// One series: the container's memory working set in bytes.
    pub memory_working_set: String,
    /// One series per route (label `route`): requests per second.
    pub request_rate: String,
    /// One series: the container's CPU use in cores.
    pub cpu_usage: String,
    /// One series: the share of CFS periods the container was throttled in.
    pub cpu_throttling: String,
    /// One series: bytes used on the volume of claim `{claim}`.
    pub volume_used: String,
    /// One series: that volume's size in bytes.
    pub volume_capacity: String,
    /// One series: the 99th-percentile latency of the app's answers on `{route}`, in seconds.
    pub latency: String,
}

impl From<&squad_config::PrometheusSettings> for MetricQueries {
    fn from(p: &squad_config::PrometheusSettings) -> Self {
        Self {
            memory_working_set: p.memory_query.clone(),
            request_rate: p.traffic_query.clone(),
            cpu_usage: p.cpu_query.clone(),
            cpu_throttling: p.throttling_query.clone(),
            volume_used: p.volume_used_query.clone(),
            volume_capacity: p.volume_capacity_query.clone(),
            latency: p.latency_query.clone(),
        }
    }
}

impl Default for MetricQueries {
    /// `squad.toml`'s defaults.
    fn default() -> Self {
        Self::from(&squad_config::PrometheusSettings::default())
    }
}

/// Where Prometheus is and how to ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusOptions {
    /// Base URL; may carry a path prefix (`http://127.0.0.1:9090/prometheus`).
    pub url: String,
    /// Whole-request timeout (connect, send, receive). `None` sets no timer: a simulation on a
    /// virtual clock, whose time can jump while a request is in flight, needs that.
    pub timeout: Option<Duration>,
    pub queries: MetricQueries,
}

/// Why a Prometheus query failed. Every message names the Prometheus URL and the query.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("invalid Prometheus URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot build the HTTP client for Prometheus at {url}: {}", chain(.source))]
    Client {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// Connection refused, DNS failure, timeout: Prometheus could not be asked or did not answer.
    #[error("Prometheus at {url} is unreachable (query `{query}`): {}", chain(.source))]
    Unreachable {
        url: String,
        query: String,
        #[source]
        source: reqwest::Error,
    },
    /// Prometheus answered with an error status; `error_type` and `error` come from its JSON
    /// error body (`bad_data`, `execution`, `timeout`, ...) or, when the body is not Prometheus
    /// JSON (a proxy's error page), are empty and the start of the body.
    #[error(
        "Prometheus at {url} rejected query `{query}` with HTTP {status}: {error_type}: {error}"
    )]
    Status {
        url: String,
        query: String,
        status: u16,
        error_type: String,
        error: String,
    },
    /// Prometheus answered 2xx but the body is not the API's response format.
    #[error("Prometheus at {url} sent a malformed response to query `{query}`: {detail}")]
    Malformed {
        url: String,
        query: String,
        detail: String,
    },
}

/// The most of one Prometheus answer squad reads (64 MiB): its range queries over a day at the
/// configured step are a few hundred KB.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// An error and its sources, joined with `: ` (reqwest's own message omits the cause, e.g.
/// "connection refused").
fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// A Prometheus HTTP API client.
#[derive(Debug, Clone)]
pub struct Prometheus {
    client: reqwest::Client,
    base: String,
    queries: MetricQueries,
}

impl Prometheus {
    pub fn new(options: PrometheusOptions) -> Result<Self, PromError> {
        let PrometheusOptions {
            url,
            timeout,
            queries,
        } = options;
        match reqwest::Url::parse(&url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            Ok(parsed) => {
                return Err(PromError::InvalidUrl {
                    reason: format!("scheme {:?} is not http or https", parsed.scheme()),
                    url,
                });
            }
            Err(e) => {
                return Err(PromError::InvalidUrl {
                    reason: e.to_string(),
                    url,
                });
            }
        }
        crate::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder();
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        let client = builder.build().map_err(|source| PromError::Client {
            url: url.clone(),
            source,
        })?;
        Ok(Self {
            client,
            base: url.trim_end_matches('/').to_string(),
            queries,
        })
    }

    /// The base URL queries go to (without a trailing slash).
    pub fn url(&self) -> &str {
        &self.base
    }

    pub fn queries(&self) -> &MetricQueries {
        &self.queries
    }

    /// An instant query at `at` (Prometheus' own clock when `None`). A scalar result comes back
    /// as one sample with empty labels.
    pub async fn query(
        &self,
        promql: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<(Labels, Sample)>, PromError> {
        let mut params = vec![("query", promql.to_string())];
        if let Some(at) = at {
            params.push(("time", unix_seconds(at)));
        }
        let data = self.get("/api/v1/query", promql, &params).await?;
        let bad = |detail: String| self.malformed(promql, detail);
        match data.result_type.as_str() {
            "vector" => {
                let series = data.result.as_array().ok_or_else(|| {
                    bad(format!(
                        "data.result is not an array: {}",
                        snippet(&data.result)
                    ))
                })?;
                series
                    .iter()
                    .map(|entry| {
                        let labels = parse_metric(entry).map_err(&bad)?;
                        let value = entry.get("value").ok_or_else(|| {
                            bad(format!("a vector entry has no value: {}", snippet(entry)))
                        })?;
                        let sample = parse_sample(value).map_err(&bad)?;
                        Ok((labels, sample))
                    })
                    .collect()
            }
            "scalar" => {
                let sample = parse_sample(&data.result).map_err(&bad)?;
                Ok(vec![(Labels::new(), sample)])
            }
            other => Err(bad(format!(
                "expected an instant vector or scalar, got resultType {other:?}"
            ))),
        }
    }

    /// A range query evaluated at `start`, `start + step`, ... up to `end`.
    pub async fn query_range(
        &self,
        promql: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, PromError> {
        let params = [
            ("query", promql.to_string()),
            ("start", unix_seconds(start)),
            ("end", unix_seconds(end)),
            ("step", step.as_secs_f64().to_string()),
        ];
        let data = self.get("/api/v1/query_range", promql, &params).await?;
        let bad = |detail: String| self.malformed(promql, detail);
        if data.result_type != "matrix" {
            return Err(bad(format!(
                "expected a matrix, got resultType {:?}",
                data.result_type
            )));
        }
        let series = data.result.as_array().ok_or_else(|| {
            bad(format!(
                "data.result is not an array: {}",
                snippet(&data.result)
            ))
        })?;
        series
            .iter()
            .map(|entry| {
                let labels = parse_metric(entry).map_err(&bad)?;
                let values = entry
                    .get("values")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        bad(format!(
                            "a matrix entry has no values array: {}",
                            snippet(entry)
                        ))
                    })?;
                let samples = values
                    .iter()
                    .map(parse_sample)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(&bad)?;
                Ok((labels, samples))
            })
            .collect()
    }

    /// The container's memory working set over `[now - window, now]`: the first series the
    /// `memory_working_set` template returns, or nothing when it returns none.
    pub async fn memory_working_set(
        &self,
        workload: &WorkloadRef,
        container: &str,
        window: Duration,
        step: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Sample>, PromError> {
        let promql = render_query(&self.queries.memory_working_set, workload, container);
        let series = self
            .query_range(&promql, window_start(now, window), now, step)
            .await?;
        Ok(series
            .into_iter()
            .next()
            .map(|(_, samples)| samples)
            .unwrap_or_default())
    }

    /// The workload's request rate per route over `[now - window, now]`, sorted by route. A
    /// series without a `route` label is reported under `""`.
    pub async fn request_rates(
        &self,
        workload: &WorkloadRef,
        window: Duration,
        step: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Vec<Sample>)>, PromError> {
        let promql = render_query(&self.queries.request_rate, workload, "");
        let series = self
            .query_range(&promql, window_start(now, window), now, step)
            .await?;
        let mut rates: Vec<(String, Vec<Sample>)> = series
            .into_iter()
            .map(|(mut labels, samples)| (labels.remove("route").unwrap_or_default(), samples))
            .collect();
        rates.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(rates)
    }

    /// The container's CPU use and throttling over `[now - window, now]`: the first series each
    /// template returns (none when the container has no CPU limit, for throttling).
    pub async fn cpu(
        &self,
        workload: &WorkloadRef,
        container: &str,
        window: Duration,
        step: Duration,
        now: DateTime<Utc>,
    ) -> Result<CpuHistory, PromError> {
        let start = window_start(now, window);
        let usage = render_query(&self.queries.cpu_usage, workload, container);
        let throttled = render_query(&self.queries.cpu_throttling, workload, container);
        Ok(CpuHistory {
            usage: self.first_series(&usage, start, now, step).await?,
            throttled: self.first_series(&throttled, start, now, step).await?,
        })
    }

    /// The 99th-percentile latency of the app's answers on `route` over `[now - window, now]`, in
    /// seconds (NaN samples, where nothing was answered, left out).
    pub async fn latency(
        &self,
        workload: &WorkloadRef,
        route: &str,
        window: Duration,
        step: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Sample>, PromError> {
        let start = window_start(now, window);
        let q = render_query_with(&self.queries.latency, workload, "", &[("route", route)]);
        let mut samples = self.first_series(&q, start, now, step).await?;
        samples.retain(|s| s.value.is_finite());
        Ok(samples)
    }

    /// How full the volume of `claim` (in the workload's namespace) has been over
    /// `[now - window, now]`.
    pub async fn volume(
        &self,
        workload: &WorkloadRef,
        claim: &str,
        window: Duration,
        step: Duration,
        now: DateTime<Utc>,
    ) -> Result<VolumeUsage, PromError> {
        let start = window_start(now, window);
        let extra = [("claim", claim)];
        let used = render_query_with(&self.queries.volume_used, workload, "", &extra);
        let capacity = render_query_with(&self.queries.volume_capacity, workload, "", &extra);
        Ok(VolumeUsage {
            claim: claim.to_owned(),
            used: self.first_series(&used, start, now, step).await?,
            capacity: self.first_series(&capacity, start, now, step).await?,
        })
    }

    async fn first_series(
        &self,
        promql: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Sample>, PromError> {
        let series = self.query_range(promql, start, end, step).await?;
        Ok(series
            .into_iter()
            .next()
            .map(|(_, s)| s)
            .unwrap_or_default())
    }

    fn malformed(&self, query: &str, detail: String) -> PromError {
        PromError::Malformed {
            url: self.base.clone(),
            query: query.to_string(),
            detail,
        }
    }

    /// Sends the request and unwraps Prometheus' response envelope down to `data`.
    async fn get(
        &self,
        path: &str,
        query: &str,
        params: &[(&str, String)],
    ) -> Result<ResponseData, PromError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |source| PromError::Unreachable {
            url: url.clone(),
            query: query.to_string(),
            source,
        };
        let response = self
            .client
            .get(&url)
            .query(params)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let body = crate::bounded::http_body(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                crate::bounded::BodyError::Read(e) => unreachable(e),
                too_large => PromError::Malformed {
                    url: url.clone(),
                    query: query.to_string(),
                    detail: too_large.to_string(),
                },
            })?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let envelope_status = json
            .as_ref()
            .and_then(|j| j.get("status"))
            .and_then(Value::as_str)
            .map(str::to_owned);

        let envelope_status = envelope_status.as_deref();
        if !status.is_success() || envelope_status == Some("error") {
            let (error_type, error) = match &json {
                Some(j) if envelope_status.is_some() => (
                    j.get("errorType")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    j.get("error")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                ),
                _ => (String::new(), text_snippet(&body)),
            };
            return Err(PromError::Status {
                url,
                query: query.to_string(),
                status: status.as_u16(),
                error_type,
                error,
            });
        }

        let bad = |detail: String| self.malformed(query, detail);
        let json = json.ok_or_else(|| bad(format!("body is not JSON: {}", text_snippet(&body))))?;
        if envelope_status != Some("success") {
            return Err(bad(format!(
                "status is {:?}, expected \"success\"",
                json.get("status")
            )));
        }
        if let Some(warnings) = json.get("warnings") {
            tracing::debug!(%url, query, %warnings, "Prometheus returned warnings");
        }
        let data = json
            .get("data")
            .ok_or_else(|| bad("no data field".into()))?;
        let result_type = data
            .get("resultType")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("data.resultType missing: {}", snippet(data))))?
            .to_string();
        let result = data
            .get("result")
            .cloned()
            .ok_or_else(|| bad(format!("data.result missing: {}", snippet(data))))?;
        Ok(ResponseData {
            result_type,
            result,
        })
    }
}

/// A success response's `data`.
struct ResponseData {
    result_type: String,
    result: Value,
}

/// The regex matching the pod names of a workload's pods, from its kind: a Deployment's pods
/// are `<name>-<replicaset hash>-<suffix>`, a StatefulSet's `<name>-<ordinal>`, others (a
/// DaemonSet, a Job) `<name>-<suffix>`. Prometheus anchors it.
pub fn pod_regex(workload: &WorkloadRef) -> String {
    let name = regex::escape(&workload.name);
    match workload.kind.as_str() {
        "Deployment" => format!("{name}-[a-z0-9]+-[a-z0-9]+"),
        "StatefulSet" => format!("{name}-[0-9]+"),
        _ => format!("{name}-[a-z0-9]+"),
    }
}

/// Substitutes the placeholders of a [`MetricQueries`] template. Single pass: a substituted
/// value is never itself scanned for placeholders.
pub fn render_query(template: &str, workload: &WorkloadRef, container: &str) -> String {
    render_query_with(template, workload, container, &[])
}

/// [`render_query`] with more placeholders (`{claim}`), each with its value.
pub fn render_query_with(
    template: &str,
    workload: &WorkloadRef,
    container: &str,
    extra: &[(&str, &str)],
) -> String {
    let value = |key: &str| match key {
        "namespace" => Some(promql_escape(&workload.namespace)),
        "name" => Some(promql_escape(&workload.name)),
        "container" => Some(promql_escape(container)),
        "pod_regex" => Some(promql_escape(&pod_regex(workload))),
        _ => extra
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| promql_escape(v)),
    };
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let substituted = after
            .find('}')
            .and_then(|close| value(&after[..close]).map(|v| (v, close)));
        match substituted {
            Some((v, close)) => {
                out.push_str(&v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes a value for a PromQL double-quoted string literal (Go string escaping).
fn promql_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str(r#"\""#),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c => out.push(c),
        }
    }
    out
}

fn window_start(now: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(window)
        .ok()
        .and_then(|w| now.checked_sub_signed(w))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Unix seconds with millisecond decimals, as Prometheus' API takes times.
fn unix_seconds(t: DateTime<Utc>) -> String {
    let ms = t.timestamp_millis();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn parse_metric(entry: &Value) -> Result<Labels, String> {
    let metric = entry
        .get("metric")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("a result entry has no metric object: {}", snippet(entry)))?;
    metric
        .iter()
        .map(|(name, value)| match value.as_str() {
            Some(v) => Ok((name.clone(), v.to_string())),
            None => Err(format!("label {name} is not a string: {value}")),
        })
        .collect()
}

/// `[1700000000.123, "42"]`: unix seconds and the value as a string (`NaN`, `+Inf`, `-Inf`
/// included).
fn parse_sample(pair: &Value) -> Result<Sample, String> {
    let bad = || format!("expected [unix_seconds, \"value\"], got {}", snippet(pair));
    let [at, value] = pair.as_array().map(Vec::as_slice).ok_or_else(bad)? else {
        return Err(bad());
    };
    let seconds = at.as_f64().ok_or_else(bad)?;
    let at = DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
        .ok_or_else(|| format!("timestamp {seconds} is out of range"))?;
    let text = value.as_str().ok_or_else(bad)?;
    let value =
        parse_value(text).ok_or_else(|| format!("sample value {text:?} is not a number"))?;
    Ok(Sample { at, value })
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

fn snippet(value: &Value) -> String {
    truncate(value.to_string())
}

fn text_snippet(body: &[u8]) -> String {
    truncate(String::from_utf8_lossy(body).trim().to_string())
}

fn truncate(mut text: String) -> String {
    const MAX: usize = 200;
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests;
