//! Shipped scenarios changed the way a scenario squad has never seen differs from them: a rule
//! that holds only for the shipped names, units, layouts or alert names is a constant, and these
//! variants catch it. `tests/scenarios.rs` runs every shipped scenario in each of them; other
//! property tests (`tests/secrets_never_leave`) draw from the same list.
//!
//! A variant works on a scenario's files as a user's directory holds them ([`files_of`]): path
//! (relative to the scenario's directory) to text. It answers the changed files, or `None` when
//! it does not apply to that scenario.
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use regex::{Captures, Regex};
use squad_sim::Scenario;

/// A scenario's files: path relative to its directory -> text.
pub type Files = BTreeMap<String, String>;

/// How a variant changes a scenario's files (`None`: it does not apply to this scenario).
pub type Change = fn(&Scenario, Files) -> anyhow::Result<Option<Files>>;

/// One way of changing a scenario.
#[derive(Clone, Copy)]
pub struct Variant {
    /// Its name in messages (`renamed`, `units`, …).
    pub name: &'static str,
    pub change: Change,
}

/// Every variant, in a fixed order.
pub const ALL: &[Variant] = &[
    Variant {
        name: "renamed",
        change: renamed,
    },
    Variant {
        name: "units",
        change: units,
    },
    Variant {
        name: "alert renamed",
        change: alert_renamed,
    },
    Variant {
        name: "sidecar first",
        change: sidecar_first,
    },
    Variant {
        name: "one file",
        change: one_file,
    },
    Variant {
        name: "inline patches",
        change: inline_patches,
    },
    Variant {
        name: "memory doubled",
        change: memory_doubled,
    },
    Variant {
        name: "workload alert",
        change: workload_alert,
    },
];

/// The directory of the shipped scenarios in the source tree.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/scenarios")
}

/// The shipped scenario's files as a user's directory holds them.
pub fn files_of(name: &str) -> anyhow::Result<Files> {
    let root = scenarios_dir().join(name);
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(&root)?
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("read {}", path.display()))?;
                out.insert(rel, text);
            }
        }
    }
    Ok(out)
}

/// Writes `files` under `dir` (created as needed) and returns `dir`.
pub fn write(files: &Files, dir: &Path) -> anyhow::Result<PathBuf> {
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(dir.to_path_buf())
}

