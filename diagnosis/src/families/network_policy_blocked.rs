//! NetworkPolicy blocking a dependency: an egress NetworkPolicy selects the app's pods and none
//! of its rules lets their traffic reach something the app needs — most often the cluster's DNS
//! (a default-deny egress policy without UDP/TCP 53 to kube-dns), or a database's port. Nothing
//! in the cluster reports it: the app's lookups or connections time out (`lookup db on
//! 10.96.0.10:53: … i/o timeout`, `dial tcp 10.96.44.12:5432: i/o timeout`), and an app that
//! needs them to start crash-loops. The family reads the timeout from the logs and the
//! namespace's NetworkPolicies, and names the policy and the rule that is missing. The fix (the
//! narrowest allow rule: from these pods to that port, DNS to kube-dns on 53 UDP and TCP) comes
//! with the remediations; until then the crew escalates with the diagnosis. The proof is the
//! connection made and the pods Ready.

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::{Destination, NetworkPolicyInfo, PolicyPeer};
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::{
    Change, Detection, Facts, Family, FollowupContext, IssueDraft, Lookup, Readings, Remedy,
    RemedyInput, RepoNeeds, Runbook, family_signals,
};

mod allow;

pub struct NetworkPolicyBlocked;

pub const ROOT_CAUSE: &str = "network_policy_blocked";

/// What timed out, read from a log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Timeout {
    /// A DNS lookup of `host` through the resolver at `resolver`.
    Lookup { host: String, resolver: String },
    /// A TCP connection to `ip:port`.
    Dial { ip: String, port: u16 },
}

/// Reads a timed-out lookup or connection out of a log line (Go's net package words, which
/// most runtimes' resolvers and clients echo).
pub fn timeout(line: &str) -> Option<Timeout> {
    let lower = line.to_lowercase();
    if !(lower.contains("i/o timeout") || lower.contains("timed out")) {
        return None;
    }
    if let Some(i) = line.find("lookup ") {
        let rest = &line[i + 7..];
        let (host, rest) = rest.split_once(" on ")?;
        let resolver = rest.split([':', ' ']).next()?.to_owned();
        return Some(Timeout::Lookup {
            host: host.to_owned(),
            resolver,
        });
    }
    let (ip, port) = dialled(line)?;
    Some(Timeout::Dial { ip, port })
}

/// The address a log line says was dialled (`dial tcp 10.96.44.12:5432: …`).
pub fn dialled(line: &str) -> Option<(String, u16)> {
    let i = line.find("dial tcp ")?;
    let addr = line[i + 9..]
        .split([' ', ','])
        .next()?
        .trim_end_matches(':');
    let (ip, port) = addr.rsplit_once(':')?;
    Some((ip.to_owned(), port.parse().ok()?))
}

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySignals {
    pub timeout: Timeout,
    /// The policies that restrict the pods' egress.
    pub policies: Vec<String>,
    /// The log line.
    pub line: String,
    /// A policy that allows what timed out but no longer selects the pods, and the labels it
    /// selects (the labels the pods lost).
    #[serde(default)]
    pub missed: Option<(String, std::collections::BTreeMap<String, String>)>,
}

fn selector_words(kind: &str, s: &std::collections::BTreeMap<String, String>) -> String {
    if s.is_empty() {
        format!("all {kind}")
    } else {
        format!(
            "{kind} {}",
            s.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        )
    }
}

fn peer_words(p: &PolicyPeer) -> String {
    if let Some((cidr, _)) = &p.ip_block {
        return cidr.clone();
    }
    let mut parts = Vec::new();
    if let Some(s) = &p.pod_selector {
        parts.push(selector_words("pods", s));
    }
    if let Some(s) = &p.namespace_selector {
        parts.push(format!("in {}", selector_words("namespaces", s)));
    }
    parts.join(" ")
}

