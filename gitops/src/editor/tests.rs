//! Unit tests of the manifest editor: exact line diffs of each edit, error messages, and an
//! independent `serde_yaml` comparison that only the intended field changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::locate::containers_keys;
use super::verify::{container_mapping, ensure_mapping, parse_documents, value_identity};
use super::*;

const DEPLOYMENT: &str = r#"# orders service, managed by Argo CD
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
  namespace: shop
  labels:
    app: orders   # keep in sync with the Service selector
spec:
  replicas: 3

  selector:
    matchLabels:
      app: orders
  template:
    metadata:
      labels:
        app: orders
      annotations:
        config/checksum: "abc123"
    spec:
      serviceAccountName: orders
      containers:
        # main application container
        - name: orders
          image: registry.example.com/orders:1.4.2
          command:
            - /bin/sh
            - -c
            - |
              # not structure: name: envoy
              resources:
                limits:
                  memory: 1Ti
              exec /app/orders
          ports:
            - containerPort: 8080
              name: http

          resources:
            limits:
              cpu: "1"
              memory: 512Mi # raised after INC-1234
            # requests are tuned for the p50 load
            requests:
              cpu: 250m
              memory: '256Mi'
          env:
            - name: LOG_LEVEL
              value: info
            - name: PORT
              value: "8080"

        - image: envoyproxy/envoy:v1.30
          name: envoy
          resources:
            limits:
              memory: 128Mi
            requests:
              memory: 64Mi
"#;

fn orders() -> ContainerTarget<'static> {
    ContainerTarget {
        kind: "Deployment",
        name: "orders",
        container: "orders",
    }
}

fn envoy() -> ContainerTarget<'static> {
    ContainerTarget {
        kind: "Deployment",
        name: "orders",
        container: "envoy",
    }
}

/// Line indices (0-based) whose text differs; both texts must have the same number of lines.
fn changed_lines(before: &str, after: &str) -> Vec<(usize, String, String)> {
    let b: Vec<&str> = before.split('\n').collect();
    let a: Vec<&str> = after.split('\n').collect();
    assert_eq!(b.len(), a.len(), "line count changed:\n{after}");
    b.iter()
        .zip(&a)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, (x, y))| (i, x.to_string(), y.to_string()))
        .collect()
}

/// The lines inserted into `before` to obtain `after` (all other lines identical, in order).
fn inserted_lines(before: &str, after: &str) -> Vec<String> {
    let b: Vec<&str> = before.split('\n').collect();
    let a: Vec<&str> = after.split('\n').collect();
    let prefix = b.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let suffix = b
        .iter()
        .rev()
        .zip(a.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
        .min(b.len() - prefix);
    assert_eq!(
        prefix + suffix,
        b.len(),
        "lines other than insertions changed:\n{after}"
    );
    a[prefix..a.len() - suffix]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn docs(yaml: &str) -> Vec<Value> {
    parse_documents(yaml).unwrap()
}

fn container_value<'v>(doc: &'v Value, keys: &[&str], name: &str) -> &'v Value {
    let mut current = doc;
    for key in keys {
        current = &current[*key];
    }
    current
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some(name))
        .unwrap()
}

/// Independent check with serde_yaml: only `resources.<section>.<key>` of the container differs.
fn assert_only_resource_changed(
    before: &str,
    after: &str,
    target: &ContainerTarget,
    section: &str,
    key: &str,
    expected: Value,
) {
    let mut want = docs(before);
    let got = docs(after);
    let doc = want
        .iter_mut()
        .find(|d| value_identity(d) == Some((target.kind.into(), target.name.into())))
        .unwrap();
    let keys = containers_keys(target.kind).unwrap();
    let container = container_mapping(doc, keys, target.container).unwrap();
    let resources = ensure_mapping(container, "resources").unwrap();
    ensure_mapping(resources, section)
        .unwrap()
        .insert(Value::from(key), expected);
    assert_eq!(want, got);
}

