//! B'Elanna — infrastructure: sizes resources from measured usage, restores configuration that
//! drifted, and delivers every fix as a pull request against the GitOps repo.

use async_trait::async_trait;
use squad_config::charters;
use squad_config::settings::MemoryRule;
use squad_protocols::diagnosis::MemorySignals;
use squad_protocols::{
    Action, Assignment, FileChange, Finding, Member, PrSpec, Quantity, Report, RootCause, Severity,
};

use crate::mind::{self, Ask, Tool};
use crate::specialist::Skill;
use crate::{CrewContext, effects};
use squad_gitops::editor::{self as manifest, env_item_lines};
use squad_gitops::{ContainerTarget, kustomize};

pub fn charter() -> &'static str {
    charters::charter(Member::Belanna)
}

pub struct Belanna;

/// New memory settings and the arithmetic behind them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MemorySizing {
    pub limit: Quantity,
    pub request: Quantity,
    pub rationale: String,
}

/// What B'Elanna's model decides for a memory incident (and what the sizing rule proposes).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryPlan {
    /// The container's new memory limit, a Kubernetes quantity such as "1536Mi" or "1.5Gi".
    pub limit: String,
    /// The container's new memory request, a Kubernetes quantity.
    pub request: String,
    /// Whether to add a HorizontalPodAutoscaler on memory (when none targets the workload).
    pub add_hpa: bool,
    /// Why these numbers, from the measurements (one or two sentences).
    pub rationale: String,
}

/// The tools B'Elanna's model may use.
pub const TOOLS: &[Tool] = &[
    Tool::Workload,
    Tool::Pods,
    Tool::MemoryHistory,
    Tool::RequestRates,
    Tool::Hpas,
    Tool::GitopsListFiles,
    Tool::GitopsReadFile,
    Tool::SizeMemory,
];

/// The highest limit a plan may ask for, as a multiple of the observed 24 h peak.
const MAX_LIMIT_OVER_PEAK: u32 = 4;

/// Checks a memory plan against the measurements: a limit below the observed peak would be
/// killed again, a value below today's is never proposed (lowering is a human's call), and a
/// limit far above the peak hides a leak and wastes the node.
pub fn check_plan(p: &MemoryPlan, m: &MemorySignals) -> Result<MemorySizing, String> {
    let limit: Quantity = p
        .limit
        .parse()
        .map_err(|e| format!("limit {:?} is not a Kubernetes quantity ({e})", p.limit))?;
    let request: Quantity = p
        .request
        .parse()
        .map_err(|e| format!("request {:?} is not a Kubernetes quantity ({e})", p.request))?;
    if limit < m.peak_24h {
        return Err(format!(
            "limit {limit} is below the observed 24 h peak {}: the container would be killed again",
            m.peak_24h.round_up_to(Quantity::mebibytes(1))
        ));
    }
    if let Some(current) = m.limit.filter(|c| limit < *c) {
        return Err(format!("limit {limit} is below today's limit {current}"));
    }
    let cap = m.peak_24h.scale(MAX_LIMIT_OVER_PEAK, 1);
    if limit > cap {
        return Err(format!(
            "limit {limit} is more than {MAX_LIMIT_OVER_PEAK}x the observed peak ({})",
            cap.round_up_to(Quantity::mebibytes(1))
        ));
    }
    if request > limit {
        return Err(format!("request {request} is above the limit {limit}"));
    }
    if let Some(current) = m.request.filter(|c| request < *c) {
        return Err(format!(
            "request {request} is below today's request {current}"
        ));
    }
    if request.bytes() == 0 {
        return Err("request is zero".into());
    }
    let rationale = mind::clean_text(&p.rationale, 1_500, "rationale")?;
    Ok(MemorySizing {
        limit,
        request,
        rationale,
    })
}

