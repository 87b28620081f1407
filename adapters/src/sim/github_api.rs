//! A simulated GitHub served over HTTP: the subset of the REST API squad's GitHub adapter uses,
//! backed by a real local git repository, so the octocrab adapter can be the one GitHub code path
//! in a simulation as well.
//!
//! Repository content is git: `contents`, `git/trees`, `commits` read the repository; blobs and
//! trees posted through the git data API are staged, `git/commits` writes a real commit on its
//! parent, and `git/refs` moves a branch (fast-forward only unless `force`). Issues, comments,
//! labels and pull requests live in memory and share one number sequence, as on GitHub; merging a
//! pull request is [`SimGitHubApi::merge_pr`] (the human's click). Every request is recorded
//! (method, path, body) so tests can check what the adapter sent. Errors answer as GitHub does:
//! `{"message", "documentation_url"}` with 404, 409, 422.

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

use crate::git::GitRepo;

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
    repo: GitRepo,
    now: Box<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>,
    state: Mutex<ApiState>,
}

#[derive(Default)]
struct ApiState {
    requests: Vec<Recorded>,
    labels: Vec<String>,
    /// number -> issue or pull request (`pull_request` set), as GitHub serialises it.
    issues: BTreeMap<u64, Value>,
    comments: Vec<Value>,
    next_number: u64,
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

fn decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl SimGitHubApi {
    /// Serves `owner/name` backed by `repo` on a free loopback port; requests must carry
    /// `Authorization: Bearer <token>` (or `token <token>`).
    pub async fn start(
        repo_name: &str,
        repo: GitRepo,
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
            repo,
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

    /// The API base URL (what `api.github.com` is to GitHub).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.state).requests.clone()
    }

    /// Issues and pull requests, by number.
    pub fn issues(&self) -> BTreeMap<u64, Value> {
        lock(&self.shared.state).issues.clone()
    }

    pub fn comments(&self) -> Vec<Value> {
        lock(&self.shared.state).comments.clone()
    }

    /// Merges pull request `number` into its base, as a human clicking "Merge" would.
    pub fn merge_pr(&self, number: u64, by: &str) -> Result<String, String> {
        let mut st = lock(&self.shared.state);
        let pr = st
            .issues
            .get_mut(&number)
            .filter(|p| p.get("pull_request").is_some())
            .ok_or_else(|| format!("no pull request #{number}"))?;
        let head = pr["head"]["ref"].as_str().unwrap_or_default().to_string();
        let base = pr["base"]["ref"].as_str().unwrap_or_default().to_string();
        let sha = self
            .shared
            .repo
            .merge(
                &head,
                &base,
                &format!("Merge pull request #{number}"),
                (self.shared.now)(),
            )
            .map_err(|e| e.to_string())?;
        pr["state"] = json!("closed");
        pr["merged"] = json!(true);
        pr["merged_at"] = json!((self.shared.now)().to_rfc3339());
        pr["merged_by"] = json!({"login": by});
        Ok(sha)
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
        let mut st = lock(&s.state);
        st.requests.push(Recorded {
            method: method.to_string(),
            path: if query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{query}")
            },
            body: body.clone(),
        });
    }
    if token != s.token {
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
    let mut st = lock(&s.state);
    match (method.as_str(), &segs[..]) {
        ("GET", [""]) => ok(
            200,
            json!({"full_name": format!("{}/{}", s.owner, s.name), "default_branch": "main"}),
        ),
        ("GET", ["", "labels", name]) => {
            if st.labels.iter().any(|l| l == name) {
                ok(200, json!({"name": name}))
            } else {
                gh_error(404, "Not Found")
            }
        }
        ("POST", ["", "labels"]) => {
            let Some(name) = body["name"].as_str() else {
                return gh_error(422, "Validation Failed: name is missing");
            };
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
            for l in &labels {
                if !st.labels.contains(l) {
                    st.labels.push(l.clone()); // GitHub creates them too, with a default colour
                }
            }
            st.next_number += 1;
            let n = st.next_number;
            let issue = json!({"number": n, "html_url": html("issues", n), "title": title,
                               "body": body["body"], "state": "open",
                               "labels": labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>()});
            st.issues.insert(n, issue.clone());
            ok(201, issue)
        }
        ("GET", ["", "issues"]) => {
            let page: usize = param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let per: usize = param("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(30)
                .clamp(1, 100);
            let all: Vec<Value> = st.issues.values().rev().cloned().collect();
            ok(
                200,
                Value::Array(all.into_iter().skip((page - 1) * per).take(per).collect()),
            )
        }
        ("PATCH", ["", "issues", n]) => {
            let Some(issue) = n.parse::<u64>().ok().and_then(|n| st.issues.get_mut(&n)) else {
                return gh_error(404, "Not Found");
            };
            if let Some(state) = body["state"].as_str() {
                issue["state"] = json!(state);
            }
            ok(200, issue.clone())
        }
        ("GET", ["", "issues", "comments"]) => {
            let page: usize = param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let per: usize = param("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(30)
                .clamp(1, 100);
            let all: Vec<Value> = st.comments.iter().rev().cloned().collect();
            ok(
                200,
                Value::Array(all.into_iter().skip((page - 1) * per).take(per).collect()),
            )
        }
        ("POST", ["", "issues", n, "comments"]) => {
            let Some(n) = n.parse::<u64>().ok().filter(|n| st.issues.contains_key(n)) else {
                return gh_error(404, "Not Found");
            };
            st.next_id += 1;
            let id = 1_000_000 + st.next_id;
            let c = json!({"id": id, "body": body["body"],
                           "issue_url": format!("https://api.github.com/repos/{}/{}/issues/{n}", s.owner, s.name)});
            st.comments.push(c.clone());
            ok(201, c)
        }
        ("POST", ["", "issues", n, "labels"]) => {
            let Some(issue) = n.parse::<u64>().ok().and_then(|n| st.issues.get_mut(&n)) else {
                return gh_error(404, "Not Found");
            };
            let add: Vec<Value> = body["labels"].as_array().cloned().unwrap_or_default();
            let labels = issue["labels"]
                .as_array_mut()
                .map(std::mem::take)
                .unwrap_or_default();
            let mut labels = labels;
            labels.extend(add.iter().map(|l| json!({"name": l})));
            issue["labels"] = Value::Array(labels.clone());
            ok(200, Value::Array(labels))
        }
        ("GET", ["", "git", "ref", "heads", branch @ ..]) => {
            match s.repo.head_of(&branch.join("/")) {
                Ok(sha) => ok(
                    200,
                    json!({"ref": format!("refs/heads/{}", branch.join("/")), "object": {"type": "commit", "sha": sha}}),
                ),
                Err(_) => gh_error(404, "Not Found"),
            }
        }
        ("GET", ["", "git", "commits", sha]) => match s.repo.tree_id(sha) {
            Ok(tree) => ok(200, json!({"sha": sha, "tree": {"sha": tree}})),
            Err(_) => gh_error(404, "Not Found"),
        },
        ("POST", ["", "git", "blobs"]) => {
            let Some(content) = body["content"].as_str() else {
                return gh_error(422, "Validation Failed: content is missing");
            };
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
            let Some(staged) = st.staged.as_ref() else {
                return gh_error(422, "Validation Failed: unknown tree");
            };
            let Some((base, entries)) = staged.trees.get(tree) else {
                return gh_error(
                    422,
                    &format!("Validation Failed: tree {tree} does not exist"),
                );
            };
            if s.repo.tree_id(parent).ok().as_deref() != Some(base.as_str()) {
                return gh_error(422, "Validation Failed: base_tree is not the parent's tree");
            }
            let files: Vec<(String, String)> = entries
                .iter()
                .map(|(p, b)| (p.clone(), staged.blobs[b].clone()))
                .collect();
            match s.repo.commit_on(parent, message, &files, (s.now)()) {
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
            if s.repo.branch_exists(branch).unwrap_or(false) {
                return gh_error(422, "Reference already exists");
            }
            match s.repo.set_branch(branch, sha, true) {
                Ok(()) => ok(201, json!({"ref": r, "object": {"sha": sha}})),
                Err(e) => gh_error(422, &e.to_string()),
            }
        }
        ("PATCH", ["", "git", "refs", "heads", branch @ ..]) => {
            let Some(sha) = body["sha"].as_str() else {
                return gh_error(422, "Validation Failed: sha is required");
            };
            let force = body["force"].as_bool().unwrap_or(false);
            match s.repo.set_branch(&branch.join("/"), sha, force) {
                Ok(()) => ok(
                    200,
                    json!({"ref": format!("refs/heads/{}", branch.join("/")), "object": {"sha": sha}}),
                ),
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
            if !s.repo.branch_exists(head).unwrap_or(false) {
                return gh_error(
                    422,
                    &format!("Validation Failed: head {head} does not exist"),
                );
            }
            st.next_number += 1;
            let n = st.next_number;
            let pr = json!({"number": n, "html_url": html("pull", n), "title": title, "body": body["body"],
                            "state": "open", "merged": false, "merged_at": null,
                            "head": {"ref": head}, "base": {"ref": base}, "labels": [],
                            "pull_request": {"url": format!("https://api.github.com/repos/{}/{}/pulls/{n}", s.owner, s.name)}});
            st.issues.insert(n, pr.clone());
            ok(201, pr)
        }
        ("GET", ["", "pulls", n]) => match n.parse::<u64>().ok().and_then(|n| st.issues.get(&n)) {
            Some(p) if p.get("pull_request").is_some() => ok(200, p.clone()),
            _ => gh_error(404, "Not Found"),
        },
        ("GET", ["", "contents", path @ ..]) => {
            let git_ref = param("ref").unwrap_or_else(|| "main".into());
            match s.repo.read(&git_ref, &path.join("/")) {
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
        ("GET", ["", "git", "trees", sha]) => match s.repo.list(sha, "") {
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
            match s.repo.log(&branch, &path) {
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
