//! The GitHub adapter against an in-memory GitHub on loopback that answers the REST subset squad
//! uses the way GitHub does (status codes, shapes, the git data API), and records every request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use squad_protocols::forge::marker;
use squad_protocols::{FileChange, IssueSpec, PrSpec, PrState};
use squad_runtime::ports::{Forge, MarkedArtifact, PortError};

use super::{GitHubForge, GitHubOptions};

/// An answer given instead of the real one: status, headers, body.
type Canned = (u16, Vec<(&'static str, String)>, Value);

#[derive(Default)]
struct Mock {
    requests: Vec<(String, String, Value)>,
    labels: Vec<String>,
    /// number -> issue or PR JSON.
    issues: BTreeMap<u64, Value>,
    comments: Vec<Value>,
    next: u64,
    blobs: BTreeMap<String, String>,
    /// tree sha -> path -> blob sha.
    trees: BTreeMap<String, BTreeMap<String, String>>,
    /// commit sha -> tree sha.
    commits: BTreeMap<String, String>,
    refs: BTreeMap<String, String>,
    /// Answers to give first, whatever the request: (status, headers, body).
    fail_next: Vec<Canned>,
}

type Shared = Arc<Mutex<Mock>>;

fn sha(seed: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))[..40].to_string()
}

fn json_resp(status: u16, v: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(v)).into_response()
}

