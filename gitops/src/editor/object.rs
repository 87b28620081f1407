//! Keys of any object: the block at a path of mapping keys in the document a `kind` and
//! `metadata.name` name (a Service's `spec.ports`, a pod template's `nodeSelector`, a claim's
//! `spec.storageClassName`), read as lines or set whole — the same line-level edit as a
//! container's key, checked with `serde_yaml` to change that key of that document only.

use serde_yaml::Value;

use super::ManifestError;
use super::keys::{entry_lines, key_value, set_entry};
use super::source::{Cl, Edit, Shape, Source, find};
use super::verify::{parse_documents, value_identity};

/// The document of `kind`/`name` in the file, and the block mapping at `parents` in it.
fn block_at<'s>(
    src: &'s Source,
    kind: &str,
    name: &str,
    parents: &[&str],
    docs: &'s [Vec<Cl>],
) -> Result<Option<&'s [Cl]>, ManifestError> {
    let label = format!("{kind}/{name}");
    let mut matches = Vec::new();
    let mut available = Vec::new();
    for doc in docs {
        match src.doc_identity(doc) {
            Some((k, n)) if k == kind && n == name => matches.push(doc),
            Some((k, n)) => available.push(format!("{k}/{n}")),
            None => {}
        }
    }
    if matches.len() > 1 {
        return Err(ManifestError::AmbiguousDocument {
            kind: kind.to_owned(),
            name: name.to_owned(),
            count: matches.len(),
        });
    }
    let Some(doc) = matches.pop() else {
        return Err(ManifestError::DocumentNotFound {
            kind: kind.to_owned(),
            name: name.to_owned(),
            available,
        });
    };
    let mut block: &[Cl] = doc;
    let mut path = String::new();
    let mut scratch = Edit::default();
    for key in parents {
        let entries = src.map_entries(block, &label, if path.is_empty() { "." } else { &path })?;
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        let Some(entry) = find(&entries, key) else {
            return Ok(None);
        };
        match src.open_block(entry, Shape::Mapping, &label, &path, &mut scratch)? {
            Some(children) => block = children,
            None => return Ok(None),
        }
    }
    Ok(Some(block))
}

fn check_keys(keys: &[&str]) -> Result<(), ManifestError> {
    if keys.is_empty() || keys.iter().any(|k| k.is_empty() || k.contains(['.', ' '])) {
        return Err(ManifestError::InvalidArgument {
            argument: "object key path",
            expected:
                "one or more mapping keys, such as `spec`, `template`, `spec`, `nodeSelector`"
                    .into(),
            got: keys.join("."),
        });
    }
    Ok(())
}

/// The lines of the key at `keys` of the `kind`/`name` document — the key's line from the key on,
/// then its block (comments inside it included), dedented to the key's column — or `None` when
/// the document does not set it.
pub fn object_key_lines(
    yaml: &str,
    kind: &str,
    name: &str,
    keys: &[&str],
) -> Result<Option<Vec<String>>, ManifestError> {
    check_keys(keys)?;
    let src = Source::parse(yaml);
    let docs = src.documents();
    let (last, parents) = keys.split_last().unwrap_or((&"", &[]));
    let Some(block) = block_at(&src, kind, name, parents, &docs)? else {
        return Ok(None);
    };
    let entries = src.map_entries(block, &format!("{kind}/{name}"), &parents.join("."))?;
    let Some(entry) = find(&entries, last) else {
        return Ok(None);
    };
    Ok(Some(entry_lines(&src, entry)))
}

/// Sets the key at `keys` of the `kind`/`name` document to what `lines` write (`key:` first, as
/// [`object_key_lines`] reads them), replacing exactly its lines, or adding it at the end of its
/// parent mapping (which must exist); `None` removes it. Every other line stays as it was, and the
/// result is checked to differ from the original in that key of that document only.
pub fn set_object_key(
    yaml: &str,
    kind: &str,
    name: &str,
    keys: &[&str],
    lines: Option<&[String]>,
) -> Result<String, ManifestError> {
    check_keys(keys)?;
    let (last, parents) = keys.split_last().unwrap_or((&"", &[]));
    let value = lines.map(|l| key_value(last, l)).transpose()?;
    let src = Source::parse(yaml);
    let docs = src.documents();
    let label = format!("{kind}/{name}");
    let key_path = keys.join(".");
    let block =
        block_at(&src, kind, name, parents, &docs)?.ok_or_else(|| ManifestError::PathNotFound {
            document: label.clone(),
            path: parents.join("."),
            expected: "a non-empty mapping".into(),
        })?;
    let entries = src.map_entries(block, &label, &parents.join("."))?;
    let Some(edit) = set_entry(&src, block, &entries, last, lines, &label, &key_path)? else {
        return Ok(yaml.to_string());
    };
    let edited = src.apply(&edit);
    check(yaml, &edited, (kind, name), keys, value, &label)?;
    Ok(edited)
}

/// `edited` parses and equals `original` but for the key at `keys` of the one `kind`/`name`
/// document, now `value` (absent for `None`). Skipped when `original` is not valid YAML.
fn check(
    original: &str,
    edited: &str,
    (kind, name): (&str, &str),
    keys: &[&str],
    value: Option<Value>,
    label: &str,
) -> Result<(), ManifestError> {
    let failure = |detail: String| ManifestError::Verification {
        document: label.to_owned(),
        path: keys.join("."),
        detail,
    };
    let Ok(before) = parse_documents(original) else {
        return Ok(());
    };
    let after = parse_documents(edited)
        .map_err(|e| failure(format!("the edited file is not valid YAML: {e}")))?;
    let mut expected = before.clone();
    let mut targets: Vec<&mut Value> = expected
        .iter_mut()
        .filter(|d| value_identity(d).is_some_and(|(k, n)| k == kind && n == name))
        .collect();
    if targets.len() != 1 {
        return Err(failure(format!(
            "a YAML parser finds {} documents with this kind and name, expected 1",
            targets.len()
        )));
    }
    let Some(doc) = targets.pop() else {
        return Err(failure("no document".into()));
    };
    let (last, parents) = keys.split_last().unwrap_or((&"", &[]));
    let mut at = doc;
    for key in parents {
        at = at
            .get_mut(*key)
            .ok_or_else(|| failure(format!("`{key}` is missing")))?;
    }
    let map = at
        .as_mapping_mut()
        .ok_or_else(|| failure("the parent is not a mapping".into()))?;
    match value {
        Some(v) => {
            map.insert(Value::from(*last), v);
        }
        None => {
            map.remove(Value::from(*last));
        }
    }
    if expected != after {
        return Err(failure(
            "the edited file differs from the original by more than that key".into(),
        ));
    }
    Ok(())
}
