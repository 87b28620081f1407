//! The `labelSelector` and `fieldSelector` query parameters of a list request: which objects a
//! list holds. Field selectors read any dotted path (`involvedObject.name`, `spec.nodeName`),
//! which is how clients ask for one object's Events.

use serde_json::Value;

use super::param;

/// The value at a dotted field path (`involvedObject.name`, `metadata.namespace`, `spec.nodeName`).
pub(super) fn field<'a>(o: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(o, |v, k| &v[k])
}

/// A JSON value as kubectl prints it: strings bare, nothing for null.
pub(super) fn value_str(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether an object matches the request's `labelSelector` and `fieldSelector`.
pub(super) fn selected(o: &Value, q: &[(String, String)]) -> Result<bool, String> {
    if let Some(sel) = param(q, "fieldSelector").filter(|s| !s.is_empty()) {
        for term in sel.split(',') {
            let (key, want, negate) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, true)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, v, false)
            } else {
                return Err(format!(
                    "invalid field selector: {term:?}: expected key=value"
                ));
            };
            let have = value_str(field(o, key.trim()));
            if (have == want.trim()) == negate {
                return Ok(false);
            }
        }
    }
    if let Some(sel) = param(q, "labelSelector").filter(|s| !s.is_empty()) {
        let labels = &o["metadata"]["labels"];
        for term in split_label_terms(sel) {
            let term = term.trim();
            let ok = if let Some((k, rest)) = term.split_once(" notin ") {
                let set = parse_set(rest)?;
                !set.contains(&value_str(&labels[k.trim()]))
            } else if let Some((k, rest)) = term.split_once(" in ") {
                let set = parse_set(rest)?;
                labels[k.trim()]
                    .as_str()
                    .is_some_and(|v| set.iter().any(|s| s == v))
            } else if let Some((k, v)) = term.split_once("!=") {
                labels[k.trim()].as_str() != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==") {
                labels[k.trim()].as_str() == Some(v.trim())
            } else if let Some((k, v)) = term.split_once('=') {
                labels[k.trim()].as_str() == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                labels[k.trim()].is_null()
            } else {
                !labels[term].is_null()
            };
            if !ok {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Splits a label selector on the commas that are not inside a `(...)` set.
fn split_label_terms(sel: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in sel.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&sel[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&sel[start..]);
    out
}

fn parse_set(s: &str) -> Result<Vec<String>, String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("invalid label selector set {s:?}: expected (a,b,...)"))?;
    Ok(inner.split(',').map(|v| v.trim().to_owned()).collect())
}
