//! RBAC denying the app: the app calls the Kubernetes API with its pod's ServiceAccount and the
//! apiserver refuses (`pods is forbidden: User "system:serviceaccount:ns:sa" cannot list
//! resource "pods" in API group "" in the namespace "ns"`); the app logs it and, when the call
//! is one it cannot start without, exits (KubePodCrashLooping). The family reads the refusal
//! from the logs, the rules bound to that ServiceAccount (none of which grants the request),
//! and what the last rollout changed in the ServiceAccount. The fix (the one missing verb on
//! the one resource in the app's own Role, or a binding for the new ServiceAccount; never a
//! wildcard, never a ClusterRole when a Role serves) comes with the remediations; until then
//! the crew escalates with the diagnosis. The proof is the request allowed and restarts flat.

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::{ApiRequest, RbacRefusal, RbacRule};
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::readings::last_rollout_change;
use crate::{
    Detection, Facts, Family, FollowupContext, IssueDraft, Lookup, Readings, Remedy, RemedyInput,
    RepoNeeds, Runbook,
};

pub struct RbacDenied;

pub const ROOT_CAUSE: &str = "rbac_denied";

/// A refusal read from a log line ([`RbacRefusal::parse`]).
pub type Denial = RbacRefusal;

/// Reads the apiserver's RBAC refusal of a ServiceAccount out of a log line.
pub fn parse(line: &str) -> Option<Denial> {
    RbacRefusal::parse(line)
}

/// The refusal in the crashed container's logs, the last one.
pub fn denial(facts: &Facts) -> Option<Denial> {
    facts.logs.iter().rev().find_map(|l| parse(l))
}

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RbacSignals {
    pub denial: Denial,
    /// The roles bound to the ServiceAccount (`Role/x via RoleBinding/y`).
    pub bound_roles: Vec<String>,
    /// The ServiceAccount of the revision before the last, when the last rollout changed it.
    pub previous_service_account: Option<String>,
    /// Whether that previous ServiceAccount was allowed the request.
    pub previous_allowed: Option<bool>,
}

