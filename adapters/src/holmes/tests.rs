#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use squad_config::{HolmesSettings, HolmesTransport};
use squad_protocols::diagnosis::MemorySignals;
use squad_protocols::{Alert, Diagnosis, DiagnosisSource, RootCause, WorkloadRef};
use squad_runtime::ports::{Diagnoser, DiagnosisRequest, PortResult};

use super::*;

const ASK: &str = include_str!("../../../tests/fixtures/holmesgpt/ask-json-output-0.45.0.json");
const INVESTIGATE: &str = include_str!(
    "../../../tests/fixtures/holmesgpt/investigate-alertmanager-json-output-0.45.0.json"
);

const BLOCK: &str = "The container payment-api is OOMKilled: its working set reaches about 1.24Gi against a 512Mi limit.\n\n```json\n{\"root_cause\": \"memory_under_provisioned\", \"summary\": \"payment-api needs more memory than its 512Mi limit under the checkout surge\", \"confidence\": 0.85, \"recommendations\": [\"raise the memory limit to 1.5Gi\"], \"memory_limit\": \"512Mi\", \"memory_peak\": \"1.24Gi\"}\n```";

/// The ask fixture with an answer that follows squad's instructions.
fn ask_with(result: &str) -> String {
    let mut v: Value = serde_json::from_str(ASK).unwrap();
    v["result"] = json!(result);
    v.to_string()
}

#[test]
fn the_ask_fixture_parses_tools_usage_and_cost_and_says_what_is_missing() {
    let run = parse_ask_output(ASK).unwrap();
    assert_eq!(run.tools.len(), 1);
    let t = &run.tools[0];
    assert_eq!(
        (t.tool.as_str(), t.description.as_str(), t.ok),
        ("bash", "kubectl get pods -n shop", false)
    );
    assert!(
        t.excerpt.contains("returned non-zero exit status 1"),
        "{t:?}"
    );
    assert_eq!(
        run.usage,
        squad_protocols::Usage {
            calls: 2,
            prompt_tokens: 200,
            completion_tokens: 40
        }
    );
    assert_eq!(run.cost_usd, Some(0.0009));
    assert!(run.text.starts_with("FAKE-ANSWER"));
    // The fixture's model did not write squad's JSON block: a clear error, not a guess.
    let e = run.answer().unwrap_err();
    assert!(e.contains("no JSON block"), "{e}");
    let a = parse_ask_output(&ask_with(BLOCK))
        .unwrap()
        .answer()
        .unwrap();
    assert_eq!(
        a.structured.root_cause,
        RootCause::from_static("memory_under_provisioned")
    );
    assert_eq!(a.structured.confidence, 0.85);
    assert_eq!(a.structured.memory_limit.as_deref(), Some("512Mi"));
    assert_eq!(
        a.structured.recommendations,
        vec!["raise the memory limit to 1.5Gi"]
    );
}

#[test]
fn the_investigate_fixture_picks_the_alert_it_was_asked_about() {
    let alert = Alert::firing("KubePodCrashLooping")
        .with_label("namespace", "shop")
        .with_label("pod", "api-7d9");
    let run = parse_investigate_output(INVESTIGATE, &alert).unwrap();
    assert_eq!(run.usage.prompt_tokens, 100);
    assert_eq!(run.cost_usd, Some(0.00045));
    assert!(run.tools.is_empty());
    // One result that is not this alert: still the only one HolmesGPT gave.
    let other = Alert::firing("Other").with_label("pod", "x");
    assert!(parse_investigate_output(INVESTIGATE, &other).is_ok());
    let two = format!(
        "[{0},{0}]",
        &INVESTIGATE.trim()[1..INVESTIGATE.trim().len() - 1]
    );
    let e = parse_investigate_output(&two, &other).unwrap_err();
    assert!(
        e.contains("investigated 2 alert(s), none of them Other"),
        "{e}"
    );
}

