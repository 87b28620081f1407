//! The family's detection and remedy, on facts and manifests made for each case.

#![allow(clippy::unwrap_used, clippy::panic)]
use squad_protocols::cluster::{ClusterEvent, EnvVar};

use super::*;
use crate::testing;

fn event(reason: &str, message: &str) -> ClusterEvent {
    ClusterEvent {
        kind: "Warning".into(),
        reason: reason.into(),
        message: message.into(),
        count: 42,
        first_seen: testing::now() - chrono::Duration::minutes(7),
        last_seen: testing::now(),
        object: "Pod/cart-5d8f7-abcde".into(),
    }
}

/// A pod whose container waits in `state`, the last deploy having moved `DB_URL` from
/// `before` to `after`.
fn waiting(state: &str, events: Vec<ClusterEvent>, before: &str, after: &str) -> Facts {
    let mut f = testing::facts("Completed", 0, |_| 80.0, |_| 10.0);
    let p = f.pod.as_mut().unwrap();
    p.phase = "Pending".into();
    p.containers[0].state = format!("waiting: {state}");
    p.containers[0].last_termination = None;
    p.containers[0].restart_count = 0;
    let var = |source: &str| EnvVar {
        name: "DB_URL".into(),
        source: source.into(),
        literal: None,
    };
    let n = f.history.len();
    f.history[n - 2].containers[0].env.push(var(before));
    f.history[n - 1].containers[0].env.push(var(after));
    f.info.containers[0].env.push(var(after));
    f.events = events;
    f
}

#[test]
fn a_renamed_secret_key_is_a_broken_reference_with_the_deploy_that_renamed_it() {
    let f = waiting(
        "CreateContainerConfigError",
        vec![
            event(
                "Pulled",
                "Container image \"r/cart:3.1\" already present on machine",
            ),
            event(
                "Failed",
                "Error: couldn't find key password in Secret shop/cart-db",
            ),
        ],
        "secret:cart-db/url",
        "secret:cart-db/password",
    );
    let d = testing::diagnosis(&f);
    assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
    assert_eq!(
        d.summary,
        "api cannot start: its environment cannot be resolved, key password of Secret cart-db does not exist (couldn't find key password in Secret shop/cart-db); the last rollout (30 h ago) changed DB_URL from key url of Secret cart-db"
    );
    assert_eq!(d.confidence, 0.95);
    assert_eq!(d.reason.as_deref(), Some("CreateContainerConfigError"));
    assert!(
        d.recommendations[0].contains("restore DB_URL's reference to key url of Secret cart-db"),
        "{:?}",
        d.recommendations
    );
    let b: BrokenReference = crate::family_signals(&d).unwrap();
    assert_eq!(
        (b.kind.as_str(), b.name.as_deref(), b.key.as_deref()),
        ("Secret", Some("cart-db"), Some("password"))
    );
}

#[test]
fn a_volume_of_a_missing_configmap_is_a_broken_reference() {
    let f = waiting(
        "ContainerCreating",
        vec![event(
            "FailedMount",
            "MountVolume.SetUp failed for volume \"settings\" : configmap \"cart-settings\" not found",
        )],
        "value",
        "value",
    );
    let d = testing::diagnosis(&f);
    assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
    assert!(
        d.summary
            .starts_with("api cannot start: volume settings cannot be mounted, ConfigMap cart-settings does not exist"),
        "{}",
        d.summary
    );
    assert_eq!(d.confidence, 0.9, "no deploy changed a reference to it");
}

#[test]
fn the_kubelets_errors_parse_into_object_and_key() {
    assert_eq!(
        parse_error("secret \"db-creds\" not found"),
        Some(("Secret".into(), Some("db-creds".into()), None))
    );
    assert_eq!(
        parse_error("couldn't find key level in ConfigMap ns/app"),
        Some(("ConfigMap".into(), Some("app".into()), Some("level".into())))
    );
    assert_eq!(
        parse_error("configmap references non-existent config key: app.yaml"),
        Some(("ConfigMap".into(), None, Some("app.yaml".into())))
    );
    assert_eq!(parse_error("something else entirely"), None);
}

#[test]
fn other_waiting_containers_are_not_broken_references() {
    let f = testing::crashing(&["KeyError: 'X'"]);
    assert!(
        BrokenConfigReference
            .detect(&f, &Readings::of(&f))
            .is_none()
    );
    let f = waiting("ContainerCreating", Vec::new(), "value", "value");
    assert!(
        BrokenConfigReference
            .detect(&f, &Readings::of(&f))
            .is_none(),
        "a pod still being created, with no mount failure, is not one"
    );
}

