//! Facts, diagnoses and views for the families' unit tests.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use squad_config::Settings;
use squad_protocols::cluster::{
    ContainerSpec, ContainerStatus, EnvVar, PodInfo, Revision, Sample, Termination, WorkloadInfo,
};
use squad_protocols::{Alert, Diagnosis, Quantity, WorkloadRef};

use crate::{ClusterView, Facts, RemedyInput, RepoView, Rules, native};

pub const MIB: f64 = 1024.0 * 1024.0;

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 19, 21, 0).unwrap()
}

pub fn workload() -> WorkloadRef {
    WorkloadRef::deployment("shop", "cart")
}

fn spec(limit: &str, request: &str, env: &[&str]) -> ContainerSpec {
    ContainerSpec {
        name: "api".into(),
        image: "r/cart:3.1".into(),
        limits: BTreeMap::from([("memory".into(), limit.parse::<Quantity>().unwrap())]),
        requests: BTreeMap::from([("memory".into(), request.parse::<Quantity>().unwrap())]),
        env: env
            .iter()
            .map(|n| EnvVar {
                name: (*n).into(),
                source: "value".into(),
                literal: None,
            })
            .collect(),
        run_as_non_root: Some(true),
        privileged: Some(false),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        has_readiness_probe: true,
        has_liveness_probe: true,
        ports: Vec::new(),
        readiness_probe: None,
        liveness_probe: None,
        command: Vec::new(),
        args: Vec::new(),
    }
}

/// 24 h at 5-minute steps, ending now.
pub fn series(f: impl Fn(i64) -> f64) -> Vec<Sample> {
    (0..288)
        .map(|i| Sample {
            at: now() - Duration::minutes(5 * (287 - i)),
            value: f(i),
        })
        .collect()
}

/// A workload whose container `api` last terminated with `reason`/`exit`, with the given memory
/// and traffic over 24 h (MiB and requests per second by sample index).
pub fn facts(
    reason: &str,
    exit: i32,
    memory_mib: impl Fn(i64) -> f64,
    rps: impl Fn(i64) -> f64,
) -> Facts {
    let info = WorkloadInfo {
        init_containers: Vec::new(),
        kind: "Deployment".into(),
        namespace: "shop".into(),
        name: "cart".into(),
        replicas: 2,
        service_account: "cart".into(),
        pod_labels: BTreeMap::from([("app".into(), "cart".into())]),
        containers: vec![spec("600Mi", "300Mi", &["PORT"])],
        pod_run_as_non_root: None,
        placement: Default::default(),
        claims: Vec::new(),
        conditions: Vec::new(),
        pod_security: serde_json::Value::Null,
    };
    let pod = PodInfo {
        init_containers: Vec::new(),
        deleted_at: None,
        namespace: "shop".into(),
        name: "cart-5d8f7-abcde".into(),
        node: String::new(),
        phase: "Running".into(),
        reason: None,
        message: None,
        owner: None,
        created_at: now() - Duration::days(2),
        containers: vec![ContainerStatus {
            name: "api".into(),
            ready: false,
            restart_count: 9,
            state: "waiting: CrashLoopBackOff".into(),
            last_termination: Some(Termination {
                reason: reason.into(),
                exit_code: exit,
                finished_at: now() - Duration::minutes(3),
            }),
        }],
    };
    let history = vec![
        Revision {
            revision: 1,
            at: now() - Duration::days(10),
            change_cause: "first".into(),
            name: "cart-6c9d8".into(),
            containers: vec![spec("600Mi", "300Mi", &["PORT", "REDIS_URL"])],
            init_containers: Vec::new(),
            pod_labels: Default::default(),
            placement: Default::default(),
            claims: Vec::new(),
            service_account: "cart".into(),
        },
        Revision {
            revision: 2,
            at: now() - Duration::hours(30),
            change_cause: "cart 3.1".into(),
            name: "cart-5d8f7".into(),
            containers: vec![spec("600Mi", "300Mi", &["PORT"])],
            init_containers: Vec::new(),
            pod_labels: Default::default(),
            placement: Default::default(),
            claims: Vec::new(),
            service_account: "cart".into(),
        },
    ];
    Facts {
        now: now(),
        alert: Alert::firing("KubePodCrashLooping"),
        workload: workload(),
        info,
        container: "api".into(),
        pod: Some(pod),
        node: None,
        events: Vec::new(),
        memory: series(|i| memory_mib(i) * MIB),
        request_rates: vec![("/cart".into(), series(rps))],
        cpu: Default::default(),
        history,
        rollout_events: Vec::new(),
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
        logs: Vec::new(),
        logs_unreadable: false,
        nodes: Vec::new(),
        pod_nodes: Vec::new(),
        notes: Vec::new(),
    }
}

