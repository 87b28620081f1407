//! Manifests the editor reads: one YAML file of Kubernetes objects (read into squad's cluster
//! types, then edited in place), and a GitOps repository (its kustomizations, its Helm
//! Applications and values files, and a remedy's edit moved to where the environment sets it).

use std::collections::BTreeMap;

use serde_json::Value;
use squad_gitops::editor::{
    add_container_env, container_env_names, container_resource, set_container_resource, set_value,
};
use squad_gitops::kustomize::{self, Kustomization, Layout};
use squad_gitops::{ContainerTarget, Edit, helm, objects};

/// The value the edits write.
const LIMIT: &str = "777Mi";

/// Whether `text` is YAML as the editor's own check reads it (`serde_yaml`'s values, which refuse
/// a key given twice in a mapping, where `objects::parse` keeps the last). The editor verifies an
/// edit only of such a file, and says so: of any other file it makes the line edit alone.
fn strict_yaml(text: &str) -> bool {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(serde_yaml::Value::deserialize)
        .all(|doc| doc.is_ok())
}

/// Every reader of an object, on one object: none may panic, whatever the object holds.
fn read_object(obj: &Value) {
    let spec = objects::pod_spec(obj);
    let _ = (
        objects::kind(obj),
        objects::name(obj),
        objects::strings(obj),
    );
    let _ = (objects::containers(obj), objects::init_containers(obj));
    let _ = (objects::workload_info(obj, "default"), objects::hpa(obj));
    let _ = (
        objects::pod_info(obj),
        objects::node_pod(obj),
        objects::event(obj),
    );
    let _ = (objects::node_info(obj), objects::claim_info(obj));
    let _ = (
        objects::storage_class_info(obj),
        objects::placement_rules(spec),
    );
    let _ = (
        objects::service_account_of(spec),
        objects::claim_names(spec),
    );
    let _ = (
        objects::template_claims(obj),
        objects::time(&obj["metadata"]["creationTimestamp"]),
    );
    let _ = (
        objects::replica_set_revision(obj),
        objects::controller_revision(obj),
    );
    let _ = (
        objects::security_view(obj),
        objects::rules(obj),
        objects::role_ref(obj),
    );
    let _ = objects::binds_service_account(obj, "default", "default");
    let _ = (
        objects::network_policy(obj),
        objects::service_info(obj, Some(obj)),
    );
    let _ = (
        objects::endpoint_list(obj),
        objects::cron_job_info(obj, &[]),
    );
    if let Some(expr) = obj["spec"]["schedule"].as_str() {
        let _ = objects::schedule(expr);
    }
    for port in objects::service_ports(obj) {
        let _ = objects::target_port(&port, spec);
    }
    for c in spec["containers"].as_array().into_iter().flatten() {
        let _ = objects::probe(&c["livenessProbe"]);
    }
}

/// The first object of `docs` with a container: its kind, name and first container's name.
fn first_container(docs: &[Value]) -> Option<(String, String, String)> {
    docs.iter().find_map(|d| {
        let container = objects::containers(d).into_iter().next()?;
        Some((
            objects::kind(d).to_owned(),
            objects::name(d).to_owned(),
            container.name,
        ))
    })
}

/// `squad_gitops::objects::parse` and every object reader, then the editor's round trip on the
/// first container: its memory limit set (and an env item added). Of a file that is YAML as the
/// editor's check reads it ([`strict_yaml`]), the edited file parses into as many objects and
/// reads back the value written (the editor's own check, asserted here from outside).
pub fn manifest(data: &[u8]) {
    let Some(text) = super::text(data) else {
        return;
    };
    let Ok(docs) = objects::parse("fuzz.yaml", text) else {
        return;
    };
    docs.iter().for_each(read_object);
    let Some((kind, name, container)) = first_container(&docs) else {
        return;
    };
    let target = ContainerTarget {
        kind: &kind,
        name: &name,
        container: &container,
    };
    let _ = container_resource(text, &target, "limits", "memory");
    let _ = container_env_names(text, &target);
    let strict = strict_yaml(text);
    if let Ok(edited) = set_container_resource(text, &target, "limits", "memory", LIMIT)
        && strict
    {
        let after = objects::parse("fuzz.yaml", &edited);
        assert_eq!(
            after.as_ref().map(Vec::len).map_err(String::as_str),
            Ok(docs.len()),
            "the edited manifest:\n{edited}"
        );
        assert_eq!(
            container_resource(&edited, &target, "limits", "memory"),
            Ok(Some(LIMIT.to_owned())),
            "the edited manifest:\n{edited}"
        );
    }
    let item = ["- name: SQUAD_FUZZ", "  value: \"on\""];
    if let Ok(edited) = add_container_env(text, &target, &item, "SQUAD_FUZZ")
        && strict
    {
        assert!(
            objects::parse("fuzz.yaml", &edited).is_ok(),
            "the edited manifest:\n{edited}"
        );
        let names = container_env_names(&edited, &target);
        assert!(
            names
                .as_ref()
                .is_ok_and(|n| n.iter().any(|n| n == "SQUAD_FUZZ")),
            "env names {names:?} of the edited manifest:\n{edited}"
        );
    }
}

