//! A simulated GitHub served over HTTP: the subset of the REST API squad's GitHub adapter uses,
//! backed by a real local git repository, so the octocrab adapter can be the one GitHub code path
//! in a simulation as well.
//!
//! It fronts a [`SimForge`]: issues, comments and pull requests are the simulated forge's (one
//! number sequence, persisted in its `forge.json`, so a resumed simulation finds what the crashed
//! one made), and repository content is its git repository: `contents`, `git/trees`, `commits`
//! read it; blobs and trees posted through the git data API are staged, `git/commits` writes a real
//! commit on its parent, and `git/refs` moves a branch (fast-forward only unless `force`). Merging
//! is the forge's `merge_pr` (the human's click). Labels live in memory. Every request is recorded
//! (method, path, body) so tests check what the adapter sent. Errors answer as GitHub does:
//! `{"message", "documentation_url"}` with 401, 404, 422.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use squad_protocols::{IssueSpec, PrSpec, PrState};
use squad_runtime::ports::{Forge, PortError};

use crate::forge::SimForge;

mod app;
mod paths;
pub use paths::template;

/// One request as the simulated GitHub received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    /// The path, and `?query` when there is one.
    pub path: String,
    pub body: Value,
}

struct Staged {
    /// Blob handle -> content.
    blobs: BTreeMap<String, String>,
    /// Tree handle -> (base tree id, path -> blob handle).
    trees: BTreeMap<String, (String, Vec<(String, String)>)>,
}

struct Shared {
    owner: String,
    name: String,
    token: String,
    forge: Arc<SimForge>,
    now: Box<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>,
    state: Mutex<ApiState>,
}

/// A GitHub App the simulated GitHub accepts: JWTs it signed (verified with its public key) are
/// exchanged for installation tokens.
struct App {
    app_id: u64,
    installation_id: u64,
    public_key_pem: String,
}

#[derive(Default)]
struct ApiState {
    app: Option<App>,
    /// Installation tokens issued so far (accepted like the configured token).
    issued: Vec<String>,
    requests: Vec<Recorded>,
    labels: Vec<String>,
    next_id: u64,
    staged: Option<Staged>,
}

/// The simulated GitHub; serves until dropped.
pub struct SimGitHubApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// With `SQUAD_GITHUB_REQUEST_LOG_DIR` set (the test suite sets it), every request is also
/// appended to a file of this process there, one JSON line each, so the suite can check every
/// GitHub request it made against GitHub's OpenAPI description when it ends.
fn log_for_contract_check(r: &Recorded) {
    use std::io::Write;
    static FILE: std::sync::OnceLock<Option<Mutex<std::fs::File>>> = std::sync::OnceLock::new();
    let file = FILE.get_or_init(|| {
        let dir = std::env::var_os("SQUAD_GITHUB_REQUEST_LOG_DIR")?;
        std::fs::create_dir_all(&dir).ok()?;
        let path = std::path::Path::new(&dir).join(format!("{}.jsonl", std::process::id()));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(Mutex::new)
    });
    if let Some(f) = file {
        let line = json!({"method": r.method, "path": r.path, "body": r.body}).to_string();
        let _ = writeln!(lock(f), "{line}");
    }
}

/// A 40-hex handle for a staged object (not a git id: staged objects are not in the repo yet).
fn handle(n: u64) -> String {
    format!("{n:040x}")
}

fn gh_error(status: u16, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(
            json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
        ),
    )
        .into_response()
}

fn ok(status: u16, v: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        axum::Json(v),
    )
        .into_response()
}

