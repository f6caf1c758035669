//! The authentication extractor: a handler that takes [`Authenticated`] runs only for a request
//! carrying a valid bearer token or console session. Routes without it are public by design
//! (health, OpenAPI, login). Authorization happens in the core, per action and resource.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use mlsec_core::{CSRF_HEADER, RequestCtx, SESSION_COOKIE};

use crate::AppState;
use crate::error::ApiError;
use crate::request_id::RequestId;

/// Header carrying a one-time code for actions that need a fresh second factor.
pub const OTP_HEADER: &str = "x-mlsec-otp";

/// The caller, authenticated, with the request id: the context of every core call.
pub struct Authenticated(pub RequestCtx);

/// The client address and request id, for routes that authenticate themselves (login).
pub struct Origin {
    pub source: Option<String>,
    pub request_id: Option<String>,
}

fn source_of(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value.trim())
        })
}

impl FromRequestParts<AppState> for Origin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        Ok(Origin {
            source: source_of(parts),
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        })
    }
}

/// Longest Basic credential accepted (base64 of a user name and a token).
const MAX_BASIC_LEN: usize = 1024;

/// The token of HTTP Basic credentials, as MLflow clients send them with
/// `MLFLOW_TRACKING_USERNAME`/`PASSWORD`: the password is an API token (account passwords are
/// for the console only, where they are rate-limited and take a second factor). The user name
/// is not checked: the token names the principal.
fn basic_token(encoded: &str) -> Option<String> {
    use base64::Engine as _;
    if encoded.len() > MAX_BASIC_LEN {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (_username, token) = text.split_once(':')?;
    Some(token.to_owned())
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        let authorization = parts.headers.get(header::AUTHORIZATION);
        let ctx = if let Some(value) = authorization {
            // A header that is not text, or neither a bearer token nor Basic credentials, is a
            // bad credential (audited), not a missing one.
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    let (scheme, rest) = v.split_once(' ')?;
                    if scheme.eq_ignore_ascii_case("bearer") {
                        Some(rest.trim().to_owned())
                    } else if scheme.eq_ignore_ascii_case("basic") {
                        basic_token(rest.trim())
                    } else {
                        None
                    }
                })
                .unwrap_or_default();
            state.core.authenticate(Some(&token), request_id).await?
        } else if let Some(cookie) = session_cookie(&parts.headers) {
            let changes_state =
                !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
            state
                .core
                .authenticate_session(
                    cookie,
                    header_text(&parts.headers, CSRF_HEADER),
                    changes_state,
                    request_id,
                )
                .await?
        } else {
            state.core.authenticate(None, request_id).await?
        };
        let otp = header_text(&parts.headers, OTP_HEADER)
            .filter(|c| c.len() <= 64)
            .map(str::to_owned);
        Ok(Authenticated(
            ctx.with_second_factor(otp).with_source(source_of(parts)),
        ))
    }
}
