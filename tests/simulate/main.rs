//! End-to-end tests of the whole crew on the simulation backends, read back from the artifacts:
//! the issues and their labels, the PR branch's git diff, the runbook, the final state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use squad::simulation::{self, SimulationOptions};
use squad_adapters::git::GitRepo;
use squad_config::Settings;
use squad_protocols::Member;
use squad_runtime::Faults;
use squad_sim::Scenario;
use squad_testkit::openapi;

fn opts(scenario: Scenario, out: &Path, approve: bool) -> SimulationOptions {
    SimulationOptions {
        scenario,
        out: out.to_path_buf(),
        approve,
        dry_run: false,
        fresh: false,
        settings: Settings::default(),
        faults: Faults::none(),
        abort_after_events: None,
        serve: Default::default(),
        minds: Default::default(),
        github: None,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn oomkilled_opens_issue_pr_reviews_and_memory_then_waits_for_approval() {
    let dir = tempfile::tempdir().unwrap();
    let out = rt()
        .block_on(simulation::run(opts(
            Scenario::embedded("oomkilled").unwrap(),
            dir.path(),
            false,
        )))
        .unwrap();
    let s = out.summary;
    assert_eq!(s.state, "awaiting_approval");

    let incident = &s.issues[0];
    assert_eq!(
        incident.title,
        "[Incident] OOMKilled: payment-service (production)"
    );
    assert_eq!(
        incident.labels,
        vec!["incident", "production", "needs-remediation"]
    );
    assert!(
        incident.body.contains("## Routing") && incident.body.contains("B'Elanna"),
        "{}",
        incident.body
    );
    assert!(
        incident.body.contains("+338%") && incident.body.contains("512Mi"),
        "{}",
        incident.body
    );
    let authors: Vec<&str> = incident
        .comments
        .iter()
        .map(|c| c.author.as_str())
        .collect();
    for who in ["belanna", "worf", "data", "scribe"] {
        assert!(authors.contains(&who), "{who} did not comment: {authors:?}");
    }
    let worf = incident
        .comments
        .iter()
        .find(|c| c.author == "worf")
        .unwrap();
    for needle in [
        "Image vulnerabilities",
        "CVE-2025-0395",
        "RBAC",
        "NetworkPolicy",
        "80%",
    ] {
        assert!(
            worf.body.contains(needle),
            "worf's comment lacks {needle}: {}",
            worf.body
        );
    }
    let data = incident
        .comments
        .iter()
        .find(|c| c.author == "data")
        .unwrap();
    assert!(
        data.body.contains("No unbounded allocation found"),
        "{}",
        data.body
    );
    assert!(
        s.issues.iter().any(
            |i| i.title.starts_with("[Security]") && i.labels.contains(&"security".to_string())
        )
    );
    let profiling = s
        .issues
        .iter()
        .find(|i| i.title.starts_with("Profile payment-api"))
        .unwrap();
    assert!(profiling.body.contains("tracemalloc") && profiling.body.contains("py-spy"));

    let pr = &s.pull_requests[0];
    assert_eq!(
        pr.title,
        "fix(infra): increase payment-service memory limits (OOM incident)"
    );
    assert_eq!(pr.base, "main");
    assert_eq!(pr.state, "open");
    assert!(pr.body.contains(&format!("#{}", incident.number)));

    // The PR branch's diff: limit and request raised in place, everything else untouched, an HPA added.
    let repo = GitRepo::open(&dir.path().join("gitops")).unwrap();
    let path = "k8s/production/payment-service/deployment.yaml";
    let before = repo.read(&format!("{}~0", "main"), path).unwrap().unwrap();
    let after = repo.read(&pr.branch, path).unwrap().unwrap();
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(before.lines().count(), after.lines().count());
    assert_eq!(
        changed,
        vec![
            (
                "              memory: 512Mi # sized for 100 rps at launch",
                "              memory: 1.5Gi # sized for 100 rps at launch"
            ),
            ("              memory: 256Mi", "              memory: 512Mi"),
        ]
    );
    let hpa = repo
        .read(&pr.branch, "k8s/production/payment-service/hpa.yaml")
        .unwrap()
        .unwrap();
    assert!(hpa.contains("averageUtilization: 70") && hpa.contains("name: memory"));

    // Scribe's memory on main.
    let runbook = repo
        .read("main", "docs/runbooks/oomkilled.md")
        .unwrap()
        .unwrap();
    assert!(runbook.contains(&s.incident) && runbook.contains("OOMKilled"));
    assert!(!repo.list("main", ".squad/decisions/").unwrap().is_empty());
    assert!(
        repo.read("main", ".squad/decisions.md")
            .unwrap()
            .unwrap()
            .contains("**Why:**")
    );
    assert_eq!(repo.list("main", "docs/incidents/").unwrap().len(), 1);
}

#[test]
fn approve_merges_and_ralph_resolves_after_verifying_in_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = || Scenario::embedded("oomkilled").unwrap();
    rt().block_on(simulation::run(opts(scenario(), dir.path(), false)))
        .unwrap();
    let s = rt()
        .block_on(simulation::run(opts(scenario(), dir.path(), true)))
        .unwrap()
        .summary;
    assert_eq!(s.state, "resolved");
    assert_eq!(
        s.pull_requests.len(),
        1,
        "a second run must not open a second PR"
    );
    assert_eq!(s.pull_requests[0].state, "merged");
    assert_eq!(
        s.issues
            .iter()
            .filter(|i| i.title.starts_with("[Incident]"))
            .count(),
        1
    );
    assert_eq!(s.issues[0].state, "closed");
    let v = s.verification.unwrap();
    assert!(v.healthy && v.oom_kills == 0, "{v:?}");
    assert_eq!(v.limit.unwrap().to_string(), "1.5Gi");
    assert!(
        s.timeline
            .iter()
            .any(|t| t.actor == "ralph" && t.event.contains("verifying"))
    );
}

#[test]
fn a_leak_is_not_resolved_by_more_memory() {
    // The oomkilled scenario with a leak instead of a surge: the PR raises the limit, but the
    // memory keeps growing after the rollout, so Ralph must not resolve.
    let src = Scenario::embedded("oomkilled").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sdir = dir.path().join("scenario");
    for (p, c) in &src.files {
        let f = sdir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, c).unwrap();
    }
    let toml = toml_leak(&src);
    std::fs::write(sdir.join("scenario.toml"), toml).unwrap();
    let leak = Scenario::from_dir(&sdir).unwrap();
    let out = dir.path().join("out");
    rt().block_on(simulation::run(opts(leak.clone(), &out, false)))
        .unwrap();
    let s = rt()
        .block_on(simulation::run(opts(leak, &out, true)))
        .unwrap()
        .summary;
    assert_eq!(s.diagnosis.as_ref().unwrap().root_cause, "memory_leak");
    assert_eq!(s.state, "escalated", "{:#?}", s.timeline);
    assert!(!s.verification.unwrap().healthy);
    assert_eq!(s.issues[0].state, "open");
}