#[test]
fn malformed_outputs_are_errors_that_name_the_field() {
    for (text, want) in [
        ("not json", "not JSON"),
        ("[1, 2]", "not the JSON object"),
        ("{\"tool_calls\": []}", "no `result`"),
        (
            "{\"result\": 42, \"tool_calls\": []}",
            "`result` is a number",
        ),
        (
            "{\"result\": \"\", \"tool_calls\": []}",
            "`result` is empty",
        ),
        ("{\"result\": \"x\"}", "no `tool_calls`"),
        (
            "{\"result\": \"x\", \"tool_calls\": [{\"tool_name\": 3}]}",
            "unexpected shape",
        ),
    ] {
        let e = parse_ask_output(text).unwrap_err();
        assert!(e.contains(want), "{text}: {e}");
    }
    for (block, want) in [
        ("{\"summary\": \"s\"}", "no `root_cause`"),
        (
            "{\"root_cause\": \"gremlins\", \"summary\": \"s\"}",
            "the JSON block's root_cause \"gremlins\" is not one of ",
        ),
        ("{\"root_cause\": \"memory_leak\"}", "no `summary`"),
        (
            "{\"root_cause\": \"memory_leak\", \"summary\": \"s\", \"confidence\": 7}",
            "confidence 7 is not a number from 0 to 1",
        ),
        ("{\"root_cause\": ", "does not parse"),
    ] {
        let e = structured_from_text(&format!("text\n```json\n{block}\n```")).unwrap_err();
        assert!(e.contains(want), "{block}: {e}");
    }
    // A bare object at the end (no fence), with braces inside strings, is found.
    let s = structured_from_text(
        "I looked {carefully}. {\"root_cause\": \"crash_loop\", \"summary\": \"exits with {code} 1\"}",
    )
    .unwrap();
    assert_eq!(s.root_cause, RootCause::from_static("crash_loop"));
    assert_eq!(s.confidence, 0.5);
}

struct Native(Option<Diagnosis>);

#[async_trait]
impl Diagnoser for Native {
    fn name(&self) -> &'static str {
        "native"
    }
    async fn diagnose(&self, _: &DiagnosisRequest) -> PortResult<Diagnosis> {
        self.0
            .clone()
            .ok_or_else(|| squad_runtime::ports::PortError::failed("native", "no cluster"))
    }
}

fn native_oom() -> Diagnosis {
    let mut d = Diagnosis::new(
        DiagnosisSource::Native,
        RootCause::from_static("memory_under_provisioned"),
        "payment-api is OOMKilled",
    );
    d.signals.memory = Some(MemorySignals {
        container: "payment-api".into(),
        limit: Some("512Mi".parse().unwrap()),
        request: Some("256Mi".parse().unwrap()),
        peak_24h: "1270Mi".parse().unwrap(),
        median_24h: "454Mi".parse().unwrap(),
        trend_mib_per_hour: 0.2,
        leak_suspected: false,
        held_at_limit: false,
        demand_estimate: None,
        mib_per_rps: 0.0,
    });
    d
}

fn request() -> DiagnosisRequest {
    DiagnosisRequest {
        alert: Alert::firing("KubernetesPodOOMKilled")
            .with_label("namespace", "production")
            .with_label("pod", "payment-service-7d4b9c-xk2p")
            .with_label("container", "payment-api")
            .with_annotation(
                "summary",
                "payment-api was OOMKilled (DATABASE_URL=postgres://app:hunter2-pw@db:5432/pay)",
            ),
        workload: WorkloadRef {
            kind: "Deployment".into(),
            namespace: "production".into(),
            name: "payment-service".into(),
        },
        memory: vec!["2026-11-01 oomkilled — raised the limit to 512Mi (ticket-483920)".into()],
    }
}

/// A fake `holmes` CLI: `version` prints a version; otherwise it runs `body` with `$out` set to
/// the `--json-output-file` path and its arguments saved in `args.txt`.
fn fake_cli(dir: &Path, body: &str) -> String {
    let path = dir.join("holmes");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = version ]; then echo 'HolmesGPT 9.9.9-fake'; exit 0; fi\nprintf '%s\\n' \"$@\" > {args}\nout=''\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --json-output-file ]; then out=\"$2\"; fi; shift; done\n{body}\n",
        args = dir.join("args.txt").display()
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn cli(command: String, timeout: u64) -> HolmesSettings {
    HolmesSettings {
        command,
        model: Some("openai/test".into()),
        timeout_seconds: timeout,
        env: [(
            "OPENAI_API_BASE".to_string(),
            "http://127.0.0.1:9/v1".to_string(),
        )]
        .into(),
        ..HolmesSettings::default()
    }
}

fn diagnoser(settings: HolmesSettings, native: Option<Diagnosis>) -> HolmesDiagnoser {
    HolmesDiagnoser::new(
        settings,
        Arc::new(Native(native)),
        Some("/tmp/squad-test-kubeconfig".into()),
    )
    .with_redact_patterns(vec![r"ticket-(?P<secret>\d{6})".into()])
}

