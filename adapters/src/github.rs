//! GitHub (or GitHub Enterprise) as squad's forge, over octocrab (pinned at 0.54.9).
//!
//! Requests go through octocrab's raw JSON methods (`get`/`post`/`patch` into
//! `serde_json::Value`) rather than its model types, which changed with every 0.5x minor: squad
//! reads the few fields it needs and names the one missing. Multi-file commits use the git data
//! API (blobs, a tree on the base tree, a commit, the ref). Rate limits (429, or 403 with
//! `x-ratelimit-remaining: 0` or a `Retry-After`) and 5xx answers are retried with backoff;
//! every other error names the repository and the action (401 bad credentials, 403 missing
//! permission, 404, 422 validation with GitHub's own messages).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use squad_protocols::{
    FileChange, IssueDetail, IssueRef, IssueSpec, PrActivity, PrRef, PrSpec, PrState,
};
use squad_runtime::ports::{FileVersion, Forge, MarkedArtifact, PortError, PortResult};

mod fields;
pub mod limits;
mod listing;
mod retry;

use fields::{decode_base64, field_str, field_u64, pr_state_of};
use retry::{Failure, may_have_happened, replayable};

/// A GitHub App installation: squad signs a JWT with the App's private key and exchanges it for
/// installation tokens, which octocrab refreshes before they expire.
#[derive(Clone)]
pub struct GitHubApp {
    pub app_id: u64,
    pub installation_id: u64,
    /// The App's private key, PEM (RSA).
    pub private_key_pem: String,
}

/// How a [`GitHubForge`] authenticates and where it points.
#[derive(Clone)]
pub struct GitHubOptions {
    /// `https://api.github.com`, or a GitHub Enterprise API base (`https://ghe.example/api/v3`).
    pub base_url: String,
    /// `owner/name`.
    pub repo: String,
    /// A token (fine-grained or classic, or an installation token); unused with `app`.
    pub token: String,
    /// Authenticate as a GitHub App installation instead of with `token`.
    pub app: Option<GitHubApp>,
    /// Open pull requests as drafts (a human marks them ready).
    pub draft: bool,
    /// Attempts for rate-limited and 5xx answers (1 = no retry).
    pub max_attempts: u32,
    /// The longest wait squad accepts from a rate limit before it gives up on the call.
    pub max_wait: Duration,
}

impl std::fmt::Debug for GitHubOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubOptions")
            .field("base_url", &self.base_url)
            .field("repo", &self.repo)
            .field("token", &"<redacted>")
            .field(
                "app",
                &self.app.as_ref().map(|a| (a.app_id, a.installation_id)),
            )
            .finish()
    }
}

