//! The readiness path the app moved: the last deploy changed the image, not the probe, and the
//! new version answers the probe's path with 404 because it serves its readiness endpoint under
//! another path (`/healthz` → `/readyz`). Nothing to undo, and the obvious fixes are wrong:
//! reverting the release postpones the move, deleting the probe or raising its timeouts hides
//! the 404. The fix is the probe's `path` set to the path the app serves, that line alone.
//!
//! Where the served path comes from, on a real cluster: the app's own request metrics, the
//! `http_requests_total` series by `route` squad already reads for every diagnosis
//! ([`Facts::request_rates`]). A route carries requests only when something asks it and the
//! app's router matched it (a route-labelled middleware gives a 404 no route of its own), so a
//! health-like route with requests in the last hour is one the app answers. Its limit, stated:
//! the new pods are not Ready, so nothing but the kubelet asks them anything; a route in the
//! metrics was answered by the pods that serve (the previous version, through the Service: an
//! uptime check, a gateway's health check). That is why the rule needs exactly one candidate and
//! the rollout's verification is its proof: if the new version does not answer it either, the
//! pods stay unready and the crew says so. The other sources were weighed: the container's
//! declared ports name ports, never paths; the app's source names every route, but it is Data's
//! to read (the app repository, at its default branch rather than the deployed tag) and no
//! remedy reads it; the new pods' start-up logs name their routes only when the framework prints
//! them.
//!
//! The rule: the probe's path answered with 404, and exactly one health-like route (`healthz`,
//! `readyz`, `ready`, `health`, `status`… as a segment) with requests that is not the probe's
//! own path, not another probe's path and not a liveness endpoint (`live`, `livez`: readiness on
//! it would stop checking what readiness checks) → a PR setting `path`. None, or several →
//! the app's owners, told what was seen. The probe is never removed or weakened.

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::ContainerSpec;
use squad_protocols::{Diagnosis, Finding, Severity};

use super::ProbeSignals;
use crate::{Change, Edit, Facts, Remedy, RemedyInput, family_signals};

/// A route's requests count when they come this recently (minutes before the facts' `now`).
const RECENT_MINUTES: i64 = 60;

/// Path segments that name a health endpoint.
const HEALTH_WORDS: &[&str] = &[
    "healthz",
    "health",
    "readyz",
    "ready",
    "readiness",
    "livez",
    "live",
    "liveness",
    "status",
];

/// Path segments that name a liveness endpoint: whether the process lives, not whether it can
/// serve.
const LIVENESS_WORDS: &[&str] = &["livez", "live", "liveness"];

/// A health-like route the app's request metrics show answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServedRoute {
    pub path: String,
    /// Requests per second, the mean over the last hour.
    pub per_second: f64,
    /// The container's probe that asks this path (`readinessProbe`, `livenessProbe`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probed_by: Option<String>,
}

fn segments(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('?')
        .next()
        .unwrap_or(path)
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
}

fn health_like(path: &str) -> bool {
    segments(path).any(|s| HEALTH_WORDS.contains(&s.as_str()))
}

fn liveness_like(path: &str) -> bool {
    segments(path).any(|s| LIVENESS_WORDS.contains(&s.as_str()))
}

