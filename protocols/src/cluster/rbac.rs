//! RBAC as squad reads it: the rules bound to a ServiceAccount, the requests an app makes, and
//! the apiserver's refusal in its words.

use serde::{Deserialize, Serialize};

/// One RBAC rule that applies to a ServiceAccount, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RbacRule {
    pub role: String,
    pub binding: String,
    pub cluster_wide: bool,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub verbs: Vec<String>,
}

/// One request to the Kubernetes API, as the RBAC authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiRequest {
    pub verb: String,
    /// `""` for the core group.
    #[serde(default)]
    pub group: String,
    pub resource: String,
    /// The object's name, for a request about one object (`get`, `update`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A cluster-scoped request (nodes, or any resource across namespaces).
    #[serde(default)]
    pub cluster_scope: bool,
}

impl RbacRule {
    /// Whether the rule grants `request` (made in the namespace the rule was read for), as the
    /// RBAC authorizer decides: the group, resource and verb match exactly or by `*`; a rule
    /// with resource names grants only requests about those objects; a rule bound by a
    /// RoleBinding grants nothing at the cluster scope.
    pub fn allows(&self, request: &ApiRequest) -> bool {
        let any = |list: &[String], x: &str| list.iter().any(|v| v == "*" || v == x);
        (self.cluster_wide || !request.cluster_scope)
            && any(&self.verbs, &request.verb)
            && any(&self.api_groups, &request.group)
            && any(&self.resources, &request.resource)
            && (self.resource_names.is_empty()
                || request
                    .name
                    .as_ref()
                    .is_some_and(|n| self.resource_names.contains(n)))
    }
}

impl ApiRequest {
    /// The apiserver's answer when RBAC refuses the request to `namespace/sa`, word for word
    /// (`pods is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "pods" in
    /// API group "" in the namespace "ns"`).
    pub fn forbidden(&self, namespace: &str, sa: &str) -> String {
        let mut what = self.resource.clone();
        if !self.group.is_empty() {
            what = format!("{what}.{}", self.group);
        }
        if let Some(n) = &self.name {
            what = format!("{what} \"{n}\"");
        }
        let scope = if self.cluster_scope {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace \"{namespace}\"")
        };
        format!(
            "{what} is forbidden: User \"system:serviceaccount:{namespace}:{sa}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
            self.verb, self.resource, self.group
        )
    }
}

/// The apiserver's RBAC refusal of a ServiceAccount's request, as an app logs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RbacRefusal {
    pub namespace: String,
    pub service_account: String,
    pub request: ApiRequest,
    /// The apiserver's message, as the app logged it.
    pub message: String,
}

impl RbacRefusal {
    /// Reads the refusal out of a log line (whatever the app wrote around it): the inverse of
    /// [`ApiRequest::forbidden`].
    pub fn parse(line: &str) -> Option<RbacRefusal> {
        let (head, rest) = line.split_once(" is forbidden: User \"system:serviceaccount:")?;
        let (subject, rest) = rest.split_once("\" cannot ")?;
        let (namespace, sa) = subject.split_once(':')?;
        let (verb, rest) = rest.split_once(" resource \"")?;
        let (resource, rest) = rest.split_once("\" in API group \"")?;
        let (group, scope) = rest.split_once("\" ")?;
        let cluster_scope = scope.starts_with("at the cluster scope");
        if !cluster_scope && !scope.starts_with("in the namespace \"") {
            return None;
        }
        // `leases.coordination.k8s.io "name"`: the object's name, when the request named one. The
        // message starts there (after the app's own prefix) and ends with the scope.
        let start = head.rfind(": ").map_or(0, |i| i + 2);
        let what = &head[start..];
        let name = what
            .split_once(" \"")
            .and_then(|(_, n)| n.strip_suffix('"'))
            .map(str::to_owned);
        let scope_len = if cluster_scope {
            "at the cluster scope".len()
        } else {
            let prefix = "in the namespace \"".len();
            prefix + scope[prefix..].find('"')? + 1
        };
        let end = line.len() - scope.len() + scope_len;
        Some(RbacRefusal {
            namespace: namespace.to_owned(),
            service_account: sa.to_owned(),
            request: ApiRequest {
                verb: verb.to_owned(),
                group: group.to_owned(),
                resource: resource.to_owned(),
                name,
                cluster_scope,
            },
            message: line[start..end].to_owned(),
        })
    }
}
