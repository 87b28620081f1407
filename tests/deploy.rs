//! What a user installs: `deploy/` and the Helm chart `charts/squad`. Worf's own checks find
//! nothing high in them, the chart renders the same objects as `deploy/`, and both pass a
//! server-side dry-run apply on the real apiserver tier.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;
use squad_agents::worf;
use squad_gitops::objects;
use squad_protocols::{Finding, Severity};
use squad_runtime::Redactor;
use squad_testkit::apiserver::{self, Options, RealApiserver};

const NAMESPACE: &str = "squad";

/// `deploy/`'s files (name, text), in the kustomization's order.
fn deploy_files() -> Vec<(String, String)> {
    let k: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string("deploy/kustomization.yaml").unwrap())
            .unwrap();
    k["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| {
            let name = format!("deploy/{}", r.as_str().unwrap());
            let text = std::fs::read_to_string(&name).unwrap();
            (name, text)
        })
        .collect()
}

/// The chart rendered with its defaults (`extra` are more `helm template` arguments), or none
/// without helm (a failure under CI=true).
fn chart(extra: &[&str]) -> Option<String> {
    let helm = std::env::var_os("SQUAD_HELM").map(std::path::PathBuf::from);
    let Some(helm) = helm.filter(|h| h.exists()) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no helm (SQUAD_HELM, from scripts/tools); CI=true, so this is a failure"
        );
        eprintln!("SKIPPED: no helm (run scripts/tools)");
        return None;
    };
    let out = Command::new(helm)
        .args([
            "template",
            "squad",
            "charts/squad",
            "--namespace",
            NAMESPACE,
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn objects_of(files: &[(String, String)]) -> Vec<Value> {
    files
        .iter()
        .flat_map(|(name, text)| objects::parse(name, text).unwrap())
        .filter(|o| !o.is_null())
        .collect()
}

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or_default()
}

/// Everything Worf reviews of a workload, as he reviews it, from the manifests alone.
fn worf_findings(files: &[(String, String)]) -> Vec<Finding> {
    let all = objects_of(files);
    let deployment = all.iter().find(|o| kind(o) == "Deployment").unwrap();
    let w = objects::workload_info(deployment, NAMESPACE);
    let by = |k: &'static str| all.iter().filter(move |o| kind(o) == k);
    let bindings: Vec<&Value> = by("RoleBinding").chain(by("ClusterRoleBinding")).collect();
    let rules = objects::bound_rules(
        bindings,
        |role_kind, name| {
            all.iter()
                .find(|o| kind(o) == role_kind && o["metadata"]["name"] == name)
        },
        &w.namespace,
        &w.service_account,
    );
    assert!(
        !rules.is_empty(),
        "the ServiceAccount is bound to its roles"
    );
    let policies: Vec<_> = by("NetworkPolicy").map(objects::network_policy).collect();
    let services: Vec<_> = by("Service")
        .map(|s| objects::service_info(s, None))
        .collect();
    let mut findings = Vec::new();
    for c in w.init_containers.iter().chain(&w.containers) {
        findings.extend(worf::review_image_reference(&c.name, &c.image, &[]));
    }
    findings.extend(worf::review_rbac(&w.service_account, &rules));
    findings.extend(worf::review_rbac_writes(&w.service_account, &rules));
    findings.extend(worf::review_token(&w, &rules));
    findings.extend(worf::review_network(&w, &policies));
    findings.extend(worf::review_service_exposure(&w, &services));
    findings.extend(worf::review_pod_security(&w));
    findings.extend(worf::review_workload_hygiene(&w));
    let redactor = Redactor::new(&[]).unwrap();
    findings.extend(worf::review_repository_secrets(files, &redactor));
    findings.extend(worf::review_live_credentials(&w, &redactor));
    findings
}

fn nothing_high(what: &str, findings: &[Finding]) {
    for f in findings {
        println!("{what}: {:?} {} — {}", f.severity, f.title, f.detail);
    }
    let high: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity >= Severity::High)
        .collect();
    assert!(high.is_empty(), "{what}: {high:#?}");
}

