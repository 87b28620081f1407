//! The forge: GitHub's limits on what squad writes (a title of 256 characters, a body of
//! 65,536, a label of 50) against the simulated GitHub, a file that is not UTF-8 in the
//! repository, and the crew on a GitOps repository of 10,000 files.

use std::sync::Arc;
use std::time::Duration;

use squad::simulation::{ServeKube, SimBackends};
use squad::{Squad, settled};
use squad_adapters::github::limits::{MAX_BODY_CHARS, MAX_LABEL_CHARS, MAX_TITLE_CHARS};
use squad_adapters::github::{GitHubForge, GitHubOptions};
use squad_config::Settings;
use squad_protocols::forge::marker;
use squad_protocols::{FileChange, IssueSpec};
use squad_runtime::ports::{Forge, MarkedArtifact};
use squad_runtime::{Clock, IncidentStore, MemoryStore};
use squad_sim::Scenario;
use squad_sim::github_api::SimGitHubApi;
use squad_sim::{SimForge, seed_gitops_repo};

/// Commits `path` holding `bytes` (any bytes) on `main` of the repository at `dir`.
fn commit_raw(dir: &std::path::Path, path: &str, bytes: &[u8]) {
    let repo = git2::Repository::open(dir).unwrap();
    let parent = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let blob = repo.blob(bytes).unwrap();
    let mut tree = repo.treebuilder(Some(&parent.tree().unwrap())).unwrap();
    tree.insert(path, blob, 0o100644).unwrap();
    let tree = repo.find_tree(tree.write().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "raw",
        &tree,
        &[&parent],
    )
    .unwrap();
}

#[test]
fn github_titles_bodies_and_labels_are_cut_to_its_limits_keeping_the_marker() {
    super::runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let scenario = Scenario::embedded("oomkilled").unwrap();
        let gitops = dir.path().join("gitops");
        let repo = seed_gitops_repo(&scenario, &gitops).unwrap();
        commit_raw(
            &gitops,
            "notes.yaml",
            b"# caf\xe9 (Latin-1)\nkind: ConfigMap\n",
        );
        let now = scenario.now;
        let sim =
            Arc::new(SimForge::new("acme/gitops", repo, None, Clock::starting_at(now)).unwrap());
        let api = SimGitHubApi::start("acme/gitops", sim.clone(), "ghs_sim_token", move || now)
            .await
            .unwrap();
        let gh = GitHubForge::new(&GitHubOptions {
            base_url: api.url(),
            repo: "acme/gitops".into(),
            token: "ghs_sim_token".into(),
            max_attempts: 2,
            max_wait: Duration::from_secs(5),
            app: None,
            draft: false,
        })
        .unwrap();
        let mark = marker("inc-1", "picard:incident-issue");
        // 1 MiB of log lines in several scripts, then the marker, as squad's bodies end.
        let log = "2026-11-23T19:21:20Z ERROR 決済 failed: payment-api OOMKilled\n".repeat(16_000);
        let spec = IssueSpec {
            title: format!("[incident] payment-service: {}", "é".repeat(300)),
            body: format!("## What happened\n{log}\n\n{mark}\n"),
            labels: vec!["incident".into(), "n".repeat(63)],
        };
        let issue = gh.create_issue(&spec).await.unwrap();
        gh.comment(
            issue.number,
            &format!("{log}\n\n{}\n", marker("inc-1", "data:comment")),
        )
        .await
        .unwrap();
        let state = sim.snapshot();
        let filed = &state.issues[0];
        assert_eq!(filed.title.chars().count(), MAX_TITLE_CHARS);
        assert!(filed.title.ends_with('…'));
        let chars = filed.body.chars().count();
        assert!(
            chars <= MAX_BODY_CHARS && chars > MAX_BODY_CHARS - 2_100,
            "{chars}"
        );
        assert!(filed.body.starts_with("## What happened\n"));
        assert!(
            filed
                .body
                .contains("characters cut here: GitHub takes at most 65536")
        );
        assert!(filed.body.trim_end().ends_with(&mark), "the marker is kept");
        assert!(
            filed
                .labels
                .iter()
                .all(|l| l.chars().count() <= MAX_LABEL_CHARS),
            "{:?}",
            filed.labels
        );
        assert!(filed.comments[0].body.chars().count() <= MAX_BODY_CHARS);
        // A retry after a crash still finds the issue by its marker.
        assert!(matches!(
            gh.find_marker(&mark).await.unwrap(),
            Some(MarkedArtifact::Issue(i)) if i.number == issue.number
        ));
        // A file that is not UTF-8 reads with U+FFFD, and does not stop a walk.
        let text = gh.read_file("notes.yaml", "main").await.unwrap().unwrap();
        assert!(text.starts_with("# caf\u{fffd} (Latin-1)"), "{text}");
    });
}

