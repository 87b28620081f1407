//! HolmesGPT's outputs (0.45.0), read tolerantly where HolmesGPT adds fields and strictly where
//! squad relies on one: the answer text, the tool calls, and the JSON block squad asked for.

use serde::Deserialize;
use serde_json::{Value, json};
use squad_protocols::{RootCause, Usage};

use super::{root_cause_of, root_causes, value_text};

/// Characters of a tool's output kept as evidence.
const EXCERPT_CHARS: usize = 600;

/// One HolmesGPT run as its output describes it, whichever transport.
#[derive(Debug, Clone, PartialEq)]
pub struct HolmesRun {
    /// HolmesGPT's answer as it wrote it.
    pub text: String,
    pub tools: Vec<ToolEvidence>,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
}

/// A run whose answer carries the fields squad needs.
#[derive(Debug, Clone, PartialEq)]
pub struct HolmesAnswer {
    pub run: HolmesRun,
    pub structured: Structured,
}

impl HolmesRun {
    /// The answer's JSON block, read strictly.
    pub fn answer(self) -> Result<HolmesAnswer, String> {
        let structured = structured_from_text(&self.text)?;
        Ok(HolmesAnswer {
            run: self,
            structured,
        })
    }
}

/// The JSON block squad asks HolmesGPT to end with.
#[derive(Debug, Clone, PartialEq)]
pub struct Structured {
    pub root_cause: RootCause,
    pub summary: String,
    pub confidence: f64,
    pub recommendations: Vec<String>,
    pub memory_limit: Option<String>,
    pub memory_peak: Option<String>,
}

/// One tool HolmesGPT ran, as evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolEvidence {
    pub tool: String,
    /// What it ran (e.g. the kubectl command).
    pub description: String,
    pub ok: bool,
    /// The start of its output (or its error).
    pub excerpt: String,
}

// The CLI's `--json-output-file` (holmes ask; each result of `investigate`): only what squad reads.
#[derive(Deserialize)]
struct AskOutput {
    result: Option<Value>,
    tool_calls: Option<Vec<WireToolCall>>,
    #[serde(default)]
    total_cost: Option<f64>,
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    num_llm_calls: Option<u32>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    tool_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    result: Option<WireToolResult>,
}

#[derive(Deserialize)]
struct WireToolResult {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Deserialize)]
struct InvestigateEntry {
    issue: Option<Value>,
    result: Option<Value>,
}

/// The CLI's output of `holmes ask`.
pub fn parse_ask_output(text: &str) -> Result<HolmesRun, String> {
    let raw: Value = serde_json::from_str(text)
        .map_err(|e| format!("HolmesGPT's output file is not JSON ({e})"))?;
    from_ask(raw)
}

fn from_ask(raw: Value) -> Result<HolmesRun, String> {
    if !raw.is_object() {
        return Err(format!(
            "HolmesGPT's output is not the JSON object `holmes ask` writes (got {})",
            kind_of(&raw)
        ));
    }
    let out: AskOutput = serde_json::from_value(raw)
        .map_err(|e| format!("HolmesGPT's output has an unexpected shape: {e}"))?;
    let text = match out.result {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::String(_)) => return Err("HolmesGPT's `result` is empty".into()),
        Some(other) => {
            return Err(format!(
                "HolmesGPT's `result` is {}, expected the answer text",
                kind_of(&other)
            ));
        }
        None => return Err("HolmesGPT's output has no `result` (the answer text)".into()),
    };
    let tool_calls = out
        .tool_calls
        .ok_or("HolmesGPT's output has no `tool_calls` list")?;
    Ok(HolmesRun {
        tools: tool_calls.iter().map(evidence).collect(),
        usage: Usage {
            calls: out.num_llm_calls.unwrap_or(0),
            prompt_tokens: out.prompt_tokens.unwrap_or(0),
            completion_tokens: out.completion_tokens.unwrap_or(0),
        },
        cost_usd: out.total_cost,
        text,
    })
}

/// The CLI's output of `holmes investigate alertmanager`: one result per alert; the one whose
/// labels match `alert` (or the only one) is used.
pub fn parse_investigate_output(
    text: &str,
    alert: &squad_protocols::Alert,
) -> Result<HolmesRun, String> {
    let raw: Value = serde_json::from_str(text)
        .map_err(|e| format!("HolmesGPT's output file is not JSON ({e})"))?;
    let Value::Array(items) = raw else {
        return Err(format!(
            "HolmesGPT's investigate output is not a list of results (got {})",
            kind_of(&raw)
        ));
    };
    let entries: Vec<InvestigateEntry> = items
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("HolmesGPT's investigate output has an unexpected shape: {e}"))?;
    let matches = |e: &InvestigateEntry| {
        let labels = e
            .issue
            .as_ref()
            .and_then(|i| i.get("raw"))
            .and_then(|r| r.get("labels"));
        ["alertname", "namespace", "pod"].iter().all(|k| {
            let want = if *k == "alertname" {
                Some(alert.name.as_str())
            } else {
                alert.labels.get(*k).map(String::as_str)
            };
            match (want, labels.and_then(|l| l.get(*k)).and_then(Value::as_str)) {
                (Some(w), Some(got)) => w == got,
                (None, _) => true,
                (Some(_), None) => false,
            }
        })
    };
    let n = entries.len();
    let entry = match entries.iter().position(matches) {
        Some(i) => entries.into_iter().nth(i),
        None if n == 1 => entries.into_iter().next(),
        None => None,
    }
    .ok_or_else(|| {
        format!(
            "HolmesGPT investigated {n} alert(s), none of them {} on {}",
            alert.name,
            alert.labels.get("pod").map_or("?", String::as_str)
        )
    })?;
    from_ask(entry.result.ok_or("an investigate entry has no `result`")?)
}