#[tokio::test]
async fn the_cli_answer_becomes_a_diagnosis_cross_checked_against_squads_reading() {
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("payload.json");
    let mut v: Value = serde_json::from_str(&ask_with(BLOCK)).unwrap();
    v["result"] = json!(BLOCK.replace("\"memory_peak\": \"1.24Gi\"", "\"memory_peak\": \"2Gi\""));
    std::fs::write(&payload, v.to_string()).unwrap();
    let cmd = fake_cli(
        dir.path(),
        &format!(
            "echo \"$TOOL_MEMORY_LIMIT_MB\" > {}; cat {} > \"$out\"",
            dir.path().join("limit.txt").display(),
            payload.display()
        ),
    );
    let d = diagnoser(cli(cmd, 30), Some(native_oom()))
        .diagnose(&request())
        .await
        .unwrap();
    assert_eq!(d.source, DiagnosisSource::Holmesgpt);
    assert_eq!(
        d.root_cause,
        RootCause::from_static("memory_under_provisioned")
    );
    assert!(d.summary.contains("512Mi limit"), "{}", d.summary);
    assert_eq!(d.evidence[0].source, "holmesgpt bash");
    assert!(
        d.evidence[0]
            .observation
            .starts_with("kubectl get pods -n shop (failed)")
    );
    assert_eq!(d.usage.unwrap().prompt_tokens, 200);
    assert_eq!(d.cost_usd, Some(0.0009));
    // The crew's measurements are squad's own.
    assert_eq!(
        d.signals.memory.as_ref().unwrap().peak_24h.to_string(),
        "1270Mi"
    );
    assert_eq!(
        d.cross_check,
        vec![
            "agrees: root cause memory_under_provisioned (squad's analyzers conclude the same)",
            "agrees: memory limit 512Mi (squad reads 512Mi)",
            "DISAGREES: HolmesGPT quotes the memory peak as 2Gi, squad reads 1270Mi",
        ]
    );
    // Its tools get room for kubectl's Go runtime (HolmesGPT's own default is 800 MB).
    if std::env::var_os("TOOL_MEMORY_LIMIT_MB").is_none() {
        let limit = std::fs::read_to_string(dir.path().join("limit.txt")).unwrap();
        assert_eq!(limit.trim(), "4096");
    }
    // What the CLI was given: the question with squad's memory, the model, the env.
    let args = std::fs::read_to_string(dir.path().join("args.txt")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args[0], "ask");
    assert!(
        args.contains(&"--no-interactive") && args.contains(&"openai/test"),
        "{args:?}"
    );
    let question = args.join("\n");
    assert!(
        question.contains("payment-service-7d4b9c-xk2p"),
        "{question}"
    );
    assert!(question.contains("raised the limit to 512Mi"), "{question}");
    assert!(question.contains("root_cause is one of"), "{question}");
    assert!(
        !question.contains("hunter2-pw") && question.contains("[REDACTED:"),
        "{question}"
    );
}

#[tokio::test]
async fn a_timeout_a_crash_a_missing_cli_and_a_changed_shape_fall_back_to_the_native_analyzers() {
    let root = tempfile::tempdir().unwrap();
    let cases = [
        ("sleep 30", 1, "did not answer within 1 s (killed)"),
        (
            "echo 'Traceback: boom' >&2; exit 3",
            30,
            "exited with exit status: 3: Traceback: boom",
        ),
        ("", 30, "cannot start HolmesGPT"),
        (
            "echo '{\"answer\": 1}' > \"$out\"",
            30,
            "no `result` (the answer text) (HolmesGPT 9.9.9-fake; squad reads the output of 0.45.0)",
        ),
        ("exit 0", 30, "exited 0 but wrote no output file"),
    ];
    for (i, (body, timeout, want)) in cases.into_iter().enumerate() {
        let dir = root.path().join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let command = if body.is_empty() {
            dir.join("no-such-holmes").display().to_string()
        } else {
            fake_cli(&dir, body)
        };
        #[allow(clippy::disallowed_types)]
        let started = std::time::Instant::now();
        let got = diagnoser(cli(command, timeout), Some(native_oom()))
            .diagnose(&request())
            .await
            .unwrap();
        assert_eq!(got.source, DiagnosisSource::Native, "{want}");
        let reason = got.fallback_reason.unwrap();
        assert!(reason.contains(want), "want {want:?} in {reason}");
        assert!(
            reason.contains("the native analyzers took over"),
            "{reason}"
        );
        assert!(
            started.elapsed().as_secs() < 20,
            "{want}: not killed in time"
        );
    }
    // Without squad's own reading either, the error says so.
    let e = diagnoser(cli(root.path().join("nope").display().to_string(), 5), None)
        .diagnose(&request())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no cluster"), "{e}");
}