/// One incident of the oomkilled scenario, start to settled, on its GitOps repository with
/// `extra` more YAML files (values files, sorted before the workload's manifest; not objects,
/// so the simulated cluster has nothing more to run): how many files the forge served, how long
/// it took (real time), and what the crew wrote.
fn incident_with_files(extra: usize) -> (u64, Duration, String, bool) {
    #![allow(clippy::disallowed_types)]
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let scenario = Arc::new(Scenario::embedded("oomkilled").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::starting_at(scenario.now);
        let sim = SimBackends::seed(scenario.clone(), dir.path(), clock.clone(), &ServeKube::default())
            .await
            .unwrap();
        let files: Vec<FileChange> = (0..extra)
            .map(|i| FileChange {
                path: format!("config/team-{:03}/svc-{i:05}/values.yaml", i / 100),
                content: format!("replicaCount: 2\nimage:\n  repository: registry.example/svc-{i:05}\n  tag: \"1.{i}\"\nresources:\n  limits:\n    memory: 256Mi\n"),
            })
            .collect();
        sim.forge.commit_files("main", "more services", &files).await.unwrap();
        let listed = std::time::Instant::now();
        let n = sim.forge.list_files("", "main").await.unwrap().len();
        println!("{extra} extra files: one listing of {n} files took {:?}", listed.elapsed());
        let count = |op: &str| sim.forge.snapshot().requests.get(op).copied().unwrap_or(0);
        let (before, lists) = (count("get_content"), count("get_tree"));
        let store: Arc<dyn IncidentStore> = Arc::new(MemoryStore::new());
        let mut settings = Settings::default();
        settings.verification.merge_wait_hours = 0;
        let squad = Squad::builder()
            .store(store.clone())
            .clock(clock)
            .settings(settings)
            .cluster(sim.cluster.clone())
            .forge(sim.forge.clone())
            .app_repo(sim.app.clone())
            .start()
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let id = squad.ingest(scenario.alert()).await.unwrap();
        let inc = squad
            .wait_until(&id, settled, Duration::from_secs(86_400))
            .await
            .unwrap();
        let took = started.elapsed();
        let reads = count("get_content") - before;
        println!("{extra} extra files: {} listings", count("get_tree") - lists);
        let written: String = sim
            .forge
            .snapshot()
            .issues
            .iter()
            .flat_map(|i| std::iter::once(i.body.clone()).chain(i.comments.iter().map(|c| c.body.clone())))
            .collect::<Vec<_>>()
            .join("\n");
        (reads, took, written, inc.pr.is_some())
    })
}

#[test]
fn a_10000_file_repository_is_walked_within_bounds() {
    let (reads_1k, took_1k, _, pr_1k) = incident_with_files(1_000);
    let (reads_10k, took_10k, written, pr_10k) = incident_with_files(10_000);
    println!(
        "1,000 extra files: {reads_1k} files read, {took_1k:?}; 10,000: {reads_10k} files read, {took_10k:?} (ratio {:.2})",
        took_10k.as_secs_f64() / took_1k.as_secs_f64()
    );
    // B'Elanna found the workload's manifest both times and proposed her fix.
    assert!(pr_1k && pr_10k);
    // Past a walk's budget, the files that name the workload are read first: no walk reads the
    // 10,000 (Worf scans 2,000, B'Elanna stops at 5,000 or at the manifest).
    assert!(reads_10k < 10_000, "{reads_10k}");
    assert!(
        written.contains("scanned for credentials in its first 2000 of"),
        "Worf says what he left unread"
    );
}
