//! Errors from parsing and validating protocol data: each names the field and what was expected.

/// A value that did not have the shape squad expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A required field is absent.
    #[error("missing field `{field}`: expected {expected}")]
    Missing { field: String, expected: String },
    /// A field is present with a value of the wrong shape.
    #[error("invalid field `{field}`: expected {expected}, got {got:?}")]
    Invalid {
        field: String,
        expected: String,
        got: String,
    },
    /// The payload is not JSON, or not the JSON squad expects.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// A state transition the incident state machine does not allow.
    #[error("incident state cannot go from {from} to {to}")]
    Transition { from: String, to: String },
}

impl ProtocolError {
    pub fn missing(field: impl Into<String>, expected: impl Into<String>) -> Self {
        Self::Missing {
            field: field.into(),
            expected: expected.into(),
        }
    }

    /// A field with a value of the wrong shape; `got` is cut to 80 characters (it is the
    /// sender's text, and may be a megabyte).
    pub fn invalid(
        field: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            field: field.into(),
            expected: expected.into(),
            got: crate::text::shorten(&got.into()),
        }
    }
}
