//! How the workload is reached from outside the cluster: the Services that select its pods, by
//! type and addresses (kube-score's `service-type`, Trivy's KSV108 on `externalIPs`).

use squad_protocols::cluster::{ServiceInfo, WorkloadInfo};
use squad_protocols::{Finding, Severity};

/// Client ranges that let every address in.
const EVERY_ADDRESS: [&str; 2] = ["0.0.0.0/0", "::/0"];

/// Findings on the Services that select `w`'s pods: a NodePort (Medium: every node answers on
/// the port, to anything that reaches a node, around any Ingress or Gateway and its TLS); a
/// LoadBalancer without `loadBalancerSourceRanges`, or with a range of every address (Medium:
/// reachable from the internet when the load balancer is public); `externalIPs` (Medium: the
/// Service answers for addresses outside the cluster, and whoever can set them can capture
/// traffic meant for those addresses, CVE-2020-8554). One finding per Service and cause.
pub fn review_service_exposure(w: &WorkloadInfo, services: &[ServiceInfo]) -> Vec<Finding> {
    let mut found = Vec::new();
    for s in services.iter().filter(|s| s.selects(&w.pod_labels)) {
        let ports = s
            .ports
            .iter()
            .map(|p| format!("{}/{}", p.port, p.protocol))
            .collect::<Vec<_>>()
            .join(", ");
        let ports = if ports.is_empty() {
            "no port".to_owned()
        } else {
            ports
        };
        match s.kind() {
            "NodePort" => found.push(Finding {
                severity: Severity::Medium,
                title: format!("Service {} exposes {} on every node (NodePort)", s.name, w.name),
                detail: format!(
                    "ports {ports} answer on each node's address, to anything that reaches a node, around any Ingress, Gateway or their TLS; use type ClusterIP behind an Ingress or Gateway, or limit who reaches the nodes"
                ),
            }),
            "LoadBalancer" => {
                let open: Vec<&String> = s
                    .load_balancer_source_ranges
                    .iter()
                    .filter(|r| EVERY_ADDRESS.contains(&r.trim()))
                    .collect();
                if s.load_balancer_source_ranges.is_empty() || !open.is_empty() {
                    let why = if open.is_empty() {
                        "no loadBalancerSourceRanges".to_owned()
                    } else {
                        format!("loadBalancerSourceRanges includes {}", open[0])
                    };
                    found.push(Finding {
                        severity: Severity::Medium,
                        title: format!(
                            "Service {} exposes {} to every address (LoadBalancer)",
                            s.name, w.name
                        ),
                        detail: format!(
                            "ports {ports} through a load balancer with {why}: on a public load balancer that is the internet; list the clients' ranges in loadBalancerSourceRanges, or use an internal load balancer"
                        ),
                    });
                }
            }
            _ => {}
        }
        if !s.external_ips.is_empty() {
            found.push(Finding {
                severity: Severity::Medium,
                title: format!(
                    "Service {} answers on external IPs {}",
                    s.name,
                    s.external_ips.join(", ")
                ),
                detail: "externalIPs make the cluster answer for addresses it does not own, and whoever can set them can capture traffic meant for those addresses (CVE-2020-8554); use a LoadBalancer or an Ingress, and refuse externalIPs at admission (DenyServiceExternalIPs)".into(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use squad_protocols::cluster::ServicePort;

    use super::*;

    fn service(name: &str, kind: &str, selector: &[(&str, &str)]) -> ServiceInfo {
        ServiceInfo {
            namespace: "shop".into(),
            name: name.into(),
            cluster_ip: "10.0.0.9".into(),
            selector: selector
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ports: vec![ServicePort {
                name: "http".into(),
                port: 8443,
                target_port: "https".into(),
                protocol: "TCP".into(),
            }],
            endpoints: Vec::new(),
            service_type: kind.into(),
            external_ips: Vec::new(),
            load_balancer_source_ranges: Vec::new(),
        }
    }

    fn workload(labels: &[(&str, &str)]) -> WorkloadInfo {
        WorkloadInfo {
            name: "checkout".into(),
            namespace: "shop".into(),
            pod_labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect::<BTreeMap<_, _>>(),
            ..WorkloadInfo::default()
        }
    }

    #[test]
    fn only_services_that_select_the_pods_and_reach_outside_are_findings() {
        let w = workload(&[("app.kubernetes.io/name", "checkout"), ("tier", "web")]);
        let mine = [("app.kubernetes.io/name", "checkout")];
        let mut lb_ranged = service("lb-office", "LoadBalancer", &mine);
        lb_ranged.load_balancer_source_ranges = vec!["203.0.113.0/24".into()];
        let mut lb_world = service("lb-world", "LoadBalancer", &mine);
        lb_world.load_balancer_source_ranges = vec!["203.0.113.0/24".into(), "::/0".into()];
        let mut external = service("legacy", "", &mine);
        external.external_ips = vec!["198.51.100.7".into()];
        let services = [
            service("internal", "", &mine),
            service("internal-typed", "ClusterIP", &mine),
            service("ports", "NodePort", &mine),
            service(
                "other-app",
                "NodePort",
                &[("app.kubernetes.io/name", "cart")],
            ),
            service("no-selector", "NodePort", &[]),
            service("lb", "LoadBalancer", &mine),
            lb_ranged,
            lb_world,
            external,
        ];
        let found = review_service_exposure(&w, &services);
        let titles: Vec<&str> = found.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Service ports exposes checkout on every node (NodePort)",
                "Service lb exposes checkout to every address (LoadBalancer)",
                "Service lb-world exposes checkout to every address (LoadBalancer)",
                "Service legacy answers on external IPs 198.51.100.7",
            ]
        );
        assert!(found.iter().all(|f| f.severity == Severity::Medium));
        assert!(found[0].detail.contains("8443/TCP"), "{}", found[0].detail);
        assert!(found[1].detail.contains("no loadBalancerSourceRanges"));
        assert!(
            found[2].detail.contains("includes ::/0"),
            "{}",
            found[2].detail
        );
        assert!(found[3].detail.contains("CVE-2020-8554"));
    }
}