/// A percent-encoded URL path, decoded (`+` stays a plus: it is not a space in a path).
pub fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl SimGitHubApi {
    /// Serves `owner/name` backed by `repo` on a free loopback port; requests must carry
    /// `Authorization: Bearer <token>` (or `token <token>`).
    pub async fn start(
        repo_name: &str,
        forge: Arc<SimForge>,
        token: &str,
        now: impl Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync + 'static,
    ) -> std::io::Result<SimGitHubApi> {
        let (owner, name) = repo_name.split_once('/').ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "repo: expected OWNER/NAME",
            )
        })?;
        let shared = Arc::new(Shared {
            owner: owner.into(),
            name: name.into(),
            token: token.into(),
            forge,
            now: Box::new(now),
            state: Mutex::new(ApiState::default()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new().fallback(route).with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("simulated GitHub stopped: {e}");
            }
        });
        Ok(SimGitHubApi { addr, shared, task })
    }

    /// Accepts GitHub App `app_id`'s JWTs (RS256, verified with `public_key_pem`) at
    /// `POST /app/installations/{installation_id}/access_tokens`, for installation tokens.
    pub fn accept_app(&self, app_id: u64, installation_id: u64, public_key_pem: &str) {
        lock(&self.shared.state).app = Some(App {
            app_id,
            installation_id,
            public_key_pem: public_key_pem.into(),
        });
    }

    /// The API base URL (what `api.github.com` is to GitHub).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.state).requests.clone()
    }

    /// Requests served, counted by `METHOD` and GitHub's path template
    /// (`/repos/{owner}/{repo}/issues/{issue_number}/comments`, ...).
    pub fn requests_by_endpoint(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.requests() {
            *out.entry(format!("{} {}", r.method, template(&r.path)))
                .or_default() += 1;
        }
        out
    }
}

