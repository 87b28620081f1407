//! YAML from the GitOps repository (manifests, kustomizations, Helm values and Applications,
//! patches) through every reader squad has, all behind `squad_gitops::yaml`'s limits; and the
//! TOML of `squad.toml` and scenario files.

use squad_gitops::editor::{ContainerTarget, set_container_resource};
use squad_gitops::kustomize::Kustomization;
use squad_gitops::{helm, objects, yaml};

use super::{MIB_KIB, in_child, measure_here, measured_in_child};

/// A flat alias bomb: one anchored list of `n` items and a list of `n` aliases to it, inside a
/// Deployment's annotations. `n` = 1,000 is 7 KB of YAML and a million values once expanded.
fn flat_bomb(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  annotations:\n    x: &x [{}]\n    y: [{}]\nspec:\n  template:\n    spec:\n      containers:\n      - name: api\n        image: registry.example/api:1.0\n",
        items.join(","),
        vec!["*x"; n].join(",")
    )
}

/// The classic "billion laughs": nine levels of nine aliases, 10^9 strings once expanded.
fn billion_laughs() -> String {
    let mut text =
        String::from("kind: ConfigMap\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let mut previous = 'a';
    for name in 'b'..='i' {
        let nine = vec![format!("*{previous}"); 9].join(", ");
        text.push_str(&format!("{name}: &{name} [{nine}]\n"));
        previous = name;
    }
    text
}

/// Each of squad's YAML readers on `text`: what it made of it (an error's text, or that it read
/// nothing). The editor edits lines without expanding anything, and skips its check of the
/// result when the original does not read (as for a Helm template): it may edit a bomb's text.
fn every_reader(text: &str) -> Vec<(&'static str, String)> {
    let target = ContainerTarget {
        kind: "Deployment",
        name: "api",
        container: "api",
    };
    vec![
        (
            "yaml::from_str",
            yaml::from_str::<serde_json::Value>(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        ),
        (
            "objects::parse",
            objects::parse("k8s/api.yaml", text)
                .err()
                .unwrap_or_default(),
        ),
        (
            "editor::set_container_resource",
            match set_container_resource(text, &target, "limits", "memory", "1Gi") {
                Ok(_) => "edited".to_owned(),
                Err(e) => e.to_string(),
            },
        ),
        (
            "helm::value_at",
            format!(
                "{:?}",
                helm::value_at(text, &["metadata".to_owned(), "name".to_owned()])
            ),
        ),
        (
            "helm::applications",
            format!("{:?}", helm::applications("apps/api.yaml", text)),
        ),
        (
            "Kustomization::read",
            format!("{:?}", Kustomization::read("kustomization.yaml", text)),
        ),
    ]
}

/// What serde_yaml 0.9 does alone with the bombs, for the record: the billion laughs stops at its
/// repetition limit; the flat bomb does not stop.
#[test]
fn serde_yaml_alone_expands_a_flat_alias_bomb() {
    if in_child() {
        let text = flat_bomb(1_000);
        measure_here(|| {
            let laughs = serde_yaml::from_str::<serde_yaml::Value>(&billion_laughs());
            assert!(laughs.unwrap_err().to_string().contains("repetition limit"));
            let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            let y = v["metadata"]["annotations"]["y"].as_sequence().unwrap();
            assert_eq!(y.len() * y[0].as_sequence().unwrap().len(), 1_000_000);
        });
        return;
    }
    let growth = measured_in_child("yaml::serde_yaml_alone_expands_a_flat_alias_bomb");
    println!(
        "serde_yaml 0.9 alone: a {} byte flat alias bomb took {growth} KiB",
        flat_bomb(1_000).len()
    );
}

#[test]
fn alias_bombs_are_refused_by_every_reader_with_bounded_memory() {
    if in_child() {
        let inputs = [flat_bomb(1_000), flat_bomb(4_000), billion_laughs()];
        measure_here(|| {
            for text in &inputs {
                for (reader, outcome) in every_reader(text) {
                    match reader {
                        "helm::value_at" => assert_eq!(outcome, "None"),
                        "helm::applications" => assert_eq!(outcome, "[]"),
                        "Kustomization::read" => assert_eq!(outcome, "None"),
                        "editor::set_container_resource" => {}
                        _ => assert!(
                            outcome.contains("alias bomb"),
                            "{reader} on a {} byte bomb: {outcome}",
                            text.len()
                        ),
                    }
                }
            }
        });
        return;
    }
    let growth =
        measured_in_child("yaml::alias_bombs_are_refused_by_every_reader_with_bounded_memory");
    // Unguarded, the 30 KB bomb alone needs about 2 GB.
    assert!(growth < 64 * MIB_KIB, "{growth} KiB");
}

#[test]
fn ten_thousand_levels_of_nesting_are_refused_naming_the_limit() {
    let flow = format!(
        "kind: Deployment\nspec: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let mapping = format!(
        "kind: Deployment\nspec: {}1{}\n",
        "{a: ".repeat(10_000),
        "}".repeat(10_000)
    );
    // Block sequences nest two bytes a level: `- - - ... x`.
    let block = format!("kind: Deployment\nspec:\n{}x\n", "- ".repeat(10_000));
    for text in [&flow, &mapping, &block] {
        for (reader, outcome) in every_reader(text) {
            match reader {
                "helm::value_at" | "Kustomization::read" => assert_eq!(outcome, "None"),
                "helm::applications" => assert_eq!(outcome, "[]"),
                // The editor finds no container to edit in it, before any parse.
                "editor::set_container_resource" => assert_ne!(outcome, "edited"),
                _ => assert!(
                    outcome.contains("deeper than 128 levels"),
                    "{reader}: {outcome}"
                ),
            }
        }
    }
    // JSON as the API server sends it: serde_json's own limit of 128 holds.
    let json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let err = serde_json::from_str::<serde_json::Value>(&json).unwrap_err();
    assert!(
        err.to_string().contains("recursion limit exceeded"),
        "{err}"
    );
}

#[test]
fn a_manifest_over_8_mib_is_refused_by_its_size() {
    let text = format!(
        "kind: ConfigMap\ndata:\n  big: \"{}\"\n",
        "x".repeat(yaml::MAX_YAML_BYTES)
    );
    for (reader, outcome) in every_reader(&text) {
        if !matches!(
            reader,
            "helm::value_at"
                | "helm::applications"
                | "Kustomization::read"
                | "editor::set_container_resource"
        ) {
            assert!(
                outcome.contains("at most 8388608 bytes"),
                "{reader}: {outcome}"
            );
        }
    }
}

#[test]
fn a_manifest_with_ordinary_anchors_still_reads() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  labels: &labels {app: api}\nspec:\n  selector:\n    matchLabels: *labels\n  template:\n    metadata:\n      labels: *labels\n    spec:\n      containers:\n      - name: api\n        image: registry.example/api:1.0\n";
    let docs = objects::parse("k8s/api.yaml", text).unwrap();
    assert_eq!(
        docs[0]["spec"]["template"]["metadata"]["labels"]["app"],
        "api"
    );
    let target = ContainerTarget {
        kind: "Deployment",
        name: "api",
        container: "api",
    };
    let edited = set_container_resource(text, &target, "limits", "memory", "1Gi").unwrap();
    assert!(edited.contains("memory: 1Gi"), "{edited}");
}

/// TOML (`squad.toml`, scenario files): the toml crate stops deep nesting itself.
#[test]
fn deeply_nested_toml_is_refused_with_its_position() {
    let arrays = format!("a = {}1{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let tables = format!("a = {}1{}\n", "{b = ".repeat(10_000), "}".repeat(10_000));
    for text in [&arrays, &tables] {
        let err = squad_config::Settings::from_toml("squad.toml", text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("squad.toml") && err.contains("line 1"),
            "{}",
            &err[..err.len().min(300)]
        );
        let err = squad_sim::Scenario::from_toml_str("hostile", text, Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hostile/scenario.toml"),
            "{}",
            &err[..err.len().min(300)]
        );
    }
}
