//! The simulated GitHub: issues, comments and pull requests kept in a JSON file beside a real
//! local git repository, which holds the branches and commits. State is written through on every
//! change, so a killed process finds everything it did.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use squad_protocols::forge::{ForgeItem, PullItem};
use squad_protocols::{FileChange, IssueDetail, IssueRef, IssueSpec, PrRef, PrSpec, PrState};
use squad_runtime::Clock;
use squad_runtime::ports::{FileVersion, Forge, MarkedArtifact, PortError, PortResult};

use squad_adapters::git::GitRepo;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimComment {
    pub id: u64,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimIssue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub open: bool,
    pub comments: Vec<SimComment>,
    /// Why it was last closed or reopened, as GitHub's `state_reason` says it.
    #[serde(default)]
    pub state_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimPr {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub branch: String,
    pub base: String,
    pub state: PrState,
    pub labels: Vec<String>,
    pub files: Vec<String>,
    #[serde(default)]
    pub merged_by: Option<String>,
    /// (reviewer, GitHub's review state: `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`), oldest
    /// first.
    #[serde(default)]
    pub reviews: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ForgeState {
    pub next_number: u64,
    pub next_comment: u64,
    pub issues: Vec<SimIssue>,
    pub pulls: Vec<SimPr>,
    /// Requests served, by operation, for reports.
    #[serde(default)]
    pub requests: std::collections::BTreeMap<String, u64>,
}

pub struct SimForge {
    repo_name: String,
    git: GitRepo,
    state_path: Option<PathBuf>,
    state: Mutex<ForgeState>,
    clock: Clock,
}

impl SimForge {
    /// A forge over `git`; state persists to `state_path` when given (and is loaded from it).
    pub fn new(
        repo_name: &str,
        git: GitRepo,
        state_path: Option<&Path>,
        clock: Clock,
    ) -> Result<SimForge, String> {
        let state = match state_path {
            Some(p) if p.exists() => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
            _ => ForgeState {
                next_number: 1,
                next_comment: 1,
                ..ForgeState::default()
            },
        };
        Ok(SimForge {
            repo_name: repo_name.into(),
            git,
            state_path: state_path.map(Path::to_path_buf),
            state: Mutex::new(state),
            clock,
        })
    }

    pub fn git(&self) -> &GitRepo {
        &self.git
    }

    fn url(&self, kind: &str, n: u64) -> String {
        format!("sim://github/{}/{kind}/{n}", self.repo_name)
    }

    /// Runs `f` on the state and writes it through (atomically: temp file + rename).
    /// Runs a read on the state (counted, not written back).
    fn read<T>(&self, op: &str, f: impl FnOnce(&ForgeState) -> PortResult<T>) -> PortResult<T> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| PortError::failed(op, "forge state lock poisoned"))?;
        *st.requests.entry(op.to_owned()).or_default() += 1;
        f(&st)
    }

    fn update<T>(
        &self,
        op: &str,
        f: impl FnOnce(&mut ForgeState) -> PortResult<T>,
    ) -> PortResult<T> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| PortError::failed(op, "forge state lock poisoned"))?;
        *st.requests.entry(op.to_owned()).or_default() += 1;
        let out = f(&mut st)?;
        if let Some(p) = &self.state_path {
            let tmp = p.with_extension("json.tmp");
            let text = serde_json::to_string_pretty(&*st).map_err(|e| PortError::failed(op, e))?;
            std::fs::write(&tmp, text)
                .map_err(|e| PortError::failed(op, format!("{}: {e}", tmp.display())))?;
            std::fs::rename(&tmp, p)
                .map_err(|e| PortError::failed(op, format!("{}: {e}", p.display())))?;
        }
        Ok(out)
    }

    pub fn snapshot(&self) -> ForgeState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Adds labels to an issue or a pull request; returns its labels.
    pub fn add_labels(&self, number: u64, labels: &[String]) -> PortResult<Vec<String>> {
        self.update("add_labels", |st| {
            let target = st
                .issues
                .iter_mut()
                .find(|i| i.number == number)
                .map(|i| &mut i.labels)
                .or_else(|| {
                    st.pulls
                        .iter_mut()
                        .find(|p| p.number == number)
                        .map(|p| &mut p.labels)
                })
                .ok_or_else(|| PortError::not_found(format!("issue #{number}")))?;
            for l in labels {
                if !target.contains(l) {
                    target.push(l.clone());
                }
            }
            Ok(target.clone())
        })
    }

    /// The simulated human: approves and merges a PR into its base.
    pub fn merge_pr(&self, number: u64, by: &str) -> PortResult<()> {
        let what = format!("merge PR #{number}");
        let (branch, base, title) = {
            let st = self
                .state
                .lock()
                .map_err(|_| PortError::failed(&what, "lock poisoned"))?;
            let pr = st
                .pulls
                .iter()
                .find(|p| p.number == number)
                .ok_or_else(|| PortError::not_found(format!("PR #{number}")))?;
            if pr.state == PrState::Merged {
                return Ok(());
            }
            (pr.branch.clone(), pr.base.clone(), pr.title.clone())
        };
        self.git
            .merge(
                &branch,
                &base,
                &format!("Merge pull request #{number} from {branch}\n\n{title}"),
                self.clock.now(),
            )
            .map_err(|e| PortError::failed(&what, e))?;
        let _ = self.git.checkout_main();
        self.update("merge_pr", |st| {
            if let Some(pr) = st.pulls.iter_mut().find(|p| p.number == number) {
                pr.state = PrState::Merged;
                pr.merged_by = Some(by.into());
            }
            Ok(())
        })
    }

    /// Every issue and pull request as this forge shows it now (see [`ForgeItem`]).
    pub fn items(&self) -> Vec<ForgeItem> {
        let st = self.snapshot();
        let issues = st.issues.iter().map(|i| ForgeItem {
            number: i.number,
            url: self.url("issues", i.number),
            title: i.title.clone(),
            body: i.body.clone(),
            labels: i.labels.clone(),
            open: i.open,
            comments: i.comments.iter().map(|c| c.body.clone()).collect(),
            pull: None,
        });
        let pulls = st.pulls.iter().map(|p| ForgeItem {
            number: p.number,
            url: self.url("pull", p.number),
            title: p.title.clone(),
            body: p.body.clone(),
            labels: p.labels.clone(),
            open: p.state == PrState::Open,
            comments: Vec::new(),
            pull: Some(PullItem {
                branch: p.branch.clone(),
                base: p.base.clone(),
                state: p.state,
                files: p.files.clone(),
            }),
        });
        let mut all: Vec<ForgeItem> = issues.chain(pulls).collect();
        all.sort_by_key(|i| i.number);
        all
    }

    /// Closes issue `number` as a person does on GitHub, saying why: `completed` or
    /// `not_planned`.
    pub fn close_issue_as(&self, number: u64, reason: &str) -> PortResult<()> {
        self.update("update_issue", |st| {
            let target = st
                .issues
                .iter_mut()
                .find(|i| i.number == number)
                .ok_or_else(|| PortError::not_found(format!("issue #{number}")))?;
            target.open = false;
            target.state_reason = Some(reason.into());
            Ok(())
        })
    }

    /// Closes PR `number` without merging it, as a reviewer may.
    pub fn close_pr(&self, number: u64) -> PortResult<()> {
        self.update("close_pr", |st| {
            match st.pulls.iter_mut().find(|p| p.number == number) {
                Some(pr) if pr.state == PrState::Open => {
                    pr.state = PrState::Closed;
                    Ok(())
                }
                Some(_) => Ok(()),
                None => Err(PortError::not_found(format!("PR #{number}"))),
            }
        })
    }

    /// Records a review of PR `number` (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`).
    pub fn review_pr(&self, number: u64, by: &str, state: &str) -> PortResult<()> {
        self.update("review_pr", |st| {
            match st.pulls.iter_mut().find(|p| p.number == number) {
                Some(pr) => {
                    pr.reviews.push((by.into(), state.into()));
                    Ok(())
                }
                None => Err(PortError::not_found(format!("PR #{number}"))),
            }
        })
    }

    fn git_err(what: &str) -> impl Fn(squad_adapters::git::GitError) -> PortError + '_ {
        move |e| PortError::failed(what, e)
    }
}