/// The documented sizing rule (see [`MemoryRule`]): limit = peak × (1 + headroom), request =
/// median, both rounded up to the step; never lowered.
pub fn size_memory(m: &MemorySignals, rule: &MemoryRule) -> MemorySizing {
    let with_headroom = m.peak_24h.scale(100 + rule.headroom_percent, 100);
    let mut limit = with_headroom.round_up_to(rule.round_to);
    if let Some(current) = m.limit {
        limit = limit.max(current);
    }
    let mut request = m.median_24h.round_up_to(rule.round_to);
    if let Some(current) = m.request {
        request = request.max(current);
    }
    let request = request.min(limit);
    MemorySizing {
        limit,
        request,
        rationale: format!(
            "limit = 24 h peak {:.0} MiB × {}% headroom = {:.0} MiB, rounded up to {} → **{}**; request = 24 h median {:.0} MiB rounded up to {} → **{}**",
            m.peak_24h.as_mib_f64(),
            100 + rule.headroom_percent,
            with_headroom.as_mib_f64(),
            rule.round_to,
            limit,
            m.median_24h.as_mib_f64(),
            rule.round_to,
            request
        ),
    }
}

fn hpa_manifest(
    name: &str,
    namespace: &str,
    kind: &str,
    min: u32,
    max: u32,
    target: u32,
) -> String {
    format!(
        "# Added by squad (B'Elanna) during an OOM incident: scale out before memory runs out.\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: {kind}\n    name: {name}\n  minReplicas: {min}\n  maxReplicas: {max}\n  metrics:\n    - type: Resource\n      resource:\n        name: memory\n        target:\n          type: Utilization\n          averageUtilization: {target}\n"
    )
}

