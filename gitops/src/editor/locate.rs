//! Finding the container a [`ContainerTarget`] names: the document by `kind` and
//! `metadata.name`, then the path to its pod spec's `containers` list (which depends on the
//! workload kind), then the list item by `name`. Also measures the document's own indentation
//! style, so that inserted lines look like their neighbours.

use std::collections::BTreeMap;

use super::source::{Cl, Edit, Entry, LineKind, Shape, Source, find};
use super::syntax::{ValueKind, analyze_value, is_dash, skip_dashes, split_key};
use super::{ContainerTarget, ManifestError};

/// The container found by [`Source::locate`].
pub(super) struct Located {
    /// `Kind/name`, for messages.
    pub(super) document: String,
    /// e.g. `spec.template.spec.containers[name=app]`.
    pub(super) path: String,
    /// Keys from the document root to the containers list.
    pub(super) containers_keys: &'static [&'static str],
    pub(super) container: String,
    /// Lines of the container's mapping (first one starts after the `- `).
    pub(super) item: Vec<Cl>,
    /// All content lines of the document.
    pub(super) doc: Vec<Cl>,
}

impl Located {
    /// Indentation step of nested mappings: the container's own style, else the document's, else 2.
    pub(super) fn mapping_step(&self, src: &Source) -> usize {
        src.indent_stats(&self.item)
            .0
            .or_else(|| src.indent_stats(&self.doc).0)
            .unwrap_or(2)
    }

    /// Column of `- ` relative to the parent key of a block sequence (0 for `key:\n- item`).
    pub(super) fn seq_offset(&self, src: &Source) -> usize {
        src.indent_stats(&self.item)
            .1
            .or_else(|| src.indent_stats(&self.doc).1)
            .unwrap_or(2)
    }
}

