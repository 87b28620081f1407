//! Which models the crew thinks with: `[llm]` in squad.toml, narrowed or replaced on the command
//! line (`--llm <profile>`, or `--llm-base-url URL --llm-model NAME` with no config file).

use std::sync::Arc;

use squad_adapters::llm::minds_from_settings;
use squad_config::{LlmProfile, LlmProvider, LlmSettings, LlmToolMode, Settings};
use squad_runtime::Minds;

/// The command line's say in the choice of model.
#[derive(Debug, Clone, Default)]
pub struct LlmChoice {
    /// `--llm <profile>`: every member uses this profile of `[llm]`.
    pub profile: Option<String>,
    /// `--llm-base-url`: an OpenAI-compatible API base (`.../v1`), no config file needed.
    pub base_url: Option<String>,
    /// `--llm-model`.
    pub model: Option<String>,
    /// `--llm-tool-mode`.
    pub tool_mode: Option<LlmToolMode>,
}

/// The `[llm]` settings in effect, or `None` for the deterministic crew. `env` reads variables
/// (only to see whether `OPENAI_API_KEY` is set for the quick path).
pub fn effective_llm(
    settings: &Settings,
    choice: &LlmChoice,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<LlmSettings>> {
    match (&choice.base_url, &choice.model, &choice.profile) {
        (Some(_), _, Some(_)) => {
            anyhow::bail!(
                "--llm and --llm-base-url: choose a profile of [llm] or a base URL, not both"
            )
        }
        (Some(url), Some(model), None) => {
            let openai = url.trim_end_matches('/') == LlmProfile::OPENAI_BASE_URL;
            let has_key = env("OPENAI_API_KEY").is_some_and(|k| !k.trim().is_empty());
            if openai && !has_key {
                anyhow::bail!("--llm-base-url {url}: set OPENAI_API_KEY to the API key");
            }
            let profile = LlmProfile {
                provider: if openai {
                    LlmProvider::Openai
                } else {
                    LlmProvider::OpenaiCompatible
                },
                base_url: Some(url.clone()),
                model: model.clone(),
                api_key_env: has_key.then(|| "OPENAI_API_KEY".to_string()),
                tool_mode: choice.tool_mode.unwrap_or_default(),
                ..LlmProfile::default()
            };
            let llm = LlmSettings {
                default: Some("cli".into()),
                profiles: [("cli".to_string(), profile)].into(),
                budget: settings.llm.as_ref().map(|l| l.budget).unwrap_or_default(),
                redact_patterns: settings
                    .llm
                    .as_ref()
                    .map(|l| l.redact_patterns.clone())
                    .unwrap_or_default(),
                ..LlmSettings::default()
            };
            let mut s = settings.clone();
            s.llm = Some(llm.clone());
            s.validate("--llm-base-url/--llm-model")?;
            Ok(Some(llm))
        }
        (Some(_), None, None) => anyhow::bail!("--llm-base-url needs --llm-model NAME"),
        (None, Some(_), _) => anyhow::bail!("--llm-model needs --llm-base-url URL"),
        (None, None, Some(name)) => {
            let Some(llm) = &settings.llm else {
                anyhow::bail!(
                    "--llm {name}: the configuration has no [llm] section (pass --config with [llm.profiles.{name}], or use --llm-base-url and --llm-model)"
                );
            };
            let Some(profile) = llm.profiles.get(name) else {
                let names: Vec<&str> = llm.profiles.keys().map(String::as_str).collect();
                anyhow::bail!(
                    "--llm {name}: no such profile in [llm] (profiles: {})",
                    names.join(", ")
                );
            };
            let mut profile = profile.clone();
            if let Some(mode) = choice.tool_mode {
                profile.tool_mode = mode;
            }
            Ok(Some(LlmSettings {
                default: Some(name.clone()),
                profiles: [(name.clone(), profile)].into(),
                members: Default::default(),
                ..llm.clone()
            }))
        }
        (None, None, None) => {
            let mut llm = settings.llm.clone();
            if let (Some(l), Some(mode)) = (&mut llm, choice.tool_mode) {
                l.profiles.values_mut().for_each(|p| p.tool_mode = mode);
            }
            Ok(llm)
        }
    }
}

/// The crew's models for `settings` and `choice` (no models when nothing is configured).
pub fn minds(
    settings: &Settings,
    choice: &LlmChoice,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Arc<Minds>> {
    match effective_llm(settings, choice, &env)? {
        None => Ok(Arc::new(Minds::none())),
        Some(llm) => Ok(Arc::new(minds_from_settings(&llm, env)?)),
    }
}

/// One line per member saying what it thinks with.
pub fn describe(minds: &Minds) -> Vec<String> {
    squad_protocols::Member::ALL
        .iter()
        .map(|m| match minds.model_of(*m) {
            Some(info) => format!(
                "{:<9} {} at {}",
                m.display_name(),
                info.label(),
                info.endpoint
            ),
            None => format!("{:<9} deterministic skills only", m.display_name()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_quick_path_needs_no_config_and_names_what_is_missing() {
        let s = Settings::default();
        let choice = LlmChoice {
            base_url: Some("http://127.0.0.1:8081/v1".into()),
            model: Some("smollm2".into()),
            ..LlmChoice::default()
        };
        let llm = effective_llm(&s, &choice, none).unwrap().unwrap();
        let (name, p) = llm.profile_for(squad_protocols::Member::Scribe).unwrap();
        assert_eq!((name, p.model.as_str()), ("cli", "smollm2"));
        assert_eq!(p.api_key_env(), None);
        let with_key = effective_llm(&s, &choice, |_| Some("sk-x".into()))
            .unwrap()
            .unwrap();
        assert_eq!(
            with_key.profiles["cli"].api_key_env(),
            Some("OPENAI_API_KEY")
        );
        let e = effective_llm(
            &s,
            &LlmChoice {
                model: None,
                ..choice.clone()
            },
            none,
        )
        .unwrap_err();
        assert!(e.to_string().contains("--llm-model"), "{e}");
        let e = effective_llm(
            &s,
            &LlmChoice {
                base_url: Some(LlmProfile::OPENAI_BASE_URL.into()),
                ..choice
            },
            none,
        )
        .unwrap_err();
        assert!(e.to_string().contains("OPENAI_API_KEY"), "{e}");
        assert!(
            effective_llm(&s, &LlmChoice::default(), none)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_named_profile_must_exist() {
        let s = Settings::from_toml(
            "squad.toml",
            "[llm]\ndefault = \"a\"\n[llm.profiles.a]\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n[llm.profiles.b]\nbase_url = \"http://127.0.0.1:2/v1\"\nmodel = \"n\"\n[llm.members]\nworf = \"a\"\n",
        )
        .unwrap();
        let pick = |p: &str| LlmChoice {
            profile: Some(p.into()),
            ..LlmChoice::default()
        };
        let llm = effective_llm(&s, &pick("b"), none).unwrap().unwrap();
        assert_eq!(
            llm.profile_for(squad_protocols::Member::Worf).unwrap().0,
            "b"
        );
        let e = effective_llm(&s, &pick("c"), none).unwrap_err();
        assert!(e.to_string().contains("profiles: a, b"), "{e}");
        let e = effective_llm(&Settings::default(), &pick("a"), none).unwrap_err();
        assert!(e.to_string().contains("no [llm] section"), "{e}");
    }
}
