//! What every crew member works with: the journal, the ports, the settings.

use std::sync::Arc;

use squad_config::Settings;
use squad_runtime::ports::{Brain, Cluster, Diagnoser, Forge};
use squad_runtime::{CrewDirectory, Faults, Journal};

#[derive(Clone)]
pub struct CrewContext {
    pub journal: Journal,
    pub cluster: Arc<dyn Cluster>,
    /// The GitOps repository's forge: incident issues, the remediation PR, Scribe's memory.
    pub forge: Arc<dyn Forge>,
    /// The application's source repository (read-only for Data).
    pub app_repo: Arc<dyn Forge>,
    pub diagnoser: Arc<dyn Diagnoser>,
    pub brain: Arc<dyn Brain>,
    pub settings: Arc<Settings>,
    pub faults: Faults,
    pub directory: CrewDirectory,
}
