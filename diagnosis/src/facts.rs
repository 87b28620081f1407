//! The facts a diagnosis reads, gathered once through the `Cluster` port. Gathering is the only
//! async part of a diagnosis: everything after it is a pure function of the [`Facts`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use squad_protocols::cluster::{
    ClaimInfo, ClusterEvent, CpuHistory, CronJobInfo, HpaInfo, NetworkPolicyInfo, NodeInfo,
    NodePod, PodInfo, RbacRule, Revision, Sample, ServiceInfo, StorageClassInfo, VolumeUsage,
    WorkloadInfo,
};
use squad_protocols::{Alert, WorkloadRef};
use squad_runtime::ports::{Cluster, PortError, PortResult};

const HOUR: u64 = 3600;
/// The step of the 24 h memory and traffic series.
const STEP: Duration = Duration::from_secs(300);
/// Log lines read from a crashed container.
const LOG_TAIL: usize = 50;

/// One snapshot of what the cluster says about the alerted workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub now: DateTime<Utc>,
    pub alert: Alert,
    pub workload: WorkloadRef,
    pub info: WorkloadInfo,
    /// The container the alert is about: its `container` label, else the workload's first.
    pub container: String,
    /// The alerted pod, else the workload's pod whose container restarted most (not ready, among
    /// equals).
    pub pod: Option<PodInfo>,
    /// The pod's node, when it could be read.
    pub node: Option<NodeInfo>,
    /// Every node of the cluster, read when the pod has none (it was never scheduled): where it
    /// could have gone.
    pub nodes: Vec<NodeInfo>,
    /// The nodes the workload's pods run on, read with `nodes`: where the workload last ran (a
    /// relabelled node pool's nodes still hold the pods scheduled before).
    pub pod_nodes: Vec<String>,
    /// What the kubelet and the controllers said about the pod, in their own words.
    pub events: Vec<ClusterEvent>,
    /// The container's working set over 24 h (per-sample maximum over the workload's pods).
    pub memory: Vec<Sample>,
    /// Requests per second over 24 h, one series per route.
    pub request_rates: Vec<(String, Vec<Sample>)>,
    /// The container's CPU use and CFS throttling over 24 h.
    pub cpu: CpuHistory,
    /// Rollout revisions, oldest first.
    pub history: Vec<Revision>,
    /// What the controllers said about the newest revision's object (its ReplicaSet): pods the
    /// apiserver refused to create, in its own words.
    pub rollout_events: Vec<ClusterEvent>,
    /// The PersistentVolumeClaims the workload's pods mount, the cluster's StorageClasses and
    /// what the volume controller said about the claims ([`Lookup::Claims`]).
    pub claims: Vec<ClaimInfo>,
    pub storage_classes: Vec<StorageClassInfo>,
    pub claim_events: Vec<ClusterEvent>,
    /// How full each mounted claim's volume has been over the window (the kubelet's stats;
    /// [`Lookup::Claims`]).
    pub volumes: Vec<VolumeUsage>,
    /// The 99th-percentile latency of the app's answers on each path asked, in seconds, over 24 h
    /// ([`Lookup::Latency`]).
    pub latency: Vec<(String, Vec<Sample>)>,
    /// The RBAC rules bound to the ServiceAccounts a family asked about ([`Lookup::Rbac`]):
    /// `(service account, rules)`, in the order asked.
    pub rbac: Vec<(String, Vec<RbacRule>)>,
    /// The namespace's NetworkPolicies ([`Lookup::NetworkPolicies`]).
    pub network_policies: Vec<NetworkPolicyInfo>,
    /// The namespace's Services (with their endpoints) and workloads ([`Lookup::Services`]).
    pub services: Vec<ServiceInfo>,
    pub neighbours: Vec<WorkloadInfo>,
    /// What the controllers said about the workload object ([`Lookup::WorkloadEvents`]).
    pub workload_events: Vec<ClusterEvent>,
    /// The HorizontalPodAutoscalers that scale the workload, with their controller's status, and
    /// what the controller said about them ([`Lookup::Autoscalers`]).
    pub autoscalers: Vec<HpaInfo>,
    pub autoscaler_events: Vec<ClusterEvent>,
    /// Every pod on the alerted pod's node, whatever its workload, and what the node's kubelet
    /// said about the node ([`Lookup::NodePods`]).
    pub node_pods: Vec<NodePod>,
    pub node_events: Vec<ClusterEvent>,
    /// The CronJob (when the workload is one) with the Jobs it keeps, and what the Job
    /// controller said about the newest of them that failed ([`Lookup::CronJob`]).
    pub cron_job: Option<CronJobInfo>,
    pub job_events: Vec<ClusterEvent>,
    /// The crashed container's last log lines (the previous run's, else the current one's); read
    /// only when the container's last termination was not an OOM kill.
    pub logs: Vec<String>,
    /// Whether the container's logs could not be read (a permission, an unreachable kubelet).
    pub logs_unreadable: bool,
    /// What could not be read, in words, for the evidence.
    pub notes: Vec<String>,
}

