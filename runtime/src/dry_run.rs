//! A forge that reads through to a real one and records every write instead of doing it:
//! `squad simulate --dry-run` shows what each crew member would do and changes nothing.

use std::sync::{Arc, Mutex};

use crate::ports::{FileVersion, Forge, MarkedArtifact, PortResult};
use async_trait::async_trait;
use squad_protocols::{FileChange, IssueDetail, IssueRef, IssueSpec, PrRef, PrSpec, PrState};

/// One write the crew would have made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub what: String,
    pub body: String,
}

pub struct DryRunForge {
    inner: Arc<dyn Forge>,
    intents: Mutex<Vec<Intent>>,
}

impl DryRunForge {
    pub fn new(inner: Arc<dyn Forge>) -> Self {
        Self {
            inner,
            intents: Mutex::new(Vec::new()),
        }
    }

    pub fn intents(&self) -> Vec<Intent> {
        self.intents.lock().map(|i| i.clone()).unwrap_or_default()
    }

    fn push(&self, what: String, body: &str) -> u64 {
        let mut i = match self.intents.lock() {
            Ok(i) => i,
            Err(p) => p.into_inner(),
        };
        i.push(Intent {
            what,
            body: body.into(),
        });
        1000 + i.len() as u64
    }
}

#[async_trait]
impl Forge for DryRunForge {
    fn repo(&self) -> String {
        self.inner.repo()
    }

    async fn default_branch(&self) -> PortResult<String> {
        self.inner.default_branch().await
    }

    async fn find_marker(&self, marker: &str) -> PortResult<Option<MarkedArtifact>> {
        let hit = self.intents().iter().position(|i| i.body.contains(marker));
        Ok(hit.map(|n| MarkedArtifact::Comment {
            issue: 0,
            id: n as u64,
        }))
    }

    async fn create_issue(&self, spec: &IssueSpec) -> PortResult<IssueRef> {
        let n = self.push(
            format!(
                "file issue \"{}\" labelled {}",
                spec.title,
                spec.labels.join(", ")
            ),
            &spec.body,
        );
        Ok(IssueRef {
            number: n,
            url: format!("dry-run://issues/{n}"),
        })
    }

    async fn comment(&self, issue: u64, body: &str) -> PortResult<u64> {
        let first = body.lines().next().unwrap_or("");
        Ok(self.push(format!("comment on issue #{issue}: {first}"), body))
    }

    async fn set_issue_open(&self, issue: u64, open: bool) -> PortResult<()> {
        self.push(
            format!("{} issue #{issue}", if open { "reopen" } else { "close" }),
            "",
        );
        Ok(())
    }

    async fn issue(&self, number: u64) -> PortResult<IssueDetail> {
        self.inner.issue(number).await
    }

    async fn open_pr(&self, spec: &PrSpec) -> PortResult<PrRef> {
        let files: Vec<&str> = spec.files.iter().map(|f| f.path.as_str()).collect();
        let n = self.push(
            format!(
                "open PR \"{}\" from {} changing {}",
                spec.title,
                spec.branch,
                files.join(", ")
            ),
            &spec.body,
        );
        Ok(PrRef {
            number: n,
            url: format!("dry-run://pull/{n}"),
            branch: spec.branch.clone(),
        })
    }

    async fn pr_state(&self, _number: u64) -> PortResult<PrState> {
        Ok(PrState::Open)
    }

    async fn commit_files(
        &self,
        branch: &str,
        message: &str,
        files: &[FileChange],
    ) -> PortResult<String> {
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        self.push(
            format!(
                "commit to {branch}: {} ({})",
                message.lines().next().unwrap_or(""),
                paths.join(", ")
            ),
            "",
        );
        Ok("dry-run".into())
    }

    async fn read_file(&self, path: &str, git_ref: &str) -> PortResult<Option<String>> {
        self.inner.read_file(path, git_ref).await
    }

    async fn list_files(&self, prefix: &str, git_ref: &str) -> PortResult<Vec<String>> {
        self.inner.list_files(prefix, git_ref).await
    }

    async fn file_history(&self, path: &str) -> PortResult<Vec<FileVersion>> {
        self.inner.file_history(path).await
    }
}