#[test]
fn replacing_limit_and_request_changes_exactly_those_lines_and_keeps_comments_and_quotes() {
    let step1 = set_container_resource(DEPLOYMENT, &orders(), "limits", "memory", "1Gi").unwrap();
    let step2 = set_container_resource(&step1, &orders(), "requests", "memory", "768Mi").unwrap();
    assert_eq!(
        changed_lines(DEPLOYMENT, &step2),
        vec![
            (
                42,
                "              memory: 512Mi # raised after INC-1234".to_string(),
                "              memory: 1Gi # raised after INC-1234".to_string()
            ),
            (
                46,
                "              memory: '256Mi'".to_string(),
                "              memory: '768Mi'".to_string()
            ),
        ]
    );
    // The sidecar keeps its values; the block scalar text that looks like resources is untouched.
    assert_eq!(
        container_resource(&step2, &envoy(), "limits", "memory")
            .unwrap()
            .as_deref(),
        Some("128Mi")
    );
    assert_eq!(
        container_resource(&step2, &envoy(), "requests", "memory")
            .unwrap()
            .as_deref(),
        Some("64Mi")
    );
    assert_eq!(
        container_resource(&step2, &orders(), "limits", "memory")
            .unwrap()
            .as_deref(),
        Some("1Gi")
    );
    assert_eq!(
        container_resource(&step2, &orders(), "requests", "memory")
            .unwrap()
            .as_deref(),
        Some("768Mi")
    );
    assert_only_resource_changed(
        DEPLOYMENT,
        &step1,
        &orders(),
        "limits",
        "memory",
        Value::from("1Gi"),
    );
    assert_only_resource_changed(
        &step1,
        &step2,
        &orders(),
        "requests",
        "memory",
        Value::from("768Mi"),
    );
}

#[test]
fn sidecar_edit_leaves_main_container_untouched() {
    let out = set_container_resource(DEPLOYMENT, &envoy(), "limits", "memory", "256Mi").unwrap();
    assert_eq!(
        changed_lines(DEPLOYMENT, &out),
        vec![(
            57,
            "              memory: 128Mi".to_string(),
            "              memory: 256Mi".to_string()
        )]
    );
    assert_only_resource_changed(
        DEPLOYMENT,
        &out,
        &envoy(),
        "limits",
        "memory",
        Value::from("256Mi"),
    );
}

#[test]
fn double_quoted_value_keeps_its_quotes() {
    let out = set_container_resource(DEPLOYMENT, &orders(), "limits", "cpu", "2").unwrap();
    assert_eq!(
        changed_lines(DEPLOYMENT, &out),
        vec![(
            41,
            "              cpu: \"1\"".to_string(),
            "              cpu: \"2\"".to_string()
        )]
    );
    assert_only_resource_changed(
        DEPLOYMENT,
        &out,
        &orders(),
        "limits",
        "cpu",
        Value::from("2"),
    );
}

#[test]
fn single_quoted_value_keeps_its_quotes_and_reads_unquoted() {
    assert_eq!(
        container_resource(DEPLOYMENT, &orders(), "requests", "memory")
            .unwrap()
            .as_deref(),
        Some("256Mi")
    );
    let out = set_container_resource(DEPLOYMENT, &orders(), "requests", "memory", "300Mi").unwrap();
    assert!(out.contains("              memory: '300Mi'\n"));
}

#[test]
fn trailing_comment_is_kept_with_its_spacing() {
    let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    resources:\n      limits:\n        memory: 1Gi     # see runbook #12\n";
    let target = ContainerTarget {
        kind: "Pod",
        name: "p",
        container: "app",
    };
    let out = set_container_resource(yaml, &target, "limits", "memory", "2Gi").unwrap();
    assert_eq!(
        changed_lines(yaml, &out),
        vec![(
            8,
            "        memory: 1Gi     # see runbook #12".to_string(),
            "        memory: 2Gi     # see runbook #12".to_string()
        )]
    );
}

#[test]
fn missing_key_is_added_to_existing_section() {
    let out = set_container_resource(DEPLOYMENT, &envoy(), "limits", "cpu", "500m").unwrap();
    assert_eq!(
        inserted_lines(DEPLOYMENT, &out),
        vec!["              cpu: 500m".to_string()]
    );
    let pos = out.find("              cpu: 500m").unwrap();
    assert!(out[..pos].ends_with("              memory: 128Mi\n"));
    assert_only_resource_changed(
        DEPLOYMENT,
        &out,
        &envoy(),
        "limits",
        "cpu",
        Value::from("500m"),
    );
}