impl Facts {
    /// The alerted container's status in the pod.
    pub fn status(&self) -> Option<&squad_protocols::cluster::ContainerStatus> {
        self.pod.as_ref().and_then(|p| p.container(&self.container))
    }

    /// The alerted container's last termination.
    pub fn termination(&self) -> Option<&squad_protocols::cluster::Termination> {
        self.status().and_then(|s| s.last_termination.as_ref())
    }
}

/// The container to read in `pod`: `chosen`, unless the pod is still initializing and `chosen`
/// waits for it (`PodInitializing`): then the init container that has not completed.
pub fn focus_container(pod: &PodInfo, chosen: &str) -> String {
    let waits = pod
        .containers
        .iter()
        .find(|c| c.name == chosen)
        .is_none_or(|c| c.state == "waiting: PodInitializing");
    match pod.blocking_init_container() {
        Some(init) if waits => init.name.clone(),
        _ => chosen.to_owned(),
    }
}

/// What a family needs read beyond the base facts (the workload, its pod, node, events,
/// metrics, rollout history and logs), decided from them: see `Family::lookups`. Each fills
/// its fields of [`Facts`]; a family that needs what another already asks for adds nothing
/// here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The PersistentVolumeClaims the pods mount, the cluster's StorageClasses, what the volume
    /// controller said about the claims, and how full their volumes have been.
    Claims,
    /// The RBAC rules bound to a ServiceAccount of the workload's namespace.
    Rbac(String),
    /// The namespace's NetworkPolicies.
    NetworkPolicies,
    /// The namespace's Services (with their endpoints) and workloads.
    Services,
    /// What the controllers said about the workload object itself (a Job's pods created and
    /// deleted, why it failed).
    WorkloadEvents,
    /// The HPAs that scale the workload, and their events.
    Autoscalers,
    /// Every pod on the alerted pod's node and the node's events (who else is there, who was
    /// evicted).
    NodePods,
    /// Every pod on the named node and the node's events: a node the pod is not on (one its
    /// workload's pods were taken off).
    PodsOn(String),
    /// The CronJob's spec, status and Jobs, and the events of the newest Job that failed.
    CronJob,
    /// The 99th-percentile latency of the app's answers on a path (its liveness probe's).
    Latency(String),
}

/// Reads the facts about `workload` for `alert`: the base facts, then what `lookups` asks for
/// given them (the families' [`Lookup`]s, in order, each once). A read the cluster refuses
/// becomes a note (the diagnosis degrades); only the workload itself is required.
pub async fn gather(
    cluster: &dyn Cluster,
    alert: &Alert,
    workload: &WorkloadRef,
    now: DateTime<Utc>,
    lookups: &(dyn Fn(&Facts) -> Vec<Lookup> + Sync),
) -> PortResult<Facts> {
    let mut facts = gather_base(cluster, alert, workload, now).await?;
    let mut wanted: Vec<Lookup> = Vec::new();
    for l in lookups(&facts) {
        if !wanted.contains(&l) {
            wanted.push(l);
        }
    }
    for l in wanted {
        read(cluster, &mut facts, l).await;
    }
    Ok(facts)
}