/// `text` with every whole occurrence of `from` (not part of a longer word: letters, digits and
/// `_` around it end a match, `-`, `.`, `/` do not) replaced by `to`.
pub fn rename(text: &str, from: &str, to: &str) -> String {
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

/// A regex of this module (each is a constant, checked by the unit tests of `tests/scenarios.rs`).
fn regex(pattern: &str) -> anyhow::Result<Regex> {
    Regex::new(pattern).with_context(|| format!("regex {pattern}"))
}

/// Every `cpu`, `memory` and `storage` quantity of `text` (YAML `key: value` and TOML `key =
/// "value"`) in other, equal units.
pub fn reunit_all(text: &str) -> anyhow::Result<String> {
    let re =
        regex(r#"(?m)\b(cpu|memory|storage)(\s*[:=]\s*)("?)([0-9]+(?:\.[0-9]+)?)(Mi|Gi|m)?("?)"#)?;
    Ok(re
        .replace_all(text, |c: &Captures| {
            let unit = c.get(5).map_or("", |m| m.as_str());
            match reunit(&c[1], &c[4], unit) {
                // TOML needs the quotes it had; YAML takes the new value quoted.
                Some(v) => format!("{}{}\"{v}\"", &c[1], &c[2]),
                None => c[0].to_owned(),
            }
        })
        .into_owned())
}

/// Every memory quantity of `text` twice as large, in its own unit: under a `memory` key, and
/// a JSON 6902 operation's `value` with a unit of bytes.
pub fn double_memory(text: &str) -> anyhow::Result<String> {
    let re = regex(r#"(memory"?\s*[:=]\s*)("?)([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|M|G)?("?)"#)?;
    let text = re.replace_all(text, |c: &Captures| {
        let n: f64 = c[3].parse().unwrap_or(0.0);
        let unit = c.get(4).map_or("", |m| m.as_str());
        format!("{}{}{}{unit}{}", &c[1], &c[2], n * 2.0, &c[5])
    });
    let op = regex(r#"(?m)^(\s*value:\s*)("?)([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi)("?)"#)?;
    Ok(op
        .replace_all(&text, |c: &Captures| {
            let n: f64 = c[3].parse().unwrap_or(0.0);
            format!("{}{}{}{}{}", &c[1], &c[2], n * 2.0, &c[4], &c[5])
        })
        .into_owned())
}

/// The namespace and the workload renamed everywhere, paths included.
pub fn renamed(s: &Scenario, files: Files) -> anyhow::Result<Option<Files>> {
    let ns = s.workload.namespace.clone();
    let new_ns = format!("t7-{ns}");
    let workload = rename(&s.workload.name, &ns, &new_ns);
    let new_workload = format!("{workload}-x9");
    let change = |text: &str| rename(&rename(text, &ns, &new_ns), &workload, &new_workload);
    Ok(Some(
        files
            .into_iter()
            .map(|(path, text)| (change(&path), change(&text)))
            .collect(),
    ))
}

/// Every quantity of the manifests and of `scenario.toml` in other, equal units.
pub fn units(_: &Scenario, files: Files) -> anyhow::Result<Option<Files>> {
    let mut out = Files::new();
    for (path, text) in files {
        let text = if path.ends_with(".yaml") || path.ends_with(".yml") || path == "scenario.toml" {
            reunit_all(&text)?
        } else {
            text
        };
        out.insert(path, text);
    }
    Ok(Some(out))
}

/// The alert's name replaced by one no rule ships.
pub fn alert_renamed(s: &Scenario, mut files: Files) -> anyhow::Result<Option<Files>> {
    let toml = files
        .get_mut("scenario.toml")
        .ok_or_else(|| anyhow!("no scenario.toml"))?;
    *toml = toml.replacen(
        &format!("name = \"{}\"", s.alert.name),
        "name = \"TeamServiceDegraded\"",
        1,
    );
    Ok(Some(files))
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

/// A small sidecar declared before the app's container (not for a Job: its pod would never
/// complete).
pub fn sidecar_first(s: &Scenario, files: Files) -> anyhow::Result<Option<Files>> {
    if s.workload.kind == "Job" {
        // A Job's pod with a sidecar never completes on the clusters squad reads.
        return Ok(None);
    }
    let manifest = s.workload.manifest.clone();
    // A chart's template names the app's container by expression.
    let app = if s.workload.helm.is_some() {
        "- name: {{ .Chart.Name }}".to_owned()
    } else {
        format!("- name: {}", s.workload.container)
    };
    let index = regex(r"(/containers/)([0-9]+)(/|$)")?;
    let mut out = Files::new();
    for (path, text) in files {
        let text = if path.ends_with(&format!("/{manifest}")) || path == manifest {
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
            out
        } else if path.ends_with(".yaml") && text.contains("/containers/") {
            // A JSON 6902 patch points at containers by index: the sidecar inserted before the
            // app moves the app's one up, as its team would write it.
            index
                .replace_all(&text, |c: &Captures| {
                    let n: usize = c[2].parse().unwrap_or(0);
                    format!("{}{}{}", &c[1], n + 1, &c[3])
                })
                .into_owned()
        } else if path == "scenario.toml" {
            // A registry the scenario declares holds the sidecar's image too.
            text.replacen(
                "images = [",
                "images = [\"registry.example.com/platform/log-shipper:1.4.0\", ",
                1,
            )
        } else {
            text
        };
        out.insert(path, text);
    }
    Ok(Some(out))
}

/// Each tree of the repository as one multi-document YAML file (not for Kustomize or Helm
/// repositories: they name their resources and templates by file).
pub fn one_file(s: &Scenario, files: Files) -> anyhow::Result<Option<Files>> {
    if files
        .keys()
        .any(|p| p.ends_with("kustomization.yaml") || p.ends_with("Chart.yaml"))
    {
        // Kustomize names its resources by file, a chart its templates: they stay files.
        return Ok(None);
    }
    let yaml = |p: &str| p.ends_with(".yaml") || p.ends_with(".yml");
    let mut out = Files::new();
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
    Ok(Some(out))
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

/// Kustomize patches written inline in their kustomization (`None` without a patch file).
pub fn inline_patches(_: &Scenario, files: Files) -> anyhow::Result<Option<Files>> {
    let mut out = files.clone();
    let mut changed = false;
    for (path, text) in files
        .iter()
        .filter(|(p, _)| p.ends_with("kustomization.yaml"))
    {
        let mut k: serde_yaml::Mapping =
            serde_yaml::from_str(text).with_context(|| format!("{path}: not a mapping"))?;
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let mut inline = String::new();
        for key in ["patchesStrategicMerge", "patches", "patchesJson6902"] {
            let Some(list) = k.remove(key) else {
                continue;
            };
            let entries = list
                .as_sequence()
                .ok_or_else(|| anyhow!("{path}: {key} is not a list"))?;
            for entry in entries {
                let (file, target) = match entry {
                    serde_yaml::Value::String(f) => (f.clone(), None),
                    m => (
                        m["path"]
                            .as_str()
                            .ok_or_else(|| anyhow!("{path}: a {key} entry without path"))?
                            .to_owned(),
                        m.get("target"),
                    ),
                };
                let file = join(dir, &file);
                let body = out
                    .remove(&file)
                    .ok_or_else(|| anyhow!("{path}: no patch file {file}"))?;
                match target {
                    Some(t) => inline.push_str(&format!(
                        "  - target: {}\n    patch: |-\n",
                        serde_json::to_string(t)?
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
        let mut text = serde_yaml::to_string(&k)?;
        text.push_str("patches:\n");
        text.push_str(&inline);
        out.insert(path.clone(), text);
        changed = true;
    }
    Ok(changed.then_some(out))
}

/// Requests, limits, quotas, nodes and the app's memory model all doubled: the same story in
/// other numbers.
pub fn memory_doubled(_: &Scenario, files: Files) -> anyhow::Result<Option<Files>> {
    let model = regex(r"(?m)^((?:base_mib|per_rps_mib|leak_mib_per_hour)\s*=\s*)([0-9.]+)")?;
    let mut out = Files::new();
    for (path, text) in files {
        let yaml = path.ends_with(".yaml") || path.ends_with(".yml");
        let text = if yaml {
            double_memory(&text)?
        } else if path == "scenario.toml" {
            let text = double_memory(&text)?;
            model
                .replace_all(&text, |c: &Captures| {
                    let n: f64 = c[2].parse().unwrap_or(0.0);
                    format!("{}{:?}", &c[1], n * 2.0)
                })
                .into_owned()
        } else {
            text
        };
        out.insert(path, text);
    }
    Ok(Some(out))
}

/// A team's own rule over the workload's series: no pod, no container, the workload named as
/// kube-state-metrics labels it (`None` for kinds it does not label so).
pub fn workload_alert(s: &Scenario, mut files: Files) -> anyhow::Result<Option<Files>> {
    let key = match s.workload.kind.as_str() {
        "Deployment" => "deployment",
        "StatefulSet" => "statefulset",
        "DaemonSet" => "daemonset",
        "Job" => "job_name",
        _ => return Ok(None),
    };
    let toml = files
        .get_mut("scenario.toml")
        .ok_or_else(|| anyhow!("no scenario.toml"))?;
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
    Ok(Some(files))
}
