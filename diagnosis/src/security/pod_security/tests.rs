#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

const APE: &str = r#"allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false)"#;
const CAPS: &str = r#"unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"])"#;
const NON_ROOT: &str =
    r#"runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true)"#;
const SECCOMP: &str = r#"seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#;

/// The whole refusal for a pod named `pod` (`pods is forbidden: …` without a name, as
/// apimachinery's `NewForbidden` words it).
fn refusal(level: Level, version: &str, pod: &str, pod_spec: &Value) -> Option<String> {
    let cause = cause(level, version, pod_spec)?;
    Some(if pod.is_empty() {
        format!("pods is forbidden: {cause}")
    } else {
        format!("pods \"{pod}\" is forbidden: {cause}")
    })
}

fn bare() -> Value {
    json!({"containers": [{"name": "app", "image": "x"}]})
}

/// A container that satisfies every restricted container-level check.
fn hardened_container(name: &str) -> Value {
    json!({
        "name": name,
        "image": "x",
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]}
        }
    })
}

/// A pod that satisfies restricted: pod-level runAsNonRoot and seccomp,
/// hardened containers, allowed volume types.
fn hardened() -> Value {
    json!({
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [hardened_container("init")],
        "containers": [hardened_container("app")],
        "volumes": [
            {"name": "cfg", "configMap": {"name": "c"}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "tok", "projected": {"sources": []}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
            {"name": "plain"}
        ]
    })
}

/// Sets `pointer` (a JSON pointer to an existing parent) key `key` to `value`.
fn with(mut spec: Value, pointer: &str, key: &str, value: Value) -> Value {
    spec.pointer_mut(pointer)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(key.to_owned(), value);
    spec
}

#[test]
fn parse_levels() {
    assert_eq!(Level::parse("privileged"), Some(Level::Privileged));
    assert_eq!(Level::parse("baseline"), Some(Level::Baseline));
    assert_eq!(Level::parse("restricted"), Some(Level::Restricted));
    assert_eq!(Level::parse("Restricted"), None);
    assert_eq!(Level::parse(""), None);
}

#[test]
fn check_ids_are_in_upstream_order() {
    for tier in [Tier::Baseline, Tier::Restricted] {
        let ids: Vec<&str> = CHECKS
            .iter()
            .filter(|c| c.tier == tier)
            .map(|c| c.id)
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted);
    }
    let first_restricted = CHECKS
        .iter()
        .position(|c| c.tier == Tier::Restricted)
        .unwrap();
    assert!(
        CHECKS[first_restricted..]
            .iter()
            .all(|c| c.tier == Tier::Restricted)
    );
}

#[test]
fn bare_pod_under_restricted() {
    assert_eq!(
        violations(Level::Restricted, &bare()),
        vec![APE, CAPS, NON_ROOT, SECCOMP]
    );
}

#[test]
fn bare_pod_refusal() {
    assert_eq!(
        refusal(Level::Restricted, "latest", "web", &bare()).unwrap(),
        r#"pods "web" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    assert_eq!(
        refusal(
            Level::Baseline,
            "v1.30",
            "p",
            &json!({"hostPID": true, "containers": []})
        )
        .unwrap(),
        r#"pods "p" is forbidden: violates PodSecurity "baseline:v1.30": host namespaces (hostPID=true)"#
    );
    assert_eq!(
        refusal(Level::Baseline, "latest", "", &json!({"hostIPC": true})).unwrap(),
        r#"pods is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostIPC=true)"#
    );
    assert_eq!(refusal(Level::Baseline, "latest", "web", &bare()), None);
    assert_eq!(
        refusal(Level::Restricted, "latest", "web", &hardened()),
        None
    );
}