#[test]
fn without_a_fix_yet_the_crew_escalates_with_the_diagnosis() {
    let f = waiting(
        "CreateContainerConfigError",
        vec![event("Failed", "Error: secret \"cart-db\" not found")],
        "secret:cart-db/url",
        "secret:cart-db/url",
    );
    let d = testing::diagnosis(&f);
    let (s, w, repo) = (
        testing::settings(),
        testing::workload(),
        crate::RepoView::default(),
    );
    let view = crate::ClusterView::default();
    match BrokenConfigReference.remedy(&d, &testing::input(&s, &w, &repo, &view)) {
        Remedy::Escalate { reason } => assert!(reason.contains("cart-db"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

/// The cart's manifest, a sidecar before the app's container, `DB_URL` reading `key` of Secret
/// `secret` (with a comment on that line).
fn manifest(secret: &str, key: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: proxy\n          image: envoy:1\n          env:\n            - name: DB_URL\n              value: unrelated\n        - name: api\n          image: r/cart:3.1\n          env:\n            - name: LOG_LEVEL\n              value: info\n            # where the orders live\n            - name: DB_URL\n              valueFrom:\n                secretKeyRef:\n                  name: {secret}\n                  key: {key} # from the pipeline\n            - name: DB_PASSWORD\n              valueFrom:\n                secretKeyRef:\n                  name: {secret}\n                  key: password\n"
    )
}

/// The repository: the last deploy (`bbbbbbbb`) moved `DB_URL` from `before` to `after`, each
/// a `(secret, key)`.
fn repo(before: (&str, &str), after: (&str, &str)) -> crate::RepoView {
    let version = |commit: &str, text: String| squad_runtime::ports::FileVersion {
        commit: commit.into(),
        at: testing::now(),
        message: format!("deploy {commit}"),
        content: text,
    };
    let now = manifest(after.0, after.1);
    crate::RepoView {
        path: "shop/cart.yaml".into(),
        text: now.clone(),
        history: vec![
            version("bbbbbbbbbb", now),
            version("aaaaaaaaaa", manifest(before.0, before.1)),
        ],
        ..crate::RepoView::default()
    }
}

/// The diagnosis of `error` for a deploy that moved `DB_URL` from `before` to `after`.
fn broken_by(error: &str, before: &str, after: &str) -> Diagnosis {
    let f = waiting(
        "CreateContainerConfigError",
        vec![event("Failed", &format!("Error: {error}"))],
        before,
        after,
    );
    testing::diagnosis(&f)
}

/// The family's remedy over `repo`, the namespace holding `secrets` (names and key names).
fn remedy_with(d: &Diagnosis, repo: &crate::RepoView, secrets: &[(&str, &[&str])]) -> Remedy {
    let (s, w) = (testing::settings(), testing::workload());
    let view = crate::ClusterView {
        secret_keys: Some(
            secrets
                .iter()
                .map(|(n, keys)| {
                    (
                        (*n).to_owned(),
                        keys.iter().map(|k| (*k).to_owned()).collect(),
                    )
                })
                .collect(),
        ),
        ..crate::ClusterView::default()
    };
    BrokenConfigReference.remedy(d, &testing::input(&s, &w, repo, &view))
}

/// The repository's manifest after the change's edits.
fn applied(c: &crate::Change, repo: &crate::RepoView) -> String {
    let files = std::collections::BTreeMap::from([(repo.path.clone(), repo.text.clone())]);
    squad_gitops::apply(&c.edits, &files).unwrap()[0].1.clone()
}

#[test]
fn the_one_key_that_is_the_same_name_written_another_way_is_what_the_pr_points_at() {
    let d = broken_by(
        "couldn't find key DB_URL in Secret shop/cart-db",
        "secret:cart-db/dsn",
        "secret:cart-db/DB_URL",
    );
    let r = repo(("cart-db", "dsn"), ("cart-db", "DB_URL"));
    let secrets: &[(&str, &[&str])] = &[("cart-db", &["ca.crt", "db-url", "password"])];
    let Remedy::Change(c) = remedy_with(&d, &r, secrets) else {
        panic!("expected a PR");
    };
    // Only that `key:` line changes: its comment, the sidecar's DB_URL, the order stay.
    assert_eq!(
        applied(&c, &r),
        r.text.replace("key: DB_URL # from", "key: db-url # from")
    );
    assert_eq!(c.edits.len(), 1, "{:?}", c.edits);
    assert!(
        c.notes.contains("`ca.crt`, `db-url`, `password`"),
        "the keys that exist, by name: {}",
        c.notes
    );
    assert!(
        c.notes
            .contains("key dsn of Secret cart-db does not exist either"),
        "why the previous reference is no fix: {}",
        c.notes
    );
    assert!(
        c.notes
            .contains("-key: DB_URL # from the pipeline\n+key: db-url # from the pipeline"),
        "{}",
        c.notes
    );
    assert!(c.title.contains("db-url"), "{}", c.title);
}

#[test]
fn several_or_no_keys_written_the_same_way_escalate_naming_them() {
    let d = broken_by(
        "couldn't find key DB_URL in Secret shop/cart-db",
        "secret:cart-db/dsn",
        "secret:cart-db/DB_URL",
    );
    let r = repo(("cart-db", "dsn"), ("cart-db", "DB_URL"));
    let several: &[(&str, &[&str])] = &[("cart-db", &["db-url", "db.url", "password"])];
    match remedy_with(&d, &r, several) {
        Remedy::Escalate { reason } => {
            assert!(reason.contains("`db-url`, `db.url`"), "{reason}");
            assert!(reason.contains("several"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let none: &[(&str, &[&str])] = &[("cart-db", &["connection", "password"])];
    match remedy_with(&d, &r, none) {
        Remedy::Escalate { reason } => {
            assert!(reason.contains("`connection`, `password`"), "{reason}");
            assert!(
                reason.contains("key dsn of Secret cart-db does not exist either"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_previous_reference_that_still_resolves_is_restored_as_before() {
    let d = broken_by(
        "couldn't find key DB_URL in Secret shop/cart-db",
        "secret:cart-db/dsn",
        "secret:cart-db/DB_URL",
    );
    let r = repo(("cart-db", "dsn"), ("cart-db", "DB_URL"));
    // Even with a key written the same way, the revision that ran is the first fix.
    let secrets: &[(&str, &[&str])] = &[("cart-db", &["dsn", "db-url", "password"])];
    let Remedy::Change(c) = remedy_with(&d, &r, secrets) else {
        panic!("expected the undo");
    };
    assert!(c.title.contains("bbbbbbbb"), "{}", c.title);
    assert_eq!(applied(&c, &r), r.history[1].content);
}

#[test]
fn a_missing_secret_under_a_near_name_is_what_the_pr_points_at_when_it_holds_the_keys() {
    let d = broken_by(
        "secret \"cart_db\" not found",
        "secret:cart_db/url",
        "secret:cart_db/url",
    );
    let r = repo(("cart_db", "url"), ("cart_db", "url"));
    let near: &[(&str, &[&str])] = &[("cart-db", &["url", "password"]), ("carts", &["url"])];
    let c = match remedy_with(&d, &r, near) {
        Remedy::Change(c) => c,
        other => panic!("expected a PR: {other:?}"),
    };
    assert_eq!(
        applied(&c, &r),
        r.text.replace("name: cart_db", "name: cart-db")
    );
    // A near name that lacks a key the container reads is no fix.
    let lacking: &[(&str, &[&str])] = &[("cart-db", &["url"])];
    match remedy_with(&d, &r, lacking) {
        Remedy::Escalate { reason } => assert!(
            reason
                .contains("cart-db is the same name written another way, but it lacks `password`"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn names_are_the_same_whatever_their_case_and_separators() {
    assert_eq!(repoint::normalised("DATABASE_URL"), "databaseurl");
    assert_eq!(repoint::normalised("database-url"), "databaseurl");
    assert_eq!(repoint::normalised("Database.Url"), "databaseurl");
    let keys = [
        "database-url".to_owned(),
        "DATABASE_URL".to_owned(),
        "url".to_owned(),
    ];
    assert_eq!(
        repoint::same_under_normalisation("DATABASE_URL", &keys),
        ["database-url"]
    );
}

#[test]
fn a_volume_of_a_missing_configmap_points_at_the_one_the_repository_declares_under_a_near_name() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cart-settings\ndata:\n  app.toml: |\n    level = 1\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: r/cart:3.1\n          volumeMounts:\n            - name: cart_settings\n              mountPath: /etc/cart\n      volumes:\n        - name: cart_settings\n          configMap:\n            name: cart_settings # the app's settings\n";
    let f = waiting(
        "ContainerCreating",
        vec![event(
            "FailedMount",
            "MountVolume.SetUp failed for volume \"cart_settings\" : configmap \"cart_settings\" not found",
        )],
        "value",
        "value",
    );
    let d = testing::diagnosis(&f);
    let r = crate::RepoView {
        path: "shop/cart.yaml".into(),
        text: text.into(),
        ..crate::RepoView::default()
    };
    assert_eq!(
        BrokenConfigReference.repo_objects(&d),
        [("ConfigMap".to_owned(), "cart_settings".to_owned())]
    );
    let c = match remedy_with(&d, &r, &[]) {
        Remedy::Change(c) => c,
        other => panic!("expected a PR: {other:?}"),
    };
    // The volume's own name (the same words) stays; only its source's `name:` line changes.
    assert_eq!(
        applied(&c, &r),
        text.replace("name: cart_settings # the", "name: cart-settings # the")
    );
    assert!(c.notes.contains("`cart-settings`"), "{}", c.notes);
}