/// OOM kills under a traffic surge in the last 2 h; memory follows traffic (swinging ±10%
/// before it), and the cgroup holds the working set at the 600Mi limit during the surge (the
/// demand there is 750Mi).
pub fn oom_under_load() -> Facts {
    let rps = |i: i64| {
        if i > 264 {
            400.0
        } else {
            100.0 + 10.0 * (i as f64 / 12.0).sin()
        }
    };
    facts(
        "OOMKilled",
        137,
        move |i| (150.0 + 1.5 * rps(i)).min(600.0),
        rps,
    )
}

/// OOM kills at flat traffic; memory climbs 30 MiB/h and drops at each restart.
pub fn oom_leaking() -> Facts {
    facts(
        "OOMKilled",
        137,
        |i| 300.0 + 30.0 * ((i % 96) as f64 / 12.0),
        |_| 120.0,
    )
}

/// Exit 1 at start-up with these log lines.
pub fn crashing(logs: &[&str]) -> Facts {
    let mut f = facts("Error", 1, |_| 80.0, |_| 0.0);
    f.logs = logs.iter().map(|l| (*l).into()).collect();
    f
}

pub fn diagnosis(facts: &Facts) -> Diagnosis {
    native::diagnose(facts)
}

pub fn settings() -> Settings {
    Settings::default()
}

/// The remedy's inputs over `repo` and `cluster`, with no model decision.
pub fn input<'a>(
    settings: &'a Settings,
    workload: &'a WorkloadRef,
    repo: &'a RepoView,
    cluster: &'a ClusterView,
) -> RemedyInput<'a> {
    RemedyInput {
        workload,
        repo,
        cluster,
        rules: Rules::of(settings),
        decision: None,
    }
}

/// Why `family`'s remedy escalates `d` (with no repository or cluster to work from); panics
/// when it does not escalate.
#[allow(clippy::panic)]
pub fn escalation(family: &dyn crate::Family, d: &Diagnosis) -> String {
    let settings = settings();
    let workload = workload();
    let (repo, cluster) = (RepoView::default(), ClusterView::default());
    match family.remedy(d, &input(&settings, &workload, &repo, &cluster)) {
        crate::Remedy::Escalate { reason } => reason,
        other => panic!("expected an escalation, got {other:?}"),
    }
}

pub fn manifest() -> RepoView {
    RepoView {
        path: "apps/cart/deployment.yaml".into(),
        text: "kind: Deployment\nmetadata:\n  name: cart\n".into(),
        history: Vec::new(),
        layers: Vec::new(),
        objects: Vec::new(),
    }
}

/// A pod the scheduler could not place (`Pending`, no containers) whose `FailedScheduling`
/// event says `message`, `count` times over the last `since_minutes`; its container used
/// `memory_mib` while it ran.
pub fn unscheduled(message: &str, memory_mib: f64, count: u32, since_minutes: i64) -> Facts {
    let mut f = facts("Completed", 0, |_| memory_mib, |_| 10.0);
    if let Some(p) = f.pod.as_mut() {
        p.phase = "Pending".into();
        p.containers.clear();
    }
    f.events = vec![squad_protocols::cluster::ClusterEvent {
        kind: "Warning".into(),
        reason: "FailedScheduling".into(),
        message: message.into(),
        count,
        first_seen: now() - chrono::Duration::minutes(since_minutes),
        last_seen: now(),
        object: "Pod/cart-5d8f7-abcde".into(),
    }];
    f
}