#[test]
fn worf_finds_nothing_high_in_deploy_or_the_chart() {
    let files = deploy_files();
    nothing_high("deploy/", &worf_findings(&files));
    let Some(rendered) = chart(&[]) else { return };
    nothing_high(
        "charts/squad",
        &worf_findings(&[("chart.yaml".into(), rendered)]),
    );
}

/// (kind, name) of every object, and the Deployment's pod template, for comparing.
fn shape(objs: &[Value]) -> (BTreeSet<(String, String)>, Value) {
    let names = objs
        .iter()
        .filter(|o| kind(o) != "Namespace")
        .map(|o| {
            (
                kind(o).to_owned(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let mut template = objs
        .iter()
        .find(|o| kind(o) == "Deployment")
        .unwrap()
        .clone();
    let spec = &mut template["spec"]["template"];
    // The chart adds its release label and a config checksum; the rest must agree.
    spec["metadata"] = Value::Null;
    spec["spec"]["affinity"]["podAntiAffinity"] = Value::Null;
    (names, template["spec"]["template"].clone())
}

#[test]
fn the_chart_renders_what_deploy_holds() {
    let Some(rendered) = chart(&[]) else { return };
    let (names, template) = shape(&objects_of(&deploy_files()));
    let (chart_names, chart_template) = shape(&objects_of(&[("chart".into(), rendered)]));
    assert_eq!(names, chart_names);
    assert_eq!(template, chart_template);
    // One replica turns the leases off; a digest replaces the tag.
    let one = chart(&["--set", "replicas=1", "--set", "image.digest=sha256:0123"]).unwrap();
    assert!(one.contains("enabled = false"), "{one}");
    assert!(one.contains("squad@sha256:0123"), "{one}");
}

fn kubectl(server: &RealApiserver, args: &[&str], input: Option<&str>) -> String {
    let mut child = server
        .kubectl()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_tail()
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn deploy_and_the_chart_pass_a_server_side_dry_run() {
    let Some(server) = apiserver::start_or_skip("deploy dry-run", Options::default())
        .await
        .unwrap()
    else {
        return;
    };
    // The objects go into a namespace that exists (a dry-run creates nothing).
    kubectl(&server, &["create", "namespace", NAMESPACE], None);
    let versions = kubectl(&server, &["api-versions"], None);
    let has_policy_v1 = versions.lines().any(|l| l == "policy/v1");
    let mut text = String::new();
    for (name, body) in deploy_files() {
        if name.ends_with("namespace.yaml") {
            continue;
        }
        // The suite's apiserver is 1.20, before policy/v1 (1.21): the same PodDisruptionBudget
        // under policy/v1beta1, whose fields are the same.
        let body = if has_policy_v1 {
            body
        } else {
            body.replace("apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n")
        };
        text.push_str(&body);
        text.push_str("\n---\n");
    }
    let applied = kubectl(
        &server,
        &["apply", "--dry-run=server", "-f", "-", "-o", "name"],
        Some(&text),
    );
    println!("deploy/ (server dry-run):\n{applied}");
    assert_eq!(applied.lines().count(), 10, "{applied}");
    // The chart, rendered against this server's API versions (`--validate`).
    let kubeconfig = server.kubeconfig_path().to_str().unwrap().to_owned();
    let Some(rendered) = chart(&["--validate", "--kubeconfig", &kubeconfig]) else {
        return;
    };
    assert_eq!(
        rendered.contains("apiVersion: policy/v1beta1"),
        !has_policy_v1
    );
    let applied = kubectl(
        &server,
        &["apply", "--dry-run=server", "-f", "-", "-o", "name"],
        Some(&rendered),
    );
    println!("charts/squad (server dry-run):\n{applied}");
    assert_eq!(applied.lines().count(), 10, "{applied}");
}
