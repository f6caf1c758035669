use mlsec_store::StoreError;
use mlsec_types::ErrorCode;

/// Errors of the use cases, each with a stable [`ErrorCode`] and a message safe to show a client.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("{0}")]
    SecondFactorRequired(String),
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: i64 },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("upload exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("{what} `{id}` was not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("blob `{digest}` does not match its digest (re-hashed as `{actual}`)")]
    Integrity { digest: String, actual: String },
    #[error("server key: {0}")]
    Key(String),
    #[error("data directory: {0}")]
    DataDir(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::Unauthenticated => ErrorCode::Unauthenticated,
            CoreError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            CoreError::SecondFactorRequired(_) => ErrorCode::SecondFactorRequired,
            CoreError::TooManyAttempts { .. } => ErrorCode::TooManyAttempts,
            CoreError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            CoreError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            CoreError::NotFound { .. } => ErrorCode::NotFound,
            CoreError::Conflict(_) => ErrorCode::Conflict,
            CoreError::Integrity { .. } => ErrorCode::IntegrityViolation,
            CoreError::Key(_) | CoreError::DataDir(_) => ErrorCode::Internal,
            CoreError::Store(e) => match e {
                StoreError::NotFound { .. } => ErrorCode::NotFound,
                StoreError::AlreadyExists { .. } => ErrorCode::AlreadyExists,
                StoreError::StorageFull(_) => ErrorCode::StorageFull,
                StoreError::Open { .. } => ErrorCode::Unavailable,
                _ => ErrorCode::Internal,
            },
        }
    }

    /// The message for a client: internal causes stay in the server log.
    pub fn public_message(&self) -> String {
        match self.code() {
            ErrorCode::Internal => "internal error".to_owned(),
            ErrorCode::Unavailable => "storage is unavailable".to_owned(),
            ErrorCode::StorageFull => "storage is full".to_owned(),
            _ => self.to_string(),
        }
    }
}
