//! What squad reads from a cluster, in its own terms (no Kubernetes client types).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Quantity;

mod cron_job;
mod network_policy;
mod rbac;
pub use cron_job::{CronJobInfo, OwnedJob};
pub use network_policy::{
    Destination, EgressRule, IngressRule, NetworkPolicyInfo, PolicyPeer, PolicyPort,
};
pub use rbac::{ApiRequest, RbacRefusal, RbacRule};

/// A container's last termination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Termination {
    pub reason: String,
    pub exit_code: i32,
    pub finished_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub name: String,
    pub ready: bool,
    pub restart_count: u32,
    /// `running`, `waiting: CrashLoopBackOff`, ...
    pub state: String,
    /// How its last run ended: the current one when it has terminated (a Job's pod), else
    /// the previous (`lastState`).
    pub last_termination: Option<Termination>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub node: String,
    pub phase: String,
    /// `status.reason` and `status.message`, when the pod has them (`Evicted` and the
    /// kubelet's words, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub containers: Vec<ContainerStatus>,
    /// `status.initContainerStatuses`: the init containers, in order (each must exit 0 before
    /// the next starts, and all before the containers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<ContainerStatus>,
    /// `metadata.deletionTimestamp`: when the pod is to be gone (deleted, its grace period
    /// running; `Terminating` in kubectl). A pod on a node that stopped answering keeps it:
    /// no kubelet confirms the deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A pod on a node, whatever its workload: what the kubelet weighs when it evicts (its
/// priority, its memory request and limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePod {
    pub pod: PodInfo,
    /// `spec.priority` (0 when unset) and the PriorityClass it came from.
    #[serde(default)]
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class: Option<String>,
    /// The memory its containers request, and their limit (none if any container has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_request: Option<crate::Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<crate::Quantity>,
    /// The CPU its containers request (their limits when they request none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request: Option<crate::Quantity>,
}

impl PodInfo {
    /// Why the pod is not Ready (a waiting container's state, a running one not ready, else its
    /// phase: `app waiting: ImagePullBackOff`), or `None` when it runs with every container ready.
    pub fn not_ready(&self) -> Option<String> {
        let all_ready = !self.containers.is_empty() && self.containers.iter().all(|c| c.ready);
        if all_ready && self.phase == "Running" {
            return None;
        }
        Some(
            self.init_containers
                .iter()
                .chain(&self.containers)
                .find(|c| c.state.starts_with("waiting"))
                .map(|c| format!("{} {}", c.name, c.state))
                .or_else(|| {
                    self.containers
                        .iter()
                        .find(|c| !c.ready)
                        .map(|c| format!("{} {} but not ready", c.name, c.state))
                })
                .unwrap_or_else(|| self.phase.clone()),
        )
    }

    /// Whether it has been deleted and is not gone yet (`Terminating`).
    pub fn terminating(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// Whether the kubelet evicted it.
    pub fn evicted(&self) -> bool {
        self.phase == "Failed" && self.reason.as_deref() == Some("Evicted")
    }

    /// `namespace/name` of the workload the pod belongs to, from its owner (a ReplicaSet stands
    /// for its Deployment: its name less the template hash); the pod's own name without one.
    pub fn workload_name(&self) -> String {
        let ns = &self.namespace;
        match self.owner.as_deref().and_then(|o| o.split_once('/')) {
            Some(("ReplicaSet", rs)) => format!("{ns}/{}", rs.rsplit_once('-').map_or(rs, |x| x.0)),
            Some((_, name)) => format!("{ns}/{name}"),
            None => format!("{ns}/{}", self.name),
        }
    }

    /// A container's status by name, an init container's too.
    pub fn container(&self, name: &str) -> Option<&ContainerStatus> {
        self.containers
            .iter()
            .chain(&self.init_containers)
            .find(|c| c.name == name)
    }

    /// The init container that holds the pod back: the first that has not completed, while the
    /// pod's containers wait for it (`PodInitializing`).
    pub fn blocking_init_container(&self) -> Option<&ContainerStatus> {
        let initializing = self.containers.is_empty()
            || self
                .containers
                .iter()
                .all(|c| c.state == "waiting: PodInitializing");
        if !initializing {
            return None;
        }
        self.init_containers
            .iter()
            .find(|c| c.state != "terminated: Completed")
    }
}

/// An environment variable as declared (its source, never a secret's value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    /// `value`, `secret:<name>/<key>`, `configmap:<name>/<key>`, ...
    pub source: String,
    /// The literal `value:`, for the security review's credential check only: never
    /// serialized, hidden from `Debug`.
    #[serde(skip)]
    pub literal: Option<Literal>,
}

