//! Liveness probe kills the pod: the kubelet restarts a container whose liveness probe failed
//! `failureThreshold` times in a row (`Container x failed liveness probe, will be restarted`),
//! most often because the app answers its health endpoint slower than the probe's timeout under
//! load (`Liveness probe failed: Get "…": context deadline exceeded (Client.Timeout exceeded
//! while awaiting headers)`). The container ends with exit 137 and no OOM kill, restarts, and the
//! pod crash-loops; restarting a slow pod under load only makes the others slower. The fix is a
//! timeout from the endpoint's measured latency: twice the 99th percentile at its worst over the
//! day (the app's own `http_request_duration_seconds` histogram on the probe's path: the app keeps
//! answering after the kubelet gave up, so it knows how slow it really is); the probe is never
//! deleted. Without a measurement, or with an endpoint slower than any timeout should allow, the
//! crew escalates.
//!
//! Two causes come before the timeout. A probe the last deploy changed goes back to what it was
//! (the deploy's change undone, as for readiness). A probe refused on a port nothing listens on
//! (`dial tcp …: connect: connection refused`) is no matter of time: it points at the port the
//! container declares (`port`, which says when and why), or its owners decide.

mod port;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use squad_protocols::cluster::{ContainerPort, ProbeSpec};
use squad_protocols::llm::Rejection;
use squad_protocols::{Diagnosis, Evidence, Finding, Member, RootCause, Severity, WorkloadRef};

use crate::{
    Change, Detection, Edit, Facts, Family, FollowupContext, IssueDraft, Lookup, Proposal,
    Readings, Remedy, RemedyInput, RepoNeeds, Rules, Runbook, family_signals,
};

pub use port::PortsMoved;

/// The timeout's room over the endpoint's measured 99th percentile at its worst.
const TIMEOUT_OVER_P99: f64 = 2.0;
/// An endpoint slower than this at its 99th percentile is the app's to fix: no liveness timeout
/// should wait that long (the default histogram's highest finite bucket).
const SLOWEST_SECONDS: f64 = 10.0;

/// The longest timeout a liveness probe may be given: one that waits longer detects nothing.
const LONGEST_TIMEOUT: u32 = 60;

/// What B'Elanna's model decides for a liveness incident (and what the rule proposes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeoutPlan {
    /// The liveness probe's new timeoutSeconds, in whole seconds.
    pub timeout_seconds: u32,
    /// Why, from the measurements (one or two sentences).
    pub rationale: String,
}

/// A plan's timeout, checked against the measurements: above the measured 99th percentile with a
/// fifth of room, above today's, at most a minute.
fn check_timeout(plan: &TimeoutPlan, s: &LivenessSignals) -> Result<u32, Rejection> {
    let peak = s
        .p99_peak_seconds
        .ok_or("the diagnosis has no latency measurement")?;
    let t = plan.timeout_seconds;
    if f64::from(t) < peak * 1.2 {
        return Err(Rejection(format!(
            "timeoutSeconds {t} does not clear the measured 99th percentile {peak:.2} s with a fifth of room"
        )));
    }
    if t <= s.probe.timeout_seconds {
        return Err(Rejection(format!(
            "timeoutSeconds {t} is not above today's {}",
            s.probe.timeout_seconds
        )));
    }
    if t > LONGEST_TIMEOUT {
        return Err(Rejection(format!(
            "timeoutSeconds {t} is over {LONGEST_TIMEOUT}: a probe that waits that long detects nothing"
        )));
    }
    squad_protocols::llm::clean_text(&plan.rationale, 1_500, "rationale")?;
    Ok(t)
}

/// The rule's timeout: twice the worst 99th percentile, rounded up, above today's.
fn rule_timeout(s: &LivenessSignals, peak: f64) -> u32 {
    ((peak * TIMEOUT_OVER_P99).ceil() as u32).max(s.probe.timeout_seconds + 1)
}

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LivenessSignals {
    pub container: String,
    /// The probe as the container declares it.
    pub probe: ProbeSpec,
    /// The 99th-percentile latency of the app's answers on the probe's path at its worst over
    /// 24 h, in seconds, when the app measures it.
    pub p99_peak_seconds: Option<f64>,
    /// Whether the kubelet's last liveness failure was a refused connection: nothing listens on
    /// the probe's port.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// The ports the container declares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// The last rollout's change of those ports, when it changed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports_moved: Option<PortsMoved>,
}

