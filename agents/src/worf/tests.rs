#![allow(clippy::unwrap_used)]
use std::collections::BTreeMap;

use squad_protocols::cluster::{
    ContainerSpec, ImageVulnerability, NetworkPolicyInfo, RbacRule, WorkloadInfo,
};

use super::*;

fn rule(verbs: &[&str], resources: &[&str], cluster_wide: bool) -> RbacRule {
    RbacRule {
        role: "role/app".into(),
        binding: "rolebinding/app".into(),
        cluster_wide,
        api_groups: vec![String::new()],
        resources: resources.iter().map(|s| (*s).into()).collect(),
        resource_names: Vec::new(),
        verbs: verbs.iter().map(|s| (*s).into()).collect(),
    }
}

fn workload(secure: bool) -> WorkloadInfo {
    WorkloadInfo {
        init_containers: Vec::new(),
        kind: "Deployment".into(),
        namespace: "shop".into(),
        name: "cart".into(),
        replicas: 2,
        service_account: "cart".into(),
        pod_labels: BTreeMap::from([("app".into(), "cart".into())]),
        containers: vec![ContainerSpec {
            name: "api".into(),
            image: "r/cart:1".into(),
            limits: BTreeMap::new(),
            requests: BTreeMap::new(),
            env: Vec::new(),
            run_as_non_root: Some(secure),
            privileged: Some(!secure),
            allow_privilege_escalation: Some(!secure),
            read_only_root_filesystem: Some(secure),
            has_readiness_probe: true,
            has_liveness_probe: true,
            ports: Vec::new(),
            readiness_probe: None,
            liveness_probe: None,
            command: Vec::new(),
            args: Vec::new(),
        }],
        pod_run_as_non_root: None,
        placement: Default::default(),
        claims: Vec::new(),
        conditions: Vec::new(),
        pod_security: serde_json::Value::Null,
    }
}

fn policy(selector: &[(&str, &str)], types: &[&str]) -> NetworkPolicyInfo {
    NetworkPolicyInfo {
        name: "p".into(),
        pod_selector: selector
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        policy_types: types.iter().map(|s| (*s).into()).collect(),
        ingress_rules: 1,
        egress_rules: 0,
        egress: Vec::new(),
        ingress: Vec::new(),
    }
}

#[test]
fn rbac_wildcards_are_critical_secret_reads_high_and_cluster_bindings_medium() {
    let found = review_rbac(
        "cart",
        &[
            rule(&["*"], &["pods"], false),
            rule(&["list"], &["secrets"], true),
            rule(&["get"], &["configmaps"], true),
            rule(&["get"], &["configmaps"], false),
        ],
    );
    let severities: Vec<Severity> = found.iter().map(|f| f.severity).collect();
    assert_eq!(
        severities,
        [Severity::Critical, Severity::High, Severity::Medium]
    );
    assert!(
        found[1].title.contains("in every namespace"),
        "{}",
        found[1].title
    );
}

#[test]
fn built_in_roles_escalation_verbs_the_kubelet_and_exec_are_named() {
    let r =
        |role: &str, binding: &str, wide: bool, groups: &[&str], res: &[&str], verbs: &[&str]| {
            RbacRule {
                role: role.into(),
                binding: binding.into(),
                cluster_wide: wide,
                api_groups: groups.iter().map(|s| (*s).into()).collect(),
                resources: res.iter().map(|s| (*s).into()).collect(),
                resource_names: Vec::new(),
                verbs: verbs.iter().map(|s| (*s).into()).collect(),
            }
        };
    let found = review_rbac(
        "ci",
        &[
            // The built-in role, read without its rules (the lookup did not hold it).
            r(
                "ClusterRole/cluster-admin",
                "ClusterRoleBinding/ci-admin",
                true,
                &[],
                &[],
                &[],
            ),
            r(
                "ClusterRole/edit",
                "RoleBinding/ci-edit",
                false,
                &[],
                &[],
                &[],
            ),
            r(
                "Role/ci",
                "RoleBinding/ci",
                false,
                &["rbac.authorization.k8s.io"],
                &["roles"],
                &["bind", "escalate"],
            ),
            r(
                "Role/ci",
                "RoleBinding/ci",
                false,
                &[""],
                &["nodes/proxy"],
                &["get"],
            ),
            r(
                "Role/ci",
                "RoleBinding/ci",
                false,
                &[""],
                &["pods/exec"],
                &["create"],
            ),
            r(
                "Role/ci",
                "RoleBinding/ci",
                false,
                &["*"],
                &["deployments"],
                &["get"],
            ),
        ],
    );
    let got: Vec<(Severity, &str)> = found
        .iter()
        .map(|f| (f.severity, f.title.as_str()))
        .collect();
    let has = |sev: Severity, text: &str| {
        assert!(
            got.iter().any(|(s, t)| *s == sev && t.contains(text)),
            "no {sev:?} finding with {text:?} in {got:#?}"
        )
    };
    has(
        Severity::Critical,
        "built-in cluster-admin role in every namespace",
    );
    has(Severity::High, "built-in edit role in its namespace");
    has(Severity::Critical, "can [\"bind\", \"escalate\"]");
    has(Severity::Critical, "kubelet API (nodes/proxy)");
    has(Severity::High, "can exec into pods");
    has(Severity::High, "in every API group");
    has(
        Severity::Medium,
        "bound cluster-wide via ClusterRoleBinding/ci-admin",
    );
    assert_eq!(found.len(), 7, "{got:#?}");
}

