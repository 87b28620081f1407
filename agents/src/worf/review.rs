//! Worf's reviews: pure functions from what was read (the image's scan, the ServiceAccount's
//! RBAC, the NetworkPolicies, the pod template) to findings.

use squad_diagnosis::security::pss;
use squad_protocols::cluster::{
    ImageVulnerability, NetworkPolicyInfo, PolicyPeer, PolicyPort, RbacRule, WorkloadInfo,
};
use squad_protocols::{Finding, Severity};
use squad_runtime::redact::Redactor;

fn severity_of(s: &str) -> Severity {
    match s.to_ascii_lowercase().as_str() {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" | "moderate" => Severity::Medium,
        "low" => Severity::Low,
        _ => Severity::Info,
    }
}

pub fn review_image(image: &str, vulns: &[ImageVulnerability]) -> Vec<Finding> {
    vulns
        .iter()
        .map(|v| Finding {
            severity: severity_of(&v.severity),
            title: format!("{} in {} {} ({})", v.id, v.package, v.installed, image),
            detail: format!("{}; fixed in {}", v.title, v.fixed),
        })
        .collect()
}

/// The ServiceAccount's RBAC, as kube-score, kubesec and Trivy's misconfiguration checks read
/// it: a binding to a built-in role by name (`cluster-admin` Critical cluster-wide and High in a
/// namespace, `admin` and `edit` High: they read Secrets and exec into pods), wildcards in verbs
/// or resources (Critical) or API groups (High), the verbs that escalate (`escalate`, `bind`,
/// `impersonate`: Critical), `nodes/proxy` (the kubelet's API: Critical), `pods/exec` and
/// `pods/attach` (High), Secrets readable without `resourceNames` (High), and any other
/// cluster-wide binding (Medium). One finding per binding and check.
pub fn review_rbac(sa: &str, rules: &[RbacRule]) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut push = |f: Finding| {
        if !out.iter().any(|o| o.title == f.title) {
            out.push(f);
        }
    };
    let has = |v: &[String], x: &str| v.iter().any(|s| s == x || s == "*");
    for r in rules {
        let role = r.role.rsplit('/').next().unwrap_or(&r.role);
        let scope = if r.cluster_wide {
            "in every namespace"
        } else {
            "in its namespace"
        };
        if r.role.starts_with("ClusterRole/") && matches!(role, "cluster-admin" | "admin" | "edit")
        {
            push(Finding {
                severity: if role == "cluster-admin" && r.cluster_wide {
                    Severity::Critical
                } else {
                    Severity::High
                },
                title: format!(
                    "ServiceAccount {sa} is bound to the built-in {role} role {scope} via {}",
                    r.binding
                ),
                detail: format!(
                    "{role} can read every Secret and exec into pods{}: a compromised pod takes over what it reaches; bind a Role with the verbs the app calls",
                    if role == "cluster-admin" {
                        ", and change anything"
                    } else {
                        ""
                    }
                ),
            });
        }
        if r.verbs.iter().any(|v| v == "*") || r.resources.iter().any(|v| v == "*") {
            push(Finding {
                severity: Severity::Critical,
                title: format!(
                    "ServiceAccount {sa} has wildcard permissions via {}",
                    r.role
                ),
                detail: format!(
                    "verbs {:?} on resources {:?} (binding {})",
                    r.verbs, r.resources, r.binding
                ),
            });
        } else if r.api_groups.iter().any(|g| g == "*") {
            push(Finding {
                severity: Severity::High,
                title: format!(
                    "ServiceAccount {sa} is granted {:?} in every API group via {}",
                    r.resources, r.role
                ),
                detail: format!(
                    "apiGroups [\"*\"] reaches any resource of that name a CRD adds (binding {})",
                    r.binding
                ),
            });
        }
        let escalating: Vec<&String> = r
            .verbs
            .iter()
            .filter(|v| matches!(v.as_str(), "escalate" | "bind" | "impersonate"))
            .collect();
        if !escalating.is_empty() {
            push(Finding {
                severity: Severity::Critical,
                title: format!("ServiceAccount {sa} can {escalating:?} via {}", r.role),
                detail: format!(
                    "on {:?} (binding {}): it can grant itself, or act as, more than it holds",
                    r.resources, r.binding
                ),
            });
        }
        if r.resources.iter().any(|x| x == "nodes/proxy") {
            push(Finding {
                severity: Severity::Critical,
                title: format!(
                    "ServiceAccount {sa} can reach the kubelet API (nodes/proxy) via {}",
                    r.role
                ),
                detail: format!(
                    "verbs {:?} (binding {}): the kubelet's API runs commands in any pod on the node",
                    r.verbs, r.binding
                ),
            });
        }
        let exec: Vec<&String> = r
            .resources
            .iter()
            .filter(|x| matches!(x.as_str(), "pods/exec" | "pods/attach"))
            .collect();
        if !exec.is_empty() && (has(&r.verbs, "create") || has(&r.verbs, "get")) {
            push(Finding {
                severity: Severity::High,
                title: format!(
                    "ServiceAccount {sa} can exec into pods {scope} via {}",
                    r.role
                ),
                detail: format!("{exec:?} with verbs {:?} (binding {})", r.verbs, r.binding),
            });
        }
        let reads = r
            .verbs
            .iter()
            .any(|v| matches!(v.as_str(), "get" | "list" | "watch" | "*"));
        if has(&r.resources, "secrets") && reads && r.resource_names.is_empty() {
            push(Finding {
                severity: Severity::High,
                title: format!(
                    "ServiceAccount {sa} can read all Secrets {scope} via {}",
                    r.role
                ),
                detail: format!(
                    "verbs {:?} on secrets without resourceNames (binding {}): a compromised pod reads every credential; restrict to the Secrets it mounts with resourceNames, and drop list/watch",
                    r.verbs, r.binding
                ),
            });
        }
        if r.cluster_wide {
            push(Finding {
                severity: Severity::Medium,
                title: format!(
                    "ServiceAccount {sa} is bound cluster-wide via {}",
                    r.binding
                ),
                detail: format!("verbs {:?} on {:?}", r.verbs, r.resources),
            });
        }
    }
    out
}

