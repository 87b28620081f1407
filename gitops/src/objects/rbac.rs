//! Roles and their bindings: the rules a ServiceAccount is granted.

use serde_json::Value;

use super::*;

pub fn rules(role: &Value) -> Vec<RuleParts> {
    role["rules"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    (
                        strings(&r["apiGroups"]),
                        strings(&r["resources"]),
                        strings(&r["resourceNames"]),
                        strings(&r["verbs"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a RoleBinding/ClusterRoleBinding names the ServiceAccount `namespace/sa` as a subject.
pub fn binds_service_account(binding: &Value, namespace: &str, sa: &str) -> bool {
    binding["subjects"].as_array().is_some_and(|subs| {
        subs.iter().any(|s| {
            s["kind"] == "ServiceAccount"
                && s["name"] == sa
                && s["namespace"].as_str().unwrap_or(namespace) == namespace
        })
    })
}

/// The role a binding refers to: (kind, name).
pub fn role_ref(binding: &Value) -> (&str, &str) {
    (
        binding["roleRef"]["kind"].as_str().unwrap_or("Role"),
        binding["roleRef"]["name"].as_str().unwrap_or(""),
    )
}

/// The user-facing ClusterRoles every apiserver bootstraps.
pub const BUILT_IN_ROLES: [&str; 4] = ["cluster-admin", "admin", "edit", "view"];

/// The RBAC rules `bindings` grant the ServiceAccount `namespace/sa`, with each role looked up by
/// (kind, name) in `role`; a binding to a role that does not exist grants nothing (one to a
/// built-in role the lookup does not hold is said by a rule with no verbs). RoleBindings outside
/// `namespace` are skipped; a ClusterRoleBinding applies cluster-wide.
pub fn bound_rules<'a>(
    bindings: impl IntoIterator<Item = &'a Value>,
    role: impl Fn(&str, &str) -> Option<&'a Value>,
    namespace: &str,
    sa: &str,
) -> Vec<squad_protocols::cluster::RbacRule> {
    let mut out = Vec::new();
    for b in bindings {
        let cluster_binding = kind(b) == "ClusterRoleBinding";
        if !cluster_binding && b["metadata"]["namespace"].as_str().unwrap_or(namespace) != namespace
        {
            continue;
        }
        if !binds_service_account(b, namespace, sa) {
            continue;
        }
        let (role_kind, role_name) = role_ref(b);
        let Some(r) = role(role_kind, role_name) else {
            // A user-facing role every apiserver bootstraps (its rules are the apiserver's own):
            // the binding is said, with no rule of its own.
            if role_kind == "ClusterRole" && BUILT_IN_ROLES.contains(&role_name) {
                out.push(squad_protocols::cluster::RbacRule {
                    role: format!("{role_kind}/{role_name}"),
                    binding: format!("{}/{}", kind(b), name(b)),
                    cluster_wide: cluster_binding,
                    api_groups: Vec::new(),
                    resources: Vec::new(),
                    resource_names: Vec::new(),
                    verbs: Vec::new(),
                });
            }
            continue;
        };
        for (api_groups, resources, resource_names, verbs) in rules(r) {
            out.push(squad_protocols::cluster::RbacRule {
                role: format!("{role_kind}/{role_name}"),
                binding: format!("{}/{}", kind(b), name(b)),
                cluster_wide: cluster_binding,
                api_groups,
                resources,
                resource_names,
                verbs,
            });
        }
    }
    out
}
