//! The simulated cluster behind a real alerting pipeline (Debian's Prometheus 2.42 and
//! Alertmanager 0.25): Prometheus scrapes the simulated kube-state-metrics series, evaluates the
//! rules in `tests/fixtures/alerting/rules.yml`, and alerts to Alertmanager, which posts webhooks
//! that squad's parser reads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use squad::simulation::{self, ServeKube};
use squad_protocols::AlertStatus;
use squad_protocols::alert::parse_alertmanager_webhook;
use squad_sim::Scenario;
use squad_testkit::alertmanager::{self, RealAlertmanager};
use squad_testkit::prometheus::{self, RealPrometheus};
use tokio::sync::mpsc;
use tokio::time::Instant;

const RULES: &str = include_str!("fixtures/alerting/rules.yml");
const PROMETHEUS_CONFIG: &str = include_str!("fixtures/alerting/prometheus.yml");
const ALERTMANAGER_CONFIG: &str = include_str!("fixtures/alerting/alertmanager.yml");

/// Fills `${NAME}` placeholders in a fixture, failing on any that is left (a typo in either).
fn fill(template: &str, values: &[(&str, &str)]) -> Result<String> {
    let mut text = template.to_owned();
    for (name, value) in values {
        let placeholder = format!("${{{name}}}");
        if !text.contains(&placeholder) {
            bail!("the template has no {placeholder}");
        }
        text = text.replace(&placeholder, value);
    }
    if let Some(at) = text.find("${") {
        bail!("unfilled placeholder in the template: {}", &text[at..]);
    }
    Ok(text)
}

/// Alertmanager posting every notification to `receiver_url`, and Prometheus scraping the
/// simulated cluster at `sim_addr` (host:port) and alerting to it. Both are ready when this
/// returns; the first webhook follows some seconds later (Prometheus hands new targets to its
/// scrape and notification loops at most every 5 s).
async fn alerting_stack(
    receiver_url: &str,
    receiver_token: &str,
    sim_addr: &str,
) -> Result<(RealPrometheus, RealAlertmanager)> {
    let am_config = fill(
        ALERTMANAGER_CONFIG,
        &[
            ("RECEIVER_URL", receiver_url),
            ("RECEIVER_TOKEN", receiver_token),
        ],
    )?;
    let am = RealAlertmanager::start(&am_config)
        .await
        .context("start Alertmanager")?;
    let prom_config = fill(
        PROMETHEUS_CONFIG,
        &[("SIM_ADDR", sim_addr), ("ALERTMANAGER_ADDR", &am.addr())],
    )?;
    let prom = RealPrometheus::start_with_files(&prom_config, &[("rules.yml", RULES)], None)
        .await
        .context("start Prometheus")?;
    Ok((prom, am))
}

/// A webhook receiver on a loopback port that hands each POSTed body to the returned channel.
async fn webhook_receiver() -> Result<(String, mpsc::UnboundedReceiver<Bytes>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/alerts",
            post(
                |State(tx): State<mpsc::UnboundedSender<Bytes>>, body: Bytes| async move {
                    let _ = tx.send(body);
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/alerts", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, rx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_alertmanager_posts_an_oomkilled_webhook() {
    let test = "the_real_alertmanager_posts_an_oomkilled_webhook";
    if !prometheus::available_or_skip(test).unwrap()
        || !alertmanager::available_or_skip(test).unwrap()
    {
        return;
    }
    let served = simulation::serve_cluster(
        Scenario::embedded("oomkilled").unwrap(),
        None,
        &ServeKube::default(),
    )
    .await
    .unwrap();
    let (receiver_url, mut webhooks) = webhook_receiver().await.unwrap();

    let started = Instant::now();
    let (prom, am) = alerting_stack(
        &receiver_url,
        "unused-token",
        &served.backends.api.addr().to_string(),
    )
    .await
    .unwrap();
    let ready = started.elapsed();
    let body = tokio::time::timeout(Duration::from_secs(60), webhooks.recv())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no webhook within 60 s\n--- prometheus:\n{}\n--- alertmanager:\n{}",
                prom.log_tail(),
                am.log_tail()
            )
        })
        .expect("the receiver is running");
    eprintln!(
        "{test}: stack ready after {:.1} s, first webhook after {:.1} s",
        ready.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    let text = String::from_utf8_lossy(&body);
    // The envelope, as Alertmanager 0.25 sends it.
    let hook: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(hook["version"], "4", "{text}");
    assert_eq!(hook["status"], "firing", "{text}");
    assert_eq!(hook["groupLabels"]["alertname"], "KubernetesPodOOMKilled");
    assert_eq!(hook["groupLabels"]["namespace"], "production");
    // And as squad reads it.
    let alerts = parse_alertmanager_webhook(&body)
        .unwrap_or_else(|e| panic!("squad cannot parse the webhook: {e}\n{text}"));
    assert!(!alerts.is_empty());
    for alert in &alerts {
        assert_eq!(alert.name, "KubernetesPodOOMKilled", "{text}");
        assert_eq!(alert.status, AlertStatus::Firing, "{text}");
        assert_eq!(alert.namespace(), Some("production"), "{text}");
        assert_eq!(alert.severity(), Some("critical"), "{text}");
        assert!(alert.label("container").is_some(), "{text}");
        assert!(
            alert.annotations.contains_key("summary")
                && alert.annotations.contains_key("description"),
            "{text}"
        );
        let group_key = alert.group_key.as_deref().unwrap_or_default();
        assert!(
            group_key.contains("alertname=\"KubernetesPodOOMKilled\"")
                && group_key.contains("namespace=\"production\""),
            "group key {group_key:?}"
        );
    }
    let pods: Vec<_> = alerts.iter().filter_map(|a| a.label("pod")).collect();
    eprintln!(
        "{test}: the first webhook holds {} alert(s): {pods:?}",
        alerts.len()
    );
    assert!(
        alerts.iter().any(|a| a
            .label("pod")
            .is_some_and(|p| p.starts_with("payment-service-"))),
        "no payment-service pod among the alerts:\n{text}"
    );
}

