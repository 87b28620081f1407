//! Every shipped scenario, run through the whole loop as `squad simulate <name> --approve` does,
//! ends the way its `[expect]` says: the root cause the crew names, whether B'Elanna opens a PR,
//! and whether the incident resolves or escalates. A new failure family's scenario is tested here
//! without touching this file.
//!
//! So does each one changed the way a scenario squad has never seen differs from it: a rule
//! that holds only for the shipped names, units, layouts or alert names is a constant, and these
//! variants catch it.
//!
//! - **renamed**: the namespace and the workload renamed everywhere (manifests, history, alert
//!   labels, pod names, images, the app's files);
//! - **units**: every CPU, memory and storage quantity written in other, equal units (`512Mi` as
//!   bytes, `1Gi` as `1024Mi`, `300m` as `0.3`, `2` cores as `2000m`);
//! - **memory doubled**: every memory quantity (requests, limits, quotas, nodes) and the app's
//!   memory model twice as large;
//! - **alert renamed**: the alert's name replaced by one no rule ships (its labels kept), as a
//!   team's own rule would page;
//! - **workload alert**: no pod, no container label, the workload named as kube-state-metrics
//!   labels it;
//! - **sidecar first**: a small sidecar declared before the app's container;
//! - **one file**: each tree of the repository as one multi-document YAML file;
//! - **inline patches**: Kustomize patches written inline in their kustomization.
//!
//! The variants live in `squad_testkit::variants`, shared with other property tests. None of
//! these runs may show a redaction placeholder in what squad writes: the shipped scenarios hold
//! no secret, so one would be the redaction gateway mistaking squad's own words for one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use squad::simulation::{self, SimulationOptions};
use squad_config::Settings;
use squad_runtime::Faults;
use squad_sim::Scenario;
use squad_testkit::variants::{self, Files, double_memory, files_of, rename, reunit_all};

/// Runs the variant through the whole loop (`squad simulate <dir> --approve`) and checks it
/// ends as the shipped scenario expects.
fn variant_ends_as_expected(name: &str, variant: &str, files: Files) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let written = variants::write(&files, &dir.path().join("scenario")).unwrap();
    match Scenario::from_dir(&written) {
        Ok(s) => ends_as_expected(name, variant, s),
        Err(e) => Some(format!("{name} ({variant}): does not load: {e}")),
    }
}

/// Runs the scenario through the whole loop and says how it ended otherwise than expected, if it
/// did.
fn ends_as_expected(name: &str, variant: &str, scenario: Scenario) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let expect = scenario.expect.clone().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let outcome = rt.block_on(simulation::run(SimulationOptions {
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
    }));
    let s = match outcome {
        Ok(o) => o.summary,
        Err(e) => return Some(format!("{name} ({variant}): {e:#}")),
    };
    let d = s.diagnosis.as_ref().unwrap();
    let got = (
        d.root_cause.as_str(),
        !s.pull_requests.is_empty(),
        s.state.as_str(),
    );
    let want = (expect.root_cause.as_str(), expect.pr, expect.state.as_str());
    if got != want {
        return Some(format!(
            "{name} ({variant}): ended {got:?}, expected {want:?}: {}",
            d.summary
        ));
    }
    // The shipped scenarios hold no secret in what squad writes about them: a placeholder there
    // is the redaction gateway (which every diagnosis, issue, comment and PR passes) taking
    // squad's own words for one.
    let written = serde_json::to_string(&s).unwrap();
    if let Some(at) = written.find("[REDACTED:") {
        let boundary = |mut i: usize, step: isize| {
            i = i.min(written.len());
            while !written.is_char_boundary(i) {
                i = i.saturating_add_signed(step);
            }
            i
        };
        let from = boundary(at.saturating_sub(160), -1);
        return Some(format!(
            "{name} ({variant}): the redaction gateway took squad's own words for a secret: …{}",
            &written[from..boundary(at + 40, 1)]
        ));
    }
    // An escalation a PR is the wrong tool for, or whose fix the replay showed cannot hold,
    // names who owns the fix.
    let owner = expect.owner.as_deref()?;
    let named = s.timeline.iter().any(|e| {
        (e.event.contains("the wrong tool here") || e.event.contains("does not hold"))
            && e.event.contains(&format!("the owner is {owner}"))
    });
    (!named).then(|| format!("{name} ({variant}): no escalation names the owner {owner:?}"))
}

