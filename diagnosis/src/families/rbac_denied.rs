//! RBAC denying the app: the app calls the Kubernetes API with its pod's ServiceAccount and the
//! apiserver refuses (`pods is forbidden: User "system:serviceaccount:ns:sa" cannot list
//! resource "pods" in API group "" in the namespace "ns"`); the app logs it and, when the call
//! is one it cannot start without, exits (KubePodCrashLooping). The family reads the refusal
//! from the logs, the rules bound to that ServiceAccount (none of which grants the request),
//! and what the last rollout changed in the ServiceAccount. Two fixes, never a wildcard, never
//! a ClusterRole when a Role serves: when the last deploy moved the pods to a ServiceAccount
//! not allowed what the one before was, that ServiceAccount goes back; when the pods' own
//! ServiceAccount lacks one permission (a new release makes a new call), the one missing verb
//! on the one resource goes into the app's own Role (`grant.rs`). Anything else escalates with
//! who decides. The proof is the request allowed and restarts flat.

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::{ApiRequest, RbacRefusal, RbacRule};
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::readings::last_rollout_change;
use crate::{
    Change, Detection, Facts, Family, FollowupContext, IssueDraft, Lookup, Readings, Remedy,
    RemedyInput, RepoNeeds, RepoObject, Runbook,
};

mod grant;

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

