pub mod audit;
pub mod blobs;
pub mod health;
pub mod whoami;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

/// The native API under `/api/v1`.
pub fn api_v1() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(crate::openapi::document))
        .route("/whoami", get(whoami::whoami))
        .route("/blobs", post(blobs::put))
        .route("/blobs/{digest}", get(blobs::get))
        .route("/blobs/{digest}/verify", get(blobs::verify))
        .route("/audit/events", get(audit::events))
        .route("/audit/checkpoints", get(audit::checkpoints))
        .route("/audit/verify", get(audit::verify))
}