/// What every diagnosis reads.
async fn gather_base(
    cluster: &dyn Cluster,
    alert: &Alert,
    workload: &WorkloadRef,
    now: DateTime<Utc>,
) -> PortResult<Facts> {
    let ns = workload.namespace.as_str();
    let mut notes = Vec::new();
    let info = cluster.workload(workload).await?;
    let alerted = match alert.label("pod") {
        Some(p) => cluster.pod(ns, p).await.ok(),
        None => None,
    };
    let pods = match &alerted {
        Some(p) => vec![p.clone()],
        None => cluster.pods_of(workload).await?,
    };
    // The container the alert names; else the one in the worst state across the pods (most
    // restarts, then not ready, then waiting), a sidecar that runs fine never before the app
    // beside it; among equals (pods never scheduled have no state) the one that requests the
    // most memory, then the first declared.
    let container = alert
        .label("container")
        .map(str::to_owned)
        .or_else(|| {
            info.containers
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| {
                    let worst = pods
                        .iter()
                        .filter_map(|p| p.container(&c.name))
                        .map(|s| (s.restart_count, !s.ready, s.state.starts_with("waiting")))
                        .max()
                        .unwrap_or_default();
                    let asks = c.requests.get("memory").map_or(0, |q| q.bytes());
                    (worst, asks, std::cmp::Reverse(*i))
                })
                .map(|(_, c)| c.name.clone())
        })
        .ok_or_else(|| {
            PortError::failed(
                format!("diagnose {workload}"),
                "the workload has no containers",
            )
        })?;

    let pod = match alerted {
        Some(p) => Some(p),
        None => pods
            .into_iter()
            // The one whose container restarted most; among equals, one that is not ready,
            // then the newest (a Job's last attempt).
            .max_by_key(|p| {
                let (restarts, unready) = p
                    .container(&container)
                    .map_or((0, true), |s| (s.restart_count, !s.ready));
                (restarts, unready, p.created_at)
            }),
    };
    // A pod held back by an init container: that one is the container to read (the app's
    // containers wait, `PodInitializing`, and say nothing).
    let container = pod
        .as_ref()
        .map_or(container.clone(), |p| focus_container(p, &container));
    // The node: memory pressure there changes the story (evictions, not only limits).
    let mut node = None;
    if let Some(p) = pod.as_ref().filter(|p| !p.node.is_empty()) {
        match cluster.node(&p.node).await {
            Ok(n) => node = Some(n),
            Err(e) => notes.push(format!("node {} not readable: {e}", p.node)),
        }
    }
    let mut nodes = Vec::new();
    let mut pod_nodes = Vec::new();
    if pod.as_ref().is_some_and(|p| p.node.is_empty()) {
        match cluster.nodes().await {
            Ok(n) => nodes = n,
            Err(e) => notes.push(format!("nodes not readable: {e}")),
        }
        match cluster.pods_of(workload).await {
            Ok(p) => {
                pod_nodes = p
                    .into_iter()
                    .map(|p| p.node)
                    .filter(|n| !n.is_empty())
                    .collect()
            }
            Err(e) => notes.push(format!("pods of {workload} not readable: {e}")),
        }
        pod_nodes.sort();
        pod_nodes.dedup();
    }
    let events = match &pod {
        Some(p) => match cluster.events(ns, &p.name).await {
            Ok(e) => e,
            Err(e) => {
                notes.push(format!("events of pod {} not readable: {e}", p.name));
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let window = Duration::from_secs(24 * HOUR);
    let memory = match cluster
        .memory_working_set(workload, &container, window, STEP)
        .await
    {
        Ok(m) => m,
        Err(e) => {
            notes.push(format!("memory history unavailable: {e}"));
            Vec::new()
        }
    };
    let request_rates = match cluster.request_rates(workload, window, STEP).await {
        Ok(r) => r,
        Err(e) => {
            notes.push(format!("request rates unavailable: {e}"));
            Vec::new()
        }
    };
    let cpu = match cluster.cpu(workload, &container, window, STEP).await {
        Ok(c) => c,
        Err(e) => {
            // Without metrics at all, the memory note already says so.
            if !memory.is_empty() {
                notes.push(format!("cpu history unavailable: {e}"));
            }
            CpuHistory::default()
        }
    };
    let history = cluster.rollout_history(workload).await.unwrap_or_else(|e| {
        notes.push(format!("rollout history unavailable: {e}"));
        Vec::new()
    });

    let mut rollout_events = match history.last().filter(|r| !r.name.is_empty()) {
        Some(r) => cluster.events(ns, &r.name).await.unwrap_or_else(|e| {
            notes.push(format!("events of {} not readable: {e}", r.name));
            Vec::new()
        }),
        None => Vec::new(),
    };
    // A StatefulSet's or DaemonSet's controller creates the pods itself, and records its
    // `FailedCreate` on the workload (its revisions are ControllerRevisions, which say nothing).
    if matches!(workload.kind.as_str(), "StatefulSet" | "DaemonSet") {
        match cluster.events(ns, &workload.name).await {
            Ok(e) => rollout_events.extend(
                e.into_iter()
                    .filter(|e| e.object.starts_with(&format!("{}/", workload.kind))),
            ),
            Err(e) => notes.push(format!("events of {workload} not readable: {e}")),
        }
    }

    // A crash that is not an OOM kill: what the logs say. The previous run's logs say why it
    // died; without them (not found, or not permitted), the current ones, and a note on what
    // could not be read.
    let mut logs = Vec::new();
    let mut logs_unreadable = false;
    let crashed = pod.as_ref().and_then(|p| {
        p.container(&container)
            .and_then(|s| s.last_termination.as_ref())
            .filter(|t| t.reason != "OOMKilled")
            .map(|_| p.name.clone())
    });
    // A container that runs but is not ready: what it says while it starts.
    let starting = pod.as_ref().and_then(|p| {
        p.container(&container)
            .filter(|s| s.state == "running" && !s.ready && s.last_termination.is_none())
            .map(|_| p.name.clone())
    });
    if let Some(pod_name) = starting.filter(|_| crashed.is_none()) {
        match cluster
            .logs(ns, &pod_name, &container, false, LOG_TAIL)
            .await
        {
            Ok(l) => logs = l,
            Err(e) => {
                notes.push(format!("container logs not readable: {e}"));
                logs_unreadable = true;
            }
        }
    }
    if let Some(pod_name) = crashed {
        logs = match cluster
            .logs(ns, &pod_name, &container, true, LOG_TAIL)
            .await
        {
            Ok(l) => l,
            Err(PortError::NotFound { .. }) => Vec::new(),
            Err(e) => {
                notes.push(format!("container logs not readable: {e}"));
                logs_unreadable = true;
                Vec::new()
            }
        };
        if logs.is_empty() {
            logs = match cluster
                .logs(ns, &pod_name, &container, false, LOG_TAIL)
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    if !logs_unreadable {
                        notes.push(format!("container logs not readable: {e}"));
                        logs_unreadable = true;
                    }
                    Vec::new()
                }
            };
        }
    }
    Ok(Facts {
        now,
        alert: alert.clone(),
        workload: workload.clone(),
        info,
        container,
        pod,
        node,
        nodes,
        pod_nodes,
        events,
        memory,
        request_rates,
        cpu,
        history,
        rollout_events,
        claims: Vec::new(),
        storage_classes: Vec::new(),
        claim_events: Vec::new(),
        volumes: Vec::new(),
        latency: Vec::new(),
        rbac: Vec::new(),
        network_policies: Vec::new(),
        services: Vec::new(),
        neighbours: Vec::new(),
        workload_events: Vec::new(),
        autoscalers: Vec::new(),
        autoscaler_events: Vec::new(),
        node_pods: Vec::new(),
        node_events: Vec::new(),
        cron_job: None,
        job_events: Vec::new(),
        logs,
        logs_unreadable,
        notes,
    })
}

