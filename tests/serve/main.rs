//! `squad serve` as alerting systems and operators meet it: every endpoint and its errors,
//! dedup and grouping, an alert storm, a `kill -9` right after an answer, and SIGTERM.
//!
//! The daemon runs as a real process (the built binary) on a loopback port; requests go through
//! curl, so what is tested is the HTTP a sender sees.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

mod backends;

const TOKEN: &str = "serve-test-token-0123456789";
const FIXTURE: &str = "tests/fixtures/alertmanager/webhook-v4-oomkilled-0.25.0.json";

struct Daemon {
    child: Option<Child>,
    url: String,
    config: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn config_in(dir: &Path, extra: &str) -> PathBuf {
    config_with(dir, "", extra)
}

/// A config with more `[server]` keys.
fn config_with(dir: &Path, server: &str, extra: &str) -> PathBuf {
    let config = dir.join("squad.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nbody_limit_bytes = 65536\nshutdown_grace_seconds = 10\n{server}[server.auth]\ntokens = [\"{TOKEN}\"]\n[backend]\ndata_dir = \"{}\"\n[intake]\nrepeat_note_seconds = 1\n{extra}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    config
}

fn spawn(config: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_squad"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .env_remove("SQUAD_SERVER_TOKENS")
        .env_remove("SQUAD_PAGERDUTY_SECRETS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if let Some(url) = line.trim().strip_prefix("squad serve: listening on ") {
            let url = url.to_owned();
            // Keep reading stdout in the background so the daemon never blocks on it.
            std::thread::spawn(move || for _ in out.lines() {});
            return (child, url);
        }
        line.clear();
    }
    let status = child.wait().unwrap();
    panic!("squad serve did not start ({status})");
}

fn start(extra: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), extra);
    let (child, url) = spawn(&config, &[]);
    Daemon {
        child: Some(child),
        url,
        config,
        _dir: Some(dir),
    }
}

