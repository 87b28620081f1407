//! The error policy end to end: what a failed step does depends on the kind of error. A forge
//! that refuses (403) escalates the incident at once, with no retry; one that is unavailable
//! (503) is retried with backoff and the incident goes on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use squad::{Squad, settled};
use squad_config::Settings;
use squad_protocols::{
    FileChange, IncidentState, IssueDetail, IssueRef, IssueSpec, PrActivity, PrRef, PrSpec, PrState,
};
use squad_runtime::Clock;
use squad_runtime::ports::{FileVersion, Forge, MarkedArtifact, PortError, PortResult};
use squad_sim::{Scenario, ServeKube, SimBackends};

/// The simulated forge, with the next attempts to file the incident issue failing as scripted.
struct Failing {
    inner: Arc<dyn Forge>,
    issue_errors: Mutex<VecDeque<PortError>>,
    issue_calls: Mutex<u32>,
}

#[async_trait]
impl Forge for Failing {
    fn repo(&self) -> String {
        self.inner.repo()
    }
    async fn default_branch(&self) -> PortResult<String> {
        self.inner.default_branch().await
    }
    async fn find_marker(&self, marker: &str) -> PortResult<Option<MarkedArtifact>> {
        self.inner.find_marker(marker).await
    }
    async fn create_issue(&self, spec: &IssueSpec) -> PortResult<IssueRef> {
        if !spec.title.starts_with("[Incident]") {
            return self.inner.create_issue(spec).await;
        }
        *self.issue_calls.lock().unwrap() += 1;
        let scripted = self.issue_errors.lock().unwrap().pop_front();
        match scripted {
            Some(e) => Err(e),
            None => self.inner.create_issue(spec).await,
        }
    }
    async fn comment(&self, issue: u64, body: &str) -> PortResult<u64> {
        self.inner.comment(issue, body).await
    }
    async fn set_issue_open(&self, issue: u64, open: bool) -> PortResult<()> {
        self.inner.set_issue_open(issue, open).await
    }
    async fn open_pr(&self, spec: &PrSpec) -> PortResult<PrRef> {
        self.inner.open_pr(spec).await
    }
    async fn pr_state(&self, number: u64) -> PortResult<PrState> {
        self.inner.pr_state(number).await
    }
    async fn commit_files(
        &self,
        branch: &str,
        message: &str,
        files: &[FileChange],
    ) -> PortResult<String> {
        self.inner.commit_files(branch, message, files).await
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
    async fn pr_activity(&self, number: u64) -> PortResult<PrActivity> {
        self.inner.pr_activity(number).await
    }
    async fn issue(&self, number: u64) -> PortResult<IssueDetail> {
        self.inner.issue(number).await
    }
}

/// Runs the oomkilled incident until it settles with the forge failing `errors` first.
fn run(errors: Vec<PortError>) -> (squad_protocols::Incident, Vec<String>, u32) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let scenario = Arc::new(Scenario::embedded("oomkilled").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::starting_at(scenario.now);
        let sim = SimBackends::seed(
            scenario.clone(),
            dir.path(),
            clock.clone(),
            &ServeKube::default(),
        )
        .await
        .unwrap();
        let forge = Arc::new(Failing {
            inner: sim.forge.clone(),
            issue_errors: Mutex::new(errors.into()),
            issue_calls: Mutex::new(0),
        });
        let mut settings = Settings::default();
        settings.verification.merge_wait_hours = 0;
        let squad = Squad::builder()
            .clock(clock)
            .cluster(sim.cluster.clone())
            .forge(forge.clone())
            .app_repo(sim.app.clone())
            .settings(settings)
            .start()
            .await
            .unwrap();
        let id = squad.ingest(scenario.alert()).await.unwrap();
        let incident = squad
            .wait_until(&id, settled, Duration::from_secs(24 * 3600))
            .await
            .unwrap();
        let timeline: Vec<String> = squad
            .journal()
            .store()
            .events(&id)
            .unwrap()
            .iter()
            .map(|e| e.kind.describe())
            .collect();
        squad.shutdown().await;
        let calls = *forge.issue_calls.lock().unwrap();
        (incident, timeline, calls)
    })
}

#[test]
fn a_forbidden_forge_escalates_at_once_without_a_retry() {
    let (incident, timeline, calls) = run(vec![PortError::Forbidden {
        what: "create issue on acme/production-gitops".into(),
        detail: "403: Resource not accessible by integration".into(),
    }]);
    assert_eq!(incident.state, IncidentState::Escalated, "{timeline:#?}");
    assert_eq!(calls, 1, "a 403 is not retried");
    assert!(
        timeline
            .iter()
            .any(|e| e.contains("FileIssue failed") && e.contains("not retried")),
        "{timeline:#?}"
    );
}

#[test]
fn an_unavailable_forge_is_retried_with_backoff_and_the_incident_goes_on() {
    let unavailable = || PortError::Unavailable {
        what: "create issue on acme/production-gitops".into(),
        detail: "503 Service Unavailable".into(),
    };
    let (incident, timeline, calls) = run(vec![unavailable(), unavailable()]);
    assert_eq!(calls, 3, "two 503s, then the issue");
    assert_eq!(
        incident.state,
        IncidentState::AwaitingApproval,
        "{timeline:#?}"
    );
    assert!(incident.issue.is_some() && incident.pr.is_some());
    let notes: Vec<&String> = timeline
        .iter()
        .filter(|e| e.contains("FileIssue failed (attempt"))
        .collect();
    assert_eq!(notes.len(), 2, "{timeline:#?}");
    // The incident never escalated on the way.
    assert!(
        !timeline.iter().any(|e| e.contains("escalated")),
        "{timeline:#?}"
    );
}
