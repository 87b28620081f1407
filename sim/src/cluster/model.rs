//! The model read directly in squad's own terms (the `Cluster` port's questions, answered
//! from the desired state and the world): the oracle the adapter's reading over HTTP is
//! compared against.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use squad_gitops::objects;
use squad_protocols::WorkloadRef;
use squad_protocols::cluster::{
    ClusterEvent, HpaInfo, ImageVulnerability, NetworkPolicyInfo, PodInfo, RbacRule, Revision,
    Sample, ServiceInfo, WorkloadInfo,
};
use squad_runtime::ports::{PortError, PortResult};

use super::{Life, SimCluster, secs};
use crate::Scenario;

/// The model, read directly in squad's own terms. The crew never calls these: it reads the
/// simulated cluster through the Kubernetes adapter over HTTP ([`super::kube_api`]); they are the
/// oracle that tests compare the adapter's reading against.
impl SimCluster {
    pub fn pod(&self, namespace: &str, name: &str) -> PortResult<PodInfo> {
        let (d, now) = self.current()?;
        let r = self.serving(&d, now).into_iter().find(|(r, n)| {
            namespace == self.scenario.workload.namespace
                && r.pods.iter().take(*n).any(|p| p == name)
        });
        if let Some(e) = d
            .evictions
            .by(now)
            .find(|e| e.slot.is_some() && e.pod == name && e.namespace == namespace)
            && let Some(r) = d
                .rollouts
                .iter()
                .find(|r| Some(r.revision) == e.slot.map(|s| s.0))
        {
            return Ok(self.evicted_pod_info(r, e));
        }
        match r {
            Some((r, _)) => Ok(self.pod_info(&d, r, name, now)),
            None => Err(PortError::not_found(format!("pod {namespace}/{name}"))),
        }
    }

    pub fn pods_of(&self, workload: &WorkloadRef) -> PortResult<Vec<PodInfo>> {
        self.check_workload(workload)?;
        let (d, now) = self.current()?;
        let mut pods: Vec<PodInfo> = self
            .serving(&d, now)
            .into_iter()
            .flat_map(|(r, n)| {
                r.pods
                    .iter()
                    .take(n)
                    .map(|p| self.pod_info(&d, r, p, now))
                    .collect::<Vec<_>>()
            })
            .collect();
        // The pods the kubelets evicted stay, Failed, until someone deletes them.
        for e in d.evictions.by(now) {
            if let Some(r) = d
                .rollouts
                .iter()
                .find(|r| Some(r.revision) == e.slot.map(|s| s.0))
            {
                pods.push(self.evicted_pod_info(r, e));
            }
        }
        Ok(pods)
    }

    /// Every pod bound to `node`, as the world serves them.
    pub fn pods_on_node(&self, node: &str) -> PortResult<Vec<squad_protocols::cluster::NodePod>> {
        let world = self.world()?;
        // In the API server's order: by namespace, then name.
        let mut pods: Vec<_> = world
            .of_kind("Pod", None)
            .filter(|p| p["spec"]["nodeName"] == node)
            .map(objects::node_pod)
            .collect();
        pods.sort_by(|a, b| (&a.pod.namespace, &a.pod.name).cmp(&(&b.pod.namespace, &b.pod.name)));
        Ok(pods)
    }

    /// A CronJob and the Jobs it owns, as the world serves them.
    pub fn cron_job(
        &self,
        namespace: &str,
        name: &str,
    ) -> PortResult<squad_protocols::cluster::CronJobInfo> {
        let world = self.world()?;
        let cron = world
            .of_kind("CronJob", Some(namespace))
            .find(|o| objects::name(o) == name)
            .ok_or_else(|| PortError::not_found(format!("CronJob {namespace}/{name}")))?;
        let jobs: Vec<Value> = world.of_kind("Job", Some(namespace)).cloned().collect();
        Ok(objects::cron_job_info(cron, &jobs))
    }