#[test]
fn restricted_table() {
    let two = json!({"containers": [{"name": "app"}, {"name": "sidecar"}]});
    let init = json!({"initContainers": [{"name": "init"}], "containers": [{"name": "app"}]});
    let pod_level = json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
        "containers": [{"name": "a"}, {"name": "b"}]
    });
    let override_false = json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [hardened_container("a"), with(hardened_container("b"), "/securityContext", "runAsNonRoot", json!(false))]
    });
    let pod_false = with(
        override_false.clone(),
        "/securityContext",
        "runAsNonRoot",
        json!(false),
    );
    let container_level = json!({"containers": [{
        "name": "app",
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            "runAsNonRoot": true,
            "seccompProfile": {"type": "RuntimeDefault"}
        }
    }]});
    let partial = json!({"containers": [
        {"name": "a", "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}},
        {"name": "b"}
    ]});

    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "two containers pluralise",
            two,
            vec![
                r#"allowPrivilegeEscalation != false (containers "app", "sidecar" must set securityContext.allowPrivilegeEscalation=false)"#,
                r#"unrestricted capabilities (containers "app", "sidecar" must set securityContext.capabilities.drop=["ALL"])"#,
                r#"runAsNonRoot != true (pod or containers "app", "sidecar" must set securityContext.runAsNonRoot=true)"#,
                r#"seccompProfile (pod or containers "app", "sidecar" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
            ],
        ),
        (
            "init containers come first",
            init,
            vec![
                r#"allowPrivilegeEscalation != false (containers "init", "app" must set securityContext.allowPrivilegeEscalation=false)"#,
                r#"unrestricted capabilities (containers "init", "app" must set securityContext.capabilities.drop=["ALL"])"#,
                r#"runAsNonRoot != true (pod or containers "init", "app" must set securityContext.runAsNonRoot=true)"#,
                r#"seccompProfile (pod or containers "init", "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
            ],
        ),
        (
            "pod-level runAsNonRoot and seccomp cover all containers",
            pod_level,
            vec![
                r#"allowPrivilegeEscalation != false (containers "a", "b" must set securityContext.allowPrivilegeEscalation=false)"#,
                r#"unrestricted capabilities (containers "a", "b" must set securityContext.capabilities.drop=["ALL"])"#,
            ],
        ),
        (
            "container overriding runAsNonRoot=false is named",
            override_false,
            vec![
                r#"runAsNonRoot != true (container "b" must not set securityContext.runAsNonRoot=false)"#,
            ],
        ),
        (
            "pod and container runAsNonRoot=false",
            pod_false,
            vec![
                r#"runAsNonRoot != true (pod and container "b" must not set securityContext.runAsNonRoot=false)"#,
            ],
        ),
        ("container-level settings suffice", container_level, vec![]),
        (
            "only containers lacking their own settings are named",
            partial,
            vec![
                r#"allowPrivilegeEscalation != false (containers "a", "b" must set securityContext.allowPrivilegeEscalation=false)"#,
                r#"unrestricted capabilities (containers "a", "b" must set securityContext.capabilities.drop=["ALL"])"#,
                r#"runAsNonRoot != true (pod or container "b" must set securityContext.runAsNonRoot=true)"#,
                r#"seccompProfile (pod or container "b" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
            ],
        ),
        (
            "explicit allowPrivilegeEscalation=true",
            with(
                hardened(),
                "/containers/0/securityContext",
                "allowPrivilegeEscalation",
                json!(true),
            ),
            vec![
                r#"allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false)"#,
            ],
        ),
        (
            "adding a capability other than NET_BIND_SERVICE",
            with(
                hardened(),
                "/containers/0/securityContext/capabilities",
                "add",
                json!(["SYS_TIME", "NET_ADMIN", "NET_BIND_SERVICE"]),
            ),
            vec![
                r#"unrestricted capabilities (container "app" must not include "NET_ADMIN", "SYS_TIME" in securityContext.capabilities.add)"#,
            ],
        ),
        (
            "missing drop and forbidden add are both described",
            with(
                hardened(),
                "/containers/0/securityContext",
                "capabilities",
                json!({"add": ["CHOWN"]}),
            ),
            vec![
                r#"unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]; container "app" must not include "CHOWN" in securityContext.capabilities.add)"#,
            ],
        ),
        (
            "runAsUser=0 at pod and container level",
            with(
                with(hardened(), "/securityContext", "runAsUser", json!(0)),
                "/initContainers/0/securityContext",
                "runAsUser",
                json!(0),
            ),
            vec![r#"runAsUser=0 (pod and container "init" must not set runAsUser=0)"#],
        ),
        (
            "seccomp Unconfined on the pod",
            with(
                hardened(),
                "/securityContext",
                "seccompProfile",
                json!({"type": "Unconfined"}),
            ),
            vec![
                r#"seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")"#,
            ],
        ),
        (
            "seccomp Unconfined on a container under a valid pod profile",
            with(
                hardened(),
                "/containers/0/securityContext",
                "seccompProfile",
                json!({"type": "Unconfined"}),
            ),
            vec![
                r#"seccompProfile (container "app" must not set securityContext.seccompProfile.type to "Unconfined")"#,
            ],
        ),
        (
            "restricted volume types replace hostPath volumes",
            with(
                hardened(),
                "",
                "volumes",
                json!([
                    {"name": "host", "hostPath": {"path": "/"}},
                    {"name": "share", "nfs": {"server": "s", "path": "/"}},
                    {"name": "ok", "secret": {"secretName": "s"}}
                ]),
            ),
            vec![
                r#"restricted volume types (volumes "host", "share" use restricted volume types "hostPath", "nfs")"#,
            ],
        ),
        (
            "baseline checks come before restricted ones",
            with(
                bare(),
                "/containers/0",
                "securityContext",
                json!({"privileged": true}),
            ),
            vec![
                r#"privileged (container "app" must not set securityContext.privileged=true)"#,
                APE,
                CAPS,
                NON_ROOT,
                SECCOMP,
            ],
        ),
        (
            "Windows pods are exempt from the Linux-only checks",
            with(bare(), "", "os", json!({"name": "windows"})),
            vec![NON_ROOT],
        ),
        (
            "user-namespaced pods are exempt from runAsNonRoot and runAsUser",
            with(
                with(hardened(), "", "hostUsers", json!(false)),
                "/securityContext",
                "runAsNonRoot",
                json!(false),
            ),
            vec![],
        ),
        (
            "procMount stays forbidden at restricted in a user namespace",
            with(
                with(hardened(), "", "hostUsers", json!(false)),
                "/containers/0/securityContext",
                "procMount",
                json!("Unmasked"),
            ),
            vec![
                r#"procMount (container "app" must not set securityContext.procMount to "Unmasked")"#,
            ],
        ),
        (
            "ephemeral containers are checked",
            with(
                hardened(),
                "",
                "ephemeralContainers",
                json!([{"name": "debug"}]),
            ),
            vec![
                r#"allowPrivilegeEscalation != false (container "debug" must set securityContext.allowPrivilegeEscalation=false)"#,
                r#"unrestricted capabilities (container "debug" must set securityContext.capabilities.drop=["ALL"])"#,
            ],
        ),
    ];
    for (label, spec, expected) in cases {
        assert_eq!(violations(Level::Restricted, &spec), expected, "{label}");
    }
}

