//! Whole keys: one key of a container set to another version's lines (or removed), and one key of
//! a one-document file such as a Helm values file set to a scalar — each rewriting only its lines
//! and checked with `serde_yaml` to change nothing else.

use serde_yaml::Value;

use super::source::{self, Edit, Shape, Source, block_col, find, indent};
use super::syntax::{Style, ValueKind, render_scalar};
use super::verify::verify;
use super::{ContainerTarget, ManifestError};

/// The lines of one key of the container as the manifest writes them — the key's line from the
/// key on, then its block (comments inside it included), dedented to the key's column — or `None`
/// when the container does not set the key. What [`set_container_key`] writes back, into this
/// version of the manifest or another.
pub fn container_key_lines(
    yaml: &str,
    target: &ContainerTarget,
    key: &str,
) -> Result<Option<Vec<String>>, ManifestError> {
    check_container_key(key)?;
    let src = Source::parse(yaml);
    let loc = src.locate(target)?;
    let entries = src.map_entries(&loc.item, &loc.document, &loc.path)?;
    let Some(entry) = find(&entries, key) else {
        return Ok(None);
    };
    Ok(Some(entry_lines(&src, entry)))
}

/// A key's lines from the key on, its block dedented to the key's column (comments and
/// block-scalar text included).
pub(super) fn entry_lines(src: &Source, entry: &source::Entry) -> Vec<String> {
    let last = key_end(src, entry);
    let mut out = vec![src.text(entry.cl).to_string()];
    for line in entry.cl.line + 1..=last {
        let text = src.line_text(line);
        let spaces = text.len() - text.trim_start().len();
        out.push(if spaces >= entry.cl.col {
            text[entry.cl.col..].to_string()
        } else {
            text.trim_start().to_string()
        });
    }
    out
}

/// Sets one key of the container (`image`, `command`, `args`, `readinessProbe`, `ports`, …) to
/// what `lines` write — the key's lines as [`container_key_lines`] reads them, `key:` first —
/// replacing exactly the key's lines where it is, or adding it at the end of the container; `None`
/// removes the key and its block. Every other line stays as it was, and the result is checked to
/// differ from the original in that key of that container only.
pub fn set_container_key(
    yaml: &str,
    target: &ContainerTarget,
    key: &str,
    lines: Option<&[String]>,
) -> Result<String, ManifestError> {
    check_container_key(key)?;
    let value = lines.map(|l| key_value(key, l)).transpose()?;
    let src = Source::parse(yaml);
    let loc = src.locate(target)?;
    let doc = loc.document.as_str();
    let entries = src.map_entries(&loc.item, doc, &loc.path)?;
    let key_path = format!("{}.{key}", loc.path);
    let Some(edit) = set_entry(
        &src,
        &loc.item,
        &entries,
        key,
        lines,
        &loc.document,
        &key_path,
    )?
    else {
        return Ok(yaml.to_string());
    };
    let edited = src.apply(&edit);
    verify(yaml, &edited, target, &loc, &key_path, |container| {
        match value {
            Some(v) => {
                container.insert(Value::from(key), v);
            }
            None => {
                container.remove(Value::from(key));
            }
        }
        Ok(())
    })?;
    Ok(edited)
}

