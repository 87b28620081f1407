//! The liveness port the app moved away from: the last deploy moved the app to another port
//! (a new release, a listen flag or variable) and the container's declared `ports:` with it,
//! but the liveness probe still names the old port by number. Nothing listens there: the kubelet
//! gets `dial tcp …: connect: connection refused` at every probe, kills the container after
//! `failureThreshold` of them (exit 137 after the grace period) and the pod crash-loops. The
//! obvious fixes are wrong: a longer timeout changes nothing for a refused connection (it fails
//! at once, whatever the probe waits), reverting the deploy gives up the release to keep a stale
//! number, and deleting the probe leaves a hung process running.
//!
//! The rule: the kubelet's last liveness failure is a refused connection (or the probe names a
//! port the container does not declare, which the kubelet cannot resolve at all), the probe is
//! an HTTP or TCP one, its port is not among the container's declared ports, and the container
//! declares exactly one port → a PR setting the probe's `port` to it, that line alone: by its
//! name when it has one (a named port keeps the probe and the container in step at the next
//! move), else by its number. The refusal proves only where the app does not listen; the
//! declared port is where its team says it does, and the rollout's verification is the proof.
//! Several declared ports go to the app's owners, even when one is named `http`: health
//! endpoints often live on an admin or metrics port, and a port's name does not say which one
//! answers the probe's path. None declared, or a refused port the container declares (the app
//! does not listen where its container says), go to them too. The probe is never removed, and
//! its path, timings and thresholds stay.

use squad_protocols::cluster::ContainerPort;
use squad_protocols::{Diagnosis, Finding, Severity};

use super::LivenessSignals;
use crate::{Change, Edit, Remedy, RemedyInput};

/// The last rollout's change of the container's declared ports, for the evidence and the notes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PortsMoved {
    pub revision: u32,
    /// How long ago it rolled out.
    pub ago: String,
    /// The ports the container declared before it.
    pub before: Vec<ContainerPort>,
}