#[test]
fn a_token_mounted_for_a_service_account_granted_nothing_is_named() {
    let mut w = workload(true);
    w.pod_security = serde_json::json!({ "spec": { "containers": [{ "name": "cart" }] } });
    assert!(review_token(&w, &[]).is_some());
    w.pod_security["spec"]["automountServiceAccountToken"] = serde_json::json!(false);
    assert!(review_token(&w, &[]).is_none());
}

#[test]
fn a_workload_no_policy_selects_is_open_and_ingress_only_leaves_egress_open() {
    let w = workload(true);
    assert_eq!(
        review_network(&w, &[policy(&[("app", "other")], &["Ingress"])])[0].severity,
        Severity::High
    );
    let egress_open = review_network(&w, &[policy(&[("app", "cart")], &["Ingress"])]);
    assert!(
        egress_open[0]
            .title
            .contains("egress from cart is unrestricted")
    );
    assert!(review_network(&w, &[policy(&[("app", "cart")], &["Ingress", "Egress"])]).is_empty());
}

#[test]
fn network_rules_open_to_every_namespace_or_address_are_named_with_their_ports() {
    use squad_protocols::cluster::{EgressRule, IngressRule, PolicyPeer, PolicyPort};
    let w = workload(true);
    let port = |p: &str, proto: &str| PolicyPort {
        protocol: proto.into(),
        port: Some(p.into()),
        end_port: None,
    };
    let every_ns = PolicyPeer {
        namespace_selector: Some(Default::default()),
        ..Default::default()
    };
    let labelled_ns = PolicyPeer {
        namespace_selector: Some([("team".to_string(), "shop".to_string())].into()),
        ..Default::default()
    };
    let internet = PolicyPeer {
        ip_block: Some(("0.0.0.0/0".into(), Vec::new())),
        ..Default::default()
    };
    let mut p = policy(&[("app", "cart")], &[]);
    p.name = "cart-net".into();
    p.ingress = vec![
        IngressRule {
            from: vec![labelled_ns.clone()],
            ports: vec![port("8080", "TCP")],
        },
        IngressRule {
            from: vec![every_ns],
            ports: vec![port("9090", "TCP")],
        },
    ];
    // policyTypes unset with egress rules: both directions are isolated.
    p.egress_rules = 3;
    p.egress = vec![
        EgressRule {
            to: Vec::new(),
            ports: vec![port("53", "UDP"), port("53", "TCP")],
        },
        EgressRule {
            to: vec![labelled_ns],
            ports: Vec::new(),
        },
        EgressRule {
            to: vec![internet],
            ports: vec![port("443", "TCP")],
        },
    ];
    let found = review_network(&w, &[p.clone()]);
    let titles: Vec<&str> = found.iter().map(|f| f.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "NetworkPolicy cart-net lets every pod of every namespace reach cart's pods on 9090/TCP",
            "NetworkPolicy cart-net lets cart's pods reach every address (in the cluster or not) on 443/TCP",
        ],
        "{found:#?}"
    );
    assert_eq!(found[0].severity, Severity::Medium);
    assert_eq!(found[1].severity, Severity::Low);
    // An ingress rule with no `from` admits every source; egress rules with no `to` and no
    // ports reach everything.
    p.ingress = vec![IngressRule::default()];
    p.egress = vec![EgressRule::default()];
    let titles: Vec<String> = review_network(&w, &[p.clone()])
        .into_iter()
        .map(|f| f.title)
        .collect();
    assert_eq!(
        titles,
        [
            "NetworkPolicy cart-net lets every source (in the cluster or not) reach cart's pods on every port",
            "NetworkPolicy cart-net lets cart's pods reach every destination on every port",
        ]
    );
    // A policy for egress only leaves ingress open.
    p.policy_types = vec!["Egress".into()];
    p.egress = Vec::new();
    let found = review_network(&w, &[p]);
    assert_eq!(found[0].title, "ingress to cart is unrestricted");
}

