//! The real kube-scheduler and kube-controller-manager (1.20.2) beside a [`RealApiserver`]: the
//! Kubernetes control plane deciding where pods go and rolling Deployments out, so that the
//! simulator's scheduler and controllers can be compared with the real ones (the differential
//! tier).
//!
//! Both components run on loopback ports with `--leader-elect=false` and the admin kubeconfig.
//! The controller-manager runs the controllers workloads need ([`CONTROLLERS`]) but not
//! `nodelifecycle`: with no kubelet posting heartbeats it would mark every Node unreachable and
//! taint it. Nodes are API objects only ([`NodeRegistration`], [`register_node`]); pods bound to
//! them stay Pending, since nothing runs them.
//!
//! The binaries come from `SQUAD_KUBE_SCHEDULER` and `SQUAD_KUBE_CONTROLLER_MANAGER` (which
//! `scripts/tools` sets) or the cache `scripts/kube-apiserver-build` fills. Dropping the value
//! stops the scheduler and the controller-manager, then the apiserver and etcd.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition};
use k8s_openapi::api::core::v1::{
    Event, Node, NodeAddress, NodeCondition, NodeStatus, Pod, PodCondition, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::{Instant, sleep};

use crate::apiserver::{self, Options, RealApiserver};

/// The controllers the differential tier needs. `serviceaccount-token` must be named when the
/// list is explicit; `nodelifecycle` is left out on purpose (see the module docs).
pub const CONTROLLERS: &[&str] = &[
    "serviceaccount-token",
    "serviceaccount",
    "namespace",
    "garbagecollector",
    "deployment",
    "replicaset",
    "job",
    "cronjob",
    "resourcequota",
    "persistentvolume-binder",
    "endpoint",
    "endpointslice",
    "horizontalpodautoscaling",
];

const HEALTHY_WITHIN: Duration = Duration::from_secs(90);
const POLL_EVERY: Duration = Duration::from_millis(250);

/// A running apiserver (with etcd), kube-scheduler and kube-controller-manager.
pub struct ControlPlane {
    // Drop stops these two; the apiserver (and etcd) stop when the field drops, after them.
    scheduler: Option<Child>,
    controller_manager: Option<Child>,
    apiserver: RealApiserver,
}

/// Starts the control plane for the named test, or explains why it is skipped and returns `None`
/// when a binary is missing. Under `CI=true` a missing binary is an error instead of a skip.
pub async fn start_or_skip(test: &str, options: Options) -> Result<Option<ControlPlane>> {
    let apiserver_bin = apiserver::available();
    let scheduler_bin = apiserver::component("SQUAD_KUBE_SCHEDULER", "kube-scheduler");
    let manager_bin =
        apiserver::component("SQUAD_KUBE_CONTROLLER_MANAGER", "kube-controller-manager");
    let (Some(a), Some(s), Some(m)) = (apiserver_bin, scheduler_bin, manager_bin) else {
        apiserver::skip_unless_ci(&format!(
            "{test}: no kube-apiserver (with etcd), kube-scheduler or kube-controller-manager \
             (set SQUAD_KUBE_APISERVER, SQUAD_KUBE_SCHEDULER and SQUAD_KUBE_CONTROLLER_MANAGER, \
             or run scripts/kube-apiserver-build)"
        ))?;
        return Ok(None);
    };
    ControlPlane::start(&a, &s, &m, options).await.map(Some)
}

impl ControlPlane {
    async fn start(apiserver: &Path, scheduler: &Path, manager: &Path, o: Options) -> Result<Self> {
        let apiserver = RealApiserver::start(apiserver, o).await?;
        let root = apiserver.state_dir().to_path_buf();
        let kubeconfig = apiserver.kubeconfig_path().display().to_string();
        let [scheduler_port, manager_port] = crate::process::free_ports()?;
        let mut me = ControlPlane {
            scheduler: None,
            controller_manager: None,
            apiserver,
        };

        let mut cmd = Command::new(scheduler);
        cmd.args(common_args(&kubeconfig, scheduler_port));
        me.scheduler = Some(apiserver::spawn_logged(
            cmd,
            &root.join("kube-scheduler.log"),
            "kube-scheduler",
        )?);

        let mut cmd = Command::new(manager);
        cmd.args(common_args(&kubeconfig, manager_port))
            .arg(format!("--controllers={}", CONTROLLERS.join(",")))
            .arg(format!(
                "--service-account-private-key-file={}",
                root.join("sa.key").display()
            ));
        // The CA put into service-account token secrets: the apiserver's self-signed bundle.
        let serving = root.join("certs/apiserver.crt");
        if serving.is_file() {
            cmd.arg(format!("--root-ca-file={}", serving.display()));
        }
        me.controller_manager = Some(apiserver::spawn_logged(
            cmd,
            &root.join("kube-controller-manager.log"),
            "kube-controller-manager",
        )?);

        me.wait_healthy("kube-scheduler", scheduler_port).await?;
        me.wait_healthy("kube-controller-manager", manager_port)
            .await?;
        // Its controllers are running once the serviceaccount one has filled in `default`.
        let client = me.client().await?;
        let accounts: Api<ServiceAccount> = Api::namespaced(client, "default");
        let deadline = Instant::now() + HEALTHY_WITHIN;
        while accounts
            .get_opt("default")
            .await
            .context("reading ServiceAccount default/default")?
            .is_none()
        {
            me.check_running("the default ServiceAccount")?;
            if Instant::now() >= deadline {
                bail!(
                    "the controller-manager created no default ServiceAccount within \
                     {HEALTHY_WITHIN:?}\n{}",
                    me.log_tail()
                );
            }
            sleep(POLL_EVERY).await;
        }
        Ok(me)
    }

    /// The apiserver under the scheduler and controller-manager (kubeconfig, kubectl, URL).
    pub fn apiserver(&self) -> &RealApiserver {
        &self.apiserver
    }

    /// A client with the admin kubeconfig.
    pub async fn client(&self) -> Result<Client> {
        crate::seed::client(self.apiserver.kubeconfig_path()).await
    }

    /// The last lines of every component's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut out = self.apiserver.log_tail();
        for name in ["kube-scheduler.log", "kube-controller-manager.log"] {
            apiserver::tail_of(&mut out, &self.apiserver.state_dir().join(name));
        }
        out
    }

    /// Fails (with the logs) if any process of the control plane has exited.
    pub fn check_running(&mut self, waiting_for: &str) -> Result<()> {
        let mut exit = self.apiserver.exited()?;
        for (name, slot) in [
            ("kube-scheduler", &mut self.scheduler),
            ("kube-controller-manager", &mut self.controller_manager),
        ] {
            if exit.is_none()
                && let Some(child) = slot
                && let Some(status) = child.try_wait().context("checking a child process")?
            {
                *slot = None;
                exit = Some(format!("{name} exited ({status})"));
            }
        }
        match exit {
            Some(exit) => bail!(
                "{exit} while waiting for {waiting_for}\n{}",
                self.log_tail()
            ),
            None => Ok(()),
        }
    }

    /// Polls `https://127.0.0.1:PORT/healthz` (always allowed, self-signed) until HTTP 200.
    async fn wait_healthy(&mut self, name: &str, port: u16) -> Result<()> {
        let what = format!("{name} /healthz");
        let deadline = Instant::now() + HEALTHY_WITHIN;
        loop {
            self.check_running(&what)?;
            let out = Command::new("curl")
                .args([
                    "--max-time",
                    "5",
                    "-sk",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                ])
                .arg(format!("https://127.0.0.1:{port}/healthz"))
                .output()
                .context("running curl")?;
            let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if code == "200" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{what} not ready within {HEALTHY_WITHIN:?} (last answer: HTTP {code})\n{}",
                    self.log_tail()
                );
            }
            sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for slot in [&mut self.scheduler, &mut self.controller_manager] {
            if let Some(child) = slot.take() {
                apiserver::stop(child);
            }
        }
    }
}

