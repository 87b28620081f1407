//! `[replicas]`: two or more `squad serve` processes sharing one PostgreSQL store, the work split
//! into shards by workload, each under a `coordination.k8s.io/v1` Lease.

use serde::{Deserialize, Serialize};

use crate::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicaSettings {
    /// Share the work with other replicas (needs `[store] url` and `[backend] kind =
    /// "kubernetes"`). Off: this process acts on every incident.
    pub enabled: bool,
    /// Shards the work is split into, the same number in every replica (a workload's incidents
    /// are all in one shard).
    pub shards: u32,
    /// The namespace the Leases live in; default `POD_NAMESPACE`, else the kubeconfig's.
    pub namespace: Option<String>,
    /// This replica's name in the Leases; default `POD_NAME`, else the host name.
    pub identity: Option<String>,
    /// The Leases' name prefix (`<prefix>-shard-3`): two squads in one namespace differ by it.
    pub lease_prefix: String,
    /// How long a Lease lasts unrenewed.
    pub lease_seconds: u64,
    /// How often Leases are renewed and free ones looked for.
    pub renew_seconds: u64,
    /// A replica that could not renew stops acting this long before others may take its Lease:
    /// more than the clocks' disagreement between nodes plus one request's time.
    pub margin_seconds: u64,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        ReplicaSettings {
            enabled: false,
            shards: 8,
            namespace: None,
            identity: None,
            lease_prefix: "squad".into(),
            lease_seconds: 15,
            renew_seconds: 3,
            margin_seconds: 5,
        }
    }
}

impl ReplicaSettings {
    pub(crate) fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let field = |name: &str, expected: String| Err(ConfigError::field(file, name, expected));
        if !(1..=256).contains(&self.shards) {
            return field("replicas.shards", "1 to 256 shards".into());
        }
        if self.lease_prefix.is_empty()
            || self.lease_prefix.len() > 40
            || !self
                .lease_prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return field(
                "replicas.lease_prefix",
                "1 to 40 lowercase letters, digits or dashes (it starts Lease names)".into(),
            );
        }
        if self.margin_seconds == 0 || self.margin_seconds >= self.lease_seconds {
            return field(
                "replicas.margin_seconds",
                format!(
                    "more than 0 and less than lease_seconds ({})",
                    self.lease_seconds
                ),
            );
        }
        if self.renew_seconds == 0 || self.renew_seconds >= self.lease_seconds - self.margin_seconds
        {
            return field(
                "replicas.renew_seconds",
                format!(
                    "more than 0 and less than lease_seconds - margin_seconds ({}), so a Lease is renewed before this replica stops acting on it",
                    self.lease_seconds - self.margin_seconds
                ),
            );
        }
        Ok(())
    }
}
