//! The narrowest allow rule for a blocked lookup: egress from the policy's pods to the cluster's
//! DNS (pods `k8s-app=kube-dns` in namespace `kube-system`, the labels kubeadm's CoreDNS and
//! kube-dns both carry) on UDP 53 and TCP 53 — appended to the policy's `egress` list in the
//! file's own list style, nothing else in the policy changed.

use squad_gitops::editor::object_key_lines;

use crate::{Edit, RepoObject};

/// How far the `-` of a list sits from its key, read from a key's lines (`egress:` first):
/// 0 for `egress:\n- to:`, 2 for `egress:\n  - to:`.
fn dash_offset(lines: &[String]) -> usize {
    lines
        .iter()
        .skip(1)
        .find(|l| l.trim_start().starts_with("- "))
        .map_or(2, |l| l.len() - l.trim_start().len())
}

/// The DNS rule as a list item whose dash sits at column `o`, nested lists in the same style.
fn dns_rule(o: usize) -> Vec<String> {
    let pad = |n: usize, s: &str| format!("{}{s}", " ".repeat(n));
    let k = o + 2; // the item's keys
    let n = k + o; // a nested list's dashes
    let m = n + 2; // a nested item's keys
    vec![
        pad(o, "- to:"),
        pad(n, "- namespaceSelector:"),
        pad(m + 2, "matchLabels:"),
        pad(m + 4, "kubernetes.io/metadata.name: kube-system"),
        pad(m, "podSelector:"),
        pad(m + 2, "matchLabels:"),
        pad(m + 4, "k8s-app: kube-dns"),
        pad(k, "ports:"),
        pad(n, "- protocol: UDP"),
        pad(m, "port: 53"),
        pad(n, "- protocol: TCP"),
        pad(m, "port: 53"),
    ]
}

/// The edit that lets the policy's pods reach DNS: its `egress` list with the rule appended (or
/// an `egress` list of that rule alone).
pub fn dns_egress(policy: &RepoObject) -> Option<Edit> {
    let keys = ["spec", "egress"];
    let now = object_key_lines(&policy.text, &policy.kind, &policy.name, &keys).ok()?;
    let lines = match now {
        Some(mut lines) if lines.len() > 1 => {
            let o = dash_offset(&lines);
            lines.extend(dns_rule(o));
            lines
        }
        // `egress: []`, or no rule at all.
        _ => std::iter::once("egress:".to_owned())
            .chain(dns_rule(dash_offset(&[])))
            .collect(),
    };
    Some(Edit::SetObjectKey {
        path: policy.path.clone(),
        kind: policy.kind.clone(),
        name: policy.name.clone(),
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        lines: Some(lines),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy(text: &str) -> RepoObject {
        RepoObject {
            kind: "NetworkPolicy".into(),
            name: "api-egress".into(),
            path: "np.yaml".into(),
            text: text.into(),
            history: Vec::new(),
        }
    }

    fn applied(text: &str) -> String {
        let edit = dns_egress(&policy(text)).unwrap();
        let files = std::collections::BTreeMap::from([("np.yaml".to_owned(), text.to_owned())]);
        squad_gitops::apply(&[edit], &files).unwrap()[0].1.clone()
    }

    const HEAD: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: api-egress # ours\nspec:\n  podSelector:\n    matchLabels:\n      app: api\n  policyTypes:\n  - Egress\n";

    #[test]
    fn the_rule_joins_the_list_in_its_own_style() {
        for (style, rule) in [
            (
                "  egress:\n  - to:\n    - podSelector:\n        matchLabels:\n          app: db\n    ports:\n    - protocol: TCP\n      port: 5432\n",
                "  - to:\n    - namespaceSelector:",
            ),
            (
                "  egress:\n    - to:\n        - podSelector:\n            matchLabels:\n              app: db\n",
                "    - to:\n        - namespaceSelector:",
            ),
        ] {
            let text = format!("{HEAD}{style}");
            let out = applied(&text);
            assert!(out.starts_with(&text), "{out}");
            assert!(out[text.len()..].starts_with(rule), "{out}");
            let v = &squad_gitops::objects::parse("np.yaml", &out).unwrap()[0];
            let rules = v["spec"]["egress"].as_array().unwrap();
            assert_eq!(rules.len(), 2);
            let dns = &rules[1];
            assert_eq!(
                dns["to"][0]["podSelector"]["matchLabels"]["k8s-app"],
                "kube-dns"
            );
            assert_eq!(
                dns["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                "kube-system"
            );
            assert_eq!(dns["ports"][0]["protocol"], "UDP");
            assert_eq!(dns["ports"][1]["protocol"], "TCP");
            assert_eq!(dns["ports"][1]["port"], 53);
        }
    }

    #[test]
    fn a_deny_all_egress_gets_the_one_rule() {
        let out = applied(HEAD);
        let v = &squad_gitops::objects::parse("np.yaml", &out).unwrap()[0];
        assert_eq!(v["spec"]["egress"].as_array().unwrap().len(), 1);
        assert!(out.contains("name: api-egress # ours"));
    }
}
