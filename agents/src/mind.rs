//! The agent loop: a member puts its work to its model and keeps the answer only if it holds.
//!
//! Every member's deterministic skill produces a proposal first. With a model configured for the
//! member, [`deliberate`] sends the member's charter, the incident, the proposal and a set of
//! read-only [`Tool`]s through the redaction gateway ([`squad_runtime::Minds::chat`]); the model
//! may call tools (the loop runs them and sends the results back) and ends with an answer in the
//! member's output type, whose JSON Schema is generated from the Rust type. The answer is parsed
//! and checked against what the member knows; a rejected answer gets one chance to be corrected,
//! and an invalid, off-topic or over-budget answer falls back to the proposal. Either way the
//! incident records a [`EventKind::Deliberated`] with the model, the tokens, the tools called and
//! why a fallback happened. Tools only read; a model never writes to the cluster and never
//! merges: what the member writes is still built by the member's own code from the answer.

// The wall-time budget is real time on purpose: in a simulation the virtual clock holds still
// while a model thinks (see the llm adapter), but the budget limits what the model costs.
#[allow(clippy::disallowed_types)]
use std::time::Instant;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use squad_config::charters;
use squad_protocols::llm::{
    ChatMessage, ChatRequest, Rejection, ResponseSchema, ToolSpec, parse_answer,
};
use squad_protocols::{
    Assignment, Author, DeliberationOutcome, EventKind, IncidentId, Member, Usage,
};
use squad_runtime::redact::Redactor;

use crate::CrewContext;

mod schema;
mod tools;

pub use schema::{strict, strict_schema};
pub use tools::Tool;
use tools::present;

/// How many characters of one tool result reach the model.
const MAX_TOOL_RESULT_CHARS: usize = 6_000;
/// Rejected answers the model may correct before the proposal is used.
const MAX_REPAIRS: u32 = 1;

/// What the loop asks of every model, after the member's charter.
const RULES: &str = "\n\n## How you work here\n\
- You are one member of squad's incident crew. Your deterministic skill already produced a proposal; review it against the evidence and answer with the final decision in the required JSON shape.\n\
- Use the tools to read what you need; they are read-only. You cannot change the cluster or merge anything: what you answer is checked, and the crew writes it through a pull request, an issue or a comment a human reviews.\n\
- Keep the proposal where it is right. Change it only with a reason grounded in what the tools or the incident show, and say that reason.\n\
- Values such as [REDACTED:kind:N] stand for secrets. Never try to guess them; refer to them by the placeholder.\n\
- Answer in English, concisely, with concrete names and numbers from the evidence.";

/// A member's charter: the GitOps repository's `.squad/agents/<name>/charter.md` (the Squad
/// convention) when it has one, else the charter squad ships.
pub async fn charter(ctx: &CrewContext, member: Member) -> String {
    let path = format!(".squad/agents/{}/charter.md", member.id());
    if let Ok(base) = ctx.forge.default_branch().await {
        if let Ok(Some(text)) = ctx.forge.read_file(&path, &base).await {
            if !text.trim().is_empty() {
                return text;
            }
        }
    }
    charters::charter(member).to_string()
}

/// The incident as every member's model sees it (before redaction, which the gateway does).
pub fn incident_brief(a: &Assignment) -> String {
    let d = &a.diagnosis;
    let issue = if a.issue.number == 0 {
        "the incident issue is not filed yet".to_string()
    } else {
        format!("incident issue #{}", a.issue.number)
    };
    let mut s = format!(
        "## Incident {}\nAlert `{}` on {} ({issue}).\n\n## Diagnosis\n{}\nRoot cause: `{}` (confidence {:.0}%).\n",
        a.incident,
        a.alert_name,
        a.workload,
        d.summary,
        d.root_cause.as_str(),
        d.confidence * 100.0
    );
    if !d.evidence.is_empty() {
        s.push_str("\nEvidence:\n");
        for e in &d.evidence {
            s.push_str(&format!("- {}: {}\n", e.source, e.observation));
        }
    }
    if !a.memory.is_empty() {
        s.push_str("\n## Past decisions about this workload\n");
        for m in &a.memory {
            s.push_str(&format!("- {m}\n"));
        }
    }
    if !a.reports.is_empty() {
        s.push_str("\n## What the rest of the crew reported\n");
        for r in &a.reports {
            s.push_str(&format!("- {}: {}\n", r.member.display_name(), r.summary));
        }
    }
    s
}