async fn handle(
    State(m): State<Shared>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let mut m = m.lock().unwrap();
    assert_eq!(
        headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer ghp_test_token"),
        "every request carries the token"
    );
    m.requests
        .push((method.to_string(), format!("{path}?{query}"), body.clone()));
    if !m.fail_next.is_empty() {
        let (status, hdrs, body) = m.fail_next.remove(0);
        let mut r = json_resp(status, body);
        for (k, v) in hdrs {
            r.headers_mut().insert(k, v.parse().unwrap());
        }
        return r;
    }
    let decoded: String = percent_encoding::percent_decode_str(&path)
        .decode_utf8_lossy()
        .into_owned();
    let p: Vec<&str> = decoded
        .trim_start_matches("/repos/acme/gitops")
        .split('/')
        .collect();
    let not_found = || {
        json_resp(
            404,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        )
    };
    match (method.as_str(), &p[..]) {
        ("GET", [""]) => json_resp(
            200,
            json!({"full_name": "acme/gitops", "default_branch": "main"}),
        ),
        ("GET", ["", "labels", name]) => {
            if m.labels.iter().any(|l| l == name) {
                json_resp(200, json!({"name": name}))
            } else {
                not_found()
            }
        }
        ("POST", ["", "labels"]) => {
            m.labels.push(body["name"].as_str().unwrap().to_string());
            json_resp(201, body)
        }
        ("POST", ["", "issues"]) => {
            m.next += 1;
            let n = m.next;
            for l in body["labels"].as_array().unwrap() {
                assert!(
                    m.labels.iter().any(|x| x == l.as_str().unwrap()),
                    "label {l} used before it exists"
                );
            }
            let issue = json!({"number": n, "html_url": format!("https://github.com/acme/gitops/issues/{n}"),
                               "title": body["title"], "body": body["body"], "state": "open"});
            m.issues.insert(n, issue.clone());
            json_resp(201, issue)
        }
        ("GET", ["", "issues"]) => {
            let page: u64 = param("page").and_then(|v| v.parse().ok()).unwrap_or(1);
            let all: Vec<Value> = m.issues.values().rev().cloned().collect();
            let items: Vec<Value> = if page == 1 { all } else { Vec::new() };
            json_resp(200, Value::Array(items))
        }
        ("GET", ["", "issues", "comments"]) => json_resp(200, Value::Array(m.comments.clone())),
        ("POST", ["", "issues", n, "comments"]) => {
            let id = 1000 + m.comments.len() as u64;
            let c = json!({"id": id, "body": body["body"],
                           "issue_url": format!("https://api.github.com/repos/acme/gitops/issues/{n}")});
            m.comments.push(c.clone());
            json_resp(201, c)
        }
        ("PATCH", ["", "issues", n]) => {
            let n: u64 = n.parse().unwrap();
            let issue = m.issues.get_mut(&n).unwrap();
            issue["state"] = body["state"].clone();
            json_resp(200, issue.clone())
        }
        ("POST", ["", "issues", _, "labels"]) => json_resp(200, json!([])),
        ("GET", ["", "git", "ref", "heads", branch @ ..]) => match m.refs.get(&branch.join("/")) {
            Some(s) => json_resp(
                200,
                json!({"ref": format!("refs/heads/{}", branch.join("/")), "object": {"sha": s}}),
            ),
            None => not_found(),
        },
        ("GET", ["", "git", "commits", s]) => match m.commits.get(*s) {
            Some(t) => json_resp(200, json!({"sha": s, "tree": {"sha": t}})),
            None => not_found(),
        },
        ("POST", ["", "git", "blobs"]) => {
            let content = body["content"].as_str().unwrap().to_string();
            let s = sha(&content);
            m.blobs.insert(s.clone(), content);
            json_resp(201, json!({"sha": s}))
        }
        ("POST", ["", "git", "trees"]) => {
            let mut files = m
                .trees
                .get(body["base_tree"].as_str().unwrap())
                .cloned()
                .unwrap();
            for e in body["tree"].as_array().unwrap() {
                files.insert(
                    e["path"].as_str().unwrap().into(),
                    e["sha"].as_str().unwrap().into(),
                );
            }
            let s = sha(&format!("{files:?}"));
            m.trees.insert(s.clone(), files);
            json_resp(201, json!({"sha": s}))
        }
        ("POST", ["", "git", "commits"]) => {
            let s = sha(&body.to_string());
            let tree = body["tree"].as_str().unwrap().to_string();
            m.commits.insert(s.clone(), tree);
            json_resp(201, json!({"sha": s}))
        }
        ("POST", ["", "git", "refs"]) => {
            let name = body["ref"]
                .as_str()
                .unwrap()
                .trim_start_matches("refs/heads/")
                .to_string();
            if m.refs.contains_key(&name) {
                return json_resp(422, json!({"message": "Reference already exists"}));
            }
            m.refs.insert(name, body["sha"].as_str().unwrap().into());
            json_resp(201, json!({}))
        }
        ("PATCH", ["", "git", "refs", "heads", branch @ ..]) => {
            m.refs
                .insert(branch.join("/"), body["sha"].as_str().unwrap().into());
            json_resp(200, json!({}))
        }
        ("POST", ["", "pulls"]) => {
            m.next += 1;
            let n = m.next;
            let pr = json!({"number": n, "html_url": format!("https://github.com/acme/gitops/pull/{n}"),
                            "title": body["title"], "body": body["body"], "state": "open", "merged": false,
                            "head": {"ref": body["head"], "sha": "abc123"}, "pull_request": {}});
            m.issues.insert(n, pr.clone());
            json_resp(201, pr)
        }
        ("GET", ["", "pulls", _, "reviews"]) => json_resp(
            200,
            json!([{"user": {"login": "ana"}, "state": "CHANGES_REQUESTED"},
                   {"user": {"login": "ana"}, "state": "APPROVED"}]),
        ),
        ("GET", ["", "commits", _, "check-runs"]) => json_resp(
            200,
            json!({"total_count": 2, "check_runs": [
                {"name": "kubeconform", "status": "completed", "conclusion": "success"},
                {"name": "policy", "status": "in_progress", "conclusion": null}]}),
        ),
        ("GET", ["", "pulls", n]) => {
            let n: u64 = n.parse().unwrap();
            json_resp(200, m.issues[&n].clone())
        }
        ("GET", ["", "contents", rest @ ..]) => {
            let path = rest.join("/");
            let git_ref = param("ref").unwrap_or("main".into());
            let commit = m.refs.get(&git_ref).cloned().unwrap_or(git_ref.clone());
            let Some(tree) = m.commits.get(&commit).and_then(|t| m.trees.get(t)) else {
                return not_found();
            };
            match tree.get(&path) {
                Some(b) => {
                    use base64::Engine;
                    let enc = base64::engine::general_purpose::STANDARD.encode(&m.blobs[b]);
                    // GitHub wraps the base64 at 60 columns.
                    let wrapped: Vec<String> = enc
                        .as_bytes()
                        .chunks(60)
                        .map(|c| String::from_utf8(c.to_vec()).unwrap())
                        .collect();
                    json_resp(
                        200,
                        json!({"type": "file", "encoding": "base64", "content": wrapped.join("\n")}),
                    )
                }
                None => not_found(),
            }
        }
        ("GET", ["", "git", "trees", git_ref]) => {
            let commit = m.refs.get(*git_ref).cloned().unwrap_or(git_ref.to_string());
            let tree = &m.trees[&m.commits[&commit]];
            let entries: Vec<Value> = tree
                .keys()
                .map(|p| json!({"path": p, "type": "blob"}))
                .collect();
            json_resp(200, json!({"tree": entries, "truncated": false}))
        }
        _ => not_found(),
    }
}

