//! The adapter against a loopback mock of `/v1/chat/completions` that records what it receives
//! and answers in the recorded OpenAI format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};

use super::*;

const KEY: &str = "sk-test-0123456789abcdef";

#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
    delay: Duration,
}

fn ok(body: Value) -> Answer {
    Answer {
        status: 200,
        headers: Vec::new(),
        body,
        delay: Duration::ZERO,
    }
}

fn fail(status: u16, message: &str, code: Option<&str>) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}}),
        delay: Duration::ZERO,
    }
}

/// A chat completion as OpenAI records it.
fn completion(message: Value, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "smollm2-135m",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
    })
}

#[derive(Debug, Clone)]
struct Received {
    uri: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Default)]
struct MockState {
    script: Mutex<VecDeque<Answer>>,
    received: Mutex<Vec<Received>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

struct Mock {
    base_url: String,
    state: Arc<MockState>,
}

impl Mock {
    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn answer(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, HeaderMap, String) {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    state.received.lock().unwrap().push(Received {
        uri: uri.to_string(),
        headers,
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    let next = {
        let mut script = state.script.lock().unwrap();
        if script.len() > 1 {
            script.pop_front()
        } else {
            script.front().cloned()
        }
    };
    let next = next.expect("the mock has an answer scripted");
    tokio::time::sleep(next.delay).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    for (k, v) in next.headers {
        headers.insert(k, v.parse().unwrap());
    }
    (
        StatusCode::from_u16(next.status).unwrap(),
        headers,
        next.body.to_string(),
    )
}

async fn mock(script: Vec<Answer>) -> Mock {
    let state = Arc::new(MockState {
        script: Mutex::new(script.into()),
        ..Default::default()
    });
    let app = Router::new().fallback(answer).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Mock {
        base_url: format!("http://{addr}/v1"),
        state,
    }
}

fn profile(base_url: &str, tool_mode: LlmToolMode) -> LlmProfile {
    LlmProfile {
        provider: LlmProvider::OpenaiCompatible,
        base_url: Some(base_url.to_string()),
        model: "smollm2".into(),
        api_key_env: Some("SQUAD_TEST_LLM_KEY".into()),
        tool_mode,
        timeout_seconds: 5,
        max_concurrent: 2,
        max_retries: 3,
        ..LlmProfile::default()
    }
}

fn client(profile: &LlmProfile) -> LlmClient {
    LlmClient::with_env(profile, |var| {
        (var == "SQUAD_TEST_LLM_KEY").then(|| KEY.to_string())
    })
    .unwrap()
}

fn pod_logs() -> ToolSpec {
    ToolSpec {
        name: "pod_logs".into(),
        description: "Last lines of a pod's logs".into(),
        parameters: json!({
            "type": "object",
            "properties": {"pod": {"type": "string"}},
            "required": ["pod"],
            "additionalProperties": false
        }),
    }
}

fn ask(tools: Vec<ToolSpec>) -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::system("You are B'Elanna."),
            ChatMessage::user("Why is api-0 restarting?"),
        ],
        tools,
        max_tokens: Some(256),
        temperature: Some(0.0),
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn plain_answer_maps_content_usage_and_model() {
    let m = mock(vec![ok(completion(
        json!({"role": "assistant", "content": "It ran out of memory."}),
        "stop",
    ))])
    .await;
    let c = client(&profile(&m.base_url, LlmToolMode::Auto));
    let r = c.chat(ask(vec![])).await.unwrap();
    assert_eq!(r.content.as_deref(), Some("It ran out of memory."));
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(r.model, "smollm2-135m");
    assert_eq!(
        r.usage,
        Usage {
            calls: 1,
            prompt_tokens: 42,
            completion_tokens: 7
        }
    );
    let got = m.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].uri, "/v1/chat/completions");
    assert_eq!(got[0].headers["authorization"], format!("Bearer {KEY}"));
    let body = &got[0].body;
    assert_eq!(body["model"], "smollm2");
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "You are B'Elanna."})
    );
    assert_eq!(body["messages"][1]["role"], "user");
    assert!(
        body.get("tools").is_none() && body.get("response_format").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn native_tool_call_comes_back_as_a_tool_call() {
    let m = mock(vec![ok(completion(
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_abc", "type": "function",
            "function": {"name": "pod_logs", "arguments": "{\"pod\":\"api-0\"}"}
        }]}),
        "tool_calls",
    ))])
    .await;
    let c = client(&profile(&m.base_url, LlmToolMode::Native));
    let r = c.chat(ask(vec![pod_logs()])).await.unwrap();
    assert_eq!(
        r.tool_calls,
        vec![ToolCall::new(
            "call_abc",
            "pod_logs",
            json!({"pod": "api-0"})
        )]
    );
    assert_eq!(r.content, None);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.tool_protocol, ToolProtocol::Native);
    let body = &m.received()[0].body;
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "pod_logs");
    assert_eq!(
        body["tools"][0]["function"]["parameters"],
        pod_logs().parameters
    );
    assert!(body.get("response_format").is_none());
}

