//! Datasets: versions from uploaded blobs, their profiles, verification of a working copy,
//! checks with their HTML reports, and schemas. Dataset names with a project (`fraud/train`)
//! are sent with the slash percent-encoded (`fraud%2Ftrain`).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mlsec_core::data::CheckOptions;
use mlsec_core::data::FileEntry;
use mlsec_core::{
    AddedVersion, CheckView, DatasetSummaryView, DatasetVersionDetail, DatasetVersionView,
    StagedFile, VerifyView, VersionRef,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersionRequest {
    /// Every file of the version: its relative path and the digest of its bytes, uploaded
    /// beforehand with `POST /api/v1/blobs`.
    #[schema(value_type = Vec<Object>)]
    pub files: Vec<StagedFile>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub source: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The working copy's files: `path`, `size`, `sha256`.
    #[schema(value_type = Vec<Object>)]
    pub files: Vec<FileEntry>,
}

/// Most files one verify request may list.
const MAX_VERIFY_FILES: usize = 1_000_000;

fn version_ref(name: &str, version: &str) -> Result<VersionRef, ApiError> {
    Ok(VersionRef::parse(&format!("{name}@{version}"))?)
}

/// Datasets the caller may read.
#[utoipa::path(get, path = "/api/v1/datasets", tag = "datasets", security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
) -> Result<Json<Vec<DatasetSummaryView>>, ApiError> {
    Ok(Json(state.core.list_datasets(&ctx).await?))
}

/// A dataset's versions, newest first.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/versions", tag = "datasets", security(("bearer" = [])),
    params(("name" = String, Path, description = "dataset name, `/` percent-encoded")),
    responses((status = 200, body = Vec<Object>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn versions(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<Vec<DatasetVersionView>>, ApiError> {
    Ok(Json(state.core.dataset_versions(&ctx, &name).await?))
}

/// Records a version from uploaded blobs: the manifest and its digest, row counts, the profile
/// of the tabular files, and (on the first version) the inferred schema. An identical version
/// is not recorded twice (200 with `created: false`).
#[utoipa::path(post, path = "/api/v1/datasets/{name}/versions", tag = "datasets", security(("bearer" = [])),
    params(("name" = String, Path)),
    request_body = NewVersionRequest,
    responses((status = 201, body = Object), (status = 200, body = Object), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "a listed blob was not uploaded")))]
pub async fn add(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
    Json(body): Json<NewVersionRequest>,
) -> Result<(StatusCode, Json<AddedVersion>), ApiError> {
    let added = state
        .core
        .add_dataset_version(&ctx, &name, body.files, &body.message, &body.source)
        .await?;
    let status = if added.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(added)))
}

/// A version with its files, column summaries and last check. `version` is a number or
/// `sha256:<hex>`.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/versions/{version}", tag = "datasets", security(("bearer" = [])),
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<DatasetVersionDetail>, ApiError> {
    Ok(Json(
        state
            .core
            .dataset_version(&ctx, &version_ref(&name, &version)?)
            .await?,
    ))
}

/// The stored, mergeable profile of a version.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/versions/{version}/profile", tag = "datasets", security(("bearer" = [])),
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn profile(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    match state
        .core
        .dataset_profile(&ctx, &version_ref(&name, &version)?)
        .await?
    {
        Some(p) => Ok(Json(p).into_response()),
        None => Err(mlsec_core::CoreError::NotFound {
            what: "profile of",
            id: format!("{name}@{version}"),
        }
        .into()),
    }
}

/// Compares a working copy's file list with a version (the unauthorized-data-change check).
#[utoipa::path(post, path = "/api/v1/datasets/{name}/versions/{version}/verify", tag = "datasets", security(("bearer" = [])),
    params(("name" = String, Path), ("version" = String, Path)),
    request_body = VerifyRequest,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn verify(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path((name, version)): Path<(String, String)>,
    Json(body): Json<VerifyRequest>,
) -> Result<Json<VerifyView>, ApiError> {
    if body.files.len() > MAX_VERIFY_FILES {
        return Err(mlsec_core::CoreError::InvalidRequest("too many files".into()).into());
    }
    Ok(Json(
        state
            .core
            .verify_dataset(&ctx, &version_ref(&name, &version)?, body.files)
            .await?,
    ))
}

/// Checks a version against the last approved one (schema, drift, poisoning signals), records
/// the verdict on it (a failed version is quarantined) and stores the HTML report. The body
/// (optional) holds the check options.
#[utoipa::path(post, path = "/api/v1/datasets/{name}/versions/{version}/check", tag = "datasets", security(("bearer" = [])),
    params(("name" = String, Path), ("version" = String, Path)),
    request_body(content = Object, description = "check options (thresholds); `{}` for the defaults"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn check(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path((name, version)): Path<(String, String)>,
    body: Option<Json<CheckOptions>>,
) -> Result<Json<CheckView>, ApiError> {
    let options = body.map(|Json(o)| o).unwrap_or_default();
    Ok(Json(
        state
            .core
            .check_dataset(&ctx, &version_ref(&name, &version)?, options)
            .await?,
    ))
}

/// The self-contained HTML report of the version's newest check.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/versions/{version}/report", tag = "datasets", security(("bearer" = [])),
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, content_type = "text/html", body = String), (status = 404, body = ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (stream, digest) = state
        .core
        .dataset_report(&ctx, &version_ref(&name, &version)?)
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::ETAG, format!("\"{digest}\"")),
            // The report is data about data: it must not run anywhere near the API's origin.
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; sandbox allow-scripts".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The schema enforced on new versions.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/schema", tag = "datasets", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn schema(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    match state.core.dataset_schema(&ctx, &name).await? {
        Some(s) => Ok(Json(s).into_response()),
        None => Err(mlsec_core::CoreError::NotFound {
            what: "schema of",
            id: name,
        }
        .into()),
    }
}

/// Replaces the schema (needs `dataset.approve`: loosening a schema weakens the gate).
#[utoipa::path(put, path = "/api/v1/datasets/{name}/schema", tag = "datasets", security(("bearer" = [])),
    params(("name" = String, Path)),
    request_body(content = Object, description = "the schema (as returned by GET)"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_schema(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<serde_json::Value>, ApiError> {
    let revision = state.core.set_dataset_schema(&ctx, &name, &body).await?;
    Ok(Json(
        serde_json::json!({ "dataset": name, "revision": revision }),
    ))
}
