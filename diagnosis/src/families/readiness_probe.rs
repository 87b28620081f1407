//! Readiness probe misconfigured: the container runs (no restarts) but is never Ready, because
//! its readiness probe asks the app something it does not answer: a path it does not serve
//! (`Readiness probe failed: HTTP probe failed with statuscode: 404`) or a port nothing listens on
//! (`… dial tcp 10.244.1.12:8081: connect: connection refused`). The kubelet says so in its
//! `Unhealthy` events; the pod shows `0/1 Running`; a rolling update to it stalls (the new pods
//! never become available) while the previous ReplicaSet keeps serving, and
//! `KubeDeploymentReplicasMismatch` fires. Most often the last deploy changed the probe: the fix
//! undoes exactly that change (`crate::undo`), the probe the previous revision ran with, naming
//! the commit. When the deploy did not change the probe, the app moved under it: a new version
//! that serves its readiness endpoint under another path gets the probe's `path` pointed at the
//! one health endpoint its request metrics show it answering (`served_path`, which says where
//! served paths come from and the rule's limits); without exactly one, the app's owners decide.
//! A probe never goes, nor is it weakened: when the deploy added it, the crew escalates. The
//! proof is every replica Ready, the rollout complete.

mod served_path;

use squad_protocols::cluster::ProbeSpec;
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::{
    Detection, Facts, Family, FollowupContext, IssueDraft, Readings, Remedy, RemedyInput,
    RepoNeeds, Runbook, family_signals,
};

pub use served_path::ServedRoute;

/// The container whose probe fails, and what the app answers, kept on the diagnosis for the
/// remedy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeSignals {
    pub container: String,
    /// The path the readiness probe asks, when the app answers it with 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_found: Option<String>,
    /// The health-like routes the app's request metrics show answered in the last hour.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub served: Vec<ServedRoute>,
}

/// The container's `probe` (`readinessProbe`, `livenessProbe`) with its one `field:` line's
/// value rewritten by `write` (given the value as written, its trailing comment left out;
/// `None`: no edit), the comment and every other line kept; `None` without exactly one such line.
pub(crate) fn probe_line_edit(
    input: &RemedyInput<'_>,
    (container, probe, field): (&str, &str, &str),
    write: impl FnOnce(&str) -> Option<String>,
) -> Option<crate::Edit> {
    let target = squad_gitops::ContainerTarget {
        kind: &input.workload.kind,
        name: &input.workload.name,
        container,
    };
    let lines =
        squad_gitops::editor::container_key_lines(&input.repo.text, &target, probe).ok()??;
    let prefix = format!("{field}:");
    let at: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(&prefix))
        .map(|(i, _)| i)
        .collect();
    let [i] = at[..] else {
        return None;
    };
    let line = &lines[i];
    let indent = &line[..line.len() - line.trim_start().len()];
    let written = line.trim_start()[prefix.len()..].trim_start();
    let (value, comment) = written
        .find(" #")
        .map_or((written, ""), |c| (&written[..c], &written[c..]));
    let value = write(value.trim_end())?;
    let mut out = lines.clone();
    out[i] = format!("{indent}{field}: {value}{comment}");
    Some(crate::Edit::SetContainerKey {
        path: input.repo.path.clone(),
        kind: input.workload.kind.clone(),
        workload: input.workload.name.clone(),
        container: container.to_owned(),
        key: probe.to_owned(),
        lines: Some(out),
    })
}

/// The remedy of a probe the last deploy broke: that deploy's change of `key` undone, never a
/// probe removed; `unchanged` when the deploy did not change it.
pub(crate) fn undo_probe(
    d: &Diagnosis,
    input: &RemedyInput<'_>,
    (key, what): (&str, &str),
    unchanged: impl FnOnce() -> Remedy,
) -> Remedy {
    let s: Option<ProbeSignals> = family_signals(d);
    let container = s.as_ref().map(|s| s.container.as_str());
    match crate::undo::find(input.repo, input.workload, container, &[key]) {
        Some(undo) if undo.keys.iter().all(|(_, lines)| lines.is_some()) => {
            Remedy::Change(undo.change(
                input.workload,
                &format!("The {what} fails ({})", d.summary),
                &format!("the deploy changed the {what}"),
            ))
        }
        Some(undo) => Remedy::Escalate {
            reason: format!(
                "the last deploy (commit {}) added the {what}: removing a probe is not a fix; a human points it at a port the container listens on and a path the app serves ({})",
                &undo.deploy.commit[..undo.deploy.commit.len().min(8)],
                d.summary
            ),
        },
        None => unchanged(),
    }
}

