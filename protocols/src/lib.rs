//! squad-protocols: the data that flows through squad, and pure functions over it.
//!
//! Nothing here does IO or knows about actors: alerts and their parsing, incidents as an
//! append-only event log with a pure state machine, diagnoses, crew assignments and reports,
//! forge artifacts (issues, pull requests, file changes) and Kubernetes quantity arithmetic.
//! Every public type is serde round-trippable.

pub mod alert;
pub mod cluster;
pub mod crew;
pub mod diagnosis;
pub mod error;
pub mod forge;
pub mod generic;
pub mod github;
pub mod id;
pub mod image;
pub mod incident;
mod json;
pub mod llm;
pub mod pagerduty;
pub mod quantity;
pub mod replay;
pub mod storage;
pub mod text;
pub mod workload;

pub use alert::{Alert, AlertSource, AlertStatus};
pub use crew::{Action, Assignment, Finding, Member, Report, Severity, Task};
pub use diagnosis::{Diagnosis, DiagnosisSource, Evidence, RootCause};
pub use error::ProtocolError;
pub use forge::{FileChange, IssueDetail, IssueRef, IssueSpec, PrActivity, PrRef, PrSpec, PrState};
pub use generic::parse_generic_alerts;
pub use incident::{
    Author, DeliberationOutcome, EventKind, Incident, IncidentEvent, IncidentId, IncidentState,
    Verification,
};
pub use llm::{Budget, ChatMessage, LlmUsage, Usage};
pub use pagerduty::{PagerDutyEvent, parse_pagerduty_webhook};
pub use quantity::Quantity;
pub use replay::{Declared, Outcome, Replay};
pub use workload::WorkloadRef;
