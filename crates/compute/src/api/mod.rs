//! The Compute v2.1 HTTP API: routes, the request context every handler takes, version
//! discovery and pagination.

mod action_body;
mod input;
mod resource_body;
mod resources;
mod server_body;
mod servers;
mod volume_body;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::middleware;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use http::request::Parts;
use onestack_api::error::{ErrorStyle, not_found, render_errors};
use onestack_api::paging;
use onestack_api::{ApiError, AuthContext, BaseUrl};
use serde_json::{Value, json};

use crate::microversion::{SCHEME, Version};
use crate::policy::Caller;
use crate::service::Computes;

const MAX_JSON_BODY: usize = 1024 * 1024;

type Shared = Arc<Computes>;
type Reply = Result<Json<Value>, ApiError>;

/// Everything a handler needs to know about the request: who, which version, which URL.
pub struct Ctx {
    pub auth: AuthContext,
    pub caller: Caller,
    pub version: Version,
    /// `http://host:port/compute`.
    pub base: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let (auth, caller) = Caller::from_parts(parts, state, "compute").await?;
        let version = Version::from_request_parts(parts, state).await?;
        let BaseUrl(base) = BaseUrl::from_request_parts(parts, state).await?;
        Ok(Ctx {
            auth,
            caller,
            version,
            base: format!("{base}/compute"),
        })
    }
}

fn version_entry(base: &str) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": SCHEME.text(SCHEME.max),
        "min_version": SCHEME.text(SCHEME.min),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base}/compute/v2.1/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
    })
}

async fn versions(BaseUrl(base): BaseUrl) -> Json<Value> {
    Json(json!({"versions": [version_entry(&base)]}))
}

async fn version(BaseUrl(base): BaseUrl) -> Json<Value> {
    Json(json!({"version": version_entry(&base)}))
}

pub use onestack_api::paging::Params;

fn param<'a>(params: &'a Params, key: &str) -> Option<&'a str> {
    paging::first(params, key)
}

/// Nova's `limit`/`marker` paging over a listing in its order, with the `next` link.
/// Generic over the item so callers can page ids first and render only the page.
pub fn paginate<T>(
    items: Vec<(String, T)>,
    params: &Params,
    href: &str,
) -> Result<(Vec<T>, Option<Value>), ApiError> {
    let limit = match param(params, "limit") {
        Some(l) => Some(l.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid input for query parameters limit. Value: {l}. It must be a non-negative integer."
            ))
        })?),
        None => None,
    };
    let (page, more) = paging::window(items, param(params, "marker"), limit)
        .map_err(|m| ApiError::bad_request(format!("marker [{}] not found", m.0)))?;
    let links = match page.last() {
        Some((last, _)) if more => {
            let next = paging::link(href, params, &["marker"], &[("marker", last)]);
            Some(json!([{"rel": "next", "href": next}]))
        }
        _ => None,
    };
    Ok((page.into_iter().map(|(_, v)| v).collect(), links))
}

/// Nova's `limit`/`offset` slicing (`common.limited`), for the listings that page that way.
pub fn limited<T>(items: Vec<T>, params: &Params) -> Result<Vec<T>, ApiError> {
    let number = |key: &str| -> Result<Option<usize>, ApiError> {
        param(params, key)
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "Invalid input for query parameters {key}. Value: {v}. It must be a non-negative integer."
                    ))
                })
            })
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    let limit = number("limit")?.unwrap_or(usize::MAX);
    Ok(items.into_iter().skip(offset).take(limit).collect())
}