    pub fn owner_of(&self, namespace: &str, pod: &str) -> PortResult<WorkloadRef> {
        let d = self.desired()?;
        if namespace == self.scenario.workload.namespace
            && (d.rollouts.iter().any(|r| r.pods.iter().any(|p| p == pod))
                || d.evictions
                    .evicted
                    .iter()
                    .any(|e| e.slot.is_some() && e.pod == pod))
        {
            Ok(self.workload_ref())
        } else {
            Err(PortError::not_found(format!(
                "owner of pod {namespace}/{pod}"
            )))
        }
    }

    pub fn workload(&self, workload: &WorkloadRef) -> PortResult<WorkloadInfo> {
        self.check_workload(workload)?;
        let (d, now) = self.current()?;
        let mut info = Self::rollout_at(&d, now)
            .map(|r| r.workload.clone())
            .ok_or_else(|| PortError::not_found(format!("{workload}")))?;
        // Its status conditions, as the world serves the object.
        let world = self.world()?;
        if let Some(served) = world.objects.iter().find(|o| {
            objects::kind(o) == workload.kind
                && objects::name(o) == workload.name
                && o["metadata"]["namespace"] == workload.namespace.as_str()
        }) {
            let live = objects::workload_info(served, &workload.namespace);
            if self.is_batch() {
                // The apiserver labels a Job's template with its uid and name.
                info = live;
            } else {
                // Its replicas as the sync or the HPA last wrote them.
                info.replicas = live.replicas;
                info.conditions = live.conditions;
            }
        }
        Ok(info)
    }

    pub fn rollout_history(&self, workload: &WorkloadRef) -> PortResult<Vec<Revision>> {
        self.check_workload(workload)?;
        // A Job keeps no revisions: each change replaced it (nor does a CronJob).
        if self.is_batch() {
            return Ok(Vec::new());
        }
        let (d, now) = self.current()?;
        Ok(d.rollouts
            .iter()
            .filter(|r| r.at <= now)
            .map(|r| Revision {
                revision: r.revision,
                at: r.at,
                change_cause: r.message.clone(),
                name: Self::rs_name(r),
                containers: r.workload.containers.clone(),
                init_containers: r.workload.init_containers.clone(),
                pod_labels: r.workload.pod_labels.clone(),
                placement: r.workload.placement.clone(),
                claims: r.workload.claims.clone(),
                service_account: r.workload.service_account.clone(),
            })
            .collect())
    }

    /// Events about `object` (a Pod or Node name) in `namespace` (Node events live in `default`).
    pub fn events(&self, namespace: &str, object: &str) -> PortResult<Vec<ClusterEvent>> {
        let (d, now) = self.current()?;
        let ns = &self.scenario.workload.namespace;
        let mut out = Vec::new();
        if namespace == ns.as_str() {
            out.extend(
                self.claim_events(&d, now)
                    .into_iter()
                    .filter(|e| e.object.split_once('/').is_some_and(|x| x.1 == object)),
            );
            out.extend(
                self.hpa_events(&d, now)
                    .into_iter()
                    .filter(|e| e.object.split_once('/').is_some_and(|x| x.1 == object)),
            );
            for r in d.rollouts.iter().filter(|r| r.at <= now) {
                if Self::rs_name(r) == object {
                    out.extend(self.replica_set_events(r, now));
                }
            }
        }
        if self.is_batch() {
            // The Job, or the Jobs a CronJob has now.
            let jobs: Vec<&super::Rollout> = if self.is_cron_job() {
                if namespace == ns.as_str() && object == self.scenario.workload.name {
                    out.extend(self.cron_events(&d, now));
                }
                d.cron.existing(now).map(|c| &c.rollout).collect()
            } else {
                Self::rollout_at(&d, now).into_iter().collect()
            };
            for r in jobs {
                let run = self.job_run(&d, r, now);
                if namespace == ns.as_str() && object == r.workload.name {
                    out.extend(self.job_events(r, &run));
                }
                for a in &run.attempts {
                    if a.pod == object && namespace == ns.as_str() {
                        out.extend(self.job_pod_events(a, &self.job_pod_info(&d, r, a, now)));
                    }
                }
            }
            return Ok(out);
        }
        for e in d.evictions.by(now).filter(|e| e.slot.is_some()) {
            if namespace == e.namespace && object == e.pod {
                out.extend(self.eviction_events(e));
            }
        }
        if namespace == "default" {
            out.extend(self.pressure_events(&d, object, now));
            out.extend(self.node_lifecycle_events(object, now));
        }
        for (r, n) in self.serving(&d, now) {
            for pod in r.pods.iter().take(n) {
                for e in self.pod_events(&d, r, pod, now) {
                    let (kind, name) = e.object.split_once('/').unwrap_or(("", ""));
                    let event_ns = if kind == "Node" {
                        "default"
                    } else {
                        ns.as_str()
                    };
                    if name == object && event_ns == namespace {
                        out.push(e);
                    }
                }
            }
        }
        Ok(out)
    }

