//! The real-model tier's ground truth: what llama.cpp's OpenAI-compatible server does with
//! SmolLM2-135M-Instruct on this machine, so the llm adapter can rely on it.
//! - a plain chat completion answers with content and token usage;
//! - `response_format: json_schema` is enforced: the content parses and fits the schema (its
//!   values are nonsense, its shape is not);
//! - OpenAI `tools` are silently ignored: no error, no `tool_calls`, and the prompt is token for
//!   token the one without tools, because the model's chat template cannot render tools. The
//!   adapter's fallback (tools described in the prompt, the call constrained by a json_schema)
//!   is what makes this model usable as an agent; `/props` says so up front.
//!
//! Each test prints its latency and token usage. The tests take turns, so each measures one
//! server alone on the machine's cores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use squad_testkit::llama::{Exchange, RealLlama, available_or_skip};
use tokio::sync::Mutex;

/// One server at a time, so the latencies printed are one model's on an otherwise idle machine.
static TURN: Mutex<()> = Mutex::const_new(());

const INCIDENT: &str = "Pod web-1 in namespace shop is in CrashLoopBackOff. Inspect it.";

fn get_pod_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "tool": {"const": "get_pod"},
            "arguments": {
                "type": "object",
                "properties": {
                    "namespace": {"type": "string"},
                    "pod": {"type": "string"}
                },
                "required": ["namespace", "pod"]
            }
        },
        "required": ["tool", "arguments"]
    })
}

fn get_pod_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": "get_pod",
            "description": "Read one pod's spec and status",
            "parameters": {
                "type": "object",
                "properties": {
                    "namespace": {"type": "string"},
                    "pod": {"type": "string"}
                },
                "required": ["namespace", "pod"]
            }
        }
    })
}

fn report(test: &str, x: &Exchange) {
    let usage = &x.body["usage"];
    eprintln!(
        "{test}: {} ms, prompt {} + completion {} tokens, finish {}",
        x.elapsed.as_millis(),
        usage["prompt_tokens"],
        usage["completion_tokens"],
        x.body["choices"][0]["finish_reason"]
    );
}

fn message(x: &Exchange) -> &Value {
    assert_eq!(x.status, 200, "{}", x.body);
    &x.body["choices"][0]["message"]
}

