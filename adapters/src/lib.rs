//! squad-adapters: the IO edges behind the runtime's ports.
//!
//! - `alertmanager`: Alertmanager's API v2, which alerts still fire.
//! - [`git`]: local git repositories (the GitOps repo), written through git's object database.
//! - `llm`: chat completions with tools (OpenAI, Azure, OpenAI-compatible) for the crew's models.
//! - `github`: GitHub or GitHub Enterprise as the forge (octocrab).
//! - [`holmes`]: HolmesGPT as the diagnoser (CLI or server), cross-checked by the native analyzers.
//! - [`realtime`]: work that runs on real time even inside a simulation's paused runtime.

#[cfg(feature = "alertmanager")]
pub mod alertmanager;
#[cfg(any(
    feature = "alertmanager",
    feature = "prometheus",
    feature = "llm",
    feature = "holmes"
))]
mod bounded;
pub mod git;
#[cfg(feature = "github")]
pub mod github;
#[cfg(feature = "holmes")]
pub mod holmes;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
#[cfg(feature = "llm")]
pub mod llm;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod realtime;
#[cfg(any(
    feature = "alertmanager",
    feature = "kubernetes",
    feature = "prometheus",
    feature = "llm",
    feature = "holmes",
    feature = "github"
))]
pub mod tls;