#[tokio::test]
async fn native_mode_sends_earlier_tool_calls_and_results_in_openai_shape() {
    let m = mock(vec![ok(completion(
        json!({"role": "assistant", "content": "OOMKilled."}),
        "stop",
    ))])
    .await;
    let c = client(&profile(&m.base_url, LlmToolMode::Native));
    let mut req = ask(vec![pod_logs()]);
    req.messages
        .push(ChatMessage::assistant_tool_calls(vec![ToolCall::new(
            "call_abc",
            "pod_logs",
            json!({"pod": "api-0"}),
        )]));
    req.messages
        .push(ChatMessage::tool_result("call_abc", "Killed: OOM"));
    c.chat(req).await.unwrap();
    let body = &m.received()[0].body;
    assert_eq!(
        body["messages"][2]["tool_calls"][0],
        json!({"id": "call_abc", "type": "function", "function": {"name": "pod_logs", "arguments": "{\"pod\":\"api-0\"}"}})
    );
    assert_eq!(
        body["messages"][3],
        json!({"role": "tool", "content": "Killed: OOM", "tool_call_id": "call_abc"})
    );
}

#[tokio::test]
async fn json_schema_mode_asks_for_a_one_of_and_maps_the_json_to_a_tool_call() {
    let m = mock(vec![
        ok(completion(
            json!({"role": "assistant", "content": "{\"tool\": \"pod_logs\", \"arguments\": {\"pod\": \"api-0\"}}"}),
            "stop",
        )),
        ok(completion(
            json!({"role": "assistant", "content": "```json\n{\"final\": \"It ran out of memory.\"}\n```"}),
            "stop",
        )),
    ])
    .await;
    let c = client(&profile(&m.base_url, LlmToolMode::JsonSchema));
    let r = c.chat(ask(vec![pod_logs()])).await.unwrap();
    assert_eq!(r.tool_protocol, ToolProtocol::JsonSchema);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        r.tool_calls,
        vec![ToolCall::new(
            "squad_call_2_1",
            "pod_logs",
            json!({"pod": "api-0"})
        )]
    );
    let body = &m.received()[0].body;
    assert!(body.get("tools").is_none(), "{body}");
    let format = &body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["name"], "squad_step");
    assert_eq!(format["json_schema"]["strict"], true);
    let variants = format["json_schema"]["schema"]["oneOf"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    assert_eq!(variants[0]["properties"]["tool"]["const"], "pod_logs");
    assert_eq!(
        variants[0]["properties"]["arguments"],
        pod_logs().parameters
    );
    assert_eq!(variants[0]["required"], json!(["tool", "arguments"]));
    assert_eq!(variants[1]["required"], json!(["final"]));
    // The tools are described to the model after the charter.
    assert_eq!(body["messages"][1]["role"], "system");
    assert!(
        body["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("pod_logs")
    );

    // The loop's next turn: the call and its result travel as text; the answer is the content.
    let mut req = ask(vec![pod_logs()]);
    req.messages
        .push(ChatMessage::assistant_tool_calls(r.tool_calls.clone()));
    req.messages
        .push(ChatMessage::tool_result("squad_call_2_1", "Killed: OOM"));
    let r = c.chat(req).await.unwrap();
    assert_eq!(r.content.as_deref(), Some("It ran out of memory."));
    assert!(r.tool_calls.is_empty());
    let body = &m.received()[1].body;
    assert_eq!(
        body["messages"][3],
        json!({"role": "assistant", "content": "{\"arguments\":{\"pod\":\"api-0\"},\"tool\":\"pod_logs\"}"})
    );
    assert_eq!(body["messages"][4]["role"], "user");
}

#[tokio::test]
async fn json_schema_answer_that_is_not_a_step_comes_back_as_text_for_the_caller_to_reject() {
    let m = mock(vec![
        ok(completion(
            json!({"role": "assistant", "content": "I think the pod is fine."}),
            "stop",
        )),
        ok(completion(
            json!({"role": "assistant", "content": "{\"final\": {\"note\": \"cut"}),
            "length",
        )),
    ])
    .await;
    let c = client(&profile(&m.base_url, LlmToolMode::JsonSchema));
    let r = c.chat(ask(vec![pod_logs()])).await.unwrap();
    assert_eq!(r.content.as_deref(), Some("I think the pod is fine."));
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.usage.calls, 1);
    // Cut off at the token limit: the text as it is, and the reason says so.
    let r = c.chat(ask(vec![pod_logs()])).await.unwrap();
    assert_eq!(r.content.as_deref(), Some("{\"final\": {\"note\": \"cut"));
    assert_eq!(r.finish_reason, FinishReason::Length);
}

