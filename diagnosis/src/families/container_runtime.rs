//! Container runtime: the container never starts because the node cannot make it — the pod's
//! sandbox (`FailedCreatePodSandBox`: `Failed to create pod sandbox: … failed to setup network
//! for sandbox …`: the CNI plugin, IP addresses run out; the pod stays `ContainerCreating`), or
//! the container itself (`CreateContainerError`: `failed to generate container "…" spec`, a
//! `subPath` that does not exist, `container name "…" is already in use`; `PreStartHookError`,
//! `PreCreateHookError`: a lifecycle hook that fails). A missing ConfigMap or Secret
//! (`CreateContainerConfigError`), an image that cannot be pulled and a command the image lacks
//! have families of their own, before this one. The sandbox is the node's (its network plugin),
//! not the workload's; a container the runtime refuses may be either (a `subPath`, a hook): the
//! crew escalates with the runtime's words and the node.

use squad_protocols::cluster::ClusterEvent;
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::{Detection, Facts, Family, IssueDraft, Readings, Remedy, RemedyInput, Runbook};

pub struct ContainerRuntime;

pub const ROOT_CAUSE: &str = "container_runtime";

const CREATE_ERRORS: [&str; 3] = [
    "waiting: CreateContainerError",
    "waiting: PreStartHookError",
    "waiting: PreCreateHookError",
];

fn newest(facts: &Facts, pred: impl Fn(&ClusterEvent) -> bool) -> Option<&ClusterEvent> {
    facts
        .events
        .iter()
        .filter(|e| pred(e))
        .max_by_key(|e| e.last_seen)
}

