//! The real-apiserver harness itself: it starts, kubectl can talk to it, and RBAC mode really
//! denies the unprivileged user. Skipped (with a message) when no kube-apiserver is built, unless
//! `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use squad_testkit::apiserver::{self, Options, RealApiserver};

fn stdout_of(out: &Output, what: &str, server: &RealApiserver) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log_tail()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn kubectl_lists_the_bootstrap_namespaces() {
    let Some(server) =
        apiserver::start_or_skip("kubectl_lists_the_bootstrap_namespaces", Options::default())
            .await
            .unwrap()
    else {
        return;
    };
    let out = server
        .kubectl()
        .args(["get", "ns", "-o", "name"])
        .output()
        .unwrap();
    let names = stdout_of(&out, "kubectl get ns", &server);
    for ns in [
        "namespace/default",
        "namespace/kube-system",
        "namespace/kube-public",
    ] {
        assert!(
            names.lines().any(|l| l == ns),
            "{ns} missing from:\n{names}"
        );
    }
}

#[tokio::test]
async fn rbac_mode_forbids_the_viewer_and_allows_the_admin() {
    let Some(server) = apiserver::start_or_skip(
        "rbac_mode_forbids_the_viewer_and_allows_the_admin",
        Options { rbac: true },
    )
    .await
    .unwrap() else {
        return;
    };
    let admin = server.kubectl().args(["get", "pods"]).output().unwrap();
    stdout_of(&admin, "kubectl get pods as admin", &server);

    let viewer = server.viewer_kubeconfig_path().unwrap();
    let out = std::process::Command::new(apiserver::kubectl_program())
        .arg(format!("--kubeconfig={}", viewer.display()))
        .arg(format!(
            "--cache-dir={}",
            viewer
                .parent()
                .map_or_else(
                    || std::path::PathBuf::from("."),
                    |d| d.join("kubectl-cache")
                )
                .display()
        ))
        .args(["get", "pods"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "viewer could list pods");
    assert!(
        stderr.contains("Forbidden")
            && stderr.contains(r#"User "viewer" cannot list resource "pods""#),
        "{stderr}"
    );
}
