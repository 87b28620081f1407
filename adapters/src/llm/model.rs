//! The LLM client as the crew's [`Model`] port, and the crew's models built from `[llm]`.
//!
//! Model calls run on real time ([`crate::realtime`]): in a simulation the virtual clock holds
//! still while the model thinks, so the same run replays the same way.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use squad_config::LlmSettings;
use squad_protocols::Member;
use squad_protocols::llm::{ChatRequest, ChatResponse};
use squad_runtime::ports::{PortError, PortResult};
use squad_runtime::{Minds, Model, ModelInfo};

use super::{LlmClient, LlmError};

/// One profile's client as a member's model.
pub struct LlmModel {
    client: Arc<LlmClient>,
    info: ModelInfo,
}

impl LlmModel {
    pub fn new(client: Arc<LlmClient>, info: ModelInfo) -> Self {
        LlmModel { client, info }
    }
}

fn port_error(what: &str, e: LlmError) -> PortError {
    match e {
        LlmError::Timeout { .. } | LlmError::Unreachable { .. } | LlmError::RateLimited { .. } => {
            PortError::Unavailable {
                what: what.into(),
                detail: e.to_string(),
            }
        }
        other => PortError::failed(what, other),
    }
}

#[async_trait]
impl Model for LlmModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn chat(&self, req: ChatRequest) -> PortResult<ChatResponse> {
        let what = format!("model {}", self.info.label());
        let client = self.client.clone();
        crate::realtime::run(async move { client.chat(req).await })
            .await
            .map_err(|e| PortError::failed(&what, e))?
            .map_err(|e| port_error(&what, e))
    }
}

/// The crew's models from `[llm]`: one client per profile, shared by the members using it.
/// `env` reads API keys (the process environment in the binary).
pub fn minds_from_settings(
    llm: &LlmSettings,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Minds, LlmError> {
    let mut clients: HashMap<String, Arc<LlmClient>> = HashMap::new();
    let mut models: HashMap<Member, Arc<dyn Model>> = HashMap::new();
    for member in Member::ALL {
        let Some((name, profile)) = llm.profile_for(member) else {
            continue;
        };
        let client = match clients.get(name) {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(
                    LlmClient::with_env(profile, &env)
                        .map_err(|e| LlmError::Config(format!("llm.profiles.{name}: {e}")))?,
                );
                clients.insert(name.to_string(), c.clone());
                c
            }
        };
        let prices = match (
            profile.prompt_usd_per_million,
            profile.completion_usd_per_million,
        ) {
            (None, None) => None,
            (p, c) => Some((p.unwrap_or(0.0), c.unwrap_or(0.0))),
        };
        let info = ModelInfo {
            profile: name.to_string(),
            model: if profile.model.is_empty() {
                profile.deployment.clone().unwrap_or_default()
            } else {
                profile.model.clone()
            },
            endpoint: client.endpoint().to_string(),
            prices,
            max_answer_tokens: profile.max_answer_tokens,
        };
        models.insert(member, Arc::new(LlmModel::new(client, info)));
    }
    Minds::new(models, llm.budget, llm.redact_patterns.clone())
        .map_err(|e| LlmError::Config(format!("llm.redact_patterns: {e}")))
}
