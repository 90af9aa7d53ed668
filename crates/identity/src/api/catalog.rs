//! `/v3/regions`, `/v3/services` and `/v3/endpoints`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use serde_json::{Value, json};

use super::Params;
use crate::error::{Error, Result};
use crate::model::{Endpoint, Region, Service, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::{store, views};

const INTERFACES: [&str; 3] = ["public", "internal", "admin"];

async fn region(identity: &Identity, id: &str) -> Result<Region> {
    store::catalog::get_region(&identity.pool, id)
        .await?
        .ok_or_else(|| Error::not_found("region", id))
}

async fn service(identity: &Identity, id: &str) -> Result<Service> {
    store::catalog::get_service(&identity.pool, id)
        .await?
        .ok_or_else(|| Error::not_found("service", id))
}

async fn endpoint(identity: &Identity, id: &str) -> Result<Endpoint> {
    store::catalog::get_endpoint(&identity.pool, id)
        .await?
        .ok_or_else(|| Error::not_found("endpoint", id))
}

pub async fn list_regions(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:list_regions", Target::default())?;
    let regions = store::catalog::list_regions(
        &identity.pool,
        params.get("parent_region_id").map(String::as_str),
    )
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
    enforce(&ctx, "identity:get_region", Target::default())?;
    Ok(Json(
        json!({ "region": views::region(&base, &region(&identity, &id).await?) }),
    ))
}

async fn insert_region(
    identity: &Identity,
    base: &BaseUrl,
    id: Option<String>,
    body: Value,
) -> Result<(StatusCode, Json<Value>)> {
    let mut fields = Fields::from_body(body, "region")?;
    let id = match (id, fields.opt_string_max("id", 255)?) {
        (Some(path_id), Some(body_id)) if path_id != body_id => {
            return Err(Error::validation(
                "The region id in the body does not match the URL.",
            ));
        }
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => new_id(),
    };
    let parent_region_id = fields.opt_string("parent_region_id")?;
    if let Some(parent) = &parent_region_id
        && store::catalog::get_region(&identity.pool, parent)
            .await?
            .is_none()
    {
        return Err(Error::validation(format!(
            "Could not find parent region: {parent}."
        )));
    }
    let r = Region {
        id,
        description: fields
            .opt_string_max("description", 255)?
            .unwrap_or_default(),
        parent_region_id,
        extra: fields.into_rest(),
    };
    if store::catalog::get_region(&identity.pool, &r.id)
        .await?
        .is_some()
    {
        return Err(Error::conflict(
            "region",
            format!("a region with id {} already exists", r.id),
        ));
    }
    store::catalog::insert_region(&identity.pool, &r).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "region": views::region(base, &r) })),
    ))
}

pub async fn create_region(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&ctx, "identity:create_region", Target::default())?;
    insert_region(&identity, &base, None, body).await
}

/// `PUT /v3/regions/{id}` creates a region with a chosen id.
pub async fn create_region_with_id(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&ctx, "identity:create_region", Target::default())?;
    insert_region(&identity, &base, Some(id), body).await
}

pub async fn update_region(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:update_region", Target::default())?;
    let mut r = region(&identity, &id).await?;
    let mut fields = Fields::from_body(body, "region")?;
    if let Some(description) = fields.opt_string_max("description", 255)? {
        r.description = description;
    }
    if fields.contains("parent_region_id") {
        let parent = fields.opt_string("parent_region_id")?;
        if let Some(p) = &parent
            && (p == &r.id
                || store::catalog::get_region(&identity.pool, p)
                    .await?
                    .is_none())
        {
            return Err(Error::validation(format!("Invalid parent region: {p}.")));
        }
        // Keystone's CircularRegionHierarchyError: the new parent may not descend from r.
        let mut ancestor = parent.clone();
        let mut seen = std::collections::HashSet::new();
        while let Some(a) = ancestor {
            if a == r.id || !seen.insert(a.clone()) {
                return Err(Error::validation(format!(
                    "The specified parent region {} would create a circular region hierarchy.",
                    parent.as_deref().unwrap_or_default()
                )));
            }
            ancestor = store::catalog::get_region(&identity.pool, &a)
                .await?
                .and_then(|x| x.parent_region_id);
        }
        r.parent_region_id = parent;
    }
    fields.ignore("id");
    r.extra.extend(fields.into_rest());
    store::catalog::update_region(&identity.pool, &r).await?;
    Ok(Json(json!({ "region": views::region(&base, &r) })))
}