/// The declared ports, as the evidence and the escalations name them: `9090 (http), 9100`.
pub(super) fn describe(ports: &[ContainerPort]) -> String {
    if ports.is_empty() {
        return "no port".into();
    }
    ports
        .iter()
        .map(|p| {
            if p.name.is_empty() {
                p.port.to_string()
            } else {
                format!("{} ({})", p.port, p.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the probe cannot reach the app on the port it names: the kubelet's connection was
/// refused, or the probe names a port the container does not declare.
pub(super) fn unreachable(s: &LivenessSignals) -> bool {
    s.refused
        || (matches!(s.probe.kind.as_str(), "httpGet" | "tcpSocket")
            && s.probe.port_number(&s.ports).is_none())
}

/// The port the probe should name, when the rule finds exactly one: the container's one declared
/// port, the probe's own not among the declared ones.
fn only_port(s: &LivenessSignals) -> Option<&ContainerPort> {
    if !matches!(s.probe.kind.as_str(), "httpGet" | "tcpSocket") || declared(s) {
        return None;
    }
    match s.ports.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// Whether the probe's port is one the container declares.
fn declared(s: &LivenessSignals) -> bool {
    s.probe
        .port_number(&s.ports)
        .is_some_and(|n| s.ports.iter().any(|p| p.port == n))
}

/// How a probe names `port`: by its name when it has one, else by its number.
fn probe_value(port: &ContainerPort) -> String {
    if port.name.is_empty() {
        port.port.to_string()
    } else {
        port.name.clone()
    }
}

/// The remedy when the probe cannot reach the app on its port (and the deploy did not change the
/// probe).
pub(super) fn remedy(d: &Diagnosis, input: &RemedyInput<'_>, s: &LivenessSignals) -> Remedy {
    let p = &s.probe;
    let ports = describe(&s.ports);
    let asks = format!("the liveness probe asks port {}", p.port);
    if !matches!(p.kind.as_str(), "httpGet" | "tcpSocket") {
        return Remedy::owned_by(
            "the app's owners",
            d,
            &format!(
                "say where the app answers its liveness check: the {} probe cannot reach it and the container declares {ports}; the probe stays as it is until then",
                p.kind
            ),
        );
    }
    if declared(s) {
        return Remedy::owned_by(
            "the app's owners",
            d,
            &format!(
                "make the app listen where its container says: {asks}, which the container declares ({ports}), and the connection is refused; the probe stays (a longer timeout does nothing for a refused connection)"
            ),
        );
    }
    let Some(to) = only_port(s) else {
        let why = if s.ports.is_empty() {
            format!(
                "{asks}, where nothing listens, and the container declares no port to point it at"
            )
        } else {
            format!(
                "{asks}, where nothing listens, and the container declares {ports}: more than one could answer the probe's {}",
                if p.kind == "httpGet" {
                    p.path.as_str()
                } else {
                    "connection"
                }
            )
        };
        return Remedy::owned_by(
            "the app's owners",
            d,
            &format!(
                "say which port the probe asks: {why}; the probe stays as it is until then (a longer timeout does nothing for a refused connection, and deleting the probe is not a fix)"
            ),
        );
    };
    let value = probe_value(to);
    match port_edit(input, &s.container, &value) {
        Some(edit) => Remedy::Change(change(input, s, to, edit)),
        None => Remedy::Escalate {
            reason: format!(
                "{asks}, where nothing listens, and the container declares one port, {ports}; but {} sets no liveness probe port for {} that squad can change in place: a human sets the probe's port to {value} ({})",
                input.repo.path, s.container, d.summary
            ),
        },
    }
}

/// Words YAML 1.1 reads as something other than a string: a port name spelt so is quoted.
const NOT_STRINGS: &[&str] = &[
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
];

/// The container's `livenessProbe` with its `port:` line naming `value` (a trailing comment
/// kept; a number written bare, a name bare unless YAML would read it otherwise), every other
/// line as written; `None` without exactly one such line, or one a template writes.
fn port_edit(input: &RemedyInput<'_>, container: &str, value: &str) -> Option<Edit> {
    crate::families::readiness_probe::probe_line_edit(
        input,
        (container, "livenessProbe", "port"),
        |was| {
            if was.contains("{{") {
                return None;
            }
            let number = value.parse::<u16>().is_ok();
            Some(
                if !number && NOT_STRINGS.contains(&value.to_ascii_lowercase().as_str()) {
                    format!("\"{value}\"")
                } else {
                    value.to_owned()
                },
            )
        },
    )
}

fn change(input: &RemedyInput<'_>, s: &LivenessSignals, to: &ContainerPort, edit: Edit) -> Change {
    let p = &s.probe;
    let value = probe_value(to);
    let port = describe(std::slice::from_ref(to));
    let why = format!(
        "the liveness probe of {} asks port {}, where nothing listens, while the container declares {port}",
        s.container, p.port
    );
    let moved = s.ports_moved.as_ref().map_or(String::new(), |m| {
        format!(
            " The last rollout (revision {}, {}) changed the declared ports from {}: the probe was left behind.",
            m.revision,
            m.ago,
            describe(&m.before)
        )
    });
    let by = if to.name.is_empty() {
        "by its number: the port has no name (naming it, and the probe by that name, would keep them in step at the next move)".to_owned()
    } else {
        format!(
            "by its name, so the probe follows the container's `{}` port if it moves again",
            to.name
        )
    };
    Change {
        branch_word: "liveness-port".into(),
        title: format!(
            "fix(probes): point {}'s liveness probe at port {value}, the port the container declares ({} is refused)",
            input.workload.name, p.port
        ),
        edits: vec![edit],
        notes: format!(
            "### The liveness probe asks a port nothing listens on\n\
             The kubelet's liveness probe of `{}` asks port {}, and every probe is refused (`connect: connection refused`): after {} of them the kubelet kills the container (exit 137 after the grace period) and the pod crash-loops. The container declares one port, {port}.{moved}\n\n\
             This PR sets the probe's `port` to `{value}`, {by}. Nothing else changes: the probe's {}, timeout ({} s), period ({} s) and threshold ({}) and the image stay.\n\n\
             The obvious fixes are wrong here: a longer timeout does nothing for a refused connection (it fails at once, whatever the probe waits); reverting the deploy would give up the release to keep a stale number; deleting the probe would leave a hung process running. The proof is the restarts stopping once the pods run with the probe on the declared port; if they go on, the app does not listen where its container says, and its owners say where it does.\n",
            s.container,
            p.port,
            p.failure_threshold,
            if p.kind == "httpGet" {
                format!("path ({})", p.path)
            } else {
                "kind (tcpSocket)".to_owned()
            },
            p.timeout_seconds,
            p.period_seconds,
            p.failure_threshold,
        ),
        findings: vec![Finding {
            severity: Severity::High,
            title: "liveness probe asks a port nothing listens on".into(),
            detail: why,
        }],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::cluster::{ClusterEvent, ProbeSpec};

    use super::super::LivenessProbe;
    use super::*;
    use crate::{ClusterView, Facts, Family, RepoView, testing};

    /// Before the deploy: the app on 8080, declared without a name.
    const BEFORE: &str = "kind: Deployment\nmetadata:\n  name: cart\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: r/cart:3.1\n          ports:\n            - containerPort: 8080\n          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: 8080 # the app's port\n            timeoutSeconds: 2\n";

    fn port(port: u16, name: &str) -> ContainerPort {
        ContainerPort {
            port,
            name: name.into(),
        }
    }

    fn probe(port: &str) -> ProbeSpec {
        ProbeSpec {
            kind: "httpGet".into(),
            port: port.into(),
            path: "/healthz".into(),
            initial_delay_seconds: 0,
            period_seconds: 10,
            timeout_seconds: 2,
            failure_threshold: 3,
        }
    }

    /// A pod killed by its unchanged liveness probe on `probe_port`, refused, after a deploy that
    /// moved the container's declared ports from 8080 to `ports`.
    fn refused(probe_port: &str, ports: Vec<ContainerPort>) -> Facts {
        let mut f = testing::facts("Error", 137, |_| 80.0, |_| 10.0);
        f.info.containers[0].ports = ports.clone();
        f.info.containers[0].liveness_probe = Some(probe(probe_port));
        let last = f.history.len() - 1;
        f.history[last].containers[0].ports = ports;
        f.history[last].containers[0].liveness_probe = Some(probe(probe_port));
        f.history[0].containers[0].ports = vec![port(8080, "")];
        f.history[0].containers[0].liveness_probe = Some(probe(probe_port));
        let event = |reason: &str, message: &str, count: u32| ClusterEvent {
            kind: "Warning".into(),
            reason: reason.into(),
            message: message.into(),
            count,
            first_seen: testing::now() - chrono::Duration::minutes(40),
            last_seen: testing::now(),
            object: "Pod/cart-5d8f7-abcde".into(),
        };
        f.events = vec![
            event(
                "Unhealthy",
                "Liveness probe failed: Get \"http://10.244.1.7:8080/healthz\": dial tcp 10.244.1.7:8080: connect: connection refused",
                30,
            ),
            event(
                "Killing",
                "Container api failed liveness probe, will be restarted",
                10,
            ),
        ];
        // The app answers /healthz in milliseconds: the timeout rule would have a measurement.
        f.latency = vec![(
            "/healthz".into(),
            vec![squad_protocols::cluster::Sample {
                at: testing::now(),
                value: 0.02,
            }],
        )];
        f
    }

    /// The manifest now: `ports` as YAML lines under `ports:`, the probe unchanged.
    fn manifest(ports: &str) -> String {
        BEFORE
            .replace("r/cart:3.1", "r/cart:4.0")
            .replace("            - containerPort: 8080\n", ports)
    }

    fn repo(now: &str, before: &str) -> RepoView {
        let version = |commit: &str, content: &str| squad_runtime::ports::FileVersion {
            commit: commit.into(),
            at: testing::now(),
            message: format!("cart: deploy {commit}"),
            content: content.into(),
        };
        RepoView {
            path: "cart.yaml".into(),
            text: now.into(),
            history: vec![version("22222222", now), version("11111111", before)],
            layers: Vec::new(),
            objects: Vec::new(),
        }
    }

    fn remedy_of(f: &Facts, now: &str) -> Remedy {
        remedy_after(f, now, BEFORE)
    }

    /// The remedy when the manifest is `now` after a deploy from `before`.
    fn remedy_after(f: &Facts, now: &str, before: &str) -> Remedy {
        let d = testing::diagnosis(f);
        assert_eq!(d.root_cause.as_str(), super::super::ROOT_CAUSE);
        let (settings, cluster, w) = (
            testing::settings(),
            ClusterView::default(),
            testing::workload(),
        );
        let repo = repo(now, before);
        LivenessProbe.remedy(&d, &testing::input(&settings, &w, &repo, &cluster))
    }

    /// The lines the change changes, before and after.
    fn changed_lines(r: &Remedy, now: &str) -> Vec<(String, String)> {
        let Remedy::Change(c) = r else {
            panic!("no change: {r:?}");
        };
        let files = std::collections::BTreeMap::from([("cart.yaml".to_owned(), now.to_owned())]);
        let out = squad_gitops::apply(&c.edits, &files).unwrap();
        assert_eq!(out[0].1.lines().count(), now.lines().count());
        now.lines()
            .zip(out[0].1.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect()
    }

    #[test]
    fn one_named_declared_port_moves_the_probe_port_by_name_and_nothing_else() {
        let now = manifest("            - name: http\n              containerPort: 9090\n");
        let f = refused("8080", vec![port(9090, "http")]);
        let d = testing::diagnosis(&f);
        assert!(
            d.summary.contains(
                "nothing listens on port 8080, which its liveness probe asks (the container declares 9090 (http)"
            ),
            "{}",
            d.summary
        );
        assert!(
            d.evidence.iter().any(|e| e
                .observation
                .contains("changed the declared ports of api from 8080 to 9090 (http)")),
            "{:?}",
            d.evidence
        );
        // Nothing for the model to size: no timeout proposal.
        assert!(
            LivenessProbe
                .proposal(&d, &crate::Rules::of(&testing::settings()))
                .is_none()
        );
        let r = remedy_of(&f, &now);
        assert_eq!(
            changed_lines(&r, &now),
            [(
                "              port: 8080 # the app's port".to_owned(),
                "              port: http # the app's port".to_owned()
            )]
        );
        let Remedy::Change(c) = r else { panic!() };
        assert_eq!(
            c.title,
            "fix(probes): point cart's liveness probe at port http, the port the container declares (8080 is refused)"
        );
        assert!(
            c.notes.contains("changed the declared ports from 8080"),
            "{}",
            c.notes
        );
        assert!(c.notes.contains("a longer timeout does nothing"));
    }

    #[test]
    fn one_unnamed_declared_port_moves_the_probe_port_by_number() {
        let now = manifest("            - containerPort: 9090\n");
        let r = remedy_of(&refused("8080", vec![port(9090, "")]), &now);
        assert_eq!(
            changed_lines(&r, &now),
            [(
                "              port: 8080 # the app's port".to_owned(),
                "              port: 9090 # the app's port".to_owned()
            )]
        );
    }

    #[test]
    fn a_probe_naming_a_port_the_container_no_longer_declares_moves_to_the_one_it_does() {
        // The deploy renamed the port and moved it; the probe names the old name.
        let before = BEFORE
            .replace(
                "            - containerPort: 8080\n",
                "            - name: http\n              containerPort: 8080\n",
            )
            .replace("port: 8080 # the app's port", "port: http");
        let now = before.replace("r/cart:3.1", "r/cart:4.0").replace(
            "name: http\n              containerPort: 8080",
            "name: web\n              containerPort: 9090",
        );
        let mut f = refused("http", vec![port(9090, "web")]);
        f.events[0].message = "Liveness probe failed: unable to find port \"http\"".into();
        assert_eq!(
            changed_lines(&remedy_after(&f, &now, &before), &now),
            [(
                "              port: http".to_owned(),
                "              port: web".to_owned()
            )]
        );
    }

    #[test]
    fn several_or_no_declared_ports_go_to_the_apps_owners() {
        let now = manifest(
            "            - name: http\n              containerPort: 9090\n            - name: metrics\n              containerPort: 9100\n",
        );
        let got = remedy_of(
            &refused("8080", vec![port(9090, "http"), port(9100, "metrics")]),
            &now,
        );
        assert!(
            matches!(&got, Remedy::Escalate { reason } if reason.contains("the owner is the app's owners")
                && reason.contains("declares 9090 (http), 9100 (metrics): more than one could answer the probe's /healthz")),
            "{got:?}"
        );
        let now = manifest("");
        let got = remedy_of(&refused("8080", Vec::new()), &now);
        assert!(
            matches!(&got, Remedy::Escalate { reason } if reason.contains("declares no port to point it at")),
            "{got:?}"
        );
    }

    #[test]
    fn a_refused_port_the_container_declares_is_the_apps_to_fix() {
        let now = BEFORE.replace("r/cart:3.1", "r/cart:4.0");
        let got = remedy_of(&refused("8080", vec![port(8080, "")]), &now);
        assert!(
            matches!(&got, Remedy::Escalate { reason } if reason.contains("make the app listen where its container says")),
            "{got:?}"
        );
    }

    #[test]
    fn a_refused_port_is_never_a_timeout() {
        // No latency measured, one port declared: still the port, never "exports no latency".
        let now = manifest("            - name: http\n              containerPort: 9090\n");
        let mut f = refused("8080", vec![port(9090, "http")]);
        f.latency.clear();
        assert!(
            matches!(remedy_of(&f, &now), Remedy::Change(c) if c.branch_word == "liveness-port")
        );
    }

    #[test]
    fn a_probe_the_deploy_changed_is_undone() {
        // The deploy moved the probe itself to 8081: it goes back to 8080, whatever the ports.
        let now = BEFORE
            .replace("r/cart:3.1", "r/cart:4.0")
            .replace("port: 8080 # the app's port", "port: 8081");
        let mut f = refused("8081", vec![port(8080, "")]);
        let last = f.history.len() - 1;
        f.history[0].containers[0].liveness_probe = Some(probe("8080"));
        f.history[last].containers[0].ports = vec![port(8080, "")];
        let r = remedy_of(&f, &now);
        let Remedy::Change(c) = &r else {
            panic!("no change: {r:?}");
        };
        assert_eq!(
            c.title,
            "fix(infra): restore livenessProbe of cart from before 22222222"
        );
        assert_eq!(
            changed_lines(&r, &now),
            [(
                "              port: 8081".to_owned(),
                "              port: 8080 # the app's port".to_owned()
            )]
        );
    }

    #[test]
    fn yaml_words_are_quoted_and_templates_left_alone() {
        let now = manifest("            - name: on\n              containerPort: 9090\n");
        let r = remedy_of(&refused("8080", vec![port(9090, "on")]), &now);
        assert_eq!(
            changed_lines(&r, &now)[0].1,
            "              port: \"on\" # the app's port"
        );
        let now = manifest("            - name: http\n              containerPort: 9090\n")
            .replace("port: 8080 # the app's port", "port: {{ .Values.port }}");
        let got = remedy_of(&refused("8080", vec![port(9090, "http")]), &now);
        assert!(
            matches!(&got, Remedy::Escalate { reason } if reason.contains("sets the probe's port to http")),
            "{got:?}"
        );
    }
}
