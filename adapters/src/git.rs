//! A local git repository, written through git's object database (blobs, trees, commits, refs)
//! the same way the GitHub git data API works, so every write is one atomic ref update.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use git2::build::TreeUpdateBuilder;
use git2::{FileMode, ObjectType, Oid, Repository, Signature, Time, TreeWalkMode, TreeWalkResult};

#[derive(Debug, thiserror::Error)]
#[error("git repository {path}: {action}: {message}")]
pub struct GitError {
    pub path: String,
    pub action: String,
    pub message: String,
}

/// One commit of a file's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    pub at: DateTime<Utc>,
    pub message: String,
}

/// A handle on a repository with a work tree. Cheap to clone; operations are serialised.
#[derive(Clone)]
pub struct GitRepo {
    path: PathBuf,
    repo: Arc<Mutex<Repository>>,
}

impl GitRepo {
    fn err(path: &Path, action: &str, e: impl std::fmt::Display) -> GitError {
        GitError {
            path: path.display().to_string(),
            action: action.into(),
            message: e.to_string(),
        }
    }

    /// Creates an empty repository whose default branch is `main`.
    pub fn init(path: &Path) -> Result<GitRepo, GitError> {
        std::fs::create_dir_all(path).map_err(|e| Self::err(path, "create directory", e))?;
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        let repo = Repository::init_opts(path, &opts).map_err(|e| Self::err(path, "init", e))?;
        Ok(GitRepo {
            path: path.to_path_buf(),
            repo: Arc::new(Mutex::new(repo)),
        })
    }