#[test]
fn missing_resources_block_is_created_with_the_files_indentation() {
    // 4-space mappings, lists indented by 2 under their key.
    let yaml = "\
apiVersion: apps/v1
kind: StatefulSet
metadata:
    name: db
spec:
    template:
        spec:
            containers:
              - name: postgres
                image: postgres:16
                ports:
                  - containerPort: 5432
              # metrics exporter
              - name: exporter
                image: exporter:1
";
    let target = ContainerTarget {
        kind: "StatefulSet",
        name: "db",
        container: "postgres",
    };
    let out = set_container_resource(yaml, &target, "limits", "memory", "2Gi").unwrap();
    assert_eq!(
        inserted_lines(yaml, &out),
        vec![
            "                resources:".to_string(),
            "                    limits:".to_string(),
            "                        memory: 2Gi".to_string(),
        ]
    );
    assert!(out.contains("                  - containerPort: 5432\n                resources:\n"));
    assert_only_resource_changed(yaml, &out, &target, "limits", "memory", Value::from("2Gi"));

    let out2 = set_container_resource(&out, &target, "requests", "memory", "1Gi").unwrap();
    assert_eq!(
        inserted_lines(&out, &out2),
        vec![
            "                    requests:".to_string(),
            "                        memory: 1Gi".to_string(),
        ]
    );
    assert_only_resource_changed(
        &out,
        &out2,
        &target,
        "requests",
        "memory",
        Value::from("1Gi"),
    );
}

#[test]
fn missing_requests_section_is_created_after_limits() {
    let out = set_container_resource(DEPLOYMENT, &envoy(), "requests", "cpu", "100m").unwrap();
    assert_eq!(
        inserted_lines(DEPLOYMENT, &out),
        vec!["              cpu: 100m".to_string()]
    );

    let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    resources:\n      limits:\n        memory: 1Gi\n    image: app:1\n";
    let target = ContainerTarget {
        kind: "Pod",
        name: "p",
        container: "app",
    };
    let out = set_container_resource(yaml, &target, "requests", "memory", "512Mi").unwrap();
    assert_eq!(
        inserted_lines(yaml, &out),
        vec![
            "      requests:".to_string(),
            "        memory: 512Mi".to_string()
        ]
    );
    assert_only_resource_changed(
        yaml,
        &out,
        &target,
        "requests",
        "memory",
        Value::from("512Mi"),
    );
}

#[test]
fn dash_at_same_indent_as_parent_key_is_supported() {
    let yaml = "\
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: web
        image: nginx
        env:
        - name: A
          value: \"1\"
        resources:
          limits:
            memory: 64Mi
      - name: sidecar
        image: busybox
";
    let web = ContainerTarget {
        kind: "Deployment",
        name: "web",
        container: "web",
    };
    let sidecar = ContainerTarget {
        kind: "Deployment",
        name: "web",
        container: "sidecar",
    };
    let out = set_container_resource(yaml, &web, "limits", "memory", "128Mi").unwrap();
    assert_eq!(
        changed_lines(yaml, &out),
        vec![(
            14,
            "            memory: 64Mi".to_string(),
            "            memory: 128Mi".to_string()
        )]
    );
    assert_eq!(
        container_env_names(yaml, &web).unwrap(),
        vec!["A".to_string()]
    );

    let out = set_container_resource(yaml, &sidecar, "limits", "cpu", "100m").unwrap();
    assert_eq!(
        inserted_lines(yaml, &out),
        vec![
            "        resources:".to_string(),
            "          limits:".to_string(),
            "            cpu: 100m".to_string(),
        ]
    );
    assert!(out.ends_with(
        "        image: busybox\n        resources:\n          limits:\n            cpu: 100m\n"
    ));
    assert_only_resource_changed(yaml, &out, &sidecar, "limits", "cpu", Value::from("100m"));

    // New env lists follow the compact style of the file.
    let out = add_container_env(yaml, &sidecar, &["- name: B", "  value: two"], "B").unwrap();
    assert_eq!(
        inserted_lines(yaml, &out),
        vec![
            "        env:".to_string(),
            "        - name: B".to_string(),
            "          value: two".to_string()
        ]
    );
}