/// One request with curl: (status, body).
fn request(
    d: &Daemon,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-X", method, "-w", "\n%{http_code}"])
        .arg(format!("{}{path}", d.url));
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    let mut child = if body.is_some() {
        cmd.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
    } else {
        cmd.stdout(Stdio::piped()).spawn().unwrap()
    };
    if let Some(b) = body {
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn post(d: &Daemon, path: &str, body: &[u8]) -> (u16, String) {
    request(d, "POST", path, Some(TOKEN), Some(body), &[])
}

fn incidents(d: &Daemon) -> Vec<Value> {
    let (code, body) = request(d, "GET", "/v1/incidents", Some(TOKEN), None, &[]);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["incidents"]
        .as_array()
        .unwrap()
        .clone()
}

/// Polls until `pred` holds for the incidents (real time; the crew works in seconds).
fn wait_for(d: &Daemon, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..600 {
        let list = incidents(d);
        if pred(&list) {
            return list;
        }
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}: {:?}", incidents(d));
}

fn generic(alerts: &[(&str, &str, &str)]) -> Vec<u8> {
    // (name, namespace, pod)
    let list: Vec<Value> = alerts
        .iter()
        .map(|(name, ns, pod)| {
            json!({"name": name, "status": "firing", "labels": {"namespace": ns, "pod": pod, "severity": "critical"}})
        })
        .collect();
    serde_json::to_vec(&json!({ "alerts": list })).unwrap()
}

#[test]
fn the_captured_alertmanager_webhook_is_handled_through_to_the_pr() {
    let d = start("");
    let body = std::fs::read(FIXTURE).unwrap();
    let (code, text) = post(&d, "/v1/alerts/alertmanager", &body);
    assert_eq!(code, 202, "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reply["accepted"], 1);
    let list = wait_for(&d, "the remediation PR", |l| {
        l.len() == 1 && l[0]["pr"].is_object() && l[0]["state"] == "awaiting_approval"
    });
    assert_eq!(list[0]["root_cause"], "memory_under_provisioned");
    assert_eq!(list[0]["workload"], "Deployment production/payment-service");
    assert_eq!(list[0]["source"], "alertmanager");
    // What the daemon keeps (the store holds alerts and what was read, as read) is its owner's.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let data = d.config.parent().unwrap().join("data");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("incidents.redb")), 0o600);
    }
    // The incident with its timeline.
    let id = list[0]["id"].as_str().unwrap();
    let (code, text) = request(
        &d,
        "GET",
        &format!("/v1/incidents/{id}"),
        Some(TOKEN),
        None,
        &[],
    );
    assert_eq!(code, 200);
    let inc: Value = serde_json::from_str(&text).unwrap();
    let timeline: Vec<String> = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        timeline[0].starts_with("opened from alert KubernetesPodOOMKilled"),
        "{timeline:?}"
    );
    assert!(
        timeline.iter().any(|e| e.starts_with("opened PR #")),
        "{timeline:?}"
    );
    let (code, text) = request(&d, "GET", "/v1/incidents/inc-nope", Some(TOKEN), None, &[]);
    assert_eq!(code, 404, "{text}");
    assert!(text.contains("inc-nope"), "{text}");
}

#[test]
fn errors_name_the_problem() {
    let d = start("");
    let fixture = std::fs::read(FIXTURE).unwrap();
    // (path, token, body, expected status, what the error mentions)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "/v1/alerts/alertmanager",
            None,
            fixture.clone(),
            401,
            "Authorization",
        ),
        (
            "/v1/alerts/alertmanager",
            Some("wrong-token-0123456789"),
            fixture.clone(),
            403,
            "not accepted",
        ),
        (
            "/v1/alerts/alertmanager",
            Some(TOKEN),
            b"{not json".to_vec(),
            400,
            "JSON",
        ),
        (
            "/v1/alerts/alertmanager",
            Some(TOKEN),
            String::from_utf8(fixture.clone())
                .unwrap()
                .replace("\"version\": \"4\"", "\"version\": \"3\"")
                .replace("\"version\":\"4\"", "\"version\":\"3\"")
                .into_bytes(),
            400,
            "version",
        ),
        (
            "/v1/alerts/alertmanager",
            Some(TOKEN),
            br#"{"version":"4","status":"firing"}"#.to_vec(),
            400,
            "alerts",
        ),
        (
            "/v1/alerts",
            Some(TOKEN),
            br#"{"alerts":[{"status":"firing"}]}"#.to_vec(),
            400,
            "name",
        ),
        (
            "/v1/alerts",
            Some(TOKEN),
            br#"{"alerts":[{"name":"X","starts_at":"yesterday"}]}"#.to_vec(),
            400,
            "starts_at",
        ),
        (
            "/v1/alerts",
            Some(TOKEN),
            vec![b' '; 70_000],
            413,
            "length limit",
        ),
        ("/v1/incidents", None, Vec::new(), 401, "Authorization"),
    ];
    for (path, token, body, want, mention) in cases {
        let method = if path == "/v1/incidents" {
            "GET"
        } else {
            "POST"
        };
        let b = (method == "POST").then_some(body.as_slice());
        let (code, text) = request(&d, method, path, token, b, &[]);
        assert_eq!(code, want, "{path} -> {text}");
        assert!(
            text.to_lowercase().contains(&mention.to_lowercase()),
            "{path}: {want} should mention {mention:?}: {text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        assert_eq!(v["error"]["status"], want);
    }
    let (code, _) = request(&d, "GET", "/nope", None, None, &[]);
    assert_eq!(code, 404);
    assert_eq!(request(&d, "GET", "/healthz", None, None, &[]).0, 200);
    assert_eq!(request(&d, "GET", "/readyz", None, None, &[]).0, 200);
    let (code, metrics) = request(&d, "GET", "/metrics", None, None, &[]);
    assert_eq!(code, 200);
    for want in [
        "squad_alerts_rejected_total{source=\"alertmanager\",reason=\"auth\"}",
        "squad_alerts_rejected_total{source=\"alertmanager\",reason=\"invalid\"}",
        "squad_alerts_rejected_total{source=\"generic\",reason=\"too_large\"}",
        "squad_incidents{state=\"open\"}",
        // Every adapter is an actor whose queue and restarts show.
        "squad_adapter_queue_depth{adapter=\"cluster\"} 0",
        "squad_adapter_in_flight{adapter=\"forge\"}",
        "squad_adapter_calls_total{adapter=\"diagnoser:native\"}",
        "squad_adapter_restarts_total{adapter=\"app-repo\"} 0",
    ] {
        assert!(metrics.contains(want), "missing {want} in\n{metrics}");
    }
}