/// A mock GitHub with `main` holding one manifest; returns (forge, state).
async fn github() -> (GitHubForge, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Mock::default()));
    {
        let mut m = shared.lock().unwrap();
        let blob = sha("kind: Deployment\n");
        m.blobs.insert(blob.clone(), "kind: Deployment\n".into());
        m.trees
            .insert("t0".into(), [("k8s/app.yaml".to_string(), blob)].into());
        m.commits.insert("c0".into(), "t0".into());
        m.refs.insert("main".into(), "c0".into());
        m.labels.push("incident".into());
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(shared.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let forge = GitHubForge::new(&GitHubOptions {
        base_url: format!("http://{addr}"),
        repo: "acme/gitops".into(),
        token: "ghp_test_token".into(),
        max_attempts: 3,
        max_wait: Duration::from_secs(5),
        app: None,
        draft: false,
    })
    .unwrap();
    (forge, shared)
}

#[tokio::test]
async fn issues_labels_comments_and_markers() {
    let (gh, m) = github().await;
    assert_eq!(gh.default_branch().await.unwrap(), "main");
    let mark = marker("inc-1", "picard:incident-issue");
    let issue = gh
        .create_issue(&IssueSpec {
            title: "[Incident] OOMKilled".into(),
            body: format!("body\n\n{mark}"),
            labels: vec![
                "incident".into(),
                "production".into(),
                "needs-remediation".into(),
            ],
        })
        .await
        .unwrap();
    assert_eq!(issue.number, 1);
    assert_eq!(issue.url, "https://github.com/acme/gitops/issues/1");
    // Missing labels were created first (the mock refuses unknown labels on an issue).
    assert_eq!(
        m.lock().unwrap().labels,
        vec!["incident", "production", "needs-remediation"]
    );
    assert_eq!(
        gh.find_marker(&mark).await.unwrap(),
        Some(MarkedArtifact::Issue(issue.clone()))
    );
    let cmark = marker("inc-1", "worf:security-review");
    let id = gh.comment(1, &format!("review\n{cmark}")).await.unwrap();
    assert_eq!(
        gh.find_marker(&cmark).await.unwrap(),
        Some(MarkedArtifact::Comment { issue: 1, id })
    );
    assert_eq!(gh.find_marker("<!-- squad:nope -->").await.unwrap(), None);
    gh.set_issue_open(1, false).await.unwrap();
    assert_eq!(m.lock().unwrap().issues[&1]["state"], "closed");
}

#[tokio::test]
async fn a_pull_request_is_one_commit_of_all_files_through_the_git_data_api() {
    let (gh, m) = github().await;
    let files = vec![
        FileChange {
            path: "k8s/app.yaml".into(),
            content: "kind: Deployment\nmemory: 1.5Gi\n".into(),
        },
        FileChange {
            path: "k8s/hpa.yaml".into(),
            content: "kind: HorizontalPodAutoscaler\n".into(),
        },
    ];
    let spec = PrSpec {
        title: "fix(infra): memory".into(),
        body: format!("fix\n{}", marker("inc-1", "belanna:remediation-pr")),
        branch: "squad/inc-1-memory".into(),
        base: "main".into(),
        commit_message: "fix(infra): memory".into(),
        files: files.clone(),
        labels: vec!["incident".into(), "squad:belanna".into()],
    };
    let pr = gh.open_pr(&spec).await.unwrap();
    assert_eq!(pr.branch, "squad/inc-1-memory");
    assert_eq!(gh.pr_state(pr.number).await.unwrap(), PrState::Open);
    // The branch holds both files on top of main's tree, in one commit.
    for f in &files {
        assert_eq!(
            gh.read_file(&f.path, "squad/inc-1-memory")
                .await
                .unwrap()
                .as_deref(),
            Some(f.content.as_str())
        );
    }
    assert_eq!(
        gh.read_file("k8s/app.yaml", "main")
            .await
            .unwrap()
            .as_deref(),
        Some("kind: Deployment\n")
    );
    assert_eq!(gh.read_file("k8s/none.yaml", "main").await.unwrap(), None);
    assert_eq!(
        gh.list_files("k8s/", "squad/inc-1-memory").await.unwrap(),
        vec!["k8s/app.yaml", "k8s/hpa.yaml"]
    );
    let posts: Vec<String> = m
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(method, _, _)| method == "POST")
        .map(|(_, p, _)| p.trim_end_matches('?').to_string())
        .collect();
    assert_eq!(
        posts,
        vec![
            "/repos/acme/gitops/git/blobs",
            "/repos/acme/gitops/git/blobs",
            "/repos/acme/gitops/git/trees",
            "/repos/acme/gitops/git/commits",
            "/repos/acme/gitops/git/refs",
            "/repos/acme/gitops/pulls",
            "/repos/acme/gitops/labels",
            "/repos/acme/gitops/issues/1/labels",
        ]
    );
    // A retry after a crash that left the branch: moved to the new commit, not an error.
    let again = gh.open_pr(&spec).await.unwrap();
    assert_eq!(again.number, 2);
    // What reviewers and CI said, for Ralph's report.
    let activity = gh.pr_activity(1).await.unwrap();
    assert_eq!(
        activity.describe().unwrap(),
        "reviews: changes_requested by ana, approved by ana; checks: 1 in_progress, 1 success"
    );
    assert!(
        m.lock()
            .unwrap()
            .requests
            .iter()
            .any(|(_, p, _)| p.starts_with("/repos/acme/gitops/commits/abc123/check-runs"))
    );
    // Drafts when configured.
    let pulls: Vec<Value> = m
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(method, p, _)| method == "POST" && p.starts_with("/repos/acme/gitops/pulls"))
        .map(|(_, _, b)| b.clone())
        .collect();
    assert_eq!(pulls[0]["draft"], false);
    // Merged: Ralph sees it.
    m.lock().unwrap().issues.get_mut(&1).unwrap()["merged"] = json!(true);
    assert_eq!(gh.pr_state(1).await.unwrap(), PrState::Merged);
    // Scribe's commit straight to main moves the branch without force.
    gh.commit_files(
        "main",
        "docs",
        &[FileChange {
            path: "docs/r.md".into(),
            content: "r".into(),
        }],
    )
    .await
    .unwrap();
    assert_eq!(
        gh.read_file("docs/r.md", "main").await.unwrap().as_deref(),
        Some("r")
    );
    let patch = m
        .lock()
        .unwrap()
        .requests
        .iter()
        .rev()
        .find(|(method, _, _)| method == "PATCH")
        .cloned()
        .unwrap();
    assert_eq!(patch.1, "/repos/acme/gitops/git/refs/heads/main?");
    assert_eq!(patch.2["force"], false);
}