impl Family for ContainerRuntime {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("CreateContainerError")
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let status = facts.status()?;
        let node = facts
            .pod
            .as_ref()
            .map(|p| p.node.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "its node".into());
        let mut d = Detection::new(String::new(), 0.8, &[]);
        if status.state == "waiting: ContainerCreating" {
            let e = newest(facts, |e| e.reason == "FailedCreatePodSandBox")?;
            d.evidence.push(Evidence {
                source: "kubelet events".into(),
                observation: format!(
                    "FailedCreatePodSandBox ({}×, since {}): {}",
                    e.count,
                    e.first_seen.to_rfc3339(),
                    e.message
                ),
            });
            let network = e.message.contains("network");
            // The plugin has no address left: the VPC CNI's, or host-local IPAM's words.
            let no_address = e.message.contains("failed to assign an IP address")
                || e.message.contains("no IP addresses available");
            let pod = facts.pod.as_ref().map_or("its pod", |p| p.name.as_str());
            d.summary = format!(
                "{}'s pod {pod} waits in ContainerCreating: the runtime on {node} cannot create the pod's sandbox{} ({})",
                facts.workload.name,
                if no_address {
                    ", its network plugin has no pod IP address left to give"
                } else if network {
                    ", its network plugin fails to set up the pod's network"
                } else {
                    ""
                },
                e.message
            );
            if no_address {
                d.confidence = 0.9;
                d.recommendations.push(if e.message.contains("aws-cni") {
                    format!(
                        "the addresses {node}'s VPC CNI can attach: free IPs in its subnet (`aws ec2 describe-subnets`), `ipamd` in the aws-node pod's logs; prefix delegation (`ENABLE_PREFIX_DELEGATION`), a larger or secondary subnet, or a max-pods that matches the instance's ENIs"
                    )
                } else {
                    format!(
                        "{node}'s pod CIDR is used up: pods there and addresses the plugin leaked (host-local keeps one file per address under /var/lib/cni/networks/), and whether the node's range is too small for its max-pods"
                    )
                });
                d.recommendations.push(
                    "a rollback would need new addresses too: the release is not the cause".into(),
                );
            } else {
                d.recommendations.push(format!(
                    "the node's network plugin: its pod on {node} (`kubectl get pods -n kube-system -o wide --field-selector spec.nodeName={node}`) and its logs; free IP addresses in the node's range or subnet"
                ));
            }
            d.recommendations.push(format!(
                "cordon {node} and let the pod go elsewhere while it is fixed"
            ));
            return Some(d);
        }
        if !CREATE_ERRORS.contains(&status.state.as_str()) {
            return None;
        }
        let reason = status.state.trim_start_matches("waiting: ");
        let e = newest(facts, |e| {
            e.reason == "Failed" && e.message.starts_with("Error: ")
        });
        if let Some(e) = e {
            d.evidence.push(Evidence {
                source: "kubelet events".into(),
                observation: format!(
                    "{} ({}×, since {})",
                    e.message,
                    e.count,
                    e.first_seen.to_rfc3339()
                ),
            });
        }
        let said = e.map_or("the kubelet's events do not say why", |e| {
            e.message.trim_start_matches("Error: ")
        });
        let what = if reason == "CreateContainerError" {
            if said.contains("subPath") || said.contains("subpath") {
                "a volume's subPath the runtime cannot set up"
            } else if said.contains("already in use") {
                "a container of that name the runtime still holds (a stale container on the node)"
            } else {
                "the runtime refuses to create the container"
            }
        } else {
            "a lifecycle hook fails before the container starts"
        };
        d.summary = format!(
            "{} never starts ({reason}): {what} ({said})",
            facts.container
        );
        d.recommendations.push(format!(
            "`kubectl describe pod` and the container runtime's log on {node} (`journalctl -u containerd`): what it refused"
        ));
        d.recommendations.push(
            "compare the pod spec with the last one that started (volumes and subPaths, securityContext, lifecycle hooks)".into(),
        );
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[(
            Member::Belanna,
            "what the runtime refused against the last pod spec that started, and the node's network plugin",
        )]
    }

    fn remedy(&self, d: &Diagnosis, _input: &RemedyInput<'_>) -> Remedy {
        Remedy::owned_by(
            "the platform team (the node's runtime and network plugin)",
            d,
            "fixes the runtime or the network plugin (its pod addresses), or says which pod setting it refuses",
        )
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "container-runtime".into(),
            meaning: "The node cannot make the pod or its container: `FailedCreatePodSandBox` (the pod's sandbox, usually its network: the CNI plugin, IP exhaustion) keeps it in `ContainerCreating`; `CreateContainerError`, `PreStartHookError`, `PreCreateHookError` are the runtime refusing the container or a lifecycle hook failing.".into(),
            checks: "1. `kubectl describe pod <pod> -n <ns>`: Events (FailedCreatePodSandBox, `Error: …`).\n2. The network plugin's pod on that node and its logs; the node's free IP addresses.\n3. `journalctl -u containerd` (or the runtime in use) on the node.\n4. The pod spec against the last one that started: subPaths, securityContext, hooks.".into(),
            fixes: "- **Sandbox**: fix or restart the network plugin on the node; free or widen its IP range; cordon the node meanwhile.\n- **Container**: correct the spec the runtime refuses (a subPath, a hook), or clear the stale container on the node.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![format!(
            "{workload}'s pods could not be created by the node: read the runtime's words before the app's."
        )]
    }

    fn followup(&self, _d: &Diagnosis, cx: &crate::FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!("Alert on {}'s pods that never start", cx.workload.name),
            body: format!(
                "During incident {} (#{}) the node could not create a pod of {}.\n\n\
                 1. Alert on pods waiting in ContainerCreating or CreateContainerError for more than 10 minutes.\n\
                 2. Check: `kubectl describe pod -n {} {}`.",
                cx.incident, cx.issue, cx.workload.name, cx.workload.namespace, cx.pod
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing;

    fn waiting(state: &str, reason: &str, message: &str) -> Facts {
        let mut f = testing::facts("Completed", 0, |_| 80.0, |_| 10.0);
        let p = f.pod.as_mut().unwrap();
        p.phase = "Pending".into();
        p.node = "pool-a-2".into();
        p.containers[0].state = state.into();
        p.containers[0].last_termination = None;
        p.containers[0].restart_count = 0;
        f.events = vec![ClusterEvent {
            kind: "Warning".into(),
            reason: reason.into(),
            message: message.into(),
            count: 31,
            first_seen: testing::now() - chrono::Duration::minutes(25),
            last_seen: testing::now(),
            object: "Pod/orders-7d9f-x2k9p".into(),
        }];
        f
    }

    #[test]
    fn a_sandbox_the_network_plugin_cannot_set_up_is_the_nodes() {
        let f = waiting(
            "waiting: ContainerCreating",
            "FailedCreatePodSandBox",
            "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"9f1c\": plugin type=\"calico\" failed (add): error getting ClusterInformation: connection is unauthorized: Unauthorized",
        );
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE, "{}", d.summary);
        assert!(
            d.summary.contains(
                "the runtime on pool-a-2 cannot create the pod's sandbox, its network plugin fails"
            ),
            "{}",
            d.summary
        );
        let reason = testing::escalation(&ContainerRuntime, &d);
        assert!(reason.contains("network plugin"), "{reason}");
        // Out of addresses, in the VPC CNI's words or host-local IPAM's.
        for (said, advice) in [
            (
                "plugin type=\"aws-cni\" name=\"aws-cni\" failed (add): add cmd: failed to assign an IP address to container",
                "ENABLE_PREFIX_DELEGATION",
            ),
            (
                "plugin type=\"flannel\" failed (add): failed to delegate add: failed to allocate for range 0: no IP addresses available in range set: 10.244.2.1-10.244.2.254",
                "pod CIDR is used up",
            ),
        ] {
            let f = waiting(
                "waiting: ContainerCreating",
                "FailedCreatePodSandBox",
                &format!(
                    "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"9f1c\": {said}"
                ),
            );
            let d = testing::diagnosis(&f);
            assert!(
                d.summary
                    .contains("its network plugin has no pod IP address left to give"),
                "{}",
                d.summary
            );
            assert!(
                d.recommendations[0].contains(advice),
                "{:?}",
                d.recommendations
            );
        }
    }

    #[test]
    fn a_container_the_runtime_refuses_names_what_it_said() {
        let f = waiting(
            "waiting: CreateContainerError",
            "Failed",
            "Error: failed to create containerd container: failed to prepare subPath for volumeMount \"config\" of container \"api\"",
        );
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE, "{}", d.summary);
        assert!(
            d.summary.contains(
                "never starts (CreateContainerError): a volume's subPath the runtime cannot set up"
            ),
            "{}",
            d.summary
        );
        // A pod merely being created, with no sandbox failure, is not this family.
        let mut quiet = f.clone();
        quiet.pod.as_mut().unwrap().containers[0].state = "waiting: ContainerCreating".into();
        assert!(
            ContainerRuntime
                .detect(&quiet, &Readings::of(&quiet))
                .is_none()
        );
    }
}
