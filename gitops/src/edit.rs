//! Edits of a GitOps repository as data: a failure family's remedy says what to change, and
//! [`apply`] changes exactly that with the format-preserving [`editor`](crate::editor).

use std::collections::BTreeMap;

use crate::ContainerTarget;
use crate::editor::{self, ManifestError};

/// One edit of the GitOps repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// `resources.<section>.<resource>` of a container of a workload's manifest.
    SetContainerResource {
        path: String,
        /// The workload's kind and name, which find its document in the file.
        kind: String,
        workload: String,
        container: String,
        section: String,
        resource: String,
        value: String,
    },
    /// An `env:` item (its lines, `- name: VAR` first) added to a container.
    AddContainerEnv {
        path: String,
        kind: String,
        workload: String,
        container: String,
        name: String,
        item: Vec<String>,
    },
    /// The container's `env:` item `name` replaced by `item` (its lines, `- name: VAR` first).
    ReplaceContainerEnv {
        path: String,
        kind: String,
        workload: String,
        container: String,
        name: String,
        item: Vec<String>,
    },
    /// One key of a container set to what `lines` write (`key:` first, as
    /// [`editor::container_key_lines`] reads another version), or removed (`None`).
    SetContainerKey {
        path: String,
        kind: String,
        workload: String,
        container: String,
        key: String,
        lines: Option<Vec<String>>,
    },
    /// The key at `keys` (mapping keys from the document's root) of the `kind`/`name` document set
    /// to what `lines` write (`key:` first, as [`editor::object_key_lines`] reads them), or
    /// removed (`None`).
    SetObjectKey {
        path: String,
        kind: String,
        name: String,
        keys: Vec<String>,
        lines: Option<Vec<String>>,
    },
    /// The scalar `value` of the operation at `op_path` in a JSON 6902 patch file.
    SetPatchValue {
        path: String,
        op_path: String,
        value: String,
    },
    /// The `newTag` of a kustomization's `images:` entry named `name`.
    SetKustomizeImage {
        kustomization: String,
        name: String,
        tag: String,
    },
    /// The `count` of a kustomization's `replicas:` entry named `name`.
    SetKustomizeReplicas {
        kustomization: String,
        name: String,
        count: u64,
    },
    /// The scalar at `keys` of a values file (a Helm chart's), created with its parents if missing.
    SetValue {
        path: String,
        keys: Vec<String>,
        value: String,
    },
    /// A new file.
    AddFile { path: String, content: String },
    /// `entry` added to a kustomization's `resources:` right after `after`; skipped when the
    /// repository has no such kustomization or it does not list `after`.
    AddKustomizeResource {
        kustomization: String,
        after: String,
        entry: String,
    },
}

impl Edit {
    /// The file the edit changes.
    pub fn path(&self) -> &str {
        match self {
            Edit::SetContainerResource { path, .. }
            | Edit::AddContainerEnv { path, .. }
            | Edit::SetContainerKey { path, .. }
            | Edit::SetObjectKey { path, .. }
            | Edit::SetPatchValue { path, .. }
            | Edit::ReplaceContainerEnv { path, .. }
            | Edit::SetValue { path, .. }
            | Edit::AddFile { path, .. } => path,
            Edit::AddKustomizeResource { kustomization, .. }
            | Edit::SetKustomizeImage { kustomization, .. }
            | Edit::SetKustomizeReplicas { kustomization, .. } => kustomization,
        }
    }

    /// The same edit of another file (a patch that declares the same container).
    pub fn at(&self, to: &str) -> Edit {
        let mut e = self.clone();
        match &mut e {
            Edit::SetContainerResource { path, .. }
            | Edit::AddContainerEnv { path, .. }
            | Edit::SetContainerKey { path, .. }
            | Edit::SetObjectKey { path, .. }
            | Edit::SetPatchValue { path, .. }
            | Edit::ReplaceContainerEnv { path, .. }
            | Edit::SetValue { path, .. }
            | Edit::AddFile { path, .. } => *path = to.to_owned(),
            Edit::AddKustomizeResource { kustomization, .. }
            | Edit::SetKustomizeImage { kustomization, .. }
            | Edit::SetKustomizeReplicas { kustomization, .. } => *kustomization = to.to_owned(),
        }
        e
    }

