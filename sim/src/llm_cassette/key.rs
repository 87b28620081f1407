//! What makes two requests the same request: the match key (the body in canonical form without
//! the [`IGNORED_FIELDS`], with the [`VOLATILE_NUMBERS`] normalised) and the cassette file name
//! derived from it. The server looks exchanges up by this key and names the files it records by
//! [`file_name`].

use serde_json::Value;

/// Top-level request fields left out of the match key: they vary from run to run, or are
/// bookkeeping, and do not change what the model answers.
pub const IGNORED_FIELDS: &[&str] = &[
    // An end-user id for abuse monitoring; the model never sees it.
    "user",
    // Whether a streamed answer ends with a usage chunk: accounting, not content.
    "stream_options",
    // Tags for stored completions, and whether to store them: the provider's bookkeeping.
    "metadata",
    "store",
];

/// The request without [`IGNORED_FIELDS`], with [`VOLATILE_NUMBERS`] normalised.
pub(super) fn strip_ignored(request: &Value) -> Value {
    let mut request = request.clone();
    if let Value::Object(fields) = &mut request {
        for field in IGNORED_FIELDS {
            fields.remove(*field);
        }
    }
    normalise_numbers(&mut request);
    request
}

/// Issue and pull-request numbers (`#12`) in the text of a request match any number: members
/// file issues in parallel, so which of two gets #3 and which #4 is a race, on GitHub as in the
/// simulation, and it is all a prompt may differ by from one run to the next. Everything else in
/// the text still has to match.
pub const VOLATILE_NUMBERS: &str = r"#[0-9]+\b";

fn normalise_numbers(v: &mut Value) {
    static RE: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(VOLATILE_NUMBERS).ok());
    let Some(re) = RE.as_ref() else { return };
    match v {
        Value::String(s) if re.is_match(s) => *s = re.replace_all(s, "#N").into_owned(),
        Value::Array(items) => items.iter_mut().for_each(normalise_numbers),
        Value::Object(fields) => fields.values_mut().for_each(normalise_numbers),
        _ => {}
    }
}

/// Whether the cassette takes `a` and `b` for the same request.
pub fn same_request(a: &Value, b: &Value) -> bool {
    match_key(a) == match_key(b)
}

/// What two requests must share to match: the canonical form without [`IGNORED_FIELDS`].
pub(super) fn match_key(request: &Value) -> String {
    let mut out = String::new();
    write_canonical(&strip_ignored(request), &mut out);
    out
}

/// JSON with object keys sorted and no whitespace, whatever order the map keeps.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(fields) => {
            let mut fields: Vec<_> = fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (name, value)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(name.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// `<hash>-<slug>.json`: 12 hex digits of the match key's hash, then the model and the first
/// words of the first user message.
pub(super) fn file_name(key: &str, request: &Value) -> String {
    format!(
        "{:012x}-{}.json",
        fnv1a(key.as_bytes()) >> 16,
        slug(request)
    )
}

/// FNV-1a, 64 bits: file names must not change with the toolchain, as `DefaultHasher`'s may,
/// and a cassette of a few hundred exchanges needs no cryptographic hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn slug(request: &Value) -> String {
    const WORDS: usize = 6;
    const MAX_CHARS: usize = 60;
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("model");
    let text = first_user_text(request).unwrap_or_default();
    let words: Vec<&str> = text.split_whitespace().take(WORDS).collect();
    let mut slug = String::new();
    for c in format!("{model} {}", words.join(" ")).chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= MAX_CHARS {
            break;
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// The text of the first user message (its first text part, if it has parts).
fn first_user_text(request: &Value) -> Option<String> {
    let message = request
        .get("messages")?
        .as_array()?
        .iter()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    match message.get("content")? {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => parts
            .iter()
            .find_map(|p| p.get("text")?.as_str().map(str::to_owned)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cassette_match_key_is_canonical_and_ignores_noise() {
        let a: Value =
            serde_json::from_str(r#"{"b": [1, {"y": 2, "x": 1}], "a": "z", "user": "u1"}"#)
                .unwrap();
        assert_eq!(match_key(&a), r#"{"a":"z","b":[1,{"x":1,"y":2}]}"#);
        assert_eq!(
            file_name(&match_key(&a), &a),
            format!("{:012x}-model.json", fnv1a(match_key(&a).as_bytes()) >> 16)
        );
        // The hash is fixed: file names must not change between toolchains.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
