//! References to Kubernetes workloads.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A workload an incident is about: `Deployment production/payment-service`.
///
/// ```
/// use squad_protocols::WorkloadRef;
/// let w = WorkloadRef::deployment("production", "payment-service");
/// assert_eq!(w.to_string(), "Deployment production/payment-service");
/// let json = serde_json::to_string(&w).unwrap();
/// assert_eq!(serde_json::from_str::<WorkloadRef>(&json).unwrap(), w);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl WorkloadRef {
    pub fn deployment(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: "Deployment".into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}