#[async_trait]
impl Forge for SimForge {
    fn repo(&self) -> String {
        self.repo_name.clone()
    }

    async fn default_branch(&self) -> PortResult<String> {
        Ok("main".into())
    }

    async fn find_marker(&self, marker: &str) -> PortResult<Option<MarkedArtifact>> {
        self.read("find_marker", |st| {
            for i in &st.issues {
                if i.body.contains(marker) {
                    return Ok(Some(MarkedArtifact::Issue(IssueRef {
                        number: i.number,
                        url: self.url("issues", i.number),
                    })));
                }
                if let Some(c) = i.comments.iter().find(|c| c.body.contains(marker)) {
                    return Ok(Some(MarkedArtifact::Comment {
                        issue: i.number,
                        id: c.id,
                    }));
                }
            }
            Ok(st.pulls.iter().find(|p| p.body.contains(marker)).map(|p| {
                MarkedArtifact::PullRequest(PrRef {
                    number: p.number,
                    url: self.url("pull", p.number),
                    branch: p.branch.clone(),
                })
            }))
        })
    }

    async fn create_issue(&self, spec: &IssueSpec) -> PortResult<IssueRef> {
        self.update("create_issue", |st| {
            let number = st.next_number;
            st.next_number += 1;
            st.issues.push(SimIssue {
                number,
                title: spec.title.clone(),
                body: spec.body.clone(),
                labels: spec.labels.clone(),
                open: true,
                comments: Vec::new(),
                state_reason: None,
            });
            Ok(IssueRef {
                number,
                url: self.url("issues", number),
            })
        })
    }

