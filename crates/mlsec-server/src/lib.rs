//! The HTTP surface of mlsec: thin axum handlers over [`mlsec_core::Mlsec`].
//!
//! Every handler is extractors → one core call → JSON. Authentication is an extractor,
//! authorization and audit live in the core, and one module maps errors to responses.

mod auth;
mod error;
mod openapi;
mod openlineage;
mod request_id;
mod routes;

use std::future::Future;

use axum::Router;
use mlsec_core::Mlsec;
use tokio::net::TcpListener;

pub use error::ApiError;
pub use openapi::ApiDoc;
pub use openlineage::{OpenLineageConfig, start_openlineage};

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub core: Mlsec,
}

/// The full router: health probes, the native API and its OpenAPI document.
pub fn router(core: Mlsec) -> Router {
    let state = AppState { core };
    Router::new()
        .merge(routes::health::router())
        .nest("/api/v1", routes::api_v1())
        .merge(routes::mlflow::router())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(request_id::layer))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish, records the stop and
/// signs a final audit checkpoint.
pub async fn serve(
    core: Mlsec,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), mlsec_core::CoreError> {
    let addr = listener.local_addr().ok();
    core.record_system_event(
        "server.start",
        serde_json::json!({ "listen": addr.map(|a| a.to_string()), "version": env!("CARGO_PKG_VERSION") }),
    )
    .await?;
    let app = router(core.clone());
    // The peer address feeds per-source brute-force limits and the audit log.
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "server stopped with an error");
    }
    core.shutdown().await?;
    tracing::info!("server stopped; final audit checkpoint signed");
    Ok(())
}
