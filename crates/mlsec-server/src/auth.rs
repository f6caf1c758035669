//! The authentication extractor: a handler that takes [`Authenticated`] runs only for a request
//! carrying a valid bearer token. Routes without it are public by design (health, OpenAPI).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use mlsec_core::RequestCtx;

use crate::AppState;
use crate::error::ApiError;
use crate::request_id::RequestId;

/// The caller, authenticated, with the request id: the context of every core call.
pub struct Authenticated(pub RequestCtx);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        let principal = state.core.authenticate(bearer, request_id.clone()).await?;
        Ok(Authenticated(RequestCtx {
            principal,
            request_id,
        }))
    }
}
