pub mod audit;
pub mod blobs;
pub mod datasets;
pub mod health;
pub mod identity;
pub mod mlflow;
pub mod policy;
pub mod registry;
pub mod session;
pub mod whoami;

use axum::Router;
use axum::routing::{delete, get, post};

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
        .route("/principals", get(identity::list).post(identity::create))
        .route(
            "/principals/{id}",
            get(identity::get)
                .patch(identity::update)
                .delete(identity::delete),
        )
        .route(
            "/principals/{id}/password",
            axum::routing::put(identity::set_password),
        )
        .route(
            "/principals/{id}/tokens",
            get(identity::list_tokens).post(identity::create_token),
        )
        .route("/tokens/{token_id}", delete(identity::revoke_token))
        .route("/roles", get(identity::roles))
        .route("/principals/{id}/roles", post(identity::grant_role))
        .route(
            "/principals/{id}/roles/{role}",
            delete(identity::revoke_role),
        )
        .route(
            "/principals/{id}/mfa",
            get(identity::mfa_status)
                .post(identity::mfa_enroll)
                .delete(identity::mfa_remove),
        )
        .route("/principals/{id}/mfa/confirm", post(identity::mfa_confirm))
        .route("/policy", get(policy::get).put(policy::put))
        .route("/policy/check", post(policy::check))
        .route("/policy/schema", get(policy::schema))
        .route("/session", get(session::info))
        .route("/session/login", post(session::login))
        .route("/session/step-up", post(session::step_up))
        .route("/session/logout", post(session::logout))
        .route("/datasets", get(datasets::list))
        .route(
            "/datasets/{name}/versions",
            get(datasets::versions).post(datasets::add),
        )
        .route("/datasets/{name}/versions/{version}", get(datasets::get))
        .route(
            "/datasets/{name}/versions/{version}/profile",
            get(datasets::profile),
        )
        .route(
            "/datasets/{name}/versions/{version}/verify",
            post(datasets::verify),
        )
        .route(
            "/datasets/{name}/versions/{version}/check",
            post(datasets::check),
        )
        .route(
            "/datasets/{name}/versions/{version}/report",
            get(datasets::report),
        )
        .route(
            "/datasets/{name}/schema",
            get(datasets::schema).put(datasets::set_schema),
        )
        .route("/runs/{run_id}", get(registry::run))
        .route("/models", get(registry::models))
        .route("/models/{name}/versions", post(registry::add_version))
        .route("/models/{name}/versions/{version}", get(registry::version))
        .route(
            "/models/{name}/versions/{version}/verification",
            get(registry::verification),
        )
        .route(
            "/models/{name}/aliases/{alias}",
            axum::routing::put(registry::set_alias).delete(registry::delete_alias),
        )
        .route("/lineage", get(registry::lineage))
}
