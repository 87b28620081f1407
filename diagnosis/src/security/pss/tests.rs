#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

/// A pod spec that meets `restricted`, as the Kubernetes documentation's example writes it.
fn restricted() -> Value {
    json!({
        "securityContext": {
            "runAsNonRoot": true,
            "seccompProfile": { "type": "RuntimeDefault" }
        },
        "containers": [{
            "name": "app",
            "image": "ghcr.io/acme/app:1.0",
            "ports": [{ "containerPort": 8080 }],
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": { "drop": ["ALL"], "add": ["NET_BIND_SERVICE"] }
            }
        }],
        "volumes": [
            { "name": "config", "configMap": { "name": "app" } },
            { "name": "tmp", "emptyDir": {} }
        ]
    })
}

fn controls(e: &Evaluation) -> Vec<(&'static str, Level)> {
    e.violations.iter().map(|v| (v.control, v.level)).collect()
}

#[test]
fn a_pod_written_for_restricted_meets_it() {
    let e = evaluate(&restricted(), &Value::Null);
    assert_eq!(e.violations, []);
    assert_eq!(e.level(), Level::Restricted);
}

#[test]
fn an_unhardened_pod_meets_baseline_and_says_what_restricted_asks() {
    let spec = json!({ "containers": [{ "name": "app", "image": "nginx" }] });
    let e = evaluate(&spec, &Value::Null);
    assert_eq!(e.level(), Level::Baseline);
    assert_eq!(
        controls(&e),
        [
            ("Privilege Escalation", Level::Restricted),
            ("Capabilities", Level::Restricted),
            ("Running as Non-root", Level::Restricted),
            ("Seccomp", Level::Restricted),
        ]
    );
    assert_eq!(e.against(Level::Baseline).count(), 0);
}

#[test]
fn every_baseline_control_is_checked() {
    let mut spec = restricted();
    spec["hostNetwork"] = json!(true);
    spec["hostPID"] = json!(true);
    spec["securityContext"]["sysctls"] = json!([
        { "name": "net.ipv4.tcp_syncookies", "value": "1" },
        { "name": "kernel.msgmax", "value": "65536" }
    ]);
    spec["securityContext"]["seLinuxOptions"] = json!({ "type": "spc_t" });
    spec["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "docker", "hostPath": { "path": "/var/run/docker.sock" } }));
    let c = &mut spec["containers"][0];
    c["securityContext"]["privileged"] = json!(true);
    c["securityContext"]["capabilities"]["add"] = json!(["NET_BIND_SERVICE", "SYS_ADMIN"]);
    c["securityContext"]["procMount"] = json!("Unmasked");
    c["securityContext"]["seccompProfile"] = json!({ "type": "Unconfined" });
    c["ports"][0]["hostPort"] = json!(80);
    let annotations = json!({ "container.apparmor.security.beta.kubernetes.io/app": "unconfined" });
    let e = evaluate(&spec, &annotations);
    assert_eq!(e.level(), Level::Privileged);
    let baseline: Vec<&str> = e.against(Level::Baseline).map(|v| v.control).collect();
    for control in [
        "Host Namespaces",
        "HostPath Volumes",
        "SELinux",
        "Sysctls",
        "AppArmor",
        "Privileged Containers",
        "Capabilities",
        "Host Ports",
        "/proc Mount Type",
        "Seccomp",
    ] {
        assert!(baseline.contains(&control), "{control} not found in {e:#?}");
    }
    // Each names the field: the unsafe sysctl only, the capability beyond the defaults only.
    let fields: Vec<&str> = e.violations.iter().map(|v| v.field.as_str()).collect();
    assert!(fields.contains(&"forbidden sysctls (kernel.msgmax)"));
    assert!(!fields.iter().any(|f| f.contains("tcp_syncookies")));
    assert!(fields.contains(
        &r#"non-default capabilities (container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add)"#
    ));
    assert!(fields.contains(&r#"hostPath volumes (volume "docker")"#));
    assert!(fields.contains(&r#"hostPort (container "app" uses hostPort 80)"#));
    assert!(fields.contains(
        &r#"forbidden AppArmor profile (annotation container.apparmor.security.beta.kubernetes.io/app="unconfined", container "app")"#
    ));
}

#[test]
fn restricted_reads_the_pod_level_and_lets_a_container_override_it() {
    // runAsNonRoot and seccomp at the pod level cover every container; a container that says
    // otherwise breaks it for itself.
    let mut spec = restricted();
    spec["initContainers"] = json!([{
        "name": "migrate",
        "image": "ghcr.io/acme/migrate:1.0",
        "securityContext": {
            "runAsNonRoot": false,
            "runAsUser": 0,
            "allowPrivilegeEscalation": false,
            "capabilities": { "drop": ["ALL"] }
        }
    }]);
    spec["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "shared", "nfs": { "server": "nfs", "path": "/x" } }));
    let e = evaluate(&spec, &Value::Null);
    assert_eq!(e.level(), Level::Baseline);
    let fields: Vec<&str> = e.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            r#"restricted volume types (volume "shared" uses restricted volume type "nfs")"#,
            r#"runAsNonRoot != true (container "migrate" must not set securityContext.runAsNonRoot=false)"#,
            r#"runAsUser=0 (container "migrate" must not set runAsUser=0)"#,
        ]
    );
}

#[test]
fn allowed_values_are_not_violations() {
    let mut spec = restricted();
    spec["securityContext"]["seLinuxOptions"] = json!({ "type": "container_t", "level": "s0:c1" });
    spec["securityContext"]["seccompProfile"] =
        json!({ "type": "Localhost", "localhostProfile": "p.json" });
    spec["containers"][0]["securityContext"]["procMount"] = json!("Default");
    spec["containers"][0]["ports"][0]["hostPort"] = json!(0);
    let annotations =
        json!({ "container.apparmor.security.beta.kubernetes.io/app": "localhost/k8s-app" });
    assert_eq!(evaluate(&spec, &annotations).violations, []);
}
