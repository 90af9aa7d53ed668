//! Handlers for routers (with their interface actions) and floating IPs.

use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use onestack_api::body::JsonBody;
use onestack_api::{ApiError, AuthContext, BaseUrl, Fields};
use serde_json::{Value, json};

use super::query::{self, Params};
use super::{Created, Reply, Shared, caller, href, one, resource_fields};
use crate::views;

pub async fn list_routers(
    State(n): State<Shared>,
    ctx: AuthContext,
    BaseUrl(base): BaseUrl,
    Query(params): Query<Params>,
) -> Reply {
    let caller = caller(&ctx)?;
    let views = n
        .list_routers(&caller)
        .await?
        .iter()
        .map(|r| views::router(r, &caller))
        .collect();
    Ok(Json(query::respond(
        views,
        &params,
        "routers",
        &href(&base, "routers"),
    )?))
}

pub async fn show_router(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Reply {
    let caller = caller(&ctx)?;
    let router = n.get_router(&caller, &id).await?;
    Ok(one("router", views::router(&router, &caller), &params))
}

pub async fn create_router(
    State(n): State<Shared>,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Created {
    let caller = caller(&ctx)?;
    let router = n
        .create_router(&caller, resource_fields(body, "router")?)
        .await?;
    Ok((
        StatusCode::CREATED,
        one("router", views::router(&router, &caller), &Vec::new()),
    ))
}

pub async fn update_router(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let caller = caller(&ctx)?;
    let router = n
        .update_router(&caller, &id, resource_fields(body, "router")?)
        .await?;
    Ok(one("router", views::router(&router, &caller), &Vec::new()))
}

pub async fn delete_router(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    n.delete_router(&caller(&ctx)?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of an interface action is the bare object: `{"subnet_id": ...}`.
fn interface_fields(body: Value) -> Result<Fields, ApiError> {
    Fields::from_body(json!({ "interface": body }), "interface")
}

pub async fn add_router_interface(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let info = n
        .add_router_interface(&caller(&ctx)?, &id, interface_fields(body)?)
        .await?;
    Ok(Json(views::router_interface(&info)))
}

pub async fn remove_router_interface(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let info = n
        .remove_router_interface(&caller(&ctx)?, &id, interface_fields(body)?)
        .await?;
    Ok(Json(views::router_interface(&info)))
}

pub async fn list_floating_ips(
    State(n): State<Shared>,
    ctx: AuthContext,
    BaseUrl(base): BaseUrl,
    Query(params): Query<Params>,
) -> Reply {
    let views = n
        .list_floating_ips(&caller(&ctx)?)
        .await?
        .iter()
        .map(views::floating_ip)
        .collect();
    Ok(Json(query::respond(
        views,
        &params,
        "floatingips",
        &href(&base, "floatingips"),
    )?))
}

pub async fn show_floating_ip(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Reply {
    let fip = n.get_floating_ip(&caller(&ctx)?, &id).await?;
    Ok(one("floatingip", views::floating_ip(&fip), &params))
}

pub async fn create_floating_ip(
    State(n): State<Shared>,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Created {
    let fip = n
        .create_floating_ip(&caller(&ctx)?, resource_fields(body, "floatingip")?)
        .await?;
    Ok((
        StatusCode::CREATED,
        one("floatingip", views::floating_ip(&fip), &Vec::new()),
    ))
}

pub async fn update_floating_ip(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let fip = n
        .update_floating_ip(&caller(&ctx)?, &id, resource_fields(body, "floatingip")?)
        .await?;
    Ok(one("floatingip", views::floating_ip(&fip), &Vec::new()))
}

pub async fn delete_floating_ip(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    n.delete_floating_ip(&caller(&ctx)?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
