//! squad-sim: the simulated world `squad simulate` runs on, with no cluster, no GitHub and no key.
//!
//! A [`Scenario`] (a directory: `scenario.toml`, the GitOps tree and its history, the app's source;
//! the shipped ones are embedded) declares the world's facts. [`SimCluster`] derives every pod's
//! state, event, log line and metric from those facts and the GitOps repository at its synced
//! commit, so a correct fix turns the cluster healthy and a wrong one does not. The cluster is served
//! on loopback as a Kubernetes API ([`kube_api`]) and a Prometheus API ([`prom_api`], with its own
//! PromQL evaluator, [`promql`]); [`SimForge`] is a GitHub backed by a real git repository, served
//! over GitHub's REST API by [`github_api`]; [`llm_cassette`] records and replays model exchanges.
//! [`backends`] wires all of it to the same adapters squad uses on real systems, so the crew cannot
//! tell the difference. A build for real clusters only leaves this crate out (the `sim` feature of
//! the `squad` package).

pub mod backends;
pub mod cluster;
pub mod error;
pub mod forge;
pub mod github_api;
pub mod kube_api;
pub mod llm_cassette;
pub mod prom_api;
pub mod promql;
pub mod replay;
pub mod scenario;
pub mod seed;
pub mod series;

pub use backends::{GitHubTarget, ServeKube, ServedCluster, SimBackends, SimGitHub, serve_cluster};
pub use cluster::SimCluster;
pub use error::SimError;
pub use forge::SimForge;
pub use replay::{FactsReplayer, SimReplayer};
pub use scenario::Scenario;
pub use seed::{seed_app_repo, seed_gitops_repo};