/// A value read from a manifest that may be a credential: it stays in memory, is never
/// serialized, and its `Debug` form says only its length.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Literal(pub String);

impl std::fmt::Debug for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Literal(<{} chars hidden>)", self.0.chars().count())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub limits: BTreeMap<String, Quantity>,
    pub requests: BTreeMap<String, Quantity>,
    pub env: Vec<EnvVar>,
    pub run_as_non_root: Option<bool>,
    pub privileged: Option<bool>,
    pub allow_privilege_escalation: Option<bool>,
    pub read_only_root_filesystem: Option<bool>,
    pub has_readiness_probe: bool,
    pub has_liveness_probe: bool,
    /// The ports the container declares (`containerPort`), with their names.
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    #[serde(default)]
    pub readiness_probe: Option<ProbeSpec>,
    #[serde(default)]
    pub liveness_probe: Option<ProbeSpec>,
    /// `command` (the image's entrypoint when empty) and `args`, as declared.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
}

/// A declared container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPort {
    pub port: u16,
    #[serde(default)]
    pub name: String,
}

/// A probe as the manifest declares it, with the API's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSpec {
    /// `httpGet`, `tcpSocket`, `grpc` or `exec`.
    pub kind: String,
    /// The port, as written: a number or a port name.
    pub port: String,
    /// `httpGet`'s path.
    pub path: String,
    pub initial_delay_seconds: u32,
    pub period_seconds: u32,
    pub timeout_seconds: u32,
    pub failure_threshold: u32,
}

impl ProbeSpec {
    /// The port number the probe targets: a number, or a named port of the container.
    pub fn port_number(&self, ports: &[ContainerPort]) -> Option<u16> {
        self.port
            .parse()
            .ok()
            .or_else(|| ports.iter().find(|p| p.name == self.port).map(|p| p.port))
    }

    /// `httpGet :8080/healthz`, `tcpSocket :5432`, as `kubectl describe` abbreviates it.
    pub fn target(&self) -> String {
        match self.kind.as_str() {
            "httpGet" => format!("http-get :{}{}", self.port, self.path),
            "tcpSocket" => format!("tcp-socket :{}", self.port),
            other => other.to_owned(),
        }
    }
}

/// A Deployment (or StatefulSet/DaemonSet) as it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadInfo {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub replicas: u32,
    pub service_account: String,
    pub pod_labels: BTreeMap<String, String>,
    pub containers: Vec<ContainerSpec>,
    /// `initContainers`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<ContainerSpec>,
    /// The pod-level `runAsNonRoot`.
    pub pod_run_as_non_root: Option<bool>,
    /// Where its pods may be scheduled.
    #[serde(default)]
    pub placement: PlacementRules,
    /// The PersistentVolumeClaims its pods mount (`volumes[].persistentVolumeClaim.claimName`).
    #[serde(default)]
    pub claims: Vec<String>,
    /// Its status conditions as its controller reports them (a Deployment's `Progressing`,
    /// `Available`, `ReplicaFailure`); none for a manifest read from the repository.
    #[serde(default)]
    pub conditions: Vec<WorkloadCondition>,
    /// What the Pod Security Standards read of its pod template, and nothing else (no env, no
    /// command or args: nothing that may hold a secret) — see `squad_gitops::objects::security_view`.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub pod_security: serde_json::Value,
}

/// One status condition of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadCondition {
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// A PersistentVolumeClaim and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimInfo {
    pub name: String,
    /// `Pending`, `Bound`, `Lost`.
    pub phase: String,
    /// `spec.storageClassName`; `None` when unset (the default class applies).
    pub storage_class: Option<String>,
    /// `spec.accessModes`: `ReadWriteOnce`, `ReadOnlyMany`, `ReadWriteMany`, `ReadWriteOncePod`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<String>,
    /// `spec.resources.requests.storage`.
    pub requested: Option<Quantity>,
    /// `status.capacity.storage`, once bound.
    pub capacity: Option<Quantity>,
    /// The PersistentVolume it is bound to.
    pub volume: String,
}

/// A StorageClass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageClassInfo {
    pub name: String,
    pub provisioner: String,
    /// Annotated `storageclass.kubernetes.io/is-default-class: "true"`.
    pub default: bool,
    pub allow_volume_expansion: bool,
    /// `Immediate` or `WaitForFirstConsumer`.
    pub binding_mode: String,
}

