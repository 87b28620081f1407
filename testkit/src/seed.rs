//! Loads a simulated cluster's objects ([`World`]) into a real kube-apiserver, so the same
//! cluster can be read from both and compared.
//!
//! The world's objects carry what a server would have assigned (uids, resource versions,
//! creation times); a real apiserver assigns its own, so those are stripped and every reference
//! by uid (`ownerReferences`, an Event's `involvedObject`) is rewritten to the uid the server
//! gave the object it points at. Owners are created before their dependents for that reason.
//! Status sent on create is dropped by the apiserver, so it is set afterwards through the
//! `status` subresource. The Node's kubelet endpoint is pointed at a test's fake kubelet
//! ([`crate::kubelet`]), which is where the apiserver fetches container logs from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::ApiResource;
use kube::{Client, Config};
use serde_json::{Value, json};
use squad_sim::cluster::World;
use tokio::time::{Instant, sleep};

/// How long a new CustomResourceDefinition may take to be Established and served.
const CRD_READY_WITHIN: Duration = Duration::from_secs(30);

/// What [`seed`] did.
#[derive(Debug, Default, Clone)]
pub struct Seeded {
    /// Objects created, by kind (CustomResourceDefinitions included).
    pub created: BTreeMap<String, usize>,
    /// Objects that already existed and were left alone (`Namespace/default`, ...).
    pub existing: Vec<String>,
    /// Status subresource writes, by kind.
    pub statuses: BTreeMap<String, usize>,
    /// The world's synthetic uid of each object → the uid the apiserver assigned (or had).
    pub uids: BTreeMap<String, String>,
}

impl Seeded {
    /// Objects created, all kinds together.
    pub fn total(&self) -> usize {
        self.created.values().sum()
    }
}

/// A client for a kubeconfig (the harness's admin or viewer one).
pub async fn client(kubeconfig: &Path) -> Result<Client> {
    squad_adapters::tls::install_crypto_provider();
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", kubeconfig.display()))?;
    Client::try_from(config).context("building a Kubernetes client")
}

/// Where a kind is served on the real (1.20) apiserver, and whether it is namespaced.
struct Served {
    api_version: &'static str,
    plural: &'static str,
    namespaced: bool,
    /// Written through the `status` subresource after create (the server drops it on create).
    status: bool,
}

/// A fixed table, so seeding needs no discovery. `HorizontalPodAutoscaler` is served as
/// `autoscaling/v2beta2` (1.20 has no `autoscaling/v2`; the shape is the same for resource
/// metrics).
fn served(kind: &str) -> Option<Served> {
    let s = |api_version, plural, namespaced, status| {
        Some(Served {
            api_version,
            plural,
            namespaced,
            status,
        })
    };
    match kind {
        "Namespace" => s("v1", "namespaces", false, false),
        "Node" => s("v1", "nodes", false, true),
        "Pod" => s("v1", "pods", true, true),
        "Event" => s("v1", "events", true, false),
        "Secret" => s("v1", "secrets", true, false),
        "ConfigMap" => s("v1", "configmaps", true, false),
        "Service" => s("v1", "services", true, false),
        "Endpoints" => s("v1", "endpoints", true, false),
        "ServiceAccount" => s("v1", "serviceaccounts", true, false),
        "PersistentVolumeClaim" => s("v1", "persistentvolumeclaims", true, true),
        "PersistentVolume" => s("v1", "persistentvolumes", false, true),
        "StorageClass" => s("storage.k8s.io/v1", "storageclasses", false, false),
        "Deployment" => s("apps/v1", "deployments", true, true),
        "ReplicaSet" => s("apps/v1", "replicasets", true, true),
        "StatefulSet" => s("apps/v1", "statefulsets", true, true),
        "DaemonSet" => s("apps/v1", "daemonsets", true, true),
        "Job" => s("batch/v1", "jobs", true, true),
        // 1.20 serves CronJobs at batch/v1beta1 only (batch/v1 came in 1.21, the same shape).
        "CronJob" => s("batch/v1beta1", "cronjobs", true, true),
        "HorizontalPodAutoscaler" => s(
            "autoscaling/v2beta2",
            "horizontalpodautoscalers",
            true,
            true,
        ),
        "NetworkPolicy" => s("networking.k8s.io/v1", "networkpolicies", true, false),
        "Ingress" => s("networking.k8s.io/v1", "ingresses", true, false),
        "Role" => s("rbac.authorization.k8s.io/v1", "roles", true, false),
        "RoleBinding" => s("rbac.authorization.k8s.io/v1", "rolebindings", true, false),
        "ClusterRole" => s("rbac.authorization.k8s.io/v1", "clusterroles", false, false),
        "ClusterRoleBinding" => s(
            "rbac.authorization.k8s.io/v1",
            "clusterrolebindings",
            false,
            false,
        ),
        "CustomResourceDefinition" => s(
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            false,
            false,
        ),
        "VulnerabilityReport" => s(
            "aquasecurity.github.io/v1alpha1",
            "vulnerabilityreports",
            true,
            false,
        ),
        _ => None,
    }
}

