//! Seeding a simulation's repositories from its scenario: the GitOps repository with one commit
//! per deploy of the scenario's history, and the application's source.

use std::path::Path;

use chrono::Duration;

use squad_adapters::git::{GitError, GitRepo};

use crate::Scenario;

/// Creates the scenario's GitOps repository at `path`: one commit per deploy of its history,
/// dated as the scenario says, with `main` checked out.
pub fn seed_gitops_repo(scenario: &Scenario, path: &Path) -> Result<GitRepo, GitError> {
    let repo = GitRepo::init(path)?;
    for deploy in &scenario.history {
        let files: Vec<(String, String)> = scenario.tree(&deploy.dir).into_iter().collect();
        let at = scenario.now - Duration::seconds((deploy.hours_ago * 3600.0) as i64);
        repo.commit("main", None, &deploy.message, &files, at, true)?;
    }
    repo.checkout_main()?;
    Ok(repo)
}

/// Creates the application's source repository (Data reads the handler there).
pub fn seed_app_repo(scenario: &Scenario, path: &Path) -> Result<GitRepo, GitError> {
    let repo = GitRepo::init(path)?;
    let files: Vec<(String, String)> = scenario.app_files().into_iter().collect();
    let at = scenario.now - Duration::days(3);
    repo.commit("main", None, "application source", &files, at, true)?;
    repo.checkout_main()?;
    Ok(repo)
}
