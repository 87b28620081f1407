//! The daemon against the backends a user configures: a Kubernetes cluster through the kube
//! adapter, a model server, GitHub (its signed webhooks and its REST API), and a PostgreSQL
//! store.

use super::*;

#[test]
fn the_kubernetes_backend_reads_a_cluster_through_the_kube_adapter() {
    // A cluster served on its own (as a real one would be), and the daemon pointed at it.
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("cluster");
    let mut cluster = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["sim-cluster", "serve", "oomkilled", "--out"])
        .arg(&sim)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(cluster.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 && !line.contains("is served at") {
        line.clear();
    }
    std::thread::spawn(move || for _ in out.lines() {});
    let kubeconfig = sim.join("kubeconfig");
    let server = std::fs::read_to_string(&kubeconfig)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: ").map(str::to_owned))
        .unwrap();
    let extra = format!(
        "[kubernetes]\nkubeconfig = \"{}\"\n[prometheus]\nurl = \"{server}/prometheus\"\n",
        kubeconfig.display()
    );
    let config = config_in(dir.path(), &extra).to_string_lossy().into_owned();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[backend]\n", "[backend]\nkind = \"kubernetes\"\n");
    std::fs::write(&config, text).unwrap();
    let (child, url) = spawn(Path::new(&config), &[]);
    let d = Daemon {
        child: Some(child),
        url,
        config: config.into(),
        _dir: None,
    };
    let body = std::fs::read(FIXTURE).unwrap();
    assert_eq!(post(&d, "/v1/alerts/alertmanager", &body).0, 202);
    let list = wait_for(&d, "the PR from the kubernetes backend", |l| {
        l.len() == 1 && l[0]["pr"].is_object()
    });
    assert_eq!(list[0]["root_cause"], "memory_under_provisioned");
    // A restart opens the repositories the first start seeded (no second seed commit).
    let config = d.config.clone();
    drop(d);
    let (child, url) = spawn(&config, &[]);
    let d = Daemon {
        child: Some(child),
        url,
        config,
        _dir: None,
    };
    assert_eq!(incidents(&d).len(), 1);
    let commits = Command::new("git")
        .arg("-C")
        .arg(dir.path().join("data").join("app"))
        .args(["rev-list", "--count", "HEAD"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&commits.stdout).trim(), "1");
    drop(d);
    let _ = cluster.kill();
    let _ = cluster.wait();
}

/// A model server that answers everything with prose: every member's answer is rejected, the
/// deterministic skills decide, and the calls are on the incident and in /metrics.
#[test]
fn a_configured_model_is_called_by_the_crew_and_shows_in_metrics() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let log = received.clone();
    let url = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push(body);
                    axum::Json(json!({
                        "id": "x", "object": "chat.completion", "created": 0, "model": "nonsense",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": "Have you tried turning it off and on again?"}}],
                        "usage": {"prompt_tokens": 1000, "completion_tokens": 12, "total_tokens": 1012}
                    }))
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/v1")
    });
    let d = start(&format!(
        "[llm.profiles.local]\nbase_url = \"{url}\"\nmodel = \"nonsense\"\ntool_mode = \"json_schema\"\nprompt_usd_per_million = 2.0\n"
    ));
    let (code, text) = post(
        &d,
        "/v1/alerts/alertmanager",
        &std::fs::read(FIXTURE).unwrap(),
    );
    assert_eq!(code, 202, "{text}");
    let list = wait_for(&d, "the remediation PR", |l| {
        l.len() == 1 && l[0]["pr"].is_object() && l[0]["state"] == "awaiting_approval"
    });
    let id = list[0]["id"].as_str().unwrap();
    let (_, text) = request(
        &d,
        "GET",
        &format!("/v1/incidents/{id}"),
        Some(TOKEN),
        None,
        &[],
    );
    let inc: Value = serde_json::from_str(&text).unwrap();
    let timeline = inc["timeline"].to_string();
    assert!(
        timeline.contains("B'Elanna's model local/nonsense was not used"),
        "{timeline}"
    );
    assert!(timeline.contains("not the required JSON"), "{timeline}");
    // Each member asked, was told why, asked again: two calls, one fallback.
    let bodies = received.lock().unwrap().clone();
    assert!(
        bodies
            .iter()
            .any(|b| b.to_string().contains("That answer was rejected"))
    );
    let (code, metrics) = request(&d, "GET", "/metrics", None, None, &[]);
    assert_eq!(code, 200);
    for want in [
        "squad_llm_calls_total{member=\"belanna\",model=\"local/nonsense\"} 2",
        "squad_llm_prompt_tokens_total{member=\"belanna\",model=\"local/nonsense\"} 2000",
        "squad_llm_deliberations_total{member=\"belanna\",outcome=\"fallback\"} 1",
        "squad_llm_estimated_cost_usd_total{member=\"belanna\",model=\"local/nonsense\"} 0.004",
    ] {
        assert!(metrics.contains(want), "missing {want} in\n{metrics}");
    }
}

