//! The ports, answered by adapter actors: each method of `Cluster`, `Forge`, `Diagnoser` and
//! `Model` on an [`Adapter`] handle is one call sent to the adapter's pool.

use std::time::Duration;

use async_trait::async_trait;
use squad_protocols::cluster::{
    ClaimInfo, ClusterEvent, CpuHistory, CronJobInfo, HpaInfo, ImageVulnerability,
    NetworkPolicyInfo, NodeInfo, NodePod, PodInfo, RbacRule, Revision, Sample, ServiceInfo,
    StorageClassInfo, VolumeUsage, WorkloadInfo,
};
use squad_protocols::llm::{ChatRequest, ChatResponse};
use squad_protocols::{
    Diagnosis, FileChange, IssueDetail, IssueRef, IssueSpec, PrActivity, PrRef, PrSpec, PrState,
    WorkloadRef,
};

use super::Adapter;
use crate::minds::{Model, ModelInfo};
use crate::ports::{
    Cluster, Diagnoser, DiagnosisRequest, FileVersion, Forge, MarkedArtifact, PortResult,
};

#[async_trait]
impl Cluster for Adapter<dyn Cluster> {
    async fn pod(&self, namespace: &str, name: &str) -> PortResult<PodInfo> {
        let (ns, name) = (namespace.to_owned(), name.to_owned());
        self.call("get pod", move |c| async move { c.pod(&ns, &name).await })
            .await
    }

    async fn pods_of(&self, workload: &WorkloadRef) -> PortResult<Vec<PodInfo>> {
        let w = workload.clone();
        self.call("list pods", move |c| async move { c.pods_of(&w).await })
            .await
    }

    async fn owner_of(&self, namespace: &str, pod: &str) -> PortResult<WorkloadRef> {
        let (ns, pod) = (namespace.to_owned(), pod.to_owned());
        self.call("resolve the pod's owner", move |c| async move {
            c.owner_of(&ns, &pod).await
        })
        .await
    }

    async fn workload(&self, workload: &WorkloadRef) -> PortResult<WorkloadInfo> {
        let w = workload.clone();
        self.call("get workload", move |c| async move { c.workload(&w).await })
            .await
    }

    async fn rollout_history(&self, workload: &WorkloadRef) -> PortResult<Vec<Revision>> {
        let w = workload.clone();
        self.call("read rollout history", move |c| async move {
            c.rollout_history(&w).await
        })
        .await
    }

    async fn events(&self, namespace: &str, object: &str) -> PortResult<Vec<ClusterEvent>> {
        let (ns, object) = (namespace.to_owned(), object.to_owned());
        self.call("list events", move |c| async move {
            c.events(&ns, &object).await
        })
        .await
    }

