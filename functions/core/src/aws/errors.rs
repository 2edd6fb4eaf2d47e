//! One mapping from SDK failures to pgsteward's error types, for every AWS call.

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use crate::error::Error;

const RETRYABLE: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalServiceError",
    "InternalFailure",
    "SlowDown",
];
const NOT_FOUND_SUFFIX: &str = "NotFound";
const AUTH: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
];

/// `what` names the call and its target, e.g. "read secret arn:…".
pub fn classify_sdk_error<E, R>(err: SdkError<E, R>, what: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => Error::Retryable(format!(
            "{what}: the AWS API did not answer ({err}); try again"
        )),
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let msg = se.err().message().unwrap_or("");
            if RETRYABLE.contains(&code) {
                Error::Retryable(format!("{what}: {code} {msg}; try again later"))
            } else if code.ends_with(NOT_FOUND_SUFFIX)
                || code.ends_with("NotFoundException")
                || code.contains("NotFoundFault")
            {
                Error::NotFound(format!("{what}: {code} {msg}"))
            } else if AUTH.contains(&code) {
                Error::InvalidConfig(format!(
                    "{what}: {code} {msg}; check the function's IAM role and credentials"
                ))
            } else {
                Error::Internal(format!("{what}: {code} {msg}"))
            }
        }
        SdkError::ResponseError(_) => Error::Retryable(format!(
            "{what}: unreadable AWS response ({err}); try again"
        )),
        _ => Error::Internal(format!("{what}: {err}")),
    }
}