/// The routes under the compute prefix (`/compute`).
pub fn router(computes: Shared) -> Router {
    use resources::*;
    use servers::*;
    let v = |p: &str| format!("/v2.1{p}");
    Router::new()
        .route("/", get(versions))
        .route("/v2.1", get(version))
        .route(&v("/flavors"), get(list_flavors).post(create_flavor))
        .route(&v("/flavors/detail"), get(list_flavors_detail))
        .route(
            &v("/flavors/{id}"),
            get(show_flavor).put(update_flavor).delete(delete_flavor),
        )
        .route(&v("/flavors/{id}/action"), post(flavor_action))
        .route(&v("/flavors/{id}/os-flavor-access"), get(flavor_access))
        .route(
            &v("/flavors/{id}/os-extra_specs"),
            get(list_extra_specs).post(create_extra_specs),
        )
        .route(
            &v("/flavors/{id}/os-extra_specs/{key}"),
            get(show_extra_spec)
                .put(update_extra_spec)
                .delete(delete_extra_spec),
        )
        .route(&v("/os-keypairs"), get(list_keypairs).post(create_keypair))
        .route(
            &v("/os-keypairs/{name}"),
            get(show_keypair).delete(delete_keypair),
        )
        .route(&v("/servers"), get(list_servers).post(create_server))
        .route(&v("/servers/detail"), get(list_servers_detail))
        .route(
            &v("/servers/{id}"),
            get(show_server).put(update_server).delete(delete_server),
        )
        .route(&v("/servers/{id}/action"), post(server_action))
        .route(
            &v("/servers/{id}/metadata"),
            get(list_metadata)
                .post(merge_metadata)
                .put(replace_metadata),
        )
        .route(
            &v("/servers/{id}/metadata/{key}"),
            get(show_metadata_item)
                .put(set_metadata_item)
                .delete(delete_metadata_item),
        )
        .route(
            &v("/servers/{id}/tags"),
            get(list_tags).put(replace_tags).delete(clear_tags),
        )
        .route(
            &v("/servers/{id}/tags/{tag}"),
            get(check_tag).put(add_tag).delete(remove_tag),
        )
        .route(&v("/servers/{id}/ips"), get(list_ips))
        .route(&v("/servers/{id}/ips/{network}"), get(show_ips))
        .route(
            &v("/servers/{id}/os-interface"),
            get(list_interfaces).post(attach_interface),
        )
        .route(
            &v("/servers/{id}/os-interface/{port}"),
            get(show_interface).delete(detach_interface),
        )
        .route(
            &v("/servers/{id}/os-volume_attachments"),
            get(list_volume_attachments).post(attach_volume),
        )
        .route(
            &v("/servers/{id}/os-volume_attachments/{volume}"),
            get(show_volume_attachment)
                .put(update_volume_attachment)
                .delete(detach_volume),
        )
        .route(&v("/servers/{id}/os-instance-actions"), get(list_actions))
        .route(
            &v("/servers/{id}/os-instance-actions/{request}"),
            get(show_action),
        )
        .route(&v("/os-availability-zone"), get(zones))
        .route(&v("/os-availability-zone/detail"), get(zones_detail))
        .route(&v("/os-hypervisors"), get(list_hypervisors))
        .route(&v("/os-hypervisors/detail"), get(list_hypervisors_detail))
        .route(&v("/os-hypervisors/{id}"), get(show_hypervisor))
        .route(
            &v("/os-aggregates"),
            get(list_aggregates).post(create_aggregate),
        )
        .route(
            &v("/os-aggregates/{id}"),
            get(show_aggregate)
                .put(update_aggregate)
                .delete(delete_aggregate),
        )
        .route(&v("/os-aggregates/{id}/action"), post(aggregate_action))
        .route(&v("/os-services"), get(list_services))
        .route(
            &v("/os-services/{id}"),
            put(update_service).delete(delete_service),
        )
        .route(&v("/limits"), get(limits))
        .route(
            &v("/os-quota-sets/{project}"),
            get(show_quota).put(update_quota).delete(reset_quota),
        )
        .route(&v("/os-quota-sets/{project}/defaults"), get(default_quota))
        .route(&v("/os-quota-sets/{project}/detail"), get(detail_quota))
        .route(&v("/os-server-groups"), get(list_groups).post(create_group))
        .route(
            &v("/os-server-groups/{id}"),
            get(show_group).delete(delete_group),
        )
        .route(&v("/os-simple-tenant-usage"), get(list_usage))
        .route(&v("/os-simple-tenant-usage/{project}"), get(show_usage))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .fallback(not_found)
        .layer(middleware::from_fn(|r, n| SCHEME.negotiate(r, n)))
        .layer(middleware::from_fn(|r, n| {
            render_errors(ErrorStyle::Nova, r, n)
        }))
        .with_state(computes)
}
