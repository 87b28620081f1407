//! Helm: a chart whose templates read `.Values`, and per-environment values files, as an Argo CD
//! `Application` names them (`spec.source.path` the chart, `spec.source.helm.valueFiles` in order,
//! the last winning, `spec.destination.namespace` the environment).
//!
//! A remedy's edit of a rendered field is an edit of the values key that feeds it: [`feeds`] reads
//! the chart's template for the key on that field's line (`resources:` then
//! `{{- toYaml .Values.resources | nindent 12 }}`, the tag part of `image: "{{ .Values.image.repository
//! }}:{{ .Values.image.tag | default .Chart.AppVersion }}"`), and [`retarget`] writes it in the
//! environment's values file that sets it (the last one that does), or the environment's own file
//! (the last listed) when none does — never the chart's defaults, which every environment shares.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Edit;

/// An Argo CD Application that renders a Helm chart from the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmApp {
    /// The Application's manifest.
    pub manifest: String,
    /// The namespace it deploys to.
    pub namespace: String,
    /// The chart's directory.
    pub chart: String,
    pub release: String,
    /// Its values files as repository paths, in order (the last wins).
    pub values: Vec<String>,
}

/// The Helm Applications a file declares.
pub fn applications(path: &str, text: &str) -> Vec<HelmApp> {
    let Ok(docs) = crate::objects::parse(path, text) else {
        return Vec::new();
    };
    docs.iter()
        .filter(|d| {
            crate::objects::kind(d) == "Application" && !d["spec"]["source"]["helm"].is_null()
        })
        .filter_map(|d| {
            let source = &d["spec"]["source"];
            let chart = source["path"].as_str()?.trim_end_matches('/').to_owned();
            let values = source["helm"]["valueFiles"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|v| format!("{chart}/{}", v.trim_start_matches("./")))
                        .collect()
                })
                .unwrap_or_else(|| vec![format!("{chart}/values.yaml")]);
            Some(HelmApp {
                manifest: path.to_owned(),
                namespace: d["spec"]["destination"]["namespace"].as_str()?.to_owned(),
                release: source["helm"]["releaseName"]
                    .as_str()
                    .unwrap_or(crate::objects::name(d))
                    .to_owned(),
                chart,
                values,
            })
        })
        .collect()
}

/// The `.Values` paths a template line reads (`{{ .Values.image.tag | default … }}`), in order.
fn values_refs(line: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = line[from..].find(".Values.") {
        let start = from + i + ".Values.".len();
        let end = line[start..]
            .find(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_' || c == '-'))
            .map_or(line.len(), |e| start + e);
        let path: Vec<String> = line[start..end]
            .trim_end_matches('.')
            .split('.')
            .map(str::to_owned)
            .collect();
        out.push((from + i, path));
        from = end;
    }
    out
}

/// The values path that feeds `key` of the container (`resources`, `image` — its tag —,
/// `livenessProbe`, …) in a chart's workload template: the `.Values` on the key's line, else on
/// the template line right under it, else the `with .Values.…` right above it. For `image`, the
/// reference after the last `:` (the tag). The container is the list item named `container`, else
/// the first one named by an expression (`{{ .Chart.Name }}`).
pub fn feeds(template: &str, container: &str, key: &str) -> Option<Vec<String>> {
    let lines: Vec<&str> = template.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with("containers:"))?;
    let indent = |l: &str| l.len() - l.trim_start().len();
    let items: Vec<usize> = (start + 1..lines.len())
        .filter(|&i| lines[i].trim_start().starts_with("- name:"))
        .collect();
    let name_of = |i: usize| {
        lines[i].trim_start()["- name:".len()..]
            .trim()
            .trim_matches(['"', '\''])
    };
    let item = items
        .iter()
        .copied()
        .find(|&i| name_of(i) == container)
        .or_else(|| {
            items
                .iter()
                .copied()
                .find(|&i| name_of(i).starts_with("{{"))
        })?;
    let col = indent(lines[item]);
    let end = (item + 1..lines.len())
        .find(|&i| {
            let l = lines[i];
            let t = l.trim_start();
            !t.is_empty()
                && !t.starts_with("{{")
                && (indent(l) < col || (indent(l) == col && t.starts_with("- ")))
        })
        .unwrap_or(lines.len());
    let head = format!("{key}:");
    let at = (item..end).find(|&i| {
        let t = lines[i].trim_start().trim_start_matches("- ");
        t.starts_with(&head)
    })?;
    let line = lines[at];
    let refs = values_refs(line);
    if key == "image" {
        // `"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"`
        let colon = line.rfind("}}:").map_or(0, |c| c + 2);
        return refs
            .into_iter()
            .rfind(|(at, _)| *at > colon)
            .map(|(_, p)| p);
    }
    if let Some((_, path)) = refs.into_iter().next() {
        return Some(path);
    }
    // `resources:` then `{{- toYaml .Values.resources | nindent 12 }}`.
    let next = lines.get(at + 1).copied().unwrap_or("");
    if next.trim_start().starts_with("{{")
        && let Some((_, path)) = values_refs(next).into_iter().next()
    {
        return Some(path);
    }
    // `{{- with .Values.resources }}` around `resources:` and `{{- toYaml . | nindent 12 }}`
    // (what `helm create` writes).
    let with = lines.get(at.checked_sub(1)?)?;
    (with.contains("with .Values.") && next.contains("toYaml ."))
        .then(|| values_refs(with).into_iter().next().map(|(_, p)| p))
        .flatten()
}

