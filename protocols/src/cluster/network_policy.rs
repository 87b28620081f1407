//! A namespace's NetworkPolicies as squad reads them, and how they decide a pod's egress.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPolicyInfo {
    pub name: String,
    pub pod_selector: BTreeMap<String, String>,
    pub policy_types: Vec<String>,
    pub ingress_rules: usize,
    pub egress_rules: usize,
    /// The egress rules, each allowing traffic to its peers on its ports.
    #[serde(default)]
    pub egress: Vec<EgressRule>,
    /// The ingress rules, each allowing traffic from its peers on its ports.
    #[serde(default)]
    pub ingress: Vec<IngressRule>,
}

/// One ingress rule of a NetworkPolicy: traffic from any of `from` (every source, inside the
/// cluster or not, when empty) on any of `ports` (every port when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressRule {
    pub from: Vec<PolicyPeer>,
    pub ports: Vec<PolicyPort>,
}

/// One egress rule of a NetworkPolicy: traffic to any of `to` (everywhere when empty) on any of
/// `ports` (every port when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressRule {
    pub to: Vec<PolicyPeer>,
    pub ports: Vec<PolicyPort>,
}

/// A peer of a rule: pods by labels (in the policy's namespace, or in the namespaces a
/// namespace selector picks), or addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPeer {
    /// `podSelector.matchLabels`; `Some(empty)` selects every pod.
    pub pod_selector: Option<BTreeMap<String, String>>,
    /// `namespaceSelector.matchLabels`; `Some(empty)` selects every namespace.
    pub namespace_selector: Option<BTreeMap<String, String>>,
    /// `ipBlock.cidr` and its `except`.
    pub ip_block: Option<(String, Vec<String>)>,
}

/// A port of a rule: `protocol` (TCP unless set), a number or a named port, and `endPort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPort {
    pub protocol: String,
    pub port: Option<String>,
    pub end_port: Option<u16>,
}

/// Where a pod sends traffic, as a NetworkPolicy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub namespace: String,
    pub namespace_labels: BTreeMap<String, String>,
    pub pod_labels: BTreeMap<String, String>,
    pub ip: String,
    pub port: u16,
    /// `TCP` or `UDP`.
    pub protocol: String,
}

/// Whether `labels` carry every pair of `selector` (an empty selector matches everything).
pub(super) fn matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether `ip` (IPv4, dotted) is inside `cidr`.
fn in_cidr(ip: &str, cidr: &str) -> bool {
    let parse = |a: &str| -> Option<u32> {
        let o: Vec<u8> = a
            .split('.')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        (o.len() == 4).then(|| u32::from_be_bytes([o[0], o[1], o[2], o[3]]))
    };
    let (net, bits) = cidr.split_once('/').unwrap_or((cidr, "32"));
    match (parse(ip), parse(net), bits.parse::<u32>()) {
        (Some(ip), Some(net), Ok(bits)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            ip & mask == net & mask
        }
        _ => false,
    }
}

impl PolicyPeer {
    fn admits(&self, policy_namespace: &str, d: &Destination) -> bool {
        if let Some((cidr, except)) = &self.ip_block {
            return in_cidr(&d.ip, cidr) && !except.iter().any(|e| in_cidr(&d.ip, e));
        }
        let namespace_ok = match &self.namespace_selector {
            Some(sel) => matches(sel, &d.namespace_labels),
            None => d.namespace == policy_namespace,
        };
        let pod_ok = self
            .pod_selector
            .as_ref()
            .is_none_or(|sel| matches(sel, &d.pod_labels));
        namespace_ok && pod_ok
    }
}

impl PolicyPort {
    fn admits(&self, d: &Destination) -> bool {
        if !self.protocol.eq_ignore_ascii_case(&d.protocol) {
            return false;
        }
        match &self.port {
            None => true,
            Some(p) => match p.parse::<u16>() {
                Ok(n) => d.port >= n && d.port <= self.end_port.unwrap_or(n),
                // A named port: the destination's, which only the destination pod knows.
                Err(_) => false,
            },
        }
    }
}

impl EgressRule {
    /// Whether the rule lets traffic go to `d`, for a policy in `policy_namespace`.
    pub fn allows(&self, policy_namespace: &str, d: &Destination) -> bool {
        (self.to.is_empty() || self.to.iter().any(|p| p.admits(policy_namespace, d)))
            && (self.ports.is_empty() || self.ports.iter().any(|p| p.admits(d)))
    }
}

impl NetworkPolicyInfo {
    /// Whether the policy restricts the ingress of the pods it selects: `policyTypes` has
    /// `Ingress`, or is unset (every policy affects ingress then, as the API defines it).
    pub fn isolates_ingress(&self) -> bool {
        self.policy_types.is_empty() || self.policy_types.iter().any(|t| t == "Ingress")
    }

    /// Whether the policy restricts the egress of the pods it selects (`policyTypes` has
    /// `Egress`, or, unset, the policy has egress rules).
    pub fn isolates_egress(&self) -> bool {
        if self.policy_types.is_empty() {
            self.egress_rules > 0
        } else {
            self.policy_types.iter().any(|t| t == "Egress")
        }
    }

    /// Whether the NetworkPolicies of `namespace` let pods with `labels` send traffic to `d`:
    /// yes when none of them isolates the pods' egress, else when a rule of one that does
    /// allows it.
    pub fn egress_allowed(
        policies: &[NetworkPolicyInfo],
        namespace: &str,
        labels: &BTreeMap<String, String>,
        d: &Destination,
    ) -> bool {
        let isolating: Vec<&NetworkPolicyInfo> = policies
            .iter()
            .filter(|p| p.selects(labels) && p.isolates_egress())
            .collect();
        isolating.is_empty()
            || isolating
                .iter()
                .any(|p| p.egress.iter().any(|r| r.allows(namespace, d)))
    }

    /// Whether the policy's selector selects pods with these labels.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.pod_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }
}
