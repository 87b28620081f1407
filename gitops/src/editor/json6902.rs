//! A JSON 6902 patch file (a list of `op`, `path`, `value` items, as a kustomization's
//! `patches:` names with a `target`): the `value` of the operation at a path set, that line only.

use serde_yaml::Value;

use super::ManifestError;
use super::source::{Cl, Edit, LineKind, Source, find};
use super::verify::parse_documents;

/// Sets the scalar `value` of the patch's operation whose `path` is `op_path` (its quoting and
/// comment kept), checked with `serde_yaml` to change that value only. An error when no single
/// `add` or `replace` operation has that path.
pub fn set_patch_value(yaml: &str, op_path: &str, value: &str) -> Result<String, ManifestError> {
    let label = "JSON 6902 patch";
    let src = Source::parse(yaml);
    let all: Vec<Cl> = src
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.kind == LineKind::Content)
        .map(|(line, l)| Cl {
            line,
            col: l.indent,
        })
        .collect();
    let missing = || ManifestError::PathNotFound {
        document: label.into(),
        path: op_path.to_owned(),
        expected: "one `add` or `replace` operation with that path and a scalar value".into(),
    };
    let mut found = None;
    for (i, item) in src.seq_items(&all, label, ".")?.into_iter().enumerate() {
        let at = format!("[{i}]");
        let entries = src.map_entries(&item, label, &at)?;
        let scalar = |key: &str| {
            find(&entries, key).and_then(|e| src.read_scalar(e, label, &at).ok().flatten())
        };
        let op = scalar("op").unwrap_or_default();
        if scalar("path").as_deref() == Some(op_path) && matches!(op.as_str(), "add" | "replace") {
            if found.is_some() {
                return Err(missing());
            }
            let entry = find(&entries, "value").ok_or_else(missing)?;
            let (line, _) = src.replace_scalar(entry, value, label, &format!("{at}.value"))?;
            found = Some((i, entry.cl.line, line));
        }
    }
    let (index, line, text) = found.ok_or_else(missing)?;
    let mut edit = Edit::default();
    edit.replace.push((line, text));
    let edited = src.apply(&edit);
    // The check: the same list, but for that operation's value.
    let failure = |detail: String| ManifestError::Verification {
        document: label.into(),
        path: op_path.to_owned(),
        detail,
    };
    if let (Ok(before), Ok(after)) = (parse_documents(yaml), parse_documents(&edited)) {
        let mut expected = before;
        let item = expected
            .first_mut()
            .and_then(|d| d.get_mut(index))
            .ok_or_else(|| failure("the patch is not a list".into()))?;
        let old = item.get("value").cloned().unwrap_or(Value::Null);
        let new: Value = crate::yaml::from_str(value).unwrap_or(Value::from(value));
        // A quoted value stays a string.
        let new = if old.is_string() {
            Value::from(value)
        } else {
            new
        };
        item["value"] = new;
        if expected != after {
            return Err(failure(
                "the edited patch differs from the original by more than that value".into(),
            ));
        }
    } else {
        return Err(failure("the patch is not valid YAML".into()));
    }
    Ok(edited)
}