    pub fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        tail: usize,
    ) -> PortResult<Vec<String>> {
        let info = self.pod(namespace, pod)?;
        let (d, now) = self.current()?;
        let s = &self.scenario;
        // The app's container, or an init container that has not run (one that completed
        // wrote nothing the world models).
        let is_init = info.init_containers.iter().any(|c| c.name == container);
        if container != s.workload.container && !is_init {
            return Err(PortError::not_found(format!(
                "container {container} in pod {namespace}/{pod}"
            )));
        }
        // A pod with no node has no kubelet to ask: the API server answers with no lines.
        if info.node.is_empty() {
            return Ok(Vec::new());
        }
        let rollout = self
            .serving(&d, now)
            .into_iter()
            .find(|(r, n)| r.pods.iter().take(*n).any(|p| p == pod))
            .map(|(r, _)| r);
        if let Some(b) = rollout.and_then(|r| self.pod_blocker(&d, r, pod, now)) {
            let reason = info
                .container(container)
                .and_then(|c| c.state.strip_prefix("waiting: "))
                .unwrap_or("ContainerCreating");
            // What waits for an init container is waiting to start, whatever stops that one.
            let detail = if reason == super::init_containers::INITIALIZING {
                format!("container \"{container}\" in pod \"{pod}\" is waiting to start: {reason}")
            } else {
                b.logs_refusal(container, pod, reason)
            };
            return Err(PortError::Rejected {
                what: format!("logs of {namespace}/{pod}"),
                detail,
            });
        }
        if is_init {
            return Ok(Vec::new());
        }

        let spec = rollout.and_then(|r| self.container_spec(r));
        // A process that never ran wrote nothing.
        if spec.and_then(|c| self.missing_executable(c)).is_some() {
            return Ok(Vec::new());
        }
        let restarted = info.containers.first().is_some_and(|c| c.restart_count > 0);
        // Why every run of the container ends, in the app's words: the first cause that applies,
        // in the order `life` decides them.
        let first = || s.logs.current.iter().take(1).cloned().collect::<Vec<_>>();
        let then = |line: String| {
            let mut l = first();
            l.push(line);
            l
        };
        let ending: Option<Vec<String>> = if let Some((line, _)) =
            spec.and_then(|c| self.bad_flag_of(c))
        {
            // Args its flag parser rejects: that line is all it writes.
            Some(vec![line])
        } else if let Some(var) = spec.and_then(|c| self.missing_env(c)) {
            let template = spec
                .map_or(&s.load, |c| s.load_for(&c.image))
                .missing_env_log
                .clone()
                .unwrap_or_else(|| "fatal: required environment variable {var} is not set".into());
            Some(then(template.replace("{var}", &var)))
        } else if let Some(error) = rollout.and_then(|r| self.forbidden(&d, r)) {
            Some(then(self.forbidden_line(&error)))
        } else if let Some((dep, how)) = rollout.and_then(|r| self.unreachable(&d, r, now)) {
            // Under the policies in force now, as at its last start a moment ago.
            let ip = self.pod_ip(&d, pod, &info.node);
            // An ephemeral port, stable per pod.
            let port = 32768
                + pod
                    .bytes()
                    .map(u16::from)
                    .fold(0u16, |a, b| a.wrapping_mul(31).wrapping_add(b))
                    % 28000;
            Some(then(self.unreachable_line(dep, &how, &ip, port)))
        } else if let Some(r) = rollout
            && self.disk_full(&d, r, now)
            && let Some(disk) = self.disk_at(&d, r, now)
        {
            Some(then(self.disk_full_line(&disk)))
        } else {
            None
        };
        let lines: Vec<String> = match (ending, previous) {
            (_, true) if !restarted => {
                return Err(PortError::not_found(format!(
                    "previous terminated container \"{container}\" in pod \"{pod}\""
                )));
            }
            (Some(l), _) => l,
            (None, true) => s.logs.previous.clone(),
            (None, false) => s.logs.current.clone(),
        };
        let skip = lines.len().saturating_sub(tail);
        Ok(lines.into_iter().skip(skip).collect())
    }

    pub fn memory_working_set(
        &self,
        workload: &WorkloadRef,
        container: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<Vec<Sample>> {
        self.check_workload(workload)?;
        if container != self.scenario.workload.container {
            return Err(PortError::not_found(format!(
                "container {container} of {workload}"
            )));
        }
        let (d, now) = self.current()?;
        let lives: BTreeMap<u32, Life> = d
            .rollouts
            .iter()
            .map(|r| (r.revision, self.life(&d, r, now)))
            .collect();
        let step = (step.as_secs() as i64).max(1);
        let end = aligned(now, step);
        let mut t = end - secs(window.as_secs() as i64);
        let mut out = Vec::new();
        while t <= end {
            // The per-sample maximum over the pods whose container runs (one that never pulled
            // its image has no working set).
            let running = self.serving(&d, t).into_iter().filter_map(|(r, _)| {
                let life = lives.get(&r.revision)?;
                if life.blocked.is_some() {
                    return None;
                }
                let started = life
                    .starts
                    .iter()
                    .rev()
                    .find(|s| **s <= t)
                    .copied()
                    .unwrap_or(r.at);
                Some(self.working_set(&d, r, t, started))
            });
            if let Some(value) = running.reduce(f64::max) {
                out.push(Sample { at: t, value });
            }
            t += secs(step);
        }
        Ok(out)
    }

    pub fn request_rates(
        &self,
        workload: &WorkloadRef,
        window: Duration,
        step: Duration,
    ) -> PortResult<Vec<(String, Vec<Sample>)>> {
        self.check_workload(workload)?;
        let step = (step.as_secs() as i64).max(1);
        let end = aligned(self.clock.now(), step);
        let mut t = end - secs(window.as_secs() as i64);
        let mut out = Vec::new();
        let mut checked = Vec::new();
        while t <= end {
            checked.push(Sample {
                at: t,
                value: 1.0 / crate::scenario::AppSpec::HEALTH_CHECK_PERIOD_SECONDS,
            });
            out.push(Sample {
                at: t,
                value: self.traffic(t),
            });
            t += secs(step);
        }
        // The uptime check's requests, each path its own route (as the app counts them).
        let mut rates = vec![(self.scenario.app.route.clone(), out)];
        for path in &self.scenario.app.health_checks {
            rates.push((path.clone(), checked.clone()));
        }
        rates.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(rates)
    }

    /// The namespace's HPAs as served (with their controller's status), by name.
    pub fn hpas(&self, namespace: &str) -> PortResult<Vec<HpaInfo>> {
        let world = self.world()?;
        let mut hpas: Vec<HpaInfo> = world
            .of_kind("HorizontalPodAutoscaler", Some(namespace))
            .map(objects::hpa)
            .collect();
        hpas.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(hpas)
    }

    pub fn services(&self, namespace: &str) -> PortResult<Vec<ServiceInfo>> {
        let world = self.world()?;
        let mut services: Vec<&Value> = world.of_kind("Service", Some(namespace)).collect();
        services.sort_by_key(|o| objects::name(o));
        Ok(services
            .into_iter()
            .map(|svc| {
                let ep = world
                    .of_kind("Endpoints", Some(namespace))
                    .find(|e| objects::name(e) == objects::name(svc));
                objects::service_info(svc, ep)
            })
            .collect())
    }

    pub fn workloads(&self, namespace: &str) -> PortResult<Vec<WorkloadInfo>> {
        let world = self.world()?;
        // Each kind in name order, as an apiserver lists it.
        Ok(["Deployment", "StatefulSet", "DaemonSet"]
            .iter()
            .flat_map(|k| {
                let mut of_kind: Vec<&Value> = world.of_kind(k, Some(namespace)).collect();
                of_kind.sort_by_key(|o| objects::name(o));
                of_kind
            })
            .map(|o| objects::workload_info(o, namespace))
            .collect())
    }

    pub fn network_policies(&self, namespace: &str) -> PortResult<Vec<NetworkPolicyInfo>> {
        let d = self.desired()?;
        Ok(d.objects
            .iter()
            .filter(|o| objects::kind(o) == "NetworkPolicy" && in_ns(o, namespace, &self.scenario))
            .map(objects::network_policy)
            .collect())
    }

    pub fn rbac_rules(&self, namespace: &str, service_account: &str) -> PortResult<Vec<RbacRule>> {
        let d = self.desired()?;
        let ns = &self.scenario.workload.namespace;
        // Objects without a namespace in the repo live in the workload's.
        let placed: Vec<Value> = d
            .objects
            .iter()
            .filter(|o| matches!(objects::kind(o), "RoleBinding" | "ClusterRoleBinding"))
            .map(|o| {
                let mut o = o.clone();
                if objects::kind(&o) == "RoleBinding" && o["metadata"]["namespace"].is_null() {
                    o["metadata"]["namespace"] = Value::String(ns.clone());
                }
                o
            })
            .collect();
        Ok(objects::bound_rules(
            &placed,
            |kind, name| {
                d.objects
                    .iter()
                    .find(|o| objects::kind(o) == kind && objects::name(o) == name)
            },
            namespace,
            service_account,
        ))
    }

    pub fn image_vulnerabilities(&self, image: &str) -> PortResult<Vec<ImageVulnerability>> {
        let known = &self.scenario.image;
        let repo = |i: &str| {
            i.rsplit_once(':')
                .map_or(i.to_owned(), |(r, _)| r.to_owned())
        };
        if repo(image) != repo(&known.name) {
            return Ok(Vec::new());
        }
        Ok(known
            .vulnerabilities
            .iter()
            .map(|v| ImageVulnerability {
                id: v.id.clone(),
                package: v.package.clone(),
                installed: v.installed.clone(),
                fixed: v.fixed.clone(),
                severity: v.severity.clone(),
                title: v.title.clone(),
            })
            .collect())
    }

    pub fn secret_keys(&self, namespace: &str) -> PortResult<Vec<(String, Vec<String>)>> {
        if namespace != self.scenario.workload.namespace {
            return Ok(Vec::new());
        }
        Ok(self
            .scenario
            .secrets
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// `t` rounded down to a multiple of `step` seconds: range queries end there (as the
/// Kubernetes adapter asks Prometheus), so series read a moment apart share timestamps.
fn aligned(t: DateTime<Utc>, step: i64) -> DateTime<Utc> {
    let s = t.timestamp();
    DateTime::from_timestamp(s - s.rem_euclid(step.max(1)), 0).unwrap_or(t)
}

fn in_ns(o: &Value, namespace: &str, s: &Scenario) -> bool {
    o["metadata"]["namespace"]
        .as_str()
        .unwrap_or(&s.workload.namespace)
        == namespace
}
