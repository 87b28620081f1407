//! RBAC decides, and words its refusals, as the real apiserver does.

use super::*;

/// The rbac scenario's Roles and bindings seeded into the real apiserver: for each of the app's
/// requests and each of its ServiceAccounts (the old one, bound, and the new one, not), the
/// decision `RbacRule::allows` takes on the rules the adapter reads equals the real RBAC
/// authorizer's (`kubectl auth can-i --as`), and a refused request is refused in the words
/// `ApiRequest::forbidden` writes (what the simulated app logs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_decides_and_words_refusals_as_the_real_apiserver() {
    const TEST: &str = "rbac_decides_and_words_refusals_as_the_real_apiserver";
    let Some(t) = Twin::start(TEST, "rbac", Options { rbac: true }).await else {
        return;
    };
    let kc: PathBuf = t.real.kubeconfig_path().to_path_buf();
    let real = t.adapter(&kc).await;
    let ns = t.scenario.workload.namespace.as_str();
    let mut decisions = Vec::new();
    for sa in ["inventory-sync", "warehouse-inventory-sync"] {
        let rules = real.rbac_rules(ns, sa).await.unwrap();
        let user = format!("--as=system:serviceaccount:{ns}:{sa}");
        for call in &t.scenario.app.api_calls {
            let resource = if call.group.is_empty() {
                call.resource.clone()
            } else {
                format!("{}.{}", call.resource, call.group)
            };
            let target = match &call.name {
                Some(n) => format!("{resource}/{n}"),
                None => resource.clone(),
            };
            let can = kubectl(
                &kc,
                &["auth", "can-i", &call.verb, &target, "-n", ns, &user],
            )
            .await;
            let real_allows = String::from_utf8_lossy(&can.stdout).trim() == "yes";
            let allows = rules.iter().any(|r| r.allows(call));
            assert_eq!(
                allows, real_allows,
                "{sa} {} {target}: RbacRule::allows says {allows}, the apiserver {real_allows}",
                call.verb
            );
            decisions.push(format!("{sa} {} {target}: {allows}", call.verb));
            if !allows && matches!(call.verb.as_str(), "get" | "list") {
                let mut args = vec!["get", resource.as_str()];
                if let Some(n) = &call.name {
                    args.push(n);
                }
                args.extend(["-n", ns, &user]);
                let out = kubectl(&kc, &args).await;
                let said = String::from_utf8_lossy(&out.stderr).to_string();
                assert!(
                    !out.status.success() && said.contains(&call.forbidden(ns, sa)),
                    "{sa} {} {target}: the apiserver said {said:?}, we write {:?}",
                    call.verb,
                    call.forbidden(ns, sa)
                );
            }
        }
    }
    eprintln!("{decisions:#?}");
    // The old ServiceAccount may do both, the new one neither.
    assert_eq!(decisions.iter().filter(|d| d.ends_with("true")).count(), 2);
}
