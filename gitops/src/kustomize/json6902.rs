//! JSON 6902 patches in a kustomization (`patches:` entries with a `path` and a `target`, and the
//! older `patchesJson6902:`): the operation that sets a container's field for the environment,
//! found by its JSON pointer (`/spec/template/spec/containers/0/resources/limits/memory`).

use serde_json::Value;

use super::layout::{Kustomization, Layout};
use crate::objects;

/// A pointer's token, escaped (`~` → `~0`, `/` → `~1`).
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// The JSON pointer of a container's field in a workload's document, by the container's index in
/// `manifest` (the document that declares it): `field` is the tokens under the container.
pub(super) fn pointer(
    manifest: &str,
    kind: &str,
    workload: &str,
    container: &str,
    field: &[&str],
) -> Option<String> {
    let docs = objects::parse("manifest", manifest).ok()?;
    let doc = docs
        .iter()
        .find(|d| objects::kind(d) == kind && objects::name(d) == workload)?;
    let index = objects::pod_spec(doc)["containers"]
        .as_array()?
        .iter()
        .position(|c| c["name"].as_str() == Some(container))?;
    let prefix = match kind {
        "Pod" => "/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => "/spec/template/spec",
    };
    let mut p = format!("{prefix}/containers/{index}");
    for f in field {
        p.push('/');
        p.push_str(&token(f));
    }
    Some(p)
}

/// Whether a JSON 6902 patch file's operations include an `add` or `replace` of `pointer`.
fn sets(text: &str, pointer: &str) -> bool {
    let Ok(ops) = crate::yaml::from_str::<Value>(text) else {
        return false;
    };
    ops.as_array().is_some_and(|ops| {
        ops.iter().any(|op| {
            matches!(op["op"].as_str(), Some("add" | "replace"))
                && op["path"].as_str() == Some(pointer)
        })
    })
}

/// The topmost JSON 6902 patch of `chain` aimed at `kind`/`workload` that sets `pointer`.
pub(super) fn patch_setting<'l>(
    chain: &[&'l Kustomization],
    layout: &'l Layout,
    kind: &str,
    workload: &str,
    pointer: &str,
) -> Option<&'l str> {
    chain.iter().find_map(|k| {
        k.targets.iter().find_map(|(path, (t_kind, t_name))| {
            let aimed = t_kind.as_deref().is_none_or(|t| t == kind) && t_name == workload;
            let text = layout.patches.get(path)?;
            (aimed && sets(text, pointer)).then_some(path.as_str())
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MANIFEST: &str = "kind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      containers:\n        - name: proxy\n        - name: app\n";

    #[test]
    fn a_containers_field_is_pointed_at_by_its_index() {
        assert_eq!(
            pointer(
                MANIFEST,
                "Deployment",
                "api",
                "app",
                &["resources", "limits", "memory"]
            )
            .unwrap(),
            "/spec/template/spec/containers/1/resources/limits/memory"
        );
        assert_eq!(
            pointer(
                MANIFEST,
                "Deployment",
                "api",
                "proxy",
                &["resources", "limits", "nvidia.com/gpu"]
            )
            .unwrap(),
            "/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu"
        );
        assert!(pointer(MANIFEST, "Deployment", "api", "db", &["image"]).is_none());
        let ops = "- op: replace\n  path: /spec/replicas\n  value: 3\n- op: add\n  path: /a/b\n  value: x\n";
        assert!(sets(ops, "/a/b"));
        assert!(!sets(ops, "/a"));
        assert!(!sets("kind: Deployment\n", "/a/b"));
    }
}
