//! An incident's identity, apart from the incident itself: what the crew's assignments and
//! reports refer to without knowing the incident's log.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An incident's id, e.g. `inc-3f9a1c2e`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub String);

impl IncidentId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id derived from what opened the incident (the alert's fingerprint, the time, and how
    /// many incidents the store already holds), so a simulation names its incident the same way
    /// on every run: recorded model exchanges and diffs of two runs line up.
    ///
    /// ```
    /// use squad_protocols::IncidentId;
    /// let at = "2026-11-23T19:21:00Z".parse().unwrap();
    /// let a = IncidentId::derived("abc", at, 0);
    /// assert_eq!(a, IncidentId::derived("abc", at, 0));
    /// assert_ne!(a, IncidentId::derived("abc", at, 1));
    /// assert!(a.as_str().starts_with("inc-") && a.as_str().len() == 12);
    /// ```
    pub fn derived(fingerprint: &str, at: DateTime<Utc>, existing: usize) -> IncidentId {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{fingerprint}\n{}\n{existing}", at.to_rfc3339()));
        IncidentId(format!("inc-{}", &hex::encode(digest)[..8]))
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