pub struct LivenessProbe;

pub const ROOT_CAUSE: &str = "liveness_probe_restarts";

const FAILED: &str = "Liveness probe failed: ";

/// The container's `livenessProbe` with `timeoutSeconds` set (its line replaced, or added as the
/// probe's last key), every other line as written.
fn timeout_edit(input: &RemedyInput<'_>, container: &str, timeout: u32) -> Option<Edit> {
    let target = squad_gitops::ContainerTarget {
        kind: &input.workload.kind,
        name: &input.workload.name,
        container,
    };
    let lines =
        squad_gitops::editor::container_key_lines(&input.repo.text, &target, "livenessProbe")
            .ok()??;
    let child = lines.get(1)?;
    let indent = &child[..child.len() - child.trim_start().len()];
    let mut out: Vec<String> = lines
        .iter()
        .map(|l| match l.strip_prefix(indent) {
            Some(rest) if rest.starts_with("timeoutSeconds:") => {
                let comment = rest.find(" #").map_or("", |i| &rest[i..]);
                format!("{indent}timeoutSeconds: {timeout}{comment}")
            }
            _ => l.clone(),
        })
        .collect();
    if out == lines {
        out.push(format!("{indent}timeoutSeconds: {timeout}"));
    }
    Some(Edit::SetContainerKey {
        path: input.repo.path.clone(),
        kind: input.workload.kind.clone(),
        workload: input.workload.name.clone(),
        container: container.to_owned(),
        key: "livenessProbe".into(),
        lines: Some(out),
    })
}

fn timeout_change(
    input: &RemedyInput<'_>,
    s: &LivenessSignals,
    peak: f64,
    timeout: u32,
    edit: Edit,
) -> Change {
    let p = &s.probe;
    let why = format!(
        "the app answers {} in up to {peak:.2} s (99th percentile, at its worst over 24 h) while the liveness probe waits {} s",
        p.path, p.timeout_seconds
    );
    Change {
        branch_word: "liveness-timeout".into(),
        title: format!(
            "fix(probes): give {}'s liveness probe a {timeout} s timeout (measured p99 {peak:.2} s)",
            input.workload.name
        ),
        edits: vec![edit],
        notes: format!(
            "### A liveness timeout from the measured latency\nThe kubelet kills {} because {why}. Rule: timeoutSeconds = {TIMEOUT_OVER_P99}× the endpoint's 99th percentile at its worst, rounded up → **{timeout} s** (from {} s); the probe stays, and so do its period ({} s) and threshold ({}): a dead process is still restarted within {} s. The measurement is the app's own `http_request_duration_seconds` histogram on `{}` (its bucket bounds make the 99th percentile an upper estimate). Why the endpoint is slow under load is Data's follow-up.\n",
            s.container,
            p.timeout_seconds,
            p.period_seconds,
            p.failure_threshold,
            p.period_seconds * p.failure_threshold + timeout,
            p.path
        ),
        findings: vec![Finding {
            severity: Severity::High,
            title: "liveness timeout below the endpoint's latency".into(),
            detail: why,
        }],
    }
}

/// The remedy of a probe the app answers too slowly: a timeout from the measured latency, the
/// model's within the rule's checks, else the rule's.
fn timeout_remedy(d: &Diagnosis, input: &RemedyInput<'_>, s: &LivenessSignals) -> Remedy {
    let Some(peak) = s.p99_peak_seconds else {
        return Remedy::Escalate {
            reason: format!(
                "{}; the app exports no latency for {} (`http_request_duration_seconds`), so the timeout cannot be sized from a measurement: a human measures the endpoint under load and sizes timeoutSeconds above its 99th percentile",
                d.summary, s.probe.path
            ),
        };
    };
    if peak >= SLOWEST_SECONDS {
        return Remedy::owned_by(
            "the app's owners",
            d,
            &format!(
                "make {} answer fast under load: its 99th percentile reaches {peak:.1} s, longer than any liveness probe should wait",
                s.probe.path
            ),
        );
    }
    // The model's checked timeout, else the rule's.
    let decided = input.decision.and_then(|dec| {
        let plan: TimeoutPlan = serde_json::from_value(dec.answer.clone()).ok()?;
        let t = check_timeout(&plan, s).ok()?;
        Some((
            t,
            format!("{} (decided with {})", plan.rationale, dec.model),
        ))
    });
    let (timeout, by_model) = match decided {
        Some((t, why)) => (t, Some(why)),
        None => (rule_timeout(s, peak), None),
    };
    match timeout_edit(input, &s.container, timeout) {
        Some(edit) => {
            let mut change = timeout_change(input, s, peak, timeout, edit);
            if let Some(why) = by_model {
                change.notes.push_str(&format!(
                    "\nThe timeout was decided by B'Elanna's model within the rule's checks (above the p99 with a fifth of room, above today's, at most {LONGEST_TIMEOUT} s): {why}\n"
                ));
            }
            Remedy::Change(change)
        }
        None => Remedy::not_yet(
            "a liveness probe of this shape",
            d,
            "a human sizes the probe from the observed latency",
        ),
    }
}

