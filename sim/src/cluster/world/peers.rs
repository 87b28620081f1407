//! A Deployment beside the alerted workload, as its controller reports it: healthy (see
//! `cluster/services.rs`), every replica updated, ready and available.

use serde_json::{Value, json};

use super::defaults::{default_object, stored};
use super::{Rollout, SimCluster, ts};

impl SimCluster {
    pub(super) fn peer_object(&self, r: &Rollout) -> Value {
        let mut o = stored(r.object.clone(), Some(&r.workload.namespace), r.at);
        default_object(&mut o);
        let n = r.pods.len();
        o["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("1");
        o["metadata"]["generation"] = json!(1);
        let rs = Self::rs_name(r);
        let at = ts(r.at);
        o["status"] = json!({
            "observedGeneration": 1,
            "replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.",
                 "lastUpdateTime": at, "lastTransitionTime": at},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": format!("ReplicaSet \"{rs}\" has successfully progressed."),
                 "lastUpdateTime": at, "lastTransitionTime": at},
            ]
        });
        if n == 0 {
            o["status"] = json!({"observedGeneration": 1});
        }
        o
    }
}
