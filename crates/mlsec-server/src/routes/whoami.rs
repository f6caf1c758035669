use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Authenticated;

#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    pub id: String,
    /// `user` or `service_account`.
    pub kind: String,
    pub display_name: String,
    pub token_id: Option<String>,
}

/// The principal the presented token belongs to.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = WhoAmI), (status = 401, body = crate::error::ErrorBody)))]
pub async fn whoami(Authenticated(ctx): Authenticated) -> Json<WhoAmI> {
    let p = ctx.principal;
    Json(WhoAmI {
        kind: serde_json::to_value(p.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        id: p.id,
        display_name: p.display_name,
        token_id: p.token_id,
    })
}