/// What a policy's egress rules allow, in words.
fn allows_words(p: &NetworkPolicyInfo) -> String {
    if p.egress.is_empty() {
        return "nothing".into();
    }
    p.egress
        .iter()
        .map(|r| {
            let ports = if r.ports.is_empty() {
                "every port".to_owned()
            } else {
                r.ports
                    .iter()
                    .map(|p| format!("{} {}", p.protocol, p.port.as_deref().unwrap_or("any")))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let to = if r.to.is_empty() {
                "anywhere".to_owned()
            } else {
                r.to.iter().map(peer_words).collect::<Vec<_>>().join(" or ")
            };
            format!("{ports} to {to}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// kube-dns as a NetworkPolicy sees it, at `resolver`.
fn kube_dns(resolver: &str, protocol: &str) -> Destination {
    Destination {
        namespace: "kube-system".into(),
        namespace_labels: [(
            "kubernetes.io/metadata.name".to_owned(),
            "kube-system".to_owned(),
        )]
        .into(),
        pod_labels: [("k8s-app".to_owned(), "kube-dns".to_owned())].into(),
        ip: resolver.into(),
        port: 53,
        protocol: protocol.into(),
    }
}

/// The policies that would let the pods' traffic reach `dest` but do not select them: each with
/// the labels its podSelector asks for that the pods do not carry (`tier=backend (the pods:
/// tier=api)`). An allow that misses the pods after their labels changed.
fn missed_allows(facts: &Facts, dest: &Destination) -> Vec<(String, Vec<String>)> {
    let labels = &facts.info.pod_labels;
    let ns = facts.workload.namespace.as_str();
    facts
        .network_policies
        .iter()
        .filter(|p| !p.selects(labels) && p.egress.iter().any(|r| r.allows(ns, dest)))
        .map(|p| {
            let wanted = p
                .pod_selector
                .iter()
                .filter(|(k, v)| labels.get(*k) != Some(*v))
                .map(|(k, v)| {
                    let theirs = labels
                        .get(k)
                        .map_or_else(|| format!("no {k} label"), |x| format!("{k}={x}"));
                    format!("{k}={v} (the pods: {theirs})")
                })
                .collect();
            (p.name.clone(), wanted)
        })
        .collect()
}

/// The last rollout's change of the pods' labels, in words (`tier=backend → tier=api`).
fn label_change(facts: &Facts) -> Option<(String, String)> {
    let c = crate::readings::last_rollout_change(facts, |r| {
        (!r.pod_labels.is_empty()).then(|| r.pod_labels.clone())
    })?;
    let changed: Vec<String> = c
        .before
        .iter()
        .filter(|(k, v)| c.after.get(*k) != Some(*v))
        .map(|(k, v)| {
            c.after.get(k).map_or_else(
                || format!("{k}={v} dropped"),
                |now| format!("{k}={v} → {k}={now}"),
            )
        })
        .collect();
    (!changed.is_empty()).then(|| (c.ago, changed.join(", ")))
}

impl Family for NetworkPolicyBlocked {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        None
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let (line, timeout) = facts
            .logs
            .iter()
            .rev()
            .find_map(|l| timeout(l).map(|t| (l.clone(), t)))?;
        let ns = facts.workload.namespace.as_str();
        let labels = &facts.info.pod_labels;
        let isolating: Vec<&NetworkPolicyInfo> = facts
            .network_policies
            .iter()
            .filter(|p| p.selects(labels) && p.isolates_egress())
            .collect();
        // No egress policy selects the pods: the timeout comes from elsewhere.
        if isolating.is_empty() {
            return None;
        }
        let names: Vec<String> = isolating.iter().map(|p| p.name.clone()).collect();
        let mut d = Detection::new(String::new(), 0.85, &[]);
        d.evidence.push(Evidence {
            source: "container logs".into(),
            observation: line.clone(),
        });
        for p in &isolating {
            d.evidence.push(Evidence {
                source: "NetworkPolicies".into(),
                observation: format!(
                    "{} selects the pods ({}) and restricts their egress to: {}",
                    p.name,
                    selector_words("pods", &p.pod_selector),
                    allows_words(p)
                ),
            });
        }
        let policies: Vec<NetworkPolicyInfo> = isolating.iter().map(|p| (*p).clone()).collect();
        let allowed =
            |dest: &Destination| NetworkPolicyInfo::egress_allowed(&policies, ns, labels, dest);
        let which = names.join(", ");
        let (what, recommendation) = match &timeout {
            Timeout::Lookup { host, resolver } => {
                let dns = kube_dns(resolver, "UDP");
                if allowed(&dns) {
                    // DNS is allowed: the timeout is not the policy's.
                    return None;
                }
                d.confidence = 0.9;
                // A policy that allows DNS exists, but no longer selects the pods.
                if let Some((allow, wanted)) = missed_allows(facts, &dns).into_iter().next() {
                    let selector = facts
                        .network_policies
                        .iter()
                        .find(|p| p.name == allow)
                        .map(|p| p.pod_selector.clone())
                        .unwrap_or_default();
                    let since = label_change(facts).map_or(String::new(), |(ago, change)| {
                        d.evidence.push(Evidence {
                            source: "rollout history".into(),
                            observation: format!(
                                "the last rollout ({ago}) changed the pods' labels: {change}"
                            ),
                        });
                        format!(" since the last rollout ({ago}) changed their labels ({change})")
                    });
                    d.evidence.push(Evidence {
                        source: "NetworkPolicies".into(),
                        observation: format!(
                            "{allow} allows DNS but selects {}",
                            wanted.join(", ")
                        ),
                    });
                    d.confidence = 0.95;
                    d.summary = format!(
                        "{} cannot resolve {host}: {allow}, which allows DNS, no longer selects its pods ({}){since}, so only {which} applies and every lookup times out",
                        facts.workload.name,
                        wanted.join(", ")
                    );
                    d.recommendations.push(format!(
                        "give the pods back the labels {allow} selects, or point {allow}'s podSelector at the labels they carry now — not a new rule in {which}"
                    ));
                    d.recommendations
                        .push("never open egress to everything to fix one missing rule".into());
                    d.signals = serde_json::to_value(PolicySignals {
                        timeout: timeout.clone(),
                        policies: names,
                        line,
                        missed: Some((allow, selector)),
                    })
                    .ok();
                    return Some(d);
                }
                (
                    format!(
                        "cannot resolve {host}: the egress NetworkPolicy {which} selecting its pods allows no DNS (port 53 to kube-dns), so every lookup times out"
                    ),
                    format!(
                        "allow the pods' egress to kube-dns in {which}: to namespaceSelector kubernetes.io/metadata.name=kube-system with podSelector k8s-app=kube-dns, ports UDP 53 and TCP 53"
                    ),
                )
            }
            Timeout::Dial { ip, port } => {
                let any_port = policies.iter().any(|p| {
                    p.egress.iter().any(|r| {
                        r.ports.is_empty()
                            || r.ports.iter().any(|pp| {
                                pp.protocol.eq_ignore_ascii_case("TCP")
                                    && pp
                                        .port
                                        .as_deref()
                                        .and_then(|x| x.parse::<u16>().ok())
                                        .is_none_or(|n| {
                                            *port >= n && *port <= pp.end_port.unwrap_or(n)
                                        })
                            })
                    })
                });
                if any_port {
                    d.confidence = 0.7;
                    (
                        format!(
                            "cannot connect to {ip}:{port}: the egress NetworkPolicy {which} selecting its pods allows TCP {port} only to some peers, and the connection times out"
                        ),
                        format!(
                            "check that the pods behind {ip}:{port} match a peer of {which}'s egress rules (their labels and namespace), and allow exactly them"
                        ),
                    )
                } else {
                    d.confidence = 0.9;
                    (
                        format!(
                            "cannot connect to {ip}:{port}: the egress NetworkPolicy {which} selecting its pods allows no traffic to TCP port {port}, so the connection times out"
                        ),
                        format!(
                            "allow the pods' egress to TCP {port} in {which}, only to the pods behind {ip} (their podSelector and namespaceSelector)"
                        ),
                    )
                }
            }
        };
        d.summary = format!("{} {what}", facts.workload.name);
        d.recommendations.push(recommendation);
        d.recommendations
            .push("never open egress to everything to fix one missing rule".into());
        d.signals = serde_json::to_value(PolicySignals {
            timeout,
            policies: names,
            line,
            missed: None,
        })
        .ok();
        Some(d)
    }

    fn lookups(&self, facts: &Facts) -> Vec<Lookup> {
        if facts.logs.iter().any(|l| timeout(l).is_some()) {
            vec![Lookup::NetworkPolicies]
        } else {
            Vec::new()
        }
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the egress NetworkPolicies selecting the pods against what the app connects to",
            ),
            (
                Member::Worf,
                "that the allow rule stays the narrowest: those pods, that port",
            ),
            (
                Member::Data,
                "every dependency the app dials at start-up, with its host and port",
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
        family_signals::<PolicySignals>(d)
            .map(|s| {
                s.policies
                    .into_iter()
                    .map(|p| ("NetworkPolicy".to_owned(), p))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        let human = "a human adds the narrowest allow rule (DNS to kube-dns on 53 UDP and TCP, or the dependency's port)";
        let Some(s) = family_signals::<PolicySignals>(d) else {
            return Remedy::not_yet("NetworkPolicies blocking a dependency", d, human);
        };
        // The pods lost the labels an allow policy selects: the last deploy's labels go back,
        // when the ones before it are those the policy selects (no rule is widened).
        if let Some((allow, selector)) = &s.missed {
            if let Some((change, before)) = crate::undo::template_change(
                input,
                &[&["metadata", "labels"]],
                &format!("{allow}, which allows the pods' DNS, no longer selects them"),
                "the deploy relabelled the pods out of their allow policy",
            ) && selector.iter().all(|(k, v)| {
                crate::undo::template_of(input.workload, &before)["metadata"]["labels"][k].as_str()
                    == Some(v)
            }) {
                return Remedy::Change(change);
            }
            return Remedy::Escalate {
                reason: format!(
                    "{}; the last deploy did not change the pods' labels from the ones {allow} selects: a human decides whether the pods or the policy's podSelector changes",
                    d.summary
                ),
            };
        }
        let Timeout::Lookup { host, .. } = &s.timeout else {
            return Remedy::not_yet("a blocked connection to a dependency", d, human);
        };
        let Some(policy) = s
            .policies
            .iter()
            .find_map(|p| input.repo.object("NetworkPolicy", p))
        else {
            return Remedy::Escalate {
                reason: format!(
                    "{} (the GitOps repository declares none of {}); {human}",
                    d.summary,
                    s.policies.join(", ")
                ),
            };
        };
        let Some(edit) = allow::dns_egress(policy) else {
            return Remedy::not_yet("this NetworkPolicy's shape", d, human);
        };
        let why = format!(
            "{} cannot resolve {host}: the egress policy {} selecting its pods allows no DNS",
            input.workload.name, policy.name
        );
        Remedy::Change(Change {
            branch_word: "allow-dns".into(),
            title: format!(
                "fix(netpol): allow {}'s DNS lookups in {}",
                input.workload.name, policy.name
            ),
            edits: vec![edit],
            notes: format!(
                "### The narrowest allow rule\n{why}. This PR appends one egress rule to `{}` ({}): to the pods labelled `k8s-app=kube-dns` in namespace `kube-system`, on UDP 53 and TCP 53 (large answers fall back to TCP). Every other rule, and the policy's default deny, stay as they are.\n",
                policy.name, policy.path
            ),
            findings: vec![squad_protocols::Finding {
                severity: squad_protocols::Severity::High,
                title: "egress policy allows no DNS".into(),
                detail: why,
            }],
        })
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "networkpolicy-blocked".into(),
            meaning: "An egress NetworkPolicy selects the app's pods and none of its rules lets them reach something the app needs: the cluster's DNS (no port 53 to kube-dns) or a dependency's port. Nothing in the cluster reports it; the app's lookups or connections time out (`i/o timeout`), and an app that needs them to start crash-loops.".into(),
            checks: "1. `kubectl logs -n <ns> <pod> --previous` — `lookup <host> on <dns>:53: … i/o timeout` or `dial tcp <ip>:<port>: i/o timeout`.\n2. `kubectl get networkpolicy -n <ns> -o yaml`: which policies select the pods (`podSelector`) and have `Egress` in `policyTypes`; what their `egress` rules allow.\n3. `kubectl get pods -n kube-system -l k8s-app=kube-dns --show-labels` and the dependency's pod labels and namespace labels.\n4. The GitOps diff that added or changed the policy.".into(),
            fixes: "- **DNS**: allow egress to `namespaceSelector: {kubernetes.io/metadata.name: kube-system}` + `podSelector: {k8s-app: kube-dns}` on UDP 53 and TCP 53.\n- **A dependency**: allow egress to exactly its pods (podSelector and namespaceSelector) on its port.\n- Never replace a default-deny with allow-all; never widen to `0.0.0.0/0` for an in-cluster dependency.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Ship {workload}'s egress policy with every dependency and DNS listed, and test it in a staging namespace with the same policies."
            ),
            "A default-deny egress policy always needs the DNS rule.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "List {}'s network dependencies next to its egress NetworkPolicy",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) an egress NetworkPolicy kept {} from reaching a dependency.\n\n\
                 1. List every host and port the app dials (config, client libraries, DNS) in the repository beside the policy.\n\
                 2. Test the policy in CI or staging: start the pods under it and check each connection.\n\
                 3. Reproduce: `kubectl logs -n {} {} --previous` and `kubectl get networkpolicy -n {} -o yaml`.",
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
    use std::collections::BTreeMap;

    use squad_protocols::cluster::{EgressRule, PolicyPort};

    use super::*;
    use crate::testing;

    const DNS_TIMEOUT: &str = "failed to connect to orders-db: dial tcp: lookup orders-db.data.svc.cluster.local on 10.96.0.10:53: read udp 10.244.1.7:41234->10.96.0.10:53: i/o timeout";

    fn port(protocol: &str, n: &str) -> PolicyPort {
        PolicyPort {
            protocol: protocol.into(),
            port: Some(n.into()),
            end_port: None,
        }
    }

    fn egress_only(rules: Vec<EgressRule>) -> NetworkPolicyInfo {
        NetworkPolicyInfo {
            name: "cart-egress".into(),
            pod_selector: BTreeMap::from([("app".into(), "cart".into())]),
            policy_types: vec!["Egress".into()],
            ingress_rules: 0,
            egress_rules: rules.len(),
            egress: rules,
            ingress: Vec::new(),
        }
    }

    fn to_payments() -> EgressRule {
        EgressRule {
            to: vec![PolicyPeer {
                pod_selector: Some(BTreeMap::from([("app".into(), "payments".into())])),
                namespace_selector: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".into(),
                    "payments".into(),
                )])),
                ip_block: None,
            }],
            ports: vec![port("TCP", "8443")],
        }
    }

    #[test]
    fn reads_timeouts_in_gos_words() {
        assert_eq!(
            timeout(DNS_TIMEOUT),
            Some(Timeout::Lookup {
                host: "orders-db.data.svc.cluster.local".into(),
                resolver: "10.96.0.10".into()
            })
        );
        assert_eq!(
            timeout("failed to connect to orders-db: dial tcp 10.96.44.12:5432: i/o timeout"),
            Some(Timeout::Dial {
                ip: "10.96.44.12".into(),
                port: 5432
            })
        );
        assert_eq!(
            timeout("dial tcp 10.96.44.12:5432: connect: connection refused"),
            None
        );
    }

    #[test]
    fn a_default_deny_egress_without_dns_is_named() {
        let mut f = testing::crashing(&["starting cart", DNS_TIMEOUT]);
        f.network_policies = vec![egress_only(vec![to_payments()])];
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "cart cannot resolve orders-db.data.svc.cluster.local: the egress NetworkPolicy cart-egress selecting its pods allows no DNS (port 53 to kube-dns), so every lookup times out"
        );
        assert!(d.evidence.iter().any(|e| e.observation == "cart-egress selects the pods (pods app=cart) and restricts their egress to: TCP 8443 to pods app=payments in namespaces kubernetes.io/metadata.name=payments"));
        let reason = testing::escalation(&NetworkPolicyBlocked, &d);
        assert!(reason.contains("kube-dns"), "{reason}");
    }

    #[test]
    fn a_port_no_rule_allows_and_timeouts_without_a_policy() {
        let dial = "dial tcp 10.96.44.12:5432: i/o timeout";
        let mut f = testing::crashing(&[dial]);
        let dns = EgressRule {
            to: Vec::new(),
            ports: vec![port("UDP", "53"), port("TCP", "53")],
        };
        f.network_policies = vec![egress_only(vec![to_payments(), dns.clone()])];
        let d = testing::diagnosis(&f);
        assert!(
            d.summary
                .ends_with("allows no traffic to TCP port 5432, so the connection times out"),
            "{}",
            d.summary
        );
        // DNS allowed: a lookup that times out is not the policy's doing.
        let mut f = testing::crashing(&[DNS_TIMEOUT]);
        f.network_policies = vec![egress_only(vec![dns])];
        assert!(NetworkPolicyBlocked.detect(&f, &Readings::of(&f)).is_none());
        // No policy selects the pods.
        let f = testing::crashing(&[dial]);
        assert!(NetworkPolicyBlocked.detect(&f, &Readings::of(&f)).is_none());
    }

    /// The namespace denies egress to every pod, and an allow policy for DNS selects
    /// `tier=backend`: the last rollout relabelled the pods `tier=api`, so the allow misses
    /// them. The fix is the label, not a rule in the default-deny.
    #[test]
    fn an_allow_that_no_longer_selects_the_relabelled_pods_is_named() {
        let mut f = testing::crashing(&[DNS_TIMEOUT]);
        f.info.pod_labels.insert("tier".into(), "api".into());
        let mut before = f.info.pod_labels.clone();
        before.insert("tier".into(), "backend".into());
        f.history[0].pod_labels = before;
        f.history.last_mut().unwrap().pod_labels = f.info.pod_labels.clone();
        let deny = NetworkPolicyInfo {
            name: "default-deny-egress".into(),
            pod_selector: BTreeMap::new(),
            policy_types: vec!["Egress".into()],
            ingress_rules: 0,
            egress_rules: 0,
            egress: Vec::new(),
            ingress: Vec::new(),
        };
        let mut allow = egress_only(vec![EgressRule {
            to: Vec::new(),
            ports: vec![port("UDP", "53"), port("TCP", "53")],
        }]);
        allow.name = "allow-dns".into();
        allow.pod_selector = BTreeMap::from([("tier".into(), "backend".into())]);
        f.network_policies = vec![deny, allow];
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "cart cannot resolve orders-db.data.svc.cluster.local: allow-dns, which allows DNS, no longer selects its pods (tier=backend (the pods: tier=api)) since the last rollout (30 h ago) changed their labels (tier=backend → tier=api), so only default-deny-egress applies and every lookup times out"
        );
        assert!(
            d.recommendations[0].starts_with("give the pods back the labels allow-dns selects"),
            "{:?}",
            d.recommendations
        );
    }
}
