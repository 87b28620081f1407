//! Undoing a deploy: the remedy of every family whose failure the last deploy caused (a tag the
//! registry does not hold, a command the image does not have, a probe on a path the app does not
//! serve…). A careful SRE reverts exactly the lines of that deploy that cause the failure, naming
//! its commit — and the whole commit's change to the file when it changed nothing else.
//!
//! [`find`] walks the manifest's versions on the default branch (newest first) for the newest
//! one that changed the failing keys of the container, and reads what they were just before it;
//! [`Undo::change`] writes the pull request: one [`Edit::SetContainerKey`] per key (the earlier
//! version's lines, comments included; a key the deploy added is removed), the commit named in
//! the title and the notes, and whether it is the whole revert. Pure: the versions were read
//! before.

use serde_json::Value;
use squad_gitops::editor::{ContainerTarget, container_key_lines};
use squad_gitops::kustomize::Kustomization;
use squad_gitops::objects;
use squad_protocols::{Finding, Severity, WorkloadRef};
use squad_runtime::ports::FileVersion;

use crate::{Change, Edit, RepoView};

mod object;
pub use object::{
    find_keys, find_template_keys, set_scalar, template_change, template_keys, template_of,
};

/// What the deploy to undo changed, and the lines the keys had before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Undo<'r> {
    /// The version that changed the keys (its commit is the deploy).
    pub deploy: &'r FileVersion,
    /// The version just before it.
    pub before: &'r FileVersion,
    /// The file the undo edits (the manifest, or the kustomization whose `images:` sets the
    /// tag), and its text now.
    pub file: &'r str,
    pub current: &'r str,
    pub container: String,
    /// Each failing part the deploy changed, with its lines before it (`None`: the deploy added it).
    pub keys: Vec<(Part, Option<Vec<String>>)>,
    /// Each of those parts as it is now (`None`: absent), for the notes.
    pub now: Vec<Option<Vec<String>>>,
}

/// What of a container an undo puts back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A key, whole (`image`, `args`, `readinessProbe`).
    Key(String),
    /// One item of `env`, by its name.
    Env(String),
    /// The `newTag` of a kustomization's `images:` entry, by the image's name.
    Image(String),
    /// A key of a Helm values file (`image.tag`).
    Value(Vec<String>),
    /// The key at a path of mapping keys of any object of the repository (`spec.ports` of a
    /// Service, `spec.template.spec.nodeSelector` of the workload).
    Object {
        kind: String,
        name: String,
        keys: Vec<String>,
    },
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Key(k) => write!(f, "`{k}`"),
            Part::Env(n) => write!(f, "`env` item `{n}`"),
            Part::Image(n) => write!(f, "the `images:` tag of `{n}`"),
            Part::Value(keys) => write!(f, "`{}`", keys.join(".")),
            Part::Object { kind, name, keys } => write!(f, "`{}` of {kind}/{name}", keys.join(".")),
        }
    }
}

/// The lines of one env item of the container (`- name: VAR` first), scoped to that container.
fn env_lines(text: &str, target: &ContainerTarget, var: &str) -> Option<Vec<String>> {
    let env = container_key_lines(text, target, "env").ok()??;
    squad_gitops::editor::env_item_lines(&env.join("\n"), var)
}

/// The last deploy of the manifest: the newest version that changed the pod spec (a commit that
/// only scaled rolled nothing out), as (its index in the history, it, the version before it).
fn last_deploy(repo: &RepoView, w: &WorkloadRef) -> Option<(usize, Value, Value)> {
    let docs: Vec<Option<Value>> = repo
        .history
        .iter()
        .map(|v| document(&v.content, &repo.path, w))
        .collect();
    (0..repo.history.len().saturating_sub(1)).find_map(|i| {
        let (after, prior) = (docs[i].as_ref()?, docs[i + 1].as_ref()?);
        (objects::pod_spec(after) != objects::pod_spec(prior))
            .then(|| (i, after.clone(), prior.clone()))
    })
}

