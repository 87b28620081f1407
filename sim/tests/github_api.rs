//! The GitHub adapter (octocrab) against the simulated GitHub served over HTTP, backed by the
//! oomkilled scenario's GitOps repository: every forge operation the crew uses, through the same
//! code that talks to github.com.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use squad_adapters::github::{GitHubForge, GitHubOptions};
use squad_protocols::forge::marker;
use squad_protocols::{FileChange, IssueSpec, PrSpec, PrState};
use squad_runtime::ports::{Forge, MarkedArtifact};
use squad_sim::Scenario;
use squad_sim::github_api::SimGitHubApi;
use squad_sim::{SimForge, seed_gitops_repo};
use squad_testkit::openapi::{contract_violations, openapi};

async fn setup(dir: &std::path::Path) -> (SimGitHubApi, GitHubForge, Scenario, Arc<SimForge>) {
    let scenario = Scenario::embedded("oomkilled").unwrap();
    let repo = seed_gitops_repo(&scenario, &dir.join("gitops")).unwrap();
    let now = scenario.now;
    let sim = Arc::new(
        SimForge::new(
            "acme/gitops",
            repo,
            Some(&dir.join("forge.json")),
            squad_runtime::Clock::starting_at(now),
        )
        .unwrap(),
    );
    let api = SimGitHubApi::start("acme/gitops", sim.clone(), "ghs_sim_token", move || now)
        .await
        .unwrap();
    let forge = GitHubForge::new(&GitHubOptions {
        base_url: api.url(),
        repo: "acme/gitops".into(),
        token: "ghs_sim_token".into(),
        max_attempts: 2,
        max_wait: Duration::from_secs(5),
        app: None,
        draft: false,
    })
    .unwrap();
    (api, forge, scenario, sim)
}

#[tokio::test]
async fn the_crew_s_forge_operations_over_the_simulated_github() {
    let dir = tempfile::tempdir().unwrap();
    let (api, gh, scenario, sim) = setup(dir.path()).await;
    let manifest = scenario.workload.manifest.clone();
    assert_eq!(gh.default_branch().await.unwrap(), "main");
    // Files and history come from the git repository.
    let files = gh.list_files("k8s/", "main").await.unwrap();
    assert!(files.contains(&manifest), "{files:?}");
    let text = gh.read_file(&manifest, "main").await.unwrap().unwrap();
    assert!(text.contains("memory: 512Mi"), "{text}");
    let history = gh.file_history(&manifest).await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(
        history[0].message,
        "payment-service: deploy 2.14.1 (image bump only)"
    );
    // The incident issue, found again by its marker after a "restart".
    let mark = marker("inc-1", "picard:incident-issue");
    let issue = gh
        .create_issue(&IssueSpec {
            title: "[Incident] OOMKilled: payment-service (production)".into(),
            body: format!("diagnosis\n\n{mark}"),
            labels: vec![
                "incident".into(),
                "production".into(),
                "needs-remediation".into(),
            ],
        })
        .await
        .unwrap();
    let restarted = GitHubForge::new(&GitHubOptions {
        base_url: api.url(),
        repo: "acme/gitops".into(),
        token: "ghs_sim_token".into(),
        max_attempts: 1,
        max_wait: Duration::from_secs(1),
        app: None,
        draft: false,
    })
    .unwrap();
    assert_eq!(
        restarted.find_marker(&mark).await.unwrap(),
        Some(MarkedArtifact::Issue(issue.clone()))
    );
    // The remediation PR: one commit with both files on a new branch.
    let patched = text.replace("memory: 512Mi", "memory: 1.5Gi");
    let pr = gh
        .open_pr(&PrSpec {
            title: "fix(infra): increase payment-service memory limits".into(),
            body: format!("fix\n{}", marker("inc-1", "belanna:remediation-pr")),
            branch: "squad/inc-1-memory".into(),
            base: "main".into(),
            commit_message: "fix(infra): memory".into(),
            files: vec![
                FileChange {
                    path: manifest.clone(),
                    content: patched.clone(),
                },
                FileChange {
                    path: "k8s/production/payment-service/hpa.yaml".into(),
                    content: "kind: HorizontalPodAutoscaler\n".into(),
                },
            ],
            labels: vec!["incident".into(), "squad:belanna".into()],
        })
        .await
        .unwrap();
    assert_eq!(pr.number, 2);
    assert_eq!(
        gh.read_file(&manifest, "squad/inc-1-memory")
            .await
            .unwrap()
            .as_deref(),
        Some(patched.as_str())
    );
    assert_eq!(
        gh.read_file(&manifest, "main").await.unwrap().as_deref(),
        Some(text.as_str())
    );
    assert_eq!(gh.pr_state(pr.number).await.unwrap(), PrState::Open);
    gh.comment(
        issue.number,
        &format!("review\n{}", marker("inc-1", "worf:security-review")),
    )
    .await
    .unwrap();
    // The human merges; Ralph sees it; main has the fix.
    sim.merge_pr(pr.number, "octocat").unwrap();
    assert_eq!(gh.pr_state(pr.number).await.unwrap(), PrState::Merged);
    assert_eq!(
        gh.read_file(&manifest, "main").await.unwrap().as_deref(),
        Some(patched.as_str())
    );
    // Scribe's commit straight to main (a fast-forward of the branch, never forced).
    gh.commit_files(
        "main",
        "docs",
        &[FileChange {
            path: "docs/runbooks/oomkilled.md".into(),
            content: "# OOMKilled\n".into(),
        }],
    )
    .await
    .unwrap();
    assert!(
        gh.list_files("docs/", "main")
            .await
            .unwrap()
            .contains(&"docs/runbooks/oomkilled.md".to_string())
    );
    gh.set_issue_open(issue.number, false).await.unwrap();
    let snap = sim.snapshot();
    assert!(
        !snap
            .issues
            .iter()
            .find(|i| i.number == issue.number)
            .unwrap()
            .open
    );
    // The PR as the forge records it: the files its branch changed, its labels.
    let p = snap.pulls.iter().find(|p| p.number == pr.number).unwrap();
    assert_eq!(
        p.files,
        vec![
            manifest.clone(),
            "k8s/production/payment-service/hpa.yaml".to_string()
        ]
    );
    assert_eq!(p.labels, vec!["incident", "squad:belanna"]);
    // Bad credentials: 401, named.
    let bad = GitHubForge::new(&GitHubOptions {
        base_url: api.url(),
        repo: "acme/gitops".into(),
        token: "wrong".into(),
        max_attempts: 1,
        max_wait: Duration::from_secs(1),
        app: None,
        draft: false,
    })
    .unwrap();
    let e = bad.default_branch().await.unwrap_err();
    assert!(e.to_string().contains("Bad credentials"), "{e}");
    // What the adapter sent, by endpoint.
    let by_endpoint = api.requests_by_endpoint();
    for want in [
        "POST /repos/{owner}/{repo}/git/blobs",
        "POST /repos/{owner}/{repo}/git/trees",
        "POST /repos/{owner}/{repo}/git/commits",
        "POST /repos/{owner}/{repo}/git/refs",
        "POST /repos/{owner}/{repo}/pulls",
        "POST /repos/{owner}/{repo}/issues",
        "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
        "PATCH /repos/{owner}/{repo}/git/refs/{ref}",
        "GET /repos/{owner}/{repo}/contents/{path}",
    ] {
        assert!(
            by_endpoint.contains_key(want),
            "{want} not in {by_endpoint:#?}"
        );
    }
}

