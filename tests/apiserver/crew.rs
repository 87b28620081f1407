//! The crew handles an incident reading the real apiserver; a missing permission on `pods/log` degrades its diagnosis instead of failing it.

use super::*;

/// The crew, reading the cluster through `cluster`, writing to the twin's simulated forge, and
/// replaying its fix in a world seeded from what `cluster` reads (as on any real cluster).
async fn crew(t: &Twin, cluster: std::sync::Arc<KubeCluster>) -> Squad {
    let facts =
        squad_sim::FactsReplayer::new(cluster.clone(), t.backends.forge.clone(), t.clock.clone());
    Squad::builder()
        .clock(t.clock.clone())
        .replayer(Arc::new(facts))
        .settings(crew_settings())
        .cluster(cluster)
        .forge(t.backends.forge.clone())
        .app_repo(t.backends.app.clone())
        .start()
        .await
        .unwrap()
}

fn crew_settings() -> Settings {
    let mut settings = Settings::default();
    // Nobody merges here: Ralph reports the PR pending at once instead of waiting a day.
    settings.verification.merge_wait_hours = 0;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crew_handles_the_incident_against_the_real_apiserver() {
    const TEST: &str = "the_crew_handles_the_incident_against_the_real_apiserver";
    let Some(t) = Twin::start(TEST, "oomkilled", Options::default()).await else {
        return;
    };
    let cluster = t.real_adapter_with_metrics(t.real.kubeconfig_path()).await;
    let simulated_reads = t.backends.api.requests();
    let squad = crew(&t, cluster.clone()).await;
    let id = squad.ingest(t.scenario.alert()).await.unwrap();
    let incident = squad
        .wait_until(
            &id,
            |i| i.state == IncidentState::AwaitingApproval && i.pr.is_some(),
            CREW_WITHIN,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", t.real.log_tail()));
    squad.shutdown().await;

    // The crew read the cluster from the real apiserver only (metrics from the simulated
    // Prometheus API, which is not counted).
    assert!(cluster.requests() > 0);
    assert_eq!(t.backends.api.requests(), simulated_reads);

    // Both checks are reported together: a wrong diagnosis still shows what the PR did.
    let mut wrong = Vec::new();
    let diagnosis = incident.diagnosis.as_ref().unwrap();
    if diagnosis.root_cause != RootCause::from_static("memory_under_provisioned") {
        wrong.push(format!(
            "root cause {} (expected memory_under_provisioned): {}\n{:#?}",
            diagnosis.root_cause.as_str(),
            diagnosis.summary,
            diagnosis.evidence
        ));
    }
    let pr = incident.pr.as_ref().unwrap();
    let manifest = &t.scenario.workload.manifest;
    let text = GitRepo::open(&t.dir.path().join("gitops"))
        .unwrap()
        .read(&pr.branch, manifest)
        .unwrap()
        .unwrap();
    let objects = objects::parse(manifest, &text).unwrap();
    let deployment = objects
        .iter()
        .find(|o| objects::kind(o) == "Deployment")
        .unwrap();
    let info = objects::workload_info(deployment, &t.scenario.workload.namespace);
    let limit = info
        .container(&t.scenario.workload.container)
        .and_then(|c| c.limits.get("memory"))
        .map(|q| q.to_string());
    if limit.as_deref() != Some("1.5Gi") {
        wrong.push(format!(
            "the PR's memory limit is {limit:?}, not 1.5Gi:\n{text}"
        ));
    }
    // The fix was replayed in a world seeded from the real apiserver's facts, and holds there.
    let body = t
        .backends
        .forge
        .items()
        .into_iter()
        .find(|i| i.pull.is_some())
        .map(|i| i.body)
        .unwrap_or_default();
    if let Some(at) = body.find("### Replay") {
        let section = &body[at..];
        let end = section[3..].find("\n### ").map_or(section.len(), |e| e + 3);
        eprintln!("{}", &section[..end]);
    }
    if !body.contains("seeded from the cluster's facts") || !body.contains("**the fix holds**") {
        wrong.push(format!(
            "the PR does not say the fix holds in the world seeded from the facts:\n{body}"
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// get/list/watch on everything the Kubernetes adapter reads, except `pods/log`.
fn everything_but_logs() -> Vec<PolicyRule> {
    let rule = |group: &str, resources: &[&str]| PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: ["get", "list", "watch"].map(str::to_owned).to_vec(),
        ..PolicyRule::default()
    };
    vec![
        rule(
            "",
            &[
                "pods",
                "events",
                "nodes",
                "secrets",
                "persistentvolumeclaims",
            ],
        ),
        rule("storage.k8s.io", &["storageclasses"]),
        rule(
            "apps",
            &[
                "deployments",
                "replicasets",
                "statefulsets",
                "daemonsets",
                "controllerrevisions",
            ],
        ),
        rule("batch", &["jobs", "cronjobs"]),
        rule("autoscaling", &["horizontalpodautoscalers"]),
        rule("networking.k8s.io", &["networkpolicies"]),
        rule(
            "rbac.authorization.k8s.io",
            &[
                "roles",
                "rolebindings",
                "clusterroles",
                "clusterrolebindings",
            ],
        ),
        rule("events.k8s.io", &["events"]),
        rule("aquasecurity.github.io", &["vulnerabilityreports"]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_log_permission_degrades_the_diagnosis() {
    const TEST: &str = "a_missing_log_permission_degrades_the_diagnosis";
    let Some(t) = Twin::start(TEST, "crashloop", Options { rbac: true }).await else {
        return;
    };
    let admin = seed::client(t.real.kubeconfig_path()).await.unwrap();
    let name = "squad-reader-without-logs";
    Api::<ClusterRole>::all(admin.clone())
        .create(
            &PostParams::default(),
            &ClusterRole {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..ObjectMeta::default()
                },
                rules: Some(everything_but_logs()),
                ..ClusterRole::default()
            },
        )
        .await
        .unwrap();
    // The harness's viewer is user `viewer`, in group `squad:viewers` only.
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(
            &PostParams::default(),
            &ClusterRoleBinding {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..ObjectMeta::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: name.into(),
                },
                subjects: Some(vec![Subject {
                    kind: "Group".into(),
                    name: "squad:viewers".into(),
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    namespace: None,
                }]),
            },
        )
        .await
        .unwrap();

    let viewer_kc = t.real.viewer_kubeconfig_path().unwrap().to_path_buf();
    let cluster = t.real_adapter_with_metrics(&viewer_kc).await;
    let s = &t.scenario;
    let (ns, pod) = (s.workload.namespace.as_str(), s.workload.pods[0].as_str());
    // RBAC's caches catch up with a new binding within moments.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while cluster.pod(ns, pod).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the viewer still cannot read pod {ns}/{pod}: {:?}",
            cluster.pod(ns, pod).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let denied = cluster
        .logs(ns, pod, &s.workload.container, true, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(denied, PortError::Forbidden { .. }) && denied.to_string().contains("pods/log"),
        "{denied}"
    );

    let squad = crew(&t, cluster.clone()).await;
    let id = squad.ingest(s.alert()).await.unwrap();
    let incident = squad
        .wait_until(&id, |i| i.diagnosis.is_some() || settled(i), CREW_WITHIN)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", t.real.log_tail()));
    let events = squad.journal().store().events(&id).unwrap();
    squad.shutdown().await;

    assert_ne!(incident.state, IncidentState::Escalated, "{incident:#?}");
    let diagnosis = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Diagnosed { diagnosis } => Some(diagnosis.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Diagnosed event: {events:#?}"));
    let note = diagnosis
        .evidence
        .iter()
        .find(|e| e.observation.contains("container logs not readable"))
        .unwrap_or_else(|| panic!("no note on the unreadable logs: {diagnosis:#?}"));
    assert!(
        note.observation.contains("forbidden") && note.observation.contains("pods/log"),
        "{note:?}"
    );
    eprintln!("the diagnosis notes: {}", note.observation);
    // Without the logs the missing variable cannot be named: a crash loop, with low confidence.
    assert_eq!(
        diagnosis.root_cause,
        RootCause::from_static("crash_loop"),
        "{diagnosis:#?}"
    );
    assert!(
        diagnosis
            .signals
            .crash
            .as_ref()
            .is_some_and(|c| c.missing_env.is_none())
    );
}