#[tokio::test]
async fn structured_answer_carries_the_response_schema() {
    let m = mock(vec![ok(completion(
        json!({"role": "assistant", "content": "{\"cause\":\"oom\"}"}),
        "stop",
    ))])
    .await;
    let c = client(&profile(&m.base_url, LlmToolMode::Native));
    let schema = json!({"type": "object", "properties": {"cause": {"type": "string"}}, "required": ["cause"], "additionalProperties": false});
    let mut req = ask(vec![]);
    req.response_schema = Some(ResponseSchema {
        name: "diagnosis".into(),
        schema: schema.clone(),
    });
    let r = c.chat(req).await.unwrap();
    assert_eq!(r.content.as_deref(), Some("{\"cause\":\"oom\"}"));
    let body = &m.received()[0].body;
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "diagnosis", "schema": schema, "strict": true}})
    );
}

#[tokio::test]
async fn bad_key_is_unauthorized_and_the_echoed_key_is_scrubbed() {
    let m = mock(vec![fail(
        401,
        &format!("Incorrect API key provided: {KEY}."),
        Some("invalid_api_key"),
    )])
    .await;
    let c = client(&profile(&m.base_url, LlmToolMode::Auto));
    let err = c.chat(ask(vec![])).await.unwrap_err();
    assert!(
        matches!(err, LlmError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains(KEY), "{text}");
    assert!(text.contains(&m.base_url), "{text}");
    assert_eq!(m.received().len(), 1, "a refused key is not retried");
}

#[tokio::test]
async fn unknown_model_is_model_not_found() {
    let m = mock(vec![fail(
        404,
        "The model `smollm2` does not exist or you do not have access to it.",
        Some("model_not_found"),
    )])
    .await;
    let c = client(&profile(&m.base_url, LlmToolMode::Auto));
    let err = c.chat(ask(vec![])).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::ModelNotFound { model, .. } if model == "smollm2"),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_is_retried_after_the_servers_retry_after() {
    let mut limited = fail(
        429,
        "Rate limit reached for requests",
        Some("rate_limit_exceeded"),
    );
    limited.headers.push(("retry-after", "1".into()));
    let m = mock(vec![
        limited,
        ok(completion(
            json!({"role": "assistant", "content": "ok"}),
            "stop",
        )),
    ])
    .await;
    let c = client(&profile(&m.base_url, LlmToolMode::Auto));
    let start = tokio::time::Instant::now();
    let r = c.chat(ask(vec![])).await.unwrap();
    assert_eq!(r.content.as_deref(), Some("ok"));
    assert_eq!(m.received().len(), 2);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_that_outlasts_the_retries_names_the_wait() {
    let mut limited = fail(429, "Rate limit reached", None);
    limited.headers.push(("retry-after", "2".into()));
    let m = mock(vec![limited]).await;
    let mut p = profile(&m.base_url, LlmToolMode::Auto);
    p.max_retries = 1;
    let err = client(&p).chat(ask(vec![])).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)), "{err:?}");
    assert!(err.to_string().contains("retry after 2 s"), "{err}");
    assert_eq!(m.received().len(), 2);
}

