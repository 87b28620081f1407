//! Between squad's chat types and the OpenAI wire format, in both tool protocols.
//!
//! Native: tools go in `tools`, calls come back in `tool_calls`. JSON schema: no `tools`; the
//! `response_format` is a JSON schema whose `oneOf` variants are `{"tool", "arguments"}` per tool
//! plus `{"final"}`, the tools are described in a system message, and the model's JSON is mapped
//! back to the same [`ToolCall`]s, so the agent loop sees one shape either way.

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestUserMessage, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionRequest, FunctionCall, FunctionObject, ResponseFormat,
    ResponseFormatJsonSchema,
};
use serde::Deserialize;
use serde_json::{Value, json};
use squad_config::LlmProvider;
use squad_protocols::llm::{ChatMessage, ToolCall, ToolSpec};

use super::{ChatRequest, FinishReason, ToolProtocol};

/// The response format's name in json_schema mode when the request names none.
pub(super) const STEP_SCHEMA_NAME: &str = "squad_step";

pub(super) fn build_request(
    model: &str,
    provider: LlmProvider,
    req: &ChatRequest,
    protocol: ToolProtocol,
) -> Result<CreateChatCompletionRequest, String> {
    let as_text = protocol == ToolProtocol::JsonSchema;
    let mut messages = req
        .messages
        .iter()
        .map(|m| message(m, as_text))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = CreateChatCompletionRequest {
        model: model.to_string(),
        temperature: req.temperature,
        ..Default::default()
    };
    // OpenAI deprecated `max_tokens` (reasoning models reject it); local servers know it best.
    match provider {
        #[allow(deprecated)]
        LlmProvider::OpenaiCompatible => out.max_tokens = req.max_tokens,
        LlmProvider::Openai | LlmProvider::Azure => out.max_completion_tokens = req.max_tokens,
    }
    let plain_format = |name: &str, schema: &Value| ResponseFormat::JsonSchema {
        json_schema: ResponseFormatJsonSchema {
            description: None,
            name: name.to_string(),
            schema: schema.clone(),
            strict: Some(true),
        },
    };
    match protocol {
        ToolProtocol::JsonSchema if !req.tools.is_empty() => {
            let at = messages
                .iter()
                .position(|m| !matches!(m, ChatCompletionRequestMessage::System(_)))
                .unwrap_or(messages.len());
            messages.insert(at, system(tool_instructions(&req.tools)));
            let name = req
                .response_schema
                .as_ref()
                .map_or(STEP_SCHEMA_NAME, |s| s.name.as_str());
            out.response_format = Some(plain_format(name, &step_schema(req)));
        }
        _ => {
            if !req.tools.is_empty() {
                out.tools = Some(req.tools.iter().map(native_tool).collect());
            }
            out.response_format = req
                .response_schema
                .as_ref()
                .map(|s| plain_format(&s.name, &s.schema));
        }
    }
    out.messages = messages;
    Ok(out)
}

fn system(text: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
        content: text.into(),
        name: None,
    })
}

fn user(text: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
        content: text.into(),
        name: None,
    })
}

fn assistant(
    content: Option<String>,
    calls: Option<Vec<ChatCompletionMessageToolCalls>>,
) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
        content: content.map(Into::into),
        tool_calls: calls,
        ..Default::default()
    })
}

/// One squad message on the wire. In json_schema mode the server knows no tools, so tool calls
/// are written as the JSON the model produced and tool results as user messages.
fn message(m: &ChatMessage, as_text: bool) -> Result<ChatCompletionRequestMessage, String> {
    Ok(match m.role.as_str() {
        "system" | "developer" => system(m.content.clone()),
        "user" => user(m.content.clone()),
        "assistant" if m.tool_calls.is_empty() => assistant(Some(m.content.clone()), None),
        "assistant" if as_text => {
            let steps: Vec<Value> = m
                .tool_calls
                .iter()
                .map(|c| json!({ "tool": c.name, "arguments": c.arguments }))
                .collect();
            let text = match steps.as_slice() {
                [one] => one.to_string(),
                many => Value::from(many.to_vec()).to_string(),
            };
            assistant(Some(text), None)
        }
        "assistant" => {
            let calls = m
                .tool_calls
                .iter()
                .map(|c| {
                    ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                        id: c.id.clone(),
                        function: FunctionCall {
                            name: c.name.clone(),
                            arguments: c.arguments.to_string(),
                        },
                    })
                })
                .collect();
            let content = (!m.content.is_empty()).then(|| m.content.clone());
            assistant(content, Some(calls))
        }
        "tool" => {
            let id = m
                .tool_call_id
                .clone()
                .ok_or_else(|| "a tool message without tool_call_id".to_string())?;
            if as_text {
                user(format!("Result of tool call {id}:\n{}", m.content))
            } else {
                ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
                    content: m.content.clone().into(),
                    tool_call_id: id,
                })
            }
        }
        other => return Err(format!("unknown message role {other:?}")),
    })
}

fn native_tool(t: &ToolSpec) -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: t.name.clone(),
            description: Some(t.description.clone()),
            parameters: Some(t.parameters.clone()),
            strict: None,
        },
    })
}

