//! The real HolmesGPT (0.45.0, installed by `scripts/tools`) as squad's diagnoser, end to end:
//! `holmes ask` runs as a subprocess against the simulated cluster served over the Kubernetes API
//! (its `bash` tool runs the real kubectl there) and a scripted OpenAI-compatible model on
//! loopback, which asks for `kubectl get pods -n production` and then answers from what the tool
//! returned, through squad's redacting proxy. squad's diagnosis must come from HolmesGPT, carry the tool's evidence, be
//! cross-checked against squad's own reading, and the crew must complete the incident from it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use squad::simulation::{self, SimulationOptions};
use squad::summary::Summary;
use squad_config::{DiagnoserKind, HolmesSettings, Settings};
use squad_runtime::Faults;
use squad_sim::Scenario;

fn cache() -> PathBuf {
    std::env::var_os("SQUAD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".cache/squad"))
}

/// The holmes CLI and kubectl, or a skip (a failure under CI=true).
fn tools() -> Option<(PathBuf, PathBuf)> {
    let holmes = std::env::var_os("SQUAD_HOLMES")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("holmes-venv/bin/holmes"));
    let kubectl = std::env::var_os("SQUAD_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("venv/bin/kubectl"));
    if holmes.is_file() && kubectl.is_file() {
        return Some((holmes, kubectl));
    }
    let why = format!(
        "no HolmesGPT at {} or no kubectl at {} (run scripts/tools)",
        holmes.display(),
        kubectl.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}; CI=true, so this is a failure"
    );
    eprintln!("SKIPPED {why}");
    None
}

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// The scripted model: the first turn calls HolmesGPT's `bash` tool with kubectl; once the tool's
/// output is in the conversation, it answers from it, ending with squad's JSON block.
async fn model(
    axum::extract::State(log): axum::extract::State<Arc<Mutex<Vec<Value>>>>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    log.lock().unwrap().push(body.clone());
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let tool_output = messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let prompt = (body.to_string().len() / 4) as u64;
    let message = if tool_output.is_empty() {
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "bash", "arguments": json!({
                "command": "kubectl get pods -n production",
                "suggested_prefixes": ["kubectl get"],
                "timeout": null
            }).to_string()}}]})
    } else {
        // Answer only from what kubectl showed: the pods and their restarts.
        let pods: Vec<&str> = tool_output
            .split_whitespace()
            .filter(|w| w.starts_with("payment-service-"))
            .collect();
        let answer = format!(
            "kubectl shows {} in production, restarting: {}. The container is OOMKilled under load; its 512Mi limit is below what it needs.\n\n```json\n{}\n```",
            if pods.is_empty() {
                "no payment-service pods".to_string()
            } else {
                format!("{} payment-service pod(s)", pods.len())
            },
            pods.join(", "),
            json!({"root_cause": "memory_under_provisioned",
                   "summary": format!("payment-api is OOMKilled: its 512Mi limit is too low ({} pods restarting)", pods.len()),
                   "confidence": 0.8,
                   "recommendations": ["raise the memory limit above the observed peak", "add an HPA on memory"],
                   "memory_limit": "512Mi", "memory_peak": null})
        );
        json!({"role": "assistant", "content": answer})
    };
    let finish = if tool_output.is_empty() {
        "tool_calls"
    } else {
        "stop"
    };
    axum::Json(json!({
        "id": "chatcmpl-holmes-e2e", "object": "chat.completion", "created": 0, "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": 60, "total_tokens": prompt + 60}
    }))
}

fn run(settings: Settings, out: &Path) -> Summary {
    paused()
        .block_on(simulation::run(SimulationOptions {
            scenario: Scenario::embedded("oomkilled").unwrap(),
            out: out.to_path_buf(),
            approve: false,
            dry_run: false,
            fresh: false,
            settings,
            faults: Faults::none(),
            abort_after_events: None,
            serve: Default::default(),
            minds: Default::default(),
            github: None,
        }))
        .unwrap()
        .summary
}

