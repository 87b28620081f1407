//! Every object the simulated server serves is, field for field, what the real apiserver serves once loaded with it, but for a short allow-list of intended differences.

use super::*;

/// Every resource the simulated server serves objects of, in one `kubectl get` (each at the
/// version the simulated server serves it). Cluster roles and bindings are left out: the world
/// has none, and a real apiserver holds its bootstrap policy there.
const SIM_RESOURCES: &str = "namespaces,nodes,pods,events,events.v1.events.k8s.io,secrets,\
     serviceaccounts,services,endpoints,configmaps,deployments.v1.apps,replicasets.v1.apps,\
     statefulsets.v1.apps,daemonsets.v1.apps,horizontalpodautoscalers.v2.autoscaling,\
     networkpolicies.v1.networking.k8s.io,roles.v1.rbac.authorization.k8s.io,\
     rolebindings.v1.rbac.authorization.k8s.io,persistentvolumeclaims,persistentvolumes,\
     storageclasses.v1.storage.k8s.io,vulnerabilityreports.v1alpha1.aquasecurity.github.io,\
     jobs.v1.batch,cronjobs.v1.batch";

/// The same resources on 1.20, which serves HorizontalPodAutoscalers up to `v2beta2` and
/// CronJobs at `v1beta1`.
pub(super) fn real_resources() -> String {
    SIM_RESOURCES
        .replace(
            "horizontalpodautoscalers.v2.autoscaling",
            "horizontalpodautoscalers.v2beta2.autoscaling",
        )
        .replace("cronjobs.v1.batch", "cronjobs.v1beta1.batch")
}

/// A known, intended difference between the servers: tolerated at `path` (and below it) of the
/// objects whose key starts with `object` (`Kind[.group] [namespace/]name`). An empty `path`
/// is the whole object, served by one side only.
struct Allowed {
    object: &'static str,
    path: &'static str,
    /// Why the simulated server differs there on purpose.
    why: &'static str,
}

/// Kept short: each entry is a difference the simulated server keeps on purpose. Everything else
/// a real apiserver fills in or normalises, the simulated one does too (`world.rs`).
const ALLOWED: &[Allowed] = &[
    Allowed {
        object: "HorizontalPodAutoscaler.autoscaling ",
        path: ".apiVersion",
        why: "1.20 serves autoscaling/v2beta2 at most; the simulated server serves v2 (GA since \
              1.23), whose shape is the same for the resource metrics the world uses",
    },
    Allowed {
        object: "CronJob.batch ",
        path: ".status.lastSuccessfulTime",
        why: "a batch/v1 field (1.21+): 1.20's batch/v1beta1 CronJob has no place for it",
    },
    Allowed {
        object: "CronJob.batch ",
        path: ".metadata.generation",
        why: "1.20 counts no generations of CronJobs and Jobs; later servers (the simulated \
              one serves 1.33) start them at 1 on create",
    },
    Allowed {
        object: "Job.batch ",
        path: ".metadata.generation",
        why: "as for CronJobs: 1.20 counts no generations of Jobs",
    },
    Allowed {
        object: "CronJob.batch ",
        path: ".apiVersion",
        why: "1.20 serves batch/v1beta1 CronJobs; the simulated server serves batch/v1 (GA since \
              1.21), the same shape",
    },
    Allowed {
        object: "Service default/kubernetes",
        path: "",
        why: "the apiserver's own Service, made by its bootstrap controller; the simulated \
              cluster models the workload's objects, not the control plane's",
    },
];

/// `Kind[.group] [namespace/]name`: one object's identity on both servers.
fn object_key(o: &Value) -> String {
    let kind = o["kind"].as_str().unwrap_or("");
    let group = o["apiVersion"]
        .as_str()
        .and_then(|v| v.rsplit_once('/'))
        .map_or(String::new(), |(g, _)| format!(".{g}"));
    let ns = o["metadata"]["namespace"]
        .as_str()
        .map_or(String::new(), |n| format!("{n}/"));
    let name = o["metadata"]["name"].as_str().unwrap_or("");
    format!("{kind}{group} {ns}{name}")
}