    pub fn open(path: &Path) -> Result<GitRepo, GitError> {
        let repo = Repository::open(path).map_err(|e| Self::err(path, "open", e))?;
        Ok(GitRepo {
            path: path.to_path_buf(),
            repo: Arc::new(Mutex::new(repo)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(
        &self,
        action: &str,
        f: impl FnOnce(&Repository) -> Result<T, git2::Error>,
    ) -> Result<T, GitError> {
        let repo = self
            .repo
            .lock()
            .map_err(|_| Self::err(&self.path, action, "lock poisoned"))?;
        f(&repo).map_err(|e| Self::err(&self.path, action, e))
    }

    fn signature(at: DateTime<Utc>) -> Result<Signature<'static>, git2::Error> {
        Signature::new("squad", "squad@localhost", &Time::new(at.timestamp(), 0))
    }

    /// Commits `files` (path, content) on top of `branch` (or as a root commit if the branch does
    /// not exist and `from` is None; from `from` if given), moving the branch. Returns the commit id.
    pub fn commit(
        &self,
        branch: &str,
        from: Option<&str>,
        message: &str,
        files: &[(String, String)],
        at: DateTime<Utc>,
        replace_tree: bool,
    ) -> Result<String, GitError> {
        self.with(&format!("commit to {branch}"), |repo| {
            let refname = format!("refs/heads/{branch}");
            let parent_ref = match from {
                Some(f) => format!("refs/heads/{f}"),
                None => refname.clone(),
            };
            let parent = match repo.find_reference(&parent_ref) {
                Ok(r) => Some(r.peel_to_commit()?),
                Err(e) if e.code() == git2::ErrorCode::NotFound && from.is_none() => None,
                Err(e) => return Err(e),
            };
            let empty = repo.treebuilder(None)?.write()?;
            let base = match (&parent, replace_tree) {
                (Some(p), false) => p.tree()?,
                _ => repo.find_tree(empty)?,
            };
            let mut update = TreeUpdateBuilder::new();
            for (path, content) in files {
                let blob = repo.blob(content.as_bytes())?;
                update.upsert(path.as_str(), blob, FileMode::Blob);
            }
            let tree_id = update.create_updated(repo, &base)?;
            let tree = repo.find_tree(tree_id)?;
            let sig = Self::signature(at)?;
            let parents: Vec<&git2::Commit> = parent.iter().collect();
            let oid = repo.commit(None, &sig, &sig, message, &tree, &parents)?;
            repo.reference(&refname, oid, true, message)?;
            Ok(oid.to_string())
        })
    }

    /// Commits `files` on top of commit `parent` (an id or a branch) without moving any branch:
    /// the git data API's "create a commit". Returns the new commit's id.
    pub fn commit_on(
        &self,
        parent: &str,
        message: &str,
        files: &[(String, String)],
        at: DateTime<Utc>,
    ) -> Result<String, GitError> {
        self.with(&format!("commit on {parent}"), |repo| {
            let parent = repo.revparse_single(parent)?.peel_to_commit()?;
            let mut update = TreeUpdateBuilder::new();
            for (path, content) in files {
                let blob = repo.blob(content.as_bytes())?;
                update.upsert(path.as_str(), blob, FileMode::Blob);
            }
            let tree = repo.find_tree(update.create_updated(repo, &parent.tree()?)?)?;
            let sig = Self::signature(at)?;
            Ok(repo
                .commit(None, &sig, &sig, message, &tree, &[&parent])?
                .to_string())
        })
    }

    /// Points `branch` at commit `id`. Without `force`, only a fast-forward is allowed (an
    /// error otherwise, as GitHub's "Update is not a fast forward").
    pub fn set_branch(&self, branch: &str, id: &str, force: bool) -> Result<(), GitError> {
        self.with(&format!("move {branch} to {id}"), |repo| {
            let target = git2::Oid::from_str(id)?;
            repo.find_commit(target)?;
            let refname = format!("refs/heads/{branch}");
            let current = match repo.find_reference(&refname) {
                Ok(r) if !force => Some(r.peel_to_commit()?.id()),
                _ => None,
            };
            let behind = match current {
                Some(c) => c != target && !repo.graph_descendant_of(target, c)?,
                None => false,
            };
            if behind {
                return Err(git2::Error::from_str("Update is not a fast forward"));
            }
            repo.reference(&refname, target, true, "squad: set branch")?;
            Ok(())
        })
    }

    /// The id of the tree of a revision.
    pub fn tree_id(&self, rev: &str) -> Result<String, GitError> {
        self.with(&format!("tree of {rev}"), |repo| {
            Ok(Self::tree_of(repo, rev)?.id().to_string())
        })
    }

    /// Merges `branch` into `into` (fast-forward when possible, a merge commit otherwise).
    pub fn merge(
        &self,
        branch: &str,
        into: &str,
        message: &str,
        at: DateTime<Utc>,
    ) -> Result<String, GitError> {
        self.with(&format!("merge {branch} into {into}"), |repo| {
            let theirs = repo
                .find_reference(&format!("refs/heads/{branch}"))?
                .peel_to_commit()?;
            let ours = repo
                .find_reference(&format!("refs/heads/{into}"))?
                .peel_to_commit()?;
            let oid = if repo.graph_descendant_of(theirs.id(), ours.id())? {
                theirs.id()
            } else {
                let mut index = repo.merge_commits(&ours, &theirs, None)?;
                if index.has_conflicts() {
                    return Err(git2::Error::from_str("merge conflicts"));
                }
                let tree = repo.find_tree(index.write_tree_to(repo)?)?;
                let sig = Self::signature(at)?;
                repo.commit(None, &sig, &sig, message, &tree, &[&ours, &theirs])?
            };
            repo.reference(&format!("refs/heads/{into}"), oid, true, message)?;
            Ok(oid.to_string())
        })
    }

    /// Makes the work tree show `main` (for people looking at the repo).
    pub fn checkout_main(&self) -> Result<(), GitError> {
        self.with("checkout main", |repo| {
            repo.set_head("refs/heads/main")?;
            repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        })
    }

    pub fn branch_exists(&self, branch: &str) -> Result<bool, GitError> {
        self.with("find branch", |repo| {
            Ok(repo.find_reference(&format!("refs/heads/{branch}")).is_ok())
        })
    }

    pub fn head_of(&self, branch: &str) -> Result<String, GitError> {
        self.with("read branch", |repo| {
            Ok(repo
                .find_reference(&format!("refs/heads/{branch}"))?
                .peel_to_commit()?
                .id()
                .to_string())
        })
    }

    fn tree_of<'r>(repo: &'r Repository, rev: &str) -> Result<git2::Tree<'r>, git2::Error> {
        repo.revparse_single(rev)?.peel_to_tree()
    }

    /// A file's content at a revision (branch name or commit id), if it exists there.
    pub fn read(&self, rev: &str, path: &str) -> Result<Option<String>, GitError> {
        self.with(&format!("read {path} at {rev}"), |repo| {
            let tree = Self::tree_of(repo, rev)?;
            let entry = match tree.get_path(Path::new(path)) {
                Ok(e) => e,
                Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let blob = entry.to_object(repo)?.peel_to_blob()?;
            Ok(Some(String::from_utf8_lossy(blob.content()).into_owned()))
        })
    }

    /// Every file path at a revision under `prefix`.
    pub fn list(&self, rev: &str, prefix: &str) -> Result<Vec<String>, GitError> {
        self.with(&format!("list {prefix} at {rev}"), |repo| {
            let tree = Self::tree_of(repo, rev)?;
            let mut out = Vec::new();
            tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
                if entry.kind() == Some(ObjectType::Blob) {
                    let p = format!("{dir}{}", entry.name().unwrap_or(""));
                    if p.starts_with(prefix) {
                        out.push(p);
                    }
                }
                TreeWalkResult::Ok
            })?;
            out.sort();
            Ok(out)
        })
    }

