//! Kustomize: a kustomization's `resources:` kept in step with the files a fix adds.

/// Adds `entry` to a kustomization's `resources:` list right after `after`, keeping every other line.
pub fn add_resource(text: &str, after: &str, entry: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let idx = lines
        .iter()
        .position(|l| l.trim_start().strip_prefix("- ").map(str::trim) == Some(after))?;
    let indent = &lines[idx][..lines[idx].len() - lines[idx].trim_start().len()];
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    out.insert(idx + 1, format!("{indent}- {entry}"));
    Some(out.join("\n") + if text.ends_with('\n') { "\n" } else { "" })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kustomization_gets_the_hpa_after_the_deployment() {
        let k = "resources:\n  - a/deployment.yaml\n  - a/rbac.yaml\n";
        assert_eq!(
            add_resource(k, "a/deployment.yaml", "a/hpa.yaml").unwrap(),
            "resources:\n  - a/deployment.yaml\n  - a/hpa.yaml\n  - a/rbac.yaml\n"
        );
    }
}