/// A token mounted into pods whose ServiceAccount is granted nothing: the app does not call the
/// API, so the token only serves whoever takes over the pod.
pub fn review_token(w: &WorkloadInfo, rules: &[RbacRule]) -> Option<Finding> {
    let spec = &w.pod_security["spec"];
    let automount = spec["automountServiceAccountToken"].as_bool();
    (rules.is_empty() && automount != Some(false) && !w.pod_security.is_null()).then(|| Finding {
        severity: Severity::Low,
        title: format!(
            "{}'s pods mount a ServiceAccount token ({}) though it is granted nothing",
            w.name, w.service_account
        ),
        detail: "set automountServiceAccountToken: false in the pod template".into(),
    })
}

/// What a rule's peer opens the pods to, when it opens them wide: every pod of every namespace
/// (`namespaceSelector: {}` without a narrower `podSelector`), or every address (`0.0.0.0/0` or
/// `::/0` with no exception).
fn wide_peer(p: &PolicyPeer) -> Option<&'static str> {
    let every = |s: &Option<std::collections::BTreeMap<String, String>>| {
        s.as_ref().is_none_or(|m| m.is_empty())
    };
    if p.namespace_selector.as_ref().is_some_and(|m| m.is_empty()) && every(&p.pod_selector) {
        return Some("every pod of every namespace");
    }
    match &p.ip_block {
        Some((cidr, except)) if (cidr == "0.0.0.0/0" || cidr == "::/0") && except.is_empty() => {
            Some("every address (in the cluster or not)")
        }
        _ => None,
    }
}

fn port_list(ports: &[PolicyPort]) -> String {
    if ports.is_empty() {
        return "on every port".into();
    }
    let each: Vec<String> = ports
        .iter()
        .map(|p| match (&p.port, p.end_port) {
            (Some(port), Some(end)) => format!("{port}-{end}/{}", p.protocol),
            (Some(port), None) => format!("{port}/{}", p.protocol),
            (None, _) => format!("every {} port", p.protocol),
        })
        .collect();
    format!("on {}", each.join(", "))
}

