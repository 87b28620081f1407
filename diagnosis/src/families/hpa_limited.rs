//! An HPA that limits the workload: it holds it at `maxReplicas` while its metric asks for more
//! (`ScalingLimited=True`, `TooManyReplicas`: `the desired replica count is more than the maximum
//! replica count`; kubernetes-mixin's `KubeHpaMaxedOut` after 15 minutes at the maximum), or it
//! cannot compute a replica count at all (`ScalingActive=False`, `FailedGetResourceMetric`:
//! `failed to get cpu utilization: missing request for cpu`), so the workload stays where it is
//! whatever the load. The family reads the HPA's status and the controller's events, and says
//! which: how far the metric is over its target and how many replicas it would take, or which
//! container lacks the request. The fix (a higher `maxReplicas` where the nodes have room, the
//! request the HPA scales on) comes with the remediations; until then the crew escalates with
//! the diagnosis. The proof is `ScalingActive=True` with the desired count under the maximum.
//! An HPA that cannot read or write its target's scale (`AbleToScale=False`: `FailedGetScale`,
//! `FailedUpdateScale`) scales nothing either, and is named the same way.

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::HpaInfo;
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, Verification, WorkloadRef};

use squad_protocols::llm::Rejection;

use crate::{
    Change, Detection, Edit, Facts, Family, FollowupContext, IssueDraft, Lookup, Observation,
    Proposal, Readings, Remedy, RemedyInput, RepoNeeds, RepoObject, Rules, Runbook,
};

pub struct HpaLimited;

pub const ROOT_CAUSE: &str = "hpa_limited";

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HpaSignals {
    pub hpa: String,
    /// `maxed_out` or `cannot_compute`.
    pub limit: String,
    pub current_replicas: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// `(resource, current %, target %)` of each utilisation metric read.
    pub utilization: Vec<(String, u32, u32)>,
    /// The replicas the metric asks for (`ceil(current × usage / target)`), when over the max.
    pub wanted_replicas: Option<u32>,
    /// Why no replica count could be computed.
    pub error: Option<String>,
    /// The containers without the request the HPA scales on.
    pub missing_requests: Vec<String>,
}

/// `cpu 152%` → (`cpu`, 152).
fn percent(s: &str) -> Option<(String, u32)> {
    let (name, value) = s.split_once(' ')?;
    Some((name.to_owned(), value.strip_suffix('%')?.parse().ok()?))
}

/// Each utilisation metric: its resource, current and target percentages.
fn utilization(h: &HpaInfo) -> Vec<(String, u32, u32)> {
    h.metrics
        .iter()
        .filter_map(|m| percent(m))
        .filter_map(|(name, target)| {
            let current = h
                .current_metrics
                .iter()
                .filter_map(|c| percent(c))
                .find(|(n, _)| *n == name)?
                .1;
            Some((name, current, target))
        })
        .collect()
}

/// The resource a `missing request for <resource>` error names.
fn missing_request(error: &str) -> Option<&str> {
    let rest = &error[error.find("missing request for ")? + "missing request for ".len()..];
    rest.split([' ', ',', ':']).next().filter(|r| !r.is_empty())
}

/// What B'Elanna's model decides for an HPA held at its max (and what the rule proposes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaxPlan {
    /// The HPA's new maxReplicas.
    pub max_replicas: u32,
    /// Why, from the measurements (one or two sentences).
    pub rationale: String,
}

/// A plan's max, checked: above today's, at least the replicas the metric asks for, at most
/// three times them.
fn check_max(plan: &MaxPlan, s: &HpaSignals) -> Result<u32, Rejection> {
    let wanted = s
        .wanted_replicas
        .ok_or("the HPA's metric asks for no replica count")?;
    let m = plan.max_replicas;
    if m <= s.max_replicas {
        return Err(Rejection(format!(
            "maxReplicas {m} is not above today's {}",
            s.max_replicas
        )));
    }
    if m < wanted {
        return Err(Rejection(format!(
            "maxReplicas {m} is below the {wanted} replicas the metric asks for"
        )));
    }
    if m > wanted * 3 {
        return Err(Rejection(format!(
            "maxReplicas {m} is over three times the {wanted} replicas the metric asks for"
        )));
    }
    squad_protocols::llm::clean_text(&plan.rationale, 1_500, "rationale")?;
    Ok(m)
}

