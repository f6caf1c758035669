//! Console sessions: password (+ TOTP) login, a session cookie (HttpOnly, SameSite=Strict,
//! Secure behind TLS), a CSRF token for state changes, and a short step-up for privileged
//! actions.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mlsec_core::{LoginRequest, NewSession, SESSION_COOKIE};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Authenticated, Origin};
use crate::error::{ApiError, ErrorBody};
use crate::routes::identity::Code;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub principal: String,
    pub password: String,
    /// Required once the account has a second factor.
    pub code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    pub principal: String,
    /// Epoch milliseconds until which the step-up counts as a fresh second factor.
    pub stepped_up_until: Option<i64>,
}

/// Secure when the request reached us over TLS (directly or through a proxy that says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("cookie text is ASCII")
}

/// Logs in. Failed attempts slow down and lock the account and the source address.
#[utoipa::path(post, path = "/api/v1/session/login", tag = "session", request_body = Login,
    responses((status = 200, body = Object, description = "session created; cookie set"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "a one-time code is required"),
        (status = 429, body = ErrorBody, description = "locked after repeated failures")))]
pub async fn login(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Json(body): Json<Login>,
) -> Result<Response, ApiError> {
    let ctx = mlsec_core::RequestCtx::anonymous()
        .with_request_id(origin.request_id)
        .with_source(origin.source);
    let session: NewSession = state
        .core
        .login(
            &ctx,
            LoginRequest {
                principal: &body.principal,
                password: &body.password,
                code: body.code.as_deref(),
            },
        )
        .await?;
    let mut response = Json(&session).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(
            &session.cookie_value,
            session.max_age_secs,
            over_tls(&headers),
        ),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The current session.
#[utoipa::path(get, path = "/api/v1/session", tag = "session", security(("bearer" = [])),
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
pub async fn info(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
) -> Result<Json<SessionInfo>, ApiError> {
    let stepped_up_until = match &ctx.credential {
        mlsec_core::Credential::Session { stepped_up_at, .. } => {
            stepped_up_at.map(|t| t + state.core.config().access.step_up_secs * 1000)
        }
        _ => None,
    };
    Ok(Json(SessionInfo {
        principal: ctx.principal.id,
        stepped_up_until,
    }))
}

/// Presents a one-time code so that privileged actions are allowed for a few minutes.
#[utoipa::path(post, path = "/api/v1/session/step-up", tag = "session", security(("bearer" = [])),
    request_body = Code,
    responses((status = 200, body = SessionInfo), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn step_up(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Json(body): Json<Code>,
) -> Result<Json<SessionInfo>, ApiError> {
    let until = state.core.step_up(&ctx, &body.code).await?;
    Ok(Json(SessionInfo {
        principal: ctx.principal.id,
        stepped_up_until: Some(until),
    }))
}

/// Ends the session and clears the cookie.
#[utoipa::path(post, path = "/api/v1/session/logout", tag = "session", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.core.logout(&ctx).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0, over_tls(&headers)));
    Ok(response)
}