#[test]
fn baseline_table() {
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("bare pod passes", bare(), vec![]),
        ("hardened pod passes", hardened(), vec![]),
        (
            "privileged container",
            with(
                bare(),
                "/containers/0",
                "securityContext",
                json!({"privileged": true}),
            ),
            vec![r#"privileged (container "app" must not set securityContext.privileged=true)"#],
        ),
        (
            "hostNetwork",
            with(bare(), "", "hostNetwork", json!(true)),
            vec!["host namespaces (hostNetwork=true)"],
        ),
        (
            "all host namespaces",
            with(
                with(
                    with(bare(), "", "hostIPC", json!(true)),
                    "",
                    "hostPID",
                    json!(true),
                ),
                "",
                "hostNetwork",
                json!(true),
            ),
            vec!["host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)"],
        ),
        (
            "hostNetwork turns container ports into host ports",
            json!({"hostNetwork": true, "containers": [{"name": "app", "ports": [{"containerPort": 8080}]}]}),
            vec![
                "host namespaces (hostNetwork=true)",
                r#"hostPort (container "app" uses hostPort 8080)"#,
            ],
        ),
        (
            "hostPath volume",
            with(
                bare(),
                "",
                "volumes",
                json!([{"name": "data", "hostPath": {"path": "/var"}}, {"name": "tmp", "emptyDir": {}}]),
            ),
            vec![r#"hostPath volumes (volume "data")"#],
        ),
        (
            "NET_ADMIN capability",
            with(
                bare(),
                "/containers/0",
                "securityContext",
                json!({"capabilities": {"add": ["NET_ADMIN", "CHOWN"]}}),
            ),
            vec![
                r#"non-default capabilities (container "app" must not include "NET_ADMIN" in securityContext.capabilities.add)"#,
            ],
        ),
        (
            "host ports, sorted as strings",
            json!({"containers": [
                {"name": "a", "ports": [{"containerPort": 80}]},
                {"name": "b", "ports": [{"hostPort": 9000}, {"hostPort": 10000}]},
                {"name": "c", "ports": [{"hostPort": 9000}]}
            ]}),
            vec![r#"hostPort (containers "b", "c" use hostPorts 10000, 9000)"#],
        ),
        (
            "seccomp Unconfined",
            with(
                bare(),
                "",
                "securityContext",
                json!({"seccompProfile": {"type": "Unconfined"}}),
            ),
            vec![
                r#"seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")"#,
            ],
        ),
        (
            "AppArmor Unconfined",
            with(
                bare(),
                "/containers/0",
                "securityContext",
                json!({"appArmorProfile": {"type": "Unconfined"}}),
            ),
            vec![
                r#"forbidden AppArmor profile (container "app" must not set AppArmor profile type to "Unconfined")"#,
            ],
        ),
        (
            "SELinux options",
            json!({
                "securityContext": {"seLinuxOptions": {"type": "foo", "user": "u", "role": "r"}},
                "containers": [{"name": "e", "securityContext": {"seLinuxOptions": {"type": "bar"}}}, {"name": "f", "securityContext": {"seLinuxOptions": {"type": "container_t"}}}]
            }),
            vec![
                r#"seLinuxOptions (pod and container "e" set forbidden securityContext.seLinuxOptions: types "bar", "foo"; user may not be set; role may not be set)"#,
            ],
        ),
        (
            "procMount Unmasked",
            with(
                bare(),
                "/containers/0",
                "securityContext",
                json!({"procMount": "Unmasked"}),
            ),
            vec![
                r#"procMount (container "app" must not set securityContext.procMount to "Unmasked")"#,
            ],
        ),
        (
            "procMount Unmasked in a user namespace",
            with(
                with(bare(), "", "hostUsers", json!(false)),
                "/containers/0",
                "securityContext",
                json!({"procMount": "Unmasked"}),
            ),
            vec![],
        ),
        (
            "unsafe sysctls, unquoted in spec order",
            with(
                bare(),
                "",
                "securityContext",
                json!({"sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "1"}, {"name": "a.b", "value": "1"}]}),
            ),
            vec!["forbidden sysctls (kernel.msgmax, a.b)"],
        ),
        (
            "probe host",
            json!({"containers": [{"name": "a", "livenessProbe": {"httpGet": {"host": "localhost", "port": 80}}, "readinessProbe": {"tcpSocket": {"host": "127.0.0.1", "port": 80}}}]}),
            vec![
                r#"probe or lifecycle host (container "a" uses probe or lifecycle hosts "127.0.0.1", "localhost")"#,
            ],
        ),
        (
            "Windows hostProcess",
            json!({"securityContext": {"windowsOptions": {"hostProcess": true}}, "containers": [{"name": "a", "securityContext": {"windowsOptions": {"hostProcess": true}}}]}),
            vec![
                r#"hostProcess (pod and container "a" must not set securityContext.windowsOptions.hostProcess=true)"#,
            ],
        ),
        (
            "restricted-only fields are ignored",
            json!({"securityContext": {"runAsUser": 0, "runAsNonRoot": false}, "containers": [{"name": "a", "securityContext": {"allowPrivilegeEscalation": true}}], "volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]}),
            vec![],
        ),
        (
            "several baseline violations in upstream order",
            json!({
                "hostNetwork": true,
                "containers": [{"name": "app", "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}}],
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}]
            }),
            vec![
                r#"non-default capabilities (container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add)"#,
                "host namespaces (hostNetwork=true)",
                r#"hostPath volumes (volume "root")"#,
                r#"privileged (container "app" must not set securityContext.privileged=true)"#,
            ],
        ),
    ];
    for (label, spec, expected) in cases {
        assert_eq!(violations(Level::Baseline, &spec), expected, "{label}");
    }
}

#[test]
fn privileged_level_never_refuses() {
    let spec = json!({
        "hostNetwork": true,
        "hostPID": true,
        "containers": [{"name": "app", "securityContext": {"privileged": true, "runAsUser": 0}}],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}]
    });
    assert!(violations(Level::Privileged, &spec).is_empty());
    assert_eq!(refusal(Level::Privileged, "latest", "p", &spec), None);
}

#[test]
fn hardened_pod_passes_restricted() {
    assert!(violations(Level::Restricted, &hardened()).is_empty());
}

#[test]
fn go_quote_escapes() {
    assert_eq!(go_quote("web-1"), r#""web-1""#);
    assert_eq!(go_quote("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\x01""#);
}
