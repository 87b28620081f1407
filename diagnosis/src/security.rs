//! Security reviews that are analyses of what a cluster or a repository declares, kept apart
//! from the agents that report them: the Pod Security Standards ([`pss`]).

pub mod pss;