/// The health-like routes with requests in the last hour, by path, each with the probe of the
/// container that asks it.
pub(super) fn served_routes(facts: &Facts, spec: Option<&ContainerSpec>) -> Vec<ServedRoute> {
    let since = facts.now - chrono::Duration::minutes(RECENT_MINUTES);
    let probes = spec.map_or(Vec::new(), |c| {
        [
            ("readinessProbe", c.readiness_probe.as_ref()),
            ("livenessProbe", c.liveness_probe.as_ref()),
        ]
        .into_iter()
        .filter_map(|(k, p)| {
            p.filter(|p| p.kind == "httpGet")
                .map(|p| (k, p.path.clone()))
        })
        .collect()
    });
    let mut out: Vec<ServedRoute> = facts
        .request_rates
        .iter()
        .filter(|(route, _)| health_like(route))
        .filter_map(|(route, samples)| {
            let recent: Vec<f64> = samples
                .iter()
                .filter(|s| s.at >= since && s.value.is_finite())
                .map(|s| s.value)
                .collect();
            let mean = recent.iter().sum::<f64>() / recent.len().max(1) as f64;
            (mean > 0.0).then(|| ServedRoute {
                path: route.clone(),
                per_second: mean,
                probed_by: probes
                    .iter()
                    .find(|(_, p)| p == route)
                    .map(|(k, _)| (*k).to_owned()),
            })
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The served routes the readiness probe could ask instead of `not_found`.
fn candidates<'s>(s: &'s ProbeSignals, not_found: &str) -> Vec<&'s ServedRoute> {
    s.served
        .iter()
        .filter(|r| r.path != not_found && r.probed_by.is_none() && !liveness_like(&r.path))
        .collect()
}

/// The routes, as the evidence and the escalation name them.
pub(super) fn describe(served: &[ServedRoute]) -> String {
    served
        .iter()
        .map(|r| {
            let by = r
                .probed_by
                .as_deref()
                .map_or(String::new(), |k| format!(", the {k}'s path"));
            format!("{} ({:.2} requests/s{by})", r.path, r.per_second)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The path the probe asks next, for the detection's recommendation.
pub(super) fn only_candidate(s: &ProbeSignals) -> Option<&str> {
    let not_found = s.not_found.as_deref()?;
    match candidates(s, not_found)[..] {
        [one] => Some(one.path.as_str()),
        _ => None,
    }
}

/// The remedy when the last deploy did not change the readiness probe.
pub(super) fn remedy(d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
    let unchanged = format!(
        "the last deploy of {} did not change the readiness probe: what the app answers changed under it",
        input.repo.path
    );
    let Some(s) = family_signals::<ProbeSignals>(d) else {
        return Remedy::Escalate {
            reason: format!(
                "{unchanged}; a human points the probe at what it serves ({})",
                d.summary
            ),
        };
    };
    let Some(not_found) = s.not_found.as_deref() else {
        return Remedy::Escalate {
            reason: format!(
                "{unchanged}; a human points the probe at the port the app listens on and a path it serves ({})",
                d.summary
            ),
        };
    };
    let seen = if s.served.is_empty() {
        "its request metrics show no health-like route answered in the last hour".to_owned()
    } else {
        format!(
            "its request metrics show these health-like routes answered in the last hour: {}",
            describe(&s.served)
        )
    };
    let path = match candidates(&s, not_found)[..] {
        [one] => one.clone(),
        [] => {
            return Remedy::owned_by(
                "the app's owners",
                d,
                &format!(
                    "say which path the running version answers readiness on: the probe asks {not_found}, answered with 404, and {seen}, none of them a readiness endpoint the probe could ask instead; the probe stays as it is until then (deleting it or raising its timeouts would hide the 404)"
                ),
            );
        }
        _ => {
            return Remedy::owned_by(
                "the app's owners",
                d,
                &format!(
                    "choose the readiness path: the probe asks {not_found}, answered with 404, and {seen}: more than one could be the readiness endpoint; the probe stays as it is until then"
                ),
            );
        }
    };
    match path_edit(input, &s.container, &path.path) {
        Some(edit) => Remedy::Change(change(input, &s, not_found, &path, edit)),
        None => Remedy::Escalate {
            reason: format!(
                "{unchanged}: the app answers {} and 404s {not_found}, but {} sets no readiness probe path for {} that squad can change in place; a human sets the probe's path to {} ({})",
                path.path, input.repo.path, s.container, path.path, d.summary
            ),
        },
    }
}

/// The container's `readinessProbe` with its `path:` line pointing at `path` (the quoting and a
/// trailing comment kept), every other line as written; `None` without exactly one such line.
fn path_edit(input: &RemedyInput<'_>, container: &str, path: &str) -> Option<Edit> {
    super::probe_line_edit(input, (container, "readinessProbe", "path"), |was| {
        let quote = match was.chars().next() {
            Some(q @ ('"' | '\'')) => q.to_string(),
            _ => String::new(),
        };
        Some(format!("{quote}{path}{quote}"))
    })
}

fn change(
    input: &RemedyInput<'_>,
    s: &ProbeSignals,
    not_found: &str,
    served: &ServedRoute,
    edit: Edit,
) -> Change {
    let to = &served.path;
    let why = format!(
        "the readiness probe of {} asks {not_found}, which the running version answers with 404, while the app answers {to}",
        s.container
    );
    let others: Vec<&ServedRoute> = s.served.iter().filter(|r| r.path != *to).collect();
    let others = if others.is_empty() {
        String::new()
    } else {
        let others: Vec<ServedRoute> = others.into_iter().cloned().collect();
        format!(
            " Also answered, and left alone: {} (another probe's path, or a liveness endpoint, which would stop the probe checking readiness).",
            describe(&others)
        )
    };
    Change {
        branch_word: "readiness-path".into(),
        title: format!(
            "fix(probes): point {}'s readiness probe at {to}, the path the app serves ({not_found} answers 404)",
            input.workload.name
        ),
        edits: vec![edit],
        notes: format!(
            "### The readiness probe asks a path the app no longer serves\n\
             The kubelet's readiness probe of `{}` asks `{not_found}`, and the running version answers it with 404 (`Readiness probe failed: HTTP probe failed with statuscode: 404`): its pods never become Ready and the rollout stalls while the previous ones serve. The last deploy did not change the probe, so there is nothing to undo; reverting the release would only put the move off, and deleting the probe or raising its timeouts would hide the 404 rather than fix it.\n\n\
             The app's own request metrics (`http_requests_total` by route, the last hour) show one readiness-like endpoint it answers that no other probe asks: `{to}` ({:.2} requests/s).{others} This PR changes only the probe's `path`; its port, timings and thresholds, the liveness probe and the image stay.\n\n\
             Those requests were answered by the pods that serve (the new ones are not Ready, so only the kubelet asks them): the rollout completing is the proof that the new version answers `{to}` too. If its pods stay unready, the app's owners say where it answers readiness.\n",
            s.container, served.per_second
        ),
        findings: vec![Finding {
            severity: Severity::High,
            title: "readiness probe asks a path the app no longer serves".into(),
            detail: why,
        }],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::cluster::{ClusterEvent, ContainerPort, ProbeSpec, Sample};

    use super::super::ReadinessProbe;
    use super::*;
    use crate::{ClusterView, Family, RepoView, testing};

    const MANIFEST: &str = "kind: Deployment\nmetadata:\n  name: cart\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: r/cart:3.2\n          readinessProbe:\n            httpGet:\n              path: \"/healthz\" # ready when the database answers\n              port: http\n            periodSeconds: 5\n          livenessProbe:\n            httpGet:\n              path: /livez\n              port: http\n";

    fn probe(path: &str) -> ProbeSpec {
        ProbeSpec {
            kind: "httpGet".into(),
            port: "http".into(),
            path: path.into(),
            initial_delay_seconds: 0,
            period_seconds: 5,
            timeout_seconds: 1,
            failure_threshold: 3,
        }
    }

    /// A new pod whose unchanged readiness probe on /healthz gets a 404, with the app's request
    /// metrics on `routes` (one request every 10 s each, over the day).
    fn unready(routes: &[&str]) -> Facts {
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
        for c in std::iter::once(&mut f.info.containers[0])
            .chain(f.history.iter_mut().map(|r| &mut r.containers[0]))
        {
            c.ports = ports.clone();
            c.readiness_probe = Some(probe("/healthz"));
            c.liveness_probe = Some(probe("/livez"));
        }
        f.events = vec![ClusterEvent {
            kind: "Warning".into(),
            reason: "Unhealthy".into(),
            message: "Readiness probe failed: HTTP probe failed with statuscode: 404".into(),
            count: 240,
            first_seen: testing::now() - chrono::Duration::minutes(40),
            last_seen: testing::now(),
            object: "Pod/cart-5d8f7-abcde".into(),
        }];
        for r in routes {
            f.request_rates
                .push(((*r).into(), testing::series(|_| 0.1)));
        }
        f
    }

    fn remedy(f: &Facts) -> Remedy {
        let d = testing::diagnosis(f);
        assert_eq!(d.root_cause.as_str(), super::super::ROOT_CAUSE);
        let (settings, cluster, w) = (
            testing::settings(),
            ClusterView::default(),
            testing::workload(),
        );
        let version = |commit: &str, content: &str| squad_runtime::ports::FileVersion {
            commit: commit.into(),
            at: testing::now(),
            message: format!("cart: deploy {commit}"),
            content: content.into(),
        };
        let repo = RepoView {
            path: "cart.yaml".into(),
            text: MANIFEST.into(),
            history: vec![
                version("22222222", MANIFEST),
                version("11111111", &MANIFEST.replace("r/cart:3.2", "r/cart:3.1")),
            ],
            layers: Vec::new(),
            objects: Vec::new(),
        };
        ReadinessProbe.remedy(&d, &testing::input(&settings, &w, &repo, &cluster))
    }

    #[test]
    fn one_served_health_path_moves_the_probe_path_and_nothing_else() {
        let f = unready(&["/healthz", "/livez", "/readyz"]);
        let d = testing::diagnosis(&f);
        assert!(
            d.evidence
                .iter()
                .any(|e| e.observation.contains("/readyz (0.10 requests/s)")),
            "{:?}",
            d.evidence
        );
        let Remedy::Change(c) = remedy(&f) else {
            panic!("no change: {:?}", remedy(&f));
        };
        assert_eq!(
            c.title,
            "fix(probes): point cart's readiness probe at /readyz, the path the app serves (/healthz answers 404)"
        );
        let files = std::collections::BTreeMap::from([("cart.yaml".to_owned(), MANIFEST.into())]);
        let out = squad_gitops::apply(&c.edits, &files).unwrap();
        let changed: Vec<(&str, &str)> = MANIFEST
            .lines()
            .zip(out[0].1.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(
            changed,
            [(
                "              path: \"/healthz\" # ready when the database answers",
                "              path: \"/readyz\" # ready when the database answers"
            )]
        );
        assert_eq!(out[0].1.lines().count(), MANIFEST.lines().count());
    }

    #[test]
    fn no_or_several_served_health_paths_go_to_the_apps_owners() {
        // Only the probes' own paths and a liveness endpoint: nothing to point readiness at.
        let got = remedy(&unready(&["/healthz", "/livez", "/live/deep"]));
        assert!(
            matches!(&got, Remedy::Escalate { reason } if reason.contains("the app's owners")
                && reason.contains("/livez (0.10 requests/s, the livenessProbe's path)")
                && reason.contains("none of them a readiness endpoint")),
            "{got:?}"
        );
        let got = remedy(&unready(&[]));
        assert!(
            matches!(&got, Remedy::Escalate { reason } if reason.contains("no health-like route answered")),
            "{got:?}"
        );
        let got = remedy(&unready(&["/readyz", "/status"]));
        assert!(
            matches!(&got, Remedy::Escalate { reason } if reason.contains("more than one could be the readiness endpoint")),
            "{got:?}"
        );
    }

    #[test]
    fn a_route_without_recent_requests_is_not_served() {
        let mut f = unready(&[]);
        f.request_rates.push((
            "/readyz".into(),
            testing::series(|i| if i < 200 { 0.1 } else { 0.0 }),
        ));
        assert!(matches!(remedy(&f), Remedy::Escalate { .. }));
        f.request_rates[1].1.push(Sample {
            at: testing::now(),
            value: f64::NAN,
        });
        assert!(matches!(remedy(&f), Remedy::Escalate { .. }));
    }

    #[test]
    fn a_refused_port_is_not_a_moved_path() {
        let mut f = unready(&["/readyz"]);
        f.events[0].message = "Readiness probe failed: Get \"http://10.244.1.9:8080/healthz\": dial tcp 10.244.1.9:8080: connect: connection refused".into();
        let got = remedy(&f);
        assert!(
            matches!(&got, Remedy::Escalate { reason } if reason.contains("did not change the readiness probe")),
            "{got:?}"
        );
    }

    #[test]
    fn a_probe_the_deploy_changed_is_undone_whatever_the_metrics_show() {
        let mut f = unready(&["/readyz"]);
        let last = f.history.len() - 1;
        f.history[last].containers[0].readiness_probe = Some(probe("/ready"));
        f.info.containers[0].readiness_probe = Some(probe("/ready"));
        let d = testing::diagnosis(&f);
        let now = MANIFEST.replace("\"/healthz\"", "/ready");
        let repo = RepoView {
            path: "cart.yaml".into(),
            text: now.clone(),
            history: vec![
                squad_runtime::ports::FileVersion {
                    commit: "22222222".into(),
                    at: testing::now(),
                    message: "cart: deploy 3.2".into(),
                    content: now,
                },
                squad_runtime::ports::FileVersion {
                    commit: "11111111".into(),
                    at: testing::now(),
                    message: "cart: deploy 3.1".into(),
                    content: MANIFEST.replace("r/cart:3.2", "r/cart:3.1"),
                },
            ],
            layers: Vec::new(),
            objects: Vec::new(),
        };
        let (settings, cluster, w) = (
            testing::settings(),
            ClusterView::default(),
            testing::workload(),
        );
        let got = ReadinessProbe.remedy(&d, &testing::input(&settings, &w, &repo, &cluster));
        let Remedy::Change(c) = got else {
            panic!("no change: {got:?}");
        };
        assert_eq!(
            c.title,
            "fix(infra): restore readinessProbe of cart from before 22222222"
        );
    }

    #[test]
    fn health_like_names_are_path_segments() {
        assert!(health_like("/healthz"));
        assert!(health_like("/api/v2/Health/ready"));
        assert!(health_like("/status?full=1"));
        assert!(!health_like("/statuses-export"));
        assert!(!health_like("/cart"));
        assert!(liveness_like("/health/live"));
        assert!(!liveness_like("/readyz"));
    }
}