impl Belanna {
    async fn find_manifest(
        &self,
        ctx: &CrewContext,
        a: &Assignment,
    ) -> Result<(String, String), String> {
        let base = ctx
            .forge
            .default_branch()
            .await
            .map_err(|e| e.to_string())?;
        let needle = format!("name: {}", a.workload.name);
        for path in ctx
            .forge
            .list_files("", &base)
            .await
            .map_err(|e| e.to_string())?
        {
            if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
                continue;
            }
            if let Some(text) = ctx
                .forge
                .read_file(&path, &base)
                .await
                .map_err(|e| e.to_string())?
            {
                if text.contains(&format!("kind: {}", a.workload.kind)) && text.contains(&needle) {
                    return Ok((path, text));
                }
            }
        }
        Err(format!(
            "no manifest for {} in {}",
            a.workload,
            ctx.forge.repo()
        ))
    }

    async fn memory_fix(
        &self,
        ctx: &CrewContext,
        a: &Assignment,
        m: &MemorySignals,
    ) -> Result<(Vec<FileChange>, String, Vec<Finding>), String> {
        let rule = &ctx.settings.remediation.memory;
        let rule_sizing = size_memory(m, rule);
        let thought = mind::deliberate(
            ctx,
            Ask {
                member: Member::Belanna,
                assignment: a,
                task: "Decide the container's new memory limit and request, and whether to add a HorizontalPodAutoscaler on memory. The limit must hold the observed peak; never lower today's values.".into(),
                context: format!(
                    "Container `{}`: limit {}, request {}; 24 h peak {:.0} MiB, median {:.0} MiB; unexplained growth {:.1} MiB/h (leak suspected: {}). The team's rule: limit = peak x {}% rounded up to {}, request = median rounded up.",
                    m.container,
                    m.limit.map_or("none".into(), |q| q.to_string()),
                    m.request.map_or("none".into(), |q| q.to_string()),
                    m.peak_24h.as_mib_f64(),
                    m.median_24h.as_mib_f64(),
                    m.trend_mib_per_hour,
                    m.leak_suspected,
                    100 + rule.headroom_percent,
                    rule.round_to
                ),
                proposal: MemoryPlan {
                    limit: rule_sizing.limit.to_string(),
                    request: rule_sizing.request.to_string(),
                    add_hpa: true,
                    rationale: rule_sizing.rationale.clone(),
                },
                tools: TOOLS,
            },
            |p| check_plan(p, m).map(|_| ()),
        )
        .await;
        let (sizing, add_hpa) = match &thought.by_model {
            Some(model) => match check_plan(&thought.answer, m) {
                Ok(mut s) => {
                    s.rationale = format!("{} (decided with {model})", s.rationale);
                    (s, thought.answer.add_hpa)
                }
                Err(_) => (rule_sizing, true),
            },
            None => (rule_sizing, true),
        };
        let (path, text) = self.find_manifest(ctx, a).await?;
        let target = ContainerTarget {
            kind: &a.workload.kind,
            name: &a.workload.name,
            container: &m.container,
        };
        let patched = manifest::set_container_resource(
            &text,
            &target,
            "limits",
            "memory",
            &sizing.limit.to_string(),
        )
        .map_err(|e| e.to_string())?;
        let patched = manifest::set_container_resource(
            &patched,
            &target,
            "requests",
            "memory",
            &sizing.request.to_string(),
        )
        .map_err(|e| e.to_string())?;
        // Sizes already at or above what the rule asks for leave the manifest as it is.
        let mut files = if patched == text {
            Vec::new()
        } else {
            vec![FileChange {
                path: path.clone(),
                content: patched,
            }]
        };
        let mut notes = format!(
            "### Memory\n| | current | new |\n|---|---|---|\n| limit | {} | **{}** |\n| request | {} | **{}** |\n\nRule: {}.\n",
            m.limit.map_or("none".into(), |q| q.to_string()),
            sizing.limit,
            m.request.map_or("none".into(), |q| q.to_string()),
            sizing.request,
            sizing.rationale
        );
        // Without the HPA list (a missing permission), adding one could duplicate an existing
        // HPA: the PR sizes memory only and says why.
        let hpas = ctx.cluster.hpas(&a.workload.namespace).await;
        let target_ref = format!("{}/{}", a.workload.kind, a.workload.name);
        if !add_hpa {
            notes.push_str("\nNo HPA added: sizing alone was judged enough for this workload.\n");
        } else if let Err(e) = &hpas {
            notes.push_str(&format!(
                "\nNo HPA added: the HorizontalPodAutoscalers in {} could not be read ({e}), and one may already target this workload.\n",
                a.workload.namespace
            ));
        } else if hpas
            .as_ref()
            .is_ok_and(|h| h.iter().any(|h| h.target == target_ref))
        {
            notes.push_str("\nAn HPA already targets this workload; left as it is.\n");
        } else {
            let info = ctx
                .cluster
                .workload(&a.workload)
                .await
                .map_err(|e| e.to_string())?;
            let min = info.replicas.max(1);
            let max = min * rule.hpa_max_replicas_factor.max(1);
            let dir = path
                .rsplit_once('/')
                .map_or(String::new(), |(d, _)| format!("{d}/"));
            let hpa_path = format!("{dir}hpa.yaml");
            files.push(FileChange {
                path: hpa_path.clone(),
                content: hpa_manifest(
                    &a.workload.name,
                    &a.workload.namespace,
                    &a.workload.kind,
                    min,
                    max,
                    rule.hpa_target_percent,
                ),
            });
            notes.push_str(&format!(
                "\n### Autoscaling\nNew `{hpa_path}`: HPA on memory utilisation at **{}%** of the request, {min}–{max} replicas.\n",
                rule.hpa_target_percent
            ));
            let base = ctx
                .forge
                .default_branch()
                .await
                .map_err(|e| e.to_string())?;
            if let Some(k) = ctx
                .forge
                .read_file("kustomization.yaml", &base)
                .await
                .map_err(|e| e.to_string())?
            {
                if let Some(updated) = kustomize::add_resource(&k, &path, &hpa_path) {
                    files.push(FileChange {
                        path: "kustomization.yaml".into(),
                        content: updated,
                    });
                }
            }
        }
        let mut findings = vec![Finding {
            severity: Severity::High,
            title: format!(
                "memory limit {} below observed peak {}",
                m.limit.map_or("none".into(), |q| q.to_string()),
                m.peak_24h.round_up_to(Quantity::mebibytes(1))
            ),
            detail: sizing.rationale.clone(),
        }];
        if m.leak_suspected {
            notes.push_str(&format!(
                "\n> **Stop-gap.** Memory grows {:.1} MiB/h independently of traffic: this buys time; the leak itself is Data's follow-up.\n",
                m.trend_mib_per_hour
            ));
            findings.push(Finding {
                severity: Severity::High,
                title: "more memory will not hold against a leak".into(),
                detail: format!("unexplained growth {:.1} MiB/h", m.trend_mib_per_hour),
            });
        }
        Ok((files, notes, findings))
    }

    async fn env_fix(
        &self,
        ctx: &CrewContext,
        a: &Assignment,
        var: &str,
    ) -> Result<(Vec<FileChange>, String, Vec<Finding>), String> {
        let (path, text) = self.find_manifest(ctx, a).await?;
        let container = a
            .diagnosis
            .signals
            .crash
            .as_ref()
            .map(|c| c.container.clone())
            .unwrap_or_default();
        let target = ContainerTarget {
            kind: &a.workload.kind,
            name: &a.workload.name,
            container: &container,
        };
        // Where the variable came from before: the newest earlier version of the manifest that had it.
        let history = ctx
            .forge
            .file_history(&path)
            .await
            .map_err(|e| e.to_string())?;
        let previous = history
            .iter()
            .skip(1)
            .find_map(|v| env_item_lines(&v.content, var).map(|l| (v.clone(), l)));
        let (item, source) = match previous {
            Some((v, lines)) => (
                lines,
                format!(
                    "restored from commit `{}` ({}, {})",
                    &v.commit[..v.commit.len().min(8)],
                    v.message,
                    v.at.to_rfc3339()
                ),
            ),
            None => {
                let secrets = ctx
                    .cluster
                    .secret_keys(&a.workload.namespace)
                    .await
                    .map_err(|e| {
                        format!(
                            "{var} is in no earlier revision of {path}, and the Secrets in {} could not be listed to find it: {e}",
                            a.workload.namespace
                        )
                    })?;
                let wanted = var.to_ascii_lowercase();
                let hit = secrets.iter().find_map(|(name, keys)| {
                    keys.iter()
                        .find(|k| k.to_ascii_lowercase() == wanted)
                        .map(|k| (name.clone(), k.clone()))
                });
                let (secret, key) = hit.ok_or_else(|| format!("{var} is in no earlier revision of {path} and no Secret in {} has a matching key", a.workload.namespace))?;
                (
                    vec![
                        format!("- name: {var}"),
                        "  valueFrom:".into(),
                        "    secretKeyRef:".into(),
                        format!("      name: {secret}"),
                        format!("      key: {key}"),
                    ],
                    format!("from Secret `{secret}` key `{key}` (value not read)"),
                )
            }
        };
        let refs: Vec<&str> = item.iter().map(String::as_str).collect();
        let patched =
            manifest::add_container_env(&text, &target, &refs, var).map_err(|e| e.to_string())?;
        let notes = format!(
            "### Configuration\n`{var}` is missing from container `{container}`; {source}:\n\n```yaml\n{}\n```\n",
            item.join("\n")
        );
        let findings = vec![Finding {
            severity: Severity::High,
            title: format!("environment variable {var} dropped from the manifest"),
            detail: source,
        }];
        Ok((
            vec![FileChange {
                path,
                content: patched,
            }],
            notes,
            findings,
        ))
    }
}