/// The flags both components take: the admin kubeconfig for the API and for delegated
/// authentication and authorization, no leader election, HTTPS on a loopback port (a serving
/// certificate in memory; `/healthz` is always allowed) and no insecure port. The apiserver has
/// no client CA, so it publishes no `extension-apiserver-authentication` ConfigMap: skip looking
/// for it (or both components log an error a few dozen times at start).
fn common_args(kubeconfig: &str, port: u16) -> Vec<String> {
    vec![
        format!("--kubeconfig={kubeconfig}"),
        format!("--authentication-kubeconfig={kubeconfig}"),
        format!("--authorization-kubeconfig={kubeconfig}"),
        "--authentication-skip-lookup=true".into(),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        "--port=0".into(),
    ]
}

/// A Node as a test registers it: no kubelet behind it, Ready, with the given labels, taints and
/// allocatable resources (capacity is the same).
#[derive(Debug, Clone)]
pub struct NodeRegistration {
    name: String,
    labels: BTreeMap<String, String>,
    taints: Vec<serde_json::Value>,
    cpu: String,
    memory: String,
    pods: String,
}

impl NodeRegistration {
    /// A node named `name` with `cpu` and `memory` allocatable (quantities: `"4"`, `"8Gi"`) and
    /// room for 110 pods (the kubelet's default).
    pub fn new(name: &str, cpu: &str, memory: &str) -> Self {
        NodeRegistration {
            name: name.into(),
            labels: BTreeMap::from([("kubernetes.io/hostname".into(), name.into())]),
            taints: Vec::new(),
            cpu: cpu.into(),
            memory: memory.into(),
            pods: "110".into(),
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a taint (`effect`: `NoSchedule`, `PreferNoSchedule` or `NoExecute`).
    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.taints
            .push(json!({"key": key, "value": value, "effect": effect}));
        self
    }

    /// How many pods the node takes.
    pub fn pods(mut self, pods: u32) -> Self {
        self.pods = pods.to_string();
        self
    }
}

/// Registers a Node: creates it, sets its taints to exactly the wanted ones (the apiserver's
/// TaintNodesByCondition admission adds `node.kubernetes.io/not-ready:NoSchedule` on create, and
/// only the node lifecycle controller, not run here, would lift it), then writes a Ready status
/// with capacity and allocatable through the `status` subresource. Returns the Node as stored.
pub async fn register_node(client: &Client, node: &NodeRegistration) -> Result<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    let name = &node.name;
    let body: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": node.labels},
        "spec": {"taints": node.taints},
    }))
    .with_context(|| format!("Node {name} as an object"))?;
    nodes
        .create(&PostParams::default(), &body)
        .await
        .map_err(|e| anyhow!("creating Node {name}: {e}"))?;
    nodes
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": node.taints}})),
        )
        .await
        .map_err(|e| anyhow!("setting the taints of Node {name}: {e}"))?;

    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity(node.cpu.clone())),
        ("memory".to_string(), Quantity(node.memory.clone())),
        ("pods".to_string(), Quantity(node.pods.clone())),
    ]);
    let now = Time(Timestamp::now());
    let status = NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: Some("KubeletReady".into()),
            message: Some("kubelet is posting ready status".into()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(now),
        }]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: "127.0.0.1".into(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: name.clone(),
            },
        ]),
        ..NodeStatus::default()
    };
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(|e| anyhow!("writing the status of Node {name}: {e}"))
}