#[test]
fn multi_document_file_edits_only_the_selected_document() {
    let yaml = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: orders
data:
  spec.yaml: |
    kind: Deployment
    metadata:
      name: orders
---
# the real one
apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments
spec:
  template:
    spec:
      containers:
        - name: orders
          resources:
            limits:
              memory: 1Gi
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
spec:
  template:
    spec:
      containers:
        - name: orders
          resources:
            limits:
              memory: 1Gi
...
";
    let out = set_container_resource(yaml, &orders(), "limits", "memory", "3Gi").unwrap();
    assert_eq!(
        changed_lines(yaml, &out),
        vec![(
            35,
            "              memory: 1Gi".to_string(),
            "              memory: 3Gi".to_string()
        )]
    );
    assert_only_resource_changed(
        yaml,
        &out,
        &orders(),
        "limits",
        "memory",
        Value::from("3Gi"),
    );
}

#[test]
fn pod_and_cronjob_paths_are_supported() {
    let cron = "\
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: \"0 3 * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: report
              image: report:2
";
    let target = ContainerTarget {
        kind: "CronJob",
        name: "nightly",
        container: "report",
    };
    let out = set_container_resource(cron, &target, "requests", "cpu", "1").unwrap();
    assert_eq!(
        inserted_lines(cron, &out),
        vec![
            "              resources:".to_string(),
            "                requests:".to_string(),
            "                  cpu: 1".to_string(),
        ]
    );
    assert_only_resource_changed(cron, &out, &target, "requests", "cpu", Value::from(1));
}

#[test]
fn empty_flow_resources_become_block_style() {
    let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - image: app:1\n    name: app\n    resources: {}  # defaults\n";
    let target = ContainerTarget {
        kind: "Pod",
        name: "p",
        container: "app",
    };
    let out = set_container_resource(yaml, &target, "limits", "memory", "1Gi").unwrap();
    assert_eq!(
        out,
        "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - image: app:1\n    name: app\n    resources:  # defaults\n      limits:\n        memory: 1Gi\n"
    );
    assert_eq!(
        container_resource(yaml, &target, "limits", "memory").unwrap(),
        None
    );
}

