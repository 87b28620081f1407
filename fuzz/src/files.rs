//! Files squad loads: a scenario's `scenario.toml` (with its directory's other files) and
//! `squad.toml`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use squad_config::Settings;
use squad_sim::Scenario;

/// Every shipped scenario's files besides its `scenario.toml`, by scenario name.
fn shipped_files() -> &'static BTreeMap<String, BTreeMap<String, String>> {
    static FILES: OnceLock<BTreeMap<String, BTreeMap<String, String>>> = OnceLock::new();
    FILES.get_or_init(|| {
        Scenario::embedded_names()
            .into_iter()
            .filter_map(|name| {
                let files = Scenario::embedded(&name).ok()?.files;
                Some((name, files))
            })
            .collect()
    })
}

/// `squad_sim::Scenario::from_toml_str`: the first line names a shipped scenario whose other
/// files (manifests, history, app source) come with the text (none when it names none), the
/// rest is `scenario.toml`. An accepted scenario serializes to TOML, and that TOML loads to a
/// scenario that serializes to the same text.
pub fn scenario(data: &[u8]) {
    let (head, body) = super::split_first_line(data);
    let (Some(name), Some(text)) = (super::text(head), super::text(body)) else {
        return;
    };
    let files = shipped_files()
        .get(name.trim())
        .cloned()
        .unwrap_or_default();
    let Ok(scenario) = Scenario::from_toml_str("fuzz", text, files.clone()) else {
        return;
    };
    let _ = (
        scenario.alert(),
        scenario.workload_ref(),
        scenario.cluster_nodes(),
    );
    let written = toml::to_string(&scenario);
    assert!(
        written.is_ok(),
        "an accepted scenario does not serialize: {written:?}"
    );
    let Ok(written) = written else {
        return;
    };
    let again = Scenario::from_toml_str("fuzz", &written, files);
    let rewritten = again
        .as_ref()
        .map_err(|e| e.to_string())
        .and_then(|s| toml::to_string(s).map_err(|e| e.to_string()));
    assert_eq!(rewritten, Ok(written), "the scenario written back");
}

/// `squad_config::Settings::from_toml` (parse and validation): accepted settings serialize to
/// TOML, and that TOML loads to settings that serialize to the same text.
pub fn settings(data: &[u8]) {
    let Some(text) = super::text(data) else {
        return;
    };
    let Ok(settings) = Settings::from_toml("squad.toml", text) else {
        return;
    };
    let written = toml::to_string(&settings);
    assert!(
        written.is_ok(),
        "accepted settings do not serialize: {written:?}"
    );
    let Ok(written) = written else {
        return;
    };
    let again = Settings::from_toml("squad.toml", &written);
    assert_eq!(
        again.as_ref().ok(),
        Some(&settings),
        "the settings written back as {written}"
    );
}
