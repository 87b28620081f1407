//! What the crew did to a simulated forge and its repository, counted so that a test can tell
//! an action done twice: the hidden markers every issue, comment and PR carries, and the
//! commits on the default branch and on each PR branch.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use squad_sim::SimForge;

/// The default branch's head (the seed a run starts from).
pub fn main_head(repo: &Path) -> Result<git2::Oid> {
    let r = git2::Repository::open(repo).with_context(|| repo.display().to_string())?;
    Ok(r.refname_to_id("refs/heads/main")?)
}

/// The hidden markers (`<!-- squad:… -->`) on the forge's issues, comments and PRs, and how
/// often each is there: an action done once leaves its marker once.
pub fn markers(forge: &SimForge) -> Result<BTreeMap<String, usize>> {
    let re = regex::Regex::new(r"<!-- squad:[^ ]+ -->")?;
    let state = forge.snapshot();
    let mut bodies: Vec<&str> = Vec::new();
    for i in &state.issues {
        bodies.push(&i.body);
        bodies.extend(i.comments.iter().map(|c| c.body.as_str()));
    }
    bodies.extend(state.pulls.iter().map(|p| p.body.as_str()));
    let mut count = BTreeMap::new();
    for b in bodies {
        for m in re.find_iter(b) {
            *count.entry(m.as_str().to_owned()).or_insert(0) += 1;
        }
    }
    Ok(count)
}

/// The crew's commits since `seed`.
#[derive(Debug, Default)]
pub struct Commits {
    pub total: usize,
    /// Record commits of one incident beyond the first, and PR branches with more than one
    /// commit.
    pub duplicated: usize,
    pub notes: Vec<String>,
}

/// The record commits on main since `seed` (by incident) and each PR branch's commits that
/// main does not have.
pub fn commits(repo: &Path, seed: git2::Oid) -> Result<Commits> {
    let r = git2::Repository::open(repo).with_context(|| repo.display().to_string())?;
    let mut out = Commits::default();
    let mut walk = r.revwalk()?;
    walk.push_ref("refs/heads/main")?;
    walk.hide(seed)?;
    let mut records: BTreeMap<String, usize> = BTreeMap::new();
    for oid in walk {
        let c = r.find_commit(oid?)?;
        let msg = c.message().unwrap_or("").to_owned();
        let key = msg
            .strip_prefix("docs(squad): record incident ")
            .and_then(|m| m.split_whitespace().next())
            .unwrap_or(&msg)
            .to_owned();
        *records.entry(key).or_default() += 1;
        out.total += 1;
    }
    for (k, n) in &records {
        if *n > 1 {
            out.duplicated += n - 1;
            out.notes.push(format!("{n} record commits for {k}"));
        }
    }
    for b in r.branches(Some(git2::BranchType::Local))? {
        let (b, _) = b?;
        let name = b.name()?.unwrap_or("").to_owned();
        if name == "main" {
            continue;
        }
        let mut walk = r.revwalk()?;
        walk.push(b.get().target().context("a branch without a target")?)?;
        walk.hide_ref("refs/heads/main")?;
        walk.hide(seed)?;
        let n = walk.count();
        out.total += n;
        if n > 1 {
            out.duplicated += n - 1;
            out.notes.push(format!("{n} commits on {name}"));
        }
    }
    Ok(out)
}