#[test]
fn pagerduty_signatures_are_checked_with_every_configured_secret() {
    let d = start("[pagerduty]\nsecrets = [\"old-secret\", \"new-secret\"]\n");
    let body = std::fs::read("protocols/tests/fixtures/pagerduty/incident-triggered.json").unwrap();
    let sign_body = |secret: &str, body: &[u8]| {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("v1={}", hex::encode(mac.finalize().into_bytes()))
    };
    let sign = |secret: &str| sign_body(secret, &body);
    let pd = |sig: Option<&str>, b: &[u8]| {
        let headers: Vec<(&str, &str)> = sig
            .map(|s| ("X-PagerDuty-Signature", s))
            .into_iter()
            .collect();
        request(&d, "POST", "/v1/alerts/pagerduty", None, Some(b), &headers)
    };
    let (code, text) = pd(Some(&sign("new-secret")), &body);
    assert_eq!(code, 202, "{text}");
    let both = format!("{},{}", sign("unknown"), sign("old-secret"));
    assert_eq!(pd(Some(&both), &body).0, 202);
    let (code, text) = pd(Some(&sign("wrong")), &body);
    assert_eq!(code, 403, "{text}");
    let (code, text) = pd(None, &body);
    assert_eq!(code, 401, "{text}");
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(pd(Some(&sign("new-secret")), &tampered).0, 403);
    // An acknowledgement is valid and changes nothing.
    let ack =
        std::fs::read("protocols/tests/fixtures/pagerduty/incident-acknowledged.json").unwrap();
    let sig = sign_body("new-secret", &ack);
    let (code, text) = request(
        &d,
        "POST",
        "/v1/alerts/pagerduty",
        None,
        Some(&ack),
        &[("X-PagerDuty-Signature", &sig)],
    );
    assert_eq!(code, 202, "{text}");
    assert!(text.contains("ignored"), "{text}");
}

#[test]
fn repeats_group_into_one_incident_and_resolution_is_recorded() {
    let d = start("");
    let a = (
        "KubernetesPodOOMKilled",
        "production",
        "payment-service-7d4b9c-xk2p",
    );
    let b = (
        "KubernetesPodOOMKilled",
        "production",
        "payment-service-7d4b9c-m2v7q",
    );
    assert_eq!(post(&d, "/v1/alerts", &generic(&[a])).0, 202);
    // The same workload through another pod, and repeats: one incident.
    assert_eq!(post(&d, "/v1/alerts", &generic(&[b, a, a])).0, 202);
    let list = wait_for(&d, "three repeats counted", |l| {
        l.len() == 1 && l[0]["repeats"].as_u64() == Some(3)
    });
    assert_eq!(list[0]["workload"], "Deployment production/payment-service");
    // Another alert on another workload: a second incident.
    let other = ("KubePodCrashLooping", "staging", "orders-api-5f6d8b-q7wzt");
    assert_eq!(post(&d, "/v1/alerts", &generic(&[other])).0, 202);
    wait_for(&d, "a second incident", |l| l.len() == 2);
    // The sender resolves the first alert.
    let resolved = serde_json::to_vec(&json!({"alerts": [{"name": a.0, "status": "resolved",
        "labels": {"namespace": a.1, "pod": a.2, "severity": "critical"}}]}))
    .unwrap();
    assert_eq!(post(&d, "/v1/alerts", &resolved).0, 202);
    wait_for(&d, "the resolution recorded", |l| {
        l.iter().any(|i| i["alert_resolved"] == true)
    });
}

