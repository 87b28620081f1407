//! What the two memory families share: the team's sizing rule, the plan a model may decide
//! instead, and the fix — new limits and requests in the manifest, and an HPA on memory.

use serde_json::Value;
use squad_config::settings::MemoryRule;
use squad_protocols::diagnosis::MemorySignals;
use squad_protocols::llm::Rejection;
use squad_protocols::{Diagnosis, Finding, Quantity, Severity};

use crate::{Change, Edit, Proposal, RemedyInput, Rules};

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

/// The highest limit a plan may ask for, as a multiple of the observed 24 h peak.
const MAX_LIMIT_OVER_PEAK: u32 = 4;

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

/// Checks a memory plan against the measurements: a limit below the observed peak would be
/// killed again, a value below today's is never proposed (lowering is a human's call), and a
/// limit far above the peak hides a leak and wastes the node.
pub fn check_plan(p: &MemoryPlan, m: &MemorySignals) -> Result<MemorySizing, Rejection> {
    let limit: Quantity = p.limit.parse().map_err(|e| {
        Rejection::from(format!(
            "limit {:?} is not a Kubernetes quantity ({e})",
            p.limit
        ))
    })?;
    let request: Quantity = p.request.parse().map_err(|e| {
        Rejection::from(format!(
            "request {:?} is not a Kubernetes quantity ({e})",
            p.request
        ))
    })?;
    if limit < m.peak_24h {
        return Err(Rejection(format!(
            "limit {limit} is below the observed 24 h peak {}: the container would be killed again",
            m.peak_24h.round_up_to(Quantity::mebibytes(1))
        )));
    }
    if let Some(current) = m.limit.filter(|c| limit < *c) {
        return Err(Rejection(format!(
            "limit {limit} is below today's limit {current}"
        )));
    }
    let cap = m.peak_24h.scale(MAX_LIMIT_OVER_PEAK, 1);
    if limit > cap {
        return Err(Rejection(format!(
            "limit {limit} is more than {MAX_LIMIT_OVER_PEAK}x the observed peak ({})",
            cap.round_up_to(Quantity::mebibytes(1))
        )));
    }
    if request > limit {
        return Err(Rejection(format!(
            "request {request} is above the limit {limit}"
        )));
    }
    if let Some(current) = m.request.filter(|c| request < *c) {
        return Err(Rejection(format!(
            "request {request} is below today's request {current}"
        )));
    }
    if request.bytes() == 0 {
        return Err("request is zero".into());
    }
    let rationale = squad_protocols::llm::clean_text(&p.rationale, 1_500, "rationale")?;
    Ok(MemorySizing {
        limit,
        request,
        rationale,
    })
}

/// The model's task for a memory incident, with the rule's plan as the proposal.
pub fn proposal(d: &Diagnosis, rules: &Rules<'_>) -> Option<Proposal> {
    let m = d.signals.memory.as_ref()?;
    let rule = &rules.remediation.memory;
    let sizing = size_memory(m, rule);
    let plan = MemoryPlan {
        limit: sizing.limit.to_string(),
        request: sizing.request.to_string(),
        add_hpa: true,
        rationale: sizing.rationale,
    };
    Some(Proposal {
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
        schema: serde_json::to_value(schemars::schema_for!(MemoryPlan)).unwrap_or(Value::Null),
        proposal: serde_json::to_string_pretty(&plan).unwrap_or_default(),
        parse: crate::family::parse_as::<MemoryPlan>,
    })
}

