//! The Block Storage v3 HTTP API: routes, the request context every handler takes, the
//! project segment clients may put in URLs, version discovery.

mod attachments;
mod backups;
mod input;
mod listing;
mod metadata;
mod quotas;
mod snapshots;
mod transfers;
mod types;
mod volumes;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use http::request::Parts;
use onestack_api::error::{ErrorStyle, not_found, render_errors};
use onestack_api::microversion::{Scheme, Version};
use onestack_api::{ApiError, AuthContext, BaseUrl};
use serde_json::{Value, json};

use crate::ops::metadata::MetadataOf;
use crate::policy::Caller;
use crate::service::Volumes;
use crate::views::{self, ViewCtx};

const MAX_JSON_BODY: usize = 1024 * 1024;

/// Cinder's microversions: 3.0 to 3.71 are negotiated; what a version adds is served only
/// where onestack has it (an unknown action is a 400 at any version).
pub static MICROVERSIONS: Scheme = Scheme {
    service: "volume",
    major: 3,
    min: Version(0),
    max: Version(71),
    legacy: None,
    vary: "OpenStack-API-Version",
};

type Shared = Arc<Volumes>;
type Reply = Result<Json<Value>, ApiError>;

/// The project segment of a request's URL (`/v3/{project_id}/volumes`), taken out before
/// routing so that each route is written once; links keep it when it was there.
#[derive(Debug, Clone)]
pub struct UrlProject(pub String);

/// Moves a project segment after `/volume/v3/` into a [`UrlProject`] extension. Cinder's
/// collections are words with letters past `f`, so a segment of hex digits and dashes is a
/// project id.
pub fn take_url_project(mut request: Request) -> Request {
    let path = request.uri().path();
    let Some(rest) = path.strip_prefix("/volume/v3/") else {
        return request;
    };
    let (segment, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let is_project =
        !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if !is_project {
        return request;
    }
    let project = segment.to_ascii_lowercase();
    let mut new_path = String::from("/volume/v3");
    if !tail.is_empty() {
        new_path.push('/');
        new_path.push_str(tail);
    }
    let uri = match request.uri().query() {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    };
    if let Ok(uri) = uri.parse() {
        *request.uri_mut() = uri;
        request.extensions_mut().insert(UrlProject(project));
    }
    request
}

/// Everything a handler needs to know about the request: who, which version, which URL.
pub struct Ctx {
    /// The token's context: other services (the image service) check it themselves.
    pub auth: AuthContext,
    pub caller: Caller,
    pub version: Version,
    pub view: ViewCtx,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let (auth, caller) = Caller::from_parts(parts, state, "block storage").await?;
        let version = Version::from_request_parts(parts, state).await?;
        let BaseUrl(base) = BaseUrl::from_request_parts(parts, state).await?;
        let url_project = parts.extensions.get::<UrlProject>().map(|p| p.0.clone());
        if let Some(project) = &url_project
            && *project != caller.project_id.replace('-', "").to_ascii_lowercase()
            && *project != caller.project_id
        {
            return Err(ApiError::bad_request("Malformed request url"));
        }
        Ok(Ctx {
            auth,
            view: ViewCtx {
                version,
                admin: caller.admin,
                base: format!("{base}/volume"),
                url_project,
            },
            caller,
            version,
        })
    }
}

fn version_list(base: &str) -> Value {
    json!({"versions": [{
        "id": "v3.0",
        "status": "CURRENT",
        "version": MICROVERSIONS.text(MICROVERSIONS.max),
        "min_version": MICROVERSIONS.text(MICROVERSIONS.min),
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": format!("{base}/volume/v3/")},
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
    }]})
}

/// `GET /volume/`: 300 Multiple Choices, as Cinder answers (Nova reads it to find 3.x).
async fn versions(BaseUrl(base): BaseUrl) -> impl IntoResponse {
    (StatusCode::MULTIPLE_CHOICES, Json(version_list(&base)))
}

/// `GET /volume/v3`: the same document, 200, for an authenticated caller.
async fn version(_: AuthContext, BaseUrl(base): BaseUrl) -> Json<Value> {
    Json(version_list(&base))
}

async fn availability_zones(_: Ctx, State(v): State<Shared>) -> Json<Value> {
    Json(json!({"availabilityZoneInfo": [
        {"zoneName": v.config.availability_zone, "zoneState": {"available": true}}
    ]}))
}

/// `os-services`: this host's volume and backup services (admins only).
async fn list_services(ctx: Ctx, State(v): State<Shared>) -> Reply {
    let services: Vec<Value> = v
        .services(&ctx.caller)?
        .iter()
        .map(|s| views::service(s, &ctx.view))
        .collect();
    Ok(Json(json!({"services": services})))
}

