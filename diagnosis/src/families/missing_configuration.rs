//! Missing configuration: the container exits at start-up because an environment variable it
//! needs is absent (its logs name it). The fix restores the variable's `env:` item from the
//! newest earlier version of the manifest that had it, naming that commit; failing that, it
//! points the variable at the Secret key of the same name (the value is never read). The proof is
//! a window in which the container starts and stays up.

use squad_gitops::editor::env_item_lines;
use squad_protocols::{Diagnosis, Finding, Member, RootCause, Severity, WorkloadRef};

use crate::{
    Change, ClusterNeeds, Detection, Edit, Facts, Family, FollowupContext, IssueDraft, Readings,
    Remedy, RemedyInput, RepoNeeds, RepoView, Runbook,
};

pub struct MissingConfiguration;

pub const ROOT_CAUSE: &str = "missing_configuration";

/// The variable the crash's logs say is missing.
fn missing_var(d: &Diagnosis) -> Option<&str> {
    d.signals.crash.as_ref()?.missing_env.as_deref()
}

/// The newest earlier version of the manifest with the variable, and its `env:` item.
fn earlier_item<'r>(
    repo: &'r RepoView,
    var: &str,
) -> Option<(&'r squad_runtime::ports::FileVersion, Vec<String>)> {
    repo.history
        .iter()
        .skip(1)
        .find_map(|v| env_item_lines(&v.content, var).map(|l| (v, l)))
}

