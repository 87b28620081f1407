//! Checks of the arguments callers pass to the editor: resource section and name, quantity, and
//! the env item given to [`add_container_env`](super::add_container_env). Each failure is a
//! [`ManifestError::InvalidArgument`] naming the argument and what was expected.

use serde_yaml::Value;

use super::ManifestError;
use super::syntax::{is_dash, leading_spaces};
use super::verify::scalar_string;

pub(super) fn check_section(section: &str) -> Result<(), ManifestError> {
    if section == "limits" || section == "requests" {
        Ok(())
    } else {
        Err(ManifestError::InvalidArgument {
            argument: "resource section",
            expected: "`limits` or `requests`".to_string(),
            got: section.to_string(),
        })
    }
}

/// `memory`, `cpu`, `ephemeral-storage`, `nvidia.com/gpu`, `hugepages-2Mi`, ...
pub(super) fn check_resource_name(key: &str) -> Result<(), ManifestError> {
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/'))
        && key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(ManifestError::InvalidArgument {
            argument: "resource name",
            expected: "a Kubernetes resource name such as `memory` or `cpu`".to_string(),
            got: key.to_string(),
        })
    }
}

/// A Kubernetes quantity, as [`squad_protocols::Quantity`] parses one (`512Mi`, `1.5Gi`, `250m`,
/// `2`, `1e3`): the one grammar squad has.
pub(super) fn check_quantity(value: &str) -> Result<(), ManifestError> {
    if value.parse::<squad_protocols::Quantity>().is_ok() {
        Ok(())
    } else {
        Err(ManifestError::InvalidArgument {
            argument: "resource quantity",
            expected: "a Kubernetes quantity such as `512Mi`, `1Gi`, `250m` or `2`".to_string(),
            got: value.to_string(),
        })
    }
}

/// The validated env item given to [`add_container_env`](super::add_container_env), de-indented so
/// that the `-` is at column 0.
pub(super) struct EnvItem {
    pub(super) lines: Vec<String>,
    pub(super) value: Value,
}

impl EnvItem {
    pub(super) fn parse(item_lines: &[&str], env_name: &str) -> Result<Self, ManifestError> {
        let invalid = |expected: &str, got: &str| ManifestError::InvalidArgument {
            argument: "env item lines",
            expected: expected.to_string(),
            got: got.to_string(),
        };
        let first = item_lines
            .iter()
            .position(|line| !line.trim().is_empty())
            .ok_or_else(|| invalid("at least one line, the first starting with `- `", ""))?;
        let last = item_lines
            .iter()
            .rposition(|line| !line.trim().is_empty())
            .unwrap_or(first);
        let head = item_lines.get(first).copied().unwrap_or_default();
        let base = leading_spaces(head);
        if !is_dash(&head[base..]) {
            return Err(invalid(
                "the first line to start a list item with `- `",
                head,
            ));
        }
        let mut lines = Vec::new();
        for (index, line) in item_lines.iter().enumerate().take(last + 1).skip(first) {
            if line.contains(['\n', '\r']) {
                return Err(invalid(
                    "one line per slice element, without line breaks",
                    line,
                ));
            }
            if line.trim().is_empty() {
                lines.push(String::new());
                continue;
            }
            let own = leading_spaces(line);
            let rest = &line[own..];
            if rest.starts_with('\t') {
                return Err(invalid("indentation with spaces (YAML forbids tabs)", line));
            }
            let continuation_ok = own > base || (own == base && rest.starts_with('#'));
            if index != first && !continuation_ok {
                return Err(invalid(
                    "lines after the first indented deeper than its `- ` (a single list item)",
                    line,
                ));
            }
            lines.push(line[base..].to_string());
        }
        let text = lines.join("\n");
        let parsed: Value = crate::yaml::from_str(&text)
            .map_err(|err| invalid(&format!("a valid YAML list item ({err})"), &text))?;
        let value = match parsed {
            Value::Sequence(mut items) if items.len() == 1 => items.pop().unwrap_or(Value::Null),
            _ => return Err(invalid("exactly one YAML list item", &text)),
        };
        let declared = value.get("name").and_then(scalar_string);
        if declared.as_deref() != Some(env_name) {
            return Err(invalid(
                &format!("an item declaring `name: {env_name}`"),
                &text,
            ));
        }
        Ok(Self { lines, value })
    }
}