/// What a member asks its model.
pub struct Ask<'a, T> {
    pub member: Member,
    pub assignment: &'a Assignment,
    /// The decision asked for, in a sentence or two.
    pub task: String,
    /// What the member knows beyond the incident brief (its skill's findings).
    pub context: String,
    /// The deterministic skill's answer: the fallback, and what the model reviews.
    pub proposal: T,
    pub tools: &'a [Tool],
}

/// The answer a member goes on with.
#[derive(Debug, Clone)]
pub struct Thought<T> {
    pub answer: T,
    /// `profile/model` when the model's answer was used.
    pub by_model: Option<String>,
}

/// Where a deliberation stands against its budget.
#[allow(clippy::disallowed_types)]
struct Spend {
    started: Instant,
    usage: Usage,
    /// Calls and tokens spent before this deliberation (this member, this incident).
    member_calls_before: u64,
    incident_tokens_before: u64,
}

impl Spend {
    fn exceeded(&self, b: &squad_config::LlmBudget) -> Option<String> {
        let calls = self.member_calls_before + u64::from(self.usage.calls);
        let tokens = self.incident_tokens_before + self.usage.total_tokens();
        let wall = self.started.elapsed().as_secs();
        if calls >= u64::from(b.max_calls_per_member) {
            Some(format!(
                "call budget spent ({calls} of llm.budget.max_calls_per_member = {})",
                b.max_calls_per_member
            ))
        } else if tokens >= b.max_tokens_per_incident {
            Some(format!(
                "token budget spent ({tokens} of llm.budget.max_tokens_per_incident = {})",
                b.max_tokens_per_incident
            ))
        } else if wall >= b.max_wall_seconds_per_member {
            Some(format!(
                "wall-time budget spent ({wall} s of llm.budget.max_wall_seconds_per_member = {})",
                b.max_wall_seconds_per_member
            ))
        } else {
            None
        }
    }
}

/// Tool arguments with the incident's placeholders restored, for running the tool locally.
fn restore_json(r: &Redactor, v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(r.restore(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| restore_json(r, x)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), restore_json(r, x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn truncate(text: String) -> String {
    if text.chars().count() <= MAX_TOOL_RESULT_CHARS {
        return text;
    }
    let cut: String = text.chars().take(MAX_TOOL_RESULT_CHARS).collect();
    format!("{cut}\n[... truncated at {MAX_TOOL_RESULT_CHARS} characters]")
}

/// Puts `ask` to the member's model, if it has one, and returns the answer to go on with.
/// `check` validates an answer against what the member knows (`Err` says what is wrong).
pub async fn deliberate<T>(
    ctx: &CrewContext,
    ask: Ask<'_, T>,
    check: impl Fn(&T) -> Result<(), Rejection> + Sync,
) -> Thought<T>
where
    T: Serialize + DeserializeOwned + JsonSchema + Clone,
{
    if ctx.minds.model_of(ask.member).is_none() {
        return Thought {
            answer: ask.proposal,
            by_model: None,
        };
    }
    let proposal = match serde_json::to_string_pretty(&ask.proposal) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(member = %ask.member, "proposal not serialisable: {e}");
            return Thought {
                answer: ask.proposal,
                by_model: None,
            };
        }
    };
    let erased = ErasedAsk {
        member: ask.member,
        assignment: ask.assignment,
        task: ask.task.clone(),
        context: ask.context.clone(),
        proposal,
        schema: strict_schema::<T>(),
        tools: ask.tools,
        parse: &|text| {
            parse_answer::<T>(text).and_then(|answer| {
                serde_json::to_value(answer).map_err(|e| Rejection(e.to_string()))
            })
        },
        check: &|v| {
            serde_json::from_value::<T>(v.clone())
                .map_err(|e| Rejection(e.to_string()))
                .and_then(|answer| check(&answer))
        },
    };
    let thought = deliberate_erased(ctx, erased).await;
    match (
        thought
            .answer
            .and_then(|v| serde_json::from_value::<T>(v).ok()),
        thought.by_model,
    ) {
        (Some(answer), Some(model)) => Thought {
            answer,
            by_model: Some(model),
        },
        _ => Thought {
            answer: ask.proposal,
            by_model: None,
        },
    }
}

/// A failure family's proposal put to the member's model (see
/// [`squad_diagnosis::Family::proposal`]): the answer is JSON in the family's type, checked by
/// `check`; `None` when the model's answer is not used.
pub async fn deliberate_proposal(
    ctx: &CrewContext,
    member: Member,
    assignment: &Assignment,
    proposal: squad_diagnosis::Proposal,
    tools: &[Tool],
    check: impl Fn(&Value) -> Result<(), Rejection> + Sync,
) -> Thought<Option<Value>> {
    if ctx.minds.model_of(member).is_none() {
        return Thought {
            answer: None,
            by_model: None,
        };
    }
    let parse = proposal.parse;
    deliberate_erased(
        ctx,
        ErasedAsk {
            member,
            assignment,
            task: proposal.task,
            context: proposal.context,
            proposal: proposal.proposal,
            schema: strict(proposal.schema),
            tools,
            parse: &parse,
            check: &check,
        },
    )
    .await
}

/// An ask with its answer type erased to JSON: the proposal as the model reads it, the answer's
/// strict schema, and how to read and check an answer.
struct ErasedAsk<'a> {
    member: Member,
    assignment: &'a Assignment,
    task: String,
    context: String,
    proposal: String,
    schema: Value,
    tools: &'a [Tool],
    parse: &'a (dyn Fn(&str) -> Result<Value, Rejection> + Sync),
    check: &'a (dyn Fn(&Value) -> Result<(), Rejection> + Sync),
}

