//! The checks the scanners teams trust add to the Pod Security Standards and the RBAC
//! escalation paths (kube-score, kubesec, Trivy's KSV checks, k8sgpt): write access to what
//! changes the cluster's behaviour, and the pod template's resource and identity hygiene.

use squad_protocols::cluster::{RbacRule, WorkloadInfo};
use squad_protocols::{Finding, Severity};

/// Resources whose write access lets a ServiceAccount change more than its app: each with the
/// severity (cluster-wide, in a namespace) and what a write does. Trivy's IDs in brackets.
const SENSITIVE_WRITES: &[(&[&str], Severity, Severity, &str)] = &[
    (
        &[
            "mutatingwebhookconfigurations",
            "validatingwebhookconfigurations",
        ],
        Severity::Critical,
        Severity::Critical,
        "an admission webhook sees, and may rewrite, every object the apiserver admits (KSV114)",
    ),
    (
        &["secrets"],
        Severity::Critical,
        Severity::High,
        "it can replace credentials other workloads read, or plant a token (KSV041, KSV113)",
    ),
    (
        &[
            "services",
            "endpoints",
            "endpointslices",
            "networkpolicies",
            "ingresses",
        ],
        Severity::High,
        Severity::High,
        "it can redirect other workloads' traffic or lift a NetworkPolicy (KSV056)",
    ),
    (
        &[
            "pods",
            "deployments",
            "statefulsets",
            "daemonsets",
            "replicasets",
            "replicationcontrollers",
            "jobs",
            "cronjobs",
        ],
        Severity::High,
        Severity::Medium,
        "a pod it creates may run as any ServiceAccount of the namespace and mount any Secret there (KSV048)",
    ),
    (
        &["configmaps"],
        Severity::Medium,
        Severity::Medium,
        "it can change other workloads' configuration (KSV049)",
    ),
    (
        &[
            "roles",
            "clusterroles",
            "rolebindings",
            "clusterrolebindings",
        ],
        Severity::Critical,
        Severity::High,
        "it can change who may do what (KSV050, KSV055)",
    ),
];

const WRITE_VERBS: [&str; 6] = [
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "*",
];

/// Write verbs on resources that change more than the app (see [`SENSITIVE_WRITES`]), and
/// deleting pod logs (KSV042: it erases the trail). One finding per rule and resource group.
pub fn review_rbac_writes(sa: &str, rules: &[RbacRule]) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for r in rules {
        // Wildcards on verbs or resources are reported once, by the RBAC review.
        if r.resources.iter().any(|x| x == "*") || r.verbs.iter().any(|v| v == "*") {
            continue;
        }
        let writes: Vec<&String> = r
            .verbs
            .iter()
            .filter(|v| WRITE_VERBS.contains(&v.as_str()))
            .collect();
        if !writes.is_empty() {
            for (resources, cluster, namespaced, what) in SENSITIVE_WRITES {
                let hit: Vec<&String> = r
                    .resources
                    .iter()
                    .filter(|x| resources.contains(&x.as_str()))
                    .collect();
                if hit.is_empty() {
                    continue;
                }
                let title = format!(
                    "ServiceAccount {sa} can {writes:?} {hit:?} {} via {}",
                    if r.cluster_wide {
                        "in every namespace"
                    } else {
                        "in its namespace"
                    },
                    r.role
                );
                if out.iter().any(|f| f.title == title) {
                    continue;
                }
                // The EKS aws-auth ConfigMap maps IAM roles to cluster users (KSV115).
                let aws_auth = hit.iter().any(|x| *x == "configmaps")
                    && r.resource_names.iter().any(|n| n == "aws-auth");
                out.push(Finding {
                    severity: if aws_auth {
                        Severity::Critical
                    } else if r.cluster_wide {
                        *cluster
                    } else {
                        *namespaced
                    },
                    title,
                    detail: format!(
                        "{}; binding {}{}",
                        if aws_auth {
                            "aws-auth maps IAM identities to cluster users and groups: writing it grants cluster-admin (KSV115)"
                        } else {
                            what
                        },
                        r.binding,
                        if r.resource_names.is_empty() {
                            String::new()
                        } else {
                            format!(" (only {:?})", r.resource_names)
                        }
                    ),
                });
            }
        }
        let log_delete = r
            .verbs
            .iter()
            .any(|v| matches!(v.as_str(), "delete" | "deletecollection"));
        if log_delete && r.resources.iter().any(|x| x == "pods/log") {
            out.push(Finding {
                severity: Severity::Medium,
                title: format!("ServiceAccount {sa} can delete pod logs via {}", r.role),
                detail: format!(
                    "a compromised pod can erase its trail (KSV042); binding {}",
                    r.binding
                ),
            });
        }
    }
    out
}