    /// Whether the edit needs the file's current text (a new file does not).
    pub fn reads(&self) -> bool {
        !matches!(self, Edit::AddFile { .. })
    }
}

/// Applies `edits` in order to `files` (the current text of each file an edit reads). Returns the
/// files that changed, in the order the edits first touched them: a file whose text ends as it
/// was is left out. An edit of a file `files` does not hold is an error, but for a kustomization,
/// which is optional.
pub fn apply(
    edits: &[Edit],
    files: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, ManifestError> {
    let mut order: Vec<String> = Vec::new();
    let mut now: BTreeMap<String, String> = BTreeMap::new();
    let current = |now: &BTreeMap<String, String>, path: &str| {
        now.get(path).or_else(|| files.get(path)).cloned()
    };
    for edit in edits {
        // An inline patch: edited as the text it is, written back into its kustomization.
        if let Some((file, list, index)) = editor::split_inline(edit.path()) {
            let base = current(&now, file).ok_or_else(|| missing(file))?;
            let patch = editor::inline_patch(&base, list, index).ok_or_else(|| {
                ManifestError::InvalidArgument {
                    argument: "inline patch",
                    expected: format!("a `patch: |` block as item {index} of `{list}:` in {file}"),
                    got: edit.path().to_owned(),
                }
            })?;
            let edited = edit_text(edit, &patch)?;
            let text = editor::set_inline_patch(&base, list, index, &edited)
                .ok_or_else(|| missing(file))?;
            if !order.iter().any(|p| p == file) {
                order.push(file.to_owned());
            }
            now.insert(file.to_owned(), text);
            continue;
        }
        let path = edit.path().to_owned();
        let text = match edit {
            Edit::AddFile { content, .. } => Some(content.clone()),
            Edit::AddKustomizeResource { after, entry, .. } => {
                current(&now, &path).and_then(|k| editor::add_resource(&k, after, entry))
            }
            // A values file the environment does not have yet starts empty.
            Edit::SetValue { .. } => {
                Some(edit_text(edit, &current(&now, &path).unwrap_or_default())?)
            }
            _ => {
                let base = current(&now, &path).ok_or_else(|| missing(&path))?;
                Some(edit_text(edit, &base)?)
            }
        };
        if let Some(text) = text {
            if !order.contains(&path) {
                order.push(path.clone());
            }
            now.insert(path, text);
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|p| {
            let text = now.remove(&p)?;
            (files.get(&p) != Some(&text)).then_some((p, text))
        })
        .collect())
}

/// The text of a file an edit of it gives (an edit that reads the file and must find it).
fn edit_text(edit: &Edit, base: &str) -> Result<String, ManifestError> {
    let target = |kind, name, container| ContainerTarget {
        kind,
        name,
        container,
    };
    match edit {
        Edit::SetContainerResource {
            kind,
            workload,
            container,
            section,
            resource,
            value,
            ..
        } => editor::set_container_resource(
            base,
            &target(kind, workload, container),
            section,
            resource,
            value,
        ),
        Edit::AddContainerEnv {
            kind,
            workload,
            container,
            name,
            item,
            ..
        } => {
            let lines: Vec<&str> = item.iter().map(String::as_str).collect();
            editor::add_container_env(base, &target(kind, workload, container), &lines, name)
        }
        Edit::ReplaceContainerEnv {
            kind,
            workload,
            container,
            name,
            item,
            ..
        } => {
            let lines: Vec<&str> = item.iter().map(String::as_str).collect();
            editor::replace_container_env(base, &target(kind, workload, container), &lines, name)
        }
        Edit::SetContainerKey {
            kind,
            workload,
            container,
            key,
            lines,
            ..
        } => editor::set_container_key(
            base,
            &target(kind, workload, container),
            key,
            lines.as_deref(),
        ),
        Edit::SetObjectKey {
            kind,
            name,
            keys,
            lines,
            ..
        } => {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            editor::set_object_key(base, kind, name, &keys, lines.as_deref())
        }
        Edit::SetPatchValue { op_path, value, .. } => editor::set_patch_value(base, op_path, value),
        Edit::SetKustomizeImage {
            kustomization,
            name,
            tag,
        } => editor::set_image_tag(base, name, tag).ok_or_else(|| ManifestError::InvalidArgument {
            argument: "images entry",
            expected: format!(
                "an `images:` entry named {name} in {kustomization}, its `newTag` on one line"
            ),
            got: name.clone(),
        }),
        Edit::SetKustomizeReplicas {
            kustomization,
            name,
            count,
        } => editor::set_replica_count(base, name, *count).ok_or_else(|| {
            ManifestError::InvalidArgument {
                argument: "replicas entry",
                expected: format!("a `replicas:` entry named {name} in {kustomization}"),
                got: name.clone(),
            }
        }),
        Edit::SetValue { keys, value, .. } => {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            editor::set_value(base, &keys, value)
        }
        Edit::AddFile { content, .. } => Ok(content.clone()),
        Edit::AddKustomizeResource { after, entry, .. } => {
            Ok(editor::add_resource(base, after, entry).unwrap_or_else(|| base.to_owned()))
        }
    }
}

fn missing(path: &str) -> ManifestError {
    ManifestError::InvalidArgument {
        argument: "edit",
        expected: "a file of the repository".into(),
        got: path.into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web # the shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: web:1\n          resources:\n            limits:\n              memory: 512Mi\n";

    fn set(value: &str) -> Edit {
        Edit::SetContainerResource {
            path: "web/deploy.yaml".into(),
            kind: "Deployment".into(),
            workload: "web".into(),
            container: "app".into(),
            section: "limits".into(),
            resource: "memory".into(),
            value: value.into(),
        }
    }

    fn files() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("web/deploy.yaml".to_string(), DEPLOY.to_string()),
            (
                "kustomization.yaml".to_string(),
                "resources:\n  - web/deploy.yaml\n".to_string(),
            ),
        ])
    }

    #[test]
    fn edits_apply_in_order_and_files_come_back_in_first_touch_order() {
        let out = apply(
            &[
                set("1Gi"),
                Edit::AddFile {
                    path: "web/hpa.yaml".into(),
                    content: "kind: HorizontalPodAutoscaler\n".into(),
                },
                Edit::AddKustomizeResource {
                    kustomization: "kustomization.yaml".into(),
                    after: "web/deploy.yaml".into(),
                    entry: "web/hpa.yaml".into(),
                },
            ],
            &files(),
        )
        .unwrap();
        let paths: Vec<&str> = out.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["web/deploy.yaml", "web/hpa.yaml", "kustomization.yaml"]
        );
        assert!(out[0].1.contains("memory: 1Gi") && out[0].1.contains("# the shop"));
        assert_eq!(
            out[2].1,
            "resources:\n  - web/deploy.yaml\n  - web/hpa.yaml\n"
        );
    }

    #[test]
    fn an_edit_that_changes_nothing_leaves_the_file_out() {
        assert!(apply(&[set("512Mi")], &files()).unwrap().is_empty());
    }

    #[test]
    fn a_missing_kustomization_is_skipped_but_a_missing_manifest_is_an_error() {
        let kustomize = Edit::AddKustomizeResource {
            kustomization: "other/kustomization.yaml".into(),
            after: "web/deploy.yaml".into(),
            entry: "web/hpa.yaml".into(),
        };
        assert!(apply(&[kustomize], &files()).unwrap().is_empty());
        let err = apply(&[set("1Gi")], &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("web/deploy.yaml"), "{err}");
    }
}