#[test]
fn pod_security_flags_each_missing_control_and_nothing_on_a_hardened_pod() {
    assert!(review_pod_security(&workload(true)).is_empty());
    let titles: Vec<String> = review_pod_security(&workload(false))
        .into_iter()
        .map(|f| f.title)
        .collect();
    assert_eq!(titles.len(), 4, "{titles:?}");
    assert!(titles[0].contains("runs privileged"));
}

#[test]
fn pod_security_with_the_templates_view_says_the_level_and_each_control() {
    let mut w = workload(true);
    w.pod_security = serde_json::json!({
        "spec": {
            "hostNetwork": true,
            "containers": [{
                "name": "cart",
                "securityContext": { "allowPrivilegeEscalation": false, "runAsNonRoot": true }
            }]
        }
    });
    let f = review_pod_security(&w);
    assert_eq!(f[0].severity, Severity::Info);
    assert!(f[0].title.contains("privileged level"), "{}", f[0].title);
    let host = f
        .iter()
        .find(|f| f.title.contains("Host Namespaces"))
        .unwrap();
    assert_eq!(host.severity, Severity::Critical);
    assert!(
        host.title.contains("host namespaces (hostNetwork=true)"),
        "{}",
        host.title
    );
    let seccomp = f.iter().find(|f| f.title.starts_with("Seccomp")).unwrap();
    assert_eq!(seccomp.severity, Severity::Medium);
    // A template that meets restricted, read-only: nothing to say.
    w.pod_security = serde_json::json!({
        "spec": {
            "securityContext": { "runAsNonRoot": true, "seccompProfile": { "type": "RuntimeDefault" } },
            "containers": [{
                "name": "cart",
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": { "drop": ["ALL"] }
                }
            }]
        }
    });
    assert_eq!(review_pod_security(&w), []);
}

#[test]
fn image_findings_keep_the_scanners_severity() {
    let v = ImageVulnerability {
        id: "CVE-2025-0395".into(),
        package: "glibc".into(),
        installed: "2.36".into(),
        fixed: "2.37".into(),
        severity: "HIGH".into(),
        title: "overflow".into(),
    };
    let f = review_image("r/cart:1", &[v]);
    assert_eq!(f[0].severity, Severity::High);
    assert!(f[0].detail.ends_with("fixed in 2.37"));
}

#[test]
fn a_model_may_only_rank_findings_the_review_made() {
    let findings = review_network(&workload(true), &[]);
    let title = findings[0].title.clone();
    let answer = |fix_first: Vec<String>| SecurityAssessment {
        summary: "The pods accept traffic from anywhere.".into(),
        fix_first,
    };
    assert!(check_assessment(&answer(vec![title.clone()]), &findings).is_ok());
    assert!(
        check_assessment(&answer(vec!["an invented finding".into()]), &findings)
            .unwrap_err()
            .0
            .contains("is not one of the review's findings")
    );
    assert!(
        check_assessment(&answer(vec![]), &findings)
            .unwrap_err()
            .0
            .contains("high severity")
    );
    assert!(check_assessment(&answer(vec![title.clone(), title]), &findings).is_err());
}

