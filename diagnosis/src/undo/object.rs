//! Undoing a deploy's change to keys of any object the repository declares: a Service's ports,
//! an HPA's bounds, the pod template's `nodeSelector`, `imagePullSecrets` or
//! `serviceAccountName`. The same rule as a container's keys: the newest version that changed
//! them is the change to undo, each key goes back to its lines before it (comments included), and
//! for the workload's own pod template only when that version is the last deploy (an older change
//! ran since, so it is not the cause).

use serde_json::Value;
use squad_gitops::editor::object_key_lines;
use squad_gitops::objects;
use squad_protocols::WorkloadRef;
use squad_runtime::ports::FileVersion;

use super::{Part, Undo};
use crate::RepoObject;

/// The object's document in one version of its file, as JSON.
fn document(version: &FileVersion, obj: &RepoObject) -> Option<Value> {
    objects::parse(&obj.path, &version.content)
        .ok()?
        .into_iter()
        .find(|o| objects::kind(o) == obj.kind && objects::name(o) == obj.name)
}

/// The value at a path of mapping keys (`Null` when absent).
fn at<'v>(doc: &'v Value, keys: &[&str]) -> &'v Value {
    keys.iter().fold(doc, |v, k| &v[*k])
}

/// The newest version of the object's file that changed any of `keys` (paths of mapping keys
/// from the document's root) of the object, with each changed key's lines before it and now
/// (`None`: absent). `None` when no version changed them, or the object did not exist before the
/// change (there is nothing to go back to).
pub fn find_keys<'r>(obj: &'r RepoObject, keys: &[&[&str]]) -> Option<Undo<'r>> {
    let docs: Vec<Option<Value>> = obj.history.iter().map(|v| document(v, obj)).collect();
    let i = (0..obj.history.len().saturating_sub(1)).find(|&i| match (&docs[i], &docs[i + 1]) {
        (Some(a), Some(b)) => keys.iter().any(|k| at(a, k) != at(b, k)),
        (Some(_), None) => true,
        _ => false,
    })?;
    let (after, prior) = (docs[i].as_ref()?, docs[i + 1].as_ref()?);
    let (deploy, before) = (&obj.history[i], &obj.history[i + 1]);
    let mut parts = Vec::new();
    let mut now = Vec::new();
    for k in keys.iter().filter(|k| at(after, k) != at(prior, k)) {
        let lines = |text: &str| object_key_lines(text, &obj.kind, &obj.name, k).ok();
        parts.push((
            Part::Object {
                kind: obj.kind.clone(),
                name: obj.name.clone(),
                keys: k.iter().map(|s| (*s).to_owned()).collect(),
            },
            lines(&before.content)?,
        ));
        now.push(lines(&obj.text)?);
    }
    Some(Undo {
        deploy,
        before,
        file: &obj.path,
        current: &obj.text,
        container: String::new(),
        keys: parts,
        now,
    })
}

/// The keys from the workload document's root to its pod template.
pub fn template_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "CronJob" => &["spec", "jobTemplate", "spec", "template"],
        "Pod" => &[],
        _ => &["spec", "template"],
    }
}

/// The last deploy's change to keys of the workload's pod template (`spec.nodeSelector`,
/// `metadata.labels`: paths under the template), when the last deploy — the newest version that
/// changed the template — is the one that changed them.
pub fn find_template_keys<'r>(
    w: &WorkloadRef,
    obj: &'r RepoObject,
    under_template: &[&[&str]],
) -> Option<Undo<'r>> {
    let root = template_keys(&w.kind);
    let full: Vec<Vec<&str>> = under_template
        .iter()
        .map(|k| root.iter().chain(k.iter()).copied().collect())
        .collect();
    let refs: Vec<&[&str]> = full.iter().map(Vec::as_slice).collect();
    let undo = find_keys(obj, &refs)?;
    let whole: &[&[&str]] = &[if root.is_empty() { &["spec"] } else { root }];
    let last = find_keys(obj, whole)?;
    (last.deploy.commit == undo.deploy.commit).then_some(undo)
}

/// The last deploy's change to keys of the workload's pod template (paths under the template),
/// as a pull request that puts them back, with the workload's document before that deploy (for
/// the family to check the restored values against the cluster). `None` when the last deploy did
/// not change them.
pub fn template_change(
    input: &crate::RemedyInput<'_>,
    keys: &[&[&str]],
    why: &str,
    finding: &str,
) -> Option<(crate::Change, Value)> {
    let obj = input.repo.workload(input.workload);
    let undo = find_template_keys(input.workload, &obj, keys)?;
    let before = document(undo.before, &obj)?;
    Some((undo.change(input.workload, why, finding), before))
}

