//! The kubelet's `runAsNonRoot` check: a container whose security settings ask for a non-root
//! user, against the user it would run as.

use serde_json::Value;

use crate::scenario::Scenario;

/// The kubelet's `runAsNonRoot` check for container `c` of the pod `spec` in `namespace`
/// (`verifyRunAsNonRoot`, `pkg/kubelet/kuberuntime/security_context_others.go`): the
/// container's security settings override the pod's; an explicit `runAsUser` decides, else the
/// image's user, as the runtime reports it (containerd: numeric → a UID, a name → a username,
/// none → root). The image's user is known only for the scenario's image repository
/// (`[image] user`); any other image passes.
pub(super) fn failure(
    scenario: &Scenario,
    namespace: &str,
    spec: &Value,
    c: &Value,
) -> Option<String> {
    let effective = |key: &str| {
        let own = &c["securityContext"][key];
        if own.is_null() {
            spec["securityContext"][key].clone()
        } else {
            own.clone()
        }
    };
    if effective("runAsNonRoot").as_bool() != Some(true) {
        return None;
    }
    let name = c["name"].as_str().unwrap_or("");
    let pod = format!("{{pod:{namespace}}}");
    if let Some(uid) = effective("runAsUser").as_i64() {
        return (uid == 0).then(|| {
            format!(
                "container's runAsUser breaks non-root policy (pod: \"{pod}\", container: {name})"
            )
        });
    }
    let image = c["image"].as_str().unwrap_or("");
    let user = scenario.image.user.as_deref().filter(|_| {
        squad_protocols::image::repository(image)
            == squad_protocols::image::repository(&scenario.image.name)
    })?;
    let user = user.split(':').next().unwrap_or("");
    match user.parse::<u32>() {
        Ok(0) => Some(format!(
            "container has runAsNonRoot and image will run as root (pod: \"{pod}\", container: {name})"
        )),
        Ok(_) => None,
        Err(_) if user.is_empty() => Some(format!(
            "container has runAsNonRoot and image will run as root (pod: \"{pod}\", container: {name})"
        )),
        Err(_) => Some(format!(
            "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (pod: \"{pod}\", container: {name})"
        )),
    }
}
