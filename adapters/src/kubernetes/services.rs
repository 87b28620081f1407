//! Services with their endpoints, and a namespace's workloads: what a caller's
//! `connection refused` is read against.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{Api, ListParams};
use squad_gitops::objects;
use squad_protocols::cluster::{ServiceInfo, WorkloadInfo};
use squad_runtime::ports::PortResult;

use super::KubeCluster;

impl KubeCluster {
    /// The namespace's Services, each with its `Endpoints` object's addresses (core v1
    /// Endpoints: served by every apiserver squad supports, EndpointSlices not before 1.21).
    pub(super) async fn service_infos(&self, namespace: &str) -> PortResult<Vec<ServiceInfo>> {
        let what = format!("Services in {namespace}");
        let lp = ListParams::default();
        let services = self
            .list(
                Api::<Service>::namespaced(self.client.clone(), namespace),
                &what,
                &lp,
            )
            .await?;
        let endpoints = self
            .list(
                Api::<Endpoints>::namespaced(self.client.clone(), namespace),
                &format!("Endpoints in {namespace}"),
                &lp,
            )
            .await?;
        Ok(services
            .iter()
            .map(|s| {
                let ep = endpoints
                    .iter()
                    .find(|e| objects::name(e) == objects::name(s));
                objects::service_info(s, ep)
            })
            .collect())
    }

    /// The namespace's Deployments, StatefulSets and DaemonSets.
    pub(super) async fn workload_infos(&self, namespace: &str) -> PortResult<Vec<WorkloadInfo>> {
        let what = format!("workloads in {namespace}");
        let lp = ListParams::default();
        let c = &self.client;
        let mut all = self
            .list(
                Api::<Deployment>::namespaced(c.clone(), namespace),
                &what,
                &lp,
            )
            .await?;
        all.extend(
            self.list(
                Api::<StatefulSet>::namespaced(c.clone(), namespace),
                &what,
                &lp,
            )
            .await?,
        );
        all.extend(
            self.list(
                Api::<DaemonSet>::namespaced(c.clone(), namespace),
                &what,
                &lp,
            )
            .await?,
        );
        Ok(all
            .iter()
            .map(|o| objects::workload_info(o, namespace))
            .collect())
    }
}