async fn deliberate_erased(ctx: &CrewContext, ask: ErasedAsk<'_>) -> Thought<Option<Value>> {
    let Some(info) = ctx.minds.model_of(ask.member).cloned() else {
        return Thought {
            answer: None,
            by_model: None,
        };
    };
    let a = ask.assignment;
    let before = ctx
        .journal
        .load(&a.incident)
        .map(|i| {
            let member = i.llm_usage.get(&ask.member).map_or(0, |u| u.calls);
            let tokens = i
                .llm_usage
                .values()
                .map(|u| u.prompt_tokens + u.completion_tokens)
                .sum();
            (member, tokens)
        })
        .unwrap_or((0, 0));
    #[allow(clippy::disallowed_types)]
    let mut spend = Spend {
        started: Instant::now(),
        usage: Usage::default(),
        member_calls_before: before.0,
        incident_tokens_before: before.1,
    };
    let mut tools_called = Vec::new();
    let outcome = run_loop(ctx, &ask, &mut spend, &mut tools_called).await;
    let (answer, result) = match outcome {
        Ok(answer) => (Some(answer), DeliberationOutcome::Accepted),
        Err(reason) => (None, DeliberationOutcome::Fallback { reason }),
    };
    if let DeliberationOutcome::Fallback { reason } = &result {
        tracing::info!(member = %ask.member, model = %info.label(), "model answer not used: {reason}");
    }
    let event = EventKind::Deliberated {
        member: ask.member,
        model: info.label(),
        outcome: result,
        usage: spend.usage,
        tools: tools_called,
        cost_usd: info.cost_usd(&spend.usage),
        wall_ms: spend.started.elapsed().as_millis() as u64,
    };
    if let Err(e) = ctx
        .journal
        .record(&a.incident, Author::from(ask.member), event)
    {
        tracing::warn!(member = %ask.member, "could not record the deliberation: {e}");
    }
    let by_model = answer.as_ref().map(|_| info.label());
    Thought { answer, by_model }
}