#[test]
fn literal_credentials_in_the_repository_are_named_by_file_line_and_kind_never_value() {
    let redactor = squad_runtime::redact::Redactor::new(&[]).unwrap();
    redactor.add_secret_values(["a-value-from-a-cluster-secret".to_owned()]);
    let files = vec![
        (
            "apps/api/deployment.yaml".to_owned(),
            "env:\n  - name: LOG_LEVEL\n    value: debug\n  - name: STRIPE_API_KEY\n    value: sk_live_abcdefghijklmnop1234\n".to_owned(),
        ),
        (
            "apps/api/values-prod.yaml".to_owned(),
            "cache:\n  url: redis://default:a-value-from-a-cluster-secret@redis:6379\n".to_owned(),
        ),
        ("apps/api/service.yaml".to_owned(), "kind: Service\n".to_owned()),
    ];
    let found = review_repository_secrets(&files, &redactor);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found.iter().all(|f| f.severity == Severity::High));
    assert!(found[0].title.ends_with("apps/api/deployment.yaml"));
    assert!(
        found[0].detail.starts_with("line 5 ("),
        "{}",
        found[0].detail
    );
    assert!(
        found[1].detail.starts_with("line 2 ("),
        "{}",
        found[1].detail
    );
    for f in &found {
        assert!(!f.detail.contains("sk_live") && !f.detail.contains("a-value-from"));
    }
    assert!(review::scanned_for_secrets("charts/api/values.yaml"));
    assert!(!review::scanned_for_secrets("README.md"));
}

#[test]
fn image_references_latest_untagged_unpinned_and_foreign_registries() {
    let allowed = vec!["ghcr.io".to_owned()];
    let titles = |c: &str, image: &str| -> Vec<(Severity, String)> {
        review::review_image_reference(c, image, &allowed)
            .into_iter()
            .map(|f| (f.severity, f.title))
            .collect()
    };
    let latest = titles("web", "nginx:latest");
    assert_eq!(latest[0].0, Severity::Medium);
    assert!(latest[0].1.contains("mutable tag latest"));
    assert_eq!(latest[1].0, Severity::High);
    assert!(latest[1].1.contains("docker.io"), "{latest:?}");
    assert!(
        titles("web", "registry:5000/acme/web")[0]
            .1
            .contains("no tag")
    );
    let tagged = titles("api", "ghcr.io/acme/api:3.5.0");
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0].0, Severity::Low);
    assert!(titles("api", "ghcr.io/acme/api:3.5.0@sha256:0123abcd").is_empty());
    assert_eq!(review::registry_of("localhost/acme/api:1"), "localhost");
    assert_eq!(review::registry_of("acme/api:1"), "docker.io");
    assert!(review::review_image_reference("api", "acme/api:1", &[]).len() == 1);
}