/// The pod template's resource and identity hygiene, as kube-score, kubesec and Trivy check it:
/// no memory limit (Medium: one pod can starve its node), no CPU or memory request (Low), a user
/// or group id at or below 10000 or unset (Low: it may match a host user), the root group
/// (Low), the namespace's `default` ServiceAccount (Low), the `default` or `kube-system`
/// namespace (Low), a privileged port (Low), Secrets in environment variables (Info: they reach
/// child processes and crash dumps), host aliases (Low).
pub fn review_workload_hygiene(w: &WorkloadInfo) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |severity, title: String, detail: &str| {
        out.push(Finding {
            severity,
            title,
            detail: detail.to_owned(),
        })
    };
    let view = &w.pod_security["spec"];
    let pod_sc = &view["securityContext"];
    let known = !w.pod_security.is_null();
    for c in w.init_containers.iter().chain(&w.containers) {
        if !c.limits.contains_key("memory") {
            push(
                Severity::Medium,
                format!("container {} has no memory limit", c.name),
                "one leaking pod can take its node's memory from every other pod (KSV018, kube-score container-resources)",
            );
        }
        let missing: Vec<&str> = ["cpu", "memory"]
            .into_iter()
            .filter(|r| !c.requests.contains_key(*r))
            .collect();
        if !missing.is_empty() {
            push(
                Severity::Low,
                format!("container {} requests no {}", c.name, missing.join(" or ")),
                "the scheduler places it blind and it is evicted first under pressure (KSV015, KSV016)",
            );
        }
        if c.ports.iter().any(|p| p.port > 0 && p.port < 1024) {
            push(
                Severity::Low,
                format!("container {} listens on a privileged port", c.name),
                "a port below 1024 needs root or NET_BIND_SERVICE; listen on 1024 or above and map it in the Service (KSV117)",
            );
        }
        let secrets: Vec<&str> = c
            .env
            .iter()
            .filter(|e| e.source.starts_with("secret:"))
            .map(|e| e.name.as_str())
            .collect();
        if !secrets.is_empty() {
            push(
                Severity::Info,
                format!(
                    "container {} reads Secrets from environment variables ({})",
                    c.name,
                    secrets.join(", ")
                ),
                "environment variables reach child processes, crash dumps and debug endpoints; a mounted file does not (kubesec)",
            );
        }
        if !known {
            continue;
        }
        let sc = view["initContainers"]
            .as_array()
            .into_iter()
            .chain(view["containers"].as_array())
            .flatten()
            .find(|x| x["name"] == c.name.as_str())
            .map(|x| &x["securityContext"]);
        let effective = |key: &str| {
            sc.and_then(|s| s[key].as_i64())
                .or_else(|| pod_sc[key].as_i64())
        };
        for (key, what) in [("runAsUser", "user"), ("runAsGroup", "group")] {
            match effective(key) {
                Some(0) if key == "runAsGroup" => push(
                    Severity::Low,
                    format!("container {} runs with the root group", c.name),
                    "files the root group may write on the node or in volumes are its (KSV116)",
                ),
                Some(id) if id > 10_000 => {}
                Some(id) => push(
                    Severity::Low,
                    format!("container {} runs as {what} id {id}", c.name),
                    "an id at or below 10000 may be a user of the node; use one above 10000 (KSV020, KSV021)",
                ),
                None if key == "runAsGroup" => {}
                None => push(
                    Severity::Low,
                    format!("container {} sets no {key}", c.name),
                    "the image decides, often root or a low id; set one above 10000 (KSV020, KSV021)",
                ),
            }
        }
    }
    if known
        && (pod_sc["fsGroup"].as_i64() == Some(0)
            || pod_sc["supplementalGroups"]
                .as_array()
                .is_some_and(|g| g.iter().any(|x| x.as_i64() == Some(0))))
    {
        push(
            Severity::Low,
            format!(
                "{}'s pods add the root group (fsGroup or supplementalGroups)",
                w.name
            ),
            "volumes and files of the root group become writable (KSV116)",
        );
    }
    if w.service_account.is_empty() || w.service_account == "default" {
        push(
            Severity::Low,
            format!("{} runs as the namespace's default ServiceAccount", w.name),
            "every workload without its own shares its token and permissions; give it a ServiceAccount of its own (kubesec, k8sgpt)",
        );
    }
    if matches!(w.namespace.as_str(), "default" | "kube-system") {
        push(
            Severity::Low,
            format!("{} runs in the {} namespace", w.name, w.namespace),
            "policies, quotas and RBAC are scoped by namespace: give the app its own (KSV110, KSV037)",
        );
    }
    if view["hostAliases"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        push(
            Severity::Low,
            format!("{}'s pods rewrite /etc/hosts (hostAliases)", w.name),
            "names resolve outside DNS and its policies; prefer a Service or DNS record (KSV007)",
        );
    }
    out
}
