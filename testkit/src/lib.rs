//! The harnesses squad's test suite uses to start the real components it drives: kube-apiserver
//! with etcd (`apiserver`), with the real scheduler and controller-manager beside it
//! (`control_plane`), seeded from a simulated cluster (`seed`), beside a fake kubelet that
//! serves the simulated container logs (`kubelet`); Prometheus (`prometheus`), Alertmanager
//! (`alertmanager`), PostgreSQL (`postgres`) and llama.cpp with a small model (`llama`), each a process on a loopback
//! port (`process`); and the check of GitHub requests against GitHub's OpenAPI description
//! (`openapi`). Each harness skips with a message when its component is not installed, unless
//! `CI=true`; `scripts/tools` installs them. Beside them, the shipped scenarios changed the way
//! an unseen one differs (`variants`), for the property tests.

pub mod alertmanager;
pub mod apiserver;
pub mod control_plane;
pub mod daemon;
pub mod effects;
pub mod kubelet;
pub mod llama;
pub mod node_agent;
pub mod openapi;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod seed;
pub mod variants;