/// The workload's document in one version of its manifest, as JSON.
fn document(text: &str, path: &str, w: &WorkloadRef) -> Option<Value> {
    objects::parse(path, text)
        .ok()?
        .into_iter()
        .find(|o| objects::kind(o) == w.kind && objects::name(o) == w.name)
}

/// The container's mapping in a workload's document.
fn container<'v>(doc: &'v Value, name: &str) -> Option<&'v Value> {
    objects::pod_spec(doc)["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"].as_str() == Some(name))
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(8)]
}

/// The last deploy of the manifest (the newest version that changed the pod spec: a commit that
/// only scaled rolled nothing out), when it changed any of `keys` of the container (or, without a
/// container named, of the one container whose `keys` it changed), and what they were before it.
/// `None` when the last deploy did not change them (an older change ran since, so it is not the
/// cause), or the container did not exist before it (there is nothing to go back to).
pub fn find<'r>(
    repo: &'r RepoView,
    w: &WorkloadRef,
    named: Option<&str>,
    keys: &[&str],
) -> Option<Undo<'r>> {
    if keys.contains(&"image") {
        if let Some(undo) = image_tag_in_values(repo, named) {
            return undo;
        }
        if let Some(undo) = image_tag_in_layers(repo, w, named) {
            return undo;
        }
    }
    let (i, after, prior) = last_deploy(repo, w)?;
    let names: Vec<String> = match named {
        Some(n) => vec![n.to_owned()],
        None => objects::pod_spec(&after)["containers"]
            .as_array()?
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect(),
    };
    // It changed the failing keys, or it is not the deploy to undo; without a container named,
    // it must point at one.
    let found: Vec<(&String, Vec<Part>)> = names
        .iter()
        .filter_map(|name| {
            let (a, b) = (container(&after, name)?, container(&prior, name)?);
            let changed: Vec<Part> = keys
                .iter()
                .filter(|k| a[**k] != b[**k])
                .map(|k| Part::Key((*k).to_owned()))
                .collect();
            (!changed.is_empty()).then_some((name, changed))
        })
        .collect();
    let [(name, changed)] = found.as_slice() else {
        return None;
    };
    undo(repo, w, i, name, changed)
}

/// The last deploy, when it changed the container's `env` items that `refers` picks (by their
/// JSON as the deploy wrote them): each back to the item of the same name before it. `None` when
/// the deploy did not change such an item, or added it (there is nothing to go back to).
pub fn find_env<'r>(
    repo: &'r RepoView,
    w: &WorkloadRef,
    named: &str,
    refers: impl Fn(&Value) -> bool,
) -> Option<Undo<'r>> {
    let (i, after, prior) = last_deploy(repo, w)?;
    let (a, b) = (container(&after, named)?, container(&prior, named)?);
    let item = |c: &Value, var: &str| {
        c["env"]
            .as_array()
            .and_then(|env| env.iter().find(|e| e["name"].as_str() == Some(var)))
            .cloned()
    };
    let mut changed = Vec::new();
    for e in a["env"].as_array()?.iter().filter(|e| refers(e)) {
        let var = e["name"].as_str()?;
        if item(b, var)? != *e {
            changed.push(Part::Env(var.to_owned()));
        }
    }
    if changed.is_empty() {
        return None;
    }
    undo(repo, w, i, named, &changed)
}

/// The `newTag` a kustomization's `images:` entry gives `name` in one version of it.
fn tag_in(version: &FileVersion, path: &str, name: &str) -> Option<String> {
    Kustomization::read(path, &version.content)?
        .images
        .into_iter()
        .find(|i| i.name == name)?
        .new_tag
}

/// The tag a Helm values file gives at `keys` in one version of it.
fn value_in(version: &FileVersion, keys: &[String]) -> Option<String> {
    squad_gitops::helm::scalar_at(&version.content, keys)
}

