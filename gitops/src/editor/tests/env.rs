//! `env:` items: added, read, cut out of another version.

use super::*;

#[test]
fn add_env_appends_to_existing_list_reindented() {
    let item = [
        "- name: DATABASE_URL",
        "  valueFrom:",
        "    secretKeyRef:",
        "      name: orders-db",
        "      key: url",
    ];
    let out = add_container_env(DEPLOYMENT, &orders(), &item, "DATABASE_URL").unwrap();
    assert_eq!(
        inserted_lines(DEPLOYMENT, &out),
        vec![
            "            - name: DATABASE_URL",
            "              valueFrom:",
            "                secretKeyRef:",
            "                  name: orders-db",
            "                  key: url",
        ]
    );
    // Inserted after the last item, before the blank line that separates the sidecar.
    assert!(out.contains("              value: \"8080\"\n            - name: DATABASE_URL\n"));
    assert_eq!(
        container_env_names(&out, &orders()).unwrap(),
        vec!["LOG_LEVEL", "PORT", "DATABASE_URL"]
    );

    let mut want = docs(DEPLOYMENT);
    let keys = containers_keys("Deployment").unwrap();
    let env = container_mapping(&mut want[0], keys, "orders")
        .unwrap()
        .get_mut("env")
        .unwrap()
        .as_sequence_mut()
        .unwrap();
    env.push(
        serde_yaml::from_str(
            "name: DATABASE_URL\nvalueFrom:\n  secretKeyRef:\n    name: orders-db\n    key: url\n",
        )
        .unwrap(),
    );
    assert_eq!(want, docs(&out));
}

#[test]
fn add_env_creates_env_list_when_absent() {
    let indented_item = ["    - name: FEATURE_X", "      value: \"on\""];
    let out = add_container_env(DEPLOYMENT, &envoy(), &indented_item, "FEATURE_X").unwrap();
    assert_eq!(
        inserted_lines(DEPLOYMENT, &out),
        vec![
            "          env:",
            "            - name: FEATURE_X",
            "              value: \"on\"",
        ]
    );
    assert!(out.ends_with("              memory: 64Mi\n          env:\n            - name: FEATURE_X\n              value: \"on\"\n"));
    assert_eq!(
        container_env_names(&out, &envoy()).unwrap(),
        vec!["FEATURE_X"]
    );
    let parsed = docs(&out);
    let envoy_env =
        &container_value(&parsed[0], containers_keys("Deployment").unwrap(), "envoy")["env"];
    assert_eq!(envoy_env[0]["value"], Value::from("on"));
}

#[test]
fn add_env_fills_an_empty_flow_list() {
    let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    env: []\n    image: app:1\n";
    let target = ContainerTarget {
        kind: "Pod",
        name: "p",
        container: "app",
    };
    let out = add_container_env(yaml, &target, &["- name: A", "  value: b"], "A").unwrap();
    assert_eq!(
        out,
        "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    env:\n    - name: A\n      value: b\n    image: app:1\n"
    );
}

#[test]
fn add_env_rejects_an_existing_name() {
    let err = add_container_env(
        DEPLOYMENT,
        &orders(),
        &["- name: PORT", "  value: \"9090\""],
        "PORT",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Deployment/orders: env var `PORT` already exists in `spec.template.spec.containers[name=orders].env`"
    );
}

#[test]
fn add_env_rejects_items_that_do_not_match_the_name_or_are_not_one_item() {
    let err = add_container_env(
        DEPLOYMENT,
        &orders(),
        &["- name: OTHER", "  value: x"],
        "WANTED",
    )
    .unwrap_err();
    assert!(
        matches!(err, ManifestError::InvalidArgument { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("name: WANTED"), "{err}");

    let err =
        add_container_env(DEPLOYMENT, &orders(), &["- name: A", "- name: B"], "A").unwrap_err();
    assert!(err.to_string().contains("single list item"), "{err}");

    let err = add_container_env(DEPLOYMENT, &orders(), &["name: A"], "A").unwrap_err();
    assert!(err.to_string().contains("`- `"), "{err}");
}

#[test]
fn env_names_are_read_whatever_the_key_order() {
    let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    env:\n    - value: x\n      name: \"QUOTED\"\n    # comment\n    - name: PLAIN # trailing\n      value: y\n";
    let target = ContainerTarget {
        kind: "Pod",
        name: "p",
        container: "app",
    };
    assert_eq!(
        container_env_names(yaml, &target).unwrap(),
        vec!["QUOTED", "PLAIN"]
    );
}

#[test]
fn env_item_is_cut_out_with_its_children() {
    let y = "      env:\n        - name: A\n          value: x\n        - name: DATABASE_URL\n          valueFrom:\n            secretKeyRef:\n              name: db\n              key: url\n        - name: B\n";
    assert_eq!(
        env_item_lines(y, "DATABASE_URL").unwrap(),
        vec![
            "- name: DATABASE_URL",
            "  valueFrom:",
            "    secretKeyRef:",
            "      name: db",
            "      key: url"
        ]
    );
}