/// The pod template of a workload's document (JSON), whatever its kind.
pub fn template_of<'v>(w: &WorkloadRef, doc: &'v Value) -> &'v Value {
    at(doc, template_keys(&w.kind))
}

/// The edit that sets the scalar at `keys` of the object to `value`, its line's comment kept
/// (`maxReplicas: 4  # cost review` → `maxReplicas: 10  # cost review`); `None` when the object
/// does not set it on one line.
pub fn set_scalar(obj: &RepoObject, keys: &[&str], value: &str) -> Option<crate::Edit> {
    let lines = object_key_lines(&obj.text, &obj.kind, &obj.name, keys).ok()??;
    let [line] = lines.as_slice() else {
        return None;
    };
    let (key, rest) = line.split_once(':')?;
    let comment = rest.find(" #").map_or("", |i| &rest[i..]);
    let old = rest[..rest.len() - comment.len()].trim();
    if old.is_empty() {
        return None;
    }
    let pad = &rest[..rest.len() - comment.len()];
    let gap = &pad[pad.trim_end().len()..];
    Some(crate::Edit::SetObjectKey {
        path: obj.path.clone(),
        kind: obj.kind.clone(),
        name: obj.name.clone(),
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        lines: Some(vec![format!("{key}: {value}{gap}{comment}")]),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const V1: &str = "kind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    metadata:\n      labels:\n        tier: backend\n    spec:\n      serviceAccountName: web # its own\n      containers:\n        - name: app\n          image: web:1\n";

    fn obj(versions: &[(&str, String)]) -> RepoObject {
        RepoObject {
            kind: "Deployment".into(),
            name: "web".into(),
            path: "web.yaml".into(),
            text: versions[0].1.clone(),
            history: versions
                .iter()
                .map(|(c, t)| FileVersion {
                    commit: (*c).into(),
                    at: chrono::Utc::now(),
                    message: format!("deploy {c}"),
                    content: t.clone(),
                })
                .collect(),
        }
    }

    fn w() -> WorkloadRef {
        WorkloadRef::deployment("shop", "web")
    }

    #[test]
    fn the_last_deploys_template_keys_go_back_with_their_comment() {
        let v2 = V1
            .replace("web # its own", "shop-web")
            .replace("web:1", "web:2");
        let o = obj(&[("bbbbbbbbbb", v2), ("aaaaaaaaaa", V1.to_owned())]);
        let u = find_template_keys(&w(), &o, &[&["spec", "serviceAccountName"]]).unwrap();
        assert_eq!(u.deploy.commit, "bbbbbbbbbb");
        let edits = u.edits(&w());
        let files = std::collections::BTreeMap::from([("web.yaml".to_owned(), o.text.clone())]);
        let out = squad_gitops::apply(&edits, &files).unwrap();
        assert_eq!(out[0].1, V1.replace("web:1", "web:2"));
        assert!(!u.whole(&w()), "the image change stays");
    }

    #[test]
    fn an_older_change_that_ran_since_is_not_undone() {
        // v2 relabelled the pods; v3, the last deploy, changed only the image.
        let v2 = V1.replace("tier: backend", "tier: api");
        let v3 = v2.replace("web:1", "web:2");
        let o = obj(&[("c", v3), ("b", v2), ("a", V1.to_owned())]);
        assert!(find_template_keys(&w(), &o, &[&["metadata", "labels"]]).is_none());
        // As an object's keys alone, the newest change of them is v2.
        let u = find_keys(&o, &[&["spec", "template", "metadata", "labels"]]).unwrap();
        assert_eq!(u.deploy.commit, "b");
    }

    #[test]
    fn a_scalar_keeps_its_comment() {
        let o = obj(&[("a", V1.to_owned())]);
        let e = set_scalar(
            &o,
            &["spec", "template", "spec", "serviceAccountName"],
            "api",
        )
        .unwrap();
        let crate::Edit::SetObjectKey { lines, .. } = e else {
            unreachable!()
        };
        assert_eq!(lines.unwrap(), ["serviceAccountName: api # its own"]);
    }
}
