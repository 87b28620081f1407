#![allow(clippy::unwrap_used)]
use serde_json::json;

use super::tools::{NoArgs, series_summary};
use super::*;

#[derive(Serialize, serde::Deserialize, JsonSchema, Clone)]
struct Out {
    /// A note.
    note: String,
    count: u32,
    items: Vec<Inner>,
    maybe: Option<String>,
}

#[derive(Debug, Serialize, serde::Deserialize, JsonSchema, Clone)]
struct Inner {
    file: String,
}

#[test]
fn strict_schemas_close_every_object_and_require_every_property() {
    let s = strict_schema::<Out>();
    assert!(
        s.get("$schema").is_none() && s.get("title").is_none(),
        "{s}"
    );
    assert_eq!(s["additionalProperties"], json!(false));
    assert_eq!(
        s["required"],
        json!(["count", "items", "maybe", "note"]),
        "{s}"
    );
    assert!(!s.to_string().contains("\"format\""), "{s}");
    assert!(!s.to_string().contains("$ref"), "{s}");
    let inner = &s["properties"]["items"]["items"];
    assert_eq!(inner["additionalProperties"], json!(false), "{s}");
    assert_eq!(inner["required"], json!(["file"]), "{s}");
    assert_eq!(strict_schema::<NoArgs>()["properties"], json!({}));
}

#[test]
fn answers_parse_with_or_without_a_fence_and_name_what_is_wrong() {
    let ok: Inner = parse_answer("```json\n{\"file\": \"a.py\"}\n```").unwrap();
    assert_eq!(ok.file, "a.py");
    let e = parse_answer::<Inner>("I think the limit should be higher").unwrap_err();
    assert!(e.0.contains("not the required JSON"), "{e}");
}

#[test]
fn summaries_give_min_median_peak() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-23T19:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let s: Vec<_> = [3.0, 1.0, 2.0]
        .iter()
        .enumerate()
        .map(|(i, v)| squad_protocols::cluster::Sample {
            at: at + chrono::Duration::minutes(i as i64),
            value: *v,
        })
        .collect();
    let text = series_summary(&s, 1.0, "x");
    assert!(
        text.contains("min 1.0 x, median 2.0 x, peak 3.0 x, last 2.0 x"),
        "{text}"
    );
}