/// GitHub webhooks: a signed delivery about the incident's PR lands on its timeline and wakes
/// Ralph; a bad or missing signature is refused; other repositories and events are ignored.
#[test]
fn signed_github_webhooks_about_the_pr_reach_the_incident() {
    use hmac::{KeyInit, Mac};
    let d = start("[github]\nwebhook_secrets = [\"rotated-out\", \"whsec-current\"]\n");
    let (code, text) = post(
        &d,
        "/v1/alerts/alertmanager",
        &std::fs::read(FIXTURE).unwrap(),
    );
    assert_eq!(code, 202, "{text}");
    let list = wait_for(&d, "the remediation PR", |l| {
        l.len() == 1 && l[0]["pr"].is_object() && l[0]["state"] == "awaiting_approval"
    });
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let pr = list[0]["pr"]["number"].as_u64().unwrap();
    // GitHub's own example delivery, about this repository and this PR.
    let mut payload: Value = serde_json::from_str(
        &std::fs::read_to_string(
            "tests/fixtures/github-webhooks/pull_request_review.submitted.json",
        )
        .unwrap(),
    )
    .unwrap();
    payload["repository"]["full_name"] = json!("acme/production-gitops");
    payload["pull_request"]["number"] = json!(pr);
    payload["review"]["state"] = json!("approved");
    let body = serde_json::to_vec(&payload).unwrap();
    let sign = |secret: &str, body: &[u8]| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let deliver = |event: &str, sig: Option<String>, body: &[u8]| {
        let mut headers = vec![("X-GitHub-Event", event.to_string())];
        if let Some(s) = sig {
            headers.push(("X-Hub-Signature-256", s));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request(
            &d,
            "POST",
            "/v1/webhooks/github",
            None,
            Some(body),
            &headers,
        )
    };
    let (code, text) = deliver(
        "pull_request_review",
        Some(sign("whsec-current", &body)),
        &body,
    );
    assert_eq!(code, 202, "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reply["incidents"], json!([id]));
    assert_eq!(
        reply["event"],
        format!("GitHub: review on PR #{pr}: approved by Codertocat")
    );
    let (_, text) = request(
        &d,
        "GET",
        &format!("/v1/incidents/{id}"),
        Some(TOKEN),
        None,
        &[],
    );
    assert!(
        text.contains(&format!(
            "GitHub: review on PR #{pr}: approved by Codertocat"
        )),
        "{text}"
    );
    // Refused: a wrong secret, a tampered body, no signature.
    let (code, text) = deliver("pull_request_review", Some(sign("guess", &body)), &body);
    assert_eq!(code, 403, "{text}");
    assert!(
        text.contains("matches none of the 2 configured secret(s)"),
        "{text}"
    );
    let mut tampered = body.clone();
    tampered[5] ^= 1;
    let (code, _) = deliver(
        "pull_request_review",
        Some(sign("whsec-current", &body)),
        &tampered,
    );
    assert_eq!(code, 403);
    let (code, text) = deliver("pull_request_review", None, &body);
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("X-Hub-Signature-256"), "{text}");
    // Ignored: another repository, an event squad does not follow; answered: ping.
    payload["repository"]["full_name"] = json!("someone/else");
    let other = serde_json::to_vec(&payload).unwrap();
    let (code, text) = deliver(
        "pull_request_review",
        Some(sign("whsec-current", &other)),
        &other,
    );
    assert_eq!(code, 202);
    assert!(
        text.contains("is not squad's repository (acme/production-gitops)"),
        "{text}"
    );
    let (code, text) = deliver("push", Some(sign("whsec-current", b"{}")), b"{}");
    assert_eq!(
        (code, text.contains("does not follow push")),
        (202, true),
        "{text}"
    );
    let (code, _) = deliver("ping", Some(sign("whsec-current", b"{}")), b"{}");
    assert_eq!(code, 200);
    // A followed event missing a field: 400 naming it.
    let bad = br#"{"action":"submitted","repository":{"full_name":"acme/production-gitops"},"sender":{"login":"x"},"pull_request":{"number":2}}"#;
    let (code, text) = deliver("pull_request_review", Some(sign("whsec-current", bad)), bad);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("review.state"), "{text}");
}