    async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        tail: usize,
    ) -> PortResult<Vec<String>> {
        let (ns, pod, container) = (namespace.to_owned(), pod.to_owned(), container.to_owned());
        self.call("read logs", move |c| async move {
            c.logs(&ns, &pod, &container, previous, tail).await
        })
        .await
    }

    async fn memory_working_set(
        &self,
        workload: &WorkloadRef,
        container: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<Vec<Sample>> {
        let (w, container) = (workload.clone(), container.to_owned());
        self.call("query memory", move |c| async move {
            c.memory_working_set(&w, &container, window, step).await
        })
        .await
    }

    async fn request_rates(
        &self,
        workload: &WorkloadRef,
        window: Duration,
        step: Duration,
    ) -> PortResult<Vec<(String, Vec<Sample>)>> {
        let w = workload.clone();
        self.call("query request rates", move |c| async move {
            c.request_rates(&w, window, step).await
        })
        .await
    }

    async fn cpu(
        &self,
        workload: &WorkloadRef,
        container: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<CpuHistory> {
        let (w, container) = (workload.clone(), container.to_owned());
        self.call("query cpu", move |c| async move {
            c.cpu(&w, &container, window, step).await
        })
        .await
    }

    async fn hpas(&self, namespace: &str) -> PortResult<Vec<HpaInfo>> {
        let ns = namespace.to_owned();
        self.call("list HPAs", move |c| async move { c.hpas(&ns).await })
            .await
    }

    async fn network_policies(&self, namespace: &str) -> PortResult<Vec<NetworkPolicyInfo>> {
        let ns = namespace.to_owned();
        self.call("list NetworkPolicies", move |c| async move {
            c.network_policies(&ns).await
        })
        .await
    }

    async fn rbac_rules(
        &self,
        namespace: &str,
        service_account: &str,
    ) -> PortResult<Vec<RbacRule>> {
        let (ns, sa) = (namespace.to_owned(), service_account.to_owned());
        self.call("read RBAC rules", move |c| async move {
            c.rbac_rules(&ns, &sa).await
        })
        .await
    }

    async fn image_vulnerabilities(&self, image: &str) -> PortResult<Vec<ImageVulnerability>> {
        let image = image.to_owned();
        self.call("read image vulnerabilities", move |c| async move {
            c.image_vulnerabilities(&image).await
        })
        .await
    }

    async fn secret_keys(&self, namespace: &str) -> PortResult<Vec<(String, Vec<String>)>> {
        let ns = namespace.to_owned();
        self.call("list Secrets' keys", move |c| async move {
            c.secret_keys(&ns).await
        })
        .await
    }

    async fn secret_values(&self, namespace: &str) -> PortResult<Vec<String>> {
        let ns = namespace.to_owned();
        self.call("read Secret values for redaction", move |c| async move {
            c.secret_values(&ns).await
        })
        .await
    }

    async fn config_map_texts(&self, namespace: &str) -> PortResult<Vec<(String, String, String)>> {
        let ns = namespace.to_owned();
        self.call("read ConfigMaps", move |c| async move {
            c.config_map_texts(&ns).await
        })
        .await
    }

    async fn node(&self, name: &str) -> PortResult<NodeInfo> {
        let name = name.to_owned();
        self.call("get node", move |c| async move { c.node(&name).await })
            .await
    }

    async fn nodes(&self) -> PortResult<Vec<NodeInfo>> {
        self.call("list nodes", |c| async move { c.nodes().await })
            .await
    }

    async fn claims(&self, namespace: &str) -> PortResult<Vec<ClaimInfo>> {
        let ns = namespace.to_owned();
        self.call("list claims", move |c| async move { c.claims(&ns).await })
            .await
    }

    async fn storage_classes(&self) -> PortResult<Vec<StorageClassInfo>> {
        self.call("list storage classes", move |c| async move {
            c.storage_classes().await
        })
        .await
    }

    async fn latency(
        &self,
        workload: &WorkloadRef,
        route: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<Vec<Sample>> {
        let (w, route) = (workload.clone(), route.to_owned());
        self.call("query latency", move |c| async move {
            c.latency(&w, &route, window, step).await
        })
        .await
    }

    async fn volume(
        &self,
        workload: &WorkloadRef,
        claim: &str,
        window: Duration,
        step: Duration,
    ) -> PortResult<VolumeUsage> {
        let (w, claim) = (workload.clone(), claim.to_owned());
        self.call("query volume usage", move |c| async move {
            c.volume(&w, &claim, window, step).await
        })
        .await
    }

    async fn pods_mounting(&self, namespace: &str, claim: &str) -> PortResult<Vec<String>> {
        let (ns, claim) = (namespace.to_owned(), claim.to_owned());
        self.call("list the pods mounting a claim", move |c| async move {
            c.pods_mounting(&ns, &claim).await
        })
        .await
    }

    async fn services(&self, namespace: &str) -> PortResult<Vec<ServiceInfo>> {
        let ns = namespace.to_owned();
        self.call(
            "list Services",
            move |c| async move { c.services(&ns).await },
        )
        .await
    }

    async fn pods_on_node(&self, node: &str) -> PortResult<Vec<NodePod>> {
        let node = node.to_owned();
        self.call("list the node's pods", move |c| async move {
            c.pods_on_node(&node).await
        })
        .await
    }

    async fn workloads(&self, namespace: &str) -> PortResult<Vec<WorkloadInfo>> {
        let ns = namespace.to_owned();
        self.call(
            "list workloads",
            move |c| async move { c.workloads(&ns).await },
        )
        .await
    }

    async fn cron_job(&self, namespace: &str, name: &str) -> PortResult<CronJobInfo> {
        let (ns, name) = (namespace.to_owned(), name.to_owned());
        self.call("read the CronJob", move |c| async move {
            c.cron_job(&ns, &name).await
        })
        .await
    }
}

/// A forge behind an adapter actor; its repository's name is read once, when it is wrapped.
pub struct ForgeAdapter {
    pub handle: Adapter<dyn Forge>,
    pub repo: String,
}

#[async_trait]
impl Forge for ForgeAdapter {
    fn repo(&self) -> String {
        self.repo.clone()
    }

    async fn default_branch(&self) -> PortResult<String> {
        self.handle
            .call("read the default branch", |f| async move {
                f.default_branch().await
            })
            .await
    }

    async fn find_marker(&self, marker: &str) -> PortResult<Option<MarkedArtifact>> {
        let marker = marker.to_owned();
        self.handle
            .call("find a marker", move |f| async move {
                f.find_marker(&marker).await
            })
            .await
    }

    async fn create_issue(&self, spec: &IssueSpec) -> PortResult<IssueRef> {
        let spec = spec.clone();
        self.handle
            .call("create an issue", move |f| async move {
                f.create_issue(&spec).await
            })
            .await
    }

    async fn comment(&self, issue: u64, body: &str) -> PortResult<u64> {
        let body = body.to_owned();
        self.handle
            .call(
                "comment",
                move |f| async move { f.comment(issue, &body).await },
            )
            .await
    }

    async fn set_issue_open(&self, issue: u64, open: bool) -> PortResult<()> {
        self.handle
            .call("open or close an issue", move |f| async move {
                f.set_issue_open(issue, open).await
            })
            .await
    }

    async fn open_pr(&self, spec: &PrSpec) -> PortResult<PrRef> {
        let spec = spec.clone();
        self.handle
            .call("open a pull request", move |f| async move {
                f.open_pr(&spec).await
            })
            .await
    }

    async fn pr_state(&self, number: u64) -> PortResult<PrState> {
        self.handle
            .call("read a pull request", move |f| async move {
                f.pr_state(number).await
            })
            .await
    }

    async fn commit_files(
        &self,
        branch: &str,
        message: &str,
        files: &[FileChange],
    ) -> PortResult<String> {
        let (branch, message, files) = (branch.to_owned(), message.to_owned(), files.to_vec());
        self.handle
            .call("commit files", move |f| async move {
                f.commit_files(&branch, &message, &files).await
            })
            .await
    }

    async fn read_file(&self, path: &str, git_ref: &str) -> PortResult<Option<String>> {
        let (path, git_ref) = (path.to_owned(), git_ref.to_owned());
        self.handle
            .call("read a file", move |f| async move {
                f.read_file(&path, &git_ref).await
            })
            .await
    }

    async fn list_files(&self, prefix: &str, git_ref: &str) -> PortResult<Vec<String>> {
        let (prefix, git_ref) = (prefix.to_owned(), git_ref.to_owned());
        self.handle
            .call("list files", move |f| async move {
                f.list_files(&prefix, &git_ref).await
            })
            .await
    }

    async fn file_history(&self, path: &str) -> PortResult<Vec<FileVersion>> {
        let path = path.to_owned();
        self.handle
            .call("read a file's history", move |f| async move {
                f.file_history(&path).await
            })
            .await
    }

    async fn issue(&self, number: u64) -> PortResult<IssueDetail> {
        self.handle
            .call(
                "read an issue",
                move |f| async move { f.issue(number).await },
            )
            .await
    }

    async fn pr_activity(&self, number: u64) -> PortResult<PrActivity> {
        self.handle
            .call(
                "read a pull request's reviews and checks",
                move |f| async move { f.pr_activity(number).await },
            )
            .await
    }
}

/// A diagnoser behind an adapter actor.
pub struct DiagnoserAdapter {
    pub handle: Adapter<dyn Diagnoser>,
    pub name: &'static str,
}

#[async_trait]
impl Diagnoser for DiagnoserAdapter {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn diagnose(&self, request: &DiagnosisRequest) -> PortResult<Diagnosis> {
        let request = request.clone();
        self.handle
            .call(
                "diagnose",
                move |d| async move { d.diagnose(&request).await },
            )
            .await
    }
}

/// A model behind an adapter actor.
pub struct ModelAdapter {
    pub handle: Adapter<dyn Model>,
    pub info: ModelInfo,
}

#[async_trait]
impl Model for ModelAdapter {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn chat(&self, req: ChatRequest) -> PortResult<ChatResponse> {
        self.handle
            .call("chat", move |m| async move { m.chat(req).await })
            .await
    }
}