fn toml_leak(s: &Scenario) -> String {
    let mut s = s.clone();
    s.name = "oomkilled-leak".into();
    s.load.surge_percent = 0.0;
    s.load.base_mib = 380.0;
    s.load.per_rps_mib = 0.5;
    s.load.leak_mib_per_hour = 40.0;
    toml::to_string(&s).unwrap()
}

#[test]
fn crashloop_restores_the_missing_variable_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let s = rt()
        .block_on(simulation::run(opts(
            Scenario::embedded("crashloop").unwrap(),
            dir.path(),
            true,
        )))
        .unwrap()
        .summary;
    let diag = s.diagnosis.as_ref().unwrap();
    assert_eq!(diag.root_cause, "missing_configuration");
    assert!(diag.summary.contains("DATABASE_URL"));
    assert_eq!(
        s.issues[0].title,
        "[Incident] CrashLoopBackOff: orders-api (staging)"
    );
    let repo = GitRepo::open(&dir.path().join("gitops")).unwrap();
    let after = repo
        .read("main", "k8s/staging/orders-api/deployment.yaml")
        .unwrap()
        .unwrap();
    assert!(after.contains("- name: DATABASE_URL") && after.contains("# renamed for consistency"));
    assert_eq!(s.state, "resolved");
    // Data reads what the code requires against what the manifest set at the incident.
    let data = s.issues[0]
        .comments
        .iter()
        .find(|c| c.author == "data")
        .unwrap();
    assert!(
        data.body.contains(
            "- `DATABASE_URL` — required at `cmd/orders/main.go:20`; **not set in the manifest**"
        ) && !data.body.contains("unbounded allocation"),
        "{}",
        data.body
    );
}