impl Family for LivenessProbe {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("Unhealthy")
    }

    fn detect(&self, facts: &Facts, readings: &Readings) -> Option<Detection> {
        let term = facts.termination()?;
        if term.reason == "OOMKilled" || !matches!(term.exit_code, 137 | 143) {
            return None;
        }
        let killing = facts
            .events
            .iter()
            .find(|e| e.reason == "Killing" && e.message.contains("failed liveness probe"))?;
        let failed = facts
            .events
            .iter()
            .filter(|e| e.reason == "Unhealthy" && e.message.starts_with(FAILED))
            .max_by_key(|e| e.last_seen);
        let spec = facts.info.container(&facts.container);
        let probe = spec.and_then(|c| c.liveness_probe.as_ref());
        let ports = spec.map_or(Vec::new(), |c| c.ports.clone());
        let ports_moved = crate::readings::last_rollout_change(facts, |r| {
            crate::readings::container_in(r, facts).map(|c| c.ports.clone())
        })
        .map(|c| PortsMoved {
            revision: c.revision,
            ago: c.ago,
            before: c.before,
        });
        let mut d = Detection::new(String::new(), 0.85, &[]);
        d.evidence.push(Evidence {
            source: "kubelet events".into(),
            observation: format!(
                "Killing: {} ({} times since {})",
                killing.message,
                killing.count,
                killing.first_seen.to_rfc3339()
            ),
        });
        let message = failed.map_or("", |e| &e.message[FAILED.len()..]);
        if let Some(e) = failed {
            d.evidence.push(Evidence {
                source: "kubelet events".into(),
                observation: format!("Unhealthy: {} ({} times)", e.message, e.count),
            });
        }
        let refused = message.contains("connection refused");
        let slow =
            !refused && (message.contains("deadline exceeded") || message.contains("timeout"));
        if let Some(m) = &ports_moved {
            d.evidence.push(Evidence {
                source: "rollout history".into(),
                observation: format!(
                    "revision {} ({}) changed the declared ports of {} from {} to {}",
                    m.revision,
                    m.ago,
                    facts.container,
                    port::describe(&m.before),
                    port::describe(&ports)
                ),
            });
        }
        let timeout = probe.map_or(String::new(), |p: &ProbeSpec| {
            format!("{} s timeout", p.timeout_seconds)
        });
        let mut cause = if slow {
            format!(
                "the app answers {} slower than its {timeout}",
                probe.map_or("its health endpoint".to_owned(), |p| p.path.clone())
            )
        } else if refused {
            d.confidence = 0.9;
            format!(
                "nothing listens on port {}, which its liveness probe asks (the container declares {}{})",
                probe.map_or("?", |p| p.port.as_str()),
                port::describe(&ports),
                ports_moved.as_ref().map_or(String::new(), |m| format!(
                    "; the last rollout ({}) changed them from {}",
                    m.ago,
                    port::describe(&m.before)
                ))
            )
        } else if message.is_empty() {
            "its liveness probe keeps failing".to_owned()
        } else {
            message.to_owned()
        };
        if let Some(t) = readings
            .signals
            .traffic
            .as_ref()
            .filter(|t| t.change_pct >= 25.0 && !refused)
        {
            d.confidence = 0.9;
            cause.push_str(&format!(
                " under {:+.0}% traffic on {} (the last {} h against the baseline before)",
                t.change_pct, t.route, t.window_hours
            ));
        }
        if refused {
            d.recommendations.push(format!(
                "point the liveness probe's port at the port the app listens on (the container declares {}; by name when it has one); a longer timeout does nothing for a refused connection; keep the probe",
                port::describe(&ports)
            ));
        } else {
            d.recommendations.push(format!(
                "size the liveness probe from the endpoint's observed latency under peak load (timeoutSeconds, failureThreshold{}); keep the probe, and give the app capacity for the load",
                probe.map_or(String::new(), |p| format!(
                    "; now {} s × {} every {} s",
                    p.timeout_seconds, p.failure_threshold, p.period_seconds
                ))
            ));
        }
        d.summary = format!(
            "{} is restarted by its liveness probe ({} kills, exit {} without an OOM kill): {cause}",
            facts.container, killing.count, term.exit_code
        );
        if let Some(probe) = probe {
            let peak = facts
                .latency
                .iter()
                .find(|(path, _)| *path == probe.path)
                .and_then(|(_, s)| s.iter().map(|x| x.value).reduce(f64::max));
            if let Some(p) = peak {
                d.evidence.push(Evidence {
                    source: "metrics".into(),
                    observation: format!(
                        "the app answers {} in {:.2} s at its 99th percentile at worst over 24 h (http_request_duration_seconds); the probe waits {} s",
                        probe.path, p, probe.timeout_seconds
                    ),
                });
            }
            d.signals = serde_json::to_value(LivenessSignals {
                container: facts.container.clone(),
                probe: probe.clone(),
                p99_peak_seconds: peak,
                refused,
                ports,
                ports_moved,
            })
            .ok();
        }
        Some(d)
    }

    fn lookups(&self, facts: &Facts) -> Vec<Lookup> {
        facts
            .info
            .container(&facts.container)
            .and_then(|c| c.liveness_probe.as_ref())
            .filter(|p| p.kind == "httpGet")
            .map(|p| vec![Lookup::Latency(p.path.clone())])
            .unwrap_or_default()
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the liveness probe's timeout and threshold against the endpoint's latency, and the replicas the load needs",
            ),
            (Member::Worf, "whether the restarts are a denial of service"),
            (
                Member::Data,
                "what the health endpoint does that slows down under load",
            ),
        ]
    }

    fn proposal(&self, d: &Diagnosis, _rules: &Rules<'_>) -> Option<Proposal> {
        let s = family_signals::<LivenessSignals>(d).filter(|s| !port::unreachable(s))?;
        let peak = s.p99_peak_seconds.filter(|p| *p < SLOWEST_SECONDS)?;
        let plan = TimeoutPlan {
            timeout_seconds: rule_timeout(&s, peak),
            rationale: format!(
                "twice the measured 99th percentile ({peak:.2} s) of {}, rounded up",
                s.probe.path
            ),
        };
        Some(Proposal {
            task: "Decide the liveness probe's new timeoutSeconds. It must clear the endpoint's measured latency under load; never delete the probe.".into(),
            context: format!(
                "Container `{}`: liveness probe {} on {} every {} s, timeout {} s, failureThreshold {}; the endpoint's 99th-percentile latency at its worst over 24 h: {peak:.2} s. The team's rule: timeout = {TIMEOUT_OVER_P99}x that, rounded up.",
                s.container,
                s.probe.kind,
                s.probe.path,
                s.probe.period_seconds,
                s.probe.timeout_seconds,
                s.probe.failure_threshold
            ),
            schema: serde_json::to_value(schemars::schema_for!(TimeoutPlan)).unwrap_or(Value::Null),
            proposal: serde_json::to_string_pretty(&plan).unwrap_or_default(),
            parse: crate::family::parse_as::<TimeoutPlan>,
        })
    }

    fn check_proposal(&self, d: &Diagnosis, answer: &Value) -> Result<(), Rejection> {
        let s = family_signals::<LivenessSignals>(d)
            .ok_or("the diagnosis has no liveness measurements")?;
        let plan: TimeoutPlan =
            serde_json::from_value(answer.clone()).map_err(|e| Rejection(e.to_string()))?;
        check_timeout(&plan, &s).map(|_| ())
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds {
            manifest: true,
            history: true,
        }
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        let Some(s) = family_signals::<LivenessSignals>(d) else {
            return Remedy::not_yet(
                "liveness probes without their spec",
                d,
                "a human sizes the probe from the observed latency",
            );
        };
        // The signals carry the container as the readiness family's do, which is all the undo
        // reads of them.
        super::readiness_probe::undo_probe(d, input, ("livenessProbe", "liveness probe"), || {
            if port::unreachable(&s) {
                port::remedy(d, input, &s)
            } else {
                timeout_remedy(d, input, &s)
            }
        })
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "liveness-probe-restarts".into(),
            meaning: "The kubelet restarts the container because its liveness probe failed `failureThreshold` times in a row; most often the health endpoint answers slower than the probe's timeout under load. The container ends with exit 137 and no OOM kill; each restart sheds its share of the load onto the others, which then slow down too.".into(),
            checks: "1. `kubectl describe pod <pod> -n <ns>` — Events: `Killing … failed liveness probe, will be restarted` and `Unhealthy … Liveness probe failed: … context deadline exceeded`; Last State exit 137, reason not OOMKilled.\n2. The probe: `kubectl get pod <pod> -n <ns> -o jsonpath='{.spec.containers[*].livenessProbe}'`.\n3. The endpoint's latency under the current load (`histogram_quantile(0.99, …)` or `curl -w '%{time_total}'`) and the request rate against its baseline.".into(),
            fixes: "- **Connection refused**: nothing listens on the probe's port (the app moved, the probe did not): the probe's port set to the port the container declares, by name when it has one; a longer timeout does nothing for a refused connection.\n- **Timeout below the endpoint's latency**: timeoutSeconds above the observed p99 with headroom, a failureThreshold that rides out a spike, through a PR.\n- **Slow starts**: a startupProbe, so liveness only begins once the app is up.\n- **Liveness that checks dependencies**: make it check only the process; dependencies belong in readiness.\n- Never delete the probe; add capacity when the load is real.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Size {workload}'s liveness probe from the health endpoint's latency at peak load, not from a default."
            ),
            "Keep liveness endpoints free of dependencies and heavy work.".into(),
        ]
    }

    fn followup(&self, d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        if family_signals::<LivenessSignals>(d).is_some_and(|s| port::unreachable(&s)) {
            return IssueDraft {
                title: format!(
                    "Keep {}'s probes on the port the app listens on",
                    cx.workload.name
                ),
                body: format!(
                    "During incident {} (#{}) the kubelet kept restarting the container: its liveness probe asked a port nothing listens on, after a deploy moved the app's port and left the probe behind.\n\n\
                     1. Name the container's ports and refer to them by name in every probe and Service, so a port change moves them all.\n\
                     2. In CI, start the image with the manifest's settings and request each probe's port and path; fail on a refused connection.\n\
                     3. Reproduce: `kubectl describe pod -n {} {}` (Events, Last State).",
                    cx.incident, cx.issue, cx.workload.namespace, cx.pod
                ),
                label: "reliability".into(),
            };
        }
        IssueDraft {
            title: format!(
                "Make {}'s liveness endpoint answer fast under load",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) the kubelet kept restarting the container: its liveness endpoint answered slower than the probe's timeout under load.\n\n\
                 1. Measure the endpoint's latency under peak load (a load test against one pod; the p99).\n\
                 2. Make the endpoint check only the process (no database, no downstream calls), on a path that does not queue behind requests.\n\
                 3. Reproduce: `kubectl describe pod -n {} {}` (Events, Last State).",
                cx.incident, cx.issue, cx.workload.namespace, cx.pod
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::cluster::ClusterEvent;

    use super::*;
    use crate::testing;

    fn killed() -> Facts {
        let mut f = testing::facts(
            "Error",
            137,
            |_| 80.0,
            |i| if i > 200 { 40.0 } else { 10.0 },
        );
        f.info.containers[0].liveness_probe = Some(ProbeSpec {
            kind: "httpGet".into(),
            port: "8080".into(),
            path: "/healthz".into(),
            initial_delay_seconds: 0,
            period_seconds: 10,
            timeout_seconds: 1,
            failure_threshold: 3,
        });
        let event = |reason: &str, message: &str, count: u32| ClusterEvent {
            kind: "Warning".into(),
            reason: reason.into(),
            message: message.into(),
            count,
            first_seen: testing::now() - chrono::Duration::minutes(50),
            last_seen: testing::now(),
            object: "Pod/cart-5d8f7-abcde".into(),
        };
        f.events = vec![
            event(
                "Unhealthy",
                "Liveness probe failed: Get \"http://10.244.1.7:8080/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                27,
            ),
            event(
                "Killing",
                "Container api failed liveness probe, will be restarted",
                9,
            ),
        ];
        f
    }

    const MANIFEST: &str = "kind: Deployment\nmetadata:\n  name: cart\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: 8080\n            timeoutSeconds: 1 # the default\n";

    /// The remedy over the killed pod whose endpoint answered in `p99` s at worst, with the
    /// model's `answer` when given.
    fn remedy(p99: Option<f64>, answer: Option<serde_json::Value>) -> Remedy {
        let mut f = killed();
        if let Some(p) = p99 {
            f.latency = vec![(
                "/healthz".into(),
                vec![squad_protocols::cluster::Sample {
                    at: testing::now(),
                    value: p,
                }],
            )];
        }
        let d = testing::diagnosis(&f);
        let (settings, workload) = (testing::settings(), testing::workload());
        let mut repo = testing::manifest();
        repo.text = MANIFEST.into();
        let cluster = crate::ClusterView::default();
        let mut input = testing::input(&settings, &workload, &repo, &cluster);
        if let Some(a) = &answer {
            assert!(LivenessProbe.check_proposal(&d, a).is_ok() || a["timeout_seconds"] == 2);
            input.decision = Some(crate::Decision {
                answer: a,
                model: "local/m",
            });
            return LivenessProbe.remedy(&d, &input);
        }
        LivenessProbe.remedy(&d, &input)
    }

    fn timeout_of(r: &Remedy) -> Vec<String> {
        match r {
            Remedy::Change(c) => match &c.edits[..] {
                [Edit::SetContainerKey { lines: Some(l), .. }] => l.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn the_timeout_is_twice_the_measured_p99_and_nothing_else_changes() {
        let lines = timeout_of(&remedy(Some(2.49), None));
        assert_eq!(lines.last().unwrap(), "  timeoutSeconds: 5 # the default");
        assert_eq!(lines[1], "  httpGet:");
        // Without a measurement, or slower than any probe should wait: escalated.
        assert!(
            matches!(remedy(None, None), Remedy::Escalate { reason } if reason.contains("exports no latency"))
        );
        assert!(
            matches!(remedy(Some(12.0), None), Remedy::Escalate { reason } if reason.contains("the app's owners"))
        );
    }

    #[test]
    fn the_models_timeout_is_used_within_the_checks() {
        let ok = serde_json::json!({"timeout_seconds": 4, "rationale": "p99 2.5 s plus room"});
        let lines = timeout_of(&remedy(Some(2.49), Some(ok)));
        assert_eq!(lines.last().unwrap(), "  timeoutSeconds: 4 # the default");
        // Under the p99 with room: refused, and the rule's timeout stands.
        let low = serde_json::json!({"timeout_seconds": 2, "rationale": "tight"});
        let d = {
            let mut f = killed();
            f.latency = vec![(
                "/healthz".into(),
                vec![squad_protocols::cluster::Sample {
                    at: testing::now(),
                    value: 2.49,
                }],
            )];
            testing::diagnosis(&f)
        };
        let why = LivenessProbe.check_proposal(&d, &low).unwrap_err();
        assert!(why.0.contains("does not clear"), "{}", why.0);
        let far = serde_json::json!({"timeout_seconds": 90, "rationale": "safe"});
        assert!(LivenessProbe.check_proposal(&d, &far).is_err());
        let lines = timeout_of(&remedy(Some(2.49), Some(low)));
        assert_eq!(lines.last().unwrap(), "  timeoutSeconds: 5 # the default");
        assert!(
            LivenessProbe
                .proposal(&d, &crate::Rules::of(&testing::settings()))
                .is_some()
        );
    }

    #[test]
    fn a_slow_health_endpoint_under_load_is_a_liveness_problem() {
        let d = testing::diagnosis(&killed());
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert!(
            d.summary.starts_with(
                "api is restarted by its liveness probe (9 kills, exit 137 without an OOM kill): the app answers /healthz slower than its 1 s timeout"
            ),
            "{}",
            d.summary
        );
    }

    #[test]
    fn an_oom_kill_or_a_crash_is_not_a_liveness_problem() {
        let f = testing::oom_under_load();
        assert!(LivenessProbe.detect(&f, &Readings::of(&f)).is_none());
        let f = testing::crashing(&["KeyError: 'X'"]);
        assert!(LivenessProbe.detect(&f, &Readings::of(&f)).is_none());
    }
}
