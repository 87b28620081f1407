//! The differential tier for admission: the real Kubernetes 1.20.2 apiserver (its LimitRanger
//! and ResourceQuota plugins) and controller-manager (the ReplicaSet and ResourceQuota
//! controllers) against the simulator, on the same namespace and the same two deploys. The
//! previous deploy's pods are created first (they stay Pending: there is no kubelet, but they
//! count against the quota as they do in a cluster), then the Deployment is updated to the last
//! deploy, and the new ReplicaSet's first event is read: `FailedCreate` with the apiserver's
//! refusal, or `SuccessfulCreate`. The simulator's world must record the same refusal, in the
//! same words (pod names aside), or none.
//!
//! The cases are the shipped `quota` scenario and variants of it: a LimitRange whose `max` the
//! new limit passes; a quota that tracks a limit the new deploy dropped; and a LimitRange whose
//! `max` stands in for a dropped limit (the API defaults `default` to it, so the pod is
//! admitted).
//!
//! Skipped (with a message) when a control-plane binary is missing, unless `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, Pod, ResourceQuota};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use squad_sim::Scenario;
use squad_sim::scenario::LimitRangeSpec;
use squad_testkit::apiserver::Options;
use squad_testkit::control_plane::{
    self, ControlPlane, wait_for_any_event, wait_for_pods, wait_for_quota_status,
};

const WITHIN: Duration = Duration::from_secs(60);

