//! Alertmanager's API v2 as the [`Alerts`] port: which alerts are still active, so Ralph can tell
//! whether the incident's alert resolved after the fix. One request per question:
//! `GET /api/v2/alerts` with `filter=` matchers on the alert's name and namespace, active alerts
//! only (not silenced, not inhibited); the workload scope ([`AlertQuery::matches`]) is applied
//! to what comes back, since the original alert's pod is usually gone after a fix.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use squad_runtime::ports::{ActiveAlert, AlertQuery, Alerts, PortError, PortResult};

/// An Alertmanager reached over HTTP.
#[derive(Debug, Clone)]
pub struct Alertmanager {
    client: reqwest::Client,
    base: String,
}

/// One alert as `GET /api/v2/alerts` returns it (gettableAlert); the fields squad reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GettableAlert {
    labels: BTreeMap<String, String>,
    starts_at: Option<DateTime<Utc>>,
}

impl Alertmanager {
    /// A client for the Alertmanager at `url` (its base URL, which may carry a path prefix),
    /// every request bounded by `timeout`.
    pub fn new(url: &str, timeout: Duration) -> PortResult<Self> {
        let what = || format!("Alertmanager at {url}");
        match reqwest::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            Ok(parsed) => {
                return Err(PortError::Rejected {
                    what: what(),
                    detail: format!("scheme {:?} is not http or https", parsed.scheme()),
                });
            }
            Err(e) => {
                return Err(PortError::Rejected {
                    what: what(),
                    detail: format!("not a URL: {e}"),
                });
            }
        }
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| {
                PortError::failed(what(), format!("cannot build its client: {}", chain(&e)))
            })?;
        Ok(Alertmanager {
            client,
            base: url.trim_end_matches('/').to_owned(),
        })
    }

    /// The configured Alertmanager, when `[alertmanager] url` is set.
    pub fn from_settings(s: &squad_config::AlertmanagerSettings) -> PortResult<Option<Self>> {
        s.url
            .as_deref()
            .map(|url| Self::new(url, Duration::from_secs(s.timeout_seconds)))
            .transpose()
    }

    /// The base URL requests go to (without a trailing slash).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The active alerts whose labels equal `matchers` (`GET /api/v2/alerts`).
    pub async fn active(&self, matchers: &[(&str, &str)]) -> PortResult<Vec<ActiveAlert>> {
        let url = format!("{}/api/v2/alerts", self.base);
        let what = format!(
            "Alertmanager at {}: the active alerts {{{}}}",
            self.base,
            matchers
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut query: Vec<(&str, String)> = matchers
            .iter()
            .map(|(k, v)| ("filter", format!("{k}=\"{}\"", escape(v))))
            .collect();
        query.extend([
            ("active", "true".to_owned()),
            ("silenced", "false".to_owned()),
            ("inhibited", "false".to_owned()),
        ]);
        let response = self
            .client
            .get(&url)
            .query(&query)
            .send()
            .await
            .map_err(|e| PortError::Unavailable {
                what: what.clone(),
                detail: chain(&e),
            })?;
        let status = response.status();
        let body = match crate::bounded::http_body(response, MAX_ANSWER_BYTES).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(crate::bounded::BodyError::Read(e)) => {
                return Err(PortError::Unavailable {
                    what,
                    detail: format!("reading the answer: {}", chain(&e)),
                });
            }
            Err(too_large) => return Err(PortError::failed(what, too_large)),
        };
        if !status.is_success() {
            let detail = format!("HTTP {status}: {}", snippet(&body));
            return Err(if status.is_server_error() {
                PortError::Unavailable { what, detail }
            } else {
                PortError::Rejected { what, detail }
            });
        }
        let alerts: Vec<GettableAlert> = serde_json::from_str(&body).map_err(|e| {
            PortError::failed(
                what.clone(),
                format!(
                    "the answer is not API v2's list of alerts: {e}: {}",
                    snippet(&body)
                ),
            )
        })?;
        Ok(alerts
            .into_iter()
            .map(|a| ActiveAlert {
                labels: a.labels,
                starts_at: a.starts_at,
            })
            .collect())
    }
}

#[async_trait]
impl Alerts for Alertmanager {
    async fn firing(&self, query: &AlertQuery) -> PortResult<Vec<ActiveAlert>> {
        let active = self
            .active(&[
                ("alertname", query.name.as_str()),
                ("namespace", query.namespace.as_str()),
            ])
            .await?;
        Ok(active
            .into_iter()
            .filter(|a| query.matches(&a.labels))
            .collect())
    }
}

/// A label value inside a matcher's double quotes.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The start of a body, for an error message.
fn snippet(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &body[..at]),
        None => body.to_owned(),
    }
}

/// An error and its sources, joined with `: ` (reqwest's own message omits the cause, e.g.
/// "connection refused").
/// The most of one Alertmanager answer squad reads (16 MiB; the alerts of one workload are a
/// few KB).
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_matcher_value_is_escaped_inside_its_quotes() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
    }

    #[test]
    fn a_url_that_is_not_http_is_refused_naming_it() {
        let err = Alertmanager::new("alertmanager:9093", Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Alertmanager at alertmanager:9093"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_alertmanager_is_an_unavailable_port_naming_it() {
        // Port 1 (tcpmux): nothing listens there, the connection is refused.
        let am = Alertmanager::new("http://127.0.0.1:1/", Duration::from_secs(5)).unwrap();
        let err = am.active(&[("alertname", "X")]).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("Alertmanager at http://127.0.0.1:1")
                && text.contains("alertname=\"X\"")
                && text.contains("unavailable"),
            "{text}"
        );
    }
}