#[tokio::test]
async fn insufficient_quota_is_not_retried() {
    let m = mock(vec![fail(
        429,
        "You exceeded your current quota",
        Some("insufficient_quota"),
    )])
    .await;
    let err = client(&profile(&m.base_url, LlmToolMode::Auto))
        .chat(ask(vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::QuotaExceeded { .. }), "{err:?}");
    assert_eq!(m.received().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_backoff_then_reported() {
    let m = mock(vec![Answer {
        status: 503,
        headers: Vec::new(),
        body: json!("overloaded"),
        delay: Duration::ZERO,
    }])
    .await;
    let mut p = profile(&m.base_url, LlmToolMode::Auto);
    p.max_retries = 2;
    let start = tokio::time::Instant::now();
    let err = client(&p).chat(ask(vec![])).await.unwrap_err();
    assert!(
        matches!(err, LlmError::Server { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(m.received().len(), 3);
    // 0.5 s then 1 s.
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn context_length_exceeded_is_context_too_long() {
    let m = mock(vec![fail(
        400,
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
        Some("context_length_exceeded"),
    )])
    .await;
    let err = client(&profile(&m.base_url, LlmToolMode::Auto))
        .chat(ask(vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::ContextTooLong { .. }), "{err:?}");
}

#[tokio::test]
async fn unreachable_server_names_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let base = format!("http://{addr}/v1");
    let mut p = profile(&base, LlmToolMode::Auto);
    p.max_retries = 0;
    let err = client(&p).chat(ask(vec![])).await.unwrap_err();
    assert!(matches!(err, LlmError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("{base}/chat/completions")),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_server_is_a_timeout_naming_the_url() {
    let mut slow = ok(completion(
        json!({"role": "assistant", "content": "late"}),
        "stop",
    ));
    slow.delay = Duration::from_secs(10);
    let m = mock(vec![slow]).await;
    let mut p = profile(&m.base_url, LlmToolMode::Auto);
    p.timeout_seconds = 2;
    p.max_retries = 0;
    let err = client(&p).chat(ask(vec![])).await.unwrap_err();
    assert!(
        matches!(err, LlmError::Timeout { seconds: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&m.base_url), "{err}");
}

#[tokio::test]
async fn auto_mode_falls_back_to_json_schema_when_tools_are_refused_and_remembers() {
    let m = mock(vec![
        fail(400, "tools param requires --jinja flag; tools are not supported", None),
        ok(completion(
            json!({"role": "assistant", "content": "{\"tool\":\"pod_logs\",\"arguments\":{\"pod\":\"api-0\"}}"}),
            "stop",
        )),
        ok(completion(json!({"role": "assistant", "content": "{\"final\":\"done\"}"}), "stop")),
    ])
    .await;
    let c = client(&profile(&m.base_url, LlmToolMode::Auto));
    assert_eq!(c.tool_protocol(), ToolProtocol::Native);
    let r = c.chat(ask(vec![pod_logs()])).await.unwrap();
    assert_eq!(r.tool_protocol, ToolProtocol::JsonSchema);
    assert_eq!(r.tool_calls[0].name, "pod_logs");
    assert_eq!(c.tool_protocol(), ToolProtocol::JsonSchema);
    let r = c.chat(ask(vec![pod_logs()])).await.unwrap();
    assert_eq!(r.content.as_deref(), Some("done"));
    let got = m.received();
    assert_eq!(got.len(), 3);
    assert!(got[0].body.get("tools").is_some());
    for later in &got[1..] {
        assert!(later.body.get("tools").is_none(), "{}", later.body);
        assert_eq!(later.body["response_format"]["type"], "json_schema");
    }
    assert!(!c.fall_back_to_json_schema(), "already switched");
}

#[tokio::test]
async fn native_mode_does_not_fall_back() {
    let m = mock(vec![fail(
        400,
        "tools are not supported by this model",
        None,
    )])
    .await;
    let err = client(&profile(&m.base_url, LlmToolMode::Native))
        .chat(ask(vec![pod_logs()]))
        .await
        .unwrap_err();
    assert!(err.is_tools_unsupported(), "{err:?}");
    assert_eq!(m.received().len(), 1);
}

#[tokio::test]
async fn calls_in_flight_never_exceed_max_concurrent() {
    let mut slow = ok(completion(
        json!({"role": "assistant", "content": "ok"}),
        "stop",
    ));
    slow.delay = Duration::from_millis(50);
    let m = mock(vec![slow]).await;
    let c = Arc::new(client(&profile(&m.base_url, LlmToolMode::Auto)));
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.chat(ask(vec![])).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(m.received().len(), 6);
    assert_eq!(m.state.max_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn azure_uses_the_deployment_url_api_version_and_api_key_header() {
    let m = mock(vec![ok(completion(
        json!({"role": "assistant", "content": "ok"}),
        "stop",
    ))])
    .await;
    let base = m.base_url.trim_end_matches("/v1").to_string();
    let p = LlmProfile {
        provider: LlmProvider::Azure,
        base_url: Some(base.clone()),
        deployment: Some("squad-gpt".into()),
        api_version: Some("2024-10-21".into()),
        ..profile(&base, LlmToolMode::Native)
    };
    let c = client(&p);
    assert_eq!(
        c.endpoint(),
        format!("{base}/openai/deployments/squad-gpt/chat/completions")
    );
    c.chat(ask(vec![])).await.unwrap();
    let got = &m.received()[0];
    assert_eq!(
        got.uri,
        "/openai/deployments/squad-gpt/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(got.headers["api-key"], KEY);
    assert!(got.headers.get("authorization").is_none());
    assert_eq!(got.body["max_completion_tokens"], 256);
}

#[test]
fn missing_key_names_the_variable() {
    let p = profile("http://127.0.0.1:1/v1", LlmToolMode::Auto);
    let err = LlmClient::with_env(&p, |_| None).unwrap_err();
    assert!(
        matches!(&err, LlmError::MissingApiKey { var, .. } if var == "SQUAD_TEST_LLM_KEY"),
        "{err:?}"
    );
}

#[test]
fn openai_compatible_without_key_env_needs_no_key() {
    let p = LlmProfile {
        api_key_env: None,
        ..profile("http://127.0.0.1:1/v1", LlmToolMode::Auto)
    };
    LlmClient::with_env(&p, |_| None).unwrap();
}

#[test]
fn debug_of_client_and_profile_hides_the_key() {
    let p = profile("http://127.0.0.1:1/v1", LlmToolMode::Auto);
    let c = client(&p);
    let text = format!("{c:?} {c:#?} {p:?}");
    assert!(!text.contains(KEY), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
    assert_eq!(
        parse_retry_after("0.5", now),
        Some(Duration::from_millis(500))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon", now), None);
}

#[test]
fn backoff_doubles_and_is_capped() {
    assert_eq!(backoff(0), Duration::from_millis(500));
    assert_eq!(backoff(1), Duration::from_secs(1));
    assert_eq!(backoff(3), Duration::from_secs(4));
    assert_eq!(backoff(20), MAX_BACKOFF);
}
