//! squad-diagnosis: squad's own reading of a failing workload, one failure family at a time.
//!
//! [`gather`] reads the [`Facts`] about the alerted workload once, through the `Cluster` port —
//! the only async step. Everything else is a pure function of them: the [`Readings`] every family
//! shares (status, node, traffic, memory against the limit, the last rollout, what a crash's
//! logs say), then each [`Family`] in the registry ([`families::ALL`]): `detect` names the root
//! cause from the facts, `remedy` says what to change in the GitOps repository (or why a human
//! must decide), `verify` says from what the cluster shows after the rollout whether the fix
//! held. [`NativeDiagnoser`] is the `Diagnoser` port over it. How to add a family is in
//! ARCHITECTURE.md.

pub mod facts;
pub mod families;
pub mod family;
pub mod followup;
mod names;
pub mod native;
pub mod readings;
pub mod security;
#[cfg(test)]
mod testing;
pub mod undo;
pub mod verdict;

pub use facts::{Facts, Lookup, gather};
pub use family::{
    Change, ClusterNeeds, ClusterView, CodeFocus, Decision, Detection, Edit, Family, Layer,
    Proposal, Remedy, RemedyInput, RepoNeeds, RepoObject, RepoView, Rules, Runbook, VerifyNeeds,
    family_signals,
};
pub use followup::{FollowupContext, IssueDraft};
pub use native::NativeDiagnoser;
pub use readings::Readings;
pub use verdict::{Observation, RolloutState};
