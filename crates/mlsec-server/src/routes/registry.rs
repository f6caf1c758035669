//! Runs, registered models and lineage in the native API. The same use cases serve the MLflow
//! routes; these add what MLflow has no words for: versions from uploaded blobs, the digests and
//! scan results of every file, and the lineage graph. Model names with a project
//! (`team/fraud`) are sent with the slash percent-encoded.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use mlsec_core::{
    Direction, LineageStart, LineageView, ModelVersionView, RegisteredModelView, RunView,
    StagedFile, VersionSource,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};

/// A run with its params, latest metrics, tags and pinned dataset inputs.
#[utoipa::path(get, path = "/api/v1/runs/{run_id}", tag = "tracking", security(("bearer" = [])),
    params(("run_id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(run_id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    Ok(Json(state.core.run(&ctx, &run_id).await?))
}

#[derive(Deserialize)]
pub struct ListModels {
    #[serde(default)]
    pub filter: String,
    pub page_token: Option<String>,
}

/// Registered models the caller may read, with their aliases and newest version.
#[utoipa::path(get, path = "/api/v1/models", tag = "registry", security(("bearer" = [])),
    params(("filter" = Option<String>, Query, description = "MLflow filter, e.g. `name LIKE 'fraud%'`")),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorBody)))]
pub async fn models(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Query(q): Query<ListModels>,
) -> Result<Json<Vec<RegisteredModelView>>, ApiError> {
    let (models, _) = state
        .core
        .search_registered_models(&ctx, &q.filter, 1000, q.page_token.as_deref())
        .await?;
    Ok(Json(models))
}

/// A version: its files with their digests and scan results, the manifest digest, the source
/// run, aliases and whether it is quarantined.
#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}", tag = "registry", security(("bearer" = [])),
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn version(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ModelVersionView>, ApiError> {
    Ok(Json(state.core.model_version(&ctx, &name, &version).await?))
}

/// Every OMS signature and provenance envelope stored with a version, checked now against the
/// registered signers (revocations count at once) and the version's recorded files: what an
/// approval gate asks before promotion.
#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/verification", tag = "registry", security(("bearer" = [])),
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn verification(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<mlsec_core::VersionVerification>, ApiError> {
    Ok(Json(
        state
            .core
            .verify_model_version(&ctx, &name, &version)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewModelVersion {
    /// Every file of the version: relative path and the digest of its bytes, uploaded
    /// beforehand with `POST /api/v1/blobs`. Each is scanned before the version is recorded.
    #[schema(value_type = Vec<Object>)]
    pub files: Vec<StagedFile>,
    #[serde(default)]
    pub description: String,
    /// The run that produced the files, if any.
    pub run_id: Option<String>,
}

/// Records a version from uploaded blobs (the registered model is created if new). A version
/// with a critical scanner finding is recorded as quarantined.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions", tag = "registry", security(("bearer" = [])),
    params(("name" = String, Path)),
    request_body = NewModelVersion,
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "a listed blob was not uploaded")))]
pub async fn add_version(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(name): Path<String>,
    Json(body): Json<NewModelVersion>,
) -> Result<(StatusCode, Json<ModelVersionView>), ApiError> {
    match state
        .core
        .create_registered_model(&ctx, &name, "", vec![])
        .await
    {
        Ok(_) => {}
        Err(e) if e.code() == mlsec_types::ErrorCode::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    let v = state
        .core
        .create_model_version(
            &ctx,
            &name,
            VersionSource::Blobs(body.files),
            body.run_id.as_deref(),
            &body.description,
            vec![],
        )
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasTarget {
    pub version: String,
}

/// Points an alias at a version. `production` and `prod` are promotions (`model.promote`, a
/// fresh second factor under the default policy); a quarantined version is refused.
#[utoipa::path(put, path = "/api/v1/models/{name}/aliases/{alias}", tag = "registry", security(("bearer" = [])),
    params(("name" = String, Path), ("alias" = String, Path)),
    request_body = AliasTarget,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the version is quarantined")))]
pub async fn set_alias(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path((name, alias)): Path<(String, String)>,
    Json(body): Json<AliasTarget>,
) -> Result<StatusCode, ApiError> {
    state
        .core
        .move_alias(&ctx, &name, &alias, Some(&body.version))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes an alias.
#[utoipa::path(delete, path = "/api/v1/models/{name}/aliases/{alias}", tag = "registry", security(("bearer" = [])),
    params(("name" = String, Path), ("alias" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_alias(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path((name, alias)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.core.move_alias(&ctx, &name, &alias, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct LineageQuery {
    /// `dataset:NAME@N`, `run:ID`, `model:NAME/N`, `model:NAME@ALIAS`.
    pub start: String,
    /// `upstream` (default) or `downstream`.
    #[serde(default)]
    pub direction: Option<String>,
}

/// The lineage graph from a dataset version, run or model version, walked upstream ("what was
/// this trained on?") or downstream ("what used this data?"). Nodes the caller may not read
/// are counted in `hidden`, not shown.
#[utoipa::path(get, path = "/api/v1/lineage", tag = "registry", security(("bearer" = [])),
    params(("start" = String, Query), ("direction" = Option<String>, Query)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn lineage(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Query(q): Query<LineageQuery>,
) -> Result<Json<LineageView>, ApiError> {
    let direction = match q.direction.as_deref() {
        None | Some("upstream") => Direction::Upstream,
        Some("downstream") => Direction::Downstream,
        Some(other) => {
            return Err(ApiError::new(
                mlsec_types::ErrorCode::InvalidRequest,
                format!("direction `{other}`: use upstream or downstream"),
            ));
        }
    };
    let start = LineageStart::parse(&q.start)?;
    Ok(Json(state.core.lineage(&ctx, &start, direction).await?))
}
