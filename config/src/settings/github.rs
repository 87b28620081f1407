//! `[github]`: the GitOps repository on GitHub, its credentials and its webhooks.

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// `[github]`: the GitOps repository on GitHub (or GitHub Enterprise) and its webhooks.
///
/// With `repo` set, the daemon files issues and opens pull requests there through the GitHub API
/// (token from the environment variable `token_env`); without it, on its local simulated forge.
/// Webhook signing secrets (several while rotating) are for `POST /v1/webhooks/github`;
/// environment override `SQUAD_GITHUB_WEBHOOK_SECRETS` (comma-separated). Without one, the
/// endpoint refuses every delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitHubSettings {
    /// The API base: `https://api.github.com`, or `https://<host>/api/v3` for GitHub Enterprise.
    pub url: String,
    /// `OWNER/NAME` of the GitOps repository.
    pub repo: Option<String>,
    /// The environment variable holding the token (never the token itself).
    pub token_env: String,
    /// Authenticate as a GitHub App installation instead of with a token: the App's id, the
    /// installation's id and the App's private key file (PEM).
    pub app_id: Option<u64>,
    pub installation_id: Option<u64>,
    pub private_key_path: Option<String>,
    /// Open remediation pull requests as drafts.
    pub draft_prs: bool,
    pub webhook_secrets: Vec<String>,
}

impl Default for GitHubSettings {
    fn default() -> Self {
        GitHubSettings {
            url: "https://api.github.com".into(),
            repo: None,
            token_env: "GITHUB_TOKEN".into(),
            app_id: None,
            installation_id: None,
            private_key_path: None,
            draft_prs: false,
            webhook_secrets: Vec::new(),
        }
    }
}

impl GitHubSettings {
    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let field = |name: &str, expected: &str| {
            Err(ConfigError::field(
                origin,
                format!("github.{name}"),
                expected,
            ))
        };
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return field("url", "the API base URL, such as https://api.github.com");
        }
        if let Some(r) = &self.repo {
            let parts: Vec<&str> = r.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                return field("repo", "OWNER/NAME of the GitOps repository");
            }
        }
        match (self.app_id, self.installation_id, &self.private_key_path) {
            (None, None, None) | (Some(_), Some(_), Some(_)) => {}
            _ => {
                return field(
                    "app_id",
                    "app_id, installation_id and private_key_path together (a GitHub App), or none of them (a token)",
                );
            }
        }
        let is_name = !self.token_env.is_empty()
            && self
                .token_env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_name {
            return field(
                "token_env",
                "the name of an environment variable holding the token (such as GITHUB_TOKEN), not the token itself",
            );
        }
        Ok(())
    }
}
