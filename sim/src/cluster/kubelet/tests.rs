#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

fn store(configmaps: Option<&[(&str, &[&str])]>, secrets: Option<&[(&str, &[&str])]>) -> Store {
    let table = |t: &[(&str, &[&str])]| {
        t.iter()
            .map(|(n, ks)| (n.to_string(), ks.iter().map(|k| k.to_string()).collect()))
            .collect()
    };
    Store {
        namespace: "payments".into(),
        configmaps: configmaps.map(table),
        secrets: secrets.map(table),
    }
}

fn container(env: Value) -> Value {
    json!({"name": "api", "image": "r/api:1", "env": env})
}

#[test]
fn env_references_resolve_in_the_kubelets_words() {
    let s = store(
        Some(&[("app-config", &["mode"])]),
        Some(&[("db", &["url"])]),
    );
    let secret = |name: &str, key: &str| {
        container(json!([{"name": "X", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}]))
    };
    assert_eq!(s.config_failure(&secret("db", "url")), None);
    assert_eq!(
        s.config_failure(&secret("db", "password")).unwrap(),
        "couldn't find key password in Secret payments/db"
    );
    assert_eq!(
        s.config_failure(&secret("db-creds", "url")).unwrap(),
        "secret \"db-creds\" not found"
    );
    let cm = container(
        json!([{"name": "M", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "level"}}}]),
    );
    assert_eq!(
        s.config_failure(&cm).unwrap(),
        "couldn't find key level in ConfigMap payments/app-config"
    );
    let optional = container(
        json!([{"name": "M", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": true}}}]),
    );
    assert_eq!(s.config_failure(&optional), None);
    let from = json!({"name": "api", "envFrom": [{"secretRef": {"name": "tokens"}}],
                      "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}]});
    assert_eq!(
        s.config_failure(&from).unwrap(),
        "secret \"tokens\" not found",
        "envFrom is read before env"
    );
}

#[test]
fn a_kind_the_scenario_does_not_declare_always_resolves() {
    let s = store(None, Some(&[]));
    let cm = container(
        json!([{"name": "M", "valueFrom": {"configMapKeyRef": {"name": "any", "key": "k"}}}]),
    );
    assert_eq!(s.config_failure(&cm), None);
    let secret = container(
        json!([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "any", "key": "k"}}}]),
    );
    assert_eq!(
        s.config_failure(&secret).unwrap(),
        "secret \"any\" not found",
        "an empty [secrets] declares that there are none"
    );
}

#[test]
fn volumes_fail_to_mount_on_a_missing_object_or_listed_key() {
    let s = store(
        Some(&[("app-config", &["app.yaml"])]),
        Some(&[("tls", &["tls.crt"])]),
    );
    let spec = |volumes: Value| json!({"volumes": volumes});
    assert_eq!(
        s.mount_failure(&spec(
            json!([{"name": "config", "configMap": {"name": "app-cfg"}}])
        )),
        Some(("config".into(), "configmap \"app-cfg\" not found".into()))
    );
    assert_eq!(
        s.mount_failure(&spec(
            json!([{"name": "certs", "secret": {"secretName": "tls",
            "items": [{"key": "tls.key", "path": "k"}]}}])
        )),
        Some((
            "certs".into(),
            "references non-existent secret key: tls.key".into()
        ))
    );
    assert_eq!(
        s.mount_failure(&spec(json!([{"name": "all", "projected": {"sources": [
            {"configMap": {"name": "app-config"}}, {"secret": {"name": "gone"}}]}}]))),
        Some(("all".into(), "secret \"gone\" not found".into()))
    );
    assert_eq!(
        s.mount_failure(&spec(
            json!([{"name": "config", "configMap": {"name": "x", "optional": true}},
                                      {"name": "tmp", "emptyDir": {}}])
        )),
        None
    );
}

/// A private repository refuses a pod without a pull secret the namespace has, in the
/// registry's words, and the kubelet names the secrets it could not find.
#[test]
fn a_private_repository_wants_a_pull_secret_the_namespace_has() {
    let mut scenario = Scenario::embedded("image-pull").unwrap();
    let image = "ghcr.io/acme/refunds:3.2.0";
    scenario.registry = Some(crate::scenario::Registry {
        images: vec![image.into()],
        private: vec!["ghcr.io/acme".into()],
    });
    let s = store(None, Some(&[("acme-registry", &[".dockerconfigjson"])]));
    let spec = |secrets: Value| json!({"imagePullSecrets": secrets});
    let c = json!({"name": "api", "image": image});
    let failure = |secrets: Value| match start_failure(&scenario, &s, &spec(secrets), &c) {
        Some(Blocker::Pull { failure, .. }) => Some(failure),
        _ => None,
    };
    assert_eq!(failure(json!([{"name": "acme-registry"}])), None);
    assert_eq!(
        failure(json!([{"name": "registry-credentials"}])),
        Some(PullFailure::Unauthorized {
            missing: vec!["registry-credentials".into()]
        })
    );
    assert_eq!(
        failure(json!(null)),
        Some(PullFailure::Unauthorized { missing: vec![] })
    );
    let said = pull_error(image, &PullFailure::Unauthorized { missing: vec![] });
    assert!(
        said.ends_with("failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://ghcr.io/token?scope=repository%3Aacme%2Frefunds%3Apull&service=ghcr.io: 403 Forbidden"),
        "{said}"
    );
    assert!(
        pull_error("acme/refunds:3", &PullFailure::Unauthorized { missing: vec![] })
            .ends_with("pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed")
    );
    // A public image of the same registry pulls anonymously.
    let public = json!({"name": "api", "image": "ghcr.io/acmecorp/tool:1"});
    scenario
        .registry
        .as_mut()
        .unwrap()
        .images
        .push("ghcr.io/acmecorp/tool:1".into());
    assert!(start_failure(&scenario, &s, &spec(json!(null)), &public).is_none());
}

/// `runAsNonRoot` against the user the container runs as: an explicit `runAsUser` (the
/// container's over the pod's) decides; else the image's, known for the scenario's image
/// repository only, in the kubelet's words with the pod named as `format.Pod` names it.
#[test]
fn run_as_non_root_is_checked_against_the_images_user() {
    let mut scenario = Scenario::embedded("pod-security-root-image").unwrap();
    let image = scenario.image.name.clone();
    let s = store(None, None);
    let failure =
        |scenario: &Scenario, spec: Value, c: Value| match start_failure(scenario, &s, &spec, &c) {
            Some(Blocker::Config { error, .. }) => Some(with_pod(&error, "invoice-api-1")),
            _ => None,
        };
    let non_root = json!({"securityContext": {"runAsNonRoot": true}});
    let app = json!({"name": "app", "image": image});
    let uid = crate::cluster::world::uid("Pod/payments/invoice-api-1");
    assert_eq!(
        failure(&scenario, non_root.clone(), app.clone()).unwrap(),
        format!(
            "container has runAsNonRoot and image will run as root (pod: \"invoice-api-1_payments({uid})\", container: app)"
        )
    );
    // Without runAsNonRoot, or with a non-zero runAsUser (the container's), it starts.
    assert_eq!(failure(&scenario, json!({}), app.clone()), None);
    let as_user =
        |u: i64| json!({"name": "app", "image": image, "securityContext": {"runAsUser": u}});
    assert_eq!(failure(&scenario, non_root.clone(), as_user(65532)), None);
    assert!(
        failure(&scenario, non_root.clone(), as_user(0))
            .unwrap()
            .starts_with("container's runAsUser breaks non-root policy (pod: ")
    );
    // The container's runAsNonRoot: false overrides the pod's.
    let opted_out =
        json!({"name": "app", "image": image, "securityContext": {"runAsNonRoot": false}});
    assert_eq!(failure(&scenario, non_root.clone(), opted_out), None);
    // Another tag of the same repository is built the same way; another image is unknown.
    let other_tag = json!({"name": "app", "image": "registry.acme.io/billing/invoice-api:2.7.4"});
    assert!(failure(&scenario, non_root.clone(), other_tag).is_some());
    let sidecar =
        json!({"name": "shipper", "image": "registry.example.com/platform/log-shipper:1.4.0"});
    assert_eq!(failure(&scenario, non_root.clone(), sidecar), None);
    // The image's user as containerd reports it: a UID, a name, or none (root).
    for (user, starts) in [
        (
            "0:0",
            Some("container has runAsNonRoot and image will run as root"),
        ),
        ("65532", None),
        ("1000:1000", None),
        (
            "nonroot",
            Some(
                "container has runAsNonRoot and image has non-numeric user (nonroot), cannot verify user is non-root",
            ),
        ),
    ] {
        scenario.image.user = Some(user.into());
        let got = failure(&scenario, non_root.clone(), app.clone());
        assert_eq!(
            got.as_deref()
                .map(|e| e.split(" (pod: ").next().unwrap_or("")),
            starts,
            "{user}"
        );
    }
    // Not modelled: every image passes.
    scenario.image.user = None;
    assert_eq!(failure(&scenario, non_root, app), None);
}

#[test]
fn each_blocker_retries_on_its_own_schedule() {
    let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    let pull = Blocker::Pull {
        image: "r/a:1".into(),
        failure: PullFailure::NotFound,
    };
    let n = pull.attempts(t0, at(600)).len();
    // 0, 10, 30, 70, 150, 310, 610: six attempts within ten minutes.
    assert_eq!(n, 6);
    let config = Blocker::Config {
        image: "r/a:1".into(),
        error: "e".into(),
    };
    assert_eq!(config.attempts(t0, at(600)).len(), 61);
    let mount = Blocker::Mount {
        volume: "v".into(),
        error: "e".into(),
    };
    let a = mount.attempts(t0, at(600));
    assert_eq!(a[1] - a[0], chrono::Duration::milliseconds(500));
    assert_eq!(
        a[a.len() - 1] - a[a.len() - 2],
        chrono::Duration::milliseconds(122_000)
    );
    assert_eq!(pull.waiting_reason(t0, at(5)), "ErrImagePull");
    assert_eq!(pull.waiting_reason(t0, at(15)), "ImagePullBackOff");
    assert_eq!(mount.waiting_reason(t0, at(15)), "ContainerCreating");
}
