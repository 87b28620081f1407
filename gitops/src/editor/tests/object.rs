//! A key of any object, read and set whole.

use super::*;

const FILE: &str = "# The inventory service and its pods.
apiVersion: v1
kind: Service
metadata:
  name: inventory
spec:
  selector:
    app: inventory
  ports:
    - name: http   # what storefront calls
      port: 80
      targetPort: web
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: inventory
spec:
  template:
    metadata:
      labels:
        app: inventory
    spec:
      nodeSelector:
        pool: general # the shared pool
      containers:
        - name: app
          image: inventory:2
";

#[test]
fn a_key_of_another_document_is_read_and_set_alone() {
    let ports = object_key_lines(FILE, "Service", "inventory", &["spec", "ports"])
        .unwrap()
        .unwrap();
    assert_eq!(ports[0], "ports:");
    assert_eq!(ports[1], "  - name: http   # what storefront calls");
    let mut changed = ports.clone();
    changed[3] = "    targetPort: http".into();
    let edited = set_object_key(
        FILE,
        "Service",
        "inventory",
        &["spec", "ports"],
        Some(&changed),
    )
    .unwrap();
    assert_eq!(edited, FILE.replace("targetPort: web", "targetPort: http"));
    // Written back as read, nothing changes.
    let same = set_object_key(
        FILE,
        "Service",
        "inventory",
        &["spec", "ports"],
        Some(&ports),
    );
    assert_eq!(same.unwrap(), FILE);
}

#[test]
fn a_pod_template_key_is_replaced_added_or_removed() {
    let keys = ["spec", "template", "spec", "nodeSelector"];
    let now = object_key_lines(FILE, "Deployment", "inventory", &keys)
        .unwrap()
        .unwrap();
    assert_eq!(now, ["nodeSelector:", "  pool: general # the shared pool"]);
    let removed = set_object_key(FILE, "Deployment", "inventory", &keys, None).unwrap();
    assert!(!removed.contains("nodeSelector"), "{removed}");
    assert!(removed.contains("      containers:\n        - name: app"));
    let lines = vec!["strategy:".to_owned(), "  type: Recreate".to_owned()];
    let added = set_object_key(
        FILE,
        "Deployment",
        "inventory",
        &["spec", "strategy"],
        Some(&lines),
    )
    .unwrap();
    assert!(
        added.ends_with("          image: inventory:2\n  strategy:\n    type: Recreate\n"),
        "{added}"
    );
    // The Service's document is another kind: untouched.
    assert!(added.starts_with(&FILE[..FILE.find("---").unwrap()]));
}

#[test]
fn a_missing_document_or_parent_is_an_error_naming_it() {
    let err = set_object_key(FILE, "Service", "orders", &["spec", "ports"], None).unwrap_err();
    assert!(err.to_string().contains("Service/inventory"), "{err}");
    let lines = vec!["x: 1".to_owned()];
    let err =
        set_object_key(FILE, "Service", "inventory", &["status", "x"], Some(&lines)).unwrap_err();
    assert!(err.to_string().contains("status"), "{err}");
    assert_eq!(
        object_key_lines(FILE, "Service", "inventory", &["spec", "type"]).unwrap(),
        None
    );
    let bad = set_object_key(
        FILE,
        "Service",
        "inventory",
        &["spec", "ports"],
        Some(&lines),
    );
    assert!(bad.is_err(), "lines of another key");
}

#[test]
fn a_json_6902_operations_value_is_set_alone() {
    let patch = "# prod sizes\n- op: replace\n  path: /spec/replicas\n  value: 3\n- op: replace\n  path: /spec/template/spec/containers/0/resources/limits/memory\n  value: \"768Mi\" # sized in 2025\n";
    let out = set_patch_value(
        patch,
        "/spec/template/spec/containers/0/resources/limits/memory",
        "1Gi",
    )
    .unwrap();
    assert_eq!(out, patch.replace("\"768Mi\"", "\"1Gi\""));
    let err = set_patch_value(patch, "/spec/template/spec/containers/1/image", "x").unwrap_err();
    assert!(err.to_string().contains("containers/1/image"), "{err}");
    assert!(set_patch_value("kind: Deployment\n", "/a", "b").is_err());
}
