//! Unit tests of Picard: his plan for each state, and what he records.

#![allow(clippy::unwrap_used)]
use squad_protocols::{Diagnosis, DiagnosisSource, IssueRef, PrRef, Report, Verification};

use super::*;

fn incident(state: IncidentState, root: &'static str) -> Incident {
    let opened = squad_protocols::IncidentEvent {
        incident: IncidentId("inc-1".into()),
        seq: 1,
        at: "2026-11-23T19:21:00Z".parse().unwrap(),
        author: Author::Picard,
        kind: EventKind::Opened {
            alert: Alert::firing("KubernetesPodOOMKilled"),
            workload: WorkloadRef::deployment("production", "payment-service"),
        },
    };
    let mut i = Incident::replay([&opened]).unwrap();
    i.state = state;
    i.diagnosis = Some(Diagnosis::new(
        DiagnosisSource::Native,
        RootCause::from_static(root),
        "s",
    ));
    i.issue = Some(IssueRef {
        number: 1,
        url: String::new(),
    });
    i
}

fn report(i: &mut Incident, m: Member) {
    i.reports.insert(m, Report::new(m, "done"));
}

fn pr() -> Option<PrRef> {
    Some(PrRef {
        number: 4,
        url: String::new(),
        branch: "squad/inc-1-memory".into(),
    })
}

#[test]
fn an_open_incident_is_diagnosed_then_its_issue_filed() {
    let mut i = incident(IncidentState::Open, "memory_leak");
    i.diagnosis = None;
    assert_eq!(plan(&i), [Step::Diagnose]);
    i.state = IncidentState::Diagnosing;
    assert_eq!(plan(&i), [Step::Diagnose]);
    i.diagnosis = Some(Diagnosis::new(
        DiagnosisSource::Native,
        RootCause::from_static("memory_leak"),
        "s",
    ));
    assert_eq!(plan(&i), [Step::FileIssue]);
}

#[test]
fn remediation_assigns_the_familys_routing_then_scribe_then_waits_for_the_pr() {
    let mut i = incident(IncidentState::Remediating, "missing_configuration");
    assert_eq!(
        plan(&i),
        [
            Step::Assign(Member::Belanna),
            Step::Assign(Member::Worf),
            Step::Assign(Member::Data)
        ]
    );
    report(&mut i, Member::Belanna);
    report(&mut i, Member::Data);
    assert_eq!(plan(&i), [Step::Assign(Member::Worf)]);
    report(&mut i, Member::Worf);
    assert_eq!(plan(&i), [Step::Assign(Member::Scribe)]);
    report(&mut i, Member::Scribe);
    // Every report in and no PR: nobody could produce a fix.
    assert_eq!(plan(&i), [Step::Escalate]);
    i.pr = pr();
    assert_eq!(plan(&i), [Step::AwaitApproval]);
}

#[test]
fn ralph_follows_an_open_pr_again_only_after_an_approval_and_the_verdict_concludes() {
    let mut i = incident(IncidentState::AwaitingApproval, "memory_under_provisioned");
    i.pr = pr();
    assert_eq!(plan(&i), [Step::Assign(Member::Ralph)]);
    report(&mut i, Member::Ralph);
    assert!(plan(&i).is_empty(), "Ralph reported; nothing new to follow");
    i.approved_since_ralph = true;
    assert_eq!(plan(&i), [Step::Assign(Member::Ralph)]);
    i.state = IncidentState::Verifying;
    i.verification = Some(Verification {
        healthy: true,
        window_minutes: 60,
        oom_kills: 0,
        restarts: 0,
        peak: None,
        limit: None,
        detail: String::new(),
        prediction: None,
        prediction_right: None,
    });
    assert_eq!(plan(&i), [Step::Conclude]);
    i.state = IncidentState::Resolved;
    assert!(plan(&i).is_empty());
}

#[test]
fn the_alerts_severity_sets_the_floor_a_model_may_only_raise() {
    assert_eq!(floor_priority(Some("critical")), Priority::P1);
    assert_eq!(floor_priority(Some("Warning")), Priority::P3);
    assert_eq!(floor_priority(None), Priority::P4);
    let w = WorkloadRef::deployment("production", "payment-service");
    let triage = |priority, assessment: &str| Triage {
        priority,
        assessment: assessment.into(),
    };
    let named = "payment-service is OOMKilled under a checkout surge";
    assert!(check_triage(&triage(Priority::P1, named), Priority::P2, &w).is_ok());
    assert!(
        check_triage(&triage(Priority::P3, named), Priority::P2, &w)
            .unwrap_err()
            .0
            .contains("lower than the alert's severity implies")
    );
    assert!(
        check_triage(
            &triage(Priority::P2, "a service is down somewhere"),
            Priority::P2,
            &w
        )
        .unwrap_err()
        .0
        .contains("does not name the workload")
    );
}

#[test]
fn pod_names_map_to_their_deployment() {
    assert_eq!(
        pod_to_workload("payment-service-7d4b9c-xk2p"),
        "payment-service"
    );
    assert_eq!(pod_to_workload("solo"), "solo");
}
