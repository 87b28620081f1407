//! Worf — security: reviews the workload's image, RBAC, NetworkPolicies and pod security; comments
//! on the incident issue, and files a security issue when a real finding exists.

use async_trait::async_trait;
use squad_config::charters;
use squad_diagnosis::security::pss;
use squad_protocols::cluster::{ImageVulnerability, NetworkPolicyInfo, RbacRule, WorkloadInfo};
use squad_protocols::{Action, Assignment, Finding, IssueSpec, Member, Quantity, Report, Severity};

use squad_protocols::llm::Rejection;
use squad_runtime::CrewError;

use crate::mind::{self, Ask, Tool};
use crate::specialist::Skill;
use crate::{CrewContext, effects};

/// What Worf's model concludes from the review.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityAssessment {
    /// The security posture in two or three sentences, for the incident issue.
    pub summary: String,
    /// What to fix first: titles of findings of the review, exactly as listed, most urgent
    /// first (at most 5).
    pub fix_first: Vec<String>,
}

/// The tools Worf's model may use.
pub const TOOLS: &[Tool] = &[
    Tool::Workload,
    Tool::RbacRules,
    Tool::NetworkPolicies,
    Tool::ImageVulnerabilities,
    Tool::SecretKeyNames,
    Tool::GitopsListFiles,
    Tool::GitopsReadFile,
];

/// An assessment may only rank findings the review made: no invented risks.
pub fn check_assessment(s: &SecurityAssessment, findings: &[Finding]) -> Result<(), Rejection> {
    mind::clean_text(&s.summary, 1_200, "summary")?;
    if s.fix_first.len() > 5 {
        return Err(Rejection::from("fix_first lists more than 5 findings"));
    }
    for (i, title) in s.fix_first.iter().enumerate() {
        if !findings.iter().any(|f| f.title == *title) {
            return Err(Rejection::from(format!(
                "fix_first[{i}] {title:?} is not one of the review's findings"
            )));
        }
        if s.fix_first[..i].contains(title) {
            return Err(Rejection::from(format!("fix_first[{i}] repeats {title:?}")));
        }
    }
    if s.fix_first.is_empty() && findings.iter().any(|f| f.severity >= Severity::High) {
        return Err(Rejection::from(
            "fix_first is empty although the review has findings of high severity",
        ));
    }
    Ok(())
}

pub fn charter() -> &'static str {
    charters::charter(Member::Worf)
}

pub struct Worf;

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

