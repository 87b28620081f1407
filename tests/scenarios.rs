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
//! - **one file**: each tree of the repository as one multi-document YAML file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::{Captures, Regex};

use squad::simulation::{self, SimulationOptions};
use squad_config::Settings;
use squad_runtime::Faults;
use squad_sim::Scenario;

/// The shipped scenario's files as a user's directory holds them.
fn files_of(name: &str) -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sim/scenarios")
        .join(name);
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// `text` with every whole occurrence of `from` (not part of a longer word: letters, digits and
/// `_` around it end a match, `-`, `.`, `/` do not) replaced by `to`.
fn rename(text: &str, from: &str, to: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for (i, _) in text.match_indices(from) {
        let before = text[..i].chars().next_back();
        let after = text[i + from.len()..].chars().next();
        if !word(before) && !word(after) {
            out.push_str(&text[done..i]);
            out.push_str(to);
            done = i + from.len();
        }
    }
    out.push_str(&text[done..]);
    out
}

/// A quantity in other, equal units, or as it was when it has no simple equal.
fn reunit(key: &str, number: &str, unit: &str) -> Option<String> {
    let n: f64 = number.parse().ok()?;
    Some(match (key, unit) {
        ("cpu", "m") => format!("{}", n / 1000.0),
        ("cpu", "") => format!("{}m", (n * 1000.0).round()),
        (_, "Mi") if n.fract() == 0.0 => format!("{}", (n as u64) * 1024 * 1024),
        (_, "Gi") if n.fract() == 0.0 => format!("{}Mi", (n as u64) * 1024),
        _ => return None,
    })
}

/// Every `cpu`, `memory` and `storage` quantity of `text` (YAML `key: value` and TOML `key =
/// "value"`) in other, equal units.
fn reunit_all(text: &str) -> String {
    let re = Regex::new(
        r#"(?m)\b(cpu|memory|storage)(\s*[:=]\s*)("?)([0-9]+(?:\.[0-9]+)?)(Mi|Gi|m)?("?)"#,
    )
    .unwrap();
    re.replace_all(text, |c: &Captures| {
        let unit = c.get(5).map_or("", |m| m.as_str());
        match reunit(&c[1], &c[4], unit) {
            // TOML needs the quotes it had; YAML takes the new value quoted.
            Some(v) => format!("{}{}\"{v}\"", &c[1], &c[2]),
            None => c[0].to_owned(),
        }
    })
    .into_owned()
}

fn write(files: &BTreeMap<String, String>, dir: &Path) -> PathBuf {
    for (rel, text) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    dir.to_path_buf()
}

