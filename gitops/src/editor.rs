//! Line-based, indentation-aware editing of Kubernetes manifests.
//!
//! B'Elanna edits manifests that live in a GitOps repository, where people review the diff. Parsing
//! the YAML and serialising it again would drop comments, reorder keys and change quoting, so this
//! module never does that: it finds the lines that matter by their indentation and rewrites only
//! those lines (or inserts new ones). Every other byte of the file stays as it was.
//!
//! Supported:
//! - multi-document files (`---` / `...`), comments and blank lines anywhere, `key: value # comment`,
//! - plain, single-quoted and double-quoted scalars (the quoting of a replaced value is kept),
//! - both sequence styles, `key:\n- item` and `key:\n  - item`,
//! - block scalars (`|`, `>`), whose content is never taken for structure,
//! - LF and CRLF line endings, and files with no newline at the end.
//!
//! Flow style (`{...}`, `[...]`) on the edited path is reported as [`ManifestError::Unsupported`].
//! The empty forms `{}` and `[]` (as written by `kubectl create --dry-run -o yaml`) are turned into
//! block style.
//!
//! Every edit is checked with `serde_yaml`: the edited file must parse, and each of its documents
//! must equal the original one except for the intended change. If the original file is not valid
//! YAML, this check is skipped and only the line-based edit is done.
//!
//! The module reads top-down: the public API here, then its parts:
//! - `args`: checks of the caller's arguments (section, resource name, quantity, env item),
//! - `syntax`: line-level YAML syntax (dashes, keys, quoting, comments, value classification),
//! - `source`: the file as lines and the block structure built on them, and how edits are applied,
//! - `locate`: finding the document and the container a [`ContainerTarget`] names,
//! - `verify`: the `serde_yaml` check that an edit changed only what it meant to,
//! - `kustomization`: line edits of a kustomization (`resources:` entries, an `images:` tag),
//! - `keys`: a container key set whole (from another version's lines), a values file's key,
//! - `object`: a key of any object (a Service's ports, a pod template's `nodeSelector`) set whole.

mod args;
mod json6902;
mod keys;
mod kustomization;
mod locate;
mod object;
mod source;
mod syntax;
mod verify;

use serde_yaml::Value;

use args::{EnvItem, check_quantity, check_resource_name, check_section};
pub use json6902::set_patch_value;
pub use keys::{container_key_lines, set_container_key, set_value};
pub use kustomization::{
    add_resource, file_of, inline_patch, inline_path, set_image_tag, set_inline_patch,
    set_replica_count, split_inline,
};
pub use object::{object_key_lines, set_object_key};
use source::{Edit, Shape, Source, block_col, find, indent};
use syntax::{Style, render_scalar};
use verify::{ensure_mapping, verify};

/// Locates a container inside a multi-document YAML file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerTarget<'a> {
    /// Top-level `kind:` of the document (`Deployment`, `StatefulSet`, `DaemonSet`, `Pod`, `CronJob`, ...).
    pub kind: &'a str,
    /// `metadata.name` of the document.
    pub name: &'a str,
    /// `name:` of the container in the pod spec's `containers:` list.
    pub container: &'a str,
}

