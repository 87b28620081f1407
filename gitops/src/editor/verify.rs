//! The `serde_yaml` check behind every edit: the edited file must parse, and each document must
//! equal the original one except for the intended change to the target container. This catches
//! what a line-based edit cannot see, such as an edited anchor that is used elsewhere.

use serde_yaml::{Mapping, Value};

use super::locate::Located;
use super::{ContainerTarget, ManifestError};

pub(super) fn parse_documents(yaml: &str) -> Result<Vec<Value>, serde_yaml::Error> {
    crate::yaml::documents(yaml)
}

pub(super) fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn value_identity(doc: &Value) -> Option<(String, String)> {
    let kind = scalar_string(doc.get("kind")?)?;
    let name = scalar_string(doc.get("metadata")?.get("name")?)?;
    Some((kind, name))
}

pub(super) fn ensure_mapping<'v>(
    map: &'v mut Mapping,
    key: &str,
) -> Result<&'v mut Mapping, String> {
    let slot = map.entry(Value::from(key)).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Mapping(Mapping::new());
    }
    slot.as_mapping_mut()
        .ok_or_else(|| format!("`{key}` is not a mapping"))
}

pub(super) fn container_mapping<'v>(
    doc: &'v mut Value,
    keys: &[&str],
    container: &str,
) -> Result<&'v mut Mapping, String> {
    let mut current = doc;
    for key in keys {
        current = current
            .get_mut(*key)
            .ok_or_else(|| format!("`{key}` is missing"))?;
    }
    current
        .as_sequence_mut()
        .ok_or_else(|| "the containers field is not a list".to_string())?
        .iter_mut()
        .find(|item| item.get("name").and_then(scalar_string).as_deref() == Some(container))
        .and_then(Value::as_mapping_mut)
        .ok_or_else(|| format!("container `{container}` is missing"))
}

/// Checks that `edited` parses and equals `original` except for `change` applied to the target
/// container. Skipped if `original` itself is not valid YAML.
pub(super) fn verify(
    original: &str,
    edited: &str,
    target: &ContainerTarget,
    loc: &Located,
    path: &str,
    change: impl FnOnce(&mut Mapping) -> Result<(), String>,
) -> Result<(), ManifestError> {
    let failure = |detail: String| ManifestError::Verification {
        document: loc.document.clone(),
        path: path.to_string(),
        detail,
    };
    let Ok(before) = parse_documents(original) else {
        return Ok(());
    };
    let after = parse_documents(edited)
        .map_err(|err| failure(format!("the edited file is not valid YAML: {err}")))?;
    if before.len() != after.len() {
        return Err(failure(format!(
            "the file had {} documents, the edited file has {}",
            before.len(),
            after.len()
        )));
    }
    let targets: Vec<usize> = before
        .iter()
        .enumerate()
        .filter(|(_, doc)| {
            value_identity(doc)
                .is_some_and(|(kind, name)| kind == target.kind && name == target.name)
        })
        .map(|(index, _)| index)
        .collect();
    let &[index] = targets.as_slice() else {
        return Err(failure(format!(
            "a YAML parser finds {} documents with this kind and name, expected 1",
            targets.len()
        )));
    };
    let mut expected = before.get(index).cloned().unwrap_or(Value::Null);
    let container =
        container_mapping(&mut expected, loc.containers_keys, &loc.container).map_err(&failure)?;
    change(container).map_err(&failure)?;
    for (position, (old, new)) in before.iter().zip(&after).enumerate() {
        let wanted = if position == index { &expected } else { old };
        if wanted != new {
            return Err(failure(format!(
                "document {} of the file differs from the original by more than the intended change \
                 (is the edited node an anchor used elsewhere, or is a key duplicated?)",
                position + 1
            )));
        }
    }
    Ok(())
}
