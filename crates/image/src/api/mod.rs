//! The Image v2 HTTP API: routes.

mod data;
mod images;
mod list;
mod members;
mod meta;
mod patch;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post, put};
use onestack_api::error::{ErrorStyle, not_found, render_errors};

use crate::service::Images;

/// Largest JSON body accepted (image data has no limit of this kind; it streams).
const MAX_JSON_BODY: usize = 256 * 1024;

/// The routes under the image prefix (`/image`).
pub fn router(images: Arc<Images>) -> Router {
    let data = Router::new()
        .route(
            "/v2/images/{id}/file",
            put(data::upload).get(data::download),
        )
        .route("/v2/images/{id}/stage", put(data::stage))
        .layer(DefaultBodyLimit::disable());
    Router::new()
        .route("/", get(meta::versions))
        .route("/v2", get(meta::versions))
        .route("/v2/images", get(list::list).post(images::create))
        .route(
            "/v2/images/{id}",
            get(images::show)
                .patch(patch::update)
                .delete(images::delete),
        )
        .route("/v2/images/{id}/import", post(data::import))
        .route(
            "/v2/images/{id}/actions/deactivate",
            post(images::deactivate),
        )
        .route(
            "/v2/images/{id}/actions/reactivate",
            post(images::reactivate),
        )
        .route(
            "/v2/images/{id}/tags/{tag}",
            put(images::add_tag).delete(images::remove_tag),
        )
        .route(
            "/v2/images/{id}/members",
            get(members::list).post(members::create),
        )
        .route(
            "/v2/images/{id}/members/{member_id}",
            get(members::show)
                .put(members::update)
                .delete(members::delete),
        )
        .route("/v2/schemas/image", get(meta::image_schema_doc))
        .route("/v2/schemas/images", get(meta::images_schema))
        .route("/v2/schemas/member", get(meta::member_schema))
        .route("/v2/schemas/members", get(meta::members_schema))
        .route("/v2/info/import", get(meta::import_info))
        .route("/v2/info/stores", get(meta::stores_info))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .merge(data)
        .fallback(not_found)
        .layer(middleware::from_fn(|r, n| {
            render_errors(ErrorStyle::Glance, r, n)
        }))
        .with_state(images)
}