/// The line edit that sets `key` of the block mapping `block` (its `entries`) to what `lines`
/// write, adding it at the end of the block, or removes it (`None`); `None` when there is nothing
/// to do (removing a key the block does not have).
pub(super) fn set_entry(
    src: &Source,
    block: &[source::Cl],
    entries: &[source::Entry],
    key: &str,
    lines: Option<&[String]>,
    document: &str,
    key_path: &str,
) -> Result<Option<Edit>, ManifestError> {
    let nl = src.newline();
    let mut edit = Edit::default();
    match (find(entries, key), lines) {
        (None, None) => return Ok(None),
        (None, Some(lines)) => {
            let col = block_col(block);
            edit.insert_after(
                src.end_of(block),
                lines
                    .iter()
                    .map(|l| {
                        if l.is_empty() {
                            String::new()
                        } else {
                            indent(col, l)
                        }
                    })
                    .collect(),
            );
        }
        (Some(entry), lines) => {
            let line = src.line_text(entry.cl.line);
            // What precedes the key on its line: indentation, or `- ` when the key opens a list
            // item (then the key cannot go without its item's other keys moving up).
            let prefix = line.get(..entry.cl.col).unwrap_or("");
            let last = key_end(src, entry);
            edit.remove.extend(entry.cl.line + 1..=last);
            match lines {
                Some(lines) => {
                    let mut text = format!("{prefix}{}", lines.first().map_or("", String::as_str));
                    for l in lines.iter().skip(1) {
                        text.push_str(nl);
                        if !l.is_empty() {
                            text.push_str(&indent(entry.cl.col, l));
                        }
                    }
                    edit.replace.push((entry.cl.line, text));
                }
                None if prefix.trim().is_empty() => edit.remove.push(entry.cl.line),
                None => {
                    return Err(ManifestError::Unsupported {
                        document: document.to_owned(),
                        path: key_path.to_owned(),
                        line: entry.cl.line + 1,
                        construct: "a key on its list item's first line".into(),
                        text: line.trim().to_string(),
                    });
                }
            }
        }
    }
    Ok(Some(edit))
}

/// The last line of a key's block: its children, or block-scalar text that belongs to it.
pub(super) fn key_end(src: &Source, entry: &source::Entry) -> usize {
    if entry.children.is_empty() {
        src.end_of(&[entry.cl])
    } else {
        src.end_of(entry.children)
    }
}

/// A container key the editor sets whole: a plain name, not `name` (which finds the container).
fn check_container_key(key: &str) -> Result<(), ManifestError> {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric());
    if plain && key != "name" {
        Ok(())
    } else {
        Err(ManifestError::InvalidArgument {
            argument: "container key",
            expected: "a container field such as `image`, `args` or `readinessProbe` (not `name`)"
                .into(),
            got: key.to_string(),
        })
    }
}

/// The value `lines` give `key`: they must be one YAML mapping of that key alone.
pub(super) fn key_value(key: &str, lines: &[String]) -> Result<Value, ManifestError> {
    let invalid = |got: String| ManifestError::InvalidArgument {
        argument: "key lines",
        expected: format!("the YAML of `{key}` alone, `{key}:` on the first line"),
        got,
    };
    // Ended by a newline, as in the file: a block scalar's clipped text keeps its last one.
    let text = lines.join("\n") + "\n";
    let parsed: Value =
        crate::yaml::from_str(&text).map_err(|e| invalid(format!("{text} ({e})")))?;
    match parsed.as_mapping() {
        Some(m) if m.len() == 1 => m.get(key).cloned().ok_or_else(|| invalid(text.clone())),
        _ => Err(invalid(text)),
    }
}

