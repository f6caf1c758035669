//! Accounts, tokens, roles and second factors. Each handler is one core call; the core decides.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use mlsec_core::policy::{ROLES, RoleSpec};
use mlsec_core::{
    CreatedToken, MfaStatus, NewPrincipal, NewToken, PrincipalView, TokenView, TotpEnrolment,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipal {
    /// 1–64 of a-z, 0-9, `.`, `_`, `-`.
    pub id: String,
    /// `user` (default) or `service_account`.
    #[serde(default)]
    pub kind: Option<String>,
    pub display_name: Option<String>,
    /// Console password for users (at least 12 characters).
    pub password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePrincipal {
    pub display_name: Option<String>,
    pub disabled: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The new password, or null to remove console login.
    pub password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// Lifetime in days (default 90; 0 never expires).
    pub expires_in_days: Option<i64>,
    #[serde(default)]
    pub read_only: bool,
    /// Limit the token to these scopes (`model:fraud-*`, `project:churn`).
    pub resources: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRole {
    pub role: String,
    /// `server` (default), `project:<name>` or `<type>:<pattern>`.
    pub scope: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ScopeQuery {
    /// The scope of the grant to revoke (default `server`).
    pub scope: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Code {
    /// A 6-digit TOTP code (or a recovery code where accepted).
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct GrantOutcome {
    pub role: String,
    pub scope: String,
    /// False when the principal already held the grant.
    pub added: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// One-time codes for when the authenticator is lost; shown once.
    pub recovery_codes: Vec<String>,
}

/// Every account (not deleted).
#[utoipa::path(get, path = "/api/v1/principals", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
) -> Result<Json<Vec<PrincipalView>>, ApiError> {
    Ok(Json(state.core.list_principals(&ctx).await?))
}

/// Creates a user or service account.
#[utoipa::path(post, path = "/api/v1/principals", tag = "identity", security(("bearer" = [])),
    request_body = CreatePrincipal,
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<CreatePrincipal>,
) -> Result<(StatusCode, Json<PrincipalView>), ApiError> {
    let service_account = match body.kind.as_deref() {
        None | Some("user") => false,
        Some("service_account") => true,
        Some(other) => {
            return Err(ApiError::new(
                mlsec_types::ErrorCode::InvalidRequest,
                format!(
                    "kind `{}`: expected `user` or `service_account`",
                    other.escape_debug()
                ),
            ));
        }
    };
    let view = state
        .core
        .create_principal(
            &ctx,
            NewPrincipal {
                id: body.id,
                service_account,
                display_name: body.display_name,
                password: body.password,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One account with its roles.
#[utoipa::path(get, path = "/api/v1/principals/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<PrincipalView>, ApiError> {
    Ok(Json(state.core.get_principal(&ctx, &id).await?))
}

/// Renames, disables or re-enables an account. A disabled account's tokens and sessions stop
/// working at once.
#[utoipa::path(patch, path = "/api/v1/principals/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UpdatePrincipal,
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<UpdatePrincipal>,
) -> Result<Json<PrincipalView>, ApiError> {
    Ok(Json(
        state
            .core
            .update_principal(&ctx, &id, body.display_name, body.disabled)
            .await?,
    ))
}

/// Deletes an account (its id stays reserved).
#[utoipa::path(delete, path = "/api/v1/principals/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.delete_principal(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets or removes an account's console password.
#[utoipa::path(put, path = "/api/v1/principals/{id}/password", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = SetPassword,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn set_password(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<SetPassword>,
) -> Result<StatusCode, ApiError> {
    state.core.set_password(&ctx, &id, body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An account's tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/principals/{id}/tokens", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<Object>), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(state.core.list_tokens(&ctx, &id).await?))
}

/// Creates an API token; the response is the only time its secret is shown. Privileged: needs a
/// fresh second factor.
#[utoipa::path(post, path = "/api/v1/principals/{id}/tokens", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CreateToken,
    responses((status = 201, body = Object), (status = 403, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let created = state
        .core
        .create_token(
            &ctx,
            &id,
            NewToken {
                name: body.name,
                expires_in_days: body.expires_in_days,
                read_only: body.read_only,
                resources: body.resources,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revokes a token at once. Privileged: needs a fresh second factor.
#[utoipa::path(delete, path = "/api/v1/tokens/{token_id}", tag = "identity", security(("bearer" = [])),
    params(("token_id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(token_id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(state.core.revoke_token(&ctx, &token_id).await?))
}

/// The built-in roles (what each may do is in the policy).
#[utoipa::path(get, path = "/api/v1/roles", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>)))]
pub async fn roles(Authenticated(_ctx): Authenticated) -> Json<&'static [RoleSpec]> {
    Json(ROLES)
}

/// Grants a role on a scope. Privileged: needs a fresh second factor.
#[utoipa::path(post, path = "/api/v1/principals/{id}/roles", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = GrantRole,
    responses((status = 200, body = GrantOutcome), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn grant_role(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<GrantRole>,
) -> Result<Json<GrantOutcome>, ApiError> {
    let scope = body.scope.unwrap_or_else(|| "server".into());
    let added = state.core.grant_role(&ctx, &id, &body.role, &scope).await?;
    Ok(Json(GrantOutcome {
        role: body.role,
        scope,
        added,
    }))
}

/// Revokes a role grant. Privileged: needs a fresh second factor.
#[utoipa::path(delete, path = "/api/v1/principals/{id}/roles/{role}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path), ("role" = String, Path), ScopeQuery),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_role(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path((id, role)): Path<(String, String)>,
    Query(q): Query<ScopeQuery>,
) -> Result<StatusCode, ApiError> {
    let scope = q.scope.unwrap_or_else(|| "server".into());
    state.core.revoke_role(&ctx, &id, &role, &scope).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Second-factor status of an account.
#[utoipa::path(get, path = "/api/v1/principals/{id}/mfa", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
pub async fn mfa_status(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<MfaStatus>, ApiError> {
    Ok(Json(state.core.mfa_status(&ctx, &id).await?))
}

/// Starts TOTP enrolment: returns the key, the otpauth URI and a QR code.
#[utoipa::path(post, path = "/api/v1/principals/{id}/mfa", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 201, body = Object), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn mfa_enroll(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TotpEnrolment>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.core.enroll_totp(&ctx, &id).await?),
    ))
}

/// Confirms enrolment with a first code; returns recovery codes (shown once).
#[utoipa::path(post, path = "/api/v1/principals/{id}/mfa/confirm", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Code,
    responses((status = 200, body = RecoveryCodes), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn mfa_confirm(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<Code>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let recovery_codes = state.core.confirm_totp(&ctx, &id, &body.code).await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// Removes the second factor (the owner sends a current code in `x-mlsec-otp`).
#[utoipa::path(delete, path = "/api/v1/principals/{id}/mfa", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn mfa_remove(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.remove_totp(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
