use serde::Serialize;

/// Stable error codes of the mlsec API, one table for every surface.
///
/// The code is what clients match on; the HTTP status follows from it. Messages are for people and
/// may change; codes do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidDigest,
    PayloadTooLarge,
    Unauthenticated,
    PermissionDenied,
    SecondFactorRequired,
    TooManyAttempts,
    NotFound,
    AlreadyExists,
    Conflict,
    IntegrityViolation,
    StorageFull,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, for the documentation table and its test.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidDigest,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::SecondFactorRequired,
        ErrorCode::TooManyAttempts,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::Conflict,
        ErrorCode::IntegrityViolation,
        ErrorCode::StorageFull,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidDigest => "invalid_digest",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::SecondFactorRequired => "second_factor_required",
            ErrorCode::TooManyAttempts => "too_many_attempts",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::Conflict => "conflict",
            ErrorCode::IntegrityViolation => "integrity_violation",
            ErrorCode::StorageFull => "storage_full",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status every surface answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::InvalidDigest => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::PermissionDenied | ErrorCode::SecondFactorRequired => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists | ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::TooManyAttempts => 429,
            ErrorCode::IntegrityViolation => 422,
            ErrorCode::Internal => 500,
            ErrorCode::StorageFull | ErrorCode::Unavailable => 503,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_serialise_as_their_name() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {}", code.as_str());
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!((400..600).contains(&code.http_status()));
        }
    }
}
