//! The simulated kubelet's prober: a container's readiness probe run against the app the
//! scenario describes (the port it listens on, the paths it answers), with the kubelet's
//! messages for a failure (`HTTP probe failed with statuscode: 404`, `dial tcp …: connect:
//! connection refused`).
//!
//! A probe that fails on the app as declared fails every time (the app never answers there),
//! so a rollout whose pods fail it never becomes available. Stated simplification: the first
//! seconds after a start, before the app listens, are not modelled (probes pass from the start
//! when they pass at all); exec and gRPC probes pass.

use squad_protocols::cluster::{ContainerSpec, ProbeSpec};

use crate::scenario::AppSpec;

/// Why a probe fails, whatever the pod's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// Nothing listens on the port.
    Refused { port: u16, path: Option<String> },
    /// The app answers the path with this status.
    Status(u16),
    /// The probe names a port the container does not declare.
    UnknownPort(String),
    /// The app answers slower than the probe's timeout.
    Timeout { port: u16, path: Option<String> },
}

impl ProbeFailure {
    /// The kubelet's words for it, on a pod at `ip`.
    pub fn message(&self, ip: &str) -> String {
        match self {
            ProbeFailure::Refused {
                port,
                path: Some(path),
            } => format!(
                "Get \"http://{ip}:{port}{path}\": dial tcp {ip}:{port}: connect: connection refused"
            ),
            ProbeFailure::Refused { port, path: None } => {
                format!("dial tcp {ip}:{port}: connect: connection refused")
            }
            ProbeFailure::Status(code) => format!("HTTP probe failed with statuscode: {code}"),
            ProbeFailure::UnknownPort(name) => format!("unable to find port {name:?}"),
            ProbeFailure::Timeout {
                port,
                path: Some(path),
            } => format!(
                "Get \"http://{ip}:{port}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ),
            ProbeFailure::Timeout { port, path: None } => {
                format!("dial tcp {ip}:{port}: i/o timeout")
            }
        }
    }
}

/// Whether the app listens on `port`: the scenario's port, else any the container declares
/// (any at all when it declares none).
pub fn listens(app: &AppSpec, c: &ContainerSpec, port: u16) -> bool {
    match app.port {
        Some(p) => p == port,
        None => c.ports.is_empty() || c.ports.iter().any(|p| p.port == port),
    }
}

/// How the probe fares against the app, if it fails.
pub fn failure(app: &AppSpec, c: &ContainerSpec, probe: &ProbeSpec) -> Option<ProbeFailure> {
    if !matches!(probe.kind.as_str(), "httpGet" | "tcpSocket") {
        return None;
    }
    let Some(port) = probe.port_number(&c.ports) else {
        return Some(ProbeFailure::UnknownPort(probe.port.clone()));
    };
    let http = probe.kind == "httpGet";
    if !listens(app, c, port) {
        return Some(ProbeFailure::Refused {
            port,
            path: http.then(|| probe.path.clone()),
        });
    }
    (http && !app.serves(&probe.path)).then_some(ProbeFailure::Status(404))
}

/// How the probe fares when the app takes `latency_ms` to answer: its static failure, else a
/// timeout when the answer comes too late.
pub fn failure_at(
    app: &AppSpec,
    c: &ContainerSpec,
    probe: &ProbeSpec,
    latency_ms: f64,
) -> Option<ProbeFailure> {
    if let Some(f) = failure(app, c, probe) {
        return Some(f);
    }
    let port = probe.port_number(&c.ports)?;
    (matches!(probe.kind.as_str(), "httpGet" | "tcpSocket")
        && latency_ms >= f64::from(probe.timeout_seconds.max(1)) * 1000.0)
        .then(|| ProbeFailure::Timeout {
            port,
            path: (probe.kind == "httpGet").then(|| probe.path.clone()),
        })
}

/// How long after a start the container's readiness probe first passes, in seconds: the first
/// probe (`initialDelaySeconds`, then every `periodSeconds`) at or after the app's start-up
/// time. 0 when the app starts at once, or without an HTTP readiness probe (the kubelet marks
/// a container without one ready as it starts; a TCP probe finds the port open).
pub fn ready_after(app: &AppSpec, c: &ContainerSpec) -> i64 {
    let startup = app.startup_seconds.ceil() as i64;
    match c.readiness_probe.as_ref() {
        Some(p) if startup > 0 && p.kind == "httpGet" => {
            let initial = i64::from(p.initial_delay_seconds);
            let period = i64::from(p.period_seconds.max(1));
            let wait = (startup - initial).max(0);
            initial + (wait + period - 1) / period * period
        }
        _ => 0,
    }
}

/// The container's readiness probe's failure against the app, if any.
pub fn readiness(app: &AppSpec, c: &ContainerSpec) -> Option<ProbeFailure> {
    failure(app, c, c.readiness_probe.as_ref()?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use squad_protocols::cluster::ContainerPort;

    fn app() -> AppSpec {
        AppSpec {
            language: "go".into(),
            handler: "main.go".into(),
            route: "/orders".into(),
            port: Some(8080),
            paths: Some(vec!["/healthz".into(), "/livez".into()]),
            health_checks: Vec::new(),
            executables: None,
            run_seconds: 0.0,
            startup_seconds: 0.0,
            latency_ms: 0.0,
            latency_ms_per_rps: 0.0,
            cpu_millicores: 0.0,
            cpu_millicores_per_rps: 0.0,
            data_mib: 0.0,
            writes_mib_per_hour: 0.0,
            writes_kib_per_request: 0.0,
            disk_full_log: None,
            api_calls: Vec::new(),
            forbidden_log: None,
            flags: None,
            bad_flag_log: None,
            bad_flag_exit_code: None,
            dependencies: Vec::new(),
            connect_timeout_seconds: 10,
            dependency_log: None,
            versions: Default::default(),
        }
    }

    pub(super) fn container(port: &str, path: &str) -> ContainerSpec {
        let mut c: ContainerSpec = serde_json::from_value(serde_json::json!({
            "name": "api", "image": "i", "limits": {}, "requests": {}, "env": [],
            "run_as_non_root": null, "privileged": null, "allow_privilege_escalation": null,
            "read_only_root_filesystem": null, "has_readiness_probe": true,
            "has_liveness_probe": false,
        }))
        .unwrap();
        c.ports = vec![
            ContainerPort {
                port: 8080,
                name: "http".into(),
            },
            ContainerPort {
                port: 9090,
                name: "metrics".into(),
            },
        ];
        c.readiness_probe = Some(ProbeSpec {
            kind: "httpGet".into(),
            port: port.into(),
            path: path.into(),
            initial_delay_seconds: 0,
            period_seconds: 10,
            timeout_seconds: 1,
            failure_threshold: 3,
        });
        c
    }

    #[test]
    fn a_probe_on_a_served_path_and_the_listening_port_passes_by_number_or_name() {
        assert_eq!(readiness(&app(), &container("8080", "/healthz")), None);
        assert_eq!(readiness(&app(), &container("http", "/livez")), None);
        assert_eq!(readiness(&app(), &container("http", "/orders?x=1")), None);
    }

    #[test]
    fn an_app_whose_port_and_paths_are_not_modelled_answers_on_every_declared_port() {
        let mut a = app();
        a.port = None;
        a.paths = None;
        assert_eq!(readiness(&a, &container("metrics", "/anything")), None);
        assert_eq!(
            readiness(&a, &container("8081", "/healthz")),
            Some(ProbeFailure::Refused {
                port: 8081,
                path: Some("/healthz".into())
            })
        );
    }

    #[test]
    fn an_answer_slower_than_the_timeout_is_a_deadline_exceeded() {
        let c = container("http", "/healthz");
        let probe = c.readiness_probe.clone().unwrap();
        assert_eq!(failure_at(&app(), &c, &probe, 999.0), None);
        let f = failure_at(&app(), &c, &probe, 1000.0).unwrap();
        assert_eq!(
            f.message("10.244.2.30"),
            "Get \"http://10.244.2.30:8080/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        );
    }

    #[test]
    fn a_wrong_path_is_a_404_and_a_wrong_port_is_refused() {
        let f = readiness(&app(), &container("8080", "/ready")).unwrap();
        assert_eq!(
            f.message("10.244.1.7"),
            "HTTP probe failed with statuscode: 404"
        );
        let f = readiness(&app(), &container("metrics", "/healthz")).unwrap();
        assert_eq!(
            f.message("10.244.1.7"),
            "Get \"http://10.244.1.7:9090/healthz\": dial tcp 10.244.1.7:9090: connect: connection refused"
        );
    }
}

#[cfg(test)]
mod startup {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::time::Duration;

    use squad_runtime::Clock;

    use super::*;
    use crate::{Scenario, SimCluster, seed_gitops_repo};

    #[test]
    fn the_first_probe_after_the_start_up_passes() {
        let mut app = Scenario::embedded("rollout-stuck").unwrap().app;
        let mut c = super::tests::container("8080", "/ready");
        c.readiness_probe.as_mut().unwrap().initial_delay_seconds = 20;
        // 2700 s: the probe at 20 + 268 × 10 s is the first at or after it; 2705 s waits for
        // the next.
        assert_eq!(ready_after(&app, &c), 2700);
        app.startup_seconds = 2705.0;
        assert_eq!(ready_after(&app, &c), 2710);
        app.startup_seconds = 5.0;
        assert_eq!(ready_after(&app, &c), 20);
        app.startup_seconds = 0.0;
        assert_eq!(ready_after(&app, &c), 0);
        app.startup_seconds = 600.0;
        c.readiness_probe.as_mut().unwrap().kind = "tcpSocket".into();
        assert_eq!(ready_after(&app, &c), 0);
    }

    /// The stuck rollout goes through once the new pods have started: every replica on the
    /// new ReplicaSet, ready, and the Deployment progressing again.
    #[tokio::test(start_paused = true)]
    async fn a_slow_start_holds_the_rollout_until_the_pods_are_ready() {
        let scenario = Arc::new(Scenario::embedded("rollout-stuck").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let git = seed_gitops_repo(&scenario, &dir.path().join("gitops")).unwrap();
        let clock = Clock::starting_at(scenario.now);
        let sim = SimCluster::new(scenario.clone(), git, clock.clone());
        let w = scenario.workload_ref();
        let ready = |sim: &SimCluster| {
            let pods = sim.pods_of(&w).unwrap();
            let new: Vec<_> = pods
                .iter()
                .filter(|p| p.name.starts_with("search-api-7c6d9b8f45-"))
                .collect();
            (
                new.iter().filter(|p| p.containers[0].ready).count(),
                new.len(),
                pods.len(),
            )
        };
        let progressing = |sim: &SimCluster| {
            let c = sim.workload(&w).unwrap().conditions;
            c.into_iter()
                .find(|c| c.kind == "Progressing")
                .map(|c| (c.status, c.reason))
                .unwrap()
        };
        assert_eq!(ready(&sim), (0, 2, 5));
        assert_eq!(
            progressing(&sim),
            ("False".into(), "ProgressDeadlineExceeded".into())
        );
        clock.sleep(Duration::from_secs(15 * 60)).await;
        assert_eq!(ready(&sim), (4, 4, 4));
        assert_eq!(
            progressing(&sim),
            ("True".into(), "NewReplicaSetAvailable".into())
        );
    }
}