/// The workload's NetworkPolicies, as kube-score, Trivy and the Kubernetes hardening guidance
/// read them: no policy selecting the pods (High: every pod of the cluster, and anything that
/// reaches a node, can connect, and the pods can reach anything); ingress or egress left
/// unrestricted by the policies that do select them (Medium); an ingress rule open to every
/// source, to every namespace or to every address (Medium); an egress rule to every destination
/// (Medium) or to every address (Low: the internet). One finding per policy and rule.
pub fn review_network(w: &WorkloadInfo, policies: &[NetworkPolicyInfo]) -> Vec<Finding> {
    let selecting: Vec<&NetworkPolicyInfo> = policies
        .iter()
        .filter(|p| p.selects(&w.pod_labels))
        .collect();
    if selecting.is_empty() {
        return vec![Finding {
            severity: Severity::High,
            title: format!("no NetworkPolicy selects {}'s pods", w.name),
            detail: "all ingress and egress are allowed; add a default-deny policy and allow the callers".into(),
        }];
    }
    let names = |ps: &[&NetworkPolicyInfo]| {
        ps.iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    let ingress: Vec<&NetworkPolicyInfo> = selecting
        .iter()
        .copied()
        .filter(|p| p.isolates_ingress())
        .collect();
    if ingress.is_empty() {
        out.push(Finding {
            severity: Severity::Medium,
            title: format!("ingress to {} is unrestricted", w.name),
            detail: format!(
                "policies {} restrict egress only: any pod of the cluster can connect; add an Ingress policy allowing the callers",
                names(&selecting)
            ),
        });
    }
    for p in &ingress {
        for (i, rule) in p.ingress.iter().enumerate() {
            let opened = if rule.from.is_empty() {
                Some("every source (in the cluster or not)")
            } else {
                rule.from.iter().find_map(wide_peer)
            };
            if let Some(what) = opened {
                out.push(Finding {
                    severity: Severity::Medium,
                    title: format!(
                        "NetworkPolicy {} lets {what} reach {}'s pods {}",
                        p.name,
                        w.name,
                        port_list(&rule.ports)
                    ),
                    detail: format!(
                        "ingress rule {i} of {}: name the callers with a podSelector, or their namespaces with a labelled namespaceSelector",
                        p.name
                    ),
                });
            }
        }
    }
    let egress: Vec<&NetworkPolicyInfo> = selecting
        .iter()
        .copied()
        .filter(|p| p.isolates_egress())
        .collect();
    if egress.is_empty() {
        out.push(Finding {
            severity: Severity::Medium,
            title: format!("egress from {} is unrestricted", w.name),
            detail: format!(
                "policies {} restrict ingress only: a compromised pod can reach any address; add an Egress policy allowing DNS (53/UDP and 53/TCP to kube-dns) and the services {} calls",
                names(&selecting),
                w.name
            ),
        });
    }
    for p in &egress {
        for (i, rule) in p.egress.iter().enumerate() {
            // DNS to anywhere is the usual rule every egress policy needs.
            let dns_only = !rule.ports.is_empty()
                && rule.ports.iter().all(|p| p.port.as_deref() == Some("53"));
            let (severity, what) = if dns_only {
                continue;
            } else if rule.to.is_empty() {
                (Severity::Medium, "every destination")
            } else if let Some(what) = rule.to.iter().find_map(wide_peer) {
                (Severity::Low, what)
            } else {
                continue;
            };
            out.push(Finding {
                severity,
                title: format!(
                    "NetworkPolicy {} lets {}'s pods reach {what} {}",
                    p.name,
                    w.name,
                    port_list(&rule.ports)
                ),
                detail: format!(
                    "egress rule {i} of {}: list the destinations the app calls",
                    p.name
                ),
            });
        }
    }
    out
}

/// The Pod Security Standards on the workload's pod template: the level it meets as the first
/// finding (Info), then every control it breaks — Critical for what hands over the node
/// (privileged, host namespaces, hostPath), High for the rest of `baseline`, Medium for
/// `restricted` — and a writable root filesystem (Medium; Trivy's KSV014 and kube-score, not a
/// PSS control).
/// A workload read without its template's security view gets the older per-field checks.
pub fn review_pod_security(w: &WorkloadInfo) -> Vec<Finding> {
    if w.pod_security.is_null() {
        return review_pod_security_fields(w);
    }
    let e = pss::evaluate(&w.pod_security["spec"], &w.pod_security["annotations"]);
    let level = e.level();
    let mut out = Vec::new();
    if level < pss::Level::Restricted {
        out.push(Finding {
            severity: Severity::Info,
            title: format!(
                "{}'s pods meet the Pod Security Standards' {level} level, not restricted",
                w.name
            ),
            detail: format!(
                "{} control(s) keep them from restricted{}",
                e.violations.len(),
                if level == pss::Level::Privileged {
                    ", some of them from baseline: a namespace enforcing baseline refuses these pods"
                } else {
                    ""
                }
            ),
        });
    }
    for v in &e.violations {
        let severity = match (v.level, v.control) {
            (
                pss::Level::Baseline,
                "Privileged Containers" | "Host Namespaces" | "HostPath Volumes",
            ) => Severity::Critical,
            (pss::Level::Baseline, _) => Severity::High,
            _ => Severity::Medium,
        };
        out.push(Finding {
            severity,
            title: format!("{} ({}): {}", v.control, v.level, v.field),
            detail: format!("the Pod Security Standards' {} profile forbids it", v.level),
        });
    }
    for c in w
        .init_containers
        .iter()
        .chain(&w.containers)
        .filter(|c| c.read_only_root_filesystem != Some(true))
    {
        out.push(Finding {
            severity: Severity::Medium,
            title: format!("container {} has a writable root filesystem", c.name),
            detail: "an intruder can drop tools and change the app's files; set readOnlyRootFilesystem: true and mount an emptyDir where it writes (KSV014, kube-score)".into(),
        });
    }
    out
}

/// The per-field checks, for a workload read without its template's security view.
fn review_pod_security_fields(w: &WorkloadInfo) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in &w.containers {
        if c.privileged == Some(true) {
            out.push(Finding {
                severity: Severity::Critical,
                title: format!("container {} runs privileged", c.name),
                detail: "drop privileged: true".into(),
            });
        }
        if c.run_as_non_root.or(w.pod_run_as_non_root) != Some(true) {
            out.push(Finding {
                severity: Severity::Medium,
                title: format!("container {} may run as root", c.name),
                detail: "set runAsNonRoot: true".into(),
            });
        }
        if c.allow_privilege_escalation != Some(false) {
            out.push(Finding {
                severity: Severity::Low,
                title: format!("container {} allows privilege escalation", c.name),
                detail: "set allowPrivilegeEscalation: false".into(),
            });
        }
        if c.read_only_root_filesystem != Some(true) {
            out.push(Finding {
                severity: Severity::Low,
                title: format!("container {} has a writable root filesystem", c.name),
                detail: "set readOnlyRootFilesystem: true".into(),
            });
        }
    }
    out
}