/// A model's plan, checked against the measurements.
pub fn check_proposal(d: &Diagnosis, answer: &Value) -> Result<(), Rejection> {
    let m = d
        .signals
        .memory
        .as_ref()
        .ok_or("the diagnosis has no memory measurements")?;
    let plan: MemoryPlan =
        serde_json::from_value(answer.clone()).map_err(|e| Rejection(e.to_string()))?;
    check_plan(&plan, m).map(|_| ())
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

/// The memory fix: limits and requests from the rule (or the model's checked plan), and an HPA
/// on memory when none targets the workload.
pub fn remedy(m: &MemorySignals, input: &RemedyInput<'_>) -> Change {
    let rule = &input.rules.remediation.memory;
    let w = input.workload;
    let rule_sizing = size_memory(m, rule);
    let decided = input.decision.and_then(|dec| {
        let plan: MemoryPlan = serde_json::from_value(dec.answer.clone()).ok()?;
        let mut sizing = check_plan(&plan, m).ok()?;
        sizing.rationale = format!("{} (decided with {})", sizing.rationale, dec.model);
        Some((sizing, plan.add_hpa))
    });
    let (sizing, add_hpa) = decided.unwrap_or((rule_sizing, true));
    let path = &input.repo.path;
    let resource =
        |section: &str, value: Quantity| memory_edit(input, &m.container, section, value);
    let mut edits = vec![
        resource("limits", sizing.limit),
        resource("requests", sizing.request),
    ];
    let mut notes = format!(
        "### Memory\n| | current | new |\n|---|---|---|\n| limit | {} | **{}** |\n| request | {} | **{}** |\n\nRule: {}.\n",
        m.limit.map_or("none".into(), |q| q.to_string()),
        sizing.limit,
        m.request.map_or("none".into(), |q| q.to_string()),
        sizing.request,
        sizing.rationale
    );
    // Without the HPA list (a missing permission), adding one could duplicate an existing HPA:
    // the PR sizes memory only and says why.
    let target_ref = format!("{}/{}", w.kind, w.name);
    match (&input.cluster.hpas, &input.cluster.workload) {
        _ if !add_hpa => {
            notes.push_str("\nNo HPA added: sizing alone was judged enough for this workload.\n");
        }
        (Some(Err(e)), _) => notes.push_str(&format!(
            "\nNo HPA added: the HorizontalPodAutoscalers in {} could not be read ({e}), and one may already target this workload.\n",
            w.namespace
        )),
        (Some(Ok(hpas)), _) if hpas.iter().any(|h| h.target == target_ref) => {
            notes.push_str("\nAn HPA already targets this workload; left as it is.\n");
        }
        (_, Some(info)) => {
            let min = info.replicas.max(1);
            let max = min * rule.hpa_max_replicas_factor.max(1);
            let dir = path
                .rsplit_once('/')
                .map_or(String::new(), |(d, _)| format!("{d}/"));
            let hpa_path = format!("{dir}hpa.yaml");
            edits.push(Edit::AddFile {
                path: hpa_path.clone(),
                content: hpa_manifest(
                    &w.name,
                    &w.namespace,
                    &w.kind,
                    min,
                    max,
                    rule.hpa_target_percent,
                ),
            });
            notes.push_str(&format!(
                "\n### Autoscaling\nNew `{hpa_path}`: HPA on memory utilisation at **{}%** of the request, {min}–{max} replicas.\n",
                rule.hpa_target_percent
            ));
            edits.push(Edit::AddKustomizeResource {
                kustomization: "kustomization.yaml".into(),
                after: path.clone(),
                entry: hpa_path,
            });
        }
        (_, None) => notes.push_str("\nNo HPA added: the workload's replicas were not read.\n"),
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
    Change {
        branch_word: "memory".into(),
        title: format!(
            "fix(infra): increase {} memory limits (OOM incident)",
            w.name
        ),
        edits,
        notes,
        findings,
    }
}

/// The edit of the container's memory `section` (limits, requests) in the workload's manifest.
fn memory_edit(input: &RemedyInput<'_>, container: &str, section: &str, value: Quantity) -> Edit {
    Edit::SetContainerResource {
        path: input.repo.path.clone(),
        kind: input.workload.kind.clone(),
        workload: input.workload.name.clone(),
        container: container.to_owned(),
        section: section.into(),
        resource: "memory".into(),
        value: value.to_string(),
    }
}

/// The stop-gap against a leak: the limit raised by the leak's growth over
/// `[remediation.memory] leak_stopgap_hours` (rounded up to the step), the request as the rule
/// says, and no HPA (every new pod would leak alike). It buys that many hours; the fix is in the
/// code.
pub fn stopgap(m: &MemorySignals, input: &RemedyInput<'_>) -> Change {
    let rule = &input.rules.remediation.memory;
    let w = input.workload;
    let hours = rule.leak_stopgap_hours.max(1);
    let current = m.limit.unwrap_or(m.peak_24h).max(m.peak_24h);
    let growth =
        Quantity::mebibytes((m.trend_mib_per_hour.max(0.0) * f64::from(hours)).ceil() as u64);
    let limit = Quantity::from_bytes(current.bytes() + growth.bytes()).round_up_to(rule.round_to);
    let request = size_memory(m, rule).request.min(limit);
    let resource =
        |section: &str, value: Quantity| memory_edit(input, &m.container, section, value);
    let notes = format!(
        "### Memory (stop-gap against a leak)
| | current | new |
|---|---|---|
| limit | {} | **{limit}** |
| request | {} | **{request}** |

Memory grows {:.1} MiB/h whatever the traffic: a leak. Rule: limit = today's {current} + {:.1} MiB/h × {hours} h (`leak_stopgap_hours`), rounded up to {} → **{limit}**: each container lives about {hours} h longer before the kill. No HPA: every new pod would leak alike. The fix is in the code (Data's follow-up issue).
",
        m.limit.map_or("none".into(), |q| q.to_string()),
        m.request.map_or("none".into(), |q| q.to_string()),
        m.trend_mib_per_hour,
        m.trend_mib_per_hour,
        rule.round_to,
    );
    Change {
        branch_word: "memory".into(),
        title: format!(
            "fix(infra): stop-gap memory for {} ({hours} h against a {:.0} MiB/h leak)",
            w.name, m.trend_mib_per_hour
        ),
        edits: vec![resource("limits", limit), resource("requests", request)],
        notes,
        findings: vec![Finding {
            severity: Severity::High,
            title: "more memory will not hold against a leak".into(),
            detail: format!(
                "unexplained growth {:.1} MiB/h; the stop-gap lasts about {hours} h",
                m.trend_mib_per_hour
            ),
        }],
    }
}

/// The runbook both memory families keep.
pub fn runbook() -> crate::Runbook {
    crate::Runbook {
        name: "oomkilled".into(),
        meaning: "A container used more memory than its limit and the kernel killed it (exit code 137, reason OOMKilled). Kubernetes restarts it with back-off; under steady pressure the pod crash-loops.".into(),
        checks: "1. `kubectl describe pod <pod> -n <ns>` — Last State: Terminated, Reason: OOMKilled, Exit Code: 137; restart count.\n2. Memory over 24 h against the limit: `max(container_memory_working_set_bytes{namespace=\"<ns>\",container=\"<c>\"})`.\n3. Did traffic change? `sum(rate(http_requests_total{route=\"...\"}[5m]))`.\n4. Did the last rollout change resources? `kubectl rollout history deploy/<name> -n <ns>`.".into(),
        fixes: "- **Load grew** (memory follows traffic): raise the limit to the observed peak + 20% headroom (rounded up to 256Mi), the request to the median, add an HPA on memory — through a PR to the GitOps repo.\n- **Leak** (memory grows under flat traffic): raise the limit as a stop-gap, then profile the handler and fix the allocation.".into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn signals() -> MemorySignals {
        MemorySignals {
            container: "c".into(),
            limit: Some("512Mi".parse().unwrap()),
            request: Some("256Mi".parse().unwrap()),
            peak_24h: "1.24Gi".parse().unwrap(),
            median_24h: "454Mi".parse().unwrap(),
            trend_mib_per_hour: 0.0,
            leak_suspected: false,
            held_at_limit: false,
            demand_estimate: None,
            mib_per_rps: 0.0,
        }
    }

    #[test]
    fn oomkilled_limit_is_peak_plus_headroom_rounded_and_request_is_median() {
        let m = signals();
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

    #[test]
    fn sizing_never_lowers_todays_values() {
        let m = MemorySignals {
            limit: Some("4Gi".parse().unwrap()),
            request: Some("1Gi".parse().unwrap()),
            ..signals()
        };
        let s = size_memory(&m, &MemoryRule::default());
        assert_eq!(
            (s.limit.to_string(), s.request.to_string()),
            ("4Gi".into(), "1Gi".into())
        );
    }

    #[test]
    fn a_plan_must_hold_the_peak_and_stay_within_four_times_it() {
        let m = signals();
        let plan = |limit: &str, request: &str| MemoryPlan {
            limit: limit.into(),
            request: request.into(),
            add_hpa: false,
            rationale: "sized from the measured peak".into(),
        };
        assert!(check_plan(&plan("2Gi", "512Mi"), &m).is_ok());
        assert!(
            check_plan(&plan("1Gi", "512Mi"), &m)
                .unwrap_err()
                .0
                .contains("below the observed 24 h peak")
        );
        assert!(
            check_plan(&plan("8Gi", "512Mi"), &m)
                .unwrap_err()
                .0
                .contains("more than 4x")
        );
        assert!(
            check_plan(&plan("2Gi", "3Gi"), &m)
                .unwrap_err()
                .0
                .contains("above the limit")
        );
        assert!(
            check_plan(&plan("2Gi", "128Mi"), &m)
                .unwrap_err()
                .0
                .contains("below today's request")
        );
        assert!(
            check_plan(&plan("two gigs", "512Mi"), &m)
                .unwrap_err()
                .0
                .contains("not a Kubernetes quantity")
        );
    }
}
