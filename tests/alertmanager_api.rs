//! The Alertmanager adapter against a real Alertmanager (Debian's 0.25): alerts posted to its
//! API v2 are read back through the `Alerts` port, scoped to the workload as Ralph asks (its
//! current pods, not the pod the original alert named), silenced ones left out, and an alert
//! ended (endsAt in the past) is gone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use squad_adapters::alertmanager::Alertmanager;
use squad_protocols::{Alert, WorkloadRef};
use squad_runtime::ports::{ActiveAlert, AlertQuery, Alerts, PortError};
use squad_testkit::alertmanager::{self, RealAlertmanager};
use tokio::time::Instant;

/// No notifications: a receiver without integrations.
const CONFIG: &str = "route:\n  receiver: blackhole\n  group_by: [alertname, namespace]\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: blackhole\n";

fn alert(
    labels: &[(&str, &str)],
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    let mut a = json!({
        "labels": labels,
        "annotations": {"summary": "posted by squad's test"},
        "startsAt": starts_at.to_rfc3339(),
        "generatorURL": "http://prometheus.test/graph",
    });
    if let Some(end) = ends_at {
        a["endsAt"] = Value::from(end.to_rfc3339());
    }
    a
}

async fn post(http: &reqwest::Client, am: &RealAlertmanager, path: &str, body: &Value) -> Value {
    let response = http
        .post(format!("http://{}{path}", am.addr()))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "POST {path}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Asks until `done` holds of the answer (Alertmanager takes posted alerts and silences in
/// asynchronously), for at most 20 s; returns the last answer.
async fn until<F, Fut>(mut ask: F, done: impl Fn(&[ActiveAlert]) -> bool) -> Vec<ActiveAlert>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Vec<ActiveAlert>, PortError>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = ask().await.unwrap();
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pods(alerts: &[ActiveAlert]) -> Vec<String> {
    let mut pods: Vec<String> = alerts
        .iter()
        .map(|a| a.labels.get("pod").cloned().unwrap_or_default())
        .collect();
    pods.sort();
    pods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_reads_which_alerts_of_the_workload_still_fire_from_a_real_alertmanager() {
    let test = "the_adapter_reads_which_alerts_of_the_workload_still_fire_from_a_real_alertmanager";
    if !alertmanager::available_or_skip(test).unwrap() {
        return;
    }
    let am = RealAlertmanager::start(CONFIG).await.unwrap();
    squad_adapters::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    let since: DateTime<Utc> = (Utc::now() - chrono::Duration::minutes(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        .parse()
        .unwrap();
    let crashloop = |ns: &'static str, pod: &'static str| {
        vec![
            ("alertname", "KubePodCrashLooping"),
            ("namespace", ns),
            ("pod", pod),
            ("container", "app"),
            ("severity", "warning"),
        ]
    };
    // The workload's current pods are web-7c4b2d-new22 and web-7c4b2d-new33; the original alert
    // named web-5d9f7c-old11, which the rollout replaced (Alertmanager may still hold it).
    let posted = [
        crashloop("shop", "web-7c4b2d-new22"),
        crashloop("shop", "web-7c4b2d-new33"),
        crashloop("shop", "web-5d9f7c-old11"),
        crashloop("staging", "web-7c4b2d-new22"),
        vec![
            ("alertname", "KubePodNotReady"),
            ("namespace", "shop"),
            ("pod", "web-7c4b2d-new22"),
        ],
    ];
    let body = Value::Array(posted.iter().map(|l| alert(l, since, None)).collect());
    post(&http, &am, "/api/v2/alerts", &body).await;
    // A human silenced new33's alert: silenced alerts are left out.
    post(
        &http,
        &am,
        "/api/v2/silences",
        &json!({
            "matchers": [{"name": "pod", "value": "web-7c4b2d-new33", "isRegex": false, "isEqual": true}],
            "startsAt": Utc::now().to_rfc3339(),
            "endsAt": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            "createdBy": "squad-test",
            "comment": "known",
        }),
    )
    .await;

    let adapter =
        Alertmanager::new(&format!("http://{}/", am.addr()), Duration::from_secs(10)).unwrap();
    // Everything active in the namespace under that name, silenced ones left out.
    let active = until(
        || adapter.active(&[("alertname", "KubePodCrashLooping"), ("namespace", "shop")]),
        |a| pods(a) == ["web-5d9f7c-old11", "web-7c4b2d-new22"],
    )
    .await;
    assert_eq!(
        pods(&active),
        ["web-5d9f7c-old11", "web-7c4b2d-new22"],
        "{active:?}\n{}",
        am.log_tail()
    );

    // Ralph's question: the original alert, scoped to the workload's current pods.
    let original = Alert::firing("KubePodCrashLooping")
        .with_label("namespace", "shop")
        .with_label("pod", "web-5d9f7c-old11")
        .with_label("container", "app");
    let query = AlertQuery::of(
        &original,
        &WorkloadRef::deployment("shop", "web"),
        vec!["web-7c4b2d-new22".into(), "web-7c4b2d-new33".into()],
    );
    let firing = adapter.firing(&query).await.unwrap();
    assert_eq!(pods(&firing), ["web-7c4b2d-new22"], "{firing:?}");
    assert_eq!(firing[0].starts_at, Some(since));
    assert_eq!(
        firing[0].describe(),
        format!(
            "for pod web-7c4b2d-new22 since {}",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    );

    // Prometheus ends it (endsAt in the past): it no longer fires.
    let ended = Value::Array(vec![alert(
        &crashloop("shop", "web-7c4b2d-new22"),
        since,
        Some(Utc::now() - chrono::Duration::seconds(5)),
    )]);
    post(&http, &am, "/api/v2/alerts", &ended).await;
    let firing = until(|| adapter.firing(&query), <[ActiveAlert]>::is_empty).await;
    assert!(firing.is_empty(), "{firing:?}\n{}", am.log_tail());
    // The others are untouched.
    let active = adapter
        .active(&[
            ("alertname", "KubePodCrashLooping"),
            ("namespace", "staging"),
        ])
        .await
        .unwrap();
    assert_eq!(pods(&active), ["web-7c4b2d-new22"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_that_refuses_the_request_is_a_clear_port_error() {
    let test = "an_alertmanager_that_refuses_the_request_is_a_clear_port_error";
    if !alertmanager::available_or_skip(test).unwrap() {
        return;
    }
    let am = RealAlertmanager::start(CONFIG).await.unwrap();
    // A base URL with a path Alertmanager does not serve.
    let url = format!("http://{}/not-alertmanager", am.addr());
    let adapter = Alertmanager::new(&url, Duration::from_secs(10)).unwrap();
    let err = adapter
        .active(&[("alertname", "KubePodCrashLooping")])
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, PortError::Rejected { .. })
            && text.contains(&format!("Alertmanager at {url}"))
            && text.contains("HTTP 404"),
        "{text}"
    );
}
