//! The RBAC rules bound to a ServiceAccount: its RoleBindings in the namespace and the
//! ClusterRoleBindings, each role fetched once (a binding to a role that does not exist grants
//! nothing).

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams};
use serde_json::Value;
use squad_gitops::objects;
use squad_protocols::cluster::RbacRule;
use squad_runtime::ports::{PortError, PortResult};

use super::KubeCluster;

impl KubeCluster {
    /// The rules RBAC grants `service_account` in `namespace`.
    pub(super) async fn rules_bound_to(
        &self,
        namespace: &str,
        service_account: &str,
    ) -> PortResult<Vec<RbacRule>> {
        let what = format!("RBAC of ServiceAccount {namespace}/{service_account}");
        let lp = ListParams::default();
        let mut bindings = self
            .list(
                Api::<RoleBinding>::namespaced(self.client.clone(), namespace),
                &what,
                &lp,
            )
            .await?;
        bindings.extend(
            self.list(
                Api::<ClusterRoleBinding>::all(self.client.clone()),
                &what,
                &lp,
            )
            .await?,
        );
        // Fetch each role a binding of this ServiceAccount refers to, once.
        let mut roles: Vec<(String, String, Value)> = Vec::new();
        for b in bindings
            .iter()
            .filter(|b| objects::binds_service_account(b, namespace, service_account))
        {
            let (role_kind, role_name) = objects::role_ref(b);
            if roles
                .iter()
                .any(|(k, n, _)| k == role_kind && n == role_name)
            {
                continue;
            }
            let role_what = format!("{role_kind} {role_name} (bound to {service_account})");
            let got = if role_kind == "ClusterRole" {
                let api = Api::<ClusterRole>::all(self.client.clone());
                self.get(api, &role_what, role_name).await
            } else {
                let api = Api::<Role>::namespaced(self.client.clone(), namespace);
                self.get(api, &role_what, role_name).await
            };
            match got {
                Ok(r) => roles.push((role_kind.to_owned(), role_name.to_owned(), r)),
                // A binding to a role that does not exist grants nothing.
                Err(PortError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(objects::bound_rules(
            &bindings,
            |kind, name| {
                roles
                    .iter()
                    .find(|(k, n, _)| k == kind && n == name)
                    .map(|(_, _, r)| r)
            },
            namespace,
            service_account,
        ))
    }
}
