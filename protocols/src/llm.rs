//! Provider-neutral model types: messages, token usage and budgets.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
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