fn resource(kind: &str, s: &Served) -> ApiResource {
    let (group, version) = s
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", s.api_version));
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: s.api_version.into(),
        kind: kind.into(),
        plural: s.plural.into(),
    }
}

fn kind_of(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or("")
}

fn name_of(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

fn namespace_of(o: &Value) -> Option<&str> {
    o["metadata"]["namespace"].as_str()
}

fn uid_of(o: &Value) -> Option<&str> {
    o["metadata"]["uid"].as_str()
}

/// `Kind/namespace/name`, for messages.
fn label(o: &Value) -> String {
    format!(
        "{}/{}{}",
        kind_of(o),
        namespace_of(o).map_or(String::new(), |n| format!("{n}/")),
        name_of(o)
    )
}

/// The CustomResourceDefinition a world's kind needs, if it is a custom resource.
fn crd_for(kind: &str) -> Option<Value> {
    match kind {
        // Trivy Operator's, trimmed to what a test needs: the schema keeps every field.
        "VulnerabilityReport" => Some(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "vulnerabilityreports.aquasecurity.github.io"},
            "spec": {
                "group": "aquasecurity.github.io",
                "scope": "Namespaced",
                "names": {
                    "kind": "VulnerabilityReport",
                    "listKind": "VulnerabilityReportList",
                    "plural": "vulnerabilityreports",
                    "singular": "vulnerabilityreport",
                    "shortNames": ["vuln", "vulns"],
                    "categories": ["all"]
                },
                "versions": [{
                    "name": "v1alpha1",
                    "served": true,
                    "storage": true,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": true
                    }},
                    "additionalPrinterColumns": [
                        {"name": "Repository", "type": "string", "jsonPath": ".report.artifact.repository"},
                        {"name": "Tag", "type": "string", "jsonPath": ".report.artifact.tag"},
                        {"name": "Scanner", "type": "string", "jsonPath": ".report.scanner.name"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                        {"name": "Critical", "type": "integer", "priority": 1, "jsonPath": ".report.summary.criticalCount"},
                        {"name": "High", "type": "integer", "priority": 1, "jsonPath": ".report.summary.highCount"},
                        {"name": "Medium", "type": "integer", "priority": 1, "jsonPath": ".report.summary.mediumCount"},
                        {"name": "Low", "type": "integer", "priority": 1, "jsonPath": ".report.summary.lowCount"},
                        {"name": "Unknown", "type": "integer", "priority": 1, "jsonPath": ".report.summary.unknownCount"}
                    ]
                }]
            }
        })),
        _ => None,
    }
}

