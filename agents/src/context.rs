//! What every crew member works with: the journal, the ports, the settings.

use std::sync::Arc;

use squad_config::Settings;
use squad_runtime::ports::{Alerts, Cluster, Diagnoser, Forge, Replayer};
use squad_runtime::{CrewDirectory, Faults, Journal, Minds, Wakeups};

#[derive(Clone)]
pub struct CrewContext {
    pub journal: Journal,
    pub cluster: Arc<dyn Cluster>,
    /// The GitOps repository's forge: incident issues, the remediation PR, Scribe's memory.
    pub forge: Arc<dyn Forge>,
    /// The application's source repository (read-only for Data).
    pub app_repo: Arc<dyn Forge>,
    pub diagnoser: Arc<dyn Diagnoser>,
    /// The members' models behind the redaction gateway (none: the deterministic skills decide).
    pub minds: Arc<Minds>,
    pub settings: Arc<Settings>,
    pub faults: Faults,
    /// Incident ids derived from the alert and the time instead of random (simulations).
    pub derived_ids: bool,
    pub directory: CrewDirectory,
    /// Webhooks about a PR wake whoever follows it (Ralph) before its next poll.
    pub wakeups: Wakeups,
    /// The world model B'Elanna replays a fix in before she proposes it (none: no replay).
    pub replayer: Option<Arc<dyn Replayer>>,
    /// The alerting system Ralph asks whether the incident's alert still fires (none: its
    /// state is not read, and only Alertmanager's resolved notification says it resolved).
    pub alerts: Option<Arc<dyn Alerts>>,
    /// The shards this replica acts on (every one without replicas).
    pub ownership: Arc<squad_runtime::shards::Ownership>,
}
