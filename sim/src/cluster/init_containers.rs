//! Init containers: the kubelet runs a pod's `initContainers` one after the other, each to a
//! successful exit, before it starts any of the pod's containers. The world models their
//! start-up only — the image (`ErrImagePull`, `ImagePullBackOff`) and the environment
//! (`CreateContainerConfigError`), checked in order after the pod's volumes (`kubelet.rs`): the
//! pod stops at the first that cannot start, which waits in the kubelet's words while the ones
//! before it have completed and the ones after it and every container wait `PodInitializing`;
//! the pod is `Pending`, `Initialized=False`, and kubectl says `Init:ImagePullBackOff`. An init
//! container that starts runs to completion (exit 0) at once: what it does is not modelled.

use chrono::{DateTime, Utc};
use squad_gitops::objects;
use squad_protocols::cluster::{ContainerStatus, PodInfo, Termination};

use super::{Rollout, SimCluster, secs};

/// The waiting reason of what waits for an init container.
pub(super) const INITIALIZING: &str = "PodInitializing";

impl SimCluster {
    /// Fills `info`'s init container statuses for a pod of `r` created at `created`; when the
    /// pod stops at one (`r.init_stop`), that one waits for `reason` and every container waits
    /// for it.
    pub(super) fn init_statuses(
        &self,
        r: &Rollout,
        info: &mut PodInfo,
        created: DateTime<Utc>,
        reason: &str,
    ) {
        let names: Vec<String> = objects::pod_spec(&r.object)["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        let stop = r.init_stop.as_ref().map(|(i, _)| *i);
        info.init_containers = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let waiting = |reason: &str| ContainerStatus {
                    name: name.clone(),
                    ready: false,
                    restart_count: 0,
                    state: format!("waiting: {reason}"),
                    last_termination: None,
                };
                match stop {
                    Some(k) if i == k => waiting(reason),
                    Some(k) if i > k => waiting(INITIALIZING),
                    _ => ContainerStatus {
                        name: name.clone(),
                        ready: true,
                        restart_count: 0,
                        state: "terminated: Completed".into(),
                        last_termination: Some(Termination {
                            reason: "Completed".into(),
                            exit_code: 0,
                            finished_at: created + secs(1 + i as i64),
                        }),
                    },
                }
            })
            .collect();
        if stop.is_some() {
            for c in &mut info.containers {
                *c = ContainerStatus {
                    name: c.name.clone(),
                    ready: false,
                    restart_count: 0,
                    state: format!("waiting: {INITIALIZING}"),
                    last_termination: None,
                };
            }
        }
    }
}
