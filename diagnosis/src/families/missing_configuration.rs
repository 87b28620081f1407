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
