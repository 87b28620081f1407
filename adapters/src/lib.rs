//! squad-adapters: the IO edges behind the runtime's ports.
//!
//! - [`git`]: local git repositories (the GitOps repo), written through git's object database.
//! - [`sim`]: the simulated cluster and the simulated GitHub that `squad simulate` runs on.
//! - [`native`]: the native analyzers, squad's own diagnoser.
//! - `llm`: chat completions with tools (OpenAI, Azure, OpenAI-compatible) for model brains.

pub mod dry_run;
pub mod git;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
#[cfg(feature = "llm")]
pub mod llm;
pub mod native;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod sim;
#[cfg(any(feature = "kubernetes", feature = "prometheus", feature = "llm"))]
pub mod tls;
pub mod yaml;