/// Sets the scalar at `keys` (from the root of a one-document file such as a Helm values file)
/// to `value`, creating the missing mappings on the way with the file's indentation; the
/// replaced value keeps its quoting and trailing comment. `true` and `false` are written as
/// booleans, anything else as text (quoted when YAML would read it otherwise). Checked to change
/// that key only.
pub fn set_value(yaml: &str, keys: &[&str], value: &str) -> Result<String, ManifestError> {
    let path = keys.join(".");
    let invalid = |expected: &str| ManifestError::InvalidArgument {
        argument: "values key",
        expected: expected.to_string(),
        got: path.clone(),
    };
    if keys.is_empty() || keys.iter().any(|k| k.is_empty()) {
        return Err(invalid("a dotted path of non-empty keys"));
    }
    let src = Source::parse(yaml);
    let doc = "values";
    let all: Vec<source::Cl> = src
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.kind == source::LineKind::Content)
        .map(|(line, l)| source::Cl {
            line,
            col: l.indent,
        })
        .collect();
    let step = 2;
    let mut edit = Edit::default();
    let mut block: &[source::Cl] = &all;
    let mut walked = String::new();
    let mut written = scalar(value);
    for (depth, key) in keys.iter().enumerate() {
        let last = depth + 1 == keys.len();
        let entries = if block.is_empty() {
            Vec::new()
        } else {
            src.map_entries(block, doc, if walked.is_empty() { "." } else { &walked })?
        };
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(key);
        match find(&entries, key) {
            Some(entry) if last && boolean(value) && entry.value.kind == ValueKind::Plain => {
                let line = src.line_text(entry.cl.line);
                let (start, end) = (entry.value.start, entry.value.end);
                edit.replace.push((
                    entry.cl.line,
                    format!("{}{value}{}", &line[..start], &line[end..]),
                ));
                written = value.to_string();
                break;
            }
            Some(entry) if last => {
                let (line, expected) = src.replace_scalar(entry, value, doc, &walked)?;
                edit.replace.push((entry.cl.line, line));
                written = expected;
                break;
            }
            Some(entry) => match src.open_block(entry, Shape::Mapping, doc, &walked, &mut edit)? {
                Some(children) => block = children,
                None => {
                    let lines = nested(&keys[depth + 1..], entry.cl.col + step, step, value);
                    edit.insert_after(entry.cl.line, lines);
                    break;
                }
            },
            None => {
                let col = if block.is_empty() {
                    0
                } else {
                    block_col(block)
                };
                let lines = nested(&keys[depth..], col, step, value);
                let after = if block.is_empty() {
                    src.lines.len().saturating_sub(1)
                } else {
                    src.end_of(block)
                };
                edit.insert_after(after, lines);
                break;
            }
        }
    }
    let mut edited = src.apply(&edit);
    if yaml.trim().is_empty() {
        edited = format!("{}\n", nested(keys, 0, step, value).join("\n"));
    }
    let before: Value = crate::yaml::from_str(yaml).unwrap_or(Value::Null);
    let after: Value = crate::yaml::from_str(&edited).map_err(|e| ManifestError::Verification {
        document: doc.into(),
        path: path.clone(),
        detail: format!("the edited file is not valid YAML: {e}"),
    })?;
    let mut expected = if before.is_null() {
        Value::Mapping(Default::default())
    } else {
        before
    };
    let new: Value = crate::yaml::from_str(&written).unwrap_or(Value::from(value));
    let mut at = &mut expected;
    for key in &keys[..keys.len() - 1] {
        let map = at
            .as_mapping_mut()
            .ok_or_else(|| invalid("a path through mappings"))?;
        at = map
            .entry(Value::from(*key))
            .or_insert_with(|| Value::Mapping(Default::default()));
    }
    at.as_mapping_mut()
        .ok_or_else(|| invalid("a path through mappings"))?
        .insert(Value::from(keys[keys.len() - 1]), new);
    if after != expected {
        return Err(ManifestError::Verification {
            document: doc.into(),
            path,
            detail: "the edited file differs from the original by more than that key".into(),
        });
    }
    Ok(edited)
}

fn boolean(value: &str) -> bool {
    value == "true" || value == "false"
}

/// A value as [`set_value`] writes it.
fn scalar(value: &str) -> String {
    if boolean(value) {
        value.to_string()
    } else {
        render_scalar(value, Style::Plain)
    }
}

/// `keys` as nested block mappings from column `col`, the last holding `value`.
fn nested(keys: &[&str], col: usize, step: usize, value: &str) -> Vec<String> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            if i + 1 == keys.len() {
                indent(col + i * step, &format!("{k}: {}", scalar(value)))
            } else {
                indent(col + i * step, &format!("{k}:"))
            }
        })
        .collect()
}