/// The object as it should be sent on create: server-managed metadata and status removed, the
/// apiVersion the real server serves the kind at, and uid references rewritten.
fn for_create(o: &Value, s: &Served, uids: &BTreeMap<String, String>) -> Result<Value> {
    let mut o = o.clone();
    o["apiVersion"] = json!(s.api_version);
    if let Some(meta) = o["metadata"].as_object_mut() {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(k);
        }
    }
    if let Some(obj) = o.as_object_mut() {
        obj.remove("status");
    }
    let what = label(&o);
    for r in o["metadata"]["ownerReferences"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let synthetic = r["uid"].as_str().unwrap_or("").to_owned();
        let real = uids.get(&synthetic).ok_or_else(|| {
            anyhow!(
                "{what}: owner {}/{} (uid {synthetic}) was not created before it",
                r["kind"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or("")
            )
        })?;
        r["uid"] = json!(real);
    }
    // The apiserver makes a Job's selector and its template's `controller-uid`/`job-name`
    // labels from the uid it assigns (1.20 refuses others); its pods carry that uid.
    if kind_of(&o) == "Job" {
        if let Some(spec) = o["spec"].as_object_mut() {
            spec.remove("selector");
        }
        if let Some(labels) = o["spec"]["template"]["metadata"]["labels"].as_object_mut() {
            labels.remove("controller-uid");
            labels.remove("job-name");
        }
    }
    if let Some(synthetic) = o["metadata"]["labels"]["controller-uid"].as_str() {
        let real = uids.get(synthetic).ok_or_else(|| {
            anyhow!("{what}: label controller-uid {synthetic} names no object created before it")
        })?;
        o["metadata"]["labels"]["controller-uid"] = json!(real);
    }
    if kind_of(&o) == "Event" {
        let synthetic = o["involvedObject"]["uid"].as_str().unwrap_or("").to_owned();
        if !synthetic.is_empty() {
            let real = uids.get(&synthetic).ok_or_else(|| {
                anyhow!(
                    "{what}: involvedObject {}/{} (uid {synthetic}) is not in the world",
                    o["involvedObject"]["kind"].as_str().unwrap_or(""),
                    o["involvedObject"]["name"].as_str().unwrap_or("")
                )
            })?;
            o["involvedObject"]["uid"] = json!(real);
        }
    }
    Ok(o)
}

/// The status to write after create. The Node's kubelet is the fake one on 127.0.0.1.
fn status_for(o: &Value, kubelet_port: u16) -> Option<Value> {
    let mut status = o.get("status").filter(|s| s.is_object())?.clone();
    if kind_of(o) == "Node" {
        status["daemonEndpoints"] = json!({"kubeletEndpoint": {"Port": kubelet_port}});
        let mut addresses: Vec<Value> = status["addresses"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["type"] != "InternalIP")
            .collect();
        addresses.insert(0, json!({"type": "InternalIP", "address": "127.0.0.1"}));
        status["addresses"] = json!(addresses);
    }
    Some(status)
}

fn api(client: &Client, o: &Value, kind: &str, s: &Served) -> Api<DynamicObject> {
    let ar = resource(kind, s);
    match (s.namespaced, namespace_of(o)) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        (true, None) => Api::default_namespaced_with(client.clone(), &ar),
        (false, _) => Api::all_with(client.clone(), &ar),
    }
}

fn created_uid(o: &DynamicObject) -> String {
    o.metadata.uid.clone().unwrap_or_default()
}