/// Waits until the scheduler's cache holds `nodes` nodes with their status (allocatable), and
/// every pod created before this call: a probe pod asking more memory than any node has must be
/// refused by all of them for that reason alone (a node whose status it has not seen yet also
/// says `Too many pods`, one it has not seen at all is not counted). Pods and nodes reach the
/// scheduler through watches, so a test that registers nodes and then creates a workload at
/// once can otherwise be judged against fewer nodes, or emptier ones, than it made.
pub async fn wait_until_scheduler_knows(
    client: &Client,
    nodes: usize,
    within: Duration,
) -> Result<()> {
    const PROBE: &str = "scheduler-cache-probe";
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let probe: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": PROBE, "namespace": "kube-system"},
        "spec": {"tolerations": [{"operator": "Exists"}],
                 "containers": [{"name": "probe", "image": "registry.k8s.io/pause:3.2",
                                 "resources": {"requests": {"memory": "1000Ti"}}}]}
    }))?;
    pods.create(&PostParams::default(), &probe)
        .await
        .map_err(|e| anyhow!("creating the scheduler's probe pod: {e}"))?;
    let wanted = format!("0/{nodes} nodes are available: {nodes} Insufficient memory.");
    let what = format!("the scheduler to know {nodes} node(s) ({wanted})");
    let known = poll(&what, within, async || {
        let pod = pods.get(PROBE).await.context("reading the probe pod")?;
        let message = pod
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "PodScheduled")
            .and_then(|c| c.message)
            .unwrap_or_default();
        Ok(if message == wanted {
            Seen::Done(())
        } else {
            Seen::Not(message)
        })
    })
    .await;
    pods.delete(PROBE, &kube::api::DeleteParams::default().grace_period(0))
        .await
        .map_err(|e| anyhow!("deleting the probe pod: {e}"))?;
    known
}