/// `pods "ledger-api-…" is forbidden` with the generated name left out.
fn without_pod_names(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(i) = rest.find("pods \"") {
        out.push_str(&rest[..i + 6]);
        rest = &rest[i + 6..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push_str("<pod>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The workload's object in a deploy of the scenario's history.
fn deploy(s: &Scenario, index: usize) -> Value {
    let dir = s.history[index].dir.trim_end_matches('/');
    let path = format!("{dir}/{}", s.workload.manifest);
    let text = s.files.get(&path).unwrap_or_else(|| panic!("{path}"));
    squad_gitops::objects::parse(&path, text)
        .unwrap()
        .into_iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == s.workload.name.as_str())
        .unwrap()
}

/// The refusal the simulator records on the newest ReplicaSet, if any.
async fn simulated(s: &Scenario) -> Option<String> {
    let scenario = std::sync::Arc::new(s.clone());
    let dir = tempfile::tempdir().unwrap();
    let clock = squad_runtime::Clock::starting_at(scenario.now);
    let backends = squad_sim::SimBackends::seed(scenario, dir.path(), clock, &Default::default())
        .await
        .unwrap();
    let world = backends.sim.world().unwrap();
    let ns = s.workload.namespace.as_str();
    let newest = world
        .of_kind("ReplicaSet", Some(ns))
        .max_by_key(|rs| {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .and_then(|r| r.parse::<u32>().ok())
        })
        .map(|rs| rs["metadata"]["name"].as_str().unwrap_or("").to_owned())
        .unwrap();
    world
        .of_kind("Event", Some(ns))
        .find(|e| e["involvedObject"]["name"] == newest.as_str() && e["reason"] == "FailedCreate")
        .map(|e| without_pod_names(e["message"].as_str().unwrap_or("")))
}

fn quantities(map: &BTreeMap<String, squad_protocols::Quantity>) -> Value {
    map.iter()
        .map(|(k, v)| (k.clone(), json!(v.to_string())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn limit_range(r: &LimitRangeSpec) -> Value {
    let mut item = json!({"type": "Container"});
    for (field, map) in [
        ("max", &r.max),
        ("min", &r.min),
        ("default", &r.default),
        ("defaultRequest", &r.default_request),
    ] {
        if !map.is_empty() {
            item[field] = quantities(map);
        }
    }
    json!({"apiVersion": "v1", "kind": "LimitRange",
           "metadata": {"name": r.name}, "spec": {"limits": [item]}})
}

/// The refusal the real control plane records on the new ReplicaSet, if any.
async fn real(cp: &ControlPlane, s: &Scenario) -> Option<String> {
    let client: Client = cp.client().await.unwrap();
    let ns = s.workload.namespace.as_str();
    let pp = PostParams::default();
    let namespace: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&pp, &namespace)
        .await
        .unwrap();
    for r in &s.limit_ranges {
        let lr: LimitRange = serde_json::from_value(limit_range(r)).unwrap();
        Api::<LimitRange>::namespaced(client.clone(), ns)
            .create(&pp, &lr)
            .await
            .unwrap();
    }
    for q in &s.resource_quotas {
        let quota: ResourceQuota = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": q.name}, "spec": {"hard": quantities(&q.hard)}
        }))
        .unwrap();
        Api::<ResourceQuota>::namespaced(client.clone(), ns)
            .create(&pp, &quota)
            .await
            .unwrap();
        wait_for_quota_status(&client, ns, &q.name, WITHIN)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n{}", cp.log_tail()));
        // What the namespace's other workloads use: one pod holding all of it.
        let used = &q.used_by_others;
        if used.is_empty() {
            continue;
        }
        let get = |k: &str| used.get(k).map(|v| json!(v.to_string()));
        let mut resources = json!({"requests": {}, "limits": {}});
        for (which, key, resource) in [
            ("requests", "requests.cpu", "cpu"),
            ("requests", "requests.memory", "memory"),
            ("limits", "limits.cpu", "cpu"),
            ("limits", "limits.memory", "memory"),
        ] {
            if let Some(v) = get(key) {
                resources[which][resource] = v;
            }
        }
        let others: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("others-in-{}", q.name)},
            "spec": {"containers": [{"name": "others", "image": "registry.k8s.io/pause:3.2",
                                     "resources": resources}]}
        }))
        .unwrap();
        Api::<Pod>::namespaced(client.clone(), ns)
            .create(&pp, &others)
            .await
            .unwrap();
    }
    // The previous deploy, and its pods.
    let last = s.history.len() - 1;
    let mut previous = deploy(s, last - 1);
    previous["metadata"]["namespace"] = json!(ns);
    let previous: Deployment = serde_json::from_value(previous).unwrap();
    let replicas = previous.spec.as_ref().and_then(|x| x.replicas).unwrap_or(1) as usize;
    let selector = previous
        .spec
        .as_ref()
        .and_then(|x| x.selector.match_labels.clone())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    deployments.create(&pp, &previous).await.unwrap();
    wait_for_pods(&client, ns, &selector, replicas, WITHIN)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", cp.log_tail()));
    // The last deploy.
    let template = deploy(s, last)["spec"]["template"].clone();
    deployments
        .patch(
            &s.workload.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": template}})),
        )
        .await
        .unwrap();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + WITHIN;
    let new_rs = loop {
        let found = replica_sets
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|rs| {
                rs.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("deployment.kubernetes.io/revision"))
                    .is_some_and(|r| r == "2")
            });
        if let Some(rs) = found {
            break rs.metadata.name.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new ReplicaSet\n{}",
            cp.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let event = wait_for_any_event(
        &client,
        ns,
        "ReplicaSet",
        &new_rs,
        &["FailedCreate", "SuccessfulCreate"],
        WITHIN,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", cp.log_tail()));
    (event.reason.as_deref() == Some("FailedCreate"))
        .then(|| without_pod_names(event.message.as_deref().unwrap_or("")))
}

fn cases() -> Vec<(&'static str, Scenario)> {
    let mut shipped = Scenario::embedded("quota").unwrap();
    // The other workloads' pods are one pod here.
    for q in &mut shipped.resource_quotas {
        if q.used_by_others.contains_key("pods") {
            q.used_by_others.insert("pods".into(), "1".parse().unwrap());
        }
    }
    let new_manifest = format!("manifests/{}", shipped.workload.manifest);
    let mut limit_range = shipped.clone();
    limit_range.resource_quotas.clear();
    limit_range.limit_ranges = vec![LimitRangeSpec {
        name: "container-bounds".into(),
        max: BTreeMap::from([("memory".into(), "768Mi".parse().unwrap())]),
        min: BTreeMap::from([("cpu".into(), "100m".parse().unwrap())]),
        default: BTreeMap::new(),
        default_request: BTreeMap::new(),
    }];
    let mut no_cpu_limit = shipped.clone();
    let text = no_cpu_limit.files.get_mut(&new_manifest).unwrap();
    *text = text.replacen("            cpu: 500m\n", "", 1);
    let mut defaulted = limit_range.clone();
    defaulted.limit_ranges[0].max = BTreeMap::from([("memory".into(), "2Gi".parse().unwrap())]);
    let text = defaulted.files.get_mut(&new_manifest).unwrap();
    *text = text.replacen("            memory: 1Gi\n", "", 1);
    vec![
        ("quota (shipped)", shipped),
        ("a LimitRange max below the new limit", limit_range),
        ("a quota on a limit the deploy dropped", no_cpu_limit),
        (
            "a LimitRange max standing in for a dropped limit",
            defaulted,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_admits_each_scenario_as_the_real_apiserver_does() {
    const TEST: &str = "the_simulator_admits_each_scenario_as_the_real_apiserver_does";
    let mut refused = 0;
    for (name, scenario) in cases() {
        let Some(cp) = control_plane::start_or_skip(TEST, Options::default())
            .await
            .unwrap()
        else {
            return;
        };
        let sim = simulated(&scenario).await;
        let real = real(&cp, &scenario).await;
        println!("{name}:\n  simulated {sim:?}\n  real      {real:?}");
        assert_eq!(sim, real, "{name}: the admission differs");
        refused += usize::from(real.is_some());
    }
    // Three refusals and one admission: the comparison is not vacuous.
    assert_eq!(refused, 3);
}
