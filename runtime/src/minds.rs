//! The crew's models, behind one gateway.
//!
//! [`Minds`] holds each member's [`Model`] (or none: that member's deterministic skills decide
//! alone), the budget, and one [`Redactor`] per incident. [`Minds::chat`] is the only way a
//! request reaches a model, and it redacts every message, tool description and tool-call
//! argument first; placeholders are stable over the incident, so the model can refer to
//! `[REDACTED:password:1]` across calls, and the crew restores them only for local use (running a
//! tool), never in what it writes.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use dashmap::DashMap;
use squad_config::LlmBudget;
use squad_protocols::llm::{ChatMessage, ChatRequest, ChatResponse, ToolCall};
use squad_protocols::{IncidentId, Member, Usage};

use crate::ports::PortResult;
use crate::redact::{RedactError, Redactor};

/// Which model a member thinks with, for the record and the cost estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The `[llm.profiles.<name>]` it comes from (or `cli` for `--llm-base-url`).
    pub profile: String,
    pub model: String,
    /// Where requests go (the chat completions URL).
    pub endpoint: String,
    /// US dollars per million prompt and completion tokens, when known.
    pub prices: Option<(f64, f64)>,
    /// The longest answer per call, in tokens.
    pub max_answer_tokens: u32,
}

impl ModelInfo {
    /// `profile/model`, as the incident records it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.profile, self.model)
    }

    /// The estimated cost of `usage`, when the profile has prices.
    pub fn cost_usd(&self, usage: &Usage) -> Option<f64> {
        self.prices.map(|(prompt, completion)| {
            (usage.prompt_tokens as f64 * prompt + usage.completion_tokens as f64 * completion)
                / 1_000_000.0
        })
    }
}

/// A chat model (the LLM adapter implements it; tests use scripted ones).
#[async_trait]
pub trait Model: Send + Sync {
    fn info(&self) -> &ModelInfo;
    async fn chat(&self, req: ChatRequest) -> PortResult<ChatResponse>;
}

struct IncidentRedaction {
    redactor: Arc<Redactor>,
    /// Set once the namespace's Secret values were added.
    seeded: tokio::sync::OnceCell<()>,
}

/// The crew's models, their budget, and the redaction gateway in front of them.
pub struct Minds {
    models: HashMap<Member, Arc<dyn Model>>,
    budget: LlmBudget,
    patterns: Vec<String>,
    redaction: DashMap<IncidentId, Arc<IncidentRedaction>>,
}

impl std::fmt::Debug for Minds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut members: Vec<_> = self
            .models
            .iter()
            .map(|(m, model)| (m.id(), model.info().label()))
            .collect();
        members.sort();
        f.debug_struct("Minds")
            .field("members", &members)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl Default for Minds {
    fn default() -> Self {
        Minds::none()
    }
}

impl Minds {
    /// No models: every member's deterministic skills decide.
    pub fn none() -> Minds {
        Minds {
            models: HashMap::new(),
            budget: LlmBudget::default(),
            patterns: Vec::new(),
            redaction: DashMap::new(),
        }
    }

    /// Members' models, what they may spend, and extra redaction patterns (checked here).
    pub fn new(
        models: HashMap<Member, Arc<dyn Model>>,
        budget: LlmBudget,
        redact_patterns: Vec<String>,
    ) -> Result<Minds, RedactError> {
        Redactor::new(&redact_patterns)?;
        Ok(Minds {
            models,
            budget,
            patterns: redact_patterns,
            redaction: DashMap::new(),
        })
    }