#[tokio::test]
async fn every_request_the_adapter_sends_is_in_github_s_openapi_description() {
    let Some(spec) = openapi().unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (api, gh, scenario, _sim) = setup(dir.path()).await;
    let manifest = scenario.workload.manifest.clone();
    // The crew's whole repertoire, once.
    gh.default_branch().await.unwrap();
    gh.list_files("", "main").await.unwrap();
    gh.file_history(&manifest).await.unwrap();
    let issue = gh
        .create_issue(&IssueSpec {
            title: "t".into(),
            body: "b".into(),
            labels: vec!["incident".into()],
        })
        .await
        .unwrap();
    gh.comment(issue.number, "c").await.unwrap();
    gh.find_marker("<!-- squad:none -->").await.unwrap();
    let pr = gh
        .open_pr(&PrSpec {
            title: "t".into(),
            body: "b".into(),
            branch: "squad/x".into(),
            base: "main".into(),
            commit_message: "m".into(),
            files: vec![FileChange {
                path: manifest.clone(),
                content: "x".into(),
            }],
            labels: vec!["squad:belanna".into()],
        })
        .await
        .unwrap();
    gh.pr_state(pr.number).await.unwrap();
    assert_eq!(gh.pr_activity(pr.number).await.unwrap().describe(), None);
    gh.read_file(&manifest, "squad/x").await.unwrap();
    gh.commit_files(
        "main",
        "m",
        &[FileChange {
            path: "docs/a.md".into(),
            content: "a".into(),
        }],
    )
    .await
    .unwrap();
    gh.set_issue_open(issue.number, false).await.unwrap();
    let read = gh.issue(issue.number).await.unwrap();
    assert_eq!(
        (read.open, read.state_reason.as_deref(), read.texts.len()),
        (false, Some("completed"), 2)
    );
    let requests = api.requests();
    let violations = contract_violations(&spec, &requests).unwrap();
    assert!(
        violations.is_empty(),
        "{} request(s) off GitHub's API:\n{}",
        violations.len(),
        violations.join("\n")
    );
    println!(
        "{} requests checked against GitHub's OpenAPI description {}",
        requests.len(),
        spec["info"]["version"]
    );
    // The check itself catches a wrong path, method, query parameter and body.
    let bad = |method: &str, path: &str, body: serde_json::Value| squad_sim::github_api::Recorded {
        method: method.into(),
        path: path.into(),
        body,
    };
    let caught = contract_violations(
        &spec,
        &[
            bad("GET", "/repos/a/b/nonsense", serde_json::Value::Null),
            bad("DELETE", "/repos/a/b/git/trees", serde_json::Value::Null),
            bad(
                "GET",
                "/repos/a/b/issues?colour=red",
                serde_json::Value::Null,
            ),
            bad(
                "POST",
                "/repos/a/b/git/trees",
                serde_json::json!({"tree": "not a list"}),
            ),
        ],
    )
    .unwrap();
    assert_eq!(caught.len(), 4, "{caught:#?}");
}