/// The json_schema-mode response schema: one variant per tool, and the final answer.
pub(super) fn step_schema(req: &ChatRequest) -> Value {
    let mut variants: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            json!({
                "type": "object",
                "description": t.description,
                "properties": {
                    "tool": { "type": "string", "const": t.name },
                    "arguments": t.parameters,
                },
                "required": ["tool", "arguments"],
                "additionalProperties": false,
            })
        })
        .collect();
    let answer = req
        .response_schema
        .as_ref()
        .map_or_else(|| json!({ "type": "string" }), |s| s.schema.clone());
    variants.push(json!({
        "type": "object",
        "description": "The final answer, when no more tool calls are needed.",
        "properties": { "final": answer },
        "required": ["final"],
        "additionalProperties": false,
    }));
    json!({ "oneOf": variants })
}

fn tool_instructions(tools: &[ToolSpec]) -> String {
    let mut text = String::from(
        "You can call tools. Answer with exactly one JSON object and nothing else: either \
         {\"tool\": \"<name>\", \"arguments\": {...}} to call a tool (its result comes back in \
         the next message), or {\"final\": ...} with your answer when no more tool calls are \
         needed.\n\nTools:\n",
    );
    for t in tools {
        text.push_str(&format!(
            "- {}: {}\n  arguments schema: {}\n",
            t.name, t.description, t.parameters
        ));
    }
    text
}

// The answer, read leniently: OpenAI-compatible servers differ in what they leave out.

#[derive(Debug, Deserialize)]
pub(super) struct WireResponse {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<WireChoice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireChoice {
    pub message: WireMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireToolCall {
    #[serde(default)]
    pub id: String,
    pub function: WireFunction,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireFunction {
    pub name: String,
    /// A JSON string per the spec; some servers send the object itself.
    #[serde(default)]
    pub arguments: Value,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// What the model said: content, tool calls, finish reason. Errors say what was wrong.
pub(super) struct Reply {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: FinishReason,
}

pub(super) fn read_reply(
    wire: WireResponse,
    req: &ChatRequest,
    protocol: ToolProtocol,
    mut next_id: impl FnMut() -> String,
) -> Result<Reply, String> {
    let Some(choice) = wire.choices.into_iter().next() else {
        return Err("no choices in the answer".into());
    };
    let finish_reason = finish_reason(choice.finish_reason.as_deref());
    let msg = choice.message;
    if let Some(refusal) = msg.refusal.filter(|r| !r.is_empty()) {
        return Err(format!("the model refused: {refusal}"));
    }
    let mut tool_calls = Vec::new();
    for call in msg.tool_calls.unwrap_or_default() {
        let arguments = arguments(call.function.arguments)
            .map_err(|e| format!("arguments of tool call {:?}: {e}", call.function.name))?;
        let id = if call.id.is_empty() {
            next_id()
        } else {
            call.id
        };
        tool_calls.push(ToolCall::new(id, call.function.name, arguments));
    }
    if protocol == ToolProtocol::JsonSchema && !req.tools.is_empty() && tool_calls.is_empty() {
        let text = msg.content.unwrap_or_default();
        let mut reply = read_step(&text, req, next_id)?;
        if reply.tool_calls.is_empty() {
            reply.finish_reason = finish_reason;
        }
        return Ok(reply);
    }
    Ok(Reply {
        content: msg.content,
        tool_calls,
        finish_reason,
    })
}

fn arguments(raw: Value) -> Result<Value, String> {
    match raw {
        Value::String(s) if s.trim().is_empty() => Ok(json!({})),
        Value::String(s) => serde_json::from_str(&s).map_err(|e| format!("not JSON ({e}): {s}")),
        Value::Null => Ok(json!({})),
        other => Ok(other),
    }
}

/// A json_schema-mode answer: `{"tool", "arguments"}` becomes a tool call, `{"final"}` content.
/// Anything else (prose, JSON cut off at the token limit) comes back as the content it is, so the
/// caller's validation rejects it, can ask again, and the call's tokens are still counted.
fn read_step(
    text: &str,
    _req: &ChatRequest,
    mut next_id: impl FnMut() -> String,
) -> Result<Reply, String> {
    let as_is = || Reply {
        content: Some(text.to_string()),
        tool_calls: Vec::new(),
        finish_reason: FinishReason::Stop,
    };
    let Ok(step) = serde_json::from_str::<Value>(strip_fences(text)) else {
        return Ok(as_is());
    };
    if let Some(name) = step.get("tool").and_then(Value::as_str) {
        let args = arguments(step.get("arguments").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("arguments of tool call {name:?}: {e}"))?;
        return Ok(Reply {
            content: None,
            tool_calls: vec![ToolCall::new(next_id(), name, args)],
            finish_reason: FinishReason::ToolCalls,
        });
    }
    match step.get("final") {
        Some(Value::String(s)) => Ok(Reply {
            content: Some(s.clone()),
            tool_calls: Vec::new(),
            finish_reason: FinishReason::Stop,
        }),
        Some(other) => Ok(Reply {
            content: Some(other.to_string()),
            tool_calls: Vec::new(),
            finish_reason: FinishReason::Stop,
        }),
        None => Ok(as_is()),
    }
}

/// Small models wrap JSON in a Markdown fence even when asked not to.
fn strip_fences(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        None | Some("stop") | Some("eos") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some("tool_calls") | Some("function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_string()),
    }
}
