//! Moving a remedy's edits of a workload's manifest to where the environment sets the value.

use serde_json::Value;

use super::layout::{Kustomization, Layout};
use crate::Edit;
use crate::objects;

/// What of the container an edit changes, to look for in the layers above the manifest.
enum Field<'e> {
    Resource(&'e str, &'e str),
    Key(&'e str),
    Env(&'e str),
}

/// The container edit's target: (kind, workload, container, field).
fn target(e: &Edit) -> Option<(&str, &str, &str, Field<'_>)> {
    match e {
        Edit::SetContainerResource {
            kind,
            workload,
            container,
            section,
            resource,
            ..
        } => Some((
            kind,
            workload,
            container,
            Field::Resource(section, resource),
        )),
        Edit::SetContainerKey {
            kind,
            workload,
            container,
            key,
            ..
        } => Some((kind, workload, container, Field::Key(key))),
        Edit::AddContainerEnv {
            kind,
            workload,
            container,
            name,
            ..
        }
        | Edit::ReplaceContainerEnv {
            kind,
            workload,
            container,
            name,
            ..
        } => Some((kind, workload, container, Field::Env(name))),
        _ => None,
    }
}

/// The container a patch file's document for the workload declares, if any.
fn patched_container(text: &str, kind: &str, workload: &str, container: &str) -> Option<Value> {
    let docs = objects::parse("patch", text).ok()?;
    let doc = docs
        .iter()
        .find(|d| objects::kind(d) == kind && objects::name(d) == workload)?;
    objects::pod_spec(doc)["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"].as_str() == Some(container))
        .cloned()
}

/// Whether a patch file's document for `kind`/`name` sets the value at `keys`.
fn patch_sets_key(text: &str, kind: &str, name: &str, keys: &[&str]) -> bool {
    let Ok(docs) = objects::parse("patch", text) else {
        return false;
    };
    docs.iter()
        .filter(|d| objects::kind(d) == kind && objects::name(d) == name)
        .any(|d| !keys.iter().fold(d, |v, k| &v[*k]).is_null())
}

fn sets(c: &Value, field: &Field<'_>) -> bool {
    match field {
        Field::Resource(section, resource) => !c["resources"][section][resource].is_null(),
        Field::Key(key) => !c[key].is_null(),
        Field::Env(name) => c["env"]
            .as_array()
            .is_some_and(|env| env.iter().any(|e| e["name"].as_str() == Some(name))),
    }
}

/// The tag of an `image: <ref>` line.
fn image_line(lines: &[String]) -> Option<(&str, &str)> {
    let reference = lines.first()?.strip_prefix("image:")?;
    let reference = reference
        .split(" #")
        .next()?
        .trim()
        .trim_matches(['"', '\'']);
    let name = squad_protocols::image::repository(reference);
    let tag = reference.get(name.len() + 1..)?;
    Some((name, tag))
}

/// The count a `replicas: N` edit writes.
fn replicas_line(e: &Edit) -> Option<u64> {
    let Edit::SetObjectKey {
        lines: Some(lines), ..
    } = e
    else {
        return None;
    };
    lines
        .first()?
        .strip_prefix("replicas:")?
        .split(" #")
        .next()?
        .trim()
        .parse()
        .ok()
}

fn describe(field: &Field<'_>) -> String {
    match field {
        Field::Resource(section, resource) => format!("`resources.{section}.{resource}`"),
        Field::Key(key) => format!("`{key}`"),
        Field::Env(name) => format!("`env` item `{name}`"),
    }
}

/// `path` relative to directory `dir` (both repository paths).
fn relative(dir: &str, path: &str) -> String {
    let d: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    let p: Vec<&str> = path.split('/').collect();
    let common = d.iter().zip(&p).take_while(|(a, b)| a == b).count();
    let mut out: Vec<&str> = vec![".."; d.len() - common];
    out.extend(&p[common..]);
    out.join("/")
}

