//! Worf — security: reviews the workload's image, RBAC, NetworkPolicies and pod security; comments
//! on the incident issue, and files a security issue when a real finding exists.

use async_trait::async_trait;
use squad_config::charters;
use squad_protocols::{
    Action, Assignment, Finding, IssueRef, IssueSpec, Member, Quantity, Report, Severity,
};
use squad_runtime::ports::MarkedArtifact;

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

mod accepted;
mod exposure;
mod hygiene;
mod review;
pub use exposure::review_service_exposure;
pub use hygiene::{review_rbac_writes, review_workload_hygiene};
pub use review::{
    review_config_map_secrets, review_image, review_image_reference, review_live_credentials,
    review_network, review_pod_security, review_rbac, review_repository_secrets, review_token,
};

/// Past these, the repository is scanned only this far (and the review says so).
const REPO_SCAN_FILES: usize = 2_000;
const REPO_SCAN_BYTES: usize = 8 << 20;

/// The GitOps repository's text files at its default branch, bounded; and a note when cut short.
async fn repository_texts(
    ctx: &CrewContext,
) -> Result<(Vec<(String, String)>, Option<String>), CrewError> {
    let base = ctx.forge.default_branch().await?;
    let paths: Vec<String> = ctx
        .forge
        .list_files("", &base)
        .await?
        .into_iter()
        .filter(|p| review::scanned_for_secrets(p))
        .collect();
    let mut files = Vec::new();
    let mut bytes = 0;
    for (i, p) in paths.iter().enumerate() {
        if i >= REPO_SCAN_FILES || bytes >= REPO_SCAN_BYTES {
            return Ok((
                files,
                Some(format!(
                    "the repository was scanned for credentials in its first {i} of {} files",
                    paths.len()
                )),
            ));
        }
        if let Some(text) = ctx.forge.read_file(p, &base).await? {
            bytes += text.len();
            files.push((p.clone(), text));
        }
    }
    Ok((files, None))
}

/// For a memory incident, the alert that would have paged before the kill: the container's
/// working set above 80% of its limit for 5 minutes, as a Prometheus rule ready to paste.
fn memory_alert(a: &Assignment) -> String {
    let Some(m) = a.diagnosis.signals.memory.as_ref() else {
        return String::new();
    };
    let ns = &a.workload.namespace;
    let name: String = a
        .workload
        .name
        .split(['-', '.', '_'])
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let c = &m.container;
    format!(
        "### Recommendation\nAlert before the next kill: memory working set above **80%** of the limit for 5 minutes.\n\n```yaml\n- alert: {name}MemoryNearLimit\n  expr: |\n    max by (namespace, pod, container) (container_memory_working_set_bytes{{namespace=\"{ns}\", container=\"{c}\"}})\n      / max by (namespace, pod, container) (kube_pod_container_resource_limits{{namespace=\"{ns}\", container=\"{c}\", resource=\"memory\"}}) > 0.8\n  for: 5m\n  labels:\n    severity: warning\n```\n{}",
        m.limit.map_or(String::new(), |l: Quantity| format!(
            "(At today's limit of {l} that is {:.0} MiB.)\n",
            l.as_mib_f64() * 0.8
        ))
    )
}

/// Where the workload's high findings went: a new security issue, or the one an earlier
/// incident filed for the same workload.
enum Filed {
    New(IssueRef),
    Updated(IssueRef),
    /// The team closed the issue as an accepted risk, and it lists every finding already.
    Accepted(IssueRef, String),
}

/// Findings as a task list, with the hidden marker of their keys (see [`accepted`]).
fn listing(findings: &[&Finding]) -> String {
    let mut s: String = findings
        .iter()
        .map(|f| {
            format!(
                "- [ ] **{}** {} — {}\n",
                f.severity.as_str().to_uppercase(),
                f.title,
                f.detail
            )
        })
        .collect();
    s.push_str(&accepted::marker(findings));
    s.push('\n');
    s
}

/// `labels` as prose: "`accepted-risk`" or "`a`, `b`" (or "none set" for none).
fn labels_named(labels: &[String]) -> String {
    if labels.is_empty() {
        return "(none set)".into();
    }
    let named: Vec<String> = labels.iter().map(|l| format!("`{l}`")).collect();
    named.join(", ")
}