/// Reads every pod on `node` and the node's events into `facts`.
async fn read_node(cluster: &dyn Cluster, facts: &mut Facts, node: &str) {
    match cluster.pods_on_node(node).await {
        Ok(pods) => facts.node_pods = pods,
        Err(e) => facts
            .notes
            .push(format!("pods on node {node} not readable: {e}")),
    }
    match cluster.events("default", node).await {
        Ok(e) => facts.node_events = e,
        Err(e) => facts
            .notes
            .push(format!("events of node {node} not readable: {e}")),
    }
}

/// Reads what `lookup` names into `facts`; a refusal becomes a note.
async fn read(cluster: &dyn Cluster, facts: &mut Facts, lookup: Lookup) {
    let node = match &lookup {
        Lookup::NodePods => facts
            .pod
            .as_ref()
            .map(|p| p.node.clone())
            .filter(|n| !n.is_empty()),
        Lookup::PodsOn(n) => Some(n.clone()),
        _ => None,
    };
    if matches!(lookup, Lookup::NodePods | Lookup::PodsOn(_)) {
        if let Some(node) = node {
            read_node(cluster, facts, &node).await;
        }
        return;
    }
    let ns = facts.workload.namespace.clone();
    let ns = ns.as_str();
    let notes = &mut facts.notes;
    match lookup {
        Lookup::Latency(path) => {
            let window = Duration::from_secs(24 * HOUR);
            match cluster.latency(&facts.workload, &path, window, STEP).await {
                Ok(s) => facts.latency.push((path.clone(), s)),
                Err(e) => notes.push(format!("latency on {path} unavailable: {e}")),
            }
        }
        Lookup::Claims => {
            match cluster.claims(ns).await {
                Ok(all) => {
                    facts.claims = all
                        .into_iter()
                        .filter(|c| facts.info.claims.contains(&c.name))
                        .collect()
                }
                Err(e) => notes.push(format!("PersistentVolumeClaims not readable: {e}")),
            }
            match cluster.storage_classes().await {
                Ok(c) => facts.storage_classes = c,
                Err(e) => notes.push(format!("StorageClasses not readable: {e}")),
            }
            let window = Duration::from_secs(24 * HOUR);
            for claim in &facts.info.claims {
                match cluster.events(ns, claim).await {
                    Ok(e) => facts.claim_events.extend(e),
                    Err(e) => notes.push(format!("events of claim {claim} not readable: {e}")),
                }
                match cluster.volume(&facts.workload, claim, window, STEP).await {
                    Ok(v) if !v.used.is_empty() => facts.volumes.push(v),
                    Ok(_) => {}
                    // Without metrics at all, the memory note already says so.
                    Err(e) if !facts.memory.is_empty() => {
                        notes.push(format!("usage of claim {claim}'s volume unavailable: {e}"))
                    }
                    Err(_) => {}
                }
            }
        }
        Lookup::Rbac(sa) => match cluster.rbac_rules(ns, &sa).await {
            Ok(rules) => facts.rbac.push((sa, rules)),
            Err(e) => notes.push(format!(
                "RBAC of ServiceAccount {ns}/{sa} not readable: {e}"
            )),
        },
        Lookup::NetworkPolicies => match cluster.network_policies(ns).await {
            Ok(p) => facts.network_policies = p,
            Err(e) => notes.push(format!("NetworkPolicies in {ns} not readable: {e}")),
        },
        Lookup::Services => {
            match cluster.services(ns).await {
                Ok(s) => facts.services = s,
                Err(e) => notes.push(format!("Services in {ns} not readable: {e}")),
            }
            match cluster.workloads(ns).await {
                Ok(w) => facts.neighbours = w,
                Err(e) => notes.push(format!("workloads in {ns} not readable: {e}")),
            }
        }
        Lookup::WorkloadEvents => {
            let name = facts.workload.name.clone();
            match cluster.events(ns, &name).await {
                Ok(e) => facts.workload_events = e,
                Err(e) => notes.push(format!("events of {} not readable: {e}", facts.workload)),
            }
        }
        Lookup::NodePods | Lookup::PodsOn(_) => {}
        Lookup::CronJob => {
            let name = facts.workload.name.clone();
            match cluster.cron_job(ns, &name).await {
                Ok(cj) => {
                    let failed = cj
                        .jobs
                        .iter()
                        .rev()
                        .find(|j| j.failed_condition().is_some())
                        .map(|j| j.name.clone());
                    facts.cron_job = Some(cj);
                    if let Some(job) = failed {
                        match cluster.events(ns, &job).await {
                            Ok(e) => facts.job_events = e,
                            Err(e) => notes.push(format!("events of Job {job} not readable: {e}")),
                        }
                    }
                }
                Err(e) => notes.push(format!("CronJob {name} not readable: {e}")),
            }
        }
        Lookup::Autoscalers => {
            let target = format!("{}/{}", facts.workload.kind, facts.workload.name);
            match cluster.hpas(ns).await {
                Ok(all) => {
                    facts.autoscalers = all.into_iter().filter(|h| h.target == target).collect()
                }
                Err(e) => notes.push(format!(
                    "HorizontalPodAutoscalers in {ns} not readable: {e}"
                )),
            }
            for h in &facts.autoscalers {
                match cluster.events(ns, &h.name).await {
                    Ok(e) => facts.autoscaler_events.extend(e),
                    Err(e) => notes.push(format!("events of HPA {} not readable: {e}", h.name)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use squad_protocols::cluster::{ContainerStatus, Termination};

    use super::*;
    use crate::testing;

    fn status(name: &str, state: &str, restarts: u32, exit: Option<i32>) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            ready: false,
            restart_count: restarts,
            state: state.into(),
            last_termination: exit.map(|code| Termination {
                reason: if code == 0 { "Completed" } else { "Error" }.into(),
                exit_code: code,
                finished_at: testing::now(),
            }),
        }
    }

    /// A pod held back by its second init container (the first completed): that one is read,
    /// whether the alert named the app's container or nothing; a pod past its init containers
    /// is read as chosen.
    #[test]
    fn a_pod_stuck_initializing_is_read_through_the_init_container_that_holds_it() {
        let mut pod = testing::crashing(&[]).pod.unwrap();
        pod.phase = "Pending".into();
        pod.containers = vec![status("api", "waiting: PodInitializing", 0, None)];
        pod.init_containers = vec![
            status("wait-for-db", "terminated: Completed", 0, Some(0)),
            status("migrate", "waiting: CrashLoopBackOff", 6, Some(1)),
        ];
        assert_eq!(focus_container(&pod, "api"), "migrate");
        assert_eq!(pod.container("migrate").unwrap().restart_count, 6);
        pod.containers[0].state = "running".into();
        pod.init_containers[1].state = "terminated: Completed".into();
        assert_eq!(focus_container(&pod, "api"), "api");
    }

    /// The families read an init container as any other: a migration that exits 1 for want of
    /// a variable is a missing configuration, named by the init container.
    #[test]
    fn a_family_concludes_on_the_init_container() {
        let mut f = testing::crashing(&[
            "Traceback (most recent call last):",
            "KeyError: 'MIGRATIONS_DSN'",
        ]);
        let app = f.container.clone();
        let pod = f.pod.as_mut().unwrap();
        let mut init = pod.containers[0].clone();
        init.name = "migrate".into();
        pod.init_containers = vec![init];
        pod.containers[0] = status(&app, "waiting: PodInitializing", 0, None);
        let mut spec = f.info.containers[0].clone();
        spec.name = "migrate".into();
        f.info.init_containers = vec![spec];
        f.container = focus_container(f.pod.as_ref().unwrap(), &app);
        assert_eq!(f.container, "migrate");
        let d = testing::diagnosis(&f);
        assert_eq!(
            d.root_cause.as_str(),
            "missing_configuration",
            "{}",
            d.summary
        );
        assert!(
            d.summary.starts_with("migrate crash-loops"),
            "{}",
            d.summary
        );
        assert!(d.summary.contains("MIGRATIONS_DSN"), "{}", d.summary);
    }
}