/// What one look at the cluster found: the thing waited for, or a description of what is there
/// instead (for the timeout message).
enum Seen<T> {
    Done(T),
    Not(String),
}

/// Polls `look` until it finds what it looks for, failing after `within` with its last
/// description of what it saw instead.
async fn poll<T>(
    what: &str,
    within: Duration,
    mut look: impl AsyncFnMut() -> Result<Seen<T>>,
) -> Result<T> {
    let deadline = Instant::now() + within;
    loop {
        let seen = match look().await? {
            Seen::Done(found) => return Ok(found),
            Seen::Not(seen) => seen,
        };
        if Instant::now() >= deadline {
            bail!("{what}: not within {within:?}; last seen: {seen}");
        }
        sleep(POLL_EVERY).await;
    }
}

/// Waits until `count` pods match the label `selector` in `namespace` (pods a ReplicaSet or Job
/// controller creates), and returns them sorted by name.
pub async fn wait_for_pods(
    client: &Client,
    namespace: &str,
    selector: &str,
    count: usize,
    within: Duration,
) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(selector);
    let what = format!("{count} pod(s) matching {selector} in {namespace}");
    poll(&what, within, async || {
        let mut found = pods
            .list(&params)
            .await
            .with_context(|| format!("listing pods matching {selector} in {namespace}"))?
            .items;
        if found.len() < count {
            return Ok(Seen::Not(format!("{} pod(s)", found.len())));
        }
        found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(Seen::Done(found))
    })
    .await
}

/// Waits until the pod has a condition of type `type_` (`PodScheduled`, `Ready`, ...) with
/// status `status` (`"True"`, `"False"`), and returns the condition.
pub async fn wait_for_pod_condition(
    client: &Client,
    namespace: &str,
    pod: &str,
    type_: &str,
    status: &str,
    within: Duration,
) -> Result<PodCondition> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let what = format!("condition {type_}={status} on pod {namespace}/{pod}");
    poll(&what, within, async || {
        let current = pods
            .get(pod)
            .await
            .with_context(|| format!("reading pod {namespace}/{pod}"))?;
        let conditions = current
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default();
        let seen = format!("{conditions:?}");
        Ok(
            match conditions
                .into_iter()
                .find(|c| c.type_ == type_ && c.status == status)
            {
                Some(c) => Seen::Done(c),
                None => Seen::Not(seen),
            },
        )
    })
    .await
}