async fn run_loop(
    ctx: &CrewContext,
    ask: &ErasedAsk<'_>,
    spend: &mut Spend,
    tools_called: &mut Vec<String>,
) -> Result<Value, String> {
    let a = ask.assignment;
    let budget = *ctx.minds.budget();
    if let Some(reason) = spend.exceeded(&budget) {
        return Err(reason);
    }
    let redactor = redactor(ctx, &a.incident, &a.workload.namespace).await?;
    let proposal = &ask.proposal;
    let mut messages = vec![
        ChatMessage::system(format!("{}{RULES}", charter(ctx, ask.member).await)),
        ChatMessage::user(format!(
            "{}\n## What you found\n{}\n\n## Your task\n{}\n\n## Your deterministic skill's proposal\n```json\n{proposal}\n```\n\nReview it, use the tools if you need more, and give the final answer as JSON in the required shape.",
            incident_brief(a),
            ask.context.trim(),
            ask.task
        )),
    ];
    let tools: Vec<ToolSpec> = ask.tools.iter().map(Tool::spec).collect();
    let schema = ResponseSchema {
        name: format!("{}_answer", ask.member.id()),
        schema: ask.schema.clone(),
    };
    let max_answer_tokens = ctx
        .minds
        .model_of(ask.member)
        .map_or(640, |m| m.max_answer_tokens);
    let mut repairs = 0;
    loop {
        if let Some(reason) = spend.exceeded(&budget) {
            return Err(reason);
        }
        let req = ChatRequest {
            messages: messages.clone(),
            tools: tools.clone(),
            response_schema: Some(schema.clone()),
            max_tokens: Some(max_answer_tokens),
            temperature: Some(0.0),
        };
        let resp = ctx
            .minds
            .chat(&a.incident, ask.member, req)
            .await
            .map_err(|e| format!("the model call failed: {e}"))?;
        spend.usage.add(&resp.usage);
        if !resp.tool_calls.is_empty() {
            messages.push(ChatMessage::assistant_tool_calls(resp.tool_calls.clone()));
            for call in resp.tool_calls {
                let result = match ask.tools.iter().find(|t| t.name() == call.name) {
                    Some(tool) => {
                        tools_called.push(call.name.clone());
                        let result = tool
                            .run(ctx, a, restore_json(&redactor, &call.arguments))
                            .await
                            .unwrap_or_else(|e| format!("error: {e}"));
                        present(result, &redactor)
                    }
                    None => format!(
                        "error: there is no tool {:?}; the tools are {}",
                        call.name,
                        ask.tools
                            .iter()
                            .map(Tool::name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                messages.push(ChatMessage::tool_result(call.id, truncate(result)));
            }
            continue;
        }
        let text = resp.content.unwrap_or_default();
        let cut = resp.finish_reason == squad_protocols::llm::FinishReason::Length;
        let verdict = (ask.parse)(&text)
            .map_err(|e| {
                if cut {
                    Rejection(format!(
                        "the answer was cut off at {max_answer_tokens} tokens; be brief ({e})"
                    ))
                } else {
                    e
                }
            })
            .and_then(|answer| (ask.check)(&answer).map(|()| answer));
        match verdict {
            Ok(answer) => return Ok(answer),
            Err(reason) if repairs < MAX_REPAIRS => {
                repairs += 1;
                messages.push(ChatMessage::assistant(text));
                messages.push(ChatMessage::user(format!(
                    "That answer was rejected: {reason}. Answer again with JSON in the required shape, fixing this."
                )));
            }
            Err(reason) => return Err(format!("the answer was rejected: {reason}")),
        }
    }
}

/// The incident's redactor, seeded once with the values of the namespace's Secrets.
pub(crate) async fn redactor(
    ctx: &CrewContext,
    incident: &IncidentId,
    namespace: &str,
) -> Result<std::sync::Arc<Redactor>, String> {
    ctx.minds
        .redactor(incident, || async {
            match ctx.cluster.secret_values(namespace).await {
                Ok(values) => values,
                Err(e) => {
                    // Without them the detectors still run; values with no telltale shape
                    // could pass, so say so.
                    tracing::warn!(
                        namespace,
                        "Secret values unreadable for redaction ({e}); only the detectors apply"
                    );
                    Vec::new()
                }
            }
        })
        .await
        .map_err(|e| e.to_string())
}

pub use squad_protocols::llm::clean_text;

#[cfg(test)]
mod tests;
