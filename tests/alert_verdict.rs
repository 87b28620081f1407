//! Ralph's verdict and the incident's alert, through the whole crew on the simulated oomkilled
//! incident: once the fix held, Ralph asks the alerting system whether the original alert still
//! fires, scoped to the workload's pods after the rollout. Resolved within the grace: the incident
//! resolves and says so; still firing past it: the verdict fails and the incident escalates.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use squad::{Squad, settled};
use squad_config::Settings;
use squad_protocols::{Incident, IncidentState};
use squad_runtime::Clock;
use squad_runtime::ports::{ActiveAlert, AlertQuery, Alerts, PortResult};
use squad_sim::{Scenario, ServeKube, SimBackends};

/// An alerting system whose alert fires, for the first pod of each question, `firing` more
/// times, then no more; it keeps the questions.
struct Fading {
    firing: Mutex<u32>,
    asked: Mutex<VecDeque<AlertQuery>>,
}

#[async_trait]
impl Alerts for Fading {
    async fn firing(&self, query: &AlertQuery) -> PortResult<Vec<ActiveAlert>> {
        self.asked.lock().unwrap().push_back(query.clone());
        let mut left = self.firing.lock().unwrap();
        if *left == 0 {
            return Ok(Vec::new());
        }
        *left -= 1;
        let mut labels = query.labels.clone();
        labels.insert("alertname".into(), query.name.clone());
        labels.insert("namespace".into(), query.namespace.clone());
        labels.insert("pod".into(), query.pods[0].clone());
        Ok(vec![ActiveAlert {
            labels,
            starts_at: Some("2026-11-23T19:30:00Z".parse().unwrap()),
        }])
    }
}

/// Runs oomkilled to its PR, merges it as a human, and lets Ralph verify with `alerts`.
fn run(alerts: Arc<Fading>) -> Incident {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let scenario = Arc::new(Scenario::embedded("oomkilled").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::starting_at(scenario.now);
        let sim = SimBackends::seed(
            scenario.clone(),
            dir.path(),
            clock.clone(),
            &ServeKube::default(),
        )
        .await
        .unwrap();
        let squad = Squad::builder()
            .clock(clock)
            .cluster(sim.cluster.clone())
            .forge(sim.forge.clone())
            .app_repo(sim.app.clone())
            .replayer(sim.replayer.clone())
            .alerts(alerts)
            .settings(Settings::default())
            .start()
            .await
            .unwrap();
        let limit = Duration::from_secs(7 * 24 * 3600);
        let id = squad.ingest(scenario.alert()).await.unwrap();
        let incident = squad.wait_until(&id, settled, limit).await.unwrap();
        assert_eq!(incident.state, IncidentState::AwaitingApproval);
        let pr = incident.pr.unwrap();
        sim.forge.merge_pr(pr.number, "simulated-human").unwrap();
        squad.approved(&id, "simulated-human").unwrap();
        let incident = squad
            .wait_until(&id, |i| settled(i) && !i.approved_since_ralph, limit)
            .await
            .unwrap();
        squad.shutdown().await;
        incident
    })
}

#[test]
fn the_alert_resolving_within_the_grace_resolves_the_incident_and_the_verdict_says_so() {
    let alerts = Arc::new(Fading {
        firing: Mutex::new(1),
        asked: Mutex::default(),
    });
    let incident = run(alerts.clone());
    let v = incident.verification.clone().unwrap();
    assert_eq!(incident.state, IncidentState::Resolved, "{}", v.detail);
    assert!(v.healthy);
    assert!(
        v.detail
            .ends_with("; KubernetesPodOOMKilled resolved 5 min after the window"),
        "{}",
        v.detail
    );
    // Asked about the original alert, scoped to the pods the rollout left: not the pod the
    // alert named, which the fix replaced.
    let asked = alerts.asked.lock().unwrap();
    assert_eq!(asked.len(), 2);
    let q = &asked[0];
    assert_eq!(q.name, incident.alert.name);
    assert_eq!(Some(q.namespace.as_str()), incident.alert.namespace());
    assert_eq!(q.workload, incident.workload);
    let original_pod = incident.alert.label("pod").unwrap();
    assert!(
        !q.pods.is_empty() && !q.pods.iter().any(|p| p == original_pod),
        "{:?} (original {original_pod})",
        q.pods
    );
}

#[test]
fn the_alert_firing_past_the_grace_fails_the_verdict_and_escalates() {
    let alerts = Arc::new(Fading {
        firing: Mutex::new(u32::MAX),
        asked: Mutex::default(),
    });
    let incident = run(alerts.clone());
    let v = incident.verification.clone().unwrap();
    assert_eq!(incident.state, IncidentState::Escalated, "{}", v.detail);
    assert!(!v.healthy);
    assert!(
        v.detail
            .starts_with("the workload held over the 60 min window (")
            && v.detail
                .contains("), but KubernetesPodOOMKilled still fires for pod ")
            && v.detail
                .ends_with(" since 2026-11-23T19:30:00Z, 15 min after the window"),
        "{}",
        v.detail
    );
    // Every 5 min from the end of the window to the end of the 15 min grace.
    assert_eq!(alerts.asked.lock().unwrap().len(), 4);
}
