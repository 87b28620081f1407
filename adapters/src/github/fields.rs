//! Reading GitHub's JSON answers: the fields squad needs, each missing one named.

use serde_json::Value;
use squad_runtime::ports::{PortError, PortResult};

/// The string at `path` of GitHub's `what`.
pub(super) fn field_str(v: &Value, path: &[&str], what: &str) -> PortResult<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p).unwrap_or(&Value::Null);
    }
    cur.as_str().map(str::to_string).ok_or_else(|| {
        PortError::failed(
            format!("GitHub's {what}"),
            format!("has no `{}`", path.join(".")),
        )
    })
}

/// The number `key` of GitHub's `what`.
pub(super) fn field_u64(v: &Value, key: &str, what: &str) -> PortResult<u64> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| PortError::failed(format!("GitHub's {what}"), format!("has no `{key}`")))
}

/// GitHub's base64 (standard alphabet, wrapped at 60 columns).
/// A pull request's state from its JSON: merged (`merged`, or a `merged_at`), closed, or open.
pub(super) fn pr_state_of(pr: &Value) -> squad_protocols::PrState {
    use squad_protocols::PrState;
    let merged = pr.get("merged").and_then(Value::as_bool).unwrap_or(false)
        || pr.get("merged_at").is_some_and(|m| !m.is_null());
    match (merged, pr.get("state").and_then(Value::as_str)) {
        (true, _) => PrState::Merged,
        (false, Some("closed")) => PrState::Closed,
        _ => PrState::Open,
    }
}

pub(super) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}