/// `scheduler-stats/get_pools` (admins only), with capabilities when `detail` is true.
async fn list_pools(
    ctx: Ctx,
    State(v): State<Shared>,
    axum::extract::Query(params): axum::extract::Query<onestack_api::paging::Params>,
) -> Reply {
    let detail = onestack_api::paging::first(&params, "detail")
        .is_some_and(|d| input::flag("detail", &json!(d)).unwrap_or(false));
    let pools: Vec<Value> = v
        .pools(&ctx.caller)
        .await?
        .iter()
        .map(|p| views::pool(p, detail))
        .collect();
    Ok(Json(json!({"pools": pools})))
}

/// `capabilities/{host}` (admins only).
async fn show_capabilities(
    ctx: Ctx,
    State(v): State<Shared>,
    axum::extract::Path(host): axum::extract::Path<String>,
) -> Reply {
    let host = v.capabilities(&ctx.caller, &host)?;
    Ok(Json(views::capabilities(&host)))
}

/// The routes under the block storage prefix (`/volume`).
pub fn router(volumes: Shared) -> Router {
    use attachments::*;
    use backups::*;
    use quotas::*;
    use snapshots::*;
    use transfers::*;
    use types::*;
    use volumes::*;
    let v = |p: &str| format!("/v3{p}");
    let versioned = Router::new()
        .route("/v3", get(version))
        .route(&v("/volumes"), get(list_volumes).post(create_volume))
        .route(&v("/volumes/detail"), get(list_volumes_detail))
        .route(
            &v("/volumes/{id}"),
            get(show_volume).put(update_volume).delete(delete_volume),
        )
        .route(&v("/volumes/{id}/action"), post(volume_action))
        .merge(metadata::routes(MetadataOf::Volume, &v("/volumes")))
        .merge(metadata::routes(MetadataOf::Snapshot, &v("/snapshots")))
        .route(&v("/snapshots"), get(list_snapshots).post(create_snapshot))
        .route(&v("/snapshots/detail"), get(list_snapshots_detail))
        .route(
            &v("/snapshots/{id}"),
            get(show_snapshot)
                .put(update_snapshot)
                .delete(delete_snapshot),
        )
        .route(
            &v("/attachments"),
            get(list_attachments).post(create_attachment),
        )
        .route(&v("/attachments/detail"), get(list_attachments_detail))
        .route(
            &v("/attachments/{id}"),
            get(show_attachment).delete(delete_attachment),
        )
        .route(&v("/backups"), get(list_backups).post(create_backup))
        .route(&v("/backups/detail"), get(list_backups_detail))
        .route(
            &v("/backups/{id}"),
            get(show_backup).put(update_backup).delete(delete_backup),
        )
        .route(&v("/backups/{id}/restore"), post(restore_backup))
        .route(&v("/backups/{id}/action"), post(backup_action_handler))
        .route(
            &v("/os-volume-transfer"),
            get(list_transfers).post(create_transfer),
        )
        .route(&v("/os-volume-transfer/detail"), get(list_transfers_detail))
        .route(
            &v("/os-volume-transfer/{id}"),
            get(show_transfer).delete(delete_transfer),
        )
        .route(&v("/os-volume-transfer/{id}/accept"), post(accept_transfer))
        .route(
            &v("/volume-transfers"),
            get(list_transfers).post(create_transfer),
        )
        .route(&v("/volume-transfers/detail"), get(list_transfers_detail))
        .route(
            &v("/volume-transfers/{id}"),
            get(show_transfer).delete(delete_transfer),
        )
        .route(&v("/volume-transfers/{id}/accept"), post(accept_transfer))
        .route(&v("/types"), get(list_types).post(create_type))
        .route(&v("/types/default"), get(show_default_type))
        .route(
            &v("/types/{id}"),
            get(show_type).put(update_type).delete(delete_type),
        )
        .route(&v("/types/{id}/action"), post(type_action))
        .route(
            &v("/types/{id}/os-volume-type-access"),
            get(list_type_access),
        )
        .route(
            &v("/types/{id}/extra_specs"),
            get(list_extra_specs).post(create_extra_specs),
        )
        .route(
            &v("/types/{id}/extra_specs/{key}"),
            get(show_extra_spec)
                .put(update_extra_spec)
                .delete(delete_extra_spec),
        )
        .route(&v("/os-availability-zone"), get(availability_zones))
        .route(&v("/os-services"), get(list_services))
        .route(&v("/scheduler-stats/get_pools"), get(list_pools))
        .route(&v("/capabilities/{host}"), get(show_capabilities))
        .route(&v("/limits"), get(limits))
        .route(
            &v("/os-quota-sets/{project}"),
            get(show_quota).put(update_quota).delete(reset_quota),
        )
        .route(&v("/os-quota-sets/{project}/defaults"), get(default_quota))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(middleware::from_fn(|r, n| MICROVERSIONS.negotiate(r, n)));
    Router::new()
        .route("/", get(versions))
        .merge(versioned)
        .fallback(not_found)
        .layer(middleware::from_fn(|r, n| {
            render_errors(ErrorStyle::Nova, r, n)
        }))
        .with_state(volumes)
}
