//! `/v3/regions`, `/v3/services` and `/v3/endpoints`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use serde_json::{Value, json};

use super::{Params, present_nullable, present_string};
use crate::error::{Error, Result};
use crate::model::Region;
use crate::ops::Parsed;
use crate::ops::catalog::{
    EndpointQuery, EndpointUpdate, NewEndpoint, NewRegion, NewService, RegionAttributes,
    RegionUpdate, ServiceQuery, ServiceUpdate,
};
use crate::service::Identity;
use crate::views;

pub async fn list_regions(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let regions = identity
        .list_regions(&ctx, params.get("parent_region_id").map(String::as_str))
        .await?;
    Ok(Json(views::collection(
        &base,
        "regions",
        "regions",
        regions.iter().map(|r| views::region(&base, r)).collect(),
    )))
}

pub async fn show_region(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let r = identity.get_region(&ctx, &id).await?;
    Ok(Json(json!({ "region": views::region(&base, &r) })))
}

/// A new region; `path_id` is the id `PUT /v3/regions/{id}` chose.
fn new_region(path_id: Option<String>, body: Value) -> Parsed<NewRegion> {
    let mut fields = Fields::from_body(body, "region")?;
    let id = match (path_id, fields.opt_string_max("id", 255)?) {
        (Some(path_id), Some(body_id)) if path_id != body_id => {
            return Err(Error::validation(
                "The region id in the body does not match the URL.",
            ));
        }
        (Some(id), _) | (None, Some(id)) => Some(id),
        (None, None) => None,
    };
    let parent_region_id = fields.opt_string("parent_region_id")?;
    Ok(NewRegion {
        id,
        parent_region_id,
        attributes: region_attributes(fields),
    })
}

fn region_attributes(mut fields: Fields) -> Parsed<RegionAttributes> {
    Ok(RegionAttributes {
        description: fields
            .opt_string_max("description", 255)?
            .unwrap_or_default(),
        extra: fields.into_rest(),
    })
}

fn created_region(base: &BaseUrl, r: &Region) -> (StatusCode, Json<Value>) {
    (
        StatusCode::CREATED,
        Json(json!({ "region": views::region(base, r) })),
    )
}

pub async fn create_region(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let r = identity.create_region(&ctx, new_region(None, body)).await?;
    Ok(created_region(&base, &r))
}

/// `PUT /v3/regions/{id}` creates a region with a chosen id.
pub async fn create_region_with_id(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let r = identity
        .create_region(&ctx, new_region(Some(id), body))
        .await?;
    Ok(created_region(&base, &r))
}

fn region_update(body: Value) -> Parsed<RegionUpdate> {
    let mut fields = Fields::from_body(body, "region")?;
    let description = fields.opt_string_max("description", 255)?;
    let parent_region_id = present_nullable(&mut fields, "parent_region_id")?;
    fields.ignore("id");
    Ok(RegionUpdate {
        description,
        parent_region_id,
        extra: fields.into_rest(),
    })
}

pub async fn update_region(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let r = identity
        .update_region(&ctx, &id, region_update(body))
        .await?;
    Ok(Json(json!({ "region": views::region(&base, &r) })))
}

pub async fn delete_region(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    identity.delete_region(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_services(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let query = ServiceQuery {
        name: params.get("name").cloned(),
        service_type: params.get("type").cloned(),
    };
    let services = identity.list_services(&ctx, query).await?;
    Ok(Json(views::collection(
        &base,
        "services",
        "services",
        services.iter().map(|s| views::service(&base, s)).collect(),
    )))
}

pub async fn show_service(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let s = identity.get_service(&ctx, &id).await?;
    Ok(Json(json!({ "service": views::service(&base, &s) })))
}

fn new_service(body: Value) -> Parsed<NewService> {
    let mut fields = Fields::from_body(body, "service")?;
    Ok(NewService {
        service_type: fields.string("type", 255)?,
        name: fields.opt_string_max("name", 255)?.unwrap_or_default(),
        description: fields
            .opt_string_max("description", 65_535)?
            .unwrap_or_default(),
        enabled: fields.opt_bool("enabled")?.unwrap_or(true),
        extra: fields.into_rest(),
    })
}

pub async fn create_service(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let s = identity.create_service(&ctx, new_service(body)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "service": views::service(&base, &s) })),
    ))
}

fn service_update(body: Value) -> Parsed<ServiceUpdate> {
    let mut fields = Fields::from_body(body, "service")?;
    let service_type = present_string(&mut fields, "type", 255)?;
    let name = fields.opt_string_max("name", 255)?;
    let description = fields.opt_string_max("description", 65_535)?;
    let enabled = fields.opt_bool("enabled")?;
    fields.ignore("id");
    Ok(ServiceUpdate {
        service_type,
        name,
        description,
        enabled,
        extra: fields.into_rest(),
    })
}

pub async fn update_service(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let s = identity
        .update_service(&ctx, &id, service_update(body))
        .await?;
    Ok(Json(json!({ "service": views::service(&base, &s) })))
}

pub async fn delete_service(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    identity.delete_service(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_endpoints(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let query = EndpointQuery {
        interface: params.get("interface").cloned(),
        service_id: params.get("service_id").cloned(),
        region_id: params.get("region_id").cloned(),
    };
    let endpoints = identity.list_endpoints(&ctx, query).await?;
    Ok(Json(views::collection(
        &base,
        "endpoints",
        "endpoints",
        endpoints
            .iter()
            .map(|e| views::endpoint(&base, e))
            .collect(),
    )))
}

pub async fn show_endpoint(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let e = identity.get_endpoint(&ctx, &id).await?;
    Ok(Json(json!({ "endpoint": views::endpoint(&base, &e) })))
}

fn new_endpoint(body: Value) -> Parsed<NewEndpoint> {
    let mut fields = Fields::from_body(body, "endpoint")?;
    let region_id = fields.opt_string("region_id")?;
    // `region` is the v2 name of `region_id`.
    let legacy_region = fields.opt_string("region")?;
    Ok(NewEndpoint {
        service_id: fields.string("service_id", 64)?,
        interface: fields.string("interface", 10)?,
        url: fields.string("url", 225)?,
        region_id: region_id.or(legacy_region),
        enabled: fields.opt_bool("enabled")?.unwrap_or(true),
        extra: fields.into_rest(),
    })
}

pub async fn create_endpoint(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let e = identity.create_endpoint(&ctx, new_endpoint(body)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "endpoint": views::endpoint(&base, &e) })),
    ))
}

fn endpoint_update(body: Value) -> Parsed<EndpointUpdate> {
    let mut fields = Fields::from_body(body, "endpoint")?;
    let service_id = present_string(&mut fields, "service_id", 64)?;
    let interface = present_string(&mut fields, "interface", 10)?;
    let url = present_string(&mut fields, "url", 225)?;
    let region_id = present_nullable(&mut fields, "region_id")?;
    let enabled = fields.opt_bool("enabled")?;
    fields.ignore("id");
    fields.ignore("region");
    Ok(EndpointUpdate {
        service_id,
        interface,
        url,
        region_id,
        enabled,
        extra: fields.into_rest(),
    })
}

pub async fn update_endpoint(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let e = identity
        .update_endpoint(&ctx, &id, endpoint_update(body))
        .await?;
    Ok(Json(json!({ "endpoint": views::endpoint(&base, &e) })))
}

pub async fn delete_endpoint(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    identity.delete_endpoint(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
