//! Every feature's routes in one router, with the OpenAPI document
//! generated from the handlers.

use super::state::Api;
use crate::{auth, error, fiat, http, trading, users, wallets, webhooks};
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(title = "NA-X Stream REST API", version = "1", description = "The exchange's backend-for-frontend routes (docs/API.md). Prices, quantities and amounts are decimal strings at the pair's or asset's scale."),
    components(schemas(error::ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the protected routes name.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every REST route of docs/API.md plus `GET /openapi.json`, with the body
/// limit. The caller wraps the whole app in [`http::layers`] so request
/// ids cover its own routes too.
pub fn router(api: Api) -> Router {
    router_with_doc(api, utoipa::openapi::OpenApi::default())
}

/// [`router`], with `extra` (the embedding binary's own routes, e.g. the
/// hub's `/markets`) merged into the served OpenAPI document.
pub fn router_with_doc(api: Api, extra: utoipa::openapi::OpenApi) -> Router {
    let mut doc = ApiDoc::openapi();
    doc.merge(extra);
    let (router, openapi) = OpenApiRouter::with_openapi(doc)
        .merge(auth::routes())
        .merge(users::routes())
        .merge(trading::routes())
        .merge(wallets::routes())
        .merge(fiat::routes())
        .merge(webhooks::routes())
        .split_for_parts();
    let openapi = std::sync::Arc::new(openapi);
    router
        .route_layer(axum::middleware::from_fn_with_state(
            http::ratelimit::LimitState::from_ref(&api),
            http::ratelimit::middleware,
        ))
        .route(
            "/openapi.json",
            get(move || async move { Json(openapi.as_ref().clone()) }),
        )
        .layer(DefaultBodyLimit::max(http::MAX_BODY_BYTES))
        .with_state(api)
}