/// The files of the GitOps repository Worf scans for literal credentials: text a deploy reads.
pub fn scanned_for_secrets(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    [
        ".yaml",
        ".yml",
        ".json",
        ".env",
        ".properties",
        ".toml",
        ".ini",
        ".conf",
        ".tpl",
    ]
    .iter()
    .any(|ext| name.ends_with(ext))
        || name == ".env"
}

/// Literal credentials in the GitOps repository, found by the redaction gateway's detectors
/// (and the values of the namespace's Secrets, which the incident's redactor knows): one
/// finding per file with each line and kind — never the value. High: whoever reads the
/// repository, or its history, holds them.
pub fn review_repository_secrets(files: &[(String, String)], redactor: &Redactor) -> Vec<Finding> {
    files
        .iter()
        .filter_map(|(path, text)| {
            let found = redactor.locate(text);
            (!found.is_empty()).then(|| Finding {
                severity: Severity::High,
                title: format!("credentials written in the GitOps repository: {path}"),
                detail: format!(
                    "{}: move them to a Secret kept out of Git (sealed, SOPS-encrypted or an external store) and reference it; rotate them, the history keeps them",
                    found
                        .iter()
                        .map(|(line, kind)| format!("line {line} ({kind})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        })
        .collect()
}

/// Literal credentials in the namespace's ConfigMaps as the cluster holds them (Trivy's KSV109),
/// by the same detectors: one finding per ConfigMap with each key, line and kind — never the
/// value. High: ConfigMaps are read by far more than Secrets are (`view` grants them).
pub fn review_config_map_secrets(
    namespace: &str,
    data: &[(String, String, String)],
    redactor: &Redactor,
) -> Vec<Finding> {
    let mut by_map: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (map, key, value) in data {
        for (line, kind) in redactor.locate(value) {
            by_map
                .entry(map)
                .or_default()
                .push(format!("key {key} line {line} ({kind})"));
        }
    }
    by_map
        .into_iter()
        .map(|(map, places)| Finding {
            severity: Severity::High,
            title: format!("credentials in ConfigMap {namespace}/{map}"),
            detail: format!(
                "{}: ConfigMaps are readable by anyone with `view` in the namespace; move them to a Secret and reference it, then rotate them",
                places.join(", ")
            ),
        })
        .collect()
}

/// Literal credentials in the running pod template: an `env` item's `value:` or an argument
/// that the redaction gateway's detectors (or the namespace's Secret values) recognise. High:
/// anyone who can read the Deployment (`get` on it, `kubectl describe`, the ReplicaSets, the
/// GitOps history) holds the credential. Names the container, the variable or argument and the
/// kind — never the value.
pub fn review_live_credentials(w: &WorkloadInfo, redactor: &Redactor) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in w.init_containers.iter().chain(&w.containers) {
        for e in &c.env {
            let Some(literal) = &e.literal else { continue };
            let kinds: Vec<&str> = redactor
                .locate(&format!("{}={}", e.name, literal.0))
                .into_iter()
                .map(|(_, kind)| kind)
                .collect();
            if let Some(kind) = kinds.first() {
                out.push(Finding {
                    severity: Severity::High,
                    title: format!(
                        "container {}'s env {} holds a literal credential ({kind})",
                        c.name, e.name
                    ),
                    detail: format!(
                        "anyone who can read {} reads it: move it to a Secret and use valueFrom.secretKeyRef; rotate it",
                        w.name
                    ),
                });
            }
        }
        for (i, arg) in c.command.iter().chain(&c.args).enumerate() {
            if let Some((_, kind)) = redactor.locate(arg).first() {
                out.push(Finding {
                    severity: Severity::High,
                    title: format!(
                        "container {}'s command line holds a literal credential ({kind}, word {})",
                        c.name,
                        i + 1
                    ),
                    detail: "it is also in every process listing on the node: read it from a file or an env var backed by a Secret; rotate it".into(),
                });
            }
        }
    }
    out
}

/// The registry an image reference pulls from, as the container runtime resolves it: the first
/// path segment when it names a host (a dot, a port, or `localhost`), else Docker Hub.
pub fn registry_of(image: &str) -> &str {
    let repo = squad_protocols::image::repository(image);
    match repo.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

/// How a container's image is referenced: `:latest` or no tag (Medium: a restart may run
/// another image than the one reviewed), no digest (Low: the tag can be moved), a registry
/// outside `allowed` when the list is not empty (High).
pub fn review_image_reference(container: &str, image: &str, allowed: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    let repo = squad_protocols::image::repository(image);
    let name = image.split('@').next().unwrap_or(image);
    let tag = name.get(repo.len() + 1..).filter(|t| !t.is_empty());
    let digest = image.contains("@sha256:");
    if !digest && tag.is_none_or(|t| t == "latest") {
        out.push(Finding {
            severity: Severity::Medium,
            title: format!(
                "container {container} runs {image}: {}",
                if tag.is_some() { "the mutable tag latest" } else { "no tag (latest)" }
            ),
            detail: "pin a version tag, better a digest: a restart may otherwise pull another image than the one reviewed".into(),
        });
    } else if !digest {
        out.push(Finding {
            severity: Severity::Low,
            title: format!("container {container}'s image {image} is not pinned by digest"),
            detail: "a tag can be moved to another image; `image: repo:tag@sha256:…` pins what was reviewed".into(),
        });
    }
    let registry = registry_of(image);
    if !allowed.is_empty() && !allowed.iter().any(|a| a == registry) {
        out.push(Finding {
            severity: Severity::High,
            title: format!(
                "container {container} pulls from {registry}, outside the allowed registries"
            ),
            detail: format!(
                "`[security] allowed_registries` lists {}",
                allowed.join(", ")
            ),
        });
    }
    out
}
