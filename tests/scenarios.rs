//! Every shipped scenario, run through the whole loop as `squad simulate <name> --approve` does,
//! ends the way its `[expect]` says: the root cause the crew names, whether B'Elanna opens a PR,
//! and whether the incident resolves or escalates. A new failure family's scenario is tested here
//! without touching this file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use squad::simulation::{self, SimulationOptions};
use squad_config::Settings;
use squad_runtime::Faults;
use squad_sim::Scenario;

#[test]
fn every_shipped_scenario_ends_as_it_expects() {
    let names = Scenario::embedded_names();
    assert!(names.len() >= 2, "{names:?}");
    for name in names {
        let scenario = Scenario::embedded(&name).unwrap();
        let expect = scenario
            .expect
            .clone()
            .unwrap_or_else(|| panic!("scenario {name} has no [expect]"));
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let outcome = rt
            .block_on(simulation::run(SimulationOptions {
                scenario,
                out: dir.path().join("out"),
                approve: true,
                dry_run: false,
                fresh: false,
                settings: Settings::default(),
                faults: Faults::none(),
                abort_after_events: None,
                serve: Default::default(),
                minds: Default::default(),
                github: None,
            }))
            .unwrap_or_else(|e| panic!("scenario {name}: {e:#}"));
        let s = outcome.summary;
        let d = s.diagnosis.as_ref().unwrap();
        assert_eq!(
            d.root_cause, expect.root_cause,
            "scenario {name}: {}",
            d.summary
        );
        assert_eq!(
            !s.pull_requests.is_empty(),
            expect.pr,
            "scenario {name}: pull requests {:?}",
            s.pull_requests
        );
        assert_eq!(s.state, expect.state, "scenario {name}: {:#?}", s.timeline);
    }
}