#[async_trait]
impl Skill for Belanna {
    fn member(&self) -> Member {
        Member::Belanna
    }

    async fn perform(&self, ctx: &CrewContext, a: &Assignment) -> Result<Report, String> {
        let d = &a.diagnosis;
        let fix = match (
            d.root_cause,
            &d.signals.memory,
            d.signals.crash.as_ref().and_then(|c| c.missing_env.clone()),
        ) {
            (RootCause::MemoryUnderProvisioned | RootCause::MemoryLeak, Some(m), _) => {
                Some(self.memory_fix(ctx, a, m).await?)
            }
            (RootCause::MissingConfiguration, _, Some(var)) => {
                Some(self.env_fix(ctx, a, &var).await?)
            }
            _ => None,
        };
        let fix = fix.filter(|(files, _, _)| !files.is_empty());
        let Some((files, notes, findings)) = fix else {
            let mut r = Report::new(
                Member::Belanna,
                format!(
                    "no infrastructure fix for root cause {}; nothing to change in the manifests",
                    d.root_cause.as_str()
                ),
            );
            r.findings.push(Finding {
                severity: Severity::Info,
                title: "no manifest change".into(),
                detail: d.summary.clone(),
            });
            return Ok(r);
        };
        let base = ctx
            .forge
            .default_branch()
            .await
            .map_err(|e| e.to_string())?;
        let (kind_word, title) = match d.root_cause {
            RootCause::MissingConfiguration => (
                "config",
                format!(
                    "fix(infra): restore {} configuration ({} incident)",
                    a.workload.name, "CrashLoopBackOff"
                ),
            ),
            _ => (
                "memory",
                format!(
                    "fix(infra): increase {} memory limits (OOM incident)",
                    a.workload.name
                ),
            ),
        };
        let evidence: String = d
            .evidence
            .iter()
            .map(|e| format!("- **{}:** {}\n", e.source, e.observation))
            .collect();
        let past = if a.memory.is_empty() {
            String::new()
        } else {
            let lines: String = a.memory.iter().map(|m| format!("- {m}\n")).collect();
            format!("### Past incidents of this workload\n{lines}\n")
        };
        let body = format!(
            "Fixes the incident in #{} ({}).\n\n**Diagnosis:** {}\n\n{notes}\n### Evidence\n{evidence}\n{past}### Rollout\nMerging syncs through GitOps; Ralph watches the rollout and resolves the incident only when the cluster confirms the fix.\n\n_Opened by squad's B'Elanna (infrastructure). A human reviews and merges._",
            a.issue.number, a.incident, d.summary
        );
        let spec = PrSpec {
            title: title.clone(),
            body,
            branch: format!("squad/{}-{kind_word}", a.incident),
            base,
            commit_message: format!("{title}\n\nIncident {} (#{}).", a.incident, a.issue.number),
            files: files.clone(),
            labels: vec![
                "incident".into(),
                "squad:belanna".into(),
                a.workload.namespace.clone(),
            ],
        };
        let pr =
            effects::pr_once(ctx, &a.incident, Member::Belanna, "remediation-pr", spec).await?;
        effects::comment_once(
            ctx,
            &a.incident,
            Member::Belanna,
            "pr-link",
            a.issue.number,
            &format!(
                "**B'Elanna** (infrastructure): remediation PR #{} opened — `{}`.\n\n{notes}",
                pr.number, title
            ),
        )
        .await?;
        let mut r = Report::new(
            Member::Belanna,
            format!("opened PR #{}: {title}", pr.number),
        );
        r.findings = findings;
        r.actions.push(Action::OpenedPr { pr, title });
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn oomkilled_limit_is_peak_plus_headroom_rounded_and_request_is_median() {
        let m = MemorySignals {
            container: "c".into(),
            limit: Some("512Mi".parse().unwrap()),
            request: Some("256Mi".parse().unwrap()),
            peak_24h: "1.24Gi".parse().unwrap(),
            median_24h: "454Mi".parse().unwrap(),
            trend_mib_per_hour: 0.0,
            leak_suspected: false,
        };
        let s = size_memory(&m, &MemoryRule::default());
        assert_eq!(s.limit.to_string(), "1.5Gi");
        assert_eq!(s.request.to_string(), "512Mi");
        // A different peak gives a different limit: the rule, not a constant.
        let s2 = size_memory(
            &MemorySignals {
                peak_24h: "2Gi".parse().unwrap(),
                ..m
            },
            &MemoryRule::default(),
        );
        assert_eq!(s2.limit.to_string(), "2.5Gi");
    }
}