/// The GitOps repository on GitHub.
pub struct GitHubForge {
    /// Shared, not cloned: octocrab's clone copies its installation-token cache.
    caller: std::sync::Arc<Caller>,
    draft: bool,
    /// The default branch, read once.
    default_branch: tokio::sync::OnceCell<String>,
    /// Labels known to exist (created or seen), so each is checked once per process.
    labels: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// The part of the adapter that sends requests, shared with the real-time runtime per call.
struct Caller {
    client: octocrab::Octocrab,
    owner: String,
    name: String,
    max_attempts: u32,
    max_wait: Duration,
}

impl Caller {
    /// One JSON call with retries.
    async fn call(
        &self,
        what: &str,
        method: &str,
        route: &str,
        body: Option<&Value>,
    ) -> PortResult<Value> {
        let mut attempt = 0;
        loop {
            let result: Result<Value, octocrab::Error> = match method {
                "GET" => self.client.get(route, None::<&()>).await,
                "POST" => self.client.post(route, body).await,
                "PATCH" => self.client.patch(route, body).await,
                "PUT" => self.client.put(route, body).await,
                other => {
                    return Err(PortError::failed(what, format!("method {other}")));
                }
            };
            let e = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            attempt += 1;
            // A write that makes a new artifact (an issue, a comment, a PR) is not repeated
            // when its answer is a 5xx or never came: GitHub may have done it. The journal's
            // retry looks for its marker first.
            if !replayable(method, route) && may_have_happened(&e) {
                return Err(PortError::Unavailable {
                    what: format!("{what} on {}/{}", self.owner, self.name),
                    detail: format!(
                        "{} (not repeated here: GitHub may have done it)",
                        self.classify(what, e, attempt).reason()
                    ),
                });
            }
            match self.classify(what, e, attempt) {
                Failure::Final(e) => return Err(e),
                Failure::Retry(wait, why) => {
                    if attempt >= self.max_attempts || wait > self.max_wait {
                        return Err(PortError::Unavailable {
                            what: format!("{what} on {}/{}", self.owner, self.name),
                            detail: format!("{why} (after {attempt} attempt(s))"),
                        });
                    }
                    tracing::warn!(
                        what,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "GitHub: {why}; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

impl GitHubForge {
    pub fn new(o: &GitHubOptions) -> Result<GitHubForge, String> {
        let (owner, name) = o
            .repo
            .split_once('/')
            .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'))
            .ok_or_else(|| format!("github repo {:?}: expected OWNER/NAME", o.repo))?;
        crate::tls::install_crypto_provider();
        let builder = octocrab::Octocrab::builder()
            .base_uri(o.base_url.as_str())
            .map_err(|e| format!("github base URL {:?}: {e}", o.base_url))?;
        let client = match &o.app {
            None => builder
                .personal_token(o.token.clone())
                .build()
                .map_err(|e| format!("github client for {}: {e}", o.base_url))?,
            Some(app) => {
                let key = octocrab::EncodingKey::from_rsa_pem(app.private_key_pem.as_bytes())
                    .map_err(|e| {
                        format!(
                            "github App {}: the private key is not an RSA PEM key ({e})",
                            app.app_id
                        )
                    })?;
                builder
                    .app(octocrab::models::AppId(app.app_id), key)
                    .build()
                    .map_err(|e| format!("github client for {}: {e}", o.base_url))?
                    .installation(octocrab::models::InstallationId(app.installation_id))
                    .map_err(|e| {
                        format!(
                            "github App {} installation {}: {e}",
                            app.app_id, app.installation_id
                        )
                    })?
            }
        };
        Ok(GitHubForge {
            caller: std::sync::Arc::new(Caller {
                client,
                owner: owner.to_string(),
                name: name.to_string(),
                max_attempts: o.max_attempts.max(1),
                max_wait: o.max_wait,
            }),
            draft: o.draft,
            default_branch: tokio::sync::OnceCell::new(),
            labels: std::sync::Mutex::new(std::collections::HashSet::new()),
        })
    }

    fn route(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", self.caller.owner, self.caller.name)
    }

    /// One JSON call with retries, on real time ([`crate::realtime`]): in a simulation the
    /// paused clock holds still while GitHub answers, whichever GitHub it is.
    async fn call(
        &self,
        what: &str,
        method: &str,
        route: &str,
        body: Option<&Value>,
    ) -> PortResult<Value> {
        let caller = self.caller.clone();
        let (w, m, r, b) = (
            what.to_string(),
            method.to_string(),
            route.to_string(),
            body.cloned(),
        );
        crate::realtime::run(async move { caller.call(&w, &m, &r, b.as_ref()).await })
            .await
            .map_err(|e| PortError::failed(what, e))?
    }

    async fn get(&self, what: &str, route: &str) -> PortResult<Value> {
        self.call(what, "GET", route, None).await
    }

    /// Every page of a list (GitHub pages with `per_page` and `page`).
    async fn get_all(&self, what: &str, route: &str) -> PortResult<Vec<Value>> {
        let mut out = Vec::new();
        let sep = if route.contains('?') { '&' } else { '?' };
        for page in 1..=50 {
            let v = self
                .get(what, &format!("{route}{sep}per_page=100&page={page}"))
                .await?;
            let items = v.as_array().cloned().unwrap_or_default();
            let n = items.len();
            out.extend(items);
            if n < 100 {
                break;
            }
        }
        Ok(out)
    }

    async fn ensure_labels(&self, labels: &[String]) -> PortResult<()> {
        let known = |l: &str| self.labels.lock().map(|k| k.contains(l)).unwrap_or(false);
        let remember = |l: &str| {
            if let Ok(mut k) = self.labels.lock() {
                k.insert(l.to_string());
            }
        };
        for label in labels {
            if known(label) {
                continue;
            }
            let path = self.route(&format!("/labels/{}", encode(label)));
            match self.get("read label", &path).await {
                Ok(_) => {}
                Err(PortError::NotFound { .. }) => {
                    let created = self
                        .call(
                            &format!("create label {label}"),
                            "POST",
                            &self.route("/labels"),
                            Some(&json!({"name": label, "color": label_color(label)})),
                        )
                        .await;
                    // Another writer may have created it meanwhile (422 already_exists).
                    match created {
                        Err(e) if !e.to_string().contains("already_exists") => return Err(e),
                        _ => {}
                    }
                }
                Err(e) => return Err(e),
            }
            remember(label);
        }
        Ok(())
    }

    async fn head_commit(&self, branch: &str) -> PortResult<String> {
        let r = self
            .get(
                &format!("read branch {branch}"),
                &self.route(&format!("/git/ref/heads/{}", encode_path(branch))),
            )
            .await?;
        field_str(&r, &["object", "sha"], "git ref")
    }

    /// One commit of `files` on top of `parent`; returns the new commit's sha.
    async fn commit_tree(
        &self,
        parent: &str,
        message: &str,
        files: &[FileChange],
    ) -> PortResult<String> {
        let c = self
            .get(
                "read commit",
                &self.route(&format!("/git/commits/{parent}")),
            )
            .await?;
        let base_tree = field_str(&c, &["tree", "sha"], "git commit")?;
        let mut entries = Vec::new();
        for f in files {
            let blob = self
                .call(
                    &format!("upload {}", f.path),
                    "POST",
                    &self.route("/git/blobs"),
                    Some(&json!({"content": f.content, "encoding": "utf-8"})),
                )
                .await?;
            entries.push(json!({"path": f.path, "mode": "100644", "type": "blob",
                                "sha": field_str(&blob, &["sha"], "git blob")?}));
        }
        let tree = self
            .call(
                "create tree",
                "POST",
                &self.route("/git/trees"),
                Some(&json!({"base_tree": base_tree, "tree": entries})),
            )
            .await?;
        let commit = self
            .call(
                "create commit",
                "POST",
                &self.route("/git/commits"),
                Some(
                    &json!({"message": message, "tree": field_str(&tree, &["sha"], "git tree")?,
                             "parents": [parent]}),
                ),
            )
            .await?;
        field_str(&commit, &["sha"], "git commit")
    }
}

/// A stable, readable colour per label.
fn label_color(label: &str) -> &'static str {
    match label {
        "incident" => "d73a4a",
        "needs-remediation" => "fbca04",
        "security" => "b60205",
        _ if label.starts_with("squad:") => "5319e7",
        _ => "c5def5",
    }
}

/// A path segment, percent-encoded.
fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A path of segments, each encoded, slashes kept.
fn encode_path(s: &str) -> String {
    s.split('/').map(encode).collect::<Vec<_>>().join("/")
}

#[async_trait]
impl Forge for GitHubForge {
    fn repo(&self) -> String {
        format!("{}/{}", self.caller.owner, self.caller.name)
    }

    async fn default_branch(&self) -> PortResult<String> {
        self.default_branch
            .get_or_try_init(|| async {
                let r = self.get("read the repository", &self.route("")).await?;
                field_str(&r, &["default_branch"], "repository")
            })
            .await
            .cloned()
    }

    async fn find_marker(&self, marker: &str) -> PortResult<Option<MarkedArtifact>> {
        // Issues and PRs (the issues list holds both), newest first, then issue comments.
        let items = self
            .get_all(
                "list issues",
                &self.route("/issues?state=all&sort=created&direction=desc"),
            )
            .await?;
        for i in &items {
            if i.get("body")
                .and_then(Value::as_str)
                .is_some_and(|b| b.contains(marker))
            {
                let number = field_u64(i, "number", "issue")?;
                let url = field_str(i, &["html_url"], "issue").unwrap_or_default();
                return Ok(Some(if i.get("pull_request").is_some() {
                    let pr = self
                        .get(
                            "read pull request",
                            &self.route(&format!("/pulls/{number}")),
                        )
                        .await?;
                    MarkedArtifact::PullRequest(PrRef {
                        number,
                        url,
                        branch: field_str(&pr, &["head", "ref"], "pull request")?,
                    })
                } else {
                    MarkedArtifact::Issue(IssueRef { number, url })
                }));
            }
        }
        let comments = self
            .get_all(
                "list issue comments",
                &self.route("/issues/comments?sort=created&direction=desc"),
            )
            .await?;
        for c in &comments {
            if c.get("body")
                .and_then(Value::as_str)
                .is_some_and(|b| b.contains(marker))
            {
                let id = field_u64(c, "id", "comment")?;
                let issue = c
                    .get("issue_url")
                    .and_then(Value::as_str)
                    .and_then(|u| u.rsplit('/').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                return Ok(Some(MarkedArtifact::Comment { issue, id }));
            }
        }
        Ok(None)
    }

    async fn create_issue(&self, spec: &IssueSpec) -> PortResult<IssueRef> {
        let (title, labels) = (limits::title(&spec.title), limits::labels(&spec.labels));
        self.ensure_labels(&labels).await?;
        let i = self
            .call(
                &format!("create issue \"{title}\""),
                "POST",
                &self.route("/issues"),
                Some(&json!({"title": title, "body": limits::body(&spec.body), "labels": labels})),
            )
            .await?;
        Ok(IssueRef {
            number: field_u64(&i, "number", "issue")?,
            url: field_str(&i, &["html_url"], "issue")?,
        })
    }

    async fn comment(&self, issue: u64, body: &str) -> PortResult<u64> {
        let c = self
            .call(
                &format!("comment on #{issue}"),
                "POST",
                &self.route(&format!("/issues/{issue}/comments")),
                Some(&json!({"body": limits::body(body)})),
            )
            .await?;
        field_u64(&c, "id", "comment")
    }

    async fn set_issue_open(&self, issue: u64, open: bool) -> PortResult<()> {
        self.call(
            &format!("{} #{issue}", if open { "reopen" } else { "close" }),
            "PATCH",
            &self.route(&format!("/issues/{issue}")),
            Some(&json!({"state": if open { "open" } else { "closed" }})),
        )
        .await?;
        Ok(())
    }

    async fn issue(&self, number: u64) -> PortResult<IssueDetail> {
        let i = self
            .get(
                &format!("read #{number}"),
                &self.route(&format!("/issues/{number}")),
            )
            .await?;
        let comments = self
            .get_all(
                &format!("list comments of #{number}"),
                &self.route(&format!("/issues/{number}/comments")),
            )
            .await?;
        let text = |v: &Value| v["body"].as_str().unwrap_or_default().to_owned();
        Ok(IssueDetail {
            open: field_str(&i, &["state"], "issue")? == "open",
            state_reason: i["state_reason"].as_str().map(str::to_owned),
            labels: i["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["name"].as_str().or_else(|| l.as_str()))
                .map(str::to_owned)
                .collect(),
            texts: std::iter::once(text(&i))
                .chain(comments.iter().map(text))
                .collect(),
        })
    }

    async fn open_pr(&self, spec: &PrSpec) -> PortResult<PrRef> {
        let parent = self.head_commit(&spec.base).await?;
        let commit = self
            .commit_tree(&parent, &spec.commit_message, &spec.files)
            .await?;
        // The branch: created, or moved to the new commit when a crashed attempt left it.
        let created = self
            .call(
                &format!("create branch {}", spec.branch),
                "POST",
                &self.route("/git/refs"),
                Some(&json!({"ref": format!("refs/heads/{}", spec.branch), "sha": commit})),
            )
            .await;
        match created {
            Ok(_) => {}
            // It exists (422): a crashed attempt made it.
            Err(PortError::Rejected { .. }) => {
                self.call(
                    &format!("update branch {}", spec.branch),
                    "PATCH",
                    &self.route(&format!("/git/refs/heads/{}", encode_path(&spec.branch))),
                    Some(&json!({"sha": commit, "force": true})),
                )
                .await?;
            }
            Err(e) => return Err(e),
        }
        let title = limits::title(&spec.title);
        let pr = self
            .call(
                &format!("open pull request \"{title}\""),
                "POST",
                &self.route("/pulls"),
                Some(
                    &json!({"title": title, "body": limits::body(&spec.body), "head": spec.branch,
                             "base": spec.base, "draft": self.draft}),
                ),
            )
            .await?;
        let number = field_u64(&pr, "number", "pull request")?;
        if !spec.labels.is_empty() {
            let labels = limits::labels(&spec.labels);
            self.ensure_labels(&labels).await?;
            self.call(
                &format!("label #{number}"),
                "POST",
                &self.route(&format!("/issues/{number}/labels")),
                Some(&json!({"labels": labels})),
            )
            .await?;
        }
        Ok(PrRef {
            number,
            url: field_str(&pr, &["html_url"], "pull request")?,
            branch: spec.branch.clone(),
        })
    }

    async fn pr_state(&self, number: u64) -> PortResult<PrState> {
        let pr = self
            .get(
                &format!("read #{number}"),
                &self.route(&format!("/pulls/{number}")),
            )
            .await?;
        Ok(pr_state_of(&pr))
    }

    async fn pr_activity(&self, number: u64) -> PortResult<PrActivity> {
        let reviews = self
            .get_all(
                &format!("list reviews of #{number}"),
                &self.route(&format!("/pulls/{number}/reviews")),
            )
            .await?;
        let pr = self
            .get(
                &format!("read #{number}"),
                &self.route(&format!("/pulls/{number}")),
            )
            .await?;
        let head = field_str(&pr, &["head", "sha"], "pull request")?;
        let runs = self
            .get(
                &format!("list checks of #{number}"),
                &self.route(&format!("/commits/{head}/check-runs?per_page=100")),
            )
            .await?;
        Ok(PrActivity {
            reviews: reviews
                .iter()
                .map(|r| {
                    (
                        r["user"]["login"].as_str().unwrap_or("?").to_string(),
                        r["state"].as_str().unwrap_or("?").to_ascii_lowercase(),
                    )
                })
                .collect(),
            checks: runs["check_runs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or("?").to_string(),
                        c["conclusion"]
                            .as_str()
                            .or_else(|| c["status"].as_str())
                            .unwrap_or("?")
                            .to_string(),
                    )
                })
                .collect(),
        })
    }

    async fn commit_files(
        &self,
        branch: &str,
        message: &str,
        files: &[FileChange],
    ) -> PortResult<String> {
        // Not forced: a concurrent push (another incident's record on the same branch) makes
        // the update fail rather than lose the other commit; the commit is then made again on
        // the new head.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let parent = self.head_commit(branch).await?;
            let commit = self.commit_tree(&parent, message, files).await?;
            let updated = self
                .call(
                    &format!("update branch {branch}"),
                    "PATCH",
                    &self.route(&format!("/git/refs/heads/{}", encode_path(branch))),
                    Some(&json!({"sha": commit, "force": false})),
                )
                .await;
            match updated {
                Ok(_) => return Ok(commit),
                // A retried update whose first try moved the branch already.
                Err(PortError::Rejected { .. }) if self.head_commit(branch).await? == commit => {
                    return Ok(commit);
                }
                Err(PortError::Rejected { .. }) if attempt < 5 => {}
                Err(e) => return Err(e),
            }
        }
    }

    async fn read_file(&self, path: &str, git_ref: &str) -> PortResult<Option<String>> {
        let route = self.route(&format!(
            "/contents/{}?ref={}",
            encode_path(path),
            encode(git_ref)
        ));
        match self.get(&format!("read {path}"), &route).await {
            Err(PortError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
            Ok(v) => {
                if v.is_array() {
                    return Ok(None); // a directory
                }
                let b64 = field_str(&v, &["content"], "file content")?;
                let bytes = decode_base64(&b64).ok_or_else(|| {
                    PortError::failed(format!("read {path}"), "content is not base64")
                })?;
                // As the local git forge reads it: a stray byte is not a reason to stop a walk.
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
        }
    }

    async fn list_files(&self, prefix: &str, git_ref: &str) -> PortResult<Vec<String>> {
        // A branch (which may hold slashes) is resolved to its commit: the trees endpoint takes
        // any tree-ish, but a slash in a path segment is not something to rely on.
        let is_sha = git_ref.len() == 40 && git_ref.bytes().all(|b| b.is_ascii_hexdigit());
        let commit = if is_sha {
            git_ref.to_string()
        } else {
            self.head_commit(git_ref).await?
        };
        let t = self
            .get(
                &format!("list files at {git_ref}"),
                &self.route(&format!("/git/trees/{commit}?recursive=1")),
            )
            .await?;
        // GitHub lists at most 100,000 entries (7 MB) of a tree and says so.
        if t.get("truncated").and_then(Value::as_bool) == Some(true) {
            tracing::warn!(
                repo = %self.repo(),
                git_ref,
                "GitHub truncated the file list (over 100,000 entries): files past it are not read"
            );
        }
        Ok(t.get("tree")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| e.get("type").and_then(Value::as_str) == Some("blob"))
            .filter_map(|e| e.get("path").and_then(Value::as_str))
            .filter(|p| p.starts_with(prefix))
            .map(str::to_string)
            .collect())
    }

    async fn file_history(&self, path: &str) -> PortResult<Vec<FileVersion>> {
        let base = self.default_branch().await?;
        let commits = self
            .get(
                &format!("history of {path}"),
                &self.route(&format!(
                    "/commits?sha={}&path={}&per_page=30",
                    encode(&base),
                    encode(path)
                )),
            )
            .await?;
        let mut out = Vec::new();
        for c in commits.as_array().into_iter().flatten() {
            let sha = field_str(c, &["sha"], "commit")?;
            let at = field_str(c, &["commit", "committer", "date"], "commit")?;
            let at: DateTime<Utc> = at
                .parse()
                .map_err(|e| PortError::failed(format!("history of {path}"), e))?;
            let message = field_str(c, &["commit", "message"], "commit")?;
            let Some(content) = self.read_file(path, &sha).await? else {
                continue;
            };
            out.push(FileVersion {
                commit: sha,
                at,
                message: message.lines().next().unwrap_or_default().to_string(),
                content,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
