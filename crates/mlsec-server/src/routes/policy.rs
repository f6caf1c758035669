//! The authorization policy: read, replace (validated and audited), and ask it questions.

use axum::Json;
use axum::extract::State;
use mlsec_core::PolicyView;
use mlsec_core::policy::Decision;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// Whose grants to use.
    pub principal: String,
    /// An action of the catalog, e.g. `model.promote`.
    pub action: String,
    /// `type:name`, e.g. `model:fraud/detector`, or a bare singleton type (`audit`).
    pub resource: String,
    /// Assume a fresh second factor.
    #[serde(default)]
    pub mfa: bool,
    /// Evaluate this candidate policy instead of the one in force.
    pub policy: Option<String>,
}

/// The policy in force.
#[utoipa::path(get, path = "/api/v1/policy", tag = "policy", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
) -> Result<Json<PolicyView>, ApiError> {
    Ok(Json(state.core.policy(&ctx).await?))
}

/// Replaces the policy (Cedar text). It is validated against the schema first; a policy that
/// does not validate changes nothing. Privileged: needs a fresh second factor.
#[utoipa::path(put, path = "/api/v1/policy", tag = "policy", security(("bearer" = [])),
    request_body(content = String, content_type = "text/plain"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    body: String,
) -> Result<Json<PolicyView>, ApiError> {
    Ok(Json(state.core.set_policy(&ctx, &body).await?))
}

/// What the policy decides for a principal, an action and a resource, with the reasons.
#[utoipa::path(post, path = "/api/v1/policy/check", tag = "policy", security(("bearer" = [])),
    request_body = CheckRequest,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn check(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<CheckRequest>,
) -> Result<Json<Decision>, ApiError> {
    Ok(Json(
        state
            .core
            .check_policy(
                &ctx,
                &body.principal,
                &body.action,
                &body.resource,
                body.mfa,
                body.policy.as_deref(),
            )
            .await?,
    ))
}

/// The Cedar schema policies are validated against (generated from the action catalog).
#[utoipa::path(get, path = "/api/v1/policy/schema", tag = "policy", security(("bearer" = [])),
    responses((status = 200, body = String, content_type = "text/plain")))]
pub async fn schema(Authenticated(_ctx): Authenticated) -> String {
    mlsec_core::policy::schema_text()
}
