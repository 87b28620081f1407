//! Security reviews that are analyses of what a cluster or a repository declares, kept apart
//! from the agents that report them: the Pod Security Standards ([`pss`]), on the same checks as
//! the apiserver's admission ([`pod_security`]).

pub mod pod_security;
pub mod pss;