impl Source<'_> {
    /// Content lines of each document.
    pub(super) fn documents(&self) -> Vec<Vec<Cl>> {
        let mut docs = Vec::new();
        let mut current = Vec::new();
        for (index, line) in self.lines.iter().enumerate() {
            match line.kind {
                LineKind::Marker => {
                    if !current.is_empty() {
                        docs.push(std::mem::take(&mut current));
                    }
                }
                LineKind::Content => current.push(Cl {
                    line: index,
                    col: line.indent,
                }),
                LineKind::Blank | LineKind::Comment | LineKind::Opaque => {}
            }
        }
        if !current.is_empty() {
            docs.push(current);
        }
        docs
    }

    fn scalar_of(&self, entry: &Entry) -> Option<String> {
        self.read_scalar(entry, "", "").ok().flatten()
    }

    /// `(kind, metadata.name)` of a document, if it is a mapping that has both.
    pub(super) fn doc_identity(&self, doc: &[Cl]) -> Option<(String, String)> {
        let entries = self.map_entries(doc, "", "").ok()?;
        let kind = self.scalar_of(find(&entries, "kind")?)?;
        let metadata = find(&entries, "metadata")?;
        if metadata.value.kind != ValueKind::Empty || metadata.children.is_empty() {
            return None;
        }
        let meta_entries = self.map_entries(metadata.children, "", "").ok()?;
        let name = self.scalar_of(find(&meta_entries, "name")?)?;
        Some((kind, name))
    }

    /// Finds the document and the container item.
    pub(super) fn locate(&self, target: &ContainerTarget) -> Result<Located, ManifestError> {
        let containers_keys = containers_keys(target.kind)?;
        let document = target.document_label();
        let mut matches = Vec::new();
        let mut available = Vec::new();
        for doc in self.documents() {
            match self.doc_identity(&doc) {
                Some((kind, name)) if kind == target.kind && name == target.name => {
                    matches.push(doc);
                }
                Some((kind, name)) => available.push(format!("{kind}/{name}")),
                None => {}
            }
        }
        if matches.len() > 1 {
            return Err(ManifestError::AmbiguousDocument {
                kind: target.kind.to_string(),
                name: target.name.to_string(),
                count: matches.len(),
            });
        }
        let Some(doc) = matches.pop() else {
            return Err(ManifestError::DocumentNotFound {
                kind: target.kind.to_string(),
                name: target.name.to_string(),
                available,
            });
        };

        let containers_path = containers_keys.join(".");
        let container_missing = |available: Vec<String>| ManifestError::ContainerNotFound {
            document: document.clone(),
            path: containers_path.clone(),
            container: target.container.to_string(),
            available,
        };
        let mut block: &[Cl] = &doc;
        let mut path = String::new();
        let mut scratch = Edit::default();
        for (depth, key) in containers_keys.iter().enumerate() {
            let is_last = depth + 1 == containers_keys.len();
            let entries =
                self.map_entries(block, &document, if path.is_empty() { "." } else { &path })?;
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            let Some(entry) = find(&entries, key) else {
                return Err(ManifestError::PathNotFound {
                    document: document.clone(),
                    path,
                    expected: if is_last {
                        "a list of containers".to_string()
                    } else {
                        "a mapping".to_string()
                    },
                });
            };
            let shape = if is_last {
                Shape::Sequence
            } else {
                Shape::Mapping
            };
            match self.open_block(entry, shape, &document, &path, &mut scratch)? {
                Some(children) => block = children,
                None if is_last => return Err(container_missing(Vec::new())),
                None => {
                    return Err(ManifestError::PathNotFound {
                        document: document.clone(),
                        path,
                        expected: "a non-empty mapping".to_string(),
                    });
                }
            }
        }

        let mut names = Vec::new();
        for (index, item) in self
            .seq_items(block, &document, &path)?
            .into_iter()
            .enumerate()
        {
            let item_path = format!("{path}[{index}]");
            let entries = self.map_entries(&item, &document, &item_path)?;
            let name = match find(&entries, "name") {
                Some(entry) => self.read_scalar(entry, &document, &format!("{item_path}.name"))?,
                None => None,
            };
            match name {
                Some(name) if name == target.container => {
                    return Ok(Located {
                        path: format!("{path}[name={name}]"),
                        document,
                        containers_keys,
                        container: name,
                        item,
                        doc,
                    });
                }
                Some(name) => names.push(name),
                None => {}
            }
        }
        Err(container_missing(names))
    }

    /// `(mapping step, sequence offset)` most used in `cls`: how far a nested mapping is indented
    /// from its key, and how far the `-` of a nested list is indented from its key.
    fn indent_stats(&self, cls: &[Cl]) -> (Option<usize>, Option<usize>) {
        let mut steps: BTreeMap<usize, usize> = BTreeMap::new();
        let mut offsets: BTreeMap<usize, usize> = BTreeMap::new();
        for pair in cls.windows(2) {
            let [parent, child] = pair else { continue };
            if parent.line == child.line {
                continue;
            }
            let parent_text = self.line_text(parent.line);
            let (key_col, _) = skip_dashes(parent_text, parent.col);
            let Some((_, offset)) = split_key(&parent_text[key_col..]) else {
                continue;
            };
            if analyze_value(parent_text, key_col + offset).kind != ValueKind::Empty {
                continue;
            }
            let child_text = self.text(*child);
            if is_dash(child_text) {
                if child.col >= key_col {
                    *offsets.entry(child.col - key_col).or_default() += 1;
                }
            } else if child.col > key_col && split_key(child_text).is_some() {
                *steps.entry(child.col - key_col).or_default() += 1;
            }
        }
        (mode(&steps), mode(&offsets))
    }
}

fn mode(counts: &BTreeMap<usize, usize>) -> Option<usize> {
    counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(value, _)| *value)
}

/// Keys from the document root to the pod spec's `containers` list, per workload kind.
pub(super) fn containers_keys(kind: &str) -> Result<&'static [&'static str], ManifestError> {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            Ok(&["spec", "template", "spec", "containers"])
        }
        "Pod" => Ok(&["spec", "containers"]),
        "CronJob" => Ok(&[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
        ]),
        _ => Err(ManifestError::InvalidArgument {
            argument: "workload kind",
            expected: "Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, Pod or CronJob"
                .to_string(),
            got: kind.to_string(),
        }),
    }
}