/// The shipped scenarios to check: all of them, or those `SQUAD_SCENARIOS` lists (comma-separated;
/// a developer's shortcut).
fn scenario_names() -> Vec<String> {
    let only: Option<Vec<String>> = std::env::var("SQUAD_SCENARIOS")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    Scenario::embedded_names()
        .into_iter()
        .filter(|n| only.as_ref().is_none_or(|o| o.contains(n)))
        .collect()
}

/// Checks each shipped scenario changed by `change` (`None`: the change does not apply to it).
fn every_scenario(variant: &str, change: variants::Change) {
    let mut failures = Vec::new();
    for name in scenario_names() {
        let shipped = Scenario::embedded(&name).unwrap();
        let original = files_of(&name).unwrap();
        let Some(files) = change(&shipped, original.clone()).unwrap() else {
            continue;
        };
        assert!(
            files != original,
            "{name} ({variant}): the change changed nothing"
        );
        failures.extend(variant_ends_as_expected(&name, variant, files));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shipped_scenario_ends_as_it_expects() {
    let names = scenario_names();
    assert!(!names.is_empty(), "no scenario selected");
    let failures: Vec<String> = names
        .iter()
        .filter_map(|name| ends_as_expected(name, "shipped", Scenario::embedded(name).unwrap()))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn renamed_namespaces_and_workloads_end_as_the_shipped_ones() {
    every_scenario("renamed", variants::renamed);
}

#[test]
fn quantities_in_other_units_end_as_the_shipped_ones() {
    every_scenario("units", variants::units);
}

#[test]
fn an_alert_no_rule_ships_ends_as_the_shipped_ones() {
    every_scenario("alert renamed", variants::alert_renamed);
}

#[test]
fn the_variants_change_what_they_say() {
    assert_eq!(
        rename("orders-api in orders, reorders", "orders", "t7-orders"),
        "t7-orders-api in t7-orders, reorders"
    );
    assert_eq!(rename("a/orders/orders", "orders", "x"), "a/x/x");
    assert_eq!(
        double_memory("memory: 512Mi\n\"limits.memory\" = \"1.5Gi\"\nmemory = \"8G\"\ncpu: 1")
            .unwrap(),
        "memory: 1024Mi\n\"limits.memory\" = \"3Gi\"\nmemory = \"16G\"\ncpu: 1"
    );
    assert_eq!(
        reunit_all(
            "memory: 512Mi\ncpu: 300m # note\ncpu: \"2\"\nstorage: 1Gi\nmemory = \"4608Mi\"\ncpu: 250m"
        )
        .unwrap(),
        "memory: \"536870912\"\ncpu: \"0.3\" # note\ncpu: \"2000m\"\nstorage: \"1024Mi\"\nmemory = \"4831838208\"\ncpu: \"0.25\""
    );
}

#[test]
fn a_sidecar_before_the_apps_container_ends_as_the_shipped_ones() {
    every_scenario("sidecar first", variants::sidecar_first);
}

#[test]
fn a_repository_of_one_multi_document_file_ends_as_the_shipped_ones() {
    every_scenario("one file", variants::one_file);
}

#[test]
fn kustomize_patches_written_inline_end_as_the_shipped_ones() {
    every_scenario("inline patches", variants::inline_patches);
}

#[test]
fn twice_the_memory_everywhere_ends_as_the_shipped_ones() {
    // Requests, limits, quotas, nodes and the app's memory model all doubled: the same story
    // in other numbers.
    every_scenario("memory doubled", variants::memory_doubled);
}

#[test]
fn an_alert_on_the_workload_not_a_pod_ends_as_the_shipped_ones() {
    // A team's own rule over the workload's series: no pod, no container, the workload named
    // as kube-state-metrics labels it.
    every_scenario("workload alert", variants::workload_alert);
}