#[test]
fn holmesgpt_diagnoses_the_simulated_incident_through_kubectl_and_the_crew_acts_on_it() {
    let Some((holmes, kubectl)) = tools() else {
        return;
    };
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let url = servers.block_on({
        let log = log.clone();
        async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .unwrap();
            let addr = listener.local_addr().unwrap();
            let app = axum::Router::new()
                .route("/v1/chat/completions", axum::routing::post(model))
                .with_state(log);
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            format!("http://{addr}/v1")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // Only the bash toolset: the prompt stays the same whatever CLIs this machine has.
    let config = dir.path().join("holmes.yaml");
    let off = [
        "kubernetes/core",
        "kubernetes/logs",
        "kubernetes/kube-prometheus-stack",
        "kubernetes/live-metrics",
        "core_investigation",
        "internet",
        "connectivity_check",
        "skills",
        "docker/core",
        "helm/core",
    ];
    // No api_base here: squad points HolmesGPT at its redacting proxy, which forwards to the model.
    let mut yaml = "api_key: dummy\nmax_steps: 5\ntoolsets:\n".to_string();
    for t in off {
        yaml.push_str(&format!("  {t}: {{enabled: false}}\n"));
    }
    yaml.push_str("  bash: {enabled: true}\n");
    std::fs::write(&config, yaml).unwrap();
    let path = format!(
        "{}:{}",
        kubectl.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut settings = Settings::default();
    settings.diagnoser.kind = DiagnoserKind::Holmes;
    settings.holmes = HolmesSettings {
        command: holmes.display().to_string(),
        model: Some("openai/test-model".into()),
        config: Some(config.display().to_string()),
        env: [
            ("HOME".to_string(), home.display().to_string()),
            ("PATH".to_string(), path),
        ]
        .into(),
        timeout_seconds: 180,
        model_api_base: Some(url.clone()),
        ..HolmesSettings::default()
    };
    settings.validate("test").unwrap();

    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let s = run(settings, &dir.path().join("holmes-run"));
    let holmes_wall = started.elapsed();
    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let native = run(Settings::default(), &dir.path().join("native-run"));
    let native_wall = started.elapsed();

    let d = s.diagnosis.as_ref().unwrap();
    assert_eq!(d.source, "holmesgpt", "fallback: {:?}", d.fallback_reason);
    assert_eq!(d.root_cause, "memory_under_provisioned");
    // The evidence is HolmesGPT's kubectl run against the simulated cluster.
    let kubectl_evidence = d
        .evidence
        .iter()
        .find(|e| e.starts_with("holmesgpt bash: kubectl get pods -n production"))
        .unwrap_or_else(|| panic!("no kubectl evidence: {:#?}", d.evidence));
    assert!(
        kubectl_evidence.contains("payment-service-7d4b9c-xk2p"),
        "{kubectl_evidence}"
    );
    assert!(d.summary.contains("2 pods restarting"), "{}", d.summary);
    // Cross-checked against squad's reading, and written on the incident issue.
    assert!(
        d.cross_check
            .iter()
            .any(|c| c == "agrees: memory limit 512Mi (squad reads 512Mi)"),
        "{:?}",
        d.cross_check
    );
    let issue = &s.issues[0].body;
    assert!(issue.contains("## Diagnosis (HolmesGPT"), "{issue}");
    assert!(
        issue.contains("### Cross-check against squad's own reading"),
        "{issue}"
    );
    // HolmesGPT asked the model twice; its usage is on the diagnosis.
    let bodies = log.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "HolmesGPT's model calls");
    let user = bodies[0]["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.contains("payment-service-7d4b9c-xk2p") && user.contains("root_cause is one of"),
        "{user}"
    );
    let usage = d.usage.unwrap();
    assert_eq!(usage.completion_tokens, 120);
    assert!(usage.prompt_tokens > 1000);
    // The crew completes the incident from it: the PR sized from squad's own measurements.
    assert_eq!(s.state, "awaiting_approval", "{:#?}", s.timeline);
    assert!(
        s.pull_requests[0].body.contains("**1.5Gi**"),
        "{}",
        s.pull_requests[0].body
    );
    assert_eq!(native.diagnosis.as_ref().unwrap().source, "native");
    println!(
        "HolmesGPT-backed incident to the PR: {:.1} s; native: {:.1} s; HolmesGPT's model usage: {} calls, {} prompt + {} completion tokens",
        holmes_wall.as_secs_f64(),
        native_wall.as_secs_f64(),
        usage.calls,
        usage.prompt_tokens,
        usage.completion_tokens
    );
}