/// An RSA key pair from openssl: (private PEM, public PEM).
fn rsa_pair(dir: &std::path::Path, name: &str) -> (String, String) {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let ok = |c: &mut std::process::Command| assert!(c.status().unwrap().success(), "{c:?}");
    ok(std::process::Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&key)
        .arg("2048")
        .stderr(std::process::Stdio::null()));
    ok(std::process::Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .stderr(std::process::Stdio::null()));
    (
        std::fs::read_to_string(key).unwrap(),
        std::fs::read_to_string(public).unwrap(),
    )
}

#[tokio::test]
async fn a_github_app_installation_signs_a_jwt_and_works_with_the_installation_token() {
    let dir = tempfile::tempdir().unwrap();
    let (api, _token_client, scenario, sim) = setup(dir.path()).await;
    let (private, public) = rsa_pair(dir.path(), "app");
    api.accept_app(4242, 77, &public);
    let app = |pem: &str| {
        GitHubForge::new(&GitHubOptions {
            base_url: api.url(),
            repo: "acme/gitops".into(),
            token: String::new(),
            app: Some(squad_adapters::github::GitHubApp {
                app_id: 4242,
                installation_id: 77,
                private_key_pem: pem.into(),
            }),
            draft: false,
            max_attempts: 1,
            max_wait: Duration::from_secs(1),
        })
        .unwrap()
    };
    let gh = app(&private);
    assert_eq!(gh.default_branch().await.unwrap(), "main");
    let issue = gh
        .create_issue(&IssueSpec {
            title: "t".into(),
            body: "b".into(),
            labels: vec![],
        })
        .await
        .unwrap();
    assert!(
        sim.snapshot()
            .issues
            .iter()
            .any(|i| i.number == issue.number)
    );
    assert!(
        gh.read_file(&scenario.workload.manifest, "main")
            .await
            .unwrap()
            .is_some()
    );
    // One installation token, reused (octocrab refreshes it only near expiry).
    let exchanges = api
        .requests()
        .iter()
        .filter(|r| r.path == "/app/installations/77/access_tokens")
        .count();
    assert_eq!(exchanges, 1);
    // A JWT signed with another key is refused, and says so.
    let (other, _) = rsa_pair(dir.path(), "other");
    let e = app(&other).default_branch().await.unwrap_err();
    assert!(e.to_string().contains("JSON web token"), "{e}");
    // Not a key at all: a clear error before any request.
    let e = GitHubForge::new(&GitHubOptions {
        base_url: api.url(),
        repo: "acme/gitops".into(),
        token: String::new(),
        app: Some(squad_adapters::github::GitHubApp {
            app_id: 1,
            installation_id: 1,
            private_key_pem: "not a key".into(),
        }),
        draft: false,
        max_attempts: 1,
        max_wait: Duration::from_secs(1),
    })
    .err()
    .unwrap();
    assert!(e.contains("not an RSA PEM key"), "{e}");
}

/// Incidents recording on `main` at once: GitHub refuses each update that is not a
/// fast-forward (422); the adapter makes the commit again on the new head, so every one lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_on_one_branch_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let (_api, gh, _, _sim) = setup(dir.path()).await;
    let gh = Arc::new(gh);
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let gh = gh.clone();
            tokio::spawn(async move {
                let files = [FileChange {
                    path: format!("docs/record-{i}.md"),
                    content: format!("record {i}\n"),
                }];
                gh.commit_files("main", &format!("record {i}"), &files)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for i in 0..4 {
        assert_eq!(
            gh.read_file(&format!("docs/record-{i}.md"), "main")
                .await
                .unwrap()
                .as_deref(),
            Some(format!("record {i}\n").as_str())
        );
    }
}
