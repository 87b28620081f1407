//! Missing configuration: the container exits at start-up because an environment variable it
//! needs is absent (its logs name it). The fix restores the variable's `env:` item from the
//! newest earlier version of the manifest that had it, naming that commit — unless that item
//! held a credential in clear text ([`credential`]): then, as when no earlier version had it, the
//! variable is pointed at the one Secret key of the namespace named like it (key names only, the
//! value is never read), and with none or several a human decides. The proof is a window in
//! which the container starts and stays up.

use squad_gitops::editor::env_item_lines;
use squad_protocols::{Diagnosis, Finding, Member, RootCause, Severity, WorkloadRef};
use squad_runtime::ports::FileVersion;

use crate::{
    Change, ClusterNeeds, Detection, Edit, Facts, Family, FollowupContext, IssueDraft, Readings,
    Remedy, RemedyInput, RepoNeeds, RepoView, Runbook,
};

mod credential;

pub struct MissingConfiguration;

pub const ROOT_CAUSE: &str = "missing_configuration";

/// The variable the crash's logs say is missing.
fn missing_var(d: &Diagnosis) -> Option<&str> {
    d.signals.crash.as_ref()?.missing_env.as_deref()
}

/// What the newest earlier version of the manifest that set the variable offers.
enum Earlier<'r> {
    /// Its `env:` item, restored as it was.
    Item(&'r FileVersion, Vec<String>),
    /// Its item held a credential in clear text: it is not restored.
    ClearText(&'r FileVersion),
    /// No earlier version set it.
    None,
}

/// The newest earlier version of the manifest with the variable, and what its item offers.
fn earlier<'r>(repo: &'r RepoView, var: &str) -> Earlier<'r> {
    let found = repo
        .history
        .iter()
        .skip(1)
        .find_map(|v| env_item_lines(&v.content, var).map(|l| (v, l)));
    match found {
        Some((v, lines)) if credential::clear_text_credential(&lines) => Earlier::ClearText(v),
        Some((v, lines)) => Earlier::Item(v, lines),
        None => Earlier::None,
    }
}

/// A commit as the pull request and escalations name it: `` `abcd1234` (message, time) ``.
fn commit(v: &FileVersion) -> String {
    format!(
        "`{}` ({}, {})",
        &v.commit[..v.commit.len().min(8)],
        v.message,
        v.at.to_rfc3339()
    )
}

/// The one Secret key of the workload's namespace named like `var`, as (Secret, key); else what
/// was found instead, in words (`no Secret in shop has a matching key`).
fn secret_key<'c>(var: &str, input: &RemedyInput<'c>) -> Result<(&'c str, &'c str), String> {
    let ns = &input.workload.namespace;
    let Some(secrets) = input.cluster.secret_keys.as_deref() else {
        return Err(format!("squad could not list the Secrets of {ns}"));
    };
    match credential::keys_named_like(var, secrets).as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("no Secret in {ns} has a matching key")),
        several => Err(format!(
            "several Secret keys in {ns} are named like it: {}",
            credential::listed(several)
        )),
    }
}

/// The `env:` item the pull request adds, and what it says about it.
struct Fix {
    item: Vec<String>,
    /// Where the item comes from, for the finding.
    source: String,
    /// The pull request's title, after `fix(infra): `.
    title: String,
    notes: String,
    /// The finding that a credential sits in clear text in the repository's history.
    leaked: Option<Finding>,
}