/// Every place the issue names a literal credential may hide: env, args, a ConfigMap, an
/// annotation, Helm values, a Kustomize generator; each found by line and kind, no value shown.
#[test]
fn repository_scan_finds_credentials_in_every_place_a_manifest_holds_them() {
    let redactor = squad_runtime::redact::Redactor::new(&[]).unwrap();
    let file = |path: &str, text: &str| (path.to_owned(), text.to_owned());
    let files = vec![
        file(
            "base/deployment.yaml",
            "kind: Deployment\nspec:\n  template:\n    metadata:\n      annotations:\n        vendor.example.com/api-key: \"Zq8vN2rT5wX1yB4k\"\n    spec:\n      containers:\n        - name: app\n          args:\n            - --db-password=Pw7hRk2mQz9Lx4\n          env:\n            - name: SLACK_WEBHOOK_TOKEN\n              value: xoxb-2048-4096-AbCdEfGhIjKlMnOp\n",
        ),
        file(
            "base/configmap.yaml",
            "kind: ConfigMap\ndata:\n  DATABASE_URL: postgres://orders:Vt6pLq2Zk8@db:5432/orders\n  LOG_LEVEL: info\n",
        ),
        file(
            "charts/orders/values-prod.yaml",
            "replicaCount: 2\npostgresql:\n  auth:\n    password: Hn4kT8vQ2xLp\n",
        ),
        file(
            "overlays/prod/kustomization.yaml",
            "resources:\n  - ../../base\nsecretGenerator:\n  - name: orders\n    literals:\n      - STRIPE_SECRET=sk_live_51Hk2mQz9Lx4Vt6pLq2Zk8Rw\n",
        ),
        file(
            "base/service.yaml",
            "kind: Service\nspec:\n  ports:\n    - port: 80\n",
        ),
    ];
    let found = review_repository_secrets(&files, &redactor);
    let by_file: Vec<(&str, &str)> = found
        .iter()
        .map(|f| {
            (
                f.title.rsplit(' ').next().unwrap(),
                f.detail.split(':').next().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_file.len(), 4, "{found:#?}");
    let lines = |path: &str| -> Vec<u32> {
        let detail = by_file.iter().find(|(p, _)| *p == path).unwrap().1;
        detail
            .split(", ")
            .map(|l| {
                l.trim_start_matches("line ")
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(lines("base/deployment.yaml"), [6, 11, 14], "{found:#?}");
    assert_eq!(lines("base/configmap.yaml"), [3]);
    assert_eq!(lines("charts/orders/values-prod.yaml"), [4]);
    assert_eq!(lines("overlays/prod/kustomization.yaml"), [6]);
    let all = format!("{found:?}");
    for value in [
        "Zq8vN2rT5wX1yB4k",
        "Pw7hRk2mQz9Lx4",
        "xoxb-2048",
        "Vt6pLq2Zk8",
        "Hn4kT8vQ2xLp",
        "sk_live_51",
    ] {
        assert!(!all.contains(value), "{value} shown in {all}");
    }
}

#[test]
fn rbac_writes_on_what_changes_the_cluster_are_named_with_their_trivy_ids() {
    let found = review_rbac_writes(
        "cart",
        &[
            rule(
                &["get", "patch"],
                &["validatingwebhookconfigurations"],
                true,
            ),
            rule(&["create"], &["secrets"], false),
            rule(&["update"], &["services", "configmaps"], false),
            rule(&["create"], &["pods"], false),
            rule(&["delete"], &["pods/log"], false),
            // Reads only, and wildcards (the RBAC review's), are not repeated here.
            rule(&["get", "list"], &["deployments"], true),
            rule(&["*"], &["secrets"], true),
        ],
    );
    let got: Vec<(Severity, &str)> = found
        .iter()
        .map(|f| (f.severity, f.detail.split(';').next().unwrap()))
        .collect();
    assert_eq!(got.len(), 6, "{found:#?}");
    assert_eq!(got[0].0, Severity::Critical);
    assert!(got[0].1.contains("KSV114"));
    assert_eq!(got[1], (Severity::High, got[1].1));
    assert!(got[1].1.contains("KSV041"));
    assert!(got[2].1.contains("KSV056") && got[3].1.contains("KSV049"));
    assert_eq!(got[4].0, Severity::Medium);
    assert!(found[5].title.contains("delete pod logs"));
}

#[test]
fn workload_hygiene_reads_resources_ids_the_service_account_and_the_namespace() {
    use squad_protocols::cluster::{ContainerPort, EnvVar, Literal};
    let mut w = workload(true);
    w.namespace = "default".into();
    w.service_account = "default".into();
    let c = &mut w.containers[0];
    c.requests.insert("memory".into(), "256Mi".parse().unwrap());
    c.ports.push(ContainerPort {
        port: 80,
        name: "http".into(),
    });
    c.env.push(EnvVar {
        name: "DB_PASSWORD".into(),
        source: "secret:db/password".into(),
        literal: None,
    });
    w.pod_security = serde_json::json!({ "spec": {
        "securityContext": { "runAsUser": 1000, "fsGroup": 0 },
        "containers": [{ "name": "api", "securityContext": { "runAsUser": 20000, "runAsGroup": 0 } }],
        "hostAliases": [{ "ip": "10.0.0.9", "hostnames": ["db"] }]
    }});
    let titles: Vec<String> = review_workload_hygiene(&w)
        .into_iter()
        .map(|f| format!("{}: {}", f.severity.as_str(), f.title))
        .collect();
    assert_eq!(
        titles,
        [
            "medium: container api has no memory limit",
            "low: container api requests no cpu",
            "low: container api listens on a privileged port",
            "info: container api reads Secrets from environment variables (DB_PASSWORD)",
            "low: container api runs with the root group",
            "low: cart's pods add the root group (fsGroup or supplementalGroups)",
            "low: cart runs as the namespace's default ServiceAccount",
            "low: cart runs in the default namespace",
            "low: cart's pods rewrite /etc/hosts (hostAliases)",
        ]
    );
    // The container's user id overrides the pod's 1000; without one the pod's counts.
    w.pod_security["spec"]["containers"][0]["securityContext"] = serde_json::json!({});
    assert!(
        review_workload_hygiene(&w)
            .iter()
            .any(|f| f.title == "container api runs as user id 1000")
    );
    // A literal credential in the running template's env or arguments, never shown.
    let redactor = squad_runtime::redact::Redactor::new(&[]).unwrap();
    let c = &mut w.containers[0];
    c.env.push(EnvVar {
        name: "OPENAI_API_KEY".into(),
        source: "value".into(),
        literal: Some(Literal("sk-proj-Q7vN2rT5wX1yB4kZq8vN2rT5wX1yB4kZ".into())),
    });
    c.env.push(EnvVar {
        name: "LOG_LEVEL".into(),
        source: "value".into(),
        literal: Some(Literal("debug".into())),
    });
    c.args = vec!["--db-url=postgres://app:Vt6pLq2Zk8@db/app".into()];
    let found = review_live_credentials(&w, &redactor);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0]
            .title
            .starts_with("container api's env OPENAI_API_KEY holds a literal credential")
    );
    assert!(found[1].title.contains("command line") && found[1].title.contains("word 1"));
    let all = format!("{found:?} {:?}", w.containers[0].env);
    assert!(
        !all.contains("Q7vN2rT5") && !all.contains("Vt6pLq2Zk8"),
        "{all}"
    );
}

#[test]
fn writing_the_aws_auth_config_map_is_critical_and_an_aimed_probe_breaks_baseline() {
    let mut r = rule(&["update"], &["configmaps"], false);
    r.resource_names = vec!["aws-auth".into()];
    let found = review_rbac_writes("cart", &[r]);
    assert_eq!(found[0].severity, Severity::Critical);
    assert!(found[0].detail.contains("KSV115"));
    // The security view keeps a probe's host, and Pod Security baseline forbids it.
    let deployment = serde_json::json!({
        "kind": "Deployment",
        "metadata": { "name": "cart" },
        "spec": { "template": { "spec": { "containers": [{
            "name": "api",
            "readinessProbe": { "httpGet": { "host": "10.0.0.1", "path": "/healthz", "port": 8080 } }
        }]}}}
    });
    let mut w = workload(true);
    w.pod_security = squad_gitops::objects::security_view(&deployment);
    let f = review_pod_security(&w);
    assert!(
        f.iter()
            .any(|f| f.severity == Severity::High && f.title.contains("10.0.0.1")),
        "{f:#?}"
    );
}

#[test]
fn incidents_on_one_workload_share_the_lock_around_its_security_issue() {
    let a = squad_protocols::WorkloadRef::deployment("production", "payment-service");
    let b = squad_protocols::WorkloadRef::deployment("production", "ledger");
    let (la, la2, lb) = (
        super::workload_lock(&a),
        super::workload_lock(&a),
        super::workload_lock(&b),
    );
    assert!(std::sync::Arc::ptr_eq(&la, &la2));
    assert!(!std::sync::Arc::ptr_eq(&la, &lb));
    let held = la.try_lock().unwrap();
    assert!(la2.try_lock().is_err(), "a second incident waits");
    assert!(lb.try_lock().is_ok(), "another workload does not");
    drop(held);
}

#[test]
fn credentials_in_live_config_maps_are_named_by_map_key_and_line_never_by_value() {
    let redactor = squad_runtime::redact::Redactor::new(&[]).unwrap();
    redactor.add_secret_values(["s3cr3t-from-the-ledger-secret".to_owned()]);
    let data = [
        (
            "settings".to_owned(),
            "application.yaml".to_owned(),
            "server:\n  port: 8080\nbilling:\n  apiKey: sk_live_4eC39HqLyjWDarjtT1zdp7dc\n"
                .to_owned(),
        ),
        (
            "settings".to_owned(),
            "LOG_LEVEL".to_owned(),
            "debug".to_owned(),
        ),
        (
            "copied".to_owned(),
            "DATABASE_URL".to_owned(),
            "s3cr3t-from-the-ledger-secret".to_owned(),
        ),
        (
            "plain".to_owned(),
            "greeting".to_owned(),
            "hello, token bucket".to_owned(),
        ),
    ];
    let found = super::review_config_map_secrets("billing", &data, &redactor);
    let titles: Vec<&str> = found.iter().map(|f| f.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "credentials in ConfigMap billing/copied",
            "credentials in ConfigMap billing/settings"
        ]
    );
    assert!(found.iter().all(|f| f.severity == Severity::High));
    assert!(
        found[0]
            .detail
            .starts_with("key DATABASE_URL line 1 (secret_value)"),
        "{}",
        found[0].detail
    );
    assert!(
        found[1].detail.contains("key application.yaml line 4"),
        "{}",
        found[1].detail
    );
    for f in &found {
        assert!(
            !f.detail.contains("sk_live") && !f.detail.contains("s3cr3t"),
            "{f:?}"
        );
    }
}
