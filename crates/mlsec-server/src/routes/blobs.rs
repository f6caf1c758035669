use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mlsec_types::{Digest, ErrorCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};

#[derive(Serialize, ToSchema)]
pub struct BlobResponse {
    /// `sha256:<hex>`
    pub digest: String,
    pub size: u64,
    /// False when identical content was already stored.
    pub created: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BlobVerifyResponse {
    pub digest: String,
    pub size: u64,
    pub intact: bool,
}

fn parse_digest(text: &str) -> Result<Digest, ApiError> {
    Digest::parse(text)
        .map_err(|e| ApiError::new(ErrorCode::InvalidDigest, format!("`{text}`: {e}")))
}

/// Uploads raw bytes; they are hashed while streaming and stored under their SHA-256.
#[utoipa::path(post, path = "/api/v1/blobs", tag = "blobs", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = BlobResponse, description = "stored"),
        (status = 200, body = BlobResponse, description = "identical content already stored"),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "storage full")))]
pub async fn put(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    body: Body,
) -> Result<(StatusCode, Json<BlobResponse>), ApiError> {
    let summary = state
        .core
        .put_blob_stream(&ctx, body.into_data_stream())
        .await?;
    let status = if summary.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(BlobResponse {
            digest: summary.digest.to_string(),
            size: summary.size,
            created: summary.created,
        }),
    ))
}

/// Downloads a blob by digest.
#[utoipa::path(get, path = "/api/v1/blobs/{digest}", tag = "blobs", security(("bearer" = [])),
    params(("digest" = String, Path, description = "sha256:<hex>")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    let digest = parse_digest(&digest)?;
    let (stream, size) = state.core.open_blob(&ctx, &digest).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::ETAG, format!("\"{digest}\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Re-hashes a stored blob and reports whether it still matches its digest.
#[utoipa::path(get, path = "/api/v1/blobs/{digest}/verify", tag = "blobs", security(("bearer" = [])),
    params(("digest" = String, Path, description = "sha256:<hex>")),
    responses((status = 200, body = BlobVerifyResponse), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "content no longer matches the digest")))]
pub async fn verify(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(digest): Path<String>,
) -> Result<Json<BlobVerifyResponse>, ApiError> {
    let digest = parse_digest(&digest)?;
    let size = state.core.verify_blob(&ctx, &digest).await?;
    Ok(Json(BlobVerifyResponse {
        digest: digest.to_string(),
        size,
        intact: true,
    }))
}