/// Removes the value at `path` (keys separated by `/`; `*` is every element of an array or
/// every value of a map).
fn remove_at(v: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        if let Some(m) = v.as_object_mut() {
            m.remove(*first);
        }
        return;
    }
    match (*first, v) {
        ("*", Value::Array(items)) => items.iter_mut().for_each(|i| remove_at(i, rest)),
        ("*", Value::Object(m)) => m.values_mut().for_each(|i| remove_at(i, rest)),
        (key, Value::Object(m)) => {
            if let Some(child) = m.get_mut(key) {
                remove_at(child, rest);
            }
        }
        _ => {}
    }
}

/// An object without what a server assigns itself or what seeding necessarily makes different:
/// identity and bookkeeping metadata, uids in references and Job labels (the seeder rewrote
/// them), the
/// Deployment's generation (the simulated one counts rollouts, where a real one counts spec
/// writes and seeding writes once), the Node's heartbeat and transition times (the simulated
/// server's clock runs on) and its kubelet port (the fake kubelet's), and Secret values (only
/// their keys are modelled).
pub(super) fn comparable(mut o: Value) -> Value {
    for path in [
        "metadata/uid",
        "metadata/resourceVersion",
        "metadata/creationTimestamp",
        "metadata/managedFields",
        "metadata/selfLink",
        "metadata/ownerReferences/*/uid",
        "involvedObject/uid",
        "regarding/uid",
        // A Job's selector, its pods' and template's label, and a CronJob's active Jobs hold
        // the Job's uid.
        "spec/selector/matchLabels/controller-uid",
        "spec/template/metadata/labels/controller-uid",
        "metadata/labels/controller-uid",
        "status/active/*/uid",
    ] {
        remove_at(&mut o, &path.split('/').collect::<Vec<_>>());
    }
    match o["kind"].as_str().unwrap_or("") {
        "Deployment" => remove_at(&mut o, &["metadata", "generation"]),
        "Node" => {
            for path in [
                "status/conditions/*/lastHeartbeatTime",
                "status/conditions/*/lastTransitionTime",
                "status/daemonEndpoints/kubeletEndpoint/Port",
            ] {
                remove_at(&mut o, &path.split('/').collect::<Vec<_>>());
            }
        }
        "Secret" => {
            if let Some(data) = o.get_mut("data").and_then(Value::as_object_mut) {
                data.values_mut().for_each(|v| *v = json!("(value)"));
            }
        }
        _ => {}
    }
    o
}

/// The objects of a `kubectl get -o json` list, comparable, by key.
pub(super) fn served_objects(list: &str) -> BTreeMap<String, Value> {
    let list: Value = serde_json::from_str(list).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (object_key(o), comparable(o.clone())))
        .collect()
}

/// One field that differs: `path` in `object`, the simulated value vs the real one.
struct FieldDifference {
    object: String,
    path: String,
    simulated: String,
    real: String,
}

impl std::fmt::Display for FieldDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() { "" } else { " " };
        write!(
            f,
            "{}{path}{}: {} vs {}",
            self.object, self.path, self.simulated, self.real
        )
    }
}

impl FieldDifference {
    fn allowed(&self) -> Option<&'static Allowed> {
        ALLOWED.iter().find(|a| {
            let at_path = if a.path.is_empty() {
                self.path.is_empty()
            } else {
                self.path == a.path || self.path.starts_with(&format!("{}.", a.path))
            };
            self.object.starts_with(a.object) && at_path
        })
    }
}

fn shown(v: Option<&Value>) -> String {
    v.map_or("(absent)".to_owned(), Value::to_string)
}

/// Every leaf where `simulated` and `real` differ, with its path (`.spec.containers[0].ports`).
/// An absent key and an explicit `null` are different: that is what clients see.
fn field_differences(
    object: &str,
    path: &str,
    simulated: &Value,
    real: &Value,
    out: &mut Vec<FieldDifference>,
) {
    let difference = |path: String, s: Option<&Value>, r: Option<&Value>| FieldDifference {
        object: object.to_owned(),
        path,
        simulated: shown(s),
        real: shown(r),
    };
    match (simulated, real) {
        (Value::Object(s), Value::Object(r)) => {
            let keys: BTreeSet<&String> = s.keys().chain(r.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (s.get(k), r.get(k)) {
                    (Some(a), Some(b)) => field_differences(object, &p, a, b, out),
                    (a, b) => out.push(difference(p, a, b)),
                }
            }
        }
        (Value::Array(s), Value::Array(r)) if s.len() == r.len() => {
            for (i, (a, b)) in s.iter().zip(r).enumerate() {
                field_differences(object, &format!("{path}[{i}]"), a, b, out);
            }
        }
        (s, r) if s != r => out.push(difference(path.to_owned(), Some(s), Some(r))),
        _ => {}
    }
}