/// Creates `o` (retrying briefly while a just-Established custom resource is not served yet).
async fn create(client: &Client, o: &Value, s: &Served) -> Result<DynamicObject> {
    let kind = kind_of(o).to_owned();
    let api = api(client, o, &kind, s);
    let body: DynamicObject =
        serde_json::from_value(o.clone()).with_context(|| format!("{} as an object", label(o)))?;
    let deadline = Instant::now() + CRD_READY_WITHIN;
    loop {
        match api.create(&PostParams::default(), &body).await {
            Ok(created) => return Ok(created),
            Err(kube::Error::Api(e)) if e.code == 404 && Instant::now() < deadline => {
                sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(anyhow!("creating {}: {e}", label(o))),
        }
    }
}

async fn write_status(client: &Client, o: &Value, s: &Served, status: Value) -> Result<()> {
    let kind = kind_of(o).to_owned();
    let api = api(client, o, &kind, s);
    api.patch_status(
        name_of(o),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map(|_| ())
    .map_err(|e| anyhow!("writing the status of {}: {e}", label(o)))
}

/// Gives a new Node the world's taints. A real apiserver taints every new Node
/// `node.kubernetes.io/not-ready:NoSchedule` on create (TaintNodesByCondition) and leaves it to
/// the node lifecycle controller, which this apiserver runs without, to lift it.
async fn untaint(client: &Client, o: &Value, s: &Served, created: &DynamicObject) -> Result<()> {
    let wanted = &o["spec"]["taints"];
    if created.data["spec"]["taints"] == *wanted {
        return Ok(());
    }
    api(client, o, "Node", s)
        .patch(
            name_of(o),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": wanted}})),
        )
        .await
        .map(|_| ())
        .map_err(|e| anyhow!("setting the taints of {}: {e}", label(o)))
}

/// Creates a CustomResourceDefinition and waits until it is Established.
async fn create_crd(client: &Client, crd: &Value, seeded: &mut Seeded) -> Result<()> {
    let Some(s) = served("CustomResourceDefinition") else {
        bail!("no table entry for CustomResourceDefinition");
    };
    let name = name_of(crd).to_owned();
    let api = api(client, crd, "CustomResourceDefinition", &s);
    if api.get_opt(&name).await?.is_none() {
        create(client, crd, &s).await?;
        *seeded
            .created
            .entry("CustomResourceDefinition".into())
            .or_default() += 1;
    } else {
        seeded
            .existing
            .push(format!("CustomResourceDefinition/{name}"));
    }
    let deadline = Instant::now() + CRD_READY_WITHIN;
    loop {
        let got = api.get(&name).await?;
        let established = got.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        if established {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "CustomResourceDefinition {name} not Established within {CRD_READY_WITHIN:?}: {}",
                got.data["status"]
            );
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// Loads every object of `world` into the apiserver behind `client`, pointing the Node's kubelet
/// endpoint at 127.0.0.1:`kubelet_port`.
pub async fn seed(client: &Client, world: &World, kubelet_port: u16) -> Result<Seeded> {
    let mut seeded = Seeded::default();

    for o in &world.objects {
        if served(kind_of(o)).is_none() {
            bail!(
                "{}: no apiVersion/plural for kind {:?} in squad-testkit's seed.rs",
                label(o),
                kind_of(o)
            );
        }
    }

    // Namespaces first; the system ones exist already.
    for o in world.of_kind("Namespace", None) {
        let Some(s) = served("Namespace") else {
            continue;
        };
        let api = api(client, o, "Namespace", &s);
        let real = match api.get_opt(name_of(o)).await? {
            Some(existing) => {
                seeded.existing.push(label(o));
                existing
            }
            None => {
                let body = for_create(o, &s, &seeded.uids)?;
                let created = create(client, &body, &s).await?;
                *seeded.created.entry("Namespace".into()).or_default() += 1;
                created
            }
        };
        if let Some(synthetic) = uid_of(o) {
            seeded.uids.insert(synthetic.to_owned(), created_uid(&real));
        }
    }

    // The definitions of custom kinds, before their objects. The simulated cluster always
    // serves VulnerabilityReports (Trivy Operator is installed, whether or not it found anything).
    let mut kinds: BTreeSet<&str> = world.objects.iter().map(kind_of).collect();
    kinds.insert("VulnerabilityReport");
    for crd in kinds.iter().filter_map(|k| crd_for(k)) {
        create_crd(client, &crd, &mut seeded).await?;
    }

    // Everything else, owners before dependents, Events last (they point at all the rest).
    let mut pending: Vec<&Value> = world
        .objects
        .iter()
        .filter(|o| kind_of(o) != "Namespace")
        .collect();
    pending.sort_by_key(|o| match kind_of(o) {
        "Node" => 0,
        "Event" => 2,
        _ => 1,
    });
    while !pending.is_empty() {
        let ready = |o: &Value| {
            let owners_done = o["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|r| {
                    r["uid"]
                        .as_str()
                        .is_some_and(|u| seeded.uids.contains_key(u))
                });
            let others_done =
                kind_of(o) != "Event" || pending.iter().all(|p| kind_of(p) == "Event");
            owners_done && others_done
        };
        let (now, later): (Vec<&Value>, Vec<&Value>) = pending.iter().partition(|o| ready(o));
        if now.is_empty() {
            let stuck: Vec<String> = later.iter().map(|o| label(o)).collect();
            bail!(
                "these objects' owners are not in the world: {}",
                stuck.join(", ")
            );
        }
        for o in now {
            let kind = kind_of(o).to_owned();
            let Some(s) = served(&kind) else {
                continue;
            };
            let body = for_create(o, &s, &seeded.uids)?;
            let created = create(client, &body, &s).await?;
            *seeded.created.entry(kind.clone()).or_default() += 1;
            if let Some(synthetic) = uid_of(o) {
                seeded
                    .uids
                    .insert(synthetic.to_owned(), created_uid(&created));
            }
            if kind == "Node" {
                untaint(client, o, &s, &created).await?;
            }
            if s.status
                && let Some(status) = status_for(o, kubelet_port)
            {
                write_status(client, o, &s, status).await?;
                *seeded.statuses.entry(kind).or_default() += 1;
            }
        }
        pending = later;
    }
    Ok(seeded)
}
