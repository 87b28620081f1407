//! Reading a sender's JSON: each field of the type expected, or an error naming it and what it
//! held.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::ProtocolError;
use crate::text::shorten;

/// A JSON parse error for a message: serde_json quotes the offending string whole, which may be
/// a megabyte of the sender's text; past 200 characters it is cut, keeping where it was.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.chars().count() <= 200 {
        return text;
    }
    format!(
        "{} at line {} column {}",
        shorten(&text),
        e.line(),
        e.column()
    )
}

/// An object of string values, absent or null meaning empty; errors name the offending key.
pub(crate) fn string_map(
    object: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<BTreeMap<String, String>, ProtocolError> {
    let map = match object.get(key) {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(ProtocolError::invalid(
                field,
                "an object of string values",
                describe(other),
            ));
        }
    };
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) if !k.is_empty() => Ok((k.clone(), s.clone())),
            Value::String(_) => Err(ProtocolError::invalid(
                field,
                "non-empty keys",
                "an empty key",
            )),
            other => Err(ProtocolError::invalid(
                format!("{field}.{}", shorten(k)),
                "a string",
                describe(other),
            )),
        })
        .collect()
}

/// A string field that may be absent or null; any other type is an error naming `field`.
pub(crate) fn optional_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a str>, ProtocolError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ProtocolError::invalid(field, "a string", describe(other))),
    }
}

/// A short account of a JSON value for an error message.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => shorten(s),
        Value::Array(items) => format!("an array of {} item(s)", items.len()),
        Value::Object(map) => format!("an object with {} field(s)", map.len()),
    }
}