/// Moves each edit of `manifest` to where the value is set for the environment that renders it
/// into `namespace`: the topmost layer's patch that sets the field, or the `images:` entry that
/// sets the tag; when no layer above sets it and other environments share the manifest, the
/// environment's own patch of the container (so only that environment changes). A file the
/// remedy adds beside the manifest (an HPA) goes to the environment's overlay, listed in its
/// kustomization; the kustomization entry of a file added next to the manifest is written as the
/// kustomization that lists the manifest writes its paths. Edits it cannot place stay as they
/// are. Returns the edits and, for the PR, one line per edit it moved.
pub fn retarget(
    edits: &[Edit],
    layout: &Layout,
    manifest: &str,
    namespace: &str,
) -> (Vec<Edit>, Vec<String>) {
    let (chain, envs) = layout.chain_for(manifest, namespace);
    let Some(chain) = chain else {
        return (edits.to_vec(), Vec::new());
    };
    let Some(top) = chain.first().copied() else {
        return (edits.to_vec(), Vec::new());
    };
    let lister = chain.last().copied().unwrap_or(top);
    let shared = envs > 1 && top.path != lister.path;
    let patches: Vec<&String> = chain.iter().flat_map(|k| k.patches.iter()).collect();
    let mut out = Vec::new();
    let mut notes = Vec::new();
    // Files added beside the manifest that move to the overlay: old path -> new path.
    let mut moved: Vec<(String, String)> = Vec::new();
    for e in edits {
        if e.path() != manifest {
            match e {
                Edit::AddFile { path, content } if shared && in_dir_of(path, manifest) => {
                    let file = path.rsplit('/').next().unwrap_or(path);
                    let to = join_dir(&top.dir, file);
                    notes.push(format!(
                        "`{to}` goes in the {namespace} overlay (`{}`), not beside the base every environment shares",
                        top.dir
                    ));
                    moved.push((path.clone(), to.clone()));
                    out.push(Edit::AddFile {
                        path: to,
                        content: content.clone(),
                    });
                }
                Edit::AddKustomizeResource { entry, .. } => {
                    let (k, entry): (&Kustomization, String) =
                        match moved.iter().find(|(from, _)| from == entry) {
                            Some((_, to)) => (top, relative(&top.dir, to)),
                            None => (lister, relative(&lister.dir, entry)),
                        };
                    let Some(after) = k.resources_written.last() else {
                        out.push(e.clone());
                        continue;
                    };
                    out.push(Edit::AddKustomizeResource {
                        kustomization: k.path.clone(),
                        after: after.clone(),
                        entry,
                    });
                }
                _ => out.push(e.clone()),
            }
            continue;
        }
        // A key of the workload's object (the pod template's nodeSelector, the strategy): where
        // a patch of the environment sets it, else where it is, noting a shared base.
        if let Edit::SetObjectKey {
            kind, name, keys, ..
        } = e
        {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            // `replicas:` in a kustomization of the chain (the topmost wins in the render).
            if keys == ["spec", "replicas"]
                && let Some(count) = replicas_line(e)
                && let Some(k) = chain.iter().find(|k| k.replicas.contains_key(name))
            {
                notes.push(format!(
                    "the replicas of {kind} {name} are set for {namespace} by `replicas:` in `{}`: set there",
                    k.path
                ));
                out.push(Edit::SetKustomizeReplicas {
                    kustomization: k.path.clone(),
                    name: name.clone(),
                    count,
                });
                continue;
            }
            if let Some(p) = patches.iter().find(|p| {
                layout
                    .patches
                    .get(p.as_str())
                    .is_some_and(|t| patch_sets_key(t, kind, name, &keys))
            }) {
                notes.push(format!(
                    "`{}` of {kind} {name} is set for {namespace} in `{p}`, over `{manifest}`: edited there",
                    keys.join(".")
                ));
                out.push(e.at(p));
            } else {
                if shared {
                    notes.push(format!(
                        "`{manifest}` is the base of {envs} environments and none of them sets `{}` of {kind} {name}: the change reaches all of them",
                        keys.join(".")
                    ));
                }
                out.push(e.clone());
            }
            continue;
        }
        let Some((kind, workload, container, field)) = target(e) else {
            out.push(e.clone());
            continue;
        };
        // The topmost patch that sets it wins in the render.
        let set_in = patches.iter().find(|p| {
            layout
                .patches
                .get(p.as_str())
                .and_then(|t| patched_container(t, kind, workload, container))
                .is_some_and(|c| sets(&c, &field))
        });
        if let Some(p) = set_in {
            notes.push(format!(
                "{} of `{container}` is set for {namespace} in `{p}`, over `{manifest}`: edited there",
                describe(&field)
            ));
            out.push(e.at(p));
            continue;
        }
        // A JSON 6902 operation that sets a resource for the environment.
        if let (Edit::SetContainerResource { value, .. }, Field::Resource(section, resource)) =
            (e, &field)
            && let Some(pointer) = layout.manifests.get(manifest).and_then(|text| {
                super::json6902::pointer(
                    text,
                    kind,
                    workload,
                    container,
                    &["resources", section, resource],
                )
            })
            && let Some(p) =
                super::json6902::patch_setting(&chain, layout, kind, workload, &pointer)
        {
            notes.push(format!(
                "{} of `{container}` is set for {namespace} by the JSON 6902 operation on `{pointer}` in `{p}`: its value set there",
                describe(&field)
            ));
            out.push(Edit::SetPatchValue {
                path: p.to_owned(),
                op_path: pointer,
                value: value.clone(),
            });
            continue;
        }
        // A tag the kustomizations set with `images:`.
        if let (
            Edit::SetContainerKey {
                lines: Some(lines), ..
            },
            Field::Key("image"),
        ) = (e, &field)
            && let Some((name, tag)) = image_line(lines)
            && let Some(k) = chain.iter().find(|k| {
                k.images
                    .iter()
                    .any(|i| i.name == name && i.new_tag.is_some())
            })
        {
            notes.push(format!(
                "the tag of `{name}` is set for {namespace} by `images:` in `{}`: set there",
                k.path
            ));
            out.push(Edit::SetKustomizeImage {
                kustomization: k.path.clone(),
                name: name.to_owned(),
                tag: tag.to_owned(),
            });
            continue;
        }
        // Shared by other environments: this one's own patch of the container, when it has one.
        if shared
            && let Some(p) = top.patches.iter().find(|p| {
                layout
                    .patches
                    .get(p.as_str())
                    .is_some_and(|t| patched_container(t, kind, workload, container).is_some())
            })
        {
            notes.push(format!(
                "`{manifest}` is the base of {envs} environments: {} of `{container}` is added to {namespace}'s own patch `{p}`",
                describe(&field)
            ));
            out.push(e.at(p));
            continue;
        }
        out.push(e.clone());
    }
    (out, notes)
}