/// A repository in one text: files each opened by a line `#> <path>`.
fn split_files(text: &str) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.split_inclusive('\n') {
        if let Some(path) = line.strip_prefix("#> ") {
            files.extend(current.take());
            current = Some((path.trim().to_owned(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
        }
    }
    files.extend(current);
    files
}

/// Whether every file of `written` that parsed before still parses, by each reader that read it:
/// the editor's own check (`strict_yaml`) and squad's object reader (`objects::parse`, JSON
/// values, whose keys are strings). A file that only one of them reads (a flow mapping used as a
/// key, `{{ include … }}` in a Helm template, is a `serde_yaml` value but no JSON one) is held to
/// that one only.
fn check_written(files: &BTreeMap<String, String>, written: &[(String, String)]) {
    for (path, text) in written {
        let Some(before) = files.get(path) else {
            continue;
        };
        if strict_yaml(before) {
            assert!(
                strict_yaml(text),
                "{path} is no longer YAML after the edit:\n{text}"
            );
        }
        if strict_yaml(before) && objects::parse(path, before).is_ok() {
            let after = objects::parse(path, text);
            assert!(
                after.is_ok(),
                "{path} no longer parses after the edit: {after:?}\n{text}"
            );
        }
    }
}

/// The GitOps repository: the input is files, each opened by a line `#> <path>`. Every
/// kustomization and Helm Application is read; the first workload's memory limit is moved where
/// its environment sets it (Kustomize's `retarget`, or Helm's for each Application whose chart
/// templates the workload) and applied; every file that parsed still parses; a values key set
/// with `set_value` reads back.
pub fn gitops_repo(data: &[u8]) {
    let Some(text) = super::text(data) else {
        return;
    };
    let files = split_files(text);
    let mut apps = Vec::new();
    for (path, text) in &files {
        if let Some(k) = Kustomization::read(path, text) {
            for image in &k.images {
                if let Some(edited) = kustomize::set_image_tag(text, &image.name, "fuzz-1") {
                    let again = Kustomization::read(path, &edited);
                    assert!(
                        again.is_some(),
                        "{path} no longer reads after set_image_tag:\n{edited}"
                    );
                }
            }
        }
        apps.extend(helm::applications(path, text));
        if path.ends_with("values.yaml") && serde_yaml::from_str::<serde_yaml::Value>(text).is_ok()
        {
            let keys = ["resources", "limits", "memory"];
            if let Ok(edited) = set_value(text, &keys, LIMIT) {
                let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
                let read = helm::scalar_at(&edited, &keys);
                assert_eq!(
                    read.as_deref(),
                    Some(LIMIT),
                    "{path} after set_value:\n{edited}"
                );
            }
        }
    }
    let layout = Layout::of(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
    let _ = layout.patch_paths();
    let workload = files.iter().find_map(|(path, text)| {
        if kustomize::is_kustomization(path) {
            return None;
        }
        let docs = objects::parse(path, text).ok()?;
        let (kind, name, container) = first_container(&docs)?;
        let namespace = docs
            .iter()
            .find_map(|d| d["metadata"]["namespace"].as_str())
            .unwrap_or("default")
            .to_owned();
        Some((path.clone(), kind, name, container, namespace))
    });
    let Some((path, kind, name, container, namespace)) = workload else {
        return;
    };
    let edit = Edit::SetContainerResource {
        path: path.clone(),
        kind,
        workload: name,
        container: container.clone(),
        section: "limits".into(),
        resource: "memory".into(),
        value: LIMIT.into(),
    };
    let (edits, _) = kustomize::retarget(std::slice::from_ref(&edit), &layout, &path, &namespace);
    if let Ok(written) = squad_gitops::apply(&edits, &files) {
        check_written(&files, &written);
    }
    for app in &apps {
        let templates = format!("{}/templates/", app.chart);
        for (template, text) in files.iter().filter(|(p, _)| p.starts_with(&templates)) {
            let _ = helm::feeds(text, &container, "resources");
            let _ = helm::feeds(text, &container, "image");
            let (edits, _) = helm::retarget(
                std::slice::from_ref(&edit.at(template)),
                app,
                (template, text),
                &files,
            );
            if let Ok(written) = squad_gitops::apply(&edits, &files) {
                check_written(&files, &written);
            }
        }
    }
}