impl Family for MissingConfiguration {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("CrashLoopBackOff")
    }

    fn detect(&self, facts: &Facts, readings: &Readings) -> Option<Detection> {
        let cr = readings.signals.crash.as_ref()?;
        let var = cr.missing_env.as_ref()?;
        let rollout = readings
            .signals
            .last_deploy
            .as_ref()
            .filter(|d| d.env_changed)
            .map_or(String::new(), |d| {
                format!(
                    "; the last rollout ({} h ago) changed the environment",
                    d.age_hours
                )
            });
        Some(Detection::new(
            format!(
                "{} crash-loops (exit {}, {} restarts): environment variable {var} is missing{rollout}",
                facts.container, cr.exit_code, cr.restarts
            ),
            0.9,
            &["restore the missing variable in the manifest from the previous revision"],
        ))
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "restore the missing configuration in the manifest (remediation PR)",
            ),
            (
                Member::Worf,
                "check the secret reference and the workload's access to it",
            ),
            (
                Member::Data,
                "make the app fail fast with a clear message on missing configuration",
            ),
        ]
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds {
            manifest: true,
            history: true,
        }
    }

    fn cluster_needs(&self, d: &Diagnosis, repo: &RepoView) -> ClusterNeeds {
        // The Secrets are looked at only when no earlier manifest had the variable.
        let secret_keys = missing_var(d).is_some_and(|var| earlier_item(repo, var).is_none());
        ClusterNeeds {
            secret_keys,
            ..ClusterNeeds::default()
        }
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        let Some(var) = missing_var(d) else {
            return Remedy::Escalate {
                reason: "the logs name no missing variable".into(),
            };
        };
        let repo = input.repo;
        let ns = &input.workload.namespace;
        let container = d
            .signals
            .crash
            .as_ref()
            .map(|c| c.container.clone())
            .unwrap_or_default();
        let (item, source) = match earlier_item(repo, var) {
            Some((v, lines)) => (
                lines,
                format!(
                    "restored from commit `{}` ({}, {})",
                    &v.commit[..v.commit.len().min(8)],
                    v.message,
                    v.at.to_rfc3339()
                ),
            ),
            None => {
                let wanted = var.to_ascii_lowercase();
                let hit = input
                    .cluster
                    .secret_keys
                    .iter()
                    .flatten()
                    .find_map(|(name, keys)| {
                        keys.iter()
                            .find(|k| k.to_ascii_lowercase() == wanted)
                            .map(|k| (name.clone(), k.clone()))
                    });
                let Some((secret, key)) = hit else {
                    return Remedy::Escalate {
                        reason: format!(
                            "{var} is in no earlier revision of {} and no Secret in {ns} has a matching key",
                            repo.path
                        ),
                    };
                };
                (
                    vec![
                        format!("- name: {var}"),
                        "  valueFrom:".into(),
                        "    secretKeyRef:".into(),
                        format!("      name: {secret}"),
                        format!("      key: {key}"),
                    ],
                    format!("from Secret `{secret}` key `{key}` (value not read)"),
                )
            }
        };
        let notes = format!(
            "### Configuration\n`{var}` is missing from container `{container}`; {source}:\n\n```yaml\n{}\n```\n",
            item.join("\n")
        );
        Remedy::Change(Change {
            branch_word: "config".into(),
            title: format!(
                "fix(infra): restore {} configuration (CrashLoopBackOff incident)",
                input.workload.name
            ),
            edits: vec![Edit::AddContainerEnv {
                path: repo.path.clone(),
                kind: input.workload.kind.clone(),
                workload: input.workload.name.clone(),
                container,
                name: var.into(),
                item,
            }],
            notes,
            findings: vec![Finding {
                severity: Severity::High,
                title: format!("environment variable {var} dropped from the manifest"),
                detail: source,
            }],
        })
    }

    fn code_focus(&self) -> crate::CodeFocus {
        crate::CodeFocus::Configuration
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        super::crash_loop::runbook()
    }

    fn lessons(&self, _workload: &WorkloadRef) -> Vec<String> {
        vec![
            "Check the env names the code reads against the manifest in CI.".into(),
            "Fail fast at start-up with the name of the missing setting.".into(),
        ]
    }

    fn followup(&self, d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        let var = missing_var(d).unwrap_or_default();
        IssueDraft {
            title: format!(
                "Validate {} configuration at start-up (fail fast, clear message)",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) the container exited at start-up because `{var}` was missing.\n\n\
                 1. Validate every required setting at start-up and exit with one line naming the missing variable and where it should come from.\n\
                 2. Add a readiness probe that fails while configuration is invalid, so a bad rollout stops at the first pod.\n\
                 3. Add a CI check that renders the manifests and compares the env names the code reads with those the Deployment sets.\n\
                 4. Reproduce: `kubectl logs -n {} {} -c {} --previous`.",
                cx.incident, cx.issue, cx.workload.namespace, cx.pod, cx.container
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_runtime::ports::FileVersion;

    use super::*;
    use crate::testing;
    use crate::{ClusterView, Readings};

    const BEFORE: &str = "kind: Deployment\nmetadata:\n  name: cart\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          env:\n            - name: PORT\n              value: \"8080\"\n            - name: REDIS_URL\n              valueFrom:\n                secretKeyRef:\n                  name: cart-redis\n                  key: url\n";
    const NOW: &str = "kind: Deployment\nmetadata:\n  name: cart\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          env:\n            - name: PORT\n              value: \"8080\"\n";

    fn version(commit: &str, content: &str) -> FileVersion {
        FileVersion {
            commit: commit.into(),
            at: testing::now(),
            message: format!("deploy {commit}"),
            content: content.into(),
        }
    }

    fn detected() -> Diagnosis {
        testing::diagnosis(&testing::crashing(&[
            "Traceback (most recent call last):",
            "KeyError: 'REDIS_URL'",
        ]))
    }

    fn repo(history: Vec<FileVersion>) -> RepoView {
        RepoView {
            path: "apps/cart/deployment.yaml".into(),
            text: NOW.into(),
            history,
            layers: Vec::new(),
            objects: Vec::new(),
        }
    }

    #[test]
    fn a_crash_whose_logs_name_a_missing_variable_is_missing_configuration() {
        let f = testing::crashing(&["KeyError: 'REDIS_URL'"]);
        let d = MissingConfiguration.detect(&f, &Readings::of(&f)).unwrap();
        assert_eq!(
            d.summary,
            "api crash-loops (exit 1, 9 restarts): environment variable REDIS_URL is missing; the last rollout (30 h ago) changed the environment"
        );
        let other = testing::crashing(&["panic: nil map"]);
        assert!(
            MissingConfiguration
                .detect(&other, &Readings::of(&other))
                .is_none()
        );
    }

    #[test]
    fn the_variable_comes_back_from_the_newest_earlier_manifest_naming_its_commit() {
        let (s, w) = (testing::settings(), testing::workload());
        let r = repo(vec![
            version("cafe0001aa", NOW),
            version("beef0002bb", BEFORE),
        ]);
        assert!(
            !MissingConfiguration
                .cluster_needs(&detected(), &r)
                .secret_keys
        );
        let view = ClusterView::default();
        let Remedy::Change(c) =
            MissingConfiguration.remedy(&detected(), &testing::input(&s, &w, &r, &view))
        else {
            panic!("expected a change");
        };
        let Edit::AddContainerEnv {
            item,
            name,
            container,
            ..
        } = &c.edits[0]
        else {
            panic!("expected an env edit: {:?}", c.edits);
        };
        assert_eq!((name.as_str(), container.as_str()), ("REDIS_URL", "api"));
        assert_eq!(item[0], "- name: REDIS_URL");
        assert_eq!(item.last().unwrap(), "      key: url");
        assert!(
            c.notes
                .contains("restored from commit `beef0002` (deploy beef0002bb"),
            "{}",
            c.notes
        );
        // And the edit applies to today's manifest.
        let files = std::collections::BTreeMap::from([(r.path.clone(), r.text.clone())]);
        let out = squad_gitops::apply(&c.edits, &files).unwrap();
        assert!(out[0].1.contains("name: cart-redis"), "{}", out[0].1);
    }

    #[test]
    fn without_history_a_secret_key_of_the_same_name_is_referenced_else_a_human_decides() {
        let (s, w) = (testing::settings(), testing::workload());
        let r = repo(vec![version("cafe0001aa", NOW)]);
        assert!(
            MissingConfiguration
                .cluster_needs(&detected(), &r)
                .secret_keys
        );
        let view = ClusterView {
            secret_keys: Some(vec![("cart-cache".into(), vec!["redis_url".into()])]),
            ..ClusterView::default()
        };
        let Remedy::Change(c) =
            MissingConfiguration.remedy(&detected(), &testing::input(&s, &w, &r, &view))
        else {
            panic!("expected a change");
        };
        assert!(
            c.notes
                .contains("from Secret `cart-cache` key `redis_url` (value not read)")
        );
        let none = ClusterView {
            secret_keys: Some(vec![("other".into(), vec!["password".into()])]),
            ..ClusterView::default()
        };
        assert!(matches!(
            MissingConfiguration.remedy(&detected(), &testing::input(&s, &w, &r, &none)),
            Remedy::Escalate { reason } if reason.contains("no Secret in shop has a matching key")
        ));
    }

    #[test]
    fn data_follows_up_with_fail_fast_validation() {
        let cx = FollowupContext {
            incident: "inc-1".into(),
            issue: 1,
            workload: testing::workload(),
            container: "api".into(),
            pod: "cart-5d8f7-abcde".into(),
            language: "python".into(),
            route: "/cart".into(),
            profiling_steps: String::new(),
            code_findings: String::new(),
        };
        let draft = MissingConfiguration.followup(&detected(), &cx);
        assert_eq!(draft.label, "reliability");
        assert!(draft.body.contains("because `REDIS_URL` was missing"));
        assert!(
            draft
                .body
                .contains("kubectl logs -n shop cart-5d8f7-abcde -c api --previous")
        );
    }
}