/// Room above the replicas the metric asks for now, when the HPA's max is raised by rule: the
/// load that outgrew the max may still be growing.
const MAX_HEADROOM: f64 = 1.5;

/// A higher `maxReplicas`: the HPA's own before its last lowering, when that covers what the
/// metric asks for now; else `ceil(wanted × 1.5)`, on the key's line alone (its comment kept).
/// Whether the nodes have room for them is the replay's to show before the PR opens.
fn max_replicas(
    input: &RemedyInput<'_>,
    hpa: &RepoObject,
    s: &HpaSignals,
    wanted: u32,
) -> Option<Change> {
    let why = format!(
        "HPA {} holds {} at its maxReplicas of {} while its metric asks for {wanted} replicas ({})",
        s.hpa,
        input.workload.name,
        s.max_replicas,
        s.utilization
            .iter()
            .map(|(r, now, target)| format!("{r} at {now}% of request against a {target}% target"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let finding = "the HPA's maxReplicas is below what the load needs";
    let before = |u: &crate::undo::Undo<'_>| {
        squad_gitops::objects::parse(&hpa.path, &u.before.content)
            .ok()?
            .into_iter()
            .find(|o| squad_gitops::objects::name(o) == hpa.name)?["spec"]["maxReplicas"]
            .as_u64()
    };
    if let Some(undo) = crate::undo::find_keys(hpa, &[&["spec", "maxReplicas"]])
        && before(&undo).is_some_and(|m| m >= u64::from(wanted) && m > u64::from(s.max_replicas))
    {
        let mut change = undo.change(input.workload, &why, finding);
        change.notes.push_str(&format!(
            "\nThe restored maxReplicas covers the {wanted} replicas the metric asks for now.\n"
        ));
        return Some(change);
    }
    let decided = input.decision.and_then(|dec| {
        let plan: MaxPlan = serde_json::from_value(dec.answer.clone()).ok()?;
        let m = check_max(&plan, s).ok()?;
        Some((
            m,
            format!("{} (decided with {})", plan.rationale, dec.model),
        ))
    });
    let max = decided.as_ref().map_or(
        (f64::from(wanted) * MAX_HEADROOM).ceil() as u32,
        |(m, _)| *m,
    );
    let keys = ["spec", "maxReplicas"];
    let line =
        squad_gitops::editor::object_key_lines(&hpa.text, &hpa.kind, &hpa.name, &keys).ok()??;
    let first = line.first()?;
    let now = s.max_replicas.to_string();
    let at = first.find(&now)?;
    let edited = format!("{}{max}{}", &first[..at], &first[at + now.len()..]);
    Some(Change {
        branch_word: "hpa-max".into(),
        title: format!("fix(hpa): raise {}'s maxReplicas to {max}", s.hpa),
        edits: vec![Edit::SetObjectKey {
            path: hpa.path.clone(),
            kind: hpa.kind.clone(),
            name: hpa.name.clone(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            lines: Some(vec![edited]),
        }],
        notes: format!(
            "### A higher maxReplicas\n{why}. maxReplicas {} → {max}: {}. The nodes' room for them is what the replay below checks.\n",
            s.max_replicas,
            match &decided {
                Some((_, why)) => format!(
                    "decided by B'Elanna's model within the rule's checks (above today's, from the {wanted} replicas the metric asks for to three times them): {why}"
                ),
                None => format!(
                    "the {wanted} replicas the metric asks for now, with 50% room for the load to keep growing"
                ),
            }
        ),
        findings: vec![squad_protocols::Finding {
            severity: squad_protocols::Severity::High,
            title: finding.into(),
            detail: why,
        }],
    })
}

impl Family for HpaLimited {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("HpaLimited")
    }

    fn lookups(&self, facts: &Facts) -> Vec<Lookup> {
        let alert = &facts.alert;
        let name = alert.name.to_ascii_lowercase();
        let names_hpa = alert.label("horizontalpodautoscaler").is_some()
            || alert.label("hpa").is_some()
            || name.contains("hpa")
            || name.contains("autoscal");
        // Pods using more CPU than they request: an HPA over them may be capped.
        let request = facts
            .info
            .container(&facts.container)
            .and_then(|c| c.requests.get("cpu"))
            .map(|q| q.milli() as f64 / 1000.0);
        let overloaded = request.is_some_and(|r| {
            facts
                .cpu
                .usage
                .last()
                .is_some_and(|s| s.value.is_finite() && s.value > r)
        });
        let scalable = matches!(
            facts.workload.kind.as_str(),
            "Deployment" | "StatefulSet" | "ReplicaSet"
        );
        if scalable && (names_hpa || overloaded) {
            vec![Lookup::Autoscalers]
        } else {
            Vec::new()
        }
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let w = &facts.workload;
        let (h, error) = facts.autoscalers.iter().find_map(|h| {
            // It cannot read or write the target's scale (`FailedGetScale`,
            // `FailedUpdateScale`): it scales nothing.
            if let Some(c) = h.condition("AbleToScale").filter(|c| c.status == "False") {
                return Some((h, Some(c.message.clone())));
            }
            let active = h.condition("ScalingActive");
            let failed = active.filter(|c| c.status == "False" && c.reason != "ScalingDisabled");
            if let Some(c) = failed {
                return Some((h, Some(c.message.clone())));
            }
            let limited = h
                .condition("ScalingLimited")
                .is_some_and(|c| c.status == "True" && c.reason == "TooManyReplicas");
            (limited && h.current_replicas >= h.max_replicas).then_some((h, None))
        })?;
        let mut d = Detection::new(String::new(), 0.85, &[]);
        for c in &h.conditions {
            d.evidence.push(Evidence {
                source: format!("HPA {} status", h.name),
                observation: format!("{}={} ({}): {}", c.kind, c.status, c.reason, c.message),
            });
        }
        let mut seen = Vec::new();
        for e in facts
            .autoscaler_events
            .iter()
            .filter(|e| e.object.ends_with(&format!("/{}", h.name)))
            .rev()
        {
            if seen.contains(&(&e.reason, &e.message)) || seen.len() >= 4 {
                continue;
            }
            seen.push((&e.reason, &e.message));
            d.evidence.push(Evidence {
                source: "horizontal-pod-autoscaler events".into(),
                observation: format!(
                    "{} ({}×, last {}): {}",
                    e.reason,
                    e.count,
                    e.last_seen.to_rfc3339(),
                    e.message
                ),
            });
        }
        let used = utilization(h);
        let mut signals = HpaSignals {
            hpa: h.name.clone(),
            limit: String::new(),
            current_replicas: h.current_replicas,
            min_replicas: h.min_replicas,
            max_replicas: h.max_replicas,
            utilization: used.clone(),
            wanted_replicas: None,
            error: error.clone(),
            missing_requests: Vec::new(),
        };
        match &error {
            Some(message) => {
                signals.limit = "cannot_compute".into();
                let cause = message
                    .strip_prefix("the HPA was unable to compute the replica count: ")
                    .unwrap_or(message);
                let resource = missing_request(cause);
                if let Some(resource) = resource {
                    signals.missing_requests = facts
                        .info
                        .containers
                        .iter()
                        .filter(|c| !c.requests.contains_key(resource))
                        .map(|c| c.name.clone())
                        .collect();
                }
                let lacking = if signals.missing_requests.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (container{} {} request{} no {})",
                        if signals.missing_requests.len() == 1 {
                            ""
                        } else {
                            "s"
                        },
                        signals.missing_requests.join(", "),
                        if signals.missing_requests.len() == 1 {
                            "s"
                        } else {
                            ""
                        },
                        resource.unwrap_or("")
                    )
                };
                d.summary = format!(
                    "HPA {} cannot scale {w}: {cause}{lacking}; it stays at {} replica{} whatever the load",
                    h.name,
                    h.current_replicas,
                    if h.current_replicas == 1 { "" } else { "s" }
                );
                d.confidence = 0.9;
                if let Some(resource) = resource {
                    d.recommendations.push(format!(
                        "give every container of the pod a {resource} request (the HPA's utilisation is usage over the sum of the requests), sized from observed use"
                    ));
                }
                d.recommendations.push(format!(
                    "then check `kubectl describe hpa -n {} {}`: ScalingActive=True (ValidMetricFound)",
                    w.namespace, h.name
                ));
            }
            None => {
                signals.limit = "maxed_out".into();
                // What the metric asks for: the largest over the utilisation metrics.
                signals.wanted_replicas = used
                    .iter()
                    .filter(|(_, _, target)| *target > 0)
                    .map(|(_, current, target)| {
                        (f64::from(h.current_replicas) * f64::from(*current) / f64::from(*target))
                            .ceil() as u32
                    })
                    .max()
                    .filter(|n| *n > h.max_replicas);
                let over = used
                    .iter()
                    .map(|(name, current, target)| {
                        format!("{name} at {current}% of request against a {target}% target")
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let since = h
                    .last_scale_time
                    .map_or(String::new(), |t| format!(" since {}", t.to_rfc3339()));
                d.summary = format!(
                    "HPA {} holds {w} at its maximum of {} replicas{since}{}{}",
                    h.name,
                    h.max_replicas,
                    if over.is_empty() {
                        String::new()
                    } else {
                        format!(" with {over}")
                    },
                    signals
                        .wanted_replicas
                        .map_or(String::new(), |n| format!(": the load asks for {n}")),
                );
                d.recommendations.push(format!(
                    "raise maxReplicas of HPA {} to what the load asks for{}, if the nodes have room for the pods' requests; otherwise a human decides on capacity",
                    h.name,
                    signals
                        .wanted_replicas
                        .map_or(String::new(), |n| format!(" ({n} now)"))
                ));
                d.recommendations.push(
                    "find out whether the load is expected (a launch, a campaign) or abnormal (a retry storm, a crawler): an abnormal one is not solved with replicas".into(),
                );
            }
        }
        d.signals = serde_json::to_value(&signals).ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the HPA's bounds and metric against the load, the requests it divides by, and the nodes' room",
            ),
            (
                Member::Data,
                "what one request costs the service (why the load needs this many pods)",
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
        crate::family_signals::<HpaSignals>(d)
            .map(|s| vec![("HorizontalPodAutoscaler".to_owned(), s.hpa)])
            .unwrap_or_default()
    }

    fn verify_needs(&self) -> crate::VerifyNeeds {
        crate::VerifyNeeds {
            hpas: true,
            ..crate::VerifyNeeds::default()
        }
    }

    /// The default verdict, and the HPA no longer held at its max: active, and asking for no more
    /// than it may have.
    fn verify(&self, d: &Diagnosis, obs: &Observation, rules: &Rules<'_>) -> Verification {
        let mut v = crate::family::default_verdict(d, obs, rules);
        let Some(s) = crate::family_signals::<HpaSignals>(d) else {
            return v;
        };
        let Some(h) = obs.hpas.iter().find(|h| h.name == s.hpa) else {
            v.healthy = false;
            v.detail = format!("HPA {} could not be read; {}", s.hpa, v.detail);
            return v;
        };
        let on = |kind: &str| h.condition(kind).map(|c| c.status == "True");
        let limited = on("ScalingLimited") == Some(true) && h.desired_replicas >= h.max_replicas;
        if limited || on("ScalingActive") == Some(false) {
            v.healthy = false;
            v.detail = format!(
                "HPA {} is still {} ({} of max {} replicas); {}",
                s.hpa,
                if limited {
                    "held at its max"
                } else {
                    "not scaling (ScalingActive false)"
                },
                h.desired_replicas,
                h.max_replicas,
                v.detail
            );
        } else {
            v.detail.push_str(&format!(
                "; HPA {} scaling freely: {} replicas wanted, max {}",
                s.hpa, h.desired_replicas, h.max_replicas
            ));
        }
        v
    }

    fn proposal(&self, d: &Diagnosis, _rules: &Rules<'_>) -> Option<Proposal> {
        let s = crate::family_signals::<HpaSignals>(d)?;
        let wanted = s.wanted_replicas.filter(|_| s.limit == "maxed_out")?;
        let plan = MaxPlan {
            max_replicas: (f64::from(wanted) * MAX_HEADROOM).ceil() as u32,
            rationale: format!(
                "the {wanted} replicas the metric asks for, with half again of room"
            ),
        };
        Some(Proposal {
            task: "Decide the HPA's new maxReplicas. It must let the workload reach the replicas its metric asks for under today's load. (The max before its last lowering goes back instead when it covers them.)".into(),
            context: format!(
                "HPA {}: min {}, max {}, at {} replicas; utilisation {}; the metric asks for {wanted}. The team's rule: max = {MAX_HEADROOM}x that, rounded up.",
                s.hpa,
                s.min_replicas,
                s.max_replicas,
                s.current_replicas,
                s.utilization
                    .iter()
                    .map(|(r, now, target)| format!("{r} {now}% of request (target {target}%)"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            schema: serde_json::to_value(schemars::schema_for!(MaxPlan))
                .unwrap_or(serde_json::Value::Null),
            proposal: serde_json::to_string_pretty(&plan).unwrap_or_default(),
            parse: crate::family::parse_as::<MaxPlan>,
        })
    }

    fn check_proposal(&self, d: &Diagnosis, answer: &serde_json::Value) -> Result<(), Rejection> {
        let s = crate::family_signals::<HpaSignals>(d).ok_or("the diagnosis has no HPA")?;
        let plan: MaxPlan =
            serde_json::from_value(answer.clone()).map_err(|e| Rejection(e.to_string()))?;
        check_max(&plan, &s).map(|_| ())
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        let human = "a human raises maxReplicas where the nodes have room, or adds the request the HPA scales on";
        let Some(s) = crate::family_signals::<HpaSignals>(d) else {
            return Remedy::not_yet("HPA limits", d, human);
        };
        let (Some(wanted), "maxed_out") = (s.wanted_replicas, s.limit.as_str()) else {
            return Remedy::not_yet("an HPA that cannot compute its replicas", d, human);
        };
        let Some(hpa) = input.repo.object("HorizontalPodAutoscaler", &s.hpa) else {
            return Remedy::Escalate {
                reason: format!(
                    "{} (the GitOps repository does not declare HorizontalPodAutoscaler {}); {human}",
                    d.summary, s.hpa
                ),
            };
        };
        max_replicas(input, hpa, &s, wanted).map_or_else(
            || Remedy::not_yet("this HPA's shape", d, human),
            Remedy::Change,
        )
    }

    /// A higher maximum whose replicas the nodes cannot all hold is a capacity decision.
    fn replay_failed(&self, _d: &Diagnosis, replay: &squad_protocols::Replay) -> Option<String> {
        let with = &replay.with;
        let pending = with.not_ready.iter().any(|p| p.ends_with(": Pending"));
        (pending && with.ready < with.desired).then(|| {
            format!(
                "the owner is the platform team, who adds node capacity (or decides which workloads yield): the nodes hold {} of the {} replicas the load asks for",
                with.ready, with.desired
            )
        })
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "hpa-limited".into(),
            meaning: "A HorizontalPodAutoscaler keeps the workload from following its load: at `maxReplicas` while its metric asks for more (`ScalingLimited=True`, `TooManyReplicas`; `KubeHpaMaxedOut` after 15 minutes), or unable to compute a replica count (`ScalingActive=False`, e.g. `failed to get cpu utilization: missing request for cpu`).".into(),
            checks: "1. `kubectl describe hpa -n <ns> <hpa>`: the conditions, current against target metrics, and the events (`SuccessfulRescale`, `FailedGetResourceMetric`).\n2. `kubectl get hpa -n <ns>`: REPLICAS against MAXPODS.\n3. `kubectl top pods -n <ns> -l <selector>` and the containers' requests: utilisation is usage over the sum of the requests.\n4. `kubectl describe nodes`: whether the requests of more pods fit (Allocated resources).\n5. The GitOps history of the HPA (a lowered maxReplicas, a removed request).".into(),
            fixes: "- **At the maximum**: raise `maxReplicas` to what the metric asks for, when the nodes have room for those requests; when they do not, it is a capacity decision for a human.\n- **Cannot compute**: give every container the request of the metric the HPA scales on.\n- Never scale a leaking or looping service out of its problem: check that the load is real first.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Size {workload}'s maxReplicas from its peak load and cost per request, and write down where the number comes from."
            ),
            "A cost review that lowers an HPA's maximum needs the peak it was sized for, not the average.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!("Measure what one request costs {}", cx.workload.name),
            body: format!(
                "During incident {} (#{}) the HPA of {} could not follow the load.\n\n\
                 1. Profile CPU per request under production load (pprof, async-profiler, py-spy) and find the hot paths.\n\
                 2. Record the peak requests per second and the pods it takes, for the HPA's bounds.\n\
                 3. Reproduce: `kubectl describe hpa -n {}`.",
                cx.incident, cx.issue, cx.workload.name, cx.workload.namespace
            ),
            label: "performance".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::cluster::WorkloadCondition;

    use super::*;
    use crate::testing;

    fn condition(kind: &str, status: &str, reason: &str, message: &str) -> WorkloadCondition {
        WorkloadCondition {
            kind: kind.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
        }
    }

    fn hpa(current: u32, max: u32, conditions: Vec<WorkloadCondition>) -> HpaInfo {
        HpaInfo {
            name: "cart".into(),
            target: "Deployment/cart".into(),
            min_replicas: 2,
            max_replicas: max,
            metrics: vec!["cpu 70%".into()],
            current_replicas: current,
            desired_replicas: current,
            current_metrics: vec!["cpu 109%".into()],
            conditions,
            last_scale_time: None,
        }
    }

    fn running() -> Facts {
        let mut f = testing::crashing(&[]);
        f.pod.as_mut().unwrap().containers[0].state = "running".into();
        f
    }

    #[test]
    fn an_hpa_at_its_maximum_says_how_many_the_load_asks_for() {
        let mut f = running();
        f.alert.name = "KubeHpaMaxedOut".into();
        assert_eq!(HpaLimited.lookups(&f), [Lookup::Autoscalers]);
        f.autoscalers = vec![hpa(
            4,
            4,
            vec![
                condition("ScalingActive", "True", "ValidMetricFound", "ok"),
                condition(
                    "ScalingLimited",
                    "True",
                    "TooManyReplicas",
                    "the desired replica count is more than the maximum replica count",
                ),
            ],
        )];
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "HPA cart holds Deployment shop/cart at its maximum of 4 replicas with cpu at 109% of request against a 70% target: the load asks for 7"
        );
        let reason = testing::escalation(&HpaLimited, &d);
        assert!(reason.contains("maxReplicas"), "{reason}");
        // The model may decide the max, within the checks: 7 to 21, above today's 4.
        let p = HpaLimited
            .proposal(&d, &crate::Rules::of(&testing::settings()))
            .unwrap();
        assert!(
            p.proposal.contains("\"max_replicas\": 11"),
            "{}",
            p.proposal
        );
        let plan = |m: u32| serde_json::json!({"max_replicas": m, "rationale": "the load asks for 7; room for more"});
        HpaLimited.check_proposal(&d, &plan(8)).unwrap();
        for bad in [4, 6, 22] {
            assert!(HpaLimited.check_proposal(&d, &plan(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_hpa_without_the_request_it_divides_by_names_the_container() {
        let mut f = running();
        f.alert.name = "CPUThrottlingHigh".into();
        f.alert
            .labels
            .insert("horizontalpodautoscaler".into(), "cart".into());
        f.info.containers[0].requests.remove("cpu");
        let mut h = hpa(
            2,
            10,
            vec![condition(
                "ScalingActive",
                "False",
                "FailedGetResourceMetric",
                "the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu",
            )],
        );
        h.current_metrics.clear();
        f.autoscalers = vec![h];
        let d = HpaLimited.detect(&f, &Readings::of(&f)).unwrap();
        assert_eq!(
            d.summary,
            "HPA cart cannot scale Deployment shop/cart: failed to get cpu utilization: missing request for cpu (container api requests no cpu); it stays at 2 replicas whatever the load"
        );
    }

    #[test]
    fn an_hpa_that_cannot_write_its_targets_scale_says_so() {
        let mut f = running();
        f.autoscalers = vec![hpa(
            3,
            10,
            vec![
                condition(
                    "AbleToScale",
                    "False",
                    "FailedUpdateScale",
                    "the HPA controller was unable to update the target scale: Operation cannot be fulfilled on deployments.apps \"cart\": admission webhook \"policy.example.com\" denied the request",
                ),
                condition("ScalingActive", "True", "ValidMetricFound", "ok"),
            ],
        )];
        let d = HpaLimited.detect(&f, &Readings::of(&f)).unwrap();
        assert!(
            d.summary.starts_with("HPA cart cannot scale Deployment shop/cart: the HPA controller was unable to update the target scale: "),
            "{}",
            d.summary
        );
        assert!(
            d.summary
                .ends_with("it stays at 3 replicas whatever the load"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn an_hpa_within_its_range_or_none_is_not_this_family() {
        let mut f = running();
        assert!(HpaLimited.lookups(&f).is_empty());
        f.autoscalers = vec![hpa(
            3,
            10,
            vec![
                condition("ScalingActive", "True", "ValidMetricFound", "ok"),
                condition("ScalingLimited", "False", "DesiredWithinRange", "ok"),
            ],
        )];
        assert!(HpaLimited.detect(&f, &Readings::of(&f)).is_none());
        // Limited by the rate of scale-up, not by its maximum.
        f.autoscalers[0].conditions[1] =
            condition("ScalingLimited", "True", "ScaleUpLimit", "rate");
        assert!(HpaLimited.detect(&f, &Readings::of(&f)).is_none());
    }

    #[test]
    fn a_replay_that_leaves_replicas_pending_names_the_platform_team() {
        let outcome = |desired, ready, not_ready: &[&str]| squad_protocols::replay::Outcome {
            desired,
            ready,
            not_ready: not_ready.iter().map(|s| (*s).to_owned()).collect(),
            restarts: 0,
            oom_kills: 0,
            peak: None,
            limit: None,
        };
        let d = Diagnosis::new(
            squad_protocols::DiagnosisSource::Native,
            RootCause::from_static(ROOT_CAUSE),
            "HPA at its max",
        );
        let replay = |with| squad_protocols::Replay {
            horizon_hours: 24,
            without: outcome(4, 4, &[]),
            with,
            seeded_from: String::new(),
        };
        let pending = replay(outcome(
            9,
            6,
            &["web-a: Pending", "web-b: Pending", "web-c: Pending"],
        ));
        assert_eq!(
            HpaLimited.replay_failed(&d, &pending).as_deref(),
            Some(
                "the owner is the platform team, who adds node capacity (or decides which workloads yield): the nodes hold 6 of the 9 replicas the load asks for"
            )
        );
        // Replicas that schedule and crash are not a capacity question.
        let crashing = replay(outcome(9, 8, &["web-a: app waiting: CrashLoopBackOff"]));
        assert_eq!(HpaLimited.replay_failed(&d, &crashing), None);
    }
}