/// The server's `POST /api/chat` answer: `{analysis, tool_calls, metadata}`; the analysis is
/// the JSON squad's response format asked for (or text ending in the JSON block).
pub fn parse_chat_output(text: &str) -> Result<HolmesRun, String> {
    let raw: Value =
        serde_json::from_str(text).map_err(|e| format!("HolmesGPT's answer is not JSON ({e})"))?;
    let analysis = match raw.get("analysis") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Object(_)) => raw["analysis"].to_string(),
        _ => return Err("HolmesGPT's answer has no `analysis`".into()),
    };
    let tool_calls: Vec<WireToolCall> = match raw.get("tool_calls") {
        Some(v @ Value::Array(_)) => serde_json::from_value(v.clone())
            .map_err(|e| format!("HolmesGPT's `tool_calls` has an unexpected shape: {e}"))?,
        Some(Value::Null) | None => Vec::new(),
        Some(other) => {
            return Err(format!(
                "HolmesGPT's `tool_calls` is {}, expected a list",
                kind_of(other)
            ));
        }
    };
    let usage = raw
        .get("metadata")
        .and_then(|m| m.get("usage"))
        .cloned()
        .unwrap_or(Value::Null);
    Ok(HolmesRun {
        tools: tool_calls.iter().map(evidence).collect(),
        usage: Usage {
            calls: 0,
            prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
            completion_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
        },
        cost_usd: raw
            .get("metadata")
            .and_then(|m| m.get("total_cost"))
            .and_then(Value::as_f64),
        text: analysis,
    })
}

fn evidence(t: &WireToolCall) -> ToolEvidence {
    let r = t.result.as_ref();
    let ok = r
        .and_then(|r| r.status.as_deref())
        .is_none_or(|s| s == "success");
    let body = r
        .and_then(|r| {
            if ok {
                r.data.as_ref().map(value_text)
            } else {
                r.error.clone().or_else(|| r.data.as_ref().map(value_text))
            }
        })
        .unwrap_or_default();
    let body = body.trim();
    let excerpt: String = body.chars().take(EXCERPT_CHARS).collect();
    ToolEvidence {
        tool: t.tool_name.clone().unwrap_or_else(|| "tool".into()),
        description: t.description.clone().unwrap_or_default(),
        ok,
        excerpt: if body.chars().count() > EXCERPT_CHARS {
            format!("{excerpt} …")
        } else {
            excerpt
        },
    }
}

/// The JSON block at the end of HolmesGPT's answer (or the whole answer, when it is JSON).
pub fn structured_from_text(text: &str) -> Result<Structured, String> {
    let block = last_json_object(text).ok_or_else(|| {
        "HolmesGPT's answer has no JSON block with the root cause (it was asked to end with one)"
            .to_string()
    })?;
    let v: Value = serde_json::from_str(block)
        .map_err(|e| format!("the JSON block in HolmesGPT's answer does not parse ({e})"))?;
    let field = |k: &str| v.get(k).filter(|x| !x.is_null());
    let root = field("root_cause")
        .and_then(Value::as_str)
        .ok_or("the JSON block has no `root_cause`")?;
    let root_cause = root_cause_of(root).ok_or_else(|| {
        format!(
            "the JSON block's root_cause {root:?} is not one of {}",
            root_causes().join(", ")
        )
    })?;
    let summary = field("summary")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or("the JSON block has no `summary`")?
        .to_string();
    let confidence = match field("confidence") {
        None => 0.5,
        Some(c) => c
            .as_f64()
            .filter(|c| (0.0..=1.0).contains(c))
            .ok_or_else(|| {
                format!("the JSON block's confidence {c} is not a number from 0 to 1")
            })?,
    };
    let recommendations = match field("recommendations") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(other) => {
            return Err(format!(
                "the JSON block's recommendations is {}, expected a list",
                kind_of(other)
            ));
        }
    };
    let quantity = |k: &str| field(k).and_then(Value::as_str).map(str::to_string);
    Ok(Structured {
        root_cause,
        summary,
        confidence,
        recommendations,
        memory_limit: quantity("memory_limit"),
        memory_peak: quantity("memory_peak"),
    })
}

/// The last top-level `{...}` in `text`: a fenced ```json block's content, else the last
/// balanced object (strings and escapes respected).
fn last_json_object(text: &str) -> Option<&str> {
    if let Some(start) = text.rfind("```json") {
        let rest = &text[start + 7..];
        let end = rest.find("```").unwrap_or(rest.len());
        let block = rest[..end].trim();
        if block.starts_with('{') {
            return Some(block);
        }
    }
    let bytes = text.as_bytes();
    let (mut depth, mut in_str, mut escaped) = (0i32, false, false);
    let mut best: Option<(usize, usize)> = None;
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' if depth > 0 => in_str = true,
            b'{' => {
                if depth == 0 {
                    start = i;
                }
                depth += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    best = Some((start, i + 1));
                }
            }
            _ => {}
        }
    }
    best.map(|(s, e)| &text[s..e])
}

/// The JSON Schema of the block, for the server's `response_format`.
pub fn structured_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["root_cause", "summary", "confidence", "recommendations", "memory_limit", "memory_peak"],
        "properties": {
            "root_cause": {"type": "string", "enum": root_causes()},
            "summary": {"type": "string"},
            "confidence": {"type": "number"},
            "recommendations": {"type": "array", "items": {"type": "string"}},
            "memory_limit": {"type": ["string", "null"]},
            "memory_peak": {"type": ["string", "null"]}
        }
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
