//! Service without endpoints: the app dials a Service that has no ready endpoint on the port,
//! so the node's proxy rejects the connection (`dial tcp 10.96.57.3:80: connect: connection
//! refused`) and an app that needs it to start crash-loops. The Service's selector matches no
//! pod (a typo, labels renamed on one side only), or its `targetPort` names a port the pods do
//! not declare (the endpoints controller leaves them out), or the pods it selects are not ready.
//! Nothing in the cluster raises an event: `kubectl get endpoints` shows `<none>`. The family
//! reads the refusal from the logs, finds the Service by its cluster IP and compares its
//! selector and target port with the namespace's workloads. The fix (the selector or targetPort
//! that matches the pods) is the Service's ports as they were before the change that broke them
//! when that target reaches a port the pods declare, else the one port they declare; a selector
//! escalates (which pods a Service fronts is the app owner's call). The proof is the Service's
//! endpoints listed and the caller's pods Ready.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::{ServiceInfo, ServicePort, WorkloadInfo};
use squad_protocols::{
    Diagnosis, Evidence, Finding, Member, RootCause, Severity, Verification, WorkloadRef,
};

use crate::{
    Change, Detection, Edit, Facts, Family, FollowupContext, IssueDraft, Lookup, Observation,
    Readings, Remedy, RemedyInput, RepoNeeds, RepoObject, Rules, Runbook, family_signals,
};

pub struct ServiceWithoutEndpoints;

pub const ROOT_CAUSE: &str = "service_without_endpoints";

/// A refused TCP connection read from a log line (Go's net package words, which most runtimes'
/// clients echo): `dial tcp <ip>:<port>: connect: connection refused`.
pub fn refused(line: &str) -> Option<(String, u16)> {
    if !line.contains("connection refused") {
        return None;
    }
    super::network_policy_blocked::dialled(line)
}

/// Why the Service has no ready endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Cause {
    /// It has no selector, and nobody set its endpoints.
    NoSelector,
    /// Its selector matches no workload's pods; `closest` is the workload it most likely meant.
    Selector { closest: Option<String> },
    /// Its `targetPort` names a port the selected pods do not declare.
    TargetPort { target_port: String },
    /// The pods it selects are not ready (or there are none).
    NotReady { selected: Vec<String> },
}

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSignals {
    pub service: String,
    pub ip: String,
    pub port: u16,
    pub cause: Cause,
    /// The log line.
    pub line: String,
    /// The container ports the selected pods declare, `(name, number)` (name empty when unnamed).
    #[serde(default)]
    pub declared: Vec<(String, u16)>,
}

fn labels_words(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "no labels".into();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn selects(selector: &BTreeMap<String, String>, w: &WorkloadInfo) -> bool {
    selector
        .iter()
        .all(|(k, v)| w.pod_labels.get(k).is_some_and(|l| l == v))
}

/// The workload a selector most likely meant: the most of its pairs shared, then of its keys,
/// then the Service's name.
fn closest<'a>(svc: &ServiceInfo, workloads: &'a [WorkloadInfo]) -> Option<&'a WorkloadInfo> {
    workloads
        .iter()
        .map(|w| {
            let pairs = svc
                .selector
                .iter()
                .filter(|(k, v)| w.pod_labels.get(*k) == Some(*v))
                .count();
            let keys = svc
                .selector
                .keys()
                .filter(|k| w.pod_labels.contains_key(*k))
                .count();
            let values = svc
                .selector
                .values()
                .filter(|v| w.pod_labels.values().any(|l| l == *v))
                .count();
            ((pairs, keys + values, w.name == svc.name), w)
        })
        .filter(|((pairs, near, named), _)| *pairs + *near > 0 || *named)
        .max_by_key(|(score, _)| *score)
        .map(|(_, w)| w)
}

