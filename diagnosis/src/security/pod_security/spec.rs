//! Reading a pod spec as the checks do: its containers of every kind, their security
//! contexts, and the upstream wording helpers (pluralising, quoting).

use serde_json::Value;

/// Which list of the pod spec a container comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
}

/// Init containers, then containers, then ephemeral containers, with their
/// kind (upstream `policy/visitor.go`, `visitContainers`).
pub(super) fn containers_with_kind(spec: &Value) -> impl Iterator<Item = (ContainerKind, &Value)> {
    [
        (ContainerKind::Init, "initContainers"),
        (ContainerKind::Regular, "containers"),
        (ContainerKind::Ephemeral, "ephemeralContainers"),
    ]
    .into_iter()
    .flat_map(move |(kind, key)| list(spec, key).iter().map(move |c| (kind, c)))
}

/// Every container of the pod in upstream visiting order.
pub(super) fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    containers_with_kind(spec).map(|(_, c)| c)
}

/// `value[key]`, treating JSON `null` as absent.
pub(super) fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.get(key).filter(|v| !v.is_null())
}

/// A boolean field; `None` when absent or not a boolean.
pub(super) fn flag(value: &Value, key: &str) -> Option<bool> {
    field(value, key).and_then(Value::as_bool)
}

/// A string field; `""` when absent or not a string, as Go's zero value.
pub(super) fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    field(value, key).and_then(Value::as_str).unwrap_or("")
}

/// An integer field, accepting integral floating-point numbers.
pub(super) fn integer(value: &Value, key: &str) -> Option<i64> {
    let v = field(value, key)?;
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

/// An array field; empty when absent or not an array.
pub(super) fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    field(value, key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The string elements of an array field.
pub(super) fn strings<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    list(value, key).iter().filter_map(Value::as_str)
}

/// The `name` of a container, volume or sysctl.
pub(super) fn name(value: &Value) -> &str {
    text(value, "name")
}

pub(super) fn security_context(container: &Value) -> Option<&Value> {
    field(container, "securityContext")
}

pub(super) fn pod_security_context(spec: &Value) -> Option<&Value> {
    field(spec, "securityContext")
}

/// `spec.os.name == "windows"`.
pub(super) fn is_windows(spec: &Value) -> bool {
    field(spec, "os").is_some_and(|os| text(os, "name") == "windows")
}

/// `spec.hostUsers == false` (upstream `relaxPolicyForUserNamespacePod`).
pub(super) fn in_user_namespace(spec: &Value) -> bool {
    flag(spec, "hostUsers") == Some(false)
}

/// A seccomp profile of type `RuntimeDefault` or `Localhost` (upstream `validSeccomp`).
pub(super) fn valid_seccomp(profile: &Value) -> bool {
    matches!(text(profile, "type"), "RuntimeDefault" | "Localhost")
}

/// `["pod", "container(s) \"a\", ..."]` as upstream builds its `badSetters`,
/// for joining with `" and "`.
pub(super) fn setters(pod: bool, containers: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if pod {
        out.push("pod".to_owned());
    }
    if !containers.is_empty() {
        out.push(format!(
            "{} {}",
            pluralize("container", "containers", containers.len()),
            join_quote(containers)
        ));
    }
    out
}

/// Upstream `pluralize`: the singular form for exactly one, else the plural.
pub(super) fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 { singular } else { plural }
}

/// Upstream `joinQuote`: each item in double quotes, joined by `", "`, with no
/// escaping; empty for no items.
pub(super) fn join_quote<I>(items: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    items
        .into_iter()
        .map(|item| format!("\"{}\"", item.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Go's `%q` for a string: double-quoted, with backslash, double quote and
/// control characters escaped. Printable non-ASCII characters are kept, as Go
/// keeps them; Go's notion of printable is approximated by "not a control
/// character".
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