/// The names of the namespaced Roles a RoleBinding binds to the ServiceAccount (`Role/x via
/// RoleBinding/y`): the app's own. A ClusterRole, even bound by a RoleBinding, is shared.
fn own_roles(s: &RbacSignals) -> Vec<String> {
    let mut out: Vec<String> = s
        .bound_roles
        .iter()
        .filter_map(|b| {
            let (role, binding) = b.split_once(" via ")?;
            binding.starts_with("RoleBinding/").then_some(())?;
            role.strip_prefix("Role/").map(str::to_owned)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The namespace the refused request was made in, from the apiserver's words (`… in the
/// namespace "x"`); `None` at the cluster scope.
fn request_namespace(denial: &Denial) -> Option<&str> {
    let (_, rest) = denial.message.rsplit_once("in the namespace \"")?;
    rest.split('"').next()
}

/// Who decides a grant squad does not make, and the narrowest one they can make.
const OWNERS: &str = "the app's owners with the platform team and security";

/// The second rule: the ServiceAccount the pods have run as all along lacks one permission (a
/// new release makes a new API call, or its Role lost a verb). Neither a rollback (the release is
/// lost) nor a wildcard, a ClusterRole or cluster-admin (far more than the one call) is the fix:
/// the one verb on the one resource goes into the app's own Role in the repository — the
/// namespaced Role in the workload's namespace a RoleBinding binds to that ServiceAccount.
/// Anything else (a cluster-scoped request, a request into another namespace, only ClusterRoles
/// bound, the Role not in the repository, a ServiceAccount the last deploy changed) is a human's
/// decision, escalated with who makes it.
fn grant_in_own_role(d: &Diagnosis, s: &RbacSignals, input: &RemedyInput<'_>) -> Remedy {
    let r = &s.denial.request;
    let ns = input.workload.namespace.as_str();
    let sa = &s.denial.service_account;
    let what = request_words(r, &s.denial.namespace);
    let escalate = |why: String, decides: &str| Remedy::Escalate {
        reason: format!(
            "{}; {why}: no pull request, {OWNERS} decide {decides}",
            d.summary
        ),
    };
    if let Some(previous) = &s.previous_service_account {
        return escalate(
            format!(
                "the last deploy moved the pods from ServiceAccount {previous} to {sa}; {previous} {}",
                match s.previous_allowed {
                    Some(true) =>
                        "was allowed it, but the manifest's earlier serviceAccountName could not be restored",
                    Some(false) => "was not allowed it either",
                    None => "has bindings that could not be read",
                }
            ),
            "which ServiceAccount the app runs as and what its Role grants",
        );
    }
    if r.cluster_scope {
        return escalate(
            format!("`{what}` is a cluster-scoped request, which no namespaced Role can grant"),
            "whether the app may hold a ClusterRole (bound by a ClusterRoleBinding) for exactly that, or should ask within its namespace",
        );
    }
    if s.denial.namespace != ns || request_namespace(&s.denial).is_some_and(|n| n != ns) {
        return escalate(
            format!(
                "the request is made outside the workload's namespace {ns} (`{}`)",
                s.denial.message
            ),
            "whether the namespace it reaches into grants it, in a Role of that namespace",
        );
    }
    let own = own_roles(s);
    if own.is_empty() {
        let bound = if s.bound_roles.is_empty() {
            "nothing".to_owned()
        } else {
            s.bound_roles.join(", ")
        };
        return escalate(
            format!(
                "no namespaced Role is bound to ServiceAccount {ns}/{sa} by a RoleBinding (bound: {bound}); a ClusterRole is shared, and widening it widens every binding of it"
            ),
            &format!("whether the app gets a Role of its own for `{what}`"),
        );
    }
    let found: Vec<&RepoObject> = own
        .iter()
        .filter_map(|n| input.repo.object("Role", n))
        .collect();
    // The Role whose rule already covers the resource, else the one named after the app or its
    // ServiceAccount, else the only one.
    let role = found
        .iter()
        .find(|o| grant::has_rule_for(o, r))
        .or_else(|| {
            found
                .iter()
                .find(|o| o.name == input.workload.name || o.name == *sa)
        })
        .or(match found.as_slice() {
            [one] => Some(one),
            _ => None,
        });
    let Some(role) = role else {
        let why = if found.is_empty() {
            format!(
                "the GitOps repository declares none of the Roles bound to it in namespace {ns} (Role {})",
                own.join(", Role ")
            )
        } else {
            format!(
                "several Roles are bound to it ({}) and none is clearly the app's own",
                own.join(", ")
            )
        };
        return escalate(why, &format!("where `{what}` is granted"));
    };
    let Some(g) = grant::grant(role, r) else {
        return escalate(
            format!(
                "Role {} ({}) is written in a shape squad does not edit line by line",
                role.name, role.path
            ),
            &format!("how `{what}` is added to it"),
        );
    };
    let app = &input.workload.name;
    let how = match g.extended {
        Some(n) => format!(
            "appends `{}` to the verbs of its rule {n} (now {}); the rule already covers exactly that resource",
            r.verb, g.rule
        ),
        None => format!("appends one rule: {}", g.rule),
    };
    let why = format!(
        "RBAC refuses {app}'s `{what}` (ServiceAccount {sa}): its own Role {} grants the rest of what the app does but not that",
        role.name
    );
    Remedy::Change(Change {
        branch_word: "rbac-grant".into(),
        title: format!(
            "fix(rbac): grant {app} {} on {} in Role {}",
            r.verb, r.resource, role.name
        ),
        edits: vec![g.edit],
        notes: format!(
            "### The one missing permission\n{why}. This PR edits `{}` ({}), the namespaced Role a RoleBinding binds to ServiceAccount {sa} in {ns}, and {how}. Every other rule, and every comment, stays as it was.\n\n\
             Not a rollback: the release stays, and the call it makes is granted. Not a wildcard, a ClusterRole or cluster-admin: the grant is the one verb on the one resource{}, in this namespace only.\n",
            role.name,
            role.path,
            r.name
                .as_ref()
                .map(|n| format!(" (the object {n} alone)"))
                .unwrap_or_default()
        ),
        findings: vec![squad_protocols::Finding {
            severity: squad_protocols::Severity::High,
            title: "the app's Role lacks a permission the app uses".into(),
            detail: why,
        }],
    })
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

    /// The namespaced Roles bound to the refused ServiceAccount by a RoleBinding: where the
    /// missing permission goes.
    fn repo_objects(&self, d: &Diagnosis) -> Vec<(String, String)> {
        crate::family_signals::<RbacSignals>(d)
            .map(|s| {
                own_roles(&s)
                    .into_iter()
                    .map(|r| ("Role".to_owned(), r))
                    .collect()
            })
            .unwrap_or_default()
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
        match s {
            Some(s) => grant_in_own_role(d, &s, input),
            None => Remedy::not_yet(
                "an RBAC refusal whose measurements are missing",
                d,
                "a human grants the one missing permission in the app's own Role",
            ),
        }
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

    const WATCH: &str = "E1205 09:12:44.123456       1 reflector.go:150] Failed to watch *v1.ConfigMap: configmaps is forbidden: User \"system:serviceaccount:shop:cart\" cannot watch resource \"configmaps\" in API group \"\" in the namespace \"shop\"";

    const ROLE: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: cart-runtime\n  namespace: shop\nrules:\n- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  verbs: [\"get\", \"list\"] # settings\n";

    fn own_role(role: &str) -> RbacRule {
        RbacRule {
            binding: "RoleBinding/cart".into(),
            ..rule(role, &["get", "list"], &["configmaps"])
        }
    }

    /// The remedy for a refusal of `log` to ServiceAccount cart (unchanged by the last deploy),
    /// bound to `rules`, with the repository declaring `objects`.
    fn remedy_of(log: &str, rules: Vec<RbacRule>, objects: Vec<RepoObject>) -> (Diagnosis, Remedy) {
        let mut f = testing::crashing(&["starting cart 3.2", log]);
        f.rbac = vec![("cart".into(), rules)];
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        let mut repo = testing::manifest();
        repo.objects = objects;
        let (settings, workload) = (testing::settings(), testing::workload());
        let cluster = crate::ClusterView::default();
        let remedy = RbacDenied.remedy(&d, &testing::input(&settings, &workload, &repo, &cluster));
        (d, remedy)
    }

    fn declared(kind: &str, text: &str) -> RepoObject {
        RepoObject {
            kind: kind.into(),
            name: "cart-runtime".into(),
            path: "apps/cart/rbac.yaml".into(),
            text: text.into(),
            history: Vec::new(),
        }
    }

    #[test]
    fn a_new_call_gets_its_one_verb_in_the_apps_own_role() {
        let mut f = testing::crashing(&[WATCH]);
        f.rbac = vec![("cart".into(), vec![own_role("cart-runtime")])];
        let d = testing::diagnosis(&f);
        assert_eq!(
            RbacDenied.repo_objects(&d),
            vec![("Role".to_owned(), "cart-runtime".to_owned())]
        );
        let (_, remedy) = remedy_of(
            WATCH,
            vec![own_role("cart-runtime")],
            vec![declared("Role", ROLE)],
        );
        let Remedy::Change(c) = remedy else {
            panic!("expected a PR, got {remedy:?}");
        };
        assert_eq!(
            c.title,
            "fix(rbac): grant cart watch on configmaps in Role cart-runtime"
        );
        let files =
            std::collections::BTreeMap::from([("apps/cart/rbac.yaml".to_owned(), ROLE.to_owned())]);
        let out = squad_gitops::apply(&c.edits, &files).unwrap();
        assert_eq!(
            out[0].1,
            ROLE.replace("[\"get\", \"list\"]", "[\"get\", \"list\", \"watch\"]")
        );
        assert!(c.notes.contains("Not a rollback"), "{}", c.notes);
    }

    #[test]
    fn a_grant_squad_would_over_make_escalates_to_who_decides() {
        let escalated = |remedy: Remedy| match remedy {
            Remedy::Escalate { reason } => {
                assert!(reason.contains("platform team and security"), "{reason}");
                reason
            }
            other => panic!("expected an escalation, got {other:?}"),
        };
        // Only a ClusterRole bound (by a RoleBinding): it is shared, never widened.
        let shared = RbacRule {
            role: "ClusterRole/cart-runtime".into(),
            ..own_role("cart-runtime")
        };
        let mut cluster_role = declared(
            "ClusterRole",
            &ROLE.replace("kind: Role", "kind: ClusterRole"),
        );
        cluster_role.kind = "ClusterRole".into();
        let reason = escalated(remedy_of(WATCH, vec![shared], vec![cluster_role]).1);
        assert!(reason.contains("no namespaced Role"), "{reason}");
        // A cluster-scoped request.
        let nodes = "nodes is forbidden: User \"system:serviceaccount:shop:cart\" cannot list resource \"nodes\" in API group \"\" at the cluster scope";
        let reason = escalated(
            remedy_of(
                nodes,
                vec![own_role("cart-runtime")],
                vec![declared("Role", ROLE)],
            )
            .1,
        );
        assert!(reason.contains("cluster-scoped"), "{reason}");
        // A request into another namespace.
        let other = WATCH.replace("the namespace \"shop\"", "the namespace \"payments\"");
        escalated(
            remedy_of(
                &other,
                vec![own_role("cart-runtime")],
                vec![declared("Role", ROLE)],
            )
            .1,
        );
        // The Role is not in the repository.
        let reason = escalated(remedy_of(WATCH, vec![own_role("cart-runtime")], Vec::new()).1);
        assert!(reason.contains("declares none"), "{reason}");
        // A rules list squad does not edit line by line.
        let flow = ROLE.split("rules:").next().unwrap().to_owned()
            + "rules: [{apiGroups: [\"\"], resources: [configmaps], verbs: [get, list]}]\n";
        escalated(
            remedy_of(
                WATCH,
                vec![own_role("cart-runtime")],
                vec![declared("Role", &flow)],
            )
            .1,
        );
    }
}