pub struct ReadinessProbe;

pub const ROOT_CAUSE: &str = "readiness_probe_failing";

const FAILED: &str = "Readiness probe failed: ";

/// The last rollout's change of the container's readiness probe: (revision, ago, before).
fn probe_change(facts: &Facts) -> Option<(u32, String, Option<ProbeSpec>)> {
    let c = crate::readings::last_rollout_change(facts, |r| {
        crate::readings::container_in(r, facts).map(|c| c.readiness_probe.clone())
    })?;
    Some((c.revision, c.ago, c.before))
}

impl Family for ReadinessProbe {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("NotReady")
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let status = facts.status()?;
        if status.ready || status.state != "running" || status.last_termination.is_some() {
            return None;
        }
        let event = facts
            .events
            .iter()
            .filter(|e| e.reason == "Unhealthy" && e.message.starts_with(FAILED))
            .max_by_key(|e| e.last_seen)?;
        let failure = &event.message[FAILED.len()..];
        // A 5xx is the app answering that it is not ready (starting, or a dependency down): the
        // probe asks the right thing.
        if failure
            .rsplit_once("statuscode: ")
            .and_then(|(_, code)| code.trim().parse::<u16>().ok())
            .is_some_and(|code| code >= 500)
        {
            return None;
        }
        let spec = facts.info.container(&facts.container);
        let probe = spec.and_then(|c| c.readiness_probe.as_ref());
        let target = probe.map_or("its readiness probe".to_owned(), |p| {
            format!("its readiness probe ({})", p.target())
        });
        let ports: Vec<String> = spec
            .map(|c| {
                c.ports
                    .iter()
                    .map(|p| {
                        if p.name.is_empty() {
                            p.port.to_string()
                        } else {
                            format!("{} ({})", p.port, p.name)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let cause = if failure.contains("statuscode: 404") {
            format!(
                "the app answers {} with 404",
                probe.map_or("the probed path", |p| p.path.as_str())
            )
        } else if failure.contains("connection refused") {
            format!(
                "nothing listens on port {}{}",
                probe.map_or("?", |p| p.port.as_str()),
                if ports.is_empty() {
                    String::new()
                } else {
                    format!(" (the container declares {})", ports.join(", "))
                }
            )
        } else if failure.contains("deadline exceeded") || failure.contains("timeout") {
            "the app answers slower than the probe's timeout".to_owned()
        } else {
            failure.to_owned()
        };
        let mut d = Detection::new(String::new(), 0.85, &[]);
        d.evidence.push(Evidence {
            source: "kubelet events".into(),
            observation: format!(
                "Unhealthy: {} ({} times since {})",
                event.message,
                event.count,
                event.first_seen.to_rfc3339()
            ),
        });
        let not_found = probe
            .filter(|p| p.kind == "httpGet" && failure.contains("statuscode: 404"))
            .map(|p| p.path.clone());
        let served = served_path::served_routes(facts, spec);
        if !served.is_empty() {
            d.evidence.push(Evidence {
                source: "metrics".into(),
                observation: format!(
                    "the app answers these health-like routes (http_requests_total by route, the last hour): {}",
                    served_path::describe(&served)
                ),
            });
        }
        let changed = probe_change(facts);
        let signals = ProbeSignals {
            container: facts.container.clone(),
            not_found,
            served,
        };
        if let Some(to) = served_path::only_candidate(&signals).filter(|_| changed.is_none()) {
            d.recommendations.push(format!(
                "the last deploy did not change the probe: point its path at {to}, the health endpoint the app answers; change nothing else"
            ));
        }
        let rollout = match changed {
            Some((revision, ago, before)) => {
                d.confidence = 0.95;
                let was = before
                    .as_ref()
                    .map_or("no readiness probe".to_owned(), ProbeSpec::target);
                d.evidence.push(Evidence {
                    source: "rollout history".into(),
                    observation: format!(
                        "revision {revision} ({ago}) changed the readiness probe of {} from {was} to {}",
                        facts.container,
                        probe.map_or("none".to_owned(), ProbeSpec::target)
                    ),
                });
                d.recommendations.push(format!(
                    "restore the readiness probe of the revision before the last deploy ({was})"
                ));
                format!("; the last rollout ({ago}) changed it from {was}")
            }
            None => String::new(),
        };
        d.recommendations.push(
            "point the probe at the port the app listens on and a path it serves (its health endpoint); keep the probe, do not delete it"
                .into(),
        );
        d.summary = format!(
            "{} runs but is never ready: {target} fails, {cause}{rollout}",
            facts.container
        );
        d.signals = serde_json::to_value(signals).ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the readiness probe's port and path against the container's ports and the app's endpoints",
            ),
            (
                Member::Worf,
                "whether the probed endpoint exposes more than health",
            ),
            (
                Member::Data,
                "which health endpoints the app serves, and on which port",
            ),
        ]
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds {
            manifest: true,
            history: true,
        }
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        undo_probe(d, input, ("readinessProbe", "readiness probe"), || {
            served_path::remedy(d, input)
        })
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "readiness-probe-failing".into(),
            meaning: "The container runs but its readiness probe fails, so the pod is never Ready (`0/1 Running`), receives no Service traffic, and a rolling update to it never completes while the old ReplicaSet keeps serving. Usually the probe asks for a path the app does not serve (404) or a port nothing listens on (connection refused).".into(),
            checks: "1. `kubectl describe pod <pod> -n <ns>` — Events: `Unhealthy … Readiness probe failed: …`, and the probe line (`Readiness: http-get http://:8080/healthz …`).\n2. The container's ports: `kubectl get pod <pod> -n <ns> -o jsonpath='{.spec.containers[*].ports}'`.\n3. What the app serves: `kubectl port-forward pod/<pod> 8080` then `curl -i localhost:8080/<path>`.\n4. The GitOps diff of the last deploy: did it change the probe's port or path?".into(),
            fixes: "- **Wrong path**: use the app's health endpoint, through a PR.\n- **Wrong port**: the port the app listens on (a named port keeps the probe and the container in step).\n- **Slow answers**: a timeout above the endpoint's latency, not a deleted probe.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Check {workload}'s probes against the app's served health endpoints in CI (start the image, curl the probe)."
            ),
            "Refer to probe ports by name, so a port change moves the probe with it.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Test {}'s readiness probe against the image before a deploy merges",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) the new pods ran but never became ready: the readiness probe asked for something the app does not answer.\n\n\
                 1. In CI, start the image and request the probe's port and path (`curl -fsS localhost:<port><path>`); fail on anything but 2xx/3xx.\n\
                 2. Keep the health endpoints in one place in the app, and name the probe's port.\n\
                 3. Reproduce: `kubectl describe pod -n {} {}` (Events).",
                cx.incident, cx.issue, cx.workload.namespace, cx.pod
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::cluster::{ClusterEvent, ContainerPort};

    use super::*;
    use crate::testing;

    fn probe(port: &str, path: &str) -> ProbeSpec {
        ProbeSpec {
            kind: "httpGet".into(),
            port: port.into(),
            path: path.into(),
            initial_delay_seconds: 0,
            period_seconds: 10,
            timeout_seconds: 1,
            failure_threshold: 3,
        }
    }

    fn unready(message: &str, now: ProbeSpec) -> Facts {
        let mut f = testing::facts("Completed", 0, |_| 80.0, |_| 10.0);
        let p = f.pod.as_mut().unwrap();
        p.containers[0].state = "running".into();
        p.containers[0].ready = false;
        p.containers[0].restart_count = 0;
        p.containers[0].last_termination = None;
        let ports = vec![ContainerPort {
            port: 8080,
            name: "http".into(),
        }];
        f.info.containers[0].ports = ports.clone();
        f.info.containers[0].readiness_probe = Some(now.clone());
        let last = f.history.last_mut().unwrap();
        last.containers[0].ports = ports.clone();
        last.containers[0].readiness_probe = Some(now);
        f.history[0].containers[0].ports = ports;
        f.history[0].containers[0].readiness_probe = Some(probe("http", "/healthz"));
        f.events = vec![ClusterEvent {
            kind: "Warning".into(),
            reason: "Unhealthy".into(),
            message: format!("Readiness probe failed: {message}"),
            count: 180,
            first_seen: testing::now() - chrono::Duration::minutes(30),
            last_seen: testing::now(),
            object: "Pod/cart-5d8f7-abcde".into(),
        }];
        f
    }

    #[test]
    fn a_probe_path_the_app_does_not_serve() {
        let f = unready(
            "HTTP probe failed with statuscode: 404",
            probe("http", "/ready"),
        );
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "api runs but is never ready: its readiness probe (http-get :http/ready) fails, the app answers /ready with 404; the last rollout (30 h ago) changed it from http-get :http/healthz"
        );
        assert_eq!(d.confidence, 0.95);
    }

