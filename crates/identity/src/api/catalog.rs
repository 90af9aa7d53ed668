//! `/v3/regions`, `/v3/services` and `/v3/endpoints`.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use onestack_api::{Fields, JsonBody};
use serde_json::Value;

use super::{Call, Params, Reply, present_nullable, present_string};
use crate::error::{Error, Result};
use crate::ops::Parsed;
use crate::ops::catalog::{
    EndpointQuery, EndpointUpdate, NewEndpoint, NewRegion, NewService, RegionAttributes,
    RegionUpdate, ServiceQuery, ServiceUpdate,
};
use crate::views;

pub async fn list_regions(call: Call, Query(params): Query<Params>) -> Reply {
    let regions = call
        .identity
        .list_regions(
            &call.ctx,
            params.get("parent_region_id").map(String::as_str),
        )
        .await?;
    call.many("regions", "regions", views::region, &regions)
}

pub async fn show_region(call: Call, Path(id): Path<String>) -> Reply {
    let r = call.identity.get_region(&call.ctx, &id).await?;
    call.one(StatusCode::OK, "region", views::region, &r)
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

pub async fn create_region(call: Call, JsonBody(body): JsonBody<Value>) -> Reply {
    let new = new_region(None, body);
    let r = call.identity.create_region(&call.ctx, new).await?;
    call.one(StatusCode::CREATED, "region", views::region, &r)
}

/// `PUT /v3/regions/{id}` creates a region with a chosen id.
pub async fn create_region_with_id(
    call: Call,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let new = new_region(Some(id), body);
    let r = call.identity.create_region(&call.ctx, new).await?;
    call.one(StatusCode::CREATED, "region", views::region, &r)
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
    call: Call,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let update = region_update(body);
    let r = call.identity.update_region(&call.ctx, &id, update).await?;
    call.one(StatusCode::OK, "region", views::region, &r)
}

pub async fn delete_region(call: Call, Path(id): Path<String>) -> Result<StatusCode> {
    call.identity.delete_region(&call.ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_services(call: Call, Query(params): Query<Params>) -> Reply {
    let query = ServiceQuery {
        name: params.get("name").cloned(),
        service_type: params.get("type").cloned(),
    };
    let services = call.identity.list_services(&call.ctx, query).await?;
    call.many("services", "services", views::service, &services)
}

pub async fn show_service(call: Call, Path(id): Path<String>) -> Reply {
    let s = call.identity.get_service(&call.ctx, &id).await?;
    call.one(StatusCode::OK, "service", views::service, &s)
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

pub async fn create_service(call: Call, JsonBody(body): JsonBody<Value>) -> Reply {
    let new = new_service(body);
    let s = call.identity.create_service(&call.ctx, new).await?;
    call.one(StatusCode::CREATED, "service", views::service, &s)
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
    call: Call,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let update = service_update(body);
    let s = call.identity.update_service(&call.ctx, &id, update).await?;
    call.one(StatusCode::OK, "service", views::service, &s)
}

pub async fn delete_service(call: Call, Path(id): Path<String>) -> Result<StatusCode> {
    call.identity.delete_service(&call.ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_endpoints(call: Call, Query(params): Query<Params>) -> Reply {
    let query = EndpointQuery {
        interface: params.get("interface").cloned(),
        service_id: params.get("service_id").cloned(),
        region_id: params.get("region_id").cloned(),
    };
    let endpoints = call.identity.list_endpoints(&call.ctx, query).await?;
    call.many("endpoints", "endpoints", views::endpoint, &endpoints)
}

pub async fn show_endpoint(call: Call, Path(id): Path<String>) -> Reply {
    let e = call.identity.get_endpoint(&call.ctx, &id).await?;
    call.one(StatusCode::OK, "endpoint", views::endpoint, &e)
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

pub async fn create_endpoint(call: Call, JsonBody(body): JsonBody<Value>) -> Reply {
    let new = new_endpoint(body);
    let e = call.identity.create_endpoint(&call.ctx, new).await?;
    call.one(StatusCode::CREATED, "endpoint", views::endpoint, &e)
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
    call: Call,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let update = endpoint_update(body);
    let e = call
        .identity
        .update_endpoint(&call.ctx, &id, update)
        .await?;
    call.one(StatusCode::OK, "endpoint", views::endpoint, &e)
}

pub async fn delete_endpoint(call: Call, Path(id): Path<String>) -> Result<StatusCode> {
    call.identity.delete_endpoint(&call.ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