#[test]
fn a_panic_in_every_crew_member_mid_incident_still_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::none();
    for m in Member::ALL {
        faults.panic_member(m, 1);
    }
    let mut o = opts(Scenario::embedded("oomkilled").unwrap(), dir.path(), false);
    o.faults = faults.clone();
    let s = rt().block_on(simulation::run(o)).unwrap().summary;
    assert_eq!(faults.armed(), 0, "every injected panic fired");
    assert_eq!(s.state, "awaiting_approval");
    let restarts = s
        .timeline
        .iter()
        .filter(|t| t.event.contains("restarted by supervisor"))
        .count();
    assert_eq!(restarts, 6, "restarts recorded: {:#?}", s.timeline);
    assert_eq!(s.pull_requests.len(), 1);
    assert_eq!(
        s.issues
            .iter()
            .filter(|i| i.title.starts_with("[Incident]"))
            .count(),
        1
    );
}

#[test]
fn a_second_incident_on_the_workload_recalls_the_first() {
    use std::sync::Arc;
    use std::time::Duration;

    use squad::{Squad, settled};
    use squad_sim::SimBackends;

    rt().block_on(async {
        let scenario = Arc::new(Scenario::embedded("oomkilled").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let clock = squad_runtime::Clock::starting_at(scenario.now);
        let sim = SimBackends::seed(
            scenario.clone(),
            dir.path(),
            clock.clone(),
            &Default::default(),
        )
        .await
        .unwrap();
        let mut settings = Settings::default();
        settings.verification.merge_wait_hours = 0;
        let squad = Squad::builder()
            .clock(clock)
            .settings(settings)
            .cluster(sim.cluster.clone())
            .forge(sim.forge.clone())
            .app_repo(sim.app.clone())
            .start()
            .await
            .unwrap();
        let day = Duration::from_secs(86_400);
        let first = squad.ingest(scenario.alert()).await.unwrap();
        let inc = squad.wait_until(&first, settled, day).await.unwrap();
        sim.forge
            .merge_pr(inc.pr.unwrap().number, "reviewer")
            .unwrap();
        squad.approved(&first, "reviewer").unwrap();
        let inc = squad
            .wait_until(&first, |i| settled(i) && !i.approved_since_ralph, day)
            .await
            .unwrap();
        assert_eq!(inc.state.as_str(), "resolved");

        // The alert fires again later: a new incident, which starts from what Scribe recorded.
        let second = squad.ingest(scenario.alert()).await.unwrap();
        assert_ne!(second, first);
        let inc = squad.wait_until(&second, settled, day).await.unwrap();
        let state = sim.forge.snapshot();
        let issue = state
            .issues
            .iter()
            .find(|i| i.number == inc.issue.as_ref().unwrap().number)
            .unwrap();
        assert!(
            issue.body.contains("## Past incidents of this workload"),
            "{}",
            issue.body
        );
        assert!(
            issue.body.contains(first.as_str())
                || issue
                    .body
                    .contains("oomkilled on production/payment-service"),
            "{}",
            issue.body
        );
        // The limits are already what the rule asks for: no empty PR.
        assert!(inc.pr.is_none(), "{:?}", inc.pr);
        // Worf's high findings stay on the workload's one security issue: the second incident
        // comments its findings there instead of filing another.
        let security: Vec<_> = state
            .issues
            .iter()
            .filter(|i| i.title.starts_with("[Security]"))
            .collect();
        assert_eq!(
            security.len(),
            1,
            "{:#?}",
            security.iter().map(|i| &i.title).collect::<Vec<_>>()
        );
        assert!(
            security[0].comments.iter().any(|c| c
                .body
                .contains(&format!("Seen again while handling incident {second}"))),
            "{:#?}",
            security[0].comments
        );
        // The team accepts the risk: the issue closed as not planned. A third incident with the
        // same findings leaves it closed and says so on its own incident issue.
        let (number, comments) = (security[0].number, security[0].comments.len());
        sim.forge.close_issue_as(number, "not_planned").unwrap();
        // (Another alert on the workload: the second incident, awaiting approval, still groups
        // this alert's name with it.)
        let mut again = scenario.alert();
        again.name = "KubeContainerWaiting".into();
        again.labels.insert("alertname".into(), again.name.clone());
        again.fingerprint.push_str("-third");
        again.group_key = None;
        let third = squad.ingest(again).await.unwrap();
        assert_ne!(third, second);
        let inc = squad.wait_until(&third, settled, day).await.unwrap();
        let state = sim.forge.snapshot();
        let security = state.issues.iter().find(|i| i.number == number).unwrap();
        assert!(!security.open, "an accepted risk was reopened");
        assert_eq!(
            security.comments.len(),
            comments,
            "{:#?}",
            security.comments
        );
        let incident_issue = state
            .issues
            .iter()
            .find(|i| i.number == inc.issue.as_ref().unwrap().number)
            .unwrap();
        assert!(
            incident_issue
                .comments
                .iter()
                .any(|c| c.body.contains(&format!(
                    "security issue #{number}, which the team closed as not planned"
                ))),
            "{:#?}",
            incident_issue.comments
        );
        squad.shutdown().await;
    });
}

#[test]
fn missing_permissions_degrade_the_crew_with_notes_instead_of_failing() {
    // The cluster answers 403 for HPAs, pod logs, RoleBindings and VulnerabilityReports: the
    // incident still gets its diagnosis and PR; what could not be read is said where it matters.
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(Scenario::embedded("oomkilled").unwrap(), dir.path(), false);
    o.serve.deny = [
        "horizontalpodautoscalers",
        "pods/log",
        "rolebindings",
        "vulnerabilityreports",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let s = rt().block_on(simulation::run(o)).unwrap().summary;
    assert_eq!(s.state, "awaiting_approval");
    assert_eq!(
        s.diagnosis.as_ref().unwrap().root_cause,
        "memory_under_provisioned"
    );
    let pr = &s.pull_requests[0];
    assert!(
        !pr.files.iter().any(|f| f.ends_with("hpa.yaml")),
        "{:?}",
        pr.files
    );
    let comments = &s.issues[0].comments;
    let by = |who: &str| {
        comments
            .iter()
            .find(|c| c.author == who)
            .unwrap_or_else(|| panic!("no comment by {who}"))
            .body
            .clone()
    };
    let belanna = by("belanna");
    assert!(
        belanna.contains("No HPA added") && belanna.contains("forbidden"),
        "{belanna}"
    );
    let worf = by("worf");
    assert!(
        worf.contains("RBAC not readable") || worf.contains("not readable"),
        "{worf}"
    );
    assert!(worf.contains("image scan"), "{worf}");
}

/// Both scenarios, each through to the end: every request the crew's GitHub adapter sent to the
/// simulated GitHub is a request GitHub's own OpenAPI description allows.
#[test]
fn every_github_request_of_whole_incidents_is_in_github_s_openapi_description() {
    let Some(spec) = openapi::openapi().unwrap() else {
        return;
    };
    let mut total = 0;
    for name in ["oomkilled", "crashloop"] {
        let dir = tempfile::tempdir().unwrap();
        let scenario = Scenario::embedded(name).unwrap();
        let first = rt()
            .block_on(simulation::run(opts(scenario.clone(), dir.path(), false)))
            .unwrap();
        let second = rt()
            .block_on(simulation::run(opts(scenario, dir.path(), true)))
            .unwrap();
        let requests: Vec<_> = first.github.into_iter().chain(second.github).collect();
        let violations = openapi::contract_violations(&spec, &requests).unwrap();
        assert!(
            violations.is_empty(),
            "{name}: {} request(s) off GitHub's API:\n{}",
            violations.len(),
            violations.join("\n")
        );
        assert!(requests.len() > 40, "{name}: {} requests", requests.len());
        total += requests.len();
    }
    println!("{total} GitHub requests checked against GitHub's OpenAPI description");
}

/// `--github-url URL --github-repo OWNER/NAME`: the GitOps side of the incident happens on
/// another GitHub-compatible API (here a second simulated GitHub standing in for github.com);
/// the manifests are read from it and the issues and the PR land there.
#[test]
fn the_gitops_repository_can_be_any_github_compatible_api() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::embedded("oomkilled").unwrap();
    let rt = rt();
    let elsewhere = dir.path().join("elsewhere");
    let repo = squad_sim::seed_gitops_repo(&scenario, &elsewhere.join("gitops")).unwrap();
    let now = scenario.now;
    let remote = Arc::new(
        squad_sim::SimForge::new(
            "rehearsal/gitops",
            repo,
            Some(&elsewhere.join("forge.json")),
            squad_runtime::Clock::starting_at(now),
        )
        .unwrap(),
    );
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let api = servers
        .block_on(squad_sim::github_api::SimGitHubApi::start(
            "rehearsal/gitops",
            remote.clone(),
            "ghp_rehearsal",
            move || now,
        ))
        .unwrap();
    let mut o = opts(scenario, &dir.path().join("out"), false);
    o.github = Some(simulation::GitHubTarget {
        url: api.url(),
        repo: "rehearsal/gitops".into(),
        token: "ghp_rehearsal".into(),
    });
    let s = rt.block_on(simulation::run(o)).unwrap().summary;
    assert_eq!(s.state, "awaiting_approval", "{:#?}", s.timeline);
    assert!(
        s.repo.starts_with("rehearsal/gitops at http://127.0.0.1:"),
        "{}",
        s.repo
    );
    // Everything the crew wrote is on the other side.
    let state = remote.snapshot();
    assert_eq!(state.issues.len(), 3, "{:#?}", state.issues);
    assert_eq!(state.pulls.len(), 1);
    assert!(
        state.pulls[0]
            .files
            .contains(&"k8s/production/payment-service/deployment.yaml".to_string())
    );
    // --json lists them as that GitHub holds them.
    assert_eq!(s.issues.len(), 3, "{:#?}", s.issues);
    assert_eq!(s.pull_requests.len(), 1);
    assert_eq!(s.pull_requests[0].number, state.pulls[0].number);
    // --approve cannot merge a real repository's PR.
    let mut o = opts(
        Scenario::embedded("oomkilled").unwrap(),
        &dir.path().join("out2"),
        true,
    );
    o.github = Some(simulation::GitHubTarget {
        url: api.url(),
        repo: "rehearsal/gitops".into(),
        token: "ghp_rehearsal".into(),
    });
    let e = rt.block_on(simulation::run(o)).err().unwrap();
    assert!(e.to_string().contains("merge it on GitHub"), "{e}");
}

/// No shipped scenario has it: the Service's selector names a label value no pod carries, the
/// caller dials its full DNS name, the backend runs four replicas.
#[test]
fn a_service_selecting_no_pod_is_named_with_the_label_that_differs() {
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = Scenario::embedded("no-endpoints").unwrap();
    scenario.app.dependencies[0].host = "inventory.retail.svc.cluster.local".into();
    for (path, text) in scenario.files.iter_mut() {
        if path.starts_with("manifests/") && path.ends_with("inventory.yaml") {
            *text = text
                .replace("targetPort: http", "targetPort: 8080")
                .replace("replicas: 2", "replicas: 4")
                .replace(
                    "  selector:\n    app: inventory\n  ports:",
                    "  selector:\n    app: inventory-api\n  ports:",
                );
        }
    }
    let s = rt()
        .block_on(simulation::run(opts(scenario, dir.path(), true)))
        .unwrap()
        .summary;
    let diag = s.diagnosis.as_ref().unwrap();
    assert_eq!(diag.root_cause, "service_without_endpoints");
    assert!(
        diag.summary.ends_with(
            "it has no ready endpoints, its selector matches no pod in retail: it asks for app=inventory-api where the pods say app=inventory (Deployment inventory)"
        ),
        "{}",
        diag.summary
    );
    assert_eq!(s.state, "escalated");
}

/// Alerts about an HPA, a Job or a CronJob (as kube-state-metrics labels them) are accepted and
/// resolve to the workload they are about: an HPA to its scale target, read from the cluster.
#[test]
fn alerts_naming_an_hpa_or_a_job_resolve_to_their_workload() {
    use squad_agents::picard::resolve_workload;
    use squad_protocols::Alert;
    let mut scenario = Scenario::embedded("oomkilled").unwrap();
    let path = "manifests/k8s/production/payment-service/deployment.yaml";
    scenario.files.get_mut(path).unwrap().push_str(
        "---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: payments-autoscaler\n  namespace: production\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: payment-service\n  minReplicas: 2\n  maxReplicas: 5\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 80\n",
    );
    rt().block_on(async {
        let served = simulation::serve_cluster(scenario, None, &Default::default())
            .await
            .unwrap();
        let cluster = served.backends.cluster.clone();
        let alert = |label: &str, value: &str| {
            let a = Alert::firing("KubeHpaMaxedOut")
                .with_label("namespace", "production")
                .with_label(label, value);
            a.validate().unwrap();
            a
        };
        let w = resolve_workload(
            cluster.as_ref(),
            &alert("horizontalpodautoscaler", "payments-autoscaler"),
        )
        .await;
        assert_eq!(w.to_string(), "Deployment production/payment-service");
        // An HPA the cluster does not have: its name is taken for its Deployment's.
        let w = resolve_workload(
            cluster.as_ref(),
            &alert("horizontalpodautoscaler", "billing"),
        )
        .await;
        assert_eq!(w.to_string(), "Deployment production/billing");
        let w = resolve_workload(cluster.as_ref(), &alert("job_name", "ledger-migrate")).await;
        assert_eq!(w.to_string(), "Job production/ledger-migrate");
        let w = resolve_workload(cluster.as_ref(), &alert("cronjob", "nightly-report")).await;
        assert_eq!(w.to_string(), "CronJob production/nightly-report");
    });
}

#[test]
fn a_cronjobs_failed_job_is_an_incident_about_the_cronjob() {
    // KubeJobFailed names the Job (`invoice-sweeper-<minutes>`); the repository declares the
    // CronJob, so the incident, the issue and the diagnosis are about the CronJob.
    let dir = tempfile::tempdir().unwrap();
    let s = rt()
        .block_on(simulation::run(opts(
            Scenario::embedded("cronjob-failed").unwrap(),
            dir.path(),
            false,
        )))
        .unwrap()
        .summary;
    assert!(
        s.timeline[0]
            .event
            .ends_with("on CronJob billing/invoice-sweeper"),
        "{:?}",
        s.timeline[0]
    );
    let d = s.diagnosis.as_ref().unwrap();
    assert_eq!(d.root_cause, "job_failed");
    assert!(
        d.summary
            .starts_with("CronJob invoice-sweeper: its last 5 runs failed"),
        "{}",
        d.summary
    );
    assert_eq!(
        s.issues[0].title,
        "[Incident] JobFailed: invoice-sweeper (billing)"
    );
}

mod remedies;
