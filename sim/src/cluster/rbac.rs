//! RBAC: the app's API requests (`[app] api_calls`) authorized against the GitOps repo's Roles,
//! ClusterRoles, RoleBindings and ClusterRoleBindings for its pod's ServiceAccount, as the
//! apiserver's RBAC authorizer decides them, refused in its words.

use serde_json::Value;
use squad_gitops::objects;

use super::{Desired, Rollout, SimCluster};

impl SimCluster {
    /// The apiserver's answer to the first of the app's requests that RBAC refuses to `r`'s
    /// pods, if one is.
    pub(super) fn forbidden(&self, d: &Desired, r: &Rollout) -> Option<String> {
        let s = &self.scenario;
        let app = self.app(r);
        if app.api_calls.is_empty() {
            return None;
        }
        let ns = s.workload.namespace.as_str();
        let sa = objects::service_account_of(objects::pod_spec(&r.object));
        let of_kind = |k: &'static str| d.objects.iter().filter(move |o| objects::kind(o) == k);
        let role = |kind: &str, name: &str| -> Option<&Value> {
            d.objects.iter().find(|o| {
                objects::kind(o) == kind
                    && objects::name(o) == name
                    && (kind == "ClusterRole"
                        || o["metadata"]["namespace"].as_str().unwrap_or(ns) == ns)
            })
        };
        let rules = objects::bound_rules(
            of_kind("RoleBinding").chain(of_kind("ClusterRoleBinding")),
            role,
            ns,
            &sa,
        );
        app.api_calls
            .iter()
            .find(|call| !rules.iter().any(|rule| rule.allows(call)))
            .map(|call| call.forbidden(ns, &sa))
    }

    /// The line the app logs when a request is refused.
    pub(super) fn forbidden_line(&self, error: &str) -> String {
        self.scenario
            .app
            .forbidden_log
            .as_deref()
            .unwrap_or("error: {error}")
            .replace("{error}", error)
    }
}
