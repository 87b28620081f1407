//! Configuration errors: each names the file, the field and what was expected.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown scenario {name:?}: available scenarios are {available}")]
    UnknownScenario { name: String, available: String },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: field `{field}`: expected {expected}")]
    Field {
        file: String,
        field: String,
        expected: String,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ConfigError {
    pub fn field(
        file: impl Into<String>,
        field: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        ConfigError::Field {
            file: file.into(),
            field: field.into(),
            expected: expected.into(),
        }
    }
}