#[tokio::test]
async fn errors_name_the_repo_and_action_and_rate_limits_are_waited_out() {
    let (gh, m) = github().await;
    m.lock().unwrap().fail_next = vec![(
        401,
        vec![],
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
    )];
    let e = gh.default_branch().await.unwrap_err();
    assert!(matches!(e, PortError::Forbidden { .. }), "{e:?}");
    assert!(
        e.to_string().contains("read the repository on acme/gitops")
            && e.to_string().contains("Bad credentials"),
        "{e}"
    );
    m.lock().unwrap().fail_next = vec![(
        422,
        vec![],
        json!({"message": "Validation Failed", "errors": [{"message": "title is too long"}]}),
    )];
    let e = gh
        .create_issue(&IssueSpec {
            title: "t".into(),
            body: "b".into(),
            labels: vec![],
        })
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("create issue \"t\" on acme/gitops")
            && e.to_string().contains("422")
            && e.to_string().contains("title is too long"),
        "{e}"
    );
    // A secondary rate limit (403 + Retry-After) and a 502, then the answer.
    m.lock().unwrap().fail_next = vec![
        (
            403,
            vec![("retry-after", "1".into())],
            json!({"message": "You have exceeded a secondary rate limit"}),
        ),
        (502, vec![], json!({"message": "Server Error"})),
    ];
    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    assert_eq!(gh.default_branch().await.unwrap(), "main");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    // A permission the token lacks (403 without rate-limit headers) and a missing object (404).
    m.lock().unwrap().fail_next = vec![(
        403,
        vec![],
        json!({"message": "Resource not accessible by integration"}),
    )];
    let e = gh.comment(1, "x").await.unwrap_err();
    assert!(matches!(e, PortError::Forbidden { .. }), "{e:?}");
    assert!(
        e.to_string().contains("comment on #1 on acme/gitops")
            && e.to_string().contains("lacks a permission"),
        "{e}"
    );
    m.lock().unwrap().fail_next = vec![(404, vec![], json!({"message": "Not Found"}))];
    let e = gh.pr_state(9).await.unwrap_err();
    assert!(matches!(e, PortError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("read #9 on acme/gitops"), "{e}");
    // The default branch is read once; later calls are other reads.
    assert_eq!(gh.default_branch().await.unwrap(), "main");
    // Still failing after every attempt: unavailable, saying why.
    m.lock().unwrap().fail_next = vec![(503, vec![], json!({"message": "Unavailable"})); 3];
    let e = gh.pr_state(1).await.unwrap_err();
    assert!(matches!(e, PortError::Unavailable { .. }), "{e:?}");
    assert!(e.to_string().contains("after 3 attempt(s)"), "{e}");
    // A primary rate limit resetting beyond max_wait is not waited for.
    let reset = chrono::Utc::now().timestamp() + 3600;
    m.lock().unwrap().fail_next = vec![(
        403,
        vec![
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", reset.to_string()),
        ],
        json!({"message": "API rate limit exceeded"}),
    )];
    let e = gh.pr_state(1).await.unwrap_err();
    assert!(e.to_string().contains("API rate limit exceeded"), "{e}");
    // The token never shows in Debug.
    let o = GitHubOptions {
        base_url: "https://api.github.com".into(),
        repo: "a/b".into(),
        token: "ghp_secret".into(),
        max_attempts: 1,
        max_wait: Duration::from_secs(1),
        app: None,
        draft: false,
    };
    assert!(!format!("{o:?}").contains("ghp_secret"));
    assert!(
        GitHubForge::new(&GitHubOptions {
            repo: "nope".into(),
            ..o
        })
        .is_err()
    );
}

