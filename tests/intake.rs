//! The intake in process, on a virtual clock: a re-fire after resolution is a regression.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use squad::intake::Intake;
use squad::simulation::{ServeKube, SimBackends};
use squad::{Squad, settled};
use squad_config::{IntakeSettings, Settings};
use squad_protocols::{AlertStatus, IncidentState};
use squad_runtime::{Clock, IncidentStore, MemoryStore};
use squad_sim::Scenario;

#[test]
fn a_refire_after_resolution_reopens_the_incident_as_a_regression() {
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
        let store: Arc<dyn IncidentStore> = Arc::new(MemoryStore::new());
        let mut settings = Settings::default();
        settings.verification.merge_wait_hours = 0;
        let squad = Arc::new(
            Squad::builder()
                .store(store.clone())
                .clock(clock.clone())
                .settings(settings)
                .cluster(sim.cluster.clone())
                .forge(sim.forge.clone())
                .app_repo(sim.app.clone())
                .start()
                .await
                .unwrap(),
        );
        let intake = Intake::start(
            store.clone(),
            squad.clone(),
            clock.clone(),
            IntakeSettings::default(),
        )
        .unwrap();
        let day = Duration::from_secs(86_400);
        intake.submit(vec![scenario.alert()]).await.unwrap();
        let id = loop {
            if let Some(id) = store.incident_ids().unwrap().first().cloned() {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let inc = squad.wait_until(&id, settled, day).await.unwrap();
        sim.forge
            .merge_pr(inc.pr.unwrap().number, "reviewer")
            .unwrap();
        squad.approved(&id, "reviewer").unwrap();
        let inc = squad
            .wait_until(&id, |i| i.state == IncidentState::Resolved, day)
            .await
            .unwrap();
        assert_eq!(inc.state, IncidentState::Resolved);

        // The sender's resolved notification, then the alert fires again.
        let mut resolved = scenario.alert();
        resolved.status = AlertStatus::Resolved;
        intake.submit(vec![resolved]).await.unwrap();
        intake.submit(vec![scenario.alert()]).await.unwrap();
        let inc = squad
            .wait_until(&id, |i| i.state == IncidentState::Reopened, day)
            .await
            .unwrap();
        assert_eq!(store.incident_ids().unwrap().len(), 1, "no second incident");
        let events = store.events(&id).unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.kind.describe().contains("regression")),
            "{:?}",
            events.iter().map(|e| e.kind.describe()).collect::<Vec<_>>()
        );
        assert!(inc.alert_resolved || inc.state == IncidentState::Reopened);
        assert_eq!(
            intake
                .stats
                .regressions
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        intake.stop(Duration::from_secs(5)).await;
    });
}