/// Where a pod may be scheduled, as its spec asks, in `kubectl describe`'s words.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementRules {
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity, one entry per term (the terms are ORed), each its expressions
    /// ANDed: `zone In [a, b], gpu Exists`.
    pub required_affinity: Vec<String>,
    /// Tolerations: `key=value:Effect`, `key:Effect` (operator Exists), `key` (any effect),
    /// `:Exists` (everything).
    pub tolerations: Vec<String>,
}

impl PlacementRules {
    pub fn is_empty(&self) -> bool {
        self.node_selector.is_empty()
            && self.required_affinity.is_empty()
            && self.tolerations.is_empty()
    }
}

impl WorkloadInfo {
    /// A container's spec by name, an init container's too.
    pub fn container(&self, name: &str) -> Option<&ContainerSpec> {
        self.containers
            .iter()
            .chain(&self.init_containers)
            .find(|c| c.name == name)
    }
}

/// One rollout revision of a workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    pub revision: u32,
    pub at: DateTime<Utc>,
    pub change_cause: String,
    /// The object that holds it: the Deployment's ReplicaSet, the ControllerRevision.
    #[serde(default)]
    pub name: String,
    pub containers: Vec<ContainerSpec>,
    /// Its init containers, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<ContainerSpec>,
    /// The labels its pod template gives the pods (the controller's `pod-template-hash` aside).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
    /// Where the revision's pods may be scheduled.
    #[serde(default)]
    pub placement: PlacementRules,
    /// The PersistentVolumeClaims its pods mount.
    #[serde(default)]
    pub claims: Vec<String>,
    /// The ServiceAccount its pods run as.
    #[serde(default)]
    pub service_account: String,
}

impl Revision {
    /// A container's spec by name, an init container's too.
    pub fn container(&self, name: &str) -> Option<&ContainerSpec> {
        self.containers
            .iter()
            .chain(&self.init_containers)
            .find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEvent {
    pub kind: String,
    pub reason: String,
    pub message: String,
    pub count: u32,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// `Kind/name` of the object the event is about.
    pub object: String,
}

impl ClusterEvent {
    /// An event recorded once, at `at`, about `object` (`Kind/name`).
    pub fn once(
        object: impl Into<String>,
        kind: &str,
        reason: &str,
        message: String,
        at: DateTime<Utc>,
    ) -> ClusterEvent {
        ClusterEvent {
            kind: kind.into(),
            reason: reason.into(),
            message,
            count: 1,
            first_seen: at,
            last_seen: at,
            object: object.into(),
        }
    }
}

/// One point of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub value: f64,
}

/// A container's CPU over a window, per sample the maximum over the workload's pods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuHistory {
    /// CPU used, in cores (the rate of `container_cpu_usage_seconds_total`).
    pub usage: Vec<Sample>,
    /// The share of CFS periods in which the container was throttled (0 to 1); empty when the
    /// container has no CPU limit (the kernel enforces no quota, so nothing is throttled).
    pub throttled: Vec<Sample>,
}

/// How full the volume bound to a claim has been, as the kubelet measures it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeUsage {
    pub claim: String,
    /// Bytes used.
    pub used: Vec<Sample>,
    /// The volume's size in bytes.
    pub capacity: Vec<Sample>,
}

/// A HorizontalPodAutoscaler: what it scales, within which bounds, on what, and what its
/// controller last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HpaInfo {
    pub name: String,
    /// `Kind/name` of its `scaleTargetRef`.
    pub target: String,
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Its targets, `cpu 70%` (utilisation) or `memory 512Mi` (average value).
    pub metrics: Vec<String>,
    /// `status.currentReplicas` and `status.desiredReplicas`.
    #[serde(default)]
    pub current_replicas: u32,
    #[serde(default)]
    pub desired_replicas: u32,
    /// What the controller last read, as `metrics` says it: `cpu 152%`, `memory 300Mi`.
    #[serde(default)]
    pub current_metrics: Vec<String>,
    /// `AbleToScale`, `ScalingActive`, `ScalingLimited`.
    #[serde(default)]
    pub conditions: Vec<WorkloadCondition>,
    #[serde(default)]
    pub last_scale_time: Option<DateTime<Utc>>,
}

impl HpaInfo {
    /// Its condition `kind`, when reported.
    pub fn condition(&self, kind: &str) -> Option<&WorkloadCondition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }
}