/// A write that makes an artifact is not sent again when GitHub answered 5xx (it may have made
/// it: the journal looks for the marker before a retry); a read or an idempotent write is.
#[tokio::test]
async fn a_write_whose_answer_was_a_5xx_is_not_repeated_by_the_adapter() {
    let (gh, m) = github().await;
    let posts = |m: &Shared| {
        m.lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(method, path, _)| method == "POST" && path.contains("/issues?"))
            .count()
    };
    m.lock().unwrap().fail_next = vec![(502, vec![], json!({"message": "Server Error"}))];
    let e = gh
        .create_issue(&IssueSpec {
            title: "t".into(),
            body: "b".into(),
            labels: vec![],
        })
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::Unavailable { .. }), "{e:?}");
    assert!(e.to_string().contains("not repeated"), "{e}");
    assert_eq!(posts(&m), 1, "the POST was sent again");
    m.lock().unwrap().fail_next = vec![(502, vec![], json!({"message": "Server Error"}))];
    assert!(gh.comment(1, "x").await.is_err());
    // A read is retried.
    m.lock().unwrap().fail_next = vec![(502, vec![], json!({"message": "Server Error"}))];
    assert_eq!(gh.default_branch().await.unwrap(), "main");
    assert!(super::replayable("POST", "/repos/a/b/git/blobs"));
    assert!(super::replayable("POST", "/repos/a/b/issues/3/labels"));
    assert!(!super::replayable("POST", "/repos/a/b/issues/3/comments"));
    assert!(!super::replayable("POST", "/repos/a/b/pulls"));
    assert!(super::replayable("PATCH", "/repos/a/b/issues/3"));
}