impl Drop for SimGitHubApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn route(
    State(s): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return gh_error(400, &format!("Problems parsing JSON: {e}")),
        }
    };
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("token "))
        .unwrap_or("");
    {
        let recorded = Recorded {
            method: method.to_string(),
            path: if query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{query}")
            },
            body: body.clone(),
        };
        log_for_contract_check(&recorded);
        lock(&s.state).requests.push(recorded);
    }
    if method == Method::POST
        && path.starts_with("/app/installations/")
        && path.ends_with("/access_tokens")
    {
        return app::installation_token(&s, &path, token);
    }
    let known = token == s.token || lock(&s.state).issued.iter().any(|t| t == token);
    if !known {
        return gh_error(401, "Bad credentials");
    }
    let prefix = format!("/repos/{}/{}", s.owner, s.name);
    let Some(rest) = path.strip_prefix(&prefix) else {
        return gh_error(404, "Not Found");
    };
    let rest = decode(rest);
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let html = |kind: &str, n: u64| format!("https://github.com/{}/{}/{kind}/{n}", s.owner, s.name);
    let git = s.forge.git();
    let forge = &s.forge;
    let port = |e: PortError| match e {
        PortError::NotFound { .. } => gh_error(404, "Not Found"),
        other => gh_error(422, &format!("Validation Failed: {other}")),
    };
    // Issues and PRs as GitHub serialises them, from the forge's state.
    let issue_json = |i: &crate::forge::SimIssue| {
        json!({"number": i.number, "html_url": html("issues", i.number), "title": i.title,
               "body": i.body, "state": if i.open { "open" } else { "closed" }, "state_reason": i.state_reason,
               "labels": i.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>()})
    };
    let pr_json = |p: &crate::forge::SimPr| {
        let merged = p.state == PrState::Merged;
        json!({"number": p.number, "html_url": html("pull", p.number), "title": p.title, "body": p.body,
               "state": if p.state == PrState::Open { "open" } else { "closed" },
               "merged": merged, "merged_at": if merged { json!((s.now)().to_rfc3339()) } else { Value::Null },
               "head": {"ref": p.branch, "sha": git.head_of(&p.branch).unwrap_or_default()}, "base": {"ref": p.base},
               "labels": p.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
               "pull_request": {"url": format!("https://api.github.com/repos/{}/{}/pulls/{}", s.owner, s.name, p.number)}})
    };
    let page_of = |all: Vec<Value>| {
        let page: usize = param("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .max(1);
        let per: usize = param("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(30)
            .clamp(1, 100);
        Value::Array(all.into_iter().skip((page - 1) * per).take(per).collect())
    };
    match (method.as_str(), &segs[..]) {
        ("GET", [""]) => ok(
            200,
            json!({"full_name": format!("{}/{}", s.owner, s.name), "default_branch": "main"}),
        ),
        ("GET", ["", "labels", name]) => {
            if lock(&s.state).labels.iter().any(|l| l == name) {
                ok(200, json!({"name": name}))
            } else {
                gh_error(404, "Not Found")
            }
        }
        ("POST", ["", "labels"]) => {
            let Some(name) = body["name"].as_str() else {
                return gh_error(422, "Validation Failed: name is missing");
            };
            let mut st = lock(&s.state);
            if st.labels.iter().any(|l| l == name) {
                return ok(
                    422,
                    json!({"message": "Validation Failed", "errors": [{"resource": "Label", "code": "already_exists", "field": "name"}]}),
                );
            }
            st.labels.push(name.to_string());
            ok(201, json!({"name": name, "color": body["color"]}))
        }
        ("POST", ["", "issues"]) => {
            let Some(title) = body["title"].as_str() else {
                return gh_error(422, "Validation Failed: title is missing");
            };
            let labels: Vec<String> = body["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect();
            {
                let mut st = lock(&s.state);
                for l in &labels {
                    if !st.labels.contains(l) {
                        st.labels.push(l.clone()); // GitHub creates them too
                    }
                }
            }
            let spec = IssueSpec {
                title: title.into(),
                body: body["body"].as_str().unwrap_or_default().into(),
                labels,
            };
            match forge.create_issue(&spec).await {
                Ok(r) => {
                    let snap = forge.snapshot();
                    let i = snap.issues.iter().find(|i| i.number == r.number);
                    ok(201, i.map_or(json!({"number": r.number}), issue_json))
                }
                Err(e) => port(e),
            }
        }
        ("GET", ["", "issues"]) => {
            let snap = forge.snapshot();
            let mut all: Vec<(u64, Value)> = snap
                .issues
                .iter()
                .map(|i| (i.number, issue_json(i)))
                .chain(snap.pulls.iter().map(|p| (p.number, pr_json(p))))
                .collect();
            all.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
            ok(200, page_of(all.into_iter().map(|(_, v)| v).collect()))
        }
        ("PATCH", ["", "issues", n]) => {
            let Ok(n) = n.parse::<u64>() else {
                return gh_error(404, "Not Found");
            };
            let result = match (body["state"].as_str(), body["state_reason"].as_str()) {
                (Some("closed"), Some(reason)) => forge.close_issue_as(n, reason),
                (Some(state), _) => forge.set_issue_open(n, state == "open").await,
                (None, _) => Ok(()),
            };
            if let Err(e) = result {
                return port(e);
            }
            let snap = forge.snapshot();
            match snap.issues.iter().find(|i| i.number == n) {
                Some(i) => ok(200, issue_json(i)),
                None => gh_error(404, "Not Found"),
            }
        }
        ("GET", ["", "issues", n]) if *n != "comments" => {
            let snap = forge.snapshot();
            match snap.issues.iter().find(|i| Ok(i.number) == n.parse()) {
                Some(i) => ok(200, issue_json(i)),
                None => gh_error(404, "Not Found"),
            }
        }
        ("GET", ["", "issues", n, "comments"]) => {
            let snap = forge.snapshot();
            let Some(i) = snap.issues.iter().find(|i| Ok(i.number) == n.parse()) else {
                return gh_error(404, "Not Found");
            };
            let url = format!(
                "https://api.github.com/repos/{}/{}/issues/{}",
                s.owner, s.name, i.number
            );
            let all = i
                .comments
                .iter()
                .map(|c| json!({"id": c.id, "body": c.body, "issue_url": url}));
            ok(200, page_of(all.collect()))
        }
        ("GET", ["", "issues", "comments"]) => {
            let snap = forge.snapshot();
            let api_issues = format!("https://api.github.com/repos/{}/{}/issues", s.owner, s.name);
            let mut all: Vec<(u64, Value)> = Vec::new();
            for i in &snap.issues {
                for c in &i.comments {
                    all.push((
                        c.id,
                        json!({"id": c.id, "body": c.body,
                                           "issue_url": format!("{api_issues}/{}", i.number)}),
                    ));
                }
            }
            all.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
            ok(200, page_of(all.into_iter().map(|(_, v)| v).collect()))
        }
        ("POST", ["", "issues", n, "comments"]) => {
            let Ok(n) = n.parse::<u64>() else {
                return gh_error(404, "Not Found");
            };
            match forge
                .comment(n, body["body"].as_str().unwrap_or_default())
                .await
            {
                Ok(id) => ok(
                    201,
                    json!({"id": id, "body": body["body"],
                                         "issue_url": format!("https://api.github.com/repos/{}/{}/issues/{n}", s.owner, s.name)}),
                ),
                Err(e) => port(e),
            }
        }
        ("POST", ["", "issues", n, "labels"]) => {
            let Ok(n) = n.parse::<u64>() else {
                return gh_error(404, "Not Found");
            };
            let add: Vec<String> = body["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect();
            match forge.add_labels(n, &add) {
                Ok(all) => ok(
                    200,
                    Value::Array(all.iter().map(|l| json!({"name": l})).collect()),
                ),
                Err(e) => port(e),
            }
        }
        ("GET", ["", "git", "ref", "heads", branch @ ..]) => match git.head_of(&branch.join("/")) {
            Ok(sha) => ok(
                200,
                json!({"ref": format!("refs/heads/{}", branch.join("/")), "object": {"type": "commit", "sha": sha}}),
            ),
            Err(_) => gh_error(404, "Not Found"),
        },
        ("GET", ["", "git", "commits", sha]) => match git.tree_id(sha) {
            Ok(tree) => ok(200, json!({"sha": sha, "tree": {"sha": tree}})),
            Err(_) => gh_error(404, "Not Found"),
        },
        ("POST", ["", "git", "blobs"]) => {
            let Some(content) = body["content"].as_str() else {
                return gh_error(422, "Validation Failed: content is missing");
            };
            let mut st = lock(&s.state);
            st.next_id += 1;
            let h = handle(st.next_id);
            st.staged
                .get_or_insert_with(|| Staged {
                    blobs: BTreeMap::new(),
                    trees: BTreeMap::new(),
                })
                .blobs
                .insert(h.clone(), content.to_string());
            ok(201, json!({"sha": h}))
        }
        ("POST", ["", "git", "trees"]) => {
            let base = body["base_tree"].as_str().unwrap_or_default().to_string();
            let mut st = lock(&s.state);
            st.next_id += 1;
            let h = handle(st.next_id);
            let staged = st.staged.get_or_insert_with(|| Staged {
                blobs: BTreeMap::new(),
                trees: BTreeMap::new(),
            });
            let mut entries = Vec::new();
            for e in body["tree"].as_array().into_iter().flatten() {
                let (Some(p), Some(b)) = (e["path"].as_str(), e["sha"].as_str()) else {
                    return gh_error(422, "Validation Failed: tree entries need path and sha");
                };
                if !staged.blobs.contains_key(b) {
                    return gh_error(
                        422,
                        &format!("Validation Failed: tree.sha {b} is not a blob"),
                    );
                }
                entries.push((p.to_string(), b.to_string()));
            }
            staged.trees.insert(h.clone(), (base, entries));
            ok(201, json!({"sha": h}))
        }
        ("POST", ["", "git", "commits"]) => {
            let (Some(message), Some(tree), Some(parent)) = (
                body["message"].as_str(),
                body["tree"].as_str(),
                body["parents"].get(0).and_then(Value::as_str),
            ) else {
                return gh_error(
                    422,
                    "Validation Failed: message, tree and one parent are required",
                );
            };
            let files = {
                let st = lock(&s.state);
                let Some(staged) = st.staged.as_ref() else {
                    return gh_error(
                        422,
                        &format!("Validation Failed: tree {tree} does not exist"),
                    );
                };
                let Some((base_tree, entries)) = staged.trees.get(tree) else {
                    return gh_error(
                        422,
                        &format!("Validation Failed: tree {tree} does not exist"),
                    );
                };
                if git.tree_id(parent).ok().as_deref() != Some(base_tree.as_str()) {
                    return gh_error(422, "Validation Failed: base_tree is not the parent's tree");
                }
                entries
                    .iter()
                    .map(|(p, b)| (p.clone(), staged.blobs[b].clone()))
                    .collect::<Vec<_>>()
            };
            match git.commit_on(parent, message, &files, (s.now)()) {
                Ok(sha) => ok(201, json!({"sha": sha})),
                Err(e) => gh_error(422, &e.to_string()),
            }
        }
        ("POST", ["", "git", "refs"]) => {
            let (Some(r), Some(sha)) = (body["ref"].as_str(), body["sha"].as_str()) else {
                return gh_error(422, "Validation Failed: ref and sha are required");
            };
            let Some(branch) = r.strip_prefix("refs/heads/") else {
                return gh_error(422, "Validation Failed: ref must start with refs/heads/");
            };
            if git.branch_exists(branch).unwrap_or(false) {
                return gh_error(422, "Reference already exists");
            }
            match git.set_branch(branch, sha, true) {
                Ok(()) => ok(201, json!({"ref": r, "object": {"sha": sha}})),
                Err(e) => gh_error(422, &e.to_string()),
            }
        }
        ("PATCH", ["", "git", "refs", "heads", branch @ ..]) => {
            let Some(sha) = body["sha"].as_str() else {
                return gh_error(422, "Validation Failed: sha is required");
            };
            let force = body["force"].as_bool().unwrap_or(false);
            match git.set_branch(&branch.join("/"), sha, force) {
                Ok(()) => {
                    if branch.join("/") == "main" {
                        let _ = git.checkout_main();
                    }
                    ok(
                        200,
                        json!({"ref": format!("refs/heads/{}", branch.join("/")), "object": {"sha": sha}}),
                    )
                }
                Err(e) if e.to_string().contains("fast forward") => {
                    gh_error(422, "Update is not a fast forward")
                }
                Err(e) => gh_error(422, &e.to_string()),
            }
        }
        ("POST", ["", "pulls"]) => {
            let (Some(title), Some(head), Some(base)) = (
                body["title"].as_str(),
                body["head"].as_str(),
                body["base"].as_str(),
            ) else {
                return gh_error(422, "Validation Failed: title, head and base are required");
            };
            if !git.branch_exists(head).unwrap_or(false) {
                return gh_error(
                    422,
                    &format!("Validation Failed: head {head} does not exist"),
                );
            }
            // The branch exists (pushed through the git data API): the forge records the PR.
            let spec = PrSpec {
                title: title.into(),
                body: body["body"].as_str().unwrap_or_default().into(),
                branch: head.into(),
                base: base.into(),
                commit_message: String::new(),
                files: Vec::new(),
                labels: Vec::new(),
            };
            match forge.open_pr(&spec).await {
                Ok(r) => {
                    let snap = forge.snapshot();
                    let p = snap.pulls.iter().find(|p| p.number == r.number);
                    ok(201, p.map_or(json!({"number": r.number}), pr_json))
                }
                Err(e) => port(e),
            }
        }
        // Reviews are what a reviewer posted through this API; no CI runs in the simulation.
        ("GET", ["", "pulls", n, "reviews"]) => {
            let snap = forge.snapshot();
            match n
                .parse::<u64>()
                .ok()
                .and_then(|n| snap.pulls.iter().find(|p| p.number == n))
            {
                Some(p) => ok(
                    200,
                    page_of(
                        p.reviews
                            .iter()
                            .enumerate()
                            .map(|(i, (by, state))| {
                                json!({"id": i + 1, "user": {"login": by}, "state": state, "body": ""})
                            })
                            .collect(),
                    ),
                ),
                None => gh_error(404, "Not Found"),
            }
        }
        ("POST", ["", "pulls", n, "reviews"]) => {
            let Ok(n) = n.parse::<u64>() else {
                return gh_error(404, "Not Found");
            };
            let state = match body["event"].as_str() {
                Some("APPROVE") => "APPROVED",
                Some("REQUEST_CHANGES") => "CHANGES_REQUESTED",
                Some("COMMENT") => "COMMENTED",
                _ => return gh_error(422, "Validation Failed: event"),
            };
            // One reviewer: whoever holds the token.
            let by = "reviewer";
            match forge.review_pr(n, by, state) {
                Ok(()) => ok(
                    200,
                    json!({"id": 1, "user": {"login": by}, "state": state, "body": body["body"]}),
                ),
                Err(e) => port(e),
            }
        }
        ("GET", ["", "pulls", n, "files"]) => {
            let snap = forge.snapshot();
            match n
                .parse::<u64>()
                .ok()
                .and_then(|n| snap.pulls.iter().find(|p| p.number == n))
            {
                Some(p) => ok(
                    200,
                    page_of(
                        p.files
                            .iter()
                            .map(|f| json!({"filename": f, "status": "modified"}))
                            .collect(),
                    ),
                ),
                None => gh_error(404, "Not Found"),
            }
        }
        // A reviewer's merge: GitHub merges the head into the base.
        ("PUT", ["", "pulls", n, "merge"]) => {
            let Ok(n) = n.parse::<u64>() else {
                return gh_error(404, "Not Found");
            };
            let snap = forge.snapshot();
            match snap.pulls.iter().find(|p| p.number == n).map(|p| p.state) {
                None => return gh_error(404, "Not Found"),
                Some(PrState::Closed) => return gh_error(405, "Pull Request is not mergeable"),
                _ => {}
            }
            match forge.merge_pr(n, "reviewer") {
                Ok(()) => ok(
                    200,
                    json!({"sha": git.head_of("main").unwrap_or_default(), "merged": true,
                           "message": "Pull Request successfully merged"}),
                ),
                Err(e) => port(e),
            }
        }
        ("PATCH", ["", "pulls", n]) => {
            let Ok(n) = n.parse::<u64>() else {
                return gh_error(404, "Not Found");
            };
            if body["state"].as_str() == Some("closed")
                && let Err(e) = forge.close_pr(n)
            {
                return port(e);
            }
            let snap = forge.snapshot();
            match snap.pulls.iter().find(|p| p.number == n) {
                Some(p) => ok(200, pr_json(p)),
                None => gh_error(404, "Not Found"),
            }
        }
        ("GET", ["", "commits", _, "check-runs"]) => {
            ok(200, json!({"total_count": 0, "check_runs": []}))
        }
        ("GET", ["", "pulls", n]) => {
            let snap = forge.snapshot();
            match n
                .parse::<u64>()
                .ok()
                .and_then(|n| snap.pulls.iter().find(|p| p.number == n))
            {
                Some(p) => ok(200, pr_json(p)),
                None => gh_error(404, "Not Found"),
            }
        }
        ("GET", ["", "contents", path @ ..]) => {
            let git_ref = param("ref").unwrap_or_else(|| "main".into());
            match git.read(&git_ref, &path.join("/")) {
                Ok(Some(content)) => {
                    use base64::Engine;
                    let enc = base64::engine::general_purpose::STANDARD.encode(content.as_bytes());
                    let wrapped: Vec<&str> = enc
                        .as_bytes()
                        .chunks(60)
                        .map(|c| std::str::from_utf8(c).unwrap_or_default())
                        .collect();
                    ok(
                        200,
                        json!({"type": "file", "encoding": "base64", "path": path.join("/"),
                                   "content": wrapped.join("\n")}),
                    )
                }
                Ok(None) => gh_error(404, "Not Found"),
                Err(_) => gh_error(404, "No commit found for the ref"),
            }
        }
        ("GET", ["", "git", "trees", sha]) => match git.list(sha, "") {
            Ok(paths) => ok(
                200,
                json!({"sha": sha, "truncated": false,
                                         "tree": paths.iter().map(|p| json!({"path": p, "type": "blob", "mode": "100644"})).collect::<Vec<_>>()}),
            ),
            Err(_) => gh_error(404, "Not Found"),
        },
        ("GET", ["", "commits"]) => {
            let branch = param("sha").unwrap_or_else(|| "main".into());
            let path = param("path").unwrap_or_default();
            match git.log(&branch, &path) {
                Ok(commits) => ok(200, Value::Array(commits.iter().map(|c| json!({
                    "sha": c.id,
                    "commit": {"message": c.message, "committer": {"date": c.at.to_rfc3339()}}
                })).collect())),
                Err(_) => gh_error(404, "Not Found"),
            }
        }
        _ => gh_error(404, "Not Found"),
    }
}
