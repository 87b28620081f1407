//! Answer types as JSON Schemas in the strict form structured outputs accept.

use schemars::JsonSchema;
use serde_json::{Value, json};

/// A JSON Schema for `T` in the form strict structured outputs accept: no `$schema`/`title`,
/// every object closed (`additionalProperties: false`) with all its properties required, and no
/// `format` keywords (OpenAI rejects the integer formats schemars writes).
pub fn strict_schema<T: JsonSchema>() -> Value {
    strict(serde_json::to_value(schemars::schema_for!(T)).unwrap_or(json!({})))
}

/// A JSON Schema as schemars writes it, in the strict form (see [`strict_schema`]).
pub fn strict(schema: Value) -> Value {
    let mut v = schema;
    let defs = v
        .as_object_mut()
        .and_then(|o| {
            o.remove("$schema");
            o.remove("title");
            o.remove("$defs")
        })
        .unwrap_or(json!({}));
    // Definitions inlined: the schema is nested under `final` in json_schema mode, where a
    // `#/$defs/...` reference no longer resolves. Answer types are not recursive.
    fn inline(v: &mut Value, defs: &Value, depth: u32) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    if let Some(def) = r
                        .strip_prefix("#/$defs/")
                        .and_then(|name| defs.get(name))
                        .filter(|_| depth < 16)
                    {
                        let mut def = def.clone();
                        inline(&mut def, defs, depth + 1);
                        o.remove("$ref");
                        if let Value::Object(d) = def {
                            for (k, x) in d {
                                o.entry(k).or_insert(x);
                            }
                        }
                        return;
                    }
                }
                for (_, child) in o.iter_mut() {
                    inline(child, defs, depth);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|x| inline(x, defs, depth)),
            _ => {}
        }
    }
    inline(&mut v, &defs, 0);
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.remove("format");
                if o.get("type").and_then(Value::as_str) == Some("object")
                    || o.contains_key("properties")
                {
                    let keys: Vec<Value> = o
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|p| p.keys().cloned().map(Value::String).collect())
                        .unwrap_or_default();
                    o.insert("required".into(), Value::Array(keys));
                    o.insert("additionalProperties".into(), Value::Bool(false));
                    if !o.contains_key("properties") {
                        o.insert("properties".into(), json!({}));
                    }
                }
                for (_, child) in o.iter_mut() {
                    walk(child);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}