/// Waits until the Deployment has a condition of type `type_` (`Progressing`, `Available`) with
/// status `status` (`"True"`, `"False"`), and returns the condition.
pub async fn wait_for_deployment_condition(
    client: &Client,
    namespace: &str,
    deployment: &str,
    type_: &str,
    status: &str,
    within: Duration,
) -> Result<DeploymentCondition> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let what = format!("condition {type_}={status} on Deployment {namespace}/{deployment}");
    poll(&what, within, async || {
        let current = deployments
            .get(deployment)
            .await
            .with_context(|| format!("reading Deployment {namespace}/{deployment}"))?;
        let conditions = current
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default();
        let seen = format!("{conditions:?}");
        Ok(
            match conditions
                .into_iter()
                .find(|c| c.type_ == type_ && c.status == status)
            {
                Some(c) => Seen::Done(c),
                None => Seen::Not(seen),
            },
        )
    })
    .await
}

/// The Events about an object (`kind` `Pod`, `Deployment`, ...), oldest first. Core v1 Events:
/// the 1.20 scheduler writes `events.k8s.io/v1` ones, which the apiserver serves as both.
pub async fn events_of(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Result<Vec<Event>> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let fields = format!(
        "involvedObject.kind={kind},involvedObject.name={name},involvedObject.namespace={namespace}"
    );
    let mut found = events
        .list(&ListParams::default().fields(&fields))
        .await
        .with_context(|| format!("listing the events of {kind} {namespace}/{name}"))?
        .items;
    found.sort_by_key(event_time);
    Ok(found)
}

/// When an Event happened: `eventTime` (events.k8s.io writers), else `lastTimestamp` (core ones).
fn event_time(e: &Event) -> Option<Timestamp> {
    e.event_time
        .as_ref()
        .map(|t| t.0)
        .or(e.last_timestamp.as_ref().map(|t| t.0))
        .or(e.first_timestamp.as_ref().map(|t| t.0))
}

/// Waits until an Event with `reason` is recorded about the object, and returns it.
pub async fn wait_for_event(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
    reason: &str,
    within: Duration,
) -> Result<Event> {
    wait_for_any_event(client, namespace, kind, name, &[reason], within).await
}

/// Waits until an Event with one of `reasons` is recorded about the object, and returns the
/// first recorded.
pub async fn wait_for_any_event(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
    reasons: &[&str],
    within: Duration,
) -> Result<Event> {
    let what = format!(
        "a {} event about {kind} {namespace}/{name}",
        reasons.join(" or ")
    );
    poll(&what, within, async || {
        let events = events_of(client, namespace, kind, name).await?;
        let seen: Vec<String> = events.iter().filter_map(|e| e.reason.clone()).collect();
        Ok(
            match events
                .into_iter()
                .find(|e| e.reason.as_deref().is_some_and(|r| reasons.contains(&r)))
            {
                Some(e) => Seen::Done(e),
                None => Seen::Not(format!("reasons {seen:?}")),
            },
        )
    })
    .await
}

/// Waits until the ResourceQuota controller has written the quota's status (the quota
/// admission plugin refuses every pod, "status unknown for quota", until it has).
pub async fn wait_for_quota_status(
    client: &Client,
    namespace: &str,
    name: &str,
    within: Duration,
) -> Result<()> {
    use k8s_openapi::api::core::v1::ResourceQuota;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), namespace);
    let what = format!("the status of ResourceQuota {namespace}/{name}");
    poll(&what, within, async || {
        let q = quotas
            .get(name)
            .await
            .with_context(|| format!("reading ResourceQuota {namespace}/{name}"))?;
        let hard = q.status.as_ref().and_then(|s| s.hard.as_ref());
        Ok(match hard {
            Some(h) if !h.is_empty() => Seen::Done(()),
            _ => Seen::Not("no status.hard".into()),
        })
    })
    .await
}

/// The node a pod is bound to, if the scheduler bound it.
pub fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}