/// The variable read from key `key` of Secret `secret`, not restored from `v`, which had its
/// value in clear text. The commit is named; the value is in no string.
fn from_secret_not_clear_text(
    var: &str,
    container: &str,
    v: &FileVersion,
    secret: &str,
    key: &str,
    input: &RemedyInput<'_>,
) -> Fix {
    let (repo, w) = (input.repo, input.workload);
    let item = credential::secret_ref_item(var, secret, key);
    Fix {
        title: format!("{} reads {var} from Secret {secret}", w.name),
        notes: format!(
            "`{var}` is missing from container `{container}`. The newest earlier revision that set it, commit {}, had its value in clear text in the manifest (a credential, by the redaction gateway's detectors), so this PR does not restore it: a secret value never goes back into the repository. It points `{var}` at key `{key}` of Secret `{secret}`, the one key of a Secret in `{}` that names the variable once case and the `-`, `_`, `.` separators are set aside (key names read from the cluster; the value is not read):\n\n```yaml\n{}\n```\n\nThe credential stays in the history of `{}` at that commit: rotate it, and have whoever provisions Secret `{secret}` store the new one there.\n",
            commit(v),
            w.namespace,
            item.join("\n"),
            repo.path
        ),
        item,
        source: format!(
            "the previous revision that set it, commit {}, had the value in clear text and is not restored; it is read from Secret `{secret}` key `{key}` (value not read)",
            commit(v)
        ),
        leaked: Some(Finding {
            severity: Severity::High,
            title: format!("a credential was committed in clear text ({var})"),
            detail: format!(
                "commit {} set `{var}` as a literal value in `{}`; it stays in the repository's history: rotate it",
                commit(v),
                repo.path
            ),
        }),
    }
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
        // The Secrets are looked at only when no earlier item is restored as it was.
        let secret_keys =
            missing_var(d).is_some_and(|var| !matches!(earlier(repo, var), Earlier::Item(..)));
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
        let (repo, w) = (input.repo, input.workload);
        let container = d
            .signals
            .crash
            .as_ref()
            .map(|c| c.container.clone())
            .unwrap_or_default();
        let fix = match earlier(repo, var) {
            Earlier::Item(v, item) => {
                let source = format!("restored from commit {}", commit(v));
                Fix {
                    title: format!("restore {} configuration", w.name),
                    notes: format!(
                        "`{var}` is missing from container `{container}`; {source}:\n\n```yaml\n{}\n```\n",
                        item.join("\n")
                    ),
                    item,
                    source,
                    leaked: None,
                }
            }
            Earlier::ClearText(v) => match secret_key(var, input) {
                Ok((secret, key)) => {
                    from_secret_not_clear_text(var, &container, v, secret, key, input)
                }
                Err(found) => {
                    return Remedy::Escalate {
                        reason: format!(
                            "`{var}` is missing from container `{container}` of {}/{}, and the previous revision that set it, commit {}, held the credential in clear text, so squad does not restore it (a secret value never goes into the repository), and {found}: the owner is the team that owns {}/{} — a human creates the Secret (or chooses among the keys named like it) and references it (`valueFrom.secretKeyRef`), and rotates the credential, which stays in the history of {}",
                            w.kind,
                            w.name,
                            commit(v),
                            w.kind,
                            w.name,
                            repo.path
                        ),
                    };
                }
            },
            Earlier::None => match secret_key(var, input) {
                Ok((secret, key)) => {
                    let item = credential::secret_ref_item(var, secret, key);
                    let source = format!("from Secret `{secret}` key `{key}` (value not read)");
                    Fix {
                        title: format!("{} reads {var} from Secret {secret}", w.name),
                        notes: format!(
                            "`{var}` is missing from container `{container}`; {source}:\n\n```yaml\n{}\n```\n",
                            item.join("\n")
                        ),
                        item,
                        source,
                        leaked: None,
                    }
                }
                Err(found) => {
                    return Remedy::Escalate {
                        reason: format!(
                            "{var} is in no earlier revision of {} and {found}: a human creates the Secret (or chooses among the keys named like it) and references it",
                            repo.path
                        ),
                    };
                }
            },
        };
        let findings = std::iter::once(Finding {
            severity: Severity::High,
            title: format!("environment variable {var} dropped from the manifest"),
            detail: fix.source,
        })
        .chain(fix.leaked)
        .collect();
        Remedy::Change(Change {
            branch_word: "config".into(),
            title: format!("fix(infra): {} (CrashLoopBackOff incident)", fix.title),
            edits: vec![Edit::AddContainerEnv {
                path: repo.path.clone(),
                kind: w.kind.clone(),
                workload: w.name.clone(),
                container,
                name: var.into(),
                item: fix.item,
            }],
            notes: format!("### Configuration\n{}", fix.notes),
            findings,
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

    /// The earlier manifest with `REDIS_URL` set to `value` (a literal).
    fn literal(value: &str) -> String {
        NOW.replace(
            "              value: \"8080\"\n",
            &format!("              value: \"8080\"\n            - name: REDIS_URL\n              value: {value}\n"),
        )
    }

    const PASSWORD: &str = "Zq81mXw3pLk7";

    fn secrets(pairs: &[(&str, &[&str])]) -> ClusterView {
        ClusterView {
            secret_keys: Some(
                pairs
                    .iter()
                    .map(|(s, keys)| ((*s).into(), keys.iter().map(|k| (*k).into()).collect()))
                    .collect(),
            ),
            ..ClusterView::default()
        }
    }

    /// Every text a remedy writes: the PR's title, body, findings, or the escalation.
    fn texts(r: &Remedy) -> String {
        match r {
            Remedy::Change(c) => {
                let findings: Vec<String> = c
                    .findings
                    .iter()
                    .map(|f| format!("{} {}", f.title, f.detail))
                    .collect();
                format!("{} {} {findings:?} {:?}", c.title, c.notes, c.edits)
            }
            Remedy::Escalate { reason } => reason.clone(),
            Remedy::Nothing => String::new(),
        }
    }

    #[test]
    fn an_earlier_credential_in_clear_text_is_not_restored_the_secret_key_named_like_it_is() {
        let (s, w) = (testing::settings(), testing::workload());
        let url = format!("redis://cart:{PASSWORD}@cache.shop.svc:6379/0");
        let r = repo(vec![
            version("cafe0001aa", NOW),
            version("beef0002bb", &literal(&url)),
        ]);
        // The earlier item is not restored, so the Secrets' key names are read.
        assert!(
            MissingConfiguration
                .cluster_needs(&detected(), &r)
                .secret_keys
        );
        let view = secrets(&[
            ("cart-cache", &["redis-url", "redis-password"]),
            ("cart-db", &["password"]),
        ]);
        let remedy = MissingConfiguration.remedy(&detected(), &testing::input(&s, &w, &r, &view));
        let all = texts(&remedy);
        assert!(!all.contains(PASSWORD) && !all.contains(&url), "{all}");
        let Remedy::Change(c) = remedy else {
            panic!("expected a change: {all}");
        };
        let Edit::AddContainerEnv { item, .. } = &c.edits[0] else {
            panic!("expected an env edit: {:?}", c.edits);
        };
        assert_eq!(
            item.join("\n"),
            "- name: REDIS_URL\n  valueFrom:\n    secretKeyRef:\n      name: cart-cache\n      key: redis-url"
        );
        assert!(
            c.notes.contains("commit `beef0002` (deploy beef0002bb")
                && c.notes.contains("had its value in clear text")
                && c.notes.contains("does not restore it"),
            "{}",
            c.notes
        );
        assert_eq!(
            c.title,
            "fix(infra): cart reads REDIS_URL from Secret cart-cache (CrashLoopBackOff incident)"
        );
        assert!(c.findings.iter().any(|f| f.detail.contains("rotate it")));
        let files = std::collections::BTreeMap::from([(r.path.clone(), r.text.clone())]);
        let out = squad_gitops::apply(&c.edits, &files).unwrap();
        assert!(out[0].1.contains("key: redis-url") && !out[0].1.contains(PASSWORD));
    }

    #[test]
    fn with_no_or_several_keys_named_like_it_the_apps_owners_create_or_choose_the_secret() {
        let (s, w) = (testing::settings(), testing::workload());
        let url = format!("redis://cart:{PASSWORD}@cache.shop.svc:6379/0");
        let r = repo(vec![
            version("cafe0001aa", NOW),
            version("beef0002bb", &literal(&url)),
        ]);
        for (view, found) in [
            (
                secrets(&[("cart-db", &["password"])]),
                "no Secret in shop has a matching key".to_owned(),
            ),
            (
                secrets(&[("cart-cache", &["redis_url"]), ("cache", &["REDIS-URL"])]),
                "several Secret keys in shop are named like it: `cart-cache/redis_url`, `cache/REDIS-URL`".to_owned(),
            ),
            (ClusterView::default(), "squad could not list the Secrets of shop".to_owned()),
        ] {
            let remedy = MissingConfiguration.remedy(&detected(), &testing::input(&s, &w, &r, &view));
            let Remedy::Escalate { reason } = &remedy else {
                panic!("expected an escalation: {remedy:?}");
            };
            assert!(!reason.contains(PASSWORD), "{reason}");
            for part in [
                "commit `beef0002` (deploy beef0002bb",
                "held the credential in clear text",
                found.as_str(),
                "the owner is the team that owns Deployment/cart",
                "a human creates the Secret (or chooses among the keys named like it) and references it",
            ] {
                assert!(reason.contains(part), "{part}: {reason}");
            }
        }
    }

    #[test]
    fn an_earlier_literal_that_is_no_credential_is_restored_as_it_was() {
        let (s, w) = (testing::settings(), testing::workload());
        let r = repo(vec![
            version("cafe0001aa", NOW),
            version("beef0002bb", &literal("redis://cache.shop.svc:6379/0")),
        ]);
        assert!(
            !MissingConfiguration
                .cluster_needs(&detected(), &r)
                .secret_keys
        );
        let view = secrets(&[("cart-cache", &["redis-url"])]);
        let Remedy::Change(c) =
            MissingConfiguration.remedy(&detected(), &testing::input(&s, &w, &r, &view))
        else {
            panic!("expected a change");
        };
        let Edit::AddContainerEnv { item, .. } = &c.edits[0] else {
            panic!("expected an env edit: {:?}", c.edits);
        };
        assert_eq!(
            item.join("\n"),
            "- name: REDIS_URL\n  value: redis://cache.shop.svc:6379/0"
        );
        assert!(c.notes.contains("restored from commit `beef0002`"));
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