pub fn review_rbac(sa: &str, rules: &[RbacRule]) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in rules {
        let any = |v: &[String], x: &str| v.iter().any(|s| s == x || s == "*");
        let reads = r
            .verbs
            .iter()
            .any(|v| matches!(v.as_str(), "get" | "list" | "watch" | "*"));
        if r.verbs.iter().any(|v| v == "*") || r.resources.iter().any(|v| v == "*") {
            out.push(Finding {
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
        } else if any(&r.resources, "secrets") && reads && r.resource_names.is_empty() {
            let scope = if r.cluster_wide {
                "in every namespace"
            } else {
                "in its namespace"
            };
            out.push(Finding {
                severity: Severity::High,
                title: format!("ServiceAccount {sa} can read all Secrets {scope} via {}", r.role),
                detail: format!(
                    "verbs {:?} on secrets without resourceNames (binding {}): a compromised pod reads every credential; restrict to the Secrets it mounts with resourceNames, and drop list/watch",
                    r.verbs, r.binding
                ),
            });
        } else if r.cluster_wide {
            out.push(Finding {
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
    let mut out = Vec::new();
    if !selecting
        .iter()
        .any(|p| p.policy_types.iter().any(|t| t == "Egress"))
    {
        out.push(Finding {
            severity: Severity::Medium,
            title: format!("egress from {} is unrestricted", w.name),
            detail: format!("policies {} restrict ingress only; add an Egress policy allowing DNS, the database and the payment gateway", selecting.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")),
        });
    }
    out
}

/// The Pod Security Standards on the workload's pod template: the level it meets as the first
/// finding (Info), then every control it breaks — Critical for what hands over the node
/// (privileged, host namespaces, hostPath), High for the rest of `baseline`, Medium for
/// `restricted` — and a writable root filesystem (Low; kube-score's check, not a PSS control).
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
        .containers
        .iter()
        .filter(|c| c.read_only_root_filesystem != Some(true))
    {
        out.push(Finding {
            severity: Severity::Low,
            title: format!("container {} has a writable root filesystem", c.name),
            detail: "set readOnlyRootFilesystem: true".into(),
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

fn section(title: &str, findings: &[Finding], ok: &str) -> String {
    let mut s = format!("### {title}\n");
    if findings.is_empty() {
        s.push_str(&format!("- ✅ {ok}\n"));
    }
    for f in findings {
        s.push_str(&format!(
            "- **{}** {} — {}\n",
            f.severity.as_str().to_uppercase(),
            f.title,
            f.detail
        ));
    }
    s
}

#[async_trait]
impl Skill for Worf {
    fn member(&self) -> Member {
        Member::Worf
    }

    async fn perform(&self, ctx: &CrewContext, a: &Assignment) -> Result<Report, CrewError> {
        let w = ctx.cluster.workload(&a.workload).await?;
        let ns = &a.workload.namespace;
        let mut notes = Vec::new();
        let mut image_findings = Vec::new();
        for c in &w.containers {
            match ctx.cluster.image_vulnerabilities(&c.image).await {
                Ok(v) => image_findings.extend(review_image(&c.image, &v)),
                Err(e) => notes.push(format!("image scan of {} unavailable: {e}", c.image)),
            }
        }
        let rbac = match ctx.cluster.rbac_rules(ns, &w.service_account).await {
            Ok(rules) => review_rbac(&w.service_account, &rules),
            Err(e) => {
                notes.push(format!("RBAC not readable: {e}"));
                Vec::new()
            }
        };
        let network = match ctx.cluster.network_policies(ns).await {
            Ok(p) => review_network(&w, &p),
            Err(e) => {
                notes.push(format!("NetworkPolicies not readable: {e}"));
                Vec::new()
            }
        };
        let pod = review_pod_security(&w);
        let limit = a.diagnosis.signals.memory.as_ref().and_then(|m| m.limit);
        let alert = format!(
            "### Recommendation\nAlert before the next kill: memory working set above **80%** of the limit for 5 minutes.\n\n```yaml\n- alert: {}MemoryNearLimit\n  expr: |\n    max by (namespace, pod, container) (container_memory_working_set_bytes{{namespace=\"{ns}\", container=\"{}\"}})\n      / max by (namespace, pod, container) (kube_pod_container_resource_limits{{namespace=\"{ns}\", container=\"{}\", resource=\"memory\"}}) > 0.8\n  for: 5m\n  labels:\n    severity: warning\n```\n{}",
            a.workload
                .name
                .split('-')
                .map(|p| {
                    let mut c = p.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<String>(),
            a.diagnosis
                .signals
                .memory
                .as_ref()
                .map_or("", |m| m.container.as_str()),
            a.diagnosis
                .signals
                .memory
                .as_ref()
                .map_or("", |m| m.container.as_str()),
            limit.map_or(String::new(), |l: Quantity| format!(
                "(At today's limit of {l} that is {:.0} MiB.)\n",
                l.as_mib_f64() * 0.8
            ))
        );
        let mut all: Vec<Finding> = image_findings
            .iter()
            .chain(&rbac)
            .chain(&network)
            .chain(&pod)
            .cloned()
            .collect();
        all.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let serious: Vec<&Finding> = all
            .iter()
            .filter(|f| f.severity >= Severity::High)
            .collect();
        let findings_text: String = all
            .iter()
            .map(|f| format!("- [{}] {} — {}\n", f.severity.as_str(), f.title, f.detail))
            .collect();
        let thought = mind::deliberate(
            ctx,
            Ask {
                member: Member::Worf,
                assignment: a,
                task: "Assess the workload's security posture from the review and say what to fix first (titles of the review's findings, exactly as listed).".into(),
                context: format!(
                    "Security review of {} (ServiceAccount {}):\n{}{}",
                    a.workload,
                    w.service_account,
                    if findings_text.is_empty() { "- no findings\n".to_string() } else { findings_text },
                    if notes.is_empty() { String::new() } else { format!("Not checked: {}\n", notes.join("; ")) }
                ),
                proposal: SecurityAssessment {
                    summary: format!(
                        "{} finding(s) on {}, {} of high severity or above.",
                        all.len(),
                        a.workload,
                        serious.len()
                    ),
                    fix_first: all.iter().take(3).map(|f| f.title.clone()).collect(),
                },
                tools: TOOLS,
            },
            |s| check_assessment(s, &all),
        )
        .await;
        let mut body = format!(
            "**Worf** (security review of {}):\n\n{}\n{}\n{}\n{}\n{alert}",
            a.workload,
            section(
                "Image vulnerabilities",
                &image_findings,
                "no known vulnerabilities in the running images"
            ),
            section(
                "RBAC",
                &rbac,
                &format!(
                    "ServiceAccount {} has no excessive permissions",
                    w.service_account
                )
            ),
            section(
                "NetworkPolicy",
                &network,
                "ingress and egress are restricted"
            ),
            section(
                "Pod security",
                &pod,
                "the Pod Security Standards' restricted level, read-only root filesystem"
            ),
        );
        if !notes.is_empty() {
            body.push_str(&format!("\n_Not checked:_ {}\n", notes.join("; ")));
        }
        if let Some(model) = &thought.by_model {
            body.push_str(&format!(
                "\n### Assessment\n{}\n",
                thought.answer.summary.trim()
            ));
            if !thought.answer.fix_first.is_empty() {
                body.push_str("\nFix first:\n");
                for (i, t) in thought.answer.fix_first.iter().enumerate() {
                    body.push_str(&format!("{}. {t}\n", i + 1));
                }
            }
            body.push_str(&format!("\n_Assessment written with {model}; the findings above come from the checks themselves._\n"));
        }
        let mut report = Report::new(Member::Worf, String::new());
        if !serious.is_empty() {
            let mut issue_body = format!(
                "Found while handling incident {} (#{}) on {}.\n\n",
                a.incident, a.issue.number, a.workload
            );
            for f in &serious {
                issue_body.push_str(&format!(
                    "- [ ] **{}** {} — {}\n",
                    f.severity.as_str().to_uppercase(),
                    f.title,
                    f.detail
                ));
            }
            issue_body.push_str("\n_Filed by squad's Worf (security)._");
            let spec = IssueSpec {
                title: format!(
                    "[Security] {} finding(s) on {} ({})",
                    serious.len(),
                    a.workload.name,
                    a.workload.namespace
                ),
                body: issue_body,
                labels: vec![
                    "security".into(),
                    "squad:worf".into(),
                    a.workload.namespace.clone(),
                ],
            };
            let issue = effects::issue_once(
                ctx,
                &a.incident,
                Member::Worf,
                "security-issue",
                spec.clone(),
            )
            .await?;
            body.push_str(&format!(
                "\nFiled security issue #{} for the {} finding(s) of severity high or above.\n",
                issue.number,
                serious.len()
            ));
            report.actions.push(Action::OpenedIssue {
                issue,
                title: spec.title,
            });
        }
        effects::comment_once(
            ctx,
            &a.incident,
            Member::Worf,
            "security-review",
            a.issue.number,
            &body,
        )
        .await?;
        report.actions.push(Action::Commented {
            issue: a.issue.number,
        });
        report.summary = format!(
            "{} finding(s), {} high or above{}",
            all.len(),
            serious.len(),
            if serious.is_empty() {
                String::new()
            } else {
                "; security issue filed".into()
            }
        );
        report.findings = all;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use squad_protocols::cluster::ContainerSpec;

    use super::*;

    fn rule(verbs: &[&str], resources: &[&str], cluster_wide: bool) -> RbacRule {
        RbacRule {
            role: "role/app".into(),
            binding: "rolebinding/app".into(),
            cluster_wide,
            api_groups: vec![String::new()],
            resources: resources.iter().map(|s| (*s).into()).collect(),
            resource_names: Vec::new(),
            verbs: verbs.iter().map(|s| (*s).into()).collect(),
        }
    }

    fn workload(secure: bool) -> WorkloadInfo {
        WorkloadInfo {
            init_containers: Vec::new(),
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "cart".into(),
            replicas: 2,
            service_account: "cart".into(),
            pod_labels: BTreeMap::from([("app".into(), "cart".into())]),
            containers: vec![ContainerSpec {
                name: "api".into(),
                image: "r/cart:1".into(),
                limits: BTreeMap::new(),
                requests: BTreeMap::new(),
                env: Vec::new(),
                run_as_non_root: Some(secure),
                privileged: Some(!secure),
                allow_privilege_escalation: Some(!secure),
                read_only_root_filesystem: Some(secure),
                has_readiness_probe: true,
                has_liveness_probe: true,
                ports: Vec::new(),
                readiness_probe: None,
                liveness_probe: None,
                command: Vec::new(),
                args: Vec::new(),
            }],
            pod_run_as_non_root: None,
            placement: Default::default(),
            claims: Vec::new(),
            conditions: Vec::new(),
            pod_security: serde_json::Value::Null,
        }
    }

    fn policy(selector: &[(&str, &str)], types: &[&str]) -> NetworkPolicyInfo {
        NetworkPolicyInfo {
            name: "p".into(),
            pod_selector: selector
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            policy_types: types.iter().map(|s| (*s).into()).collect(),
            ingress_rules: 1,
            egress_rules: 0,
            egress: Vec::new(),
        }
    }

    #[test]
    fn rbac_wildcards_are_critical_secret_reads_high_and_cluster_bindings_medium() {
        let found = review_rbac(
            "cart",
            &[
                rule(&["*"], &["pods"], false),
                rule(&["list"], &["secrets"], true),
                rule(&["get"], &["configmaps"], true),
                rule(&["get"], &["configmaps"], false),
            ],
        );
        let severities: Vec<Severity> = found.iter().map(|f| f.severity).collect();
        assert_eq!(
            severities,
            [Severity::Critical, Severity::High, Severity::Medium]
        );
        assert!(
            found[1].title.contains("in every namespace"),
            "{}",
            found[1].title
        );
    }

    #[test]
    fn a_workload_no_policy_selects_is_open_and_ingress_only_leaves_egress_open() {
        let w = workload(true);
        assert_eq!(
            review_network(&w, &[policy(&[("app", "other")], &["Ingress"])])[0].severity,
            Severity::High
        );
        let egress_open = review_network(&w, &[policy(&[("app", "cart")], &["Ingress"])]);
        assert!(
            egress_open[0]
                .title
                .contains("egress from cart is unrestricted")
        );
        assert!(
            review_network(&w, &[policy(&[("app", "cart")], &["Ingress", "Egress"])]).is_empty()
        );
    }

    #[test]
    fn pod_security_flags_each_missing_control_and_nothing_on_a_hardened_pod() {
        assert!(review_pod_security(&workload(true)).is_empty());
        let titles: Vec<String> = review_pod_security(&workload(false))
            .into_iter()
            .map(|f| f.title)
            .collect();
        assert_eq!(titles.len(), 4, "{titles:?}");
        assert!(titles[0].contains("runs privileged"));
    }

    #[test]
    fn pod_security_with_the_templates_view_says_the_level_and_each_control() {
        let mut w = workload(true);
        w.pod_security = serde_json::json!({
            "spec": {
                "hostNetwork": true,
                "containers": [{
                    "name": "cart",
                    "securityContext": { "allowPrivilegeEscalation": false, "runAsNonRoot": true }
                }]
            }
        });
        let f = review_pod_security(&w);
        assert_eq!(f[0].severity, Severity::Info);
        assert!(f[0].title.contains("privileged level"), "{}", f[0].title);
        let host = f
            .iter()
            .find(|f| f.title.contains("Host Namespaces"))
            .unwrap();
        assert_eq!(host.severity, Severity::Critical);
        assert!(host.title.contains("spec.hostNetwork=true"));
        let seccomp = f.iter().find(|f| f.title.starts_with("Seccomp")).unwrap();
        assert_eq!(seccomp.severity, Severity::Medium);
        // A template that meets restricted, read-only: nothing to say.
        w.pod_security = serde_json::json!({
            "spec": {
                "securityContext": { "runAsNonRoot": true, "seccompProfile": { "type": "RuntimeDefault" } },
                "containers": [{
                    "name": "cart",
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "capabilities": { "drop": ["ALL"] }
                    }
                }]
            }
        });
        assert_eq!(review_pod_security(&w), []);
    }

    #[test]
    fn image_findings_keep_the_scanners_severity() {
        let v = ImageVulnerability {
            id: "CVE-2025-0395".into(),
            package: "glibc".into(),
            installed: "2.36".into(),
            fixed: "2.37".into(),
            severity: "HIGH".into(),
            title: "overflow".into(),
        };
        let f = review_image("r/cart:1", &[v]);
        assert_eq!(f[0].severity, Severity::High);
        assert!(f[0].detail.ends_with("fixed in 2.37"));
    }

    #[test]
    fn a_model_may_only_rank_findings_the_review_made() {
        let findings = review_network(&workload(true), &[]);
        let title = findings[0].title.clone();
        let answer = |fix_first: Vec<String>| SecurityAssessment {
            summary: "The pods accept traffic from anywhere.".into(),
            fix_first,
        };
        assert!(check_assessment(&answer(vec![title.clone()]), &findings).is_ok());
        assert!(
            check_assessment(&answer(vec!["an invented finding".into()]), &findings)
                .unwrap_err()
                .0
                .contains("is not one of the review's findings")
        );
        assert!(
            check_assessment(&answer(vec![]), &findings)
                .unwrap_err()
                .0
                .contains("high severity")
        );
        assert!(check_assessment(&answer(vec![title.clone(), title]), &findings).is_err());
    }
}
