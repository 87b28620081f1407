//! Remedies end to end on the simulated world: what the last deploy broke is undone (and only
//! that), the obvious fix that is wrong is not proposed, and the replay or Ralph catches a fix
//! that would not hold.

use super::*;

/// The scenario run with `--approve` to its end, in a directory of its own.
fn approved(scenario: Scenario) -> squad::summary::Summary {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(simulation::run(opts(scenario, dir.path(), true)))
        .unwrap()
        .summary
}

#[test]
fn a_readiness_probe_the_last_deploy_broke_is_restored_and_the_image_it_shipped_stays() {
    let s = approved(Scenario::embedded("readiness").unwrap());
    let diag = s.diagnosis.as_ref().unwrap();
    assert_eq!(
        diag.summary,
        "api runs but is never ready: its readiness probe (http-get :http/ready) fails, the app answers /ready with 404; the last rollout (45 min ago) changed it from http-get :http/healthz",
        "{diag:#?}"
    );
    assert_eq!(diag.root_cause, "readiness_probe_failing");
    assert_eq!(s.state, "resolved");
    let pr = &s.pull_requests[0];
    assert!(
        pr.title
            .starts_with("fix(infra): restore readinessProbe of inventory-api from before "),
        "{}",
        pr.title
    );
    let v = s.verification.unwrap();
    assert!(
        v.healthy && v.detail.starts_with("4 of 4 replicas Ready"),
        "{}",
        v.detail
    );
}

/// The obvious fix is wrong: the last deploy added the readiness probe (there was none before),
/// so undoing it would delete a probe. The crew escalates instead, saying so.
#[test]
fn a_readiness_probe_the_last_deploy_added_is_not_removed() {
    let mut scenario = Scenario::embedded("readiness").unwrap();
    for (path, text) in scenario.files.iter_mut() {
        if path.starts_with("history/") && path.ends_with(".yaml") {
            let start = text.find("        readinessProbe:").unwrap();
            let end = text.find("        livenessProbe:").unwrap();
            text.replace_range(start..end, "");
        }
    }
    let s = approved(scenario);
    assert_eq!(
        s.diagnosis.as_ref().unwrap().root_cause,
        "readiness_probe_failing"
    );
    assert_eq!(s.state, "escalated");
    assert!(s.pull_requests.is_empty());
    assert!(
        s.timeline
            .iter()
            .any(|e| e.event.contains("removing a probe is not a fix")),
        "{:#?}",
        s.timeline
    );
}

/// The obvious fix is wrong: the last deploy added a variable that reads a Secret key nobody
/// provisioned, so there is no earlier reference to go back to and inventing one would be a
/// guess. The crew escalates, naming who provisions it; no PR.
#[test]
fn a_reference_the_last_deploy_added_is_escalated_to_whoever_provisions_it() {
    let mut scenario = Scenario::embedded("config-ref").unwrap();
    for (path, text) in scenario.files.iter_mut() {
        if path.starts_with("manifests/") && path.ends_with("deployment.yaml") {
            *text = text.replace(
                "              key: dsn\n",
                "              key: url\n        - name: LEDGER_DSN\n          valueFrom:\n            secretKeyRef:\n              name: ledger-db\n              key: dsn\n",
            );
        }
    }
    let s = approved(scenario);
    assert_eq!(
        s.diagnosis.as_ref().unwrap().root_cause,
        "broken_config_reference"
    );
    assert_eq!(s.state, "escalated");
    assert!(s.pull_requests.is_empty());
    assert!(
        s.timeline.iter().any(|e| e
            .event
            .contains("creates key dsn of Secret ledger-db — squad never writes")),
        "{:#?}",
        s.timeline
    );
}

/// The revert does not hold when the tag before is gone too. The replay before the PR sees the
/// rollout still stuck a day later and the crew does not propose it; without the replay
/// (`replay_hours = 0`), Ralph sees it after the merge and does not resolve.
#[test]
fn a_rollback_to_a_tag_the_registry_no_longer_holds_is_caught_before_or_after_the_merge() {
    let mut scenario = Scenario::embedded("image-pull").unwrap();
    scenario.registry.as_mut().unwrap().images = vec!["ghcr.io/acme/checkout-web:2.4.0".into()];
    let dir = tempfile::tempdir().unwrap();
    let s = rt()
        .block_on(simulation::run(opts(scenario.clone(), dir.path(), true)))
        .unwrap()
        .summary;
    assert_eq!(s.diagnosis.as_ref().unwrap().root_cause, "image_pull");
    assert!(s.pull_requests.is_empty(), "{:#?}", s.pull_requests);
    assert_eq!(s.state, "escalated");
    assert!(
        s.timeline.iter().any(|e| e.event.contains("does not hold")
            && e.event.contains("checkout-web waiting: ImagePullBackOff")),
        "{:#?}",
        s.timeline
    );
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(scenario, dir.path(), true);
    o.settings.remediation.replay_hours = 0;
    let s = rt().block_on(simulation::run(o)).unwrap().summary;
    assert_eq!(s.pull_requests[0].state, "merged");
    let v = s.verification.unwrap();
    assert!(!v.healthy, "{}", v.detail);
    assert!(
        v.detail.starts_with("rollout not complete: "),
        "{}",
        v.detail
    );
    assert!(
        v.detail.contains("ImagePullBackOff") || v.detail.contains("ErrImagePull"),
        "{}",
        v.detail
    );
    assert_eq!(s.state, "escalated");
}

#[test]
fn a_broken_secret_reference_the_last_deploy_changed_is_restored_with_the_code_that_reads_it() {
    let s = approved(Scenario::embedded("config-ref").unwrap());
    let diag = s.diagnosis.as_ref().unwrap();
    assert_eq!(diag.root_cause, "broken_config_reference");
    assert_eq!(
        diag.summary,
        "ledger-api cannot start: its environment cannot be resolved, key dsn of Secret ledger-db does not exist (couldn't find key dsn in Secret billing/ledger-db); the last rollout (75 min ago) changed DATABASE_URL from key url of Secret ledger-db"
    );
    assert_eq!(
        s.issues[0].title,
        "[Incident] CreateContainerConfigError: ledger-api (billing)"
    );
    assert_eq!(
        s.pull_requests[0].title,
        "fix(infra): restore env item DATABASE_URL of ledger-api from before f7866a09"
    );
    assert_eq!(s.state, "resolved");
    let data = s.issues[0]
        .comments
        .iter()
        .find(|c| c.author == "data")
        .unwrap();
    assert!(
        data.body.contains("- `DATABASE_URL` — required at `ledger/settings.py:17`; set from key `dsn` of Secret `ledger-db` — **the reference the kubelet cannot resolve**"),
        "{}",
        data.body
    );
    let followup = s
        .issues
        .iter()
        .find(|i| i.labels.contains(&"squad:data".to_string()))
        .unwrap();
    assert!(
        followup
            .body
            .contains("referred to key dsn of Secret ledger-db"),
        "{}",
        followup.body
    );
}