#[test]
fn flow_style_resources_are_unsupported_and_name_the_path() {
    let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    resources: {limits: {memory: 1Gi}}\n";
    let target = ContainerTarget {
        kind: "Pod",
        name: "p",
        container: "app",
    };
    let err = set_container_resource(yaml, &target, "limits", "memory", "2Gi").unwrap_err();
    assert!(
        matches!(err, ManifestError::Unsupported { line: 7, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("Pod/p"), "{message}");
    assert!(
        message.contains("spec.containers[name=app].resources"),
        "{message}"
    );
    assert!(message.contains("flow style"), "{message}");
    assert!(container_resource(yaml, &target, "limits", "memory").is_err());
}

#[test]
fn crlf_line_endings_and_missing_final_newline_are_preserved() {
    let yaml = "kind: Pod\r\nmetadata:\r\n  name: p\r\nspec:\r\n  containers:\r\n  - name: app\r\n    image: app:1";
    let target = ContainerTarget {
        kind: "Pod",
        name: "p",
        container: "app",
    };
    let out = set_container_resource(yaml, &target, "limits", "memory", "1Gi").unwrap();
    assert_eq!(
        out,
        "kind: Pod\r\nmetadata:\r\n  name: p\r\nspec:\r\n  containers:\r\n  - name: app\r\n    image: app:1\r\n    resources:\r\n      limits:\r\n        memory: 1Gi"
    );
}

#[test]
fn unknown_container_error_lists_the_available_ones() {
    let target = ContainerTarget {
        kind: "Deployment",
        name: "orders",
        container: "worker",
    };
    let err = set_container_resource(DEPLOYMENT, &target, "limits", "memory", "1Gi").unwrap_err();
    assert_eq!(
        err,
        ManifestError::ContainerNotFound {
            document: "Deployment/orders".to_string(),
            path: "spec.template.spec.containers".to_string(),
            container: "worker".to_string(),
            available: vec!["orders".to_string(), "envoy".to_string()],
        }
    );
    assert_eq!(
        err.to_string(),
        "Deployment/orders: no container named `worker` in `spec.template.spec.containers`; containers present: `orders`, `envoy`"
    );
}

#[test]
fn unknown_document_error_lists_the_documents_present() {
    let target = ContainerTarget {
        kind: "StatefulSet",
        name: "orders",
        container: "orders",
    };
    let err = container_resource(DEPLOYMENT, &target, "limits", "memory").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no document with kind `StatefulSet` and metadata.name `orders`; documents present: `Deployment/orders`"
    );
}

#[test]
fn missing_containers_and_bad_arguments_are_reported() {
    let yaml = "kind: Deployment\nmetadata:\n  name: orders\nspec:\n  replicas: 1\n";
    let err = container_env_names(yaml, &orders()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Deployment/orders: `spec.template` not found; expected a mapping"
    );

    let err = set_container_resource(DEPLOYMENT, &orders(), "limit", "memory", "1Gi").unwrap_err();
    assert!(err.to_string().contains("`limits` or `requests`"), "{err}");
    let err =
        set_container_resource(DEPLOYMENT, &orders(), "limits", "memory", "1 GB").unwrap_err();
    assert!(err.to_string().contains("Kubernetes quantity"), "{err}");
    let target = ContainerTarget {
        kind: "Service",
        name: "orders",
        container: "orders",
    };
    assert!(container_env_names(DEPLOYMENT, &target).is_err());
}

#[test]
fn duplicate_documents_are_ambiguous() {
    let yaml = "kind: Pod\nmetadata:\n  name: p\n  namespace: a\nspec:\n  containers:\n  - name: app\n---\nkind: Pod\nmetadata:\n  name: p\n  namespace: b\nspec:\n  containers:\n  - name: app\n";
    let target = ContainerTarget {
        kind: "Pod",
        name: "p",
        container: "app",
    };
    let err = container_env_names(yaml, &target).unwrap_err();
    assert!(
        matches!(err, ManifestError::AmbiguousDocument { count: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn editing_an_anchored_node_fails_verification() {
    let yaml = "\
kind: Deployment
metadata:
  name: orders
spec:
  template:
    spec:
      containers:
        - name: orders
          resources: &res
            limits:
              memory: 1Gi
        - name: envoy
          resources: *res
";
    let err = set_container_resource(yaml, &orders(), "limits", "memory", "2Gi").unwrap_err();
    assert!(matches!(err, ManifestError::Verification { .. }), "{err:?}");
    let err = set_container_resource(yaml, &envoy(), "limits", "memory", "2Gi").unwrap_err();
    assert!(matches!(err, ManifestError::Unsupported { .. }), "{err:?}");
}

#[test]
fn new_lines_go_after_a_trailing_block_scalar_of_the_container() {
    let yaml = "\
---
# leading comment
kind: Pod
metadata:
  name: p
spec:
  containers:
  -
    name: app
    args:
    - |
      name: fake
      resources: {}

      tail
  # comment about the next container
  - name: other
";
    let target = ContainerTarget {
        kind: "Pod",
        name: "p",
        container: "app",
    };
    assert!(container_env_names(yaml, &target).unwrap().is_empty());
    let out = set_container_resource(yaml, &target, "limits", "memory", "1Gi").unwrap();
    assert_eq!(
        inserted_lines(yaml, &out),
        vec!["    resources:", "      limits:", "        memory: 1Gi"]
    );
    assert!(out.contains("      tail\n    resources:\n"), "{out}");
    assert_only_resource_changed(yaml, &out, &target, "limits", "memory", Value::from("1Gi"));
}

#[test]
fn empty_value_gets_the_new_value() {
    let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    resources:\n      limits:\n        memory:   # TODO\n";
    let target = ContainerTarget {
        kind: "Pod",
        name: "p",
        container: "app",
    };
    assert_eq!(
        container_resource(yaml, &target, "limits", "memory").unwrap(),
        None
    );
    let out = set_container_resource(yaml, &target, "limits", "memory", "1Gi").unwrap();
    assert!(out.ends_with("        memory: 1Gi   # TODO\n"), "{out}");
}

mod env;
mod keys;
mod object;