fn in_dir_of(path: &str, manifest: &str) -> bool {
    let dir = |p: &str| {
        p.rsplit_once('/')
            .map_or(String::new(), |(d, _)| d.to_owned())
    };
    dir(path) == dir(manifest)
}

fn join_dir(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_owned()
    } else {
        format!("{dir}/{file}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PATCH: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          resources:\n            limits:\n              memory: 768Mi\n";

    fn layout() -> Layout {
        let mut l = Layout::of([
            (
                "base/api/kustomization.yaml",
                "resources:\n  - deployment.yaml\n",
            ),
            (
                "overlays/prod/kustomization.yaml",
                "namespace: shop-prod\nresources:\n  - ../../base/api\npatches:\n  - path: api.yaml\nimages:\n  - name: ghcr.io/acme/api\n    newTag: 3.5.0\n",
            ),
            (
                "overlays/staging/kustomization.yaml",
                "namespace: shop-staging\nresources:\n  - ../../base/api\n",
            ),
        ]);
        l.patches
            .insert("overlays/prod/api.yaml".into(), PATCH.into());
        l
    }

    fn resource(section: &str) -> Edit {
        Edit::SetContainerResource {
            path: "base/api/deployment.yaml".into(),
            kind: "Deployment".into(),
            workload: "api".into(),
            container: "app".into(),
            section: section.into(),
            resource: "memory".into(),
            value: "1Gi".into(),
        }
    }

    #[test]
    fn an_overridden_value_is_edited_in_the_overlay_and_a_shared_base_is_left_alone() {
        let hpa = Edit::AddFile {
            path: "base/api/hpa.yaml".into(),
            content: "kind: HorizontalPodAutoscaler\n".into(),
        };
        let listed = Edit::AddKustomizeResource {
            kustomization: "kustomization.yaml".into(),
            after: "base/api/deployment.yaml".into(),
            entry: "base/api/hpa.yaml".into(),
        };
        let (edits, notes) = retarget(
            &[resource("limits"), resource("requests"), hpa, listed],
            &layout(),
            "base/api/deployment.yaml",
            "shop-prod",
        );
        // The limit is set in the patch; the request is not set above the base, which staging
        // shares: it goes to production's patch too.
        assert_eq!(edits[0].path(), "overlays/prod/api.yaml");
        assert_eq!(edits[1].path(), "overlays/prod/api.yaml");
        assert_eq!(edits[2].path(), "overlays/prod/hpa.yaml");
        assert_eq!(
            edits[3],
            Edit::AddKustomizeResource {
                kustomization: "overlays/prod/kustomization.yaml".into(),
                after: "../../base/api".into(),
                entry: "hpa.yaml".into(),
            }
        );
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].contains("is set for shop-prod in `overlays/prod/api.yaml`"));
        // Another namespace, no chain: nothing moves.
        let (edits, notes) = retarget(
            &[resource("limits")],
            &layout(),
            "base/api/deployment.yaml",
            "dev",
        );
        assert_eq!(edits[0].path(), "base/api/deployment.yaml");
        assert!(notes.is_empty());
    }

    #[test]
    fn a_tag_set_by_images_is_set_there() {
        let undo = Edit::SetContainerKey {
            path: "base/api/deployment.yaml".into(),
            kind: "Deployment".into(),
            workload: "api".into(),
            container: "app".into(),
            key: "image".into(),
            lines: Some(vec!["image: ghcr.io/acme/api:3.4.2".into()]),
        };
        let (edits, _) = retarget(&[undo], &layout(), "base/api/deployment.yaml", "shop-prod");
        assert_eq!(
            edits,
            [Edit::SetKustomizeImage {
                kustomization: "overlays/prod/kustomization.yaml".into(),
                name: "ghcr.io/acme/api".into(),
                tag: "3.4.2".into(),
            }]
        );
        assert_eq!(
            squad_protocols::image::repository("localhost:5000/app@sha256:ab"),
            "localhost:5000/app"
        );
        assert_eq!(
            relative("overlays/prod", "base/api/x.yaml"),
            "../../base/api/x.yaml"
        );
    }

    fn node_selector(path: &str) -> Edit {
        Edit::SetObjectKey {
            path: path.into(),
            kind: "Deployment".into(),
            name: "api".into(),
            keys: ["spec", "template", "spec", "nodeSelector"]
                .map(String::from)
                .to_vec(),
            lines: Some(vec!["nodeSelector:".into(), "  pool: batch".into()]),
        }
    }

    #[test]
    fn a_key_of_the_workload_an_overlay_patch_sets_is_edited_there_else_noted_as_shared() {
        let mut l = layout();
        // Without a patch that sets it: stays in the base, which both environments share.
        let (edits, notes) = retarget(
            &[node_selector("base/api/deployment.yaml")],
            &l,
            "base/api/deployment.yaml",
            "shop-prod",
        );
        assert_eq!(edits, vec![node_selector("base/api/deployment.yaml")]);
        assert_eq!(
            notes,
            vec![
                "`base/api/deployment.yaml` is the base of 2 environments and none of them sets `spec.template.spec.nodeSelector` of Deployment api: the change reaches all of them"
            ]
        );
        // prod's patch sets it: edited there; staging's render is not touched.
        l.patches.insert(
            "overlays/prod/api.yaml".into(),
            format!("{PATCH}      nodeSelector:\n        pool: general\n"),
        );
        let (edits, notes) = retarget(
            &[node_selector("base/api/deployment.yaml")],
            &l,
            "base/api/deployment.yaml",
            "shop-prod",
        );
        assert_eq!(edits, vec![node_selector("overlays/prod/api.yaml")]);
        assert!(notes[0].contains("is set for shop-prod in `overlays/prod/api.yaml`"));
        let (edits, _) = retarget(
            &[node_selector("base/api/deployment.yaml")],
            &l,
            "base/api/deployment.yaml",
            "shop-staging",
        );
        assert_eq!(edits, vec![node_selector("base/api/deployment.yaml")]);
    }

    #[test]
    fn replicas_an_overlay_sets_with_replicas_are_set_there() {
        let mut l = layout();
        l.kustomizations[1] = Kustomization::read(
            "overlays/prod/kustomization.yaml",
            "namespace: shop-prod\nresources:\n  - ../../base/api\nreplicas:\n  - name: api\n    count: 3\n",
        )
        .unwrap();
        let edit = |lines: &[&str]| Edit::SetObjectKey {
            path: "base/api/deployment.yaml".into(),
            kind: "Deployment".into(),
            name: "api".into(),
            keys: vec!["spec".into(), "replicas".into()],
            lines: Some(lines.iter().map(|l| (*l).to_owned()).collect()),
        };
        let (edits, notes) = retarget(
            &[edit(&["replicas: 1 # one volume"])],
            &l,
            "base/api/deployment.yaml",
            "shop-prod",
        );
        assert_eq!(
            edits,
            [Edit::SetKustomizeReplicas {
                kustomization: "overlays/prod/kustomization.yaml".into(),
                name: "api".into(),
                count: 1,
            }]
        );
        assert!(notes[0].contains("`replicas:`"), "{notes:?}");
        // Staging sets none: the base's line, noted as shared.
        let (edits, _) = retarget(
            &[edit(&["replicas: 1"])],
            &l,
            "base/api/deployment.yaml",
            "shop-staging",
        );
        assert_eq!(edits, [edit(&["replicas: 1"])]);
    }

    #[test]
    fn a_value_an_inline_patch_sets_is_edited_inside_the_kustomization() {
        let overlay = "namespace: shop-prod\nresources:\n  - ../../base/api\npatches:\n  - target:\n      kind: Deployment\n      name: api\n    patch: |-\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata:\n        name: api\n      spec:\n        template:\n          spec:\n            containers:\n              - name: app\n                resources:\n                  limits:\n                    memory: 768Mi # prod\n";
        let l = Layout::of([
            (
                "base/api/kustomization.yaml",
                "resources:\n  - deployment.yaml\n",
            ),
            ("overlays/prod/kustomization.yaml", overlay),
        ]);
        assert!(l.patch_paths().is_empty(), "an inline patch is not a file");
        let (edits, notes) = retarget(
            &[resource("limits")],
            &l,
            "base/api/deployment.yaml",
            "shop-prod",
        );
        assert_eq!(
            edits,
            [resource("limits").at("overlays/prod/kustomization.yaml#patches[0]")]
        );
        assert!(notes[0].contains("#patches[0]"), "{notes:?}");
        let files = std::collections::BTreeMap::from([(
            "overlays/prod/kustomization.yaml".to_owned(),
            overlay.to_owned(),
        )]);
        let written = crate::apply(&edits, &files).unwrap();
        assert_eq!(
            written,
            [(
                "overlays/prod/kustomization.yaml".to_owned(),
                overlay.replace("memory: 768Mi # prod", "memory: 1Gi # prod")
            )]
        );
    }
}