/// `get,list pods; update leases.coordination.k8s.io` from a set of rules.
fn grants(rules: &[RbacRule]) -> String {
    rules
        .iter()
        .map(|r| {
            let groups: Vec<String> = r
                .api_groups
                .iter()
                .map(|g| {
                    if g.is_empty() {
                        "core".into()
                    } else {
                        g.clone()
                    }
                })
                .collect();
            format!(
                "{} {} ({})",
                r.verbs.join(","),
                r.resources.join(","),
                groups.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn roles(rules: &[RbacRule]) -> Vec<String> {
    let mut out: Vec<String> = rules
        .iter()
        .map(|r| format!("{} via {}", r.role, r.binding))
        .collect();
    out.dedup();
    out
}

fn request_words(r: &ApiRequest, namespace: &str) -> String {
    let resource = if r.group.is_empty() {
        r.resource.clone()
    } else {
        format!("{}.{}", r.resource, r.group)
    };
    let named = r.name.as_ref().map(|n| format!(" {n}")).unwrap_or_default();
    let scope = if r.cluster_scope {
        "cluster-wide".to_owned()
    } else {
        format!("in namespace {namespace}")
    };
    format!("{} {resource}{named} {scope}", r.verb)
}

impl Family for RbacDenied {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        None
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let denial = denial(facts)?;
        let sa = denial.service_account.as_str();
        let rules: Vec<RbacRule> = facts
            .rbac
            .iter()
            .find(|(s, _)| s == sa)
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        let mut d = Detection::new(String::new(), 0.9, &[]);
        d.evidence.push(Evidence {
            source: "container logs".into(),
            observation: denial.message.clone(),
        });
        let have = if facts.rbac.iter().any(|(s, _)| s == sa) {
            if rules.is_empty() {
                d.evidence.push(Evidence {
                    source: "RBAC".into(),
                    observation: format!(
                        "no RoleBinding or ClusterRoleBinding names ServiceAccount {}/{sa}",
                        denial.namespace
                    ),
                });
                "no Role or ClusterRole is bound to it".to_owned()
            } else {
                d.evidence.push(Evidence {
                    source: "RBAC".into(),
                    observation: format!(
                        "ServiceAccount {}/{sa} is bound to {}: {}",
                        denial.namespace,
                        roles(&rules).join(", "),
                        grants(&rules)
                    ),
                });
                format!(
                    "the roles bound to it ({}) do not grant it",
                    roles(&rules).join(", ")
                )
            }
        } else {
            "its bindings could not be read".to_owned()
        };
        let change = last_rollout_change(facts, |r| {
            (!r.service_account.is_empty()).then(|| r.service_account.clone())
        });
        let mut previous_allowed = None;
        let mut cause = String::new();
        if let Some(c) = &change
            && c.after == sa
        {
            d.confidence = 0.95;
            let before_rules = facts.rbac.iter().find(|(s, _)| *s == c.before);
            previous_allowed =
                before_rules.map(|(_, r)| r.iter().any(|x| x.allows(&denial.request)));
            let allowed = match previous_allowed {
                Some(true) => format!(
                    ", which is allowed it ({}),",
                    roles(&before_rules.map(|x| x.1.clone()).unwrap_or_default()).join(", ")
                ),
                Some(false) => ", which is not allowed it either,".into(),
                None => String::new(),
            };
            d.evidence.push(Evidence {
                source: "rollout history".into(),
                observation: format!(
                    "revision {} ({}) changed the pods' ServiceAccount from {} to {sa}",
                    c.revision, c.ago, c.before
                ),
            });
            cause = format!(
                "; the last rollout ({}) moved the pods from ServiceAccount {}{allowed} to {sa}",
                c.ago, c.before
            );
        }
        d.summary = format!(
            "{} is refused by RBAC: ServiceAccount {}/{sa} may not {}, and {have}{cause}",
            facts.workload.name,
            denial.namespace,
            request_words(&denial.request, &denial.namespace),
        );
        if previous_allowed == Some(true)
            && let Some(c) = &change
        {
            d.recommendations.push(format!(
                "bind ServiceAccount {sa} where {} is bound (the same Role), or restore serviceAccountName {}",
                c.before, c.before
            ));
        }
        d.recommendations.push(format!(
            "grant exactly `{}` on `{}` (API group \"{}\") in the app's own Role{}; never a wildcard, never a ClusterRole when a Role serves",
            denial.request.verb,
            denial.request.resource,
            denial.request.group,
            if denial.request.cluster_scope {
                " (the request is cluster-scoped: a ClusterRole with a ClusterRoleBinding, or make the app ask within its namespace)"
            } else {
                ""
            }
        ));
        d.signals = serde_json::to_value(RbacSignals {
            bound_roles: roles(&rules),
            previous_service_account: change.map(|c| c.before),
            previous_allowed,
            denial,
        })
        .ok();
        Some(d)
    }

    /// The rules of the ServiceAccount refused, and of the one before it when the last
    /// rollout moved the pods off it.
    fn lookups(&self, facts: &Facts) -> Vec<Lookup> {
        let Some(d) = denial(facts).filter(|d| d.namespace == facts.workload.namespace) else {
            return Vec::new();
        };
        let mut accounts = vec![Lookup::Rbac(d.service_account.clone())];
        if let [.., before, last] = facts.history.as_slice()
            && last.service_account == d.service_account
            && !before.service_account.is_empty()
            && before.service_account != d.service_account
        {
            accounts.push(Lookup::Rbac(before.service_account.clone()));
        }
        accounts
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the ServiceAccount's Role and bindings against the request refused",
            ),
            (
                Member::Worf,
                "that the grant stays the narrowest one: the verb, the resource, the namespace",
            ),
            (
                Member::Data,
                "which code path makes the request and whether it needs it",
            ),
        ]
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds {
            manifest: true,
            history: true,
        }
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        let s: Option<RbacSignals> = crate::family_signals(d);
        // The last deploy moved the pods to a ServiceAccount that is not allowed what the one
        // before was: the ServiceAccount goes back (its Role already grants exactly what the app
        // does; no permission is widened).
        if let Some(previous) = s
            .as_ref()
            .filter(|s| s.previous_allowed == Some(true))
            .and_then(|s| s.previous_service_account.clone())
            && let Some((change, before)) = crate::undo::template_change(
                input,
                &[&["spec", "serviceAccountName"], &["spec", "serviceAccount"]],
                &format!(
                    "RBAC refuses the app's request under the ServiceAccount the deploy set; {previous}, the one before it, is allowed it"
                ),
                "the deploy moved the pods to a ServiceAccount without the app's permissions",
            )
            && crate::undo::template_of(input.workload, &before)["spec"]["serviceAccountName"]
                .as_str()
                .is_some_and(|sa| sa == previous)
        {
            return Remedy::Change(change);
        }
        Remedy::not_yet(
            "RBAC refusals other than a ServiceAccount the last deploy changed",
            d,
            "a human grants the one missing permission in the app's own Role (or binds its new ServiceAccount)",
        )
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "rbac-denied".into(),
            meaning: "The app calls the Kubernetes API with its pod's ServiceAccount and RBAC refuses the request (`… is forbidden: User \"system:serviceaccount:<ns>:<sa>\" cannot <verb> resource …`). An app that needs the call to start exits and crash-loops; one that retries logs the refusal and does part of its job.".into(),
            checks: "1. `kubectl logs -n <ns> <pod> --previous | grep forbidden` — the verb, resource, API group and scope refused.\n2. `kubectl auth can-i <verb> <resource> -n <ns> --as=system:serviceaccount:<ns>:<sa>`.\n3. `kubectl get rolebindings,clusterrolebindings -A -o wide | grep <sa>` and the Role they name.\n4. The GitOps diff of the last deploy: a renamed ServiceAccount, a Role tightened, a new API call in the app.".into(),
            fixes: "- **New or renamed ServiceAccount**: bind it to the app's Role (or restore the previous name).\n- **Missing permission**: add exactly that verb on that resource (and API group) to the app's own Role.\n- Never `*` in verbs, resources or API groups; never a ClusterRole or ClusterRoleBinding when a namespaced Role serves; never `cluster-admin`.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Check {workload}'s API calls against its Role in CI (`kubectl auth can-i --as` on a test cluster) before a deploy merges."
            ),
            "Rename a ServiceAccount and its bindings in the same change.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "List the API calls {} makes and keep its Role to exactly those",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) RBAC refused a request {} makes with its ServiceAccount.\n\n\
                 1. List every Kubernetes API call in the code (client-go informers, listers, leader election) with its verb, resource and scope.\n\
                 2. Keep the Role to exactly those, and test it in CI with `kubectl auth can-i --as=system:serviceaccount:{}:<sa>`.\n\
                 3. Reproduce: `kubectl logs -n {} {} --previous | grep forbidden`.",
                cx.incident,
                cx.issue,
                cx.workload.name,
                cx.workload.namespace,
                cx.workload.namespace,
                cx.pod
            ),
            label: "security".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::testing;

    const REFUSED: &str = "E1205 09:12:44.123456       1 reflector.go:147] failed to list *v1.Pod: pods is forbidden: User \"system:serviceaccount:shop:cart-v2\" cannot list resource \"pods\" in API group \"\" in the namespace \"shop\"";

    fn rule(role: &str, verbs: &[&str], resources: &[&str]) -> RbacRule {
        RbacRule {
            role: format!("Role/{role}"),
            binding: format!("RoleBinding/{role}"),
            cluster_wide: false,
            api_groups: vec![String::new()],
            resources: resources.iter().map(|s| (*s).to_owned()).collect(),
            resource_names: Vec::new(),
            verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn reads_the_apiservers_refusals_in_any_log_line() {
        let d = parse(REFUSED).unwrap();
        assert_eq!(
            (d.namespace.as_str(), d.service_account.as_str()),
            ("shop", "cart-v2")
        );
        assert_eq!(
            d.request,
            ApiRequest {
                verb: "list".into(),
                group: String::new(),
                resource: "pods".into(),
                name: None,
                cluster_scope: false
            }
        );
        assert_eq!(d.message, d.request.forbidden("shop", "cart-v2"));
        let named = parse("error retrieving resource lock shop/cart: leases.coordination.k8s.io \"cart\" is forbidden: User \"system:serviceaccount:shop:cart\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"shop\"").unwrap();
        assert_eq!(named.request.name.as_deref(), Some("cart"));
        assert_eq!(named.request.group, "coordination.k8s.io");
        assert_eq!(named.message, named.request.forbidden("shop", "cart"));
        let cluster = parse("nodes is forbidden: User \"system:serviceaccount:shop:cart\" cannot list resource \"nodes\" in API group \"\" at the cluster scope").unwrap();
        assert!(cluster.request.cluster_scope);
        assert_eq!(cluster.message, cluster.request.forbidden("shop", "cart"));
        assert!(parse("pods is forbidden: User \"alice\" cannot list resource").is_none());
    }

    #[test]
    fn a_renamed_service_account_that_no_binding_names() {
        let mut f = testing::crashing(&["starting cart 3.1", REFUSED]);
        f.history[1].service_account = "cart-v2".into();
        f.rbac = vec![
            ("cart-v2".into(), Vec::new()),
            (
                "cart".into(),
                vec![rule("cart", &["get", "list", "watch"], &["pods"])],
            ),
        ];
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "cart is refused by RBAC: ServiceAccount shop/cart-v2 may not list pods in namespace shop, and no Role or ClusterRole is bound to it; the last rollout (30 h ago) moved the pods from ServiceAccount cart, which is allowed it (Role/cart via RoleBinding/cart), to cart-v2"
        );
        assert_eq!(d.confidence, 0.95);
        let reason = testing::escalation(&RbacDenied, &d);
        assert!(reason.contains("cart-v2"), "{reason}");
    }

    #[test]
    fn a_role_without_the_verb_is_named_with_what_it_grants() {
        let mut f = testing::crashing(&[REFUSED.replace("cart-v2", "cart").as_str()]);
        f.rbac = vec![(
            "cart".into(),
            vec![rule("cart", &["get", "watch"], &["pods"])],
        )];
        let d = testing::diagnosis(&f);
        assert!(
            d.summary.ends_with(
                "ServiceAccount shop/cart may not list pods in namespace shop, and the roles bound to it (Role/cart via RoleBinding/cart) do not grant it"
            ),
            "{}",
            d.summary
        );
        let f = testing::crashing(&["panic: runtime error: index out of range"]);
        assert!(RbacDenied.detect(&f, &Readings::of(&f)).is_none());
    }
}