/// In a Helm repository, the image tag is the values key the chart's template reads: the undo is
/// the last change of it in the environment's values file that sets it (the first layer whose
/// newest version does). `None` when no values file sets it.
fn image_tag_in_values<'r>(repo: &'r RepoView, named: Option<&str>) -> Option<Option<Undo<'r>>> {
    let (layer, keys) = repo.layers.iter().find_map(|l| {
        let keys = l.image_tag.as_ref()?;
        value_in(l.history.first()?, keys).map(|_| (l, keys))
    })?;
    let h = &layer.history;
    let Some(i) = (0..h.len().saturating_sub(1))
        .find(|&i| value_in(&h[i], keys) != value_in(&h[i + 1], keys))
    else {
        return Some(None);
    };
    let (now, before) = (value_in(&h[i], keys)?, value_in(&h[i + 1], keys));
    Some(Some(Undo {
        deploy: &h[i],
        before: &h[i + 1],
        file: &layer.path,
        current: &h[0].content,
        container: named.unwrap_or_default().to_owned(),
        keys: vec![(Part::Value(keys.clone()), Some(vec![before?]))],
        now: vec![Some(vec![now])],
    }))
}

/// When a layer's `images:` sets the container's tag (the base's tag is then overridden), the
/// undo is that layer's last change of it — `Some(None)` when its last change is older than the
/// base's last deploy (then the tag is not what the deploy broke). `None` when no layer sets it.
fn image_tag_in_layers<'r>(
    repo: &'r RepoView,
    w: &WorkloadRef,
    named: Option<&str>,
) -> Option<Option<Undo<'r>>> {
    let doc = document(&repo.text, &repo.path, w)?;
    let containers = objects::pod_spec(&doc)["containers"].as_array()?;
    let (container, image) = containers
        .iter()
        .filter(|c| named.is_none_or(|n| c["name"].as_str() == Some(n)))
        .find_map(|c| {
            let image = c["image"].as_str()?;
            let name = squad_protocols::image::repository(image);
            let set = repo.layers.iter().find(|l| {
                l.history
                    .first()
                    .is_some_and(|v| tag_in(v, &l.path, name).is_some())
            })?;
            Some((c["name"].as_str()?.to_owned(), (name.to_owned(), set)))
        })?;
    let (name, layer) = image;
    let h = &layer.history;
    let Some(i) = (0..h.len().saturating_sub(1))
        .find(|&i| tag_in(&h[i], &layer.path, &name) != tag_in(&h[i + 1], &layer.path, &name))
    else {
        return Some(None);
    };
    // A base deploy after the tag's change rolled out since: the tag ran with it.
    let base_deploy = last_deploy(repo, w).map(|(k, _, _)| repo.history[k].at);
    if base_deploy.is_some_and(|at| at > h[i].at) {
        return Some(None);
    }
    let (now, before) = (
        tag_in(&h[i], &layer.path, &name)?,
        tag_in(&h[i + 1], &layer.path, &name),
    );
    Some(Some(Undo {
        deploy: &h[i],
        before: &h[i + 1],
        file: &layer.path,
        current: &h[0].content,
        container,
        keys: vec![(Part::Image(name), Some(vec![before?]))],
        now: vec![Some(vec![now])],
    }))
}

/// The parts of the container as they were before the deploy at `i`, and as they are now.
fn undo<'r>(
    repo: &'r RepoView,
    w: &WorkloadRef,
    i: usize,
    name: &str,
    changed: &[Part],
) -> Option<Undo<'r>> {
    let (deploy, before) = (&repo.history[i], &repo.history[i + 1]);
    let target = ContainerTarget {
        kind: &w.kind,
        name: &w.name,
        container: name,
    };
    let lines = |text: &str, part: &Part| match part {
        Part::Key(key) => container_key_lines(text, &target, key).ok(),
        Part::Env(var) => Some(env_lines(text, &target, var)),
        Part::Image(_) | Part::Value(_) | Part::Object { .. } => None,
    };
    let mut restored = Vec::new();
    let mut now = Vec::new();
    for part in changed {
        restored.push((part.clone(), lines(&before.content, part)?));
        now.push(lines(&repo.text, part)?);
    }
    Some(Undo {
        deploy,
        before,
        file: &repo.path,
        current: &repo.text,
        container: name.to_owned(),
        keys: restored,
        now,
    })
}

