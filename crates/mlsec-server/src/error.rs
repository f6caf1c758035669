//! The one place errors become HTTP responses: the stable code decides the status, the body names
//! the code, and internal causes are logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mlsec_core::CoreError;
use mlsec_types::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds to wait before retrying (a locked account or address).
    pub retry_after_secs: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable error code, e.g. `not_found`.
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let code = e.code();
        let retry_after_secs = match &e {
            CoreError::TooManyAttempts { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        if matches!(
            code,
            ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::StorageFull
        ) {
            tracing::error!(error = %e, code = code.as_str(), "request failed");
        }
        ApiError {
            code,
            message: e.public_message(),
            retry_after_secs,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code.as_str().to_owned(),
                    message: self.message,
                },
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        if self.code == ErrorCode::Unauthenticated {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"mlsec\""),
            );
        }
        response
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

pub async fn method_not_allowed() -> Response {
    let mut r = ApiError::new(
        ErrorCode::InvalidRequest,
        "method not allowed for this route",
    )
    .into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}
