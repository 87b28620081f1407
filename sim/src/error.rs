//! Why a simulation could not be set up: each error names what it was doing.

use squad_adapters::git::GitError;
use squad_runtime::StoreError;
use squad_runtime::ports::PortError;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// An adapter the world is wired to could not be built.
    #[error("{what}: {detail}")]
    Adapter { what: String, detail: String },
    /// The output directory cannot hold this simulation.
    #[error("{0}")]
    Directory(String),
}

impl SimError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SimError {
        let what = what.into();
        move |source| SimError::Io { what, source }
    }

    pub(crate) fn adapter(what: impl Into<String>) -> impl FnOnce(String) -> SimError {
        let what = what.into();
        move |detail| SimError::Adapter { what, detail }
    }
}