impl ContainerTarget<'_> {
    fn document_label(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// Why a manifest could not be read or edited. Each variant names the document (`Kind/name`), the
/// path inside it and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// An argument given by the caller is not acceptable.
    #[error("invalid {argument}: expected {expected}, got `{got}`")]
    InvalidArgument {
        argument: &'static str,
        expected: String,
        got: String,
    },
    /// No document has the wanted `kind` and `metadata.name`.
    #[error(
        "no document with kind `{kind}` and metadata.name `{name}`; documents present: {}",
        list_or_none(.available)
    )]
    DocumentNotFound {
        kind: String,
        name: String,
        /// `Kind/name` of the documents that were found.
        available: Vec<String>,
    },
    /// Several documents have the wanted `kind` and `metadata.name` (e.g. in different namespaces).
    #[error(
        "{count} documents have kind `{kind}` and metadata.name `{name}` (different namespaces?); expected exactly one"
    )]
    AmbiguousDocument {
        kind: String,
        name: String,
        count: usize,
    },
    /// A key on the way to the container is missing.
    #[error("{document}: `{path}` not found; expected {expected}")]
    PathNotFound {
        document: String,
        path: String,
        expected: String,
    },
    /// The containers list has no container with the wanted name.
    #[error(
        "{document}: no container named `{container}` in `{path}`; containers present: {}",
        list_or_none(.available)
    )]
    ContainerNotFound {
        document: String,
        path: String,
        container: String,
        available: Vec<String>,
    },
    /// The YAML at `path` has another shape than expected (e.g. a scalar where a mapping belongs).
    #[error("{document}: `{path}` (line {line}): expected {expected}, found {found}")]
    UnexpectedShape {
        document: String,
        path: String,
        /// 1-based line number in the file.
        line: usize,
        expected: String,
        found: String,
    },
    /// The YAML at `path` uses a construct this line-based editor does not edit (flow style, aliases,
    /// multi-line scalars).
    #[error(
        "{document}: `{path}` (line {line}) uses {construct} (`{text}`); only block-style YAML can be edited"
    )]
    Unsupported {
        document: String,
        path: String,
        /// 1-based line number in the file.
        line: usize,
        construct: String,
        text: String,
    },
    /// `add_container_env` was asked to add a variable that the container already declares.
    #[error("{document}: env var `{env_name}` already exists in `{path}`")]
    EnvAlreadyExists {
        document: String,
        path: String,
        env_name: String,
    },
    /// The edited file failed the `serde_yaml` check (it does not parse, or more than the intended
    /// field changed, e.g. because the edited node is an anchor used elsewhere).
    #[error("{document}: edit of `{path}` failed verification: {detail}")]
    Verification {
        document: String,
        path: String,
        detail: String,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items
            .iter()
            .map(|item| format!("`{item}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Sets `resources.<section>.<key>` (section = "limits" | "requests", key = "memory" | "cpu" or another
/// resource name) of the container, creating `resources:`, the section, or the key if missing (with the
/// file's own indentation style). Returns the new file text. Existing value is replaced in place, keeping
/// any trailing comment on that line and the quoting style if it was quoted.
///
/// `value` must be a Kubernetes quantity (`512Mi`, `1Gi`, `250m`, `1.5`, `2`).
pub fn set_container_resource(
    yaml: &str,
    target: &ContainerTarget,
    section: &str,
    key: &str,
    value: &str,
) -> Result<String, ManifestError> {
    check_section(section)?;
    check_resource_name(key)?;
    check_quantity(value)?;

    let src = Source::parse(yaml);
    let loc = src.locate(target)?;
    let step = loc.mapping_step(&src);
    let item_col = block_col(&loc.item);
    let doc = loc.document.as_str();
    let entries = src.map_entries(&loc.item, doc, &loc.path)?;

    let res_path = format!("{}.resources", loc.path);
    let sec_path = format!("{res_path}.{section}");
    let key_path = format!("{sec_path}.{key}");
    let token = render_scalar(value, Style::Plain);
    let section_line = format!("{section}:");
    let key_line = format!("{key}: {token}");

    let mut edit = Edit::default();
    // The YAML text whose value ends up at `resources.<section>.<key>`, for verification.
    let mut written = token.clone();
    match find(&entries, "resources") {
        None => edit.insert_after(
            src.end_of(&loc.item),
            vec![
                indent(item_col, "resources:"),
                indent(item_col + step, &section_line),
                indent(item_col + 2 * step, &key_line),
            ],
        ),
        Some(res) => match src.open_block(res, Shape::Mapping, doc, &res_path, &mut edit)? {
            None => edit.insert_after(
                res.cl.line,
                vec![
                    indent(res.cl.col + step, &section_line),
                    indent(res.cl.col + 2 * step, &key_line),
                ],
            ),
            Some(res_children) => {
                let sec_col = block_col(res_children);
                let inner_step = sec_col.saturating_sub(res.cl.col).max(1);
                let sections = src.map_entries(res_children, doc, &res_path)?;
                match find(&sections, section) {
                    None => edit.insert_after(
                        src.end_of(res_children),
                        vec![
                            indent(sec_col, &section_line),
                            indent(sec_col + inner_step, &key_line),
                        ],
                    ),
                    Some(sec) => {
                        match src.open_block(sec, Shape::Mapping, doc, &sec_path, &mut edit)? {
                            None => edit.insert_after(
                                sec.cl.line,
                                vec![indent(sec.cl.col + inner_step, &key_line)],
                            ),
                            Some(sec_children) => {
                                let keys = src.map_entries(sec_children, doc, &sec_path)?;
                                match find(&keys, key) {
                                    None => edit.insert_after(
                                        src.end_of(sec_children),
                                        vec![indent(block_col(sec_children), &key_line)],
                                    ),
                                    Some(existing) => {
                                        let (line, expected) =
                                            src.replace_scalar(existing, value, doc, &key_path)?;
                                        edit.replace.push((existing.cl.line, line));
                                        written = expected;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    }

    let edited = src.apply(&edit);
    let expected: Value =
        crate::yaml::from_str(&written).map_err(|err| ManifestError::Verification {
            document: loc.document.clone(),
            path: key_path.clone(),
            detail: format!(
                "the written value `{}` is not valid YAML: {err}",
                written.trim()
            ),
        })?;
    verify(yaml, &edited, target, &loc, &key_path, |container| {
        let resources = ensure_mapping(container, "resources")?;
        let sec = ensure_mapping(resources, section)?;
        sec.insert(Value::from(key), expected);
        Ok(())
    })?;
    Ok(edited)
}

/// Reads `resources.<section>.<key>` of the container, if present (quotes removed).
pub fn container_resource(
    yaml: &str,
    target: &ContainerTarget,
    section: &str,
    key: &str,
) -> Result<Option<String>, ManifestError> {
    check_section(section)?;
    check_resource_name(key)?;
    let src = Source::parse(yaml);
    let loc = src.locate(target)?;
    let doc = loc.document.as_str();
    // Read-only: edits recorded by `open_block` (for `{}`) are discarded.
    let mut scratch = Edit::default();
    let entries = src.map_entries(&loc.item, doc, &loc.path)?;
    let res_path = format!("{}.resources", loc.path);
    let Some(res) = find(&entries, "resources") else {
        return Ok(None);
    };
    let Some(res_children) = src.open_block(res, Shape::Mapping, doc, &res_path, &mut scratch)?
    else {
        return Ok(None);
    };
    let sec_path = format!("{res_path}.{section}");
    let sections = src.map_entries(res_children, doc, &res_path)?;
    let Some(sec) = find(&sections, section) else {
        return Ok(None);
    };
    let Some(sec_children) = src.open_block(sec, Shape::Mapping, doc, &sec_path, &mut scratch)?
    else {
        return Ok(None);
    };
    let key_path = format!("{sec_path}.{key}");
    let keys = src.map_entries(sec_children, doc, &sec_path)?;
    let Some(entry) = find(&keys, key) else {
        return Ok(None);
    };
    src.read_scalar(entry, doc, &key_path)
}

/// Adds an env entry to the container's `env:` list (creating `env:` if absent), given as the YAML lines
/// of the list item (e.g. `["- name: DATABASE_URL", "  valueFrom:", "    secretKeyRef:", "      name: orders-db",
/// "      key: url"]`), re-indented to match the list. Error if an env var with that name already exists,
/// or if the item does not declare `name: <env_name>`.
pub fn add_container_env(
    yaml: &str,
    target: &ContainerTarget,
    item_lines: &[&str],
    env_name: &str,
) -> Result<String, ManifestError> {
    if env_name.is_empty() || env_name.chars().any(char::is_whitespace) {
        return Err(ManifestError::InvalidArgument {
            argument: "env_name",
            expected: "a non-empty environment variable name without whitespace".to_string(),
            got: env_name.to_string(),
        });
    }
    let item = EnvItem::parse(item_lines, env_name)?;

    let src = Source::parse(yaml);
    let loc = src.locate(target)?;
    let doc = loc.document.as_str();
    let item_col = block_col(&loc.item);
    let entries = src.map_entries(&loc.item, doc, &loc.path)?;
    let env_path = format!("{}.env", loc.path);
    let seq_offset = loc.seq_offset(&src);

    let mut edit = Edit::default();
    let mut new_lines = Vec::new();
    let (dash_col, after) = match find(&entries, "env") {
        None => {
            new_lines.push(indent(item_col, "env:"));
            (item_col + seq_offset, src.end_of(&loc.item))
        }
        Some(env) => match src.open_block(env, Shape::Sequence, doc, &env_path, &mut edit)? {
            None => (env.cl.col + seq_offset, env.cl.line),
            Some(children) => {
                let names = src.env_names(children, doc, &env_path)?;
                if names.iter().any(|name| name == env_name) {
                    return Err(ManifestError::EnvAlreadyExists {
                        document: loc.document.clone(),
                        path: env_path,
                        env_name: env_name.to_string(),
                    });
                }
                (block_col(children), src.end_of(children))
            }
        },
    };
    new_lines.extend(item.lines.iter().map(|line| {
        if line.is_empty() {
            String::new()
        } else {
            indent(dash_col, line)
        }
    }));
    edit.insert_after(after, new_lines);

    let edited = src.apply(&edit);
    let value = item.value;
    verify(yaml, &edited, target, &loc, &env_path, |container| {
        let env = container.entry(Value::from("env")).or_insert(Value::Null);
        if env.is_null() {
            *env = Value::Sequence(Vec::new());
        }
        env.as_sequence_mut()
            .ok_or_else(|| "`env` is not a sequence".to_string())?
            .push(value);
        Ok(())
    })?;
    Ok(edited)
}

/// Replaces the container's `env:` item named `env_name` with `item_lines` (the YAML lines of
/// one list item, `- name: <env_name>` first, as [`env_item_lines`] reads another version),
/// re-indented to the list; every other line stays. Error if the container has no such item.
pub fn replace_container_env(
    yaml: &str,
    target: &ContainerTarget,
    item_lines: &[&str],
    env_name: &str,
) -> Result<String, ManifestError> {
    let item = EnvItem::parse(item_lines, env_name)?;
    let src = Source::parse(yaml);
    let loc = src.locate(target)?;
    let doc = loc.document.as_str();
    let entries = src.map_entries(&loc.item, doc, &loc.path)?;
    let env_path = format!("{}.env", loc.path);
    let not_found = || ManifestError::PathNotFound {
        document: loc.document.clone(),
        path: format!("{env_path}[name={env_name}]"),
        expected: format!("an env item named {env_name}"),
    };
    let env = find(&entries, "env").ok_or_else(not_found)?;
    let mut edit = Edit::default();
    let children = src
        .open_block(env, Shape::Sequence, doc, &env_path, &mut edit)?
        .ok_or_else(not_found)?;
    let dash_col = block_col(children);
    let mut found = None;
    for (index, lines) in src.seq_items(children, doc, &env_path)?.iter().enumerate() {
        let item_path = format!("{env_path}[{index}]");
        let keys = src.map_entries(lines, doc, &item_path)?;
        let name = match find(&keys, "name") {
            Some(n) => src.read_scalar(n, doc, &format!("{item_path}.name"))?,
            None => None,
        };
        if name.as_deref() == Some(env_name) {
            found = Some((lines[0].line, src.end_of(lines)));
        }
    }
    let (first, last) = found.ok_or_else(not_found)?;
    let nl = src.newline();
    let text = item
        .lines
        .iter()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                indent(dash_col, l)
            }
        })
        .collect::<Vec<_>>()
        .join(nl);
    edit.replace.push((first, text));
    edit.remove.extend(first + 1..=last);
    let edited = src.apply(&edit);
    let value = item.value;
    verify(yaml, &edited, target, &loc, &env_path, |container| {
        let slot = container
            .get_mut("env")
            .and_then(Value::as_sequence_mut)
            .and_then(|env| {
                env.iter_mut().find(|v| {
                    v.get("name").and_then(verify::scalar_string).as_deref() == Some(env_name)
                })
            })
            .ok_or_else(|| format!("no env item {env_name}"))?;
        *slot = value;
        Ok(())
    })?;
    Ok(edited)
}

/// Names of env vars declared in the container's `env:` list (`- name: X`), in file order.
pub fn container_env_names(
    yaml: &str,
    target: &ContainerTarget,
) -> Result<Vec<String>, ManifestError> {
    let src = Source::parse(yaml);
    let loc = src.locate(target)?;
    let doc = loc.document.as_str();
    let entries = src.map_entries(&loc.item, doc, &loc.path)?;
    let env_path = format!("{}.env", loc.path);
    let Some(env) = find(&entries, "env") else {
        return Ok(Vec::new());
    };
    let mut scratch = Edit::default();
    match src.open_block(env, Shape::Sequence, doc, &env_path, &mut scratch)? {
        None => Ok(Vec::new()),
        Some(children) => src.env_names(children, doc, &env_path),
    }
}

/// The lines of one `env:` item (`- name: VAR` and what belongs to it) in a manifest version.
pub fn env_item_lines(yaml: &str, var: &str) -> Option<Vec<String>> {
    let lines: Vec<&str> = yaml.lines().collect();
    let start = lines.iter().position(|l| {
        l.trim_start()
            .strip_prefix("- name:")
            .map(|v| v.trim().trim_matches(['"', '\'']))
            == Some(var)
    })?;
    let dash = lines[start].len() - lines[start].trim_start().len();
    let mut out = vec![lines[start].trim_start().to_owned()];
    for l in &lines[start + 1..] {
        let indent = l.len() - l.trim_start().len();
        if l.trim().is_empty() || indent <= dash {
            break;
        }
        out.push(format!("{}{}", " ".repeat(indent - dash), l.trim_start()));
    }
    Some(out)
}

#[cfg(test)]
mod tests;