#[test]
fn a_storm_opens_one_incident_per_workload() {
    let d = start("");
    // 5,000 alerts over 5 workloads (3 pods each), posted 250 per request.
    let workloads = ["checkout", "payments", "search", "catalog", "ledger"];
    let mut all = Vec::new();
    for i in 0..5000 {
        let w = workloads[i % workloads.len()];
        all.push((
            "KubernetesPodOOMKilled",
            "production",
            format!("{w}-5d8c7b9f4-p{}", i % 3),
        ));
    }
    for chunk in all.chunks(250) {
        let refs: Vec<(&str, &str, &str)> =
            chunk.iter().map(|(a, b, c)| (*a, *b, c.as_str())).collect();
        let (code, text) = post(&d, "/v1/alerts", &generic(&refs));
        assert_eq!(code, 202, "{text}");
    }
    let list = wait_for(&d, "every alert processed", |l| {
        l.len() == 5
            && l.iter()
                .map(|i| i["repeats"].as_u64().unwrap_or(0))
                .sum::<u64>()
                == 4995
    });
    let mut names: Vec<String> = list
        .iter()
        .map(|i| i["workload"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        workloads
            .iter()
            .map(|w| format!("Deployment production/{w}"))
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
}

#[test]
fn an_answered_alert_survives_kill_9_and_the_restart_picks_it_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    let (mut child, url) = spawn(&config, &[]);
    let mut d = Daemon {
        child: None,
        url,
        config: config.clone(),
        _dir: None,
    };
    // Twenty alerts for twenty workloads; kill -9 the moment the answer arrives.
    let alerts: Vec<(String, String)> = (0..20)
        .map(|i| ("production".to_owned(), format!("svc{i}-6c9f8d7b5-x{i}")))
        .collect();
    let refs: Vec<(&str, &str, &str)> = alerts
        .iter()
        .map(|(ns, pod)| ("KubernetesPodOOMKilled", ns.as_str(), pod.as_str()))
        .collect();
    let (code, text) = post(&d, "/v1/alerts", &generic(&refs));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(code, 202, "{text}");
    let (child, url) = spawn(&config, &[]);
    d.child = Some(child);
    d.url = url;
    let list = wait_for(&d, "twenty incidents after the restart", |l| l.len() == 20);
    assert_eq!(list.len(), 20);
    let _ = d.config;
}

#[test]
fn sigterm_stops_intake_and_exits_cleanly_then_a_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    let (child, url) = spawn(&config, &[]);
    let mut d = Daemon {
        child: Some(child),
        url,
        config: config.clone(),
        _dir: None,
    };
    let body = std::fs::read(FIXTURE).unwrap();
    assert_eq!(post(&d, "/v1/alerts/alertmanager", &body).0, 202);
    let before = wait_for(&d, "the incident", |l| l.len() == 1);
    let pid = d.child.as_ref().unwrap().id();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = d.child.take().unwrap();
    let mut exited = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("squad serve did not exit within 20 s of SIGTERM")
    });
    assert!(status.success(), "exit status {status}");
    // Restart with the same store: the incident is there and moves on to its PR.
    let (child, url) = spawn(&config, &[]);
    d.child = Some(child);
    d.url = url;
    let after = wait_for(&d, "the PR after the restart", |l| {
        l.len() == 1 && l[0]["pr"].is_object()
    });
    assert_eq!(after[0]["id"], before[0]["id"]);
}

#[test]
fn config_check_names_the_bad_field_and_env_overrides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = \"not an address\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["config", "check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.listen"), "{err}");
    std::fs::write(&bad, "[server]\nlisten = \"127.0.0.1:1\"\nlsten = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["config", "check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2) && err.contains("lsten"),
        "{err}"
    );
    let good = config_in(dir.path(), "");
    let out = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["config", "check", "--config"])
        .arg(&good)
        .env("SQUAD_PAGERDUTY_SECRETS", "a-secret,another")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("pagerduty.secrets      2 secret(s)"),
        "{text}"
    );
    // No token at all: serve refuses to start, naming the key.
    let none = dir.path().join("none.toml");
    std::fs::write(
        &none,
        format!(
            "[backend]\ndata_dir = \"{}\"\n",
            dir.path().join("d").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["serve", "--config"])
        .arg(&none)
        .env_remove("SQUAD_SERVER_TOKENS")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2) && err.contains("server.auth.tokens"),
        "{err}"
    );
}

#[test]
fn the_example_configuration_is_valid() {
    let out = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["config", "check", "--config", "squad.example.toml"])
        .env_remove("SQUAD_SERVER_TOKENS")
        .env_remove("SQUAD_PAGERDUTY_SECRETS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_slow_request_times_out_with_408() {
    // A 1 s request timeout, and a body sent at 200 bytes/s.
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), "request_timeout_seconds = 1\n", "");
    let (child, url) = spawn(&config, &[]);
    let d = Daemon {
        child: Some(child),
        url,
        config,
        _dir: Some(dir),
    };
    let body = std::fs::read(FIXTURE).unwrap();
    let out = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "--limit-rate",
            "200",
            "-X",
            "POST",
        ])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{FIXTURE}"))
        .arg(format!("{}/v1/alerts/alertmanager", d.url))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.len() > 400,
        "the fixture must take over a second at 200 B/s"
    );
    assert!(text.trim_end().ends_with("408"), "{text}");
}