/// The hidden marker of a workload's security issue: one issue per workload across incidents.
pub fn workload_security_marker(w: &squad_protocols::WorkloadRef) -> String {
    squad_protocols::forge::marker("security", &format!("{}/{}", w.namespace, w.name))
}

/// One lock per workload, so that incidents on the same workload in flight at once look for
/// its security issue one after the other (else each finds none and files its own).
fn workload_lock(w: &squad_protocols::WorkloadRef) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static LOCKS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::OnceLock::new();
    let locks = LOCKS.get_or_init(Default::default);
    let mut locks = locks.lock().unwrap_or_else(|e| e.into_inner());
    locks
        .entry(workload_security_marker(w))
        .or_default()
        .clone()
}

/// Files the workload's security issue, or, when an earlier incident filed one (found by the
/// workload's marker), reopens it and comments this incident's findings on it. A retry after a
/// crash finds this incident's own issue first, so it never files twice nor comments on itself.
/// An issue the team closed as an accepted risk stays closed unless this incident found
/// something it does not list; then only the new findings are commented.
async fn security_issue(
    ctx: &CrewContext,
    a: &Assignment,
    title: &str,
    serious: &[&Finding],
) -> Result<Filed, CrewError> {
    let lock = workload_lock(&a.workload);
    let _one_at_a_time = lock.lock().await;
    let own = squad_protocols::forge::marker(a.incident.as_str(), "worf:security-issue");
    let earlier = match ctx.forge.find_marker(&own).await? {
        Some(_) => None,
        None => match ctx
            .forge
            .find_marker(&workload_security_marker(&a.workload))
            .await?
        {
            Some(MarkedArtifact::Issue(issue)) => Some(issue),
            _ => None,
        },
    };
    if let Some(issue) = earlier {
        let detail = match ctx.forge.issue(issue.number).await {
            Ok(d) => Some(d),
            Err(e) if e.is_transient() => return Err(e.into()),
            // A forge that cannot read the issue back: reopen it, as before accepted risks.
            Err(_) => None,
        };
        let accepted = detail.as_ref().and_then(|d| {
            accepted::accepted_because(d, &ctx.settings.security.accepted_risk_labels)
        });
        let comment = match (&detail, accepted) {
            (Some(d), Some(why)) => {
                let new = accepted::not_listed(d, serious);
                if new.is_empty() {
                    return Ok(Filed::Accepted(issue, why));
                }
                format!(
                    "Seen again while handling incident {} (#{}) on {}: {} finding(s) this issue did not list, so the risk accepted here ({why}) does not cover them. Reopened for:\n\n{}",
                    a.incident,
                    a.issue.number,
                    a.workload,
                    new.len(),
                    listing(&new)
                )
            }
            _ => format!(
                "Seen again while handling incident {} (#{}) on {}: {title}.\n\n{}",
                a.incident,
                a.issue.number,
                a.workload,
                listing(serious)
            ),
        };
        ctx.forge.set_issue_open(issue.number, true).await?;
        effects::comment_once(
            ctx,
            &a.incident,
            Member::Worf,
            "security-update",
            issue.number,
            &comment,
        )
        .await?;
        return Ok(Filed::Updated(issue));
    }
    let spec = IssueSpec {
        title: title.to_owned(),
        body: format!(
            "Found while handling incident {} (#{}) on {}.\n\n{}\n_Filed by squad's Worf (security). Later incidents on this workload add their findings here. Closing it as not planned, or with one of the labels {}, accepts these findings: later incidents leave it closed unless they find new ones._\n{}",
            a.incident,
            a.issue.number,
            a.workload,
            listing(serious),
            labels_named(&ctx.settings.security.accepted_risk_labels),
            workload_security_marker(&a.workload)
        ),
        labels: vec![
            "security".into(),
            "squad:worf".into(),
            a.workload.namespace.clone(),
        ],
    };
    let issue = effects::issue_once(ctx, &a.incident, Member::Worf, "security-issue", spec).await?;
    Ok(Filed::New(issue))
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
        for c in w.init_containers.iter().chain(&w.containers) {
            image_findings.extend(review::review_image_reference(
                &c.name,
                &c.image,
                &ctx.settings.security.allowed_registries,
            ));
            match ctx.cluster.image_vulnerabilities(&c.image).await {
                Ok(v) => image_findings.extend(review_image(&c.image, &v)),
                Err(e) => notes.push(format!("image scan of {} unavailable: {e}", c.image)),
            }
        }
        let rbac = match ctx.cluster.rbac_rules(ns, &w.service_account).await {
            Ok(rules) => {
                let mut found = review_rbac(&w.service_account, &rules);
                found.extend(review_rbac_writes(&w.service_account, &rules));
                found.extend(review_token(&w, &rules));
                found
            }
            Err(e) => {
                notes.push(format!("RBAC not readable: {e}"));
                Vec::new()
            }
        };
        let mut network = match ctx.cluster.network_policies(ns).await {
            Ok(p) => review_network(&w, &p),
            Err(e) => {
                notes.push(format!("NetworkPolicies not readable: {e}"));
                Vec::new()
            }
        };
        match ctx.cluster.services(ns).await {
            Ok(s) => network.extend(review_service_exposure(&w, &s)),
            Err(e) => notes.push(format!("Services not readable: {e}")),
        }
        let pod = review_pod_security(&w);
        let hygiene = review_workload_hygiene(&w);
        // Literal credentials in the GitOps repository, by the redaction gateway's detectors and
        // the namespace's Secret values.
        let redactor = ctx
            .minds
            .redactor(&a.incident, || async {
                ctx.cluster.secret_values(ns).await.unwrap_or_default()
            })
            .await?;
        let mut repository = review_live_credentials(&w, &redactor);
        match ctx.cluster.config_map_texts(ns).await {
            Ok(data) => repository.extend(review_config_map_secrets(ns, &data, &redactor)),
            Err(e) => notes.push(format!("ConfigMaps not readable: {e}")),
        }
        match repository_texts(ctx).await {
            Ok((files, cut)) => {
                notes.extend(cut);
                repository.extend(review_repository_secrets(&files, &redactor));
            }
            Err(e) => {
                notes.push(format!(
                    "the GitOps repository not readable for credentials: {e}"
                ));
            }
        }
        let alert = memory_alert(a);
        let mut all: Vec<Finding> = image_findings
            .iter()
            .chain(&rbac)
            .chain(&network)
            .chain(&pod)
            .chain(&hygiene)
            .chain(&repository)
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
            "**Worf** (security review of {}):\n\n{}\n{}\n{}\n{}\n{}\n{}\n{alert}",
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
            section(
                "Resources and identity",
                &hygiene,
                "limits and requests set, an id above 10000, its own ServiceAccount and namespace"
            ),
            section(
                "Literal credentials",
                &repository,
                "no literal credential in the pod template or the GitOps repository"
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
        let mut filed = "";
        if !serious.is_empty() {
            let title = format!(
                "[Security] {} finding(s) on {} ({})",
                serious.len(),
                a.workload.name,
                a.workload.namespace
            );
            match security_issue(ctx, a, &title, &serious).await? {
                Filed::New(issue) => {
                    filed = "; security issue filed";
                    body.push_str(&format!(
                        "\nFiled security issue #{} for the {} finding(s) of severity high or above.\n",
                        issue.number,
                        serious.len()
                    ));
                    report.actions.push(Action::OpenedIssue { issue, title });
                }
                Filed::Updated(issue) => {
                    body.push_str(&format!(
                        "\nThe {} finding(s) of severity high or above are on the workload's security issue #{} (updated, and reopened if it was closed).\n",
                        serious.len(),
                        issue.number
                    ));
                    filed = "; security issue updated";
                    report.actions.push(Action::Commented {
                        issue: issue.number,
                    });
                }
                Filed::Accepted(issue, why) => {
                    filed = "; accepted risk, issue left closed";
                    body.push_str(&format!(
                        "\nThe {} finding(s) of severity high or above are all listed on the workload's security issue #{}, which the team {why}: an accepted risk, left closed.\n",
                        serious.len(),
                        issue.number
                    ));
                }
            }
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
            "{} finding(s), {} high or above{filed}",
            all.len(),
            serious.len(),
        );
        report.findings = all;
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
