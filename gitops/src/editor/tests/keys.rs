//! The whole-key edits: a container key from another version, an env item, a values key.

use super::*;

#[test]
fn a_key_is_read_as_written_and_written_back_unchanged() {
    let lines = container_key_lines(DEPLOYMENT, &orders(), "command")
        .unwrap()
        .unwrap();
    assert_eq!(lines[0], "command:");
    assert_eq!(lines[1], "  - /bin/sh");
    assert!(
        lines.iter().any(|l| l == "    exec /app/orders"),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 9, "the block scalar's text belongs to the key");
    let same = set_container_key(DEPLOYMENT, &orders(), "command", Some(&lines)).unwrap();
    assert_eq!(same, DEPLOYMENT);
    assert_eq!(
        container_key_lines(DEPLOYMENT, &orders(), "workingDir").unwrap(),
        None
    );
}

#[test]
fn a_key_takes_another_versions_lines_and_nothing_else_moves() {
    let image = ["image: registry.example.com/orders:1.4.1".to_string()];
    let out = set_container_key(DEPLOYMENT, &orders(), "image", Some(&image)).unwrap();
    assert_eq!(
        changed_lines(DEPLOYMENT, &out),
        vec![(
            25,
            "          image: registry.example.com/orders:1.4.2".to_string(),
            "          image: registry.example.com/orders:1.4.1".to_string()
        )]
    );
    // A block scalar and its list replaced by a flow list: the whole block goes, one line comes.
    let command = [r#"command: ["/app/orders", "--serve"]"#.to_string()];
    let out = set_container_key(DEPLOYMENT, &orders(), "command", Some(&command)).unwrap();
    assert!(out.contains("          command: [\"/app/orders\", \"--serve\"]\n          ports:\n"));
    assert!(!out.contains("exec /app/orders"));
    let docs = parse_documents(&out).unwrap();
    let mut doc = docs[0].clone();
    let c = container_mapping(&mut doc, containers_keys("Deployment").unwrap(), "orders").unwrap();
    assert_eq!(c.get("command").unwrap().as_sequence().unwrap().len(), 2);
    assert!(out.contains("memory: 512Mi # raised after INC-1234"));
}

#[test]
fn a_key_is_removed_with_its_block_or_added_at_the_containers_end() {
    let out = set_container_key(DEPLOYMENT, &orders(), "command", None).unwrap();
    assert!(!out.contains("command:") && !out.contains("exec /app/orders"));
    assert!(out.contains("          image: registry.example.com/orders:1.4.2\n          ports:\n"));
    let probe: Vec<String> = [
        "readinessProbe:",
        "  httpGet:",
        "    path: /healthz",
        "    port: http",
    ]
    .map(String::from)
    .to_vec();
    let out = set_container_key(DEPLOYMENT, &envoy(), "readinessProbe", Some(&probe)).unwrap();
    assert!(
        out.ends_with("              memory: 64Mi\n          readinessProbe:\n            httpGet:\n              path: /healthz\n              port: http\n"),
        "{out}"
    );
    // Removing a key the container does not set changes nothing.
    assert_eq!(
        set_container_key(DEPLOYMENT, &envoy(), "livenessProbe", None).unwrap(),
        DEPLOYMENT
    );
}

#[test]
fn key_lines_must_be_that_key_alone_and_name_is_not_a_key() {
    let err = set_container_key(
        DEPLOYMENT,
        &orders(),
        "image",
        Some(&["args: [x]".to_string()]),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("`image:` on the first line"),
        "{err}"
    );
    let err = set_container_key(DEPLOYMENT, &orders(), "name", None).unwrap_err();
    assert!(err.to_string().contains("container key"), "{err}");
    // The key on the item's dash line cannot go alone.
    let err = set_container_key(DEPLOYMENT, &envoy(), "image", None).unwrap_err();
    assert!(err.to_string().contains("first line"), "{err}");
    // …but can take other lines.
    let out = set_container_key(
        DEPLOYMENT,
        &envoy(),
        "image",
        Some(&["image: envoyproxy/envoy:v1.29".to_string()]),
    )
    .unwrap();
    assert!(out.contains("        - image: envoyproxy/envoy:v1.29\n          name: envoy\n"));
}

#[test]
fn an_env_item_is_replaced_in_place_with_its_children() {
    let item = [
        "- name: PORT",
        "  valueFrom:",
        "    configMapKeyRef:",
        "      name: orders",
        "      key: port",
    ];
    let out = replace_container_env(DEPLOYMENT, &orders(), &item, "PORT").unwrap();
    assert!(
        out.contains("            - name: LOG_LEVEL\n              value: info\n            - name: PORT\n              valueFrom:\n                configMapKeyRef:\n                  name: orders\n                  key: port\n\n        - image: envoyproxy"),
        "{out}"
    );
    let err = replace_container_env(DEPLOYMENT, &envoy(), &item, "PORT").unwrap_err();
    assert!(err.to_string().contains("an env item named PORT"), "{err}");
}

const VALUES: &str = "# Production's values.\nreplicaCount: 3\nimage:\n  repository: ghcr.io/acme/web\n  tag: \"2.5.0\" # bumped by CI\nresources:\n  limits:\n    memory: 512Mi\n";

#[test]
fn a_values_key_is_set_in_place_or_added_with_its_parents() {
    let out = set_value(VALUES, &["image", "tag"], "2.4.2").unwrap();
    assert_eq!(
        out,
        VALUES.replace("\"2.5.0\" # bumped", "\"2.4.2\" # bumped")
    );
    let out = set_value(VALUES, &["resources", "limits", "memory"], "1Gi").unwrap();
    assert_eq!(out, VALUES.replace("memory: 512Mi", "memory: 1Gi"));
    let out = set_value(VALUES, &["resources", "requests", "memory"], "768Mi").unwrap();
    assert!(
        out.ends_with("    memory: 512Mi\n  requests:\n    memory: 768Mi\n"),
        "{out}"
    );
    let out = set_value(VALUES, &["podAnnotations", "team"], "shop").unwrap();
    assert!(
        out.ends_with("    memory: 512Mi\npodAnnotations:\n  team: shop\n"),
        "{out}"
    );
    assert_eq!(set_value("", &["a", "b"], "1").unwrap(), "a:\n  b: 1\n");
    let on = set_value(
        "autoscaling:\n  enabled: false # off\n",
        &["autoscaling", "enabled"],
        "true",
    );
    assert_eq!(on.unwrap(), "autoscaling:\n  enabled: true # off\n");
    let added = set_value(VALUES, &["autoscaling", "enabled"], "true").unwrap();
    assert!(
        added.ends_with("autoscaling:\n  enabled: true\n"),
        "{added}"
    );
    let err = set_value(VALUES, &["replicaCount", "x"], "1").unwrap_err();
    assert!(err.to_string().contains("replicaCount"), "{err}");
}