    #[test]
    fn a_port_nothing_listens_on_names_the_declared_ports() {
        let f = unready(
            "Get \"http://10.244.1.9:9090/healthz\": dial tcp 10.244.1.9:9090: connect: connection refused",
            probe("9090", "/healthz"),
        );
        let d = testing::diagnosis(&f);
        assert!(
            d.summary
                .contains("nothing listens on port 9090 (the container declares 8080 (http))"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn a_crashing_or_ready_container_is_not_a_readiness_problem() {
        let f = testing::crashing(&["KeyError: 'X'"]);
        assert!(ReadinessProbe.detect(&f, &Readings::of(&f)).is_none());
        let mut f = unready(
            "HTTP probe failed with statuscode: 404",
            probe("http", "/ready"),
        );
        f.pod.as_mut().unwrap().containers[0].ready = true;
        assert!(ReadinessProbe.detect(&f, &Readings::of(&f)).is_none());
    }
}

#[cfg(test)]
mod remedy_tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::{DiagnosisSource, RootCause};
    use squad_runtime::ports::FileVersion;

    use super::*;
    use crate::{ClusterView, RepoView, testing};

    const BEFORE: &str = "kind: Deployment\nmetadata:\n  name: cart\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: r/cart:3.1\n          readinessProbe:\n            httpGet:\n              path: /healthz # the app's health endpoint\n              port: http\n";

    fn repo(now: &str) -> RepoView {
        let version = |commit: &str, content: &str| FileVersion {
            commit: commit.into(),
            at: testing::now(),
            message: format!("cart: deploy {commit}"),
            content: content.into(),
        };
        RepoView {
            path: "cart.yaml".into(),
            text: now.into(),
            history: vec![version("22222222", now), version("11111111", BEFORE)],
            layers: Vec::new(),
            objects: Vec::new(),
        }
    }

    fn remedy(r: &RepoView) -> Remedy {
        // A diagnosis from elsewhere: no signals, the deploy points at the container.
        let d = Diagnosis::new(
            DiagnosisSource::Native,
            RootCause::from_static(ROOT_CAUSE),
            "api runs but is never ready",
        );
        let (settings, cluster, w) = (
            testing::settings(),
            ClusterView::default(),
            testing::workload(),
        );
        ReadinessProbe.remedy(&d, &testing::input(&settings, &w, r, &cluster))
    }

    #[test]
    fn the_probe_the_deploy_changed_goes_back_and_the_image_it_shipped_stays() {
        let now = BEFORE
            .replace("r/cart:3.1", "r/cart:3.2")
            .replace("/healthz # the app's health endpoint", "/ready");
        let r = repo(&now);
        let Remedy::Change(c) = remedy(&r) else {
            panic!("no change");
        };
        assert_eq!(
            c.title,
            "fix(infra): restore readinessProbe of cart from before 22222222"
        );
        let files = std::collections::BTreeMap::from([(r.path.clone(), r.text.clone())]);
        let out = squad_gitops::apply(&c.edits, &files).unwrap();
        assert_eq!(out[0].1, BEFORE.replace("r/cart:3.1", "r/cart:3.2"));
    }

    #[test]
    fn a_probe_the_deploy_added_is_never_removed() {
        let now = BEFORE.replace("r/cart:3.1", "r/cart:3.2");
        let before_without = BEFORE.split("          readinessProbe:").next().unwrap();
        let mut r = repo(&now);
        r.history[1].content = before_without.into();
        let got = remedy(&r);
        assert!(
            matches!(&got, Remedy::Escalate { reason } if reason.contains("added the readiness probe: removing a probe is not a fix")),
            "{got:?}"
        );
    }
}