impl Undo<'_> {
    /// The edits that put the keys back as they were before the deploy.
    pub fn edits(&self, w: &WorkloadRef) -> Vec<Edit> {
        let path = self.file;
        self.keys
            .iter()
            .filter_map(|(part, lines)| {
                Some(match part {
                    Part::Key(key) => Edit::SetContainerKey {
                        path: path.to_owned(),
                        kind: w.kind.clone(),
                        workload: w.name.clone(),
                        container: self.container.clone(),
                        key: key.clone(),
                        lines: lines.clone(),
                    },
                    Part::Env(var) => Edit::ReplaceContainerEnv {
                        path: path.to_owned(),
                        kind: w.kind.clone(),
                        workload: w.name.clone(),
                        container: self.container.clone(),
                        name: var.clone(),
                        item: lines.clone()?,
                    },
                    Part::Image(name) => Edit::SetKustomizeImage {
                        kustomization: path.to_owned(),
                        name: name.clone(),
                        tag: lines.as_ref()?.first()?.clone(),
                    },
                    Part::Value(keys) => Edit::SetValue {
                        path: path.to_owned(),
                        keys: keys.clone(),
                        value: lines.as_ref()?.first()?.clone(),
                    },
                    Part::Object { kind, name, keys } => Edit::SetObjectKey {
                        path: path.to_owned(),
                        kind: kind.clone(),
                        name: name.clone(),
                        keys: keys.clone(),
                        lines: lines.clone(),
                    },
                })
            })
            .collect()
    }

    /// Whether the edits give the file exactly as it was before the deploy: the deploy changed
    /// nothing else in it (and nothing changed it since), so the fix is its whole revert.
    pub fn whole(&self, w: &WorkloadRef) -> bool {
        let files =
            std::collections::BTreeMap::from([(self.file.to_owned(), self.current.to_owned())]);
        match squad_gitops::apply(&self.edits(w), &files) {
            Ok(changed) => changed
                .first()
                .is_some_and(|(_, text)| *text == self.before.content),
            Err(_) => false,
        }
    }

    fn key_names(&self) -> String {
        self.keys
            .iter()
            .map(|(part, _)| part.to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    }

    /// The pull request: the edits, the commit named, what it changed and what is kept, `why`
    /// (the failure these lines cause, in the family's words) and the family's finding.
    pub fn change(&self, w: &WorkloadRef, why: &str, finding: &str) -> Change {
        let whole = self.whole(w);
        let (commit, message) = (
            short(&self.deploy.commit),
            self.deploy.message.lines().next().unwrap_or(""),
        );
        // The object the undo puts back: the workload, or another object's own name.
        let subject = match self.keys.first() {
            Some((Part::Object { name, .. }, _)) => name.as_str(),
            _ => w.name.as_str(),
        };
        let title = if whole {
            format!(
                "revert \"{message}\" ({commit}) in {}: {subject}",
                self.file.rsplit('/').next().unwrap_or(self.file),
            )
        } else {
            let of = if self.container.is_empty() {
                String::new()
            } else {
                format!(" of {}", w.name)
            };
            format!(
                "fix(infra): restore {}{of} from before {commit}",
                self.key_names().replace('`', ""),
            )
        };
        let block = |lines: &Option<Vec<String>>| match lines {
            Some(l) => l.join("\n"),
            None => "# (not set)".to_owned(),
        };
        let mut diff = String::new();
        for ((part, before), now) in self.keys.iter().zip(&self.now) {
            diff.push_str(&format!(
                "{part} now:\n```yaml\n{}\n```\nrestored to:\n```yaml\n{}\n```\n",
                block(now),
                block(before)
            ));
        }
        let scope = if whole {
            format!(
                "That commit changed nothing else in `{}`: this PR reverts its change to that file (`git revert {commit} -- <file>`; its changes to other files, if any, stay).",
                self.file
            )
        } else {
            format!(
                "Only these lines are reverted: the rest of that commit's change to `{}`, and what changed since, stay as they are.",
                self.file
            )
        };
        let notes = format!(
            "### Undo the deploy that broke it\n{why}. Commit `{commit}` ({message}, {}) changed {}{}; the version before it (`{}`, {}) is the last that ran.\n\n{diff}\n{scope}\n",
            self.deploy.at.to_rfc3339(),
            self.key_names(),
            if self.container.is_empty() {
                String::new()
            } else {
                format!(" of container `{}`", self.container)
            },
            short(&self.before.commit),
            self.before.message.lines().next().unwrap_or(""),
        );
        Change {
            branch_word: if whole {
                "revert".into()
            } else {
                "restore".into()
            },
            title,
            edits: self.edits(w),
            notes,
            findings: vec![Finding {
                severity: Severity::High,
                title: finding.to_owned(),
                detail: format!("introduced by commit {commit} ({message})"),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing;

    const V1: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: web:1.0 # pinned\n          args: [\"--port=80\"]\n        - name: proxy\n          image: envoy:1\n";

    fn version(commit: &str, content: &str) -> FileVersion {
        FileVersion {
            commit: commit.into(),
            at: testing::now(),
            message: format!("deploy {commit}"),
            content: content.into(),
        }
    }

    fn workload() -> WorkloadRef {
        WorkloadRef {
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "web".into(),
        }
    }

    /// The versions, newest first, the newest being the repository's text.
    fn repo(versions: &[(&str, &str)]) -> RepoView {
        RepoView {
            path: "web.yaml".into(),
            text: versions[0].1.into(),
            history: versions.iter().map(|(c, t)| version(c, t)).collect(),
            layers: Vec::new(),
            objects: Vec::new(),
        }
    }

    #[test]
    fn the_deploy_that_changed_only_the_key_is_reverted_whole() {
        let v2 = V1.replace("web:1.0", "web:v1.1");
        let r = repo(&[("bbbbbbbbbb", &v2), ("aaaaaaaaaa", V1)]);
        let u = find(&r, &workload(), None, &["image"]).unwrap();
        assert_eq!(u.container, "app");
        assert_eq!(u.deploy.commit, "bbbbbbbbbb");
        assert_eq!(
            u.keys,
            vec![(
                Part::Key("image".into()),
                Some(vec!["image: web:1.0 # pinned".into()])
            )]
        );
        assert!(u.whole(&workload()));
        let c = u.change(&workload(), "the registry has no web:v1.1", "bad tag");
        assert_eq!(
            c.title,
            "revert \"deploy bbbbbbbbbb\" (bbbbbbbb) in web.yaml: web"
        );
        assert!(
            c.notes.contains("git revert bbbbbbbb -- <file>"),
            "{}",
            c.notes
        );
        let files = std::collections::BTreeMap::from([(r.path.clone(), r.text.clone())]);
        let out = squad_gitops::apply(&c.edits, &files).unwrap();
        assert_eq!(out[0].1, V1);
    }

    #[test]
    fn only_the_failing_lines_go_back_when_the_deploy_changed_more() {
        let v2 = V1
            .replace("web:1.0", "web:1.1")
            .replace("[\"--port=80\"]", "[\"--listen=80\"]");
        let v3 = v2.replace("spec:\n  template:", "spec:\n  replicas: 4\n  template:");
        let r = repo(&[("cccccccc", &v3), ("bbbbbbbb", &v2), ("aaaaaaaa", V1)]);
        // The args changed in the last deploy; the scaling commit since and the image the same
        // deploy changed are kept.
        let u = find(&r, &workload(), Some("app"), &["args", "command"]).unwrap();
        assert_eq!(u.deploy.commit, "bbbbbbbb");
        assert_eq!(u.keys.len(), 1, "command did not change: {:?}", u.keys);
        assert!(!u.whole(&workload()));
        let c = u.change(&workload(), "the flag parser rejects --listen", "bad args");
        assert!(
            c.title
                .starts_with("fix(infra): restore args of web from before bbbbbbbb")
        );
        let files = std::collections::BTreeMap::from([(r.path.clone(), r.text.clone())]);
        let out = squad_gitops::apply(&c.edits, &files).unwrap();
        assert_eq!(out[0].1, v3.replace("[\"--listen=80\"]", "[\"--port=80\"]"));
    }

    #[test]
    fn a_key_the_deploy_added_is_removed_and_nothing_to_undo_is_none() {
        let v2 = V1.replace(
            "          args:",
            "          command: [\"/bin/web\"]\n          args:",
        );
        let r = repo(&[("bbbbbbbb", &v2), ("aaaaaaaa", V1)]);
        let u = find(&r, &workload(), None, &["command"]).unwrap();
        assert_eq!(u.keys, vec![(Part::Key("command".into()), None)]);
        assert!(u.whole(&workload()));
        // Nothing in the history changed the probe; a container that did not exist before has
        // nothing to go back to; two containers changed at once point at neither.
        assert!(find(&r, &workload(), None, &["readinessProbe"]).is_none());
        let added = V1.replace("name: proxy", "name: cache");
        let r2 = repo(&[("bbbbbbbb", &added), ("aaaaaaaa", V1)]);
        assert!(find(&r2, &workload(), Some("cache"), &["image"]).is_none());
        let both = V1.replace("web:1.0", "web:2").replace("envoy:1", "envoy:2");
        let r3 = repo(&[("bbbbbbbb", &both), ("aaaaaaaa", V1)]);
        assert!(find(&r3, &workload(), None, &["image"]).is_none());
        assert!(find(&r3, &workload(), Some("proxy"), &["image"]).is_some());
        // A change older than the last deploy ran fine since: not the cause.
        let later = both.replace("--port=80", "--port=81");
        let r4 = repo(&[("cccccccc", &later), ("bbbbbbbb", &both), ("aaaaaaaa", V1)]);
        assert!(find(&r4, &workload(), Some("proxy"), &["image"]).is_none());
        assert!(find(&r4, &workload(), Some("app"), &["args"]).is_some());
    }

    /// A tag an overlay's `images:` sets: its last bump is undone there, not in the base (whose
    /// tag the overlay overrides); a base deploy after the bump means the bump ran.
    #[test]
    fn a_tag_an_overlay_sets_is_undone_in_its_kustomization() {
        let k = |tag: &str| {
            format!("resources:\n  - ../../base\nimages:\n  - name: web\n    newTag: \"{tag}\"\n")
        };
        let mut r = repo(&[("aaaaaaaa", V1)]);
        let layer = |versions: &[(&str, &str)]| crate::Layer {
            path: "overlays/prod/kustomization.yaml".into(),
            history: versions.iter().map(|(c, t)| version(c, &k(t))).collect(),
            image_tag: None,
        };
        r.layers = vec![layer(&[("cccccccc", "1.2"), ("bbbbbbbb", "1.1")])];
        let u = find(&r, &workload(), Some("app"), &["image"]).unwrap();
        assert_eq!(u.file, "overlays/prod/kustomization.yaml");
        assert_eq!(
            u.keys,
            vec![(Part::Image("web".into()), Some(vec!["1.1".into()]))]
        );
        let c = u.change(&workload(), "the registry has no web:1.2", "bad tag");
        assert_eq!(
            c.edits,
            vec![Edit::SetKustomizeImage {
                kustomization: "overlays/prod/kustomization.yaml".into(),
                name: "web".into(),
                tag: "1.1".into(),
            }]
        );
        assert!(
            c.title
                .starts_with("revert \"deploy cccccccc\" (cccccccc) in kustomization.yaml")
        );
        // The sidecar's image is the base's: no layer sets it.
        assert!(find(&r, &workload(), Some("proxy"), &["image"]).is_none());
        // A base deploy after the bump: the bump ran with it, not what broke.
        let mut later = version(
            "dddddddd",
            &V1.replace("args:", "workingDir: /srv\n          args:"),
        );
        later.at = testing::now() + chrono::Duration::hours(1);
        r.history.insert(0, later);
        r.text = r.history[0].content.clone();
        assert!(find(&r, &workload(), Some("app"), &["image"]).is_none());
    }
}
