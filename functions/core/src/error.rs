//! The one error type of pgsteward. Each variant maps to a stable Lambda `errorType`
//! that Step Functions `Retry`/`Catch` clauses match on, so the names never change.

use lambda_runtime::Diagnostic;

/// Messages are lowercase, name the offending value and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request or event cannot be acted on. Nothing was changed.
    #[error("{0}")]
    InvalidInput(String),
    /// Deployment configuration (environment) is missing or malformed.
    #[error("{0}")]
    InvalidConfig(String),
    /// A transient failure: try again later (throttling, a busy resource, a dropped connection).
    #[error("{0}")]
    Retryable(String),
    /// Going ahead could lose data or block production; refused.
    #[error("{0}")]
    Unsafe(String),
    /// The named resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A bug or an unexpected answer from a dependency.
    #[error("{0}")]
    Internal(String),
    /// A check ran and failed (row counts below expectation, a smoke query failed, the
    /// application could not connect). Not retried: the state machine reports it.
    #[error("{0}")]
    CheckFailed(String),
}

impl Error {
    /// The Lambda `errorType`: stable, matched by state machines.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => "InvalidInput",
            Error::InvalidConfig(_) => "InvalidConfig",
            Error::Retryable(_) => "Retryable",
            Error::Unsafe(_) => "Unsafe",
            Error::NotFound(_) => "NotFound",
            Error::Internal(_) => "Internal",
            Error::CheckFailed(_) => "CheckFailed",
        }
    }

    /// `{errorType, errorMessage}`, the shape Lambda and the CLI print.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "errorType": self.error_type(), "errorMessage": self.to_string() })
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