/// `squad serve` as a process on a loopback port, killed on drop.
struct Serve {
    child: std::process::Child,
    url: String,
    data: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SERVE_TOKEN: &str = "alerting-test-token-0123456789";

fn start_serve() -> Result<Serve> {
    use std::io::BufRead;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = dir.path().join("squad.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[server.auth]\ntokens = [\"{SERVE_TOKEN}\"]\n[backend]\ndata_dir = \"{}\"\n[intake]\nrepeat_note_seconds = 1\n",
            data.display()
        ),
    )?;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("SQUAD_SERVER_TOKENS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(url) = line.trim().strip_prefix("squad serve: listening on ") {
            let url = url.to_owned();
            std::thread::spawn(move || for _ in lines {});
            return Ok(Serve {
                child,
                url,
                data,
                _dir: dir,
            });
        }
    }
    bail!("squad serve did not start")
}

/// `GET /v1/incidents` from the daemon.
async fn serve_incidents(url: &str) -> Result<Vec<serde_json::Value>> {
    let url = format!("{url}/v1/incidents");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args([
                "-sf",
                "-H",
                &format!("Authorization: Bearer {SERVE_TOKEN}"),
                &url,
            ])
            .output()
    })
    .await??;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["incidents"].as_array().cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_oomkilled_alert_reaches_squad_serve_and_the_crew_opens_the_pr() {
    let test = "a_real_oomkilled_alert_reaches_squad_serve_and_the_crew_opens_the_pr";
    if !prometheus::available_or_skip(test).unwrap()
        || !alertmanager::available_or_skip(test).unwrap()
    {
        return;
    }
    let started = Instant::now();
    let serve = start_serve().unwrap();
    // The daemon serves its simulated cluster; Prometheus scrapes that cluster's /metrics.
    let kubeconfig = std::fs::read_to_string(serve.data.join("sim").join("kubeconfig")).unwrap();
    let sim_addr = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: http://"))
        .unwrap()
        .to_owned();
    let receiver = format!("{}/v1/alerts/alertmanager", serve.url);
    let (prom, am) = alerting_stack(&receiver, SERVE_TOKEN, &sim_addr)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let incident = loop {
        let list = serve_incidents(&serve.url).await.unwrap_or_default();
        if let Some(i) = list.iter().find(|i| i["pr"].is_object()) {
            assert_eq!(list.len(), 1, "one incident for the group: {list:?}");
            break i.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no remediation PR within 120 s: {list:?}\nPrometheus:\n{}\nAlertmanager:\n{}",
            prom.log_tail(),
            am.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!(
        "{test}: stack start to remediation PR in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(incident["source"], "alertmanager");
    assert_eq!(incident["alert"], "KubernetesPodOOMKilled");
    assert_eq!(
        incident["workload"],
        "Deployment production/payment-service"
    );
    assert_eq!(incident["root_cause"], "memory_under_provisioned");
}
