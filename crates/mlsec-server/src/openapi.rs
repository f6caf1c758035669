use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "mlsec API", description = "Native API of the mlsec MLOps security control plane."),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::whoami::whoami,
        routes::blobs::put,
        routes::blobs::get,
        routes::blobs::verify,
        routes::audit::events,
        routes::audit::checkpoints,
        routes::audit::verify,
        routes::identity::list,
        routes::identity::create,
        routes::identity::get,
        routes::identity::update,
        routes::identity::delete,
        routes::identity::set_password,
        routes::identity::list_tokens,
        routes::identity::create_token,
        routes::identity::revoke_token,
        routes::identity::roles,
        routes::identity::grant_role,
        routes::identity::revoke_role,
        routes::identity::mfa_status,
        routes::identity::mfa_enroll,
        routes::identity::mfa_confirm,
        routes::identity::mfa_remove,
        routes::policy::get,
        routes::policy::put,
        routes::policy::check,
        routes::policy::schema,
        routes::session::login,
        routes::session::info,
        routes::session::step_up,
        routes::session::logout,
        routes::datasets::list,
        routes::datasets::versions,
        routes::datasets::add,
        routes::datasets::get,
        routes::datasets::profile,
        routes::datasets::verify,
        routes::datasets::check,
        routes::datasets::report,
        routes::datasets::schema,
        routes::datasets::set_schema,
        routes::registry::run,
        routes::registry::models,
        routes::registry::add_version,
        routes::registry::version,
        routes::registry::verification,
        routes::registry::set_alias,
        routes::registry::delete_alias,
        routes::registry::lineage,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        // Console sessions (cookie + CSRF header) are accepted wherever the bearer token is.
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI 3.1 document of this API.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