async fn server(status: u16, body: Value) -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/api/chat",
        axum::routing::post(move |axum::Json(req): axum::Json<Value>| {
            let log = log.clone();
            let body = body.clone();
            async move {
                log.lock().unwrap().push(req);
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    axum::Json(body),
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn server_settings(url: &str) -> HolmesSettings {
    HolmesSettings {
        transport: HolmesTransport::Server,
        server_url: Some(url.into()),
        timeout_seconds: 10,
        ..HolmesSettings::default()
    }
}

#[tokio::test]
async fn the_server_transport_asks_for_squads_fields_and_reports_errors() {
    let analysis = json!({"root_cause": "memory_leak", "summary": "memory grows without bound", "confidence": 0.7,
                          "recommendations": [], "memory_limit": null, "memory_peak": "1270Mi"});
    let (url, seen) = server(
        200,
        json!({"analysis": analysis.to_string(), "tool_calls": [
                {"tool_call_id": "1", "tool_name": "kubectl_describe", "description": "kubectl describe pod x",
                 "result": {"status": "success", "data": "Last State: Terminated (OOMKilled)"}}],
               "conversation_history": [], "metadata": {"usage": {"prompt_tokens": 900, "completion_tokens": 80}}}),
    )
    .await;
    let d = diagnoser(server_settings(&url), Some(native_oom()))
        .diagnose(&request())
        .await
        .unwrap();
    assert_eq!(d.source, DiagnosisSource::Holmesgpt);
    assert_eq!(d.root_cause, RootCause::from_static("memory_leak"));
    assert_eq!(
        d.evidence[0].observation,
        "kubectl describe pod x: Last State: Terminated (OOMKilled)"
    );
    assert_eq!(d.usage.unwrap().completion_tokens, 80);
    assert!(
        d.cross_check[0].starts_with("DISAGREES: HolmesGPT concludes memory_leak"),
        "{:?}",
        d.cross_check
    );
    assert!(d.cross_check[1].starts_with("not checked: HolmesGPT did not quote the memory limit"));
    assert_eq!(
        d.cross_check[2],
        "agrees: memory peak 1270Mi (squad reads 1270Mi)"
    );
    let req = seen.lock().unwrap()[0].clone();
    assert!(req["ask"].as_str().unwrap().contains("payment-service"));
    // The schema offers every family squad knows, and `unknown`.
    let offered =
        req["response_format"]["json_schema"]["schema"]["properties"]["root_cause"]["enum"]
            .as_array()
            .unwrap()
            .clone();
    assert_eq!(
        offered,
        json!(squad_diagnosis::families::names())
            .as_array()
            .unwrap()
            .clone()
    );
    assert!(
        offered.contains(&json!("memory_under_provisioned")),
        "{offered:?}"
    );
    assert!(offered.contains(&json!("unknown")), "{offered:?}");

    let (url, _) = server(
        500,
        json!({"detail": "litellm.AuthenticationError: bad key"}),
    )
    .await;
    let d = diagnoser(server_settings(&url), Some(native_oom()))
        .diagnose(&request())
        .await
        .unwrap();
    let reason = d.fallback_reason.unwrap();
    assert!(
        reason.contains("answered HTTP 500") && reason.contains("bad key"),
        "{reason}"
    );

    let (url, _) = server(200, json!({"conversation_history": []})).await;
    let reason = diagnoser(server_settings(&url), Some(native_oom()))
        .diagnose(&request())
        .await
        .unwrap()
        .fallback_reason
        .unwrap();
    assert!(reason.contains("has no `analysis`"), "{reason}");

    let reason = diagnoser(server_settings("http://127.0.0.1:9"), Some(native_oom()))
        .diagnose(&request())
        .await
        .unwrap()
        .fallback_reason
        .unwrap();
    assert!(
        reason.contains("cannot reach HolmesGPT at http://127.0.0.1:9/api/chat"),
        "{reason}"
    );
}