/// Runs the variant through the whole loop (`squad simulate <dir> --approve`) and checks it
/// ends as the shipped scenario expects.
fn variant_ends_as_expected(
    name: &str,
    variant: &str,
    files: BTreeMap<String, String>,
) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    match Scenario::from_dir(&write(&files, &dir.path().join("scenario"))) {
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
fn every_scenario(
    variant: &str,
    change: impl Fn(&Scenario, BTreeMap<String, String>) -> Option<BTreeMap<String, String>>,
) {
    let mut failures = Vec::new();
    for name in scenario_names() {
        let shipped = Scenario::embedded(&name).unwrap();
        let original = files_of(&name);
        let Some(files) = change(&shipped, original.clone()) else {
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
    every_scenario("renamed", |s, files| {
        let ns = s.workload.namespace.clone();
        let new_ns = format!("t7-{ns}");
        let workload = rename(&s.workload.name, &ns, &new_ns);
        let new_workload = format!("{workload}-x9");
        let change = |text: &str| rename(&rename(text, &ns, &new_ns), &workload, &new_workload);
        Some(
            files
                .into_iter()
                .map(|(path, text)| (change(&path), change(&text)))
                .collect(),
        )
    });
}

#[test]
fn quantities_in_other_units_end_as_the_shipped_ones() {
    every_scenario("units", |_, files| {
        Some(
            files
                .into_iter()
                .map(|(path, text)| {
                    let text = if path.ends_with(".yaml")
                        || path.ends_with(".yml")
                        || path == "scenario.toml"
                    {
                        reunit_all(&text)
                    } else {
                        text
                    };
                    (path, text)
                })
                .collect(),
        )
    });
}

#[test]
fn an_alert_no_rule_ships_ends_as_the_shipped_ones() {
    every_scenario("alert renamed", |s, mut files| {
        let toml = files.get_mut("scenario.toml").unwrap();
        *toml = toml.replacen(
            &format!("name = \"{}\"", s.alert.name),
            "name = \"TeamServiceDegraded\"",
            1,
        );
        Some(files)
    });
}

#[test]
fn the_variants_change_what_they_say() {
    assert_eq!(
        rename("orders-api in orders, reorders", "orders", "t7-orders"),
        "t7-orders-api in t7-orders, reorders"
    );
    assert_eq!(rename("a/orders/orders", "orders", "x"), "a/x/x");
    assert_eq!(
        double_memory("memory: 512Mi\n\"limits.memory\" = \"1.5Gi\"\nmemory = \"8G\"\ncpu: 1"),
        "memory: 1024Mi\n\"limits.memory\" = \"3Gi\"\nmemory = \"16G\"\ncpu: 1"
    );
    assert_eq!(
        reunit_all(
            "memory: 512Mi\ncpu: 300m # note\ncpu: \"2\"\nstorage: 1Gi\nmemory = \"4608Mi\"\ncpu: 250m"
        ),
        "memory: \"536870912\"\ncpu: \"0.3\" # note\ncpu: \"2000m\"\nstorage: \"1024Mi\"\nmemory = \"4831838208\"\ncpu: \"0.25\""
    );
}

/// A sidecar that asks little and runs fine, in front of the app's container.
const SIDECAR: &str = "- name: log-shipper
  image: registry.example.com/platform/log-shipper:1.4.0
  resources:
    requests:
      cpu: 10m
      memory: 32Mi
    limits:
      memory: 64Mi
";

#[test]
fn a_sidecar_before_the_apps_container_ends_as_the_shipped_ones() {
    every_scenario("sidecar first", |s, files| {
        if s.workload.kind == "Job" {
            // A Job's pod with a sidecar never completes on the clusters squad reads.
            return None;
        }
        let manifest = s.workload.manifest.clone();
        // A chart's template names the app's container by expression.
        let app = if s.workload.helm.is_some() {
            "- name: {{ .Chart.Name }}".to_owned()
        } else {
            format!("- name: {}", s.workload.container)
        };
        Some(
            files
                .into_iter()
                .map(|(path, text)| {
                    if path.ends_with(&format!("/{manifest}")) || path == manifest {
                        let mut out = String::new();
                        for line in text.lines() {
                            if line.trim_start() == app {
                                let indent = &line[..line.len() - line.trim_start().len()];
                                for l in SIDECAR.lines() {
                                    out.push_str(indent);
                                    out.push_str(l);
                                    out.push('\n');
                                }
                            }
                            out.push_str(line);
                            out.push('\n');
                        }
                        (path, out)
                    } else if path.ends_with(".yaml") && text.contains("/containers/") {
                        // A JSON 6902 patch points at containers by index: the sidecar inserted
                        // before the app moves the app's one up, as its team would write it.
                        let re = Regex::new(r"(/containers/)([0-9]+)(/|$)").unwrap();
                        let text = re
                            .replace_all(&text, |c: &Captures| {
                                let n: usize = c[2].parse().unwrap();
                                format!("{}{}{}", &c[1], n + 1, &c[3])
                            })
                            .into_owned();
                        (path, text)
                    } else if path == "scenario.toml" {
                        // A registry the scenario declares holds the sidecar's image too.
                        let text = text.replacen(
                            "images = [",
                            "images = [\"registry.example.com/platform/log-shipper:1.4.0\", ",
                            1,
                        );
                        (path, text)
                    } else {
                        (path, text)
                    }
                })
                .collect(),
        )
    });
}

#[test]
fn a_repository_of_one_multi_document_file_ends_as_the_shipped_ones() {
    every_scenario("one file", |s, files| {
        if files
            .keys()
            .any(|p| p.ends_with("kustomization.yaml") || p.ends_with("Chart.yaml"))
        {
            // Kustomize names its resources by file, a chart its templates: they stay files.
            return None;
        }
        let yaml = |p: &str| p.ends_with(".yaml") || p.ends_with(".yml");
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for deploy in &s.history {
            let prefix = format!("{}/", deploy.dir);
            let docs: Vec<String> = files
                .iter()
                .filter(|(p, _)| p.starts_with(&prefix) && yaml(p))
                .map(|(_, text)| text.trim_end().trim_start_matches("---\n").to_owned())
                .collect();
            out.insert(format!("{prefix}k8s/all.yaml"), docs.join("\n---\n") + "\n");
        }
        for (p, text) in files {
            let in_a_tree = s
                .history
                .iter()
                .any(|d| p.starts_with(&format!("{}/", d.dir)));
            if p == "scenario.toml" {
                let text = text.replacen(
                    &format!("manifest = \"{}\"", s.workload.manifest),
                    "manifest = \"k8s/all.yaml\"",
                    1,
                );
                out.insert(p, text);
            } else if !(in_a_tree && yaml(&p)) {
                out.insert(p, text);
            }
        }
        Some(out)
    });
}

/// `rel` from directory `dir`, as a path of the scenario (`.` and `..` resolved).
fn join(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[test]
fn kustomize_patches_written_inline_end_as_the_shipped_ones() {
    every_scenario("inline patches", |_, files| {
        let mut out = files.clone();
        let mut changed = false;
        for (path, text) in files
            .iter()
            .filter(|(p, _)| p.ends_with("kustomization.yaml"))
        {
            let mut k: serde_yaml::Mapping = serde_yaml::from_str(text).unwrap();
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            let mut inline = String::new();
            for key in ["patchesStrategicMerge", "patches", "patchesJson6902"] {
                let Some(list) = k.remove(key) else {
                    continue;
                };
                for entry in list.as_sequence().unwrap() {
                    let (file, target) = match entry {
                        serde_yaml::Value::String(f) => (f.clone(), None),
                        m => (m["path"].as_str().unwrap().to_owned(), m.get("target")),
                    };
                    let file = join(dir, &file);
                    let body = out.remove(&file).unwrap();
                    match target {
                        Some(t) => inline.push_str(&format!(
                            "  - target: {}\n    patch: |-\n",
                            serde_json::to_string(t).unwrap()
                        )),
                        None => inline.push_str("  - patch: |-\n"),
                    }
                    for line in body.trim_end().lines() {
                        inline.push_str(&format!("      {line}\n").replace("      \n", "\n"));
                    }
                }
            }
            if inline.is_empty() {
                continue;
            }
            let mut text = serde_yaml::to_string(&k).unwrap();
            text.push_str("patches:\n");
            text.push_str(&inline);
            out.insert(path.clone(), text);
            changed = true;
        }
        changed.then_some(out)
    });
}

/// Every memory quantity of `text` twice as large, in its own unit: under a `memory` key, and
/// a JSON 6902 operation's `value` with a unit of bytes.
fn double_memory(text: &str) -> String {
    let re =
        Regex::new(r#"(memory"?\s*[:=]\s*)("?)([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|M|G)?("?)"#).unwrap();
    let text = re.replace_all(text, |c: &Captures| {
        let n: f64 = c[3].parse().unwrap();
        let unit = c.get(4).map_or("", |m| m.as_str());
        format!("{}{}{}{unit}{}", &c[1], &c[2], n * 2.0, &c[5])
    });
    let op = Regex::new(r#"(?m)^(\s*value:\s*)("?)([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi)("?)"#).unwrap();
    op.replace_all(&text, |c: &Captures| {
        let n: f64 = c[3].parse().unwrap();
        format!("{}{}{}{}{}", &c[1], &c[2], n * 2.0, &c[4], &c[5])
    })
    .into_owned()
}

#[test]
fn twice_the_memory_everywhere_ends_as_the_shipped_ones() {
    // Requests, limits, quotas, nodes and the app's memory model all doubled: the same story
    // in other numbers.
    let model =
        Regex::new(r"(?m)^((?:base_mib|per_rps_mib|leak_mib_per_hour)\s*=\s*)([0-9.]+)").unwrap();
    every_scenario("memory doubled", |_, files| {
        Some(
            files
                .into_iter()
                .map(|(path, text)| {
                    let yaml = path.ends_with(".yaml") || path.ends_with(".yml");
                    let text = if yaml {
                        double_memory(&text)
                    } else if path == "scenario.toml" {
                        let text = double_memory(&text);
                        model
                            .replace_all(&text, |c: &Captures| {
                                let n: f64 = c[2].parse().unwrap();
                                format!("{}{:?}", &c[1], n * 2.0)
                            })
                            .into_owned()
                    } else {
                        text
                    };
                    (path, text)
                })
                .collect(),
        )
    });
}

#[test]
fn an_alert_on_the_workload_not_a_pod_ends_as_the_shipped_ones() {
    // A team's own rule over the workload's series: no pod, no container, the workload named
    // as kube-state-metrics labels it.
    every_scenario("workload alert", |s, mut files| {
        let key = match s.workload.kind.as_str() {
            "Deployment" => "deployment",
            "StatefulSet" => "statefulset",
            "DaemonSet" => "daemonset",
            "Job" => "job_name",
            _ => return None,
        };
        let toml = files.get_mut("scenario.toml").unwrap();
        let mut out = String::new();
        let mut in_labels = false;
        for line in toml.lines() {
            if line.starts_with('[') {
                if in_labels {
                    out.push_str(&format!("{key} = \"{}\"\n", s.workload.name));
                }
                in_labels = line.trim() == "[alert.labels]";
            }
            let dropped = in_labels
                && [
                    "pod ",
                    "pod=",
                    "container ",
                    "container=",
                    "persistentvolumeclaim",
                    "horizontalpodautoscaler",
                    &format!("{key} "),
                ]
                .iter()
                .any(|k| line.starts_with(k));
            if !dropped {
                out.push_str(line);
                out.push('\n');
            }
        }
        *toml = out;
        Some(files)
    });
}
