//! A rehearsal against a GitHub squad does not own (`squad simulate --github-url … --github-repo
//! …`), run as a user would: the first run opens the incident, the issues and the PR there and
//! stops awaiting approval; a reviewer acts on the PR through GitHub's REST API; running the same
//! command again resumes the incident from what that GitHub says. The GitHub here is a
//! GitHub-compatible server on loopback (its requests are checked against GitHub's OpenAPI
//! description with the rest of the suite's).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use squad::simulation::{self, GitHubTarget, SimulationOptions};
use squad::summary::Summary;
use squad_config::Settings;
use squad_runtime::Faults;
use squad_sim::github_api::SimGitHubApi;
use squad_sim::{Scenario, SimForge};

const REPO: &str = "rehearsal/gitops";
const TOKEN: &str = "ghp_rehearsal";
const MANIFEST: &str = "k8s/production/payment-service/deployment.yaml";

/// A GitHub holding the scenario's GitOps repository, served on loopback.
struct Remote {
    forge: Arc<SimForge>,
    api: SimGitHubApi,
    _servers: tokio::runtime::Runtime,
}

fn remote(dir: &Path, scenario: &Scenario) -> Remote {
    let repo = squad_sim::seed_gitops_repo(scenario, &dir.join("remote/gitops")).unwrap();
    let now = scenario.now;
    let forge = Arc::new(
        SimForge::new(
            REPO,
            repo,
            Some(&dir.join("remote/forge.json")),
            squad_runtime::Clock::starting_at(now),
        )
        .unwrap(),
    );
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let api = servers
        .block_on(SimGitHubApi::start(REPO, forge.clone(), TOKEN, move || now))
        .unwrap();
    Remote {
        forge,
        api,
        _servers: servers,
    }
}

/// `squad simulate oomkilled --out <dir>/run --github-url <remote> --github-repo rehearsal/gitops`.
fn rehearse(dir: &Path, remote: &Remote) -> Summary {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(simulation::run(SimulationOptions {
        scenario: Scenario::embedded("oomkilled").unwrap(),
        out: dir.join("run"),
        approve: false,
        dry_run: false,
        fresh: false,
        settings: Settings::default(),
        faults: Faults::none(),
        abort_after_events: None,
        serve: Default::default(),
        minds: Default::default(),
        github: Some(GitHubTarget {
            url: remote.api.url(),
            repo: REPO.into(),
            token: TOKEN.into(),
        }),
    }))
    .unwrap()
    .summary
}

/// A reviewer's request to the remote GitHub's REST API.
fn review(remote: &Remote, method: &str, path: &str, body: serde_json::Value) -> u16 {
    let url = format!("{}/repos/{REPO}{path}", remote.api.url());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let req = match method {
            "PUT" => client.put(&url),
            "PATCH" => client.patch(&url),
            _ => client.post(&url),
        };
        req.header("authorization", format!("Bearer {TOKEN}"))
            .header("accept", "application/vnd.github+json")
            .header("user-agent", "squad-test-reviewer")
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

fn first_run(dir: &Path, remote: &Remote) -> u64 {
    let s = rehearse(dir, remote);
    assert_eq!(s.state, "awaiting_approval", "{:#?}", s.timeline);
    // --json lists what was filed there, as that GitHub holds it.
    assert_eq!(s.issues.len(), 3, "{:#?}", s.issues);
    assert!(s.issues[0].title.starts_with("[Incident] OOMKilled"));
    assert!(
        s.issues[0]
            .labels
            .contains(&"needs-remediation".to_string())
    );
    assert!(!s.issues[0].comments.is_empty());
    assert_eq!(s.pull_requests.len(), 1);
    let pr = &s.pull_requests[0];
    assert_eq!(pr.state, "open");
    assert!(pr.files.contains(&MANIFEST.to_string()), "{:?}", pr.files);
    assert!(
        pr.url
            .starts_with("https://github.com/rehearsal/gitops/pull/"),
        "{}",
        pr.url
    );
    let next = s.render();
    assert!(
        next.contains(&format!(
            "PR #{} is open on {}",
            pr.number,
            remote.api.url()
        )),
        "{next}"
    );
    pr.number
}

#[test]
fn a_rehearsal_finishes_after_the_pr_is_merged_on_github() {
    let dir = tempfile::tempdir().unwrap();
    let remote = remote(dir.path(), &Scenario::embedded("oomkilled").unwrap());
    let pr = first_run(dir.path(), &remote);

    // Without the merge, running again says plainly the PR is still open, and where.
    let again = rehearse(dir.path(), &remote);
    assert_eq!(again.state, "awaiting_approval");
    assert!(
        again
            .timeline
            .iter()
            .any(|t| t.actor == "ralph"
                && t.event.contains(&format!("PR #{pr} open, pending merge"))),
        "{:#?}",
        again.timeline
    );
    assert!(again.render().contains(&format!("PR #{pr} is open on")));

    // The reviewer merges on GitHub.
    assert_eq!(
        review(
            &remote,
            "PUT",
            &format!("/pulls/{pr}/merge"),
            serde_json::json!({})
        ),
        200
    );

    // The same command again: Ralph reads the merge there, the cluster syncs that main, and the
    // incident resolves on what the cluster shows.
    let s = rehearse(dir.path(), &remote);
    assert_eq!(s.state, "resolved", "{:#?}", s.timeline);
    let v = s.verification.as_ref().unwrap();
    assert!(v.healthy, "{}", v.detail);
    assert_eq!(v.limit.map(|l| l.to_string()).as_deref(), Some("1.5Gi"));
    assert_eq!(s.pull_requests[0].state, "merged");
    assert_eq!(s.issues[0].state, "closed");
    // main on that GitHub carries the fix.
    let main = remote.forge.git().read("main", MANIFEST).unwrap().unwrap();
    assert!(main.contains("memory: 1.5Gi"), "{main}");
}

#[test]
fn a_pr_closed_on_github_escalates_and_changes_requested_wait_for_a_revision() {
    let dir = tempfile::tempdir().unwrap();
    let remote = remote(dir.path(), &Scenario::embedded("oomkilled").unwrap());
    let pr = first_run(dir.path(), &remote);

    assert_eq!(
        review(
            &remote,
            "POST",
            &format!("/pulls/{pr}/reviews"),
            serde_json::json!({"event": "REQUEST_CHANGES", "body": "keep the request at 256Mi"})
        ),
        200
    );
    let s = rehearse(dir.path(), &remote);
    assert_eq!(s.state, "awaiting_approval");
    assert!(
        s.timeline.iter().any(|t| t.actor == "ralph"
            && t.event.contains("changes requested by reviewer")
            && t.event.contains("awaiting a revised PR")),
        "{:#?}",
        s.timeline
    );
    assert!(
        s.issues[0]
            .comments
            .iter()
            .any(|c| c.author == "ralph" && c.body.contains("requested changes")),
        "{:#?}",
        s.issues[0].comments
    );

    assert_eq!(
        review(
            &remote,
            "PATCH",
            &format!("/pulls/{pr}"),
            serde_json::json!({"state": "closed"})
        ),
        200
    );
    let s = rehearse(dir.path(), &remote);
    assert_eq!(s.state, "escalated", "{:#?}", s.timeline);
    assert_eq!(s.pull_requests[0].state, "closed");
    assert!(
        s.issues[0].comments.iter().any(|c| c
            .body
            .contains("closed without merging; escalating to a human")),
        "{:#?}",
        s.issues[0].comments
    );
    assert!(s.verification.is_none());
}
