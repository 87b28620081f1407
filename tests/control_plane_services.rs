//! The differential tier for Services: the real Kubernetes 1.20.2 endpoints controller against
//! the simulator's, on the same pods and Services. The simulated world's pods of the
//! scenario's namespace (the alerted workload's and the healthy Deployments' beside it) are
//! created in the real apiserver with the status the world gives them (node, pod IP, phase,
//! `Ready`), then the world's Services; the real controller-manager writes each Service's
//! `Endpoints`. They must list the same addresses (pod, IP, ready or not) on the same ports as
//! the world's.
//!
//! The cases are the shipped `no-endpoints` scenario (a named `targetPort` the pods do not
//! declare: no endpoints at all) and variants of it: the target port the pods name (two ready
//! addresses), a selector with a label the pods do not carry, and a Service that selects the
//! crash-looping caller itself (its pods not ready: `notReadyAddresses`).
//!
//! Skipped (with a message) when a control-plane binary is missing, unless `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use squad_protocols::cluster::Endpoint;
use squad_sim::Scenario;
use squad_testkit::apiserver::Options;
use squad_testkit::control_plane;
use squad_testkit::node_agent;

const WITHIN: Duration = Duration::from_secs(60);

/// The scenario with its last deploy's inventory manifest edited by `edit`, and a Service of
/// its own for the caller when `caller_service`.
fn variant(edit: impl Fn(&str) -> String, caller_service: bool) -> Scenario {
    let mut s = Scenario::embedded("no-endpoints").unwrap();
    for (path, text) in s.files.iter_mut() {
        if path.starts_with("manifests/") && path.ends_with("inventory.yaml") {
            *text = edit(text);
            if caller_service {
                text.push_str(
                    "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: storefront\n  namespace: retail\nspec:\n  selector:\n    app: storefront\n  ports:\n  - name: http\n    port: 80\n    targetPort: http\n",
                );
            }
        }
    }
    s
}

/// Endpoints in the terms both sides share, sorted.
fn endpoints(o: &Value) -> Vec<Endpoint> {
    let mut e = squad_gitops::objects::endpoint_list(o);
    e.sort_by(|a, b| (&a.pod, &a.port_name).cmp(&(&b.pod, &b.port_name)));
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoints_controller_lists_what_the_simulator_lists() {
    const TEST: &str = "the_endpoints_controller_lists_what_the_simulator_lists";
    let cases = [
        ("no-endpoints", variant(str::to_owned, false)),
        (
            "the target port the pods name",
            variant(|t| t.replace("targetPort: http", "targetPort: web"), false),
        ),
        (
            "a selector with a label the pods lack",
            variant(
                |t| {
                    t.replace("targetPort: http", "targetPort: 8080").replace(
                        "  selector:\n    app: inventory\n  ports:",
                        "  selector:\n    app: inventory\n    track: stable\n  ports:",
                    )
                },
                false,
            ),
        ),
        (
            "a Service of the crash-looping caller",
            variant(str::to_owned, true),
        ),
    ];
    for (name, scenario) in cases {
        let Some(cp) = control_plane::start_or_skip(TEST, Options::default())
            .await
            .unwrap()
        else {
            return;
        };
        let scenario = Arc::new(scenario);
        let ns = scenario.workload.namespace.clone();
        let dir = tempfile::tempdir().unwrap();
        let clock = squad_runtime::Clock::starting_at(scenario.now);
        let backends =
            squad_sim::SimBackends::seed(scenario.clone(), dir.path(), clock, &Default::default())
                .await
                .unwrap();
        let world = backends.sim.world().unwrap();

        let client = cp.client().await.unwrap();
        node_agent::prepare(&client, &scenario).await.unwrap();
        // The pods, bare (no owner for the garbage collector to miss), with the world's status.
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        for p in world.of_kind("Pod", Some(&ns)) {
            let containers: Vec<Value> = p["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| json!({"name": c["name"], "image": c["image"], "ports": c["ports"]}))
                .collect();
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": p["metadata"]["name"], "namespace": ns,
                             "labels": p["metadata"]["labels"]},
                "spec": {"nodeName": p["spec"]["nodeName"], "containers": containers},
            }))
            .unwrap();
            let created = pods.create(&PostParams::default(), &pod).await.unwrap();
            let mut with_status = serde_json::to_value(&created).unwrap();
            with_status["status"] = json!({
                "phase": p["status"]["phase"], "conditions": p["status"]["conditions"],
                "podIP": p["status"]["podIP"], "podIPs": p["status"]["podIPs"],
                "hostIP": p["status"]["hostIP"], "startTime": p["status"]["startTime"],
            });
            pods.replace_status(
                created.metadata.name.as_deref().unwrap(),
                &PostParams::default(),
                &serde_json::from_value(with_status).unwrap(),
            )
            .await
            .unwrap();
        }
        // The Services (the real apiserver allocates their cluster IPs).
        let services: Api<Service> = Api::namespaced(client.clone(), &ns);
        for svc in world.of_kind("Service", Some(&ns)) {
            let mut body = json!({"metadata": {"name": svc["metadata"]["name"], "namespace": ns},
                                  "spec": svc["spec"].clone()});
            for f in ["clusterIP", "clusterIPs"] {
                body["spec"].as_object_mut().unwrap().remove(f);
            }
            services
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(body).unwrap(),
                )
                .await
                .unwrap();
        }
        // Each Service's Endpoints, once the controller agrees (or the time is up).
        let api: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
        for want in world.of_kind("Endpoints", Some(&ns)) {
            let svc = want["metadata"]["name"].as_str().unwrap();
            let want = endpoints(want);
            let deadline = tokio::time::Instant::now() + WITHIN;
            let got = loop {
                let got = api
                    .get_opt(svc)
                    .await
                    .unwrap()
                    .map(|e| endpoints(&serde_json::to_value(&e).unwrap()));
                if got.as_ref() == Some(&want) || tokio::time::Instant::now() > deadline {
                    break got;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            // Settled: a moment later the controller still says the same.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let got = api
                .get_opt(svc)
                .await
                .unwrap()
                .map(|e| endpoints(&serde_json::to_value(&e).unwrap()))
                .or(got);
            println!("{name}: Service {svc}: simulated {want:?}, real {got:?}");
            assert_eq!(
                got.as_ref(),
                Some(&want),
                "{name}: the Endpoints of {svc} differ\n{}",
                cp.log_tail()
            );
        }
        // The shipped case has none; the others' variants must have found some.
        let listed: usize = world
            .of_kind("Endpoints", Some(&ns))
            .map(|e| endpoints(e).len())
            .sum();
        match name {
            "no-endpoints" | "a selector with a label the pods lack" => assert_eq!(listed, 0),
            _ => assert!(listed > 0, "{name}"),
        }
    }
}