    async fn comment(&self, issue: u64, body: &str) -> PortResult<u64> {
        self.update("create_comment", |st| {
            let id = st.next_comment;
            let target = st
                .issues
                .iter_mut()
                .find(|i| i.number == issue)
                .ok_or_else(|| PortError::not_found(format!("issue #{issue}")))?;
            target.comments.push(SimComment {
                id,
                body: body.into(),
            });
            st.next_comment += 1;
            Ok(id)
        })
    }

    async fn set_issue_open(&self, issue: u64, open: bool) -> PortResult<()> {
        self.update("update_issue", |st| {
            let target = st
                .issues
                .iter_mut()
                .find(|i| i.number == issue)
                .ok_or_else(|| PortError::not_found(format!("issue #{issue}")))?;
            if target.open != open {
                target.open = open;
                target.state_reason = Some(if open { "reopened" } else { "completed" }.into());
            }
            Ok(())
        })
    }

    async fn issue(&self, number: u64) -> PortResult<IssueDetail> {
        self.read("read_issue", |st| {
            let i = st
                .issues
                .iter()
                .find(|i| i.number == number)
                .ok_or_else(|| PortError::not_found(format!("issue #{number}")))?;
            Ok(IssueDetail {
                open: i.open,
                state_reason: i.state_reason.clone(),
                labels: i.labels.clone(),
                texts: std::iter::once(i.body.clone())
                    .chain(i.comments.iter().map(|c| c.body.clone()))
                    .collect(),
            })
        })
    }

    async fn open_pr(&self, spec: &PrSpec) -> PortResult<PrRef> {
        let what = format!("open PR from {}", spec.branch);
        let files: Vec<(String, String)> = spec
            .files
            .iter()
            .map(|f| (f.path.clone(), f.content.clone()))
            .collect();
        if !self
            .git
            .branch_exists(&spec.branch)
            .map_err(Self::git_err(&what))?
        {
            self.git
                .commit(
                    &spec.branch,
                    Some(&spec.base),
                    &spec.commit_message,
                    &files,
                    self.clock.now(),
                    false,
                )
                .map_err(Self::git_err(&what))?;
        }
        let changed = self
            .git
            .changed_paths(&spec.base, &spec.branch)
            .map_err(Self::git_err(&what))?;
        self.update("create_pull", |st| {
            if let Some(existing) = st
                .pulls
                .iter()
                .find(|p| p.branch == spec.branch && p.state == PrState::Open)
            {
                return Err(PortError::Failed {
                    what: what.clone(),
                    detail: format!(
                        "a pull request already exists for {} (#{}) (422)",
                        spec.branch, existing.number
                    ),
                });
            }
            let number = st.next_number;
            st.next_number += 1;
            st.pulls.push(SimPr {
                number,
                title: spec.title.clone(),
                body: spec.body.clone(),
                branch: spec.branch.clone(),
                base: spec.base.clone(),
                state: PrState::Open,
                labels: spec.labels.clone(),
                files: changed,
                merged_by: None,
                reviews: Vec::new(),
            });
            Ok(PrRef {
                number,
                url: self.url("pull", number),
                branch: spec.branch.clone(),
            })
        })
    }

    async fn pr_state(&self, number: u64) -> PortResult<PrState> {
        self.read("get_pull", |st| {
            st.pulls
                .iter()
                .find(|p| p.number == number)
                .map(|p| p.state)
                .ok_or_else(|| PortError::not_found(format!("PR #{number}")))
        })
    }

    async fn commit_files(
        &self,
        branch: &str,
        message: &str,
        files: &[FileChange],
    ) -> PortResult<String> {
        let what = format!("commit to {branch}");
        self.update("git_commit", |_| Ok(()))?;
        let files: Vec<(String, String)> = files
            .iter()
            .map(|f| (f.path.clone(), f.content.clone()))
            .collect();
        let id = self
            .git
            .commit(branch, None, message, &files, self.clock.now(), false)
            .map_err(Self::git_err(&what))?;
        if branch == "main" {
            let _ = self.git.checkout_main();
        }
        Ok(id)
    }

    async fn read_file(&self, path: &str, git_ref: &str) -> PortResult<Option<String>> {
        self.read("get_content", |_| Ok(()))?;
        self.git
            .read(git_ref, path)
            .map_err(|e| PortError::failed(format!("read {path}"), e))
    }

    async fn list_files(&self, prefix: &str, git_ref: &str) -> PortResult<Vec<String>> {
        self.read("get_tree", |_| Ok(()))?;
        self.git
            .list(git_ref, prefix)
            .map_err(|e| PortError::failed(format!("list {prefix}"), e))
    }

    async fn file_history(&self, path: &str) -> PortResult<Vec<FileVersion>> {
        self.read("list_commits", |_| Ok(()))?;
        let what = format!("history of {path}");
        let log = self.git.log("main", path).map_err(Self::git_err(&what))?;
        let mut out = Vec::new();
        for c in log {
            if let Some(content) = self.git.read(&c.id, path).map_err(Self::git_err(&what))? {
                out.push(FileVersion {
                    commit: c.id,
                    at: c.at,
                    message: c.message,
                    content,
                });
            }
        }
        Ok(out)
    }
}