/// The ports a workload's containers declare, in words: `8080 (web)`.
fn ports_words(w: &WorkloadInfo) -> String {
    let ports: Vec<String> = w
        .containers
        .iter()
        .flat_map(|c| &c.ports)
        .map(|p| {
            if p.name.is_empty() {
                p.port.to_string()
            } else {
                format!("{} ({})", p.port, p.name)
            }
        })
        .collect();
    if ports.is_empty() {
        "no ports".into()
    } else {
        ports.join(", ")
    }
}

/// Whether a workload's pods declare the named port.
fn declares(w: &WorkloadInfo, name: &str) -> bool {
    w.containers
        .iter()
        .flat_map(|c| &c.ports)
        .any(|p| p.name == name)
}

fn declared_words(declared: &[(String, u16)]) -> String {
    if declared.is_empty() {
        return "no ports".into();
    }
    declared
        .iter()
        .map(|(n, p)| {
            if n.is_empty() {
                p.to_string()
            } else {
                format!("{p} ({n})")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a `targetPort` (a number or a port name) reaches a port the pods declare.
fn reaches(target: &str, declared: &[(String, u16)]) -> bool {
    declared
        .iter()
        .any(|(n, p)| (!n.is_empty() && n == target) || target.parse::<u16>() == Ok(*p))
}

/// The `targetPort` of the Service's port `port` in a document.
fn target_in(doc: &serde_json::Value, port: u16) -> Option<String> {
    doc["spec"]["ports"]
        .as_array()?
        .iter()
        .find(|p| p["port"].as_u64() == Some(u64::from(port)))
        .map(|p| match &p["targetPort"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            // Without a targetPort, the Service's port number is the pods'.
            _ => port.to_string(),
        })
}

/// The fix of a `targetPort` the pods do not declare: the Service's ports as they were before
/// the change that set it, when that target reaches a declared port; else the one port the pods
/// declare (its name when it has one), on that line alone.
fn target_port_fix(
    input: &RemedyInput<'_>,
    svc: &RepoObject,
    s: &ServiceSignals,
    target_port: &str,
) -> Option<Remedy> {
    let why = format!(
        "Service {} has no endpoints: its port {} targets `{target_port}`, which the pods it selects do not declare (they declare {})",
        s.service,
        s.port,
        declared_words(&s.declared)
    );
    if let Some(undo) = crate::undo::find_keys(svc, &[&["spec", "ports"]])
        && let Some(before) = squad_gitops::objects::parse(&svc.path, &undo.before.content)
            .ok()
            .and_then(|docs| {
                docs.into_iter().find(|o| {
                    squad_gitops::objects::kind(o) == "Service"
                        && squad_gitops::objects::name(o) == svc.name
                })
            })
        && let Some(old) = target_in(&before, s.port)
        && reaches(&old, &s.declared)
    {
        let mut change = undo.change(
            input.workload,
            &why,
            "Service targets a port the pods do not declare",
        );
        change.notes.push_str(&format!(
            "\nThe restored `targetPort: {old}` reaches a port the pods declare ({}).\n",
            declared_words(&s.declared)
        ));
        return Some(Remedy::Change(change));
    }
    let [(pname, pnum)] = s.declared.as_slice() else {
        return None;
    };
    let to = if pname.is_empty() {
        pnum.to_string()
    } else {
        pname.clone()
    };
    let keys = ["spec", "ports"];
    let lines =
        squad_gitops::editor::object_key_lines(&svc.text, "Service", &svc.name, &keys).ok()??;
    let mut hits = 0;
    let edited: Vec<String> = lines
        .iter()
        .map(|l| {
            let body = l.trim_start().trim_start_matches("- ");
            let value = body.strip_prefix("targetPort:").map(|v| {
                v.split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches(['"', '\''])
            });
            match value {
                Some(v) if v == target_port => {
                    hits += 1;
                    l.replacen(v, &to, 1)
                }
                _ => l.clone(),
            }
        })
        .collect();
    if hits != 1 {
        return None;
    }
    Some(Remedy::Change(Change {
        branch_word: "target-port".into(),
        title: format!(
            "fix(infra): point Service {}'s targetPort at {to}",
            svc.name
        ),
        edits: vec![Edit::SetObjectKey {
            path: svc.path.clone(),
            kind: "Service".into(),
            name: svc.name.clone(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            lines: Some(edited),
        }],
        notes: format!(
            "### The Service's targetPort\n{why}. The pods declare one port, {}: the Service's port {} now targets it (`targetPort: {to}`); nothing else changes.\n",
            declared_words(&s.declared),
            s.port
        ),
        findings: vec![Finding {
            severity: Severity::High,
            title: "Service targets a port the pods do not declare".into(),
            detail: why,
        }],
    }))
}

fn target_words(p: &ServicePort) -> String {
    format!("port {} → targetPort {}", p.port, p.target_port)
}

impl Family for ServiceWithoutEndpoints {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        None
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let (line, (ip, port)) = facts
            .logs
            .iter()
            .rev()
            .find_map(|l| refused(l).map(|r| (l.clone(), r)))?;
        let svc = facts.services.iter().find(|s| s.cluster_ip == ip)?;
        let sp = svc.port(port)?;
        // Ready endpoints: the refusal is the pods' own, not the Service's.
        if !svc.ready_endpoints(sp).is_empty() {
            return None;
        }
        let full = format!("{}/{}", svc.namespace, svc.name);
        let mut d = Detection::new(String::new(), 0.9, &[]);
        d.evidence.push(Evidence {
            source: "container logs".into(),
            observation: line.clone(),
        });
        d.evidence.push(Evidence {
            source: "Service".into(),
            observation: format!(
                "{full} ({ip}, {}) selects pods {}: no ready endpoint ({} not ready)",
                target_words(sp),
                labels_words(&svc.selector),
                svc.endpoints
                    .iter()
                    .filter(|e| !e.ready && e.port_name == sp.name)
                    .count()
            ),
        });
        let selected: Vec<&WorkloadInfo> = facts
            .neighbours
            .iter()
            .filter(|w| !svc.selector.is_empty() && selects(&svc.selector, w))
            .collect();
        let named_target = sp.target_port.parse::<u16>().is_err();
        let (cause, what, recommendation) = if svc.selector.is_empty() {
            (
                Cause::NoSelector,
                "it has no selector and nobody set its endpoints".to_owned(),
                format!("give {full} the selector of the pods it fronts"),
            )
        } else if selected.is_empty() {
            let near = closest(svc, &facts.neighbours);
            if let Some(w) = near {
                d.evidence.push(Evidence {
                    source: "workloads".into(),
                    observation: format!(
                        "{} {}/{} labels its pods {}",
                        w.kind,
                        w.namespace,
                        w.name,
                        labels_words(&w.pod_labels)
                    ),
                });
            }
            let differs: Vec<String> = near
                .map(|w| {
                    svc.selector
                        .iter()
                        .filter(|(k, v)| w.pod_labels.get(*k) != Some(*v))
                        .map(|(k, v)| match w.pod_labels.get(k) {
                            Some(l) => format!("{k}={v} where the pods say {k}={l}"),
                            None => format!("{k}={v}, a label the pods do not carry"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let what = match near {
                Some(w) => format!(
                    "its selector matches no pod in {}: it asks for {} ({} {})",
                    svc.namespace,
                    differs.join(" and "),
                    w.kind,
                    w.name
                ),
                None => format!(
                    "its selector {} matches no pod in {}",
                    labels_words(&svc.selector),
                    svc.namespace
                ),
            };
            let recommendation = match near {
                Some(w) => format!(
                    "make {full}'s selector match the labels {} {} gives its pods ({}), or the other way round; select that app's pods only",
                    w.kind,
                    w.name,
                    labels_words(&w.pod_labels)
                ),
                None => format!("make {full}'s selector match the labels of the pods it fronts"),
            };
            (
                Cause::Selector {
                    closest: near.map(|w| w.name.clone()),
                },
                what,
                recommendation,
            )
        } else if named_target && !selected.iter().any(|w| declares(w, &sp.target_port)) {
            for w in &selected {
                d.evidence.push(Evidence {
                    source: "workloads".into(),
                    observation: format!(
                        "{} {}/{} (selected) declares {}",
                        w.kind,
                        w.namespace,
                        w.name,
                        ports_words(w)
                    ),
                });
            }
            let names: Vec<String> = selected
                .iter()
                .map(|w| format!("{} {}", w.kind, w.name))
                .collect();
            (
                Cause::TargetPort {
                    target_port: sp.target_port.clone(),
                },
                format!(
                    "its port {} targets the container port named {}, which the pods of {} do not declare ({})",
                    sp.port,
                    sp.target_port,
                    names.join(", "),
                    selected
                        .iter()
                        .map(|w| ports_words(w))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                format!(
                    "point {full}'s targetPort at a port the pods declare (its number, or the name the containers give it), or name the container port {}",
                    sp.target_port
                ),
            )
        } else {
            d.confidence = 0.7;
            let names: Vec<String> = selected.iter().map(|w| w.name.clone()).collect();
            (
                Cause::NotReady {
                    selected: names.clone(),
                },
                format!(
                    "the pods it selects ({}) are not ready or not running",
                    names.join(", ")
                ),
                format!(
                    "diagnose {} first: the caller only follows it",
                    names.join(", ")
                ),
            )
        };
        d.summary = format!(
            "{} cannot connect to Service {full} ({ip}:{port}): it has no ready endpoints, {what}",
            facts.workload.name
        );
        d.recommendations.push(recommendation);
        d.recommendations.push(format!(
            "check with `kubectl get endpoints -n {} {}` that it lists the pods",
            svc.namespace, svc.name
        ));
        let declared = selected
            .iter()
            .flat_map(|w| w.containers.iter().flat_map(|c| &c.ports))
            .map(|p| (p.name.clone(), p.port))
            .collect();
        d.signals = serde_json::to_value(ServiceSignals {
            service: full,
            ip,
            port,
            cause,
            line,
            declared,
        })
        .ok();
        Some(d)
    }

    fn lookups(&self, facts: &Facts) -> Vec<Lookup> {
        if facts.logs.iter().any(|l| refused(l).is_some()) {
            vec![Lookup::Services]
        } else {
            Vec::new()
        }
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the Service's selector and targetPort against its pods' labels and ports",
            ),
            (
                Member::Data,
                "which host and port the app dials, and whether it should wait for it rather than exit",
            ),
        ]
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds {
            manifest: true,
            history: true,
        }
    }

    fn repo_objects(&self, d: &Diagnosis) -> Vec<(String, String)> {
        family_signals::<ServiceSignals>(d)
            .map(|s| {
                let name = s
                    .service
                    .rsplit('/')
                    .next()
                    .unwrap_or(&s.service)
                    .to_owned();
                vec![("Service".to_owned(), name)]
            })
            .unwrap_or_default()
    }

    fn verify_needs(&self) -> crate::VerifyNeeds {
        crate::VerifyNeeds {
            services: true,
            ..crate::VerifyNeeds::default()
        }
    }

    /// The default verdict, and the Service's port with ready endpoints.
    fn verify(&self, d: &Diagnosis, obs: &Observation, rules: &Rules<'_>) -> Verification {
        let mut v = crate::family::default_verdict(d, obs, rules);
        let Some(s) = family_signals::<ServiceSignals>(d) else {
            return v;
        };
        let name = s.service.rsplit('/').next().unwrap_or(&s.service);
        let ready = obs
            .services
            .iter()
            .find(|svc| svc.name == name)
            .and_then(|svc| svc.port(s.port).map(|p| svc.ready_endpoints(p).len()));
        match ready {
            Some(n) if n > 0 => v.detail.push_str(&format!(
                "; Service {} has {n} ready endpoint(s) on port {}",
                s.service, s.port
            )),
            _ => {
                v.healthy = false;
                v.detail = format!(
                    "Service {} still has no ready endpoint on port {}; {}",
                    s.service, s.port, v.detail
                );
            }
        }
        v
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        let Some(s) = family_signals::<ServiceSignals>(d) else {
            return Remedy::Nothing;
        };
        let name = s.service.rsplit('/').next().unwrap_or(&s.service);
        let human = "a human makes the Service's selector and targetPort match the pods it fronts";
        let Some(svc) = input.repo.object("Service", name) else {
            return Remedy::Escalate {
                reason: format!(
                    "{} (the GitOps repository does not declare Service {}); {human}",
                    d.summary, s.service
                ),
            };
        };
        match &s.cause {
            Cause::TargetPort { target_port } => {
                target_port_fix(input, svc, &s, target_port).unwrap_or_else(|| {
                    Remedy::Escalate {
                        reason: format!(
                            "{}; the pods declare {}, and neither the Service's history nor a single declared port says which one it means: {human}",
                            d.summary,
                            declared_words(&s.declared)
                        ),
                    }
                })
            }
            Cause::Selector { .. } | Cause::NoSelector => Remedy::Escalate {
                reason: format!("{}; {human}", d.summary),
            },
            Cause::NotReady { selected } => Remedy::owned_by(
                &format!("the owners of {}", selected.join(", ")),
                d,
                "fix why the pods the Service selects are not ready (their own incident); the caller only follows",
            ),
        }
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "service-without-endpoints".into(),
            meaning: "A Service the app dials has no ready endpoint on the port: the node's proxy rejects the connection (`connect: connection refused`), and an app that needs it to start crash-loops. The Service's selector matches no pod, its `targetPort` names a port the pods do not declare, or the pods it selects are not ready. No event says so.".into(),
            checks: "1. `kubectl logs -n <ns> <pod> --previous` — `dial tcp <cluster-ip>:<port>: connect: connection refused`.\n2. `kubectl get svc -n <ns> -o wide` — the Service with that cluster IP, and its selector.\n3. `kubectl get endpoints -n <ns> <svc>` — `<none>` when nothing is selected or ready.\n4. `kubectl get pods -n <ns> --show-labels` and the pods' `containerPort` names against the selector and `targetPort`.\n5. The GitOps diff that changed the Service or the pods' labels.".into(),
            fixes: "- **Selector**: make it match the labels the pods carry (or the pods' labels the selector); never widen it to another app's pods.\n- **targetPort**: the container port's number, or the exact name the container gives it.\n- **Pods not ready**: diagnose the selected workload; the caller follows it.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Check in CI that every Service {workload} dials selects pods of the same manifests and targets a port they declare."
            ),
            "Rename labels and ports on the Service and its pods in the same change.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Check {}'s Services against their pods before they ship",
                cx.workload.namespace
            ),
            body: format!(
                "During incident {} (#{}) {} could not reach a Service that had no endpoints.\n\n\
                 1. Add a CI check: each Service's selector matches the pod template labels of a workload in the same manifests, and each named `targetPort` is a declared container port.\n\
                 2. Decide whether the app should retry its dependency with back-off instead of exiting at start-up.\n\
                 3. Reproduce: `kubectl logs -n {} {} --previous` and `kubectl get endpoints -n {}`.",
                cx.incident,
                cx.issue,
                cx.workload.name,
                cx.workload.namespace,
                cx.pod,
                cx.workload.namespace
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use squad_protocols::cluster::{ContainerPort, Endpoint};

    use super::*;
    use crate::testing;

    const REFUSED: &str = r#"{"level":"fatal","msg":"stock check failed","error":"dial tcp 10.100.7.31:80: connect: connection refused"}"#;

    fn service(selector: &[(&str, &str)], target_port: &str) -> ServiceInfo {
        ServiceInfo {
            namespace: "default".into(),
            name: "stock".into(),
            cluster_ip: "10.100.7.31".into(),
            selector: selector
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ports: vec![ServicePort {
                name: String::new(),
                port: 80,
                target_port: target_port.into(),
                protocol: "TCP".into(),
            }],
            endpoints: Vec::new(),
            service_type: String::new(),
            external_ips: Vec::new(),
            load_balancer_source_ranges: Vec::new(),
        }
    }

    fn workload(name: &str, labels: &[(&str, &str)], port: (&str, u16)) -> WorkloadInfo {
        let mut w = testing::crashing(&[]).info;
        w.name = name.into();
        w.namespace = "default".into();
        w.pod_labels = labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        w.containers[0].ports = vec![ContainerPort {
            port: port.1,
            name: port.0.into(),
        }];
        w
    }

    #[test]
    fn reads_refusals_in_gos_words() {
        assert_eq!(refused(REFUSED), Some(("10.100.7.31".into(), 80)));
        assert_eq!(refused("dial tcp 10.1.2.3:5432: i/o timeout"), None);
    }

    #[test]
    fn a_selector_that_matches_no_pod_names_the_label_that_differs() {
        let mut f = testing::crashing(&["starting", REFUSED]);
        f.services = vec![service(&[("app", "stock-svc"), ("tier", "api")], "8080")];
        f.neighbours = vec![
            workload("web", &[("app", "web")], ("", 8080)),
            workload(
                "stock",
                &[("app", "stock"), ("tier", "api")],
                ("http", 8080),
            ),
        ];
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert!(
            d.summary.ends_with(
                "cannot connect to Service default/stock (10.100.7.31:80): it has no ready endpoints, its selector matches no pod in default: it asks for app=stock-svc where the pods say app=stock (Deployment stock)"
            ),
            "{}",
            d.summary
        );
        assert!(d.evidence.iter().any(
            |e| e.observation == "Deployment default/stock labels its pods app=stock,tier=api"
        ));
        let reason = testing::escalation(&ServiceWithoutEndpoints, &d);
        assert!(reason.contains("selector"), "{reason}");
    }

    #[test]
    fn a_named_target_port_the_pods_do_not_declare() {
        let mut f = testing::crashing(&[REFUSED]);
        f.services = vec![service(&[("app", "stock")], "http")];
        f.neighbours = vec![workload("stock", &[("app", "stock")], ("web", 9000))];
        let d = testing::diagnosis(&f);
        assert!(
            d.summary.ends_with(
                "its port 80 targets the container port named http, which the pods of Deployment stock do not declare (9000 (web))"
            ),
            "{}",
            d.summary
        );
    }

    #[test]
    fn ready_endpoints_or_another_address_are_not_this_family() {
        let mut svc = service(&[("app", "stock")], "8080");
        svc.endpoints = vec![Endpoint {
            ip: "10.244.1.9".into(),
            pod: "stock-1".into(),
            ready: true,
            port_name: String::new(),
            port: 8080,
        }];
        let mut f = testing::crashing(&[REFUSED]);
        f.services = vec![svc.clone()];
        assert!(
            ServiceWithoutEndpoints
                .detect(&f, &Readings::of(&f))
                .is_none()
        );
        // Not ready: the selected workload is named, with less confidence.
        svc.endpoints[0].ready = false;
        f.services = vec![svc.clone()];
        f.neighbours = vec![workload("stock", &[("app", "stock")], ("", 8080))];
        let d = ServiceWithoutEndpoints
            .detect(&f, &Readings::of(&f))
            .unwrap();
        assert!(
            d.summary
                .ends_with("the pods it selects (stock) are not ready or not running")
        );
        assert!(d.confidence < 0.9);
        // A refusal from an address no Service has.
        svc.cluster_ip = "10.100.9.9".into();
        f.services = vec![svc];
        assert!(
            ServiceWithoutEndpoints
                .detect(&f, &Readings::of(&f))
                .is_none()
        );
    }
}