/// `[github] repo`: the daemon files the incident and opens the PR on GitHub (here a simulated
/// GitHub on loopback standing in for api.github.com), the token from the variable `token_env`.
#[test]
fn with_a_github_repo_configured_the_daemon_works_on_github() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let scenario = squad_sim::Scenario::embedded("oomkilled").unwrap();
    let repo = squad_sim::seed_gitops_repo(&scenario, &dir.path().join("remote")).unwrap();
    let remote = Arc::new(
        squad_sim::SimForge::new(
            "acme/gitops",
            repo,
            None,
            squad_runtime::Clock::starting_at(chrono::Utc::now()),
        )
        .unwrap(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let api = rt
        .block_on(squad_sim::github_api::SimGitHubApi::start(
            "acme/gitops",
            remote.clone(),
            "ghp_daemon_token",
            chrono::Utc::now,
        ))
        .unwrap();
    let config = config_in(
        dir.path(),
        &format!(
            "[github]\nurl = \"{}\"\nrepo = \"acme/gitops\"\ntoken_env = \"SQUAD_TEST_GITHUB_TOKEN\"\n",
            api.url()
        ),
    );
    // Without the token: a clear refusal to start, naming the variable.
    let out = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("SQUAD_TEST_GITHUB_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set SQUAD_TEST_GITHUB_TOKEN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (child, url) = spawn(&config, &[("SQUAD_TEST_GITHUB_TOKEN", "ghp_daemon_token")]);
    let d = Daemon {
        child: Some(child),
        url,
        config,
        _dir: None,
    };
    let (code, text) = post(
        &d,
        "/v1/alerts/alertmanager",
        &std::fs::read(FIXTURE).unwrap(),
    );
    assert_eq!(code, 202, "{text}");
    wait_for(&d, "the remediation PR", |l| {
        l.len() == 1 && l[0]["pr"].is_object() && l[0]["state"] == "awaiting_approval"
    });
    let state = remote.snapshot();
    assert_eq!(state.issues.len(), 3, "{:#?}", state.issues);
    assert!(
        state.issues[0]
            .labels
            .contains(&"needs-remediation".to_string())
    );
    assert_eq!(state.pulls.len(), 1);
    assert!(
        api.requests()
            .iter()
            .all(|r| r.path.starts_with("/repos/acme/gitops"))
    );
    drop(d);
}

#[test]
fn on_a_postgres_store_an_answered_alert_survives_kill_9() {
    if !squad_testkit::postgres::available_or_skip("serve on postgres").unwrap() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pg = rt
        .block_on(squad_testkit::postgres::RealPostgres::start())
        .unwrap();
    let url = pg.create_database("serve").unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The URL from the environment, as a password would come.
    let config = config_in(dir.path(), "");
    let env = [("SQUAD_STORE_URL", url.as_str())];
    let check = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["config", "check", "--config"])
        .arg(&config)
        .env("SQUAD_STORE_URL", &url)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(said.contains("PostgreSQL at postgres://"), "{said}");
    let (mut child, daemon_url) = spawn(&config, &env);
    let mut d = Daemon {
        child: None,
        url: daemon_url,
        config: config.clone(),
        _dir: None,
    };
    let alerts: Vec<(String, String)> = (0..10)
        .map(|i| ("production".to_owned(), format!("api{i}-6c9f8d7b5-x{i}")))
        .collect();
    let refs: Vec<(&str, &str, &str)> = alerts
        .iter()
        .map(|(ns, pod)| ("KubernetesPodOOMKilled", ns.as_str(), pod.as_str()))
        .collect();
    let (code, text) = post(&d, "/v1/alerts", &generic(&refs));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(code, 202, "{text}");
    let (child, daemon_url) = spawn(&config, &env);
    d.child = Some(child);
    d.url = daemon_url;
    let list = wait_for(&d, "ten incidents after the restart", |l| l.len() == 10);
    assert_eq!(list.len(), 10);
    // Nothing went to an embedded store.
    assert!(!dir.path().join("data/incidents.redb").exists());
    let _ = d.config;
}
