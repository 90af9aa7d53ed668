//! The Network v2.0 HTTP API: routes and the small helpers every handler shares.

mod crud;
mod floating_ips;
mod groups;
mod input;
mod l3;
mod meta;
mod networks;
mod ports;
mod query;
mod quotas;
mod resources;
mod routers;
mod subnets;
mod tags;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, put};
use onestack_api::error::{ErrorStyle, not_found, render_errors};
use onestack_api::{ApiError, AuthContext, Fields};
use serde_json::Value;

use crate::policy::Caller;
use crate::service::Networks;

/// Largest JSON body accepted.
const MAX_JSON_BODY: usize = 1024 * 1024;

type Shared = Arc<Networks>;
type Reply = Result<axum::Json<Value>, ApiError>;
type Created = Result<(http::StatusCode, axum::Json<Value>), ApiError>;

/// `{"<what>": view}`, narrowed to the requested `fields`.
fn one(what: &str, view: Value, params: &query::Params) -> axum::Json<Value> {
    axum::Json(serde_json::json!({ what: query::select_fields(params, view) }))
}

/// The address of a collection, for pagination links.
fn href(base: &str, collection: &str) -> String {
    format!("{base}/networking/v2.0/{collection}")
}

/// Neutron records no request history, so the caller carries no request id.
fn caller(context: &AuthContext) -> Result<Caller, ApiError> {
    Caller::from_context(context, String::new(), "network")
}

/// The single resource object of a create or update body, e.g. `{"network": {...}}`.
fn resource_fields(body: Value, what: &'static str) -> Result<Fields, ApiError> {
    if let Value::Object(map) = &body
        && !map.contains_key(what)
        && map.contains_key(&format!("{what}s"))
    {
        return Err(ApiError::bad_request(
            "Bulk operations are not supported; create one resource per request.",
        ));
    }
    Fields::from_body(body, what)
}

/// The routes under the network prefix (`/networking`).
pub fn router(networks: Shared) -> Router {
    use resources::*;
    let router = Router::new()
        .route("/", get(meta::versions))
        .route("/v2.0", get(meta::resources))
        .route("/v2.0/extensions", get(meta::extensions))
        .route("/v2.0/extensions/{alias}", get(meta::extension));
    let router = crud::routes::<NetworkKind>(router);
    let router = crud::routes::<SubnetKind>(router);
    let router = crud::routes::<PortKind>(router);
    let router = crud::routes::<GroupKind>(router);
    let router = crud::routes::<RuleKind>(router);
    let router = crud::routes::<l3::RouterKind>(router);
    let router = crud::routes::<l3::FloatingIpKind>(router);
    router
        .route(
            "/v2.0/routers/{id}/add_router_interface",
            put(l3::add_router_interface),
        )
        .route(
            "/v2.0/routers/{id}/remove_router_interface",
            put(l3::remove_router_interface),
        )
        .route("/v2.0/agents", get(list_agents))
        .route("/v2.0/agents/{id}", get(show_agent))
        .route("/v2.0/network-ip-availabilities", get(list_availabilities))
        .route(
            "/v2.0/network-ip-availabilities/{id}",
            get(show_availability),
        )
        .route("/v2.0/quotas", get(quotas::list))
        .route(
            "/v2.0/quotas/{project_id}",
            get(quotas::show).put(quotas::update).delete(quotas::reset),
        )
        .route("/v2.0/quotas/{project_id}/details", get(quotas::details))
        .route("/v2.0/quotas/{project_id}/default", get(quotas::defaults))
        .route(
            "/v2.0/{collection}/{id}/tags",
            get(tags::list).put(tags::replace).delete(tags::clear),
        )
        .route(
            "/v2.0/{collection}/{id}/tags/{tag}",
            get(tags::check).put(tags::add).delete(tags::remove),
        )
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .fallback(not_found)
        .layer(middleware::from_fn(|r, n| {
            render_errors(ErrorStyle::Neutron, r, n)
        }))
        .with_state(networks)
}
