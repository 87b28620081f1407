//! The simulation backends: a simulated cluster driven by a scenario's load model and its GitOps
//! repo, and a simulated GitHub backed by a real local git repository.

pub mod cluster;
pub mod forge;
#[cfg(all(feature = "sim", feature = "github"))]
pub mod github_api;
#[cfg(feature = "sim")]
pub mod kube_api;
#[cfg(feature = "sim")]
pub mod llm_cassette;
#[cfg(feature = "sim")]
pub mod prom_api;
#[cfg(feature = "sim")]
pub mod promql;
pub mod series;

pub use cluster::SimCluster;
pub use forge::SimForge;

use std::path::Path;

use chrono::Duration;
use squad_config::Scenario;

use crate::git::{GitError, GitRepo};

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
