//! Provider-neutral model types: messages, token usage and budgets.

use serde::{Deserialize, Serialize};

/// One message of a conversation with a model.
///
/// `role` is `system`, `user`, `assistant` or `tool`. An assistant message may carry the tool calls
/// the model made; a `tool` message answers one of them by `tool_call_id`. Both extra fields are
/// omitted from JSON when empty, so plain `{role, content}` messages keep their old shape.
///
/// ```
/// use squad_protocols::llm::{ChatMessage, ToolCall};
/// let call = ToolCall::new("call_1", "pod_logs", serde_json::json!({"pod": "api-0"}));
/// let asked = ChatMessage::assistant_tool_calls(vec![call]);
/// let answer = ChatMessage::tool_result("call_1", "OOMKilled");
/// let json = serde_json::to_string(&answer).unwrap();
/// assert_eq!(json, r#"{"role":"tool","content":"OOMKilled","tool_call_id":"call_1"}"#);
/// assert_eq!(serde_json::from_str::<ChatMessage>(&json).unwrap(), answer);
/// assert_eq!(asked.tool_calls[0].name, "pod_logs");
/// let plain: ChatMessage = serde_json::from_str(r#"{"role":"user","content":"hi"}"#).unwrap();
/// assert_eq!(plain, ChatMessage::user("hi"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    fn new(role: &str, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }

    /// The model's turn when it asked for tools (content is usually empty).
    pub fn assistant_tool_calls(calls: Vec<ToolCall>) -> Self {
        ChatMessage {
            tool_calls: calls,
            ..Self::new("assistant", "")
        }
    }

    /// A tool's answer to the call `tool_call_id`.
    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::new("tool", content)
        }
    }
}

/// A tool the model may call: a name, what it does, and its parameters as a JSON Schema.
///
/// ```
/// use squad_protocols::llm::ToolSpec;
/// let t = ToolSpec {
///     name: "pod_logs".into(),
///     description: "Last lines of a pod's logs".into(),
///     parameters: serde_json::json!({"type": "object", "properties": {"pod": {"type": "string"}}}),
/// };
/// let back: ToolSpec = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
/// assert_eq!(back, t);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A call the model asked for: which tool, with which (JSON) arguments.
///
/// ```
/// use squad_protocols::llm::ToolCall;
/// let c = ToolCall::new("call_1", "pod_logs", serde_json::json!({"pod": "api-0"}));
/// let back: ToolCall = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
/// assert_eq!(back, c);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
}

impl ToolCall {
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: serde_json::Value,
    ) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments,
        }
    }
}

/// Token usage of model calls, summed.
///
/// ```
/// use squad_protocols::Usage;
/// let mut u = Usage::default();
/// u.add(&Usage { calls: 1, prompt_tokens: 200, completion_tokens: 40 });
/// assert_eq!(u.total_tokens(), 240);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub calls: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.calls += other.calls;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }

    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// Limits on what one incident (or one member) may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub max_tokens: u64,
    pub max_calls: u32,
    pub max_wall_seconds: u64,
}

impl Budget {
    pub fn allows(&self, spent: &Usage) -> bool {
        spent.total_tokens() < self.max_tokens && spent.calls < self.max_calls
    }
}

/// One model call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call; empty means a plain answer.
    pub tools: Vec<ToolSpec>,
    /// The final answer must match this JSON Schema (its JSON text is the response's `content`).
    pub response_schema: Option<ResponseSchema>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

/// A named JSON Schema for structured output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseSchema {
    /// `a-z`, `A-Z`, `0-9`, `_`, `-`; at most 64 characters (OpenAI's rule).
    pub name: String,
    pub schema: serde_json::Value,
}

/// What the model answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// Text, or the JSON text of a structured answer; `None` when the model only called tools.
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    /// This call's tokens (`calls` is 1).
    pub usage: Usage,
    /// The model that answered, as the server names it.
    pub model: String,
    pub finish_reason: FinishReason,
    /// How tools were offered for this call.
    pub tool_protocol: ToolProtocol,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    /// The answer hit `max_tokens`.
    Length,
    ToolCalls,
    ContentFilter,
    Other(String),
}

/// How tools are put to the model on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolProtocol {
    /// The API's `tools` and `tool_calls`.
    Native,
    /// A `response_format` JSON schema with one variant per tool and one for the answer.
    JsonSchema,
}

/// What a member's model calls cost over an incident (`llm_usage` in `squad simulate --json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmUsage {
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Deliberations whose answer was not used (the deterministic skill decided).
    pub fallbacks: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<f64>,
}

/// Why a model's answer was not accepted. The text goes back to the model as the correction
/// asked for, and onto the incident when the answer is finally not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

impl From<String> for Rejection {
    fn from(s: String) -> Rejection {
        Rejection(s)
    }
}

impl From<&str> for Rejection {
    fn from(s: &str) -> Rejection {
        Rejection(s.to_owned())
    }
}

/// Parses a model's final answer: JSON (a Markdown fence around it tolerated) of type `T`.
///
/// ```
/// let v: Vec<u32> = squad_protocols::llm::parse_answer("```json\n[1, 2]\n```").unwrap();
/// assert_eq!(v, [1, 2]);
/// assert!(squad_protocols::llm::parse_answer::<Vec<u32>>("one, two").unwrap_err().0.starts_with("the answer is not the required JSON"));
/// ```
pub fn parse_answer<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Rejection> {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .map_or(t, |r| r.strip_suffix("```").unwrap_or(r).trim());
    serde_json::from_str(t).map_err(|e| {
        let head: String = t.chars().take(160).collect();
        Rejection(format!("the answer is not the required JSON ({e}): {head}"))
    })
}

/// Text a model wrote that the crew will publish: trimmed, and at most `max` characters.
///
/// ```
/// use squad_protocols::llm::clean_text;
/// assert_eq!(clean_text("  sized from the peak  ", 100, "rationale").unwrap(), "sized from the peak");
/// assert_eq!(clean_text("ok", 100, "note").unwrap_err().0, "note is empty or too short");
/// ```
pub fn clean_text(s: &str, max: usize, what: &str) -> Result<String, Rejection> {
    let t = s.trim();
    if t.chars().count() < 10 {
        return Err(Rejection(format!("{what} is empty or too short")));
    }
    if t.chars().count() > max {
        return Err(Rejection(format!("{what} is longer than {max} characters")));
    }
    Ok(t.to_string())
}