    /// The same minds with each distinct model replaced by `wrap(model)` (members that share a
    /// model share its replacement): how the crew puts its models behind adapter actors.
    pub fn with_models(&self, mut wrap: impl FnMut(Arc<dyn Model>) -> Arc<dyn Model>) -> Minds {
        let mut wrapped: Vec<(Arc<dyn Model>, Arc<dyn Model>)> = Vec::new();
        let mut members: Vec<(&Member, &Arc<dyn Model>)> = self.models.iter().collect();
        members.sort_by_key(|(m, _)| m.id());
        let mut models = HashMap::new();
        for (member, model) in members {
            let replacement = match wrapped.iter().find(|(from, _)| Arc::ptr_eq(from, model)) {
                Some((_, to)) => to.clone(),
                None => {
                    let to = wrap(model.clone());
                    wrapped.push((model.clone(), to.clone()));
                    to
                }
            };
            models.insert(*member, replacement);
        }
        Minds {
            models,
            budget: self.budget,
            patterns: self.patterns.clone(),
            redaction: DashMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The model `member` thinks with, if any.
    pub fn model_of(&self, member: Member) -> Option<&ModelInfo> {
        self.models.get(&member).map(|m| m.info())
    }

    pub fn budget(&self) -> &LlmBudget {
        &self.budget
    }

    fn incident(&self, incident: &IncidentId) -> PortResult<Arc<IncidentRedaction>> {
        if let Some(r) = self.redaction.get(incident) {
            return Ok(r.clone());
        }
        // The patterns compiled in `new`; this only fails if the built-ins do not.
        let redactor = Redactor::new(&self.patterns)
            .map_err(|e| crate::ports::PortError::failed("the redaction gateway", e))?;
        Ok(self
            .redaction
            .entry(incident.clone())
            .or_insert_with(|| {
                Arc::new(IncidentRedaction {
                    redactor: Arc::new(redactor),
                    seeded: tokio::sync::OnceCell::new(),
                })
            })
            .clone())
    }

    /// The incident's redactor. The first caller adds the values `secrets` returns (the data of
    /// the namespace's Kubernetes Secrets) before anyone uses it; later callers wait for that.
    pub async fn redactor<F, Fut>(
        &self,
        incident: &IncidentId,
        secrets: F,
    ) -> PortResult<Arc<Redactor>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Vec<String>>,
    {
        let r = self.incident(incident)?;
        r.seeded
            .get_or_init(|| async {
                r.redactor.add_secret_values(secrets().await);
            })
            .await;
        Ok(r.redactor.clone())
    }

    /// Drops an incident's redactor (its placeholders' values) once it is settled.
    pub fn forget(&self, incident: &IncidentId) {
        self.redaction.remove(incident);
    }

    /// The gateway: redacts the whole request with the incident's redactor and sends it to
    /// `member`'s model.
    pub async fn chat(
        &self,
        incident: &IncidentId,
        member: Member,
        req: ChatRequest,
    ) -> PortResult<ChatResponse> {
        let model = self.models.get(&member).ok_or_else(|| {
            crate::ports::PortError::failed(
                format!("{}'s model", member.display_name()),
                "no model is configured for this member",
            )
        })?;
        let redactor = self.incident(incident)?.redactor.clone();
        model.chat(redact_request(&redactor, req)).await
    }
}

/// Every string of `req` that reaches the wire, redacted.
pub fn redact_request(r: &Redactor, req: ChatRequest) -> ChatRequest {
    let message = |m: ChatMessage| ChatMessage {
        content: r.redact(&m.content),
        tool_calls: m
            .tool_calls
            .into_iter()
            .map(|c| ToolCall {
                arguments: r.redact_json(&c.arguments),
                ..c
            })
            .collect(),
        ..m
    };
    ChatRequest {
        messages: req.messages.into_iter().map(message).collect(),
        tools: req
            .tools
            .into_iter()
            .map(|mut t| {
                t.description = r.redact(&t.description);
                t
            })
            .collect(),
        ..req
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use squad_protocols::llm::{FinishReason, ToolProtocol};
    use std::sync::Mutex;

    struct Echo {
        info: ModelInfo,
        seen: Mutex<Vec<ChatRequest>>,
    }

    #[async_trait]
    impl Model for Echo {
        fn info(&self) -> &ModelInfo {
            &self.info
        }
        async fn chat(&self, req: ChatRequest) -> PortResult<ChatResponse> {
            self.seen.lock().unwrap().push(req);
            Ok(ChatResponse {
                content: Some("ok".into()),
                tool_calls: Vec::new(),
                usage: Usage::default(),
                model: "echo".into(),
                finish_reason: FinishReason::Stop,
                tool_protocol: ToolProtocol::JsonSchema,
            })
        }
    }

    #[tokio::test]
    async fn the_gateway_redacts_messages_tool_arguments_and_secret_values() {
        let echo = Arc::new(Echo {
            info: ModelInfo {
                profile: "p".into(),
                model: "m".into(),
                endpoint: "http://127.0.0.1:1/v1/chat/completions".into(),
                prices: Some((2.5, 10.0)),
                max_answer_tokens: 640,
            },
            seen: Mutex::new(Vec::new()),
        });
        let minds = Minds::new(
            HashMap::from([(Member::Data, echo.clone() as Arc<dyn Model>)]),
            LlmBudget::default(),
            vec![r"ticket-(?P<secret>\d{6})".into()],
        )
        .unwrap();
        let inc = IncidentId("inc-1".into());
        minds
            .redactor(&inc, || async { vec!["hunter2-but-longer".to_string()] })
            .await
            .unwrap();
        let req = ChatRequest {
            messages: vec![
                ChatMessage::user("db password is hunter2-but-longer, ticket-123456"),
                ChatMessage::assistant_tool_calls(vec![ToolCall::new(
                    "c1",
                    "read",
                    serde_json::json!({"q": "hunter2-but-longer"}),
                )]),
            ],
            ..ChatRequest::default()
        };
        minds.chat(&inc, Member::Data, req).await.unwrap();
        let sent = serde_json::to_string(&echo.seen.lock().unwrap()[0]).unwrap();
        assert!(!sent.contains("hunter2-but-longer"), "{sent}");
        assert!(!sent.contains("123456"), "{sent}");
        assert!(sent.contains("[REDACTED:"), "{sent}");
        // No model for Worf: a clear error, not a call.
        let e = minds
            .chat(&inc, Member::Worf, ChatRequest::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no model"), "{e}");
        let cost = echo.info.cost_usd(&Usage {
            calls: 1,
            prompt_tokens: 1_000_000,
            completion_tokens: 100_000,
        });
        assert_eq!(cost, Some(3.5));
    }
}