/// A Service: where its selector sends traffic, and the endpoints the endpoints controller gave
/// it (its `Endpoints` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub namespace: String,
    pub name: String,
    /// `spec.clusterIP` (`None` for a headless Service); empty before one is allocated.
    pub cluster_ip: String,
    /// The pod labels it selects; empty for a Service without a selector (its endpoints are
    /// managed by hand).
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePort>,
    /// Its endpoints, one per address and port.
    pub endpoints: Vec<Endpoint>,
    /// `spec.type`: `ClusterIP` (also when empty, the API's default), `NodePort`,
    /// `LoadBalancer` or `ExternalName`.
    #[serde(default)]
    pub service_type: String,
    /// `spec.externalIPs`: addresses outside the cluster the Service also answers on.
    #[serde(default)]
    pub external_ips: Vec<String>,
    /// `spec.loadBalancerSourceRanges`: the client ranges a load balancer lets in (empty: every
    /// address).
    #[serde(default)]
    pub load_balancer_source_ranges: Vec<String>,
}

impl ServiceInfo {
    /// Its type as the API reads it: `ClusterIP` when unset.
    pub fn kind(&self) -> &str {
        if self.service_type.is_empty() {
            "ClusterIP"
        } else {
            &self.service_type
        }
    }

    /// Whether it sends traffic to pods labelled `labels` (a Service without a selector sends to
    /// none: its endpoints are managed by hand).
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.selector.is_empty() && network_policy::matches(&self.selector, labels)
    }

    /// The Service's port `port`.
    pub fn port(&self, port: u16) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.port == port)
    }

    /// Its ready endpoints for the Service port `port` (matched by the port's name, as the
    /// Endpoints object names them).
    pub fn ready_endpoints(&self, port: &ServicePort) -> Vec<&Endpoint> {
        self.endpoints
            .iter()
            .filter(|e| e.ready && e.port_name == port.name)
            .collect()
    }
}

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    /// Empty for a single unnamed port.
    pub name: String,
    pub port: u16,
    /// The pods' port: a number, or the name of a container port.
    pub target_port: String,
    pub protocol: String,
}

/// One address of a Service's endpoints, on one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub ip: String,
    /// The pod behind it, when it is one.
    pub pod: String,
    /// Whether the pod is ready (`addresses`) or not (`notReadyAddresses`).
    pub ready: bool,
    /// The Service port's name it serves, and the pod's port number.
    pub port_name: String,
    pub port: u16,
}

/// A known vulnerability in an image (from the scanner the cluster adapter consults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageVulnerability {
    pub id: String,
    pub package: String,
    pub installed: String,
    pub fixed: String,
    pub severity: String,
    pub title: String,
}

/// One condition of a node (`Ready`, `MemoryPressure`, `DiskPressure`, `PIDPressure`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCondition {
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// A node as the crew sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub conditions: Vec<NodeCondition>,
    pub allocatable_memory: Option<Quantity>,
    pub capacity_memory: Option<Quantity>,
    pub kubelet_version: String,
    #[serde(default)]
    pub allocatable_cpu: Option<Quantity>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Taints as `kubectl describe node` prints them: `key=value:Effect` (`key:Effect` without a
    /// value).
    #[serde(default)]
    pub taints: Vec<String>,
    /// Cordoned: `spec.unschedulable`.
    #[serde(default)]
    pub unschedulable: bool,
}

impl NodeInfo {
    pub fn ready(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| c.kind == "Ready" && c.status == "True")
    }

    /// The pressure conditions that are on (`MemoryPressure`, ...).
    pub fn pressures(&self) -> Vec<&NodeCondition> {
        self.conditions
            .iter()
            .filter(|c| c.kind.ends_with("Pressure") && c.status == "True")
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: &str, containers: &[(&str, bool, &str)]) -> PodInfo {
        PodInfo {
            namespace: "shop".into(),
            name: "web-1".into(),
            node: "n1".into(),
            phase: phase.into(),
            reason: None,
            message: None,
            owner: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            containers: containers
                .iter()
                .map(|(name, ready, state)| ContainerStatus {
                    name: (*name).into(),
                    ready: *ready,
                    restart_count: 0,
                    state: (*state).into(),
                    last_termination: None,
                })
                .collect(),
            init_containers: Vec::new(),
            deleted_at: None,
        }
    }

    #[test]
    fn a_pod_says_why_it_is_not_ready() {
        assert_eq!(
            pod("Running", &[("app", true, "running")]).not_ready(),
            None
        );
        assert_eq!(
            pod("Pending", &[("app", false, "waiting: ImagePullBackOff")]).not_ready(),
            Some("app waiting: ImagePullBackOff".into())
        );
        assert_eq!(
            pod(
                "Running",
                &[("app", true, "running"), ("proxy", false, "running")]
            )
            .not_ready(),
            Some("proxy running but not ready".into())
        );
        assert_eq!(pod("Pending", &[]).not_ready(), Some("Pending".into()));
    }
}