pub async fn delete_region(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:delete_region", Target::default())?;
    region(&identity, &id).await?;
    if store::catalog::region_in_use(&identity.pool, &id).await? {
        return Err(Error::ForbiddenBecause(format!(
            "Unable to delete region {id} because it has child regions or endpoints."
        )));
    }
    store::catalog::delete_region(&identity.pool, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_services(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:list_services", Target::default())?;
    let services = store::catalog::list_services(
        &identity.pool,
        params.get("name").map(String::as_str),
        params.get("type").map(String::as_str),
    )
    .await?;
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
    enforce(&ctx, "identity:get_service", Target::default())?;
    Ok(Json(
        json!({ "service": views::service(&base, &service(&identity, &id).await?) }),
    ))
}

pub async fn create_service(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&ctx, "identity:create_service", Target::default())?;
    let mut fields = Fields::from_body(body, "service")?;
    let s = Service {
        id: new_id(),
        service_type: fields.string("type", 255)?,
        name: fields.opt_string_max("name", 255)?.unwrap_or_default(),
        description: fields
            .opt_string_max("description", 65_535)?
            .unwrap_or_default(),
        enabled: fields.opt_bool("enabled")?.unwrap_or(true),
        extra: fields.into_rest(),
    };
    store::catalog::insert_service(&identity.pool, &s).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "service": views::service(&base, &s) })),
    ))
}

pub async fn update_service(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:update_service", Target::default())?;
    let mut s = service(&identity, &id).await?;
    let mut fields = Fields::from_body(body, "service")?;
    if fields.contains("type") {
        s.service_type = fields.string("type", 255)?;
    }
    if let Some(name) = fields.opt_string_max("name", 255)? {
        s.name = name;
    }
    if let Some(description) = fields.opt_string_max("description", 65_535)? {
        s.description = description;
    }
    if let Some(enabled) = fields.opt_bool("enabled")? {
        s.enabled = enabled;
    }
    fields.ignore("id");
    s.extra.extend(fields.into_rest());
    store::catalog::update_service(&identity.pool, &s).await?;
    Ok(Json(json!({ "service": views::service(&base, &s) })))
}

pub async fn delete_service(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:delete_service", Target::default())?;
    service(&identity, &id).await?;
    store::catalog::delete_service(&identity.pool, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_endpoints(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:list_endpoints", Target::default())?;
    let endpoints = store::catalog::list_endpoints(
        &identity.pool,
        params.get("interface").map(String::as_str),
        params.get("service_id").map(String::as_str),
        params.get("region_id").map(String::as_str),
    )
    .await?;
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
    enforce(&ctx, "identity:get_endpoint", Target::default())?;
    Ok(Json(
        json!({ "endpoint": views::endpoint(&base, &endpoint(&identity, &id).await?) }),
    ))
}

fn check_interface(interface: &str) -> Result<()> {
    if INTERFACES.contains(&interface) {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "Invalid interface '{interface}': use public, internal or admin."
        )))
    }
}

fn check_url(url: &str) -> Result<()> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "Invalid endpoint URL '{url}': it must start with http:// or https://."
        )))
    }
}

async fn check_refs(identity: &Identity, e: &Endpoint) -> Result<()> {
    if store::catalog::get_service(&identity.pool, &e.service_id)
        .await?
        .is_none()
    {
        return Err(Error::validation(format!(
            "Could not find service: {}.",
            e.service_id
        )));
    }
    if let Some(region) = &e.region_id
        && store::catalog::get_region(&identity.pool, region)
            .await?
            .is_none()
    {
        return Err(Error::validation(format!(
            "Could not find region: {region}."
        )));
    }
    Ok(())
}

pub async fn create_endpoint(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&ctx, "identity:create_endpoint", Target::default())?;
    let mut fields = Fields::from_body(body, "endpoint")?;
    let region_id = fields.opt_string("region_id")?;
    let legacy_region = fields.opt_string("region")?;
    let e = Endpoint {
        id: new_id(),
        service_id: fields.string("service_id", 64)?,
        interface: fields.string("interface", 10)?,
        url: fields.string("url", 225)?,
        region_id: region_id.or(legacy_region),
        enabled: fields.opt_bool("enabled")?.unwrap_or(true),
        extra: fields.into_rest(),
    };
    check_interface(&e.interface)?;
    check_url(&e.url)?;
    check_refs(&identity, &e).await?;
    store::catalog::insert_endpoint(&identity.pool, &e).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "endpoint": views::endpoint(&base, &e) })),
    ))
}

pub async fn update_endpoint(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:update_endpoint", Target::default())?;
    let mut e = endpoint(&identity, &id).await?;
    let mut fields = Fields::from_body(body, "endpoint")?;
    if fields.contains("service_id") {
        e.service_id = fields.string("service_id", 64)?;
    }
    if fields.contains("interface") {
        e.interface = fields.string("interface", 10)?;
    }
    if fields.contains("url") {
        e.url = fields.string("url", 225)?;
    }
    if fields.contains("region_id") {
        e.region_id = fields.opt_string("region_id")?;
    }
    if let Some(enabled) = fields.opt_bool("enabled")? {
        e.enabled = enabled;
    }
    fields.ignore("id");
    fields.ignore("region");
    e.extra.extend(fields.into_rest());
    check_interface(&e.interface)?;
    check_url(&e.url)?;
    check_refs(&identity, &e).await?;
    store::catalog::update_endpoint(&identity.pool, &e).await?;
    Ok(Json(json!({ "endpoint": views::endpoint(&base, &e) })))
}

pub async fn delete_endpoint(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:delete_endpoint", Target::default())?;
    endpoint(&identity, &id).await?;
    store::catalog::delete_endpoint(&identity.pool, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