fn tokens(x: &Exchange, field: &str) -> u64 {
    x.body["usage"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("usage.{field} missing: {}", x.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_chat_completion_answers_with_content_and_token_usage() {
    let test = "a_plain_chat_completion_answers_with_content_and_token_usage";
    if !available_or_skip(test).unwrap() {
        return;
    }
    let _turn = TURN.lock().await;
    let llama = RealLlama::start().await.unwrap();
    let models = llama.get("/v1/models").await.unwrap();
    assert_eq!(models["data"][0]["id"], llama.model(), "{models}");

    let x = llama
        .chat(&json!({
            "model": llama.model(),
            "messages": [
                {"role": "system", "content": "You are an SRE. Answer in one sentence."},
                {"role": "user", "content": INCIDENT}
            ],
            "max_tokens": 64,
            "temperature": 0,
            "seed": 7
        }))
        .await
        .unwrap();
    report(test, &x);
    let message = message(&x);
    assert_eq!(message["role"], "assistant", "{}", x.body);
    let content = message["content"].as_str().unwrap_or_default();
    assert!(!content.trim().is_empty(), "empty content: {}", x.body);
    assert!(tokens(&x, "prompt_tokens") > 0, "{}", x.body);
    let completion = tokens(&x, "completion_tokens");
    assert!((1..=64).contains(&completion), "{}", x.body);
    assert_eq!(
        tokens(&x, "total_tokens"),
        tokens(&x, "prompt_tokens") + completion,
        "{}",
        x.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_schema_response_format_is_enforced_on_the_content() {
    let test = "a_json_schema_response_format_is_enforced_on_the_content";
    if !available_or_skip(test).unwrap() {
        return;
    }
    let _turn = TURN.lock().await;
    let llama = RealLlama::start().await.unwrap();
    // Two prompts, so one lucky answer cannot pass: the shape must come from the server.
    for (i, ask) in [INCIDENT, "Tell me a story about a dragon."]
        .into_iter()
        .enumerate()
    {
        let x = llama
            .chat(&json!({
                "model": llama.model(),
                "messages": [
                    {"role": "system", "content": "Choose the tool to call and its arguments."},
                    {"role": "user", "content": ask}
                ],
                "max_tokens": 128,
                "temperature": 0,
                "seed": 7,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "tool_call", "strict": true, "schema": get_pod_schema()}
                }
            }))
            .await
            .unwrap();
        report(&format!("{test} #{i}"), &x);
        let content = message(&x)["content"].as_str().unwrap_or_default();
        let call: Value = serde_json::from_str(content)
            .unwrap_or_else(|e| panic!("content is not JSON ({e}): {content:?}\n{}", x.body));
        eprintln!("{test} #{i}: {call}");
        // The schema, checked by hand: both required keys, the const, string arguments.
        assert_eq!(call["tool"], "get_pod", "{call}");
        let arguments = call["arguments"]
            .as_object()
            .unwrap_or_else(|| panic!("arguments is not an object: {call}"));
        for key in ["namespace", "pod"] {
            assert!(arguments[key].is_string(), "arguments.{key}: {call}");
        }
        assert_eq!(x.body["choices"][0]["finish_reason"], "stop", "{}", x.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_tools_are_silently_ignored_so_the_adapter_must_fall_back() {
    let test = "native_tools_are_silently_ignored_so_the_adapter_must_fall_back";
    if !available_or_skip(test).unwrap() {
        return;
    }
    let _turn = TURN.lock().await;
    let llama = RealLlama::start().await.unwrap();

    // What an adapter can probe at start-up: the chat template has no tool support.
    let props = llama.get("/props").await.unwrap();
    let caps = &props["chat_template_caps"];
    assert_eq!(caps["supports_tools"], false, "{props}");
    assert_eq!(caps["supports_tool_calls"], false, "{props}");

    let request = |tools: Option<Value>, tool_choice: Option<&str>| {
        let mut body = json!({
            "model": llama.model(),
            "messages": [{"role": "user", "content": INCIDENT}],
            "max_tokens": 48,
            "temperature": 0,
            "seed": 7
        });
        if let Some(tools) = tools {
            body["tools"] = tools;
        }
        if let Some(choice) = tool_choice {
            body["tool_choice"] = json!(choice);
        }
        body
    };
    let without = llama.chat(&request(None, None)).await.unwrap();
    report(&format!("{test} (no tools)"), &without);
    message(&without);

    for choice in [None, Some("auto"), Some("required")] {
        let x = llama
            .chat(&request(Some(json!([get_pod_tool()])), choice))
            .await
            .unwrap();
        report(&format!("{test} (tools, tool_choice {choice:?})"), &x);
        // Not an error: a 200 with ordinary content ...
        let message = message(&x);
        let content = message["content"].as_str().unwrap_or_default();
        assert!(!content.trim().is_empty(), "{}", x.body);
        // ... and no tool call, even when one is required ...
        let calls = message.get("tool_calls");
        assert!(
            calls.is_none_or(|c| c.is_null() || c.as_array().is_some_and(Vec::is_empty)),
            "tool_calls: {}",
            x.body
        );
        assert_ne!(
            x.body["choices"][0]["finish_reason"], "tool_calls",
            "{}",
            x.body
        );
        // ... because the tools never reached the prompt.
        assert_eq!(
            tokens(&x, "prompt_tokens"),
            tokens(&without, "prompt_tokens"),
            "tools changed the prompt: {}",
            x.body
        );
    }
}