/// The scalar at `keys` of a values file, as text (a string, number or bool).
pub fn scalar_at(text: &str, keys: &[String]) -> Option<String> {
    match value_at(text, keys)? {
        serde_yaml::Value::String(s) => Some(s),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The value at `keys` of a values file.
pub fn value_at(text: &str, keys: &[String]) -> Option<serde_yaml::Value> {
    let mut v: serde_yaml::Value = crate::yaml::from_str(text).ok()?;
    for k in keys {
        v = v.get(k.as_str())?.clone();
    }
    Some(v)
}

/// The values file an edit of `keys` goes to: the last of the environment's files that sets it,
/// else its own (the last listed). The chart's `values.yaml` holds the defaults every environment
/// shares: it is edited only when it is the only file.
fn values_file_for(
    app: &HelmApp,
    files: &BTreeMap<String, String>,
    keys: &[String],
) -> Option<String> {
    let defaults = format!("{}/values.yaml", app.chart);
    let own: Vec<&String> = app.values.iter().filter(|f| **f != defaults).collect();
    own.iter()
        .rev()
        .find(|f| {
            files
                .get(f.as_str())
                .and_then(|t| value_at(t, keys))
                .is_some()
        })
        .or_else(|| own.last())
        .map(|f| (*f).clone())
        .or_else(|| app.values.last().cloned())
}

/// Moves each edit of the chart's workload `template` to the values key that feeds it, in the
/// values file the environment sets it in. Edits it cannot place stay as they are. Returns the
/// edits and, for the PR, one line per edit it moved.
pub fn retarget(
    edits: &[Edit],
    app: &HelmApp,
    template: (&str, &str),
    files: &BTreeMap<String, String>,
) -> (Vec<Edit>, Vec<String>) {
    let (template_path, template_text) = template;
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let dir = template_path.rsplit_once('/').map_or("", |(d, _)| d);
    for e in edits {
        // A file the fix adds beside the template would be a template every environment renders.
        if let Edit::AddFile { path, content } = e
            && path.rsplit_once('/').map_or("", |(d, _)| d) == dir
        {
            match autoscaling(app, files, content) {
                Some((values, note)) => {
                    out.extend(values);
                    notes.push(note);
                }
                None => notes.push(format!(
                    "no `{path}` added: a file beside the chart's templates would deploy to every environment, and the chart has no `autoscaling` values to turn one on for {}",
                    app.namespace
                )),
            }
            continue;
        }
        if let Edit::AddKustomizeResource { entry, .. } = e
            && entry.rsplit_once('/').map_or("", |(d, _)| d) == dir
        {
            continue;
        }
        if e.path() != template_path {
            out.push(e.clone());
            continue;
        }
        let placed = match e {
            Edit::SetContainerResource {
                container,
                section,
                resource,
                value,
                ..
            } => feeds(template_text, container, "resources").map(|mut keys| {
                keys.extend([section.clone(), resource.clone()]);
                (keys, value.clone())
            }),
            Edit::SetContainerKey {
                container,
                key,
                lines: Some(lines),
                ..
            } if key == "image" => {
                let reference = lines
                    .first()
                    .and_then(|l| l.strip_prefix("image:"))
                    .map(|r| {
                        r.split(" #")
                            .next()
                            .unwrap_or(r)
                            .trim()
                            .trim_matches(['"', '\''])
                    });
                let tag = reference
                    .and_then(|r| r.rsplit_once(':'))
                    .map(|(_, t)| t.to_owned());
                feeds(template_text, container, "image").zip(tag)
            }
            // A one-line scalar of the container the template reads from `.Values`.
            Edit::SetContainerKey {
                container,
                key,
                lines: Some(lines),
                ..
            } if lines.len() == 1 => scalar_of(&lines[0], key)
                .and_then(|v| feeds(template_text, container, key).map(|k| (k, v))),
            // A scalar of the workload's object (`replicas: {{ .Values.replicaCount }}`).
            Edit::SetObjectKey {
                keys,
                lines: Some(lines),
                ..
            } if lines.len() == 1 => keys.last().and_then(|key| {
                let value = scalar_of(&lines[0], key)?;
                object_feed(template_text, key).map(|k| (k, value))
            }),
            _ => None,
        };
        let Some((keys, value)) = placed else {
            out.push(e.clone());
            continue;
        };
        let Some(file) = values_file_for(app, files, &keys) else {
            out.push(e.clone());
            continue;
        };
        notes.push(format!(
            "`{}` feeds that field in `{template_path}`; {} sets it in `{file}`",
            keys.join("."),
            app.namespace
        ));
        out.push(Edit::SetValue {
            path: file,
            keys,
            value,
        });
    }
    (out, notes)
}

/// The scalar a `key: value` line writes (its comment and quotes left out).
fn scalar_of(line: &str, key: &str) -> Option<String> {
    let v = line
        .trim_start()
        .strip_prefix(key)?
        .strip_prefix(':')?
        .split(" #")
        .next()?
        .trim()
        .trim_matches(['"', '\'']);
    (!v.is_empty() && !v.starts_with(['{', '['])).then(|| v.to_owned())
}

/// The values path that feeds the object's `key` in a template: the one line outside the
/// containers that sets `key:` from `.Values` (`replicas: {{ .Values.replicaCount }}`).
fn object_feed(template: &str, key: &str) -> Option<Vec<String>> {
    let head = format!("{key}:");
    let containers = template
        .lines()
        .position(|l| l.trim_start().starts_with("containers:"))
        .unwrap_or(usize::MAX);
    let mut found = template
        .lines()
        .enumerate()
        .filter(|(i, l)| *i < containers && l.trim_start().starts_with(&head))
        .filter_map(|(_, l)| values_refs(l).into_iter().next().map(|(_, p)| p));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// An HPA a fix adds, as the chart's own `autoscaling` values (the shape `helm create` writes:
/// `autoscaling.enabled`, `minReplicas`, `maxReplicas`, `targetMemoryUtilizationPercentage`) in
/// the environment's values file, when the chart's HPA template reads them.
fn autoscaling(
    app: &HelmApp,
    files: &BTreeMap<String, String>,
    hpa: &str,
) -> Option<(Vec<Edit>, String)> {
    let template = files.get(&format!("{}/templates/hpa.yaml", app.chart))?;
    if !template.contains(".Values.autoscaling.enabled")
        || !template.contains(".Values.autoscaling.targetMemoryUtilizationPercentage")
    {
        return None;
    }
    let v: serde_yaml::Value = crate::yaml::from_str(hpa).ok()?;
    let number = |k: &str| v["spec"][k].as_u64().map(|n| n.to_string());
    let target = v["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
        .as_u64()?
        .to_string();
    let file = values_file_for(
        app,
        files,
        &["autoscaling".to_owned(), "enabled".to_owned()],
    )?;
    let set = |k: &str, value: String| Edit::SetValue {
        path: file.clone(),
        keys: vec!["autoscaling".to_owned(), k.to_owned()],
        value,
    };
    Some((
        vec![
            set("enabled", "true".into()),
            set("minReplicas", number("minReplicas")?),
            set("maxReplicas", number("maxReplicas")?),
            set("targetMemoryUtilizationPercentage", target),
        ],
        format!(
            "the chart's `templates/hpa.yaml` reads `autoscaling`: turned on in `{file}` for {}",
            app.namespace
        ),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TEMPLATE: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "web.fullname" . }}
spec:
  replicas: {{ .Values.replicaCount }}
  template:
    spec:
      containers:
        - name: {{ .Chart.Name }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
"#;

    const APP: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web-prod\nspec:\n  destination:\n    namespace: shop\n  source:\n    path: charts/web\n    helm:\n      releaseName: web\n      valueFiles:\n        - values.yaml\n        - values-prod.yaml\n";

    #[test]
    fn the_values_that_feed_a_field_are_read_from_the_template() {
        assert_eq!(feeds(TEMPLATE, "web", "resources").unwrap(), ["resources"]);
        assert_eq!(feeds(TEMPLATE, "web", "image").unwrap(), ["image", "tag"]);
        assert!(feeds(TEMPLATE, "web", "livenessProbe").is_none());
        // A sidecar first, with literal values: the app's container is still found.
        let sidecar = TEMPLATE.replace(
            "        - name: {{ .Chart.Name }}\n",
            "        - name: shipper\n          image: r/shipper:1\n          resources:\n            limits:\n              memory: 64Mi\n        - name: {{ .Chart.Name }}\n",
        );
        assert_eq!(feeds(&sidecar, "web", "resources").unwrap(), ["resources"]);
        assert_eq!(feeds(&sidecar, "web", "image").unwrap(), ["image", "tag"]);
        // The shape `helm create` writes.
        let created = "      containers:\n        - name: {{ .Chart.Name }}\n          {{- with .Values.resources }}\n          resources:\n            {{- toYaml . | nindent 12 }}\n          {{- end }}\n";
        assert_eq!(feeds(created, "web", "resources").unwrap(), ["resources"]);
        let apps = applications("argocd/web-prod.yaml", APP);
        assert_eq!(
            apps,
            [HelmApp {
                manifest: "argocd/web-prod.yaml".into(),
                namespace: "shop".into(),
                chart: "charts/web".into(),
                release: "web".into(),
                values: vec![
                    "charts/web/values.yaml".into(),
                    "charts/web/values-prod.yaml".into()
                ],
            }]
        );
    }

    #[test]
    fn an_edit_goes_to_the_environments_values_file() {
        let app = applications("argocd/web-prod.yaml", APP).remove(0);
        let files = BTreeMap::from([
            (
                "charts/web/values.yaml".to_string(),
                "resources:\n  limits:\n    memory: 256Mi\nimage:\n  tag: \"\"\n".to_string(),
            ),
            (
                "charts/web/values-prod.yaml".to_string(),
                "image:\n  tag: \"2.5.0\"\n".to_string(),
            ),
        ]);
        let edit = |section: &str| Edit::SetContainerResource {
            path: "charts/web/templates/deployment.yaml".into(),
            kind: "Deployment".into(),
            workload: "web".into(),
            container: "web".into(),
            section: section.into(),
            resource: "memory".into(),
            value: "1Gi".into(),
        };
        let tag = Edit::SetContainerKey {
            path: "charts/web/templates/deployment.yaml".into(),
            kind: "Deployment".into(),
            workload: "web".into(),
            container: "web".into(),
            key: "image".into(),
            lines: Some(vec!["image: ghcr.io/acme/web:2.4.2".into()]),
        };
        let (out, notes) = retarget(
            &[edit("limits"), tag],
            &app,
            ("charts/web/templates/deployment.yaml", TEMPLATE),
            &files,
        );
        // The chart's default sets the limit, but production has no say in it: its own file.
        assert_eq!(
            out,
            [
                Edit::SetValue {
                    path: "charts/web/values-prod.yaml".into(),
                    keys: vec!["resources".into(), "limits".into(), "memory".into()],
                    value: "1Gi".into(),
                },
                Edit::SetValue {
                    path: "charts/web/values-prod.yaml".into(),
                    keys: vec!["image".into(), "tag".into()],
                    value: "2.4.2".into(),
                },
            ]
        );
        assert_eq!(notes.len(), 2);
    }

    #[test]
    fn a_replica_count_and_a_scalar_of_the_container_go_to_the_values_that_feed_them() {
        let app = applications("argocd/web-prod.yaml", APP).remove(0);
        let files = BTreeMap::from([(
            "charts/web/values-prod.yaml".to_string(),
            "replicaCount: 4\n".to_string(),
        )]);
        let template = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  {{- if not .Values.autoscaling.enabled }}\n  replicas: {{ .Values.replicaCount }}\n  {{- end }}\n  template:\n    spec:\n      containers:\n        - name: {{ .Chart.Name }}\n          imagePullPolicy: {{ .Values.image.pullPolicy }}\n";
        let path = "charts/web/templates/deployment.yaml";
        let replicas = Edit::SetObjectKey {
            path: path.into(),
            kind: "Deployment".into(),
            name: "web".into(),
            keys: vec!["spec".into(), "replicas".into()],
            lines: Some(vec!["replicas: 1 # one volume".into()]),
        };
        let policy = Edit::SetContainerKey {
            path: path.into(),
            kind: "Deployment".into(),
            workload: "web".into(),
            container: "web".into(),
            key: "imagePullPolicy".into(),
            lines: Some(vec!["imagePullPolicy: Always".into()]),
        };
        let (out, notes) = retarget(&[replicas, policy], &app, (path, template), &files);
        assert_eq!(
            out,
            [
                Edit::SetValue {
                    path: "charts/web/values-prod.yaml".into(),
                    keys: vec!["replicaCount".into()],
                    value: "1".into(),
                },
                Edit::SetValue {
                    path: "charts/web/values-prod.yaml".into(),
                    keys: vec!["image".into(), "pullPolicy".into()],
                    value: "Always".into(),
                },
            ]
        );
        assert_eq!(notes.len(), 2);
        // A block (a probe written out) is not a scalar: it stays in the template.
        let probe = Edit::SetContainerKey {
            path: path.into(),
            kind: "Deployment".into(),
            workload: "web".into(),
            container: "web".into(),
            key: "imagePullPolicy".into(),
            lines: Some(vec!["imagePullPolicy:".into(), "  x: 1".into()]),
        };
        let (out, _) = retarget(std::slice::from_ref(&probe), &app, (path, template), &files);
        assert_eq!(out, [probe]);
    }
}
