//! squad-adapters: the IO edges behind the runtime's ports.
//!
//! - [`git`]: local git repositories (the GitOps repo), written through git's object database.
//! - [`sim`]: the simulated cluster and the simulated GitHub that `squad simulate` runs on.
//! - [`native`]: the native analyzers, squad's own diagnoser.

pub mod dry_run;
pub mod git;
pub mod native;
pub mod sim;
pub mod yaml;