async fn served_objects_match(scenario: &str) {
    const TEST: &str = "served_objects_match_the_real_apiserver";
    let Some(t) = Twin::still(TEST, scenario, Options::default()).await else {
        return;
    };
    let sim = served_objects(
        &kubectl_ok(
            &t.backends.kubeconfig,
            &["get", SIM_RESOURCES, "-A", "-o", "json"],
        )
        .await,
    );
    let real = served_objects(
        &kubectl_ok(
            t.real.kubeconfig_path(),
            &["get", &real_resources(), "-A", "-o", "json"],
        )
        .await,
    );
    // Every kind in the world is compared (a kind added to the world without a resource above
    // would otherwise go unchecked).
    let world = t.backends.sim.world().unwrap();
    let compared: BTreeSet<&str> = sim.values().filter_map(|o| o["kind"].as_str()).collect();
    let modelled: BTreeSet<&str> = world.objects.iter().map(objects::kind).collect();
    assert!(
        modelled.is_subset(&compared),
        "{scenario}: the world holds kinds not compared: {:?}",
        modelled.difference(&compared).collect::<Vec<_>>()
    );
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in sim.values() {
        *counts.entry(o["kind"].as_str().unwrap_or("")).or_default() += 1;
    }
    eprintln!(
        "{scenario}: comparing {} simulated objects ({counts:?}) with {} real ones",
        sim.len(),
        real.len()
    );
    let mut differences = Vec::new();
    let keys: BTreeSet<&String> = sim.keys().chain(real.keys()).collect();
    for key in keys {
        match (sim.get(key), real.get(key)) {
            (Some(s), Some(r)) => field_differences(key, "", s, r, &mut differences),
            (s, r) => differences.push(FieldDifference {
                object: key.clone(),
                path: String::new(),
                simulated: s.map_or("(absent)".into(), |_| "(served)".into()),
                real: r.map_or("(absent)".into(), |_| "(served)".into()),
            }),
        }
    }
    // An object the model changed after seeding (its clock runs on) differs for that reason.
    let moved = t.moved_since_seeding();
    let (moved_on, differences): (Vec<_>, Vec<_>) = differences.into_iter().partition(|d| {
        d.object
            .split_once(' ')
            .is_some_and(|(_, name)| moved.contains(name))
    });
    for d in &moved_on {
        eprintln!("{scenario}: not compared, the model moved on since seeding: {d}");
    }
    let (allowed, unexpected): (Vec<_>, Vec<_>) =
        differences.iter().partition(|d| d.allowed().is_some());
    for d in &allowed {
        eprintln!(
            "{scenario}: allowed: {d} ({})",
            d.allowed().map_or("", |a| a.why)
        );
    }
    let moved = t.model_moved_on();
    assert!(
        unexpected.is_empty(),
        "{scenario}: the simulated server serves {} object(s) differently from the real \
         apiserver{} (path: simulated vs real):\n{}",
        unexpected
            .iter()
            .map(|d| &d.object)
            .collect::<BTreeSet<_>>()
            .len(),
        if moved {
            " (the model's pods also changed since seeding: the test ran too slowly)"
        } else {
            ""
        },
        unexpected
            .iter()
            .map(|d| format!("  {d}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_objects_match_the_real_apiserver() {
    tokio::join!(
        served_objects_match("oomkilled"),
        served_objects_match("crashloop"),
        served_objects_match("pvc-pending"),
        served_objects_match("volume-full"),
        served_objects_match("no-endpoints"),
        served_objects_match("hpa-maxed"),
        served_objects_match("cronjob-failed")
    );
}
