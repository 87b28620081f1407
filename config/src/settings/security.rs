//! `[security]`: what Worf holds the workload to beyond the scanners' defaults.

use serde::{Deserialize, Serialize};

use crate::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySettings {
    /// The registries images may come from (`ghcr.io`, `registry.example.com:5000`; Docker Hub
    /// is `docker.io`). Empty: any registry; otherwise an image from another is a High finding.
    pub allowed_registries: Vec<String>,
    /// Labels that mark a closed security issue as a risk the team accepted: Worf does not
    /// reopen it for the findings already on it (an issue closed as "not planned" counts too).
    pub accepted_risk_labels: Vec<String>,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            allowed_registries: Vec::new(),
            accepted_risk_labels: vec!["accepted-risk".into()],
        }
    }
}

impl SecuritySettings {
    pub(crate) fn validate(&self, file: &str) -> Result<(), ConfigError> {
        if let Some(bad) = self
            .allowed_registries
            .iter()
            .find(|r| r.is_empty() || r.contains('/') || r.chars().any(char::is_whitespace))
        {
            return Err(ConfigError::field(
                file,
                "security.allowed_registries",
                format!(
                    "registry hosts like ghcr.io or registry.example.com:5000, without a path; {bad:?} is not one"
                ),
            ));
        }
        // GitHub's label names: at most 50 characters.
        if let Some(bad) = self
            .accepted_risk_labels
            .iter()
            .find(|l| l.trim().is_empty() || l.chars().count() > 50)
        {
            return Err(ConfigError::field(
                file,
                "security.accepted_risk_labels",
                format!("label names of 1 to 50 characters; {bad:?} is not one"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::Settings;

    #[test]
    fn allowed_registries_are_hosts_and_a_path_is_named_as_the_error() {
        let ok = Settings::from_toml(
            "t.toml",
            "[security]\nallowed_registries = [\"ghcr.io\", \"registry.example.com:5000\"]\n",
        )
        .unwrap();
        assert_eq!(ok.security.allowed_registries.len(), 2);
        let e = Settings::from_toml(
            "t.toml",
            "[security]\nallowed_registries = [\"ghcr.io/acme\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("security.allowed_registries") && e.contains("ghcr.io/acme"),
            "{e}"
        );
    }

    #[test]
    fn accepted_risk_labels_default_to_one_and_an_empty_label_is_named() {
        let d = Settings::from_toml("t.toml", "").unwrap();
        assert_eq!(d.security.accepted_risk_labels, ["accepted-risk"]);
        let e = Settings::from_toml("t.toml", "[security]\naccepted_risk_labels = [\" \"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("security.accepted_risk_labels"), "{e}");
    }
}