    /// Commits on `branch` (first-parent), newest first, that changed `path` (all if empty).
    pub fn log(&self, branch: &str, path: &str) -> Result<Vec<Commit>, GitError> {
        self.with(&format!("log {path} on {branch}"), |repo| {
            let mut walk = repo.revwalk()?;
            walk.push_ref(&format!("refs/heads/{branch}"))?;
            walk.simplify_first_parent()?;
            let mut out = Vec::new();
            for oid in walk {
                let commit = repo.find_commit(oid?)?;
                let blob_at = |c: &git2::Commit| -> Result<Option<Oid>, git2::Error> {
                    match c.tree()?.get_path(Path::new(path)) {
                        Ok(e) => Ok(Some(e.id())),
                        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
                        Err(e) => Err(e),
                    }
                };
                let changed = path.is_empty() || {
                    let mine = blob_at(&commit)?;
                    let before = match commit.parent(0) {
                        Ok(p) => blob_at(&p)?,
                        Err(_) => None,
                    };
                    mine != before
                };
                if changed {
                    out.push(Commit {
                        id: commit.id().to_string(),
                        at: Utc
                            .timestamp_opt(commit.time().seconds(), 0)
                            .single()
                            .unwrap_or_default(),
                        message: commit.message().unwrap_or("").trim().to_owned(),
                    });
                }
            }
            Ok(out)
        })
    }

    /// Paths that differ between two revisions.
    pub fn changed_paths(&self, base: &str, head: &str) -> Result<Vec<String>, GitError> {
        self.with(&format!("diff {base}..{head}"), |repo| {
            let a = Self::tree_of(repo, base)?;
            let b = Self::tree_of(repo, head)?;
            let diff = repo.diff_tree_to_tree(Some(&a), Some(&b), None)?;
            let mut out: Vec<String> = diff
                .deltas()
                .filter_map(|d| {
                    d.new_file()
                        .path()
                        .or(d.old_file().path())
                        .map(|p| p.display().to_string())
                })
                .collect();
            out.sort();
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn commits_branches_merges_and_reads_history() {
        let dir = tempfile::tempdir().unwrap();
        let repo = GitRepo::init(dir.path()).unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
        let files = vec![
            ("k8s/a.yaml".to_string(), "a: 1\n".to_string()),
            ("README.md".to_string(), "hi\n".to_string()),
        ];
        repo.commit("main", None, "first", &files, t0, true)
            .unwrap();
        repo.commit(
            "fix",
            Some("main"),
            "fix a",
            &[("k8s/a.yaml".into(), "a: 2\n".into())],
            t0,
            false,
        )
        .unwrap();
        repo.commit(
            "main",
            None,
            "docs",
            &[("docs/x.md".into(), "x\n".into())],
            t0,
            false,
        )
        .unwrap();
        assert_eq!(
            repo.changed_paths("main", "fix").unwrap(),
            vec!["docs/x.md", "k8s/a.yaml"]
        );
        repo.merge("fix", "main", "Merge fix", t0).unwrap();
        assert_eq!(repo.read("main", "k8s/a.yaml").unwrap().unwrap(), "a: 2\n");
        assert_eq!(repo.read("main", "docs/x.md").unwrap().unwrap(), "x\n");
        assert_eq!(repo.read("main", "nope").unwrap(), None);
        let log = repo.log("main", "k8s/a.yaml").unwrap();
        assert_eq!(log.len(), 2, "{log:?}");
        assert_eq!(log[1].message, "first");
        assert_eq!(repo.list("main", "k8s/").unwrap(), vec!["k8s/a.yaml"]);
        repo.checkout_main().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("k8s/a.yaml")).unwrap(),
            "a: 2\n"
        );
    }
}
