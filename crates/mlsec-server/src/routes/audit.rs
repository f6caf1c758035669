use axum::Json;
use axum::extract::{Query, State};
use mlsec_core::audit::{SignedCheckpoint, VerifyReport};
use mlsec_core::store::AuditQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events of this actor (`user:alice`).
    pub actor: Option<String>,
    /// Only events with this action (`blob.put`).
    pub action: Option<String>,
    /// Only events with a lower index (paging backwards).
    pub before: Option<u64>,
    /// At most this many (1–1000, default 100).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct EventEntry {
    pub index: u64,
    pub hash: String,
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

/// Audit events, newest first.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", security(("bearer" = [])),
    params(EventsQuery),
    responses((status = 200, body = Vec<EventEntry>), (status = 401, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Vec<EventEntry>>, ApiError> {
    let query = AuditQuery {
        actor: q.actor,
        action: q.action,
        before: q.before,
        limit: q.limit.unwrap_or(100),
    };
    let records = state.core.audit_events(&ctx, &query).await?;
    let entries = records
        .into_iter()
        .map(|r| EventEntry {
            index: r.index,
            hash: r.hash.to_string(),
            event: serde_json::from_slice(&r.canonical).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    Ok(Json(entries))
}

/// Signed checkpoints of the chain head.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorBody)))]
pub async fn checkpoints(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
) -> Result<Json<Vec<SignedCheckpoint>>, ApiError> {
    Ok(Json(state.core.audit_checkpoints(&ctx).await?))
}

/// Verifies the whole chain and every checkpoint against the server key.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = Object, description = "verification report"),
        (status = 401, body = ErrorBody)))]
pub async fn verify(
    State(state): State<AppState>,
    Authenticated(ctx): Authenticated,
) -> Result<Json<VerifyReport>, ApiError> {
    Ok(Json(state.core.verify_audit(&ctx, false).await?))
}
